// Tests of corelab/ipc/shared_array.hpp: create, open from a child, 0600,
// collisions, planted objects, room, removal.
#include <doctest/doctest.h>
#include <fcntl.h>     // open
#include <sys/stat.h>  // stat
#include <sys/wait.h>  // waitpid
#include <unistd.h>    // fork

#include <filesystem>  // std::filesystem::exists
#include <string>      // std::string

#include "corelab/error.hpp"
#include "corelab/ipc/shared_array.hpp"
#include "support/processes.hpp"

namespace ipc = corelab::ipc;

namespace {

bool exists(const std::string& name) {
    return std::filesystem::exists("/dev/shm/" + name);
}

unsigned mode_of(const std::string& name) {
    struct stat st{};
    REQUIRE(::stat(("/dev/shm/" + name).c_str(), &st) == 0);
    return st.st_mode & 0777;
}

int wait_exit_code(pid_t pid) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

TEST_CASE("shared array: created zeroed with mode 0600 and removed by its creator") {
    std::string name;
    {
        auto a = ipc::SharedArray<double>::create(1000, "test");
        name = a.name();
        CHECK(a.size() == 1000);
        CHECK(a.writable());
        CHECK(exists(name));
        CHECK(mode_of(name) == 0600);
        for (double v : a.span()) CHECK(v == 0.0);
        auto moved = std::move(a);  // the moved-from object removes nothing
        CHECK(exists(name));
        CHECK(moved.name() == name);
    }
    CHECK_FALSE(exists(name));
    const auto empty = ipc::SharedArray<int>::create(0, "test");
    CHECK(empty.empty());
}

TEST_CASE("shared array: a child opens it by name and the parent sees its writes" * doctest::timeout(30)) {
    auto a = ipc::SharedArray<long>::create(100, "test");
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<long>(i);
    const std::string name = a.name();
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // what a worker started with exec does: open by name, read, write
        int code = 0;
        try {
            auto ro = ipc::SharedArray<long>::open(name, ipc::Access::read_only);
            long sum = 0;
            for (long v : ro.span()) sum += v;
            if (sum != 4950 || ro.writable()) code = 2;
            auto rw = ipc::SharedArray<long>::open(name, ipc::Access::read_write);
            for (auto& v : rw.span()) v *= 2;
        } catch (...) {
            code = 3;
        }
        ::_exit(code);
    }
    CHECK(wait_exit_code(child) == 0);
    CHECK(a[99] == 198);
    CHECK(exists(name));  // the child's opened copies never remove it
}

TEST_CASE("shared array: an existing name is never adopted and a planted object is never opened") {
    auto a = ipc::SharedArray<int>::create(10, "test");
    a[0] = 7;
    CHECK_THROWS_WITH_AS(ipc::SharedArray<int>::create_named(a.name(), 10), doctest::Contains("already exists"),
                         corelab::Error);
    CHECK(a[0] == 7);

    // someone else's object under a name of ours: mode 0644, as Boost's default
    const std::string planted = ipc::make_name("planted");
    const int fd = ::open(("/dev/shm/" + planted).c_str(), O_CREAT | O_EXCL | O_RDWR, 0644);
    REQUIRE(fd >= 0);
    ::fchmod(fd, 0644);
    REQUIRE(::ftruncate(fd, 4096) == 0);
    ::close(fd);
    CHECK_THROWS_WITH_AS(ipc::SharedArray<int>::open(planted), doctest::Contains("refusing to open"), corelab::Error);
    CHECK_THROWS_WITH_AS(ipc::SharedArray<int>::create_named(planted, 10), doctest::Contains("already exists"),
                         corelab::Error);
    CHECK(exists(planted));  // not ours to remove either
    ::unlink(("/dev/shm/" + planted).c_str());
}

TEST_CASE("shared array: opening with another element type or a missing name is a clear error") {
    auto a = ipc::SharedArray<double>::create(10, "test");
    CHECK_THROWS_WITH_AS(ipc::SharedArray<float>::open(a.name()), doctest::Contains("elements of 8 bytes"),
                         corelab::Error);
    CHECK_THROWS_AS(ipc::SharedArray<double>::open(ipc::make_name("missing")), corelab::Error);
}

TEST_CASE("shared array: more than /dev/shm holds is an error before anything is written") {
    const auto before = corelab::test::shm_objects_of(::getpid());
    CHECK_THROWS_WITH_AS(ipc::SharedArray<double>::create(std::size_t{1} << 55, "huge"),
                         doctest::Contains("/dev/shm has only"), corelab::Error);
    CHECK(corelab::test::shm_objects_of(::getpid()) == before);
}
