// Exercise 06.2 — Parallel::map, and what it throws when a task throws (README.md).
#include <cmath>                 // std::sqrt
#include <corelab/parallel.hpp>  // Parallel, ParallelOptions, TaskError

#include "exercise.hpp"

std::vector<double> parallel_sqrt(std::span<const std::size_t> xs, int n_jobs, corelab::Backend b) {
    corelab::Parallel par({.n_jobs = n_jobs, .backend = b});
    // map() returns the results in input order, whichever worker ran each task
    return par.map([](std::size_t x) { return std::sqrt(static_cast<double>(x)); }, xs);
}

std::optional<std::size_t> failing_task(const std::vector<std::function<double()>>& tasks, int n_jobs,
                                        corelab::Backend b) {
    corelab::Parallel par({.n_jobs = n_jobs, .backend = b});
    try {
        par.map([&tasks](std::size_t i) { return tasks[i](); }, corelab::range(tasks.size()));
    } catch (const corelab::TaskError& e) {
        // map() has already stopped every worker (processes: killed and reaped)
        return e.task();
    }
    return std::nullopt;
}
