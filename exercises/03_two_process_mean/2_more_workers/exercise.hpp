// Exercise 03.2: any number of process workers, not just two halves.
#pragma once
#include <corelab/reduce.hpp>  // Partial
#include <span>                // std::span
#include <vector>              // std::vector

/// The sum and count of each part of `data` split into `workers` parts with
/// corelab::chunk (part k: chunk(data, k, workers)), each computed with
/// corelab::sum_loop in its own forked worker. Returns them in worker order.
std::vector<corelab::Partial> process_sums(std::span<const double> data, unsigned workers);
