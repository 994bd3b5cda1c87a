// What lesson 08 concludes from its table: every sentence is chosen from the
// numbers, never fixed text. A pure function, so a recorded run can be
// explained again (lesson08_mpi_mean --conclude results/<run>/08_mpi_mean.csv),
// and tests/test_conclusions.cpp feeds it recorded tables for each branch.
// Included by lessons/08_mpi_mean.cpp alone.
#pragma once

#include <string>  // std::string
#include <vector>  // std::vector

#include "corelab/error.hpp"   // Error
#include "corelab/report.hpp"  // Table, Row, parallel_verdict, format_seconds, format_speedup

namespace {

std::vector<std::string> conclude(const corelab::Table& t) {
    const corelab::Row* reduce = nullptr;
    for (const auto& r : t.rows) reduce = r.name.rfind("mpi_reduce_", 0) == 0 ? &r : reduce;
    if (reduce == nullptr) throw corelab::Error("lesson 08's table has no mpi_reduce_N row");
    const unsigned ranks = reduce->workers.value_or(1);
    const double only = t.at("reduce_only").median(), share = only / reduce->seconds;
    return {corelab::parallel_verdict(t, reduce->name, ranks, std::to_string(ranks) + " rank" + (ranks > 1 ? "s" : ""),
                                      "the ranks share this machine's memory bandwidth, or wait for the slowest.",
                                      "one rank's share was too small to pay for starting the sums together."),
            "Combining the ranks' Partials alone (reduce_only: the median of 101, 16 bytes from each rank) took " +
                corelab::format_seconds(only) + ", " +
                (share < 0.01 ? std::string("under 1") : std::to_string(static_cast<int>(100 * share + 0.5))) +
                "% of the whole reduce" +
                (share < 0.1 ? ": the sums cost the time, not the messages."
                             : ": at this n the messages cost as much as the sums.")};
}

}  // namespace
