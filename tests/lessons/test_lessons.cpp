// What every lesson does, run as a program: --record writes its rows and
// run.json, a busy machine is named above the table, bad command lines exit 2
// with a usage line (every lesson of lessons/lessons.txt that runs without
// mpirun); and ./course refuses lesson numbers bash would wrap. Each lesson's
// own tests are in tests/lessons/test_lessonNN_name.cpp.
#include <doctest/doctest.h>
#include <signal.h>     // kill
#include <stdlib.h>     // mkdtemp
#include <sys/prctl.h>  // prctl(PR_SET_PDEATHSIG)
#include <sys/wait.h>   // waitpid
#include <unistd.h>     // fork, getpid

#include <algorithm>       // std::count, std::min_element
#include <boost/json.hpp>  // run.json, parsed (built in the corelab library)
#include <filesystem>      // std::filesystem
#include <fstream>         // std::ifstream
#include <iterator>        // std::istreambuf_iterator
#include <string>          // std::string
#include <vector>          // std::vector

#include "corelab/dataset.hpp"
#include "corelab/reduce.hpp"
#include "corelab/results.hpp"
#include "course_lessons.hpp"  // corelab::course::lessons: lessons/lessons.txt
#include "support/subprocess.hpp"

using corelab::test::Outcome;
using corelab::test::run;

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
    for (const auto& listed : corelab::course::lessons) {
        if (listed.mpi) continue;  // under mpiexec: its own file tests its command line
        const std::string name(listed.id);
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
