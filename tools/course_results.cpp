// course_results — the recorded runs of ./course: begin and end one, and turn
// one (or two, side by side) into a lab report with charts.
//
//   course_results start DIR [--commit SHA] [--dirty]   run.json: machine, build, source, start
//   course_results end DIR                              run.json: end
//   course_results report RUN [--compare RUN2] [--lessons BUILD_DIR] [--bench FILE.json]
//
// `report` reads RUN/run.json and RUN/NN_*.csv (results.hpp), writes one
// gnuplot script (RUN/report.gp, kept so that a student can change a chart)
// that draws an SVG chart per lesson beside it, runs gnuplot once, and writes
// RUN/report.md: the machine and conditions first, every busy warning, then per
// lesson its chart, its rows and what the lesson concluded from them
// (BUILD_DIR/lessonNN --conclude). The bandwidth limit of lesson 02's chart
// comes from the newest recorded `./course bench` run of the same host
// (results/*/bench_reduce.json), or from --bench. `./course` calls it.
#include <algorithm>       // std::sort, std::find
#include <boost/json.hpp>  // run.json and Google Benchmark's JSON (built in the corelab library)
#include <cmath>           // std::pow
#include <cstdio>          // popen, std::snprintf
#include <cstdlib>         // std::system
#include <filesystem>      // std::filesystem
#include <fstream>         // std::ifstream, std::ofstream
#include <iostream>        // std::cout, std::cerr
#include <map>             // std::map
#include <optional>        // std::optional
#include <sstream>         // std::ostringstream
#include <string>          // std::string
#include <vector>          // std::vector

#include "corelab/error.hpp"     // Error
#include "corelab/notebook.hpp"  // the laptop's figures: the notebook's own points
#include "corelab/results.hpp"   // read_table_csv, start_run, end_run

namespace fs = std::filesystem;
namespace json = boost::json;
using corelab::Row;
using corelab::Table;

