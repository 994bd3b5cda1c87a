// What lesson 06 concludes from its table: every sentence is chosen from the
// numbers, never fixed text. A pure function, so a recorded run can be
// explained again (lesson06_parallel_for --conclude results/<run>/06_parallel_for.csv),
// and tests/test_conclusions.cpp feeds it recorded tables for each branch.
// Also sum(), the result a row reports. Included by lessons/06_parallel_for.cpp alone.
#pragma once

#include <cmath>   // std::abs
#include <string>  // std::string
#include <vector>  // std::vector

#include "corelab/notebook.hpp"  // the notebook's own figures
#include "corelab/reduce.hpp"    // sum_loop
#include "corelab/report.hpp"    // Table, Row, parallel_verdict, format_seconds, format_speedup

namespace {

double sum(const std::vector<double>& v) {  // a row's result: f(i) = i, so 0 + 1 + ... + tasks-1
    return corelab::sum_loop(v).sum;
}

// What the pool's row says beside processes_2 (which forks its workers each call) and threads_2.
std::string pool_verdict(const corelab::Table& t) {
    using corelab::format_seconds, corelab::format_speedup;
    const double forked = t.seconds("processes_2"), reused = t.seconds("processes_2_reused");
    std::string s = "A reused pool (the same map() again on one Parallel, its 2 processes kept) took " +
                    format_seconds(reused) + " a call against " + format_seconds(forked) +
                    " for processes_2, which forks and reaps its workers each call";
    const double vs = reused / t.seconds("threads_2");
    if (t.busy()) {
        return s + ". Other programs shared the CPUs meanwhile, so neither the difference (" +
               format_seconds(std::abs(forked - reused)) +
               ") nor how the pool compares with threads_2 is the machine's: run it again when it is quiet.";
    }
    s += forked - reused > 0.02 * forked
             ? ": about " + format_seconds(forked - reused) +
                   " of each forking call was starting and ending workers, which a pool pays once."
             : ": next to tasks this long the fork is lost in the noise; a pool pays off for many short calls.";
    if (vs <= 1.05) {
        s += " It was within 5% of threads_2 (" + format_speedup(vs) +
             " its time): once the workers exist, a call on processes costs what one on threads does.";
    } else {
        s += " It took " + format_speedup(vs) +
             " threads_2's time: handing out a call on a pool costs microseconds, so the rest is the tasks running "
             "slower in the workers, or a CPU taken by another program for a moment; run it again.";
    }
    return s;
}

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
    if (p2 != nullptr && t2 != nullptr && t.find("processes_2_reused") != nullptr) said.push_back(pool_verdict(t));
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
