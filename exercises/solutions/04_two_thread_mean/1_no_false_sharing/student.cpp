// Exercise 04.1 — shared accumulators on separate cache lines (README.md).
#include <corelab/cache_line.hpp>      // CacheAligned, cache_line
#include <corelab/thread_workers.hpp>  // ThreadWorkers

#include "exercise.hpp"

std::vector<corelab::Partial> shared_sums(std::span<const double> data, unsigned threads, const Observe& observe) {
    // alignas(64) per element: each accumulator alone on its cache line
    std::vector<corelab::CacheAligned<corelab::Partial>> accumulators(threads);
    corelab::ThreadWorkers workers(threads);
    workers.run([&](unsigned k) {
        corelab::Partial& mine = accumulators[k].value;
        observe(k, &mine);
        for (double x : corelab::chunk(data, k, threads)) {
            mine.sum += x;
            ++mine.count;
        }
        return 0;
    });
    std::vector<corelab::Partial> result;
    for (const auto& a : accumulators) result.push_back(a.value);
    return result;
}
