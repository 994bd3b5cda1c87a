// Lesson 04 — two threads, one array: the mean without and with a GIL.
//
// Mirrors notebook cell In[6] and the markdown after it: two `threading.Thread`s
// each sum half of d and write their means into a shared list (20.9 s there,
// barely better than one thread's 25.5 s, because of the GIL).
// Question: do two C++ threads take half the time, and what exactly does a
// Global Interpreter Lock cost?
//
// Run it:  ./course lesson 4          (or --workers 1..64, --switch-interval 100)
// You should see: two_thread about 2x faster than serial_loop; two_thread_gil
// (the same threads, made to take turns as Python's do) no faster than
// serial_loop; false_sharing much slower than two_thread although it does the
// same adds; starting and joining a thread costs tens of microseconds.
#include <algorithm>  // std::fill
#include <atomic>     // std::atomic_ref
#include <chrono>     // std::chrono::microseconds
#include <iostream>   // std::cout
#include <span>       // std::span
#include <string>     // std::string
#include <vector>     // std::vector

#include "04_two_thread_mean.conclude.hpp"  // conclude: what the table says, chosen from its numbers
#include "corelab/cache_line.hpp"           // cache_line: the slots of padded_slots, a line apart
#include "corelab/cli.hpp"                  // Cli, run_lesson: the shared command line
#include "corelab/dataset.hpp"              // make_uniform: the notebook's np.random.rand(n)
#include "corelab/notebook.hpp"             // run_cell: the notebook's cell timed here
#include "corelab/reduce.hpp"               // sum_loop, chunk, combine, Partial
#include "corelab/report.hpp"               // best_of, Report
#include "corelab/thread_workers.hpp"       // ThreadWorkers, GlobalLock