namespace {

const std::vector<std::string> lessons = {"01_lscpu",   "02_serial_mean",  "03_two_process_mean", "04_two_thread_mean",
                                          "05_caching", "06_parallel_for", "07_chunked_file",     "08_mpi_mean"};

std::string read_text(const fs::path& p) {
    std::ifstream in(p);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string fmt(const char* f, double v) {
    char t[64];
    std::snprintf(t, sizeof t, f, v);
    return t;
}

// One recorded run: its run.json and its lessons' tables.
struct Run {
    fs::path dir;
    std::string name;
    json::object record;
    std::map<std::string, Table> tables;

    const json::object& machine() const { return record.at("machine").as_object(); }
    std::string text(const json::object& o, const char* key) const {
        const auto* v = o.if_contains(key);
        if (v == nullptr || v->is_null()) return "unknown";
        if (v->is_string()) return std::string(v->as_string());
        return json::serialize(*v);
    }
    unsigned cores() const {
        const auto* v = machine().if_contains("physical_cores");
        if (v != nullptr && v->is_number()) return static_cast<unsigned>(v->to_number<double>());
        return static_cast<unsigned>(machine().at("hardware_concurrency").to_number<double>());
    }
    const json::object* lesson(const std::string& id) const {
        const auto* ls = record.if_contains("lessons");
        if (ls == nullptr || !ls->is_object()) return nullptr;
        const auto* l = ls->as_object().if_contains(id);
        return l != nullptr && l->is_object() ? &l->as_object() : nullptr;
    }
    std::string warning(const std::string& id) const {
        const auto* l = lesson(id);
        if (l == nullptr) return {};
        const auto* w = l->if_contains("warning");
        return w != nullptr && w->is_string() ? std::string(w->as_string()) : std::string();
    }
};

Run load_run(const fs::path& dir) {
    Run run;
    run.dir = dir;
    std::error_code fec;
    const fs::path real = fs::canonical(dir, fec);  // results/latest: the run it points at
    run.name = (fec ? fs::absolute(dir).lexically_normal() : real).filename().string();
    const fs::path file = dir / "run.json";
    if (!fs::exists(file)) throw corelab::Error(file.string() + " does not exist: is " + dir.string() + " a run?");
    json::error_code ec;
    auto v = json::parse(read_text(file), ec);
    if (ec || !v.is_object()) throw corelab::Error(file.string() + " is not JSON: " + ec.message());
    run.record = std::move(v.as_object());
    for (const auto& id : lessons) {
        if (fs::exists(dir / (id + ".csv"))) run.tables.emplace(id, corelab::read_table_csv(dir / (id + ".csv")));
    }
    return run;
}

// The median bandwidth_read of a Google Benchmark JSON file, in GB/s.
std::optional<double> bandwidth_of(const fs::path& file) {
    json::error_code ec;
    const auto v = json::parse(read_text(file), ec);
    if (ec || !v.is_object() || !v.as_object().contains("benchmarks")) return std::nullopt;
    std::optional<double> found;
    for (const auto& b : v.at("benchmarks").as_array()) {
        const auto& o = b.as_object();
        const auto* name = o.if_contains("run_name");
        const auto* bps = o.if_contains("bytes_per_second");
        // "bandwidth_read/min_time:0.500/repeats:5": the row, whatever its Google Benchmark suffix
        if (name == nullptr || bps == nullptr) continue;
        const std::string_view run_name = name->as_string();
        if (run_name != "bandwidth_read" && run_name.rfind("bandwidth_read/", 0) != 0) continue;
        const auto* agg = o.if_contains("aggregate_name");
        // bytes_per_second is per CPU second; per wall second, as the summary prints it, on a shared machine too
        const double cpu = o.at("cpu_time").to_number<double>(), real = o.at("real_time").to_number<double>();
        if (agg == nullptr || agg->as_string() == "median") found = bps->to_number<double>() * cpu / real / 1e9;
        if (agg != nullptr && agg->as_string() == "median") break;
    }
    return found;
}

// The newest recorded bench of the same host beside `run` (results/*/bench_reduce.json).
std::optional<std::pair<double, std::string>> recorded_bandwidth(const Run& run) {
    std::vector<fs::path> dirs;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fs::absolute(run.dir).parent_path(), ec)) {
        if (e.is_directory() && !e.is_symlink() && fs::exists(e.path() / "bench_reduce.json")) dirs.push_back(e.path());
    }
    std::sort(dirs.rbegin(), dirs.rend());
    // runs are named <UTC date-time>-<host> by ./course: the same host, by name
    const auto host_of = [](const std::string& name) {
        const auto dash = name.find('-');
        return dash == std::string::npos ? std::string() : name.substr(dash + 1);
    };
    const std::string want = host_of(run.name).empty() ? run.text(run.machine(), "host") : host_of(run.name);
    for (const auto& d : dirs) {
        if (host_of(d.filename().string()) != want) continue;
        if (auto bw = bandwidth_of(d / "bench_reduce.json")) return std::pair{*bw, d.filename().string()};
    }
    return std::nullopt;
}

// A gnuplot string in double quotes (titles hold apostrophes: "the notebook's laptop").
std::string quote(const std::string& s) {
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\\\"") : c == '\n' ? std::string("\\n") : std::string(1, c);
    return q + "\"";
}

std::string as_speedup(double v) {
    return corelab::format_speedup(v);
}
std::string as_seconds(double v) {
    return corelab::format_seconds(v);
}
std::string as_number(double v) {
    return fmt("%.3g", v);
}

std::string gbps(const Row& r) {
    return r.bytes && r.seconds > 0 ? fmt("%.3g", *r.bytes / r.seconds / 1e9) : "?";
}

// ------------------------------------------------------------------ the gnuplot script

struct Chart {
    std::string file;   // 02_serial_mean.svg
    std::string title;  // what it shows
};

class Script {
public:
    explicit Script(std::vector<const Run*> runs) : runs_(std::move(runs)) {
        gp_ << "# The charts of report.md. Change one and run: gnuplot report.gp\n"
               "set terminal svg size 960,540 dynamic noenhanced font 'sans,13' background rgb 'white'\n"
               "set encoding utf8\n"
               "set style fill solid 0.85 border -1\n"
               "set grid ytics lc rgb '#d0d0d0'\n"
               "set key inside top right box opaque\n"
               "set xtics nomirror rotate by -35 left\n"
               "set bmargin 7\n";
    }

