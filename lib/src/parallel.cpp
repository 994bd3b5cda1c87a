// Implementation of corelab/parallel.hpp: n_jobs, progress lines, and the
// process backend's shared page, pipes and collect, on corelab::Children.
#include "corelab/parallel.hpp"

#include <fcntl.h>       // fcntl, O_NONBLOCK, O_CLOEXEC
#include <poll.h>        // pollfd
#include <signal.h>      // signal(SIGPIPE)
#include <sys/mman.h>    // mmap, munmap
#include <sys/socket.h>  // socketpair, send, MSG_NOSIGNAL (a pool's command sockets)
#include <sys/uio.h>     // writev
#include <sys/wait.h>    // WIFEXITED, WEXITSTATUS
#include <unistd.h>      // pipe2, read, _exit, getpid

#include <cerrno>   // errno
#include <cstdio>   // std::snprintf
#include <cstring>  // std::strerror, std::strlen
#include <limits>   // std::numeric_limits
#include <new>      // placement new
#include <string>   // std::stoi

#include "corelab/cache_line.hpp"  // cache_line: each field of the shared page on a line of its own
#include "corelab/children.hpp"    // Children, flush_stdio, describe_end, ChildError
#include "corelab/cpu_info.hpp"    // usable_cpus: n_jobs = -1
#include "corelab/detail/fd.hpp"   // write_full: a call's inputs into a memfd

namespace corelab {

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
        throw Error("n_jobs takes a whole number from -1024 to 1024, not '" + text + "'", About::jobs);
    }
    if (n_jobs == 0) throw Error("n_jobs = 0 means no worker: give 1, 2, ... or -1 for every CPU", About::jobs);
    return n_jobs;
}

const char* to_string(Backend backend) noexcept {
    return backend == Backend::processes ? "processes" : "threads";
}

Backend parse_backend(const std::string& text) {
    if (text == "processes") return Backend::processes;
    if (text == "threads") return Backend::threads;
    throw Error("the backend is processes or threads, not '" + text + "'", About::backend);
}

Parallel::Parallel(ParallelOptions options)
    : options_(options), workers_(resolve_n_jobs(options.n_jobs, usable_cpus())) {
    if (options_.verbose > 0 && options_.progress == nullptr) throw Error("verbose > 0 needs a progress stream");
    if (options_.timeout.count() < 0) throw Error("a negative timeout has no meaning: give 0 (none) or more");
    if (options_.task_timeout.count() < 0) throw Error("a negative task_timeout has no meaning: give 0 (none) or more");
    if (options_.idle_timeout.count() <= 0)
        throw Error("idle_timeout is how long an idle pool worker waits for the next call: give more than 0 ms");
}

Parallel::Parallel(const Parallel& other) : options_(other.options_), workers_(other.workers_) {}

Parallel& Parallel::operator=(const Parallel& other) {
    if (this != &other) {
        close();
        options_ = other.options_;
        workers_ = other.workers_;
    }
    return *this;
}

Parallel::Parallel(Parallel&&) noexcept = default;

Parallel& Parallel::operator=(Parallel&& other) noexcept {
    if (this != &other) {
        close();
        options_ = other.options_;
        workers_ = other.workers_;
        pool_ = std::move(other.pool_);
    }
    return *this;
}

Parallel::~Parallel() {
    close();
}

void Parallel::close() noexcept {
    if (pool_) {
        pool_->close();
        pool_.reset();
    }
}

detail::ProcessPool& Parallel::pool() {
    if (pool_ && pool_->foreign()) pool_.reset();  // a fork of the pool's owner: the workers are not ours
    if (!pool_) pool_ = std::make_unique<detail::ProcessPool>(workers_, options_, name(), true);
    return *pool_;
}

std::vector<pid_t> Parallel::worker_pids() const {
    if (!pool_ || pool_->foreign()) return {};
    return pool_->live_pids();
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

constexpr std::uint64_t idle = std::numeric_limits<std::uint64_t>::max();
// a batch's results; a task's error; the end of a worker's results (sent last)
constexpr std::uint32_t kind_results = 1, kind_error = 2, kind_end = 3;

static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "the shared cursor must be a lock-free atomic");

// The shared page: every field on its own cache line.
struct alignas(cache_line) SharedLine {
    std::atomic<std::uint64_t> value;
};
// line 0: the cursor (pushed past the end to cancel); line 1 + k: worker k's task

struct RecordHead {
    std::uint32_t kind = 0;
    std::int32_t pid = 0;  // the sender: a copy of a worker (forked by a task) is told apart
    std::uint64_t first = 0;
    std::uint64_t count = 0;
    std::uint64_t bytes = 0;
};

// Writes the head and the body, or returns false (the parent is gone). One
// writev: a record of up to PIPE_BUF bytes then arrives whole, even when a
// copy of the worker writes into the same pipe.
bool write_record_to(int fd, const RecordHead& head, const void* body, std::size_t size) noexcept {
    iovec parts[2] = {{const_cast<RecordHead*>(&head), sizeof head}, {const_cast<void*>(body), size}};
    std::size_t first = 0;  // the first part not yet written whole
    while (first < 2) {
        if (parts[first].iov_len == 0) {
            ++first;
            continue;
        }
        const ssize_t w = ::writev(fd, parts + first, static_cast<int>(2 - first));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        for (auto done = static_cast<std::size_t>(w); done > 0;) {  // a short write: skip what went out
            const std::size_t step = std::min(done, parts[first].iov_len);
            parts[first].iov_base = static_cast<char*>(parts[first].iov_base) + step;
            parts[first].iov_len -= step;
            done -= step;
            if (parts[first].iov_len == 0) ++first;
        }
    }
    return true;
}

}  // namespace

