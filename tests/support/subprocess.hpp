// Test support: run a program, capture its output and how it ended.
#pragma once

#include <chrono>  // std::chrono::seconds
#include <string>  // std::string
#include <vector>  // std::vector

namespace corelab::test {

/// How a child program ended and what it printed.
struct Outcome {
    int exit_code = -1;      ///< exit status, or -1 when killed by a signal
    int signal = 0;          ///< the signal that ended it, or 0
    bool timed_out = false;  ///< killed by us after the timeout
    std::string out;         ///< its standard output
    std::string err;         ///< its standard error
    double seconds = 0.0;    ///< from its start to its end, wall clock
    long max_rss_kb = 0;     ///< its peak resident memory (and its children's), in KB
};

/// Runs argv[0] with argv (no shell), waits at most `timeout` (then SIGKILL),
/// reaps it, and returns what it printed. Never leaves a child behind.
Outcome run(const std::vector<std::string>& argv, std::chrono::seconds timeout = std::chrono::seconds(60));

/// Path of a lesson executable, e.g. lesson("02_serial_mean").
std::string lesson(const std::string& name);

/// Splits text into lines (without the newlines).
std::vector<std::string> lines(const std::string& text);

}  // namespace corelab::test
