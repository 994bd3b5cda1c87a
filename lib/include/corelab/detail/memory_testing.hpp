// corelab/detail/memory_testing.hpp — hooks through which Memory's tests
// inject faults (forced key collisions, a writer paused or killed just
// before its entry is renamed into place). Not part of the public API and not
// for programs: only tests/test_memory.cpp includes it (and bench_memory, to
// time a mapped hit that checks every byte). Defined in
// lib/src/memory/calls.cpp.
#pragma once

#include <functional>  // std::function

namespace corelab::detail {

/// Hooks that let tests inject faults. Not for programs.
struct MemoryTestHooks {
    bool constant_hash = false;                 ///< every key gets the same hex: forced collisions
    std::function<void()> before_rename;        ///< runs when an entry is written, before it is renamed into place
    bool full_checksum_on_mapped_hits = false;  ///< a mapped hit hashes every byte, however often it was verified
};

/// The one set of hooks of this process (all off until a test sets them).
MemoryTestHooks& memory_test_hooks();

}  // namespace corelab::detail