ProcessMap::ProcessMap(unsigned workers, std::size_t n, const ParallelOptions& options, std::string name)
    : workers_(workers),
      n_(n),
      options_(options),
      name_(std::move(name)),
      children_(workers, "Use Backend::threads, or start the processes before any thread", About::jobs) {
    parent_ = ::getpid();
    page_bytes_ = (1 + workers) * sizeof(SharedLine);
    void* page = ::mmap(nullptr, page_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) throw Error(std::string("cannot map the shared page: ") + std::strerror(errno));
    page_ = page;
    auto* lines = static_cast<SharedLine*>(page_);
    for (unsigned i = 0; i < 1 + workers; ++i) new (&lines[i]) SharedLine{{i >= 1 ? idle : 0}};
    for (unsigned k = 0; k < workers; ++k) {
        // close-on-exec: a program a task starts (system("... &"), a daemon)
        // must not hold the pipe open, nor write into it
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            const int err = errno;
            release();
            throw Error(std::string("cannot make a pipe for worker ") + std::to_string(k) + ": " + std::strerror(err) +
                            " (too many open files?)",
                        About::jobs);
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
    children_.kill_all();
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
    if (children_.start(k)) {
        ::signal(SIGPIPE, SIG_IGN);  // a write to a closed pipe fails; we _exit then
        worker_ = k;
        // keep only our own write end
        for (unsigned j = 0; j < workers_; ++j) {
            ::close(read_fds_[j]);
            if (j != k) ::close(write_fds_[j]);
        }
        return true;
    }
    ::close(write_fds_[k]);  // the parent only reads
    write_fds_[k] = -1;
    return false;
}

Batcher ProcessMap::batcher(std::chrono::nanoseconds target) noexcept {
    return Batcher(static_cast<SharedLine*>(page_)[0].value, n_, workers_, options_.batch_size, target);
}

void ProcessMap::write_record(std::uint32_t kind, std::uint64_t first, std::uint64_t count, const void* bytes,
                              std::size_t size) noexcept {
    // getpid() now, not the worker's pid saved at the fork: a copy must say it is one
    const RecordHead head{kind, static_cast<std::int32_t>(::getpid()), first, count, size};
    if (!write_record_to(write_fds_[worker_], head, bytes, size)) {
        flush_stdio();
        ::_exit(exit_could_not_send);
    }
}

void ProcessMap::send_results(std::size_t first, std::size_t count, const void* bytes, std::size_t size) noexcept {
    slot_task(worker_).store(idle, std::memory_order_relaxed);
    write_record(kind_results, first, count, bytes, size);
}

void ProcessMap::send_error_and_exit(std::size_t task, const char* message) noexcept {
    const ChildError error = ChildError::of(message);
    write_record(kind_error, task, 0, error.text, error.size);
    child_exit();
}

void ProcessMap::child_exit() noexcept {
    flush_stdio();                             // _exit flushes nothing: what the tasks printed would be lost
    write_record(kind_end, 0, 0, nullptr, 0);  // the parent knows we are done from this and our exit
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
    std::vector<bool> ended(workers_, false);  // its end record arrived
    std::vector<bool> eof(workers_, false);    // every holder of its pipe closed it
    std::vector<bool> seen(n_, false);         // batches that arrived, by their first task
    std::size_t received = 0;
    const auto start = std::chrono::steady_clock::now();
    const auto held = [&](unsigned k) -> std::optional<std::size_t> {
        const std::uint64_t t = slot_task(k).load(std::memory_order_relaxed);
        if (t == idle) return std::nullopt;
        return static_cast<std::size_t>(t);
    };

    // a record that another process wrote into worker k's pipe: a copy of
    // the worker that a task forked, which went on running the worker's loop
    const auto from_a_copy = [&](unsigned k, const RecordHead& head, std::optional<std::size_t> task) {
        const std::string sent = head.kind == kind_end ? "the end of the worker's results"
                                                       : "a result for task " + std::to_string(head.first);
        return Failure{k, task,
                       "pid " + std::to_string(head.pid) + ", a copy of " + children_.who(k) + ", sent " + sent +
                           ": did a task fork without exec? (a forked child that neither execs nor _exits runs on "
                           "in the worker's loop)"};
    };

    // take the complete records at the front of worker k's buffer
    const auto parse = [&](unsigned k) {
        std::vector<char>& buf = buffers[k];
        std::size_t pos = 0;
        while (!failure && used[k] - pos >= sizeof(RecordHead)) {
            RecordHead head;
            std::memcpy(&head, buf.data() + pos, sizeof head);
            const bool in_range = head.first <= n_ && head.count <= n_ - head.first;
            if (head.kind < kind_results || head.kind > kind_end || !in_range) {
                failure = Failure{k, std::nullopt, children_.who(k) + " sent a record that makes no sense"};
                break;
            }
            if (used[k] - pos - sizeof head < head.bytes) {
                if (buf.size() < sizeof head + head.bytes) buf.resize(sizeof head + head.bytes);
                break;
            }
            const char* body = buf.data() + pos + sizeof head;
            const std::optional<std::size_t> task =
                head.kind == kind_end ? held(k) : std::optional<std::size_t>(head.first);
            if (head.pid != children_.pid(k)) {
                failure = from_a_copy(k, head, task);
            } else if (head.kind == kind_error) {
                const std::string what(body, head.bytes);
                failure = Failure{
                    k, head.first,
                    "task " + std::to_string(head.first) + " raised: " + what + " (in " + children_.who(k) + ")"};
            } else if (head.kind == kind_end) {
                ended[k] = true;
            } else {
                // the cursor hands out each batch once: a second one (from the
                // same pid: the pid check has not seen a copy) cannot be the worker's
                if (head.count > 0 && head.first < n_ && seen[head.first]) {
                    failure = Failure{k, head.first,
                                      "task " + std::to_string(head.first) + " reported twice (the second time by " +
                                          children_.who(k) + "): did a task fork without exec?"};
                    break;
                }
                if (head.first < n_) seen[head.first] = true;
                on_batch(head.first, head.count, body, head.bytes);
                received += head.count;
                if (progress != nullptr) progress->done(head.count);
            }
            pos += sizeof head + head.bytes;
        }
        if (pos > 0) {
            std::memmove(buf.data(), buf.data() + pos, used[k] - pos);
            used[k] -= pos;
        }
    };

    // one read from worker k's pipe; false when there was nothing to read
    const auto read_some = [&](unsigned k) {
        std::vector<char>& buf = buffers[k];
        if (buf.size() < used[k] + (1 << 20)) buf.resize(used[k] + (1 << 20));  // a pipeful at once
        const ssize_t r = ::read(read_fds_[k], buf.data() + used[k], buf.size() - used[k]);
        if (r > 0) {
            used[k] += static_cast<std::size_t>(r);
            parse(k);
            return true;
        }
        if (r == 0) {
            eof[k] = true;
        } else if (errno != EAGAIN && errno != EINTR) {
            failure = Failure{k, std::nullopt, children_.who(k) + ": read failed: " + std::strerror(errno)};
        }
        return r < 0 && errno == EINTR;
    };

    std::optional<std::chrono::steady_clock::time_point> deadline;
    if (options_.timeout.count() > 0) deadline = start + options_.timeout;
    std::vector<pollfd> fds;
    std::vector<unsigned> owner;  // the worker whose pipe fds[i] is
    for (;;) {
        // sleep until a pipe has data or a child ends (Children watches its
        // pidfd), at most until the deadline
        fds.clear();
        owner.clear();
        for (unsigned k = 0; k < workers_; ++k) {
            if (children_.reaped(k) || eof[k]) continue;
            fds.push_back({read_fds_[k], POLLIN, 0});
            owner.push_back(k);
        }
        children_.wait(fds, deadline);
        for (std::size_t i = 0; i < fds.size() && !failure; ++i) {
            if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) (void)read_some(owner[i]);
        }
        // reap every child that ended, take what it left in its pipe, and say how it ended
        for (unsigned k = 0; k < workers_ && !failure; ++k) {
            std::optional<int> status;
            try {
                status = children_.try_reap(k);
            } catch (const Error& e) {
                failure = Failure{k, held(k), e.what()};
                break;
            }
            if (!status) continue;
            // all it wrote is in the pipe now: read it without waiting for the
            // pipe's end, which a process the task left behind may hold off
            while (!failure && !eof[k] && read_some(k)) {
            }
            const auto task = held(k);
            const std::string doing = task ? " while running task " + std::to_string(*task) : " between tasks";
            if (failure) {
                break;
            } else if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
                failure = Failure{k, task, describe_end(k, children_.pid(k), *status, doing)};
            } else if (!ended[k]) {
                failure = Failure{k, task,
                                  describe_end(k, children_.pid(k), *status, doing) +
                                      (task ? ", before returning its result" : ", before it sent all its results")};
            }
        }
        if (failure || children_.all_reaped()) break;
        if (deadline && std::chrono::steady_clock::now() >= *deadline) {
            std::string running;
            unsigned first_worker = 0;
            std::optional<std::size_t> first_task;
            for (unsigned k = 0; k < workers_; ++k) {
                if (auto t = held(k); t && !children_.reaped(k)) {
                    if (!first_task) {
                        first_worker = k;
                        first_task = t;
                    }
                    running +=
                        (running.empty() ? "" : ", ") + children_.who(k) + " was running task " + std::to_string(*t);
                }
            }
            failure = Failure{first_worker, first_task, describe_timeout(name_, options_.timeout, running)};
            break;
        }
    }
    if (!failure && received != n_) {
        // every worker ended with its end record, yet tasks are missing: a
        // process that is not a worker took them from the cursor
        failure = Failure{0, std::nullopt,
                          "the workers ended but only " + std::to_string(received) + " of " + std::to_string(n_) +
                              " results arrived (the others were taken by a copy of a worker: did a task fork "
                              "without exec?)"};
    }
    if (failure) {
        static_cast<SharedLine*>(page_)[0].value.store(n_);  // cancel: nobody takes another batch
        kill_all();                                          // stop the others; every child is reaped before we throw
        if (failure->task) throw TaskError(failure->worker, *failure->task, failure->message);
        throw WorkerError(failure->worker, failure->message);
    }
}

