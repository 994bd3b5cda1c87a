// Tests of corelab/ipc/names.hpp: names, the stale sweep and its liveness
// locks (a zombie owner, a reused pid, an owner in another pid namespace, a
// worker that inherited the lock, ./course clean-ipc), room checks.
#include <doctest/doctest.h>
#include <fcntl.h>     // open
#include <poll.h>      // poll
#include <sched.h>     // unshare, CLONE_NEWPID
#include <signal.h>    // raise
#include <sys/stat.h>  // mkfifoat
#include <sys/wait.h>  // waitpid
#include <unistd.h>    // fork, pipe

#include <algorithm>   // std::find
#include <atomic>      // std::atomic
#include <cerrno>      // errno
#include <chrono>      // std::chrono::milliseconds
#include <cstring>     // std::strerror
#include <filesystem>  // std::filesystem::exists
#include <string>      // std::string
#include <thread>      // std::thread, std::this_thread::sleep_for
#include <vector>      // std::vector

#include "corelab/error.hpp"
#include "corelab/ipc/names.hpp"
#include "corelab/ipc/shared_array.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"

namespace ipc = corelab::ipc;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string shm(const std::string& name) {
    return std::string(ipc::shm_directory) + "/" + name;
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

// Reads the line a child writes to `fd` (without its newline), waiting at
// most 30 s; whatever came when its writers close their ends first.
std::string read_line(int fd) {
    std::string text;
    char c = 0;
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, 30'000) == 1 && ::read(fd, &c, 1) == 1 && c != '\n') text += c;
    return text;
}

// Writes `text` and a newline to `fd` (in a child: errors are the reader's to see).
void write_line(int fd, const std::string& text) {
    const std::string line = text + "\n";
    (void)!::write(fd, line.c_str(), line.size());
}

// A run that ended without removing its segment: a child creates one, says
// its name and _exits. It is left a zombie (not reaped): its pid still answers
// kill(pid, 0), as the killed parent of lesson 03 does for a second or two.
struct ZombieOwner {
    pid_t pid = -1;
    std::string name;
    ZombieOwner(const ZombieOwner&) = delete;
    ZombieOwner& operator=(const ZombieOwner&) = delete;
    explicit ZombieOwner(const char* purpose) {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::close(fds[0]);
            try {
                auto array = ipc::SharedArray<int>::create(1000, purpose);
                write_line(fds[1], array.name());
                ::_exit(0);  // no destructor runs: the segment stays, as after kill -9
            } catch (const std::exception& e) {
                write_line(fds[1], std::string("!") + e.what());
            }
            ::_exit(1);
        }
        ::close(fds[1]);
        name = read_line(fds[0]);
        ::close(fds[0]);
        REQUIRE(corelab::test::wait_for_zombie(pid, 10s).ended);
        REQUIRE_MESSAGE(ipc::parse_name(name), "the child said: " << name);
    }
    ~ZombieOwner() {
        (void)corelab::test::wait_for(pid, 10s);  // reap it now
        ::unlink(shm(name).c_str());              // in case a check failed
    }
};

}  // namespace

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

// Other test programs run beside these and sweep /dev/shm too (each one the
// first time it creates an object), so a stale object may be gone before our
// own sweep looks: the checks that name the sweeper retry with a fresh one.
TEST_CASE("ipc names: a zombie owner's segment is swept at once, before anyone reaps it" * doctest::timeout(60)) {
    bool listed = false;
    for (int attempt = 0; attempt < 3 && !listed; ++attempt) {
        const ZombieOwner zombie("zombie_test");
        CHECK(::kill(zombie.pid, 0) == 0);  // by a pid test, it still runs
        CHECK(ipc::parse_name(zombie.name)->pid == zombie.pid);
        const auto removed = ipc::remove_stale();
        CHECK_FALSE(fs::exists(shm(zombie.name)));  // a zombie holds no lock: its segment goes at once
        listed = contains(removed, zombie.name);
    }
    CHECK_MESSAGE(listed, "another sweep removed the zombie's segment first, three times");
}

