// Tests of corelab/children.hpp: a child's set-up (SIGINT ignored, stdout a
// line at a time), its end seen through its pidfd at once without a deadline,
// a deadline kept for a child that hangs, the words for each way a child
// ends, kill-and-reap of the rest, the thread check, and the error limit.
#include <doctest/doctest.h>
#include <signal.h>     // raise, sigaction, kill
#include <stdio_ext.h>  // __flbf
#include <sys/wait.h>   // WIFEXITED, WEXITSTATUS
#include <unistd.h>     // _exit, pause

#include <atomic>     // std::atomic
#include <chrono>     // std::chrono::steady_clock
#include <cstdio>     // stdout
#include <stdexcept>  // std::runtime_error
#include <string>     // std::string
#include <thread>     // std::thread, std::this_thread::sleep_for
#include <vector>     // std::vector

#include "corelab/children.hpp"
#include "support/processes.hpp"

using namespace std::chrono_literals;
using corelab::Children;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Waits (with no deadline) until child k ends, and returns its wait status.
int wait_for_end(Children& children, unsigned k) {
    std::vector<pollfd> none;
    for (;;) {
        if (const auto status = children.try_reap(k)) return *status;
        children.wait(none, std::nullopt);
    }
}

}  // namespace

TEST_CASE("children: live_threads counts a started thread" * doctest::timeout(30)) {
    const unsigned before = corelab::live_threads();
    CHECK(before >= 1);
    std::atomic<bool> stop{false};
    std::thread t([&] {
        while (!stop.load()) std::this_thread::sleep_for(1ms);
    });
    CHECK(corelab::live_threads() >= before + 1);  // ThreadSanitizer may start its own thread now too
    stop = true;
    t.join();
}

TEST_CASE("children: a child ignores SIGINT, writes stdout by lines, and kill_all stops and reaps it" *
          doctest::timeout(30)) {
    Children children(2, "(test)", corelab::About::workers);
    if (children.start(0)) {
        struct sigaction now{};
        ::sigaction(SIGINT, nullptr, &now);
        if (now.sa_handler != SIG_IGN) ::_exit(3);  // the parent must be the one to stop it
        if (__flbf(stdout) == 0) ::_exit(5);        // stdout goes out a line at a time
        ::raise(SIGINT);                            // ignored: the child keeps running
        ::pause();                                  // until SIGKILL
        ::_exit(4);
    }
    const pid_t pid = children.pid(0);
    REQUIRE(pid > 0);
    std::this_thread::sleep_for(100ms);
    CHECK_FALSE(children.try_reap(0).has_value());  // still alive: SIGINT was ignored
    children.kill_all();                            // child 1 was never started: skipped
    CHECK(children.reaped(0));
    CHECK(children.all_reaped());
    CHECK(::kill(pid, 0) == -1);  // reaped: the pid no longer exists
    children.kill_all();          // twice is harmless
    CHECK(corelab::test::children_of(::getpid()).empty());
}

TEST_CASE("children: wait without a deadline wakes as soon as a child ends, and says how it ended" *
          doctest::timeout(30)) {
    Children children(3, "(test)", corelab::About::workers);
    for (unsigned k = 0; k < 3; ++k) {
        if (!children.start(k)) continue;
        std::this_thread::sleep_for(300ms);  // every child: work a little, then end in its own way
        if (k == 0) ::_exit(3);
        if (k == 1) ::raise(SIGKILL);
        ::_exit(0);
    }
    const auto start = std::chrono::steady_clock::now();
    const int status0 = wait_for_end(children, 0);
    CHECK(seconds_since(start) < 2.0);
    CHECK(corelab::describe_end(0, children.pid(0), status0, " while testing") ==
          "worker 0 (pid " + std::to_string(children.pid(0)) + ") exited with status 3 while testing");
    const int status1 = wait_for_end(children, 1);
    CHECK(corelab::describe_end(1, children.pid(1), status1, " while running task 7") ==
          "worker 1 (pid " + std::to_string(children.pid(1)) + ") was killed by SIGKILL while running task 7");
    const int status2 = wait_for_end(children, 2);
    CHECK(WIFEXITED(status2));
    CHECK(WEXITSTATUS(status2) == 0);
    CHECK(children.all_reaped());
    CHECK(corelab::test::children_of(::getpid()).empty());
}

TEST_CASE("children: wait keeps the caller's deadline for a child that hangs" * doctest::timeout(30)) {
    const auto start = std::chrono::steady_clock::now();
    pid_t pid = 0;
    {
        Children children(1, "(test)", corelab::About::workers);
        if (children.start(0)) {
            ::pause();  // hangs until killed
            ::_exit(4);
        }
        pid = children.pid(0);
        std::vector<pollfd> none;
        const auto deadline = std::chrono::steady_clock::now() + 300ms;
        while (std::chrono::steady_clock::now() < deadline) children.wait(none, deadline);
        CHECK(seconds_since(start) >= 0.3);
        CHECK(seconds_since(start) < 3.0);
        CHECK_FALSE(children.try_reap(0).has_value());
    }  // the destructor kills and reaps it
    CHECK(::kill(pid, 0) == -1);
    CHECK(corelab::test::children_of(::getpid()).empty());
}

TEST_CASE("children: refuse to start while other threads run" * doctest::timeout(30)) {
    std::atomic<bool> stop{false};
    std::thread other([&] {
        while (!stop.load()) std::this_thread::sleep_for(1ms);
    });
    CHECK_THROWS_WITH_AS(Children(2, "Use threads instead.", corelab::About::workers),
                         doctest::Contains("threads, and a forked child would inherit locks"), corelab::Error);
    stop = true;
    other.join();
}

TEST_CASE("children: an error travels whole up to its limit, and cut with '...' beyond") {
    CHECK(corelab::ChildError::of("no data for part 1").str() == "no data for part 1");
    const std::string longer(3 * corelab::ChildError::limit, 'x');
    const std::string cut = corelab::ChildError::of(longer.c_str()).str();
    CHECK(cut.size() == corelab::ChildError::limit);
    CHECK(cut.substr(cut.size() - 3) == "...");
    try {
        throw std::runtime_error("bad input 7");
    } catch (...) {
        CHECK(corelab::ChildError::current().str() == "bad input 7");
    }
    try {
        throw 42;
    } catch (...) {
        CHECK(corelab::ChildError::current().str() == "an exception that is not a std::exception");
    }
}

TEST_CASE("children: the words for a timeout and for a signal") {
    CHECK(corelab::signal_name(SIGKILL) == "SIGKILL");
    CHECK(corelab::describe_timeout("Parallel(n_jobs=2)", 300ms, "worker 0 (pid 1) was running task 3") ==
          "Parallel(n_jobs=2) did not finish within 300 ms: worker 0 (pid 1) was running task 3; every worker was "
          "killed with SIGKILL");
}
