// corelab/thread_workers.hpp — threads that share the caller's memory.
//
// Concept: the notebook's In[6] starts two `threading.Thread`s that read the
// same array and write their means into a shared list. ThreadWorkers does the
// same with `boost::thread`: worker k runs fn(k), its result goes into a slot
// of its own, and the caller gets the results in worker order. No copy, no
// queue: a thread sees the caller's data directly. Slots sit on separate cache
// lines (CacheAligned, from cache_line.hpp), so one worker's writes never slow
// another's (lesson 04's false_sharing row shows what happens otherwise). An
// exception in a worker is caught in that thread, the others are asked to stop
// and are all joined, and the first one is rethrown in the caller as a
// WorkerError that names the worker: never std::terminate, never a thread left
// running.
//
// GlobalLock rebuilds Python's Global Interpreter Lock on purpose, so lesson 04
// can show what it costs: a worker computes only while it holds the lock and
// offers it to the others every `switch_interval` (Python's default: 5 ms).
//
// ThreadWorkers has the shape of ProcessWorkers (lesson 03): change one word
// to move the same function from threads to processes. Used by lesson 04.
#pragma once

#include <algorithm>         // std::min
#include <atomic>            // std::atomic
#include <boost/thread.hpp>  // boost::thread, boost::mutex, boost::condition_variable
#include <chrono>            // std::chrono::microseconds, steady_clock
#include <cstddef>           // std::size_t
#include <cstdint>           // std::uint64_t
#include <exception>         // std::exception_ptr, std::current_exception
#include <functional>        // std::function
#include <optional>          // std::optional
#include <string>            // std::string
#include <type_traits>       // std::invoke_result_t
#include <utility>           // std::move
#include <vector>            // std::vector

#include "corelab/cache_line.hpp"  // CacheAligned: one result slot per cache line
#include "corelab/error.hpp"       // Error, WorkerError

namespace corelab {

/// Starts `size()` boost::threads per run(); thread k runs fn(k).
class ThreadWorkers {
public:
    /// Throws corelab::Error when workers is 0.
    explicit ThreadWorkers(unsigned workers);

    /// How many threads each run() starts.
    unsigned size() const noexcept { return workers_; }

    /// True once a worker of the current run() has thrown: long-running
    /// workers may poll it and return early (the result is discarded anyway).
    bool stop_requested() const noexcept { return stop_.load(std::memory_order_relaxed); }

    /// Runs fn(k) for k in [0, size()) on size() threads, at the same time and
    /// on the caller's memory (fn is called concurrently: it must only share
    /// what is safe to share). Returns the results in worker order. fn must
    /// return a value (a Partial, a count...). When workers throw, every thread
    /// is still joined, then the first exception (in time) is rethrown as
    /// corelab::WorkerError(k, "worker k: <what()>"). Throws corelab::Error when
    /// a thread cannot be started (after joining those that were). One run()
    /// at a time per object.
    template <class F>
    auto run(F&& fn) -> std::vector<std::invoke_result_t<F&, unsigned>>;

private:
    /// What one worker leaves behind: its result or its exception.
    template <class R>
    struct Slot {
        std::optional<R> value;
        std::exception_ptr error;
    };

    // Starts start(k) on thread k for every k, joins them all; the non-template part of run().
    void start_and_join(const std::function<void(unsigned)>& start);
    void record_failure(unsigned worker) noexcept;
    [[noreturn]] void rethrow(const std::exception_ptr& error) const;

    unsigned workers_;
    std::atomic<bool> stop_{false};
    std::atomic<unsigned> first_failed_{0};
};

// [docs:run]
template <class F>
auto ThreadWorkers::run(F&& fn) -> std::vector<std::invoke_result_t<F&, unsigned>> {
    using R = std::invoke_result_t<F&, unsigned>;
    // One slot per worker, each on its own cache line.
    std::vector<CacheAligned<Slot<R>>> slots(workers_);
    start_and_join([&](unsigned k) {
        try {
            slots[k].value.value.emplace(fn(k));  // thread k writes only slot k
        } catch (...) {
            slots[k].value.error = std::current_exception();
            record_failure(k);
        }
    });
    // Every thread has been joined: reading the slots is now safe.
    if (stop_requested()) rethrow(slots[first_failed_.load()].value.error);
    std::vector<R> results;
    results.reserve(workers_);
    for (auto& slot : slots) results.push_back(std::move(*slot.value.value));
    return results;
}
// [docs:end]

/// Python's Global Interpreter Lock, rebuilt: at most one worker computes at
/// any instant. A worker calls run(n, body): it waits for the lock, then calls
/// body(first, count) for consecutive slices of [0, n) while holding it, and
/// every `switch_interval` (checked after each slice) hands the lock to the
/// longest-waiting worker, if one is waiting, and queues up again. Like
/// CPython's GIL it is a flag guarded by a mutex and a condition variable; a
/// ticket queue makes the hand-over round-robin.
class GlobalLock {
public:
    /// Python's default switch interval, sys.getswitchinterval(): 5 ms.
    static constexpr std::chrono::microseconds python_switch_interval{5000};
    /// Elements per slice: the clock is read once per slice.
    static constexpr std::size_t default_slice = 4096;

    /// Throws corelab::Error when slice is 0. A switch interval of 0 offers
    /// the lock after every slice.
    explicit GlobalLock(std::chrono::microseconds switch_interval = python_switch_interval,
                        std::size_t slice = default_slice);

    std::chrono::microseconds switch_interval() const noexcept { return interval_; }

    /// Calls body(first, count) for slices covering [0, n) in order, holding
    /// the lock during each; exceptions from body propagate (the lock is released).
    template <class Body>
    void run(std::size_t n, Body&& body);

    /// How many times the lock has passed from one worker to a waiting one.
    std::uint64_t handovers() const;

private:
    // Takes a ticket and waits until it is served.
    void acquire();
    // Serves the next ticket.
    void release();
    // If another worker waits, serves it and queues up again; returns whether it did.
    bool offer();

    /// Releases the lock when a run() ends, normally or by an exception.
    class Held {
    public:
        explicit Held(GlobalLock& lock) : lock_(lock) { lock_.acquire(); }
        ~Held() { lock_.release(); }
        Held(const Held&) = delete;
        Held& operator=(const Held&) = delete;

    private:
        GlobalLock& lock_;
    };

    std::chrono::microseconds interval_;
    std::size_t slice_;
    mutable boost::mutex mutex_;      // guards the three counters below
    boost::condition_variable turn_;  // signalled when now_serving_ advances
    std::uint64_t next_ticket_ = 0;   // the ticket the next waiter takes
    std::uint64_t now_serving_ = 0;   // the ticket whose holder may compute
    std::uint64_t handovers_ = 0;
};

// [docs:gil]
template <class Body>
void GlobalLock::run(std::size_t n, Body&& body) {
    using clock = std::chrono::steady_clock;
    Held held(*this);  // wait for the lock: no computing without it
    auto deadline = clock::now() + interval_;
    for (std::size_t first = 0; first < n; first += slice_) {
        body(first, std::min(slice_, n - first));
        if (clock::now() >= deadline) {  // like CPython's eval loop, every 5 ms:
            offer();                     // let a waiting thread run, then queue up again
            deadline = clock::now() + interval_;
        }
    }
}
// [docs:end]

}  // namespace corelab
