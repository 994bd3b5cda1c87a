// corelab/parallel.hpp — parallel for-loops over processes or threads (joblib.Parallel for C++).
//
// Concept: the notebook's In[10]-In[13] write `Parallel(n_jobs=2)(delayed(f)(i)
// for i in range(n))`: call f on every input, on n_jobs workers, results in
// input order. Parallel does the same: `par.map(f, corelab::range(n))`. No
// `delayed` is needed: Python had to wrap each call so that joblib received
// the function and its argument unevaluated; in C++ map() receives f itself
// and the inputs, and calls f(input) where it chooses.
//
// Tasks go to workers in batches taken from one shared cursor (dynamic
// scheduling: an idle worker takes the next batch). With batch_size = 0
// (auto) each worker starts with batches of 1 task, times each batch and
// doubles or halves its size toward a target duration (20 ms for processes,
// 2 ms for threads), never so large that fewer than about 4 batches per worker
// remain, so tiny tasks do not drown in overhead and long ones still spread.
//
// Backend::processes (reuse = false) starts the workers (corelab::Children) once per map() call,
// after the inputs exist: children read them copy-on-write. The cursor and one "task held"
// slot per worker live in an anonymous MAP_SHARED page (lock-free
// atomics: a worker killed mid-task cannot leave a lock held); results come
// back through one pipe per worker, a batch per record (trivially copyable
// results as raw bytes, others serialised with cereal). Nothing is named, so
// nothing can be left in /dev/shm. The parent sleeps in poll() on the pipes
// and the children's pidfds (no polling interval); a worker is done when it has exited and its
// last record ("end of results") has arrived, not at its pipe's end, which a
// process a task left behind could hold off. A task that throws, a worker
// killed by a signal or gone mid-task, a copy of a worker (a task forked
// without exec), or a timeout is reported at once, the other workers are
// killed and every child is reaped before map() throws. Workers flush stdio
// before they _exit. Backend::threads runs the same loop on ThreadWorkers
// (lesson 04). Used by lesson 06.
//
// A pool (reuse = true, processes): the workers outlive the call, like
// joblib's `with Parallel(n_jobs=2) as parallel:`. Each waits on a socket
// for a call record: a pointer to the call's instantiation of pool_entry (the
// same address in a forked worker), the function's bytes (it must be
// trivially copyable: capture by value; a pointer or reference in it points
// into the worker's copy of memory as it was at the worker's fork) and the
// inputs: the start of an integer range (corelab::range(n)), the elements'
// bytes when trivially copyable, else cereal; below 128 KB after the record
// on the socket, from 128 KB in a memfd that every worker maps (measured:
// see parallel.cpp). A worker that died, was killed or idled out
// (idle_timeout) is replaced before the next call; the destructor and
// close() ask the workers to leave, SIGKILL those that have not within a
// second, and reap all. A fork of the owner never touches its workers.
//
// imap() and imap_unordered() hand results over as they arrive (in input
// order, or in completion order with their index): a failed task's element
// throws its TaskError and the others go on; destroying the range early
// kills and reaps the call's workers. task_timeout (per task, joblib's
// `timeout`): the parent sleeps until the earliest held task's limit, kills
// that worker, fails that task and forks a replacement while tasks remain.
// These streamed calls (and map() with reuse or task_timeout) collect through
// detail::ProcessPool; a plain map() keeps the per-call ProcessMap above.
#pragma once

#include <sys/types.h>  // pid_t

#include <algorithm>                   // std::min, std::max
#include <atomic>                      // std::atomic
#include <boost/thread.hpp>            // boost::thread, mutex, condition_variable (imap on threads)
#include <cereal/archives/binary.hpp>  // BinaryOutputArchive, BinaryInputArchive
#include <cereal/types/string.hpp>     // results that are std::string
#include <cereal/types/vector.hpp>     // results that are std::vector
#include <chrono>                      // std::chrono::milliseconds, steady_clock
#include <cstddef>                     // std::size_t
#include <cstdint>                     // std::uint64_t
#include <cstring>                     // std::memcpy
#include <exception>                   // std::exception
#include <functional>                  // std::function
#include <iostream>                    // std::cerr (the default progress stream)
#include <iterator>                    // std::default_sentinel_t
#include <memory>                      // std::unique_ptr
#include <mutex>                       // std::mutex (progress and the first failure, threads)
#include <new>                         // std::launder
#include <optional>                    // std::optional
#include <ranges>                      // std::views::iota, std::ranges::random_access_range
#include <sstream>                     // std::ostringstream, std::istringstream (cereal's streams)
#include <string>                      // std::string
#include <tuple>                       // std::tuple
#include <type_traits>                 // std::invoke_result_t, std::is_trivially_copyable_v
#include <utility>                     // std::move
#include <vector>                      // std::vector

#include "corelab/cache_line.hpp"      // CacheAligned: the threads' shared cursor on a line of its own
#include "corelab/children.hpp"        // Children: start, watch and reap the workers
#include "corelab/error.hpp"           // Error, WorkerError
#include "corelab/thread_workers.hpp"  // ThreadWorkers

namespace corelab {

/// Where the tasks run.
enum class Backend {
    processes,  ///< forked children (joblib's default, loky)
    threads,    ///< boost::threads in this process (joblib's prefer="threads")
};

/// How Parallel runs a call. Field order allows designated initializers:
/// `Parallel par{{.n_jobs = 2, .backend = Backend::threads}}`.
struct ParallelOptions {
    /// joblib's n_jobs: positive = that many workers (more than the CPUs is
    /// allowed); -1 = all CPUs, -2 = all but one, ... (never below 1); 0 is an error.
    int n_jobs = 1;
    Backend backend = Backend::processes;
    /// Tasks per batch; 0 = auto (adapts toward a target batch duration).
    std::size_t batch_size = 0;
    /// 0: silent. Otherwise joblib's progress lines on `progress`, more often the higher.
    int verbose = 0;
    /// 0: none. Otherwise a call still running after it is stopped and throws
    /// WorkerError (processes: the workers are killed; threads: checked between
    /// tasks, since a thread cannot be killed).
    std::chrono::milliseconds timeout{0};
    std::ostream* progress = &std::cerr;
    /// joblib's `timeout`, per task: 0 = none. Processes: a task running
    /// longer is killed with its worker, fails with its index, a new worker
    /// takes the worker's place and the other tasks go on; with it set, every
    /// batch is of one task (so a killed worker takes no other task with it).
    /// Threads (and workers() == 1): a thread cannot be killed, so the task
    /// runs to its end and its element then fails with the timeout; the call
    /// cannot end before that task does.
    std::chrono::milliseconds task_timeout{0};
    /// Processes only: keep the workers between calls (a pool, like `with
    /// Parallel(n_jobs=2) as parallel:`). Each call then sends its function
    /// and inputs to the live workers instead of forking them anew; the
    /// function must be trivially copyable (capture by value): its bytes are
    /// copied into the workers, so a pointer or reference it holds refers to
    /// the worker's copy of memory as it was when that worker was forked.
    bool reuse = false;
    /// A pool worker that has had no call for this long ends by itself (the
    /// next call starts a new one).
    std::chrono::milliseconds idle_timeout{std::chrono::seconds(300)};
};

/// An element of imap_unordered(): a task's index in the inputs and its result.
template <class T>
struct Indexed {
    std::size_t index;
    T value;
};

/// A task failed: it threw, or its worker died while running it.
class TaskError : public WorkerError {
public:
    TaskError(unsigned worker, std::size_t task, const std::string& message)
        : WorkerError(worker, message), task_(task) {}
    /// Index of the failed task in the inputs (0-based).
    std::size_t task() const noexcept { return task_; }

private:
    std::size_t task_;
};

/// 0, 1, ..., n-1: the notebook's range(n).
inline auto range(std::size_t n) {
    return std::views::iota(std::size_t{0}, n);
}

/// joblib's rule: n_jobs > 0 gives n_jobs, n_jobs < 0 gives max(cpus + 1 + n_jobs, 1).
/// Throws corelab::Error for 0 and for more than 1024 workers.
unsigned resolve_n_jobs(int n_jobs, unsigned cpus);

/// n_jobs as a user writes it ("2", "-1"): a whole number, not 0, within
/// [-1024, 1024]. Throws corelab::Error saying what is wrong otherwise.
int parse_n_jobs(const std::string& text);

/// "processes" or "threads", as joblib names its backends.
const char* to_string(Backend backend) noexcept;

/// The backend named "processes" or "threads". Throws corelab::Error otherwise.
Backend parse_backend(const std::string& text);

namespace detail {

/// A result slot: bool is stored as a byte so that two threads never share a
/// std::vector<bool> word.
template <class R>
struct Cell {
    using type = R;
};
template <>
struct Cell<bool> {
    using type = unsigned char;
};

/// Hands out batches of task indices from a shared cursor, one Batcher per
/// worker. With size 0 (auto) it doubles or halves its batch toward `target`.
class Batcher {
public:
    Batcher(std::atomic<std::uint64_t>& cursor, std::size_t n, unsigned workers, std::size_t fixed,
            std::chrono::nanoseconds target) noexcept
        : cursor_(cursor), n_(n), workers_(workers), fixed_(fixed), size_(fixed == 0 ? 1 : fixed), target_(target) {}

