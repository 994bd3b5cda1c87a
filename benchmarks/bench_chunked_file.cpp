// bench_chunked_file — how close does each way of reading lesson 07's file get to a plain sequential read?
//
// One data file (the notebook's 100,000,000 doubles, 800 MB plus a 64-byte header) is written once beside this
// program (or in CORELAB_BENCH_DIR) and removed at the end. Each row reads the whole file and sums it, as lesson
// 07 does; the limit rows only read it (`cat file > /dev/null` style: read() into a 128 KiB buffer), in one
// process and in two. Warm rows find the file in the page cache; cold rows drop it first (fdatasync +
// POSIX_FADV_DONTNEED, not timed). The summary gives each row's GB/s as a fraction of the limit with the same
// number of processes, and checks the course's goals: chunks_pread_2 >= 1.5x serial_read (warm), every read
// path >= 0.7x its limit.
//
// Run:   ./course bench            (builds the release preset, runs every benchmark)
//        CORELAB_BENCH_N=10000000 build/release/benchmarks/bench_chunked_file   (a quick run; or --n=10000000)
#include <benchmark/benchmark.h>
#include <fcntl.h>     // open
#include <spawn.h>     // posix_spawn: the real cat
#include <sys/wait.h>  // waitpid
#include <unistd.h>    // read, close

#include <cmath>       // std::abs
#include <cstdio>      // std::printf
#include <cstdlib>     // std::getenv, std::strtoull
#include <cstring>     // std::strncmp
#include <filesystem>  // std::filesystem::read_symlink
#include <map>         // std::map
#include <memory>      // std::unique_ptr
#include <string>      // std::string
#include <vector>      // std::vector

#include "bench_support.hpp"            // take_n, SummaryReporter, print_goal
#include "corelab/chunked_file.hpp"     // write_data_file, read_serial, read_in_processes, ScratchFile
#include "corelab/dataset.hpp"          // make_uniform
#include "corelab/process_workers.hpp"  // ProcessWorkers
#include "corelab/report.hpp"           // Stopwatch

// ------------------------------------------------------------------ the shared file

static std::unique_ptr<corelab::ScratchFile> g_file;
static std::vector<std::unique_ptr<corelab::ScratchFile>> g_parts;  // split_files_2's two files
static corelab::DataFile g_data_file;
static double g_reference = 0.0;  // the sum of the data written

static void check_sum(benchmark::State& state, const corelab::Partial& p) {
    if (p.count != g_data_file.count || std::abs(p.sum - g_reference) > 1e-9 * std::abs(g_reference)) {
        state.SkipWithError("the file's sum differs from the data written");
    }
}

static void set_bytes(benchmark::State& state) {
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(g_data_file.bytes));
}

// ------------------------------------------------------------------ the limits: read, do nothing else

// read() the bytes [first, last) of the file in 128 KiB blocks (what GNU cat does) and discard them.
static std::uint64_t read_range(const std::string& path, std::uint64_t first, std::uint64_t last) {
    static corelab::HugeArray<char> buffer(128 << 10);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw corelab::Error("cannot open " + path);
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    std::uint64_t total = 0;
    for (std::uint64_t at = first; at < last;) {
        const ssize_t r =
            ::pread(fd, buffer.data(), std::min<std::uint64_t>(buffer.size(), last - at), static_cast<off_t>(at));
        if (r <= 0) break;
        at += static_cast<std::uint64_t>(r);
        total += static_cast<std::uint64_t>(r);
    }
    ::close(fd);
    return total;
}

static std::uint64_t sequential(unsigned processes) {
    if (processes == 1) return read_range(g_data_file.path, 0, g_data_file.bytes);
    corelab::ProcessWorkers workers(processes);
    std::uint64_t total = 0;
    for (std::uint64_t got : workers.run([&](unsigned k) {
             const std::uint64_t b = g_data_file.bytes;
             return read_range(g_data_file.path, b * k / processes, b * (k + 1) / processes);
         })) {
        total += got;
    }
    return total;
}

static void sequential_read(benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(sequential(1));
    set_bytes(state);
}

static void sequential_read_2procs(benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(sequential(2));
    set_bytes(state);
}

