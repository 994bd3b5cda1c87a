// Tests of corelab/ipc/names.hpp: names, the stale sweep, room checks, thread count.
#include <doctest/doctest.h>
#include <signal.h>    // raise
#include <sys/wait.h>  // waitpid
#include <unistd.h>    // fork, pipe

#include <algorithm>   // std::find
#include <atomic>      // std::atomic
#include <chrono>      // std::chrono::milliseconds
#include <filesystem>  // std::filesystem::exists
#include <string>      // std::string
#include <thread>      // std::thread, std::this_thread::sleep_for
#include <vector>      // std::vector

#include "corelab/error.hpp"
#include "corelab/ipc/names.hpp"
#include "corelab/ipc/shared_array.hpp"
#include "support/processes.hpp"

namespace ipc = corelab::ipc;

TEST_CASE("ipc names: corelab.pid.purpose.random and parsed back") {
    const std::string a = ipc::make_name("data");
    const std::string b = ipc::make_name("data");
    CHECK(a != b);  // the random suffix
    CHECK(a.rfind("corelab." + std::to_string(::getpid()) + ".data.", 0) == 0);
    const auto parts = ipc::parse_name(a);
    REQUIRE(parts);
    CHECK(parts->pid == ::getpid());
    CHECK(parts->purpose == "data");
    CHECK(parts->random.size() == 16);
    CHECK_THROWS_AS(ipc::make_name("Bad.Purpose"), corelab::Error);
    CHECK_THROWS_AS(ipc::make_name(""), corelab::Error);
    for (const char* other : {"sem.corelab.1.x.y", "corelab.", "corelab.12.data", "corelab.x1.data.ab",
                              "corelab.12.data.ab.cd", "corelab.0.data.ab", "corelabs.12.data.ab"}) {
        CAPTURE(other);
        CHECK_FALSE(ipc::parse_name(other));
    }
}

TEST_CASE("ipc names: a segment left by a SIGKILLed process is swept and a live one is kept" * doctest::timeout(30)) {
    const auto live = ipc::SharedArray<int>::create(10, "live_test");  // ours: its owner runs
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // a run that dies without cleaning up: create a segment, say its name, SIGKILL
        auto array = ipc::SharedArray<int>::create(1000, "stale_test");
        const std::string& name = array.name();
        (void)!::write(fds[1], name.c_str(), name.size());
        ::raise(SIGKILL);
        ::_exit(1);
    }
    ::close(fds[1]);
    char buffer[256] = {};
    const ssize_t got = ::read(fds[0], buffer, sizeof buffer - 1);
    ::close(fds[0]);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    REQUIRE(got > 0);
    const std::string stale(buffer, static_cast<std::size_t>(got));
    CHECK(std::filesystem::exists(std::string("/dev/shm/") + stale));

    const auto removed = ipc::remove_stale();
    CHECK(std::find(removed.begin(), removed.end(), stale) != removed.end());
    CHECK_FALSE(std::filesystem::exists(std::string("/dev/shm/") + stale));
    CHECK(std::filesystem::exists(std::string("/dev/shm/") + live.name()));
    CHECK(corelab::test::shm_objects_of(child).empty());
}

TEST_CASE("ipc names: room in /dev/shm is checked before anything is created") {
    CHECK_NOTHROW(ipc::check_room(4096, "a small segment"));
    try {
        ipc::check_room(std::size_t{1} << 60, "a huge segment");
        FAIL("no error for 1 EB");
    } catch (const corelab::Error& e) {
        const std::string what = e.what();
        CHECK(what.find("a huge segment") != std::string::npos);
        CHECK(what.find("/dev/shm") != std::string::npos);
    }
}

TEST_CASE("ipc names: live_threads counts a started thread" * doctest::timeout(30)) {
    const unsigned before = ipc::live_threads();
    CHECK(before >= 1);
    std::atomic<bool> stop{false};
    std::thread t([&] {
        while (!stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
    CHECK(ipc::live_threads() >= before + 1);  // ThreadSanitizer may start its own thread now too
    stop = true;
    t.join();
}

TEST_CASE("names: a worker child ignores SIGINT and kill_and_reap stops and reaps it" * doctest::timeout(30)) {
    const pid_t parent = ::getpid();
    const pid_t pid = corelab::ipc::fork_worker_child(0, "(test)");
    if (pid == 0) {
        struct sigaction now{};
        ::sigaction(SIGINT, nullptr, &now);
        if (now.sa_handler != SIG_IGN) ::_exit(3);  // the parent must be the one to stop it
        ::raise(SIGINT);                            // ignored: the child keeps running
        ::pause();                                  // until SIGKILL
        ::_exit(4);
    }
    REQUIRE(pid > 0);
    std::vector<pid_t> pids{pid, 0};  // a second slot never started: skipped
    std::vector<bool> reaped{false, false};
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    int status = 0;
    CHECK(::waitpid(pid, &status, WNOHANG) == 0);  // still alive: SIGINT was ignored
    corelab::ipc::kill_and_reap(parent, pids, reaped);
    CHECK(reaped[0]);
    CHECK_FALSE(reaped[1]);
    CHECK(::kill(pid, 0) == -1);                        // reaped: the pid no longer exists
    corelab::ipc::kill_and_reap(parent, pids, reaped);  // twice is harmless
}
