// Tests of corelab/process_usage.hpp: touching new pages shows as minor
// faults and resident bytes, and a forked child that writes pages it shares
// with its parent pays for private copies of them (copy-on-write), which is
// what lesson 03's children report.
#include <doctest/doctest.h>
#include <signal.h>  // kill, SIGKILL
#include <unistd.h>  // fork, pipe, read, write, close, _exit, getpid

#include <chrono>   // std::chrono
#include <cstddef>  // std::size_t
#include <vector>   // std::vector

#include "corelab/process_usage.hpp"
#include "support/processes.hpp"

using namespace std::chrono_literals;

namespace {

constexpr std::size_t page = 4096;

void touch(std::vector<char>& bytes, char value) {
    for (std::size_t i = 0; i < bytes.size(); i += page) bytes[i] = value;
}

}  // namespace

TEST_CASE("process_usage: counts this process's faults and memory") {
    const auto before = corelab::process_usage();
    std::vector<char> touched(std::size_t{16} << 20);
    for (std::size_t i = 0; i < touched.size(); i += 4096) touched[i] = 1;
    const auto after = corelab::process_usage();
    CHECK(after.minor_faults > before.minor_faults);
    CHECK(after.rss_bytes > 0);
    CHECK(after.peak_rss_bytes >= after.rss_bytes);
    CHECK(after.private_bytes > 0);
}

TEST_CASE("process_usage: a forked child that writes its parent's pages pays for private copies" *
          doctest::timeout(60)) {
    constexpr std::size_t bytes = std::size_t{32} << 20;
    std::vector<char> shared(bytes);
    touch(shared, 1);  // resident in the parent before the fork: the child starts by sharing them
    struct Seen {
        long faults = 0;
        long long private_added = 0;
    };
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(fds[0]);
        const auto before = corelab::process_usage();
        touch(shared, 2);  // every page written: each one copied for this child
        const auto after = corelab::process_usage();
        const Seen seen{after.minor_faults - before.minor_faults,
                        static_cast<long long>(after.private_bytes) - static_cast<long long>(before.private_bytes)};
        const bool sent = ::write(fds[1], &seen, sizeof seen) == static_cast<ssize_t>(sizeof seen);
        ::_exit(sent ? 0 : 1);
    }
    ::close(fds[1]);
    Seen seen;
    const ssize_t got = ::read(fds[0], &seen, sizeof seen);
    ::close(fds[0]);
    const auto ended = corelab::test::wait_for(pid, 30s);
    if (!ended.ended) {  // hung: never leave it running
        ::kill(pid, SIGKILL);
        (void)corelab::test::wait_for(pid, 10s);
    }
    REQUIRE(ended.ended);
    CHECK(ended.exit_code == 0);
    REQUIRE(got == static_cast<ssize_t>(sizeof seen));
    CHECK(seen.faults > 0);
    CHECK(seen.private_added >= static_cast<long long>(bytes / 2));  // 32 MB written: at least 16 MB copied
    CHECK(shared[0] == 1);                                           // the parent's pages were never touched
}