void ProcessMap::kill_all() noexcept {
    children_.kill_all();
}

}  // namespace detail
}  // namespace corelab

// ------------------------------------------------------------------ streamed calls and the pool

namespace corelab::detail {
namespace {

constexpr std::uint32_t kind_call = 10, kind_quit = 11;  // parent -> pool worker

// A call record's head, as a pool worker reads it from its command socket.
struct CallHead {
    std::uint32_t kind = kind_call;
    std::uint32_t input_kind = 0;
    std::uint64_t call = 0;
    std::uint64_t entry = 0;  // a PoolEntry: the same address in the forked worker
    std::uint64_t n = 0;
    std::uint64_t fixed = 0;
    std::uint32_t workers = 0;
    std::uint32_t timed = 0;
    std::uint64_t closure_bytes = 0;
    std::uint64_t input_bytes = 0;
    std::uint32_t in_memfd = 0;  // the inputs are in a memfd sent with this head (SCM_RIGHTS), not after it
    std::uint32_t unused = 0;
};

// A worker's read of the next record from its command socket: false at its end or on an
// error (the worker then leaves), never a throw, unlike detail::read_full.
bool receive_full(int fd, void* to, std::size_t size) noexcept {
    auto* p = static_cast<char*>(to);
    while (size > 0) {
        const ssize_t r = ::read(fd, p, size);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        p += r;
        size -= static_cast<std::size_t>(r);
    }
    return true;
}

bool send_full(int fd, const void* from, std::size_t size, int flags) noexcept {
    const auto* p = static_cast<const char*>(from);
    while (size > 0) {
        const ssize_t w = ::send(fd, p, size, MSG_NOSIGNAL | flags);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        size -= static_cast<std::size_t>(w);
    }
    return true;
}

std::int64_t now_ns() noexcept {
    return std::chrono::steady_clock::now().time_since_epoch().count();
}

// Inputs of this size or more go through a memfd that every worker maps,
// smaller ones through the socket: measured side by side (2 live workers,
// each reading every byte; 2 vCPUs): 64 KB socket 0.049 ms, memfd 0.112 ms;
// 256 KB 0.43 against 0.34 ms; 1 MB 1.64 against 1.10 ms; 8 MB 12.3 against
// 8.4 ms; 80 MB 373 against 316 ms. The socket copies the bytes twice for
// each worker, the memfd once for all of them.
constexpr std::size_t memfd_from = 128 * 1024;

// Reads a call head, taking the descriptor that may come with it.
bool receive_head(int fd, CallHead& head, int& passed) noexcept {
    auto* p = reinterpret_cast<char*>(&head);
    std::size_t left = sizeof head;
    while (left > 0) {
        iovec part{p, left};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
        msghdr message{};
        message.msg_iov = &part;
        message.msg_iovlen = 1;
        message.msg_control = control;
        message.msg_controllen = sizeof control;
        const ssize_t r = ::recvmsg(fd, &message, MSG_CMSG_CLOEXEC);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                std::memcpy(&passed, CMSG_DATA(c), sizeof passed);
        }
        p += r;
        left -= static_cast<std::size_t>(r);
    }
    return true;
}

// Sends `bytes` (a call head first) with descriptor `fd` attached.
bool send_with_fd(int sock, const std::string& bytes, int fd) noexcept {
    iovec part{const_cast<char*>(bytes.data()), bytes.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&message);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ssize_t w = 0;
    do {
        w = ::sendmsg(sock, &message, MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    if (w <= 0) return false;
    return send_full(sock, bytes.data() + w, bytes.size() - static_cast<std::size_t>(w), 0);
}

}  // namespace

std::string describe_slow_task(std::size_t task, std::chrono::nanoseconds took, std::chrono::milliseconds limit,
                               const std::string& where) {
    return "task " + std::to_string(task) + " took " +
           std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()) + " ms, longer than " +
           std::to_string(limit.count()) + " ms (the per-task timeout), in " + where;
}

// ---- the worker's side

void WorkerSide::begin(std::uint64_t call, std::size_t n, unsigned workers, std::size_t fixed, bool timed) noexcept {
    n_ = n;
    workers_ = workers;
    fixed_ = fixed;
    timed_ = timed;
    line_.task.store(idle_slot, std::memory_order_relaxed);
    line_.batch_first.store(0, std::memory_order_relaxed);
    line_.batch_end.store(0, std::memory_order_relaxed);
    line_.call.store(call, std::memory_order_release);
}

void WorkerSide::write(std::uint32_t kind, std::uint64_t first, std::uint64_t count, const void* bytes,
                       std::size_t size) noexcept {
    const RecordHead head{kind, static_cast<std::int32_t>(::getpid()), first, count, size};
    if (!write_record_to(fd_, head, bytes, size)) {
        flush_stdio();
        ::_exit(exit_could_not_send);
    }
}

void WorkerSide::send_results(std::size_t first, std::size_t count, const void* bytes, std::size_t size) noexcept {
    write(kind_results, first, count, bytes, size);
    // after the write: killed in between, the parent has them and skips them
    line_.task.store(idle_slot, std::memory_order_relaxed);
    line_.batch_first.store(first + count, std::memory_order_relaxed);
}

void WorkerSide::send_error(std::size_t task, const char* message) noexcept {
    const ChildError error = ChildError::of(message);
    write(kind_error, task, 0, error.text, error.size);
    line_.task.store(idle_slot, std::memory_order_relaxed);
    line_.batch_first.store(task + 1, std::memory_order_relaxed);
}

void WorkerSide::send_done() noexcept {
    write(kind_end, 0, 0, nullptr, 0);
}

// ---- the parent's side

ProcessPool::ProcessPool(unsigned workers, const ParallelOptions& options, std::string name, bool persistent)
    : workers_(workers),
      options_(options),
      name_(std::move(name)),
      persistent_(persistent),
      owner_(::getpid()),
      children_(workers, "Use Backend::threads, or start the processes before any thread", About::jobs),
      slots_(workers) {
    page_bytes_ = (1 + workers) * sizeof(SlotLine);
    void* page = ::mmap(nullptr, page_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) throw Error(std::string("cannot map the shared page: ") + std::strerror(errno));
    page_ = page;
    auto* lines = static_cast<SlotLine*>(page_);
    for (unsigned i = 0; i < 1 + workers; ++i) {
        new (&lines[i]) SlotLine{};
        lines[i].task.store(i == 0 ? 0 : idle_slot);  // line 0's `task` is the cursor
    }
}

ProcessPool::~ProcessPool() {
    close();
    if (page_ != nullptr) ::munmap(page_, page_bytes_);
}

bool ProcessPool::foreign() const noexcept {
    return ::getpid() != owner_;
}

SlotLine& ProcessPool::line(unsigned k) noexcept {
    return static_cast<SlotLine*>(page_)[1 + k];
}

std::atomic<std::uint64_t>& ProcessPool::cursor() noexcept {
    return static_cast<SlotLine*>(page_)[0].task;
}

void ProcessPool::close_slot(Slot& s) noexcept {
    if (s.cmd >= 0) ::close(s.cmd);
    if (s.res >= 0) ::close(s.res);
    s.cmd = s.res = -1;
}

void ProcessPool::fork_worker(unsigned k) {
    children_.check_threads();
    Slot& s = slots_[k];
    close_slot(s);  // the last worker's, so the new one does not inherit them
    int res[2];
    if (::pipe2(res, O_CLOEXEC) != 0) {
        throw Error(std::string("cannot make a pipe for worker ") + std::to_string(k) + ": " + std::strerror(errno) +
                        " (too many open files?)",
                    About::jobs);
    }
    ::fcntl(res[0], F_SETFL, ::fcntl(res[0], F_GETFL) | O_NONBLOCK);
    ::fcntl(res[0], F_SETPIPE_SZ, 1 << 20);  // see ProcessMap: a large batch in few hand-offs
    int cmd[2] = {-1, -1};
    if (persistent_ && ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cmd) != 0) {
        const int err = errno;
        ::close(res[0]);
        ::close(res[1]);
        throw Error(std::string("cannot make a socket for worker ") + std::to_string(k) + ": " + std::strerror(err) +
                        " (too many open files?)",
                    About::jobs);
    }
    SlotLine& l = line(k);
    l.task.store(idle_slot);
    l.call.store(0);
    l.batch_first.store(0);
    l.batch_end.store(0);
    bool child = false;
    try {
        child = children_.start(k);
    } catch (...) {
        for (int fd : {res[0], res[1], cmd[0], cmd[1]}) {
            if (fd >= 0) ::close(fd);
        }
        throw;
    }
    if (child) worker_main(k, cmd[1], res[1]);
    ::close(res[1]);
    if (cmd[1] >= 0) ::close(cmd[1]);
    s.cmd = cmd[0];
    s.res = res[0];
    s.used = 0;
    s.live = true;
    s.done = false;
    s.eof = false;
    if (persistent_ && active_) send_call(k);
}

