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
// Backend::processes starts the workers (corelab::Children) once per map() call, after the inputs
// exist: children read them copy-on-write. The cursor and one "task held"
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
#pragma once

#include <algorithm>                   // std::min, std::max
#include <atomic>                      // std::atomic
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
#include <mutex>                       // std::mutex (progress and the first failure, threads)
#include <optional>                    // std::optional
#include <ranges>                      // std::views::iota, std::ranges::random_access_range
#include <sstream>                     // std::ostringstream, std::istringstream (cereal's streams)
#include <string>                      // std::string
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

}  // namespace detail

/// joblib.Parallel for C++: calls a function on every input, on n_jobs workers.
class Parallel {
public:
    /// Throws corelab::Error when n_jobs is 0 or above 1024.
    explicit Parallel(ParallelOptions options = {});

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
        map(
            [&f](auto&& x) {
                f(std::forward<decltype(x)>(x));
                return char{0};
            },
            inputs);
    }

private:
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
        } else if (options_.backend == Backend::threads) {
            out.resize(n);
            run_threads<R>(f, in, out, progress);
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
    for (std::size_t i = 0; i < out.size(); ++i) {
        try {
            out[i] = f(first[static_cast<std::ranges::range_difference_t<const Inputs>>(i)]);
        } catch (const std::exception& e) {
            std::throw_with_nested(TaskError(0, i, "task " + std::to_string(i) + " raised: " + e.what()));
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

}  // namespace corelab
