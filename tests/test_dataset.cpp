// Tests of corelab/dataset.hpp: reproducible data, its range, the memory checks (one allocation, a whole peak).
#include <doctest/doctest.h>
#include <sys/statvfs.h>  // statvfs: the room in /dev/shm

#include <algorithm>  // std::equal, std::all_of
#include <cstddef>    // std::ptrdiff_t
#include <limits>     // std::numeric_limits
#include <string>     // std::string

#include "corelab/dataset.hpp"
#include "corelab/error.hpp"
#include "corelab/reduce.hpp"

TEST_CASE("dataset: the same seed gives the same data whatever the thread count") {
    // Sizes around the block size, so the last short block is covered too.
    for (std::size_t n : {1u, 7u, 1000u, static_cast<unsigned>(corelab::dataset_block) + 3u, 3'000'001u}) {
        const auto one = corelab::make_uniform(n, 42, 1);
        CAPTURE(n);
        for (unsigned threads : {2u, 3u, 7u, 0u}) {
            const auto many = corelab::make_uniform(n, 42, threads);
            CAPTURE(threads);
            CHECK(std::equal(one.begin(), one.end(), many.begin(), many.end()));
        }
    }
}

TEST_CASE("dataset: different seeds give different data and values lie in 0 to 1 with mean near 1/2") {
    const auto a = corelab::make_uniform(1'000'000, 1);
    const auto b = corelab::make_uniform(1'000'000, 2);
    CHECK_FALSE(std::equal(a.begin(), a.end(), b.begin()));
    CHECK(std::all_of(a.begin(), a.end(), [](double x) { return x >= 0.0 && x < 1.0; }));
    // The mean of 1e6 uniforms has standard deviation 1/sqrt(12e6) ~ 2.9e-4.
    CHECK(corelab::sum_fast(a).mean() == doctest::Approx(0.5).epsilon(0.003));
}

TEST_CASE("dataset: a prefix of a larger dataset is the smaller dataset") {
    const auto small = corelab::make_uniform(1000, 9);
    const auto large = corelab::make_uniform(5000, 9);
    CHECK(std::equal(small.begin(), small.end(), large.begin()));
}

TEST_CASE("dataset: parts made alone are the slices of the whole array bit for bit") {
    // Part boundaries inside blocks, on block edges and parts longer than a block.
    const std::size_t n = 3 * corelab::dataset_block + 12'345;
    const auto whole = corelab::make_uniform(n, 7);
    for (std::size_t parts : {1u, 2u, 3u, 5u, 7u}) {
        CAPTURE(parts);
        for (std::size_t k = 0; k < parts; ++k) {
            const auto [first, count] = corelab::chunk_range(n, k, parts);
            const auto part = corelab::make_uniform_part(n, 7, first, count, k % 2 == 0 ? 1u : 3u);
            CAPTURE(first);
            REQUIRE(part.size() == count);
            CHECK(std::equal(part.begin(), part.end(), whole.begin() + static_cast<std::ptrdiff_t>(first)));
        }
    }
    const auto edge = corelab::make_uniform_part(n, 7, corelab::dataset_block - 1, 2);
    CHECK(edge[0] == whole[corelab::dataset_block - 1]);
    CHECK(edge[1] == whole[corelab::dataset_block]);
    const auto last = corelab::make_uniform_part(n, 7, n - 1, 1);
    CHECK(last[0] == whole[n - 1]);
}

TEST_CASE("dataset: a part outside the data or an empty part is a clear error") {
    CHECK_THROWS_WITH_AS(corelab::make_uniform_part(100, 1, 0, 0), doctest::Contains("at least 1"), corelab::Error);
    CHECK_THROWS_WITH_AS(corelab::make_uniform_part(100, 1, 90, 11), doctest::Contains("do not lie within the 100"),
                         corelab::Error);
    CHECK_THROWS_AS(corelab::make_uniform_part(100, 1, 101, 1), corelab::Error);
    // first + count overflows: still refused, not wrapped round.
    CHECK_THROWS_AS(corelab::make_uniform_part(100, 1, 50, std::numeric_limits<std::size_t>::max()), corelab::Error);
}

