// Checker of exercise 04.2: many sizes and thread counts (parts that are
// empty included) against std::minmax_element, negative data, empty data.
#include <algorithm>            // std::minmax_element
#include <corelab/dataset.hpp>  // make_uniform
#include <corelab/error.hpp>    // Error
#include <cstddef>              // std::size_t
#include <vector>               // std::vector

#include "check.hpp"
#include "exercise.hpp"

void run_check() {
    const auto uniform = corelab::make_uniform(100'003, 13);
    std::vector<double> shifted(uniform.begin(), uniform.end());   // in [5, 6): no 0 in sight
    std::vector<double> negative(uniform.begin(), uniform.end());  // in [-1, 0)
    for (double& x : shifted) x += 5.0;
    for (double& x : negative) x -= 1.0;
    for (const auto* values : {&shifted, &negative}) {
        const char* what = values == &shifted ? "values in [5, 6)" : "values in [-1, 0)";
        for (unsigned threads : {2u, 1u, 3u, 7u}) {
            for (std::size_t n : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{1000}, values->size()}) {
                const std::span<const double> part(values->data(), n);
                const auto [lo, hi] = std::minmax_element(part.begin(), part.end());
                const MinMax got = thread_minmax(part, threads);
                check::expect(got.min == *lo && got.max == *hi,
                              check::str(n, " ", what, " in ", threads, " threads: min ", got.min, " max ", got.max,
                                         ", expected min ", *lo, " max ", *hi));
            }
        }
    }
    bool threw = false;
    try {
        (void)thread_minmax({}, 2);
    } catch (const corelab::Error&) {
        threw = true;
    }
    check::expect(threw, "empty data has no min and no max: throw corelab::Error");
}
