// corelab/cli.hpp — the command line every lesson shares.
//
// Concept: a lesson is a program a student runs with other sizes. Every lesson
// takes --help, --n, --seed, --repeat, --format table|csv and --record DIR
// (and --workers where it has workers, --sweep where it sweeps them,
// --conclude FILE where its conclusions can be replayed from a recorded
// table), parsed with Boost.Program_options. A bad command line (a word that
// follows no option included) prints the problem and a usage line and exits
// 2; a runtime error prints `error: <message>` and exits 1; never a core
// dump. The library's messages state facts; the advice that names a lesson's
// flag is added here. Used by every lesson.
#pragma once

#include <boost/program_options.hpp>  // options_description, variables_map
#include <cstddef>                    // std::size_t
#include <cstdint>                    // std::uint64_t
#include <filesystem>                 // std::filesystem::path
#include <functional>                 // std::function, std::less
#include <limits>                     // std::numeric_limits
#include <map>                        // std::map
#include <optional>                   // std::optional
#include <string>                     // std::string
#include <string_view>                // std::string_view
#include <utility>                    // std::in_range
#include <vector>                     // std::vector

#include "corelab/dataset.hpp"  // Footprint, check_peak_memory
#include "corelab/error.hpp"    // Error
#include "corelab/load.hpp"     // LoadSample: the machine when the lesson began
#include "corelab/report.hpp"   // Format, Conclusion

namespace corelab {

/// A command line the lesson cannot run with: exit status 2 and a usage line.
class UsageError : public Error {
public:
    using Error::Error;
};

/// The values a whole-number option (Cli::integer) accepts, and why others are refused.
struct IntRange {
    std::int64_t min = 1;                                         ///< the least value
    std::int64_t max = std::numeric_limits<std::int64_t>::max();  ///< the greatest value
    std::string why_at_most = {};   ///< why max is the limit: "--NAME must be at most MAX (why_at_most)"
    std::string zero_refused = {};  ///< non-empty: 0 is refused though within min..max: "--NAME 0 zero_refused"
    std::string zero_word = {};     ///< non-empty: this word stands for 0 ("auto")
};

/// What the shared options came to.
struct LessonOptions {
    std::size_t n = 0;                            ///< --n: how many numbers
    std::uint64_t seed = 0;                       ///< --seed: which numbers
    int repeat = 3;                               ///< --repeat: runs per approach, best kept
    unsigned workers = 0;                         ///< --workers (lessons with workers)
    Format format = Format::table;                ///< --format
    std::optional<std::filesystem::path> record;  ///< --record DIR: write the table and run.json there
    std::vector<unsigned> sweep;                  ///< --sweep (lessons that sweep workers): the counts; empty: none
    std::string lesson;                           ///< "02_serial_mean": the program's name after "lesson"
    std::vector<std::string> args;                ///< the command line, for run.json
    LoadSample started;                           ///< the machine's CPU time as the lesson began (run_lesson)
    boost::program_options::variables_map extra;  ///< the lesson's own options, as Boost parsed them
    std::map<std::string, std::int64_t, std::less<>> integers;  ///< the values of Cli::integer options
    std::map<std::string, std::string, std::less<>> words;      ///< the values of Cli::choice and Cli::text options

    /// The value of --NAME, a Cli::integer option, as a T (it must hold the
    /// option's range). Throws corelab::Error when the option has no value.
    template <class T = std::int64_t>
    T integer(std::string_view name) const {
        const std::int64_t value = integer_value(name);
        if (!std::in_range<T>(value)) throw Error("--" + std::string(name) + " does not fit its type");
        return static_cast<T>(value);
    }
    /// The word or text given to --NAME (a Cli::choice or Cli::text option).
    /// Throws corelab::Error when the option has no value.
    const std::string& word(std::string_view name) const;
    /// True when --NAME was on the command line (not only its default).
    bool given(std::string_view name) const;

private:
    std::int64_t integer_value(std::string_view name) const;
};

/// A lesson's command line: the shared options plus its own.
class Cli {
public:
    /// `program` is the executable's name, `summary` what the lesson shows.
    Cli(std::string program, std::string summary, std::size_t default_n = 100'000'000);

    /// Adds --workers with this default, accepting 1..max_workers.
    Cli& with_workers(unsigned default_workers, unsigned max_workers = 64);

    /// Adds --sweep [LIST]: worker counts such as 1,2,4,8; alone, 1 to twice
    /// the hardware threads (at most max_workers).
    Cli& with_sweep();

