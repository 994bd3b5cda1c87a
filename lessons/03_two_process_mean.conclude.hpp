// What lesson 03 concludes from its table: every sentence is chosen from the
// numbers, never fixed text. A pure function, so a recorded run can be
// explained again (lesson03_two_process_mean --conclude results/<run>/03_two_process_mean.csv),
// and tests/test_conclusions.cpp feeds it recorded tables for each branch.
// Included by lessons/03_two_process_mean.cpp alone.
#pragma once

#include <string>  // std::string
#include <vector>  // std::vector

#include "corelab/report.hpp"  // Table, Row, parallel_verdict, format_seconds, format_speedup

namespace {

std::vector<std::string> conclude(const corelab::Table& t) {
    using corelab::format_seconds, corelab::format_speedup;
    const double serial = t.seconds("serial_loop"), spawn = t.seconds("process_spawn"), share = spawn / serial;
    std::vector<std::string> said{corelab::parallel_verdict(
        t, "two_process", t.workers, std::to_string(t.workers) + (t.workers == 1 ? " process" : " processes"),
        "forking, copying page tables and exiting cost time the loop does not pay.",
        "their fixed costs ate the gain.")};
    said.push_back("A fork and reap of this " + std::to_string(t.n * 8 / 1'000'000) + " MB process cost " +
                   format_seconds(spawn) + ", " + std::to_string(static_cast<int>(100 * share + 0.5)) +
                   "% of the loop's " + format_seconds(serial) +
                   (share < 0.05 ? ": small against the work." : ": large, so processes need a bigger n to pay."));
    said.push_back("Copying the data through the queue took " +
                   format_speedup(t.seconds("copy_through_queue") / t.seconds("share_fork")) +
                   " as long as inheriting it (share_fork).");
    std::string nb = "The notebook, on its laptop: 25.5 s for one Python loop, 12.7 s for two processes (2.00x).";
    if (t.find("python_two_process") != nullptr) {
        nb += " Its cell here: " + format_speedup(t.seconds("python_loop") / t.seconds("python_two_process")) +
              " from two Python processes.";
    }
    said.push_back(nb);
    if (auto sweep = corelab::sweep_summary(t, "sweep_processes_"); !sweep.empty()) said.push_back(sweep);
    return said;
}

}  // namespace
