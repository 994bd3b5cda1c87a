// What lesson 06 concludes from its table: every sentence is chosen from the
// numbers, never fixed text. A pure function, so a recorded run can be
// explained again (lesson06_parallel_for --conclude results/<run>/06_parallel_for.csv),
// and tests/test_conclusions.cpp feeds it recorded tables for each branch.
// Included by lessons/06_parallel_for.cpp alone.
#pragma once

#include <string>  // std::string
#include <vector>  // std::vector

#include "corelab/notebook.hpp"  // the notebook's own figures
#include "corelab/report.hpp"    // Table, Row, parallel_verdict, format_seconds, format_speedup

namespace {

std::vector<std::string> conclude(const corelab::Table& t) {
    using corelab::format_seconds, corelab::format_speedup, corelab::notebook::f_loop_seconds;
    const double naive = t.seconds("f_naive"), call = t.seconds("f_call");
    std::vector<std::string> said{
        "The notebook's f ported word for word took " + format_seconds(naive) + " for one call, f " +
        format_seconds(call) +
        (naive < call / 10 ? ": p is never used, so the optimiser removed both loops of the first (f keeps them)."
                           : ": this build kept the loops of both (an unoptimised build?).")};
    const corelab::Row* p2 = t.find("processes_2");
    const corelab::Row* t2 = t.find("threads_2");
    if (p2 != nullptr) {
        said.push_back(corelab::parallel_verdict(t, "processes_2", 2, "2 processes",
                                                 "each call forks and reaps its workers, which costs milliseconds.",
                                                 "forking the workers cost more than they saved."));
    }
    if (t2 != nullptr) {
        said.push_back(corelab::parallel_verdict(t, "threads_2", 2, "2 threads",
                                                 "the tasks end unevenly, or another program took a CPU.",
                                                 "the tasks are too short to share out."));
    }
    if (p2 != nullptr && t2 != nullptr && !t.busy()) {
        const double ps = t.speedup("processes_2"), ts = t.speedup("threads_2");
        said.push_back(ts > 1.1 && ts >= 0.85 * ps
                           ? "Threads scaled like processes (" + format_speedup(ts) + " and " + format_speedup(ps) +
                                 "): C++ has no interpreter lock. The notebook's threads did not (the GIL)."
                           : "Threads gained " + format_speedup(ts) + " against the processes' " + format_speedup(ps) +
                                 ": on this run the threads did not get two CPUs to themselves.");
    }
    if (const corelab::Row* p6 = t.find("processes_6"); p6 != nullptr && p2 != nullptr && !t.busy()) {
        said.push_back(t.load.cpus < 6
                           ? "processes_6 (6 workers on " + std::to_string(t.load.cpus) + " CPUs) gave " +
                                 format_speedup(t.speedup("processes_6")) +
                                 ": workers beyond the CPUs take turns on them, and 10 tasks on 6 end unevenly."
                           : "processes_6 gave " + format_speedup(t.speedup("processes_6")) + ": " +
                                 std::to_string(t.load.cpus) + " CPUs ran the 6 workers at once.");
    }
    std::string nb = "The notebook (its laptop, Python, x = 10000): loop 21.7 s, 2 processes " +
                     format_speedup(f_loop_seconds / corelab::notebook::f_processes_2_seconds) + ", 2 threads " +
                     format_speedup(f_loop_seconds / corelab::notebook::f_threads_2_seconds) + " (the GIL), 6 jobs " +
                     format_speedup(f_loop_seconds / corelab::notebook::f_jobs_6_seconds) + " (4 cores, 8 threads).";
    if (t.find("python_threads_2") != nullptr) {
        const double loop = t.seconds("python_loop");
        nb += "\nIts cell here: 2 processes " + format_speedup(loop / t.seconds("python_processes_2")) +
              ", 2 threads " + format_speedup(loop / t.seconds("python_threads_2")) + " over its own loop.";
    }
    said.push_back(nb);
    for (const char* backend : {"sweep_processes_", "sweep_threads_"}) {
        if (auto sweep = corelab::sweep_summary(t, backend); !sweep.empty()) said.push_back(sweep);
    }
    return said;
}

}  // namespace
