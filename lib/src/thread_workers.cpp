// Implementation of corelab/thread_workers.hpp.
#include "corelab/thread_workers.hpp"

#include <string>  // std::to_string

namespace corelab {

ThreadWorkers::ThreadWorkers(unsigned workers) : workers_(workers) {
    if (workers == 0) throw Error("ThreadWorkers needs at least one worker, not 0", About::workers);
}

void ThreadWorkers::start_and_join(const std::function<void(unsigned)>& start) {
    // join() is an interruption point of Boost.Thread: a caller that is itself
    // an interrupted boost::thread must still wait for every worker.
    boost::this_thread::disable_interruption no_interruption;
    stop_.store(false);
    first_failed_.store(0);
    std::vector<boost::thread> threads;
    threads.reserve(workers_);
    std::string failure;
    for (unsigned k = 0; k < workers_; ++k) {
        try {
            threads.emplace_back([&start, k] { start(k); });
        } catch (const std::exception& e) {
            // Out of threads or memory: stop the ones running, join them, then report.
            stop_.store(true);
            failure = "could not start thread " + std::to_string(k) + " of " + std::to_string(workers_) + " (" +
                      e.what() + "): use fewer workers";
            break;
        }
    }
    for (boost::thread& t : threads) t.join();
    if (!failure.empty()) throw Error(failure);
}

void ThreadWorkers::record_failure(unsigned worker) noexcept {
    // Only the first worker to fail (in time) is recorded; the flag also asks
    // the others to stop.
    bool expected = false;
    if (stop_.compare_exchange_strong(expected, true)) first_failed_.store(worker);
}

void ThreadWorkers::rethrow(const std::exception_ptr& error) const {
    const unsigned k = first_failed_.load();
    const std::string who = "worker " + std::to_string(k) + ": ";
    // The original exception stays reachable with std::rethrow_if_nested.
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        std::throw_with_nested(WorkerError(k, who + e.what()));
    } catch (...) {
        std::throw_with_nested(WorkerError(k, who + "threw something that is not a std::exception"));
    }
}

GlobalLock::GlobalLock(std::chrono::microseconds switch_interval, std::size_t slice)
    : interval_(switch_interval), slice_(slice) {
    if (slice == 0) throw Error("GlobalLock: a slice of 0 elements would never make progress: give 1 or more");
    if (switch_interval.count() < 0) throw Error("GlobalLock: the switch interval cannot be negative");
}

// A ticket lock: waiters are served in the order they arrived, so a worker
// that offers the lock cannot take it straight back (CPython forces the same
// with its FORCE_SWITCHING). Waits are not interruption points: a ticket
// taken must be served, or everyone behind it would wait forever.
void GlobalLock::acquire() {
    boost::this_thread::disable_interruption no_interruption;
    boost::unique_lock<boost::mutex> lock(mutex_);
    const std::uint64_t ticket = next_ticket_++;
    while (now_serving_ != ticket) turn_.wait(lock);
}

void GlobalLock::release() {
    {
        boost::lock_guard<boost::mutex> lock(mutex_);
        ++now_serving_;
    }
    turn_.notify_all();
}

bool GlobalLock::offer() {
    boost::this_thread::disable_interruption no_interruption;
    boost::unique_lock<boost::mutex> lock(mutex_);
    if (next_ticket_ - now_serving_ <= 1) return false;  // nobody waits: keep computing
    ++handovers_;
    ++now_serving_;
    const std::uint64_t ticket = next_ticket_++;
    turn_.notify_all();
    while (now_serving_ != ticket) turn_.wait(lock);
    return true;
}

std::uint64_t GlobalLock::handovers() const {
    boost::lock_guard<boost::mutex> lock(mutex_);
    return handovers_;
}

}  // namespace corelab
