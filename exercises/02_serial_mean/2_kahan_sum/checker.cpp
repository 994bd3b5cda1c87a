// Checker of exercise 02.2: sums whose exact value is known, where the plain
// loop is visibly wrong, then the uniform data against a long double sum.
#include <cmath>                // std::abs
#include <corelab/dataset.hpp>  // make_uniform
#include <corelab/reduce.hpp>   // sum_loop
#include <vector>               // std::vector

#include "check.hpp"
#include "exercise.hpp"

void run_check() {
    // 1 followed by ten million 1e-16: each tiny add is lost by the plain loop.
    std::vector<double> tiny(10'000'001, 1e-16);
    tiny[0] = 1.0;
    const double exact = 1.0 + 1e-9;
    const auto got = kahan_sum(tiny);
    const double loop = corelab::sum_loop(tiny).sum;
    check::expect(got.count == tiny.size(), check::str("count ", got.count, ", expected ", tiny.size()));
    check::expect(std::abs(got.sum - exact) < 1e-15, check::str("1 + 10^7 x 1e-16 is ", exact, "; you got ", got.sum,
                                                                " (the plain loop gets ", loop, ")"));
    check::note(check::str("1 + 10^7 x 1e-16: plain loop ", loop, ", Kahan ", got.sum));

    // The same value in any order: 1e-16s first, then 1.
    std::vector<double> reversed(tiny.rbegin(), tiny.rend());
    check::expect(std::abs(kahan_sum(reversed).sum - exact) < 1e-15, "the tiny values first, then 1: wrong sum");
    check::expect(kahan_sum(std::span<const double>{}).sum == 0.0, "the sum of nothing is 0");

    const auto data = corelab::make_uniform(1'000'000, 3);
    long double wide = 0.0L;
    for (double x : data) wide += x;
    const std::span<const double> all(data.data(), data.size());
    const double kahan_error = std::abs(static_cast<double>(kahan_sum(all).sum - wide));
    const double loop_error = std::abs(static_cast<double>(corelab::sum_loop(all).sum - wide));
    check::expect(kahan_error <= loop_error, check::str("10^6 uniform values: your error ", kahan_error,
                                                        " is larger than the plain loop's ", loop_error));
    check::note(
        check::str("10^6 uniform values, error against long double: loop ", loop_error, ", Kahan ", kahan_error));
}
