// corelab/children.hpp — a set of supervised child processes.
//
// Concept: a forked worker is a process of its own, and its parent owes it
// four things: start it safely, notice at once when it ends, reap it, and
// say how it ended. `Children` does all four for both supervisors of the
// course, ProcessWorkers (lesson 03) and Parallel's process backend
// (lesson 06). It forks only from a process that runs no other thread (a
// child would inherit locks held by threads it does not have), flushes stdio
// first (or every child would write the parent's unwritten text again) and
// holds SIGINT/SIGTERM until the child is tracked for the Ctrl-C cleanup. The
// child dies with its parent (PR_SET_PDEATHSIG), ignores SIGINT (its parent
// stops it) and writes stdout a line at a time. The parent watches each child
// through a pidfd, which becomes readable when the child ends: it sleeps in
// poll() until something happens, with no polling interval, and wakes only
// at the caller's deadline if it has one. On the first failure the rest are
// SIGKILLed and reaped, and the death is told in one way:
// `worker 1 (pid 123) was killed by SIGKILL while running task 7`.
#pragma once

#include <poll.h>       // pollfd
#include <sys/types.h>  // pid_t

#include <chrono>    // std::chrono::steady_clock, milliseconds
#include <cstddef>   // std::size_t
#include <cstdint>   // std::uint32_t
#include <optional>  // std::optional
#include <string>    // std::string
#include <vector>    // std::vector

#include "corelab/error.hpp"  // Error, About

namespace corelab {

/// Writes out what stdio (every FILE) and std::cout, std::cerr and std::clog
/// still buffer. A child calls it before its `_exit`, which flushes nothing;
/// Children::start calls it before forking.
void flush_stdio() noexcept;

/// How many threads this process runs now (entries of /proc/self/task).
unsigned live_threads();

/// "SIGKILL", or "signal 64" for a signal without a name.
std::string signal_name(int sig);

/// "worker 1 (pid 123)".
std::string worker_name(unsigned worker, pid_t pid);

/// The exit status of a child that could not send its results (its parent is gone).
inline constexpr int exit_could_not_send = 70;

/// How a child ended, from its wait status, followed by `doing` (" while
/// running task 7", or empty): "worker 1 (pid 123) was killed by SIGKILL
/// while running task 7", "... exited with status 3 while ...".
std::string describe_end(unsigned worker, pid_t pid, int status, const std::string& doing);

/// "<what> did not finish within 300 ms: <running>; every worker was killed
/// with SIGKILL" (`running` may be empty).
std::string describe_timeout(const std::string& what, std::chrono::milliseconds timeout, const std::string& running);

/// An exception's message as it travels from a child to its parent: plain
/// bytes, at most `limit` of them (a longer message is cut and ends in "...").
struct ChildError {
    static constexpr std::size_t limit = 1024;
    std::uint32_t size = 0;
    char text[limit] = {};

    /// `message`, cut to the limit.
    static ChildError of(const char* message) noexcept;
    /// The message of the exception being handled (call it in a catch block).
    static ChildError current() noexcept;
    /// The text, as received (a size beyond the limit is cut to it).
    std::string str() const;
};

/// A fixed number of child slots of this process, started one by one,
/// watched, reaped. A reaped slot may be started again (a pool replaces a
/// worker that died). Move-free: it lives as long as its supervisor.
class Children {
public:
    /// Room for `count` children. Throws corelab::Error when this process
    /// runs other threads (the message ends with `instead`, what to do then);
    /// a fork that fails throws corelab::Error about `about`.
    Children(unsigned count, std::string instead, About about);
    Children(const Children&) = delete;
    Children& operator=(const Children&) = delete;
    /// Kills and reaps every child not yet reaped (in the parent only).
    ~Children();

    unsigned size() const noexcept { return static_cast<unsigned>(pids_.size()); }

    /// Forks child k. Returns true in the child (which must never return into
    /// the caller's code: it ends with `_exit`), false in the parent. Throws
    /// corelab::Error when it cannot fork or cannot watch the child (a kernel
    /// without pidfd_open, Linux < 5.3); every child is then killed and reaped.
    /// Slot k must be new or reaped.
    bool start(unsigned k);

    /// Throws corelab::Error (ending with `instead`) when this process now
    /// runs other threads: a supervisor that forks again later (a pool's
    /// replacement worker) checks before each fork, not only at its start.
    void check_threads() const;

    /// The pidfd of child k (readable once it has ended), -1 when none.
    int pidfd(unsigned k) const noexcept { return pidfds_[k]; }

    /// SIGKILLs child k (when not yet reaped) and reaps it. Does nothing in a
    /// process other than the one that made this set.
    void kill_one(unsigned k) noexcept;

    pid_t pid(unsigned k) const noexcept { return pids_[k]; }
    /// "worker k (pid ...)".
    std::string who(unsigned k) const { return worker_name(k, pids_[k]); }
    bool reaped(unsigned k) const noexcept { return reaped_[k]; }
    bool all_reaped() const noexcept;

    /// Sleeps until one of `fds` (the caller's descriptors) is ready, a child
    /// not yet reaped ends, a signal arrives, or `deadline` passes; without a
    /// deadline it waits as long as that takes. The caller's entries get
    /// their revents.
    void wait(std::vector<pollfd>& fds, std::optional<std::chrono::steady_clock::time_point> deadline);

    /// Reaps child k if it has ended: its wait status; nullopt while it runs.
    /// Throws corelab::Error when it cannot be waited for.
    std::optional<int> try_reap(unsigned k);

    /// SIGKILLs every child not yet reaped, then reaps each one. Does nothing
    /// in a process other than the one that made this set (a child).
    void kill_all() noexcept;

private:
    std::string instead_;
    About about_;
    pid_t parent_;
    std::vector<pid_t> pids_;
    std::vector<int> pidfds_;
    std::vector<bool> reaped_;
    std::vector<pollfd> polled_;  // wait()'s array, kept to allocate once
};

}  // namespace corelab
