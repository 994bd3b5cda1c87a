// Implementation of corelab/results.hpp.
#include "corelab/results.hpp"

#include <sys/utsname.h>  // uname
#include <unistd.h>       // gethostname

#include <boost/json/src.hpp>  // Boost.JSON, built here from its headers (no compiled library needed)
#include <boost/version.hpp>   // BOOST_VERSION
#include <cerrno>              // errno
#include <cstdio>              // std::snprintf
#include <cstdlib>             // std::strtod
#include <cstring>             // std::strerror
#include <ctime>               // gmtime_r, strftime
#include <fstream>             // std::ifstream, std::ofstream
#include <ostream>             // std::ostream
#include <sstream>             // std::ostringstream

#include "corelab/cpu_info.hpp"  // read_cpu_info: the machine
#include "corelab/error.hpp"     // Error

namespace json = boost::json;
namespace fs = std::filesystem;

namespace corelab {
namespace {

std::string read_text(const fs::path& file) {
    std::ifstream in(file);
    std::ostringstream text;
    if (in) text << in.rdbuf();
    return text.str();
}

void write_text(const fs::path& file, const std::string& text) {
    const fs::path tmp = file.string() + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << text;
        out.flush();
        if (!out) throw Error("cannot write " + tmp.string() + ": " + std::strerror(errno));
    }
    std::error_code ec;
    fs::rename(tmp, file, ec);  // whole or not at all: a reader never sees half a file
    if (ec) throw Error("cannot write " + file.string() + ": " + ec.message());
}

std::string g(double v) {
    char text[40];
    std::snprintf(text, sizeof text, "%.9g", v);
    return text;
}

json::value optional_count(std::optional<unsigned> v) {
    return v ? json::value(*v) : json::value(nullptr);
}

json::value cache_json(const std::optional<CacheSummary>& c) {
    if (!c) return nullptr;
    return json::object{{"bytes", c->bytes}, {"instances", c->instances}, {"text", format_cache(*c)}};
}

std::string hostname() {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) return "unknown";
    return name;
}

// The value in brackets of /sys/kernel/mm/transparent_hugepage/enabled: "always [madvise] never".
std::string thp_mode() {
    const std::string t = read_text("/sys/kernel/mm/transparent_hugepage/enabled");
    const auto open = t.find('['), close = t.find(']');
    return open != std::string::npos && close > open ? t.substr(open + 1, close - open - 1) : "unknown";
}

json::value memory_bytes() {
    std::istringstream in(read_text("/proc/meminfo"));
    for (std::string key; in >> key;) {
        double kb = 0;
        in >> kb;
        if (key == "MemTotal:") return static_cast<std::uint64_t>(kb * 1024);
        in.ignore(1 << 10, '\n');
    }
    return nullptr;
}

std::string os_name() {
    std::istringstream in(read_text("/etc/os-release"));
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("PRETTY_NAME=", 0) != 0) continue;
        std::string v = line.substr(12);
        if (v.size() >= 2 && v.front() == '"') v = v.substr(1, v.size() - 2);
        return v;
    }
    return "unknown";
}

json::object machine_json() {
    const CpuInfo cpu = read_cpu_info();
    utsname u{};
    ::uname(&u);
    return json::object{
        {"host", hostname()},
        {"cpu_model", cpu.model_name.value_or("unknown")},
        {"vendor", cpu.vendor_id.value_or("unknown")},
        {"architecture", cpu.architecture},
        {"logical_cpus", optional_count(cpu.logical_cpus)},
        {"physical_cores", optional_count(cpu.physical_cores())},
        {"threads_per_core", optional_count(cpu.threads_per_core)},
        {"sockets", optional_count(cpu.sockets)},
        {"numa_nodes", optional_count(cpu.numa_nodes)},
        {"hardware_concurrency", cpu.hardware_concurrency},
        {"caches", json::object{{"l1d", cache_json(cpu.l1d)},
                                {"l1i", cache_json(cpu.l1i)},
                                {"l2", cache_json(cpu.l2)},
                                {"l3", cache_json(cpu.l3)}}},
        {"memory_bytes", memory_bytes()},
        {"transparent_hugepages", thp_mode()},
        {"kernel", std::string(u.sysname) + " " + u.release + " " + u.version},
        {"os", os_name()},
    };
}

