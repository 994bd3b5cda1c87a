// Lesson 08 (lessons/08_mpi_mean.cpp) run under mpiexec: the serial mean on 1
// to 3 ranks, lesson 07's file, bad command lines, a killed rank, Ctrl-C (of
// mpirun and of ./course lesson 8), shares that do not fit, a FIFO, a file
// truncated mid-run, and ./course clean-ipc after a killed mpirun. Without
// MPI, tests/CMakeLists.txt registers lesson.08_mpi_mean.skipped instead.
#include <doctest/doctest.h>
#include <fcntl.h>     // open
#include <signal.h>    // kill, killpg
#include <sys/stat.h>  // mkfifo
#include <unistd.h>    // geteuid, getpid, fork, _exit, close

#include <chrono>      // std::chrono::seconds
#include <cmath>       // std::abs
#include <cstdlib>     // std::strtod, std::getenv, mkdtemp
#include <filesystem>  // std::filesystem
#include <fstream>     // std::ifstream, std::ofstream
#include <limits>      // std::numeric_limits
#include <string>      // std::string
#include <thread>      // std::this_thread::sleep_for
#include <vector>      // std::vector

#include "corelab/chunked_file.hpp"
#include "corelab/dataset.hpp"
#include "corelab/reduce.hpp"
#include "lessons/common.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"

#ifdef CORELAB_MPIEXEC
using corelab::test::csv_rows;
using corelab::test::LessonDir;
using corelab::test::Outcome;
using corelab::test::run;
using corelab::test::running;

namespace {

// How long a rank may take to end once its mpirun is gone or has aborted it. A
// rank ends by itself (Open MPI 5's ranks see their server's connection close;
// 4's their daemon's): on a fresh Debian 13 root, 1 s in the release build,
// 3.5 s under ASan (its exit-time leak check), 7.8 s under ASan with 12 busy
// loops beside it. The limit is the machine's load, not a rule of the lesson.
constexpr std::chrono::seconds rank_end_limit{60};

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
    LessonDir dir{"08"};
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
    LessonDir dir("08");
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
            CHECK(corelab::test::eventually([&] { return !running(r); }, rank_end_limit));
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
        CHECK(corelab::test::eventually([&] { return !running(r); }, rank_end_limit));
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
    LessonDir dir("08");
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
    LessonDir dir("08");
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
        CHECK(corelab::test::eventually([&] { return !running(r); }, rank_end_limit));
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
    for (const pid_t r : killed_ranks) CHECK(corelab::test::eventually([&] { return !running(r); }, rank_end_limit));
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
    for (const pid_t r : live_ranks) CHECK(corelab::test::eventually([&] { return !running(r); }, rank_end_limit));
}
#endif  // without MPI, tests/CMakeLists.txt registers lesson.08_mpi_mean.skipped instead
