// Lesson 03 — the mean of 100 million numbers in two processes.
//
// Mirrors notebook cell In[5]: two `Process`es each compute the mean of half of `d` and `put` it in a `Queue`;
// the parent joins them and averages (12.7 s there, against 25.5 s for one loop).
// Question: what do processes cost, and how should the data reach them: by fork, a named segment, or the queue?
//
// Run it:  ./course lesson 3          (or --workers 4 --n 1000000 --format csv, --sweep)
// You should see: on a quiet machine two processes up to ~1.8x faster than one loop, the 800 MB parent forked in
// about a millisecond (its data is in 2 MB pages), few page faults for inherited data, thousands for the named
// segment, and the copy through the queue far slower than the loop.
#include <cstring>   // std::memcpy
#include <iostream>  // std::cout
#include <string>    // std::string
#include <vector>    // std::vector

#include "03_two_process_mean.conclude.hpp"  // conclude: what the table says, chosen from its numbers
#include "03_two_process_mean.costs.hpp"     // Block, check_lesson_peak, ChildReport, ChildCosts
#include "corelab/cli.hpp"                   // Cli, run_lesson: the shared command line
#include "corelab/dataset.hpp"               // make_uniform: the notebook's np.random.rand(n)
#include "corelab/ipc/message_queue.hpp"     // MessageQueue: the notebook's Queue
#include "corelab/ipc/shared_array.hpp"      // SharedArray: a named shared-memory segment
#include "corelab/notebook.hpp"              // run_cell: the notebook's cell timed here
#include "corelab/process_usage.hpp"         // process_usage: the faults and pages each child paid for
#include "corelab/process_workers.hpp"       // ProcessWorkers: the notebook's Process
#include "corelab/reduce.hpp"                // sum_loop, chunk, combine, Partial
#include "corelab/report.hpp"                // best_of, Report, format

