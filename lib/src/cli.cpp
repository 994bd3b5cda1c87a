// Implementation of corelab/cli.hpp.
#include "corelab/cli.hpp"

#include <algorithm>                // std::min, std::find
#include <boost/thread/thread.hpp>  // boost::thread::hardware_concurrency
#include <cctype>                   // std::isdigit, std::toupper
#include <filesystem>               // read_symlink, current_path
#include <iostream>                 // std::cout, std::cerr
#include <limits>                   // std::numeric_limits
#include <new>                      // std::bad_alloc
#include <string>                   // std::string
#include <string_view>              // std::string_view
#include <system_error>             // std::error_code
#include <vector>                   // std::vector

#include "corelab/results.hpp"  // read_table_csv, lesson_id

namespace po = boost::program_options;

namespace corelab {

std::uint64_t parse_count(const std::string& text, const char* option, bool allow_zero) {
    std::uint64_t value = 0;
    bool any = false;
    for (char c : text) {
        if (c == '_' || c == ',' || c == '\'') continue;  // 100_000_000 reads better
        if (!std::isdigit(static_cast<unsigned char>(c))) {
            throw UsageError(std::string("--") + option + " takes a whole number, not '" + text + "'");
        }
        const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
        if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) {
            throw UsageError(std::string("--") + option + " " + text + " is too large");
        }
        value = value * 10 + digit;
        any = true;
    }
    if (!any) throw UsageError(std::string("--") + option + " takes a whole number, not '" + text + "'");
    if (value == 0 && !allow_zero) throw UsageError(std::string("--") + option + " must be at least 1");
    return value;
}

std::filesystem::path beside_program(const std::string& name) {
    std::error_code ec;
    const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    return (ec ? std::filesystem::current_path() : exe.parent_path()) / name;
}

std::int64_t parse_integer(const std::string& text, const std::string& name, const IntRange& range) {
    const std::string flag = "--" + name;
    if (!range.zero_word.empty() && text == range.zero_word) return 0;
    const bool negative = range.min < 0 && text.size() > 1 && text[0] == '-';
    std::int64_t value = 0;  // its magnitude while the digits are read
    bool any = false, overflow = false;
    for (char c : std::string_view(text).substr(negative ? 1 : 0)) {
        if (c == '_' || c == ',' || c == '\'') continue;  // 100_000_000 reads better
        if (!std::isdigit(static_cast<unsigned char>(c))) {
            any = false;
            break;
        }
        const int digit = c - '0';
        overflow = overflow || value > (std::numeric_limits<std::int64_t>::max() - digit) / 10;
        if (!overflow) value = value * 10 + digit;
        any = true;
    }
    if (!any) {
        throw UsageError(
            flag + " takes " + (range.zero_word.empty() ? "" : range.zero_word + " or ") + "a whole number" +
            (range.min < 0 ? " from " + std::to_string(range.min) + " to " + std::to_string(range.max) : "") +
            ", not '" + text + "'");
    }
    if (negative) value = -value;
    if ((overflow && negative) || value < range.min) {
        throw UsageError(flag + " must be at least " + std::to_string(range.min));
    }
    if (overflow || value > range.max) {
        throw UsageError(flag + " must be at most " + std::to_string(range.max) +
                         (range.why_at_most.empty() ? "" : " (" + range.why_at_most + ")"));
    }
    if (value == 0 && !range.zero_refused.empty()) throw UsageError(flag + " 0 " + range.zero_refused);
    return value;
}

std::int64_t LessonOptions::integer_value(std::string_view name) const {
    const auto it = integers.find(name);
    if (it == integers.end()) throw Error("--" + std::string(name) + " has no value: it was not given");
    return it->second;
}

const std::string& LessonOptions::word(std::string_view name) const {
    const auto it = words.find(name);
    if (it == words.end()) throw Error("--" + std::string(name) + " has no value: it was not given");
    return it->second;
}

bool LessonOptions::given(std::string_view name) const {
    const auto it = extra.find(std::string(name));
    return it != extra.end() && !it->second.defaulted();
}

