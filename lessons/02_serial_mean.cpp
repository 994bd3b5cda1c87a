// Lesson 02 — the mean of 100 million numbers on one core.
//
// Mirrors notebook cells In[3]-In[4]: `d = np.random.rand(n)` with
// n = 100,000,000, then `sum += d[i]` in a Python for loop (25.5 s there).
// Question: how long does the same loop take in C++, and what limits it?
//
// Run it:  ./course lesson 2          (or --n 1000000 --repeat 5 --format csv)
// You should see: the loop takes about a tenth of a second, hundreds of times
// less than Python's; a loop with 16 independent sums is faster still, until
// it reads memory as fast as the machine can deliver it. Both give the same
// mean (to ~1e-15). What the lesson concludes is chosen from its table.
#include <cmath>     // std::abs
#include <cstdio>    // std::snprintf
#include <iostream>  // std::cout
#include <limits>    // std::numeric_limits
#include <string>    // std::string
#include <vector>    // std::vector

#include "02_serial_mean.conclude.hpp"  // conclude: what the table says, chosen from its numbers
#include "corelab/cli.hpp"              // Cli, run_lesson: the shared command line
#include "corelab/dataset.hpp"          // make_uniform: the notebook's np.random.rand(n)
#include "corelab/huge_array.hpp"       // describe_huge_pages
#include "corelab/notebook.hpp"         // run_cell: the notebook's loop timed here; the laptop's figures
#include "corelab/reduce.hpp"           // sum_loop, sum_fast, Partial
#include "corelab/report.hpp"           // best_of, Report, Stopwatch

namespace {

void lesson(const corelab::LessonOptions& opt) {
    corelab::check_lesson_memory("n", opt.n, {.bytes_per_element = sizeof(double)},
                                 "lesson 02 at n = " + std::to_string(opt.n) + " (the data)");
    corelab::Report report(opt, std::cout);
    report.say("Lesson 02: the mean of " + std::to_string(opt.n) +
               " random numbers on one core (notebook In[3]-In[4])");
    report.say("Memory: " + corelab::describe_huge_pages() + ".\n");

    // generate the data: the notebook's d = np.random.rand(n)
    // [docs:generate]
    corelab::Stopwatch watch;
    const corelab::HugeArray<double> d = corelab::make_uniform(opt.n, opt.seed);
    const double generate_seconds = watch.seconds();
    // [docs:end]
    report.say("generated " + std::to_string(d.size()) + " doubles (" +
               std::to_string(d.size() * sizeof(double) / 1'000'000) + " MB) in " +
               corelab::format_seconds(generate_seconds) + " on all cores");

    // time the notebook's loop: one add after another
    // [docs:loop]
    const auto loop = corelab::best_of(opt.repeat, [&] { return corelab::sum_loop(d); });
    const double loop_mean = loop.value.mean();
    // [docs:end]

    // time the same sum with 16 independent accumulators
    // [docs:fast]
    const auto fast = corelab::best_of(opt.repeat, [&] { return corelab::sum_fast(d); });
    const double fast_mean = fast.value.mean();
    // [docs:end]

    // check that both agree: they add the same numbers in another order, so
    // only rounding differs. For n non-negative numbers each sum is within
    // (n-1)·eps·sum of the exact one, so the two means differ by at most
    // 2·(n-1)·eps relative to the mean.
    // [docs:verify]
    const double eps = std::numeric_limits<double>::epsilon();
    const double tolerance = 2.0 * static_cast<double>(opt.n - 1) * eps * std::abs(loop_mean);
    const double difference = std::abs(loop_mean - fast_mean);
    if (difference > tolerance) {
        throw corelab::Error("serial_fast disagrees with serial_loop by " + std::to_string(difference) +
                             ", more than rounding allows (" + std::to_string(tolerance) + ")");
    }
    // [docs:end]

    char line[200];
    std::snprintf(line, sizeof line, "both means agree: |%.17g - %.17g| = %.3g <= %.3g (rounding bound 2(n-1)eps)\n",
                  loop_mean, fast_mean, difference, tolerance);
    report.say(line);

    // the notebook's own cell, timed here when Python with numpy is installed
    const auto python = corelab::notebook::run_cell("mean_loop", double(opt.n), double(opt.n), opt.seed);

    // the table, and what it says
    report.bytes_per_row(double(opt.n * sizeof(double)));  // every row reads (or writes) the n numbers once
    report.add_uncompared("generate", generate_seconds, std::nullopt);
    report.baseline("serial_loop", loop, loop_mean);
    report.add("serial_fast", fast, fast_mean);
    corelab::notebook::report_python(report, python);
    report.conclude(conclude);
    report.print();
}

}  // namespace

int main(int argc, char** argv) {
    corelab::Cli cli("lesson02_serial_mean", "the mean of n random numbers with one loop on one core");
    cli.with_conclusion(conclude);
    return corelab::run_lesson(argc, argv, cli, lesson);
}
