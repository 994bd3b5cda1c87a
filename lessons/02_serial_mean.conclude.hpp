// What lesson 02 concludes from its table: every sentence is chosen from the
// numbers, never fixed text. A pure function, so a recorded run can be
// explained again (lesson02_serial_mean --conclude results/<run>/02_serial_mean.csv),
// and tests/test_conclusions.cpp feeds it recorded tables for each branch.
// Included by lessons/02_serial_mean.cpp alone.
#pragma once

#include <string>  // std::string
#include <vector>  // std::vector

#include "corelab/notebook.hpp"  // the notebook's own figures
#include "corelab/report.hpp"    // Table, Row, parallel_verdict, format_seconds, format_speedup

namespace {

std::vector<std::string> conclude(const corelab::Table& t) {
    const double speedup = t.speedup("serial_fast"), loop = t.seconds("serial_loop");
    std::vector<std::string> said{"serial_loop read " + corelab::format_gbps(t.at("serial_loop")) + ", serial_fast " +
                                  corelab::format_gbps(t.at("serial_fast")) + "."};
    if (speedup >= 1.2) {
        said.push_back(
            "serial_fast was " + corelab::format_speedup(speedup) +
            " faster. In serial_loop every add needs the result of the one before, so the core waits for each\n"
            "add to finish (2-4 cycles, by CPU) before it starts the next: one dependency chain. serial_fast keeps\n"
            "16 sums that do not depend on each other; the core overlaps their adds and the compiler packs them\n"
            "into vector instructions, so it runs until memory cannot deliver the numbers faster (the row\n"
            "bandwidth_read of ./course bench). No -ffast-math is needed: the reordering is written in the code.");
    } else {
        said.push_back("serial_fast was not faster here (" + corelab::format_speedup(speedup) +
                       "): the chain of adds did not limit serial_loop on this run" +
                       (t.busy() ? ", and other programs shared the CPUs (see the line above the table)."
                                 : "; memory or the build did (./course bench, row bandwidth_read)."));
    }
    if (const corelab::Row* py = t.find("python_loop")) {
        said.push_back("The notebook's Python loop, timed here and scaled to this n, takes " +
                       corelab::format_seconds(py->seconds) + ": this C++ loop is " +
                       corelab::format_speedup(py->seconds / loop) + " faster on the same machine.");
    } else if (t.n == corelab::notebook::n) {
        said.push_back("On " + std::string(corelab::notebook::laptop) + " the Python loop took 25.5 s for this n: " +
                       corelab::format_speedup(corelab::notebook::loop_seconds / loop) +
                       " this machine's C++ loop, two machines apart as well as two languages.");
    } else {
        said.push_back(
            "The notebook's Python loop took 25.5 s on its laptop for n = 100,000,000 (run with the "
            "default n to compare).");
    }
    return said;
}

}  // namespace
