// Checker of exercise 01.2: recorded machines, then facts removed one by one.
#include "check.hpp"
#include "exercise.hpp"

namespace {
void expect_workers(const corelab::CpuInfo& info, Work work, unsigned want, const char* what) {
    const unsigned got = pick_workers(info, work);
    check::expect(got == want, check::str(what, ": expected ", want, " workers for ",
                                          work == Work::compute ? "computing" : "waiting", ", got ", got));
}
}  // namespace

void run_check() {
    const std::filesystem::path data = CORELAB_TEST_DATA "/cpu";
    auto laptop = corelab::read_cpu_info(data / "i5-8265U");
    laptop.hardware_concurrency = 3;  // pretend we run elsewhere: the recorded facts must win
    expect_workers(laptop, Work::compute, 4, "the i5-8265U (4 cores, 8 logical CPUs)");
    expect_workers(laptop, Work::wait, 16, "the i5-8265U (4 cores, 8 logical CPUs)");
    const auto server = corelab::read_cpu_info(data / "dual-socket");
    expect_workers(server, Work::compute, 16, "the dual-socket server (2 x 8 cores, 32 logical CPUs)");

    corelab::CpuInfo no_topology = laptop;  // a VM that hides its sockets
    no_topology.sockets.reset();
    expect_workers(no_topology, Work::compute, 8, "8 logical CPUs, cores unknown");
    corelab::CpuInfo only_boost;
    only_boost.hardware_concurrency = 6;
    expect_workers(only_boost, Work::compute, 6, "nothing known but hardware_concurrency 6");
    expect_workers(only_boost, Work::wait, 12, "nothing known but hardware_concurrency 6");
    const corelab::CpuInfo nothing;
    expect_workers(nothing, Work::compute, 1, "nothing known at all");
    expect_workers(nothing, Work::wait, 2, "nothing known at all");

    const auto here = corelab::read_cpu_info("/");
    check::note(check::str("this machine: ", pick_workers(here, Work::compute), " workers to compute, ",
                           pick_workers(here, Work::wait), " to wait"));
}
