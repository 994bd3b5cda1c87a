// Exercise 03.2 — from two halves to any number of workers (README.md).
#include <corelab/process_workers.hpp>  // ProcessWorkers: the notebook's Process

#include "exercise.hpp"

std::vector<corelab::Partial> process_sums(std::span<const double> data, unsigned workers) {
    corelab::ProcessWorkers processes(workers);
    // chunk() gives part k: sizes differ by at most one, every element in exactly one part
    return processes.run([&](unsigned k) { return corelab::sum_loop(corelab::chunk(data, k, workers)); });
}