std::vector<unsigned> parse_sweep(const std::string& text, unsigned hardware_threads, unsigned max_workers) {
    std::vector<unsigned> counts;
    if (text.empty()) {
        for (unsigned w = 1; w <= std::min(2 * std::max(hardware_threads, 1u), max_workers); ++w) counts.push_back(w);
        return counts;
    }
    std::string item;
    for (std::size_t i = 0; i <= text.size(); ++i) {
        if (i < text.size() && text[i] != ',') {
            item += text[i];
            continue;
        }
        const std::uint64_t w = parse_count(item, "sweep");
        if (w > max_workers) {
            throw UsageError("--sweep takes worker counts from 1 to " + std::to_string(max_workers) + ", not " + item);
        }
        if (std::find(counts.begin(), counts.end(), w) == counts.end()) counts.push_back(static_cast<unsigned>(w));
        item.clear();
    }
    return counts;
}

Cli::Cli(std::string program, std::string summary, std::size_t default_n)
    : program_(std::move(program)), summary_(std::move(summary)), default_n_(default_n) {}

Cli& Cli::with_workers(unsigned default_workers, unsigned max_workers) {
    default_workers_ = default_workers;
    max_workers_ = max_workers;
    return *this;
}

Cli& Cli::with_sweep() {
    sweep_ = true;
    return *this;
}

Cli& Cli::with_conclusion(Conclusion conclusion) {
    conclusion_ = conclusion;
    return *this;
}

Cli& Cli::integer(const std::string& name, std::optional<std::int64_t> default_value, IntRange range,
                  const std::string& help) {
    auto* value = po::value<std::string>();  // as text: Boost would read "-5" as a huge unsigned value
    if (default_value) {
        value->default_value(*default_value == 0 && !range.zero_word.empty() ? range.zero_word
                                                                             : std::to_string(*default_value));
    }
    own_.add_options()(name.c_str(), value, help.c_str());
    typed_.push_back({name, std::move(range), {}});
    return *this;
}

Cli& Cli::choice(const std::string& name, std::vector<std::string> choices, const std::string& help) {
    if (choices.empty()) throw Error("--" + name + " needs at least one choice");
    own_.add_options()(name.c_str(), po::value<std::string>()->default_value(choices.front()), help.c_str());
    typed_.push_back({name, std::nullopt, std::move(choices)});
    return *this;
}

Cli& Cli::text(const std::string& name, std::optional<std::string> default_value, const std::string& help) {
    auto* value = po::value<std::string>();
    if (default_value) value->default_value(*default_value);
    own_.add_options()(name.c_str(), value, help.c_str());
    typed_.push_back({name, std::nullopt, {}});
    return *this;
}

Cli& Cli::flag(const std::string& name, const std::string& help) {
    own_.add_options()(name.c_str(), help.c_str());
    return *this;
}

po::options_description_easy_init Cli::add_options() {
    return own_.add_options();
}

std::string Cli::usage() const {
    std::string u = "usage: " + program_ + " [--n N] [--seed S] [--repeat R]";
    if (max_workers_ != 0) u += " [--workers W]";
    if (sweep_) u += " [--sweep [1,2,4,8]]";
    for (const auto& opt : own_.options()) {  // "[--keep]", or "[--dir DIR]" for an option with a value
        std::string value = opt->semantic()->max_tokens() > 0 ? " " + opt->long_name() : "";
        for (char& c : value) c = static_cast<char>(c == '-' ? '_' : std::toupper(static_cast<unsigned char>(c)));
        u += " [" + opt->format_name() + value + "]";
    }
    return u + " [--format table|csv] [--record DIR]" + (conclusion_ != nullptr ? " [--conclude FILE]" : "") +
           " [--help]";
}

