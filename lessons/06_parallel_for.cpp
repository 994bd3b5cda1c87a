// Lesson 06 — a parallel for-loop: joblib.Parallel for C++.
//
// Mirrors notebook cells In[10]-In[13]: a CPU-bound f(i) called for i in
// range(10), in a plain loop (21.7 s there), with Parallel(n_jobs=2) on
// processes (11.0 s), with prefer="threads" (19.1 s: the GIL) and with
// n_jobs=6 (7.6 s, on 4 cores / 8 hardware threads).
// Question: how much faster do n workers make independent tasks, on processes
// and on threads, and where does the curve flatten?
//
// Run it:  ./course lesson 6          (or --tasks 20 --jobs -1 --backend threads --verbose 10)
// You should see: processes_2 and threads_2 both about 2x faster than
// serial_loop on 2 cores; processes_6 and all_cores no faster than 2 workers
// here (2 cores); the speed-up table flatten at the core count.
#include <algorithm>  // std::max
#include <cmath>      // std::sqrt
#include <cstdint>    // std::uint64_t
#include <cstdio>     // std::snprintf
#include <iostream>   // std::cout
#include <optional>   // std::optional
#include <string>     // std::string
#include <vector>     // std::vector

#include "corelab/cli.hpp"       // Cli, run_lesson, parse_count
#include "corelab/parallel.hpp"  // Parallel, ParallelOptions, range
#include "corelab/reduce.hpp"    // sum_loop
#include "corelab/report.hpp"    // best_of, Report, Stopwatch

namespace po = boost::program_options;
using corelab::Backend;

namespace {

// The notebook's figures (Intel i5-8265U, 4 cores / 8 threads): In[10]-In[13].
constexpr double nb_serial = 21.7, nb_processes = 11.0, nb_threads = 19.1, nb_six = 7.6;

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
        throw corelab::UsageError(e.what());  // a bad command line: exit 2 with the usage line
    }
    corelab::Report report(opt.format, std::cout);
    const unsigned cpus = corelab::usable_cpus();
    report.say("Lesson 06: f(i) for " + std::to_string(tasks) + " tasks, each " + std::to_string(x * (x - 1) / 2) +
               " multiplications, on " + std::to_string(cpus) + " CPUs (notebook In[10]-In[13])\n");

    // the notebook's f as written: the compiler deletes the unused loops
    corelab::Stopwatch watch;
    const double naive = f_naive(tasks - 1, x);
    const double naive_seconds = watch.seconds();
    char line[400];
    std::snprintf(line, sizeof line,
                  "The notebook's f ported word for word took %s for one call (result %g): p is never used,\n"
                  "so the optimiser removed both loops. f below keeps them (see the docs: \"keep it alive\").\n",
                  corelab::format_seconds(naive_seconds).c_str(), naive);
    report.say(line);

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

    report.baseline("serial_loop", serial.seconds, sum(serial.value));
    if (jobs) {
        const auto r = timed(*jobs, chosen, opt.repeat);
        report.add(std::string(corelab::to_string(chosen)) + "_" + std::to_string(corelab::resolve_n_jobs(*jobs, cpus)),
                   r.seconds, sum(r.value));
        report.print();
        return;
    }
    const auto p2 = timed(2, Backend::processes, opt.repeat);
    const auto t2 = timed(2, Backend::threads, opt.repeat);
    const auto p6 = timed(6, Backend::processes, opt.repeat);
    const auto all = timed(-1, Backend::processes, opt.repeat);

    if (opt.format == corelab::Format::table) {
        // the speed-up curve: n_jobs = 1 .. 2x the CPUs, both backends
        report.say("speed-up against serial_loop by n_jobs (one run each):");
        for (unsigned n = 1; n <= 2 * cpus; ++n) {
            for (Backend b : {Backend::processes, Backend::threads}) {
                const double s = serial.seconds / timed(static_cast<int>(n), b, 1).seconds;
                std::snprintf(line, sizeof line, "  n_jobs=%-2u %-9s %5.2fx  %s", n, corelab::to_string(b), s,
                              std::string(static_cast<std::size_t>(std::max(0.0, s * 10)), '#').c_str());
                report.say(line);
            }
        }
        std::snprintf(line, sizeof line,
                      "\nThe notebook (i5-8265U, Python, x = 10000): loop %.1f s, 2 processes %.1f s (%.2fx), threads "
                      "%.1f s (%.2fx: the GIL),\n6 jobs %.1f s (%.2fx: 4 cores with 2 hardware threads each). Here "
                      "(C++, x = %llu): loop %s, 2 processes %.2fx, 2 threads %.2fx.",
                      nb_serial, nb_processes, nb_serial / nb_processes, nb_threads, nb_serial / nb_threads, nb_six,
                      nb_serial / nb_six, static_cast<unsigned long long>(x),
                      corelab::format_seconds(serial.seconds).c_str(), serial.seconds / p2.seconds,
                      serial.seconds / t2.seconds);
        report.say(line);
        report.say(
            "Threads scale like processes in C++: no interpreter lock. More workers than CPUs (processes_6) cannot\n"
            "run more tasks at once than there are CPUs: the extra workers take turns on the same cores. The\n"
            "notebook's 6 jobs beat 2 because its machine had 8 hardware threads; 6 jobs on 2 CPUs only add\n"
            "switching, and with 10 tasks on 6 workers the last round leaves CPUs idle.\n");
    }
    report.add("processes_2", p2.seconds, sum(p2.value));
    report.add("threads_2", t2.seconds, sum(t2.value));
    report.add("processes_6", p6.seconds, sum(p6.value));
    report.add("all_cores", all.seconds, sum(all.value));
    report.print();
}

}  // namespace

int main(int argc, char** argv) {
    corelab::Cli cli("lesson06_parallel_for",
                     "f(i) for i in range(tasks): a loop, then Parallel on processes and threads");
    cli.add_options()("tasks", po::value<std::string>()->default_value("10"), "how many calls of f (the notebook: 10)")(
        "loop-size", po::value<std::string>()->default_value("10000"),
        "x in f: x(x-1)/2 multiplications per call (the notebook's 10000)")(
        "jobs", po::value<std::string>(), "run only this n_jobs beside the loop (joblib's: -1 = all CPUs; not 0)")(
        "backend", po::value<std::string>()->default_value("processes"), "with --jobs: processes or threads")(
        "batch-size", po::value<std::string>()->default_value("auto"), "tasks per batch: auto or a count")(
        "verbose", po::value<std::string>()->default_value("0"), "joblib's progress lines on stderr: 0 (none) or more");
    return corelab::run_lesson(argc, argv, cli, lesson);
}
