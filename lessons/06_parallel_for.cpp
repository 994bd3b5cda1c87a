// Lesson 06 — a parallel for-loop: joblib.Parallel for C++.
//
// Mirrors notebook cells In[10]-In[13]: a CPU-bound f(i) called for i in
// range(10), in a plain loop (21.7 s there), with Parallel(n_jobs=2) on
// processes (11.0 s), with prefer="threads" (19.1 s: the GIL) and with
// n_jobs=6 (7.6 s, on 4 cores / 8 hardware threads).
// Question: how much faster do n workers make independent tasks, on processes
// and on threads, and where does the curve flatten?
//
// Run it:  ./course lesson 6          (or --tasks 20 --jobs -1 --backend threads --verbose 10, --sweep)
// You should see: processes_2 and threads_2 both about 2x faster than
// serial_loop on a quiet 2-core machine; processes_6 and all_cores no faster
// than 2 workers there; with --sweep, the speed-up flatten at the core count.
#include <cmath>     // std::sqrt
#include <cstdint>   // std::uint64_t
#include <iostream>  // std::cout
#include <optional>  // std::optional
#include <string>    // std::string
#include <vector>    // std::vector

#include "corelab/cli.hpp"       // Cli, run_lesson, parse_count
#include "corelab/notebook.hpp"  // run_cell: the notebook's cells timed here; the laptop's figures
#include "corelab/parallel.hpp"  // Parallel, ParallelOptions, range
#include "corelab/reduce.hpp"    // sum_loop
#include "corelab/report.hpp"    // best_of, Report, Stopwatch

namespace po = boost::program_options;
using corelab::Backend;

