// Tests of corelab/detail/fd.hpp: the read loop resumes after short reads and
// after a signal (EINTR) and stops only at the end of the file; the write
// loops report a full disk (/dev/full) and a bad descriptor in words; Fd
// closes what it owns exactly once.
#include <doctest/doctest.h>
#include <fcntl.h>     // open, fcntl
#include <pthread.h>   // pthread_kill
#include <signal.h>    // sigaction, SIGUSR1
#include <sys/mman.h>  // memfd_create
#include <unistd.h>    // pipe, write, close

#include <atomic>   // std::atomic
#include <cerrno>   // ENOSPC, EBADF
#include <chrono>   // std::chrono
#include <cstring>  // std::memcmp
#include <string>   // std::string
#include <thread>   // std::thread
#include <vector>   // std::vector

#include "corelab/detail/fd.hpp"
#include "corelab/error.hpp"

using corelab::detail::Fd;
using namespace std::chrono_literals;

namespace {

bool is_open(int fd) {
    return ::fcntl(fd, F_GETFD) != -1;
}

std::atomic<int> signals_seen{0};
void count_signal(int) {
    signals_seen.fetch_add(1);
}

}  // namespace

TEST_CASE("fd: Fd closes what it owns once, and a move hands it over") {
    int raw[2];
    REQUIRE(::pipe(raw) == 0);
    {
        Fd reader(raw[0]);
        Fd writer(raw[1]);
        CHECK(reader.ok());
        Fd moved(std::move(writer));
        CHECK(!writer.ok());  // NOLINT(bugprone-use-after-move): the moved-from Fd owns nothing
        CHECK(moved.get() == raw[1]);
        moved.reset();
        CHECK(!is_open(raw[1]));
        CHECK(is_open(raw[0]));
    }
    CHECK(!is_open(raw[0]));
    Fd none;
    CHECK(!none.ok());
    CHECK_THROWS_WITH_AS(none.close("nothing"), doctest::Contains("cannot close nothing: Bad file descriptor"),
                         corelab::Error);
}

TEST_CASE("fd: read_full resumes after short reads and stops only at the end of the file" * doctest::timeout(30)) {
    int raw[2];
    REQUIRE(::pipe(raw) == 0);
    Fd reader(raw[0]);
    Fd writer(raw[1]);
    const std::string text = "one piece, then another, then the last one";
    std::thread pieces([&] {  // three writes, apart in time: each read returns part
        for (std::size_t at = 0; at < text.size(); at += 16) {
            std::this_thread::sleep_for(20ms);
            CHECK(::write(writer.get(), text.data() + at, std::min<std::size_t>(16, text.size() - at)) > 0);
        }
        writer.reset();  // the end of the file
    });
    std::vector<char> got(text.size() + 10, '\0');
    const std::size_t n = corelab::detail::read_full(reader.get(), got.data(), got.size(), "the pipe");
    pieces.join();
    CHECK(n == text.size());  // all of it, then the end: fewer than asked
    CHECK(std::string(got.data(), n) == text);
    CHECK(corelab::detail::read_full(reader.get(), got.data(), 1) == 0);  // at the end: nothing, no error
}

TEST_CASE("fd: read_full resumes after a signal interrupts a read" * doctest::timeout(30)) {
    struct sigaction action{}, old{};
    action.sa_handler = count_signal;  // no SA_RESTART: the read returns EINTR
    sigemptyset(&action.sa_mask);
    REQUIRE(::sigaction(SIGUSR1, &action, &old) == 0);
    int raw[2];
    REQUIRE(::pipe(raw) == 0);
    Fd reader(raw[0]);
    Fd writer(raw[1]);
    signals_seen = 0;
    const pthread_t me = ::pthread_self();
    std::thread interrupter([&] {
        std::this_thread::sleep_for(100ms);  // the read is blocked by now
        ::pthread_kill(me, SIGUSR1);
        std::this_thread::sleep_for(100ms);
        CHECK(::write(writer.get(), "late", 4) == 4);
    });
    char got[4] = {};
    const std::size_t n = corelab::detail::read_full(reader.get(), got, sizeof got);
    interrupter.join();
    ::sigaction(SIGUSR1, &old, nullptr);
    CHECK(signals_seen.load() == 1);
    CHECK(n == 4);
    CHECK(std::memcmp(got, "late", 4) == 0);
}

TEST_CASE("fd: pread_full reads at an offset and leaves the file position alone") {
    Fd file(::memfd_create("corelab-test-fd", MFD_CLOEXEC));
    REQUIRE(file.ok());
    const std::string text = "0123456789";
    corelab::detail::write_full(file.get(), text.data(), text.size(), "the memfd");
    CHECK(::lseek(file.get(), 0, SEEK_CUR) == 10);
    char got[4] = {};
    CHECK(corelab::detail::pread_full(file.get(), got, 4, 3) == 4);
    CHECK(std::string(got, 4) == "3456");
    CHECK(corelab::detail::pread_full(file.get(), got, 4, 8) == 2);  // past the end: what is there
    CHECK(::lseek(file.get(), 0, SEEK_CUR) == 10);
    CHECK(corelab::detail::pwrite_full(file.get(), "ab", 2, 0) == 0);
    CHECK(corelab::detail::pread_full(file.get(), got, 2, 0) == 2);
    CHECK(std::string(got, 2) == "ab");
}

TEST_CASE("fd: a full disk and a bad descriptor are reported in words") {
    Fd full(::open("/dev/full", O_WRONLY | O_CLOEXEC));
    if (!full.ok()) {
        MESSAGE("/dev/full is not there: the full-disk checks are skipped");
    } else {
        const std::vector<char> block(4096, 'x');
        CHECK_THROWS_WITH_AS(corelab::detail::write_full(full.get(), block.data(), block.size(), "/dev/full"),
                             doctest::Contains("cannot write /dev/full: No space left on device"), corelab::Error);
        CHECK(corelab::detail::pwrite_full(full.get(), block.data(), block.size(), 0) == ENOSPC);
    }
    int raw[2];
    REQUIRE(::pipe(raw) == 0);
    Fd reader(raw[0]);
    Fd writer(raw[1]);
    char byte = 0;
    CHECK_THROWS_WITH_AS(corelab::detail::read_full(writer.get(), &byte, 1, "the pipe's write end"),
                         doctest::Contains("cannot read the pipe's write end: Bad file descriptor"), corelab::Error);
    CHECK_THROWS_WITH_AS(corelab::detail::write_full(reader.get(), &byte, 1),
                         doctest::Contains("cannot write: Bad file descriptor"), corelab::Error);
    CHECK(corelab::detail::errno_text(ENOSPC) == "No space left on device");
}
