// What the benchmarks that end with a side-by-side summary share: --n=N taken
// off the command line before Google Benchmark sees it, a console reporter
// that prints as usual and also keeps every row's median for the summary,
// keep(), which marks a result as used, and print_goal(), the one wording in
// which every summary says whether a goal was met. Written for Google
// Benchmark 1.7 (Debian 12) to 1.9 (Debian 13).
#pragma once

#include <benchmark/benchmark.h>
#include <unistd.h>  // isatty

#include <cmath>        // std::isfinite
#include <cstddef>      // std::size_t
#include <cstdio>       // std::printf
#include <cstdlib>      // std::getenv, std::strtoull
#include <cstring>      // std::strncmp
#include <map>          // std::map
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <vector>       // std::vector

namespace corelab::bench {

/// n from --n=N (removed from argv), else the environment variable CORELAB_BENCH_N, else the notebook's 10^8.
inline std::size_t take_n(int& argc, char** argv) {
    std::size_t n = 100'000'000;
    if (const char* env = std::getenv("CORELAB_BENCH_N"); env != nullptr && *env != '\0') {
        n = std::strtoull(env, nullptr, 10);
    }
    int kept = 1;
    for (int i = 1; i < argc; ++i) {
        if (std::strncmp(argv[i], "--n=", 4) == 0) {
            n = std::strtoull(argv[i] + 4, nullptr, 10);
        } else {
            argv[kept++] = argv[i];
        }
    }
    argc = kept;
    argv[argc] = nullptr;
    return n;
}

/// Marks `value` as read by something the compiler cannot see, so the work that produced it is not dropped
/// (and, with the memory clobber, not hoisted out of the timing loop). This is what Google Benchmark's
/// DoNotOptimize(const T&) does; 1.8 deprecated that overload in favour of the in-out one, whose "+m,r" lets
/// GCC 12 lose a value an OpenMP reduction wrote (bench_reduce.cpp), so the read-only form is kept here.
template <class T>
inline __attribute__((always_inline)) void keep(const T& value) {
    asm volatile("" : : "r,m"(value) : "memory");
}

/// Whether a run was skipped and has no time: SkipWithError (Google Benchmark 1.7 sets `error_occurred`;
/// 1.8 replaced it by `skipped`, which SkipWithMessage sets too). The member is tested, not a version.
template <class R>
bool skipped(const R& run) {
    if constexpr (requires { run.skipped; }) {
        return static_cast<bool>(run.skipped);
    } else {
        return run.error_occurred;
    }
}

/// A console reporter that prints as usual and also keeps each row's median
/// (or its one time when it ran without repetitions), in the order the rows ran.
class SummaryReporter : public benchmark::ConsoleReporter {
public:
    struct Row {
        double seconds = 0.0;  ///< median wall (or CPU) time of one pass
        bool median = false;   ///< false: one repetition only, no median was computed
        std::map<std::string, double> counters;
    };

    /// Tabular, and in colour when standard output is a terminal.
    SummaryReporter()
        : ConsoleReporter(static_cast<OutputOptions>(OO_Tabular | (::isatty(STDOUT_FILENO) ? OO_Color : OO_None))) {}

    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const Run& run : runs) {
            if (skipped(run)) continue;
            const bool is_median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
            const bool is_single = run.run_type == Run::RT_Iteration;
            const std::string& name = run.run_name.function_name;
            auto it = rows_.find(name);
            if (!is_median && !(is_single && (it == rows_.end() || !it->second.median))) continue;
            if (it == rows_.end()) {
                order_.push_back(name);
                it = rows_.emplace(name, Row{}).first;
            }
            it->second.seconds = run.GetAdjustedRealTime() / benchmark::GetTimeUnitMultiplier(run.time_unit);
            it->second.median = is_median;
            for (const auto& [key, counter] : run.counters) it->second.counters[key] = counter.value;
        }
    }

    const std::vector<std::string>& order() const { return order_; }
    const std::map<std::string, Row>& rows() const { return rows_; }
    bool has(const std::string& name) const { return rows_.count(name) != 0; }
    double seconds(const std::string& name) const { return rows_.at(name).seconds; }

private:
    std::vector<std::string> order_;
    std::map<std::string, Row> rows_;
};

/// Which side of its goal a measured ratio must be on.
enum class Goal {
    at_least,  ///< met when measured >= goal (a speed-up, a "10x lower" overhead)
    at_most,   ///< met when measured <= goal (a cost relative to a peer: "within 5%" is at most 1.05)
};

/// A ratio as the summaries print it: 1.03x, 12.4x, 209x; `-` when it is not a finite positive number (a row
/// that did not run).
inline std::string format_ratio(double ratio) {
    if (!std::isfinite(ratio) || ratio <= 0) return "-";
    char text[32];
    std::snprintf(text, sizeof text, ratio >= 100 ? "%.0fx" : ratio >= 10 ? "%.1fx" : "%.2fx", ratio);
    return text;
}

/// Prints one goal in the wording every benchmark summary shares, and returns whether it was met:
///   `Goal: reused processes within 5% of threads_2: met (1.03x)`
///   `Goal: per-call overhead of a reused pool at least 10x below joblib's: NOT met (6.2x)`
/// `what` names the goal with its threshold in words; `measured` is the ratio of the run, compared with `goal` in
/// the direction `direction`; `note` (optional) follows the ratio inside the brackets, after a space
/// (`(0.85x for cold_chunks_mmap_2, the lowest of 8 rows)`). A ratio that is not a finite
/// positive number (a row missing or skipped) prints `not checked` and counts as not met.
inline bool print_goal(std::string_view what, double measured, double goal, Goal direction = Goal::at_least,
                       std::string_view note = {}) {
    const std::string extra = note.empty() ? std::string() : " " + std::string(note);
    if (!std::isfinite(measured) || measured <= 0) {
        std::printf("Goal: %.*s: not checked (a row it needs did not run)\n", static_cast<int>(what.size()),
                    what.data());
        return false;
    }
    const bool met = direction == Goal::at_least ? measured >= goal : measured <= goal;
    const std::string shown = format_ratio(measured) + extra;
    std::printf("Goal: %.*s: %s (%s)\n", static_cast<int>(what.size()), what.data(), met ? "met" : "NOT met",
                shown.c_str());
    return met;
}

/// Prints a goal that could not be checked, in the same wording: `Goal: <what>: not checked (<why>)`.
inline void print_goal_not_checked(std::string_view what, std::string_view why) {
    std::printf("Goal: %.*s: not checked (%.*s)\n", static_cast<int>(what.size()), what.data(),
                static_cast<int>(why.size()), why.data());
}

}  // namespace corelab::bench
