// Lesson 06 — a parallel for-loop: joblib.Parallel for C++.
//
// Mirrors notebook cells In[10]-In[13]: a CPU-bound f(i) called for i in range(10), in a plain
// loop (21.7 s there), with Parallel(n_jobs=2) on processes (11.0 s), with prefer="threads"
// (19.1 s: the GIL) and with n_jobs=6 (7.6 s, on 4 cores / 8 hardware threads).
// Question: how much faster do n workers make independent tasks, on processes and on threads,
// where does the curve flatten, and what does a pool of processes kept between calls save?
//
// Run it:  ./course lesson 6          (or --tasks 20 --jobs -1 --backend threads --verbose 10, --sweep)
// You should see: processes_2 and threads_2 both about 2x faster than serial_loop on a quiet 2-core machine;
// processes_2_reused (a pool's later calls: no fork) as fast as threads_2; processes_6 and all_cores no faster
// than 2 workers there; with --sweep, the speed-up flattening at the core count.
#include <cmath>     // std::sqrt
#include <cstdint>   // std::uint64_t
#include <iostream>  // std::cout
#include <string>    // std::string
#include <vector>    // std::vector

#include "06_parallel_for.conclude.hpp"  // conclude: what the table says, from its numbers; sum
#include "corelab/cli.hpp"               // Cli, run_lesson: the shared command line and its typed options
#include "corelab/cpu_info.hpp"          // usable_cpus: the CPUs this run may use
#include "corelab/notebook.hpp"          // run_cell: the notebook's cells timed here; the laptop's figures
#include "corelab/parallel.hpp"          // Parallel, ParallelOptions, range
#include "corelab/report.hpp"            // best_of, Report, Stopwatch

