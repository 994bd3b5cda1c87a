// Implementation of corelab/children.hpp: the one place that forks, the
// table of children the Ctrl-C cleanup kills (fixed slots and atomics: a
// signal handler may not allocate), pidfds, reaping and the words for a death.
#include "corelab/children.hpp"

#include <dirent.h>       // opendir, readdir (/proc/self/task)
#include <fcntl.h>        // fcntl(FD_CLOEXEC)
#include <signal.h>       // kill, signal, SIGKILL
#include <sys/prctl.h>    // prctl(PR_SET_PDEATHSIG)
#include <sys/syscall.h>  // SYS_pidfd_open
#include <sys/wait.h>     // waitpid
#include <unistd.h>       // fork, getpid, getppid, close, _exit

#include <algorithm>  // std::min
#include <atomic>     // std::atomic
#include <cerrno>     // errno
#include <cstdio>     // std::fflush, std::setvbuf
#include <cstring>    // std::strerror, std::strlen, std::memcpy, sigabbrev_np
#include <exception>  // std::current_exception, std::rethrow_exception
#include <iostream>   // std::cout, std::cerr, std::clog (flushed before a fork)

#include "corelab/ipc/names.hpp"  // install_signal_cleanup, set_signal_cleanup_hook, HoldSignals

namespace corelab {
namespace {

// Threads a process may run and still fork safely: itself (and, under
// ThreadSanitizer, the sanitizer's own background thread).
#if defined(__SANITIZE_THREAD__)
constexpr unsigned allowed_threads = 2;
#else
constexpr unsigned allowed_threads = 1;
#endif

// One tracked child. state: 0 free, 1 being written, 2 in use.
struct ChildSlot {
    std::atomic<int> state{0};
    pid_t owner = 0;
    pid_t pid = 0;
};
ChildSlot g_children[1024];

// The signal cleanup's first step: only async-signal-safe calls (kill, waitpid).
void kill_tracked_children() noexcept {
    const pid_t self = ::getpid();
    for (ChildSlot& c : g_children) {
        if (c.state.load(std::memory_order_acquire) == 2 && c.owner == self) ::kill(c.pid, SIGKILL);
    }
    for (ChildSlot& c : g_children) {
        if (c.state.load(std::memory_order_acquire) == 2 && c.owner == self) {
            while (::waitpid(c.pid, nullptr, 0) < 0 && errno == EINTR) {
            }
        }
    }
}

void track_child(pid_t child) {
    for (ChildSlot& s : g_children) {
        int expected = 0;
        if (s.state.compare_exchange_strong(expected, 1, std::memory_order_acquire)) {
            s.owner = ::getpid();
            s.pid = child;
            s.state.store(2, std::memory_order_release);
            return;
        }
    }
    throw Error("too many worker processes at once (" + std::to_string(std::size(g_children)) + ")", About::workers);
}

void untrack_child(pid_t child) noexcept {
    const pid_t self = ::getpid();
    for (ChildSlot& s : g_children) {
        if (s.state.load(std::memory_order_acquire) == 2 && s.owner == self && s.pid == child) {
            s.state.store(0, std::memory_order_release);
            return;
        }
    }
}

void reap_now(pid_t pid) noexcept {
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
}

}  // namespace

void flush_stdio() noexcept {
    try {
        std::cout.flush();  // their own buffers, where sync_with_stdio(false) gave them one
        std::cerr.flush();
        std::clog.flush();
    } catch (...) {  // a stream set to throw on failure: what stdio holds still goes out
    }
    std::fflush(nullptr);  // every FILE: stdout, stderr and those the program opened
}

unsigned live_threads() {
    DIR* dir = ::opendir("/proc/self/task");
    if (dir == nullptr) return 0;
    unsigned count = 0;
    while (const dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] != '.') ++count;
    }
    ::closedir(dir);
    return count;
}

