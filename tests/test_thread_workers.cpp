// Tests of corelab/thread_workers.hpp: ThreadWorkers' results equal the serial
// ones for many sizes and worker counts, failures reach the caller with the
// worker's index after every thread was joined, and GlobalLock lets one worker
// compute at a time while every worker makes progress.
#include <doctest/doctest.h>

#include <algorithm>   // std::count
#include <atomic>      // std::atomic
#include <chrono>      // std::chrono
#include <filesystem>  // directory_iterator: count this process's threads
#include <memory>      // std::unique_ptr
#include <numeric>     // std::iota
#include <set>         // std::set
#include <stdexcept>   // std::runtime_error
#include <string>      // std::string
#include <thread>      // std::this_thread
#include <vector>      // std::vector

#include "corelab/error.hpp"
#include "corelab/reduce.hpp"
#include "corelab/thread_workers.hpp"

using corelab::GlobalLock;
using corelab::Partial;
using corelab::ThreadWorkers;
using corelab::WorkerError;
using namespace std::chrono_literals;

namespace {

// The threads of this process, as the kernel lists them: a thread that was
// not joined (or detached and still running) is still here.
std::size_t live_threads() {
    std::size_t count = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
        (void)entry;
        ++count;
    }
    return count;
}

// A joined thread may stay listed for a moment after join() returns (the
// kernel wakes the joiner just before it removes the thread): wait up to
// 50 ms for the count to settle, much less than the 100 ms the workers of
// the tests below would still be sleeping had they not been joined.
bool back_to(std::size_t threads) {
    const auto give_up = std::chrono::steady_clock::now() + 50ms;
    while (live_threads() > threads && std::chrono::steady_clock::now() < give_up) std::this_thread::sleep_for(1ms);
    return live_threads() == threads;
}

}  // namespace

TEST_CASE("thread_workers: partial sums equal the serial sum for every size and worker count" * doctest::timeout(60)) {
    for (unsigned workers : {1u, 2u, 3u, 7u, 64u}) {
        ThreadWorkers pool(workers);
        CHECK(pool.size() == workers);
        for (std::size_t n : {0u, 1u, 2u, 3u, 7u, 1000u, 1001u, 65537u}) {
            std::vector<double> d(n);
            std::iota(d.begin(), d.end(), 1.0);  // exact integer sums: any order gives the same result
            const std::span<const double> data(d);
            std::vector<std::atomic<int>> calls(workers);
            const std::vector<Partial> parts = pool.run([&](unsigned k) {
                calls[k].fetch_add(1);
                return corelab::sum_loop(corelab::chunk(data, k, workers));
            });
            CAPTURE(workers);
            CAPTURE(n);
            REQUIRE(parts.size() == workers);
            for (unsigned k = 0; k < workers; ++k) {
                CHECK(calls[k].load() == 1);  // every worker ran exactly once
                const auto range = corelab::chunk_range(n, k, workers);
                CHECK(parts[k] == corelab::sum_loop(data.subspan(range.first, range.count)));  // in worker order
            }
            CHECK(corelab::combine(parts) == corelab::sum_loop(data));
        }
    }
}

TEST_CASE("thread_workers: each worker runs on its own thread and not the caller's" * doctest::timeout(30)) {
    ThreadWorkers pool(7);
    const auto ids = pool.run([](unsigned) { return boost::this_thread::get_id(); });
    const std::set<boost::thread::id> distinct(ids.begin(), ids.end());
    CHECK(distinct.size() == 7);
    CHECK(distinct.count(boost::this_thread::get_id()) == 0);
}

TEST_CASE("thread_workers: results need not be default-constructible or copyable" * doctest::timeout(30)) {
    struct Only {
        explicit Only(unsigned v) : value(v) {}
        unsigned value;
    };
    ThreadWorkers pool(3);
    const auto only = pool.run([](unsigned k) { return Only(k * 10); });
    CHECK(only[2].value == 20);
    const auto owned = pool.run([](unsigned k) { return std::make_unique<unsigned>(k + 1); });
    CHECK(*owned[0] == 1);
    CHECK(*owned[2] == 3);
}

TEST_CASE("thread_workers: zero workers is an error" * doctest::timeout(10)) {
    CHECK_THROWS_AS(ThreadWorkers(0), corelab::Error);
}

TEST_CASE("thread_workers: an exception in one worker reaches the caller with its index after all are joined" *
          doctest::timeout(30)) {
    ThreadWorkers pool(4);
    std::atomic<int> finished{0};
    pool.run([](unsigned) { return 0; });  // ThreadSanitizer starts a helper thread with the first one
    const std::size_t before = live_threads();
    try {
        pool.run([&](unsigned k) -> int {
            if (k == 2) throw std::runtime_error("boom");
            std::this_thread::sleep_for(100ms);  // still running when worker 2 throws
            finished.fetch_add(1);
            return 0;
        });
        FAIL("run() returned although worker 2 threw");
    } catch (const WorkerError& e) {
        CHECK(e.worker() == 2);
        CHECK(std::string(e.what()) == "worker 2: boom");
        // the original exception is kept, nested
        CHECK_THROWS_WITH_AS(std::rethrow_if_nested(e), "boom", std::runtime_error);
    }
    CHECK(finished.load() == 3);  // the others finished their work
    CHECK(back_to(before));       // and no thread is left running
    // the pool is usable again: the failure does not stick
    const auto again = pool.run([](unsigned k) { return k; });
    CHECK(again == std::vector<unsigned>{0, 1, 2, 3});
}