    /// The next batch: its first index in `first`, its length returned (0: none left).
    std::size_t claim(std::size_t& first) noexcept {
        if (fixed_ == 0) adapt();
        first = cursor_.fetch_add(size_, std::memory_order_relaxed);
        if (first >= n_) return 0;
        return std::min(size_, n_ - first);
    }

private:
    void adapt() noexcept {
        const auto now = std::chrono::steady_clock::now();
        if (started_) {
            const auto took = now - batch_start_;
            if (took < target_ / 2) {
                size_ *= 2;  // grow by at most 2x per batch, as joblib does
            } else if (took > target_ * 2 && size_ > 1) {
                size_ /= 2;
            }
        }
        started_ = true;
        batch_start_ = now;
        // keep ~4 batches per worker in what remains, so the last ones spread evenly
        const std::size_t taken = std::min<std::size_t>(cursor_.load(std::memory_order_relaxed), n_);
        size_ = std::max<std::size_t>(1, std::min(size_, (n_ - taken) / (4 * std::size_t{workers_})));
    }

    std::atomic<std::uint64_t>& cursor_;
    std::size_t n_;
    unsigned workers_;
    std::size_t fixed_;
    std::size_t size_;
    std::chrono::nanoseconds target_;
    bool started_ = false;
    std::chrono::steady_clock::time_point batch_start_{};
};

/// joblib's progress lines: `[Parallel(n_jobs=2)]: Done   4 out of  10 | elapsed: ...`.
/// done() may be called from several threads at once.
class Progress {
public:
    Progress(std::string name, int verbose, std::ostream* out, std::size_t total);
    /// `count` more tasks are done; prints when joblib's schedule says so.
    void done(std::size_t count);
    /// Prints the `finished` line (once every task is done).
    void finish();

private:
    std::string name_;
    int verbose_;
    std::ostream* out_;
    std::size_t total_;
    std::size_t done_ = 0;
    std::chrono::steady_clock::time_point start_;
    std::mutex mutex_;
};

/// joblib's short_format_time: `%5.1fs`, or `%4.1fmin` above 60 s.
std::string short_format_time(double seconds);

/// Sends a batch's results, as bytes, from a child to the parent.
using BatchSink = std::function<void(std::size_t first, std::size_t count, const char* bytes, std::size_t size)>;

/// The untyped part of one process-backend call: the shared page, the pipes,
/// fork, collect, kill and reap.
class ProcessMap {
public:
    /// Throws corelab::Error when this process runs other threads (forking
    /// them is unsafe) or the page or the pipes cannot be made.
    ProcessMap(unsigned workers, std::size_t n, const ParallelOptions& options, std::string name);
    ProcessMap(const ProcessMap&) = delete;
    ProcessMap& operator=(const ProcessMap&) = delete;
    /// Kills and reaps every child still running, closes the pipes, unmaps the page.
    ~ProcessMap();

    /// Forks worker k: true in the child (which must end with child_exit or
    /// send_error_and_exit), false in the parent.
    bool fork_worker(unsigned k);

    // ---- in the child
    /// This worker's batches (auto or fixed size).
    Batcher batcher(std::chrono::nanoseconds target) noexcept;
    /// Says which task this worker is running, for the parent's reports.
    void holding(std::size_t task) noexcept { slot_task(worker_).store(task, std::memory_order_relaxed); }
    /// Sends one batch of results; _exits(70) when the parent is gone.
    void send_results(std::size_t first, std::size_t count, const void* bytes, std::size_t size) noexcept;
    /// Sends "task `task` raised `message`" and _exits(0).
    [[noreturn]] void send_error_and_exit(std::size_t task, const char* message) noexcept;
    /// Flushes stdio, sends the end of this worker's results, closes the pipe
    /// and _exits(0).
    [[noreturn]] void child_exit() noexcept;

    // ---- in the parent
    /// Receives every batch (calling on_batch for each) and reaps every child.
    /// A worker is done when it has exited and its end record has arrived
    /// (not at its pipe's end: a process a task left behind may hold it open).
    /// Throws TaskError for a task that threw, whose worker died or exited
    /// before its result, or whose result came from a copy of the worker (a
    /// task that forked without exec); WorkerError for a timeout or a worker
    /// that died between tasks. The others are killed and reaped first.
    void collect(const BatchSink& on_batch, Progress* progress);

private:
    std::atomic<std::uint64_t>& slot_task(unsigned k) noexcept;
    void write_record(std::uint32_t kind, std::uint64_t first, std::uint64_t count, const void* bytes,
                      std::size_t size) noexcept;
    void kill_all() noexcept;
    void release() noexcept;

