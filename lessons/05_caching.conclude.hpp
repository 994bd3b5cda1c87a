// What lesson 05 concludes from its table: every sentence is chosen from the
// numbers, never fixed text. A pure function, so a recorded run can be
// explained again (lesson05_caching --conclude results/<run>/05_caching.csv),
// and tests/test_conclusions.cpp feeds it recorded tables for each branch.
// Included by lessons/05_caching.cpp alone.
#pragma once

#include <string>  // std::string
#include <vector>  // std::vector

#include "corelab/cpu_info.hpp"  // format_size
#include "corelab/report.hpp"    // Table, Row, parallel_verdict, format_seconds, format_speedup

namespace {

std::vector<std::string> conclude(const corelab::Table& t) {
    using corelab::format_seconds, corelab::format_speedup;
    const corelab::Row &hit = t.at("cache_hit"), &huge = t.at("cache_hit_large");
    const double gain = t.speedup("cache_hit"), pages = t.seconds("cache_hit_large_vector") / huge.seconds;
    const std::string against = " than computing the mean (" + format_seconds(t.seconds("compute")) + ")";
    std::vector<std::string> said{
        "A hit took " + format_seconds(hit.seconds) + ", " +
            (gain > 2      ? format_speedup(gain) + " faster" + against + ": the cache pays."
             : gain > 1.05 ? "only " + format_speedup(gain) + " faster" + against +
                                 ": at this n the work is too small "
                                 "to be worth caching."
                           : "no faster" + against + ": at this n the work is too small to be worth caching."),
        "In a new process a hit took " + format_seconds(t.seconds("cache_hit_new_process")) +
            ": it opens the cache and reads the entry from the page cache, not from the computation."};
    const std::string size = corelab::format_size(static_cast<std::uint64_t>(huge.bytes.value_or(0)));
    if (pages > 1.3) {
        said.push_back(size + " of results loaded " + format_speedup(pages) +
                       " faster into a HugeArray (2 MB pages) than into a std::vector, which page-faults every 4 KB.");
    } else {
        said.push_back(size + " of results loaded about as fast into a std::vector as into a HugeArray (" +
                       format_speedup(pages) +
                       "): at this size, or without huge pages, the page faults do not decide.");
    }
    if (const corelab::Row* map = t.find("cache_hit_large_mapped")) {
        const double faster = huge.seconds / map->seconds;
        const std::string copying = " the copying hit (" + format_seconds(huge.seconds) + ")";
        said.push_back("Mapped, the same " + size + " hit in " + format_seconds(map->seconds) + ", " +
                       (faster > 1.3 ? format_speedup(faster) + " faster than" + copying +
                                           ": it maps the entry's file and copies nothing."
                                     : "about as fast as" + copying + ": at this size the copy costs little."));
        if (const corelab::Row* read = t.find("cache_hit_large_mapped_read")) {
            said.push_back("Hit and summed once, the mapped result took " + format_seconds(read->seconds) +
                           ": the first read (" + format_seconds(read->seconds - map->seconds) +
                           ", the sum and the page faults the hit put off) " +
                           (read->seconds < huge.seconds
                                ? "still ended before" + copying + " alone."
                                : "cost more than" + copying +
                                      " alone: a mapping pays when the result is read in part, not in full at once."));
        }
    }
    if (const corelab::Row* py = t.find("python_cache_hit")) {
        said.push_back("joblib's hit, here: " + format_seconds(py->seconds) + ", " +
                       format_speedup(py->seconds / hit.seconds) + " as long as this cache's.");
    }
    return said;
}

}  // namespace
