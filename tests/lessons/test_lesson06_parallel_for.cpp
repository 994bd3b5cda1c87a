// Lesson 06 (lessons/06_parallel_for.cpp) run as a program: its rows and sums (a reused pool's
// among them), one configuration with joblib's progress, sweeps, and what it refuses at once.
#include <doctest/doctest.h>

#include <string>  // std::string
#include <vector>  // std::vector

#include "lessons/common.hpp"
#include "support/subprocess.hpp"

using corelab::test::csv_rows;
using corelab::test::Outcome;
using corelab::test::run;

TEST_CASE("lesson 06: csv rows in order and every result sum equals the loop's" * doctest::timeout(120)) {
    const Outcome o = run({corelab::test::lesson("06_parallel_for"), "--tasks", "7", "--loop-size", "300", "--repeat",
                           "1", "--format", "csv"});
    CHECK(o.exit_code == 0);
    const auto rows = csv_rows(o);
    REQUIRE(rows.size() == 8);
    const char* names[] = {"serial_loop",        "f_call",    "f_naive",     "processes_2",
                           "processes_2_reused", "threads_2", "processes_6", "all_cores"};
    for (std::size_t i = 0; i < rows.size(); ++i) {
        CAPTURE(rows[i].name);
        CHECK(rows[i].name == names[i]);
        CHECK(rows[i].seconds > 0.0);
        if (i == 1 || i == 2) {  // one call of f, and of the notebook's f as written: costs, not compared
            CHECK(rows[i].speedup.empty());
            continue;
        }
        CHECK(rows[i].result == "21");  // 0 + 1 + ... + 6: f(i) = sqrt(i*i) = i
    }
    CHECK(rows[2].result == "6");  // f_naive(tasks - 1)
    CHECK(rows[0].speedup == "1");
}

TEST_CASE("lesson 06: --jobs runs one configuration and prints joblib's progress" * doctest::timeout(120)) {
    const std::string exe = corelab::test::lesson("06_parallel_for");
    const Outcome o = run({exe, "--tasks", "5", "--loop-size", "300", "--repeat", "1", "--jobs", "-1", "--backend",
                           "threads", "--batch-size", "1", "--verbose", "100", "--format", "csv"});
    CHECK(o.exit_code == 0);
    const auto rows = csv_rows(o);
    REQUIRE(rows.size() == 4);  // serial_loop, f_call, f_naive and the one configuration
    CHECK(rows[3].name.rfind("threads_", 0) == 0);
    CHECK(rows[3].result == "10");
    CHECK(o.err.find("[Parallel(n_jobs=-1)]: Done   5 out of   5 | elapsed:") != std::string::npos);
    CHECK(o.err.find("finished") != std::string::npos);
    const Outcome table = run({exe, "--tasks", "3", "--loop-size", "300", "--repeat", "1"});
    CHECK(table.exit_code == 0);
    for (const char* s : {"21.7 s", "1.98x", "1.13x", "2.87x", "f ported word for word", "processes_6",
                          "processes_2_reused", "A reused pool (the same map() again on one Parallel"}) {
        CHECK_MESSAGE(table.out.find(s) != std::string::npos, "missing: " << s);
    }
    // one table: the speed-ups the sentences quote are the table's
    CHECK(table.out.find("one run each") == std::string::npos);
    CHECK(table.out.find("  speed-up  bar\n") == table.out.rfind("  speed-up  bar\n"));
    const Outcome sweep =
        run({exe, "--tasks", "3", "--loop-size", "300", "--repeat", "1", "--sweep", "1,3", "--format", "csv"});
    CHECK(sweep.exit_code == 0);
    std::vector<std::string> swept;
    for (const auto& r : csv_rows(sweep)) {
        if (r.name.rfind("sweep_", 0) == 0) swept.push_back(r.name);
    }
    CHECK(swept ==
          std::vector<std::string>{"sweep_processes_1", "sweep_threads_1", "sweep_processes_3", "sweep_threads_3"});
    for (std::vector<std::string> args : std::vector<std::vector<std::string>>{{"--jobs", "0"},
                                                                               {"--jobs", "two"},
                                                                               {"--backend", "gpu"},
                                                                               {"--batch-size", "0"},
                                                                               {"--tasks", "0"},
                                                                               {"--loop-size", "99999999999"}}) {
        args.insert(args.begin(), exe);
        const Outcome bad = run(args);
        CAPTURE(args[1]);
        CAPTURE(args[2]);
        CHECK(bad.exit_code == 2);
        CHECK(bad.err.find("usage: lesson06_parallel_for") != std::string::npos);
    }
}

TEST_CASE("lesson 06: a loop size that would run for hours and more tasks than memory holds are refused at once" *
          doctest::timeout(60)) {
    const std::string exe = corelab::test::lesson("06_parallel_for");
    const Outcome slow = run({exe, "--loop-size", "99999999999"});
    CHECK(slow.exit_code == 2);
    CHECK(slow.err.find("--loop-size must be at most 100000") != std::string::npos);
    CHECK(slow.seconds < 5.0);
    const Outcome many = run({exe, "--tasks", "1000000000000", "--loop-size", "1"});
    CAPTURE(many.err);
    CHECK(many.exit_code == 1);
    CHECK(many.signal == 0);
    CHECK(many.err.find("error: ") == 0);
    CHECK(many.err.find("use a smaller --tasks (--tasks ") != std::string::npos);
    CHECK(many.err.find("--n") == std::string::npos);  // lesson 06 has no use for --n
    CHECK(many.seconds < 5.0);
}