    unsigned workers_;
    std::size_t n_;
    ParallelOptions options_;
    std::string name_;
    Children children_;  // before the page and the pipes: it checks the threads first
    void* page_ = nullptr;
    std::size_t page_bytes_ = 0;
    std::vector<int> read_fds_, write_fds_;
    pid_t parent_ = 0;
    unsigned worker_ = 0;  // in a child: which worker it is
};

/// One finished task as a source hands it over: its result or its error.
template <class C>
struct Item {
    std::size_t index = 0;
    std::optional<C> value;
    std::exception_ptr error;
};

/// Where a streamed call's finished tasks come from (processes, threads or
/// the caller's own loop), in the order they finish.
template <class C>
class ItemSource {
public:
    virtual ~ItemSource() = default;
    /// Appends at least one finished task to `out`; false when none is left.
    /// Throws WorkerError when the whole call fails (its timeout; a worker
    /// that cannot be started).
    virtual bool pull(std::vector<Item<C>>& out) = 0;
    /// Every task has been handed over: lets the call end (a pool's workers
    /// say they are done) so that the next call may start.
    virtual void finish() {}
};

/// The elements of a ResultStream, one by one.
template <class T>
class Stream {
public:
    virtual ~Stream() = default;
    /// Moves to the next element: false at the end; otherwise `value` or
    /// `error` holds it.
    virtual bool advance(std::optional<T>& value, std::exception_ptr& error) = 0;
};

/// The shared page's line of one process worker: what it holds, since when.
struct alignas(cache_line) SlotLine {
    std::atomic<std::uint64_t> task;         // the task it runs, or `idle`
    std::atomic<std::uint64_t> started_ns;   // when it started it (steady clock), with task_timeout set
    std::atomic<std::uint64_t> call;         // the last call it began
    std::atomic<std::uint64_t> batch_first;  // the first task of its batch not yet sent
    std::atomic<std::uint64_t> batch_end;    // one past its batch's last task
};
inline constexpr std::uint64_t idle_slot = ~std::uint64_t{0};

/// A process worker's side of one call: its batches, its line of the shared
/// page, its result pipe.
class WorkerSide {
public:
    WorkerSide(std::atomic<std::uint64_t>& cursor, SlotLine& line, int fd) noexcept
        : cursor_(cursor), line_(line), fd_(fd) {}
    /// Takes the call's size, the worker count, the fixed batch size (0 =
    /// auto) and whether tasks are timed.
    void begin(std::uint64_t call, std::size_t n, unsigned workers, std::size_t fixed, bool timed) noexcept;
    Batcher batcher() noexcept { return Batcher(cursor_, n_, workers_, fixed_, std::chrono::milliseconds(20)); }
    void claimed(std::size_t first, std::size_t count) noexcept {
        line_.batch_first.store(first, std::memory_order_relaxed);
        line_.batch_end.store(first + count, std::memory_order_relaxed);
    }
    void holding(std::size_t task) noexcept {
        if (timed_) {
            line_.started_ns.store(
                static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()),
                std::memory_order_relaxed);
            line_.task.store(task, std::memory_order_release);
        } else {
            line_.task.store(task, std::memory_order_relaxed);
        }
    }
    /// Sends the results of tasks first .. first+count-1; _exits when the parent is gone.
    void send_results(std::size_t first, std::size_t count, const void* bytes, std::size_t size) noexcept;
    /// Sends "task `task` raised `message`"; the worker goes on with its batch.
    void send_error(std::size_t task, const char* message) noexcept;
    /// Sends "this worker has finished the call".
    void send_done() noexcept;
    int fd() const noexcept { return fd_; }

private:
    void write(std::uint32_t kind, std::uint64_t first, std::uint64_t count, const void* bytes,
               std::size_t size) noexcept;
    std::atomic<std::uint64_t>& cursor_;
    SlotLine& line_;
    int fd_;
    std::size_t n_ = 0;
    unsigned workers_ = 1;
    std::size_t fixed_ = 0;
    bool timed_ = false;
};

/// Runs a worker's share of one call: claims batches, calls f on each input
/// (`get(i)` gives input i), sends each batch's results and each task's error.
template <class R, class F, class Get>
void run_worker_call(WorkerSide& side, F& f, const Get& get) {
    using C = typename Cell<R>::type;
    Batcher batches = side.batcher();
    std::vector<C> results;
    const auto flush = [&](std::size_t from) {
        if (results.empty()) return;
        if constexpr (std::is_trivially_copyable_v<C>) {
            side.send_results(from, results.size(), results.data(), results.size() * sizeof(C));
        } else {
            std::ostringstream bytes;
            {
                cereal::BinaryOutputArchive archive(bytes);
                archive(results);
            }
            const std::string s = std::move(bytes).str();
            side.send_results(from, results.size(), s.data(), s.size());
        }
        results.clear();
    };
    std::size_t first = 0;
    for (std::size_t count; (count = batches.claim(first)) > 0;) {
        side.claimed(first, count);
        results.clear();
        std::size_t from = first;  // the first task whose result is not yet sent
        for (std::size_t i = first; i < first + count; ++i) {
            side.holding(i);
            const char* failed = nullptr;
            std::string what;
            try {
                results.push_back(f(get(i)));
            } catch (const std::exception& e) {
                what = e.what();
                failed = what.c_str();
            } catch (...) {
                failed = "an exception that is not a std::exception";
            }
            if (failed != nullptr) {
                flush(from);
                side.send_error(i, failed);
                from = i + 1;
            }
        }
        flush(from);
    }
}

/// How a pool call's inputs travel: the start of an integer range, the
/// elements' bytes, or the elements serialised with cereal.
enum class InputKind : std::uint32_t { iota = 1, raw = 2, cereal = 3 };

/// A pool worker's entry for one call: an instantiation of pool_entry, at the
/// same address in the worker (the same program, forked).
using PoolEntry = void (*)(WorkerSide& side, const char* closure, const char* inputs, std::size_t input_bytes);

template <class R, class F, class E, InputKind kind>
void pool_entry(WorkerSide& side, const char* closure, const char* inputs, std::size_t input_bytes) {
    alignas(F) unsigned char storage[sizeof(F)];
    std::memcpy(storage, closure, sizeof(F));  // F is trivially copyable: the bytes are the object
    F& f = *std::launder(reinterpret_cast<F*>(storage));
    if constexpr (kind == InputKind::iota) {
        E start{};
        std::memcpy(&start, inputs, sizeof start);
        run_worker_call<R>(side, f, [start](std::size_t i) { return static_cast<E>(start + static_cast<E>(i)); });
    } else if constexpr (kind == InputKind::raw) {
        const E* data = std::launder(reinterpret_cast<const E*>(inputs));  // page-aligned, written by read()
        run_worker_call<R>(side, f, [data](std::size_t i) -> const E& { return data[i]; });
    } else {
        std::istringstream stream(std::string(inputs, input_bytes));
        std::vector<E> elements;
        {
            cereal::BinaryInputArchive archive(stream);
            archive(elements);
        }
        run_worker_call<R>(side, f, [&elements](std::size_t i) -> const E& { return elements[i]; });
    }
}

/// Hands a failed task (its index and its TaskError) to a streamed call's consumer.
using FailureSink = std::function<void(std::size_t task, std::exception_ptr error)>;

/// The process workers of streamed calls: a pool that outlives its calls
/// (persistent: workers wait for call records on a socket), or the workers
/// of one call (forked with the call's body). Either way a call runs on a
/// shared cursor, results come through one pipe per worker, a worker that
/// died or ran a task past task_timeout is replaced while tasks remain.
class ProcessPool {
public:
    /// Throws corelab::Error when the shared page cannot be made.
    ProcessPool(unsigned workers, const ParallelOptions& options, std::string name, bool persistent);
    ProcessPool(const ProcessPool&) = delete;
    ProcessPool& operator=(const ProcessPool&) = delete;
    /// close().
    ~ProcessPool();

