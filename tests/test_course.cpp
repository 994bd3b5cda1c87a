// The course script and its results tool: ./course refuses what it does not
// know before it builds anything, and `./course report`'s tool turns recorded
// runs (tests/data/results/) into report.md and SVG charts that parse as XML,
// hold one mark per row and are linked from the page.
#include <doctest/doctest.h>
#include <stdlib.h>  // mkdtemp

#include <boost/property_tree/ptree.hpp>       // ptree: the SVG as a tree
#include <boost/property_tree/xml_parser.hpp>  // read_xml: it must parse
#include <chrono>                              // std::chrono::steady_clock
#include <filesystem>                          // std::filesystem
#include <fstream>                             // std::ifstream
#include <map>                                 // std::map
#include <sstream>                             // std::ostringstream
#include <string>                              // std::string
#include <vector>                              // std::vector

#include "corelab/results.hpp"
#include "course_lessons.hpp"  // corelab::course::lessons: lessons/lessons.txt
#include "support/subprocess.hpp"

namespace fs = std::filesystem;
namespace pt = boost::property_tree;
using corelab::test::Outcome;
using corelab::test::run;

namespace {

const fs::path runs = fs::path(CORELAB_TEST_DATA) / "results";
const char* busy_run = "20261201T103000Z-vm";
const char* quiet_run = "20261201T110000Z-lab";

// A results/ folder of copies of the recorded runs, removed afterwards.
struct Results {
    fs::path dir;
    Results() {
        std::string t = (fs::temp_directory_path() / "corelab-report-XXXXXX").string();
        REQUIRE(::mkdtemp(t.data()) != nullptr);
        dir = t;
        for (const char* r : {busy_run, quiet_run}) fs::copy(runs / r, dir / r, fs::copy_options::recursive);
    }
    ~Results() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

struct Svg {
    std::map<std::string, int> texts;  // the text of each <text>, how often
    int polygons = 0;                  // bars
    int points = 0;                    // point symbols drawn by a plot (not the symbols' definitions)
};

// Every node below `tree`, depth first; `in_plot`: inside one of gnuplot's <g id="gnuplot_plot_N">.
void walk(const pt::ptree& tree, const std::string& tag, bool in_plot, Svg& svg) {
    if (tag == "g" && tree.get<std::string>("<xmlattr>.id", "").rfind("gnuplot_plot", 0) == 0) in_plot = true;
    if (tag == "text") {
        std::string t = tree.get_value<std::string>();
        for (const auto& [child, sub] : tree) {
            if (child == "tspan") t += sub.get_value<std::string>();
        }
        ++svg.texts[t];
    }
    if (tag == "polygon") ++svg.polygons;
    if (tag == "use" && in_plot) ++svg.points;
    for (const auto& [child, sub] : tree) walk(sub, child, in_plot, svg);
}

Svg parse_svg(const fs::path& file) {
    pt::ptree tree;
    REQUIRE_NOTHROW(pt::read_xml(file.string(), tree));  // well-formed XML, or the chart is broken
    REQUIRE(tree.count("svg") == 1);
    Svg svg;
    walk(tree, "", false, svg);
    return svg;
}

}  // namespace

TEST_CASE("course: lessons, report and docs refuse unknown arguments with exit 2 before building anything" *
          doctest::timeout(60)) {
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"lessons", "--bogus"}, {"lessons", "--format", "csv"}, {"report", "--bogus"}, {"docs", "--bogus"}}) {
        std::vector<std::string> argv{"/bin/bash", CORELAB_COURSE};
        argv.insert(argv.end(), args.begin(), args.end());
        const Outcome o = run(argv);
        CAPTURE(args[0]);
        CAPTURE(args[1]);
        CHECK(o.exit_code == 2);
        CHECK(o.out.empty());  // nothing built, nothing run
        CHECK(o.err.find("course: " + args[0] + " takes") == 0);
    }
}

