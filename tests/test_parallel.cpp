// Tests of corelab/parallel.hpp: map() equals the serial loop for many sizes,
// n_jobs and both backends; n_jobs follows joblib's rule; real faults (a
// throw in task k, abort(), SIGKILL, a task that never returns) end in an
// error naming the task, with no child, no zombie and nothing in /dev/shm;
// progress lines follow joblib's format and schedule; what tasks print
// arrives whole, and a task that leaves a process behind or forks a copy of
// its worker neither hangs map() nor is miscounted.
#include <doctest/doctest.h>
#include <signal.h>    // raise, kill, SIGKILL
#include <sys/mman.h>  // mmap: a page the test shares with the workers
#include <sys/wait.h>  // waitpid: no child left
#include <unistd.h>    // getpid, fork, _exit

#include <algorithm>  // std::sort, std::count
#include <atomic>     // std::atomic
#include <cerrno>     // errno, ESRCH, ECHILD
#include <chrono>     // std::chrono
#include <csignal>    // std::signal
#include <cstdio>     // std::printf
#include <cstdlib>    // std::abort, std::system
#include <fstream>    // std::ifstream
#include <iostream>   // std::cout
#include <list>       // std::list (a range without indices)
#include <regex>      // std::regex
#include <sstream>    // std::ostringstream
#include <stdexcept>  // std::runtime_error
#include <string>     // std::string
#include <thread>     // std::this_thread::sleep_for
#include <vector>     // std::vector

#include "corelab/cpu_info.hpp"  // usable_cpus: what n_jobs = -1 resolves to
#include "corelab/parallel.hpp"
#include "support/processes.hpp"

using corelab::Backend;
using corelab::Parallel;
using corelab::ParallelOptions;
using corelab::TaskError;
using corelab::test::CapturedStdout;
using namespace std::chrono_literals;