    /// Starts a call on a persistent pool: workers that ended are replaced,
    /// each gets the call record. Throws corelab::Error when a call is still
    /// running or a worker cannot be started.
    void begin_call(std::size_t n, PoolEntry entry, std::string closure, std::string inputs, InputKind kind);
    /// Starts a call on new workers that each run `body` and end.
    void begin_call(std::size_t n, std::function<void(WorkerSide&)> body);
    /// Waits for the next things to happen and hands them over: false when
    /// the call is complete. Throws WorkerError when the whole call fails
    /// (its timeout; a worker that sends nonsense or is copied by a task),
    /// after cancel().
    bool step(const BatchSink& on_batch, const FailureSink& on_failure);
    /// Every result of the call has arrived (the workers may still be ending it).
    bool all_arrived() const noexcept { return received_ == n_; }
    bool active() const noexcept { return active_; }
    /// Ends the call now: its workers are killed and reaped (a pool replaces them on its next call).
    void cancel() noexcept;
    /// Ends every worker: asks them to leave, waits a moment, SIGKILLs the
    /// rest, reaps all. In a process that did not make the pool (a fork of
    /// its owner) it only closes this process's copies of the descriptors.
    void close() noexcept;
    /// The pids of the live workers (those that ended are reaped first).
    std::vector<pid_t> live_pids();
    /// This process did not make the pool (it is a fork of its owner).
    bool foreign() const noexcept;

private:
    struct Slot {
        int cmd = -1;  // the parent's end of the worker's command socket (persistent)
        int res = -1;  // the read end of the worker's result pipe
        std::vector<char> buf;
        std::size_t used = 0;
        bool live = false;  // started and not yet reaped
        bool done = false;  // its "call done" arrived
        bool eof = false;
    };
    void fork_worker(unsigned k);
    [[noreturn]] void worker_main(unsigned k, int cmd, int res) noexcept;
    void send_call(unsigned k) noexcept;
    void read_worker(unsigned k, const BatchSink& on_batch, const FailureSink& on_failure, bool drain);
    void worker_ended(unsigned k, int status, const FailureSink& on_failure);
    void lose_batch(unsigned k, std::optional<std::size_t> task, const std::string& message,
                    const FailureSink& on_failure);
    void fail_task(unsigned k, std::size_t task, const std::string& message, const FailureSink& on_failure);
    void replace_if_needed(unsigned k);
    [[noreturn]] void fatal(unsigned k, const std::string& message);
    SlotLine& line(unsigned k) noexcept;
    std::atomic<std::uint64_t>& cursor() noexcept;
    void close_slot(Slot& s) noexcept;
    /// The counters, cursor and deadline of a new call of n tasks (both begin_call start with it).
    void start_call_state(std::size_t n);
    /// Reaps worker k if it ended (killed, idled out) and closes its slot: true then.
    bool reap_if_ended(unsigned k);
    void close_memfd() noexcept;

    unsigned workers_;
    ParallelOptions options_;
    std::string name_;
    bool persistent_;
    pid_t owner_;
    Children children_;
    void* page_ = nullptr;
    std::size_t page_bytes_ = 0;
    std::vector<Slot> slots_;
    // the call
    bool active_ = false;
    std::uint64_t call_ = 0;
    std::size_t n_ = 0;
    std::size_t received_ = 0;
    std::vector<char> seen_;
    std::string record_;  // persistent: the call record's head and closure, sent again to a replacement
    std::string inputs_;  // persistent: the call's inputs, after the record (small ones)
    int memfd_ = -1;      // persistent: the call's inputs (large ones), sent with the record
    std::vector<pollfd> polled_;
    std::vector<unsigned> owners_;
    std::function<void(WorkerSide&)> body_;
    std::optional<std::chrono::steady_clock::time_point> deadline_;
};

template <class T>
struct is_integer_iota : std::false_type {};
template <class W>
struct is_integer_iota<std::ranges::iota_view<W, W>> : std::is_integral<W> {};

/// Inputs as a streamed call keeps them: the range when it has indices,
/// otherwise a copy of its elements.
template <class V>
auto materialize(V&& v) {
    using U = std::remove_cvref_t<V>;
    if constexpr (std::ranges::random_access_range<const U> && std::ranges::sized_range<const U>) {
        return U(std::forward<V>(v));
    } else {
        return std::vector<std::ranges::range_value_t<U>>(std::ranges::begin(v), std::ranges::end(v));
    }
}

/// The finished tasks of a call on process workers.
template <class R, class F, class In>
class ProcessSource : public ItemSource<typename Cell<R>::type> {
public:
    using C = typename Cell<R>::type;
    ProcessSource(ProcessPool* pool, unsigned workers, const ParallelOptions& options, std::string name, F f, In in)
        : f_(std::forward<F>(f)), in_(std::move(in)), n_(std::ranges::size(in_)) {
        using Fd = std::decay_t<F>;  // a function becomes a pointer to it
        if (pool != nullptr) {
            pool_ = pool;
            if constexpr (std::is_trivially_copyable_v<Fd>) {
                const Fd copy(f_);
                std::string closure(sizeof(Fd), '\0');
                std::memcpy(closure.data(), static_cast<const void*>(&copy), sizeof(Fd));
                auto [entry, inputs, kind] = encode<Fd>();
                pool_->begin_call(n_, entry, std::move(closure), std::move(inputs), kind);
            } else {
                throw Error(
                    "reuse = true sends the function to live workers as bytes, and this one is not trivially "
                    "copyable: capture by value only numbers, pointers and other trivially copyable things "
                    "(not std::string, std::vector, std::function), or use reuse = false");
            }
        } else {
            own_ = std::make_unique<ProcessPool>(workers, options, std::move(name), false);
            pool_ = own_.get();
            pool_->begin_call(n_, [this](WorkerSide& side) {
                const auto first = std::ranges::begin(in_);
                run_worker_call<R>(side, f_, [&first](std::size_t i) -> decltype(auto) {
                    return first[static_cast<std::ranges::range_difference_t<const In>>(i)];
                });
            });
        }
    }
    ProcessSource(const ProcessSource&) = delete;
    ProcessSource& operator=(const ProcessSource&) = delete;
    ~ProcessSource() override {
        if (pool_->active()) pool_->cancel();  // a consumer that stopped early: the rest is cancelled
    }
    std::size_t size() const noexcept { return n_; }
    void cancel() noexcept { pool_->cancel(); }
    void finish() override {
        std::vector<Item<C>> none;
        while (pool_->active() && pull(none)) {
        }
    }