// The real thing: /bin/cat FILE > /dev/null, exec included.
static void cat_to_dev_null(benchmark::State& state) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    std::string path = g_data_file.path;
    char cat[] = "cat";
    char* argv[] = {cat, path.data(), nullptr};
    for (auto _ : state) {
        pid_t pid = 0;
        if (posix_spawnp(&pid, "cat", &actions, nullptr, argv, environ) != 0) {
            state.SkipWithError("cannot run cat");
            break;
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
    }
    posix_spawn_file_actions_destroy(&actions);
    set_bytes(state);
}

// ------------------------------------------------------------------ lesson 07's reads, warm

static void serial_read(benchmark::State& state) {
    corelab::Partial p;
    for (auto _ : state) p = corelab::read_serial(g_data_file, corelab::ReadMethod::pread);
    check_sum(state, p);
    set_bytes(state);
}

static void serial_read_mmap(benchmark::State& state) {
    corelab::Partial p;
    for (auto _ : state) p = corelab::read_serial(g_data_file, corelab::ReadMethod::mmap);
    check_sum(state, p);
    set_bytes(state);
}

static void chunks(benchmark::State& state, corelab::ReadMethod method) {
    corelab::ProcessWorkers workers(2);
    corelab::Partial p;
    for (auto _ : state) p = corelab::read_in_processes(g_data_file, workers, method);
    check_sum(state, p);
    set_bytes(state);
}
static void chunks_pread_2(benchmark::State& state) {
    chunks(state, corelab::ReadMethod::pread);
}
static void chunks_mmap_2(benchmark::State& state) {
    chunks(state, corelab::ReadMethod::mmap);
}

static void split_files_2(benchmark::State& state) {
    const std::vector<std::string> paths{g_parts[0]->path(), g_parts[1]->path()};
    corelab::ProcessWorkers workers(2);
    corelab::Partial p;
    for (auto _ : state) p = corelab::read_files_in_processes(paths, workers);
    check_sum(state, p);
    set_bytes(state);
}

// ------------------------------------------------------------------ cold: the file dropped before each pass

template <class F>
static void cold(benchmark::State& state, F read) {
    for (auto _ : state) {
        corelab::drop_from_page_cache(g_data_file.path);
        corelab::Stopwatch watch;
        read();
        state.SetIterationTime(watch.seconds());
    }
    state.counters["cached_after_drop"] = [] {
        corelab::drop_from_page_cache(g_data_file.path);
        return corelab::cached_fraction(g_data_file.path);
    }();
    set_bytes(state);
}
static void cold_sequential_read(benchmark::State& state) {
    cold(state, [] { return sequential(1); });
}
static void cold_sequential_read_2procs(benchmark::State& state) {
    cold(state, [] { return sequential(2); });
}
static void cold_serial_read(benchmark::State& state) {
    cold(state, [] { return corelab::read_serial(g_data_file); });
}
static void cold_chunks_pread_2(benchmark::State& state) {
    corelab::ProcessWorkers workers(2);
    cold(state, [&] { return corelab::read_in_processes(g_data_file, workers, corelab::ReadMethod::pread); });
}
static void cold_chunks_mmap_2(benchmark::State& state) {
    corelab::ProcessWorkers workers(2);
    cold(state, [&] { return corelab::read_in_processes(g_data_file, workers, corelab::ReadMethod::mmap); });
}

// Warm rows: at least 0.5 s a repetition, 5 repetitions, the median kept. Cold rows: 3 passes a repetition, 3
// repetitions, timed by hand around the read only. Rows with processes measure wall time.
#define WARM(fn)                        \
    BENCHMARK(fn)                       \
        ->Unit(benchmark::kMillisecond) \
        ->MinTime(0.5)                  \
        ->Repetitions(5)                \
        ->ReportAggregatesOnly(true)    \
        ->UseRealTime()
#define COLD(fn)                        \
    BENCHMARK(fn)                       \
        ->Unit(benchmark::kMillisecond) \
        ->Iterations(3)                 \
        ->Repetitions(3)                \
        ->ReportAggregatesOnly(true)    \
        ->UseManualTime()
WARM(sequential_read);
WARM(sequential_read_2procs);
WARM(cat_to_dev_null);
WARM(serial_read);
WARM(serial_read_mmap);
WARM(chunks_pread_2);
WARM(chunks_mmap_2);
WARM(split_files_2);
COLD(cold_sequential_read);
COLD(cold_sequential_read_2procs);
COLD(cold_serial_read);
COLD(cold_chunks_pread_2);
COLD(cold_chunks_mmap_2);

