// What lesson 01 concludes from its table: every sentence is chosen from the
// numbers, never fixed text. A pure function, so a recorded run can be
// explained again (lesson01_lscpu --conclude results/<run>/01_lscpu.csv),
// and tests/test_conclusions.cpp feeds it recorded tables for each branch.
// Included by lessons/01_lscpu.cpp alone.
#pragma once

#include <algorithm>  // std::max
#include <string>     // std::string
#include <vector>     // std::vector

#include "corelab/report.hpp"  // Table, Row, parallel_verdict, format_seconds, format_speedup

namespace {

std::vector<std::string> conclude(const corelab::Table& t) {
    const auto count = [&](const char* row) { return static_cast<unsigned>(t.at(row).result.value_or(0)); };
    const unsigned threads = count("logical_cpus"), cores = std::max(count("physical_cores"), 1u);
    const unsigned per_core = count("threads_per_core") != 0 ? count("threads_per_core") : threads / cores;
    const std::string n = std::to_string(threads), c = std::to_string(cores);
    std::vector<std::string> said{
        "\nWhat this means for the course:\n- " + n + " hardware threads: at most " + n +
            " workers (processes or threads) run at the same instant. Start more and they take turns.",
        "- " + c + " physical cores, " + std::to_string(per_core) +
            " thread(s) per core. Two hyper-threads of one core share its execution units and caches:\n"
            "  while one waits for memory the other computes, but two busy ones share one core's adders.\n"
            "  CPU-bound work such as the notebook's sum scales with cores, not threads." +
            (per_core == 1 ? "\n  Here every hardware thread is a whole core (a VM's vCPUs usually are), so threads "
                             "= cores."
                           : "")};
    const corelab::Row* l3 = t.find("l3_cache_bytes");
    if (l3 == nullptr || !l3->result) {
        said.push_back(
            "- Cache sizes are unknown: this machine exposes no /sys/devices/system/cpu/cpu0/cache\n"
            "  (common under a hypervisor), so lscpu prints no cache lines either.");
    }
    said.push_back("The laptop could run 4 CPU-bound workers at full speed; this machine runs " + c +
                   ": expect at most " + c + "x from the parallel lessons here.");
    return said;
}

}  // namespace