    bool pull(std::vector<Item<C>>& out) override {
        const std::size_t before = out.size();
        const auto on_batch = [&](std::size_t first, std::size_t count, const char* bytes, std::size_t size) {
            if constexpr (std::is_trivially_copyable_v<C>) {
                if (size != count * sizeof(C)) throw Error("a worker sent a batch of the wrong size");
                for (std::size_t i = 0; i < count; ++i) {
                    C value;
                    std::memcpy(&value, bytes + i * sizeof(C), sizeof(C));
                    out.push_back(Item<C>{first + i, std::move(value), nullptr});
                }
            } else {
                std::istringstream stream(std::string(bytes, size));
                std::vector<C> batch;
                {
                    cereal::BinaryInputArchive archive(stream);
                    archive(batch);
                }
                if (batch.size() != count) throw Error("a worker sent a batch of the wrong length");
                for (std::size_t i = 0; i < count; ++i) out.push_back(Item<C>{first + i, std::move(batch[i]), nullptr});
            }
        };
        const auto on_failure = [&](std::size_t task, std::exception_ptr error) {
            out.push_back(Item<C>{task, std::nullopt, std::move(error)});
        };
        while (out.size() == before) {
            if (!pool_->step(on_batch, on_failure)) break;
        }
        return out.size() > before;
    }

private:
    template <class Fd>
    std::tuple<PoolEntry, std::string, InputKind> encode() const {
        using U = std::remove_cvref_t<In>;
        if constexpr (is_integer_iota<U>::value) {
            using E = std::ranges::range_value_t<U>;
            std::string bytes(sizeof(E), '\0');
            const E start = n_ > 0 ? *std::ranges::begin(in_) : E{};
            std::memcpy(bytes.data(), &start, sizeof start);
            return {&pool_entry<R, Fd, E, InputKind::iota>, std::move(bytes), InputKind::iota};
        } else {
            using E = std::ranges::range_value_t<U>;
            if constexpr (std::is_trivially_copyable_v<E> && !std::is_same_v<E, bool>) {
                std::string bytes(n_ * sizeof(E), '\0');
                if constexpr (std::ranges::contiguous_range<const U>) {
                    if (n_ > 0) std::memcpy(bytes.data(), std::ranges::data(in_), n_ * sizeof(E));
                } else {
                    std::size_t i = 0;
                    for (const E& x : in_) std::memcpy(bytes.data() + sizeof(E) * i++, &x, sizeof(E));
                }
                return {&pool_entry<R, Fd, E, InputKind::raw>, std::move(bytes), InputKind::raw};
            } else {
                std::vector<E> copy(std::ranges::begin(in_), std::ranges::end(in_));
                std::ostringstream stream;
                {
                    cereal::BinaryOutputArchive archive(stream);
                    archive(copy);
                }
                return {&pool_entry<R, Fd, E, InputKind::cereal>, std::move(stream).str(), InputKind::cereal};
            }
        }
    }

    F f_;  // the caller's function (a reference in map(), a copy in imap())
    In in_;
    std::size_t n_;
    std::unique_ptr<ProcessPool> own_;  // the workers of this call (reuse = false)
    ProcessPool* pool_ = nullptr;
};

/// "task 7 took 812 ms, longer than 500 ms (the per-task timeout), in <where>: ..."
std::string describe_slow_task(std::size_t task, std::chrono::nanoseconds took, std::chrono::milliseconds limit,
                               const std::string& where);

/// The finished tasks of a call on threads: a few boost::threads claim
/// batches and queue their results; joined before the source is destroyed.
template <class R, class F, class In>
class ThreadSource : public ItemSource<typename Cell<R>::type> {
public:
    using C = typename Cell<R>::type;
    ThreadSource(unsigned workers, const ParallelOptions& options, std::string name, F f, In in)
        : f_(std::forward<F>(f)),
          in_(std::move(in)),
          n_(std::ranges::size(in_)),
          options_(options),
          name_(std::move(name)) {
        const unsigned w = static_cast<unsigned>(std::max<std::size_t>(1, std::min<std::size_t>(workers, n_)));
        deadline_ = std::chrono::steady_clock::now() + options_.timeout;
        running_ = w;
        try {
            for (unsigned k = 0; k < w; ++k) threads_.emplace_back([this, k, w] { work(k, w); });
        } catch (...) {
            stop_.store(true);
            for (auto& t : threads_) t.join();
            throw;
        }
    }
    ThreadSource(const ThreadSource&) = delete;
    ThreadSource& operator=(const ThreadSource&) = delete;
    ~ThreadSource() override {
        stop_.store(true);  // the tasks running now end first: a thread cannot be killed
        for (auto& t : threads_) t.join();
    }
    std::size_t size() const noexcept { return n_; }
    void cancel() noexcept { stop_.store(true); }

    bool pull(std::vector<Item<C>>& out) override {
        boost::unique_lock<boost::mutex> lock(mutex_);
        ready_.wait(lock, [&] { return !queue_.empty() || running_ == 0; });
        if (queue_.empty()) {
            if (timed_out_) {
                throw WorkerError(0, name_ + " did not finish within " + std::to_string(options_.timeout.count()) +
                                         " ms (threads stop between tasks)");
            }
            return false;
        }
        for (auto& item : queue_) out.push_back(std::move(item));
        queue_.clear();
        return true;
    }

private:
    void work(unsigned k, unsigned w) {
        const std::size_t fixed = options_.task_timeout.count() > 0 ? 1 : options_.batch_size;
        Batcher batches(cursor_.value, n_, w, fixed, std::chrono::milliseconds(2));
        const auto first_input = std::ranges::begin(in_);
        std::vector<Item<C>> done;
        std::size_t first = 0;
        for (std::size_t count; !stop_.load(std::memory_order_relaxed) && (count = batches.claim(first)) > 0;) {
            for (std::size_t i = first; i < first + count; ++i) {
                const auto start = std::chrono::steady_clock::now();
                Item<C> item{i, std::nullopt, nullptr};
                try {
                    item.value.emplace(f_(first_input[static_cast<std::ranges::range_difference_t<const In>>(i)]));
                } catch (const std::exception& e) {
                    item.error =
                        std::make_exception_ptr(TaskError(k, i,
                                                          "task " + std::to_string(i) + " raised: " + e.what() +
                                                              " (in thread worker " + std::to_string(k) + ")"));
                } catch (...) {
                    item.error = std::make_exception_ptr(TaskError(
                        k, i, "task " + std::to_string(i) + " raised an exception that is not a std::exception"));
                }
                const auto took = std::chrono::steady_clock::now() - start;
                if (!item.error && options_.task_timeout.count() > 0 && took > options_.task_timeout) {
                    item.value.reset();
                    item.error = std::make_exception_ptr(TaskError(
                        k, i,
                        describe_slow_task(i, took, options_.task_timeout, "thread worker " + std::to_string(k)) +
                            ": a thread cannot be killed, so the task ran to its end"));
                }
                done.push_back(std::move(item));
                if (options_.timeout.count() > 0 && std::chrono::steady_clock::now() >= deadline_) {
                    const boost::lock_guard<boost::mutex> lock(mutex_);
                    timed_out_ = true;
                    stop_.store(true);
                    break;
                }
            }
            const boost::lock_guard<boost::mutex> lock(mutex_);
            for (auto& item : done) queue_.push_back(std::move(item));
            done.clear();
            ready_.notify_one();
        }
        const boost::lock_guard<boost::mutex> lock(mutex_);
        for (auto& item : done) queue_.push_back(std::move(item));
        --running_;
        ready_.notify_one();
    }

