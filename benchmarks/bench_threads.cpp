// bench_threads — lesson 04's threads beside the peers, on the same data.
//
// This program measures, in one run on one machine: the notebook's loop on one
// core; the same loop on two ThreadWorkers (lesson 04's two_thread row); the
// OpenMP reduction with two threads (which should be within ~10% of it: both
// run one add chain per core); std::reduce(std::execution::par) (TBB underneath);
// the same with 16 accumulators (sum_fast) against `omp parallel for simd`;
// and what starting and joining a thread costs, beside re-using OpenMP's pool.
// Quote ratios, not absolute times: the machine is shared and noisy.
#include <benchmark/benchmark.h>

#include <boost/thread.hpp>  // boost::thread
#include <cstddef>           // std::size_t
#include <execution>         // std::execution::par
#include <numeric>           // std::reduce
#include <span>              // std::span

#include "corelab/dataset.hpp"         // make_uniform
#include "corelab/reduce.hpp"          // sum_loop, sum_fast, chunk, combine
#include "corelab/thread_workers.hpp"  // ThreadWorkers

namespace {

constexpr std::size_t n = 100'000'000;  // the notebook's size: 800 MB
constexpr unsigned threads = 2;

std::span<const double> data() {
    static const corelab::HugeArray<double> d = corelab::make_uniform(n, 42);
    return d;
}

void finish(benchmark::State& state, double sum) {
    benchmark::DoNotOptimize(sum);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(n * 8));
}

void serial_loop(benchmark::State& state) {
    const auto d = data();
    double sum = 0.0;
    for (auto _ : state) sum = corelab::sum_loop(d).sum;
    finish(state, sum);
}

template <corelab::Partial (*Sum)(std::span<const double>) noexcept>
void thread_workers(benchmark::State& state) {
    const auto d = data();
    corelab::ThreadWorkers workers(threads);
    double sum = 0.0;
    for (auto _ : state) {
        sum = corelab::combine(workers.run([&](unsigned k) { return Sum(corelab::chunk(d, k, threads)); })).sum;
    }
    finish(state, sum);
}

void openmp_reduction(benchmark::State& state) {
    const auto d = data();
    const double* p = d.data();
    const auto size = static_cast<std::ptrdiff_t>(d.size());
    double sum = 0.0;
    for (auto _ : state) {
        double s = 0.0;
#pragma omp parallel for reduction(+ : s) num_threads(threads) schedule(static)
        for (std::ptrdiff_t i = 0; i < size; ++i) s += p[i];
        sum = s;
    }
    finish(state, sum);
}

void openmp_simd_reduction(benchmark::State& state) {
    const auto d = data();
    const double* p = d.data();
    const auto size = static_cast<std::ptrdiff_t>(d.size());
    double sum = 0.0;
    for (auto _ : state) {
        double s = 0.0;
#pragma omp parallel for simd reduction(+ : s) num_threads(threads) schedule(static)
        for (std::ptrdiff_t i = 0; i < size; ++i) s += p[i];
        sum = s;
    }
    finish(state, sum);
}

void std_reduce_par(benchmark::State& state) {
    const auto d = data();
    double sum = 0.0;
    for (auto _ : state) sum = std::reduce(std::execution::par, d.begin(), d.end(), 0.0);
    finish(state, sum);
}

void boost_thread_spawn(benchmark::State& state) {
    for (auto _ : state) {
        boost::thread t([] {});
        t.join();
    }
}

void thread_workers_spawn(benchmark::State& state) {
    corelab::ThreadWorkers one(1);
    for (auto _ : state) benchmark::DoNotOptimize(one.run([](unsigned) { return 0; }));
}

void openmp_parallel_region(benchmark::State& state) {
    // OpenMP keeps its threads between regions: this is a wake-up, not a start.
    for (auto _ : state) {
#pragma omp parallel num_threads(threads)
        benchmark::ClobberMemory();
    }
}

}  // namespace

BENCHMARK(serial_loop)->Name("mean/serial_loop")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(thread_workers<corelab::sum_loop>)->Name("mean/two_thread")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(openmp_reduction)->Name("mean/openmp_two_thread")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(std_reduce_par)->Name("mean/std_reduce_par")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(thread_workers<corelab::sum_fast>)
    ->Name("mean/two_thread_fast")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(openmp_simd_reduction)->Name("mean/openmp_simd_two_thread")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(boost_thread_spawn)->Name("spawn/boost_thread_start_join")->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(thread_workers_spawn)->Name("spawn/thread_workers_1")->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(openmp_parallel_region)->Name("spawn/openmp_region_2")->Unit(benchmark::kMicrosecond)->UseRealTime();

BENCHMARK_MAIN();