void ProcessPool::worker_main(unsigned k, int cmd, int res) noexcept {
    ::signal(SIGPIPE, SIG_IGN);                    // a write to a closed pipe fails; we _exit then
    for (Slot& other : slots_) close_slot(other);  // the parent's ends, copied by the fork
    WorkerSide side(cursor(), line(k), res);
    const std::size_t fixed = options_.task_timeout.count() > 0 ? 1 : options_.batch_size;
    const bool timed = options_.task_timeout.count() > 0;
    if (!persistent_) {
        side.begin(call_, n_, workers_, fixed, timed);
        try {
            body_(side);
        } catch (...) {
            flush_stdio();
            ::_exit(72);
        }
        flush_stdio();
        side.send_done();
        ::_exit(0);
    }
    // a pool worker: wait for a call, run it, say so, wait again
    const auto idle_ms = static_cast<int>(std::clamp<long long>(options_.idle_timeout.count(), 1, 1 << 30));
    std::vector<char> closure;
    for (;;) {
        pollfd p{cmd, POLLIN, 0};
        const int r = ::poll(&p, 1, idle_ms);
        if (r == 0) break;  // idle for idle_timeout: end
        if (r < 0) {
            if (errno == EINTR) continue;
            break;
        }
        CallHead head;
        int memfd = -1;
        if (!receive_head(cmd, head, memfd) || head.kind != kind_call) break;  // the pool closed
        closure.resize(head.closure_bytes);
        if (!receive_full(cmd, closure.data(), closure.size())) break;
        void* inputs = nullptr;  // page-aligned either way, so that any element type can be read in place
        if (head.in_memfd != 0) {
            if (memfd < 0) ::_exit(74);
            inputs = ::mmap(nullptr, head.input_bytes, PROT_READ, MAP_SHARED, memfd, 0);
            if (inputs == MAP_FAILED) ::_exit(74);
        } else {
            const std::size_t room = (head.input_bytes + 4095) / 4096 * 4096;
            inputs = room > 0 ? std::aligned_alloc(4096, room) : nullptr;
            if (room > 0 && inputs == nullptr) ::_exit(73);
            if (!receive_full(cmd, inputs, head.input_bytes)) break;
        }
        side.begin(head.call, head.n, head.workers, head.fixed, head.timed != 0);
        try {
            reinterpret_cast<PoolEntry>(head.entry)(side, closure.data(), static_cast<const char*>(inputs),
                                                    head.input_bytes);
        } catch (...) {
            flush_stdio();
            ::_exit(72);
        }
        if (head.in_memfd != 0) {
            ::munmap(inputs, head.input_bytes);
            ::close(memfd);
        } else {
            std::free(inputs);
        }
        flush_stdio();  // what the tasks printed is out before the call returns
        side.send_done();
    }
    flush_stdio();
    ::_exit(0);
}

