// Exercise 06.1: a batch size that makes tiny tasks worth running in parallel.
#pragma once
#include <cstddef>  // std::size_t

/// The batch size for `tasks` tiny tasks (a few nanoseconds each) run with
/// corelab::Parallel on `workers` threads:
/// `Parallel par({.n_jobs = workers, .backend = Backend::threads, .batch_size = choose_batch_size(tasks, workers)})`.
/// Must be at least 1, and leave every worker at least 4 batches to take
/// (batch * 4 * workers <= tasks) whenever tasks >= 4 * workers, so that the
/// work still spreads. Within that, large enough that the cost of claiming a
/// batch vanishes: at least 100 tasks per batch whenever tasks >= 1000 * workers
/// (at most one claim per 100 tasks).
std::size_t choose_batch_size(std::size_t tasks, unsigned workers);
