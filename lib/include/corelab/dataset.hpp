// corelab/dataset.hpp — the notebook's 100 million random numbers.
//
// Concept: `d = np.random.rand(n)` (notebook In[3]): n doubles, uniform in
// [0, 1), reproducible for a seed. Generation is split into fixed blocks, each
// with its own seed derived from (seed, block), and the blocks are filled by
// all cores: the same seed gives the same data whatever the thread count.
// make_uniform_part() makes any contiguous slice of that array alone, so a
// process (an MPI rank in lesson 08) can make only its share of the data.
// check_peak_memory() lets a program refuse, before it allocates anything, a
// size whose peak (data, copies, children, segments together) would not fit.
// Used by lessons 02 to 08.
#pragma once

#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint64_t
#include <string>   // std::string

#include "corelab/error.hpp"       // Error, the base of MemoryShortage
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

/// What a program holds at once for each element of its input (a number, a
/// task): its data, its copies (in queues, in children), its shared-memory
/// segments, plus what does not grow with the count.
struct Footprint {
    double bytes_per_element = 0;      ///< memory in all, /dev/shm segments included
    double shm_bytes_per_element = 0;  ///< of that, what lives in /dev/shm segments
    double fixed_bytes = 0;            ///< memory that does not grow with the count
};

/// The share of the available memory that check_peak_memory lets one run
/// take: the rest of the machine (its page cache, other programs) keeps the
/// remainder, so that the run is not slowed down by the kernel reclaiming
/// memory, nor killed by it.
inline constexpr double usable_memory_share = 0.9;

/// A run that would not fit in memory. The message gives the figures;
/// largest_count() is the largest count whose peak fits (0: not even one).
class MemoryShortage : public Error {
public:
    MemoryShortage(const std::string& message, std::uint64_t largest_count)
        : Error(message, About::size), largest_count_(largest_count) {}
    std::uint64_t largest_count() const noexcept { return largest_count_; }

private:
    std::uint64_t largest_count_;
};

/// Checks a run's peak before it allocates anything: throws MemoryShortage
/// when `count` elements of `footprint` need more memory at once than
/// usable_memory_share of the available memory (available_memory()), or more
/// of /dev/shm than it has free. `what` names the run in the message
/// ("lesson 03 at n = 1000000000 needs 24.0 GB of memory at once; ...").
/// A figure that cannot be read (no /proc/meminfo, no /dev/shm) is not checked.
void check_peak_memory(std::uint64_t count, const Footprint& footprint, const std::string& what);

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
