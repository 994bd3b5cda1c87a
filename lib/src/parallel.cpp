// Implementation of corelab/parallel.hpp: n_jobs, progress lines, and the
// process backend's shared page, pipes, fork, collect and reap.
#include "corelab/parallel.hpp"

#include <fcntl.h>     // fcntl, O_NONBLOCK
#include <poll.h>      // poll
#include <sched.h>     // sched_getaffinity, CPU_COUNT
#include <signal.h>    // signal(SIGPIPE)
#include <sys/mman.h>  // mmap, munmap
#include <sys/wait.h>  // waitpid
#include <unistd.h>    // fork, pipe, read, write, _exit

#include <cerrno>   // errno
#include <cstdio>   // std::snprintf
#include <cstring>  // std::strerror, std::strlen, sigabbrev_np
#include <limits>   // std::numeric_limits
#include <new>      // placement new
#include <string>   // std::stoi
#include <thread>   // std::thread::hardware_concurrency

#include "corelab/ipc/names.hpp"  // track_child, untrack_child, live_threads, install_signal_cleanup

namespace corelab {

unsigned usable_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) == 0) {
        const int count = CPU_COUNT(&set);
        if (count > 0) return static_cast<unsigned>(count);
    }
    return std::max(1u, std::thread::hardware_concurrency());
}

unsigned resolve_n_jobs(int n_jobs, unsigned cpus) {
    if (n_jobs == 0) {
        throw Error(
            "n_jobs = 0 means no worker at all: give a count (1, 2, ...) or -1 for every CPU, -2 for all "
            "but one (joblib's convention)");
    }
    if (n_jobs > 1024) throw Error("n_jobs = " + std::to_string(n_jobs) + " is more than 1024 workers: give fewer");
    if (n_jobs > 0) return static_cast<unsigned>(n_jobs);
    const long long w = static_cast<long long>(cpus) + 1 + n_jobs;  // -1: all, -2: all but one...
    return static_cast<unsigned>(std::max(1LL, w));
}