    F f_;
    In in_;
    std::size_t n_;
    ParallelOptions options_;
    std::string name_;
    std::chrono::steady_clock::time_point deadline_;
    CacheAligned<std::atomic<std::uint64_t>> cursor_{0};
    std::atomic<bool> stop_{false};
    boost::mutex mutex_;
    boost::condition_variable ready_;
    std::vector<Item<C>> queue_;
    unsigned running_ = 0;
    bool timed_out_ = false;
    std::vector<boost::thread> threads_;  // last: joined before the rest goes
};

/// The finished tasks of a call with one worker: a lazy loop in the caller.
template <class R, class F, class V>
class SerialSource : public ItemSource<typename Cell<R>::type> {
public:
    using C = typename Cell<R>::type;
    SerialSource(const ParallelOptions& options, F f, V inputs)
        : f_(std::forward<F>(f)), inputs_(std::move(inputs)), options_(options), it_(std::ranges::begin(inputs_)) {}
    SerialSource(const SerialSource&) = delete;
    SerialSource& operator=(const SerialSource&) = delete;

    bool pull(std::vector<Item<C>>& out) override {
        if (it_ == std::ranges::end(inputs_)) return false;
        Item<C> item{i_, std::nullopt, nullptr};
        const auto start = std::chrono::steady_clock::now();
        try {
            item.value.emplace(f_(*it_));
        } catch (const std::exception& e) {
            item.error =
                std::make_exception_ptr(TaskError(0, i_, "task " + std::to_string(i_) + " raised: " + e.what()));
        }
        const auto took = std::chrono::steady_clock::now() - start;
        if (!item.error && options_.task_timeout.count() > 0 && took > options_.task_timeout) {
            item.value.reset();
            item.error = std::make_exception_ptr(
                TaskError(0, i_,
                          describe_slow_task(i_, took, options_.task_timeout, "the caller's loop") +
                              ": it ran to its end (one worker runs the tasks in the caller)"));
        }
        out.push_back(std::move(item));
        ++it_;
        ++i_;
        return true;
    }

private:
    F f_;
    V inputs_;
    ParallelOptions options_;
    std::ranges::iterator_t<V> it_;
    std::size_t i_ = 0;
};

/// A stream of a source's tasks, in input order (Ordered) or as they finish.
template <class R, bool Ordered>
class StreamOf : public Stream<std::conditional_t<Ordered, R, Indexed<R>>> {
public:
    using C = typename Cell<R>::type;
    using T = std::conditional_t<Ordered, R, Indexed<R>>;
    /// n: the number of tasks; in_order: the source hands them over in input
    /// order already (a serial loop), so nothing waits in a buffer.
    StreamOf(std::unique_ptr<ItemSource<C>> source, std::size_t n, bool in_order)
        : source_(std::move(source)), n_(n), in_order_(in_order) {
        if (Ordered && !in_order) {
            values_.resize(n);
            errors_.resize(n);
            arrived_.resize(n, 0);
        }
    }

    bool advance(std::optional<T>& value, std::exception_ptr& error) override {
        if constexpr (Ordered) {
            if (!in_order_) return advance_in_order(value, error);
        }
        {
            if (pending_ >= batch_.size()) {
                batch_.clear();
                pending_ = 0;
                if (!source_->pull(batch_)) return false;
            }
            Item<C>& item = batch_[pending_++];
            if (item.error) {
                error = std::move(item.error);
            } else if constexpr (Ordered) {
                value.emplace(R(std::move(*item.value)));
            } else {
                value.emplace(T{item.index, R(std::move(*item.value))});
            }
            return true;
        }
    }

private:
    bool advance_in_order(std::optional<T>& value, std::exception_ptr& error) {
        if (next_ >= n_) {
            source_->finish();
            return false;
        }
        while (!arrived_[next_]) {
            batch_.clear();
            if (!source_->pull(batch_)) throw Error("internal: a call ended before every result arrived");
            for (auto& item : batch_) {
                arrived_[item.index] = 1;
                if (item.error) {
                    errors_[item.index] = std::move(item.error);
                } else {
                    values_[item.index] = std::move(item.value);
                }
            }
        }
        if (errors_[next_]) {
            error = std::move(errors_[next_]);
        } else {
            value.emplace(R(std::move(*values_[next_])));
            values_[next_].reset();
        }
        ++next_;
        return true;
    }

    std::unique_ptr<ItemSource<C>> source_;
    std::size_t n_ = 0;
    bool in_order_ = false;
    std::vector<Item<C>> batch_;
    std::size_t pending_ = 0;  // unordered: the next item of batch_ to hand out
    std::vector<std::optional<C>> values_;
    std::vector<std::exception_ptr> errors_;
    std::vector<char> arrived_;
    std::size_t next_ = 0;
};

}  // namespace detail

/// What imap() and imap_unordered() return: the results of a call as they
/// come, an input range to iterate once. Dereferencing an element whose task
/// failed throws its TaskError; the caller may catch it and go on with `++`
/// (the other tasks went on). Destroying the range before its end cancels
/// the rest of the call (process workers are killed and reaped; a pool
/// replaces them on its next call; threads finish the task they run).
/// It refers to its Parallel: use it while the Parallel lives, and do not
/// move it while iterating.
template <class T>
class ResultStream {
public:
    explicit ResultStream(std::unique_ptr<detail::Stream<T>> stream) : stream_(std::move(stream)) {}
    ResultStream(ResultStream&&) noexcept = default;
    ResultStream& operator=(ResultStream&&) noexcept = default;

    class iterator {
    public:
        using value_type = T;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        explicit iterator(ResultStream* s) noexcept : s_(s) {}
        /// The element; throws its TaskError when its task failed.
        T& operator*() const {
            if (s_->error_) std::rethrow_exception(s_->error_);
            return *s_->value_;
        }
        T* operator->() const { return &**this; }
        /// Waits for the next element. Throws WorkerError when the whole call fails.
        iterator& operator++() {
            s_->advance();
            return *this;
        }
        void operator++(int) { s_->advance(); }
        friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return it.at_end(); }

    private:
        bool at_end() const noexcept { return s_ == nullptr || s_->done_; }
        ResultStream* s_ = nullptr;
    };

    /// Waits for the first element.
    iterator begin() {
        if (!started_) {
            started_ = true;
            advance();
        }
        return iterator(this);
    }
    std::default_sentinel_t end() const noexcept { return {}; }

private:
    void advance() {
        value_.reset();
        error_ = nullptr;
        try {
            if (done_ || !stream_->advance(value_, error_)) done_ = true;
        } catch (...) {
            done_ = true;
            throw;
        }
    }

    std::unique_ptr<detail::Stream<T>> stream_;
    std::optional<T> value_;
    std::exception_ptr error_;
    bool started_ = false;
    bool done_ = false;
};

/// joblib.Parallel for C++: calls a function on every input, on n_jobs workers.
class Parallel {
public:
    /// Throws corelab::Error when n_jobs is 0 or above 1024, or a timeout is negative.
    explicit Parallel(ParallelOptions options = {});
    /// A copy has the options, not the pool: it starts workers of its own.
    Parallel(const Parallel& other);
    Parallel& operator=(const Parallel& other);
    Parallel(Parallel&&) noexcept;
    Parallel& operator=(Parallel&&) noexcept;
    /// close().
    ~Parallel();

    /// How many workers a call starts (n_jobs resolved against the CPUs).
    unsigned workers() const noexcept { return workers_; }
    const ParallelOptions& options() const noexcept { return options_; }
    /// `Parallel(n_jobs=2)`, as joblib names itself in its progress lines.
    std::string name() const;

