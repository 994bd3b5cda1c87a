// bench_parallel — what corelab::Parallel costs per task and per call, beside OpenMP, oneTBB and joblib.
//
// Per-task overhead: 1,000,000 trivial tasks (a multiply-add) on 2 workers,
// batch_size auto, for both backends, beside an OpenMP schedule(dynamic)
// loop and a oneTBB parallel_for on the same tasks. Per-call overhead: calls
// of 2 trivial tasks, forking the workers each call, on a reused pool
// (ParallelOptions::reuse: the workers outlive the call) and on threads. Then
// lesson 06's workload (10 calls of f) at n_jobs=2: forking, reused, threads,
// OpenMP. Then joblib (Debian's python3-joblib for /usr/bin/python3, or
// CORELAB_PYTHON; "not installed" otherwise) on the same tasks, its reused
// rows inside one `with Parallel(n_jobs=2)` block, and each goal met or not
// (print_goal). Every figure is a median of one run. The process rows run
// first: OpenMP and TBB keep their threads alive, and Parallel refuses to fork
// beside threads.
#include <benchmark/benchmark.h>
#include <omp.h>                 // omp_set_num_threads
#include <tbb/blocked_range.h>   // tbb::blocked_range
#include <tbb/global_control.h>  // tbb::global_control (2 threads)
#include <tbb/parallel_for.h>    // tbb::parallel_for

#include <algorithm>         // std::sort
#include <cmath>             // std::sqrt
#include <cstdint>           // std::uint64_t
#include <cstdio>            // std::popen, std::printf
#include <cstdlib>           // std::getenv, std::strtod
#include <filesystem>        // std::filesystem::exists
#include <initializer_list>  // std::initializer_list
#include <map>               // std::map
#include <sstream>           // std::istringstream
#include <string>            // std::string
#include <utility>           // std::pair
#include <vector>            // std::vector

#include "bench_support.hpp"     // print_goal, format_ratio: the summaries' one goal wording
#include "corelab/parallel.hpp"  // Parallel, range
#include "corelab/report.hpp"    // Stopwatch, format_seconds

