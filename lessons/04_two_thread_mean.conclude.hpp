// What lesson 04 concludes from its table: every sentence is chosen from the
// numbers, never fixed text. A pure function, so a recorded run can be
// explained again (lesson04_two_thread_mean --conclude results/<run>/04_two_thread_mean.csv),
// and tests/test_conclusions.cpp feeds it recorded tables for each branch.
// Included by lessons/04_two_thread_mean.cpp alone.
#pragma once

#include <string>  // std::string
#include <vector>  // std::vector

#include "corelab/report.hpp"  // Table, Row, parallel_verdict, format_seconds, format_speedup

namespace {

std::vector<std::string> conclude(const corelab::Table& t) {
    using corelab::format_seconds, corelab::format_speedup;
    const double gil = t.speedup("two_thread_gil");
    const double sharing = t.seconds("false_sharing") / t.seconds("padded_slots");
    std::vector<std::string> said{corelab::parallel_verdict(
        t, "two_thread", t.workers, std::to_string(t.workers) + (t.workers == 1 ? " thread" : " threads"),
        "they share the memory that feeds them (./course bench, bandwidth_read_2threads).",
        "the sum was too small to split, or memory fed one core as fast as it fed them all.")};
    said.push_back(gil < 1.15 ? "Under the emulated GIL the same threads gave " + format_speedup(gil) +
                                    ": one computed at a time, as CPython's threads did."
                              : "Under the emulated GIL the threads still gained " + format_speedup(gil) +
                                    ", more than taking turns allows: " +
                                    (t.busy() ? "other programs slowed serial_loop more than them."
                                              : "serial_loop was disturbed on this run; run again."));
    said.push_back(
        "The notebook, on its laptop (Python): one thread 25.5 s, two threads 20.9 s (1.22x: the GIL), "
        "two processes 12.7 s (2.00x).");
    if (t.workers < 2) {
        said.push_back("With one thread nobody shares a cache line: false_sharing and padded_slots do the same.");
    } else {
        said.push_back(sharing > 1.3 ? "false_sharing took " + format_speedup(sharing) +
                                           " as long as padded_slots for the same adds: the threads' slots share "
                                           "one cache line, which moves between their cores at every write."
                       : sharing > 1.05
                           ? "false_sharing took only " + format_speedup(sharing) +
                                 " as long as padded_slots on this run: the shared cache line cost something, "
                                 "but little; run again to see how much it varies."
                           : "false_sharing was not slower than padded_slots here (" + format_speedup(sharing) +
                                 (t.busy() ? "): the machine was busy."
                                           : "): the threads did not share a line's "
                                             "cache at once on this run."));
    }
    if (const corelab::Row* py = t.find("python_two_thread")) {
        said.push_back("The notebook's cell here: two Python threads gave " +
                       format_speedup(t.seconds("python_loop") / py->seconds) + " over its loop.");
    }
    said.push_back("Threads or processes? A thread starts and joins in " + format_seconds(t.seconds("thread_spawn")) +
                   " and shares the array, but a crash in one kills\nthem all and every shared write must be "
                   "synchronised (and kept off shared cache lines). Processes cost a fork\nand a copy or a shared "
                   "segment (lesson 03), but a crashing worker leaves the others and the parent alive.");
    if (auto sweep = corelab::sweep_summary(t, "sweep_threads_"); !sweep.empty()) said.push_back(sweep);
    return said;
}

}  // namespace
