// Exercise 04.1: threads that add into shared accumulators without false sharing.
#pragma once
#include <corelab/reduce.hpp>  // Partial
#include <functional>          // std::function
#include <span>                // std::span
#include <vector>              // std::vector

/// Called once by each worker thread, before it adds anything, with its index
/// and the address of the Partial it adds into as it goes.
using Observe = std::function<void(unsigned worker, const corelab::Partial* accumulator)>;

/// Starts `threads` threads (corelab::ThreadWorkers or boost::thread); thread
/// k adds each element of corelab::chunk(data, k, threads), in order, into an
/// accumulator that lives in memory shared by all threads (like the
/// notebook's shared list), with no two accumulators on one cache line.
/// Returns the accumulators in worker order, after every thread has finished.
std::vector<corelab::Partial> shared_sums(std::span<const double> data, unsigned threads, const Observe& observe);
