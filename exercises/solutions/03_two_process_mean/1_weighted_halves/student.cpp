// Exercise 03.1 — combine the means of unequal parts correctly (README.md).
#include <corelab/process_workers.hpp>  // ProcessWorkers: the notebook's Process
#include <corelab/reduce.hpp>           // sum_loop

#include "exercise.hpp"

namespace {
// What each child sends back, as the notebook's children do: a mean.
struct PartMean {
    double mean;
    std::size_t count;
};
}  // namespace

double two_process_mean(std::span<const double> data, std::size_t split) {
    corelab::ProcessWorkers workers(2);
    const auto parts = workers.run([&](unsigned k) {
        const auto part = k == 0 ? data.first(split) : data.subspan(split);
        return PartMean{corelab::sum_loop(part).mean(), part.size()};
    });
    // Each mean stands for `count` elements: weight it so.
    const auto n0 = static_cast<double>(parts[0].count);
    const auto n1 = static_cast<double>(parts[1].count);
    return (parts[0].mean * n0 + parts[1].mean * n1) / (n0 + n1);
}
