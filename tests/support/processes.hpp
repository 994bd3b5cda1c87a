// Test support for the IPC and process tests: who is still running, what is
// left in /dev/shm, and a program started in its own process group.
#pragma once

#include <sys/types.h>  // pid_t

#include <chrono>  // std::chrono::milliseconds
#include <string>  // std::string
#include <vector>  // std::vector

namespace corelab::test {

/// Names in /dev/shm that start with `corelab.<pid>.`.
std::vector<std::string> shm_objects_of(pid_t pid);

/// Live (not zombie) processes whose parent is `parent`.
std::vector<pid_t> live_children_of(pid_t parent);

/// All children of `parent`, zombies included.
std::vector<pid_t> children_of(pid_t parent);

/// Live (not zombie) processes in process group `group`.
std::vector<pid_t> live_group_members(pid_t group);

/// A program started with stdout and stderr sent to /dev/null, in a process
/// group of its own (its pid is the group id), as a shell starts a job.
pid_t start_in_own_group(const std::vector<std::string>& argv);

/// How a waited-for process ended.
struct Ended {
    bool ended = false;  ///< false: still running after the timeout
    int exit_code = -1;
    int signal = 0;
};

/// Polls waitpid(pid) for at most `timeout`; never blocks longer.
Ended wait_for(pid_t pid, std::chrono::milliseconds timeout);

/// Polls for at most `timeout` until the child `pid` has ended, without
/// reaping it: it stays a zombie (its pid still answers kill(pid, 0)) until
/// wait_for() reaps it.
Ended wait_for_zombie(pid_t pid, std::chrono::milliseconds timeout);

/// True while `pid` runs (exists and is not a zombie).
bool running(pid_t pid);

/// True once every thread of process `pid` has ended (it is gone, or a
/// zombie with no thread left). A zombie leader whose other threads (a
/// sanitizer's, say) are still ending is not finished: they may still hold
/// its descriptors and mappings for a moment.
bool finished(pid_t pid);

/// True once every process in group `group` is finished().
bool group_finished(pid_t group);

/// The start of `length` consecutive pids, from `from` on, that no process
/// here has (for a process in another pid namespace that must have a pid
/// unknown here); 0 when there is none below 4194304.
pid_t unused_pids(pid_t from, pid_t length);

/// While it lives, this process's standard output (fd 1, and so stdout and
/// std::cout) goes into a pipe (room for 1 MB: writers never block on it) or
/// into an unnamed temporary file, as it does when a program's output is
/// piped or redirected. text() puts fd 1 back and returns every byte that
/// arrived. Forked children inherit the redirection.
class CapturedStdout {
public:
    enum class Into { pipe, file };
    explicit CapturedStdout(Into into);
    CapturedStdout(const CapturedStdout&) = delete;
    CapturedStdout& operator=(const CapturedStdout&) = delete;
    ~CapturedStdout();
    /// Flushes stdout, restores fd 1 and returns what was written meanwhile.
    std::string text();

private:
    void restore() noexcept;
    Into into_;
    int saved_ = -1;  // the real fd 1
    int read_ = -1;   // the pipe's read end, or the file
};

/// Polls `condition` every millisecond for at most `timeout`; its last value.
template <class C>
bool eventually(C condition, std::chrono::milliseconds timeout);

}  // namespace corelab::test

#include <thread>  // std::this_thread::sleep_for

template <class C>
bool corelab::test::eventually(C condition, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline) return condition();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}
