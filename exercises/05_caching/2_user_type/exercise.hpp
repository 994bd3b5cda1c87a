// Exercise 05.2: cache a function whose result is a type of your own.
#pragma once
#include <corelab/memory.hpp>  // Memory
#include <cstddef>             // std::size_t
#include <vector>              // std::vector

/// How many values fall in each of `counts.size()` equal bins of [lo, hi].
struct Histogram {
    double lo = 0.0;
    double hi = 0.0;
    std::vector<std::size_t> counts;
    friend bool operator==(const Histogram&, const Histogram&) = default;
};

/// The function being cached (given, in checker.cpp): the histogram of
/// `data` in `bins` bins between its min and max. Counts its calls.
Histogram make_histogram(const std::vector<double>& data, std::size_t bins);
extern int histogram_calls;

/// make_histogram(data, bins) cached in `memory` under the name "histogram".
Histogram cached_histogram(const corelab::Memory& memory, const std::vector<double>& data, std::size_t bins);
