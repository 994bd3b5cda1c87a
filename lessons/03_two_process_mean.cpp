// Lesson 03 — the mean of 100 million numbers in two processes.
//
// Mirrors notebook cell In[5]: two `Process`es each compute the mean of half of
// `d` and `put` it in a `Queue`; the parent joins them and averages (12.7 s
// there, against 25.5 s for one loop). Question: what do processes cost, and
// how should the data reach them: inherited by fork, through a named
// shared-memory segment, or copied through the queue?
//
// Run it:  ./course lesson 3          (or --workers 4 --n 1000000 --format csv, --sweep)
// You should see: on a quiet machine two processes up to ~1.8x faster than one
// loop, forking the 800 MB parent in about a millisecond (its data is in 2 MB
// pages), few page faults for inherited data, thousands for the named segment,
// and the copy through the queue far slower than the loop it feeds.
#include <cstdio>    // std::snprintf
#include <cstring>   // std::memcpy
#include <iostream>  // std::cout
#include <string>    // std::string
#include <vector>    // std::vector

#include "corelab/cli.hpp"                // Cli, run_lesson: the shared command line
#include "corelab/dataset.hpp"            // make_uniform: the notebook's np.random.rand(n)
#include "corelab/ipc/message_queue.hpp"  // MessageQueue: the notebook's Queue
#include "corelab/ipc/shared_array.hpp"   // SharedArray: a named shared-memory segment
#include "corelab/notebook.hpp"           // run_cell: the notebook's cell timed here
#include "corelab/process_usage.hpp"      // process_usage: the faults and pages each child paid for
#include "corelab/process_workers.hpp"    // ProcessWorkers: the notebook's Process
#include "corelab/reduce.hpp"             // sum_loop, chunk, combine, Partial
#include "corelab/report.hpp"             // best_of, Report

