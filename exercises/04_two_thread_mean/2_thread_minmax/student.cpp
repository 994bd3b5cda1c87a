// Exercise 04.2 — min and max in threads, and empty parts (README.md).
#include <corelab/reduce.hpp>          // chunk
#include <corelab/thread_workers.hpp>  // ThreadWorkers

#include "exercise.hpp"

MinMax thread_minmax(std::span<const double> data, unsigned threads) {
    corelab::ThreadWorkers workers(threads);
    const auto parts = workers.run([&](unsigned k) {
        MinMax m{0.0, 0.0};
        // TODO(exercise): starting at 0 is wrong for negative numbers and for
        // numbers above 0 alike. What is the min and max of an empty part?
        for (double x : corelab::chunk(data, k, threads)) {
            if (x < m.min) m.min = x;
            if (x > m.max) m.max = x;
        }
        return m;
    });
    // TODO(exercise): combine every part, not only the first; throw
    // corelab::Error for empty data.
    return parts[0];
}
