// Exercise 02.2: Kahan's compensated sum.
#pragma once
#include <corelab/reduce.hpp>  // Partial
#include <span>                // std::span

/// The sum and count of `data`, in order, with Kahan's compensation: the
/// rounding error of each add is kept and fed back into the next.
corelab::Partial kahan_sum(std::span<const double> data);
