// bench_parallel — what corelab::Parallel costs per task, beside OpenMP, oneTBB and joblib.
//
// Per-task overhead: 1,000,000 trivial tasks (a multiply-add) on 2 workers,
// batch_size auto, for both backends, beside an OpenMP schedule(dynamic)
// loop and a oneTBB parallel_for on the same tasks; then lesson 06's workload
// (10 calls of f) at n_jobs=2 beside OpenMP. Then joblib (Debian's
// python3-joblib for /usr/bin/python3, or CORELAB_PYTHON; "not installed"
// otherwise) on the same trivial tasks and on the same workload, and the
// ratios against the issue's goals. The process rows run first: OpenMP and
// TBB keep their threads alive, and Parallel refuses to fork beside threads.
#include <benchmark/benchmark.h>
#include <omp.h>                 // omp_set_num_threads
#include <tbb/blocked_range.h>   // tbb::blocked_range
#include <tbb/global_control.h>  // tbb::global_control (2 threads)
#include <tbb/parallel_for.h>    // tbb::parallel_for

#include <algorithm>   // std::min
#include <cmath>       // std::sqrt
#include <cstdint>     // std::uint64_t
#include <cstdio>      // std::popen, std::printf
#include <cstdlib>     // std::getenv, std::strtod
#include <filesystem>  // std::filesystem::exists
#include <map>         // std::map
#include <sstream>     // std::istringstream
#include <string>      // std::string
#include <vector>      // std::vector

#include "corelab/parallel.hpp"  // Parallel, range
#include "corelab/report.hpp"    // Stopwatch, format_seconds

