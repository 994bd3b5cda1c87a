// bench_reduce — how close does each way of summing 100 million doubles get to the memory's limit?
//
// This program measures, over ONE shared array (the notebook's 100,000,000 uniform doubles, 800 MB in 2 MB
// pages), the speed of reading it and of summing it: the library's loop and fast sum, std::reduce with the
// parallel policy, and an OpenMP reduction. Each row is a Google Benchmark; a final block puts the medians
// side by side as a fraction of `bandwidth_read`, the fastest a core can read the array at all. The course's
// goal: sum_fast within 15% of bandwidth_read, i.e. summing costs no more than reading.
//
// Run:   ./course bench                       (builds the release preset and runs this)
//        CORELAB_BENCH_N=1000000 build/release/benchmarks/bench_reduce   (a quick run; or --n=1000000)
// Expect on a 2-core VM: sum_loop at about half the limit (one chain of adds), sum_fast close to it.
//
// The code sits in the global namespace on purpose: it is a program, not a library, and every name it defines
// is a row of the report.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>  // std::for_each
#include <cmath>      // std::abs
#include <cstdint>    // std::uint64_t
#include <cstdio>     // std::printf
#include <cstdlib>    // std::getenv, std::strtoull
#include <cstring>    // std::memcpy, std::strncmp
#include <execution>  // std::execution::par
#include <map>        // std::map
#include <mutex>      // std::mutex
#include <numeric>    // std::reduce, std::iota
#include <set>        // std::set
#include <string>     // std::string
#include <thread>     // std::thread::hardware_concurrency, std::this_thread::get_id
#include <vector>     // std::vector

#include "bench_support.hpp"       // take_n, SummaryReporter, print_goal
#include "corelab/dataset.hpp"     // make_uniform
#include "corelab/error.hpp"       // Error
#include "corelab/huge_array.hpp"  // HugeArray, describe_huge_pages
#include "corelab/reduce.hpp"      // sum_loop, sum_fast

// ------------------------------------------------------------------ the shared data

// Made once in main, before any benchmark runs: generating 800 MB takes longer than summing it, and every row
// must read the same bytes, already faulted in, so that rows differ only in how they read.
static corelab::HugeArray<double> g_data;
static double g_reference = 0.0;  // sum_loop's result: every other sum must agree with it

static std::size_t data_bytes() {
    return g_data.size() * sizeof(double);
}

static unsigned hardware_threads() {
    const unsigned t = std::thread::hardware_concurrency();
    return t == 0 ? 1 : t;
}

// Sums may differ from the loop's in the last bits (another order of additions), never by more.
static void check_sum(benchmark::State& state, double sum) {
    if (std::abs(sum - g_reference) > 1e-9 * std::abs(g_reference)) {
        state.SkipWithError(
            ("sum " + std::to_string(sum) + " differs from sum_loop's " + std::to_string(g_reference)).c_str());
    }
}

// Every row processes the whole array once per iteration; Google Benchmark turns this into bytes_per_second.
static void set_bytes(benchmark::State& state) {
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(data_bytes()));
}

// Results are kept with corelab::bench::keep(x), never DoNotOptimize(x): for a non-const double, Google
// Benchmark's in-out "+m,r" asm lets GCC 12 lose the value an OpenMP reduction wrote (here the sum read back as
// 0; the same family of problem as google/benchmark#903). keep() only reads, as 1.7's const overload did.

// ------------------------------------------------------------------ the limit: reading, nothing else

// The least work per byte: OR the array's bits together, 16 bytes at a time (SSE2's width: the release preset has
// no -march flag, and sum_fast's additions get the same 16-byte registers), into 8 independent accumulators, so no
// operation waits for another. A core cannot consume these bytes any faster, so this row is the memory's limit
// for one core and the ruler for all the others. (A scalar version, 8 bytes a load, reads an in-cache array at
// half this speed and lets a well-vectorised sum beat the "limit".) `words` is a GCC/Clang vector extension.
using words = std::uint64_t __attribute__((vector_size(16)));

static std::uint64_t read_words(const double* first, std::size_t count) {
    auto load = [first](std::size_t k) {
        words w;
        std::memcpy(&w, first + k, sizeof w);  // the bits of two doubles; memcpy: no alignment or aliasing assumed
        return w;
    };
    words a0{}, a1{}, a2{}, a3{}, a4{}, a5{}, a6{}, a7{};
    std::size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        a0 |= load(i);
        a1 |= load(i + 2);
        a2 |= load(i + 4);
        a3 |= load(i + 6);
        a4 |= load(i + 8);
        a5 |= load(i + 10);
        a6 |= load(i + 12);
        a7 |= load(i + 14);
    }
    const words a = a0 | a1 | a2 | a3 | a4 | a5 | a6 | a7;
    std::uint64_t x = a[0] | a[1];
    for (; i < count; ++i) {
        std::uint64_t w;
        std::memcpy(&w, first + i, sizeof w);
        x |= w;
    }
    return x;
}