    /// Returns {f(x) for x in inputs}, in input order. inputs: any input range
    /// (corelab::range(n), a vector, a span...). With workers() == 1 it is a
    /// plain loop in the caller. The result type must be default constructible;
    /// through processes it must be trivially copyable or serialisable with
    /// cereal (strings, vectors...). Throws TaskError naming the task when a
    /// task throws or its worker process dies, WorkerError on a timeout
    /// (see ParallelOptions::timeout), corelab::Error when processes cannot be
    /// forked (other threads run in this process; out of processes).
    template <class F, std::ranges::input_range Range>
    auto map(F&& f, const Range& inputs)
        -> std::vector<std::invoke_result_t<F&, std::ranges::range_reference_t<const Range>>>;

    /// Calls f(x) for every input, like map() without results.
    template <class F, std::ranges::input_range Range>
    void for_each(F&& f, const Range& inputs) {
        using Fd = std::remove_cvref_t<F>;
        if constexpr (std::is_trivially_copyable_v<Fd>) {
            map(  // f by value: a pool worker gets this closure's bytes
                [f = Fd(f)](auto&& x) {
                    f(std::forward<decltype(x)>(x));
                    return char{0};
                },
                inputs);
        } else {
            map(
                [&f](auto&& x) {
                    f(std::forward<decltype(x)>(x));
                    return char{0};
                },
                inputs);
        }
    }

    /// f(x) for x in inputs, each result as soon as it and all before it are
    /// ready (joblib's return_as="generator"). inputs: any input range, kept
    /// (a view of an lvalue, a copy of an rvalue) until the range ends; f is
    /// copied. Errors arrive at their element (see ResultStream). With
    /// workers() == 1 it is a lazy loop in the caller. Throws what map()
    /// throws when the call cannot start.
    template <class F, std::ranges::input_range Range>
    auto imap(F&& f, Range&& inputs) {
        using V = std::views::all_t<Range>;
        using R = std::invoke_result_t<std::decay_t<F>&, std::ranges::range_reference_t<V>>;
        return ResultStream<R>(stream<R, true>(std::forward<F>(f), std::views::all(std::forward<Range>(inputs))));
    }

    /// Like imap(), in the order the tasks finish: each element is an
    /// Indexed<R>{index, value} (joblib's return_as="generator_unordered").
    template <class F, std::ranges::input_range Range>
    auto imap_unordered(F&& f, Range&& inputs) {
        using V = std::views::all_t<Range>;
        using R = std::invoke_result_t<std::decay_t<F>&, std::ranges::range_reference_t<V>>;
        return ResultStream<Indexed<R>>(
            stream<R, false>(std::forward<F>(f), std::views::all(std::forward<Range>(inputs))));
    }

    /// The pids of the live pool workers (reuse = true), empty when none.
    std::vector<pid_t> worker_pids() const;

    /// Ends the pool's workers now (the destructor does it too); a later call
    /// starts new ones. Does nothing without a pool, and in a forked copy of
    /// the process that made it only lets go of its own copy.
    void close() noexcept;

private:
    /// The pool of a reuse = true Parallel, made on its first call (a fork
    /// of this process drops its copy of the parent's and makes its own).
    detail::ProcessPool& pool();
    bool streamed_processes() const noexcept {
        return options_.backend == Backend::processes && (options_.reuse || options_.task_timeout.count() > 0);
    }
    /// map() through a streamed source: processes with reuse or task_timeout, threads with task_timeout.
    template <class R, bool Ordered, class F, class V>
    std::unique_ptr<detail::Stream<std::conditional_t<Ordered, R, Indexed<R>>>> stream(F&& f, V view);
    template <class R, class F, class Inputs>
    void run_streamed(F& f, const Inputs& in, std::vector<typename detail::Cell<R>::type>& out,
                      detail::Progress& progress);

    template <class R, class F, class Inputs>
    std::vector<R> run(F& f, const Inputs& in);
    template <class R, class F, class Inputs>
    void run_serial(F& f, const Inputs& in, std::vector<typename detail::Cell<R>::type>& out,
                    detail::Progress& progress);
    template <class R, class F, class Inputs>
    void run_threads(F& f, const Inputs& in, std::vector<typename detail::Cell<R>::type>& out,
                     detail::Progress& progress);
    template <class R, class F, class Inputs>
    void run_processes(F& f, const Inputs& in, std::size_t n, std::vector<typename detail::Cell<R>::type>& out,
                       detail::Progress& progress);

    ParallelOptions options_;
    unsigned workers_;
    std::unique_ptr<detail::ProcessPool> pool_;
};

// ------------------------------------------------------------------ implementation

template <class F, std::ranges::input_range Range>
auto Parallel::map(F&& f, const Range& inputs)
    -> std::vector<std::invoke_result_t<F&, std::ranges::range_reference_t<const Range>>> {
    using R = std::invoke_result_t<F&, std::ranges::range_reference_t<const Range>>;
    static_assert(std::is_default_constructible_v<R>,
                  "map() stores results in place: make the result default constructible");
    if constexpr (std::ranges::random_access_range<const Range> && std::ranges::sized_range<const Range>) {
        return run<R>(f, inputs);
    } else {
        // a range without indices (a list, a generator): copy its inputs first
        std::vector<std::ranges::range_value_t<const Range>> copy(std::ranges::begin(inputs), std::ranges::end(inputs));
        return run<R>(f, copy);
    }
}

template <class R, class F, class Inputs>
std::vector<R> Parallel::run(F& f, const Inputs& in) {
    const std::size_t n = std::ranges::size(in);
    std::vector<typename detail::Cell<R>::type> out;
    detail::Progress progress(name(), options_.verbose, options_.progress, n);
    if (n > 0) {
        if (workers_ == 1 || n == 1) {
            out.resize(n);
            run_serial<R>(f, in, out, progress);
        } else if (options_.backend == Backend::threads && options_.task_timeout.count() == 0) {
            out.resize(n);
            run_threads<R>(f, in, out, progress);
        } else if (options_.backend == Backend::threads || streamed_processes()) {
            run_streamed<R>(f, in, out, progress);
        } else {
            run_processes<R>(f, in, n, out, progress);  // allocates `out` after the fork
        }
    }
    progress.finish();
    if constexpr (std::is_same_v<R, bool>) {
        return std::vector<bool>(out.begin(), out.end());
    } else {
        return out;
    }
}

template <class R, class F, class Inputs>
void Parallel::run_serial(F& f, const Inputs& in, std::vector<typename detail::Cell<R>::type>& out,
                          detail::Progress& progress) {
    const auto first = std::ranges::begin(in);
    const bool timed = options_.task_timeout.count() > 0;
    for (std::size_t i = 0; i < out.size(); ++i) {
        const auto start = timed ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
        try {
            out[i] = f(first[static_cast<std::ranges::range_difference_t<const Inputs>>(i)]);
        } catch (const std::exception& e) {
            std::throw_with_nested(TaskError(0, i, "task " + std::to_string(i) + " raised: " + e.what()));
        }
        if (timed && std::chrono::steady_clock::now() - start > options_.task_timeout) {
            throw TaskError(0, i,
                            detail::describe_slow_task(i, std::chrono::steady_clock::now() - start,
                                                       options_.task_timeout, "the caller's loop") +
                                ": it ran to its end (one worker runs the tasks in the caller)");
        }
        progress.done(1);
    }
}

