// Lesson 03 (lessons/03_two_process_mean.cpp) run as a program: its rows and
// means for any worker count, a size refused before anything is allocated,
// and Ctrl-C or kill -9 mid-run (no worker, no IPC object left).
#include <doctest/doctest.h>
#include <signal.h>  // kill, killpg

#include <algorithm>  // std::max
#include <chrono>     // std::chrono::seconds
#include <cmath>      // std::abs
#include <cstdlib>    // std::strtod
#include <limits>     // std::numeric_limits
#include <regex>      // std::regex
#include <string>     // std::string
#include <vector>     // std::vector

#include "corelab/dataset.hpp"
#include "corelab/reduce.hpp"
#include "lessons/common.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"

using corelab::test::csv_rows;
using corelab::test::Outcome;
using corelab::test::run;

TEST_CASE("lesson 03: csv rows in order and every mean equals the serial one" * doctest::timeout(120)) {
    const Outcome o = run({corelab::test::lesson("03_two_process_mean"), "--n", "100003", "--seed", "7", "--repeat",
                           "1", "--format", "csv"});
    CHECK(o.exit_code == 0);
    CHECK(o.err.empty());
    const auto rows = csv_rows(o);
    const std::vector<std::string> names{"serial_loop", "two_process",     "process_spawn",
                                         "share_fork",  "share_named_shm", "copy_through_queue"};
    REQUIRE(rows.size() == names.size());
    const double expected = corelab::sum_loop(corelab::make_uniform(100003, 7)).mean();
    for (std::size_t i = 0; i < rows.size(); ++i) {
        CAPTURE(rows[i].name);
        CHECK(rows[i].name == names[i]);
        CHECK(rows[i].seconds > 0.0);
        if (rows[i].name == "process_spawn") {
            CHECK(rows[i].result.empty());
            CHECK(rows[i].speedup.empty());
        } else {
            CHECK(std::strtod(rows[i].result.c_str(), nullptr) == doctest::Approx(expected).epsilon(1e-12));
        }
    }
    CHECK(std::strtod(rows[0].result.c_str(), nullptr) == expected);
}

TEST_CASE("lesson 03: the table shows the notebook figures and the averaging mistake" * doctest::timeout(120)) {
    const Outcome o = run({corelab::test::lesson("03_two_process_mean"), "--n", "50001", "--repeat", "1"});
    CHECK(o.exit_code == 0);
    for (const char* s : {"25.5 s", "12.7 s", "hold 25001 and 25000 numbers", "mean of their means", "faults/child",
                          "copy_through_queue", "speed-up"}) {
        CHECK_MESSAGE(o.out.find(s) != std::string::npos, "missing: " << s);
    }
}

TEST_CASE("lesson 03: every worker count from 1 to 16 gives the serial mean" * doctest::timeout(600)) {
    const std::size_t n = 10007;
    const double expected = corelab::sum_loop(corelab::make_uniform(n, 42)).mean();
    const double tolerance = 2.0 * (n - 1) * std::numeric_limits<double>::epsilon() * expected;
    for (int workers = 1; workers <= 16; ++workers) {
        CAPTURE(workers);
        const Outcome o = run({corelab::test::lesson("03_two_process_mean"), "--n", std::to_string(n), "--workers",
                               std::to_string(workers), "--repeat", "1", "--format", "csv"});
        REQUIRE(o.exit_code == 0);
        for (const auto& r : csv_rows(o)) {
            if (r.result.empty()) continue;
            CAPTURE(r.name);
            CHECK(std::abs(std::strtod(r.result.c_str(), nullptr) - expected) <= tolerance);
        }
    }
    const Outcome bad = run({corelab::test::lesson("03_two_process_mean"), "--workers", "17"});
    CHECK(bad.exit_code == 2);
}

