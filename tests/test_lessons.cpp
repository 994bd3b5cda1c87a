// The lessons run as programs: their CSV rows, their results, and their
// answers to bad command lines (exit 2 with a usage line, or 1 with a message;
// never a signal, never a hang).
#include <doctest/doctest.h>

#include <cstdlib>  // std::strtod
#include <string>   // std::string
#include <vector>   // std::vector

#include "corelab/dataset.hpp"
#include "corelab/reduce.hpp"
#include "support/subprocess.hpp"

using corelab::test::lines;
using corelab::test::Outcome;
using corelab::test::run;

namespace {

struct CsvRow {
    std::string name;
    double seconds;
    std::string result;
    std::string speedup;
};

std::vector<CsvRow> csv_rows(const Outcome& o) {
    const auto ls = lines(o.out);
    REQUIRE(!ls.empty());
    REQUIRE(ls[0] == "name,seconds,result,speedup");
    std::vector<CsvRow> rows;
    for (std::size_t i = 1; i < ls.size(); ++i) {
        std::vector<std::string> f;
        std::string field;
        for (char c : ls[i] + ",") {
            if (c == ',') {
                f.push_back(field);
                field.clear();
            } else {
                field += c;
            }
        }
        REQUIRE_MESSAGE(f.size() == 4, "bad csv line: " << ls[i]);
        rows.push_back({f[0], std::strtod(f[1].c_str(), nullptr), f[2], f[3]});
    }
    return rows;
}

}  // namespace

TEST_CASE("lesson 02: csv rows and both means equal the library's mean of the same data" * doctest::timeout(60)) {
    const Outcome o = run(
        {corelab::test::lesson("02_serial_mean"), "--n", "100003", "--seed", "7", "--repeat", "1", "--format", "csv"});
    CHECK(o.exit_code == 0);
    CHECK(o.err.empty());
    const auto rows = csv_rows(o);
    REQUIRE(rows.size() == 3);
    CHECK(rows[0].name == "generate");
    CHECK(rows[0].result.empty());
    CHECK(rows[1].name == "serial_loop");
    CHECK(rows[1].speedup == "1");
    CHECK(rows[2].name == "serial_fast");
    const auto d = corelab::make_uniform(100003, 7);
    const double expected = corelab::sum_loop(d).mean();
    CHECK(std::strtod(rows[1].result.c_str(), nullptr) == expected);  // printed with 17 digits: exact
    CHECK(std::strtod(rows[2].result.c_str(), nullptr) == doctest::Approx(expected).epsilon(1e-12));
    for (const auto& r : rows) CHECK(r.seconds >= 0.0);
}

TEST_CASE("lesson 02: the table names its rows and the notebook's figure" * doctest::timeout(60)) {
    const Outcome o = run({corelab::test::lesson("02_serial_mean"), "--n", "50000", "--repeat", "1"});
    CHECK(o.exit_code == 0);
    for (const char* s : {"serial_loop", "serial_fast", "generate", "25.5 s", "both means agree", "speed-up"}) {
        CHECK_MESSAGE(o.out.find(s) != std::string::npos, "missing: " << s);
    }
}

TEST_CASE("lessons: bad command lines exit 2 with a usage line and impossible sizes exit 1" * doctest::timeout(60)) {
    for (const char* name : {"01_lscpu", "02_serial_mean", "04_two_thread_mean"}) {
        const std::string exe = corelab::test::lesson(name);
        CAPTURE(name);
        for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
                 {"--n", "0"}, {"--n", "-5"}, {"--n", "abc"}, {"--unknown"}, {"--format", "xml"}, {"--repeat"}}) {
            args.insert(args.begin(), exe);
            const Outcome o = run(args);
            CAPTURE(args[1]);
            CHECK(o.exit_code == 2);
            CHECK(o.signal == 0);
            CHECK(o.err.find("error: ") == 0);
            CHECK(o.err.find("usage: lesson") != std::string::npos);
        }
        const Outcome h = run({exe, "--help"});
        CHECK(h.exit_code == 0);
        CHECK(h.out.find("usage: ") != std::string::npos);
    }
    // 10^13 doubles: 80 TB. A clear runtime error, not a crash.
    const Outcome big = run({corelab::test::lesson("02_serial_mean"), "--n", "10000000000000"});
    CHECK(big.exit_code == 1);
    CHECK(big.signal == 0);
    CHECK(big.err.find("error: ") == 0);
    CHECK(big.err.find("use a smaller --n") != std::string::npos);
}

TEST_CASE("lesson 01: csv rows count what the library reads" * doctest::timeout(60)) {
    const Outcome o = run({corelab::test::lesson("01_lscpu"), "--format", "csv"});
    CHECK(o.exit_code == 0);
    const auto rows = csv_rows(o);
    REQUIRE(!rows.empty());
    bool logical = false;
    for (const auto& r : rows) {
        if (r.name == "logical_cpus") {
            logical = true;
            CHECK(std::strtod(r.result.c_str(), nullptr) >= 1.0);
        }
    }
    CHECK(logical);
}

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
