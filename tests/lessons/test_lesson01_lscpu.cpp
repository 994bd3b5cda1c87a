// Lesson 01 (lessons/01_lscpu.cpp) run as a program: its CSV rows count
// what the library reads from this machine.
#include <doctest/doctest.h>

#include <cstdlib>  // std::strtod

#include "lessons/common.hpp"
#include "support/subprocess.hpp"

using corelab::test::csv_rows;
using corelab::test::Outcome;
using corelab::test::run;

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
