// Tests of corelab/report.hpp: the CSV rows, the table, best_of.
#include <doctest/doctest.h>

#include <sstream>  // std::ostringstream

#include "corelab/error.hpp"
#include "corelab/report.hpp"

TEST_CASE("report: csv prints the header and one row per approach and nothing else") {
    std::ostringstream out;
    corelab::Report r(corelab::Format::csv, out);
    r.say("this explanation is for the table only");
    r.add_uncompared("generate", 0.25, std::nullopt);
    r.baseline("serial_loop", 2.0, 0.5);
    r.add("serial_fast", 0.5, 0.25);
    r.print();
    CHECK(out.str() ==
          "name,seconds,result,speedup\n"
          "generate,0.25,,\n"
          "serial_loop,2,0.5,1\n"
          "serial_fast,0.5,0.25,4\n");
}

TEST_CASE("report: the table shows time and result and speed-up and a bar proportional to time") {
    std::ostringstream out;
    corelab::Report r(corelab::Format::table, out);
    r.say("hello");
    r.baseline("serial_loop", 2.0, 0.5);
    r.add("two_thread", 1.0, 0.5);
    r.print();
    const std::string s = out.str();
    CHECK(s.find("hello\n") == 0);
    CHECK(s.find("serial_loop") != std::string::npos);
    CHECK(s.find("2.00x") != std::string::npos);
    CHECK(s.find("0.5000000000000000") != std::string::npos);
    // The slowest row gets the full bar of 40, half the time half of it.
    const auto base_line =
        s.substr(s.find("serial_loop "), s.find('\n', s.find("serial_loop ")) - s.find("serial_loop "));
    const auto two_line = s.substr(s.find("two_thread "), s.find('\n', s.find("two_thread ")) - s.find("two_thread "));
    CHECK(base_line.substr(base_line.size() - 41) == " " + std::string(40, '#'));
    CHECK(two_line.substr(two_line.size() - 21) == " " + std::string(20, '#'));
}

TEST_CASE("report: one baseline only and speed-up needs one") {
    std::ostringstream out;
    corelab::Report r(corelab::Format::csv, out);
    r.add("alone", 1.0, std::nullopt);
    CHECK_FALSE(r.speedup(r.rows()[0]).has_value());
    r.baseline("base", 1.0, std::nullopt);
    CHECK_THROWS_AS(r.baseline("again", 1.0, std::nullopt), corelab::Error);
}

TEST_CASE("report: best_of keeps the best time and the last value and format_seconds picks a unit") {
    int calls = 0;
    const auto t = corelab::best_of(4, [&] { return ++calls; });
    CHECK(calls == 4);
    CHECK(t.value == 4);
    CHECK(t.seconds >= 0.0);
    CHECK(corelab::best_of(0, [&] { return ++calls; }).value == 5);  // at least once
    CHECK(corelab::format_seconds(2.5) == "2.50 s");
    CHECK(corelab::format_seconds(0.0123) == "12.3 ms");
    CHECK(corelab::format_seconds(48e-6) == "48.0 µs");
    CHECK(corelab::format_seconds(5e-9) == "5 ns");
}
