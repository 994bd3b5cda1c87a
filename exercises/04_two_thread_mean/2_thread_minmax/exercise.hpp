// Exercise 04.2: a reduction that is not a sum, in threads.
#pragma once
#include <span>  // std::span

/// The smallest and the largest value of some numbers.
struct MinMax {
    double min;
    double max;
};

/// The min and max of `data`, computed by `threads` worker threads
/// (corelab::ThreadWorkers), each on its part corelab::chunk(data, k, threads),
/// then combined. `threads` may exceed data.size(): some parts are then empty.
/// Throws corelab::Error when data is empty (an empty set has no min).
MinMax thread_minmax(std::span<const double> data, unsigned threads);
