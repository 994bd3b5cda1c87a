// Exercise 05.1: a code change must not load the old code's results.
#pragma once
#include <corelab/memory.hpp>  // Memory
#include <vector>              // std::vector

/// The function being cached (given, in checker.cpp). Its code changed over
/// time: revision 1 squares every element, revision 2 cubes it. Each call
/// counts itself in transform_calls.
std::vector<double> transform(const std::vector<double>& a, int revision);
extern int transform_calls;

/// transform(a, revision), cached in `memory` under the name "transform":
/// a second call with the same arguments and revision loads the result; a
/// call with another revision never loads a result of an older one.
std::vector<double> cached_transform(const corelab::Memory& memory, const std::vector<double>& a, int revision);