std::string signal_name(int sig) {
    if (const char* abbrev = ::sigabbrev_np(sig)) return std::string("SIG") + abbrev;
    return "signal " + std::to_string(sig);
}

std::string worker_name(unsigned worker, pid_t pid) {
    return "worker " + std::to_string(worker) + " (pid " + std::to_string(pid) + ")";
}

std::string describe_end(unsigned worker, pid_t pid, int status, const std::string& doing) {
    if (WIFSIGNALED(status))
        return worker_name(worker, pid) + " was killed by " + signal_name(WTERMSIG(status)) + doing;
    const int code = WEXITSTATUS(status);
    return worker_name(worker, pid) + " exited with status " + std::to_string(code) + doing +
           (code == exit_could_not_send ? " (it could not send its results)" : "");
}

std::string describe_timeout(const std::string& what, std::chrono::milliseconds timeout, const std::string& running) {
    return what + " did not finish within " + std::to_string(timeout.count()) + " ms" +
           (running.empty() ? "" : ": " + running) + "; every worker was killed with SIGKILL";
}

ChildError ChildError::of(const char* message) noexcept {
    ChildError e;
    std::size_t n = std::strlen(message);
    if (n > limit) {
        std::memcpy(e.text, message, limit - 3);
        std::memcpy(e.text + limit - 3, "...", 3);
        n = limit;
    } else {
        std::memcpy(e.text, message, n);
    }
    e.size = static_cast<std::uint32_t>(n);
    return e;
}

ChildError ChildError::current() noexcept {
    try {
        std::rethrow_exception(std::current_exception());
    } catch (const std::exception& e) {
        return of(e.what());
    } catch (...) {
        return of("an exception that is not a std::exception");
    }
}

std::string ChildError::str() const {
    return std::string(text, std::min<std::size_t>(size, limit));
}

Children::Children(unsigned count, std::string instead, About about)
    : instead_(std::move(instead)),
      about_(about),
      parent_(::getpid()),
      pids_(count, 0),
      pidfds_(count, -1),
      reaped_(count, false) {
    check_threads();
    ipc::set_signal_cleanup_hook(kill_tracked_children);
    ipc::install_signal_cleanup();  // Ctrl-C kills and reaps our children too
}

Children::~Children() {
    if (::getpid() != parent_) return;
    kill_all();
    for (int fd : pidfds_) {
        if (fd >= 0) ::close(fd);
    }
}

void Children::check_threads() const {
    // Forking copies the whole memory of the process but only the thread that
    // calls it: a lock another thread holds stays held forever in the child.
    const unsigned threads = live_threads();
    if (threads > allowed_threads) {
        throw Error("cannot fork worker processes: this process runs " + std::to_string(threads) +
                    " threads, and a forked child would inherit locks held by threads it does not have. " + instead_);
    }
}

void Children::kill_one(unsigned k) noexcept {
    if (::getpid() != parent_ || pids_[k] <= 0 || reaped_[k]) return;
    ::kill(pids_[k], SIGKILL);
    reap_now(pids_[k]);
    reaped_[k] = true;
    untrack_child(pids_[k]);
}

bool Children::all_reaped() const noexcept {
    for (unsigned k = 0; k < size(); ++k) {
        if (pids_[k] > 0 && !reaped_[k]) return false;
    }
    return true;
}

