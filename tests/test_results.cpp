// Tests of corelab/results.hpp: a table written as CSV and read back field by
// field, refused when it is not one, and run.json parsed (not grepped) for
// every field it promises.
#include <doctest/doctest.h>
#include <stdlib.h>  // mkdtemp

#include <boost/json.hpp>  // parse (built in the corelab library)
#include <filesystem>      // std::filesystem
#include <fstream>         // std::ifstream
#include <sstream>         // std::ostringstream
#include <string>          // std::string

#include "corelab/error.hpp"
#include "corelab/results.hpp"

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        std::string t = (fs::temp_directory_path() / "corelab-results-XXXXXX").string();
        REQUIRE(::mkdtemp(t.data()) != nullptr);
        path = t;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

corelab::Table sample_table() {
    corelab::Table t;
    t.lesson = "03_two_process_mean";
    t.n = 100003;
    t.seed = 7;
    t.repeat = 3;
    t.workers = 2;
    t.load.known = true;
    t.load.cpus = 2;
    t.load.seconds = 4.5;
    t.load.other_cpus = 0.9;
    t.load.steal_cpus = 0.04;
    corelab::Row serial;
    serial.name = "serial_loop";
    serial.seconds = 0.5;
    serial.runs = {0.52, 0.5, 0.51};
    serial.result = 0.50001234567890123;
    serial.bytes = 800024;
    t.baseline = 0;
    corelab::Row spawn;
    spawn.name = "process_spawn";
    spawn.seconds = 0.0008;
    spawn.compared = false;
    corelab::Row sweep;
    sweep.name = "sweep_processes_4";
    sweep.seconds = 0.25;
    sweep.runs = {0.25, 0.3};
    sweep.result = 0.5;
    sweep.workers = 4;
    corelab::Row python;
    python.name = "python_two_process";
    python.seconds = 40.0;
    python.runs = {40.0};
    python.workers = 2;
    python.measured_at = 2000000;
    python.measured_seconds = 0.8;
    t.rows = {serial, spawn, sweep, python};
    return t;
}

std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

TEST_CASE("results: a table written as CSV reads back with every field") {
    const corelab::Table t = sample_table();
    std::ostringstream csv;
    corelab::write_table_csv(csv, t);
    const corelab::Table back = corelab::parse_table_csv(csv.str(), "sample");
    CHECK(back.lesson == "03_two_process_mean");
    CHECK(back.n == 100003);
    CHECK(back.seed == 7);
    CHECK(back.repeat == 3);
    CHECK(back.workers == 2);
    REQUIRE(back.baseline.has_value());
    CHECK(*back.baseline == 0);
    CHECK(back.load.cpus == 2);
    CHECK(back.load.seconds == doctest::Approx(4.5));
    CHECK(back.load.other_cpus == doctest::Approx(0.9));
    CHECK(back.load.steal_cpus == doctest::Approx(0.04));
    CHECK(back.busy());
    REQUIRE(back.rows.size() == 4);
    const auto& s = back.rows[0];
    CHECK(s.name == "serial_loop");
    CHECK(s.seconds == 0.5);
    CHECK(s.runs == std::vector<double>{0.52, 0.5, 0.51});
    CHECK(s.median() == 0.51);
    CHECK(*s.result == 0.50001234567890123);  // 17 digits: exact
    CHECK(*s.bytes == 800024);
    CHECK_FALSE(s.workers.has_value());  // the lesson's own
    CHECK_FALSE(back.rows[1].compared);
    CHECK_FALSE(back.rows[1].result.has_value());
    CHECK(back.rows[1].runs.empty());
    CHECK(*back.rows[2].workers == 4);
    CHECK(back.speedup("sweep_processes_4") == doctest::Approx(2.0));
    CHECK(*back.rows[3].measured_at == 2000000);
    CHECK(*back.rows[3].measured_seconds == doctest::Approx(0.8));
    // the columns, by name, as a spreadsheet sees them
    std::istringstream lines(csv.str());
    std::string header, first;
    std::getline(lines, header);
    std::getline(lines, first);
    CHECK(header == corelab::csv_header);
    CHECK(first.rfind("03_two_process_mean,serial_loop,baseline,100003,7,3,2,2,0.5,0.51,0.52,0.52;0.5;0.51,", 0) == 0);
}

