// Implementation of corelab/process_workers.hpp: fork, poll, reap.
#include "corelab/process_workers.hpp"

#include <fcntl.h>        // fcntl(FD_CLOEXEC)
#include <poll.h>         // poll: sleep until a child's pidfd says it ended
#include <signal.h>       // kill, SIGKILL
#include <sys/syscall.h>  // SYS_pidfd_open
#include <sys/wait.h>     // waitpid
#include <unistd.h>       // _exit, close

#include <algorithm>  // std::clamp, std::max
#include <cerrno>     // errno
#include <cstring>    // std::strerror, sigabbrev_np
#include <string>     // std::string

#include "corelab/ipc/names.hpp"  // make_name, track_child, live_threads, flush_stdio

namespace corelab {
namespace {

// Threads a process may run and still fork safely: itself (and, under
// ThreadSanitizer, the sanitizer's own background thread).
#if defined(__SANITIZE_THREAD__)
constexpr unsigned allowed_threads = 2;
#else
constexpr unsigned allowed_threads = 1;
#endif

std::string signal_name(int sig) {
    if (const char* abbrev = ::sigabbrev_np(sig)) return std::string("SIG") + abbrev;
    return "signal " + std::to_string(sig);
}

std::string who(unsigned k, pid_t pid) {
    return "worker " + std::to_string(k) + " (pid " + std::to_string(pid) + ")";
}

ipc::detail::QueueCore results_queue(unsigned workers, std::size_t message_size) {
    // Forking copies the whole memory of the process but only the thread that
    // calls fork(): a lock another thread holds stays held forever in the child.
    const unsigned threads = ipc::live_threads();
    if (threads > allowed_threads) {
        throw Error("cannot fork worker processes: this process runs " + std::to_string(threads) +
                    " threads, and a forked child would inherit locks held by threads it does not have. "
                    "Start the processes before any thread (or use ThreadWorkers)");
    }
    return ipc::detail::QueueCore::create(ipc::make_name("results"), workers, message_size);
}

}  // namespace

ProcessWorkers::ProcessWorkers(unsigned workers, ProcessOptions options) : workers_(workers), options_(options) {
    if (workers == 0) throw Error("ProcessWorkers needs at least one worker");
}

namespace detail {

ProcessRun::ProcessRun(unsigned workers, const ProcessOptions& options, std::size_t message_size)
    : workers_(workers),
      options_(options),
      message_size_(message_size),
      queue_(results_queue(workers, message_size)),
      pids_(workers, 0),
      pidfds_(workers, -1),
      reaped_(workers, false),
      parent_(::getpid()) {}

ProcessRun::~ProcessRun() {
    abort_all();
    for (int fd : pidfds_) {
        if (fd >= 0) ::close(fd);
    }
}

// Why the parent sleeps on pidfds instead of polling: on a 2-core machine with
// two busy children, every wake-up of a polling parent preempts a child.
// Waking every 200 µs cost the two-process mean ~8 ms of its ~40 (measured);
// a pidfd becomes readable when its child ends, so the parent sleeps through
// the work and still notices a crash at once.
void ProcessRun::wait_for_children(ipc::Backoff& backoff, std::chrono::milliseconds longest) {
    std::vector<pollfd> fds;
    for (unsigned k = 0; k < workers_; ++k) {
        if (reaped_[k]) continue;
        if (pidfds_[k] < 0) {  // no pidfd for this child: poll the old way
            backoff.pause();
            return;
        }
        fds.push_back({pidfds_[k], POLLIN, 0});
    }
    if (fds.empty()) return;
    const int ms = static_cast<int>(std::max<std::chrono::milliseconds::rep>(1, longest.count()));
    (void)::poll(fds.data(), fds.size(), ms);  // EINTR: the loop checks everything again
}

bool ProcessRun::fork_worker(unsigned k) {
    pid_t pid = 0;
    try {
        pid = ipc::fork_worker_child(k, "(too many processes? use fewer --workers)");
    } catch (...) {
        abort_all();
        throw;
    }
    if (pid == 0) return true;  // in the child
    pids_[k] = pid;
    // A descriptor that becomes readable when the child ends (Linux 5.3+).
    pidfds_[k] = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfds_[k] >= 0) ::fcntl(pidfds_[k], F_SETFD, FD_CLOEXEC);
    return false;
}

void ProcessRun::child_send(const void* message) noexcept {
    ipc::flush_stdio();  // _exit flushes nothing: what the worker printed would be lost
    // The queue has room for every worker's message, so this succeeds at
    // once unless the parent is gone; poll, never wait inside the queue.
    try {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        for (ipc::Backoff backoff; !queue_.try_send(message, message_size_); backoff.pause()) {
            if (std::chrono::steady_clock::now() >= deadline) ::_exit(70);
        }
    } catch (...) {
        ::_exit(70);
    }
    ::_exit(0);
}

void ProcessRun::collect(const std::function<void(const void*)>& on_result) {
    std::vector<unsigned char> buffer(message_size_);
    std::vector<bool> answered(workers_, false);
    unsigned received = 0;
    unsigned reaped = 0;
    std::optional<std::pair<unsigned, std::string>> failure;
    std::string broken;  // why the queue is unusable, once it is
    const auto start = std::chrono::steady_clock::now();

    // take every message waiting in the queue; true if there was one
    const auto drain = [&] {
        bool any = false;
        while (!failure && broken.empty()) {
            try {
                if (!queue_.try_receive(buffer.data(), message_size_)) break;
            } catch (const ipc::QueueBroken& e) {
                broken = e.what();  // a child died holding the lock: waitpid names it
                break;
            }
            any = true;
            MessageHead head;
            std::memcpy(&head, buffer.data(), sizeof head);
            if (head.worker >= workers_ || answered[head.worker]) {
                failure.emplace(0, "a worker sent a message for worker " + std::to_string(head.worker) +
                                       ", which is not one that is still due");
                break;
            }
            answered[head.worker] = true;
            ++received;
            if (head.failed != 0) {
                head.error[sizeof head.error - 1] = '\0';
                failure.emplace(head.worker, who(head.worker, pids_[head.worker]) + " failed: " + head.error);
            } else {
                on_result(buffer.data());
            }
        }
        return any;
    };

    ipc::Backoff backoff(options_.poll_ceiling);
    while (!failure && (received < workers_ || reaped < workers_)) {
        bool progress = drain();
        // reap every child that ended, and say how it ended
        for (unsigned k = 0; k < workers_ && !failure; ++k) {
            if (reaped_[k]) continue;
            int status = 0;
            const pid_t r = ::waitpid(pids_[k], &status, WNOHANG);
            if (r == 0 || (r < 0 && errno == EINTR)) continue;
            reaped_[k] = true;
            ++reaped;
            ipc::untrack_child(pids_[k]);
            progress = true;
            if (r < 0) {
                failure.emplace(k, who(k, pids_[k]) + " could not be waited for: " + std::strerror(errno));
            } else if (WIFSIGNALED(status)) {
                failure.emplace(k, who(k, pids_[k]) + " was killed by " + signal_name(WTERMSIG(status)) +
                                       " while computing its part");
            } else if (WEXITSTATUS(status) != 0) {
                failure.emplace(k, who(k, pids_[k]) + " exited with status " + std::to_string(WEXITSTATUS(status)) +
                                       (WEXITSTATUS(status) == 70 ? " (it could not send its result)" : ""));
            } else if (!answered[k]) {
                drain();  // it sent before it exited: the message is in the queue
                if (!answered[k] && !failure) {
                    failure.emplace(k, who(k, pids_[k]) + " exited without sending its result" +
                                           (broken.empty() ? "" : ": " + broken));
                }
            }
        }
        if (!failure && options_.timeout.count() > 0 && std::chrono::steady_clock::now() - start >= options_.timeout) {
            for (unsigned k = 0; k < workers_; ++k) {
                if (!reaped_[k] || !answered[k]) {
                    failure.emplace(k, who(k, pids_[k]) + " did not finish within " +
                                           std::to_string(options_.timeout.count()) +
                                           " ms and was killed with SIGKILL");
                    break;
                }
            }
        }
        if (progress) {
            backoff.reset();
        } else if (!failure) {
            // Children send their result just before they exit: sleep until one
            // ends, waking at least every 100 ms (and at the deadline) to look again.
            auto longest = std::chrono::milliseconds(100);
            if (options_.timeout.count() > 0) {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    options_.timeout - (std::chrono::steady_clock::now() - start));
                longest = std::clamp(left, std::chrono::milliseconds(1), longest);
            }
            wait_for_children(backoff, longest);
        }
    }
    if (failure) {
        abort_all();  // stop the others; every child is reaped before we throw
        throw WorkerError(failure->first, failure->second);
    }
}

void ProcessRun::abort_all() noexcept {
    ipc::kill_and_reap(parent_, pids_, reaped_);
}

}  // namespace detail
}  // namespace corelab
