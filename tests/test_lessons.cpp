// The lessons run as programs: their CSV rows, their results, and their
// answers to bad command lines (exit 2 with a usage line, or 1 with a message;
// never a signal, never a hang).
#include <doctest/doctest.h>
#include <fcntl.h>      // open
#include <signal.h>     // kill, killpg
#include <sys/prctl.h>  // prctl(PR_SET_PDEATHSIG)
#include <sys/stat.h>   // chmod, mkfifo
#include <sys/wait.h>   // waitpid
#include <unistd.h>     // geteuid, getpid, fork, _exit

#include <algorithm>       // std::count, std::max, std::min_element, std::sort
#include <boost/json.hpp>  // run.json, parsed (built in the corelab library)
#include <chrono>          // std::chrono::seconds
#include <cmath>           // std::abs
#include <cstdlib>         // std::strtod, std::getenv, mkdtemp
#include <filesystem>      // std::filesystem
#include <fstream>         // std::ifstream, std::ofstream
#include <iterator>        // std::istreambuf_iterator
#include <limits>          // std::numeric_limits
#include <regex>           // std::regex
#include <string>          // std::string
#include <thread>          // std::this_thread::sleep_for
#include <vector>          // std::vector

#include "corelab/chunked_file.hpp"
#include "corelab/dataset.hpp"
#include "corelab/reduce.hpp"
#include "corelab/results.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"

using corelab::test::lines;
using corelab::test::Outcome;
using corelab::test::run;

namespace {

struct CsvRow {
    std::string name;
    double seconds;
    std::string result;
    std::string speedup;
};

std::vector<CsvRow> csv_rows(const Outcome& o) {
    const auto ls = lines(o.out);
    REQUIRE(!ls.empty());
    REQUIRE(ls[0] == "name,seconds,result,speedup");
    std::vector<CsvRow> rows;
    for (std::size_t i = 1; i < ls.size(); ++i) {
        std::vector<std::string> f;
        std::string field;
        for (char c : ls[i] + ",") {
            if (c == ',') {
                f.push_back(field);
                field.clear();
            } else {
                field += c;
            }
        }
        REQUIRE_MESSAGE(f.size() == 4, "bad csv line: " << ls[i]);
        rows.push_back({f[0], std::strtod(f[1].c_str(), nullptr), f[2], f[3]});
    }
    return rows;
}

}  // namespace

TEST_CASE("lesson 02: csv rows and both means equal the library's mean of the same data" * doctest::timeout(60)) {
    const Outcome o = run(
        {corelab::test::lesson("02_serial_mean"), "--n", "100003", "--seed", "7", "--repeat", "1", "--format", "csv"});
    CHECK(o.exit_code == 0);
    CHECK(o.err.empty());
    const auto rows = csv_rows(o);
    REQUIRE(rows.size() == 3);
    CHECK(rows[0].name == "generate");
    CHECK(rows[0].result.empty());
    CHECK(rows[1].name == "serial_loop");
    CHECK(rows[1].speedup == "1");
    CHECK(rows[2].name == "serial_fast");
    const auto d = corelab::make_uniform(100003, 7);
    const double expected = corelab::sum_loop(d).mean();
    CHECK(std::strtod(rows[1].result.c_str(), nullptr) == expected);  // printed with 17 digits: exact
    CHECK(std::strtod(rows[2].result.c_str(), nullptr) == doctest::Approx(expected).epsilon(1e-12));
    for (const auto& r : rows) CHECK(r.seconds >= 0.0);
}

TEST_CASE("lesson 02: the table names its rows and the notebook's figure" * doctest::timeout(60)) {
    const Outcome o = run({corelab::test::lesson("02_serial_mean"), "--n", "50000", "--repeat", "1"});
    CHECK(o.exit_code == 0);
    for (const char* s : {"serial_loop", "serial_fast", "generate", "25.5 s", "both means agree", "speed-up"}) {
        CHECK_MESSAGE(o.out.find(s) != std::string::npos, "missing: " << s);
    }
}

namespace {

// A fresh results folder for one test, removed afterwards.
struct RecordDir {
    std::filesystem::path path;
    RecordDir() {
        std::string t = (std::filesystem::temp_directory_path() / "corelab-record-XXXXXX").string();
        REQUIRE(::mkdtemp(t.data()) != nullptr);
        path = t;
    }
    ~RecordDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    boost::json::object run_json() const {
        std::ifstream in(path / "run.json");
        REQUIRE(in);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        return boost::json::parse(text).as_object();
    }
};

// Two programs that only burn CPU, as another student's build would; killed and reaped on destruction.
struct Spinners {
    std::vector<pid_t> pids;
    Spinners() {
        for (int i = 0; i < 2; ++i) {
            const pid_t pid = ::fork();
            REQUIRE(pid >= 0);
            if (pid == 0) {
                ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
                for (;;) asm volatile("");           // burn CPU, make no system call
            }
            pids.push_back(pid);
        }
    }
    ~Spinners() {
        for (const pid_t p : pids) {
            ::kill(p, SIGKILL);
            ::waitpid(p, nullptr, 0);
        }
    }
};

}  // namespace

TEST_CASE("lessons: --record writes every row with its parameters and runs, and run.json its conditions" *
          doctest::timeout(120)) {
    RecordDir dir;
    const Outcome o = run({corelab::test::lesson("02_serial_mean"), "--n", "100003", "--seed", "7", "--repeat", "3",
                           "--record", dir.path.string(), "--format", "csv"});
    REQUIRE(o.exit_code == 0);
    const corelab::Table t = corelab::read_table_csv(dir.path / "02_serial_mean.csv");
    CHECK(t.lesson == "02_serial_mean");
    CHECK(t.n == 100003);
    CHECK(t.seed == 7);
    CHECK(t.repeat == 3);
    CHECK(t.workers == 0);  // lesson 02 has none
    CHECK(t.load.cpus >= 1);
    CHECK(t.load.seconds > 0.0);
    REQUIRE(t.rows.size() == 3);
    const auto& loop = t.at("serial_loop");
    CHECK(t.baseline == 1u);
    CHECK(loop.runs.size() == 3);
    CHECK(loop.seconds == *std::min_element(loop.runs.begin(), loop.runs.end()));
    CHECK(loop.median() >= loop.seconds);
    CHECK(loop.slowest() >= loop.median());
    CHECK(*loop.result == corelab::sum_loop(corelab::make_uniform(100003, 7)).mean());
    CHECK(*loop.bytes == 100003.0 * 8);
    CHECK_FALSE(t.at("generate").compared);
    CHECK(t.at("serial_fast").runs.size() == 3);
    // the CSV's own text: every line has every column
    std::ifstream csv(dir.path / "02_serial_mean.csv");
    std::string header;
    std::getline(csv, header);
    CHECK(header == corelab::csv_header);
    for (std::string line; std::getline(csv, line);) CHECK(std::count(line.begin(), line.end(), ',') == 21);

    const auto r = dir.run_json();
    const auto& l = r.at("lessons").at("02_serial_mean").as_object();
    CHECK(l.at("csv").as_string() == "02_serial_mean.csv");
    CHECK(l.at("command").as_array().at(0).as_string().ends_with("lesson02_serial_mean"));
    CHECK(l.at("started").as_string() <= l.at("ended").as_string());
    CHECK(l.at("load_average_start").as_array().size() == 3);
    CHECK(l.at("load_known").as_bool());
    CHECK(l.at("busy").as_bool() == l.at("warning").is_string());
    CHECK(r.at("machine").at("logical_cpus").to_number<double>() >= 1);
    CHECK(r.at("build").at("flags").as_string().find("-fsanitize") != boost::json::string::npos);  // this build's

    // a second lesson joins the run; its sweep rows carry their worker counts
    const Outcome sweep = run({corelab::test::lesson("03_two_process_mean"), "--n", "10007", "--repeat", "1", "--sweep",
                               "1,3", "--record", dir.path.string(), "--format", "csv"});
    REQUIRE(sweep.exit_code == 0);
    const corelab::Table t3 = corelab::read_table_csv(dir.path / "03_two_process_mean.csv");
    CHECK(t3.workers == 2);
    CHECK(*t3.at("sweep_processes_1").workers == 1);
    CHECK(*t3.at("sweep_processes_3").workers == 3);
    CHECK(dir.run_json().at("lessons").as_object().size() == 2);
}

