// Tests of corelab/report.hpp: the CSV rows, the table (one header per column,
// bars proportional to speed-up, the median beside the best, the busy line),
// best_of, the table a conclusion reads, and the shared verdicts.
#include <doctest/doctest.h>
#include <stdlib.h>  // setenv, unsetenv, mkstemp
#include <unistd.h>  // close, unlink

#include <filesystem>  // std::filesystem::copy_file
#include <fstream>     // std::ofstream
#include <sstream>     // std::ostringstream
#include <string>      // std::string

#include "corelab/error.hpp"
#include "corelab/report.hpp"

namespace {

// The line of the table that starts with `name` and a space.
std::string line_of(const std::string& s, const std::string& name) {
    const auto at = s.find("\n" + name + " ");
    REQUIRE_MESSAGE(at != std::string::npos, "no row " << name);
    return s.substr(at + 1, s.find('\n', at + 1) - at - 1);
}

std::size_t count(const std::string& s, const std::string& what) {
    std::size_t n = 0;
    for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
    return n;
}

corelab::Table table_of(double two_speedup, double other_cpus, unsigned workers = 2) {
    corelab::Table t;
    t.lesson = "03_two_process_mean";
    t.workers = workers;
    t.load = {true, 5.0, other_cpus, 0.0, 2};
    corelab::Row base, two;
    base.name = "serial_loop";
    base.seconds = 1.0;
    two.name = "two_process";
    two.seconds = 1.0 / two_speedup;
    t.rows = {base, two};
    t.baseline = 0;
    return t;
}

}  // namespace

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

TEST_CASE("report: the table has one header per column, the median beside the best, bars proportional to speed-up") {
    std::ostringstream out;
    corelab::Report r(corelab::Format::table, out);
    r.say("hello");
    r.baseline("serial_loop", corelab::Timing{2.0, {2.0, 2.2, 2.4}}, 0.5);
    r.add("two_thread", corelab::Timing{1.0, {1.2, 1.0, 1.1}}, 0.5);
    r.add_uncompared("thread_spawn", 0.00005, std::nullopt);
    r.print();
    const std::string s = out.str();
    CHECK(s.find("hello\n") == 0);
    const std::string header = line_of(s, "row");
    for (const char* column : {"row", "best", "median", "result", "speed-up", "bar"}) {
        CAPTURE(column);
        CHECK(count(header, column) == 1);
    }
    CHECK(count(header, "time") == 0);
    const std::string base = line_of(s, "serial_loop"), two = line_of(s, "two_thread");
    CHECK(base.find("2.00 s") != std::string::npos);
    CHECK(base.find("2.20 s") != std::string::npos);  // the median of 2.0, 2.2, 2.4
    CHECK(two.find("1.10 s") != std::string::npos);
    CHECK(two.find("2.00x") != std::string::npos);
    CHECK(base.find("0.5000000000000000") != std::string::npos);
    // the fastest row gets the full bar of 32, half its speed-up half of it
    CHECK(two.substr(two.size() - 33) == " " + std::string(32, '#'));
    CHECK(base.substr(base.size() - 17) == " " + std::string(16, '#'));
    CHECK(line_of(s, "thread_spawn").find('#') == std::string::npos);  // no speed-up, no bar
    CHECK(s.find("(speed-up: the time of 'serial_loop' divided by the row's best; bars are proportional to it") !=
          std::string::npos);
}

TEST_CASE("report: a row far ahead of the rest is cut with '>' so the others stay visible") {
    std::ostringstream out;
    corelab::Report r(corelab::Format::table, out);
    r.baseline("compute", 1.0, 1.0);
    r.add("cache_hit", 0.0001, 1.0);            // 10000x
    r.add("cache_hit_new_process", 0.01, 1.0);  // 100x
    r.print();
    const std::string s = out.str();
    CHECK(line_of(s, "cache_hit").substr(line_of(s, "cache_hit").size() - 2) == "#>");
    const std::string second = line_of(s, "cache_hit_new_process");
    CHECK(count(second, "#") == 26);  // 100 / (100 * 1.25) of 32
    CHECK(count(line_of(s, "compute"), "#") == 1);
    CHECK(s.find("'>' marks a bar cut short") != std::string::npos);
}

TEST_CASE("report: a busy machine is called out above the table, a quiet one is not" * doctest::timeout(30)) {
    char path[] = "/tmp/corelab-report-stat-XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::close(fd);
    const std::string data = CORELAB_TEST_DATA;
    std::filesystem::copy_file(data + "/proc_stat/before", path, std::filesystem::copy_options::overwrite_existing);
    REQUIRE(::setenv("CORELAB_PROC_STAT", path, 1) == 0);
    for (const bool busy : {false, true}) {
        CAPTURE(busy);
        std::ostringstream out;
        corelab::Report r(corelab::Format::table, out);  // samples the "before" file
        if (busy) {                                      // meanwhile, others ran 3.7 CPU seconds
            std::filesystem::copy_file(data + "/proc_stat/busy_after", path,
                                       std::filesystem::copy_options::overwrite_existing);
        } else {
            std::filesystem::copy_file(data + "/proc_stat/before", path,
                                       std::filesystem::copy_options::overwrite_existing);
        }
        r.baseline("serial_loop", 1.0, 0.5);
        r.print();
        const std::string s = out.str();
        const auto warning = s.find("other programs used");
        CHECK((warning != std::string::npos) == busy);
        CHECK(r.table().busy() == busy);
        if (busy) CHECK(warning < s.find("\nrow "));  // above the table
    }
    ::unsetenv("CORELAB_PROC_STAT");
    ::unlink(path);
}