std::optional<LessonOptions> Cli::parse(int argc, const char* const* argv) const {
    po::options_description common("options");
    // Numbers are taken as text and checked here: Boost would read "-5" as a
    // huge unsigned value.
    common.add_options()("help,h", "print this help and exit")(
        "n", po::value<std::string>()->default_value(std::to_string(default_n_)), "how many numbers")(
        "seed", po::value<std::string>()->default_value("42"), "random seed: the same seed gives the same numbers")(
        "repeat", po::value<std::string>()->default_value("3"), "runs per approach; the best time is kept")(
        "format", po::value<std::string>()->default_value("table"), "table (with explanations) or csv (rows only)")(
        "record", po::value<std::string>(),
        "also write the table (DIR/<lesson>.csv) and the machine's conditions (DIR/run.json) into DIR");
    if (max_workers_ != 0) {
        common.add_options()("workers", po::value<std::string>()->default_value(std::to_string(default_workers_)),
                             ("how many workers, 1 to " + std::to_string(max_workers_)).c_str());
    }
    if (sweep_) {
        common.add_options()("sweep", po::value<std::string>()->implicit_value(""),
                             "also time the parallel rows with each of these worker counts (1,2,4,8; alone: 1 to "
                             "twice the hardware threads)");
    }
    if (conclusion_ != nullptr) {
        common.add_options()("conclude", po::value<std::string>(),
                             "print what the lesson concludes from a recorded table (results/<run>/<lesson>.csv) "
                             "and exit, without running it");
    }
    po::options_description all;
    all.add(common);
    if (!own_.options().empty()) all.add(own_);

    LessonOptions opt;
    po::variables_map& vm = opt.extra;
    // "--jobs -1" would read as an option named 1: a negative number after an
    // option that takes a value is passed on as its value, "--jobs=-1"
    std::vector<std::string> args(argv + std::min(argc, 1), argv + argc);
    for (std::size_t i = 0; i + 1 < args.size(); ++i) {
        const auto* o = args[i].rfind("--", 0) == 0 ? all.find_nothrow(args[i].substr(2), false) : nullptr;
        const std::string& next = args[i + 1];
        if (o != nullptr && o->semantic()->max_tokens() > 0 && next.size() > 1 && next[0] == '-' &&
            std::isdigit(static_cast<unsigned char>(next[1]))) {
            args[i] += "=" + next;
            args.erase(args.begin() + static_cast<std::ptrdiff_t>(i) + 1);
        }
        // "--sweep 1,2,4" as "--sweep=1,2,4": alone, --sweep takes no value
        if (sweep_ && args[i] == "--sweep" && next.find_first_not_of("0123456789,_") == std::string::npos) {
            args[i] += "=" + next;
            args.erase(args.begin() + static_cast<std::ptrdiff_t>(i) + 1);
        }
    }
    try {
        const po::parsed_options parsed = po::command_line_parser(args).options(all).run();
        // a word that follows no option: Boost would drop it, and "--n 1 000 000" would run with n = 1
        for (const po::option& o : parsed.options) {
            if (o.position_key >= 0) {
                throw UsageError("'" + o.original_tokens.front() +
                                 "' follows no option: every value comes right after its --option, and a number is "
                                 "written without spaces (1000000 or 1_000_000)");
            }
        }
        po::store(parsed, vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw UsageError(e.what());
    }
    if (vm.count("help") != 0) {
        std::cout << program_ << ": " << summary_ << "\n\n" << usage() << "\n\n" << all << '\n';
        return std::nullopt;
    }
    opt.n = parse_count(vm["n"].as<std::string>(), "n");
    opt.seed = parse_count(vm["seed"].as<std::string>(), "seed", true);
    const std::uint64_t repeat = parse_count(vm["repeat"].as<std::string>(), "repeat");
    if (repeat > 100) throw UsageError("--repeat must be at most 100");
    opt.repeat = static_cast<int>(repeat);
    if (max_workers_ != 0) {
        const std::uint64_t w = parse_count(vm["workers"].as<std::string>(), "workers");
        if (w > max_workers_) throw UsageError("--workers must be between 1 and " + std::to_string(max_workers_));
        opt.workers = static_cast<unsigned>(w);
    }
    opt.lesson = lesson_id(program_);
    opt.args.assign(argv, argv + argc);
    if (vm.count("record") != 0) opt.record = vm["record"].as<std::string>();
    if (sweep_ && vm.count("sweep") != 0) {
        opt.sweep = parse_sweep(vm["sweep"].as<std::string>(), boost::thread::hardware_concurrency(),
                                max_workers_ != 0 ? max_workers_ : 64);
    }
    for (const Typed& t : typed_) {           // the lesson's typed options: checked here, so a lesson reads values only
        if (vm.count(t.name) == 0) continue;  // no default and not given
        const std::string& text = vm[t.name].as<std::string>();
        if (t.range) {
            opt.integers.emplace(t.name, parse_integer(text, t.name, *t.range));
            continue;
        }
        if (!t.choices.empty() && std::find(t.choices.begin(), t.choices.end(), text) == t.choices.end()) {
            std::string listed;
            for (std::size_t i = 0; i < t.choices.size(); ++i) {
                listed += (i == 0 ? "" : i + 1 == t.choices.size() ? " or " : ", ") + t.choices[i];
            }
            throw UsageError("--" + t.name + " takes " + listed + ", not '" + text + "'");
        }
        opt.words.emplace(t.name, text);
    }
    const std::string& format = vm["format"].as<std::string>();
    if (format == "table") {
        opt.format = Format::table;
    } else if (format == "csv") {
        opt.format = Format::csv;
    } else {
        throw UsageError("--format takes 'table' or 'csv', not '" + format + "'");
    }
    return opt;
}

void check_lesson_memory(const char* option, std::uint64_t count, const Footprint& footprint, const std::string& what) {
    try {
        check_peak_memory(count, footprint, what);
    } catch (const MemoryShortage& e) {
        const std::string flag = std::string("--") + option;
        throw Error(std::string(e.what()) + ": use a smaller " + flag +
                    (e.largest_count() > 0 ? " (" + flag + " " + std::to_string(e.largest_count()) + " fits)"
                                           : " (not even " + flag + " 1 fits: free some memory)"));
    }
}

std::string lesson_advice(const Error& e) {
    switch (e.about()) {
        case About::size:
            return "use a smaller --n";
        case About::directory:
            return "choose another directory with --dir";
        case About::disk_room:
            return "use a smaller --n or another --dir";
        case About::shared_memory:
            return "use a smaller --n, remove stale objects (./course clean-ipc) or give it more room (docker run "
                   "--shm-size=2g)";
        case About::workers:
            return "use fewer --workers";
        case About::jobs:
            return "use fewer --jobs";
        case About::backend:
            return "give --backend processes or threads";
        case About::nothing:
            break;
    }
    return {};
}

std::string python_advice() {
    return "./course deps --python installs python3-numpy and\npython3-joblib, and the lesson then times the "
           "notebook's cell on this machine, beside the C++ rows.";
}

int run_lesson(int argc, const char* const* argv, const Cli& cli,
               const std::function<void(const LessonOptions&)>& body) {
    try {
        auto opt = cli.parse(argc, argv);
        if (!opt) return 0;
        if (opt->extra.count("conclude") != 0) {  // the conclusions of a recorded table, without running
            const Table table = read_table_csv(opt->extra["conclude"].as<std::string>());
            for (const std::string& sentence : cli.conclusion()(table)) std::cout << sentence << "\n\n";
            return 0;
        }
        opt->started = sample_load();  // from here on, other programs' CPU time counts against the lesson
        body(*opt);
        return 0;
    } catch (const UsageError& e) {
        std::cerr << "error: " << e.what() << '\n' << cli.usage() << '\n';
        return 2;
    } catch (const Error& e) {
        const std::string advice = lesson_advice(e);
        std::cerr << "error: " << e.what() << (advice.empty() ? "" : ": " + advice) << '\n';
        return 1;
    } catch (const std::bad_alloc&) {
        std::cerr << "error: out of memory: a size on the command line is too large for this machine\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << '\n';
        return 1;
    }
}

}  // namespace corelab
