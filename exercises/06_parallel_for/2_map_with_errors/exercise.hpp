// Exercise 06.2: Parallel::map in place of a loop, and a task that throws.
#pragma once
#include <corelab/parallel.hpp>  // Backend
#include <cstddef>               // std::size_t
#include <functional>            // std::function
#include <optional>              // std::optional
#include <span>                  // std::span
#include <vector>                // std::vector

/// {sqrt(x) for x in xs}, in the order of xs, computed by
/// corelab::Parallel::map with n_jobs workers on backend b (the notebook's
/// `Parallel(n_jobs=...)(delayed(sqrt)(x) for x in xs)`).
std::vector<double> parallel_sqrt(std::span<const std::size_t> xs, int n_jobs, corelab::Backend b);

/// Runs every task with corelab::Parallel::map (n_jobs workers, backend b;
/// task i is tasks[i]()). Returns the index of the task that threw, taken from
/// the corelab::TaskError that map() throws, or std::nullopt when none threw.
/// Any other exception goes on to the caller.
std::optional<std::size_t> failing_task(const std::vector<std::function<double()>>& tasks, int n_jobs,
                                        corelab::Backend b);