    // A chart of one value per row, the runs side by side: `value` returns nullopt for rows it leaves out.
    // Bars: one group per name, one bar per column (a run, or the notebook's laptop), the value over each.
    struct Column {
        std::string title;
        std::vector<std::optional<double>> values;  // per name; nullopt: no bar
    };
    // `label` writes the value over a bar ("1.85x", "70.2 µs").
    using Label = std::string (*)(double);
    void columns(const Chart& c, const std::string& ylabel, const std::vector<std::string>& names,
                 const std::vector<Column>& cols, const std::vector<std::string>& extra, bool log, double at_least,
                 Label label) {
        double top = at_least;  // the y range ends a little above the tallest bar or line
        const std::string block = data_name(c);
        gp_ << "\n" << block << " << EOD\n";
        for (std::size_t k = 0; k < names.size(); ++k) {
            gp_ << '"' << names[k] << '"';
            for (const auto& col : cols) {
                const auto& v = col.values[k];
                gp_ << ' ' << (v ? fmt("%.6g", *v) : "NaN") << ' ' << quote(v ? label(*v) : "");
                if (v) top = std::max(top, *v);
            }
            gp_ << '\n';
        }
        gp_ << "EOD\n";
        begin(c, ylabel);
        const double room = 1.12 + 0.09 * static_cast<double>(cols.size() + extra.size());  // for the key
        gp_ << "set style data histogram\nset style histogram clustered gap 1\nset boxwidth 0.9 relative\n"
            << "set xrange [-0.6:" << names.size() - 0.4 << "]\n"
            << (log ? "set logscale y\nset format y '%g'\nset yrange [*:" + fmt("%g", top * std::pow(30.0, room)) +
                          "]\n"
                    : "set yrange [0:" + fmt("%g", top * room) + "]\n");
        const std::size_t n = cols.size();
        gp_ << "plot ";
        for (std::size_t i = 0; i < n; ++i) {
            gp_ << (i ? ", " : "") << block << " using " << 2 * i + 2 << (i == 0 ? ":xtic(1)" : "") << " title "
                << quote(cols[i].title);
        }
        for (std::size_t i = 0; i < n; ++i) {  // the value over each bar
            const double shift = (static_cast<double>(i) - (static_cast<double>(n) - 1) / 2) / (n + 1.0);
            gp_ << ", " << block << " using ($0" << fmt("%+.3f", shift) << "):" << 2 * i + 2 << ":" << 2 * i + 3
                << " with labels offset 0,0.7 font ',10' notitle";
        }
        for (const auto& e : extra) gp_ << ", " << e;
        gp_ << "\n";
        end();
    }

    // One bar per row that `value` keeps, the runs side by side; `fixed`: more columns of given values per row
    // name (the notebook's laptop).
    using Fixed = std::vector<std::pair<std::string, std::map<std::string, double>>>;
    template <class V>
    void bars(const Chart& c, const std::string& lesson, const std::string& ylabel, V value, Label label,
              const std::vector<std::string>& extra, bool log = false, const Fixed& fixed = {}, double at_least = 0) {
        std::vector<std::string> names;  // rows of any run, in the first run's order
        for (const Run* r : runs_) {
            if (!r->tables.count(lesson)) continue;
            for (const Row& row : r->tables.at(lesson).rows) {
                if (value(r->tables.at(lesson), row) && std::find(names.begin(), names.end(), row.name) == names.end())
                    names.push_back(row.name);
            }
        }
        std::vector<Column> cols;
        for (const Run* r : runs_) {
            Column col{r->name, {}};
            const Table* t = r->tables.count(lesson) ? &r->tables.at(lesson) : nullptr;
            for (const auto& n : names) {
                const Row* row = t != nullptr ? t->find(n) : nullptr;
                col.values.push_back(row != nullptr ? value(*t, *row) : std::nullopt);
            }
            cols.push_back(col);
        }
        for (const auto& [title, values] : fixed) {
            Column col{title, {}};
            for (const auto& n : names)
                col.values.push_back(values.count(n) ? std::optional(values.at(n)) : std::nullopt);
            cols.push_back(col);
        }
        columns(c, ylabel, names, cols, extra, log, at_least, label);
    }