TEST_CASE("report: one baseline only and speed-up needs one") {
    std::ostringstream out;
    corelab::Report r(corelab::Format::csv, out);
    r.add("alone", 1.0, std::nullopt);
    CHECK_FALSE(r.speedup(r.rows()[0]).has_value());
    r.baseline("base", 1.0, std::nullopt);
    CHECK_THROWS_AS(r.baseline("again", 1.0, std::nullopt), corelab::Error);
    r.add("half", 2.0, std::nullopt).workers = 3;
    CHECK(*r.rows().back().workers == 3);
    CHECK(r.table().speedup("half") == doctest::Approx(0.5));
    CHECK_THROWS_WITH_AS(r.table().at("missing"), doctest::Contains("has no row 'missing'"), corelab::Error);
    r.add_uncompared("setup", 1.0, std::nullopt);
    CHECK_THROWS_WITH_AS(r.table().speedup("setup"), doctest::Contains("has no speed-up"), corelab::Error);
}

TEST_CASE("report: best_of keeps every run, the best and the last value; format_seconds picks a unit") {
    int calls = 0;
    const auto t = corelab::best_of(4, [&] { return ++calls; });
    CHECK(calls == 4);
    CHECK(t.value == 4);
    CHECK(t.runs.size() == 4);
    CHECK(t.seconds == *std::min_element(t.runs.begin(), t.runs.end()));
    CHECK(corelab::best_of(0, [&] { return ++calls; }).value == 5);  // at least once
    CHECK(corelab::median({3.0, 1.0, 2.0}) == 2.0);
    CHECK(corelab::median({4.0, 1.0, 2.0, 3.0}) == 2.5);
    CHECK(corelab::median({}) == 0.0);
    CHECK(corelab::format_seconds(2.5) == "2.50 s");
    CHECK(corelab::format_seconds(0.0123) == "12.3 ms");
    CHECK(corelab::format_seconds(48e-6) == "48.0 µs");
    CHECK(corelab::format_seconds(5e-9) == "5 ns");
    CHECK(corelab::format_speedup(1.934) == "1.93x");
    CHECK(corelab::format_speedup(8593.2) == "8593x");
    CHECK(corelab::format_speedup(0.0043) == "0.0043x");  // a Python row: still a number, not 0.00x
}

TEST_CASE("report: the verdict on a parallel row follows its speed-up, its workers and the load") {
    const auto verdict = [](const corelab::Table& t) {
        return corelab::parallel_verdict(t, "two_process", t.workers, "2 processes", "SHORT", "NOTHING");
    };
    CHECK(verdict(table_of(1.85, 0.0)) == "2 processes made it 1.85x faster, close to the 2x that 2 CPUs allow.");
    CHECK(verdict(table_of(1.3, 0.0)) == "2 processes made it 1.30x faster, short of the 2x: SHORT");
    CHECK(verdict(table_of(0.96, 0.0)) == "2 processes gained nothing (0.96x): NOTHING");
    CHECK(verdict(table_of(0.96, 0.0, 1)).find("one CPU to run them on") != std::string::npos);
    const std::string busy = verdict(table_of(0.96, 0.9));
    CHECK(busy.find("2 processes gave 0.96x on a busy machine (the line above the table)") == 0);
    CHECK(busy.find("run again on a quiet machine") != std::string::npos);
    CHECK(busy.find("faster") == std::string::npos);  // never "scales" on a busy machine
    CHECK(verdict(table_of(1.9, 0.9)) ==              // near the ideal all the same: no excuse needed
          "2 processes gave 1.90x even on a busy machine (the line above the table), close to the 2x that 2 CPUs "
          "allow.");
}

TEST_CASE("report: a sweep's summary names the best worker count against the CPUs") {
    corelab::Table t = table_of(1.0, 0.0);
    for (const auto& [k, s] : {std::pair{1u, 0.98}, {2u, 1.9}, {3u, 1.8}, {4u, 1.85}}) {
        corelab::Row r;
        r.name = "sweep_processes_" + std::to_string(k);
        r.seconds = 1.0 / s;
        r.workers = k;
        t.rows.push_back(r);
    }
    CHECK(corelab::sweep_summary(t, "sweep_processes_") ==
          "Sweep of processes (workers: speed-up): 1: 0.98x, 2: 1.90x, 3: 1.80x, 4: 1.85x; the most, 1.90x, with 2 "
          "on 2 CPUs: more workers than CPUs only take turns on them.");
    CHECK(corelab::sweep_summary(t, "sweep_threads_").empty());
    t.rows.back().seconds = 1.0 / 2.4;  // 4 workers beat 2 on 2 CPUs
    CHECK(corelab::sweep_summary(t, "sweep_processes_").find("more workers than CPUs still gained a little here") !=
          std::string::npos);
    t.load.other_cpus = 1.0;
    CHECK(corelab::sweep_summary(t, "sweep_processes_").find("the machine was busy") != std::string::npos);
}

TEST_CASE("report: format prints like printf into a string of any length") {
    CHECK(corelab::format("%zu and %.17g", std::size_t{3}, 0.1) == "3 and 0.10000000000000001");
    CHECK(corelab::format("%s", std::string(5000, 'x').c_str()).size() == 5000);  // longer than any buffer
    CHECK(corelab::format("%s", "").empty());
}

TEST_CASE("report: Timing::per gives the time of one step of each run") {
    const corelab::Timing t{2.0, {2.0, 3.0}};
    const corelab::Timing each = t.per(200);
    CHECK(each.seconds == doctest::Approx(0.01));
    CHECK(each.runs == std::vector<double>{0.01, 0.015});
    CHECK(corelab::Timing{1.0, {}}.per(4).runs.empty());
}
