// Implementation of corelab/report.hpp.
#include "corelab/report.hpp"

#include <algorithm>  // std::max
#include <cmath>      // std::isfinite, std::abs
#include <cstdio>     // std::snprintf
#include <ostream>    // std::ostream

#include "corelab/error.hpp"  // Error

namespace corelab {
namespace {

constexpr int bar_width = 40;

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

}  // namespace

std::string format_seconds(double s) {
    if (!std::isfinite(s)) return "-";
    if (s >= 1.0) return number("%.2f s", s);
    if (s >= 1e-3) return number("%.1f ms", s * 1e3);
    if (s >= 1e-6) return number("%.1f µs", s * 1e6);
    return number("%.0f ns", s * 1e9);
}

Report::Report(Format format, std::ostream& out) : format_(format), out_(&out) {}

void Report::say(const std::string& text) const {
    if (format_ == Format::table) *out_ << text << '\n';
}

void Report::baseline(std::string name, double seconds, std::optional<double> result) {
    if (baseline_) throw Error("report: a table has one baseline row, and '" + rows_[*baseline_].name + "' is it");
    baseline_ = rows_.size();
    rows_.push_back({std::move(name), seconds, result, true});
}

void Report::add(std::string name, double seconds, std::optional<double> result) {
    rows_.push_back({std::move(name), seconds, result, true});
}

void Report::add_uncompared(std::string name, double seconds, std::optional<double> result) {
    rows_.push_back({std::move(name), seconds, result, false});
}

std::optional<double> Report::speedup(const Row& row) const {
    if (!baseline_ || !row.compared || row.seconds <= 0.0) return std::nullopt;
    return rows_[*baseline_].seconds / row.seconds;
}

void Report::print() const {
    if (format_ == Format::csv) {
        *out_ << "name,seconds,result,speedup\n";
        for (const Row& r : rows_) {
            *out_ << r.name << ',' << number("%.9g", r.seconds) << ',';
            if (r.result) *out_ << number("%.17g", *r.result);
            *out_ << ',';
            if (auto s = speedup(r)) *out_ << number("%.4g", *s);
            *out_ << '\n';
        }
        out_->flush();
        return;
    }
    double longest = 0.0;
    std::size_t name_width = 4;
    for (const Row& r : rows_) {
        longest = std::max(longest, r.seconds);
        name_width = std::max(name_width, r.name.size());
    }
    *out_ << '\n'
          << pad("row", name_width, true) << "  " << pad("time", 10, false) << "  " << pad("result", 19, false) << "  "
          << pad("speed-up", 8, false) << "  time\n";
    for (const Row& r : rows_) {
        const auto s = speedup(r);
        const int bars =
            longest > 0.0 && r.seconds > 0.0 ? std::max(1, static_cast<int>(r.seconds / longest * bar_width + 0.5)) : 0;
        *out_ << pad(r.name, name_width, true) << "  "
              << pad(r.seconds > 0.0 ? format_seconds(r.seconds) : "-", 10, false) << "  "
              << pad(r.result ? format_result(*r.result) : "-", 19, false) << "  "
              << pad(s ? number("%.2fx", *s) : "-", 8, false)
              << (bars > 0 ? "  " + std::string(bars, '#') : std::string()) << '\n';
    }
    if (baseline_) *out_ << "(speed-up: the time of '" << rows_[*baseline_].name << "' divided by the row's time)\n";
    out_->flush();
}

}  // namespace corelab