static void bandwidth_read(benchmark::State& state) {
    for (auto _ : state) {
        std::uint64_t x = read_words(g_data.data(), g_data.size());
        corelab::bench::keep(x);     // the result is "used": the reads cannot be dropped
        benchmark::ClobberMemory();  // nor hoisted out of the loop
    }
    set_bytes(state);
}

// The same read split in `threads` contiguous halves (thirds, ...): the limit for that many cores. On a VM
// two cores often share one memory channel, so this is not always twice the row above.
static void read_in_threads(benchmark::State& state, int threads) {
    int seen = 0;
    for (auto _ : state) {
        std::uint64_t x = 0;
#pragma omp parallel num_threads(threads) reduction(| : x)
        {
            const std::size_t n = g_data.size();
            const auto t = static_cast<std::size_t>(omp_get_thread_num());
            const auto nt = static_cast<std::size_t>(omp_get_num_threads());
            x |= read_words(g_data.data() + n * t / nt, n * (t + 1) / nt - n * t / nt);
#pragma omp single nowait
            seen = omp_get_num_threads();
        }
        corelab::bench::keep(x);
        benchmark::ClobberMemory();
    }
    state.counters["threads"] = seen;
    set_bytes(state);
}
static void bandwidth_read_2threads(benchmark::State& state) {
    read_in_threads(state, 2);
}

// ------------------------------------------------------------------ the library's sums

static void sum_loop(benchmark::State& state) {
    corelab::Partial p;
    for (auto _ : state) {
        p = corelab::sum_loop(g_data);
        corelab::bench::keep(p);
    }
    check_sum(state, p.sum);
    set_bytes(state);
}

static void sum_fast(benchmark::State& state) {
    corelab::Partial p;
    for (auto _ : state) {
        p = corelab::sum_fast(g_data);
        corelab::bench::keep(p);
    }
    check_sum(state, p.sum);
    set_bytes(state);
}

// ------------------------------------------------------------------ the standard library's parallel reduce

// libstdc++ runs std::execution::par on oneTBB when <tbb/tbb.h> is found at compile time (it then defines
// _PSTL_PAR_BACKEND_TBB) and TBB is linked; without it, `par` quietly runs on one thread. So we do not trust the
// policy: we count the distinct threads that a parallel for_each really uses, over chunks of the same data.
// Chunks, not elements: on tiny elements the calling thread may finish before a worker wakes up. A few passes,
// for the same reason; one pass is enough on an idle machine.
static int threads_used_by_par() {
    static const int counted = [] {
        std::vector<std::size_t> chunks(256);
        std::iota(chunks.begin(), chunks.end(), std::size_t{0});
        const std::size_t n = g_data.size();
        std::mutex m;
        std::set<std::thread::id> ids;
        for (int pass = 0; pass < 10 && ids.size() < hardware_threads(); ++pass) {
            std::for_each(std::execution::par, chunks.begin(), chunks.end(), [&](std::size_t c) {
                {
                    std::lock_guard lock(m);
                    ids.insert(std::this_thread::get_id());
                }
                const std::size_t first = n * c / chunks.size(), last = n * (c + 1) / chunks.size();
                const double s = corelab::sum_loop({g_data.data() + first, last - first}).sum;
                corelab::bench::keep(s);
            });
        }
        return static_cast<int>(ids.size());
    }();
    return counted;
}

#if defined(_PSTL_PAR_BACKEND_TBB)
static constexpr bool par_backend_tbb = true;
#else
static constexpr bool par_backend_tbb = false;
#endif

static void std_reduce_par(benchmark::State& state) {
    const int threads = threads_used_by_par();
    double sum = 0.0;
    for (auto _ : state) {
        sum = std::reduce(std::execution::par, g_data.begin(), g_data.end(), 0.0);
        corelab::bench::keep(sum);
    }
    state.counters["threads"] = threads;
    if (!par_backend_tbb) {
        state.SetLabel("WARNING: libstdc++ compiled par without the TBB backend");
    } else if (threads == 1) {
        state.SetLabel("WARNING: par ran on 1 thread");
    }
    check_sum(state, sum);
    set_bytes(state);
}

// ------------------------------------------------------------------ OpenMP's reduction clause