    // Speed-up against workers: one line per (run, series), the ideal min(x, cores), the cores marked.
    struct Series {
        std::string title;
        std::vector<std::pair<double, double>> points;  // (workers, speed-up)
        std::string style;                              // gnuplot's "with ..." part
    };
    void lines(const Chart& c, const std::vector<Series>& series, unsigned cores, double max_x) {
        double top = cores;
        for (const auto& s : series) {
            for (const auto& p : s.points) top = std::max(top, p.second);
        }
        std::size_t k = 0;
        for (const auto& s : series) {
            gp_ << "\n" << data_name(c) << k++ << " << EOD\n";
            for (const auto& [x, y] : s.points) gp_ << x << ' ' << fmt("%.6g", y) << '\n';
            gp_ << "EOD\n";
        }
        gp_ << "set terminal svg size 1160,540 dynamic noenhanced font 'sans,13' background rgb 'white'\n";  // the key
        begin(c, "speed-up over the serial loop (x)");
        gp_ << "set xlabel 'workers (n_jobs, processes or threads)'\nset xtics norotate nomirror 1\nunset bmargin\n"
            << "set xrange [0.5:" << max_x + 0.5 << "]\nset yrange [0:" << top * 1.12
            << "]\nset key outside right top box\n"
            << "set arrow 1 from " << cores << ", graph 0 to " << cores
            << ", graph 1 nohead dt 3 lw 2 lc rgb '#555555'\n"
            << "set label 1 '" << cores << " cores' at " << cores << ", graph 0.95 offset 0.5,0\n"
            << "plot (x < " << cores << " ? x : " << cores << ") with lines dt 2 lw 2 lc rgb '#888888' title 'ideal: "
            << "min(n, " << cores << ")'";
        k = 0;
        for (const auto& s : series) {
            gp_ << ", " << data_name(c) << k++ << " using 1:2 " << s.style << " title " << quote(s.title);
        }
        gp_ << "\nunset arrow 1\nunset label 1\nset xtics rotate by -35 left\nset bmargin 7\nset key inside top right "
               "box opaque\n";
        end();
        gp_ << "set terminal svg size 960,540 dynamic noenhanced font 'sans,13' background rgb 'white'\n";
    }

    std::string text() const { return gp_.str(); }

private:
    std::string data_name(const Chart& c) const {
        std::string n = "$chart_" + c.file.substr(0, c.file.find('.'));
        for (char& ch : n) ch = (ch == '-' || ch == '.') ? '_' : ch;
        return n;
    }
    void begin(const Chart& c, const std::string& ylabel) {
        gp_ << "set output '" << c.file << "'\nset title " << quote(c.title) << "\nset ylabel " << quote(ylabel) << "\n"
            << "unset xlabel\nunset logscale y\n";
    }
    void end() { gp_ << "unset output\n"; }

    std::vector<const Run*> runs_;
    std::ostringstream gp_;
};

// ------------------------------------------------------------------ report.md

std::string md_row(const std::vector<std::string>& cells) {
    std::string s = "|";
    for (const auto& c : cells) s += " " + c + " |";
    return s + "\n";
}

std::string conclusions(const fs::path& lessons_dir, const std::string& id, const fs::path& csv) {
    if (lessons_dir.empty()) return {};
    const fs::path exe = lessons_dir / ("lesson" + id);
    if (!fs::exists(exe)) return {};
    const std::string cmd = "'" + exe.string() + "' --conclude '" + fs::absolute(csv).string() + "' 2>/dev/null";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return {};
    std::string out;
    char buf[4096];
    for (std::size_t got; (got = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, got);
    if (::pclose(p) != 0) return {};
    // the lesson prints each of its sentences as a paragraph, a blank line after it
    std::string md, item;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) {
            if (!item.empty()) md += "- " + item + "\n";
            item.clear();
        } else {
            item += (item.empty() ? "" : " ") + line;
        }
    }
    if (!item.empty()) md += "- " + item + "\n";
    return md;
}

std::string rows_table(const std::vector<const Run*>& runs, const std::string& id) {
    std::vector<std::string> head{"row"};
    for (const Run* r : runs) {
        const std::string s = runs.size() > 1 ? " (" + r->name + ")" : "";
        head.insert(head.end(), {"best" + s, "median" + s, "speed-up" + s});
    }
    std::string md = md_row(head);
    md += md_row(std::vector<std::string>(head.size(), "---"));
    std::vector<std::string> names;
    for (const Run* r : runs) {
        if (!r->tables.count(id)) continue;
        for (const Row& row : r->tables.at(id).rows)
            if (std::find(names.begin(), names.end(), row.name) == names.end()) names.push_back(row.name);
    }
    for (const auto& n : names) {
        std::vector<std::string> cells{"`" + n + "`"};
        for (const Run* r : runs) {
            const Table* t = r->tables.count(id) ? &r->tables.at(id) : nullptr;
            const Row* row = t != nullptr ? t->find(n) : nullptr;
            if (row == nullptr) {
                cells.insert(cells.end(), {"", "", ""});
                continue;
            }
            const auto s = t->speedup(*row);
            const std::string mark = row->measured_at ? "~" : "";
            cells.push_back(row->seconds > 0 ? mark + corelab::format_seconds(row->seconds)
                                             : (row->result ? fmt("%.6g", *row->result) : "-"));
            cells.push_back(row->runs.size() > 1 ? mark + corelab::format_seconds(row->median()) : "-");
            cells.push_back(s ? corelab::format_speedup(*s) : "-");
        }
        md += md_row(cells);
    }
    return md;
}