TEST_CASE("lessons: beside two busy programs a lesson says so above its table, on a quiet machine it does not" *
          doctest::timeout(120)) {
    const std::string quiet_stat = std::string(CORELAB_TEST_DATA) + "/proc_stat/before";
    {
        RecordDir dir;
        Spinners spinning;
        const Outcome o = run({corelab::test::lesson("02_serial_mean"), "--n", "4000000", "--repeat", "5", "--record",
                               dir.path.string()});
        REQUIRE(o.exit_code == 0);
        const auto warning = o.out.find("other programs used ");
        REQUIRE_MESSAGE(warning != std::string::npos, o.out);
        CHECK(warning < o.out.find("  speed-up  bar\n"));  // above the table's header
        CHECK(o.out.find("run again when it is quiet") != std::string::npos);
        const auto r = dir.run_json();
        const auto& l = r.at("lessons").at("02_serial_mean").as_object();
        CHECK(l.at("busy").as_bool());
        CHECK(l.at("other_cpus").to_number<double>() > 0.5);  // two spinners: about a CPU or more
        CHECK(l.at("warning").as_string().starts_with("other programs used"));
    }
    {
        RecordDir dir;  // the same lesson with /proc/stat standing still: nobody else ran
        const Outcome o =
            run({"/usr/bin/env", "CORELAB_PROC_STAT=" + quiet_stat, corelab::test::lesson("02_serial_mean"), "--n",
                 "4000000", "--repeat", "5", "--record", dir.path.string()});
        REQUIRE(o.exit_code == 0);
        CHECK(o.out.find("other programs used") == std::string::npos);
        CHECK(o.out.find("other programs shared the CPUs") == std::string::npos);
        const auto r = dir.run_json();
        const auto& l = r.at("lessons").at("02_serial_mean").as_object();
        CHECK_FALSE(l.at("busy").as_bool());
        CHECK(l.at("other_cpus").to_number<double>() == 0.0);
        CHECK(l.at("warning").is_null());
    }
}

TEST_CASE("lessons: bad command lines exit 2 with a usage line and impossible sizes exit 1" * doctest::timeout(60)) {
    for (const char* name : {"01_lscpu", "02_serial_mean", "03_two_process_mean", "04_two_thread_mean", "05_caching",
                             "06_parallel_for", "07_chunked_file"}) {
        const std::string exe = corelab::test::lesson(name);
        CAPTURE(name);
        for (std::vector<std::string> args : std::vector<std::vector<std::string>>{{"--n", "0"},
                                                                                   {"--n", "-5"},
                                                                                   {"--n", "abc"},
                                                                                   {"--unknown"},
                                                                                   {"--format", "xml"},
                                                                                   {"--repeat"},
                                                                                   {"--n", "1", "000", "000"}}) {
            args.insert(args.begin(), exe);
            const Outcome o = run(args);
            CAPTURE(args[1]);
            CHECK(o.exit_code == 2);
            CHECK(o.signal == 0);
            CHECK(o.err.find("error: ") == 0);
            CHECK(o.err.find("usage: lesson") != std::string::npos);
        }
        const Outcome h = run({exe, "--help"});
        CHECK(h.exit_code == 0);
        CHECK(h.out.find("usage: ") != std::string::npos);
    }
    // 10^13 doubles: 80 TB. A clear runtime error with a size that fits, before anything is made.
    for (const char* name : {"02_serial_mean", "03_two_process_mean", "04_two_thread_mean", "05_caching"}) {
        CAPTURE(name);
        const Outcome big = run({corelab::test::lesson(name), "--n", "10000000000000"});
        CHECK(big.exit_code == 1);
        CHECK(big.signal == 0);
        CHECK(big.err.find("error: lesson " + std::string(name, 2) + " at n = 10000000000000 (") == 0);
        CHECK(big.err.find("GB of memory at once") != std::string::npos);
        CHECK(big.err.find("use a smaller --n (--n ") != std::string::npos);
    }
}

TEST_CASE("lesson 01: csv rows count what the library reads" * doctest::timeout(60)) {
    const Outcome o = run({corelab::test::lesson("01_lscpu"), "--format", "csv"});
    CHECK(o.exit_code == 0);
    const auto rows = csv_rows(o);
    REQUIRE(!rows.empty());
    bool logical = false;
    for (const auto& r : rows) {
        if (r.name == "logical_cpus") {
            logical = true;
            CHECK(std::strtod(r.result.c_str(), nullptr) >= 1.0);
        }
    }
    CHECK(logical);
}

TEST_CASE("lesson 03: csv rows in order and every mean equals the serial one" * doctest::timeout(120)) {
    const Outcome o = run({corelab::test::lesson("03_two_process_mean"), "--n", "100003", "--seed", "7", "--repeat",
                           "1", "--format", "csv"});
    CHECK(o.exit_code == 0);
    CHECK(o.err.empty());
    const auto rows = csv_rows(o);
    const std::vector<std::string> names{"serial_loop", "two_process",     "process_spawn",
                                         "share_fork",  "share_named_shm", "copy_through_queue"};
    REQUIRE(rows.size() == names.size());
    const double expected = corelab::sum_loop(corelab::make_uniform(100003, 7)).mean();
    for (std::size_t i = 0; i < rows.size(); ++i) {
        CAPTURE(rows[i].name);
        CHECK(rows[i].name == names[i]);
        CHECK(rows[i].seconds > 0.0);
        if (rows[i].name == "process_spawn") {
            CHECK(rows[i].result.empty());
            CHECK(rows[i].speedup.empty());
        } else {
            CHECK(std::strtod(rows[i].result.c_str(), nullptr) == doctest::Approx(expected).epsilon(1e-12));
        }
    }
    CHECK(std::strtod(rows[0].result.c_str(), nullptr) == expected);
}

TEST_CASE("lesson 03: the table shows the notebook figures and the averaging mistake" * doctest::timeout(120)) {
    const Outcome o = run({corelab::test::lesson("03_two_process_mean"), "--n", "50001", "--repeat", "1"});
    CHECK(o.exit_code == 0);
    for (const char* s : {"25.5 s", "12.7 s", "hold 25001 and 25000 numbers", "mean of their means", "faults/child",
                          "copy_through_queue", "speed-up"}) {
        CHECK_MESSAGE(o.out.find(s) != std::string::npos, "missing: " << s);
    }
}

TEST_CASE("lesson 03: every worker count from 1 to 16 gives the serial mean" * doctest::timeout(600)) {
    const std::size_t n = 10007;
    const double expected = corelab::sum_loop(corelab::make_uniform(n, 42)).mean();
    const double tolerance = 2.0 * (n - 1) * std::numeric_limits<double>::epsilon() * expected;
    for (int workers = 1; workers <= 16; ++workers) {
        CAPTURE(workers);
        const Outcome o = run({corelab::test::lesson("03_two_process_mean"), "--n", std::to_string(n), "--workers",
                               std::to_string(workers), "--repeat", "1", "--format", "csv"});
        REQUIRE(o.exit_code == 0);
        for (const auto& r : csv_rows(o)) {
            if (r.result.empty()) continue;
            CAPTURE(r.name);
            CHECK(std::abs(std::strtod(r.result.c_str(), nullptr) - expected) <= tolerance);
        }
    }
    const Outcome bad = run({corelab::test::lesson("03_two_process_mean"), "--workers", "17"});
    CHECK(bad.exit_code == 2);
}

