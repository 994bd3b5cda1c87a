// Exercise 04.2 — min and max in threads, and empty parts (README.md).
#include <algorithm>                   // std::min, std::max
#include <corelab/error.hpp>           // Error
#include <corelab/reduce.hpp>          // chunk
#include <corelab/thread_workers.hpp>  // ThreadWorkers
#include <limits>                      // std::numeric_limits

#include "exercise.hpp"

MinMax thread_minmax(std::span<const double> data, unsigned threads) {
    if (data.empty()) throw corelab::Error("thread_minmax: no data, so no min and no max");
    // The identity of min is +infinity, of max -infinity: an empty part changes nothing.
    constexpr double inf = std::numeric_limits<double>::infinity();
    corelab::ThreadWorkers workers(threads);
    const auto parts = workers.run([&](unsigned k) {
        MinMax m{inf, -inf};
        for (double x : corelab::chunk(data, k, threads)) {
            m.min = std::min(m.min, x);
            m.max = std::max(m.max, x);
        }
        return m;
    });
    MinMax all{inf, -inf};
    for (const MinMax& m : parts) {
        all.min = std::min(all.min, m.min);
        all.max = std::max(all.max, m.max);
    }
    return all;
}
