// Tests of corelab/cache_line.hpp: a CacheAligned<T> starts a cache line and
// fills whole lines, so that neighbours in an array, on the stack or in a
// struct never share one (checked on their addresses), whatever T's size.
#include <doctest/doctest.h>

#include <array>    // std::array
#include <atomic>   // std::atomic
#include <cstddef>  // std::size_t
#include <cstdint>  // std::uintptr_t
#include <memory>   // std::make_unique
#include <vector>   // std::vector

#include "corelab/cache_line.hpp"
#include "corelab/reduce.hpp"  // Partial: what exercise 04.1 puts in its slots

using corelab::cache_line;
using corelab::CacheAligned;

namespace {

// The first and the last cache line that the object at `p` of `bytes` bytes touches.
struct Lines {
    std::uintptr_t first, last;
};
Lines lines_of(const void* p, std::size_t bytes) {
    const auto at = reinterpret_cast<std::uintptr_t>(p);
    return {at / cache_line, (at + bytes - 1) / cache_line};
}

// Every value starts a line and no line holds parts of two values.
template <class T>
void check_apart(const std::vector<const T*>& values) {
    for (std::size_t i = 0; i < values.size(); ++i) {
        CHECK(reinterpret_cast<std::uintptr_t>(values[i]) % cache_line == 0);
        for (std::size_t j = 0; j < i; ++j) {
            const Lines a = lines_of(values[i], sizeof(T)), b = lines_of(values[j], sizeof(T));
            CHECK((a.last < b.first || b.last < a.first));
        }
    }
}

}  // namespace

TEST_CASE("cache_line: is the 64 bytes of x86-64 and most ARM cores, a power of two") {
    static_assert(cache_line == 64);
    static_assert((cache_line & (cache_line - 1)) == 0);
}

TEST_CASE("cache_line: a CacheAligned<T> is aligned to a line and fills whole lines") {
    static_assert(alignof(CacheAligned<char>) == cache_line);
    static_assert(sizeof(CacheAligned<char>) == cache_line);
    static_assert(sizeof(CacheAligned<double>) == cache_line);
    static_assert(sizeof(CacheAligned<corelab::Partial>) == cache_line);
    static_assert(sizeof(CacheAligned<std::atomic<std::uint64_t>>) == cache_line);
    // larger than a line: it takes the next whole number of lines
    static_assert(sizeof(CacheAligned<std::array<char, 65>>) == 2 * cache_line);
    static_assert(sizeof(CacheAligned<std::array<double, 16>>) == 2 * cache_line);
    static_assert(alignof(CacheAligned<std::array<double, 16>>) == cache_line);
}

TEST_CASE("cache_line: neighbours in a vector never share a line") {
    for (std::size_t n : {1, 2, 3, 7, 64}) {
        CAPTURE(n);
        std::vector<CacheAligned<double>> slots(n);
        std::vector<const CacheAligned<double>*> at;
        for (const auto& slot : slots) at.push_back(&slot);
        check_apart(at);
        // the values themselves, as a worker writes them: one line each
        for (std::size_t i = 1; i < n; ++i) {
            CHECK(lines_of(&slots[i].value, sizeof(double)).first !=
                  lines_of(&slots[i - 1].value, sizeof(double)).first);
        }
    }
    std::vector<CacheAligned<corelab::Partial>> partials(7);  // exercise 04.1's accumulators
    std::vector<const CacheAligned<corelab::Partial>*> at;
    for (const auto& p : partials) at.push_back(&p);
    check_apart(at);
}

TEST_CASE("cache_line: values larger than a line, on the heap and on the stack, stay apart") {
    std::vector<CacheAligned<std::array<char, 100>>> big(5);
    std::vector<const CacheAligned<std::array<char, 100>>*> at;
    for (const auto& b : big) at.push_back(&b);
    check_apart(at);
    const auto heap = std::make_unique<CacheAligned<std::atomic<std::uint64_t>>>();
    CHECK(reinterpret_cast<std::uintptr_t>(heap.get()) % cache_line == 0);
    // two on the stack, declared side by side, as Parallel's threads keep their cursor
    CacheAligned<char> a{'a'};
    CacheAligned<char> b{'b'};
    check_apart<CacheAligned<char>>({&a, &b});
    CHECK(a.value == 'a');
    CHECK(b.value == 'b');
}
