// How lesson 07 keeps what each write and read measured: a row per
// approach, cold reads (the file dropped from the page cache before each),
// the throughput lines it prints, and the rows of its table.
// Included by lessons/07_chunked_file.cpp alone.
#pragma once

#include <cstdint>  // std::uint64_t
#include <cstdio>   // std::snprintf
#include <limits>   // std::numeric_limits
#include <string>   // std::string
#include <vector>   // std::vector

#include "corelab/chunked_file.hpp"  // drop_from_page_cache, cached_fraction
#include "corelab/reduce.hpp"        // Partial, check_within_rounding
#include "corelab/report.hpp"        // Report, Stopwatch, Timing

namespace {

using corelab::Partial;

struct Measured {
    std::string name;
    double seconds;
    Partial value;
    double cached = 1.0;            // fraction of the file in the page cache when the read began
    bool compared = true;           // false: a write, no mean and no speed-up
    std::vector<double> runs = {};  // every run's time
};

// Best of `repeat` reads, each after the file is dropped from the page cache (not timed).
template <class F>
Measured cold(const std::string& name, int repeat, const std::string& path, F read) {
    Measured best{name, std::numeric_limits<double>::infinity(), {}};
    std::vector<double> runs;
    for (int i = 0; i < repeat; ++i) {
        corelab::drop_from_page_cache(path);
        const double cached = corelab::cached_fraction(path);
        corelab::Stopwatch watch;
        const Partial p = read();
        runs.push_back(watch.seconds());
        if (runs.back() < best.seconds) best = {name, runs.back(), p, cached, true};
    }
    best.runs = runs;
    return best;
}

// The throughput of every row, each compared row checked against the mean of the data written.
std::string throughput(const std::vector<Measured>& rows, std::uint64_t file_bytes, const Partial& expected) {
    std::string table = "\nthroughput (GB = 10^9 bytes; cached: the file's share in the page cache as it began):\n";
    for (const auto& r : rows) {
        if (r.compared) corelab::check_within_rounding(r.name, r.value, "the mean of the data written", expected);
        char line[160];
        std::snprintf(line, sizeof line, "  %-22s %6.2f GB/s  %s\n", r.name.c_str(),
                      static_cast<double>(file_bytes) / r.seconds / 1e9,
                      r.compared ? ("cached " + std::to_string(static_cast<int>(100.0 * r.cached + 0.5)) + "%").c_str()
                                 : "written to the disk (fdatasync included)");
        table += line;
    }
    return table;
}

// The rows in the lesson's table: serial_read is the baseline, writes have no speed-up.
void add_rows(corelab::Report& report, const std::vector<Measured>& rows) {
    for (const auto& r : rows) {
        const corelab::Timing time{r.seconds, r.runs};
        if (!r.compared) {
            report.add_uncompared(r.name, time, std::nullopt);
        } else if (r.name == "serial_read") {
            report.baseline(r.name, time, r.value.mean());
        } else {
            report.add(r.name, time, r.value.mean());
        }
    }
}

}  // namespace
