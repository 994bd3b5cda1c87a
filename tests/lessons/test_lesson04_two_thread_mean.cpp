// Lesson 04 (lessons/04_two_thread_mean.cpp) run as a program: its rows and
// means for any worker count, the notebook's figures, bad worker counts.
#include <doctest/doctest.h>

#include <cstdlib>  // std::strtod
#include <string>   // std::string
#include <vector>   // std::vector

#include "corelab/dataset.hpp"
#include "corelab/reduce.hpp"
#include "lessons/common.hpp"
#include "support/subprocess.hpp"

using corelab::test::csv_rows;
using corelab::test::Outcome;
using corelab::test::run;

TEST_CASE("lesson 04: csv rows in order and every mean equals the serial mean for any worker count" *
          doctest::timeout(120)) {
    const std::size_t n = 100003;  // odd: the parts differ in size
    const auto d = corelab::make_uniform(n, 9);
    const double expected = corelab::sum_loop(d).mean();
    for (const char* workers : {"1", "2", "3", "7"}) {
        CAPTURE(workers);
        const Outcome o = run({corelab::test::lesson("04_two_thread_mean"), "--n", "100003", "--seed", "9", "--repeat",
                               "1", "--workers", workers, "--switch-interval", "100", "--format", "csv"});
        CHECK(o.exit_code == 0);
        CHECK(o.err.empty());
        const auto rows = csv_rows(o);
        std::vector<std::string> names;
        for (const auto& r : rows) names.push_back(r.name);
        CHECK(names == std::vector<std::string>{"serial_loop", "two_thread", "two_thread_gil", "thread_spawn",
                                                "false_sharing", "padded_slots"});
        REQUIRE(rows.size() == 6);
        CHECK(std::strtod(rows[0].result.c_str(), nullptr) == expected);  // 17 digits: exact
        CHECK(rows[0].speedup == "1");
        for (const std::size_t i : {1u, 2u, 4u, 5u}) {
            CAPTURE(rows[i].name);
            // the lesson's own bound is 2(n-1)eps ~ 4.4e-11 relative; 1e-12 relative would catch a lost element
            CHECK(std::strtod(rows[i].result.c_str(), nullptr) == doctest::Approx(expected).epsilon(1e-10));
            CHECK(!rows[i].speedup.empty());
        }
        CHECK(rows[3].result.empty());  // thread_spawn: a cost, no result and no speed-up
        CHECK(rows[3].speedup.empty());
        CHECK(rows[3].seconds > 0.0);
    }
}

TEST_CASE("lesson 04: the table shows the notebook's figures and bad worker counts exit 2" * doctest::timeout(60)) {
    const std::string exe = corelab::test::lesson("04_two_thread_mean");
    const Outcome o = run({exe, "--n", "50000", "--repeat", "1"});
    CHECK(o.exit_code == 0);
    for (const char* s :
         {"25.5 s", "20.9 s", "12.7 s", "two_thread_gil", "false_sharing", "changed hands", "Threads or processes?"}) {
        CHECK_MESSAGE(o.out.find(s) != std::string::npos, "missing: " << s);
    }
    for (std::vector<std::string> args : std::vector<std::vector<std::string>>{{"--workers", "0"},
                                                                               {"--workers", "65"},
                                                                               {"--switch-interval", "-1"},
                                                                               {"--switch-interval", "100000000"}}) {
        args.insert(args.begin(), exe);
        const Outcome bad = run(args);
        CAPTURE(args[1]);
        CAPTURE(args[2]);
        CHECK(bad.exit_code == 2);
        CHECK(bad.err.find("usage: lesson04_two_thread_mean") != std::string::npos);
    }
}