TEST_CASE("thread_workers: when every worker throws the caller gets one of them with the matching index" *
          doctest::timeout(30)) {
    for (unsigned workers : {1u, 2u, 7u, 64u}) {
        ThreadWorkers pool(workers);
        pool.run([](unsigned) { return 0; });  // ThreadSanitizer starts a helper thread with the first one
        const std::size_t before = live_threads();
        CAPTURE(workers);
        try {
            pool.run([](unsigned k) -> double { throw std::runtime_error("boom " + std::to_string(k)); });
            FAIL("run() returned although every worker threw");
        } catch (const WorkerError& e) {
            CHECK(e.worker() < workers);
            const std::string k = std::to_string(e.worker());
            CHECK(std::string(e.what()) == "worker " + k + ": boom " + k);
        }
        CHECK(back_to(before));
    }
}

TEST_CASE("thread_workers: an exception not derived from std::exception is still reported" * doctest::timeout(30)) {
    ThreadWorkers pool(2);
    try {
        pool.run([](unsigned k) -> int {
            if (k == 1) throw 42;
            return 0;
        });
        FAIL("run() returned although worker 1 threw");
    } catch (const WorkerError& e) {
        CHECK(e.worker() == 1);
        CHECK(std::string(e.what()) == "worker 1: threw something that is not a std::exception");
        CHECK_THROWS_AS(std::rethrow_if_nested(e), int);
    }
}

TEST_CASE("thread_workers: the stop flag tells long workers that another one failed" * doctest::timeout(30)) {
    ThreadWorkers pool(2);
    std::atomic<bool> saw_stop{false};
    CHECK_THROWS_AS(pool.run([&](unsigned k) -> int {
        if (k == 0) throw std::runtime_error("first");
        // Without the flag this worker would spin for 20 s.
        const auto give_up = std::chrono::steady_clock::now() + 20s;
        while (!pool.stop_requested() && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
        saw_stop = pool.stop_requested();
        return 0;
    }),
                    WorkerError);
    CHECK(saw_stop.load());
    CHECK(!pool.run([&](unsigned) { return pool.stop_requested(); })[0]);  // reset by the next run
}

TEST_CASE("global_lock: at most one worker computes at any instant and every worker makes progress" *
          doctest::timeout(60)) {
    constexpr unsigned workers = 4;
    constexpr std::size_t slices = 1000;
    // One element per slice, 200 µs between offers: many turns per worker.
    GlobalLock gil(200us, 1);
    std::atomic<int> inside{0};
    std::atomic<int> most_inside{0};
    std::vector<unsigned> turns;  // who computed each slice, in order (written under the lock)
    std::atomic<unsigned> started{0};
    ThreadWorkers pool(workers);
    const auto done = pool.run([&](unsigned k) {
        // start together, so every worker is queued while the first computes
        started.fetch_add(1);
        while (started.load() < workers) std::this_thread::yield();
        std::size_t mine = 0;
        gil.run(slices, [&](std::size_t, std::size_t count) {
            const int now = inside.fetch_add(1) + 1;
            int seen = most_inside.load();
            while (now > seen && !most_inside.compare_exchange_weak(seen, now)) {
            }
            turns.push_back(k);
            const auto until = std::chrono::steady_clock::now() + 20us;  // "compute" for a while
            while (std::chrono::steady_clock::now() < until) {
            }
            mine += count;
            inside.fetch_sub(1);
        });
        return mine;
    });
    CHECK(most_inside.load() == 1);
    for (std::size_t d : done) CHECK(d == slices);  // everyone finished all its slices
    REQUIRE(turns.size() == workers * slices);
    // Every worker computed before any worker finished: the lock was handed
    // round, not kept until done.
    std::size_t first_finish = turns.size();
    for (unsigned k = 0; k < workers; ++k) {
        std::size_t seen = 0;
        for (std::size_t i = 0; i < turns.size(); ++i) {
            if (turns[i] == k && ++seen == slices) first_finish = std::min(first_finish, i);
        }
    }
    for (unsigned k = 0; k < workers; ++k) {
        CAPTURE(k);
        CHECK(std::find(turns.begin(), turns.begin() + static_cast<std::ptrdiff_t>(first_finish), k) !=
              turns.begin() + static_cast<std::ptrdiff_t>(first_finish));
    }
    CHECK(gil.handovers() >= workers);
}

TEST_CASE("global_lock: a lone worker keeps the lock and slices cover the range in order" * doctest::timeout(30)) {
    GlobalLock gil(0us, 3);  // offer after every slice: nobody waits, so nobody takes it
    std::vector<std::pair<std::size_t, std::size_t>> seen;
    gil.run(10, [&](std::size_t first, std::size_t count) { seen.emplace_back(first, count); });
    CHECK(seen == std::vector<std::pair<std::size_t, std::size_t>>{{0, 3}, {3, 3}, {6, 3}, {9, 1}});
    gil.run(0, [&](std::size_t, std::size_t) { FAIL("no slice for n = 0"); });
    CHECK(gil.handovers() == 0);
    CHECK_THROWS_AS(GlobalLock(1ms, 0), corelab::Error);
}

TEST_CASE("global_lock: an exception in the body releases the lock for the others" * doctest::timeout(30)) {
    GlobalLock gil(1ms, 1);
    ThreadWorkers pool(3);
    std::atomic<std::size_t> done{0};
    try {
        pool.run([&](unsigned k) -> int {
            gil.run(100, [&](std::size_t first, std::size_t) {
                if (k == 1 && first == 5) throw std::runtime_error("stuck holding the lock?");
                done.fetch_add(1);
            });
            return 0;
        });
        FAIL("run() returned although worker 1 threw");
    } catch (const WorkerError& e) {
        CHECK(e.worker() == 1);
    }
    CHECK(done.load() == 205);  // workers 0 and 2 all 100 slices, worker 1 its first 5
}
