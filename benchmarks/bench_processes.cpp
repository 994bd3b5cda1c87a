// Benchmarks for lesson 03: what a process costs, what a message costs, and
// how two processes compare with two OpenMP threads running the same loop.
//
// The OpenMP benchmarks are registered last on purpose: OpenMP keeps its
// thread pool alive after the first parallel region, and ProcessWorkers
// refuses to fork a process that runs other threads.
#include <benchmark/benchmark.h>
#include <omp.h>        // omp_get_thread_num
#include <sys/prctl.h>  // prctl(PR_SET_PDEATHSIG)
#include <sys/wait.h>   // waitpid
#include <unistd.h>     // fork

#include <csignal>  // SIGKILL
#include <thread>   // std::this_thread::yield

#include "corelab/dataset.hpp"            // make_uniform
#include "corelab/ipc/message_queue.hpp"  // MessageQueue
#include "corelab/process_workers.hpp"    // ProcessWorkers
#include "corelab/reduce.hpp"             // sum_loop, chunk, combine

namespace {

constexpr std::size_t n = 100'000'000;  // the notebook's size

const corelab::HugeArray<double>& data() {
    static const auto d = corelab::make_uniform(n, 42);
    return d;
}

// Fork and reap one child that does nothing, from a process holding
// state.range(0) MB of touched data in 2 MB pages.
void fork_reap(benchmark::State& state) {
    corelab::HugeArray<char> ballast(static_cast<std::size_t>(state.range(0)) << 20);
    for (std::size_t i = 0; i < ballast.size(); i += 4096) ballast[i] = 1;
    corelab::ProcessWorkers one(1);
    for (auto _ : state) benchmark::DoNotOptimize(one.run([](unsigned) { return 0; }));
    state.SetLabel(std::to_string(state.range(0)) + " MB parent");
}
BENCHMARK(fork_reap)->Arg(0)->Arg(800)->Unit(benchmark::kMicrosecond)->UseRealTime();

// A 16-byte message to a child and back; both sides poll the try_ calls and
// yield the CPU between polls (on a busy machine a pure spin would keep the
// other side from running at all).
void queue_round_trip_16_bytes(benchmark::State& state) {
    auto there = corelab::ipc::MessageQueue<corelab::Partial>::create(1, "bench");
    auto back = corelab::ipc::MessageQueue<corelab::Partial>::create(1, "bench");
    const pid_t child = ::fork();
    if (child == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;) {
            std::this_thread::yield();
            if (auto m = there.try_receive()) {
                if (m->count == 0) ::_exit(0);
                while (!back.try_send(*m)) std::this_thread::yield();
            }
        }
    }
    corelab::Partial p{1.0, 1};
    for (auto _ : state) {
        while (!there.try_send(p)) std::this_thread::yield();
        std::optional<corelab::Partial> answer;
        while (!(answer = back.try_receive())) std::this_thread::yield();
        benchmark::DoNotOptimize(answer);
    }
    there.send({0.0, 0});
    ::waitpid(child, nullptr, 0);
}
BENCHMARK(queue_round_trip_16_bytes)->Unit(benchmark::kMicrosecond)->UseRealTime();

void serial_loop_100M(benchmark::State& state) {
    const std::span<const double> d = data();
    for (auto _ : state) benchmark::DoNotOptimize(corelab::sum_loop(d));
}
BENCHMARK(serial_loop_100M)->Unit(benchmark::kMillisecond)->UseRealTime();

// Lesson 03's two_process row: fork, each child runs the loop on its half, queue, reap.
void two_process_mean_100M(benchmark::State& state) {
    const std::span<const double> d = data();
    corelab::ProcessWorkers workers(2);
    for (auto _ : state) {
        const auto parts = workers.run([&](unsigned k) { return corelab::sum_loop(corelab::chunk(d, k, 2)); });
        benchmark::DoNotOptimize(corelab::combine(parts));
    }
}
BENCHMARK(two_process_mean_100M)->Unit(benchmark::kMillisecond)->UseRealTime();

// The peer: two OpenMP threads, each running the same loop on its half.
void openmp_two_thread_mean_100M(benchmark::State& state) {
    const std::span<const double> d = data();
    for (auto _ : state) {
        corelab::Partial parts[2];
#pragma omp parallel num_threads(2)
        {
            const int k = omp_get_thread_num();
            parts[k] = corelab::sum_loop(corelab::chunk(d, static_cast<std::size_t>(k), 2));
        }
        benchmark::DoNotOptimize(corelab::combine(parts));
    }
}
BENCHMARK(openmp_two_thread_mean_100M)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