std::string cache_text(const Run& r) {
    const auto& c = r.machine().at("caches").as_object();
    std::string s;
    for (const char* k : {"l1d", "l1i", "l2", "l3"}) {
        const auto& v = c.at(k);
        s += std::string(s.empty() ? "" : ", ") + k + " " +
             (v.is_object() ? std::string(v.at("text").as_string()) : std::string("unknown"));
    }
    return s;
}

std::string source_text(const Run& r) {
    const auto* s = r.record.if_contains("source");
    if (s == nullptr || !s->is_object()) return "unknown (the lessons ran without ./course)";
    const auto& o = s->as_object();
    return "commit " + std::string(o.at("commit").as_string()).substr(0, 12) +
           (o.at("dirty").as_bool() ? " with uncommitted changes" : ", unmodified");
}

int report(const fs::path& dir, const std::optional<fs::path>& compare, const fs::path& lessons_dir,
           std::optional<fs::path> bench) {
    const Run a = load_run(dir);
    std::optional<Run> b;
    if (compare) b = load_run(*compare);
    std::vector<const Run*> runs{&a};
    if (b) runs.push_back(&*b);

    std::ostringstream md;
    md << "# Lab report: " << a.name << (b ? " compared with " + b->name : "") << "\n\n"
       << "Recorded by `./course lessons` (or `./course lesson N`) and drawn by `./course report`. Every figure below "
          "comes from the CSV files beside this page; the charts from `report.gp` (gnuplot).\n\n"
       << "## Machine and conditions\n\n";
    std::vector<std::string> head{""};
    for (const Run* r : runs) head.push_back(r->name);
    md << md_row(head) << md_row(std::vector<std::string>(head.size(), "---"));
    const auto line = [&](const std::string& what, auto get) {
        std::vector<std::string> cells{what};
        for (const Run* r : runs) cells.push_back(get(*r));
        md << md_row(cells);
    };
    line("host", [](const Run& r) { return r.text(r.machine(), "host"); });
    line("CPU", [](const Run& r) { return r.text(r.machine(), "cpu_model"); });
    line("logical CPUs / physical cores", [](const Run& r) {
        return r.text(r.machine(), "logical_cpus") + " / " + r.text(r.machine(), "physical_cores");
    });
    line("caches", [](const Run& r) { return cache_text(r); });
    line("memory", [](const Run& r) {
        const auto* m = r.machine().if_contains("memory_bytes");
        return m != nullptr && m->is_number() ? fmt("%.1f GiB", m->to_number<double>() / (1ull << 30)) : "unknown";
    });
    line("transparent huge pages", [](const Run& r) { return r.text(r.machine(), "transparent_hugepages"); });
    line("kernel", [](const Run& r) { return r.text(r.machine(), "kernel"); });
    line("OS", [](const Run& r) { return r.text(r.machine(), "os"); });
    line("compiler", [](const Run& r) { return r.text(r.record.at("build").as_object(), "compiler"); });
    line("flags", [](const Run& r) { return "`" + r.text(r.record.at("build").as_object(), "flags") + "`"; });
    line("Boost", [](const Run& r) { return r.text(r.record.at("build").as_object(), "boost"); });
    line("source", [](const Run& r) { return source_text(r); });
    line("started / ended",
         [](const Run& r) { return r.text(r.record, "started") + " / " + r.text(r.record, "ended"); });

    md << "\n## Busy warnings\n\n";
    bool any = false;
    for (const Run* r : runs) {
        for (const auto& id : lessons) {
            const std::string w = r->warning(id);
            if (w.empty()) continue;
            md << "- **" << (runs.size() > 1 ? r->name + ", " : "") << "lesson " << id << "**: " << w << "\n";
            any = true;
        }
    }
    if (!any) {
        md << "None: in every lesson other programs and the hypervisor used less than " << corelab::busy_threshold_cpus
           << " of a CPU.\n";
    }

    std::optional<std::pair<double, std::string>> bw;
    if (bench) {
        if (auto v = bandwidth_of(*bench)) bw = std::pair{*v, bench->string()};
    } else {
        bw = recorded_bandwidth(a);
    }

    Script gp(runs);
    std::vector<Chart> charts;
    const unsigned cores = a.cores();
    for (const auto& id : lessons) {
        md << "\n## Lesson " << id.substr(0, 2) << " — " << id.substr(3) << "\n\n";
        if (!a.tables.count(id) && !(b && b->tables.count(id))) {
            md << "Not recorded in this run" << (id == "08_mpi_mean" ? " (lesson 08 needs MPI: ./course deps)." : ".")
               << "\n";
            continue;
        }
        const Table& t = a.tables.count(id) ? a.tables.at(id) : b->tables.at(id);
        const std::string busy = a.warning(id).empty() ? "" : "\n(a busy machine: see the warnings above)";
        const unsigned workers = t.workers != 0 ? t.workers : 1;
        Chart c{id + ".svg", ""};
        if (id == "01_lscpu") {
            c.title = "Lesson 01: what this machine offers parallel work, beside the notebook's laptop";
            static const std::map<std::string, double> laptop{
                {"logical_cpus", 8}, {"physical_cores", 4}, {"threads_per_core", 2}, {"sockets", 1}, {"numa_nodes", 1}};
            gp.bars(c, id, "how many",
                    [](const Table&, const Row& r) { return laptop.count(r.name) ? r.result : std::nullopt; },
                    as_number, {}, false, {{"the notebook's laptop (i5-8265U)", laptop}});
        } else if (id == "02_serial_mean") {
            c.title = "Lesson 02: how fast each row reads the " + corelab::notebook::with_commas(double(t.n)) +
                      " numbers" + busy;
            std::vector<std::string> extra;
            if (bw) {
                extra.push_back(fmt("%g", bw->first) +
                                " with lines dt 2 lw 2 lc rgb '#cc0000' title 'memory bandwidth "
                                "limit (./course bench, bandwidth_read): " +
                                fmt("%.3g", bw->first) + " GB/s'");
            }
            gp.bars(
                c, id, "GB/s (10^9 bytes per second)",
                [](const Table&, const Row& r) -> std::optional<double> {
                    if (!r.bytes || r.seconds <= 0) return std::nullopt;
                    return *r.bytes / r.seconds / 1e9;
                },
                as_number, extra, false, {}, bw ? bw->first : 0.0);
        } else if (id == "03_two_process_mean" || id == "04_two_thread_mean" || id == "08_mpi_mean") {
            const char* what = id == "03_two_process_mean"  ? "processes"
                               : id == "04_two_thread_mean" ? "threads"
                                                            : "MPI ranks";
            unsigned w = workers;
            for (const Row& r : t.rows) {
                if (id == "08_mpi_mean" && r.workers) w = *r.workers;
            }
            const std::string ideal_w = std::to_string(std::min(w, cores));
            c.title =
                "Lesson " + id.substr(0, 2) + ": speed-up of each row with " + std::to_string(w) + " " + what + busy;
            gp.bars(
                c, id, "speed-up over the serial loop (x)",
                [](const Table& tb, const Row& r) -> std::optional<double> {
                    if (r.name.rfind("sweep_", 0) == 0) return std::nullopt;  // the sweep has its own chart
                    return tb.speedup(r);
                },
                as_speedup,
                {ideal_w + " with lines dt 2 lw 2 lc rgb '#cc0000' title 'ideal: " + ideal_w + "x (" +
                 std::to_string(w) + " " + what + ", " + std::to_string(cores) + " cores)'"},
                false, {}, double(std::min(w, cores)));
        } else if (id == "05_caching") {
            c.title = "Lesson 05: the time of each row, computing and loading from the cache" + busy;
            gp.bars(
                c, id, "seconds (log scale)",
                [](const Table&, const Row& r) -> std::optional<double> {
                    if (r.seconds <= 0) return std::nullopt;
                    return r.seconds;
                },
                as_seconds, {}, true);
        } else if (id == "07_chunked_file") {
            c.title = "Lesson 07: how fast the file was read, warm (page cache) and cold (disk)" + busy;
            const std::string w = std::to_string(workers);
            const std::vector<std::string> names{"serial_read",      "chunks_pread_" + w, "chunks_mmap_" + w,
                                                 "split_files_" + w, "write_file",        "make_split_files"};
            std::vector<Script::Column> cols;
            for (const Run* r : runs) {
                if (!r->tables.count(id)) continue;
                const Table& tb = r->tables.at(id);
                const std::string suffix = runs.size() > 1 ? " (" + r->name + ")" : "";
                Script::Column warm{"read warm (page cache)" + suffix, {}}, cold{"read cold (disk)" + suffix, {}},
                    write{"written (fdatasync)" + suffix, {}};
                for (const auto& n : names) {
                    const bool writes = n.rfind("write", 0) == 0 || n.rfind("make", 0) == 0;
                    const auto rate = [&](const std::string& name) -> std::optional<double> {
                        const Row* row = tb.find(name);
                        if (row == nullptr || !row->bytes || row->seconds <= 0) return std::nullopt;
                        return *row->bytes / row->seconds / 1e9;
                    };
                    warm.values.push_back(writes ? std::nullopt : rate(n));
                    cold.values.push_back(writes ? std::nullopt : rate("cold_" + n));
                    write.values.push_back(writes ? rate(n) : std::nullopt);
                }
                cols.insert(cols.end(), {warm, cold, write});
            }
            gp.columns(c, "GB/s (10^9 bytes per second)", names, cols, {}, false, 0, as_number);
        }
        if (id == "06_parallel_for" || id == "03_two_process_mean" || id == "04_two_thread_mean") {
            std::vector<Script::Series> series;
            double max_x = 2.0 * cores;
            for (const Run* r : runs) {
                if (!r->tables.count(id)) continue;
                const Table& tb = r->tables.at(id);
                const std::string dash = r == runs.front() ? "" : " dt 2";
                // one mark per row: the sweep's rows as lines, the notebook's n_jobs (lesson 06) as points
                for (const bool swept : {true, false}) {
                    for (const std::string backend : {"processes", "threads"}) {
                        const bool first = r == runs.front();  // a second run: lighter colours, dashed lines
                        const std::string color =
                            " lc rgb '" +
                            std::string(backend == "processes" ? (first ? "#1f77b4" : "#6baed6")
                                                               : (first ? "#e6550d" : "#fdae6b")) +
                            "'";
                        Script::Series s{(runs.size() > 1 ? r->name + ", " : std::string("this machine, ")) + backend +
                                             (swept ? " (--sweep)" : ": the notebook's n_jobs"),
                                         {},
                                         (swept ? "with linespoints lw 2 pt 7 ps 1.2" + dash
                                                : std::string("with points pt 5 ps 1.5")) +
                                             color};
                        for (const Row& row : tb.rows) {
                            const bool mine = swept ? row.name.rfind("sweep_" + backend + "_", 0) == 0
                                                    : id == "06_parallel_for" &&
                                                          (row.name.rfind(backend + "_", 0) == 0 ||
                                                           (row.name == "all_cores" && backend == "processes"));
                            const unsigned w = row.workers.value_or(tb.workers);
                            if (mine && w != 0 && tb.speedup(row)) {
                                s.points.emplace_back(w, *tb.speedup(row));
                                max_x = std::max(max_x, double(w));
                            }
                        }
                        std::sort(s.points.begin(), s.points.end());
                        if (!s.points.empty()) series.push_back(s);
                    }
                }
                if (id == "06_parallel_for" && tb.find("python_threads_2") != nullptr && r == runs.front()) {
                    const double loop = tb.seconds("python_loop");
                    series.push_back({"Python here, processes: over its own loop",
                                      {{2, loop / tb.seconds("python_processes_2")}},
                                      "with points pt 9 ps 1.8 lc rgb '#1f77b4'"});
                    series.push_back({"Python here, threads: over its own loop",
                                      {{2, loop / tb.seconds("python_threads_2")}},
                                      "with points pt 11 ps 1.8 lc rgb '#e6550d'"});
                }
            }
            if (id == "06_parallel_for") {
                using namespace corelab::notebook;
                series.push_back({"the notebook's laptop (Python), processes",
                                  {{2, f_loop_seconds / f_processes_2_seconds}, {6, f_loop_seconds / f_jobs_6_seconds}},
                                  "with points pt 4 ps 1.8 lw 2 lc rgb '#1f77b4'"});
                series.push_back({"the notebook's laptop (Python), threads",
                                  {{2, f_loop_seconds / f_threads_2_seconds}},
                                  "with points pt 12 ps 2 lw 2 lc rgb '#e6550d'"});
                max_x = std::max(max_x, 6.0);
                c.title = "Lesson 06: speed-up of Parallel against n_jobs" + busy;
                gp.lines(c, series, cores, max_x);
            } else if (!series.empty() && series.front().points.size() > 0) {
                bool swept = false;
                for (const Row& row : t.rows) swept = swept || row.name.rfind("sweep_", 0) == 0;
                if (swept) {
                    Chart s{id + "_sweep.svg", "Lesson " + id.substr(0, 2) + ": speed-up against workers" + busy};
                    gp.lines(s, series, cores, max_x);
                    charts.push_back(c);
                    md << "![" << c.title << "](" << c.file << ")\n\n";
                    c = s;
                }
            }
        }
        charts.push_back(c);
        md << "![" << c.title << "](" << c.file << ")\n\n";
        md << rows_table(runs, id);
        if (id == "02_serial_mean" || id == "07_chunked_file") {
            md << "\nGB/s of each row (" << a.name << "): ";
            for (const Row& r : t.rows) md << "`" << r.name << "` " << gbps(r) << (&r == &t.rows.back() ? "" : ", ");
            md << "\n";
            if (id == "02_serial_mean" && !bw) {
                md << "\nNo `./course bench` of this host is recorded: run it to draw the memory bandwidth limit.\n";
            }
        }
        for (const Run* r : runs) {
            if (!r->tables.count(id)) continue;
            const std::string said = conclusions(lessons_dir, id, r->dir / (id + ".csv"));
            if (!said.empty()) {
                md << "\nWhat the lesson concluded" << (runs.size() > 1 ? " (" + r->name + ")" : "") << ":\n\n" << said;
            }
        }
    }

    const fs::path script = dir / "report.gp";
    {
        std::ofstream out(script);
        out << gp.text();
    }
    const std::string cmd = "cd '" + fs::absolute(dir).string() + "' && gnuplot report.gp";
    if (std::system(cmd.c_str()) != 0) {
        throw corelab::Error("gnuplot failed on " + script.string() + " (is gnuplot-nox installed? ./course deps)");
    }
    std::ofstream(dir / "report.md") << md.str();
    std::cout << "wrote " << (dir / "report.md").string() << " and " << charts.size() << " charts:";
    for (const auto& c : charts) std::cout << ' ' << c.file;
    std::cout << '\n';
    return 0;
}