namespace {

using corelab::Backend;

// [docs:naive]
// The notebook's f, word for word: p is computed and thrown away.
double f_naive(std::size_t i, std::uint64_t x) {
    std::uint64_t p = 1;
    for (std::uint64_t j = 0; j < x; ++j) {
        for (std::uint64_t k = 0; k < j; ++k) p *= k;
    }
    return std::sqrt(static_cast<double>(i * i));
}
// [docs:end]

// [docs:alive]
// The same loops, kept alive. k | 1 keeps p from sticking at 0 (in Python
// p *= 0 at k = 0 too, but Python multiplies anyway). The empty asm says "this
// instruction reads p": the compiler must compute p, yet no instruction is
// added. Every task now does x(x-1)/2 dependent multiplications.
inline void keep(std::uint64_t& value) {
    asm volatile("" : "+r"(value));
}

double f(std::size_t i, std::uint64_t x) {
    std::uint64_t p = 1;
    for (std::uint64_t j = 0; j < x; ++j) {
        for (std::uint64_t k = 0; k < j; ++k) p *= k | 1;
    }
    keep(p);
    return std::sqrt(static_cast<double>(i * i)) + (p == 0 ? 1.0 : 0.0);  // p is odd: never 0
}
// [docs:end]

void lesson(const corelab::LessonOptions& opt) {
    const auto tasks = opt.integer<std::size_t>("tasks");
    const auto x = opt.integer<std::uint64_t>("loop-size");
    corelab::check_lesson_memory("tasks", tasks, {.bytes_per_element = 8 * sizeof(double)},  // ~8 result vectors
                                 "lesson 06 with " + std::to_string(tasks) + " tasks (their results)");
    corelab::Report report(opt, std::cout);
    const unsigned cpus = corelab::usable_cpus();
    report.say("Lesson 06: f(i) for " + std::to_string(tasks) + " tasks, each " + std::to_string(x * (x - 1) / 2) +
               " multiplications, on " + std::to_string(cpus) + " CPUs (notebook In[10]-In[13])\n");

    // the notebook's f as written: does the compiler keep its unused loops?
    corelab::Stopwatch watch;
    const double naive = f_naive(tasks - 1, x), naive_seconds = watch.seconds();

    // the baseline: the notebook's for loop
    // [docs:serial]
    const auto serial = corelab::best_of(opt.repeat, [&] {
        std::vector<double> out(tasks);
        for (std::size_t i = 0; i < tasks; ++i) out[i] = f(i, x);
        return out;
    });
    // [docs:end]
    report.baseline("serial_loop", serial, sum(serial.value));
    report.add_uncompared("f_call", serial.per(double(tasks)), std::nullopt);  // one call of f, from each run
    report.add_uncompared("f_naive", naive_seconds, naive);

    // the notebook's Parallel(n_jobs=...)(delayed(f)(i) for i in range(n)), checked against the loop;
    // with reuse, a pool: the first call forks the workers, the timed calls after it find them waiting
    // [docs:parallel]
    const auto batch = opt.integer<std::size_t>("batch-size");  // 0: auto
    const int verbose = opt.integer<int>("verbose");
    const auto add = [&](const std::string& name, int n_jobs, Backend backend, bool reuse = false) {
        corelab::Parallel par(
            {.n_jobs = n_jobs, .backend = backend, .batch_size = batch, .verbose = verbose, .reuse = reuse});
        const auto call = [&] { return par.map([x](std::size_t i) { return f(i, x); }, corelab::range(tasks)); };
        if (reuse) call();  // [x], by value: a pool worker, forked at this call, sees no later change to memory
        const auto run = corelab::best_of(opt.repeat, call);
        if (run.value != serial.value) throw corelab::Error(par.name() + " gave results that differ from the loop's");
        report.add(name, run, sum(run.value)).workers = corelab::resolve_n_jobs(n_jobs, cpus);
    };
    // [docs:end]

    // --jobs N [--backend B]: that configuration alone beside the loop
    if (opt.given("jobs")) {
        const auto jobs = opt.integer<int>("jobs");
        const std::string& backend = opt.word("backend");  // processes or threads
        add(backend + "_" + std::to_string(corelab::resolve_n_jobs(jobs, cpus)), jobs, corelab::parse_backend(backend));
        report.print();
        return;
    }

    // the notebook's cells; with --sweep, both backends for each n_jobs
    add("processes_2", 2, Backend::processes);
    add("processes_2_reused", 2, Backend::processes, true);  // the same map() again on one Parallel
    add("threads_2", 2, Backend::threads);
    add("processes_6", 6, Backend::processes);
    add("all_cores", -1, Backend::processes);
    for (const unsigned k : opt.sweep) {
        for (Backend b : {Backend::processes, Backend::threads}) {
            add("sweep_" + std::string(corelab::to_string(b)) + "_" + std::to_string(k), static_cast<int>(k), b);
        }
    }

    // the notebook's own cell, timed here in Python when it can be; then what the table says
    const double work = double(tasks) * double(x) * double(x - 1) / 2;  // multiplications in the whole loop
    corelab::notebook::report_python(report, corelab::notebook::run_cell("parallel_for", work, double(x), 0, tasks),
                                     "x");
    report.conclude(conclude);
    report.print();
}

}  // namespace

int main(int argc, char** argv) {
    corelab::Cli cli("lesson06_parallel_for",
                     "f(i) for i in range(tasks): a loop, then Parallel on processes and threads");
    cli.with_sweep().with_conclusion(conclude);
    cli.integer("tasks", 10, {}, "how many calls of f (the notebook: 10)");
    cli.integer("loop-size", 10'000,  // at 100000 a call takes seconds and the lesson minutes; beyond, hours
                {.max = 100'000,
                 .why_at_most = "10x the notebook's: f then does 5*10^9 multiplications a call, "
                                "and the lesson calls it some 200 times"},
                "x in f: x(x-1)/2 multiplications per call (the notebook's 10000)");
    cli.integer("jobs", std::nullopt,
                {.min = -1024, .max = 1024, .zero_refused = "means no worker: give 1, 2, ... or -1 for every CPU"},
                "run only this n_jobs beside the loop (joblib's: -1 = all CPUs; not 0)");
    cli.choice("backend", {"processes", "threads"}, "with --jobs: processes or threads");
    cli.integer("batch-size", 0, {.zero_word = "auto"}, "tasks per batch: auto or a count");
    cli.integer("verbose", 0, {.min = 0, .max = 1'000'000}, "joblib's progress lines on stderr: 0 (none) or more");
    return corelab::run_lesson(argc, argv, cli, lesson);
}
