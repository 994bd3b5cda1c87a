// Checker of exercise 02.1: the exact order of additions (bit for bit) on many
// sizes, then the time against the notebook's loop.
#include <corelab/dataset.hpp>  // make_uniform
#include <corelab/reduce.hpp>   // sum_loop: the baseline
#include <corelab/report.hpp>   // format_seconds
#include <cstddef>              // std::size_t

#include "check.hpp"
#include "exercise.hpp"

namespace {
corelab::Partial reference(std::span<const double> data) {
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    for (std::size_t i = 0; i < data.size(); ++i) acc[i % 4] += data[i];
    return {(acc[0] + acc[1]) + (acc[2] + acc[3]), data.size()};
}
}  // namespace

void run_check() {
    const auto data = corelab::make_uniform(1'000'003, 7);
    const std::span<const double> all(data.data(), data.size());
    for (std::size_t n : {0, 1, 2, 3, 4, 5, 7, 8, 1000, 1'000'003}) {
        const auto part = all.first(n);
        const auto got = sum_four(part);
        const auto want = reference(part);
        check::expect(got.count == n, check::str("n = ", n, ": count ", got.count, ", expected ", n));
        check::expect(got.sum == want.sum,
                      check::str("n = ", n, ": sum ", got.sum, " is not the four-accumulator sum ", want.sum,
                                 got.sum == corelab::sum_loop(part).sum ? " (it is the one-accumulator sum)" : ""));
    }
    const double loop = check::best_seconds(5, [&] { (void)corelab::sum_loop(all); });
    const double four = check::best_seconds(5, [&] { (void)sum_four(all); });
    check::note(check::str("n = 1000003: sum_loop ", corelab::format_seconds(loop), ", sum_four ",
                           corelab::format_seconds(four), " (", static_cast<int>(10 * loop / four) / 10.0,
                           "x faster; ./course check builds with -O2)"));
}
