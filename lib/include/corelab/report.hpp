// corelab/report.hpp — time each approach, print the lesson's table.
//
// Concept: measure, then compare side by side. A Stopwatch times one run on
// the steady clock; best_of() keeps every run's time and the best of them
// (the least disturbed by the rest of the machine, as CS149's drivers do). A
// Report collects one row per approach and ends every lesson with a table:
// the best time, the median of the runs beside it, the result, the speed-up
// against the lesson's baseline and a bar proportional to that speed-up. What
// the lesson concludes is chosen from that table by the lesson's own pure
// function (a Conclusion), so no sentence can contradict the numbers; a
// machine that others kept busy is called out above the table (load.hpp).
// With --format csv it prints only `name,seconds,result,speedup` rows; with
// --record DIR it also records the run (results.hpp). Used by every lesson.
#pragma once

#include <algorithm>         // std::min_element
#include <chrono>            // std::chrono::steady_clock, system_clock
#include <cstddef>           // std::size_t
#include <cstdint>           // std::uint64_t
#include <filesystem>        // std::filesystem::path
#include <initializer_list>  // std::initializer_list
#include <iosfwd>            // std::ostream
#include <optional>          // std::optional
#include <string>            // std::string
#include <string_view>       // std::string_view
#include <vector>            // std::vector

#include "corelab/load.hpp"  // Load, LoadSample: was the machine quiet?

namespace corelab {

struct LessonOptions;  // cli.hpp: what a lesson's command line came to

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

/// The times of an approach's runs: the best, and every run's in order.
struct Timing {
    double seconds = 0.0;      ///< the best run
    std::vector<double> runs;  ///< every run's time (empty: only `seconds` is known)

    /// These times divided by `count`: when each run repeated one step
    /// `count` times (a call, a thread's start and join), that step's times.
    Timing per(double count) const {
        Timing each{seconds / count, runs};
        for (double& run : each.runs) run /= count;
        return each;
    }
};

/// A result and the times of the runs that produced it.
template <class R>
struct Timed : Timing {
    R value{};
};

/// Runs fn() `repeat` times (at least once); returns every time, the best,
/// and the value of the last run.
template <class F>
auto best_of(int repeat, F&& fn) -> Timed<decltype(fn())> {
    Timed<decltype(fn())> t;
    Stopwatch watch;
    t.value = fn();
    t.runs.push_back(watch.seconds());
    for (int i = 1; i < repeat; ++i) {
        watch.restart();
        t.value = fn();
        t.runs.push_back(watch.seconds());
    }
    t.seconds = *std::min_element(t.runs.begin(), t.runs.end());
    return t;
}

/// The median of some times (the mean of the middle two for an even count); 0 for none.
double median(std::vector<double> times);

/// One row of a lesson's table.
struct Row {
    std::string name;                        ///< stable snake_case, e.g. serial_loop
    double seconds = 0.0;                    ///< the best time (a scaled row: scaled)
    std::vector<double> runs;                ///< every run's time (a scaled row: scaled)
    std::optional<double> result;            ///< what the approach computed, if a number
    bool compared = true;                    ///< false: no speed-up (set-up rows such as generate)
    std::optional<unsigned> workers;         ///< this row's workers, where it is not the lesson's --workers
    std::optional<double> bytes;             ///< bytes the row reads or writes: its GB/s
    std::optional<double> measured_at;       ///< a scaled row (Python's): the size it really ran at
    std::optional<double> measured_seconds;  ///< ... and its best time there

    /// The median of runs (or `seconds` when runs is empty).
    double median() const;
    /// The slowest run (or `seconds`).
    double slowest() const;
};

/// What a lesson measured, as its conclusion reads it: live from a Report,
/// or from a recorded CSV (results.hpp: read_table_csv).
struct Table {
    std::string lesson;                   ///< "02_serial_mean"
    std::size_t n = 0;                    ///< --n
    std::uint64_t seed = 0;               ///< --seed
    int repeat = 0;                       ///< --repeat
    unsigned workers = 0;                 ///< --workers (0: the lesson has none)
    Load load;                            ///< what other programs did meanwhile
    std::vector<Row> rows;                ///< in the order they were added
    std::optional<std::size_t> baseline;  ///< index of the baseline row