json::object build_json() {
#if defined(__clang__)
    const std::string compiler = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    const std::string compiler = std::string("GCC ") + __VERSION__;
#else
    const std::string compiler = "unknown";
#endif
#ifdef CORELAB_BUILD_FLAGS
    const std::string flags = CORELAB_BUILD_FLAGS;
#else
    const std::string flags = "unknown";
#endif
#ifdef CORELAB_BUILD_TYPE
    const std::string type = CORELAB_BUILD_TYPE;
#else
    const std::string type = "unknown";
#endif
    const std::string boost = std::to_string(BOOST_VERSION / 100000) + "." +
                              std::to_string(BOOST_VERSION / 100 % 1000) + "." + std::to_string(BOOST_VERSION % 100);
    return json::object{{"compiler", compiler}, {"flags", flags}, {"build_type", type}, {"boost", boost}};
}

json::object read_run(const fs::path& dir) {
    const fs::path file = dir / "run.json";
    std::error_code ec;
    if (!fs::exists(file, ec)) return {};
    const std::string text = read_text(file);
    json::error_code jec;
    json::value v = json::parse(text, jec);
    if (jec || !v.is_object()) throw Error(file.string() + " is not a run record (" + jec.message() + ")");
    return std::move(v.as_object());
}

// An existing record, or a new one with the machine and the build.
json::object open_run(const fs::path& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw Error("cannot create the results directory " + dir.string() + ": " + ec.message());
    json::object run = read_run(dir);
    if (run.empty()) {
        run["schema"] = 1;
        run["run"] = dir.filename().string();
        run["started"] = utc_time(std::chrono::system_clock::now());
        run["machine"] = machine_json();
        run["build"] = build_json();
        run["source"] = nullptr;
        run["lessons"] = json::object{};
    }
    return run;
}

void save_run(const fs::path& dir, const json::object& run) {
    write_text(dir / "run.json", pretty_json(json::serialize(run)) + "\n");
}

json::value loadavg_json(const std::optional<std::array<double, 3>>& a) {
    if (!a) return nullptr;
    return json::array{(*a)[0], (*a)[1], (*a)[2]};
}

std::vector<std::string> split(std::string_view s, char sep) {
    std::vector<std::string> parts;
    std::string field;
    for (char c : s) {
        if (c == sep) {
            parts.push_back(field);
            field.clear();
        } else if (c != '\r') {
            field += c;
        }
    }
    parts.push_back(field);
    return parts;
}

}  // namespace

