// Implementation of corelab/reduce.hpp.
#include "corelab/reduce.hpp"

#include <algorithm>  // std::min
#include <cmath>      // std::abs
#include <cstdio>     // std::snprintf
#include <limits>     // std::numeric_limits
#include <string>     // std::string, std::to_string

#include "corelab/error.hpp"  // Error

namespace corelab {

double Partial::mean() const {
    if (count == 0) throw Error("the mean of no numbers is undefined: give at least one element");
    return sum / static_cast<double>(count);
}

ChunkRange chunk_range(std::size_t n, std::size_t k, std::size_t parts) {
    if (parts == 0) throw Error("cannot split into 0 parts: give at least one worker");
    if (k >= parts) throw Error("part " + std::to_string(k) + " does not exist: there are " + std::to_string(parts));
    const std::size_t base = n / parts;
    const std::size_t extra = n % parts;
    return {k * base + std::min(k, extra), base + (k < extra ? 1 : 0)};
}

bool same_within_rounding(const Partial& a, const Partial& b) noexcept {
    if (a.count != b.count) return false;
    if (a.count == 0) return a.sum == b.sum;
    const double n = static_cast<double>(a.count);
    const double mean_a = a.sum / n, mean_b = b.sum / n;
    const double bound = 2.0 * (n - 1.0) * std::numeric_limits<double>::epsilon() * std::abs(mean_a);
    return std::abs(mean_a - mean_b) <= bound;
}

void check_within_rounding(std::string_view what, const Partial& got, std::string_view reference,
                           const Partial& expected) {
    if (same_within_rounding(got, expected)) return;
    const auto mean = [](const Partial& p) { return p.count == 0 ? 0.0 : p.sum / static_cast<double>(p.count); };
    char figures[160];
    std::snprintf(figures, sizeof figures, "mean %.17g of %zu numbers against %.17g of %zu", mean(got), got.count,
                  mean(expected), expected.count);
    throw Error(std::string(what) + " disagrees with " + std::string(reference) +
                " by more than rounding allows: " + figures);
}

Partial combine(std::span<const Partial> parts) noexcept {
    Partial total;
    for (const Partial& p : parts) total += p;
    return total;
}

// [docs:sum_loop]
Partial sum_loop(std::span<const double> data) noexcept {
    double sum = 0.0;
    for (std::size_t i = 0; i < data.size(); ++i) sum += data[i];  // each add waits for the one before
    return {sum, data.size()};
}
// [docs:end]

// [docs:sum_fast]
Partial sum_fast(std::span<const double> data) noexcept {
    constexpr std::size_t lanes = 16;  // 16 independent chains: adds overlap in the pipeline
    double acc[lanes] = {};
    const std::size_t n = data.size();
    const std::size_t whole = n - n % lanes;
    for (std::size_t i = 0; i < whole; i += lanes) {
        // Unrolled, the 16 sums live in registers; at -O2 GCC 12 would keep
        // them on the stack and each chain would wait for a store to reload.
#pragma GCC unroll 16
        for (std::size_t k = 0; k < lanes; ++k) acc[k] += data[i + k];
    }
    for (std::size_t i = whole; i < n; ++i) acc[i % lanes] += data[i];
    // Add the lanes pairwise, so rounding errors stay as small as the loop's.
    for (std::size_t width = lanes / 2; width > 0; width /= 2) {
        for (std::size_t k = 0; k < width; ++k) acc[k] += acc[k + width];
    }
    return {acc[0], n};
}
// [docs:end]

}  // namespace corelab
