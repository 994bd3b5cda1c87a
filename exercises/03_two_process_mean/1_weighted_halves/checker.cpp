// Checker of exercise 03.1: unequal parts against the serial mean, and the
// work really done by child processes.
#include <cmath>                // std::abs
#include <corelab/dataset.hpp>  // make_uniform
#include <corelab/reduce.hpp>   // sum_loop: the serial reference
#include <corelab/report.hpp>   // format_seconds
#include <cstddef>              // std::size_t
#include <vector>               // std::vector

#include "check.hpp"
#include "exercise.hpp"

void run_check() {
    const std::vector<double> small = {1.0, 1.0, 1.0, 10.0};
    const double small_mean = two_process_mean(small, 3);
    check::expect(std::abs(small_mean - 3.25) < 1e-12,
                  check::str("the mean of {1, 1, 1, 10} split after 3 is 3.25, you got ", small_mean,
                             small_mean == 5.5 ? " (the average of the two means 1 and 10)" : ""));

    const auto data = corelab::make_uniform(1'000'000, 11);
    const std::span<const double> all(data.data(), data.size());
    const double want = corelab::sum_loop(all).mean();
    for (std::size_t split : {std::size_t{1}, all.size() / 10, all.size() / 2, all.size() - 1}) {
        const long faults_before = check::reaped_children_faults();
        const double got = two_process_mean(all, split);
        check::expect(check::reaped_children_faults() > faults_before,
                      "no child process ran and was reaped: use corelab::ProcessWorkers");
        check::expect(std::abs(got - want) <= 1e-12 * std::abs(want),
                      check::str("10^6 values split at ", split, ": mean ", got, ", the serial mean is ", want));
    }
    const double serial = check::best_seconds(3, [&] { (void)corelab::sum_loop(all); });
    const double two = check::best_seconds(3, [&] { (void)two_process_mean(all, all.size() / 2); });
    check::note("n = 10^6: one loop " + corelab::format_seconds(serial) + ", two processes " +
                corelab::format_seconds(two) + " (forking costs more than this small sum)");
}