namespace {

// [docs:add_into]
// Adds part into `slot` in memory, one element at a time: each step loads the
// slot and stores it back. (A relaxed atomic makes the compiler really do it,
// as it must for any variable that another thread may read; on x86 it is a
// plain load and a plain store.)
void add_into(double& slot, std::span<const double> part) {
    const std::atomic_ref<double> s(slot);
    for (double x : part) s.store(s.load(std::memory_order_relaxed) + x, std::memory_order_relaxed);
}
// [docs:end]

void lesson(const corelab::LessonOptions& opt) {
    corelab::Report report(opt, std::cout);
    const unsigned w = opt.workers;
    corelab::check_lesson_memory("n", opt.n, {.bytes_per_element = sizeof(double)},
                                 "lesson 04 at n = " + std::to_string(opt.n) + " (the data, which every thread reads)");
    report.say("Lesson 04: the mean of " + std::to_string(opt.n) + " random numbers with " + std::to_string(w) +
               " threads (notebook In[6])\n");
    // generate the data; every thread reads it where it is
    const corelab::HugeArray<double> d = corelab::make_uniform(opt.n, opt.seed);
    const std::span<const double> data = d;

    // time the baseline: the notebook's loop on one core
    const auto serial = corelab::best_of(opt.repeat, [&] { return corelab::sum_loop(data); });

    // time the notebook's cell: thread k sums part k into its own slot
    // [docs:two_thread]
    corelab::ThreadWorkers workers(w);
    const auto threads = corelab::best_of(opt.repeat, [&] {
        const std::vector<corelab::Partial> parts = workers.run([&](unsigned k) {
            return corelab::sum_loop(corelab::chunk(data, k, w));  // the notebook's loop on part k
        });
        return corelab::combine(parts);
    });
    // [docs:end]

    // time the same threads under an emulated GIL: one computes at a time
    // [docs:two_thread_gil]
    corelab::GlobalLock gil(std::chrono::microseconds(opt.integer<long long>("switch-interval")));
    const auto with_gil = corelab::best_of(opt.repeat, [&] {
        return corelab::combine(workers.run([&](unsigned k) {
            const std::span<const double> part = corelab::chunk(data, k, w);
            corelab::Partial sum;
            gil.run(part.size(), [&](std::size_t first, std::size_t count) {  // only while holding the lock:
                sum += corelab::sum_loop(part.subspan(first, count));         // the notebook's loop, slice by slice
            });
            return sum;
        }));
    });
    // [docs:end]

    // time what starting and joining one (empty) thread costs
    // [docs:thread_spawn]
    constexpr int spawns = 200;
    corelab::ThreadWorkers one(1);
    const auto spawn = corelab::best_of(opt.repeat, [&] {
        for (int i = 0; i < spawns; ++i) one.run([](unsigned) { return 0; });
        return 0;
    });
    // [docs:end]

    // time the threads adding straight into adjacent slots of one shared
    // array, then into slots a cache line apart
    // [docs:false_sharing]
    auto into_slots = [&](std::size_t stride) {  // thread k adds into sums[k * stride]
        std::vector<double> sums(w * stride);
        return corelab::best_of(opt.repeat, [&] {
            std::fill(sums.begin(), sums.end(), 0.0);
            workers.run([&](unsigned k) {
                add_into(sums[k * stride], corelab::chunk(data, k, w));
                return k;
            });
            double sum = 0.0;
            for (unsigned k = 0; k < w; ++k) sum += sums[k * stride];
            return corelab::Partial{sum, data.size()};
        });
    };
    const auto shared = into_slots(1);                                    // 8 bytes apart: one cache line
    const auto apart = into_slots(corelab::cache_line / sizeof(double));  // 64 bytes apart: a line each
    // [docs:end]

    // check every result against the serial loop: only rounding may differ (lesson 02 derives the bound)
    corelab::check_within_rounding("two_thread", threads.value, "serial_loop", serial.value);
    corelab::check_within_rounding("two_thread_gil", with_gil.value, "serial_loop", serial.value);
    corelab::check_within_rounding("false_sharing", shared.value, "serial_loop", serial.value);
    corelab::check_within_rounding("padded_slots", apart.value, "serial_loop", serial.value);
    report.say("all means agree with serial_loop within 2(n-1)eps; the emulated GIL (switch interval " +
               std::to_string(opt.integer("switch-interval")) + " us) changed hands " +
               std::to_string(gil.handovers()) + " times in " + std::to_string(opt.repeat) + " runs\n");

    report.baseline("serial_loop", serial, serial.value.mean());
    report.add("two_thread", threads, threads.value.mean());
    report.add("two_thread_gil", with_gil, with_gil.value.mean());
    report.add_uncompared("thread_spawn", spawn.per(spawns), std::nullopt);  // one start and join, from each run
    report.add("false_sharing", shared, shared.value.mean());
    report.add("padded_slots", apart, apart.value.mean());
    // --sweep: the notebook's cell with 1, 2, ... threads; then the notebook's own cell in Python
    report.sweep(opt.sweep, opt.repeat, "sweep_threads_", [&](unsigned k) {
        const auto p = corelab::combine(
            corelab::ThreadWorkers(k).run([&](unsigned i) { return corelab::sum_loop(corelab::chunk(data, i, k)); }));
        corelab::check_within_rounding("sweep_threads_" + std::to_string(k), p, "serial_loop", serial.value);
        return p.mean();
    });
    corelab::notebook::report_python(report,
                                     corelab::notebook::run_cell("two_thread", double(opt.n), double(opt.n), opt.seed));
    report.conclude(conclude);
    report.print();
}

}  // namespace

int main(int argc, char** argv) {
    corelab::Cli cli("lesson04_two_thread_mean", "the mean of n random numbers with threads, without and with a GIL");
    cli.with_workers(2).with_sweep().with_conclusion(conclude);
    cli.integer("switch-interval", 5000, {.min = 0, .max = 60'000'000, .why_at_most = "one minute"},
                "microseconds a thread keeps the emulated GIL before offering it (Python: 5000)");
    return corelab::run_lesson(argc, argv, cli, lesson);
}