namespace {

constexpr std::size_t trivial_n = 1'000'000;
constexpr std::size_t workload_tasks = 10;
constexpr std::size_t joblib_n = 100'000;   // joblib takes microseconds a task: 100,000 are plenty
constexpr std::uint64_t workload_x = 3000;  // lesson 06's f with x = 3000: 4.5M multiplications a call

std::map<std::string, double> best;  // the best seconds of each row

void record(const std::string& row, double seconds) {
    auto [it, fresh] = best.emplace(row, seconds);
    if (!fresh) it->second = std::min(it->second, seconds);
}

inline std::uint64_t trivial(std::size_t i) {
    return static_cast<std::uint64_t>(i) * 3 + 1;
}

inline void keep(std::uint64_t& value) {
    asm volatile("" : "+r"(value));
}

double f(std::size_t i, std::uint64_t x) {  // lesson 06's f
    std::uint64_t p = 1;
    for (std::uint64_t j = 0; j < x; ++j) {
        for (std::uint64_t k = 0; k < j; ++k) p *= k | 1;
    }
    keep(p);
    return std::sqrt(static_cast<double>(i * i)) + (p == 0 ? 1.0 : 0.0);
}

template <class Run>
void timed(benchmark::State& state, const char* row, std::size_t tasks, Run run) {
    for (auto _ : state) {
        corelab::Stopwatch watch;
        run();
        const double s = watch.seconds();
        record(row, s);
        state.SetIterationTime(s);
    }
    state.counters["tasks"] = static_cast<double>(tasks);
}

void parallel_overhead(benchmark::State& state, corelab::Backend backend, const char* row) {
    corelab::Parallel par({.n_jobs = 2, .backend = backend});
    timed(state, row, trivial_n, [&] {
        auto r = par.map(trivial, corelab::range(trivial_n));
        benchmark::DoNotOptimize(r.data());
    });
}

void processes_overhead(benchmark::State& s) {
    parallel_overhead(s, corelab::Backend::processes, "overhead_processes");
}
void threads_overhead(benchmark::State& s) {
    parallel_overhead(s, corelab::Backend::threads, "overhead_threads");
}

void workload_processes_2(benchmark::State& state) {
    corelab::Parallel par({.n_jobs = 2, .backend = corelab::Backend::processes});
    timed(state, "workload_processes_2", workload_tasks, [&] {
        auto r = par.map([](std::size_t i) { return f(i, workload_x); }, corelab::range(workload_tasks));
        benchmark::DoNotOptimize(r.data());
    });
}

void workload_threads_2(benchmark::State& state) {
    corelab::Parallel par({.n_jobs = 2, .backend = corelab::Backend::threads});
    timed(state, "workload_threads_2", workload_tasks, [&] {
        auto r = par.map([](std::size_t i) { return f(i, workload_x); }, corelab::range(workload_tasks));
        benchmark::DoNotOptimize(r.data());
    });
}

void openmp_dynamic_overhead(benchmark::State& state) {
    std::vector<std::uint64_t> out(trivial_n);
    timed(state, "overhead_openmp_dynamic", trivial_n, [&] {
#pragma omp parallel for schedule(dynamic) num_threads(2)
        for (std::size_t i = 0; i < trivial_n; ++i) out[i] = trivial(i);
        benchmark::DoNotOptimize(out.data());
    });
}

void tbb_overhead(benchmark::State& state) {
    std::vector<std::uint64_t> out(trivial_n);
    tbb::global_control two(tbb::global_control::max_allowed_parallelism, 2);
    timed(state, "overhead_tbb", trivial_n, [&] {
        tbb::parallel_for(tbb::blocked_range<std::size_t>(0, trivial_n), [&](const tbb::blocked_range<std::size_t>& r) {
            for (std::size_t i = r.begin(); i < r.end(); ++i) out[i] = trivial(i);
        });
        benchmark::DoNotOptimize(out.data());
    });
}

void workload_openmp_2(benchmark::State& state) {
    std::vector<double> out(workload_tasks);
    timed(state, "workload_openmp_2", workload_tasks, [&] {
#pragma omp parallel for schedule(dynamic) num_threads(2)
        for (std::size_t i = 0; i < workload_tasks; ++i) out[i] = f(i, workload_x);
        benchmark::DoNotOptimize(out.data());
    });
}

void workload_serial(benchmark::State& state) {
    std::vector<double> out(workload_tasks);
    timed(state, "workload_serial", workload_tasks, [&] {
        for (std::size_t i = 0; i < workload_tasks; ++i) out[i] = f(i, workload_x);
        benchmark::DoNotOptimize(out.data());
    });
}

// joblib on the same tasks: the best of 3 runs each, in seconds.
constexpr const char* joblib_script = R"PY(
import sys, time, math
try:
    import joblib
    from joblib import Parallel, delayed
except ImportError:
    sys.exit(0)
def trivial(i):
    return i * 3 + 1
def f(i, x):
    p = 1
    for j in range(x):
        for k in range(j):
            p = (p * (k | 1)) & 0xFFFFFFFFFFFFFFFF
    return math.sqrt(i ** 2) + (1.0 if p == 0 else 0.0)
def best(fn, n=3):
    t = []
    for _ in range(n):
        s = time.perf_counter(); fn(); t.append(time.perf_counter() - s)
    return min(t)
N = int(sys.argv[1]); T = int(sys.argv[2]); X = int(sys.argv[3])
print("version", joblib.__version__, flush=True)
with Parallel(n_jobs=2) as par:
    par(delayed(trivial)(i) for i in range(1000))  # start the workers
    print("overhead_joblib", best(lambda: par(delayed(trivial)(i) for i in range(N))), flush=True)
    print("workload_joblib_2", best(lambda: par(delayed(f)(i, X) for i in range(T)), 1), flush=True)
)PY";

std::map<std::string, std::string> run_joblib() {
    std::map<std::string, std::string> out;
    const char* chosen = std::getenv("CORELAB_PYTHON");
    const std::string python = chosen != nullptr                             ? chosen
                               : std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3"
                                                                             : "python3";
    const std::string script = "/tmp/corelab-bench-parallel-" + std::to_string(::getpid()) + ".py";
    if (std::FILE* f = std::fopen(script.c_str(), "w")) {
        std::fputs(joblib_script, f);
        std::fclose(f);
    } else {
        return out;
    }
    const std::string command = python + " " + script + " " + std::to_string(joblib_n) + " " +
                                std::to_string(workload_tasks) + " " + std::to_string(workload_x) + " 2>/dev/null";
    if (std::FILE* p = ::popen(command.c_str(), "r")) {
        char line[256];
        while (std::fgets(line, sizeof line, p) != nullptr) {
            std::istringstream in(line);
            std::string key, value;
            if (in >> key >> value) out[key] = value;
        }
        ::pclose(p);
    }
    std::remove(script.c_str());
    return out;
}

