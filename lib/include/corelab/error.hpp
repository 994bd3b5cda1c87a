// corelab/error.hpp — the one exception type of the library.
//
// Concept: a library error says what was wrong. Every lesson catches
// `corelab::Error`, prints `error: <message>` and exits 1. The library does
// not know a program's command line, so an error also says what it is about
// (a size, a directory, a number of workers): run_lesson (cli) turns that into
// advice that names the lesson's flag ("use a smaller --n").
// Used by every lesson.
#pragma once

#include <stdexcept>  // std::runtime_error
#include <string>     // std::string

namespace corelab {

/// What an error is about, where the caller could change it: a program
/// adds its own advice for it (run_lesson names the lesson's flag).
enum class About {
    nothing,        ///< nothing a caller's setting changes
    size,           ///< the amount of data: ask for less
    directory,      ///< the directory given for files: choose another
    disk_room,      ///< room on a disk: less data or another directory
    shared_memory,  ///< room in /dev/shm: less data, stale objects, a larger /dev/shm
    workers,        ///< the number of workers (ProcessWorkers, ThreadWorkers)
    jobs,           ///< Parallel's n_jobs
    backend,        ///< Parallel's backend
};

/// Thrown by every corelab function that cannot do what it was asked.
/// The message states what was wrong (facts, no command-line flags);
/// about() says what a caller could change.
class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message, About about = About::nothing)
        : std::runtime_error(message), about_(about) {}
    explicit Error(const char* message, About about = About::nothing) : std::runtime_error(message), about_(about) {}
    /// What the error is about (About::nothing unless told).
    About about() const noexcept { return about_; }

private:
    About about_;
};

/// Thrown in the caller when a worker (a thread or a child process) failed:
/// it threw, crashed, was killed, or did not answer in time. The message
/// names the worker, and for a process its pid and the signal, like
/// `worker 1 (pid 4242) was killed by SIGKILL`.
class WorkerError : public Error {
public:
    WorkerError(unsigned worker, const std::string& message) : Error(message), worker_(worker) {}
    /// Index of the worker that failed (0-based, in the order workers were started).
    unsigned worker() const noexcept { return worker_; }

private:
    unsigned worker_;
};

}  // namespace corelab
