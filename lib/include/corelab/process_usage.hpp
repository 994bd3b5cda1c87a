// corelab/process_usage.hpp — what the kernel counted for this process.
//
// Concept: memory has a price per page. A process that touches a page for the
// first time takes a minor page fault (the kernel maps a page in, no disk
// involved); a forked child shares its parent's pages until one side writes
// one (copy-on-write), and only then pays for a copy. The kernel counts both:
// getrusage's minor faults, and /proc/self's resident and private bytes. A
// worker that reports process_usage() shows what reading its part really
// cost it: the "OS overheads" of the notebook, measured. Used by lesson 03
// (each child reports its faults and the pages it copied).
#pragma once

#include <cstddef>  // std::size_t

namespace corelab {

/// What the kernel counted for this process: page faults and memory.
struct ProcessUsage {
    long minor_faults = 0;           ///< pages mapped in without I/O since the process started (getrusage)
    std::size_t rss_bytes = 0;       ///< resident now, shared pages included: what `top` shows
    std::size_t peak_rss_bytes = 0;  ///< the largest rss so far (VmHWM)
    std::size_t private_bytes = 0;   ///< resident pages no other process maps (copied or new): the real cost
};

/// This process's usage, from getrusage(RUSAGE_SELF) and /proc/self/{status,smaps_rollup}.
/// A file the kernel does not offer leaves its fields 0.
ProcessUsage process_usage();

}  // namespace corelab
