// Tests of corelab/chunked_file.hpp: the file round-trips; split covers every
// record once for many counts and parts; chunked reads (pread, mmap, split
// files, in processes) equal the serial sum; truncated, foreign, vanished and
// replaced files give clear errors with no child and no IPC object left; the
// page cache can be dropped; scratch files go away, on SIGTERM too.
#include <doctest/doctest.h>
#include <fcntl.h>        // open
#include <linux/magic.h>  // TMPFS_MAGIC
#include <signal.h>       // raise, kill
#include <sys/stat.h>     // mkfifo
#include <sys/vfs.h>      // statfs
#include <sys/wait.h>     // waitpid
#include <unistd.h>       // fork, truncate, getpid

#include <algorithm>   // std::count, std::equal
#include <chrono>      // std::chrono
#include <cstdio>      // std::FILE
#include <cstdlib>     // mkdtemp
#include <filesystem>  // std::filesystem
#include <fstream>     // std::ofstream
#include <functional>  // std::function
#include <string>      // std::string
#include <vector>      // std::vector

#include "corelab/chunked_file.hpp"
#include "corelab/error.hpp"
#include "corelab/ipc/names.hpp"
#include "support/processes.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using corelab::DataFile;
using corelab::ReadMethod;

namespace {

// A fresh directory under the test's working directory (the build tree: a
// real disk, where the page cache can be dropped), removed at the end.
struct TempDir {
    fs::path path;
    TempDir() {
        std::string name = (fs::current_path() / "corelab_test_XXXXXX").string();
        REQUIRE(::mkdtemp(name.data()) != nullptr);
        path = name;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
    bool empty() const { return fs::is_empty(path); }
};

// Values whose sums are exact in any order: sums of eighths below 2^53.
std::vector<double> exact_data(std::size_t n) {
    std::vector<double> d(n);
    for (std::size_t i = 0; i < n; ++i) d[i] = static_cast<double>((i * 7919) % 1000) / 8.0;
    return d;
}

std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const corelab::Error& e) {
        return e.what();
    }
    FAIL("no corelab::Error thrown");
    return {};
}

void check_clean() {
    CHECK(corelab::test::children_of(::getpid()).empty());
    CHECK(corelab::test::shm_objects_of(::getpid()).empty());
}

void write_bytes(const std::string& path, std::uint64_t offset, const void* bytes, std::size_t size) {
    std::FILE* f = std::fopen(path.c_str(), "r+b");
    REQUIRE(f != nullptr);
    REQUIRE(std::fseek(f, static_cast<long>(offset), SEEK_SET) == 0);
    REQUIRE(std::fwrite(bytes, 1, size, f) == size);
    REQUIRE(std::fclose(f) == 0);
}

}  // namespace

