// Checker of exercise 03.2: every part of every split, bit for bit against
// the serial sum of the same part, for 1, 2, 3 and 7 workers.
#include <corelab/dataset.hpp>  // make_uniform
#include <corelab/reduce.hpp>   // chunk, sum_loop, combine
#include <cstddef>              // std::size_t

#include "check.hpp"
#include "exercise.hpp"

void run_check() {
    const auto data = corelab::make_uniform(100'001, 5);
    const std::span<const double> all(data.data(), data.size());
    for (unsigned workers : {3u, 1u, 2u, 7u}) {
        for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{1000}, all.size()}) {
            const auto part = all.first(n);
            const long faults_before = check::reaped_children_faults();
            const auto got = process_sums(part, workers);
            check::expect(check::reaped_children_faults() > faults_before,
                          "no child process ran and was reaped: use corelab::ProcessWorkers");
            check::expect(got.size() == workers, check::str(workers, " workers on ", n, " values: ", got.size(),
                                                            " results, expected one per worker"));
            for (unsigned k = 0; k < workers; ++k) {
                const auto want = corelab::sum_loop(corelab::chunk(part, k, workers));
                check::expect(got[k] == want, check::str(workers, " workers on ", n, " values: worker ", k,
                                                         " returned sum ", got[k].sum, " count ", got[k].count,
                                                         ", its part has sum ", want.sum, " count ", want.count));
            }
        }
    }
    check::note(check::str("3 workers on 100001 values: total ", corelab::combine(process_sums(all, 3)).sum,
                           ", serial ", corelab::sum_loop(all).sum));
}
