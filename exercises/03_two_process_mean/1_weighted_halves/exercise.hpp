// Exercise 03.1: the mean of two unequal parts, computed in two processes.
#pragma once
#include <cstddef>  // std::size_t
#include <span>     // std::span

/// The mean of `data`, computed by two forked workers (corelab::ProcessWorkers):
/// worker 0 takes data[0, split), worker 1 data[split, n). 0 < split < n.
double two_process_mean(std::span<const double> data, std::size_t split);