void ProcessPool::send_call(unsigned k) noexcept {
    // a worker that ended meanwhile fails the send; it is found and replaced in step()
    if (memfd_ >= 0) {
        (void)send_with_fd(slots_[k].cmd, record_, memfd_);
    } else if (send_full(slots_[k].cmd, record_.data(), record_.size(), 0)) {
        (void)send_full(slots_[k].cmd, inputs_.data(), inputs_.size(), 0);
    }
}

void ProcessPool::start_call_state(std::size_t n) {
    ++call_;
    n_ = n;
    received_ = 0;
    seen_.assign(n, 0);
    deadline_.reset();
    if (options_.timeout.count() > 0) deadline_ = std::chrono::steady_clock::now() + options_.timeout;
    cursor().store(0);
}

void ProcessPool::begin_call(std::size_t n, PoolEntry entry, std::string closure, std::string inputs, InputKind kind) {
    if (active_)
        throw Error(
            name_ +
            " still runs a call (an imap() range not yet at its end): iterate it to its end or destroy it first");
    start_call_state(n);
    CallHead head;
    head.input_kind = static_cast<std::uint32_t>(kind);
    head.call = call_;
    head.entry = reinterpret_cast<std::uint64_t>(entry);
    head.n = n;
    head.fixed = options_.task_timeout.count() > 0 ? 1 : options_.batch_size;
    head.workers = workers_;
    head.timed = options_.task_timeout.count() > 0 ? 1 : 0;
    head.closure_bytes = closure.size();
    head.input_bytes = inputs.size();
    close_memfd();
    if (inputs.size() >= memfd_from) {
        // one copy that every worker maps (anonymous: nothing in /dev/shm)
        memfd_ = ::memfd_create("corelab-inputs", MFD_CLOEXEC);
        if (memfd_ < 0) throw Error(std::string("cannot make a memfd for the inputs: ") + std::strerror(errno));
        try {
            write_full(memfd_, inputs.data(), inputs.size(), "the call's inputs into a memfd");
        } catch (...) {
            close_memfd();
            throw;
        }
        head.in_memfd = 1;
        inputs.clear();
        inputs.shrink_to_fit();
    }
    record_.assign(reinterpret_cast<const char*>(&head), sizeof head);
    record_ += closure;
    inputs_ = std::move(inputs);
    // workers that ended between calls (killed, idled out) are reaped and replaced
    for (unsigned k = 0; k < workers_; ++k) {
        if (slots_[k].live) (void)reap_if_ended(k);
    }
    active_ = true;
    try {
        for (unsigned k = 0; k < workers_; ++k) {
            slots_[k].done = false;
            if (slots_[k].live) {
                send_call(k);
            } else {
                fork_worker(k);
            }
        }
    } catch (...) {
        cancel();
        throw;
    }
}

