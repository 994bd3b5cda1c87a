// What lesson 07 concludes from its table: every sentence is chosen from the
// numbers, never fixed text. A pure function, so a recorded run can be
// explained again (lesson07_chunked_file --conclude results/<run>/07_chunked_file.csv),
// and tests/test_conclusions.cpp feeds it recorded tables for each branch.
// Included by lessons/07_chunked_file.cpp alone.
#pragma once

#include <string>  // std::string
#include <vector>  // std::vector

#include "corelab/report.hpp"  // Table, Row, parallel_verdict, format_seconds, format_speedup

namespace {

std::vector<std::string> conclude(const corelab::Table& t) {
    using corelab::format_speedup;
    const std::string w = std::to_string(t.workers);
    const auto& warm = t.fastest({"serial_read", "chunks_pread_" + w, "chunks_mmap_" + w, "split_files_" + w});
    const auto& cold = t.fastest({"cold_serial_read", "cold_chunks_pread_" + w, "cold_chunks_mmap_" + w});
    const double parallel = t.speedup("chunks_pread_" + w),
                 cold_parallel = t.seconds("cold_serial_read") / t.seconds("cold_chunks_pread_" + w);
    const double slower = cold.seconds / warm.seconds;
    std::vector<std::string> said{
        "From the page cache (warm) the fastest read was " + warm.name + " at " + corelab::format_gbps(warm) + "; " +
        w + " processes reading with pread gave " + format_speedup(parallel) + " against serial_read" +
        (t.busy()         ? ", on a busy machine (the line above the table)."
         : parallel > 1.3 ? ": a warm read is a memory copy, and each process copies its own part."
                          : ": the copy from the page cache was limited by memory, not by one CPU.")};
    if (slower < 1.5) {
        said.push_back(
            "The cold reads (" + cold.name + ", " + corelab::format_gbps(cold) +
            ") were nearly as fast as the warm ones: "
            "the file stayed in memory (a tmpfs or a container's overlay), or the disk is as fast as memory.");
    } else {
        said.push_back("From the disk (cold) the fastest read was " + cold.name + " at " + corelab::format_gbps(cold) +
                       ", " + format_speedup(slower) + " slower than warm; " + w + " readers gave " +
                       format_speedup(cold_parallel) +
                       (t.busy()              ? " against one, on a busy machine."
                        : cold_parallel > 1.3 ? " against one: the disk serves more than one request at a time."
                                              : " against one: the disk, not the CPU, was the limit."));
    }
    said.push_back(
        "The notebook gives no time for this cell; on its laptop the same 10^8 numbers in memory took "
        "25.5 s for one\nPython loop and 12.7 s for two processes.");
    return said;
}

}  // namespace
