// Lesson 07 (lessons/07_chunked_file.cpp) run as a program: its rows and means
// against the data written, --keep, no room or no directory, and Ctrl-C while
// it writes or reads (the file removed, no worker left).
#include <doctest/doctest.h>
#include <signal.h>  // killpg

#include <chrono>      // std::chrono::seconds
#include <cstdlib>     // std::strtod
#include <filesystem>  // std::filesystem
#include <string>      // std::string
#include <thread>      // std::this_thread::sleep_for
#include <vector>      // std::vector

#include "corelab/chunked_file.hpp"
#include "corelab/dataset.hpp"
#include "corelab/reduce.hpp"
#include "lessons/common.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"

using corelab::test::csv_rows;
using corelab::test::LessonDir;
using corelab::test::Outcome;
using corelab::test::run;

TEST_CASE("lesson 07: csv rows in order and every mean equals the mean of the data written" * doctest::timeout(120)) {
    LessonDir dir("07");
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
    LessonDir dir("07");
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
    LessonDir dir("07");
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
        LessonDir dir("07");
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
