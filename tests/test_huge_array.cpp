// Tests of corelab/huge_array.hpp: alignment, zeroed pages, moves, and that the
// kernel really backs the array with 2 MB pages where it offers them.
#include <doctest/doctest.h>

#include <cstdint>  // std::uintptr_t
#include <fstream>  // std::ifstream
#include <string>   // std::string

#include "corelab/huge_array.hpp"

namespace {

// AnonHugePages of this process, in kB, from /proc/self/smaps_rollup.
long anon_huge_kb() {
    std::ifstream in("/proc/self/smaps_rollup");
    const std::string key = "AnonHugePages:";
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(key, 0) == 0) return std::stol(line.substr(key.size()));
    }
    return -1;
}

}  // namespace

TEST_CASE("huge_array: 2 MB aligned and zeroed and movable") {
    corelab::HugeArray<double> a(1000);
    CHECK(a.size() == 1000);
    CHECK(reinterpret_cast<std::uintptr_t>(a.data()) % (2u << 20) == 0);
    for (double x : a) REQUIRE(x == 0.0);
    a[999] = 3.5;
    corelab::HugeArray<double> b = std::move(a);
    CHECK(a.empty());
    CHECK(a.data() == nullptr);
    CHECK(b[999] == 3.5);
    corelab::HugeArray<double> c;
    c = std::move(b);
    CHECK(c.span().size() == 1000);
    CHECK(c.span()[999] == 3.5);
    CHECK(corelab::HugeArray<int>(0).data() == nullptr);
}

TEST_CASE("huge_array: the kernel backs it with huge pages where it offers them") {
    const auto mode = corelab::transparent_huge_pages();
    CHECK_FALSE(corelab::describe_huge_pages().empty());
    if (mode != corelab::HugePages::always && mode != corelab::HugePages::madvise) {
        MESSAGE("transparent huge pages are not offered here: " << corelab::describe_huge_pages());
        return;
    }
    const long before = anon_huge_kb();
    REQUIRE(before >= 0);
    corelab::HugeArray<char> a(64u << 20);
    for (std::size_t i = 0; i < a.size(); i += 4096) a[i] = 1;  // touch every 4 KB page
    const long after = anon_huge_kb();
    // Most of the 64 MB should now sit in 2 MB pages (the kernel may fall back for a few).
    CHECK(after - before >= 32 * 1024);
}

TEST_CASE("huge_array: an impossible size throws corelab::Error") {
    CHECK_THROWS_AS(corelab::HugeArray<double>(std::size_t{1} << 61), std::exception);
}