namespace {

constexpr std::size_t trivial_n = 1'000'000;
constexpr std::size_t workload_tasks = 10;
constexpr std::size_t call_tasks = 2;       // a call of one trivial task a worker: what a call costs, beside its tasks
constexpr std::size_t joblib_n = 100'000;   // joblib takes microseconds a task: 100,000 are plenty
constexpr std::uint64_t workload_x = 3000;  // lesson 06's f with x = 3000: 4.5M multiplications a call

std::map<std::string, std::vector<double>> samples;  // every timed pass of each row, in seconds

void record(const std::string& row, double seconds) {
    samples[row].push_back(seconds);
}

// A row's median pass (all repetitions together), or -1 when the row did not run.
double median(const std::string& row) {
    const auto it = samples.find(row);
    if (it == samples.end() || it->second.empty()) return -1.0;
    std::vector<double> v = it->second;
    std::sort(v.begin(), v.end());
    const std::size_t m = v.size() / 2;
    return v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
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

// What a call costs beside its tasks: one trivial task a worker, so nearly all of the time is the call's own
// (forking and reaping 2 workers, or waking 2 threads).
void call_overhead(benchmark::State& state, corelab::Backend backend, const char* row) {
    corelab::Parallel par({.n_jobs = 2, .backend = backend});
    timed(state, row, call_tasks, [&] {
        auto r = par.map(trivial, corelab::range(call_tasks));
        benchmark::DoNotOptimize(r.data());
    });
}
void call_overhead_processes(benchmark::State& s) {
    call_overhead(s, corelab::Backend::processes, "call_overhead_processes");
}
void call_overhead_threads(benchmark::State& s) {
    call_overhead(s, corelab::Backend::threads, "call_overhead_threads");
}
// The same on a pool: its first call forks the 2 workers and is not timed; every timed call finds them waiting.
void call_overhead_processes_reused(benchmark::State& state) {
    corelab::Parallel par({.n_jobs = 2, .reuse = true});
    par.map(trivial, corelab::range(call_tasks));
    timed(state, "call_overhead_processes_reused", call_tasks, [&] {
        auto r = par.map(trivial, corelab::range(call_tasks));
        benchmark::DoNotOptimize(r.data());
    });
}

void workload_processes_2(benchmark::State& state) {
    corelab::Parallel par({.n_jobs = 2, .backend = corelab::Backend::processes});
    timed(state, "workload_processes_2", workload_tasks, [&] {
        auto r = par.map([](std::size_t i) { return f(i, workload_x); }, corelab::range(workload_tasks));
        benchmark::DoNotOptimize(r.data());
    });
}

// Lesson 06's processes_2_reused: the second and later calls on one Parallel with reuse (no fork).
void workload_processes_2_reused(benchmark::State& state) {
    corelab::Parallel par({.n_jobs = 2, .backend = corelab::Backend::processes, .reuse = true});
    const auto call = [&] {
        return par.map([](std::size_t i) { return f(i, workload_x); }, corelab::range(workload_tasks));
    };
    call();
    timed(state, "workload_processes_2_reused", workload_tasks, [&] {
        auto r = call();
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

// joblib on the same tasks, in seconds. Loky, joblib's process backend, keeps its workers between calls anyway
// (a reusable executor), so the one call that starts them is the process's first: workload_joblib_2 is that call,
// the counterpart of processes_2, which forks its workers each call. The rest runs inside one
// `with Parallel(n_jobs=2) as parallel:` block, joblib's way of keeping a pool for several calls:
// workload_joblib_2_reused is the median of its second and later calls of lesson 06's workload, call_overhead_joblib
// the median of 50 calls of 2 trivial tasks (one a worker), overhead_joblib the median of 3 calls of N trivial tasks.
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
def times(fn, n):
    t = []
    for _ in range(n):
        s = time.perf_counter(); fn(); t.append(time.perf_counter() - s)
    return sorted(t)
def median(t):
    m = len(t) // 2
    return t[m] if len(t) % 2 else (t[m - 1] + t[m]) / 2
N = int(sys.argv[1]); T = int(sys.argv[2]); X = int(sys.argv[3])
print("version", joblib.__version__, flush=True)
print("workload_joblib_2", times(lambda: Parallel(n_jobs=2)(delayed(f)(i, X) for i in range(T)), 1)[0], flush=True)
with Parallel(n_jobs=2) as parallel:
    parallel(delayed(f)(i, X) for i in range(T))  # the first call of the block, not timed
    print("workload_joblib_2_reused", median(times(lambda: parallel(delayed(f)(i, X) for i in range(T)), 3)),
          flush=True)
    print("call_overhead_joblib", median(times(lambda: parallel(delayed(trivial)(i) for i in range(2)), 50)),
          flush=True)
    print("overhead_joblib", median(times(lambda: parallel(delayed(trivial)(i) for i in range(N)), 3)), flush=True)
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

void print_rows(std::initializer_list<const char*> rows, double per, const char* unit) {
    for (const char* row : rows) {
        const double m = median(row);
        if (m < 0) {
            std::printf("  %-32s %12s\n", row, "-");
        } else if (per > 0) {
            std::printf("  %-32s %8.4f %s\n", row, m / per * 1e6, unit);
        } else {
            std::printf("  %-32s %12s\n", row, corelab::format_seconds(m).c_str());
        }
    }
}

double ratio(double a, double b) {
    return a > 0 && b > 0 ? a / b : -1.0;
}

void compare() {
    using corelab::bench::print_goal, corelab::bench::Goal;
    std::printf("\nPer-task overhead, %zu trivial tasks on 2 workers (medians):\n", trivial_n);
    print_rows({"overhead_processes", "overhead_threads", "overhead_openmp_dynamic", "overhead_tbb"}, trivial_n,
               "us/task");
    print_goal("Parallel's threads within 5x of OpenMP's schedule(dynamic) per task",
               ratio(median("overhead_threads"), median("overhead_openmp_dynamic")), 5.0, Goal::at_most);

    std::printf("\nPer-call overhead, one call of %zu trivial tasks on 2 workers (medians):\n", call_tasks);
    print_rows({"call_overhead_processes", "call_overhead_processes_reused", "call_overhead_threads"}, 0, "");
    std::printf("  (processes: forks and reaps its 2 workers each call; _reused: a pool, its workers already there)\n");

    std::printf("\nLesson 06's workload, %zu calls of f with x = %llu (medians):\n", workload_tasks,
                static_cast<unsigned long long>(workload_x));
    print_rows({"workload_serial", "workload_processes_2", "workload_processes_2_reused", "workload_threads_2",
                "workload_openmp_2"},
               0, "");
    print_goal("reused processes within 5% of threads_2 on lesson 06's workload",
               ratio(median("workload_processes_2_reused"), median("workload_threads_2")), 1.05, Goal::at_most,
               "of threads_2's time");

    const auto peer = run_joblib();
    if (peer.count("version") == 0) {
        std::printf("\njoblib: not installed (apt-get install python3-joblib to compare)\n");
        return;
    }
    const auto theirs = [&](const char* key) {
        return peer.count(key) ? std::strtod(peer.at(key).c_str(), nullptr) : -1.0;
    };
    std::printf("\njoblib %s (loky, n_jobs=2, batch_size auto), same machine, same run (medians):\n",
                peer.at("version").c_str());
    const double task_joblib = theirs("overhead_joblib") / joblib_n,
                 task_ours = median("overhead_processes") / trivial_n;
    std::printf("  %-32s %8.4f us/task (on %zu tasks): %s corelab's processes\n", "overhead_joblib", task_joblib * 1e6,
                joblib_n, corelab::bench::format_ratio(ratio(task_joblib, task_ours)).c_str());
    const double call_joblib = theirs("call_overhead_joblib"), call_ours = median("call_overhead_processes_reused");
    std::printf("  %-32s %12s: %s corelab's reused pool\n", "call_overhead_joblib",
                corelab::format_seconds(call_joblib).c_str(),
                corelab::bench::format_ratio(ratio(call_joblib, call_ours)).c_str());
    for (const auto& [row, ours] :
         {std::pair{"workload_joblib_2", "processes_2"}, std::pair{"workload_joblib_2_reused", "processes_2_reused"}}) {
        std::printf("  %-32s %12s: %s corelab's %s\n", row, corelab::format_seconds(theirs(row)).c_str(),
                    corelab::bench::format_ratio(ratio(theirs(row), median(std::string("workload_") + ours))).c_str(),
                    ours);
    }
    std::printf(
        "  (workload_joblib_2: the process's first call, loky starts its workers; _reused: the second and\n"
        "   later calls inside one `with Parallel(n_jobs=2) as parallel:` block)\n");
    print_goal("Parallel's per-task overhead on processes at least 5x below joblib's", ratio(task_joblib, task_ours),
               5.0);
    print_goal("per-call overhead of a reused pool at least 10x below joblib's", ratio(call_joblib, call_ours), 10.0);
}

}  // namespace

// processes first: OpenMP and TBB leave threads running, and a process that runs threads must not fork
BENCHMARK(processes_overhead)->UseManualTime()->Unit(benchmark::kMillisecond)->Repetitions(5);
BENCHMARK(call_overhead_processes)->UseManualTime()->Unit(benchmark::kMicrosecond)->Repetitions(3);
BENCHMARK(call_overhead_processes_reused)->UseManualTime()->Unit(benchmark::kMicrosecond)->Repetitions(3);
BENCHMARK(workload_processes_2)->UseManualTime()->Unit(benchmark::kMillisecond)->Repetitions(3);
BENCHMARK(workload_processes_2_reused)->UseManualTime()->Unit(benchmark::kMillisecond)->Repetitions(3);
BENCHMARK(threads_overhead)->UseManualTime()->Unit(benchmark::kMillisecond)->Repetitions(5);
BENCHMARK(call_overhead_threads)->UseManualTime()->Unit(benchmark::kMicrosecond)->Repetitions(3);
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