TEST_CASE("results: what is not a recorded table is refused with the line that is wrong") {
    std::ostringstream csv;
    corelab::write_table_csv(csv, sample_table());
    const std::string good = csv.str();
    CHECK_THROWS_WITH_AS(corelab::parse_table_csv("name,seconds,result,speedup\nx,1,,\n", "old.csv"),
                         doctest::Contains("old.csv is not a recorded lesson table"), corelab::Error);
    std::string short_line = good + "03_two_process_mean,extra,compared\n";
    CHECK_THROWS_WITH_AS(corelab::parse_table_csv(short_line, "t.csv"), doctest::Contains("t.csv:6: 3 fields, not 22"),
                         corelab::Error);
    std::string bad_number = good;
    bad_number.replace(bad_number.find(",0.5,0.51,"), 10, ",fast,0.51,");
    CHECK_THROWS_WITH_AS(corelab::parse_table_csv(bad_number, "t.csv"), doctest::Contains("'fast' is not a number"),
                         corelab::Error);
    std::string bad_role = good;
    bad_role.replace(bad_role.find(",baseline,"), 10, ",leader,");
    CHECK_THROWS_WITH_AS(corelab::parse_table_csv(bad_role, "t.csv"), doctest::Contains("role 'leader'"),
                         corelab::Error);
    CHECK_THROWS_AS(corelab::read_table_csv("/nonexistent/t.csv"), corelab::Error);
}

TEST_CASE("results: run.json holds the machine, the build, the source and each lesson's conditions") {
    TempDir dir;
    const fs::path run = dir.path / "20260101T000000Z-host";
    corelab::start_run(run, corelab::RunSource{"0123456789abcdef0123456789abcdef01234567", true});
    corelab::LoadSample started, ended;
    started.at = std::chrono::system_clock::now();
    started.loadavg = std::array<double, 3>{0.5, 0.25, 0.125};
    ended.at = started.at + std::chrono::seconds(5);
    ended.loadavg = std::array<double, 3>{1.5, 0.5, 0.25};
    const corelab::Table t = sample_table();
    corelab::record_lesson(run, t, started, ended, {"lesson03_two_process_mean", "--n", "100003"});
    corelab::end_run(run);

    // the CSV beside it reads back as the table
    const corelab::Table csv = corelab::read_table_csv(run / "03_two_process_mean.csv");
    CHECK(csv.rows.size() == t.rows.size());

    const json::object r = json::parse(read(run / "run.json")).as_object();
    CHECK(r.at("schema").as_int64() == 1);
    CHECK(r.at("run").as_string() == "20260101T000000Z-host");
    CHECK(r.at("started").as_string().size() == 20);  // 2026-01-01T00:00:00Z
    CHECK(r.at("ended").as_string().size() == 20);
    const auto& m = r.at("machine").as_object();
    for (const char* key : {"host", "cpu_model", "vendor", "architecture", "transparent_hugepages", "kernel", "os"}) {
        CAPTURE(key);
        CHECK(m.at(key).is_string());
        CHECK(!m.at(key).as_string().empty());
    }
    CHECK(m.at("logical_cpus").to_number<double>() >= 1);
    CHECK(m.at("physical_cores").to_number<double>() >= 1);
    CHECK(m.at("hardware_concurrency").to_number<double>() >= 1);
    CHECK(m.at("memory_bytes").to_number<double>() > 1e6);
    const auto& caches = m.at("caches").as_object();
    for (const char* level : {"l1d", "l1i", "l2", "l3"}) {
        CAPTURE(level);
        const auto& c = caches.at(level);  // null where the machine does not say
        if (!c.is_null()) CHECK(c.at("bytes").to_number<double>() > 0);
    }
    const auto& b = r.at("build").as_object();
    CHECK(b.at("compiler").as_string().size() > 3);
    CHECK(b.at("flags").is_string());
    CHECK(b.at("build_type").is_string());
    CHECK(b.at("boost").as_string().starts_with("1."));
    const auto& src = r.at("source").as_object();
    CHECK(src.at("commit").as_string() == "0123456789abcdef0123456789abcdef01234567");
    CHECK(src.at("dirty").as_bool());
    const auto& l = r.at("lessons").at("03_two_process_mean").as_object();
    CHECK(l.at("csv").as_string() == "03_two_process_mean.csv");
    CHECK(l.at("command").as_array().size() == 3);
    CHECK(l.at("started").as_string() == corelab::utc_time(started.at));
    CHECK(l.at("ended").as_string() == corelab::utc_time(ended.at));
    CHECK(l.at("seconds").to_number<double>() == doctest::Approx(4.5));
    CHECK(l.at("load_average_start").as_array().at(0).to_number<double>() == 0.5);
    CHECK(l.at("load_average_end").as_array().at(2).to_number<double>() == 0.25);
    CHECK(l.at("cpus").to_number<double>() == 2);
    CHECK(l.at("other_cpus").to_number<double>() == doctest::Approx(0.9));
    CHECK(l.at("steal_cpus").to_number<double>() == doctest::Approx(0.04));
    CHECK(l.at("busy_threshold_cpus").to_number<double>() == doctest::Approx(0.1));
    CHECK(l.at("busy").as_bool());
    CHECK(l.at("warning").as_string().starts_with("other programs used 0.9 of 2 CPUs"));

    // a second lesson joins the first; the source stays
    corelab::Table two = t;
    two.lesson = "04_two_thread_mean";
    two.load.other_cpus = 0.0;
    two.load.steal_cpus = 0.0;
    corelab::record_lesson(run, two, started, ended, {});
    const json::object again = json::parse(read(run / "run.json")).as_object();
    CHECK(again.at("lessons").as_object().size() == 2);
    CHECK_FALSE(again.at("lessons").at("04_two_thread_mean").at("busy").as_bool());
    CHECK(again.at("lessons").at("04_two_thread_mean").at("warning").is_null());
    CHECK(again.at("source").at("dirty").as_bool());
}