TEST_CASE("ipc names: an object nobody holds is swept even when a live process has its pid" * doctest::timeout(30)) {
    // A run that died long ago, whose pid now belongs to another process (our
    // parent, which runs): its object has the name but no lock.
    const pid_t other = ::getppid();
    REQUIRE(::kill(other, 0) == 0);
    const auto parts = ipc::parse_name(ipc::make_name("reused_pid"));
    REQUIRE(parts);
    const std::string name = "corelab." + std::to_string(other) + ".reused_pid." + parts->random;
    const int fd = ::open(shm(name).c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    ::close(fd);
    (void)ipc::remove_stale();
    const bool gone = !fs::exists(shm(name));
    if (!gone) ::unlink(shm(name).c_str());
    CHECK_MESSAGE(gone, "kept because pid " << other << " runs, though nobody holds the object");
}

TEST_CASE("ipc names: a segment is kept while its owner or a worker it forked lives, and swept after" *
          doctest::timeout(60)) {
    int names[2], stop[2];
    REQUIRE(::pipe(names) == 0);
    REQUIRE(::pipe(stop) == 0);
    const pid_t owner = ::fork();
    REQUIRE(owner >= 0);
    if (owner == 0) {
        ::close(names[0]);
        ::close(stop[1]);
        try {
            auto array = ipc::SharedArray<int>::create(1000, "worker_test");
            const pid_t worker = ::fork();  // inherits the segment and its lock, as a ProcessWorkers child does
            if (worker == 0) {
                ::close(names[1]);
                char c = 0;
                (void)!::read(stop[0], &c, 1);  // until the test closes its end
                ::_exit(0);
            }
            write_line(names[1], std::to_string(worker) + " " + array.name());
            ::close(names[1]);
            for (;;) ::pause();  // until SIGKILL, with the segment
        } catch (const std::exception& e) {
            write_line(names[1], std::string("! ") + e.what());
        }
        ::_exit(1);
    }
    ::close(names[1]);
    ::close(stop[0]);
    const std::string text = read_line(names[0]);
    ::close(names[0]);
    const auto space = text.find(' ');
    REQUIRE(space != std::string::npos);
    REQUIRE_MESSAGE(text[0] != '!', "the owner said: " << text);
    const pid_t worker = std::stoi(text.substr(0, space));
    const std::string name = text.substr(space + 1);
    REQUIRE(worker > 0);

    CHECK_FALSE(contains(ipc::remove_stale(), name));  // the owner runs
    CHECK(fs::exists(shm(name)));
    ::kill(owner, SIGKILL);
    REQUIRE(corelab::test::wait_for_zombie(owner, 10s).signal == SIGKILL);
    CHECK_FALSE(contains(ipc::remove_stale(), name));  // the owner is gone, its worker still holds the lock
    CHECK(fs::exists(shm(name)));
    ::close(stop[1]);  // the worker ends
    CHECK(corelab::test::eventually([&] { return corelab::test::finished(worker); }, 10s));
    (void)ipc::remove_stale();
    CHECK_FALSE(fs::exists(shm(name)));  // nobody holds it now, though the owner is not reaped yet
    CHECK(corelab::test::wait_for(owner, 10s).ended);
    ::unlink(shm(name).c_str());
}

TEST_CASE("ipc names: a live owner in another pid namespace keeps its segment" * doctest::timeout(60)) {
    // The owner gets, in its own namespace, a pid that no process has here:
    // by a pid test it would be dead (a container sharing /dev/shm). Pids
    // from `unused` on are free here; the new namespace counts from 1, and
    // its processes fork until one has a pid in that range (threads, such as
    // a sanitizer's, take pids too, so it may skip a few).
    constexpr pid_t range = 64;
    const pid_t unused = corelab::test::unused_pids(10, range);
    REQUIRE(unused != 0);
    int names[2], stop[2];
    REQUIRE(::pipe(names) == 0);
    REQUIRE(::pipe(stop) == 0);
    const pid_t outer = ::fork();
    REQUIRE(outer >= 0);
    if (outer == 0) {
        ::close(names[0]);
        ::close(stop[1]);
        if (::unshare(CLONE_NEWPID) != 0) {
            write_line(names[1], std::string("!") + std::strerror(errno));
            ::_exit(0);
        }
        const pid_t init = ::fork();  // pid 1 of the new namespace; it forks until a child's pid is unused here
        if (init == 0) {
            for (;;) {
                const pid_t p = ::fork();
                if (p == 0) {
                    if (::getpid() < unused) ::_exit(0);
                    try {
                        auto array = ipc::SharedArray<int>::create(1000, "pidns_test");
                        write_line(names[1], array.name());
                        ::close(names[1]);
                        char c = 0;
                        (void)!::read(stop[0], &c, 1);  // until the test closes its end
                    } catch (const std::exception& e) {
                        write_line(names[1], std::string("? ") + e.what());
                    }
                    ::_exit(0);
                }
                if (p < 0) ::_exit(2);
                if (p >= unused) ::close(names[1]);
                while (::waitpid(p, nullptr, 0) < 0 && errno == EINTR) {
                }
                if (p >= unused) ::_exit(0);
            }
        }
        ::close(names[1]);
        while (init > 0 && ::waitpid(init, nullptr, 0) < 0 && errno == EINTR) {
        }
        ::_exit(0);
    }
    ::close(names[1]);
    ::close(stop[0]);
    const std::string name = read_line(names[0]);
    ::close(names[0]);
    if (name.rfind('!', 0) == 0) {
        MESSAGE("skipped: this machine does not allow a new pid namespace (unshare: " << name.substr(1) << ")");
    } else {
        REQUIRE_MESSAGE(ipc::parse_name(name), "the owner said: " << name);
        const pid_t pid = ipc::parse_name(name)->pid;
        CHECK(pid >= unused);
        CHECK(pid < unused + range);
        CHECK(::kill(pid, 0) != 0);  // no such pid here
        CHECK_FALSE(contains(ipc::remove_stale(), name));
        CHECK_MESSAGE(fs::exists(shm(name)), "a live run in another pid namespace lost its segment");
    }
    ::close(stop[1]);  // the owner removes its segment and ends, and the namespace with it
    CHECK(corelab::test::wait_for(outer, 30s).ended);
    if (!name.empty() && name[0] != '!') {
        CHECK_FALSE(fs::exists(shm(name)));
        ::unlink(shm(name).c_str());
    }
}

TEST_CASE("ipc names: ./course clean-ipc removes a zombie's segment, keeps a live one, follows no symlink" *
          doctest::timeout(120)) {
    const auto live = ipc::SharedArray<int>::create(10, "clean_live");
    // a symlink named like a dead run's object, to a file of ours elsewhere
    const pid_t dead = [] {
        for (pid_t p = 10; p < 5000; ++p)
            if (::kill(p, 0) != 0 && errno == ESRCH) return p;
        return pid_t{0};
    }();
    REQUIRE(dead != 0);
    std::string dir = (fs::temp_directory_path() / "corelab-clean-ipc-XXXXXX").string();
    REQUIRE(::mkdtemp(dir.data()) != nullptr);
    const std::string target = dir + "/target";
    ::close(::open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    const std::string link =
        "corelab." + std::to_string(dead) + ".clean_link." + ipc::parse_name(ipc::make_name("x"))->random;
    REQUIRE(::symlink(target.c_str(), shm(link).c_str()) == 0);

    bool listed = false;
    for (int attempt = 0; attempt < 3 && !listed; ++attempt) {
        const ZombieOwner zombie("clean_zombie");
        const corelab::test::Outcome o =
            corelab::test::run({"/usr/bin/env", "CORELAB_CLEAN_IPC_TOOL=" CORELAB_CLEAN_IPC_TOOL, "/bin/bash",
                                CORELAB_COURSE, "clean-ipc"},
                               60s);
        CHECK(o.exit_code == 0);
        CHECK(o.out.find("clean-ipc: removed ") != std::string::npos);  // the summary line
        CHECK_FALSE(fs::exists(shm(zombie.name)));
        listed = o.out.find("removed " + zombie.name + " (") != std::string::npos;
        CHECK(o.out.find(live.name()) == std::string::npos);
        CHECK(o.out.find(link) == std::string::npos);
    }
    CHECK_MESSAGE(listed, "another sweep removed the zombie's segment first, three times");
    CHECK(fs::exists(shm(live.name())));
    CHECK(fs::is_symlink(shm(link)));  // not followed, not removed: it is not an object of ours
    CHECK(fs::exists(target));
    ::unlink(shm(link).c_str());
    fs::remove_all(dir);
}

namespace {

// A private directory for the lock tests, removed with what is in it.
struct LockDir {
    std::string path;
    int fd = -1;
    LockDir() {
        path = (fs::temp_directory_path() / "corelab-locks-XXXXXX").string();
        REQUIRE(::mkdtemp(path.data()) != nullptr);
        fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        REQUIRE(fd >= 0);
    }
    ~LockDir() {
        ::close(fd);
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    LockDir(const LockDir&) = delete;
    LockDir& operator=(const LockDir&) = delete;
    // Creates `name` as a new empty file and returns a descriptor of it.
    int create(const std::string& name) const {
        const int f = ::openat(fd, name.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        REQUIRE(f >= 0);
        return f;
    }
};

}  // namespace

TEST_CASE("ipc names: an owner's lock keeps a sweep off, and the sweep's lock is taken once the owner lets go") {
    LockDir dir;
    const int fd = dir.create("object");
    ipc::ObjectLock owner = ipc::lock_as_owner(dir.fd, "object", fd);
    ::close(fd);  // the lock has its own descriptor
    REQUIRE(owner);
    CHECK_FALSE(ipc::lock_if_unowned(dir.fd, "object"));  // held, even by this same process
    ipc::ObjectLock moved = std::move(owner);
    CHECK_FALSE(owner);
    CHECK_FALSE(ipc::lock_if_unowned(dir.fd, "object"));
    moved.reset();
    ipc::ObjectLock sweep = ipc::lock_if_unowned(dir.fd, "object");
    CHECK(sweep);
    CHECK_FALSE(ipc::lock_if_unowned(dir.fd, "object"));  // exclusive
    CHECK_THROWS_AS((void)ipc::lock_as_owner(AT_FDCWD, dir.path + "/missing-dir/x", 1234567), corelab::Error);
}

TEST_CASE("ipc names: a creator whose new file was swept before it locked it is told so, and never holds a stray") {
    LockDir dir;
    // swept between its creation and its lock
    const int fd = dir.create("object");
    {
        const ipc::ObjectLock sweep = ipc::lock_if_unowned(dir.fd, "object");  // not locked yet: looks abandoned
        REQUIRE(sweep);
        REQUIRE(::unlinkat(dir.fd, "object", 0) == 0);
    }
    CHECK_FALSE(ipc::lock_as_owner(dir.fd, "object", fd));  // the name is gone
    CHECK_FALSE(ipc::lock_as_owner(dir.fd, "object"));      // nothing to open either
    // ... and another file made under the name meanwhile is not the one it created
    ::close(dir.create("object"));
    CHECK_FALSE(ipc::lock_as_owner(dir.fd, "object", fd));
    ::close(fd);
    CHECK(ipc::lock_as_owner(dir.fd, "object"));  // by name: the file there now
}

TEST_CASE("ipc names: a creator waits while a sweep holds its file, then sees it removed" * doctest::timeout(30)) {
    LockDir dir;
    const int fd = dir.create("object");
    ipc::ObjectLock sweep = ipc::lock_if_unowned(dir.fd, "object");
    REQUIRE(sweep);
    std::atomic<bool> returned{false};
    bool locked = true;
    const auto start = std::chrono::steady_clock::now();
    std::chrono::steady_clock::duration took{};
    std::thread creator([&] {
        locked = static_cast<bool>(ipc::lock_as_owner(dir.fd, "object", fd));
        took = std::chrono::steady_clock::now() - start;
        returned = true;
    });
    std::this_thread::sleep_for(100ms);
    CHECK_FALSE(returned.load());  // waiting for the sweep to let go
    REQUIRE(::unlinkat(dir.fd, "object", 0) == 0);
    sweep.reset();
    creator.join();
    ::close(fd);
    CHECK_FALSE(locked);
    CHECK(took >= 100ms);
}

TEST_CASE("ipc names: the sweep opens no symlink, FIFO or other user's file and removes only what nobody holds" *
          doctest::timeout(30)) {
    LockDir dir;
    const std::string random = ipc::parse_name(ipc::make_name("x"))->random;
    const auto ours = [&](const char* purpose) { return "corelab.1." + std::string(purpose) + "." + random; };
    // a target outside our names, reached through a symlink named like ours
    ::close(dir.create("target"));
    REQUIRE(::symlinkat("target", dir.fd, ours("link").c_str()) == 0);
    // a FIFO named like ours: opening it for reading would block
    REQUIRE(::mkfifoat(dir.fd, ours("fifo").c_str(), 0600) == 0);
    // another user's file (we run as root in CI; elsewhere the chown fails and it is skipped)
    ::close(dir.create(ours("foreign")));
    const bool foreign = ::fchownat(dir.fd, ours("foreign").c_str(), 65534, 65534, 0) == 0;
    // one held, one abandoned, one with a name not ours
    const int held_fd = dir.create(ours("held"));
    const ipc::ObjectLock held = ipc::lock_as_owner(dir.fd, ours("held"), held_fd);
    ::close(held_fd);
    REQUIRE(held);
    ::close(dir.create(ours("abandoned")));
    ::close(dir.create("not_ours.abandoned"));

    const auto removed = ipc::remove_stale(dir.path);
    REQUIRE(removed.size() == (foreign ? 1u : 2u));
    CHECK(contains(removed, ours("abandoned")));
    CHECK(fs::is_symlink(dir.path + "/" + ours("link")));
    CHECK(fs::exists(dir.path + "/target"));
    CHECK(fs::is_fifo(dir.path + "/" + ours("fifo")));
    CHECK(fs::exists(dir.path + "/" + ours("held")));
    CHECK(fs::exists(dir.path + "/not_ours.abandoned"));
    if (foreign) CHECK(fs::exists(dir.path + "/" + ours("foreign")));
    CHECK_FALSE(ipc::lock_if_unowned(dir.fd, ours("link")));
    CHECK_FALSE(ipc::lock_if_unowned(dir.fd, ours("fifo")));
}

TEST_CASE("ipc names: a directory is locked the same way, and remove_stale never removes one") {
    LockDir dir;
    const std::string name = "corelab.1.dir_test." + ipc::parse_name(ipc::make_name("x"))->random;
    REQUIRE(::mkdirat(dir.fd, name.c_str(), 0700) == 0);
    const int fd = ::openat(dir.fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    ipc::ObjectLock owner = ipc::lock_as_owner(dir.fd, name, fd);
    ::close(fd);
    REQUIRE(owner);
    CHECK_FALSE(ipc::lock_if_unowned(dir.fd, name));  // held
    owner.reset();
    CHECK(ipc::lock_if_unowned(dir.fd, name));   // nobody holds it now
    CHECK(ipc::remove_stale(dir.path).empty());  // unlocked, named like ours, but not a file
    CHECK(fs::is_directory(dir.path + "/" + name));
}