namespace {

using corelab::chunk;
using corelab::Partial;
using corelab::sum_loop;

// What a child of the sharing rows sends back: its part, and what the kernel counted for it.
struct ChildReport {
    Partial part;
    corelab::ProcessUsage usage;
};

// 64 KB of numbers: one message of the copy through the queue.
struct Block {
    std::size_t count;
    double values[8190];
};

// The children's parts added up, and a line of what they cost: page faults,
// memory added (their private pages plus `shared` bytes of segments), and
// resident memory as `top` adds it up (shared pages counted in every process).
Partial total(const std::vector<ChildReport>& children, const char* name, double shared, std::string& line) {
    Partial sum;
    long faults = 0;
    double added = shared, rss = static_cast<double>(corelab::process_usage().rss_bytes);
    for (const auto& c : children) {
        sum += c.part;
        faults += c.usage.minor_faults;
        added += static_cast<double>(c.usage.private_bytes);
        rss += static_cast<double>(c.usage.peak_rss_bytes);
    }
    char text[160];
    std::snprintf(text, sizeof text, "  %-20s %12ld %16.0f MB %16.0f MB\n", name,
                  faults / static_cast<long>(children.size()), added / 1e6, rss / 1e6);
    line += text;
    return sum;
}

// What the table says: chosen from its numbers (tests feed it recorded tables).
std::vector<std::string> conclude(const corelab::Table& t) {
    using corelab::format_seconds, corelab::format_speedup;
    const double serial = t.seconds("serial_loop"), spawn = t.seconds("process_spawn"), share = spawn / serial;
    std::vector<std::string> said{corelab::parallel_verdict(
        t, "two_process", t.workers, std::to_string(t.workers) + (t.workers == 1 ? " process" : " processes"),
        "forking, copying page tables and exiting cost time the loop does not pay.",
        "their fixed costs ate the gain.")};
    said.push_back("A fork and reap of this " + std::to_string(t.n * 8 / 1'000'000) + " MB process cost " +
                   format_seconds(spawn) + ", " + std::to_string(static_cast<int>(100 * share + 0.5)) +
                   "% of the loop's " + format_seconds(serial) +
                   (share < 0.05 ? ": small against the work." : ": large, so processes need a bigger n to pay."));
    said.push_back("Copying the data through the queue took " +
                   format_speedup(t.seconds("copy_through_queue") / t.seconds("share_fork")) +
                   " as long as inheriting it (share_fork).");
    std::string nb = "The notebook, on its laptop: 25.5 s for one Python loop, 12.7 s for two processes (2.00x).";
    if (t.find("python_two_process") != nullptr) {
        nb += " Its cell here: " + format_speedup(t.seconds("python_loop") / t.seconds("python_two_process")) +
              " from two Python processes.";
    }
    said.push_back(nb);
    if (auto sweep = corelab::sweep_summary(t, "sweep_processes_"); !sweep.empty()) said.push_back(sweep);
    return said;
}

void lesson(const corelab::LessonOptions& opt) {
    const unsigned w = opt.workers;
    // the peak, refused before anything is allocated when it does not fit: in copy_through_queue the
    // data, its copy in the queues (in /dev/shm; a block and Boost's header per 8190 numbers) and the
    // children's own copies, all at once
    const double queued = (sizeof(Block) + 72.0) / 8190;
    corelab::check_lesson_memory(
        "n", opt.n,
        {.bytes_per_element = 2 * sizeof(double) + queued, .shm_bytes_per_element = queued, .fixed_bytes = 200e3 * w},
        "lesson 03 at n = " + std::to_string(opt.n) + " (the data, its copy in the queues and the children's copies)");
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
            queues.push_back(corelab::ipc::MessageQueue<Block>::create(part.size() / 8190 + 1, "data"));
            for (std::size_t at = 0; at < part.size(); at += 8190) {
                Block b{std::min<std::size_t>(8190, part.size() - at), {}};
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

    // check every result against the serial loop: only rounding may differ
    std::string costs =
        "\nhow the data reached the children:\n"
        "  row                  faults/child   memory added     rss as top sums it\n";
    const double seg = static_cast<double>(opt.n * sizeof(double));
    const struct {
        const char* name;
        double seconds;
        Partial total;
    } rows[] = {{"two_process", two.seconds, two.value},
                {"share_fork", by_fork.seconds, total(by_fork.value, "share_fork", 0, costs)},
                {"share_named_shm", by_shm.seconds, total(by_shm.value, "share_named_shm", seg, costs)},
                {"copy_through_queue", by_copy.seconds, total(by_copy.value, "copy_through_queue", seg, costs)}};
    for (const auto& row : rows) {
        if (!corelab::same_within_rounding(row.total, serial.value)) {
            throw corelab::Error(std::string(row.name) + " disagrees with serial_loop by more than rounding allows");
        }
    }
    report.say("every " + std::to_string(w) + "-process mean agrees with serial_loop within 2(n-1)eps\n" + costs);

    // the notebook's averaging mistake: halves of unequal size, a mean of means
    if (opt.n >= 3) {
        // [docs:mistake]
        const std::size_t n1 = opt.n / 2;                                 // n1 = math.floor(n/2)
        const Partial first = sum_loop(data.first(n1 + 1));               // d[0..n1]: n1+1 numbers
        const Partial second = sum_loop(data.subspan(n1 + 1));            // d[n1+1..n-1]: n-n1-1 numbers
        const double mean_of_means = (first.mean() + second.mean()) / 2;  // the notebook's m /= 2
        const double true_mean = corelab::combine(first, second).mean();  // sum / count: right weights
        // [docs:end]
        char line[300];
        std::snprintf(line, sizeof line,
                      "the notebook's halves hold %zu and %zu numbers: the mean of their means is %.17g,\n"
                      "the true mean %.17g (difference %.2g). A Partial adds sums and counts, so parts of any\n"
                      "size weigh right; averaging two means weighs unequal halves equally.\n",
                      first.count, second.count, mean_of_means, true_mean, mean_of_means - true_mean);
        report.say(line);
    }
    report.baseline("serial_loop", serial, serial.value.mean());
    report.add("two_process", two, two.value.mean());
    report.add_uncompared("process_spawn", spawn, std::nullopt);
    report.add("share_fork", by_fork, rows[1].total.mean());
    report.add("share_named_shm", by_shm, rows[2].total.mean());
    report.add("copy_through_queue", by_copy, rows[3].total.mean());
    // --sweep: the notebook's cell with 1, 2, ... processes; then the notebook's own cell in Python
    report.sweep(opt.sweep, opt.repeat, "sweep_processes_", [&](unsigned k) {
        const Partial p =
            corelab::combine(corelab::ProcessWorkers(k).run([&](unsigned i) { return sum_loop(chunk(data, i, k)); }));
        if (!corelab::same_within_rounding(p, serial.value))
            throw corelab::Error("sweep_processes_" + std::to_string(k) + " disagrees");
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
