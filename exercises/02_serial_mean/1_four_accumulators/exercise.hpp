// Exercise 02.1: a sum with four independent accumulators.
#pragma once
#include <corelab/reduce.hpp>  // Partial
#include <span>                // std::span

/// The sum and count of `data` added in this exact order: element i goes to
/// accumulator i % 4 (acc[0..3], all starting at 0.0), and the result is
/// (acc[0] + acc[1]) + (acc[2] + acc[3]).
corelab::Partial sum_four(std::span<const double> data);