    /// The row of that name, or nullptr.
    const Row* find(std::string_view name) const;
    /// The row of that name; throws corelab::Error naming it when absent.
    const Row& at(std::string_view name) const;
    /// The best time of a row (throws like at()).
    double seconds(std::string_view name) const { return at(name).seconds; }
    /// A row's speed-up against the baseline; nullopt without one or for an uncompared row.
    std::optional<double> speedup(const Row& row) const;
    /// The speed-up of the named row; throws corelab::Error when it has none.
    double speedup(std::string_view name) const;
    /// The row of least time among these names (each must exist: throws like at()).
    const Row& fastest(std::initializer_list<std::string> names) const;
    /// Other programs kept the machine busy (Load::busy).
    bool busy() const noexcept { return load.busy(); }
};

/// A lesson's conclusions: sentences chosen from its table, never fixed text.
/// Pure: tests feed it recorded tables (`lessonNN --conclude FILE.csv`).
using Conclusion = std::vector<std::string> (*)(const Table&);

/// The table that ends every lesson.
class Report {
public:
    /// `out` receives everything; in csv format say() prints nothing. Nothing is recorded.
    Report(Format format, std::ostream& out);
    /// A lesson's report: its parameters (n, seed, repeat, workers) go into
    /// the table, the load is measured from when the lesson began, and with
    /// --record DIR print() records the run there.
    Report(const LessonOptions& options, std::ostream& out);

    /// Prints a paragraph of explanation (table format only).
    void say(const std::string& text) const;

    /// Adds the baseline row: every other compared row's speed-up is its time
    /// divided into this one's. Throws corelab::Error if a baseline exists.
    Row& baseline(std::string name, const Timing& timing, std::optional<double> result);
    Row& baseline(std::string name, double seconds, std::optional<double> result);
    /// Adds a row compared with the baseline.
    Row& add(std::string name, const Timing& timing, std::optional<double> result);
    Row& add(std::string name, double seconds, std::optional<double> result);
    /// Adds a row shown without a speed-up (a set-up or overhead measurement).
    Row& add_uncompared(std::string name, const Timing& timing, std::optional<double> result);
    Row& add_uncompared(std::string name, double seconds, std::optional<double> result);
    /// Adds a prepared row (the notebook's Python rows, notebook.hpp).
    Row& add_row(Row row);
    /// --sweep: for each worker count k adds the row prefix + k (its workers k; prefix "sweep_processes_"),
    /// the best of `repeat` runs of run(k), which returns the row's result.
    template <class F>
    void sweep(const std::vector<unsigned>& counts, int repeat, const std::string& prefix, F&& run) {
        for (const unsigned k : counts) {
            const auto t = best_of(repeat, [&] { return run(k); });
            add(prefix + std::to_string(k), t, t.value).workers = k;
        }
    }
    /// Every row without its own `bytes` moves this many bytes (the CSV's bytes column: GB/s).
    void bytes_per_row(double bytes) { bytes_per_row_ = bytes; }
    /// CPU seconds that were this lesson's though not this process's children
    /// (the other MPI ranks): not counted as other programs' load.
    void count_as_own(double cpu_seconds) { extra_own_ += cpu_seconds; }

    /// The speed-up of a row against the baseline; nullopt without one.
    std::optional<double> speedup(const Row& row) const { return table_.speedup(row); }
    const std::vector<Row>& rows() const noexcept { return table_.rows; }
    /// The table as a conclusion reads it; the load is measured at the first call.
    const Table& table() const;

    /// Prints, as paragraphs, the sentences `conclusion` chooses from table().
    void conclude(Conclusion conclusion) const;
    /// Prints the busy-machine line (when others used the CPUs) and the table,
    /// or the CSV rows, to the stream given at construction; with --record DIR
    /// writes DIR/<lesson>.csv and the lesson's entry in DIR/run.json.
    void print() const;

private:
    Row& push(Row row);

    Format format_;
    std::ostream* out_;
    mutable Table table_;
    LoadSample started_;
    mutable LoadSample ended_;
    std::optional<std::filesystem::path> record_;
    std::vector<std::string> args_;
    std::optional<double> bytes_per_row_;
    double extra_own_ = 0.0;
    mutable bool load_taken_ = false;
};

/// The verdict on a parallel row, from its speed-up, its workers and the
/// CPUs: on a busy machine that the speed-up cannot be trusted; else that
/// `who` (e.g. "2 processes") came close to the ideal min(workers, CPUs)x,
/// fell short of it (`short_of`: why), or gained nothing (`nothing`: why).
std::string parallel_verdict(const Table& table, std::string_view row, unsigned workers, const std::string& who,
                             const std::string& short_of, const std::string& nothing);

/// What a worker sweep (--sweep) showed: the rows named prefix + N ("sweep_processes_4")
/// with their speed-ups, the best and where it was reached against the CPUs;
/// "" when the table has no such rows.
std::string sweep_summary(const Table& table, std::string_view prefix);

/// "0.0552 s", "12.3 ms", "48 µs": seconds in a unit a reader takes in at once.
std::string format_seconds(double seconds);

/// "27.7 GB/s": the row's bytes over its best time ("? GB/s" without bytes).
std::string format_gbps(const Row& row);

/// printf's formatting into a std::string ("%.17g" and the like, which
/// std::to_string cannot do), of any length.
std::string format(const char* printf_format, ...) __attribute__((format(printf, 1, 2)));

/// "1.93x": a speed-up as the tables print it.
std::string format_speedup(double speedup);

}  // namespace corelab
