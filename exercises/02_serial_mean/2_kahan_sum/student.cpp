// Exercise 02.2 — a sum that keeps its rounding errors (README.md).
#include "exercise.hpp"

corelab::Partial kahan_sum(std::span<const double> data) {
    double sum = 0.0;
    // TODO(exercise): keep a compensation c of what each add lost and
    // subtract it from the next element before adding (Kahan 1965).
    for (double x : data) sum += x;
    return {sum, data.size()};
}