void ProcessPool::begin_call(std::size_t n, std::function<void(WorkerSide&)> body) {
    start_call_state(n);
    body_ = std::move(body);
    active_ = true;
    try {
        const unsigned w = static_cast<unsigned>(std::min<std::size_t>(workers_, n));
        for (unsigned k = 0; k < w; ++k) fork_worker(k);
    } catch (...) {
        cancel();
        throw;
    }
}

void ProcessPool::fail_task(unsigned k, std::size_t task, const std::string& message, const FailureSink& on_failure) {
    if (task >= n_ || seen_[task]) return;
    seen_[task] = 1;
    ++received_;
    on_failure(task, std::make_exception_ptr(TaskError(k, task, message)));
}

void ProcessPool::fatal(unsigned k, const std::string& message) {
    cancel();
    throw WorkerError(k, message);
}

void ProcessPool::read_worker(unsigned k, const BatchSink& on_batch, const FailureSink& on_failure, bool drain) {
    Slot& s = slots_[k];
    for (;;) {
        if (s.eof || s.res < 0) return;
        if (s.buf.size() < s.used + (1 << 20)) s.buf.resize(s.used + (1 << 20));
        const ssize_t r = ::read(s.res, s.buf.data() + s.used, s.buf.size() - s.used);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) s.eof = true;
        if (r <= 0) return;
        s.used += static_cast<std::size_t>(r);
        // the complete records at the front of the buffer
        std::size_t pos = 0;
        while (s.used - pos >= sizeof(RecordHead)) {
            RecordHead head;
            std::memcpy(&head, s.buf.data() + pos, sizeof head);
            const bool in_range = head.first <= n_ && head.count <= n_ - head.first;
            if (head.kind < kind_results || head.kind > kind_end || !in_range)
                fatal(k, children_.who(k) + " sent a record that makes no sense");
            if (head.pid != children_.pid(k)) {
                fatal(k, "pid " + std::to_string(head.pid) + ", a copy of " + children_.who(k) +
                             ", sent a record: did a task fork without exec? (a forked child that neither execs nor "
                             "_exits runs on in the worker's loop)");
            }
            if (s.used - pos - sizeof head < head.bytes) {
                if (s.buf.size() < sizeof head + head.bytes) s.buf.resize(sizeof head + head.bytes);
                break;
            }
            const char* body = s.buf.data() + pos + sizeof head;
            if (head.kind == kind_results) {
                for (std::uint64_t j = head.first; j < head.first + head.count; ++j) {
                    if (seen_[j])
                        fatal(k, "task " + std::to_string(j) + " reported twice (by " + children_.who(k) + ")");
                    seen_[j] = 1;
                }
                received_ += head.count;
                on_batch(head.first, head.count, body, head.bytes);
            } else if (head.kind == kind_error) {
                fail_task(k, head.first,
                          "task " + std::to_string(head.first) + " raised: " + std::string(body, head.bytes) + " (in " +
                              children_.who(k) + ")",
                          on_failure);
            } else {
                s.done = true;
            }
            pos += sizeof head + head.bytes;
        }
        if (pos > 0) {
            std::memmove(s.buf.data(), s.buf.data() + pos, s.used - pos);
            s.used -= pos;
        }
        if (!drain) return;
    }
}