TEST_CASE("results: a lesson recorded without ./course makes its own run.json, without a source") {
    TempDir dir;
    corelab::Table t = sample_table();
    t.lesson = "02_serial_mean";
    corelab::record_lesson(dir.path / "standalone", t, {}, {}, {});
    const json::object r = json::parse(read(dir.path / "standalone" / "run.json")).as_object();
    CHECK(r.at("source").is_null());
    CHECK(r.at("lessons").at("02_serial_mean").at("load_average_start").is_null());
    CHECK(r.at("machine").at("cpu_model").is_string());
    CHECK_THROWS_AS(corelab::start_run("/proc/no-such-dir/run"), corelab::Error);
}

TEST_CASE("results: pretty JSON is the same JSON, indented, with numbers as people write them") {
    const std::string compact = R"({"a":1E-1,"b":[5E-1,2.5E0,-3E0],"c":{"d":"x,y:{z}","e":[]},"f":[{"g":null}]})";
    const std::string pretty = corelab::pretty_json(compact);
    CHECK(json::parse(pretty) == json::parse(compact));
    CHECK(pretty.find("\"a\": 0.1") != std::string::npos);
    CHECK(pretty.find("[0.5, 2.5, -3.0]") !=
          std::string::npos);                                // still a double  // short arrays of numbers on one line
    CHECK(pretty.find("\"x,y:{z}\"") != std::string::npos);  // strings untouched
    CHECK(pretty.find("\n  \"c\": {\n    \"d\"") != std::string::npos);
}

TEST_CASE("results: lesson ids and UTC times") {
    CHECK(corelab::lesson_id("lesson02_serial_mean") == "02_serial_mean");
    CHECK(corelab::lesson_id("other") == "other");
    CHECK(corelab::utc_time(std::chrono::system_clock::time_point{}) == "1970-01-01T00:00:00Z");
}