TEST_CASE("lesson 03: a size whose peak does not fit in memory is refused before anything is allocated" *
          doctest::timeout(120)) {
    // The data alone fits (8 bytes a number); with the queues' copy and the
    // children's copies the lesson would hold 24 bytes a number at once.
    const std::size_t available = corelab::available_memory();
    REQUIRE(available > 0);
    const std::size_t n = std::max<std::size_t>(1'000'000'000, available / 20 + 1);
    const Outcome o = run({corelab::test::lesson("03_two_process_mean"), "--n", std::to_string(n), "--repeat", "1"},
                          std::chrono::seconds(60));
    CAPTURE(o.err);
    MESSAGE("lesson 03 --n " << n << ": exit " << o.exit_code << " after " << o.seconds << " s, peak RSS "
                             << o.max_rss_kb / 1024 << " MB");
    CHECK(o.exit_code == 1);
    CHECK(o.signal == 0);
    CHECK(o.err.find("error: ") == 0);
    const std::regex figures("needs ([0-9.]+) GB of memory at once.* ([0-9.]+) GB is available");
    std::smatch m;
    REQUIRE(std::regex_search(o.err, m, figures));
    CHECK(std::strtod(m[1].str().c_str(), nullptr) ==
          doctest::Approx(24.0 * static_cast<double>(n) / 1e9).epsilon(0.01));
    const std::regex advice("use a smaller --n \\(--n ([0-9]+) fits\\)");
    REQUIRE(std::regex_search(o.err, m, advice));
    const double fits = std::strtod(m[1].str().c_str(), nullptr);
    CHECK(fits < static_cast<double>(n));
    CHECK(fits * 24.0 <= static_cast<double>(available) * 1.05);
    CHECK(o.seconds < 5.0);            // refused at once, not after making 8 bytes a number
    CHECK(o.max_rss_kb < 512 * 1024);  // and nothing large was allocated
}

namespace {

// Starts lesson 03 in its own process group, as a shell starts a job, and
// waits until it has IPC objects (it is then mid-run with workers).
pid_t start_lesson03_mid_run() {
    const pid_t pid = corelab::test::start_in_own_group(
        {corelab::test::lesson("03_two_process_mean"), "--n", "4000000", "--repeat", "100"});
    REQUIRE_MESSAGE(corelab::test::eventually([&] { return !corelab::test::shm_objects_of(pid).empty(); },
                                              std::chrono::seconds(60)),
                    "lesson 03 never created its IPC objects");
    return pid;
}

}  // namespace

TEST_CASE("lesson 03: Ctrl-C mid-run kills it by SIGINT with no worker and no object left" * doctest::timeout(120)) {
    const pid_t pid = start_lesson03_mid_run();
    ::killpg(pid, SIGINT);  // what Ctrl-C does: the whole process group
    const auto ended = corelab::test::wait_for(pid, std::chrono::seconds(10));
    if (!ended.ended) ::killpg(pid, SIGKILL);
    REQUIRE(ended.ended);
    CHECK(ended.signal == SIGINT);  // a shell shows exit status 130
    CHECK(corelab::test::eventually([&] { return corelab::test::live_group_members(pid).empty(); },
                                    std::chrono::seconds(2)));
    CHECK(corelab::test::shm_objects_of(pid).empty());
}

TEST_CASE("lesson 03: kill -9 of the parent leaves no worker and the next run sweeps its objects" *
          doctest::timeout(180)) {
    const pid_t pid = start_lesson03_mid_run();
    ::kill(pid, SIGKILL);  // only the parent: its workers must follow it (PR_SET_PDEATHSIG)
    // Not reaped yet: the killed parent stays a zombie (as it does for a second
    // or two after a kill -9 in a shell) while the next run starts.
    const auto ended = corelab::test::wait_for_zombie(pid, std::chrono::seconds(10));
    REQUIRE(ended.ended);
    CHECK(ended.signal == SIGKILL);
    CHECK(corelab::test::eventually([&] { return corelab::test::live_group_members(pid).empty(); },
                                    std::chrono::seconds(2)));
    // every thread of the workers too (a sanitizer's may end a moment after them)
    CHECK(corelab::test::eventually([&] { return corelab::test::group_finished(pid); }, std::chrono::seconds(5)));
    const auto left = corelab::test::shm_objects_of(pid);
    MESSAGE("objects left by the killed run: " << left.size());
    const Outcome next = run({corelab::test::lesson("03_two_process_mean"), "--n", "1000", "--repeat", "1"});
    CHECK(next.exit_code == 0);
    CHECK(::kill(pid, 0) == 0);  // still a zombie: by a pid test, it still runs
    CHECK(corelab::test::shm_objects_of(pid).empty());
    CHECK(corelab::test::wait_for(pid, std::chrono::seconds(10)).ended);
}

namespace {

// A private cache directory for one lesson run, removed afterwards.
struct CacheDir {
    std::filesystem::path path;
    CacheDir() {
        std::string t = (std::filesystem::temp_directory_path() / "corelab-lesson05-XXXXXX").string();
        REQUIRE(::mkdtemp(t.data()) != nullptr);
        path = t;
    }
    ~CacheDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

}  // namespace

TEST_CASE("lesson 05: csv rows and every cached mean equals the library's mean" * doctest::timeout(120)) {
    CacheDir dir;
    const Outcome o = run({corelab::test::lesson("05_caching"), "--n", "200003", "--seed", "5", "--repeat", "2",
                           "--format", "csv", "--cachedir", (dir.path / "c").string()});
    CHECK(o.exit_code == 0);
    CHECK(o.err.empty());
    const auto rows = csv_rows(o);
    REQUIRE(rows.size() == 5);
    const char* names[] = {"compute", "cache_hit", "cache_hit_new_process", "cache_hit_large",
                           "cache_hit_large_vector"};
    for (std::size_t i = 0; i < rows.size(); ++i) CHECK(rows[i].name == names[i]);
    CHECK(rows[0].speedup == "1");
    const double mean = corelab::sum_fast(corelab::make_uniform(200003, 5)).mean();
    for (std::size_t i = 0; i < 3; ++i) CHECK(std::strtod(rows[i].result.c_str(), nullptr) == mean);
    const double large = corelab::sum_fast(corelab::make_uniform(20000, 5)).mean();
    CHECK(std::strtod(rows[3].result.c_str(), nullptr) == large);
    CHECK(std::strtod(rows[4].result.c_str(), nullptr) == large);
    for (const auto& r : rows) CHECK(r.seconds >= 0.0);
}

TEST_CASE("lesson 05: the notebook's cell prints joblib's lines once and a kept cache computes nothing" *
          doctest::timeout(120)) {
    CacheDir dir;
    const std::string cache = (dir.path / "c").string();
    const std::string exe = corelab::test::lesson("05_caching");
    const Outcome first = run({exe, "--n", "50000", "--repeat", "1", "--cachedir", cache});
    CHECK(first.exit_code == 0);
    const std::string cell = std::string(80, '_') +
                             "\n[Memory] Calling square...\n"
                             "square([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [4.0, 2.0, 1.0]])\n" +
                             std::string(59, '_') + "square - 0.0s, 0.0min\n";
    CHECK(first.out.find(cell) != std::string::npos);
    CHECK(first.out.find("[Memory] Calling square...") == first.out.rfind("[Memory] Calling square..."));
    for (const char* s : {"cache_hit_new_process", "cache_hit_large_vector", "In[9]", "--keep-cache"}) {
        CHECK_MESSAGE(first.out.find(s) != std::string::npos, "missing: " << s);
    }
    const Outcome again = run({exe, "--n", "50000", "--repeat", "1", "--cachedir", cache, "--keep-cache"});
    CHECK(again.exit_code == 0);
    CHECK(again.out.find("[Memory] Calling") == std::string::npos);  // every call loaded from disk
}

namespace {

// The temporary entry directories (.tmp-*) in a cache directory's function folders.
std::vector<std::filesystem::path> temp_dirs_in(const std::filesystem::path& cache) {
    std::vector<std::filesystem::path> found;
    std::error_code ec;
    for (const auto& fn : std::filesystem::directory_iterator(cache, ec)) {
        std::error_code inner;
        for (const auto& e : std::filesystem::directory_iterator(fn.path(), inner)) {
            if (e.path().filename().string().rfind(".tmp-", 0) == 0) found.push_back(e.path());
        }
    }
    return found;
}

}  // namespace

TEST_CASE("lesson 05: killed while writing an entry, the next run at once removes its temporary directory" *
          doctest::timeout(300)) {
    const std::string exe = corelab::test::lesson("05_caching");
    // The large results (2.4 MB here) take long enough to write that a poll
    // catches the writer mid-entry; when the kill comes after its rename, try again.
    for (int attempt = 0; attempt < 5; ++attempt) {
        CacheDir dir;
        const std::filesystem::path cache = dir.path / "c";
        const pid_t pid = corelab::test::start_in_own_group(
            {exe, "--n", "3000000", "--repeat", "1", "--format", "csv", "--cachedir", cache.string()});
        std::vector<std::filesystem::path> caught;
        const bool seen = corelab::test::eventually(
            [&] {
                caught = temp_dirs_in(cache);
                return !caught.empty() || !corelab::test::running(pid);
            },
            std::chrono::seconds(120));
        ::kill(pid, SIGKILL);
        const auto ended = corelab::test::wait_for_zombie(pid, std::chrono::seconds(10));  // not reaped: a zombie
        REQUIRE(ended.ended);
        const auto left = temp_dirs_in(cache);
        if (!seen || caught.empty() || left.empty()) {
            (void)corelab::test::wait_for(pid, std::chrono::seconds(10));
            continue;  // it was not mid-entry when the kill came
        }
        CHECK(::kill(pid, 0) == 0);  // a zombie: by a pid test, the writer still runs
        const Outcome next =
            run({exe, "--n", "1000", "--repeat", "1", "--format", "csv", "--cachedir", cache.string(), "--keep-cache"});
        CHECK(next.exit_code == 0);
        for (const auto& t : left) CHECK_MESSAGE(!std::filesystem::exists(t), "kept: " << t);
        CHECK(temp_dirs_in(cache).empty());
        CHECK(corelab::test::wait_for(pid, std::chrono::seconds(10)).ended);
        return;
    }
    FAIL("lesson 05 was never caught writing an entry in 5 runs");
}

TEST_CASE("lesson 05: an unsafe cache directory is a clear error" * doctest::timeout(60)) {
    CacheDir dir;
    REQUIRE(::chmod(dir.path.c_str(), 0777) == 0);
    const Outcome o = run({corelab::test::lesson("05_caching"), "--n", "1000", "--cachedir", dir.path.string()});
    CHECK(o.exit_code == 1);
    CHECK(o.signal == 0);
    CHECK(o.err.find("error: ") == 0);
    CHECK(o.err.find(dir.path.string()) != std::string::npos);
    CHECK(o.err.find("other users") != std::string::npos);
}

TEST_CASE("lesson 05: a cache directory that is a symlink or holds other files is refused and nothing is deleted" *
          doctest::timeout(60)) {
    namespace fs = std::filesystem;
    CacheDir dir;
    // Someone's files, shaped like what an unguarded clear removes: an empty folder and a
    // folder of the 32-hex-digit kind holding a thesis.
    const fs::path home = dir.path / "home";
    const fs::path thesis = home / "proj" / "d41d8cd98f00b204e9800998ecf8427e" / "thesis.txt";
    fs::create_directories(home / "Music");
    fs::create_directories(thesis.parent_path());
    std::ofstream(thesis) << "Chapter 1\n";
    fs::create_directory_symlink(home, dir.path / "link");
    const auto listing = [&] {
        std::vector<std::string> paths;
        for (const auto& e : fs::recursive_directory_iterator(home)) paths.push_back(e.path().string());
        std::sort(paths.begin(), paths.end());
        return paths;
    };
    const auto before = listing();
    REQUIRE(before.size() == 4);
    for (const fs::path& cachedir : {dir.path / "link", home}) {
        CAPTURE(cachedir);
        const Outcome o = run({corelab::test::lesson("05_caching"), "--n", "1000", "--cachedir", cachedir.string()});
        CHECK(o.exit_code == 1);
        CHECK(o.signal == 0);
        CHECK(o.err.find("error: the cache directory '" + cachedir.string() + "' is ") == 0);
        CHECK(o.err.find(cachedir == home ? "not a corelab cache" : "symbolic link") != std::string::npos);
        CHECK(o.out.find("[Memory] Calling") == std::string::npos);
        CHECK(listing() == before);
        std::ifstream in(thesis);
        CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "Chapter 1\n");
    }
}

TEST_CASE("lesson 04: csv rows in order and every mean equals the serial mean for any worker count" *
          doctest::timeout(120)) {
    const std::size_t n = 100003;  // odd: the parts differ in size
    const auto d = corelab::make_uniform(n, 9);
    const double expected = corelab::sum_loop(d).mean();
    for (const char* workers : {"1", "2", "3", "7"}) {
        CAPTURE(workers);
        const Outcome o = run({corelab::test::lesson("04_two_thread_mean"), "--n", "100003", "--seed", "9", "--repeat",
                               "1", "--workers", workers, "--switch-interval", "100", "--format", "csv"});
        CHECK(o.exit_code == 0);
        CHECK(o.err.empty());
        const auto rows = csv_rows(o);
        std::vector<std::string> names;
        for (const auto& r : rows) names.push_back(r.name);
        CHECK(names == std::vector<std::string>{"serial_loop", "two_thread", "two_thread_gil", "thread_spawn",
                                                "false_sharing", "padded_slots"});
        REQUIRE(rows.size() == 6);
        CHECK(std::strtod(rows[0].result.c_str(), nullptr) == expected);  // 17 digits: exact
        CHECK(rows[0].speedup == "1");
        for (const std::size_t i : {1u, 2u, 4u, 5u}) {
            CAPTURE(rows[i].name);
            // the lesson's own bound is 2(n-1)eps ~ 4.4e-11 relative; 1e-12 relative would catch a lost element
            CHECK(std::strtod(rows[i].result.c_str(), nullptr) == doctest::Approx(expected).epsilon(1e-10));
            CHECK(!rows[i].speedup.empty());
        }
        CHECK(rows[3].result.empty());  // thread_spawn: a cost, no result and no speed-up
        CHECK(rows[3].speedup.empty());
        CHECK(rows[3].seconds > 0.0);
    }
}

TEST_CASE("lesson 04: the table shows the notebook's figures and bad worker counts exit 2" * doctest::timeout(60)) {
    const std::string exe = corelab::test::lesson("04_two_thread_mean");
    const Outcome o = run({exe, "--n", "50000", "--repeat", "1"});
    CHECK(o.exit_code == 0);
    for (const char* s :
         {"25.5 s", "20.9 s", "12.7 s", "two_thread_gil", "false_sharing", "changed hands", "Threads or processes?"}) {
        CHECK_MESSAGE(o.out.find(s) != std::string::npos, "missing: " << s);
    }
    for (std::vector<std::string> args : std::vector<std::vector<std::string>>{{"--workers", "0"},
                                                                               {"--workers", "65"},
                                                                               {"--switch-interval", "-1"},
                                                                               {"--switch-interval", "100000000"}}) {
        args.insert(args.begin(), exe);
        const Outcome bad = run(args);
        CAPTURE(args[1]);
        CAPTURE(args[2]);
        CHECK(bad.exit_code == 2);
        CHECK(bad.err.find("usage: lesson04_two_thread_mean") != std::string::npos);
    }
}

namespace {

// A fresh directory for lesson 07's files, in the build tree, removed at the end.
struct LessonDir {
    std::string path;
    LessonDir() {
        path = (std::filesystem::current_path() / "lesson07_XXXXXX").string();
        REQUIRE(::mkdtemp(path.data()) != nullptr);
    }
    ~LessonDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::vector<std::string> files() const {
        std::vector<std::string> names;
        for (const auto& e : std::filesystem::directory_iterator(path)) names.push_back(e.path().string());
        return names;
    }
};

}  // namespace

TEST_CASE("lesson 07: csv rows in order and every mean equals the mean of the data written" * doctest::timeout(120)) {
    LessonDir dir;
    const Outcome o = run({corelab::test::lesson("07_chunked_file"), "--n", "100003", "--seed", "7", "--repeat", "1",
                           "--format", "csv", "--dir", dir.path});
    CHECK(o.exit_code == 0);
    CHECK(o.err.empty());  // no progress line in csv
    const auto rows = csv_rows(o);
    const std::vector<std::string> names{"write_file",       "serial_read",         "chunks_pread_2",
                                         "chunks_mmap_2",    "make_split_files",    "split_files_2",
                                         "cold_serial_read", "cold_chunks_pread_2", "cold_chunks_mmap_2"};
    REQUIRE(rows.size() == names.size());
    const auto d = corelab::make_uniform(100003, 7);
    const double expected = corelab::sum_loop(d).mean();
    for (std::size_t i = 0; i < rows.size(); ++i) {
        CAPTURE(rows[i].name);
        CHECK(rows[i].name == names[i]);
        CHECK(rows[i].seconds > 0.0);
        if (rows[i].name == "write_file" || rows[i].name == "make_split_files") {
            CHECK(rows[i].result.empty());
            CHECK(rows[i].speedup.empty());
        } else {
            CHECK(std::strtod(rows[i].result.c_str(), nullptr) == doctest::Approx(expected).epsilon(1e-12));
            CHECK(!rows[i].speedup.empty());
        }
    }
    CHECK(rows[1].speedup == "1");
    CHECK(dir.files().empty());  // the file and its split copies are gone
}

TEST_CASE("lesson 07: the table shows the progress line and throughput and --workers 3 names its rows" *
          doctest::timeout(120)) {
    LessonDir dir;
    const Outcome o = run({corelab::test::lesson("07_chunked_file"), "--n", "50001", "--repeat", "1", "--workers", "3",
                           "--dir", dir.path});
    CHECK(o.exit_code == 0);
    CHECK(o.err.find("writing " + dir.path) == 0);
    CHECK(o.err.find("100%") != std::string::npos);
    for (const char* s : {"GB/s", "cached", "chunks_pread_3", "chunks_mmap_3", "split_files_3", "cold_chunks_pread_3",
                          "25.5 s", "12.7 s", "speed-up"}) {
        CHECK_MESSAGE(o.out.find(s) != std::string::npos, "missing: " << s);
    }
    CHECK(dir.files().empty());
}

TEST_CASE("lesson 07: --keep leaves a valid data file and no room or no directory is a clear error" *
          doctest::timeout(120)) {
    LessonDir dir;
    const Outcome kept = run({corelab::test::lesson("07_chunked_file"), "--n", "1000", "--repeat", "1", "--keep",
                              "--format", "csv", "--dir", dir.path});
    CHECK(kept.exit_code == 0);
    const auto files = dir.files();
    REQUIRE(files.size() == 1);
    const auto f = corelab::open_data_file(files[0]);
    CHECK(f.count == 1000);
    CHECK(corelab::read_serial(f) == corelab::sum_fast(corelab::make_uniform(1000, 42)));
    std::filesystem::remove(files[0]);

    // 10^15 doubles: 8 PB. Refused before anything is written.
    const Outcome big = run({corelab::test::lesson("07_chunked_file"), "--n", "1000000000000000", "--dir", dir.path});
    CHECK(big.exit_code == 1);
    CHECK(big.signal == 0);
    CHECK(big.err.find("error: ") == 0);
    CHECK(big.err.find("free: use a smaller --n or another --dir") != std::string::npos);
    CHECK(dir.files().empty());

    const Outcome nowhere = run({corelab::test::lesson("07_chunked_file"), "--n", "1000", "--dir", dir.path + "/none"});
    CHECK(nowhere.exit_code == 1);
    CHECK(nowhere.err.find("cannot use the directory") != std::string::npos);
}

TEST_CASE("lesson 07: Ctrl-C while writing or reading removes the data file and leaves no worker" *
          doctest::timeout(120)) {
    for (int delay_ms : {0, 300}) {  // 0: mid-write; 300: into the reads, with workers
        CAPTURE(delay_ms);
        LessonDir dir;
        const pid_t pid = corelab::test::start_in_own_group(
            {corelab::test::lesson("07_chunked_file"), "--n", "2000000", "--repeat", "100", "--dir", dir.path});
        REQUIRE_MESSAGE(corelab::test::eventually([&] { return !dir.files().empty(); }, std::chrono::seconds(60)),
                        "lesson 07 never created its file");
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
        ::killpg(pid, SIGINT);
        const auto ended = corelab::test::wait_for(pid, std::chrono::seconds(10));
        if (!ended.ended) ::killpg(pid, SIGKILL);
        REQUIRE(ended.ended);
        CHECK(ended.signal == SIGINT);
        CHECK(corelab::test::eventually([&] { return corelab::test::live_group_members(pid).empty(); },
                                        std::chrono::seconds(2)));
        CHECK(dir.files().empty());
        CHECK(corelab::test::shm_objects_of(pid).empty());
    }
}

TEST_CASE("lesson 06: csv rows in order and every result sum equals the loop's" * doctest::timeout(120)) {
    const Outcome o = run({corelab::test::lesson("06_parallel_for"), "--tasks", "7", "--loop-size", "300", "--repeat",
                           "1", "--format", "csv"});
    CHECK(o.exit_code == 0);
    const auto rows = csv_rows(o);
    REQUIRE(rows.size() == 7);
    const char* names[] = {"serial_loop", "f_call", "f_naive", "processes_2", "threads_2", "processes_6", "all_cores"};
    for (std::size_t i = 0; i < rows.size(); ++i) {
        CAPTURE(rows[i].name);
        CHECK(rows[i].name == names[i]);
        CHECK(rows[i].seconds > 0.0);
        if (i == 1 || i == 2) {  // one call of f, and of the notebook's f as written: costs, not compared
            CHECK(rows[i].speedup.empty());
            continue;
        }
        CHECK(rows[i].result == "21");  // 0 + 1 + ... + 6: f(i) = sqrt(i*i) = i
    }
    CHECK(rows[2].result == "6");  // f_naive(tasks - 1)
    CHECK(rows[0].speedup == "1");
}

TEST_CASE("lesson 06: --jobs runs one configuration and prints joblib's progress" * doctest::timeout(120)) {
    const std::string exe = corelab::test::lesson("06_parallel_for");
    const Outcome o = run({exe, "--tasks", "5", "--loop-size", "300", "--repeat", "1", "--jobs", "-1", "--backend",
                           "threads", "--batch-size", "1", "--verbose", "100", "--format", "csv"});
    CHECK(o.exit_code == 0);
    const auto rows = csv_rows(o);
    REQUIRE(rows.size() == 4);  // serial_loop, f_call, f_naive and the one configuration
    CHECK(rows[3].name.rfind("threads_", 0) == 0);
    CHECK(rows[3].result == "10");
    CHECK(o.err.find("[Parallel(n_jobs=-1)]: Done   5 out of   5 | elapsed:") != std::string::npos);
    CHECK(o.err.find("finished") != std::string::npos);
    const Outcome table = run({exe, "--tasks", "3", "--loop-size", "300", "--repeat", "1"});
    CHECK(table.exit_code == 0);
    for (const char* s : {"21.7 s", "1.98x", "1.13x", "2.87x", "f ported word for word", "processes_6"}) {
        CHECK_MESSAGE(table.out.find(s) != std::string::npos, "missing: " << s);
    }
    // one table: the speed-ups the sentences quote are the table's
    CHECK(table.out.find("one run each") == std::string::npos);
    CHECK(table.out.find("  speed-up  bar\n") == table.out.rfind("  speed-up  bar\n"));
    const Outcome sweep =
        run({exe, "--tasks", "3", "--loop-size", "300", "--repeat", "1", "--sweep", "1,3", "--format", "csv"});
    CHECK(sweep.exit_code == 0);
    std::vector<std::string> swept;
    for (const auto& r : csv_rows(sweep)) {
        if (r.name.rfind("sweep_", 0) == 0) swept.push_back(r.name);
    }
    CHECK(swept ==
          std::vector<std::string>{"sweep_processes_1", "sweep_threads_1", "sweep_processes_3", "sweep_threads_3"});
    for (std::vector<std::string> args : std::vector<std::vector<std::string>>{{"--jobs", "0"},
                                                                               {"--jobs", "two"},
                                                                               {"--backend", "gpu"},
                                                                               {"--batch-size", "0"},
                                                                               {"--tasks", "0"},
                                                                               {"--loop-size", "99999999999"}}) {
        args.insert(args.begin(), exe);
        const Outcome bad = run(args);
        CAPTURE(args[1]);
        CAPTURE(args[2]);
        CHECK(bad.exit_code == 2);
        CHECK(bad.err.find("usage: lesson06_parallel_for") != std::string::npos);
    }
}

TEST_CASE("lesson 06: a loop size that would run for hours and more tasks than memory holds are refused at once" *
          doctest::timeout(60)) {
    const std::string exe = corelab::test::lesson("06_parallel_for");
    const Outcome slow = run({exe, "--loop-size", "99999999999"});
    CHECK(slow.exit_code == 2);
    CHECK(slow.err.find("--loop-size must be at most 100000") != std::string::npos);
    CHECK(slow.seconds < 5.0);
    const Outcome many = run({exe, "--tasks", "1000000000000", "--loop-size", "1"});
    CAPTURE(many.err);
    CHECK(many.exit_code == 1);
    CHECK(many.signal == 0);
    CHECK(many.err.find("error: ") == 0);
    CHECK(many.err.find("use a smaller --tasks (--tasks ") != std::string::npos);
    CHECK(many.err.find("--n") == std::string::npos);  // lesson 06 has no use for --n
    CHECK(many.seconds < 5.0);
}

TEST_CASE("course: a lesson or exercise number too long for bash arithmetic is refused, never wrapped" *
          doctest::timeout(60)) {
    // 2^64 + 2: bash arithmetic wraps it to 2
    const Outcome lesson = run({"/bin/bash", CORELAB_COURSE, "lesson", "18446744073709551618"});
    CHECK(lesson.exit_code == 2);
    CHECK(lesson.err.find("there is no lesson 18446744073709551618") != std::string::npos);
    CHECK(lesson.err.find("==> ") == std::string::npos);  // refused before anything is installed or built
    // the hints shown are remembered: in a folder of this test's, not the student's build/hints
    const std::string hints = "CORELAB_HINTS_DIR=/tmp/corelab-test-hints-" + std::to_string(::getpid());
    const Outcome hint = run({"/usr/bin/env", hints, "/bin/bash", CORELAB_COURSE, "hint", "18446744073709551618.1"});
    CHECK(hint.exit_code != 0);
    CHECK(hint.out.find("Hint") == std::string::npos);  // not exercise 02.1's
    CHECK(hint.err.find("there is no exercise '18446744073709551618.1'") != std::string::npos);
    const Outcome padded =
        run({"/usr/bin/env", hints, "/bin/bash", CORELAB_COURSE, "hint", "0002.01", "--all"});  // leading zeros read
    CHECK(padded.exit_code == 0);
    CHECK(padded.out.find("Hints for exercise 02.1 four_accumulators") == 0);
    std::filesystem::remove_all(hints.substr(hints.find('=') + 1));
}

#ifdef CORELAB_MPIEXEC
namespace {

// ./course's run_mpi_lesson, as `./course lesson 8 ARGS` calls it, on the
// lesson built here: the script is sourced (its verb `help`, printed to
// /dev/null) with its ROOT pointed at a directory whose build/release holds
// this build's lesson 08. Removed at the end.
struct CourseRoot {
    std::filesystem::path path;
    CourseRoot() {
        std::string t = (std::filesystem::temp_directory_path() / "corelab-course-XXXXXX").string();
        REQUIRE(::mkdtemp(t.data()) != nullptr);
        path = t;
        std::filesystem::create_directories(path / "build" / "release");
        std::filesystem::create_symlink(corelab::test::lesson("08_mpi_mean"),
                                        path / "build" / "release" / "lesson08_mpi_mean");
    }
    ~CourseRoot() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::vector<std::string> lesson8(const std::vector<std::string>& args) const {
        // CORELAB_BUILD: the course script takes its lessons from this root, not from its own build/release
        std::vector<std::string> argv{"/usr/bin/env",
                                      "CORELAB_BUILD=" + (path / "build" / "release").string(),
                                      "OMPI_MCA_mca_base_component_disable_dlclose=1",
                                      "LSAN_OPTIONS=" CORELAB_MPI_LSAN_OPTIONS,
                                      "/bin/bash",
                                      "-c",
                                      "root=\"$1\"; shift; args=(\"$@\"); set -- help; . \"$0\" >/dev/null; "
                                      "ROOT=\"$root\"; run_mpi_lesson 08_mpi_mean \"${args[@]}\"",
                                      CORELAB_COURSE,
                                      path.string()};
        argv.insert(argv.end(), args.begin(), args.end());
        return argv;
    }
};

// mpiexec with the flags ./course uses (root in a container, more ranks than
// cores, TCP on the loopback only) and, under ASan, Open MPI's own leaks
// suppressed (tests/mpi.lsan.supp). Under ThreadSanitizer PMIx keeps its job
// data in a hash table, not in the shared segment (gds/shmem2) that PMIx 5
// (Open MPI 5) maps at a fixed address, where TSan's shadow memory lies.
std::vector<std::string> mpiexec(int ranks, std::vector<std::string> args) {
    std::vector<std::string> argv{"/usr/bin/env",
                                  "OMPI_MCA_mca_base_component_disable_dlclose=1",
                                  "LSAN_OPTIONS=" CORELAB_MPI_LSAN_OPTIONS,
#if defined(__SANITIZE_THREAD__)
                                  "PMIX_MCA_gds=hash",
#endif
                                  CORELAB_MPIEXEC,
                                  "-np",
                                  std::to_string(ranks),
                                  "--oversubscribe",
                                  "--mca",
                                  "btl_tcp_if_include",
                                  "lo"};
    if (::geteuid() == 0) argv.push_back("--allow-run-as-root");
    argv.push_back(corelab::test::lesson("08_mpi_mean"));
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

// Runs lesson 08 in `ranks` ranks on n numbers and checks its rows against
// the serial mean of make_uniform(n, seed): the same data, whatever the ranks.
void check_ranks(int ranks, std::size_t n) {
    const Outcome o = run(mpiexec(ranks, {"--n", std::to_string(n), "--seed", "5", "--repeat", "2", "--format", "csv"}),
                          std::chrono::seconds(100));
    CAPTURE(o.err);
    REQUIRE(o.exit_code == 0);
    const auto rows = csv_rows(o);
    REQUIRE(rows.size() == 5);
    const std::string r = std::to_string(ranks);
    const char* names[] = {"make_share", "serial_loop", "mpi_reduce_", "mpi_all_reduce_", "reduce_only"};
    for (std::size_t i = 0; i < rows.size(); ++i) {
        CHECK(rows[i].name == names[i] + std::string(i == 2 || i == 3 ? r : ""));
        CHECK(rows[i].seconds > 0.0);
    }
    const double serial = corelab::sum_loop(corelab::make_uniform(n, 5)).mean();
    CHECK(std::strtod(rows[1].result.c_str(), nullptr) == serial);  // one loop over the same data, bit for bit
    const double tolerance = 2.0 * static_cast<double>(n) * std::numeric_limits<double>::epsilon() * serial;
    for (std::size_t i : {2u, 3u}) CHECK(std::abs(std::strtod(rows[i].result.c_str(), nullptr) - serial) <= tolerance);
    CHECK(rows[1].speedup == "1");
    CHECK(rows[0].result.empty());
    CHECK(rows[4].result.empty());
}

bool running(pid_t pid) {  // alive and not a zombie
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z';
}

// The /dev/shm files a process maps (a rank's Open MPI segments: vader_segment.*
// in Open MPI 4, sm_segment.* in 5).
std::vector<std::string> shm_mapped_by(pid_t pid) {
    std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
    std::vector<std::string> files;
    for (std::string line; std::getline(maps, line);) {
        const auto at = line.find("/dev/shm/");
        if (at != std::string::npos) files.push_back(line.substr(at));
    }
    return files;
}

// The session directories of the mpirun with this pid, by symlink_status (no
// link followed): Open MPI 4's $TMPDIR/ompi.<host>.<uid>/pid.<pid>, Open MPI
// 5's $TMPDIR/prterun.<host>.<pid>.<uid>.
std::vector<std::filesystem::path> sessions_of(pid_t mpirun) {
    namespace fs = std::filesystem;
    const char* tmpdir = std::getenv("TMPDIR");
    const fs::path tmp = tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp";
    const std::string uid = std::to_string(::geteuid()), pid = std::to_string(mpirun);
    auto is_dir = [](const fs::path& p) {
        std::error_code ec;
        return fs::symlink_status(p, ec).type() == fs::file_type::directory;
    };
    std::vector<fs::path> found;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(tmp, ec)) {
        const std::string name = e.path().filename().string();
        if (name.starts_with("prterun.") && name.ends_with("." + pid + "." + uid) && is_dir(e.path())) {
            found.push_back(e.path());
        } else if (name.starts_with("ompi.") && name.ends_with("." + uid) && is_dir(e.path()) &&
                   is_dir(e.path() / ("pid." + pid))) {
            found.push_back(e.path() / ("pid." + pid));
        }
    }
    return found;
}

// What Open MPI 4 and 5 leave after a SIGKILLed mpirun, made by hand for a
// pid that is gone (whichever Open MPI is installed), beside symlinks of the
// same names to a file and a directory that clean-ipc must not follow. Names
// carry our pid as the host: nobody else's.
struct FakeLeftovers {
    std::filesystem::path seg4, seg5, ompi4, session4, session5, seg_link, session5_link, ompi4_link, keep;
    LessonDir dir;
    std::string dead;

    FakeLeftovers() {
        namespace fs = std::filesystem;
        const pid_t child = ::fork();  // a pid that ran and is gone: these leftovers' "mpirun"
        REQUIRE(child >= 0);
        if (child == 0) ::_exit(0);
        REQUIRE(corelab::test::wait_for(child, std::chrono::seconds(10)).ended);
        dead = std::to_string(child);
        const std::string uid = std::to_string(::geteuid()), host = "corelabtest" + std::to_string(::getpid());
        const char* tmpdir = std::getenv("TMPDIR");
        const fs::path tmp = tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp";
        seg4 = "/dev/shm/vader_segment." + host + ".0.1";
        seg5 = "/dev/shm/sm_segment." + host + ".0.1";
        ompi4 = tmp / ("ompi." + host + "." + uid);
        session4 = ompi4 / ("pid." + dead);
        session5 = tmp / ("prterun." + host + "." + dead + "." + uid);
        touch(seg4);
        touch(seg5);
        fs::create_directories(session4 / "0");
        touch(session4 / "0" / "contact.txt");
        fs::create_directories(session5 / "1");
        touch(session5 / "1" / "pmix-gds-shmem2.jobdata");
        keep = fs::path(dir.path) / "keep";
        fs::create_directories(keep / ("pid." + dead));
        touch(keep / "file");
        touch(keep / ("pid." + dead) / "file");
        seg_link = "/dev/shm/sm_segment." + host + "l.0.1";
        session5_link = tmp / ("prterun." + host + "l." + dead + "." + uid);
        ompi4_link = tmp / ("ompi." + host + "l." + uid);  // its pid.<dead> is keep's
        fs::create_symlink(keep / "file", seg_link);
        fs::create_directory_symlink(keep, session5_link);
        fs::create_directory_symlink(keep, ompi4_link);
    }
    ~FakeLeftovers() {
        std::error_code ec;
        for (const auto& p : {seg_link, session5_link, ompi4_link, seg4, seg5}) std::filesystem::remove(p, ec);
        std::filesystem::remove_all(session5, ec);
        std::filesystem::remove_all(ompi4, ec);
    }
    static void touch(const std::filesystem::path& p) { std::ofstream(p) << "x"; }

    void check_cleaned() const {
        namespace fs = std::filesystem;
        for (const auto& p : {seg4, seg5, session4, ompi4, session5})
            CHECK_MESSAGE(!fs::exists(fs::symlink_status(p)), "left: " << p);
        for (const auto& p : {seg_link, session5_link, ompi4_link})
            CHECK_MESSAGE(fs::is_symlink(p), "a symlink was removed: " << p);
        CHECK(fs::exists(keep / "file"));
        CHECK(fs::exists(keep / ("pid." + dead) / "file"));
    }
};

// mpirun with 2 ranks on a long run, started in its own group; its ranks' pids.
pid_t start_mpirun(std::vector<pid_t>& ranks) {
    const pid_t mpirun = corelab::test::start_in_own_group(mpiexec(2, {"--n", "20000000", "--repeat", "100"}));
    REQUIRE(corelab::test::eventually([&] { return (ranks = corelab::test::live_children_of(mpirun)).size() == 2; },
                                      std::chrono::seconds(60)));
    return mpirun;
}

}  // namespace

TEST_CASE("lesson 08: one rank under mpiexec gives the serial mean" * doctest::timeout(120)) {
    check_ranks(1, 200'003);
}

TEST_CASE("lesson 08: two ranks give the serial mean of the same data" * doctest::timeout(120)) {
    check_ranks(2, 200'003);
}

TEST_CASE("lesson 08: three ranks give the serial mean even with more ranks than numbers" * doctest::timeout(180)) {
    check_ranks(3, 3 * corelab::dataset_block + 1);  // shares that start inside a generation block
    check_ranks(3, 2);                               // rank 2 has no numbers
}

TEST_CASE("lesson 08: --file reads lesson 07's data file and a missing file stops every rank" * doctest::timeout(120)) {
    LessonDir dir;
    const std::string path = dir.path + "/data.bin";
    const auto data = corelab::make_uniform(100'001, 3);
    (void)corelab::write_data_file(path, data);
    const Outcome o = run(mpiexec(2, {"--file", path, "--repeat", "1", "--format", "csv"}), std::chrono::seconds(100));
    CAPTURE(o.err);
    REQUIRE(o.exit_code == 0);
    const auto rows = csv_rows(o);
    REQUIRE(rows.size() == 5);
    CHECK(rows[0].name == "open_share");
    CHECK(rows[1].name == "serial_read");
    CHECK(std::strtod(rows[1].result.c_str(), nullptr) == corelab::read_serial(corelab::open_data_file(path)).mean());
    const double mean = corelab::sum_loop(data).mean();
    CHECK(std::abs(std::strtod(rows[2].result.c_str(), nullptr) - mean) <= 2e-16 * 100'001);

    const Outcome missing = run(mpiexec(2, {"--file", dir.path + "/none.bin"}), std::chrono::seconds(100));
    CHECK(missing.exit_code == 1);
    CHECK(missing.signal == 0);
    CHECK(missing.err.find("error: every rank: cannot open") != std::string::npos);
}

TEST_CASE("lesson 08: a bad command line is reported once by rank 0 and exits 2" * doctest::timeout(120)) {
    const Outcome bad = run(mpiexec(3, {"--n", "0"}), std::chrono::seconds(100));
    CHECK(bad.exit_code == 2);
    const auto first = bad.err.find("usage: lesson08_mpi_mean");
    REQUIRE(first != std::string::npos);
    CHECK(bad.err.find("usage: lesson08_mpi_mean", first + 1) == std::string::npos);  // not once per rank
    const Outcome help = run(mpiexec(2, {"--help"}), std::chrono::seconds(100));
    CHECK(help.exit_code == 0);
    CHECK(help.out.find("--ranks N") != std::string::npos);
    CHECK(help.out.find("--file") != std::string::npos);
}

TEST_CASE("lesson 08: a rank killed mid-run or Ctrl-C ends the whole run and leaves no rank" * doctest::timeout(180)) {
    for (const bool kill_a_rank : {true, false}) {
        CAPTURE(kill_a_rank);
        std::vector<pid_t> ranks;
        const pid_t mpirun = start_mpirun(ranks);
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // into the timed runs
        if (kill_a_rank) {
            ::kill(ranks[1], SIGKILL);
        } else {
            ::killpg(mpirun, SIGINT);  // what Ctrl-C does: mpirun's process group
        }
        const auto ended = corelab::test::wait_for(mpirun, std::chrono::seconds(30));
        if (!ended.ended) ::killpg(mpirun, SIGKILL);
        REQUIRE(ended.ended);
        CHECK((ended.exit_code != 0 || ended.signal != 0));
        for (const pid_t r : ranks) {
            CHECK(corelab::test::eventually([&] { return !running(r); }, std::chrono::seconds(10)));
            if (running(r)) ::kill(r, SIGKILL);
        }
    }
}
TEST_CASE("lesson 08: ./course lesson 8 ends with status 130 on Ctrl-C and refuses a rank count that wraps" *
          doctest::timeout(180)) {
    const CourseRoot root;
    const Outcome wrapped = run(root.lesson8({"--ranks", "18446744073709551618", "--n", "1000"}));  // 2^64 + 2
    CHECK(wrapped.exit_code == 2);
    CHECK(wrapped.err.find("--ranks takes a number of ranks from 1 to 256") != std::string::npos);

    const pid_t course = corelab::test::start_in_own_group(root.lesson8({"--n", "20000000", "--repeat", "100"}));
    std::vector<pid_t> ranks;
    REQUIRE(corelab::test::eventually(
        [&] {
            const auto mpirun = corelab::test::live_children_of(course);
            return mpirun.size() == 1 && (ranks = corelab::test::live_children_of(mpirun[0])).size() == 2;
        },
        std::chrono::seconds(60)));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // into the timed runs
    ::killpg(course, SIGINT);                                      // what Ctrl-C does
    const auto ended = corelab::test::wait_for(course, std::chrono::seconds(30));
    if (!ended.ended) ::killpg(course, SIGKILL);
    REQUIRE(ended.ended);
    CAPTURE(ended.exit_code);
    CHECK((ended.signal == SIGINT || ended.exit_code == 130));  // a shell shows 130 either way; mpirun says 1
    for (const pid_t r : ranks) {
        CHECK(corelab::test::eventually([&] { return !running(r); }, std::chrono::seconds(10)));
        if (running(r)) ::kill(r, SIGKILL);
    }
}

TEST_CASE("lesson 08: shares that fit one by one but not together on one machine are refused before any is made" *
          doctest::timeout(120)) {
    // each of 3 ranks would hold 0.4 of the available memory: 1.2 of it together
    const std::size_t available = corelab::available_memory();
    REQUIRE(available > 0);
    const std::size_t n = available / 8 / 10 * 12;
    const Outcome o = run(mpiexec(3, {"--n", std::to_string(n), "--repeat", "1"}), std::chrono::seconds(60));
    CAPTURE(o.err);
    MESSAGE("lesson 08 --n " << n << " on 3 ranks: exit " << o.exit_code << " after " << o.seconds << " s, peak RSS "
                             << o.max_rss_kb / 1024 << " MB");
    CHECK(o.exit_code == 1);
    CHECK(o.err.find("error: every rank: lesson 08 at n = " + std::to_string(n) + " (the shares of the 3 ranks on ") ==
          0);
    CHECK(o.err.find("GB of memory at once") != std::string::npos);
    CHECK(o.err.find("use a smaller --n (--n ") != std::string::npos);
    CHECK(o.max_rss_kb < 1024 * 1024);  // no share was made
}

TEST_CASE("lesson 08: --file naming a FIFO is refused at once on every rank" * doctest::timeout(120)) {
    LessonDir dir;
    const std::string fifo = dir.path + "/fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    const Outcome o = run(mpiexec(2, {"--file", fifo, "--repeat", "1"}), std::chrono::seconds(60));
    // a rank still waiting to open it (the fault) gets its writer, so nothing is left behind
    if (const int fd = ::open(fifo.c_str(), O_RDWR | O_NONBLOCK); fd >= 0) ::close(fd);
    CAPTURE(o.err);
    MESSAGE("lesson 08 --file FIFO: exit " << o.exit_code << " after " << o.seconds << " s");
    CHECK(!o.timed_out);
    CHECK(o.exit_code == 1);
    CHECK(o.err.find("error: every rank: " + fifo + " is a FIFO") != std::string::npos);
    CHECK(o.seconds < 30.0);  // mpirun's start and end; the refusal itself is immediate
}

TEST_CASE("lesson 08: a file truncated mid-run stops every rank by MPI_Abort and leaves no rank" *
          doctest::timeout(180)) {
    LessonDir dir;
    const std::string path = dir.path + "/data.bin";
    (void)corelab::write_data_file(path, corelab::make_uniform(20'000'000, 1));
    const pid_t mpirun =
        corelab::test::start_in_own_group(mpiexec(2, {"--file", path, "--repeat", "100", "--format", "csv"}));
    std::vector<pid_t> ranks;
    REQUIRE(corelab::test::eventually([&] { return (ranks = corelab::test::live_children_of(mpirun)).size() == 2; },
                                      std::chrono::seconds(60)));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // into the timed reads
    std::filesystem::resize_file(path, 1 << 20);                   // every chunk now ends past the end of the file
    const auto ended = corelab::test::wait_for(mpirun, std::chrono::seconds(30));
    if (!ended.ended) ::killpg(mpirun, SIGKILL);
    REQUIRE(ended.ended);  // without MPI_Abort, the other rank waits in its collective for ever
    CHECK(ended.exit_code != 0);
    for (const pid_t r : ranks) {
        CHECK(corelab::test::eventually([&] { return !running(r); }, std::chrono::seconds(10)));
        if (running(r)) ::kill(r, SIGKILL);
    }
}
// One clean-ipc run for both kinds of leftovers: two at once could race for the same stale files.
TEST_CASE("lesson 08: ./course clean-ipc removes what a killed mpirun left, spares a live run, follows no symlink" *
          doctest::timeout(180)) {
    std::vector<pid_t> live_ranks, killed_ranks;
    const pid_t live = start_mpirun(live_ranks);
    const pid_t killed = start_mpirun(killed_ranks);
    std::vector<std::string> live_files, killed_files;
    REQUIRE(corelab::test::eventually([&] { return !(live_files = shm_mapped_by(live_ranks[0])).empty(); },
                                      std::chrono::seconds(30)));
    REQUIRE(corelab::test::eventually([&] { return !(killed_files = shm_mapped_by(killed_ranks[0])).empty(); },
                                      std::chrono::seconds(30)));
    const auto live_sessions = sessions_of(live), killed_sessions = sessions_of(killed);
    CHECK(live_sessions.size() == 1);
    CHECK(killed_sessions.size() == 1);
    ::kill(killed, SIGKILL);  // mpirun itself: its ranks follow, their shared memory and session directory stay
    CHECK(corelab::test::wait_for(killed, std::chrono::seconds(10)).ended);
    for (const pid_t r : killed_ranks)
        CHECK(corelab::test::eventually([&] { return !running(r); }, std::chrono::seconds(10)));
    for (const auto& f : killed_files) CHECK_MESSAGE(std::filesystem::exists(f), "Open MPI removed " << f << " itself");
    for (const auto& d : killed_sessions)
        CHECK_MESSAGE(std::filesystem::exists(d), "Open MPI removed " << d << " itself");
    const FakeLeftovers fake;  // Open MPI 4's and 5's, whichever is installed

    const Outcome clean = run(
        {"/usr/bin/env", "CORELAB_CLEAN_IPC_TOOL=" CORELAB_CLEAN_IPC_TOOL, "/bin/bash", CORELAB_COURSE, "clean-ipc"});
    CHECK(clean.exit_code == 0);
    CHECK(clean.out.find("Open MPI's") != std::string::npos);
    for (const auto& f : killed_files) CHECK_MESSAGE(!std::filesystem::exists(f), "left: " << f);
    for (const auto& f : live_files) CHECK_MESSAGE(std::filesystem::exists(f), "removed from a live run: " << f);
    for (const auto& d : killed_sessions) CHECK_MESSAGE(!std::filesystem::exists(d), "left: " << d);
    for (const auto& d : live_sessions) CHECK_MESSAGE(std::filesystem::exists(d), "removed from a live run: " << d);
    fake.check_cleaned();

    ::killpg(live, SIGINT);
    const auto ended = corelab::test::wait_for(live, std::chrono::seconds(30));
    if (!ended.ended) ::killpg(live, SIGKILL);
    CHECK(ended.ended);
    for (const pid_t r : live_ranks)
        CHECK(corelab::test::eventually([&] { return !running(r); }, std::chrono::seconds(10)));
}
#endif  // without MPI, tests/CMakeLists.txt registers lesson.08_mpi_mean.skipped instead
