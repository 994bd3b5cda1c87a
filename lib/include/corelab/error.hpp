// corelab/error.hpp — the one exception type of the library.
//
// Concept: a library error says what was wrong and what to do about it. Every
// lesson catches `corelab::Error`, prints `error: <message>` and exits 1.
// Used by every lesson.
#pragma once

#include <stdexcept>  // std::runtime_error
#include <string>     // std::string

namespace corelab {

/// Thrown by every corelab function that cannot do what it was asked.
/// The message names the problem and, where there is one, the fix.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
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