namespace {

using corelab::chunk, corelab::Partial, corelab::sum_loop;

void lesson(const corelab::LessonOptions& opt) {
    const unsigned w = opt.workers;
    check_lesson_peak(opt);  // the data three times over, at once: refused at once when it does not fit
    corelab::Report report(opt, std::cout);
    report.say("Lesson 03: the mean of " + std::to_string(opt.n) + " numbers in " + std::to_string(w) +
               " processes (notebook In[5])\nMemory: " + corelab::describe_huge_pages() + ".\n");

    // generate the data and time the serial loop: the baseline of lesson 02
    const auto d = corelab::make_uniform(opt.n, opt.seed);
    const std::span<const double> data = d;
    const auto serial = corelab::best_of(opt.repeat, [&] { return sum_loop(data); });

    // the notebook's cell: fork the workers, each sums its part of the inherited data
    // [docs:two_process]
    corelab::ProcessWorkers workers(w);
    const auto two = corelab::best_of(opt.repeat, [&] {
        const std::vector<Partial> parts = workers.run([&](unsigned k) { return sum_loop(chunk(data, k, w)); });
        return corelab::combine(parts);  // sums and counts add up exactly; means would not
    });
    // [docs:end]

    // what the OS charges for a process that does nothing, forked from this one
    corelab::ProcessWorkers one(1);
    const auto spawn = corelab::best_of(opt.repeat, [&] { return one.run([](unsigned) { return 0; })[0]; });

    // three ways to give the data to the children, each child reporting its costs
    // [docs:share_fork]
    const auto by_fork = corelab::best_of(opt.repeat, [&] {
        return workers.run(
            [&](unsigned k) { return ChildReport{sum_loop(chunk(data, k, w)), corelab::process_usage()}; });
    });
    // [docs:end]
    // [docs:share_named_shm]
    auto segment = corelab::ipc::SharedArray<double>::create(opt.n, "dataset");
    std::memcpy(segment.data(), d.data(), opt.n * sizeof(double));  // set-up, not timed
    const auto by_shm = corelab::best_of(opt.repeat, [&] {
        return workers.run([&](unsigned k) {
            const auto mine = corelab::ipc::SharedArray<double>::open(segment.name());  // as an exec'd worker must
            return ChildReport{sum_loop(chunk(mine.span(), k, w)), corelab::process_usage()};
        });
    });
    segment = corelab::ipc::SharedArray<double>::create(0, "dataset");  // frees the copy
    // [docs:end]
    // [docs:copy_through_queue]
    const auto by_copy = corelab::best_of(1, [&] {              // one run: it takes seconds
        std::vector<corelab::ipc::MessageQueue<Block>> queues;  // one per worker, filled before the fork
        for (unsigned k = 0; k < w; ++k) {
            const auto part = chunk(data, k, w);
            queues.push_back(corelab::ipc::MessageQueue<Block>::create(part.size() / block_values + 1, "data"));
            for (std::size_t at = 0; at < part.size(); at += block_values) {
                Block b{std::min(block_values, part.size() - at), {}};
                std::memcpy(b.values, part.data() + at, b.count * sizeof(double));
                queues[k].send(b);
            }
        }
        return workers.run([&](unsigned k) {
            corelab::HugeArray<double> mine(chunk(data, k, w).size());  // the child's own copy
            for (std::size_t at = 0; at < mine.size();) {
                const auto b = queues[k].receive_for(std::chrono::seconds(10));
                if (!b) throw corelab::Error("a block of the data did not arrive");
                std::memcpy(mine.data() + at, b->values, b->count * sizeof(double));
                at += b->count;
            }
            return ChildReport{sum_loop(mine), corelab::process_usage()};
        });
    });
    // [docs:end]

    // the table: every result checked against the serial loop (only rounding may differ)
    const auto add = [&](const char* row, const corelab::Timing& time, const Partial& total) {
        corelab::check_within_rounding(row, total, "serial_loop", serial.value);
        report.add(row, time, total.mean());
    };
    const double seg = static_cast<double>(opt.n * sizeof(double));
    ChildCosts costs;  // and what the children of each sharing row cost
    report.baseline("serial_loop", serial, serial.value.mean());
    add("two_process", two, two.value);
    report.add_uncompared("process_spawn", spawn, std::nullopt);
    add("share_fork", by_fork, costs.add("share_fork", by_fork.value, 0));
    add("share_named_shm", by_shm, costs.add("share_named_shm", by_shm.value, seg));
    add("copy_through_queue", by_copy, costs.add("copy_through_queue", by_copy.value, seg));
    report.say("every " + std::to_string(w) + "-process mean agrees with serial_loop within 2(n-1)eps\n" +
               costs.text());

    // the notebook's averaging mistake: halves of unequal size, a mean of means
    if (opt.n >= 3) {
        // [docs:mistake]
        const std::size_t n1 = opt.n / 2;                                 // n1 = math.floor(n/2)
        const Partial first = sum_loop(data.first(n1 + 1));               // d[0..n1]: n1+1 numbers
        const Partial second = sum_loop(data.subspan(n1 + 1));            // d[n1+1..n-1]: n-n1-1 numbers
        const double mean_of_means = (first.mean() + second.mean()) / 2;  // the notebook's m /= 2
        const double true_mean = corelab::combine(first, second).mean();  // sum / count: right weights
        // [docs:end]
        report.say(corelab::format(
            "the notebook's halves hold %zu and %zu numbers: the mean of their means is %.17g,\nthe true mean %.17g "
            "(difference %.2g). A Partial adds sums and counts, so parts of any\nsize weigh right; averaging two "
            "means weighs unequal halves equally.\n",
            first.count, second.count, mean_of_means, true_mean, mean_of_means - true_mean));
    }
    // --sweep: the notebook's cell with 1, 2, ... processes; then the notebook's own cell in Python
    report.sweep(opt.sweep, opt.repeat, "sweep_processes_", [&](unsigned k) {
        const Partial p =
            corelab::combine(corelab::ProcessWorkers(k).run([&](unsigned i) { return sum_loop(chunk(data, i, k)); }));
        corelab::check_within_rounding("sweep_processes_" + std::to_string(k), p, "serial_loop", serial.value);
        return p.mean();
    });
    corelab::notebook::report_python(
        report, corelab::notebook::run_cell("two_process", double(opt.n), double(opt.n), opt.seed));
    report.conclude(conclude);
    report.print();
}

}  // namespace

int main(int argc, char** argv) {
    corelab::Cli cli("lesson03_two_process_mean", "the mean of n random numbers in forked worker processes");
    cli.with_workers(2, 16).with_sweep().with_conclusion(conclude);
    return corelab::run_lesson(argc, argv, cli, lesson);
}