bool Children::start(unsigned k) {
    if (pids_[k] > 0 && !reaped_[k]) throw Error("internal: " + who(k) + " is started again while it runs");
    if (pidfds_[k] >= 0) {  // a new child in a reaped slot: the old one's pidfd goes
        ::close(pidfds_[k]);
        pidfds_[k] = -1;
    }
    flush_stdio();
    pid_t pid = 0;
    {
        // Held until the child is tracked, so the cleanup handler never
        // misses a child it must stop.
        const ipc::HoldSignals hold;
        pid = ::fork();
        if (pid == 0) {
            // in the child: die with the parent, leave Ctrl-C to the parent
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent_) ::_exit(71);  // the parent died before prctl
            ::signal(SIGINT, SIG_IGN);
            ::signal(SIGTERM, SIG_DFL);
            // Line by line from now on: workers share the parent's stdout, and a
            // full buffer written out mid-line would splice another worker's
            // text into the line. A line of up to PIPE_BUF (4096) bytes is one
            // write(2), which a pipe and a file keep whole. The buffer is empty
            // (flushed before the fork), so changing its mode loses nothing.
            // A buffer of our own, not nullptr: glibc 2.41 (Debian 13) then only
            // flips the mode of the buffer already in use and loses the line that
            // meets its end (1 line in 1800, every run); with a new buffer every
            // pointer of the stream is set afresh.
            static char line_buffer[BUFSIZ];  // each child has its own copy
            std::setvbuf(stdout, line_buffer, _IOLBF, sizeof line_buffer);
            for (int& fd : pidfds_) {  // the earlier children are the parent's to watch
                if (fd >= 0) ::close(fd);
                fd = -1;
            }
            return true;  // the mask is restored as `hold` goes
        }
        if (pid > 0) {
            try {
                track_child(pid);
            } catch (...) {
                ::kill(pid, SIGKILL);
                reap_now(pid);
                kill_all();
                throw;
            }
        }
    }
    if (pid < 0) {
        const int err = errno;
        kill_all();
        throw Error("cannot fork worker " + std::to_string(k) + ": " + std::strerror(err) + " (too many processes?)",
                    about_);
    }
    pids_[k] = pid;
    reaped_[k] = false;
    // A descriptor that becomes readable when the child ends (Linux 5.3+).
    pidfds_[k] = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfds_[k] < 0) {
        const int err = errno;
        kill_all();
        throw Error("cannot watch " + who(k) + ": pidfd_open: " + std::strerror(err) +
                    " (the course needs Linux 5.3 or newer)");
    }
    ::fcntl(pidfds_[k], F_SETFD, FD_CLOEXEC);
    return false;
}

void Children::wait(std::vector<pollfd>& fds, std::optional<std::chrono::steady_clock::time_point> deadline) {
    polled_.assign(fds.begin(), fds.end());
    for (unsigned k = 0; k < size(); ++k) {
        if (pids_[k] > 0 && !reaped_[k]) polled_.push_back({pidfds_[k], POLLIN, 0});
    }
    int ms = -1;  // no deadline: until something happens
    if (deadline) {
        const auto left = *deadline - std::chrono::steady_clock::now();
        // rounded up, so that the deadline has passed when poll returns
        const auto left_ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
        ms = static_cast<int>(std::clamp<long long>(left_ms, 0, 1 << 30));
    }
    (void)::poll(polled_.data(), polled_.size(), ms);  // EINTR: the caller looks at everything again
    for (std::size_t i = 0; i < fds.size(); ++i) fds[i].revents = polled_[i].revents;
}

std::optional<int> Children::try_reap(unsigned k) {
    if (pids_[k] <= 0 || reaped_[k]) return std::nullopt;
    int status = 0;
    const pid_t r = ::waitpid(pids_[k], &status, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR)) return std::nullopt;
    const int err = errno;
    reaped_[k] = true;
    untrack_child(pids_[k]);
    if (r < 0) throw Error(who(k) + " could not be waited for: " + std::strerror(err));
    return status;
}

void Children::kill_all() noexcept {
    if (::getpid() != parent_) return;
    for (unsigned k = 0; k < size(); ++k) {
        if (pids_[k] > 0 && !reaped_[k]) ::kill(pids_[k], SIGKILL);
    }
    for (unsigned k = 0; k < size(); ++k) {
        if (pids_[k] <= 0 || reaped_[k]) continue;
        reap_now(pids_[k]);
        reaped_[k] = true;
        untrack_child(pids_[k]);
    }
}

}  // namespace corelab
