// Checker of exercise 05.2: a miss, then a hit that must load the very same
// Histogram, in a fresh cache directory.
#include <algorithm>            // std::minmax_element
#include <corelab/dataset.hpp>  // make_uniform
#include <corelab/memory.hpp>   // Memory
#include <cstdlib>              // mkdtemp
#include <filesystem>           // std::filesystem::remove_all
#include <string>               // std::string

#include "check.hpp"
#include "exercise.hpp"

int histogram_calls = 0;

Histogram make_histogram(const std::vector<double>& data, std::size_t bins) {
    ++histogram_calls;
    Histogram h;
    h.counts.assign(bins, 0);
    if (data.empty() || bins == 0) return h;
    const auto [lo, hi] = std::minmax_element(data.begin(), data.end());
    h.lo = *lo;
    h.hi = *hi;
    const double width = (h.hi - h.lo) / static_cast<double>(bins);
    for (double x : data) {
        auto k = width > 0 ? static_cast<std::size_t>((x - h.lo) / width) : 0;
        ++h.counts[std::min(k, bins - 1)];
    }
    return h;
}

namespace {
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string name = (std::filesystem::temp_directory_path() / "corelab_ex05_XXXXXX").string();
        check::expect(::mkdtemp(name.data()) != nullptr, "cannot make a temporary directory");
        path = name;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

std::string describe(const Histogram& h) {
    return check::str("{lo ", h.lo, ", hi ", h.hi, ", ", h.counts.size(), " bins, first ",
                      h.counts.empty() ? 0 : h.counts[0], "}");
}
}  // namespace

void run_check() {
    TempDir dir;
    const corelab::Memory memory(dir.path, {.verbose = 0});
    const auto uniform = corelab::make_uniform(10'000, 17);
    std::vector<double> data(uniform.begin(), uniform.end());
    for (double& x : data) x = 3.0 * x - 1.0;  // in [-1, 2)
    const Histogram want = make_histogram(data, 12);
    histogram_calls = 0;

    const Histogram first = cached_histogram(memory, data, 12);
    check::expect(histogram_calls == 1,
                  check::str("the first call must compute (a miss): make_histogram ran ", histogram_calls, " times"));
    check::expect(first == want, "the first call returned " + describe(first) + ", expected " + describe(want));
    const Histogram again = cached_histogram(memory, data, 12);
    check::expect(histogram_calls == 1, "the second call with the same arguments must load (a hit), it computed");
    check::expect(again == want,
                  "the result loaded from the cache is " + describe(again) + ", the one stored was " + describe(want));
    const Histogram other = cached_histogram(memory, data, 5);
    check::expect(histogram_calls == 2 && other == make_histogram(data, 5), "5 bins: another key, another result");
    check::note(check::str("cache size on disk: ", memory.size_on_disk(), " bytes"));
}