namespace {

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

// A row's result: the sum of the task results (f(i) = i, so 0 + 1 + ... + tasks-1).
double sum(const std::vector<double>& v) {
    return corelab::sum_loop(v).sum;
}

// What the table says: chosen from its numbers (tests feed it recorded tables).
std::vector<std::string> conclude(const corelab::Table& t) {
    using corelab::format_seconds, corelab::format_speedup, corelab::notebook::f_loop_seconds;
    const double naive = t.seconds("f_naive"), call = t.seconds("f_call");
    std::vector<std::string> said{
        "The notebook's f ported word for word took " + format_seconds(naive) + " for one call, f " +
        format_seconds(call) +
        (naive < call / 10 ? ": p is never used, so the optimiser removed both loops of the first (f keeps them)."
                           : ": this build kept the loops of both (an unoptimised build?).")};
    const corelab::Row* p2 = t.find("processes_2");
    const corelab::Row* t2 = t.find("threads_2");
    if (p2 != nullptr) {
        said.push_back(corelab::parallel_verdict(t, "processes_2", 2, "2 processes",
                                                 "each call forks and reaps its workers, which costs milliseconds.",
                                                 "forking the workers cost more than they saved."));
    }
    if (t2 != nullptr) {
        said.push_back(corelab::parallel_verdict(t, "threads_2", 2, "2 threads",
                                                 "the tasks end unevenly, or another program took a CPU.",
                                                 "the tasks are too short to share out."));
    }
    if (p2 != nullptr && t2 != nullptr && !t.busy()) {
        const double ps = t.speedup("processes_2"), ts = t.speedup("threads_2");
        said.push_back(ts > 1.1 && ts >= 0.85 * ps
                           ? "Threads scaled like processes (" + format_speedup(ts) + " and " + format_speedup(ps) +
                                 "): C++ has no interpreter lock. The notebook's threads did not (the GIL)."
                           : "Threads gained " + format_speedup(ts) + " against the processes' " + format_speedup(ps) +
                                 ": on this run the threads did not get two CPUs to themselves.");
    }
    if (const corelab::Row* p6 = t.find("processes_6"); p6 != nullptr && p2 != nullptr && !t.busy()) {
        said.push_back(t.load.cpus < 6
                           ? "processes_6 (6 workers on " + std::to_string(t.load.cpus) + " CPUs) gave " +
                                 format_speedup(t.speedup("processes_6")) +
                                 ": workers beyond the CPUs take turns on them, and 10 tasks on 6 end unevenly."
                           : "processes_6 gave " + format_speedup(t.speedup("processes_6")) + ": " +
                                 std::to_string(t.load.cpus) + " CPUs ran the 6 workers at once.");
    }
    std::string nb = "The notebook (its laptop, Python, x = 10000): loop 21.7 s, 2 processes " +
                     format_speedup(f_loop_seconds / corelab::notebook::f_processes_2_seconds) + ", 2 threads " +
                     format_speedup(f_loop_seconds / corelab::notebook::f_threads_2_seconds) + " (the GIL), 6 jobs " +
                     format_speedup(f_loop_seconds / corelab::notebook::f_jobs_6_seconds) + " (4 cores, 8 threads).";
    if (t.find("python_threads_2") != nullptr) {
        const double loop = t.seconds("python_loop");
        nb += "\nIts cell here: 2 processes " + format_speedup(loop / t.seconds("python_processes_2")) +
              ", 2 threads " + format_speedup(loop / t.seconds("python_threads_2")) + " over its own loop.";
    }
    said.push_back(nb);
    for (const char* backend : {"sweep_processes_", "sweep_threads_"}) {
        if (auto sweep = corelab::sweep_summary(t, backend); !sweep.empty()) said.push_back(sweep);
    }
    return said;
}

void lesson(const corelab::LessonOptions& opt) {
    const auto& ex = opt.extra;
    const std::size_t tasks = corelab::parse_count(ex["tasks"].as<std::string>(), "tasks");
    const std::uint64_t x = corelab::parse_count(ex["loop-size"].as<std::string>(), "loop-size");
    // a call of f does x(x-1)/2 dependent multiplications (~1 ns each) and the lesson makes some 200
    // calls: at 100000 a call takes seconds and the lesson minutes; beyond, it would run for hours
    if (x > 100'000) {
        throw corelab::UsageError(
            "--loop-size must be at most 100000 (10x the notebook's): f then does 5*10^9 "
            "multiplications a call, and the lesson calls it some 200 times");
    }
    // the results of the loop and of every row, 8 bytes a task, about 8 vectors at once
    corelab::check_lesson_memory("tasks", tasks, {.bytes_per_element = 8 * sizeof(double)},
                                 "lesson 06 with " + std::to_string(tasks) + " tasks (their results)");
    const std::string batch_text = ex["batch-size"].as<std::string>();
    const std::size_t batch = batch_text == "auto" ? 0 : corelab::parse_count(batch_text, "batch-size");
    const int verbose = static_cast<int>(corelab::parse_count(ex["verbose"].as<std::string>(), "verbose", true));
    Backend chosen = Backend::processes;  // --backend and --jobs, read by the library's parsers
    std::optional<int> jobs;
    try {
        chosen = corelab::parse_backend(ex["backend"].as<std::string>());
        if (ex.count("jobs") != 0) jobs = corelab::parse_n_jobs(ex["jobs"].as<std::string>());
    } catch (const corelab::Error& e) {
        // a bad command line: exit 2 with the usage line
        throw corelab::UsageError((e.about() == corelab::About::backend ? "--backend: " : "--jobs: ") +
                                  std::string(e.what()));
    }
    corelab::Report report(opt, std::cout);
    const unsigned cpus = corelab::usable_cpus();
    report.say("Lesson 06: f(i) for " + std::to_string(tasks) + " tasks, each " + std::to_string(x * (x - 1) / 2) +
               " multiplications, on " + std::to_string(cpus) + " CPUs (notebook In[10]-In[13])\n");

    // the notebook's f as written: does the compiler keep its unused loops?
    corelab::Stopwatch watch;
    const double naive = f_naive(tasks - 1, x);
    const double naive_seconds = watch.seconds();

    // the baseline: the notebook's for loop
    // [docs:serial]
    const auto serial = corelab::best_of(opt.repeat, [&] {
        std::vector<double> out(tasks);
        for (std::size_t i = 0; i < tasks; ++i) out[i] = f(i, x);
        return out;
    });
    // [docs:end]

    // the notebook's Parallel(n_jobs=...)(delayed(f)(i) for i in range(n))
    // [docs:parallel]
    auto timed = [&](int n_jobs, Backend backend, int repeat) {
        corelab::Parallel par({.n_jobs = n_jobs, .backend = backend, .batch_size = batch, .verbose = verbose});
        auto run = corelab::best_of(
            repeat, [&] { return par.map([x](std::size_t i) { return f(i, x); }, corelab::range(tasks)); });
        if (run.value != serial.value) throw corelab::Error(par.name() + " gave results that differ from the loop's");
        return run;
    };
    // [docs:end]

    report.baseline("serial_loop", serial, sum(serial.value));
    corelab::Timing call{serial.seconds / double(tasks), {}};  // one call of f, from each run of the loop
    for (double s : serial.runs) call.runs.push_back(s / double(tasks));
    report.add_uncompared("f_call", call, std::nullopt);
    report.add_uncompared("f_naive", naive_seconds, naive);
    const auto add = [&](const std::string& name, int n_jobs, Backend backend) {
        const auto r = timed(n_jobs, backend, opt.repeat);
        report.add(name, r, sum(r.value)).workers = corelab::resolve_n_jobs(n_jobs, cpus);
    };
    if (jobs) {
        add(std::string(corelab::to_string(chosen)) + "_" + std::to_string(corelab::resolve_n_jobs(*jobs, cpus)), *jobs,
            chosen);
    } else {  // the notebook's cells; with --sweep, both backends for each n_jobs
        add("processes_2", 2, Backend::processes);
        add("threads_2", 2, Backend::threads);
        add("processes_6", 6, Backend::processes);
        add("all_cores", -1, Backend::processes);
        for (const unsigned k : opt.sweep) {
            for (Backend b : {Backend::processes, Backend::threads}) {
                add("sweep_" + std::string(corelab::to_string(b)) + "_" + std::to_string(k), static_cast<int>(k), b);
            }
        }
    }
    if (!jobs) {
        const double work = double(tasks) * double(x) * double(x - 1) / 2;  // multiplications in the whole loop
        corelab::notebook::report_python(report, corelab::notebook::run_cell("parallel_for", work, double(x), 0, tasks),
                                         "x");
        report.conclude(conclude);
    }
    report.print();
}

}  // namespace

int main(int argc, char** argv) {
    corelab::Cli cli("lesson06_parallel_for",
                     "f(i) for i in range(tasks): a loop, then Parallel on processes and threads");
    cli.with_sweep().with_conclusion(conclude);
    cli.add_options()("tasks", po::value<std::string>()->default_value("10"), "how many calls of f (the notebook: 10)")(
        "loop-size", po::value<std::string>()->default_value("10000"),
        "x in f: x(x-1)/2 multiplications per call (the notebook's 10000)")(
        "jobs", po::value<std::string>(), "run only this n_jobs beside the loop (joblib's: -1 = all CPUs; not 0)")(
        "backend", po::value<std::string>()->default_value("processes"), "with --jobs: processes or threads")(
        "batch-size", po::value<std::string>()->default_value("auto"), "tasks per batch: auto or a count")(
        "verbose", po::value<std::string>()->default_value("0"), "joblib's progress lines on stderr: 0 (none) or more");
    return corelab::run_lesson(argc, argv, cli, lesson);
}