// [docs:threads]
template <class R, class F, class Inputs>
void Parallel::run_threads(F& f, const Inputs& in, std::vector<typename detail::Cell<R>::type>& out,
                           detail::Progress& progress) {
    const std::size_t n = out.size();
    const unsigned w = static_cast<unsigned>(std::min<std::size_t>(workers_, n));
    CacheAligned<std::atomic<std::uint64_t>> cursor{0};
    std::atomic<bool> stop{false};
    std::mutex failure_mutex;
    std::optional<TaskError> failure;  // the first task to throw
    const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
    const bool timed = options_.timeout.count() > 0;
    const auto first_input = std::ranges::begin(in);
    ThreadWorkers(w).run([&](unsigned k) {
        detail::Batcher batches(cursor.value, n, w, options_.batch_size, std::chrono::milliseconds(2));
        std::size_t first = 0;
        for (std::size_t count; !stop.load(std::memory_order_relaxed) && (count = batches.claim(first)) > 0;) {
            for (std::size_t i = first; i < first + count; ++i) {
                try {
                    out[i] = f(first_input[static_cast<std::ranges::range_difference_t<const Inputs>>(
                        i)]);  // slot i: this thread only
                } catch (const std::exception& e) {
                    const std::lock_guard lock(failure_mutex);
                    if (!failure)
                        failure.emplace(k, i,
                                        "task " + std::to_string(i) + " raised: " + e.what() + " (in thread worker " +
                                            std::to_string(k) + ")");
                    stop.store(true);
                    return 0;
                }
                if (timed && std::chrono::steady_clock::now() >= deadline) {
                    stop.store(true);
                    return 0;
                }
            }
            progress.done(count);
        }
        return 0;
    });
    // every thread has been joined: the results and the failure are ours to read
    if (failure) throw *failure;
    if (stop.load()) {
        throw WorkerError(0, name() + " did not finish within " + std::to_string(options_.timeout.count()) +
                                 " ms (threads stop between tasks)");
    }
}
// [docs:end]

// [docs:processes]
template <class R, class F, class Inputs>
void Parallel::run_processes(F& f, const Inputs& in, std::size_t n, std::vector<typename detail::Cell<R>::type>& out,
                             detail::Progress& progress) {
    using C = typename detail::Cell<R>::type;
    constexpr bool raw = std::is_trivially_copyable_v<C>;
    const unsigned w = static_cast<unsigned>(std::min<std::size_t>(workers_, n));
    detail::ProcessMap pm(w, n, options_, name());
    for (unsigned k = 0; k < w; ++k) {
        if (!pm.fork_worker(k)) continue;
        // in child k: take batches until none is left, send each batch's results
        const auto first_input = std::ranges::begin(in);
        detail::Batcher batches = pm.batcher(std::chrono::milliseconds(20));
        std::vector<C> results;
        std::size_t first = 0;
        for (std::size_t count; (count = batches.claim(first)) > 0;) {
            results.clear();
            for (std::size_t i = first; i < first + count; ++i) {
                pm.holding(i);
                try {
                    results.push_back(f(first_input[static_cast<std::ranges::range_difference_t<const Inputs>>(i)]));
                } catch (const std::exception& e) {
                    pm.send_error_and_exit(i, e.what());
                } catch (...) {
                    pm.send_error_and_exit(i, "an exception that is not a std::exception");
                }
            }
            if constexpr (raw) {
                pm.send_results(first, count, results.data(), count * sizeof(C));
            } else {
                std::ostringstream bytes;
                {
                    cereal::BinaryOutputArchive archive(bytes);
                    archive(results);
                }
                const std::string s = std::move(bytes).str();
                pm.send_results(first, count, s.data(), s.size());
            }
        }
        pm.child_exit();
    }
    // in the parent: put each batch in place as it arrives. `out` is made only
    // now: pages touched before the fork would be shared copy-on-write with
    // the workers, and every write below would fault and copy a page
    out.resize(n);
    pm.collect(
        [&](std::size_t first, std::size_t count, const char* bytes, std::size_t size) {
            if constexpr (raw) {
                if (size != count * sizeof(C)) throw Error("a worker sent a batch of the wrong size");
                std::memcpy(out.data() + first, bytes, size);
            } else {
                std::istringstream stream(std::string(bytes, size));
                std::vector<C> batch;
                {
                    cereal::BinaryInputArchive archive(stream);
                    archive(batch);
                }
                if (batch.size() != count) throw Error("a worker sent a batch of the wrong length");
                std::move(batch.begin(), batch.end(), out.begin() + static_cast<std::ptrdiff_t>(first));
            }
        },
        &progress);
}
// [docs:end]

template <class R, bool Ordered, class F, class V>
std::unique_ptr<detail::Stream<std::conditional_t<Ordered, R, Indexed<R>>>> Parallel::stream(F&& f, V view) {
    using C = typename detail::Cell<R>::type;
    using Fd = std::decay_t<F>;
    std::unique_ptr<detail::ItemSource<C>> source;
    std::size_t n = 0;
    bool in_order = false;
    if (workers_ == 1) {
        // a plain lazy loop in the caller, in input order
        if constexpr (std::ranges::sized_range<const V>) n = std::ranges::size(view);
        source = std::make_unique<detail::SerialSource<R, Fd, V>>(options_, std::forward<F>(f), std::move(view));
        in_order = true;
    } else {
        auto in = detail::materialize(std::move(view));
        using In = decltype(in);
        n = std::ranges::size(in);
        if (options_.backend == Backend::threads) {
            source = std::make_unique<detail::ThreadSource<R, Fd, In>>(workers_, options_, name(), std::forward<F>(f),
                                                                       std::move(in));
        } else {
            detail::ProcessPool* shared = options_.reuse ? &pool() : nullptr;
            source = std::make_unique<detail::ProcessSource<R, Fd, In>>(shared, workers_, options_, name(),
                                                                        std::forward<F>(f), std::move(in));
        }
    }
    return std::make_unique<detail::StreamOf<R, Ordered>>(std::move(source), n, in_order);
}

template <class R, class F, class Inputs>
void Parallel::run_streamed(F& f, const Inputs& in, std::vector<typename detail::Cell<R>::type>& out,
                            detail::Progress& progress) {
    using C = typename detail::Cell<R>::type;
    const std::size_t n = std::ranges::size(in);
    std::optional<detail::ProcessSource<R, F&, const Inputs&>> processes;
    std::optional<detail::ThreadSource<R, F&, const Inputs&>> threads;  // threads with task_timeout
    detail::ItemSource<C>* source = nullptr;
    if (options_.backend == Backend::threads) {
        source = &threads.emplace(workers_, options_, name(), f, in);
    } else {
        detail::ProcessPool* shared = options_.reuse ? &pool() : nullptr;
        source = &processes.emplace(shared, workers_, options_, name(), f, in);
    }
    const auto cancel = [&] {
        if (processes) processes->cancel();
        if (threads) threads->cancel();
    };
    out.resize(n);  // after the workers are forked (see run_processes)
    std::vector<detail::Item<C>> items;
    while (source->pull(items)) {
        for (auto& item : items) {
            if (item.error) {
                cancel();  // the rest is cancelled before the first failure is thrown
                std::rethrow_exception(item.error);
            }
            out[item.index] = std::move(*item.value);
        }
        progress.done(items.size());
        items.clear();
    }
}

}  // namespace corelab