TEST_CASE("dataset: impossible sizes throw a clear error before allocating") {
    CHECK_THROWS_WITH_AS(corelab::make_uniform(0, 1), doctest::Contains("at least 1"), corelab::Error);
    // 10^13 doubles are 80 TB: more than any test machine has.
    try {
        (void)corelab::make_uniform(10'000'000'000'000ULL, 1);
        FAIL("no error for 80 TB");
    } catch (const corelab::Error& e) {
        CHECK(e.about() == corelab::About::size);  // a lesson's run_lesson turns it into "use a smaller --n"
        CHECK(std::string(e.what()).find("--") == std::string::npos);
    }
    CHECK_THROWS_AS(corelab::make_uniform(std::numeric_limits<std::size_t>::max(), 1), corelab::Error);
    CHECK(corelab::available_memory() > 0);
    CHECK_NOTHROW(corelab::check_fits_in_memory(1024, "a kilobyte"));
}

TEST_CASE("dataset: a peak that does not fit is refused with its figures and the largest count that fits") {
    const double available = static_cast<double>(corelab::available_memory());
    REQUIRE(available > 0);
    CHECK_NOTHROW(corelab::check_peak_memory(1000, {.bytes_per_element = 24}, "a small run"));
    // 10^15 elements of 24 bytes: 24 PB, more than any test machine has
    try {
        corelab::check_peak_memory(1'000'000'000'000'000ULL, {.bytes_per_element = 24, .fixed_bytes = 1e6},
                                   "a huge run");
        FAIL("not refused");
    } catch (const corelab::MemoryShortage& e) {
        const std::string what = e.what();
        CAPTURE(what);
        CHECK(what.find("a huge run needs 24000000.0 GB of memory at once; ") == 0);
        CHECK(what.find(" GB is available, and one run takes at most 90% of it (") != std::string::npos);
        CHECK(what.find("--") == std::string::npos);  // facts only: the lesson adds the flag
        const double largest = static_cast<double>(e.largest_count());
        CHECK(largest > 0);
        CHECK(largest * 24 + 1e6 <= corelab::usable_memory_share * available * 1.01);  // it fits...
        CHECK(largest * 24 + 1e6 > corelab::usable_memory_share * available * 0.85);   // ...and is not far below
        std::string digits = std::to_string(e.largest_count());                        // two significant digits
        CHECK(digits.find_first_not_of('0', 2) == std::string::npos);
        CHECK_NOTHROW(corelab::check_peak_memory(e.largest_count(), {.bytes_per_element = 24, .fixed_bytes = 1e6},
                                                 "the largest that fits"));
    }
    // what does not grow with the count is too large alone: not even one fits
    try {
        corelab::check_peak_memory(1, {.bytes_per_element = 8, .fixed_bytes = 2 * available}, "a run");
        FAIL("not refused");
    } catch (const corelab::MemoryShortage& e) {
        CHECK(e.largest_count() == 0);
    }
    // /dev/shm: segments of 8 bytes an element, twice what it has free
    struct statvfs fs{};
    REQUIRE(::statvfs("/dev/shm", &fs) == 0);
    const double shm_free = static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize);
    const auto n = static_cast<std::uint64_t>(shm_free / 4);
    try {
        corelab::check_peak_memory(n, {.shm_bytes_per_element = 8}, "segments");
        FAIL("not refused");
    } catch (const corelab::MemoryShortage& e) {
        const std::string what = e.what();
        CAPTURE(what);
        CHECK(what.find("segments needs ") == 0);
        CHECK(what.find(" in /dev/shm at once; it has ") != std::string::npos);
        CHECK(static_cast<double>(e.largest_count()) * 8 <= shm_free);
    }
}
