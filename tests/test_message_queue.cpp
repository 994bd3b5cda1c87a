// Tests of corelab/ipc/message_queue.hpp: send/receive, full and empty with
// timeouts, a child on the other side, sizes, planted objects, and a storm of
// children SIGKILLed while they hammer the queue.
#include <doctest/doctest.h>
#include <fcntl.h>     // open
#include <signal.h>    // kill
#include <sys/stat.h>  // stat
#include <sys/wait.h>  // waitpid
#include <unistd.h>    // fork

#include <algorithm>   // std::find
#include <array>       // std::array
#include <chrono>      // std::chrono
#include <filesystem>  // std::filesystem::exists
#include <random>      // std::mt19937
#include <string>      // std::string
#include <thread>      // std::this_thread

#include "corelab/error.hpp"
#include "corelab/ipc/message_queue.hpp"
#include "support/processes.hpp"

namespace ipc = corelab::ipc;
using namespace std::chrono_literals;

namespace {

struct Pair {
    double sum;
    std::size_t count;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

TEST_CASE("message queue: first in first out and removed by its creator" * doctest::timeout(30)) {
    std::string name;
    {
        auto q = ipc::MessageQueue<Pair>::create(4, "test");
        name = q.name();
        struct stat st{};
        REQUIRE(::stat(("/dev/shm/" + name).c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0600);
        q.send({1.5, 1});
        CHECK(q.try_send({2.5, 2}));
        const auto a = q.try_receive();
        const auto b = q.receive_for(100ms);
        REQUIRE(a);
        REQUIRE(b);
        CHECK(a->sum == 1.5);
        CHECK(b->count == 2);
    }
    CHECK_FALSE(std::filesystem::exists("/dev/shm/" + name));
}

TEST_CASE("message queue: empty and full are answered within their timeouts" * doctest::timeout(30)) {
    auto q = ipc::MessageQueue<int>::create(2, "test");
    CHECK_FALSE(q.try_receive());
    auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(q.receive_for(50ms));
    CHECK(seconds_since(start) >= 0.05);
    CHECK(seconds_since(start) < 5.0);
    CHECK(q.try_send(1));
    CHECK(q.try_send(2));
    CHECK_FALSE(q.try_send(3));  // full
    start = std::chrono::steady_clock::now();
    CHECK_THROWS_WITH_AS(q.send(3, 50ms), doctest::Contains("stayed full"), corelab::Error);
    CHECK(seconds_since(start) >= 0.05);
    CHECK(q.try_receive() == 1);
    CHECK(q.try_send(3));
}

TEST_CASE("message queue: a child opens it by name and sends" * doctest::timeout(30)) {
    auto q = ipc::MessageQueue<Pair>::create(8, "test");
    const std::string name = q.name();
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        try {
            auto mine = ipc::MessageQueue<Pair>::open(name);
            for (std::size_t i = 0; i < 3; ++i) mine.send({static_cast<double>(i), i});
        } catch (...) {
            ::_exit(3);
        }
        ::_exit(0);
    }
    for (std::size_t i = 0; i < 3; ++i) {
        const auto got = q.receive_for(10s);
        REQUIRE(got);
        CHECK(got->count == i);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("message queue: a message of the wrong size is refused with a clear error") {
    auto q = ipc::MessageQueue<std::array<char, 16>>::create(2, "test");
    CHECK_THROWS_WITH_AS(ipc::MessageQueue<int>::open(q.name()), doctest::Contains("messages of 16 bytes"),
                         corelab::Error);
    auto raw = ipc::detail::QueueCore::open(q.name(), 16);
    const char eight[8] = {};
    CHECK_THROWS_WITH_AS(raw.try_send(eight, sizeof eight), doctest::Contains("a message of 8 bytes"), corelab::Error);
    char big[32] = {};
    CHECK_THROWS_AS(raw.try_receive(big, sizeof big), corelab::Error);
    CHECK_FALSE(q.try_receive());  // nothing got in
}

TEST_CASE("message queue: an existing name is never adopted and a planted object is never opened") {
    auto q = ipc::MessageQueue<int>::create(2, "test");
    CHECK_THROWS_WITH_AS(ipc::MessageQueue<int>::create_named(q.name(), 2), doctest::Contains("already exists"),
                         corelab::Error);
    const std::string planted = ipc::make_name("planted");
    const int fd = ::open(("/dev/shm/" + planted).c_str(), O_CREAT | O_EXCL | O_RDWR, 0644);
    REQUIRE(fd >= 0);
    ::fchmod(fd, 0644);
    ::close(fd);
    CHECK_THROWS_WITH_AS(ipc::MessageQueue<int>::open(planted), doctest::Contains("refusing to open"), corelab::Error);
    ::unlink(("/dev/shm/" + planted).c_str());
}

// The experiment behind the "never wait inside the queue" rule, as a test: a
// child hammers the queue (sends and receives as fast as it can) and is
// SIGKILLed at a random instant, possibly holding the queue's lock. The
// parent keeps polling: every iteration must end, in messages or in a clean
// QueueBroken, and never hang.
TEST_CASE("message queue: fault storm of 300 children SIGKILLed while hammering the queue" * doctest::timeout(240)) {
    std::mt19937 random(12345);
    int broken = 0;
    int clean = 0;
    double slowest = 0.0;
    for (int iteration = 0; iteration < 300; ++iteration) {
        const auto start = std::chrono::steady_clock::now();
        auto q = ipc::MessageQueue<Pair>::create(16, "storm");
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            try {
                for (std::size_t i = 0;; ++i) {
                    (void)q.try_send({1.0, i});
                    (void)q.try_receive();
                }
            } catch (...) {
                ::_exit(3);
            }
        }
        // poll alongside it for a random while, then kill it at a random instant
        const auto kill_at = start + std::chrono::microseconds(random() % 3000);
        bool failed = false;
        try {
            while (std::chrono::steady_clock::now() < kill_at) (void)q.try_receive();
            ::kill(child, SIGKILL);
            for (int i = 0; i < 200; ++i) (void)q.try_receive();  // touch the lock after the death
        } catch (const ipc::QueueBroken& e) {
            failed = true;
            CHECK(std::string(e.what()).find("died while holding its lock") != std::string::npos);
            CHECK(q.broken());
            CHECK_THROWS_AS(q.try_receive(), ipc::QueueBroken);  // never touched again
        }
        ::kill(child, SIGKILL);
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        CHECK(WIFSIGNALED(status));
        (failed ? broken : clean) += 1;
        slowest = std::max(slowest, seconds_since(start));
    }
    MESSAGE("300 kills: " << clean << " ended with the queue usable, " << broken
                          << " with a clean QueueBroken; slowest iteration " << slowest << " s");
    CHECK(clean + broken == 300);
    CHECK(slowest < 5.0);
    CHECK(corelab::test::shm_objects_of(::getpid()).empty());
}

TEST_CASE("message queue: a zombie owner's queue is swept at once, before anyone reaps it" * doctest::timeout(60)) {
    // Other test programs sweep /dev/shm too: the check that names our sweep
    // as the remover retries with a fresh queue when another was first.
    bool listed = false;
    for (int attempt = 0; attempt < 3 && !listed; ++attempt) {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::close(fds[0]);
            try {
                auto queue = ipc::MessageQueue<Pair>::create(4, "zombie_queue");
                (void)!::write(fds[1], queue.name().c_str(), queue.name().size());
                ::_exit(0);  // no destructor runs: the queue stays, as after kill -9
            } catch (...) {
                ::_exit(3);  // never into the test runner: the parent sees no name
            }
        }
        ::close(fds[1]);
        char buffer[256] = {};
        const ssize_t got = ::read(fds[0], buffer, sizeof buffer - 1);
        ::close(fds[0]);
        REQUIRE(got > 0);
        const std::string name(buffer, static_cast<std::size_t>(got));
        REQUIRE(corelab::test::wait_for_zombie(pid, 10s).ended);
        CHECK(::kill(pid, 0) == 0);  // by a pid test, it still runs
        const auto removed = ipc::remove_stale();
        CHECK_FALSE(std::filesystem::exists(std::string(ipc::shm_directory) + "/" + name));
        listed = std::find(removed.begin(), removed.end(), name) != removed.end();
        CHECK(corelab::test::wait_for(pid, 10s).ended);
        ::unlink((std::string(ipc::shm_directory) + "/" + name).c_str());
    }
    CHECK_MESSAGE(listed, "another sweep removed the zombie's queue first, three times");
}