TEST_CASE("course: the report has the machine first, every busy warning, and a chart per lesson with one mark per row" *
          doctest::timeout(120)) {
    Results results;
    const fs::path dir = results.dir / busy_run;
    const auto start = std::chrono::steady_clock::now();
    const Outcome o = run({CORELAB_RESULTS_TOOL, "report", dir.string(), "--lessons", CORELAB_LESSON_DIR});
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CAPTURE(o.err);
    REQUIRE(o.exit_code == 0);
    MESSAGE("report of " << std::size(corelab::course::lessons) << " lessons in " << seconds
                         << " s (a debug build: slower than ./course report's)");
    CHECK(seconds < 30.0);
    const std::string md = read(dir / "report.md");
    const auto machine = md.find("## Machine and conditions"), warnings = md.find("## Busy warnings");
    CHECK(machine < warnings);
    CHECK(warnings < md.find("## Lesson 01"));
    CHECK(md.find("| CPU | AMD EPYC |") != std::string::npos);
    CHECK(md.find("| transparent huge pages | madvise |") != std::string::npos);
    for (const char* lesson : {"02_serial_mean", "03_two_process_mean", "08_mpi_mean"}) {
        CHECK(md.find("**lesson " + std::string(lesson) + "**: other programs used") != std::string::npos);
    }
    CHECK(md.find("What the lesson concluded:") != std::string::npos);

    for (const auto& listed : corelab::course::lessons) {
        const std::string l(listed.id);
        CAPTURE(l);
        CHECK(md.find("\n## Lesson " + std::string(listed.number) + " — " + std::string(listed.name) + "\n") !=
              std::string::npos);
        if (!fs::exists(dir / (l + ".csv"))) {  // a lesson newer than the recorded run
            CHECK(md.find("## Lesson " + std::string(listed.number) + " — " + std::string(listed.name) +
                          "\n\nNot recorded in this run") != std::string::npos);
            continue;
        }
        CHECK(md.find("](" + l + ".svg)") != std::string::npos);  // linked from the page
        Svg svg = parse_svg(dir / (l + ".svg"));
        const corelab::Table t = corelab::read_table_csv(dir / (l + ".csv"));
        if (l == "06_parallel_for") {
            // a point per parallel row (not f_call, f_naive, serial_loop or Python's), plus the notebook's points
            int rows = 0;
            for (const auto& r : t.rows)
                rows += r.name.find("processes_") == 0 || r.name.find("threads_") == 0 || r.name.find("sweep_") == 0 ||
                        r.name == "all_cores";
            CHECK(svg.points >= rows + 3 + 2);      // + the laptop's 3 and Python's 2 here
            CHECK(svg.points <= rows + 3 + 2 + 8);  // + a sample in the key for each of 8 series at most
            continue;
        }
        if (l == "07_chunked_file") {  // one group per approach, warm and cold side by side
            for (const char* name : {"serial_read", "chunks_pread_2", "chunks_mmap_2", "split_files_2", "write_file"})
                CHECK(svg.texts[name] == 1);
            continue;
        }
        int charted = 0;
        for (const auto& r : t.rows) {
            const bool shown = (l == "01_lscpu" && r.name != "l3_cache_bytes") || (l == "02_serial_mean" && r.bytes) ||
                               (l == "05_caching" && r.seconds > 0) ||
                               (r.name.rfind("sweep_", 0) != 0 && t.speedup(r).has_value());
            if (!shown) continue;
            CAPTURE(r.name);
            CHECK(svg.texts[r.name] == 1);  // its label, once
            ++charted;
        }
        CHECK(svg.polygons >= charted);  // a bar each (and the key's samples)
    }
    // the worker sweeps have their own charts
    for (const char* sweep : {"03_two_process_mean_sweep", "04_two_thread_mean_sweep"}) {
        CHECK(md.find(std::string("](") + sweep + ".svg)") != std::string::npos);
        CHECK(parse_svg(dir / (std::string(sweep) + ".svg")).points >= 4);
    }
    CHECK(fs::exists(dir / "report.gp"));  // the script, kept for the student to change
}

TEST_CASE("course: --compare puts two runs side by side" * doctest::timeout(120)) {
    Results results;
    const Outcome o = run({CORELAB_RESULTS_TOOL, "report", (results.dir / quiet_run).string(), "--compare",
                           (results.dir / busy_run).string()});
    CAPTURE(o.err);
    REQUIRE(o.exit_code == 0);
    const std::string md = read(results.dir / quiet_run / "report.md");
    CHECK(md.find(std::string("# Lab report: ") + quiet_run + " compared with " + busy_run) == 0);
    CHECK(md.find(std::string("|  | ") + quiet_run + " | " + busy_run + " |") != std::string::npos);
    CHECK(md.find(std::string("best (") + busy_run + ")") != std::string::npos);
    Svg svg = parse_svg(results.dir / quiet_run / "03_two_process_mean.svg");
    CHECK(svg.texts[quiet_run] == 1);  // the key names both runs
    CHECK(svg.texts[busy_run] == 1);
    // a recorded ./course bench of the same host gives lesson 02's chart its bandwidth limit
    fs::create_directory(results.dir / "20261201T120000Z-lab");
    std::ofstream(results.dir / "20261201T120000Z-lab" / "bench_reduce.json")
        << R"({"context": {}, "benchmarks": [{"name": "bandwidth_read/repeats:5_median",
             "run_name": "bandwidth_read/repeats:5", "aggregate_name": "median", "real_time": 8.0,
             "cpu_time": 4.0, "bytes_per_second": 4.0e10}]})";
    REQUIRE(run({CORELAB_RESULTS_TOOL, "report", (results.dir / quiet_run).string()}).exit_code == 0);
    CHECK(read(results.dir / quiet_run / "report.gp")
              .find("memory bandwidth limit (./course bench, bandwidth_read): "
                    "20 GB/s") != std::string::npos);  // per wall second
    CHECK(parse_svg(results.dir / quiet_run / "02_serial_mean.svg")
              .texts.count("memory bandwidth limit (./course bench, bandwidth_read): 20 GB/s") == 1);
    const Outcome missing = run({CORELAB_RESULTS_TOOL, "report", (results.dir / "none").string()});
    CHECK(missing.exit_code == 1);
    CHECK(missing.err.find("run.json does not exist") != std::string::npos);
}