std::string utc_time(std::chrono::system_clock::time_point t) {
    const std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

std::string lesson_id(std::string_view program) {
    if (program.rfind("lesson", 0) == 0) program.remove_prefix(6);
    return std::string(program);
}

std::string pretty_json(std::string_view compact) {
    std::string out;
    int depth = 0;
    std::vector<bool> inline_;  // per open container: printed on one line ([0.5, 0.4, 0.3], {}, [])
    bool in_string = false, escaped = false;
    const auto newline = [&] { out += '\n' + std::string(static_cast<std::size_t>(2 * depth), ' '); };
    for (std::size_t i = 0; i < compact.size(); ++i) {
        const char c = compact[i];
        if (in_string) {
            out += c;
            if (escaped) {
                escaped = false;
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        switch (c) {
            case '"':
                in_string = true;
                out += c;
                break;
            case '{':
            case '[': {
                out += c;
                const std::size_t close = compact.find(c == '[' ? ']' : '}', i);
                const bool empty = i + 1 < compact.size() && (compact[i + 1] == '}' || compact[i + 1] == ']');
                const bool numbers = c == '[' && compact.find_first_of("{[\"", i + 1) > close;
                inline_.push_back(empty || numbers);
                if (!inline_.back()) {
                    ++depth;
                    newline();
                }
                break;
            }
            case '}':
            case ']':
                if (!inline_.empty() && !inline_.back()) {
                    --depth;
                    newline();
                }
                if (!inline_.empty()) inline_.pop_back();
                out += c;
                break;
            case ',':
                out += c;
                if (!inline_.empty() && inline_.back()) {
                    out += ' ';
                } else {
                    newline();
                }
                break;
            case ':':
                out += ": ";
                break;
            default:
                if (c == '-' || (c >= '0' && c <= '9')) {  // Boost.JSON writes 0.1 as 1E-1: write it as people do
                    const std::size_t end = std::min(compact.find_first_not_of("-+.eE0123456789", i), compact.size());
                    const std::string token(compact.substr(i, end - i));
                    if (token.find_first_of(".eE") == std::string::npos) {
                        out += token;
                    } else {
                        char text[40];
                        std::snprintf(text, sizeof text, "%.10g", std::strtod(token.c_str(), nullptr));
                        out += text;
                        if (std::string_view(text).find_first_of(".en") == std::string_view::npos) out += ".0";
                    }
                    i = end - 1;
                } else {
                    out += c;
                }
        }
    }
    return out;
}

void write_table_csv(std::ostream& out, const Table& t) {
    out << csv_header << '\n';
    for (std::size_t i = 0; i < t.rows.size(); ++i) {
        const Row& r = t.rows[i];
        const char* role = t.baseline == i ? "baseline" : r.compared ? "compared" : "uncompared";
        const unsigned workers = r.workers.value_or(t.workers);
        std::string runs;
        for (double s : r.runs) runs += (runs.empty() ? "" : ";") + g(s);
        const auto speedup = t.speedup(r);
        out << t.lesson << ',' << r.name << ',' << role << ',' << t.n << ',' << t.seed << ',' << t.repeat << ','
            << (t.workers != 0 ? std::to_string(t.workers) : "") << ',' << (workers != 0 ? std::to_string(workers) : "")
            << ',' << g(r.seconds) << ',' << g(r.median()) << ',' << g(r.slowest()) << ',' << runs << ',';
        if (r.result) {
            char text[40];
            std::snprintf(text, sizeof text, "%.17g", *r.result);
            out << text;
        }
        out << ',' << (speedup ? g(*speedup) : "") << ',' << (r.bytes ? g(*r.bytes) : "") << ','
            << (r.measured_at ? g(*r.measured_at) : "") << ',' << (r.measured_seconds ? g(*r.measured_seconds) : "")
            << ',' << t.load.cpus << ',' << g(t.load.seconds) << ',' << g(t.load.other_cpus) << ','
            << g(t.load.steal_cpus) << ',' << (t.load.busy() ? 1 : 0) << '\n';
    }
}

Table parse_table_csv(std::string_view text, const std::string& what) {
    const auto lines = split(text, '\n');
    if (lines.empty() || lines[0] != csv_header) {
        throw Error(what + " is not a recorded lesson table: its first line must be " + std::string(csv_header));
    }
    const std::size_t columns = split(csv_header, ',').size();
    Table t;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        if (lines[i].empty()) continue;
        const auto f = split(lines[i], ',');
        const std::string where = what + ":" + std::to_string(i + 1);
        if (f.size() != columns) {
            throw Error(where + ": " + std::to_string(f.size()) + " fields, not " + std::to_string(columns));
        }
        const auto number = [&](std::size_t k) -> std::optional<double> {
            if (f[k].empty()) return std::nullopt;
            char* end = nullptr;
            const double v = std::strtod(f[k].c_str(), &end);
            if (end == f[k].c_str() || *end != '\0') throw Error(where + ": '" + f[k] + "' is not a number");
            return v;
        };
        const auto need = [&](std::size_t k) {
            const auto v = number(k);
            if (!v) throw Error(where + ": the " + split(csv_header, ',')[k] + " field is empty");
            return *v;
        };
        t.lesson = f[0];
        t.n = static_cast<std::size_t>(need(3));
        t.seed = static_cast<std::uint64_t>(need(4));
        t.repeat = static_cast<int>(need(5));
        t.workers = static_cast<unsigned>(number(6).value_or(0));
        Row r;
        r.name = f[1];
        if (f[2] == "baseline") {
            t.baseline = t.rows.size();
        } else if (f[2] == "uncompared") {
            r.compared = false;
        } else if (f[2] != "compared") {
            throw Error(where + ": role '" + f[2] + "' is not baseline, compared or uncompared");
        }
        if (const auto w = number(7); w && static_cast<unsigned>(*w) != t.workers)
            r.workers = static_cast<unsigned>(*w);
        r.seconds = need(8);
        if (!f[11].empty()) {
            for (const auto& s : split(f[11], ';')) {
                char* end = nullptr;
                r.runs.push_back(std::strtod(s.c_str(), &end));
                if (end == s.c_str() || *end != '\0') throw Error(where + ": runs_s holds '" + s + "'");
            }
        }
        r.result = number(12);
        r.bytes = number(14);
        r.measured_at = number(15);
        r.measured_seconds = number(16);
        t.load.cpus = static_cast<unsigned>(need(17));
        t.load.seconds = need(18);
        t.load.other_cpus = need(19);
        t.load.steal_cpus = need(20);
        t.load.known = true;
        t.rows.push_back(std::move(r));
    }
    return t;
}

Table read_table_csv(const fs::path& file) {
    std::ifstream in(file);
    if (!in) throw Error("cannot read " + file.string() + ": " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    return parse_table_csv(text.str(), file.string());
}

void start_run(const fs::path& dir, const std::optional<RunSource>& source) {
    json::object run = open_run(dir);
    run["started"] = utc_time(std::chrono::system_clock::now());
    if (source) run["source"] = json::object{{"commit", source->commit}, {"dirty", source->dirty}};
    save_run(dir, run);
}

void end_run(const fs::path& dir) {
    json::object run = open_run(dir);
    run["ended"] = utc_time(std::chrono::system_clock::now());
    save_run(dir, run);
}

void record_lesson(const fs::path& dir, const Table& t, const LoadSample& started, const LoadSample& ended,
                   const std::vector<std::string>& args) {
    json::object run = open_run(dir);
    const std::string csv = t.lesson + ".csv";
    std::ostringstream text;
    write_table_csv(text, t);
    write_text(dir / csv, text.str());
    json::array command;
    for (const auto& a : args) command.push_back(json::value(a));
    const std::string warning = busy_warning(t.load);
    json::value& lessons = run["lessons"];
    if (!lessons.is_object()) lessons = json::object{};
    lessons.as_object()[t.lesson] = json::object{
        {"csv", csv},
        {"command", command},
        {"started", utc_time(started.at)},
        {"ended", utc_time(ended.at)},
        {"seconds", t.load.seconds},
        {"load_average_start", loadavg_json(started.loadavg)},
        {"load_average_end", loadavg_json(ended.loadavg)},
        {"cpus", t.load.cpus},
        {"other_cpus", t.load.other_cpus},
        {"steal_cpus", t.load.steal_cpus},
        {"load_known", t.load.known},
        {"busy_threshold_cpus", busy_threshold_cpus},
        {"busy", t.load.busy()},
        {"warning", warning.empty() ? json::value(nullptr) : json::value(warning)},
    };
    save_run(dir, run);
}

}  // namespace corelab
