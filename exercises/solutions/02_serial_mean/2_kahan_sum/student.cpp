// Exercise 02.2 — a sum that keeps its rounding errors (README.md).
#include "exercise.hpp"

corelab::Partial kahan_sum(std::span<const double> data) {
    double sum = 0.0;
    double c = 0.0;  // what the additions so far have lost (negated)
    for (double x : data) {
        const double y = x - c;    // the element, corrected by the last loss
        const double t = sum + y;  // the low bits of y are lost here...
        c = (t - sum) - y;         // ...and recovered here (algebraically 0)
        sum = t;
    }
    return {sum, data.size()};
}
