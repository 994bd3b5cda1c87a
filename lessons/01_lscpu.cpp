// Lesson 01 — how many workers can run at once on this machine?
//
// Mirrors notebook cell In[1]: `!lscpu`, which printed the laptop the notebook
// ran on (an Intel i5-8265U: 1 socket, 4 cores, 2 hyper-threads per core).
// Question: how many workers can run at once here, and how many of them have
// a core of their own?
//
// Run it:  ./course lesson 1          (or --format csv for the counts only)
// You should see: lscpu's summary, read from the same /proc and /sys files
// that lscpu reads (the values are the installed lscpu's, to the character);
// what those counts mean for the lessons ahead; and the notebook's laptop
// beside this machine. The lesson times nothing: --n, --seed and --repeat are
// accepted and ignored.
#include <algorithm>  // std::max
#include <iostream>   // std::cout
#include <optional>   // std::optional
#include <string>     // std::string
#include <vector>     // std::vector

#include "01_lscpu.conclude.hpp"  // conclude: what the table says, chosen from its numbers
#include "corelab/cli.hpp"        // Cli, run_lesson: the shared command line
#include "corelab/cpu_info.hpp"   // read_cpu_info, lscpu_lines: what lscpu reads
#include "corelab/report.hpp"     // Report: the table (or CSV) that ends the lesson

namespace {

std::string known(std::optional<unsigned> v) {
    return v ? std::to_string(*v) : "unknown";
}

std::optional<double> count(std::optional<unsigned> v) {
    return v ? std::optional<double>(*v) : std::nullopt;
}

// One line of the two-column comparison, aligned.
std::string side_by_side(const std::string& what, const std::string& notebook, const std::string& here) {
    auto pad = [](std::string s, std::size_t w) { return s.size() < w ? s + std::string(w - s.size(), ' ') : s; };
    return "  " + pad(what, 20) + pad(notebook, 22) + here;
}

void lesson(const corelab::LessonOptions& opt) {
    corelab::Report report(opt, std::cout);
    report.say("Lesson 01: how many workers can run at once here? (notebook In[1], !lscpu)\n");

    // read what the kernel says about the CPUs: the files lscpu reads
    // [docs:read]
    const corelab::CpuInfo cpu = corelab::read_cpu_info();
    const auto lines = corelab::lscpu_lines(cpu);
    // [docs:end]

    // print them as lscpu does: each label padded to one column
    // [docs:print]
    std::size_t width = 0;
    for (const auto& [label, value] : lines) width = std::max(width, label.size());
    for (const auto& [label, value] : lines) report.say(label + std::string(width + 1 - label.size(), ' ') + value);
    // [docs:end]

    // what the counts mean for the lessons ahead
    // [docs:meaning]
    const unsigned threads = cpu.logical_cpus.value_or(cpu.hardware_concurrency);
    const unsigned cores = cpu.physical_cores().value_or(cpu.physical_concurrency);
    const unsigned per_core = cpu.threads_per_core.value_or(threads / std::max(cores, 1u));
    // [docs:end]
    report.say("\nA program asks at run time: boost::thread::hardware_concurrency() = " +
               std::to_string(cpu.hardware_concurrency) +
               ", boost::thread::physical_concurrency() = " + std::to_string(cpu.physical_concurrency) + ".");

    // the notebook's laptop beside this one
    // [docs:compare]
    const std::string l3_here = cpu.l3 ? corelab::format_size(cpu.l3->bytes) : "unknown";
    report.say("\n" + side_by_side("", "notebook (i5-8265U)", "this machine"));
    report.say(side_by_side("hardware threads", "8", std::to_string(threads)));
    report.say(side_by_side("physical cores", "4", std::to_string(cores)));
    report.say(side_by_side("threads per core", "2", known(cpu.threads_per_core)));
    report.say(side_by_side("sockets", "1", known(cpu.sockets)));
    report.say(side_by_side("NUMA nodes", "1", known(cpu.numa_nodes)));
    report.say(side_by_side("L3 cache", "6 MiB", l3_here));
    // [docs:end]

    // the counts as rows: nothing is timed, so time is 0 and there is no speed-up
    // [docs:rows]
    report.add_uncompared("logical_cpus", 0.0, threads);
    report.add_uncompared("physical_cores", 0.0, cores);
    report.add_uncompared("threads_per_core", 0.0, per_core);
    report.add_uncompared("sockets", 0.0, count(cpu.sockets));
    report.add_uncompared("numa_nodes", 0.0, count(cpu.numa_nodes));
    report.add_uncompared("l3_cache_bytes", 0.0, cpu.l3 ? std::optional<double>(cpu.l3->bytes) : std::nullopt);
    report.conclude(conclude);
    report.print();
    // [docs:end]
}

}  // namespace

int main(int argc, char** argv) {
    corelab::Cli cli("lesson01_lscpu", "what this machine's CPUs offer parallel work: lscpu's summary, explained",
                     100'000'000);
    cli.with_conclusion(conclude);
    return corelab::run_lesson(argc, argv, cli, lesson);
}