namespace {

void check_clean() {
    CHECK(corelab::test::children_of(::getpid()).empty());
    CHECK(corelab::test::shm_objects_of(::getpid()).empty());
}

std::uint64_t mix(std::size_t i) {
    return (static_cast<std::uint64_t>(i) * 0x9E3779B97F4A7C15ULL) ^ (i >> 3);
}

constexpr Backend both[] = {Backend::processes, Backend::threads};

// The TaskError map() must throw for these inputs.
template <class F>
TaskError task_failure(ParallelOptions options, std::size_t n, F f) {
    Parallel par(options);
    try {
        (void)par.map(f, corelab::range(n));
    } catch (const TaskError& e) {
        return e;
    }
    FAIL("map() did not throw a TaskError");
    return TaskError(99, 99, "");
}

// A page shared with forked workers (and their children), unmapped at the end.
struct SharedPids {
    pid_t* pids;
    SharedPids() {
        void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        REQUIRE(p != MAP_FAILED);
        pids = static_cast<pid_t*>(p);
    }
    ~SharedPids() {
        for (int i = 0; i < 8; ++i) {
            if (pids[i] > 0) ::kill(pids[i], SIGKILL);  // whatever a task left running
        }
        ::munmap(pids, 4096);
    }
};

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("parallel: n_jobs and backends are read from text and bad text is refused") {
    CHECK(corelab::parse_n_jobs("2") == 2);
    CHECK(corelab::parse_n_jobs("-1") == -1);
    CHECK(corelab::parse_n_jobs("1024") == 1024);
    for (const char* bad : {"", "0", "two", "2x", "1.5", "1025", "-1025", "99999999999"}) {
        CAPTURE(bad);
        CHECK_THROWS_AS(corelab::parse_n_jobs(bad), corelab::Error);
    }
    CHECK_THROWS_WITH_AS(corelab::parse_n_jobs("0"), doctest::Contains("-1 for every CPU"), corelab::Error);
    for (Backend b : both) CHECK(corelab::parse_backend(corelab::to_string(b)) == b);
    CHECK(std::string(corelab::to_string(Backend::threads)) == "threads");
    CHECK_THROWS_WITH_AS(corelab::parse_backend("gpu"), doctest::Contains("processes or threads"), corelab::Error);
}

TEST_CASE("parallel: n_jobs follows joblib's rule") {
    CHECK(corelab::resolve_n_jobs(1, 4) == 1);
    CHECK(corelab::resolve_n_jobs(6, 4) == 6);  // oversubscription is allowed
    CHECK(corelab::resolve_n_jobs(-1, 4) == 4);
    CHECK(corelab::resolve_n_jobs(-2, 4) == 3);
    CHECK(corelab::resolve_n_jobs(-4, 4) == 1);
    CHECK(corelab::resolve_n_jobs(-5, 4) == 1);  // below -cpu_count: never below 1
    CHECK(corelab::resolve_n_jobs(-100, 4) == 1);
    CHECK_THROWS_WITH_AS(corelab::resolve_n_jobs(0, 4), doctest::Contains("n_jobs = 0"), corelab::Error);
    CHECK_THROWS_AS(corelab::resolve_n_jobs(5000, 4), corelab::Error);
    CHECK_THROWS_AS(Parallel({.n_jobs = 0}), corelab::Error);
    CHECK(Parallel({.n_jobs = -1}).workers() == corelab::usable_cpus());
    CHECK(Parallel({.n_jobs = -1000}).workers() == 1);
    CHECK(Parallel({.n_jobs = 2}).name() == "Parallel(n_jobs=2)");
}

TEST_CASE("parallel: map equals the serial loop for every size and n_jobs and both backends" * doctest::timeout(120)) {
    for (Backend backend : both) {
        for (std::size_t n : {0u, 1u, 2u, 7u, 1000u, 100'000u}) {
            std::vector<std::uint64_t> expected(n);
            for (std::size_t i = 0; i < n; ++i) expected[i] = mix(i);
            for (int jobs : {1, 2, 3, -1, 8}) {
                CAPTURE(corelab::to_string(backend));
                CAPTURE(n);
                CAPTURE(jobs);
                Parallel par({.n_jobs = jobs, .backend = backend});
                CHECK(par.map(mix, corelab::range(n)) == expected);
            }
        }
    }
    check_clean();
}

TEST_CASE("parallel: fixed batch sizes and ranges of every kind give the same results" * doctest::timeout(60)) {
    const std::vector<int> inputs{5, -3, 8, 0, 12, 7, 1, 9, 4, 4, 2};
    std::vector<int> expected;
    for (int x : inputs) expected.push_back(x * x - 1);
    const std::list<int> listed(inputs.begin(), inputs.end());
    for (Backend backend : both) {
        for (std::size_t batch : {0u, 1u, 3u, 100u}) {
            CAPTURE(corelab::to_string(backend));
            CAPTURE(batch);
            Parallel par({.n_jobs = 3, .backend = backend, .batch_size = batch});
            CHECK(par.map([](int x) { return x * x - 1; }, inputs) == expected);
            CHECK(par.map([](int x) { return x * x - 1; }, listed) == expected);
            const std::vector<bool> odd = par.map([](int x) { return x % 2 != 0; }, inputs);
            for (std::size_t i = 0; i < inputs.size(); ++i) CHECK(odd[i] == (inputs[i] % 2 != 0));
        }
    }
    check_clean();
}

TEST_CASE("parallel: strings and vectors come back from worker processes" * doctest::timeout(60)) {
    Parallel par({.n_jobs = 3, .backend = Backend::processes});
    const auto words = par.map([](std::size_t i) { return std::string(i % 50, static_cast<char>('a' + i % 26)); },
                               corelab::range(2000));
    REQUIRE(words.size() == 2000);
    for (std::size_t i = 0; i < words.size(); ++i)
        CHECK(words[i] == std::string(i % 50, static_cast<char>('a' + i % 26)));
    const auto vectors = par.map(
        [](std::size_t i) {
            std::vector<double> v(i % 7);
            for (std::size_t j = 0; j < v.size(); ++j) v[j] = static_cast<double>(i) + 0.5 * static_cast<double>(j);
            return v;
        },
        corelab::range(500));
    for (std::size_t i = 0; i < vectors.size(); ++i) {
        REQUIRE(vectors[i].size() == i % 7);
        for (std::size_t j = 0; j < vectors[i].size(); ++j)
            CHECK(vectors[i][j] == static_cast<double>(i) + 0.5 * static_cast<double>(j));
    }
    check_clean();
}

TEST_CASE("parallel: for_each calls the function once per input" * doctest::timeout(60)) {
    std::vector<std::atomic<int>> calls(1000);
    Parallel par({.n_jobs = 2, .backend = Backend::threads});
    par.for_each([&](std::size_t i) { calls[i].fetch_add(1); }, corelab::range(calls.size()));
    for (auto& c : calls) CHECK(c.load() == 1);
}

TEST_CASE("parallel: an exception in task k reaches the caller with k" * doctest::timeout(120)) {
    constexpr std::size_t n = 200;
    for (Backend backend : both) {
        for (int jobs : {1, 2, 3}) {
            for (std::size_t k : {std::size_t{0}, n / 2, n - 1}) {
                CAPTURE(corelab::to_string(backend));
                CAPTURE(jobs);
                CAPTURE(k);
                const auto e = task_failure({.n_jobs = jobs, .backend = backend}, n, [k](std::size_t i) {
                    if (i == k) throw std::runtime_error("bad input " + std::to_string(i));
                    return i;
                });
                CHECK(e.task() == k);
                CHECK(std::string(e.what()).find("task " + std::to_string(k) + " raised: bad input " +
                                                 std::to_string(k)) == 0);
            }
        }
    }
    check_clean();
}

TEST_CASE("parallel: a task that calls abort is reported with its worker and SIGABRT" * doctest::timeout(60)) {
    const auto e = task_failure({.n_jobs = 2, .backend = Backend::processes, .batch_size = 1}, 20, [](std::size_t i) {
        if (i == 13) {
            std::signal(SIGABRT, SIG_DFL);  // doctest's crash handler belongs to the test, not to the worker
            std::abort();
        }
        return i;
    });
    CHECK(e.task() == 13);
    CHECK(std::regex_search(std::string(e.what()),
                            std::regex("^worker [01] \\(pid [0-9]+\\) was killed by SIGABRT while running task 13$")));
    check_clean();
}

TEST_CASE("parallel: a worker killed by SIGKILL is reported within a second" * doctest::timeout(60)) {
    const auto start = std::chrono::steady_clock::now();
    const auto e = task_failure({.n_jobs = 2, .backend = Backend::processes}, 1000, [](std::size_t i) {
        if (i == 500) ::raise(SIGKILL);
        return i;
    });
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(e.task() == 500);
    CHECK(std::string(e.what()).find("was killed by SIGKILL while running task 500") != std::string::npos);
    CHECK(took < 1.0);
    check_clean();
}

TEST_CASE("parallel: a task that never returns ends at the timeout" * doctest::timeout(60)) {
    const auto start = std::chrono::steady_clock::now();
    const auto e = task_failure({.n_jobs = 2, .backend = Backend::processes, .timeout = 300ms}, 10, [](std::size_t i) {
        if (i == 3) std::this_thread::sleep_for(60s);
        return i;
    });
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(e.task() == 3);
    CHECK(std::string(e.what()).find("did not finish within 300 ms") != std::string::npos);
    CHECK(std::string(e.what()).find("was running task 3") != std::string::npos);
    CHECK(took >= 0.3);
    CHECK(took < 5.0);
    check_clean();
}

TEST_CASE("parallel: threads stop between tasks at the timeout" * doctest::timeout(60)) {
    Parallel par({.n_jobs = 2, .backend = Backend::threads, .timeout = 100ms});
    CHECK_THROWS_WITH_AS(par.map(
                             [](std::size_t i) {
                                 std::this_thread::sleep_for(20ms);
                                 return i;
                             },
                             corelab::range(100)),
                         doctest::Contains("did not finish within 100 ms"), corelab::WorkerError);
}

TEST_CASE("parallel: processes refuse to fork while other threads run" * doctest::timeout(60)) {
    std::atomic<bool> stop{false};
    std::thread other([&] {
        while (!stop.load()) std::this_thread::sleep_for(1ms);
    });
    Parallel par({.n_jobs = 2, .backend = Backend::processes});
    CHECK_THROWS_WITH_AS(par.map([](std::size_t i) { return i; }, corelab::range(10)), doctest::Contains("threads"),
                         corelab::Error);
    stop = true;
    other.join();
    CHECK(par.map([](std::size_t i) { return i; }, corelab::range(3)) == std::vector<std::size_t>{0, 1, 2});
    check_clean();
}

TEST_CASE("parallel: progress lines follow joblib's format and schedule" * doctest::timeout(60)) {
    CHECK(corelab::detail::short_format_time(0.25) == "  0.2s");
    CHECK(corelab::detail::short_format_time(12.34) == " 12.3s");
    CHECK(corelab::detail::short_format_time(90.0) == " 1.5min");
    const std::regex done(
        "^\\[Parallel\\(n_jobs=2\\)\\]: Done +[0-9]+ out of  10 \\| elapsed: +[0-9.]+s remaining: +[0-9.]+s$");
    const std::regex finished("^\\[Parallel\\(n_jobs=2\\)\\]: Done  10 out of  10 \\| elapsed: +[0-9.]+s finished$");
    // joblib prints when (total - done) % (total // verbose + 1) == 0, and at the end
    for (auto [verbose, lines] : {std::pair{1, 0}, {2, 1}, {5, 3}, {100, 9}}) {
        for (Backend backend : both) {
            CAPTURE(verbose);
            CAPTURE(corelab::to_string(backend));
            std::ostringstream out;
            Parallel par({.n_jobs = 2, .backend = backend, .batch_size = 1, .verbose = verbose, .progress = &out});
            CHECK(par.map([](std::size_t i) { return i; }, corelab::range(10)).size() == 10);
            std::istringstream in(out.str());
            std::vector<std::string> got;
            for (std::string line; std::getline(in, line);) got.push_back(line);
            REQUIRE(got.size() == static_cast<std::size_t>(lines) + 1);
            for (int i = 0; i < lines; ++i) CHECK_MESSAGE(std::regex_match(got[i], done), got[i]);
            CHECK_MESSAGE(std::regex_match(got.back(), finished), got.back());
        }
    }
    std::ostringstream quiet;
    Parallel silent({.n_jobs = 2, .verbose = 0, .progress = &quiet});
    (void)silent.map([](std::size_t i) { return i; }, corelab::range(10));
    CHECK(quiet.str().empty());
    check_clean();
}

TEST_CASE("parallel: every line a task prints arrives, through a pipe or into a file, on both backends" *
          doctest::timeout(110)) {
    constexpr std::size_t tasks = 40;
    constexpr int per_task = 40;  // ~1.5 KB a task, ~20 KB a worker: each fills its stdio buffer several times
    for (Backend backend : both) {
        for (auto into : {CapturedStdout::Into::pipe, CapturedStdout::Into::file}) {
            const std::string backend_name = corelab::to_string(backend);
            CAPTURE(backend_name);
            CAPTURE(into == CapturedStdout::Into::pipe ? "pipe" : "file");
            std::string text;
            {
                CapturedStdout out(into);
                // not yet flushed when the workers fork: it must arrive once, not once per worker
                std::printf("printed before map\n");
                Parallel par({.n_jobs = 3, .backend = backend, .batch_size = 2});
                (void)par.map(
                    [](std::size_t i) {
                        for (int j = 0; j < per_task; ++j) {
                            std::printf("task %zu printf %d\n", i, j);
                            std::cout << ("task " + std::to_string(i) + " cout " + std::to_string(j) + "\n");
                        }
                        return i;
                    },
                    corelab::range(tasks));
                text = out.text();
            }
            std::size_t found = 0;
            for (std::size_t i = 0; i < tasks; ++i) {
                for (int j = 0; j < per_task; ++j) {
                    for (const char* how : {" printf ", " cout "}) {
                        const std::string line = "task " + std::to_string(i) + how + std::to_string(j) + "\n";
                        const auto at = text.find(line);
                        found += at != std::string::npos && text.find(line, at + 1) == std::string::npos;
                    }
                }
            }
            CHECK(found == 2 * tasks * per_task);  // each line once
            const auto before = text.find("printed before map\n");
            CHECK(before != std::string::npos);
            CHECK(text.find("printed before map\n", before + 1) == std::string::npos);
        }
    }
    check_clean();
}

TEST_CASE("parallel: a task that leaves a process behind does not hold map() beyond its own work" *
          doctest::timeout(60)) {
    // system() starts a shell, and the shell a background sleep: a holder of
    // every descriptor the worker lets an exec'd program inherit
    SharedPids left;
    const std::string pidfile = "/tmp/corelab-test-sleep-" + std::to_string(::getpid());
    Parallel par({.n_jobs = 2, .backend = Backend::processes, .batch_size = 1});
    auto start = std::chrono::steady_clock::now();
    auto r = par.map(
        [&](std::size_t i) {
            if (i == 3 && std::system(("sleep 10 & echo $! > " + pidfile).c_str()) != 0) throw std::runtime_error("sh");
            return i;
        },
        corelab::range(10));
    const double with_shell = seconds_since(start);
    std::ifstream(pidfile) >> left.pids[0];
    std::remove(pidfile.c_str());
    CHECK(r == std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(left.pids[0] > 0);
    CHECK(with_shell < 3.0);  // not the sleep's 10 s

    // a child forked without exec holds the worker's result pipe itself
    start = std::chrono::steady_clock::now();
    r = par.map(
        [&](std::size_t i) {
            if (i == 3) {
                const pid_t child = ::fork();
                if (child == 0) {
                    std::this_thread::sleep_for(10s);
                    ::_exit(0);
                }
                left.pids[1] = child;
            }
            return i;
        },
        corelab::range(10));
    const double with_child = seconds_since(start);
    CHECK(r == std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(left.pids[1] > 0);
    CHECK(with_child < 3.0);
    MESSAGE("map() with a background sleep took " << with_shell << " s, with a forked child " << with_child << " s");
    check_clean();
}

TEST_CASE("parallel: a task that forks a copy of its worker is named as such" * doctest::timeout(60)) {
    // the copy returns from fork() into the worker's loop: it sends task 3's
    // result too, then takes more tasks
    SharedPids left;
    const auto e = task_failure({.n_jobs = 2, .backend = Backend::processes, .batch_size = 1}, 200, [&](std::size_t i) {
        if (i == 3) {
            const pid_t child = ::fork();
            if (child > 0) {
                left.pids[0] = child;
                std::this_thread::sleep_for(200ms);  // the copy sends first
            }
        }
        return i;
    });
    const std::string what = e.what();
    MESSAGE(what);
    CHECK(e.task() == 3);
    CHECK(what.find("did a task fork without exec?") != std::string::npos);
    CHECK(what.find("only") == std::string::npos);  // not "only 204 of 200 results arrived"
    check_clean();
}

TEST_CASE("parallel: a worker that exits 0 mid-task is named with its task" * doctest::timeout(60)) {
    const auto e = task_failure({.n_jobs = 2, .backend = Backend::processes, .batch_size = 1}, 20, [](std::size_t i) {
        if (i == 7) ::_exit(0);
        return i;
    });
    MESSAGE(std::string(e.what()));
    CHECK(e.task() == 7);
    CHECK(std::regex_search(std::string(e.what()),
                            std::regex("^worker [01] \\(pid [0-9]+\\) exited with status 0 while running task 7, "
                                       "before returning its result$")));
    check_clean();
}

// ------------------------------------------------------------------ the pool (reuse = true), imap, task_timeout

namespace {

bool gone(pid_t pid) {
    return ::kill(pid, 0) != 0 && errno == ESRCH;
}

std::vector<pid_t> sorted(std::vector<pid_t> v) {
    std::sort(v.begin(), v.end());
    return v;
}

}  // namespace

TEST_CASE("parallel pool: two calls run on the same worker processes, and the results are right" *
          doctest::timeout(60)) {
    std::vector<std::uint64_t> expected(1000);
    for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = mix(i);
    {
        Parallel par({.n_jobs = 2, .reuse = true});
        CHECK(par.worker_pids().empty());  // none before the first call
        CHECK(par.map(mix, corelab::range(1000)) == expected);
        const auto pids = sorted(par.worker_pids());
        REQUIRE(pids.size() == 2);
        const std::vector<int> inputs{5, -3, 8, 0, 12};
        const int offset = 7;  // captured by value: its bytes travel to the workers
        CHECK(par.map([offset](int x) { return x * x + offset; }, inputs) == std::vector<int>{32, 16, 71, 7, 151});
        CHECK(sorted(par.worker_pids()) == pids);
        // a range of another start, batches of a fixed size, an empty call
        CHECK(par.map([](std::size_t i) { return i * 2; }, std::views::iota(std::size_t{10}, std::size_t{14})) ==
              std::vector<std::size_t>{20, 22, 24, 26});
        CHECK(par.map(mix, corelab::range(0)).empty());
        CHECK(sorted(par.worker_pids()) == pids);
        for (pid_t p : pids) CHECK(corelab::test::running(p));
    }
    check_clean();
}

TEST_CASE("parallel pool: strings go in and come out through a pool (cereal)" * doctest::timeout(60)) {
    std::vector<std::string> words;
    for (std::size_t i = 0; i < 300; ++i) words.push_back(std::string(i % 40, static_cast<char>('a' + i % 26)));
    {
        Parallel par({.n_jobs = 3, .reuse = true});
        const auto lengths = par.map([](const std::string& w) { return w.size(); }, words);
        const auto doubled = par.map([](const std::string& w) { return w + w; }, words);
        for (std::size_t i = 0; i < words.size(); ++i) {
            CHECK(lengths[i] == words[i].size());
            CHECK(doubled[i] == words[i] + words[i]);
        }
        const std::vector<bool> odd = par.map([](int x) { return x % 2 != 0; }, std::vector<int>{1, 2, 3});
        CHECK(odd == std::vector<bool>{true, false, true});
    }
    check_clean();
}

TEST_CASE("parallel pool: a worker SIGKILLed between two calls is replaced and the second call succeeds" *
          doctest::timeout(60)) {
    {
        Parallel par({.n_jobs = 2, .reuse = true});
        CHECK(par.map(mix, corelab::range(100)).size() == 100);
        const auto before = sorted(par.worker_pids());
        REQUIRE(before.size() == 2);
        REQUIRE(::kill(before[0], SIGKILL) == 0);
        REQUIRE(corelab::test::wait_for_zombie(before[0], 5s).ended);  // dead, not yet reaped: the pool's to find
        std::vector<std::uint64_t> expected(1000);
        for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = mix(i);
        CHECK(par.map(mix, corelab::range(1000)) == expected);
        const auto after = sorted(par.worker_pids());
        REQUIRE(after.size() == 2);
        CHECK(std::count(after.begin(), after.end(), before[1]) == 1);  // the other one stayed
        CHECK(std::count(after.begin(), after.end(), before[0]) == 0);  // one new
        CHECK(gone(before[0]));                                         // reaped
    }
    check_clean();
}

TEST_CASE("parallel pool: idle workers end after idle_timeout and the next call starts new ones" *
          doctest::timeout(60)) {
    {
        Parallel par({.n_jobs = 2, .reuse = true, .idle_timeout = 200ms});
        CHECK(par.map(mix, corelab::range(10)).size() == 10);
        const auto first = par.worker_pids();
        REQUIRE(first.size() == 2);
        for (pid_t p : first) CHECK(corelab::test::wait_for_zombie(p, 5s).ended);  // they ended by themselves
        CHECK(par.worker_pids().empty());                                          // reaped, none live
        for (pid_t p : first) CHECK(gone(p));
        CHECK(par.map(mix, corelab::range(10)).size() == 10);
        const auto second = par.worker_pids();
        CHECK(second.size() == 2);
        for (pid_t p : second) CHECK(std::count(first.begin(), first.end(), p) == 0);
    }
    check_clean();
}

TEST_CASE("parallel pool: two Parallels have disjoint workers, close() ends them, a copy starts its own" *
          doctest::timeout(60)) {
    {
        Parallel a({.n_jobs = 2, .reuse = true});
        Parallel b({.n_jobs = 2, .reuse = true});
        CHECK(a.map(mix, corelab::range(50)) == b.map(mix, corelab::range(50)));
        auto pa = sorted(a.worker_pids()), pb = sorted(b.worker_pids());
        REQUIRE(pa.size() == 2);
        REQUIRE(pb.size() == 2);
        for (pid_t p : pa) CHECK(std::count(pb.begin(), pb.end(), p) == 0);
        a.close();
        CHECK(a.worker_pids().empty());
        for (pid_t p : pa) CHECK(gone(p));
        CHECK(sorted(b.worker_pids()) == pb);  // b's workers are not a's
        CHECK(b.map(mix, corelab::range(50)).size() == 50);
        CHECK(a.map(mix, corelab::range(50)).size() == 50);  // after close(): new workers
        CHECK(a.worker_pids().size() == 2);
        Parallel c = b;  // the options, not the pool
        CHECK(c.worker_pids().empty());
        CHECK(c.map(mix, corelab::range(50)).size() == 50);
        for (pid_t p : c.worker_pids()) CHECK(std::count(pb.begin(), pb.end(), p) == 0);
    }
    check_clean();
}

TEST_CASE("parallel pool: a Parallel copied into a forked child leaves the parent's workers alone" *
          doctest::timeout(60)) {
    {
        Parallel par({.n_jobs = 2, .reuse = true});
        CHECK(par.map(mix, corelab::range(100)).size() == 100);
        const auto pids = sorted(par.worker_pids());
        REQUIRE(pids.size() == 2);
        corelab::flush_stdio();  // or the child would print what is buffered again
        const pid_t child = ::fork();
        if (child == 0) {
            // the child: the pool is not its own; its calls start workers of its own
            int code = par.worker_pids().empty() ? 0 : 10;
            try {
                if (par.map(mix, corelab::range(100)).size() != 100) code = 11;
                const auto mine = par.worker_pids();
                for (pid_t p : mine) {
                    if (std::count(pids.begin(), pids.end(), p) != 0) code = 12;
                }
            } catch (...) {
                code = 13;
            }
            par.close();  // ends the child's workers only
            ::_exit(code);
        }
        REQUIRE(child > 0);
        const auto ended = corelab::test::wait_for(child, 30s);
        REQUIRE(ended.ended);
        CHECK(ended.exit_code == 0);
        for (pid_t p : pids) CHECK(corelab::test::running(p));
        CHECK(sorted(par.worker_pids()) == pids);
        CHECK(par.map(mix, corelab::range(100)).size() == 100);
        CHECK(sorted(par.worker_pids()) == pids);
    }
    check_clean();
    int status = 0;
    errno = 0;
    CHECK(::waitpid(-1, &status, WNOHANG) == -1);
    CHECK(errno == ECHILD);  // the destructor left no child, not even a zombie
}

TEST_CASE("parallel pool: a function that is not trivially copyable is refused with what to do" *
          doctest::timeout(60)) {
    Parallel par({.n_jobs = 2, .reuse = true});
    const std::string suffix = "!";
    CHECK_THROWS_WITH_AS(par.map([suffix](std::size_t i) { return std::to_string(i) + suffix; }, corelab::range(4)),
                         doctest::Contains("capture by value"), corelab::Error);
    CHECK(par.map([](std::size_t i) { return std::to_string(i); }, corelab::range(3)) ==
          std::vector<std::string>{"0", "1", "2"});
    par.close();
    check_clean();
}

TEST_CASE("parallel imap: results arrive in input order, a failed task's element throws and the rest follow" *
          doctest::timeout(120)) {
    constexpr std::size_t n = 200;
    const auto f = [](std::size_t i) {
        if (i == 57) throw std::runtime_error("bad input 57");
        return mix(i);
    };
    for (Backend backend : both) {
        for (bool reuse : {false, true}) {
            for (int jobs : {1, 2, 3}) {
                if (reuse && backend == Backend::threads) continue;
                CAPTURE(corelab::to_string(backend));
                CAPTURE(reuse);
                CAPTURE(jobs);
                Parallel par({.n_jobs = jobs, .backend = backend, .reuse = reuse});
                for (int round = 0; round < 2; ++round) {
                    auto results = par.imap(f, corelab::range(n));
                    std::size_t i = 0;
                    bool failed = false;
                    for (auto it = results.begin(); it != results.end(); ++it, ++i) {
                        try {
                            const std::uint64_t value = *it;  // outside CHECK: doctest would catch the throw
                            CHECK(value == mix(i));
                            CHECK(i != 57);
                        } catch (const TaskError& e) {
                            failed = true;
                            CHECK(i == 57);
                            CHECK(e.task() == 57);
                            CHECK(std::string(e.what()).find("task 57 raised: bad input 57") == 0);
                        }
                    }
                    CHECK(i == n);
                    CHECK(failed);
                }
            }
        }
    }
    check_clean();
}

TEST_CASE("parallel imap_unordered: each index arrives exactly once with its result" * doctest::timeout(120)) {
    constexpr std::size_t n = 1000;
    for (Backend backend : both) {
        for (bool reuse : {false, true}) {
            for (int jobs : {1, 2, 3}) {
                if (reuse && backend == Backend::threads) continue;
                CAPTURE(corelab::to_string(backend));
                CAPTURE(reuse);
                CAPTURE(jobs);
                Parallel par({.n_jobs = jobs, .backend = backend, .reuse = reuse});
                std::vector<int> count(n, 0);
                for (const auto& [index, value] : par.imap_unordered(mix, corelab::range(n))) {
                    REQUIRE(index < n);
                    ++count[index];
                    CHECK(value == mix(index));
                }
                CHECK(std::count(count.begin(), count.end(), 1) == static_cast<long>(n));
                // inputs without indices, taken by value (a temporary list)
                std::size_t seen = 0;
                for (const auto& item : par.imap_unordered([](int x) { return x * 2; }, std::list<int>{1, 2, 3})) {
                    CHECK(item.value == 2 * (static_cast<int>(item.index) + 1));
                    ++seen;
                }
                CHECK(seen == 3);
            }
        }
    }
    check_clean();
}

TEST_CASE("parallel imap: stopping early kills and reaps the call's workers, and the pool's next call works" *
          doctest::timeout(60)) {
    for (bool reuse : {false, true}) {
        CAPTURE(reuse);
        Parallel par({.n_jobs = 2, .batch_size = 1, .reuse = reuse});
        SharedPids pids;  // where each worker writes its pid, to check afterwards
        std::size_t taken = 0;
        {
            auto results = par.imap(
                [p = pids.pids](std::size_t i) {
                    p[i % 2 == 0 ? 0 : 1] = ::getpid();
                    if (i >= 4) std::this_thread::sleep_for(100s);  // the rest would take forever
                    return i;
                },
                corelab::range(100));
            for (std::size_t x : results) {
                CHECK(x == taken);
                if (++taken == 3) break;
            }
        }  // destroyed here: the rest is cancelled
        CHECK(taken == 3);
        for (int k = 0; k < 2; ++k) {
            const pid_t p = pids.pids[k];
            if (p <= 0) continue;
            CHECK(gone(p));  // killed and reaped: neither running nor our zombie
            pids.pids[k] = 0;
        }
        CHECK(corelab::test::children_of(::getpid()).empty());
        CHECK(par.map(mix, corelab::range(10)).size() == 10);
        par.close();
    }
    check_clean();
}

TEST_CASE("parallel task_timeout: a task that hangs is killed and fails with its index, the others arrive" *
          doctest::timeout(120)) {
    const auto f = [](std::size_t i) {
        if (i == 7) std::this_thread::sleep_for(100s);
        return mix(i);
    };
    constexpr std::size_t n = 30;
    const std::regex message(
        "^task 7 took longer than 300 ms \\(the per-task timeout\\) in worker [01] \\(pid [0-9]+\\): it was killed$");
    for (bool reuse : {false, true}) {
        CAPTURE(reuse);
        Parallel par({.n_jobs = 2, .task_timeout = 300ms, .reuse = reuse});
        // imap: in order, task 7's element throws, every other result arrives
        {
            const auto start = std::chrono::steady_clock::now();
            auto results = par.imap(f, corelab::range(n));
            std::size_t i = 0;
            for (auto it = results.begin(); it != results.end(); ++it, ++i) {
                try {
                    const std::uint64_t value = *it;
                    CHECK(value == mix(i));
                    CHECK(i != 7);
                } catch (const TaskError& e) {
                    CHECK(i == 7);
                    CHECK(e.task() == 7);
                    CHECK_MESSAGE(std::regex_match(std::string(e.what()), message), e.what());
                }
            }
            CHECK(i == n);
            const double took = seconds_since(start);
            CHECK(took >= 0.3);
            CHECK(took < 10.0);
        }
        // imap_unordered: every index once, 7 as its error
        {
            std::vector<int> count(n, 0);
            auto results = par.imap_unordered(f, corelab::range(n));
            bool failed = false;
            for (auto it = results.begin(); it != results.end(); ++it) {
                try {
                    const auto& [index, value] = *it;
                    ++count[index];
                    CHECK(value == mix(index));
                } catch (const TaskError& e) {
                    CHECK(e.task() == 7);
                    ++count[7];
                    failed = true;
                }
            }
            CHECK(failed);
            CHECK(std::count(count.begin(), count.end(), 1) == static_cast<long>(n));
        }
        // map: throws TaskError with index 7
        try {
            (void)par.map(f, corelab::range(n));
            FAIL("map() did not throw");
        } catch (const TaskError& e) {
            CHECK(e.task() == 7);
            CHECK_MESSAGE(std::regex_match(std::string(e.what()), message), e.what());
        }
        CHECK(par.map(mix, corelab::range(n)).size() == n);  // and the next call works
        par.close();
    }
    check_clean();
}

TEST_CASE("parallel task_timeout: threads cannot be killed: the slow task's element fails when it returns" *
          doctest::timeout(60)) {
    const auto f = [](std::size_t i) {
        if (i == 3) std::this_thread::sleep_for(400ms);
        return i;
    };
    for (int jobs : {1, 2}) {
        CAPTURE(jobs);
        Parallel par({.n_jobs = jobs, .backend = Backend::threads, .task_timeout = 100ms});
        const auto start = std::chrono::steady_clock::now();
        std::size_t i = 0, failed = 0;
        auto results = par.imap(f, corelab::range(10));
        for (auto it = results.begin(); it != results.end(); ++it, ++i) {
            try {
                const std::size_t value = *it;
                CHECK(value == i);
            } catch (const TaskError& e) {
                ++failed;
                CHECK(e.task() == 3);
                CHECK(std::string(e.what()).find("longer than 100 ms (the per-task timeout)") != std::string::npos);
            }
        }
        CHECK(failed == 1);
        CHECK(seconds_since(start) >= 0.4);  // the call cannot end before the slow task does
        CHECK_THROWS_WITH_AS(par.map(f, corelab::range(10)), doctest::Contains("task 3 took"), TaskError);
    }
}

TEST_CASE("parallel pool: inputs small and large (socket, memfd) arrive whole, and nothing is left in /dev/shm" *
          doctest::timeout(60)) {
    {
        Parallel par({.n_jobs = 2, .reuse = true});
        for (std::size_t n : {1u, 1000u, 16'000u, 16'384u, 300'000u}) {  // 8 B to 2.4 MB of doubles
            CAPTURE(n);
            std::vector<double> inputs(n);
            for (std::size_t i = 0; i < n; ++i) inputs[i] = static_cast<double>(mix(i) % 1000) + 0.25;
            const auto got = par.map([](double x) { return x * 2; }, inputs);
            REQUIRE(got.size() == n);
            std::size_t right = 0;
            for (std::size_t i = 0; i < n; ++i) right += got[i] == inputs[i] * 2;
            CHECK(right == n);
        }
        CHECK(corelab::test::shm_objects_of(::getpid()).empty());
    }
    check_clean();
}

TEST_CASE("parallel pool: a worker killed mid-call fails its task only, the others arrive" * doctest::timeout(60)) {
    {
        Parallel par({.n_jobs = 2, .batch_size = 1, .reuse = true});
        CHECK(par.map(mix, corelab::range(4)).size() == 4);
        const auto before = sorted(par.worker_pids());
        std::size_t i = 0, failed = 0;
        auto results = par.imap(
            [](std::size_t x) {
                if (x == 5) ::raise(SIGKILL);
                return mix(x);
            },
            corelab::range(40));
        for (auto it = results.begin(); it != results.end(); ++it, ++i) {
            try {
                const std::uint64_t value = *it;
                CHECK(value == mix(i));
            } catch (const TaskError& e) {
                ++failed;
                CHECK(e.task() == 5);
                CHECK(std::string(e.what()).find("was killed by SIGKILL while running task 5") != std::string::npos);
            }
        }
        CHECK(i == 40);
        CHECK(failed == 1);
        // replaced at once while tasks remained, else before the next call
        CHECK(par.map(mix, corelab::range(4)).size() == 4);
        const auto after = sorted(par.worker_pids());
        CHECK(after.size() == 2);
        CHECK(after != before);
    }
    check_clean();
}