// What most C++ code does first: split the loop across threads, each keeps a private sum, OpenMP adds them at
// the end. Each thread's loop is still one chain of dependent adds, like sum_loop's.
static void openmp_reduce_on(benchmark::State& state, int threads) {
    const double* d = g_data.data();
    const auto n = static_cast<std::int64_t>(g_data.size());
    double sum = 0.0;
    int seen = 0;
    for (auto _ : state) {
        sum = 0.0;
#pragma omp parallel for num_threads(threads) reduction(+ : sum) schedule(static)
        for (std::int64_t i = 0; i < n; ++i) sum += d[i];
        corelab::bench::keep(sum);
    }
#pragma omp parallel num_threads(threads)
#pragma omp single
    seen = omp_get_num_threads();
    state.counters["threads"] = seen;
    check_sum(state, sum);
    set_bytes(state);
}
static void openmp_reduce(benchmark::State& state) {
    openmp_reduce_on(state, static_cast<int>(hardware_threads()));
}
static void openmp_reduce_2threads(benchmark::State& state) {
    openmp_reduce_on(state, 2);
}

// Each pass reads 800 MB, so a few passes a repetition are plenty: at least 0.5 s each, 5 repetitions, and we
// keep the median (robust to a noisy neighbour on a shared machine). Threaded rows measure wall time: CPU time
// of the main thread alone would flatter them.
#define COURSE_BENCH(fn) \
    BENCHMARK(fn)->Unit(benchmark::kMillisecond)->MinTime(0.5)->Repetitions(5)->ReportAggregatesOnly(true)
COURSE_BENCH(bandwidth_read);
COURSE_BENCH(bandwidth_read_2threads)->UseRealTime();
COURSE_BENCH(sum_loop);
COURSE_BENCH(sum_fast);
COURSE_BENCH(std_reduce_par)->UseRealTime();
COURSE_BENCH(openmp_reduce)->UseRealTime();
COURSE_BENCH(openmp_reduce_2threads)->UseRealTime();

// ------------------------------------------------------------------ the side-by-side summary

// Prints each row's median, GB/s and ratio to bandwidth_read, then whether sum_fast meets the course's goal.
static void print_summary(const corelab::bench::SummaryReporter& reporter) {
    const auto& rows = reporter.rows();
    const auto read = rows.find("bandwidth_read");
    const double gb = static_cast<double>(data_bytes()) / 1e9;
    std::printf(
        "\nSummary: medians of 5 repetitions, %zu doubles (%.0f MB) per pass;"
        " ratio = GB/s / bandwidth_read's GB/s\n",
        g_data.size(), gb * 1e3);
    for (const std::string& name : reporter.order()) {
        const corelab::bench::SummaryReporter::Row& row = rows.at(name);
        std::printf("  %-24s %8.4f s %7.1f GB/s", name.c_str(), row.seconds, gb / row.seconds);
        if (read != rows.end()) std::printf("  %5.2fx of bandwidth_read", read->second.seconds / row.seconds);
        if (auto t = row.counters.find("threads"); t != row.counters.end()) std::printf("  (%g threads)", t->second);
        std::printf("%s\n", row.median ? "" : "  [one repetition, not a median]");
    }
    if (auto par = rows.find("std_reduce_par"); par != rows.end()) {
        auto t = par->second.counters.find("threads");
        if (t != par->second.counters.end() && t->second <= 1.0) {
            std::printf("WARNING: std::execution::par ran on ONE thread: %s\n",
                        par_backend_tbb ? "TBB is the backend, but no worker joined (one core? TBB limited to 1?)"
                                        : "libstdc++ found no TBB backend (make <tbb/tbb.h> visible, link TBB::tbb)");
        }
    }
    const auto fast = rows.find("sum_fast");
    constexpr const char* goal = "sum_fast within 15% of bandwidth_read (ratio at least 0.85x)";
    if (read == rows.end() || fast == rows.end()) {
        corelab::bench::print_goal_not_checked(goal, "needs both bandwidth_read and sum_fast rows");
        return;
    }
    corelab::bench::print_goal(goal, read->second.seconds / fast->second.seconds, 0.85);
}

// ------------------------------------------------------------------ main

int main(int argc, char** argv) {
    const std::size_t n = corelab::bench::take_n(argc, argv);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

    // make the data, once; its sum is the reference every row is checked against
    try {
        g_data = corelab::make_uniform(n, 42);
    } catch (const corelab::Error& e) {
        std::fprintf(stderr, "bench_reduce: %s\n", e.what());
        return 1;
    }
    g_reference = corelab::sum_loop(g_data).sum;
    benchmark::AddCustomContext(
        "dataset", std::to_string(n) + " uniform doubles, seed 42, " + std::to_string(data_bytes() >> 20) + " MiB");
    benchmark::AddCustomContext("huge pages", corelab::describe_huge_pages());
    benchmark::AddCustomContext("hardware threads", std::to_string(hardware_threads()));

    // run every row, printing as usual, then the side-by-side summary
    corelab::bench::SummaryReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    print_summary(reporter);
    benchmark::Shutdown();
    return 0;
}