int usage() {
    std::cerr << "usage: course_results start DIR [--commit SHA] [--dirty]\n"
                 "       course_results end DIR\n"
                 "       course_results report RUN [--compare RUN2] [--lessons BUILD_DIR] [--bench FILE.json]\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() < 2) return usage();
    try {
        const std::string& verb = args[0];
        const fs::path dir = args[1];
        if (verb == "start") {
            corelab::RunSource source;
            bool known = false;
            for (std::size_t i = 2; i < args.size(); ++i) {
                if (args[i] == "--commit" && i + 1 < args.size()) {
                    source.commit = args[++i];
                    known = true;
                } else if (args[i] == "--dirty") {
                    source.dirty = true;
                } else {
                    return usage();
                }
            }
            corelab::start_run(dir, known ? std::optional(source) : std::nullopt);
            return 0;
        }
        if (verb == "end" && args.size() == 2) {
            corelab::end_run(dir);
            return 0;
        }
        if (verb == "report") {
            std::optional<fs::path> compare, bench;
            fs::path lessons_dir;
            for (std::size_t i = 2; i < args.size(); ++i) {
                if (i + 1 >= args.size()) return usage();
                if (args[i] == "--compare") {
                    compare = args[++i];
                } else if (args[i] == "--lessons") {
                    lessons_dir = args[++i];
                } else if (args[i] == "--bench") {
                    bench = args[++i];
                } else {
                    return usage();
                }
            }
            return report(dir, compare, lessons_dir, bench);
        }
        return usage();
    } catch (const std::exception& e) {
        std::cerr << "course_results: " << e.what() << '\n';
        return 1;
    }
}