    /// Adds --conclude FILE: run_lesson prints what `conclusion` says about a
    /// recorded table (results/<run>/<lesson>.csv) instead of running the lesson.
    Cli& with_conclusion(Conclusion conclusion);
    Conclusion conclusion() const noexcept { return conclusion_; }

    /// Adds --NAME N: a whole number within `range`, written 1000000 or
    /// 1_000_000; `default_value` when not given (nullopt: none, and
    /// LessonOptions::integer throws unless given). A value outside the range
    /// is a UsageError that says which values are accepted.
    Cli& integer(const std::string& name, std::optional<std::int64_t> default_value, IntRange range,
                 const std::string& help);
    /// Adds --NAME WORD: one of `choices`, the first when not given. Any
    /// other word is a UsageError that lists them.
    Cli& choice(const std::string& name, std::vector<std::string> choices, const std::string& help);
    /// Adds --NAME TEXT (a path, ...): `default_value` when not given (nullopt: none).
    Cli& text(const std::string& name, std::optional<std::string> default_value, const std::string& help);
    /// Adds --NAME, a switch that takes no value (LessonOptions::given).
    Cli& flag(const std::string& name, const std::string& help);

    /// The lesson's own options, added the Boost.Program_options way.
    boost::program_options::options_description_easy_init add_options();

    /// Parses argv. Throws UsageError for anything it cannot accept.
    /// Returns nullopt when --help was given (the help is printed).
    std::optional<LessonOptions> parse(int argc, const char* const* argv) const;

    /// "usage: lesson02_serial_mean [--n N] ..." on one line.
    std::string usage() const;

private:
    std::string program_;
    std::string summary_;
    std::size_t default_n_;
    unsigned default_workers_ = 0;
    unsigned max_workers_ = 0;
    bool sweep_ = false;
    Conclusion conclusion_ = nullptr;
    boost::program_options::options_description own_{"lesson options"};
    struct Typed {  // an option added by integer() or choice(): checked by parse()
        std::string name;
        std::optional<IntRange> range;     // integer()
        std::vector<std::string> choices;  // choice()
    };
    std::vector<Typed> typed_;
};

/// Runs a lesson: parses argv with `cli`, calls `body`, and turns errors into
/// exit statuses: 0 done (or --help), 2 bad command line, 1 runtime error
/// (`error: <message>`, followed by lesson_advice for a corelab::Error).
int run_lesson(int argc, const char* const* argv, const Cli& cli,
               const std::function<void(const LessonOptions&)>& body);

/// The advice, naming the lessons' flags, for what a library error is about
/// (Error::about): "use a smaller --n" for About::size; empty for About::nothing.
std::string lesson_advice(const Error& e);

/// How a student gets the notebook's own cells timed beside a lesson's rows
/// (the course's command that installs numpy and joblib): notebook's
/// report_python prints it when Python or a package is missing.
std::string python_advice();

/// Checks, before a lesson allocates anything, that its peak for `count`
/// (the value of its `--<option>`, e.g. "n" or "tasks") fits in memory at
/// once (see check_peak_memory). Throws corelab::Error with the library's
/// figures and the flag's advice: "...: use a smaller --n (--n 900000000 fits)".
void check_lesson_memory(const char* option, std::uint64_t count, const Footprint& footprint, const std::string& what);

/// `name` in the directory of the running program (from /proc/self/exe; the
/// current directory when that cannot be read): where a lesson keeps its
/// files unless told otherwise.
std::filesystem::path beside_program(const std::string& name);

/// Parses --NAME's whole number within `range` (see IntRange), such as "-1",
/// "100000" or "100_000". Throws UsageError naming --NAME when it is not one.
std::int64_t parse_integer(const std::string& text, const std::string& name, const IntRange& range);

/// Parses a whole positive count such as "100000000" or "100_000_000".
/// Throws UsageError naming `option` when it is not one.
std::uint64_t parse_count(const std::string& text, const char* option, bool allow_zero = false);

/// Parses --sweep's list "1,2,4,8" (each 1..max_workers, kept in order,
/// duplicates dropped); an empty text is 1 to 2 x `hardware_threads` (at most
/// max_workers). Throws UsageError for anything else.
std::vector<unsigned> parse_sweep(const std::string& text, unsigned hardware_threads, unsigned max_workers);

}  // namespace corelab