int parse_n_jobs(const std::string& text) {
    std::size_t used = 0;
    int n_jobs = 0;
    try {
        n_jobs = std::stoi(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (text.empty() || used != text.size() || n_jobs < -1024 || n_jobs > 1024) {
        throw Error("--jobs takes a whole number from -1024 to 1024, not '" + text + "'");
    }
    if (n_jobs == 0) throw Error("--jobs 0 means no worker: give 1, 2, ... or -1 for every CPU");
    return n_jobs;
}

const char* to_string(Backend backend) noexcept {
    return backend == Backend::processes ? "processes" : "threads";
}

Backend parse_backend(const std::string& text) {
    if (text == "processes") return Backend::processes;
    if (text == "threads") return Backend::threads;
    throw Error("--backend takes processes or threads, not '" + text + "'");
}

Parallel::Parallel(ParallelOptions options)
    : options_(options), workers_(resolve_n_jobs(options.n_jobs, usable_cpus())) {
    if (options_.verbose > 0 && options_.progress == nullptr) throw Error("verbose > 0 needs a progress stream");
    if (options_.timeout.count() < 0) throw Error("a negative timeout has no meaning: give 0 (none) or more");
}

std::string Parallel::name() const {
    return "Parallel(n_jobs=" + std::to_string(options_.n_jobs) + ")";
}

namespace detail {

std::string short_format_time(double t) {
    char text[32];
    if (t > 60) {
        std::snprintf(text, sizeof text, "%4.1fmin", t / 60.0);
    } else {
        std::snprintf(text, sizeof text, "%5.1fs", t);
    }
    return text;
}

Progress::Progress(std::string name, int verbose, std::ostream* out, std::size_t total)
    : name_(std::move(name)), verbose_(verbose), out_(out), total_(total), start_(std::chrono::steady_clock::now()) {}

void Progress::done(std::size_t count) {
    if (verbose_ <= 0) return;
    const std::lock_guard lock(mutex_);
    const std::size_t before = done_;
    done_ += count;
    if (done_ >= total_) return;  // finish() prints the last line
    // joblib's schedule: a line each time the tasks left are a multiple of
    // total // verbose + 1 (a batch may pass several such points: one line)
    const std::size_t frequency = total_ / static_cast<std::size_t>(verbose_) + 1;
    bool due = false;
    for (std::size_t d = before + 1; d <= done_ && !due; ++d) due = (total_ - d) % frequency == 0;
    if (!due) return;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double remaining = elapsed / static_cast<double>(done_) * static_cast<double>(total_ - done_);
    char line[256];
    std::snprintf(line, sizeof line, "[%s]: Done %3zu out of %3zu | elapsed: %s remaining: %s\n", name_.c_str(), done_,
                  total_, short_format_time(elapsed).c_str(), short_format_time(remaining).c_str());
    *out_ << line << std::flush;
}

void Progress::finish() {
    if (verbose_ <= 0) return;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    char line[256];
    std::snprintf(line, sizeof line, "[%s]: Done %3zu out of %3zu | elapsed: %s finished\n", name_.c_str(), total_,
                  total_, short_format_time(elapsed).c_str());
    *out_ << line << std::flush;
}

namespace {

#if defined(__SANITIZE_THREAD__)
constexpr unsigned allowed_threads = 2;  // ThreadSanitizer's own background thread
#else
constexpr unsigned allowed_threads = 1;
#endif

constexpr std::uint64_t idle = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint32_t kind_results = 1, kind_error = 2;

static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "the shared cursor must be a lock-free atomic");

// The shared page: every field on its own cache line.
struct alignas(cache_line) SharedLine {
    std::atomic<std::uint64_t> value;
};
// line 0: the cursor (pushed past the end to cancel); line 1 + k: worker k's task

struct RecordHead {
    std::uint32_t kind = 0;
    std::uint32_t pad = 0;
    std::uint64_t first = 0;
    std::uint64_t count = 0;
    std::uint64_t bytes = 0;
};

std::string signal_name(int sig) {
    if (const char* abbrev = ::sigabbrev_np(sig)) return std::string("SIG") + abbrev;
    return "signal " + std::to_string(sig);
}

std::string who(unsigned k, pid_t pid) {
    return "worker " + std::to_string(k) + " (pid " + std::to_string(pid) + ")";
}

// Writes all of it, or returns false (the parent is gone).
bool write_all(int fd, const void* data, std::size_t size) noexcept {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t w = ::write(fd, p, size);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        size -= static_cast<std::size_t>(w);
    }
    return true;
}

}  // namespace

ProcessMap::ProcessMap(unsigned workers, std::size_t n, const ParallelOptions& options, std::string name)
    : workers_(workers), n_(n), options_(options), name_(std::move(name)), pids_(workers, 0), reaped_(workers, false) {
    // Forking copies the whole memory but only the calling thread: a lock
    // another thread holds would stay held forever in the child.
    const unsigned threads = ipc::live_threads();
    if (threads > allowed_threads) {
        throw Error("cannot fork worker processes: this process runs " + std::to_string(threads) +
                    " threads, and a forked child would inherit locks held by threads it does not have. Use "
                    "Backend::threads, or start the processes before any thread");
    }
    ipc::install_signal_cleanup();  // Ctrl-C kills and reaps our children too
    parent_ = ::getpid();
    page_bytes_ = (1 + workers) * sizeof(SharedLine);
    void* page = ::mmap(nullptr, page_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) throw Error(std::string("cannot map the shared page: ") + std::strerror(errno));
    page_ = page;
    auto* lines = static_cast<SharedLine*>(page_);
    for (unsigned i = 0; i < 1 + workers; ++i) new (&lines[i]) SharedLine{{i >= 1 ? idle : 0}};
    for (unsigned k = 0; k < workers; ++k) {
        int fds[2];
        if (::pipe(fds) != 0) {
            const int err = errno;
            release();
            throw Error(std::string("cannot make a pipe for worker ") + std::to_string(k) + ": " + std::strerror(err) +
                        " (too many open files? use fewer n_jobs)");
        }
        ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
        // a 1 MB pipe (Linux's default limit for users) instead of 64 KB: a large
        // batch then passes in a few hand-offs between worker and parent, not
        // dozens, each of which waits for the scheduler on a busy machine
        ::fcntl(fds[0], F_SETPIPE_SZ, 1 << 20);
        read_fds_.push_back(fds[0]);
        write_fds_.push_back(fds[1]);
    }
}

ProcessMap::~ProcessMap() {
    release();
}

void ProcessMap::release() noexcept {
    if (::getpid() != parent_) return;
    kill_all();
    for (int fd : read_fds_) {
        if (fd >= 0) ::close(fd);
    }
    for (int fd : write_fds_) {
        if (fd >= 0) ::close(fd);
    }
    read_fds_.clear();
    write_fds_.clear();
    if (page_ != nullptr) ::munmap(page_, page_bytes_);
    page_ = nullptr;
}

std::atomic<std::uint64_t>& ProcessMap::slot_task(unsigned k) noexcept {
    return static_cast<SharedLine*>(page_)[1 + k].value;
}

bool ProcessMap::fork_worker(unsigned k) {
    const pid_t pid = ipc::fork_worker_child(k, "(too many processes? use fewer n_jobs)");
    if (pid == 0) {
        ::signal(SIGPIPE, SIG_IGN);  // a write to a closed pipe fails; we _exit then
        worker_ = k;
        // keep only our own write end: the parent sees EOF when we exit
        for (unsigned j = 0; j < workers_; ++j) {
            ::close(read_fds_[j]);
            if (j != k) ::close(write_fds_[j]);
        }
        return true;
    }
    pids_[k] = pid;
    ::close(write_fds_[k]);  // the parent only reads
    write_fds_[k] = -1;
    return false;
}

Batcher ProcessMap::batcher(std::chrono::nanoseconds target) noexcept {
    return Batcher(static_cast<SharedLine*>(page_)[0].value, n_, workers_, options_.batch_size, target);
}

void ProcessMap::write_record(std::uint32_t kind, std::uint64_t first, std::uint64_t count, const void* bytes,
                              std::size_t size) noexcept {
    const RecordHead head{kind, 0, first, count, size};
    const int fd = write_fds_[worker_];
    if (!write_all(fd, &head, sizeof head) || !write_all(fd, bytes, size)) ::_exit(70);
}

void ProcessMap::send_results(std::size_t first, std::size_t count, const void* bytes, std::size_t size) noexcept {
    slot_task(worker_).store(idle, std::memory_order_relaxed);
    write_record(kind_results, first, count, bytes, size);
}

void ProcessMap::send_error_and_exit(std::size_t task, const char* message) noexcept {
    write_record(kind_error, task, 0, message, std::strlen(message));
    child_exit();
}

void ProcessMap::child_exit() noexcept {
    ::close(write_fds_[worker_]);
    ::_exit(0);  // never back into the caller's code, no destructors, no atexit
}

void ProcessMap::collect(const BatchSink& on_batch, Progress* progress) {
    struct Failure {
        unsigned worker;
        std::optional<std::size_t> task;
        std::string message;
    };
    std::optional<Failure> failure;
    std::vector<std::vector<char>> buffers(workers_);
    std::vector<std::size_t> used(workers_, 0);
    std::vector<bool> eof(workers_, false);
    std::size_t received = 0;
    const auto start = std::chrono::steady_clock::now();
    const auto held = [&](unsigned k) -> std::optional<std::size_t> {
        const std::uint64_t t = slot_task(k).load(std::memory_order_relaxed);
        if (t == idle) return std::nullopt;
        return static_cast<std::size_t>(t);
    };

    // take the complete records at the front of worker k's buffer
    const auto parse = [&](unsigned k) {
        std::vector<char>& buf = buffers[k];
        std::size_t pos = 0;
        while (!failure && used[k] - pos >= sizeof(RecordHead)) {
            RecordHead head;
            std::memcpy(&head, buf.data() + pos, sizeof head);
            if (used[k] - pos - sizeof head < head.bytes) {
                if (buf.size() < sizeof head + head.bytes) buf.resize(sizeof head + head.bytes);
                break;
            }
            const char* body = buf.data() + pos + sizeof head;
            if (head.kind == kind_error) {
                const std::string what(body, head.bytes);
                failure = Failure{
                    k, head.first,
                    "task " + std::to_string(head.first) + " raised: " + what + " (in " + who(k, pids_[k]) + ")"};
            } else if (head.kind == kind_results && head.first + head.count <= n_) {
                on_batch(head.first, head.count, body, head.bytes);
                received += head.count;
                if (progress != nullptr) progress->done(head.count);
            } else {
                failure = Failure{k, std::nullopt, who(k, pids_[k]) + " sent a record that makes no sense"};
            }
            pos += sizeof head + head.bytes;
        }
        if (pos > 0) {
            std::memmove(buf.data(), buf.data() + pos, used[k] - pos);
            used[k] -= pos;
        }
    };

    std::vector<pollfd> fds;
    std::vector<unsigned> owner;
    for (;;) {
        fds.clear();
        owner.clear();
        for (unsigned k = 0; k < workers_; ++k) {
            if (!eof[k]) {
                fds.push_back({read_fds_[k], POLLIN, 0});
                owner.push_back(k);
            }
        }
        // wait at most 10 ms, then look at the children and the clock anyway
        if (!fds.empty()) {
            if (::poll(fds.data(), fds.size(), 10) < 0 && errno != EINTR) {
                failure = Failure{0, std::nullopt, std::string("poll failed: ") + std::strerror(errno)};
            }
        } else {
            ::usleep(1000);
        }
        for (std::size_t i = 0; i < fds.size() && !failure; ++i) {
            if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
            const unsigned k = owner[i];
            std::vector<char>& buf = buffers[k];
            if (buf.size() < used[k] + (1 << 20)) buf.resize(used[k] + (1 << 20));  // a pipeful at once
            const ssize_t r = ::read(read_fds_[k], buf.data() + used[k], buf.size() - used[k]);
            if (r > 0) {
                used[k] += static_cast<std::size_t>(r);
                parse(k);
            } else if (r == 0) {
                eof[k] = true;  // it exited (or closed the pipe): waitpid says how
            } else if (errno != EAGAIN && errno != EINTR) {
                failure = Failure{k, std::nullopt, who(k, pids_[k]) + ": read failed: " + std::strerror(errno)};
            }
        }
        // reap every child that ended, and say how it ended
        bool all_done = true;
        for (unsigned k = 0; k < workers_ && !failure; ++k) {
            if (reaped_[k]) continue;
            int status = 0;
            const pid_t r = ::waitpid(pids_[k], &status, WNOHANG);
            if (r == 0 || (r < 0 && errno == EINTR)) {
                all_done = false;
                continue;
            }
            reaped_[k] = true;
            ipc::untrack_child(pids_[k]);
            const auto task = held(k);
            const std::string doing = task ? " while running task " + std::to_string(*task) : " between tasks";
            if (r < 0) {
                failure = Failure{k, task, who(k, pids_[k]) + " could not be waited for: " + std::strerror(errno)};
            } else if (WIFSIGNALED(status)) {
                failure =
                    Failure{k, task, who(k, pids_[k]) + " was killed by " + signal_name(WTERMSIG(status)) + doing};
            } else if (WEXITSTATUS(status) != 0) {
                failure = Failure{k, task,
                                  who(k, pids_[k]) + " exited with status " + std::to_string(WEXITSTATUS(status)) +
                                      doing + (WEXITSTATUS(status) == 70 ? " (it could not send its results)" : "")};
            } else if (task) {  // status 0 in the middle of a task: the task ended the process (exit(0))
                failure = Failure{k, task,
                                  who(k, pids_[k]) + " exited with status 0" + doing +
                                      ", before sending its results: does the task call exit()?"};
            }
        }
        if (failure) break;
        bool all_eof = true;
        for (unsigned k = 0; k < workers_; ++k) all_eof = all_eof && eof[k];
        if (all_done && all_eof) break;
        if (options_.timeout.count() > 0 && std::chrono::steady_clock::now() - start >= options_.timeout) {
            std::string running;
            unsigned first_worker = 0;
            std::optional<std::size_t> first_task;
            for (unsigned k = 0; k < workers_; ++k) {
                if (auto t = held(k); t && !reaped_[k]) {
                    if (!first_task) {
                        first_worker = k;
                        first_task = t;
                    }
                    running +=
                        (running.empty() ? "" : ", ") + who(k, pids_[k]) + " was running task " + std::to_string(*t);
                }
            }
            failure = Failure{first_worker, first_task,
                              name_ + " did not finish within " + std::to_string(options_.timeout.count()) + " ms" +
                                  (running.empty() ? "" : ": " + running) + "; every worker was killed with SIGKILL"};
            break;
        }
    }
    if (!failure && received != n_) {
        failure = Failure{0, std::nullopt,
                          "the workers ended but only " + std::to_string(received) + " of " + std::to_string(n_) +
                              " results arrived"};
    }
    if (failure) {
        static_cast<SharedLine*>(page_)[0].value.store(n_);  // cancel: nobody takes another batch
        kill_all();                                          // stop the others; every child is reaped before we throw
        if (failure->task) throw TaskError(failure->worker, *failure->task, failure->message);
        throw WorkerError(failure->worker, failure->message);
    }
}

void ProcessMap::kill_all() noexcept {
    ipc::kill_and_reap(parent_, pids_, reaped_);
}

}  // namespace detail
}  // namespace corelab