// ------------------------------------------------------------------ the side-by-side summary

// The limit a row is compared with: the plain read with as many processes, warm or cold as the row.
static std::string limit_of(const std::string& row) {
    const bool is_cold = row.rfind("cold_", 0) == 0;
    const bool two = row.find("_2") != std::string::npos;
    return std::string(is_cold ? "cold_" : "") + (two ? "sequential_read_2procs" : "sequential_read");
}

static void print_summary(const corelab::bench::SummaryReporter& r) {
    const double gb = static_cast<double>(g_data_file.bytes) / 1e9;
    std::printf(
        "\nSummary: medians, %.0f MB file per pass; ratio = GB/s / the GB/s of the plain read with as many\n"
        "processes (warm or cold alike); the goal is ratio >= 0.70 for every read path\n",
        gb * 1e3);
    double lowest = 0.0;  // the lowest ratio of a read path to its limit
    std::string lowest_row;
    int checked = 0;
    for (const std::string& name : r.order()) {
        const double s = r.seconds(name);
        std::printf("  %-28s %8.4f s %6.2f GB/s", name.c_str(), s, gb / s);
        const std::string limit = limit_of(name);
        const bool is_limit = name.find("sequential_read") != std::string::npos || name == "cat_to_dev_null";
        if (!is_limit && r.has(limit)) {
            const double ratio = r.seconds(limit) / s;
            if (checked++ == 0 || ratio < lowest) {
                lowest = ratio;
                lowest_row = name;
            }
            std::printf("  %5.2fx of %-30s %s", ratio, limit.c_str(), ratio >= 0.70 ? "" : "(below 0.70)");
        }
        std::printf("\n");
    }
    using corelab::bench::print_goal, corelab::bench::print_goal_not_checked;
    constexpr const char* speedup_goal = "warm chunks_pread_2 at least 1.5x serial_read";
    if (r.has("serial_read") && r.has("chunks_pread_2")) {
        print_goal(speedup_goal, r.seconds("serial_read") / r.seconds("chunks_pread_2"), 1.5);
    } else {
        print_goal_not_checked(speedup_goal, "needs both serial_read and chunks_pread_2 rows");
    }
    constexpr const char* limit_goal = "every read path at least 0.70x of its plain-read limit";
    if (checked == 0) {
        print_goal_not_checked(limit_goal, "no read path beside its limit");
    } else {
        print_goal(limit_goal, lowest, 0.70, corelab::bench::Goal::at_least,
                   "for " + lowest_row + ", the lowest of " + std::to_string(checked) + " rows");
    }
}

// ------------------------------------------------------------------ main

int main(int argc, char** argv) {
    const std::size_t n = corelab::bench::take_n(argc, argv);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    const char* env_dir = std::getenv("CORELAB_BENCH_DIR");
    const std::string dir = env_dir != nullptr && *env_dir != '\0'
                                ? std::string(env_dir)
                                : std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
    try {
        // write the file once, and its two halves as files of their own
        const std::uint64_t bytes = corelab::data_file_header_bytes + n * sizeof(double);
        corelab::check_disk_room(dir, 2 * bytes + (64 << 20), "bench_chunked_file's data file and its halves");
        g_file = std::make_unique<corelab::ScratchFile>(dir, "bench_file");
        {
            const auto data = corelab::make_uniform(n, 42);
            g_reference = corelab::sum_loop(data).sum;
            std::fprintf(stderr, "writing %s (%.0f MB)...\n", g_file->path().c_str(), static_cast<double>(bytes) / 1e6);
            g_data_file = corelab::write_data_file(g_file->path(), data);
        }
        std::vector<std::string> paths;
        for (int k = 0; k < 2; ++k) {
            paths.push_back(g_parts.emplace_back(std::make_unique<corelab::ScratchFile>(dir, "bench_part"))->path());
        }
        (void)corelab::split_into_files(g_data_file, paths);
    } catch (const corelab::Error& e) {
        std::fprintf(stderr, "bench_chunked_file: %s\n", e.what());
        return 1;
    }
    benchmark::AddCustomContext("file", g_data_file.path + ", " + std::to_string(g_data_file.bytes >> 20) + " MiB");
    corelab::bench::SummaryReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    print_summary(reporter);
    benchmark::Shutdown();
    g_parts.clear();
    g_file.reset();
    return 0;
}
