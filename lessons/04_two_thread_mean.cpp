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
#include <cmath>      // std::abs
#include <iostream>   // std::cout
#include <limits>     // std::numeric_limits
#include <span>       // std::span
#include <string>     // std::string
#include <vector>     // std::vector

#include "corelab/cache_line.hpp"      // cache_line: the slots of padded_slots, a line apart
#include "corelab/cli.hpp"             // Cli, run_lesson: the shared command line
#include "corelab/dataset.hpp"         // make_uniform: the notebook's np.random.rand(n)
#include "corelab/notebook.hpp"        // run_cell: the notebook's cell timed here
#include "corelab/reduce.hpp"          // sum_loop, chunk, combine, Partial
#include "corelab/report.hpp"          // best_of, Report
#include "corelab/thread_workers.hpp"  // ThreadWorkers, GlobalLock

namespace po = boost::program_options;

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

// What the table says: chosen from its numbers (tests feed it recorded tables).
std::vector<std::string> conclude(const corelab::Table& t) {
    using corelab::format_seconds, corelab::format_speedup;
    const double gil = t.speedup("two_thread_gil");
    const double sharing = t.seconds("false_sharing") / t.seconds("padded_slots");
    std::vector<std::string> said{corelab::parallel_verdict(
        t, "two_thread", t.workers, std::to_string(t.workers) + (t.workers == 1 ? " thread" : " threads"),
        "they share the memory that feeds them (./course bench, bandwidth_read_2threads).",
        "the sum was too small to split, or memory fed one core as fast as it fed them all.")};
    said.push_back(gil < 1.15 ? "Under the emulated GIL the same threads gave " + format_speedup(gil) +
                                    ": one computed at a time, as CPython's threads did."
                              : "Under the emulated GIL the threads still gained " + format_speedup(gil) +
                                    ", more than taking turns allows: " +
                                    (t.busy() ? "other programs slowed serial_loop more than them."
                                              : "serial_loop was disturbed on this run; run again."));
    said.push_back(
        "The notebook, on its laptop (Python): one thread 25.5 s, two threads 20.9 s (1.22x: the GIL), "
        "two processes 12.7 s (2.00x).");
    if (t.workers < 2) {
        said.push_back("With one thread nobody shares a cache line: false_sharing and padded_slots do the same.");
    } else {
        said.push_back(sharing > 1.3 ? "false_sharing took " + format_speedup(sharing) +
                                           " as long as padded_slots for the same adds: the threads' slots share "
                                           "one cache line, which moves between their cores at every write."
                       : sharing > 1.05
                           ? "false_sharing took only " + format_speedup(sharing) +
                                 " as long as padded_slots on this run: the shared cache line cost something, "
                                 "but little; run again to see how much it varies."
                           : "false_sharing was not slower than padded_slots here (" + format_speedup(sharing) +
                                 (t.busy() ? "): the machine was busy."
                                           : "): the threads did not share a line's "
                                             "cache at once on this run."));
    }
    if (const corelab::Row* py = t.find("python_two_thread")) {
        said.push_back("The notebook's cell here: two Python threads gave " +
                       format_speedup(t.seconds("python_loop") / py->seconds) + " over its loop.");
    }
    said.push_back("Threads or processes? A thread starts and joins in " + format_seconds(t.seconds("thread_spawn")) +
                   " and shares the array, but a crash in one kills\nthem all and every shared write must be "
                   "synchronised (and kept off shared cache lines). Processes cost a fork\nand a copy or a shared "
                   "segment (lesson 03), but a crashing worker leaves the others and the parent alive.");
    if (auto sweep = corelab::sweep_summary(t, "sweep_threads_"); !sweep.empty()) said.push_back(sweep);
    return said;
}

void lesson(const corelab::LessonOptions& opt) {
    corelab::Report report(opt, std::cout);
    const unsigned w = opt.workers;
    const auto micros = corelab::parse_count(opt.extra["switch-interval"].as<std::string>(), "switch-interval", true);
    if (micros > 60'000'000) throw corelab::UsageError("--switch-interval must be at most 60000000 (one minute)");
    const std::chrono::microseconds interval(static_cast<long long>(micros));
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
    corelab::GlobalLock gil(interval);
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
    const double spawn_seconds = spawn.seconds / spawns;
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

    // check every result against the serial loop: a sum in any order is within
    // (n-1)·eps·sum of the exact one, so two means differ by at most twice that
    const double expected = serial.value.mean();
    const double tolerance = 2.0 * static_cast<double>(opt.n - 1) * std::numeric_limits<double>::epsilon() * expected;
    for (const auto& [name, p] : {std::pair{"two_thread", threads.value},
                                  {"two_thread_gil", with_gil.value},
                                  {"false_sharing", shared.value},
                                  {"padded_slots", apart.value}}) {
        if (p.count != opt.n || std::abs(p.mean() - expected) > tolerance) {
            throw corelab::Error(std::string(name) + " gives " + std::to_string(p.mean()) + ", serial_loop " +
                                 std::to_string(expected) + ": the workers lost or double-counted elements");
        }
    }

    report.say("all means agree with serial_loop within 2(n-1)eps; the emulated GIL (switch interval " +
               std::to_string(micros) + " us) changed hands " + std::to_string(gil.handovers()) + " times in " +
               std::to_string(opt.repeat) + " runs\n");

    corelab::Timing per_spawn{spawn_seconds, {}};  // one thread's start and join, from each run of 200
    for (double s : spawn.runs) per_spawn.runs.push_back(s / spawns);
    report.baseline("serial_loop", serial, expected);
    report.add("two_thread", threads, threads.value.mean());
    report.add("two_thread_gil", with_gil, with_gil.value.mean());
    report.add_uncompared("thread_spawn", per_spawn, std::nullopt);
    report.add("false_sharing", shared, shared.value.mean());
    report.add("padded_slots", apart, apart.value.mean());
    // --sweep: the notebook's cell with 1, 2, ... threads; then the notebook's own cell in Python
    report.sweep(opt.sweep, opt.repeat, "sweep_threads_", [&](unsigned k) {
        const auto p = corelab::combine(
            corelab::ThreadWorkers(k).run([&](unsigned i) { return corelab::sum_loop(corelab::chunk(data, i, k)); }));
        if (p.count != opt.n || std::abs(p.mean() - expected) > tolerance)
            throw corelab::Error("a sweep row disagrees");
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
    cli.add_options()("switch-interval", po::value<std::string>()->default_value("5000"),
                      "microseconds a thread keeps the emulated GIL before offering it (Python: 5000)");
    return corelab::run_lesson(argc, argv, cli, lesson);
}