void compare() {
    const auto us = [](const std::string& row) { return best.count(row) ? best.at(row) / trivial_n * 1e6 : -1.0; };
    std::printf("\nPer-task overhead, %zu trivial tasks on 2 workers (best of the repetitions):\n", trivial_n);
    for (const char* row : {"overhead_processes", "overhead_threads", "overhead_openmp_dynamic", "overhead_tbb"}) {
        std::printf("  %-26s %8.4f us/task\n", row, us(row));
    }
    const double threads_vs_omp = us("overhead_threads") / us("overhead_openmp_dynamic");
    std::printf("  threads / OpenMP dynamic: %.2fx (goal: within 5x) %s\n", threads_vs_omp,
                threads_vs_omp <= 5.0 ? "met" : "NOT met");
    std::printf("\nLesson 06's workload, %zu calls of f with x = %llu (best):\n", workload_tasks,
                static_cast<unsigned long long>(workload_x));
    for (const char* row : {"workload_serial", "workload_processes_2", "workload_threads_2", "workload_openmp_2"}) {
        std::printf("  %-26s %10s\n", row, best.count(row) ? corelab::format_seconds(best.at(row)).c_str() : "-");
    }
    const auto peer = run_joblib();
    if (peer.count("version") == 0) {
        std::printf("\njoblib: not installed (apt-get install python3-joblib to compare)\n");
        return;
    }
    std::printf("\njoblib %s (loky, n_jobs=2, batch_size auto), same machine, same run:\n", peer.at("version").c_str());
    std::printf("  (joblib's overhead measured on %zu trivial tasks)\n", joblib_n);
    if (peer.count("overhead_joblib")) {
        const double theirs = std::strtod(peer.at("overhead_joblib").c_str(), nullptr) / joblib_n * 1e6;
        const double ratio = theirs / us("overhead_processes");
        std::printf("  overhead_joblib            %8.4f us/task: corelab processes %.0fx lower (goal: 5x) %s\n", theirs,
                    ratio, ratio >= 5.0 ? "met" : "NOT met");
    }
    if (peer.count("workload_joblib_2")) {
        const double theirs = std::strtod(peer.at("workload_joblib_2").c_str(), nullptr);
        std::printf("  workload_joblib_2          %10s (%.0fx corelab's processes_2)\n",
                    corelab::format_seconds(theirs).c_str(), theirs / best["workload_processes_2"]);
    }
}

}  // namespace

// processes first: OpenMP and TBB leave threads running, and a process that runs threads must not fork
BENCHMARK(processes_overhead)->UseManualTime()->Unit(benchmark::kMillisecond)->Repetitions(5);
BENCHMARK(workload_processes_2)->UseManualTime()->Unit(benchmark::kMillisecond)->Repetitions(3);
BENCHMARK(threads_overhead)->UseManualTime()->Unit(benchmark::kMillisecond)->Repetitions(5);
BENCHMARK(workload_threads_2)->UseManualTime()->Unit(benchmark::kMillisecond)->Repetitions(3);
BENCHMARK(workload_serial)->UseManualTime()->Unit(benchmark::kMillisecond)->Repetitions(3);
BENCHMARK(openmp_dynamic_overhead)->UseManualTime()->Unit(benchmark::kMillisecond)->Repetitions(5);
BENCHMARK(workload_openmp_2)->UseManualTime()->Unit(benchmark::kMillisecond)->Repetitions(3);
BENCHMARK(tbb_overhead)->UseManualTime()->Unit(benchmark::kMillisecond)->Repetitions(5);

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    try {
        benchmark::RunSpecifiedBenchmarks();
        compare();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_parallel: %s\n", e.what());
        return 1;
    }
    benchmark::Shutdown();
    return 0;
}
