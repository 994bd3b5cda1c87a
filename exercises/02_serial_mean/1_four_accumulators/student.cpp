// Exercise 02.1 — four accumulators instead of one (README.md).
#include "exercise.hpp"

corelab::Partial sum_four(std::span<const double> data) {
    // TODO(exercise): this is the notebook's loop, one dependency chain: each
    // add waits for the previous one. Keep four sums, element i going to
    // sum i % 4, and add them as exercise.hpp says.
    double sum = 0.0;
    for (double x : data) sum += x;
    return {sum, data.size()};
}
