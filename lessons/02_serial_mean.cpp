// Lesson 02 — the mean of 100 million numbers on one core.
//
// Mirrors notebook cells In[3]-In[4]: `d = np.random.rand(n)` with
// n = 100,000,000, then `sum += d[i]` in a Python for loop (25.5 s there).
// Question: how long does the same loop take in C++, and what limits it?
//
// Run it:  ./course lesson 2          (or --n 1000000 --repeat 5 --format csv)
// You should see: the loop takes ~0.1 s, about 200x less than Python's; a
// loop with 16 independent sums is faster still, until it reads memory as
// fast as the machine can deliver it. Both give the same mean (to ~1e-15).
#include <cmath>     // std::abs
#include <cstdio>    // std::snprintf
#include <iostream>  // std::cout
#include <limits>    // std::numeric_limits
#include <string>    // std::string

#include "corelab/cli.hpp"         // Cli, run_lesson: the shared command line
#include "corelab/dataset.hpp"     // make_uniform: the notebook's np.random.rand(n)
#include "corelab/huge_array.hpp"  // describe_huge_pages
#include "corelab/reduce.hpp"      // sum_loop, sum_fast, Partial
#include "corelab/report.hpp"      // best_of, Report, Stopwatch

namespace {

constexpr double notebook_loop_seconds = 25.498;  // In[4] on an Intel i5-8265U

std::string gbps(std::size_t n, double seconds) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f GB/s", static_cast<double>(n * sizeof(double)) / seconds / 1e9);
    return text;
}

void lesson(const corelab::LessonOptions& opt) {
    corelab::check_lesson_memory("n", opt.n, {.bytes_per_element = sizeof(double)},
                                 "lesson 02 at n = " + std::to_string(opt.n) + " (the data)");
    corelab::Report report(opt.format, std::cout);
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
    report.say("serial_loop reads " + gbps(opt.n, loop.seconds) + ", serial_fast " + gbps(opt.n, fast.seconds) + ".");
    report.say(
        "Why the second is faster: in serial_loop every add needs the result of the one before, so the core\n"
        "waits for each add to finish (2-4 cycles, by CPU) before it starts the next: one dependency chain.\n"
        "serial_fast keeps 16 sums that do not depend on each other; the core overlaps their adds and the\n"
        "compiler packs them into vector instructions, so the loop runs until memory cannot deliver the\n"
        "numbers faster: its limit is the memory bandwidth (see ./course bench, row bandwidth_read), not the\n"
        "arithmetic. No -ffast-math is needed: the reordering is written in the code, so the compiler keeps\n"
        "IEEE rules and the result is reproducible.");
    if (opt.n == 100'000'000) {
        char nb[200];
        std::snprintf(nb, sizeof nb,
                      "\nThe notebook's Python loop took %.1f s for the same n: this machine's C++ loop is %.0fx "
                      "faster.",
                      notebook_loop_seconds, notebook_loop_seconds / loop.seconds);
        report.say(nb);
    } else {
        report.say("\nThe notebook's Python loop took 25.5 s for n = 100,000,000 (run with the default n to compare).");
    }

    report.add_uncompared("generate", generate_seconds, std::nullopt);
    report.baseline("serial_loop", loop.seconds, loop_mean);
    report.add("serial_fast", fast.seconds, fast_mean);
    report.print();
}

}  // namespace

int main(int argc, char** argv) {
    const corelab::Cli cli("lesson02_serial_mean", "the mean of n random numbers with one loop on one core");
    return corelab::run_lesson(argc, argv, cli, lesson);
}
