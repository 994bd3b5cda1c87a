// corelab/dataset.hpp — the notebook's 100 million random numbers.
//
// Concept: `d = np.random.rand(n)` (notebook In[3]): n doubles, uniform in
// [0, 1), reproducible for a seed. Generation is split into fixed blocks, each
// with its own seed derived from (seed, block), and the blocks are filled by
// all cores: the same seed gives the same data whatever the thread count.
// make_uniform_part() makes any contiguous slice of that array alone, so a
// process (an MPI rank in lesson 08) can make only its share of the data.
// Used by lessons 02, 03, 04 and 08.
#pragma once

#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint64_t

#include "corelab/huge_array.hpp"  // HugeArray: the data lives in 2 MB pages

namespace corelab {

/// Elements per generation block; block b is seeded from (seed, b).
inline constexpr std::size_t dataset_block = std::size_t{1} << 20;

/// Bytes of memory the kernel says can still be given out (MemAvailable of
/// /proc/meminfo), or 0 when it cannot be read.
std::size_t available_memory();

/// Throws corelab::Error, before anything is allocated, when `bytes` (what a
/// program is about to allocate for `what`) exceeds the available memory.
void check_fits_in_memory(std::size_t bytes, const char* what);

/// n doubles uniform in [0, 1), the same for the same seed on any machine and
/// with any `threads` (0 = all hardware threads). Throws corelab::Error when
/// n is 0 or n doubles do not fit in available memory.
HugeArray<double> make_uniform(std::size_t n, std::uint64_t seed, unsigned threads = 0);

/// Elements [first, first + count) of make_uniform(n, seed), bit for bit,
/// without making the others: ranks that each make their part hold together
/// exactly the data of one make_uniform(n, seed). Throws corelab::Error when
/// count is 0, the slice does not lie within [0, n), or it does not fit in
/// available memory.
HugeArray<double> make_uniform_part(std::size_t n, std::uint64_t seed, std::size_t first, std::size_t count,
                                    unsigned threads = 0);

}  // namespace corelab
