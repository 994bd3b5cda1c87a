// corelab/report.hpp — time each approach, print the lesson's table.
//
// Concept: measure, then compare side by side. A Stopwatch times one run on
// the steady clock; best_of() keeps the best of several (the least disturbed
// by the rest of the machine, as CS149's drivers do). A Report collects one row
// per approach and prints, at the end of every lesson, its time, its result,
// the speed-up against the lesson's baseline row and a bar of '#'; with
// --format csv it prints only `name,seconds,result,speedup` rows.
// Used by every lesson.
#pragma once

#include <chrono>    // std::chrono::steady_clock
#include <cstddef>   // std::size_t
#include <iosfwd>    // std::ostream
#include <optional>  // std::optional
#include <string>    // std::string
#include <vector>    // std::vector

namespace corelab {

/// How a lesson prints: the human table with explanations, or CSV rows only.
enum class Format { table, csv };

/// Seconds since construction (or the last restart) on the steady clock.
class Stopwatch {
public:
    Stopwatch() noexcept : start_(std::chrono::steady_clock::now()) {}
    void restart() noexcept { start_ = std::chrono::steady_clock::now(); }
    double seconds() const noexcept {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    }

private:
    std::chrono::steady_clock::time_point start_;
};

/// A result and the best time of the runs that produced it.
template <class R>
struct Timed {
    double seconds;
    R value;
};

/// Runs fn() `repeat` times (at least once); returns the best time and the
/// value of the last run.
template <class F>
auto best_of(int repeat, F&& fn) -> Timed<decltype(fn())> {
    Stopwatch watch;
    auto value = fn();
    double best = watch.seconds();
    for (int i = 1; i < repeat; ++i) {
        watch.restart();
        value = fn();
        best = std::min(best, watch.seconds());
    }
    return {best, std::move(value)};
}

/// One row of a lesson's table.
struct Row {
    std::string name;              ///< stable snake_case, e.g. serial_loop
    double seconds = 0.0;          ///< best time
    std::optional<double> result;  ///< what the approach computed, if a number
    bool compared = true;          ///< false: no speed-up (set-up rows such as generate)
};

/// The table that ends every lesson.
class Report {
public:
    /// `out` receives everything; in csv format say() prints nothing.
    explicit Report(Format format, std::ostream& out);

    /// Prints a paragraph of explanation (table format only).
    void say(const std::string& text) const;

    /// Adds the baseline row: every other compared row's speed-up is its time
    /// divided into this one's. Throws corelab::Error if a baseline exists.
    void baseline(std::string name, double seconds, std::optional<double> result);
    /// Adds a row compared with the baseline.
    void add(std::string name, double seconds, std::optional<double> result);
    /// Adds a row shown without a speed-up (a set-up or overhead measurement).
    void add_uncompared(std::string name, double seconds, std::optional<double> result);

    /// The speed-up of a row against the baseline; nullopt without one.
    std::optional<double> speedup(const Row& row) const;
    const std::vector<Row>& rows() const noexcept { return rows_; }

    /// Prints the table (or the CSV rows) to the stream given at construction.
    void print() const;

private:
    Format format_;
    std::ostream* out_;
    std::vector<Row> rows_;
    std::optional<std::size_t> baseline_;
};

/// "0.0552 s", "12.3 ms", "48 µs": seconds in a unit a reader takes in at once.
std::string format_seconds(double seconds);

}  // namespace corelab