void ProcessPool::lose_batch(unsigned k, std::optional<std::size_t> task, const std::string& message,
                             const FailureSink& on_failure) {
    if (task) fail_task(k, *task, message, on_failure);
    const std::uint64_t first = line(k).batch_first.load(), end = std::min<std::uint64_t>(line(k).batch_end.load(), n_);
    for (std::uint64_t j = first; j < end; ++j) {
        if (!task || j != *task)
            fail_task(k, j, "task " + std::to_string(j) + " was lost with its batch: " + message, on_failure);
    }
}

void ProcessPool::replace_if_needed(unsigned k) {
    if (cursor().load() < n_) fork_worker(k);  // tasks remain: a new worker takes this one's place
}

void ProcessPool::worker_ended(unsigned k, int status, const FailureSink& on_failure) {
    Slot& s = slots_[k];
    s.live = false;
    close_slot(s);
    const bool started = line(k).call.load(std::memory_order_acquire) == call_;
    if (s.done || !started) {
        // it ended after its share (per call: as it should; a pool's: idled out),
        // or before it took the call (its idle time ran out as the call was sent)
    } else {
        const std::uint64_t t = line(k).task.load(std::memory_order_acquire);
        const std::optional<std::size_t> task =
            t == idle_slot ? std::nullopt : std::optional<std::size_t>(static_cast<std::size_t>(t));
        const std::string doing = task ? " while running task " + std::to_string(*task) : " between tasks";
        std::string message = describe_end(k, children_.pid(k), status, doing);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) message += ", before returning its result";
        lose_batch(k, task, message, on_failure);
    }
    replace_if_needed(k);
}

