// Exercise 06.2 — Parallel::map, and what it throws when a task throws (README.md).
#include <cmath>                 // std::sqrt
#include <corelab/parallel.hpp>  // Parallel, ParallelOptions, TaskError

#include "exercise.hpp"

std::vector<double> parallel_sqrt(std::span<const std::size_t> xs, int n_jobs, corelab::Backend b) {
    // TODO(exercise): call std::sqrt on every x through corelab::Parallel::map,
    // with n_jobs workers on backend b. The results must keep the order of xs.
    (void)n_jobs;
    (void)b;
    return std::vector<double>(xs.size(), 0.0);
}

std::optional<std::size_t> failing_task(const std::vector<std::function<double()>>& tasks, int n_jobs,
                                        corelab::Backend b) {
    // TODO(exercise): run task i for every i with Parallel::map; when a task
    // throws, catch the corelab::TaskError and return which task it was.
    (void)tasks;
    (void)n_jobs;
    (void)b;
    return std::nullopt;
}
