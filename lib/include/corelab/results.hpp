// corelab/results.hpp — a run recorded: what was measured, with what, where.
//
// Concept: a measurement a student hands in says what it measured, with
// which parameters, on which machine and in what conditions; a number
// without them cannot be checked or compared. `./course lessons` (or a
// lesson run with --record DIR) keeps one directory per run:
//
//   results/<UTC date-time>-<host>/
//     run.json        the machine (CPU, cores, caches, memory, THP, kernel),
//                     the build (compiler, flags, Boost), the source (commit,
//                     modified or not), and per lesson its start, end, load
//                     average and what other programs and steal took
//     NN_lesson.csv   one line per table row: its parameters, every run's
//                     time, best and median (columns: csv_header)
//     report.md, *.svg   ./course report
//
// The library writes JSON with Boost.JSON (built here from its headers, so
// tools and tests that link corelab parse with boost::json too).
// Used by every lesson through Report, by tools/course_results.cpp and by
// `./course report`.
#pragma once

#include <chrono>       // std::chrono::system_clock
#include <filesystem>   // std::filesystem::path
#include <iosfwd>       // std::ostream
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <vector>       // std::vector

#include "corelab/report.hpp"  // Table, Row

namespace corelab {

/// The columns of a recorded lesson CSV, in order.
inline constexpr std::string_view csv_header =
    "lesson,row,role,n,seed,repeat,lesson_workers,workers,best_s,median_s,max_s,runs_s,result,speedup,bytes,"
    "measured_at,measured_s,cpus,load_s,other_cpus,steal_cpus,busy";

/// Writes `table` as csv_header and one line per row. runs_s lists every
/// run's time separated by ';'; role is baseline, compared or uncompared.
void write_table_csv(std::ostream& out, const Table& table);

/// Reads what write_table_csv wrote (`what` names the text in errors).
/// Throws corelab::Error naming the line when it is not such a file.
Table parse_table_csv(std::string_view text, const std::string& what);
/// Reads a recorded lesson CSV file (throws like parse_table_csv).
Table read_table_csv(const std::filesystem::path& file);

/// Where a run's code came from: the commit and whether the tree was modified.
struct RunSource {
    std::string commit;
    bool dirty = false;
};

/// Creates `dir` and dir/run.json with "machine", "build", "started" (and
/// "source" when given); an existing run.json keeps its lessons. Throws
/// corelab::Error when the directory cannot be written.
void start_run(const std::filesystem::path& dir, const std::optional<RunSource>& source = std::nullopt);

/// Sets "ended" in dir/run.json (creating it like start_run when absent).
void end_run(const std::filesystem::path& dir);

/// Writes dir/<table.lesson>.csv and sets "lessons"/<table.lesson> in
/// dir/run.json: started, ended, the command line, the load average at both
/// ends, other_cpus, steal_cpus, cpus, busy and the busy warning.
/// `started` and `ended` are the samples the table's load came from.
void record_lesson(const std::filesystem::path& dir, const Table& table, const LoadSample& started,
                   const LoadSample& ended, const std::vector<std::string>& args);

/// "2026-03-05T14:03:11Z".
std::string utc_time(std::chrono::system_clock::time_point t);

/// A lesson's id from its program name: "lesson02_serial_mean" -> "02_serial_mean".
std::string lesson_id(std::string_view program);

/// JSON text indented by two spaces per level (run.json is read by people too).
std::string pretty_json(std::string_view compact);

}  // namespace corelab
