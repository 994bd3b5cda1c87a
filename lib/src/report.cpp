// Implementation of corelab/report.hpp.
#include "corelab/report.hpp"

#include <algorithm>  // std::max, std::sort
#include <cmath>      // std::isfinite, std::abs, std::lround
#include <cstdarg>    // std::va_list, va_start, va_copy, va_end
#include <cstdio>     // std::snprintf, std::vsnprintf
#include <ostream>    // std::ostream
#include <utility>    // std::pair

#include "corelab/cli.hpp"      // LessonOptions
#include "corelab/error.hpp"    // Error
#include "corelab/results.hpp"  // record_lesson

namespace corelab {
namespace {

constexpr int bar_width = 32;

std::string number(const char* fmt, double v) {
    char text[64];
    std::snprintf(text, sizeof text, fmt, v);
    return text;
}

std::string pad(std::string s, std::size_t width, bool left) {
    // Count code points, not bytes, so "µs" aligns.
    std::size_t shown = 0;
    for (unsigned char c : s) shown += (c & 0xC0) != 0x80;
    if (shown >= width) return s;
    return left ? s + std::string(width - shown, ' ') : std::string(width - shown, ' ') + s;
}

// Counts print as integers, means with all 16 digits a double holds.
std::string format_result(double v) {
    if (v == static_cast<double>(static_cast<long long>(v)) && std::abs(v) < 1e15) return number("%.0f", v);
    return number("%.16f", v);
}

// The speed-up a bar of full width stands for: the largest, unless it is so
// far ahead (more than 4x the next) that every other bar would shrink to a
// '#'; then the next one sets the scale and the longer bars are cut with '>'.
double bar_scale(std::vector<double> speedups) {
    std::sort(speedups.rbegin(), speedups.rend());
    if (speedups.empty()) return 0.0;
    if (speedups.size() >= 2 && speedups[1] > 0.0 && speedups[0] > 4.0 * speedups[1]) return speedups[1] * 1.25;
    return speedups[0];
}

Row make_row(std::string name, double seconds, std::vector<double> runs, std::optional<double> result, bool compared) {
    Row r;
    r.name = std::move(name);
    r.seconds = seconds;
    r.runs = std::move(runs);
    r.result = result;
    r.compared = compared;
    return r;
}

}  // namespace

double median(std::vector<double> times) {
    if (times.empty()) return 0.0;
    std::sort(times.begin(), times.end());
    const std::size_t m = times.size() / 2;
    return times.size() % 2 == 1 ? times[m] : (times[m - 1] + times[m]) / 2.0;
}

double Row::median() const {
    return runs.empty() ? seconds : corelab::median(runs);
}

double Row::slowest() const {
    return runs.empty() ? seconds : *std::max_element(runs.begin(), runs.end());
}

const Row* Table::find(std::string_view name) const {
    for (const Row& r : rows) {
        if (r.name == name) return &r;
    }
    return nullptr;
}

const Row& Table::at(std::string_view name) const {
    if (const Row* r = find(name)) return *r;
    throw Error("table of " + (lesson.empty() ? std::string("a lesson") : lesson) + " has no row '" +
                std::string(name) + "'");
}

const Row& Table::fastest(std::initializer_list<std::string> names) const {
    if (names.size() == 0) throw Error("fastest: no rows named");
    const Row* best = &at(*names.begin());
    for (const auto& n : names) best = at(n).seconds < best->seconds ? &at(n) : best;
    return *best;
}

std::optional<double> Table::speedup(const Row& row) const {
    if (!baseline || !row.compared || row.seconds <= 0.0) return std::nullopt;
    return rows[*baseline].seconds / row.seconds;
}

double Table::speedup(std::string_view name) const {
    const auto s = speedup(at(name));
    if (!s) throw Error("row '" + std::string(name) + "' of " + lesson + " has no speed-up");
    return *s;
}

std::string parallel_verdict(const Table& t, std::string_view row, unsigned workers, const std::string& who,
                             const std::string& short_of, const std::string& nothing) {
    const double s = t.speedup(row);
    const unsigned usable = std::max(1u, std::min(workers, t.load.cpus != 0 ? t.load.cpus : workers));
    const std::string ideal = std::to_string(usable) + "x";
    if (t.busy() && s > 1.1 && s >= 0.75 * usable) {  // the figure is the busy line's: said once, above the table
        return who + " gave " + format_speedup(s) +
               " even on a busy machine (the line above the table), close to the " + ideal + " that " +
               std::to_string(usable) + " CPU" + (usable > 1 ? "s allow." : " allows.");
    }
    if (t.busy()) {
        return who + " gave " + format_speedup(s) +
               " on a busy machine (the line above the table): they waited for the CPUs, so run again on a quiet "
               "machine before you explain this speed-up.";
    }
    if (s > 1.1 && s >= 0.75 * usable) {
        return who + " made it " + format_speedup(s) + " faster, close to the " + ideal + " that " +
               std::to_string(usable) + " CPU" + (usable > 1 ? "s allow." : " allows.");
    }
    if (s > 1.1) return who + " made it " + format_speedup(s) + " faster, short of the " + ideal + ": " + short_of;
    return who + " gained nothing (" + format_speedup(s) +
           "): " + (usable < 2 ? "this machine has one CPU to run them on." : nothing);
}

std::string sweep_summary(const Table& t, std::string_view prefix) {
    std::vector<std::pair<unsigned, double>> points;  // (workers, speed-up)
    for (const Row& r : t.rows) {
        if (r.name.size() <= prefix.size() || r.name.compare(0, prefix.size(), prefix) != 0) continue;
        if (r.name.find_first_not_of("0123456789", prefix.size()) != std::string::npos) continue;
        if (const auto s = t.speedup(r)) points.emplace_back(std::stoul(r.name.substr(prefix.size())), *s);
    }
    if (points.empty()) return {};
    std::sort(points.begin(), points.end());
    std::string kind(prefix.substr(prefix.rfind("sweep_", 0) == 0 ? 6 : 0));
    if (!kind.empty() && kind.back() == '_') kind.pop_back();
    std::string text = "Sweep of " + kind + " (workers: speed-up):";
    auto best = points.front();
    for (const auto& [k, s] : points) {
        text += " " + std::to_string(k) + ": " + format_speedup(s) + (k == points.back().first ? ";" : ",");
        if (s > best.second) best = {k, s};
    }
    const unsigned cpus = t.load.cpus;
    text += " the most, " + format_speedup(best.second) + ", with " + std::to_string(best.first) + " on " +
            std::to_string(cpus) + " CPUs";
    double beyond = 0.0;
    for (const auto& [k, s] : points) {
        if (k > cpus) beyond = std::max(beyond, s);
    }
    if (t.busy()) return text + ": the machine was busy, so this curve is not this machine's.";
    if (beyond == 0.0 || cpus == 0) return text + ".";
    if (best.first <= cpus) return text + ": more workers than CPUs only take turns on them.";
    return text + ": more workers than CPUs still gained a little here (" + format_speedup(beyond) + ").";
}

std::string format_seconds(double s) {
    if (!std::isfinite(s)) return "-";
    if (s >= 1.0) return number("%.2f s", s);
    if (s >= 1e-3) return number("%.1f ms", s * 1e3);
    if (s >= 1e-6) return number("%.1f µs", s * 1e6);
    return number("%.0f ns", s * 1e9);
}

std::string format_gbps(const Row& row) {
    if (!row.bytes || row.seconds <= 0.0) return "? GB/s";
    return number("%.3g GB/s", *row.bytes / row.seconds / 1e9);
}

std::string format(const char* printf_format, ...) {
    std::va_list args;
    va_start(args, printf_format);
    std::va_list again;
    va_copy(again, args);
    const int size = std::vsnprintf(nullptr, 0, printf_format, args);
    va_end(args);
    std::string out(size > 0 ? static_cast<std::size_t>(size) : 0, '\0');
    if (size > 0) std::vsnprintf(out.data(), out.size() + 1, printf_format, again);
    va_end(again);
    return out;
}

std::string format_speedup(double s) {
    return number(s >= 100.0 ? "%.0fx" : s >= 0.095 ? "%.2fx" : "%.2gx", s);
}

Report::Report(Format format, std::ostream& out) : format_(format), out_(&out), started_(sample_load()) {}

Report::Report(const LessonOptions& opt, std::ostream& out)
    : format_(opt.format), out_(&out), started_(opt.started), record_(opt.record), args_(opt.args) {
    table_.lesson = opt.lesson;
    table_.n = opt.n;
    table_.seed = opt.seed;
    table_.repeat = opt.repeat;
    table_.workers = opt.workers;
}

void Report::say(const std::string& text) const {
    if (format_ == Format::table) *out_ << text << '\n';
}

Row& Report::push(Row row) {
    table_.rows.push_back(std::move(row));
    return table_.rows.back();
}

Row& Report::baseline(std::string name, const Timing& t, std::optional<double> result) {
    if (table_.baseline) {
        throw Error("report: a table has one baseline row, and '" + table_.rows[*table_.baseline].name + "' is it");
    }
    table_.baseline = table_.rows.size();
    return push(make_row(std::move(name), t.seconds, t.runs, result, true));
}

Row& Report::baseline(std::string name, double seconds, std::optional<double> result) {
    return baseline(std::move(name), Timing{seconds, {}}, result);
}

Row& Report::add(std::string name, const Timing& t, std::optional<double> result) {
    return push(make_row(std::move(name), t.seconds, t.runs, result, true));
}

Row& Report::add(std::string name, double seconds, std::optional<double> result) {
    return push(make_row(std::move(name), seconds, {}, result, true));
}

Row& Report::add_uncompared(std::string name, const Timing& t, std::optional<double> result) {
    return push(make_row(std::move(name), t.seconds, t.runs, result, false));
}

Row& Report::add_uncompared(std::string name, double seconds, std::optional<double> result) {
    return push(make_row(std::move(name), seconds, {}, result, false));
}

Row& Report::add_row(Row row) {
    return push(std::move(row));
}

const Table& Report::table() const {
    if (!load_taken_) {
        ended_ = sample_load();
        table_.load = load_between(started_, ended_, extra_own_);
        load_taken_ = true;
    }
    if (bytes_per_row_) {
        for (Row& r : table_.rows) {
            if (!r.bytes) r.bytes = bytes_per_row_;
        }
    }
    return table_;
}

void Report::conclude(Conclusion conclusion) const {
    for (const std::string& sentence : conclusion(table())) say(sentence);
}

void Report::print() const {
    const Table& t = table();
    if (record_) record_lesson(*record_, t, started_, ended_, args_);
    if (format_ == Format::csv) {
        *out_ << "name,seconds,result,speedup\n";
        for (const Row& r : t.rows) {
            *out_ << r.name << ',' << number("%.9g", r.seconds) << ',';
            if (r.result) *out_ << number("%.17g", *r.result);
            *out_ << ',';
            if (auto s = speedup(r)) *out_ << number("%.4g", *s);
            *out_ << '\n';
        }
        out_->flush();
        return;
    }
    if (const std::string busy = busy_warning(t.load); !busy.empty()) *out_ << '\n' << busy << '\n';

    std::size_t name_width = 4;
    std::vector<double> speedups;
    bool scaled = false, repeated = false, cut = false;
    for (const Row& r : t.rows) {
        name_width = std::max(name_width, r.name.size());
        if (auto s = speedup(r)) speedups.push_back(*s);
        scaled = scaled || r.measured_at.has_value();
        repeated = repeated || r.runs.size() > 1;
    }
    const double scale = bar_scale(speedups);
    *out_ << '\n'
          << pad("row", name_width, true) << "  " << pad("best", 10, false) << "  " << pad("median", 10, false) << "  "
          << pad("result", 19, false) << "  " << pad("speed-up", 8, false) << "  bar\n";
    for (const Row& r : t.rows) {
        const auto s = speedup(r);
        const std::string mark = r.measured_at ? "~" : "";
        std::string bar;
        if (s && scale > 0.0) {
            const bool over = *s > scale * 1.0001;
            cut = cut || over;
            const long n = over ? bar_width : std::max(1L, std::lround(*s / scale * bar_width));
            bar = "  " + std::string(static_cast<std::size_t>(n), '#') + (over ? ">" : "");
        }
        *out_ << pad(r.name, name_width, true) << "  "
              << pad(r.seconds > 0.0 ? mark + format_seconds(r.seconds) : "-", 10, false) << "  "
              << pad(r.runs.size() > 1 ? mark + format_seconds(r.median()) : "-", 10, false) << "  "
              << pad(r.result ? format_result(*r.result) : "-", 19, false) << "  "
              << pad(s ? format_speedup(*s) : "-", 8, false) << bar << '\n';
    }
    if (t.baseline) {
        *out_ << "(speed-up: the time of '" << t.rows[*t.baseline].name
              << "' divided by the row's best; bars are proportional to it"
              << (cut ? ", '>' marks a bar cut short" : "")
              << (repeated ? "; median of each row's runs beside its best" : "") << ")\n";
    }
    if (scaled) {
        *out_ << "(~: a Python row, run at a smaller size and its time scaled to this one; see the line above the "
                 "table)\n";
    }
    out_->flush();
}

}  // namespace corelab
