// Lesson 02 (lessons/02_serial_mean.cpp) run as a program: its CSV rows,
// both means against the library's, and the table's words.
#include <doctest/doctest.h>

#include <cstdlib>  // std::strtod
#include <string>   // std::string

#include "corelab/dataset.hpp"
#include "corelab/reduce.hpp"
#include "lessons/common.hpp"
#include "support/subprocess.hpp"

using corelab::test::csv_rows;
using corelab::test::Outcome;
using corelab::test::run;

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
