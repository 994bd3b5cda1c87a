// corelab/reduce.hpp — sums, counts and means.
//
// Concept: a mean is a sum and a count. Workers return a Partial (sum, count),
// never a partial mean, so chunks of unequal size combine exactly (lesson 03
// shows the bias of averaging two means). sum_loop is the notebook's loop
// (In[4]), one add after another; sum_fast keeps several independent
// accumulators, so additions overlap and the compiler can vectorise them
// without -ffast-math. Used by lessons 02, 03 and 04.
#pragma once

#include <cstddef>      // std::size_t
#include <span>         // std::span
#include <string_view>  // std::string_view

namespace corelab {

/// What a worker returns: the sum of its elements and how many there were.
struct Partial {
    double sum = 0.0;
    std::size_t count = 0;

    /// The mean sum / count. Throws corelab::Error when count is 0.
    double mean() const;
    /// Adds another partial's sum and count to this one.
    Partial& operator+=(const Partial& other) noexcept {
        sum += other.sum;
        count += other.count;
        return *this;
    }
    friend bool operator==(const Partial&, const Partial&) = default;
};

/// A Partial member by member, for serialisation libraries that call
/// `serialize(archive, value, version)` and write `archive & member`
/// (Boost.Serialization, so Boost.MPI's messages in lesson 08; cereal).
template <class Archive>
void serialize(Archive& archive, Partial& p, const unsigned /*version*/) {
    archive & p.sum & p.count;
}

/// The sum and count of two partials together.
inline Partial combine(Partial a, const Partial& b) noexcept {
    return a += b;
}

/// The sum and count of all partials together.
Partial combine(std::span<const Partial> parts) noexcept;

/// True when a and b count the same numbers and their means differ by no more
/// than adding the same n non-negative numbers in two orders can make them:
/// 2(n-1)·eps·|mean| (each order's sum is within (n-1)·eps·sum of the exact
/// one; lesson 02 derives it). How every lesson checks an approach against
/// its serial loop.
bool same_within_rounding(const Partial& a, const Partial& b) noexcept;

/// Checks an approach's result against its reference: throws corelab::Error
/// "<what> disagrees with <reference> by more than rounding allows: ..."
/// (with both means and counts) unless same_within_rounding(got, expected).
void check_within_rounding(std::string_view what, const Partial& got, std::string_view reference,
                           const Partial& expected);

/// The first index and the length of part k of n elements split into `parts`.
struct ChunkRange {
    std::size_t first;
    std::size_t count;
};
ChunkRange chunk_range(std::size_t n, std::size_t k, std::size_t parts);

/// Part k of `parts` nearly equal, contiguous parts of `data` (sizes differ by
/// at most one; the first n % parts parts get one more). Every element is in
/// exactly one part. Throws corelab::Error when parts is 0 or k >= parts.
template <class T>
std::span<T> chunk(std::span<T> data, std::size_t k, std::size_t parts) {
    const auto [first, count] = chunk_range(data.size(), k, parts);
    return data.subspan(first, count);
}

/// The notebook's loop: `sum += d[i]` for every i, in order, one dependency chain.
Partial sum_loop(std::span<const double> data) noexcept;

/// The same sum with 16 independent accumulators (IEEE arithmetic, no
/// -ffast-math): it may differ from sum_loop in the last bits only.
Partial sum_fast(std::span<const double> data) noexcept;

}  // namespace corelab
