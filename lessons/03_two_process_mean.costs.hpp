// What lesson 03's rows cost the machine: the peak memory, checked before the
// lesson makes anything, and what the children of the sharing rows report:
// page faults, memory added (their private pages plus the bytes of any
// segment) and resident memory as `top` adds it up (a shared page counted in
// every process that maps it). Included by lessons/03_two_process_mean.cpp alone.
#pragma once

#include <cstdio>  // std::snprintf
#include <string>  // std::string
#include <vector>  // std::vector

#include "corelab/cli.hpp"            // LessonOptions, check_lesson_memory
#include "corelab/process_usage.hpp"  // ProcessUsage
#include "corelab/reduce.hpp"         // Partial

namespace {

// 64 KB of numbers: one message of the copy through the queue.
constexpr std::size_t block_values = 8190;
struct Block {
    std::size_t count;
    double values[block_values];
};

// Refuses, before anything is allocated, a peak that does not fit: in copy_through_queue the data, its
// copy in the queues (in /dev/shm; a block and Boost's header per block_values numbers) and the
// children's own copies, all at once.
inline void check_lesson_peak(const corelab::LessonOptions& opt) {
    const double queued = (sizeof(Block) + 72.0) / block_values;
    corelab::check_lesson_memory(
        "n", opt.n,
        {.bytes_per_element = 2 * sizeof(double) + queued,
         .shm_bytes_per_element = queued,
         .fixed_bytes = 200e3 * opt.workers},
        "lesson 03 at n = " + std::to_string(opt.n) + " (the data, its copy in the queues and the children's copies)");
}

// What a child of the sharing rows sends back: its part, and what the kernel counted for it.
struct ChildReport {
    corelab::Partial part;
    corelab::ProcessUsage usage;
};

// One line per sharing row: "how the data reached the children".
class ChildCosts {
public:
    // The children's parts added up; adds the row's line (`shared`: the bytes of a segment they mapped).
    corelab::Partial add(const char* row, const std::vector<ChildReport>& children, double shared) {
        corelab::Partial sum;
        long faults = 0;
        double added = shared, rss = static_cast<double>(corelab::process_usage().rss_bytes);
        for (const auto& c : children) {
            sum += c.part;
            faults += c.usage.minor_faults;
            added += static_cast<double>(c.usage.private_bytes);
            rss += static_cast<double>(c.usage.peak_rss_bytes);
        }
        char line[160];
        std::snprintf(line, sizeof line, "  %-20s %12ld %16.0f MB %16.0f MB\n", row,
                      faults / static_cast<long>(children.size()), added / 1e6, rss / 1e6);
        text_ += line;
        return sum;
    }

    // The lines, under their header.
    const std::string& text() const { return text_; }

private:
    std::string text_ =
        "\nhow the data reached the children:\n"
        "  row                  faults/child   memory added     rss as top sums it\n";
};

}  // namespace
