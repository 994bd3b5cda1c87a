// Exercise 06.1 — a batch size for tiny tasks (README.md).
#include <algorithm>             // std::max
#include <corelab/parallel.hpp>  // Parallel, ParallelOptions::batch_size

#include "exercise.hpp"

std::size_t choose_batch_size(std::size_t tasks, unsigned workers) {
    // 8 batches per worker: a claim per thousands of tasks costs nothing, and a
    // worker that finishes early still finds batches to take (8 >= 4)
    const std::size_t per_worker = 8;
    return std::max<std::size_t>(1, tasks / (per_worker * std::max(1u, workers)));
}
