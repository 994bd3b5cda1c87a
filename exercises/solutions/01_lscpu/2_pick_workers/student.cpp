// Exercise 01.2 — pick a worker count from a CpuInfo (README.md).
#include "exercise.hpp"

unsigned pick_workers(const corelab::CpuInfo& info, Work work) {
    const unsigned logical = info.logical_cpus.value_or(info.hardware_concurrency);
    if (work == Work::wait) return logical > 0 ? 2 * logical : 2;
    // Two hardware threads of one core share its adders: one worker per core.
    if (const auto cores = info.physical_cores(); cores && *cores > 0) return *cores;
    return logical > 0 ? logical : 1;
}