TEST_CASE("chunked file: the doubles written are the doubles read back") {
    TempDir dir;
    for (std::size_t n : {0u, 1u, 2u, 3u, 7u, 1000u, 100'003u}) {
        CAPTURE(n);
        const auto data = exact_data(n);
        std::uint64_t last_done = 0, calls = 0;
        const DataFile f = corelab::write_data_file(dir.file("data"), data, [&](std::uint64_t done, std::uint64_t all) {
            CHECK(done >= last_done);
            CHECK(all == 64 + 8 * n);
            last_done = done;
            ++calls;
        });
        CHECK(calls >= 1);
        CHECK(last_done == 64 + 8 * n);  // the last call says: all of it
        CHECK(f.count == n);
        CHECK(f.bytes == corelab::data_file_header_bytes + 8 * n);
        CHECK(fs::file_size(f.path) == f.bytes);
        const auto back = corelab::read_data_file(f.path);
        REQUIRE(back.size() == n);
        CHECK(std::equal(back.begin(), back.end(), data.begin()));
        CHECK(corelab::open_data_file(f.path).inode == f.inode);
    }
}

TEST_CASE("chunked file: split covers every record exactly once for counts 0 1 2 3 7 1000 and parts 1 to 9") {
    for (std::size_t n : {0u, 1u, 2u, 3u, 7u, 1000u}) {
        const DataFile f{"x", n, 64 + 8 * n, 0, 0, 0};
        for (std::size_t parts = 1; parts <= 9; ++parts) {
            CAPTURE(n);
            CAPTURE(parts);
            const auto chunks = corelab::split(f, parts);
            REQUIRE(chunks.size() == parts);
            std::vector<int> seen(n, 0);
            std::uint64_t next = corelab::data_file_header_bytes;
            std::size_t smallest = n, largest = 0;
            for (const auto& c : chunks) {
                CHECK(c.offset == next);  // contiguous, in order, no gap, no overlap
                CHECK(c.offset == 64 + 8 * c.first);
                CHECK(c.bytes == 8 * c.count);
                for (std::size_t i = c.first; i < c.first + c.count; ++i) ++seen.at(i);
                next = c.offset + c.bytes;
                smallest = std::min(smallest, c.count);
                largest = std::max(largest, c.count);
            }
            CHECK(next == f.bytes);  // the last chunk ends where the file does
            CHECK(largest - smallest <= 1);
            CHECK(std::count(seen.begin(), seen.end(), 1) == static_cast<long>(n));
        }
    }
    CHECK_THROWS_AS(corelab::split(DataFile{"x", 5, 104, 0, 0, 0}, 0), corelab::Error);
}

TEST_CASE("chunked file: chunked means equal the serial mean for every count and part count" * doctest::timeout(300)) {
    TempDir dir;
    for (std::size_t n : {0u, 1u, 2u, 3u, 7u, 1000u, 300'007u}) {
        const auto data = exact_data(n);
        const corelab::Partial serial = corelab::sum_loop(data);
        const DataFile f = corelab::write_data_file(dir.file("data"), data);
        for (ReadMethod method : {ReadMethod::pread, ReadMethod::mmap}) {
            CHECK(corelab::read_serial(f, method) == serial);
            // every part count, chunk by chunk in this process, small pread blocks too
            for (std::size_t parts = 1; parts <= 9; ++parts) {
                CAPTURE(n);
                CAPTURE(parts);
                corelab::Partial total;
                for (const auto& c : corelab::split(f, parts)) total += corelab::read_chunk(f, c, method, 8 * 1000);
                CHECK(total == serial);  // exact data: any order gives the same sum
            }
        }
        // in worker processes, by range and by separate files
        for (unsigned workers : {1u, 2u, 3u, 7u}) {
            CAPTURE(n);
            CAPTURE(workers);
            corelab::ProcessWorkers pool(workers);
            CHECK(corelab::read_in_processes(f, pool, ReadMethod::pread) == serial);
            CHECK(corelab::read_in_processes(f, pool, ReadMethod::mmap) == serial);
            std::vector<std::string> paths;
            for (unsigned k = 0; k < workers; ++k) paths.push_back(dir.file("part" + std::to_string(k)));
            const auto files = corelab::split_into_files(f, paths);
            std::size_t counted = 0;
            for (const auto& part : files) counted += part.count;
            CHECK(counted == n);
            CHECK(corelab::read_files_in_processes(paths, pool) == serial);
            corelab::ProcessWorkers other(workers + 1);
            CHECK_THROWS_AS(corelab::read_files_in_processes(paths, other), corelab::Error);
        }
    }
    check_clean();
}

TEST_CASE("chunked file: a missing or truncated file is refused with a message that says so") {
    TempDir dir;
    const std::string path = dir.file("data");
    CHECK(error_of([&] { corelab::open_data_file(path); }).find("No such file") != std::string::npos);
    corelab::write_data_file(path, exact_data(1000));
    fs::resize_file(path, 64 + 8 * 999 + 3);  // cut inside the last record
    std::string e = error_of([&] { corelab::open_data_file(path); });
    CHECK(e.find("truncated") != std::string::npos);
    CHECK(e.find("1000 doubles") != std::string::npos);
    CHECK_THROWS_AS(corelab::read_data_file(path), corelab::Error);
    fs::resize_file(path, 10);  // not even a header
    CHECK(error_of([&] { corelab::open_data_file(path); }).find("64-byte header") != std::string::npos);
    fs::resize_file(path, 0);
    CHECK(error_of([&] { corelab::open_data_file(path); }).find("64-byte header") != std::string::npos);
    corelab::write_data_file(path, exact_data(10));
    fs::resize_file(path, 64 + 8 * 10 + 8);  // a stray record at the end
    CHECK(error_of([&] { corelab::open_data_file(path); }).find("bytes more") != std::string::npos);
    CHECK(error_of([&] { corelab::open_data_file(dir.path.string()); }).find("not a regular file") !=
          std::string::npos);
}

TEST_CASE("chunked file: a FIFO named as a data file is refused at once, not waited on" * doctest::timeout(30)) {
    TempDir dir;
    const std::string path = dir.file("fifo");
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    // a writer that comes after 3 s: without it a reader that opens the FIFO
    // would wait for ever (O_RDWR gives a waiting reader its writer at once)
    const pid_t writer = ::fork();
    REQUIRE(writer >= 0);
    if (writer == 0) {
        ::sleep(3);
        const int fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK);
        ::_exit(fd >= 0 ? 0 : 1);
    }
    const auto start = std::chrono::steady_clock::now();
    const std::string e = error_of([&] { corelab::open_data_file(path); });
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ::kill(writer, SIGKILL);
    REQUIRE(::waitpid(writer, nullptr, 0) == writer);
    CHECK(e.find(path + " is a FIFO") != std::string::npos);
    CHECK(e.find("not a regular file") != std::string::npos);
    CHECK(took < 1.0);
    check_clean();
}

TEST_CASE("chunked file: a foreign file is refused by its magic and its version and element type") {
    TempDir dir;
    const std::string path = dir.file("data");
    {
        std::ofstream out(path, std::ios::binary);
        out << std::string(200, 'x');  // some other file, longer than a header
    }
    CHECK(error_of([&] { corelab::open_data_file(path); }).find("not a corelab data file") != std::string::npos);
    corelab::write_data_file(path, exact_data(3));
    const std::uint32_t version = 99, element = 7;
    write_bytes(path, 8, &version, sizeof version);
    CHECK(error_of([&] { corelab::open_data_file(path); }).find("format version 99") != std::string::npos);
    write_bytes(path, 8, &corelab::data_file_version, sizeof version);
    write_bytes(path, 12, &element, sizeof element);
    CHECK(error_of([&] { corelab::open_data_file(path); }).find("element type 7") != std::string::npos);
    const std::uint32_t float64 = 1;
    write_bytes(path, 12, &float64, sizeof float64);
    CHECK(corelab::open_data_file(path).count == 3);  // repaired: accepted again
}

TEST_CASE("chunked file: a file unlinked truncated or replaced between split and read fails in the workers" *
          doctest::timeout(120)) {
    TempDir dir;
    const std::string path = dir.file("data");
    const auto data = exact_data(100'000);
    for (ReadMethod method : {ReadMethod::pread, ReadMethod::mmap}) {
        corelab::ProcessWorkers pool(2);
        const auto failure = [&](const DataFile& f) -> std::string {
            try {
                (void)corelab::read_in_processes(f, pool, method);
            } catch (const corelab::WorkerError& e) {
                return e.what();
            }
            FAIL("read_in_processes did not throw a WorkerError");
            return {};
        };
        // unlinked after the split: every worker's open() fails
        DataFile f = corelab::write_data_file(path, data);
        fs::remove(path);
        std::string e = failure(f);
        CHECK(e.find("worker ") != std::string::npos);
        CHECK(e.find("No such file") != std::string::npos);
        check_clean();
        // truncated after the split: both chunks are cut short
        f = corelab::write_data_file(path, data);
        fs::resize_file(path, 64 + 8 * 30'000);
        e = failure(f);
        CHECK(e.find("truncated") != std::string::npos);
        check_clean();
        // truncated inside the last chunk only: worker 1 says so, worker 0 sees a rewritten file
        f = corelab::write_data_file(path, data);
        const auto chunks = corelab::split(f, 2);
        fs::resize_file(path, 64 + 8 * 70'000);
        CHECK(error_of([&] { corelab::read_chunk(f, chunks[1], method); }).find("truncated") != std::string::npos);
        CHECK(error_of([&] { corelab::read_chunk(f, chunks[0], method); }).find("rewritten") != std::string::npos);
        e = failure(f);
        CHECK((e.find("worker 1") != std::string::npos || e.find("worker 0") != std::string::npos));
        // replaced by another file of the same name and size
        f = corelab::write_data_file(path, data);
        fs::remove(path);
        (void)corelab::write_data_file(path, data);
        e = failure(f);
        CHECK(e.find("replaced or rewritten") != std::string::npos);
        check_clean();
        fs::remove(path);
    }
    // a split file that vanished before its worker opened it
    (void)corelab::write_data_file(path, data);
    const std::vector<std::string> paths{dir.file("p0"), dir.file("p1")};
    (void)corelab::split_into_files(corelab::open_data_file(path), paths);
    fs::remove(paths[1]);
    corelab::ProcessWorkers pool(2);
    try {
        (void)corelab::read_files_in_processes(paths, pool);
        FAIL("no error");
    } catch (const corelab::WorkerError& e) {
        CHECK(e.worker() == 1);
        CHECK(std::string(e.what()).find("No such file") != std::string::npos);
    }
    check_clean();
}

TEST_CASE("chunked file: the page cache is dropped and counted") {
    TempDir dir;
    struct statfs fs_info{};
    REQUIRE(::statfs(dir.path.c_str(), &fs_info) == 0);
    const DataFile f = corelab::write_data_file(dir.file("data"), exact_data(1'000'000));
    (void)corelab::read_serial(f);
    CHECK(corelab::cached_fraction(f.path) == doctest::Approx(1.0));  // just read: all of it cached
    corelab::drop_from_page_cache(f.path);
    if (fs_info.f_type == TMPFS_MAGIC) {
        MESSAGE("the build tree is on tmpfs, which has no disk to drop pages to");
    } else {
        CHECK(corelab::cached_fraction(f.path) < 0.5);
    }
    CHECK(corelab::read_serial(f).count == 1'000'000);  // read again, from the disk
    CHECK_THROWS_AS(corelab::cached_fraction(dir.file("none")), corelab::Error);
    CHECK_THROWS_AS(corelab::drop_from_page_cache(dir.file("none")), corelab::Error);
}

TEST_CASE("chunked file: room on the disk is checked before writing") {
    TempDir dir;
    CHECK(corelab::free_disk_bytes(dir.path.string()) > 0);
    CHECK_NOTHROW(corelab::check_disk_room(dir.path.string(), 4096, "a small file"));
    const std::string e =
        error_of([&] { corelab::check_disk_room(dir.path.string(), std::uint64_t{1} << 62, "a huge file"); });
    CHECK(e.find("a huge file needs") != std::string::npos);
    CHECK(e.find(" free") != std::string::npos);
    CHECK(e.find("--") == std::string::npos);  // the library names no lesson's flag: run_lesson adds the advice
    try {
        corelab::check_disk_room(dir.path.string(), std::uint64_t{1} << 62, "a huge file");
    } catch (const corelab::Error& x) {
        CHECK(x.about() == corelab::About::disk_room);
    }
    try {
        (void)corelab::free_disk_bytes(dir.file("missing"));
        FAIL("no error for a missing directory");
    } catch (const corelab::Error& x) {
        CHECK(x.about() == corelab::About::directory);
        CHECK(std::string(x.what()).find("cannot use the directory") != std::string::npos);
    }
}

TEST_CASE("scratch file: removed when destroyed unless kept and named for the stale sweep") {
    TempDir dir;
    std::string kept;
    {
        corelab::ScratchFile a(dir.path.string(), "scratch");
        corelab::ScratchFile b(dir.path.string(), "scratch");
        CHECK(a.path() != b.path());
        CHECK(fs::path(a.path()).is_absolute());
        const auto parts = corelab::ipc::parse_name(fs::path(a.path()).filename().string());
        REQUIRE(parts);
        CHECK(parts->pid == ::getpid());
        (void)corelab::write_data_file(a.path(), exact_data(10));
        (void)corelab::write_data_file(b.path(), exact_data(10));
        CHECK_THROWS_AS((void)b.keep("../escape"), corelab::Error);
        CHECK_THROWS_AS((void)b.keep(fs::path(a.path()).filename().string()), corelab::Error);  // a scratch name
        kept = b.keep("kept.bin");
        CHECK(kept == (dir.path / "kept.bin").string());
        CHECK(b.path().empty());
        CHECK_THROWS_AS((void)b.keep("again.bin"), corelab::Error);
        CHECK(corelab::ipc::remove_stale(dir.path.string()).empty());  // the sweep leaves a kept file alone
        CHECK(corelab::open_data_file(kept).count == 10);
        corelab::ScratchFile moved = std::move(a);
        CHECK(fs::exists(moved.path()));
    }
    CHECK(fs::exists(kept));
    fs::remove(kept);
    CHECK(dir.empty());

    // a file of a run that died (its pid is gone) is swept; a live owner's is kept
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) ::_exit(0);
    REQUIRE(::waitpid(child, nullptr, 0) == child);
    const std::string stale = "corelab." + std::to_string(child) + ".chunked_file.0123456789abcdef";
    std::ofstream(dir.file(stale)) << "x";
    corelab::ScratchFile mine(dir.path.string(), "chunked_file");
    std::ofstream(mine.path()) << "x";
    const auto removed = corelab::ipc::remove_stale(dir.path.string());
    REQUIRE(removed.size() == 1);
    CHECK(removed[0] == stale);
    CHECK(fs::exists(mine.path()));
}

TEST_CASE("scratch file: a zombie owner's file is swept at once and a live one's is kept" * doctest::timeout(60)) {
    TempDir dir;
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(fds[0]);
        try {
            corelab::ScratchFile file(dir.path.string(), "chunked_file");
            (void)corelab::write_data_file(file.path(), exact_data(10));
            (void)!::write(fds[1], file.path().c_str(), file.path().size());
            ::_exit(0);  // no destructor runs: the file stays, as after kill -9
        } catch (...) {
            ::_exit(3);  // never into the test runner: the parent sees no path
        }
    }
    ::close(fds[1]);
    char buffer[600] = {};
    const ssize_t got = ::read(fds[0], buffer, sizeof buffer - 1);
    ::close(fds[0]);
    REQUIRE(got > 0);
    const std::string path(buffer, static_cast<std::size_t>(got));
    // not reaped: a zombie, whose pid still answers kill(pid, 0)
    REQUIRE(corelab::test::wait_for_zombie(pid, 10s).ended);
    CHECK(::kill(pid, 0) == 0);
    corelab::ScratchFile mine(dir.path.string(), "chunked_file");
    (void)corelab::write_data_file(mine.path(), exact_data(10));  // rewritten in place: still locked
    const auto removed = corelab::ipc::remove_stale(dir.path.string());
    REQUIRE(removed.size() == 1);
    CHECK(removed[0] == fs::path(path).filename().string());
    CHECK_FALSE(fs::exists(path));
    CHECK(fs::exists(mine.path()));
    CHECK(corelab::test::wait_for(pid, 10s).ended);
}
