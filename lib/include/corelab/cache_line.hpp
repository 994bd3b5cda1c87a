// corelab/cache_line.hpp — the unit in which cores share memory.
//
// Concept: cores do not pass single bytes to each other but whole cache lines
// (64 bytes). Two values that different cores write, if they sit on one
// line, make that line bounce between the cores at every write even though
// no value is shared: false sharing. Putting each such value alone on its
// line (CacheAligned) removes it. Lesson 04's false_sharing and padded_slots
// rows measure the difference (exercise 04.1 asks for it); ThreadWorkers'
// result slots and Parallel's cursors and per-worker task slots (lesson 06)
// sit apart for the same reason.
#pragma once

#include <cstddef>  // std::size_t

namespace corelab {

/// Bytes in a cache line: the unit in which cores pass memory to each other.
/// 64 on every x86-64 and most ARM cores. A fixed constant on purpose: GCC warns
/// that std::hardware_destructive_interference_size may change with compiler
/// flags, which would change the layout of every type built on it.
inline constexpr std::size_t cache_line = 64;

/// A T alone on its cache line(s): neighbours in an array never share a line,
/// so writes by one thread do not invalidate the line another thread uses.
template <class T>
struct alignas(cache_line) CacheAligned {
    T value;
};

}  // namespace corelab