bool ProcessPool::step(const BatchSink& on_batch, const FailureSink& on_failure) {
    if (!active_) return false;
    try {
        const bool timed = options_.task_timeout.count() > 0;
        const auto tt = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.task_timeout).count();
        // complete: every result arrived and every worker finished its share
        bool all_finished = true;
        for (const Slot& s : slots_) {
            if (s.live && !(persistent_ && s.done)) all_finished = false;
        }
        if (all_finished && cursor().load() >= n_ && received_ < n_) {
            // tasks taken by a worker that died before it said which: lost
            for (std::size_t j = 0; j < n_; ++j) {
                if (!seen_[j]) {
                    fail_task(
                        0, j,
                        "task " + std::to_string(j) + " was lost: the worker that took it ended before running it",
                        on_failure);
                }
            }
            return true;
        }
        if (all_finished && received_ == n_) {
            active_ = false;
            close_memfd();
            return false;
        }
        std::optional<std::chrono::steady_clock::time_point> deadline = deadline_;
        if (timed) {
            for (unsigned k = 0; k < workers_; ++k) {
                if (!slots_[k].live || line(k).task.load(std::memory_order_acquire) == idle_slot) continue;
                const auto ends = std::chrono::steady_clock::time_point(
                    std::chrono::nanoseconds(line(k).started_ns.load(std::memory_order_relaxed) + tt));
                if (!deadline || ends < *deadline) deadline = ends;
            }
        }
        polled_.clear();
        owners_.clear();
        for (unsigned k = 0; k < workers_; ++k) {
            if (!slots_[k].live || slots_[k].eof) continue;
            polled_.push_back({slots_[k].res, POLLIN, 0});
            owners_.push_back(k);
        }
        children_.wait(polled_, deadline);
        for (std::size_t i = 0; i < polled_.size(); ++i) {
            if ((polled_[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0)
                read_worker(owners_[i], on_batch, on_failure, false);
        }
        for (unsigned k = 0; k < workers_; ++k) {
            if (!slots_[k].live) continue;
            std::optional<int> status;
            try {
                status = children_.try_reap(k);
            } catch (const Error& e) {
                fatal(k, e.what());
            }
            if (!status) continue;
            read_worker(k, on_batch, on_failure, true);  // all it wrote is in the pipe now
            worker_ended(k, *status, on_failure);
        }
        if (timed) {
            const std::int64_t now = now_ns();
            for (unsigned k = 0; k < workers_; ++k) {
                if (!slots_[k].live) continue;
                const std::uint64_t t = line(k).task.load(std::memory_order_acquire);
                if (t == idle_slot) continue;
                const auto started = static_cast<std::int64_t>(line(k).started_ns.load(std::memory_order_relaxed));
                if (now < started + tt) continue;
                const pid_t pid = children_.pid(k);
                children_.kill_one(k);
                read_worker(k, on_batch, on_failure, true);  // what it sent before
                slots_[k].live = false;
                close_slot(slots_[k]);
                lose_batch(k, static_cast<std::size_t>(t),
                           "task " + std::to_string(t) + " took longer than " +
                               std::to_string(options_.task_timeout.count()) + " ms (the per-task timeout) in " +
                               worker_name(k, pid) + ": it was killed",
                           on_failure);
                replace_if_needed(k);
            }
        }
        if (deadline_ && std::chrono::steady_clock::now() >= *deadline_) {
            std::string running;
            for (unsigned k = 0; k < workers_; ++k) {
                const std::uint64_t t = line(k).task.load();
                if (slots_[k].live && t != idle_slot)
                    running +=
                        (running.empty() ? "" : ", ") + children_.who(k) + " was running task " + std::to_string(t);
            }
            fatal(0, describe_timeout(name_, options_.timeout, running));
        }
    } catch (...) {
        cancel();
        throw;
    }
    return true;
}

void ProcessPool::close_memfd() noexcept {
    if (memfd_ >= 0) ::close(memfd_);
    memfd_ = -1;
}

void ProcessPool::cancel() noexcept {
    active_ = false;
    close_memfd();
    if (foreign()) return;
    cursor().store(n_);  // nobody takes another batch
    for (unsigned k = 0; k < workers_; ++k) {
        if (!slots_[k].live) continue;
        children_.kill_one(k);
        slots_[k].live = false;
        close_slot(slots_[k]);
    }
}

void ProcessPool::close() noexcept {
    if (foreign()) {
        for (Slot& s : slots_) close_slot(s);  // our copies only: the workers are the owner's
        close_memfd();
        return;
    }
    if (active_) cancel();
    // ask each worker to leave (a quit record, not only the socket's end: a
    // fork of this process may hold a copy of the socket open)
    for (Slot& s : slots_) {
        if (s.live && s.cmd >= 0) {
            const CallHead quit{kind_quit};
            (void)send_full(s.cmd, &quit, sizeof quit, MSG_DONTWAIT);
        }
        if (s.cmd >= 0) ::close(s.cmd);
        s.cmd = -1;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    std::vector<pollfd> none;
    for (;;) {
        bool any = false;
        for (unsigned k = 0; k < workers_; ++k) {
            if (!slots_[k].live) continue;
            try {
                if (children_.try_reap(k)) {
                    slots_[k].live = false;
                    continue;
                }
            } catch (...) {
                slots_[k].live = false;
                continue;
            }
            any = true;
        }
        if (!any || std::chrono::steady_clock::now() >= deadline) break;
        try {
            children_.wait(none, deadline);
        } catch (...) {
            break;
        }
    }
    children_.kill_all();  // those that did not leave in time
    for (Slot& s : slots_) {
        s.live = false;
        close_slot(s);
    }
}

bool ProcessPool::reap_if_ended(unsigned k) {
    std::optional<int> status;
    try {
        status = children_.try_reap(k);
    } catch (const Error&) {
        status = 0;  // its pidfd failed: it cannot be waited for, so it counts as ended
    }
    if (!status) return false;
    slots_[k].live = false;
    close_slot(slots_[k]);
    return true;
}

std::vector<pid_t> ProcessPool::live_pids() {
    std::vector<pid_t> pids;
    if (foreign()) return pids;
    for (unsigned k = 0; k < workers_; ++k) {
        if (!slots_[k].live) continue;
        if (!active_ && reap_if_ended(k)) continue;
        pids.push_back(children_.pid(k));
    }
    return pids;
}

}  // namespace corelab::detail