TEST_CASE("lesson 03: a size whose peak does not fit in memory is refused before anything is allocated" *
          doctest::timeout(120)) {
    // The data alone fits (8 bytes a number); with the queues' copy and the
    // children's copies the lesson would hold 24 bytes a number at once.
    const std::size_t available = corelab::available_memory();
    REQUIRE(available > 0);
    const std::size_t n = std::max<std::size_t>(1'000'000'000, available / 20 + 1);
    const Outcome o = run({corelab::test::lesson("03_two_process_mean"), "--n", std::to_string(n), "--repeat", "1"},
                          std::chrono::seconds(60));
    CAPTURE(o.err);
    MESSAGE("lesson 03 --n " << n << ": exit " << o.exit_code << " after " << o.seconds << " s, peak RSS "
                             << o.max_rss_kb / 1024 << " MB");
    CHECK(o.exit_code == 1);
    CHECK(o.signal == 0);
    CHECK(o.err.find("error: ") == 0);
    const std::regex figures("needs ([0-9.]+) GB of memory at once.* ([0-9.]+) GB is available");
    std::smatch m;
    REQUIRE(std::regex_search(o.err, m, figures));
    CHECK(std::strtod(m[1].str().c_str(), nullptr) ==
          doctest::Approx(24.0 * static_cast<double>(n) / 1e9).epsilon(0.01));
    const std::regex advice("use a smaller --n \\(--n ([0-9]+) fits\\)");
    REQUIRE(std::regex_search(o.err, m, advice));
    const double fits = std::strtod(m[1].str().c_str(), nullptr);
    CHECK(fits < static_cast<double>(n));
    CHECK(fits * 24.0 <= static_cast<double>(available) * 1.05);
    CHECK(o.seconds < 5.0);            // refused at once, not after making 8 bytes a number
    CHECK(o.max_rss_kb < 512 * 1024);  // and nothing large was allocated
}

namespace {

// Starts lesson 03 in its own process group, as a shell starts a job, and
// waits until it has IPC objects (it is then mid-run with workers).
pid_t start_lesson03_mid_run() {
    const pid_t pid = corelab::test::start_in_own_group(
        {corelab::test::lesson("03_two_process_mean"), "--n", "4000000", "--repeat", "100"});
    REQUIRE_MESSAGE(corelab::test::eventually([&] { return !corelab::test::shm_objects_of(pid).empty(); },
                                              std::chrono::seconds(60)),
                    "lesson 03 never created its IPC objects");
    return pid;
}

}  // namespace

TEST_CASE("lesson 03: Ctrl-C mid-run kills it by SIGINT with no worker and no object left" * doctest::timeout(120)) {
    const pid_t pid = start_lesson03_mid_run();
    ::killpg(pid, SIGINT);  // what Ctrl-C does: the whole process group
    const auto ended = corelab::test::wait_for(pid, std::chrono::seconds(10));
    if (!ended.ended) ::killpg(pid, SIGKILL);
    REQUIRE(ended.ended);
    CHECK(ended.signal == SIGINT);  // a shell shows exit status 130
    CHECK(corelab::test::eventually([&] { return corelab::test::live_group_members(pid).empty(); },
                                    std::chrono::seconds(2)));
    CHECK(corelab::test::shm_objects_of(pid).empty());
}

TEST_CASE("lesson 03: kill -9 of the parent leaves no worker and the next run sweeps its objects" *
          doctest::timeout(180)) {
    const pid_t pid = start_lesson03_mid_run();
    ::kill(pid, SIGKILL);  // only the parent: its workers must follow it (PR_SET_PDEATHSIG)
    // Not reaped yet: the killed parent stays a zombie (as it does for a second
    // or two after a kill -9 in a shell) while the next run starts.
    const auto ended = corelab::test::wait_for_zombie(pid, std::chrono::seconds(10));
    REQUIRE(ended.ended);
    CHECK(ended.signal == SIGKILL);
    CHECK(corelab::test::eventually([&] { return corelab::test::live_group_members(pid).empty(); },
                                    std::chrono::seconds(2)));
    // every thread of the workers too (a sanitizer's may end a moment after them)
    CHECK(corelab::test::eventually([&] { return corelab::test::group_finished(pid); }, std::chrono::seconds(5)));
    const auto left = corelab::test::shm_objects_of(pid);
    MESSAGE("objects left by the killed run: " << left.size());
    const Outcome next = run({corelab::test::lesson("03_two_process_mean"), "--n", "1000", "--repeat", "1"});
    CHECK(next.exit_code == 0);
    CHECK(::kill(pid, 0) == 0);  // still a zombie: by a pid test, it still runs
    CHECK(corelab::test::shm_objects_of(pid).empty());
    CHECK(corelab::test::wait_for(pid, std::chrono::seconds(10)).ended);
}
