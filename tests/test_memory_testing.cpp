// Tests of corelab/detail/memory_testing.hpp: the fault-injection hooks that
// test_memory.cpp relies on do what they say, and are off until set.
#include <doctest/doctest.h>
#include <stdlib.h>  // mkdtemp

#include <filesystem>  // std::filesystem
#include <string>      // std::string
#include <vector>      // std::vector

#include "corelab/detail/memory_testing.hpp"
#include "corelab/memory.hpp"

namespace fs = std::filesystem;

namespace {

// A fresh directory under /tmp, removed with everything in it at the end.
struct TempDir {
    fs::path path;
    TempDir() {
        std::string t = (fs::temp_directory_path() / "corelab-hooks-XXXXXX").string();
        REQUIRE(::mkdtemp(t.data()) != nullptr);
        path = t;
    }
    ~TempDir() { fs::remove_all(path); }
};

// Entry folders in the cache: folders named with 32 lowercase hex digits.
int entries(const fs::path& cache) {
    int n = 0;
    for (const auto& e : fs::recursive_directory_iterator(cache)) {
        const std::string name = e.path().filename().string();
        if (e.is_directory() && name.size() == 32 && name.find_first_not_of("0123456789abcdef") == std::string::npos)
            ++n;
    }
    return n;
}

std::vector<double> times(const std::vector<double>& x, double k) {
    std::vector<double> y(x);
    for (double& v : y) v *= k;
    return y;
}

struct ResetHooks {
    ~ResetHooks() { corelab::detail::memory_test_hooks() = {}; }
};

}  // namespace

TEST_CASE("memory_testing: the hooks are off until a test sets them") {
    const auto& hooks = corelab::detail::memory_test_hooks();
    CHECK_FALSE(hooks.constant_hash);
    CHECK_FALSE(hooks.before_rename);
    CHECK(&hooks == &corelab::detail::memory_test_hooks());  // one set per process
}

TEST_CASE("memory_testing: before_rename runs once per stored entry, before the entry is visible, never on a hit") {
    TempDir tmp;
    ResetHooks reset;
    const fs::path cache = tmp.path / "cache";
    int runs = 0, visible_during = -1;
    corelab::detail::memory_test_hooks().before_rename = [&] {
        ++runs;
        visible_during = entries(cache);
    };
    const corelab::Memory mem{cache, {.verbose = 0}};
    auto twice = mem.cache("twice", [](const std::vector<double>& x) { return times(x, 2.0); });
    const std::vector<double> a{1, 2, 3};
    CHECK(twice(a) == times(a, 2.0));
    CHECK(runs == 1);
    CHECK(visible_during == 0);  // written, not yet renamed into place
    CHECK(entries(cache) == 1);
    CHECK(twice(a) == times(a, 2.0));  // a hit stores nothing
    CHECK(runs == 1);
}

TEST_CASE("memory_testing: constant_hash gives every key the same entry folder, and results stay right") {
    for (const bool constant : {false, true}) {
        CAPTURE(constant);
        TempDir tmp;
        ResetHooks reset;
        corelab::detail::memory_test_hooks().constant_hash = constant;
        const fs::path cache = tmp.path / "cache";
        const corelab::Memory mem{cache, {.verbose = 0}};
        int calls = 0;
        auto twice = mem.cache("twice", [&](const std::vector<double>& x) {
            ++calls;
            return times(x, 2.0);
        });
        const std::vector<double> a{1, 2, 3}, b{4, 5, 6};
        CHECK(twice(a) == times(a, 2.0));
        CHECK(twice(b) == times(b, 2.0));  // a collision must not hand back a's result
        CHECK(calls == 2);
        CHECK(entries(cache) == (constant ? 1 : 2));  // one folder for both keys only when forced
    }
}
