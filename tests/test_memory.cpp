// Tests of corelab/memory.hpp: hits and misses for every supported type, and
// every way an entry can go wrong: planted symlinks, unsafe directories, a
// writer killed mid-write, corrupted files, forced hash collisions, racing
// processes. Faults are real: children are forked and SIGKILLed, bytes flipped.
#include <doctest/doctest.h>
#include <fcntl.h>     // open, O_RDWR
#include <poll.h>      // poll
#include <signal.h>    // kill, SIGKILL
#include <sys/stat.h>  // chmod, utimensat
#include <sys/wait.h>  // waitpid
#include <unistd.h>    // fork, pipe, _exit, geteuid

#define XXH_INLINE_ALL  // to forge entries with a valid checksum
#include <xxhash.h>

#include <algorithm>   // std::find, std::equal
#include <array>       // std::array
#include <atomic>      // std::atomic
#include <chrono>      // std::chrono
#include <cstdint>     // std::uintptr_t
#include <cstdio>      // std::fprintf
#include <cstdlib>     // mkdtemp
#include <cstring>     // std::memcpy
#include <filesystem>  // std::filesystem
#include <fstream>     // std::ifstream, std::ofstream
#include <functional>  // std::function
#include <map>         // std::map: a directory tree, file by file
#include <random>      // std::mt19937
#include <span>        // std::span: a mapped view
#include <sstream>     // std::ostringstream
#include <string>      // std::string
#include <thread>      // std::this_thread::sleep_for
#include <tuple>       // std::tuple
#include <vector>      // std::vector

#include "corelab/detail/memory_testing.hpp"  // memory_test_hooks: forced collisions, a paused writer
#include "corelab/memory.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// A private temporary directory, removed with everything in it.
struct TempDir {
    fs::path path;
    TempDir() {
        std::string templ = (fs::temp_directory_path() / "corelab-memory-XXXXXX").string();
        REQUIRE(::mkdtemp(templ.data()) != nullptr);
        path = templ;
    }
    ~TempDir() {
        std::error_code ec;
        fs::permissions(path, fs::perms::owner_all, ec);
        fs::remove_all(path, ec);
    }
    fs::path operator/(const std::string& s) const { return path / s; }
};

// Messages and warnings of a Memory, captured.
struct Captured {
    std::ostringstream out, err;
    corelab::MemoryOptions options(int verbose = 0) { return {.verbose = verbose, .out = &out, .err = &err}; }
    int warnings() const {
        const std::string s = err.str();
        int n = 0;
        for (std::size_t at = 0; (at = s.find("[Memory] warning", at)) != std::string::npos; ++at) ++n;
        return n;
    }
};

std::vector<double> squares(const std::vector<double>& a) {
    std::vector<double> b = a;
    for (double& x : b) x *= x;
    return b;
}

std::vector<double> ramp(std::size_t n, double start) {
    std::vector<double> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = start + static_cast<double>(i);
    return v;
}

// The entry directories (32 hex digits) and temporary directories of one function.
struct Listing {
    std::vector<fs::path> entries, temps;
};
Listing list(const fs::path& fn_dir) {
    Listing l;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fn_dir, ec)) {
        const std::string name = e.path().filename().string();
        if (name.rfind(".tmp-", 0) == 0) {
            l.temps.push_back(e.path());
        } else if (name.size() == 32) {
            l.entries.push_back(e.path());
        }
    }
    return l;
}

fs::path only_entry(const fs::path& fn_dir) {
    const Listing l = list(fn_dir);
    REQUIRE(l.entries.size() == 1);
    return l.entries[0];
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}
void write_file(const fs::path& p, const std::string& bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Header layout of output.bin (see lib/src/memory/entry_file.hpp).
constexpr std::size_t header_bytes = 64, key_bytes_at = 16, payload_bytes_at = 24, checksum_at = 32;
std::uint64_t get_u64(const std::string& s, std::size_t at) {
    std::uint64_t v;
    std::memcpy(&v, s.data() + at, 8);
    return v;
}
void put_u64(std::string& s, std::size_t at, std::uint64_t v) {
    std::memcpy(s.data() + at, &v, 8);
}
// Recomputes the checksum so that only the change under test is wrong.
void reseal(std::string& s) {
    put_u64(s, checksum_at, XXH3_64bits(s.data() + header_bytes, s.size() - header_bytes));
}

// Every path below `root` (symlinks not followed) and what it is: "dir", "link -> target" or
// the file's bytes. Two equal snapshots mean nothing was removed, added or changed.
std::map<std::string, std::string> snapshot(const fs::path& root) {
    std::map<std::string, std::string> out;
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
        const std::string rel = it->path().lexically_relative(root).string();
        const fs::file_status st = it->symlink_status();
        if (fs::is_symlink(st)) {
            out[rel] = "link -> " + fs::read_symlink(it->path()).string();
        } else if (fs::is_directory(st)) {
            out[rel] = "dir";
        } else {
            out[rel] = "file: " + read_file(it->path());
        }
    }
    return out;
}

// A user's files shaped like what a careless clear removes: an empty Music/, a folder of the
// 32-hex-digit kind holding a thesis, and an old folder named like a writer's temporary one.
void plant_user_files(const fs::path& dir) {
    const fs::path hex = dir / "proj" / "d41d8cd98f00b204e9800998ecf8427e";
    const fs::path draft = dir / "proj" / ".tmp-1-draft";
    fs::create_directories(dir / "Music");
    fs::create_directories(hex);
    fs::create_directories(draft);
    write_file(hex / "thesis.txt", "Chapter 1. It was a dark and stormy night.\n");
    write_file(draft / "output.bin", "not a cache entry\n");
    write_file(dir / "notes.txt", "keep me\n");
    const timespec an_hour_ago[2] = {{::time(nullptr) - 3600, 0}, {::time(nullptr) - 3600, 0}};
    REQUIRE(::utimensat(AT_FDCWD, draft.c_str(), an_hour_ago, 0) == 0);  // a sweep would call it stale
}

// Uses `dir` as a cache the way lesson 05 does (open, cache a function, clear, shrink) and
// returns the error that refused it, or "" when it was accepted.
std::string use_as_cache(const fs::path& dir) {
    try {
        std::ostringstream quiet;
        const corelab::Memory mem{dir, {.verbose = 0, .err = &quiet}};
        (void)mem.cache("proj", squares);  // sweeps stale temporary folders of "proj"
        mem.clear();
        (void)mem.reduce_size(0);
        return "";
    } catch (const corelab::Error& e) {
        return e.what();
    }
}

// Forks a child that runs fn and exits with its return value (never returns here).
pid_t spawn(const std::function<int()>& fn) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int code = 99;
        try {
            code = fn();
        } catch (...) {
            code = 98;
        }
        ::_exit(code);
    }
    return pid;
}

// Waits at most `limit` for the child (then SIGKILLs it) and returns its wait status.
int reap(pid_t pid, std::chrono::seconds limit = 60s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            FAIL("child " << pid << " did not finish in time");
        }
        std::this_thread::sleep_for(5ms);
    }
    return status;
}

int exit_code(int status) {
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

struct Point {
    double x = 0;
    int y = 0;
    std::string label;
    template <class Archive>
    void serialize(Archive& ar) {
        ar(x, y, label);
    }
    friend bool operator==(const Point&, const Point&) = default;
};

// First call computes, the same call loads, other arguments compute.
template <class Arg, class Fn>
void hit_and_miss(const corelab::Memory& mem, const std::string& name, const Arg& a, const Arg& b, Fn fn) {
    CAPTURE(name);
    int calls = 0;
    auto f = mem.cache(name, [&](const Arg& x) {
        ++calls;
        return fn(x);
    });
    CHECK_FALSE(f.check_call_in_cache(a));
    const auto r1 = f(a);
    CHECK(calls == 1);
    CHECK(r1 == fn(a));
    CHECK(f.check_call_in_cache(a));
    const auto r2 = f(a);
    CHECK(calls == 1);
    CHECK(r2 == r1);
    const auto r3 = f(b);
    CHECK(calls == 2);
    CHECK(r3 == fn(b));
    CHECK(f(b) == r3);
    CHECK(calls == 2);
}

}  // namespace

TEST_CASE("memory: hit and miss for every supported type") {
    TempDir tmp;
    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options()};
    hit_and_miss(mem, "int", 3, 4, [](int x) { return x * x; });
    hit_and_miss(mem, "double", 1.5, -2.25, [](double x) { return x * x; });
    hit_and_miss(mem, "bool", true, false, [](bool x) { return !x; });
    hit_and_miss(mem, "string", std::string("abc"), std::string("abd"), [](const std::string& s) { return s + s; });
    hit_and_miss(mem, "empty_string", std::string(), std::string("x"), [](const std::string& s) { return s.size(); });
    hit_and_miss(mem, "vector", std::vector<double>{1, 2, 3}, std::vector<double>{1, 2, 4}, squares);
    hit_and_miss(mem, "empty_vector", std::vector<double>{}, std::vector<double>{0.0}, squares);
    hit_and_miss(mem, "vector_of_strings", std::vector<std::string>{"a", "bc"}, std::vector<std::string>{"a", "b", "c"},
                 [](const std::vector<std::string>& v) { return std::vector<std::string>(v.rbegin(), v.rend()); });
    hit_and_miss(mem, "array", std::array<int, 3>{1, 2, 3}, std::array<int, 3>{3, 2, 1},
                 [](const std::array<int, 3>& a) { return std::array<long, 3>{a[0] * 10L, a[1] * 10L, a[2] * 10L}; });
    hit_and_miss(mem, "pair", std::pair<int, std::string>{1, "one"}, std::pair<int, std::string>{2, "two"},
                 [](const std::pair<int, std::string>& p) { return std::pair<std::string, int>{p.second, p.first}; });
    using Tuple = std::tuple<double, std::vector<int>, std::string>;
    hit_and_miss(mem, "tuple", Tuple{1.0, {1, 2}, "x"}, Tuple{1.0, {1, 2}, "y"},
                 [](const Tuple& t) { return std::tuple<std::string, double>{std::get<2>(t), std::get<0>(t)}; });
    using Nested = std::vector<std::vector<double>>;
    hit_and_miss(mem, "nested", Nested{{0, 0, 1}, {1, 1, 1}, {4, 2, 1}}, Nested{{1}, {}, {2, 3}}, [](const Nested& m) {
        Nested r = m;
        for (auto& row : r)
            for (double& x : row) x *= x;
        return r;
    });
    hit_and_miss(mem, "user_type", Point{1.5, 2, "p"}, Point{1.5, 2, "q"},
                 [](const Point& p) { return Point{p.x * 2, p.y + 1, p.label + "!"}; });

    SUBCASE("several arguments and none") {
        int calls = 0;
        auto f = mem.cache("three_args", [&](int a, const std::string& s, const std::vector<double>& v) {
            ++calls;
            return s + std::to_string(a) + std::to_string(v.size());
        });
        CHECK(f(1, std::string("x"), std::vector<double>{1, 2}) == "x12");
        CHECK(f(1, std::string("x"), std::vector<double>{1, 2}) == "x12");
        CHECK(calls == 1);
        // The same bytes in another split are another call: ("x", 1) is not ("", ...).
        CHECK(f(1, std::string("x1"), std::vector<double>{}) == "x110");
        CHECK(calls == 2);
        int none = 0;
        auto g = mem.cache("no_args", [&] { return ++none; });
        CHECK(g() == 1);
        CHECK(g() == 1);
        CHECK(none == 1);
    }
    SUBCASE("HugeArray results") {
        int calls = 0;
        auto f = mem.cache("huge", [&](std::size_t n) {
            ++calls;
            corelab::HugeArray<double> a(n);
            for (std::size_t i = 0; i < n; ++i) a[i] = static_cast<double>(i) * 0.5;
            return a;
        });
        for (std::size_t n : {0u, 1u, 7u, 300'001u}) {
            CAPTURE(n);
            const auto first = f(n);
            const auto again = f(n);
            REQUIRE(again.size() == n);
            bool equal = true;
            for (std::size_t i = 0; i < n; ++i) equal = equal && again[i] == static_cast<double>(i) * 0.5;
            CHECK(equal);
            CHECK(first.size() == n);
        }
        CHECK(calls == 4);
    }
    CHECK(cap.warnings() == 0);
}

TEST_CASE("memory: a different version misses and the old version still hits") {
    TempDir tmp;
    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options()};
    int calls = 0;
    auto fn = [&](const std::vector<double>& a) {
        ++calls;
        return squares(a);
    };
    auto v1 = mem.cache("sq", fn, {.version = "1"});
    auto v2 = mem.cache("sq", fn, {.version = "2"});
    const auto a = ramp(10, 1.0);
    v1(a);
    v1(a);
    CHECK(calls == 1);
    CHECK_FALSE(v2.check_call_in_cache(a));
    CHECK(v2(a) == squares(a));
    CHECK(calls == 2);
    v1(a);
    CHECK(calls == 2);
    CHECK(list(tmp / "cache" / "sq").entries.size() == 2);
}

TEST_CASE("memory: the cache directory must be safe and writable" * doctest::timeout(30)) {
    TempDir tmp;
    SUBCASE("created with mode 0700") {
        const corelab::Memory mem{tmp / "a" / "b" / "cache"};
        CHECK((fs::status(tmp / "a" / "b" / "cache").permissions() & fs::perms::all) == fs::perms::owner_all);
    }
    SUBCASE("a directory other users can write to is refused") {
        fs::create_directory(tmp / "open");
        REQUIRE(::chmod((tmp / "open").c_str(), 0777) == 0);
        try {
            const corelab::Memory mem{tmp / "open"};
            FAIL("a world-writable cache directory was accepted");
        } catch (const corelab::Error& e) {
            const std::string what = e.what();
            CHECK(what.find((tmp / "open").string()) != std::string::npos);
            CHECK(what.find("can be written by other users (mode 0777)") != std::string::npos);
            CHECK(what.find("plant results") != std::string::npos);
        }
        REQUIRE(::chmod((tmp / "open").c_str(), 0770) == 0);  // group-writable: refused too
        CHECK_THROWS_AS(corelab::Memory{tmp / "open"}, corelab::Error);
    }
    SUBCASE("a directory that cannot be created names itself") {
        write_file(tmp / "file", "x");
        const fs::path under_file = tmp / "file" / "cache";
        try {
            const corelab::Memory mem{under_file};
            FAIL("a cache under a regular file was accepted");
        } catch (const corelab::Error& e) {
            CHECK(std::string(e.what()).find(under_file.string()) != std::string::npos);
        }
        CHECK_THROWS_AS(corelab::Memory{tmp / "file"}, corelab::Error);  // not a directory
    }
    SUBCASE("an existing directory that cannot be written names itself") {
        // root may write anywhere on a writable file system: an empty folder of sysfs then,
        // which no one can write to (an empty one, or it would be refused as not a cache).
        fs::path dir = tmp / "ro";
        if (::geteuid() == 0) {
            dir.clear();
            std::error_code ec;
            for (const char* parent : {"/sys/kernel", "/sys/class", "/sys/fs"}) {
                for (const auto& e : fs::directory_iterator(parent, ec)) {
                    if (dir.empty() && !e.is_symlink(ec) && e.is_directory(ec) && fs::is_empty(e.path(), ec) &&
                        (fs::status(e.path(), ec).permissions() & (fs::perms::group_write | fs::perms::others_write)) ==
                            fs::perms::none) {
                        dir = e.path();
                    }
                }
            }
        } else {
            fs::create_directory(dir);
            REQUIRE(::chmod(dir.c_str(), 0500) == 0);
        }
        if (dir.empty()) {
            MESSAGE("no read-only directory to try here");
            return;
        }
        CAPTURE(dir);
        try {
            const corelab::Memory mem{dir};
            FAIL("an unwritable cache directory was accepted");
        } catch (const corelab::Error& e) {
            CHECK(std::string(e.what()).find(dir.string()) != std::string::npos);
            CHECK(std::string(e.what()).find("cannot write to the cache directory") != std::string::npos);
        }
    }
}

TEST_CASE("memory: function names that are not plain directory names are refused") {
    TempDir tmp;
    const corelab::Memory mem{tmp / "cache"};
    for (const char* bad : {"", ".hidden", "a/b", "..", "sp ace", "tab\t"}) {
        CAPTURE(bad);
        CHECK_THROWS_AS(mem.cache(bad, [] { return 1; }), corelab::Error);
    }
    CHECK_NOTHROW(mem.cache("np.square-v2_x", [] { return 1; }));
}

TEST_CASE("memory: joblib's messages on a miss and silence on a hit") {
    TempDir tmp;
    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options(1)};
    auto square = mem.cache("square", squares);
    square(std::vector<double>{1, 2});
    const std::string out = cap.out.str();
    const std::string underscores(80, '_');
    CHECK(out.rfind(underscores + "\n[Memory] Calling square...\nsquare([1.0, 2.0])\n", 0) == 0);
    const std::string last = out.substr(out.rfind('\n', out.size() - 2) + 1);
    CHECK(last.size() == 81);  // 80 columns and the newline
    CHECK(last.find("_square - 0.0s, 0.0min\n") != std::string::npos);
    cap.out.str("");
    square(std::vector<double>{1, 2});
    CHECK(cap.out.str().empty());

    Captured loud;
    const corelab::Memory verbose2{tmp / "cache", loud.options(2)};
    verbose2.cache("square", squares)(std::vector<double>{1, 2});
    CHECK(loud.out.str() == "[Memory] Loading square from cache\n");
    // Large arguments are shortened, like numpy's repr.
    cap.out.str("");
    square(ramp(1000, 0.0));
    CHECK(cap.out.str().find("square([0.0, 1.0, 2.0, ..., 997.0, 998.0, 999.0])") != std::string::npos);
}

TEST_CASE("memory: the same arguments in another process hit" * doctest::timeout(60)) {
    TempDir tmp;
    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options()};
    auto square = mem.cache("square", squares);
    const auto a = ramp(100'000, 0.5);  // 800 KB: the large-argument key path
    square(a);
    square(std::vector<double>{3});
    const pid_t pid = spawn([&] {
        // A fresh Memory on the same directory; a miss would make calls 1.
        int calls = 0;
        const corelab::Memory other{tmp / "cache", {.verbose = 0}};
        auto sq = other.cache("square", [&](const std::vector<double>& x) {
            ++calls;
            return squares(x);
        });
        const bool right = sq(a) == squares(a) && sq(std::vector<double>{3}) == std::vector<double>{9};
        return right ? calls : 50;
    });
    CHECK(exit_code(reap(pid)) == 0);
}

TEST_CASE("memory: a writer SIGKILLed before its rename leaves nothing that loads and its temp dir is swept" *
          doctest::timeout(60)) {
    TempDir tmp;
    const auto a = ramp(1000, 2.0);
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t pid = spawn([&] {
        ::close(ready[0]);
        corelab::detail::memory_test_hooks().before_rename = [&] {
            (void)!::write(ready[1], "r", 1);  // the entry is written, not yet renamed: kill me now
            for (;;) ::pause();
        };
        const corelab::Memory mem{tmp / "cache", {.verbose = 0}};
        mem.cache("square", squares)(a);
        return 3;  // never reached
    });
    ::close(ready[1]);
    pollfd p{ready[0], POLLIN, 0};
    REQUIRE(::poll(&p, 1, 30'000) == 1);
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    ::close(ready[0]);
    REQUIRE(::kill(pid, SIGKILL) == 0);
    const int status = reap(pid);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);

    const fs::path fn_dir = tmp / "cache" / "square";
    Listing before = list(fn_dir);
    CHECK(before.entries.empty());
    REQUIRE(before.temps.size() == 1);
    CHECK(before.temps[0].filename().string().find(".tmp-" + std::to_string(pid) + "-") == 0);
    CHECK(fs::file_size(before.temps[0] / "output.bin") > 8000);  // whole, but never renamed into place

    // Temp dirs that nobody holds go too, even named with a live pid (ours) and
    // fresh: a live writer holds a lock on its own (the tests below).
    const fs::path mine = fn_dir / (".tmp-" + std::to_string(::getpid()) + "-live");
    const fs::path old = fn_dir / (".tmp-" + std::to_string(::getpid()) + "-old");
    fs::create_directory(mine);
    fs::create_directory(old);
    const timespec two_minutes_ago[2] = {{::time(nullptr) - 120, 0}, {::time(nullptr) - 120, 0}};
    REQUIRE(::utimensat(AT_FDCWD, old.c_str(), two_minutes_ago, 0) == 0);

    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options()};
    int calls = 0;
    auto square = mem.cache("square", [&](const std::vector<double>& x) {
        ++calls;
        return squares(x);
    });
    CHECK(list(fn_dir).temps.empty());
    CHECK_FALSE(square.check_call_in_cache(a));
    CHECK(square(a) == squares(a));
    CHECK(calls == 1);
    CHECK(square(a) == squares(a));
    CHECK(calls == 1);
    CHECK(cap.warnings() == 0);
}

TEST_CASE("memory: a symlink planted at an entry path is not followed") {
    TempDir tmp;
    const auto a = ramp(50, 1.0);
    // A forged entry: valid for the key of square(a), holding a wrong result.
    {
        const corelab::Memory forger{tmp / "forged", {.verbose = 0}};
        forger.cache("square", [](const std::vector<double>& x) { return ramp(x.size(), -7.0); })(a);
    }
    const fs::path forged_entry = only_entry(tmp / "forged" / "square");
    const std::string forged_bytes = read_file(forged_entry / "output.bin");

    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options()};
    auto square = mem.cache("square", squares);
    square(a);
    const fs::path entry = only_entry(tmp / "cache" / "square");

    SUBCASE("output.bin is a symlink") {
        fs::remove(entry / "output.bin");
        fs::create_symlink(forged_entry / "output.bin", entry / "output.bin");
    }
    SUBCASE("the entry directory is a symlink") {
        fs::remove_all(entry);
        fs::create_directory_symlink(forged_entry, entry);
    }
    SUBCASE("the function directory is a symlink") {
        fs::remove_all(tmp / "cache" / "square");
        fs::create_directory_symlink(tmp / "forged" / "square", tmp / "cache" / "square");
    }
    CHECK(square(a) == squares(a));
    CHECK(read_file(forged_entry / "output.bin") == forged_bytes);  // the target is untouched
}

TEST_CASE("memory: a forced hash collision never returns another call's result") {
    TempDir tmp;
    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options()};
    corelab::detail::memory_test_hooks().constant_hash = true;
    struct Reset {
        ~Reset() { corelab::detail::memory_test_hooks().constant_hash = false; }
    } reset;
    int calls = 0;
    auto square = mem.cache("square", [&](const std::vector<double>& x) {
        ++calls;
        return squares(x);
    });
    for (std::size_t n : {3u, 20'000u}) {  // small arguments stored whole; large ones by a second hash
        CAPTURE(n);
        const auto a = ramp(n, 1.0);
        const auto b = ramp(n, 2.0);
        calls = 0;
        CHECK(square(a) == squares(a));
        CHECK(square(b) == squares(b));  // same directory as a: must not return a*a
        CHECK(square(a) == squares(a));
        CHECK(calls == 3);
        CHECK(square(a) == squares(a));  // a is stored now
        CHECK(calls == 3);
    }
    CHECK(list(tmp / "cache" / "square").entries.size() == 1);
}

TEST_CASE("memory: corrupted entries are recomputed once with a warning and never crash") {
    TempDir tmp;
    const auto a = ramp(500, 1.0);
    struct Damage {
        const char* what;
        std::function<void(std::string&)> apply;
    };
    const std::vector<Damage> damages = {
        {"truncated in the payload", [](std::string& s) { s.resize(s.size() - 100); }},
        {"truncated in the header", [](std::string& s) { s.resize(40); }},
        {"zero length", [](std::string& s) { s.clear(); }},
        {"wrong magic", [](std::string& s) { s[0] = 'X'; }},
        {"wrong format version", [](std::string& s) { s[8] = 9; }},
        {"flipped byte in the payload", [](std::string& s) { s[s.size() - 17] ^= 0x20; }},
        {"flipped byte in the key", [](std::string& s) { s[header_bytes + 30] ^= 1; }},
        {"flipped byte in the checksum", [](std::string& s) { s[checksum_at + 3] ^= 4; }},
        {"huge payload length", [](std::string& s) { put_u64(s, payload_bytes_at, std::uint64_t{1} << 62); }},
        {"huge key length", [](std::string& s) { put_u64(s, key_bytes_at, ~std::uint64_t{0}); }},
        {"appended bytes", [](std::string& s) { s += "trailing"; }},
        {"huge vector length with a valid checksum",
         [](std::string& s) {
             // The payload starts with the vector's length; claim 2^60 doubles.
             const std::size_t at = header_bytes + get_u64(s, key_bytes_at);
             put_u64(s, at, std::uint64_t{1} << 60);
             reseal(s);
         }},
        {"vector length one past the end with a valid checksum",
         [](std::string& s) {
             const std::size_t at = header_bytes + get_u64(s, key_bytes_at);
             put_u64(s, at, get_u64(s, at) + 1);
             reseal(s);
         }},
        {"a foreign file", [](std::string& s) { s = "#!/bin/sh\necho pickles run code when loaded\n"; }},
    };
    for (const auto& d : damages) {
        CAPTURE(d.what);
        Captured cap;
        const corelab::Memory mem{tmp / "cache", cap.options()};
        mem.clear();
        int calls = 0;
        auto square = mem.cache("square", [&](const std::vector<double>& x) {
            ++calls;
            return squares(x);
        });
        square(a);
        const fs::path file = only_entry(tmp / "cache" / "square") / "output.bin";
        std::string bytes = read_file(file);
        d.apply(bytes);
        write_file(file, bytes);
        CHECK(square(a) == squares(a));
        CHECK(calls == 2);
        CHECK(cap.warnings() == 1);
        CHECK(cap.err.str().find(file.parent_path().string()) != std::string::npos);
        CHECK(square(a) == squares(a));  // stored again, whole
        CHECK(calls == 2);
        CHECK(cap.warnings() == 1);
    }
}

TEST_CASE("memory: an output that is not a regular file is refused" * doctest::timeout(30)) {
    TempDir tmp;
    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options()};
    auto square = mem.cache("square", squares);
    const auto a = ramp(5, 1.0);
    square(a);
    const fs::path file = only_entry(tmp / "cache" / "square") / "output.bin";
    fs::remove(file);
    REQUIRE(::mkfifo(file.c_str(), 0600) == 0);  // a FIFO must not block the load
    CHECK(square(a) == squares(a));
    CHECK(cap.warnings() == 1);
}

TEST_CASE("memory: two processes racing on the same key both get a*a and leave one entry" * doctest::timeout(60)) {
    TempDir tmp;
    const auto a = ramp(20'000, 3.0);
    const corelab::Memory mem{tmp / "cache", {.verbose = 0}};
    auto racer = [&] {
        bool computed = false;
        const corelab::Memory m{tmp / "cache", {.verbose = 0}};
        auto sq = m.cache("square", [&](const std::vector<double>& x) {
            computed = true;
            std::this_thread::sleep_for(400ms);  // both are computing at once
            return squares(x);
        });
        if (sq(a) != squares(a)) return 2;
        return computed ? 0 : 1;
    };
    const pid_t p1 = spawn(racer);
    const pid_t p2 = spawn(racer);
    const int c1 = exit_code(reap(p1));
    const int c2 = exit_code(reap(p2));
    CHECK(c1 == 0);
    CHECK(c2 == 0);
    const Listing l = list(tmp / "cache" / "square");
    CHECK(l.entries.size() == 1);
    CHECK(l.temps.empty());
    int calls = 0;
    auto square = mem.cache("square", [&](const std::vector<double>& x) {
        ++calls;
        return squares(x);
    });
    CHECK(square(a) == squares(a));
    CHECK(calls == 0);
}

TEST_CASE("memory: crashes corruptions and concurrent calls never change square(a)" * doctest::timeout(120)) {
    TempDir tmp;
    const corelab::Memory mem{tmp / "cache", {.verbose = 0}};
    const std::vector<std::vector<double>> inputs = {ramp(3, 1.0), ramp(1000, 2.0), ramp(10'000, 3.0),
                                                     ramp(40'000, 4.0)};
    auto worker = [&](unsigned seed) {
        std::ostringstream quiet;
        const corelab::Memory m{tmp / "cache", {.verbose = 0, .err = &quiet}};
        auto sq = m.cache("square", squares);
        std::mt19937 rng(seed);
        for (int i = 0; i < 300; ++i) {
            const auto& x = inputs[rng() % inputs.size()];
            if (sq(x) != squares(x)) return 2;
        }
        return 0;
    };
    std::vector<pid_t> workers;
    for (unsigned k = 0; k < 3; ++k) workers.push_back(spawn([&, k] { return worker(k + 1); }));
    std::vector<int> codes(workers.size(), -1000);
    std::size_t finished = 0;
    std::mt19937 rng(42);
    std::vector<pid_t> victims;
    const fs::path fn_dir = tmp / "cache" / "square";
    const auto deadline = std::chrono::steady_clock::now() + 90s;
    int damaged = 0;
    while (finished < workers.size() && std::chrono::steady_clock::now() < deadline) {
        // A writer SIGKILLed at a random moment, again and again.
        if (victims.size() < 5) {
            const pid_t v = spawn([&] { return worker(100 + static_cast<unsigned>(victims.size())); });
            std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 20));
            ::kill(v, SIGKILL);
            victims.push_back(v);
        }
        // Meanwhile: flip bytes, truncate and delete entries while they are read.
        const Listing l = list(fn_dir);
        if (!l.entries.empty()) {
            const fs::path file = l.entries[rng() % l.entries.size()] / "output.bin";
            const int fd = ::open(file.c_str(), O_RDWR | O_NOFOLLOW);
            if (fd >= 0) {
                struct stat st{};
                if (::fstat(fd, &st) == 0 && st.st_size > 0) {
                    const auto at = static_cast<off_t>(rng() % static_cast<std::uint64_t>(st.st_size));
                    const unsigned what = rng() % 3;
                    const char junk = static_cast<char>(rng() | 1);
                    ++damaged;
                    if (what == 0) (void)!::pwrite(fd, &junk, 1, at);
                    if (what == 1) (void)!::ftruncate(fd, at);
                    if (what == 2) {
                        std::error_code ec;
                        fs::remove_all(file.parent_path(), ec);
                    }
                }
                ::close(fd);
            }
        }
        std::this_thread::sleep_for(2ms);
        for (std::size_t i = 0; i < workers.size(); ++i) {
            int st = 0;
            if (codes[i] == -1000 && ::waitpid(workers[i], &st, WNOHANG) == workers[i]) {
                codes[i] = exit_code(st);
                ++finished;
            }
        }
    }
    for (std::size_t i = 0; i < workers.size(); ++i) {
        if (codes[i] == -1000) codes[i] = exit_code(reap(workers[i], 1s));
        CHECK(codes[i] == 0);
    }
    for (const pid_t v : victims) reap(v);
    MESSAGE(damaged << " entries damaged while " << workers.size() << " processes called square");
    CHECK(damaged > 10);
    CHECK(exit_code(reap(spawn([&] { return worker(7); }))) == 0);  // and after all that
}

TEST_CASE("memory: reduce_size keeps the most recently used entries") {
    TempDir tmp;
    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options()};
    int calls = 0;
    auto square = mem.cache("square", [&](const std::vector<double>& x) {
        ++calls;
        return squares(x);
    });
    const auto e1 = ramp(1000, 1.0), e2 = ramp(1000, 2.0), e3 = ramp(1000, 3.0);
    for (const auto* e : {&e1, &e2, &e3}) {
        square(*e);
        std::this_thread::sleep_for(30ms);  // file times are coarse (a few ms)
    }
    square(e1);  // a hit: e1 is now the most recently used, e2 the least
    CHECK(calls == 3);
    const std::uint64_t total = mem.size_on_disk();
    CHECK(total > 3 * 8000);
    CHECK(mem.reduce_size(total) == 0);
    CHECK(mem.reduce_size(total - 1) == 1);
    CHECK(mem.size_on_disk() < total);
    CHECK(square.check_call_in_cache(e1));
    CHECK(square.check_call_in_cache(e3));
    CHECK_FALSE(square.check_call_in_cache(e2));
    CHECK(mem.reduce_size(0) == 2);
    CHECK(mem.size_on_disk() == 0);
    CHECK(square(e1) == squares(e1));
    CHECK(calls == 4);
}

TEST_CASE("memory: clear removes entries and only entries") {
    TempDir tmp;
    const corelab::Memory mem{tmp / "cache", {.verbose = 0}};
    auto square = mem.cache("square", squares);
    auto cube = mem.cache("cube", [](double x) { return x * x * x; });
    square(ramp(3, 1.0));
    cube(2.0);
    write_file(tmp / "cache" / "notes.txt", "mine");
    square.clear();
    CHECK_FALSE(square.check_call_in_cache(ramp(3, 1.0)));
    CHECK(cube.check_call_in_cache(2.0));
    mem.clear();
    CHECK_FALSE(cube.check_call_in_cache(2.0));
    CHECK(fs::exists(tmp / "cache" / "notes.txt"));
    CHECK(mem.size_on_disk() == 0);
}

TEST_CASE("memory: a cache directory that is a symlink is refused and what it points to survives") {
    TempDir tmp;
    plant_user_files(tmp / "home");
    fs::create_directory_symlink(tmp / "home", tmp / "link");  // --cachedir pointed at a link to a home
    const auto before = snapshot(tmp / "home");
    const std::string why = use_as_cache(tmp / "link");
    CHECK(snapshot(tmp / "home") == before);  // every file, byte for byte; Music/ too
    CHECK(why.find((tmp / "link").string()) != std::string::npos);
    CHECK(why.find("is a symbolic link") != std::string::npos);
    CHECK(use_as_cache((tmp / "link").string() + "//").find("is a symbolic link") != std::string::npos);
    CHECK(snapshot(tmp / "home") == before);
    // A dangling link is refused too, and nothing is created where it points.
    fs::create_directory_symlink(tmp / "nowhere", tmp / "dangling");
    CHECK(use_as_cache(tmp / "dangling").find("is a symbolic link") != std::string::npos);
    CHECK_FALSE(fs::exists(tmp / "nowhere"));
}

TEST_CASE("memory: a cache root swapped for a symlink after it was opened is still the directory opened") {
    TempDir tmp;
    plant_user_files(tmp / "home");
    const auto before = snapshot(tmp / "home");
    const corelab::Memory mem{tmp / "cache", {.verbose = 0}};
    auto square = mem.cache("square", squares);
    square(ramp(3, 1.0));
    fs::rename(tmp / "cache", tmp / "moved");
    fs::create_directory_symlink(tmp / "home", tmp / "cache");
    (void)mem.cache("proj", squares);
    mem.clear();
    CHECK(mem.reduce_size(0) == 0);
    CHECK(snapshot(tmp / "home") == before);
    CHECK(list(tmp / "moved" / "square").entries.empty());  // the cache it opened was cleared
}

TEST_CASE("memory: a non-empty directory that is not a corelab cache is refused untouched") {
    TempDir tmp;
    plant_user_files(tmp / "home");
    const auto before = snapshot(tmp / "home");
    const std::string why = use_as_cache(tmp / "home");  // --cachedir ~
    CHECK(snapshot(tmp / "home") == before);
    CHECK(why.find((tmp / "home").string()) != std::string::npos);
    CHECK(why.find("not empty and is not a corelab cache") != std::string::npos);
    CHECK(why.find("choose an empty or new directory") != std::string::npos);
    // One file is enough to refuse it.
    fs::create_directory(tmp / "one");
    write_file(tmp / "one" / "todo.txt", "x");
    CHECK(use_as_cache(tmp / "one").find("not a corelab cache") != std::string::npos);
    CHECK(read_file(tmp / "one" / "todo.txt") == "x");
    CHECK(snapshot(tmp / "one").size() == 1);
}

TEST_CASE("memory: processes opening one new cache directory at once all mark it and use it" * doctest::timeout(60)) {
    TempDir tmp;
    int go[2];
    REQUIRE(::pipe(go) == 0);
    std::vector<pid_t> children;
    for (int k = 0; k < 6; ++k) {
        children.push_back(spawn([&, k] {
            ::close(go[1]);
            char c;
            if (::read(go[0], &c, 1) != 0) return 97;  // all start when the pipe closes
            try {
                const corelab::Memory mem{tmp / "shared", {.verbose = 0}};
                return mem.cache("square", squares)(ramp(3, k)) == squares(ramp(3, k)) ? 0 : 2;
            } catch (const corelab::Error& e) {
                std::fprintf(stderr, "child %d: %s\n", k, e.what());  // the test's log says why
                return 3;
            }
        }));
    }
    ::close(go[0]);
    ::close(go[1]);
    for (const pid_t pid : children) CHECK(exit_code(reap(pid)) == 0);
    const corelab::Memory mem{tmp / "shared", {.verbose = 0}};
    CHECK(list(tmp / "shared" / "square").entries.size() == 6);
    CHECK(snapshot(tmp / "shared").size() == 2 + 2 + 6 * 3);  // 2 marks, square/ and its mark, 6 entries
}

TEST_CASE("memory: a new or empty cache directory is marked with CACHEDIR.TAG and a version file") {
    TempDir tmp;
    fs::create_directory(tmp / "empty");
    for (const fs::path& dir : {tmp / "new", tmp / "empty"}) {
        CAPTURE(dir);
        const corelab::Memory mem{dir, {.verbose = 0}};
        const std::string tag = read_file(dir / "CACHEDIR.TAG");
        CHECK(tag.rfind("Signature: 8a477f597d28d172789f06886806bc55\n", 0) == 0);  // bford.info/cachedir
        CHECK(tag.find("corelab") != std::string::npos);
        CHECK(read_file(dir / ".corelab-cache").rfind("corelab-memory-cache 1\n", 0) == 0);
        mem.cache("square", squares)(ramp(3, 1.0));
        CHECK(read_file(dir / "square" / ".corelab-function").rfind("corelab-memory-function 1\n", 0) == 0);
        const corelab::Memory again{dir, {.verbose = 0}};  // marked now: opened, not refused
        CHECK(again.cache("square", squares).check_call_in_cache(ramp(3, 1.0)));
        mem.clear();
        CHECK(fs::exists(dir / "CACHEDIR.TAG"));  // clear keeps the marks of the cache itself
        CHECK(fs::exists(dir / ".corelab-cache"));
        CHECK_FALSE(fs::exists(dir / "square"));  // and removes a function folder it emptied
    }
}

TEST_CASE("memory: a cache written before directories were marked is adopted, unless it holds anything else") {
    TempDir tmp;
    const auto a = ramp(3, 1.0);
    const auto unmark = [&](const fs::path& dir) {
        for (const char* f : {"CACHEDIR.TAG", ".corelab-cache", "square/.corelab-function", "cube/.corelab-function"}) {
            fs::remove(dir / f);
        }
    };
    {
        const corelab::Memory mem{tmp / "old", {.verbose = 0}};
        mem.cache("square", squares)(a);
        mem.cache("cube", [](double x) { return x * x * x; })(2.0);
    }
    unmark(tmp / "old");
    fs::create_directory(tmp / "old" / "empty_fn");  // an empty function folder: left unmarked
    {
        const corelab::Memory mem{tmp / "old", {.verbose = 0}};
        CHECK(mem.cache("square", squares).check_call_in_cache(a));
        CHECK(fs::exists(tmp / "old" / ".corelab-cache"));
        CHECK(fs::exists(tmp / "old" / "cube" / ".corelab-function"));
        CHECK_FALSE(fs::exists(tmp / "old" / "empty_fn" / ".corelab-function"));
        mem.clear();
        CHECK_FALSE(mem.cache("square", squares).check_call_in_cache(a));
        CHECK(fs::is_directory(tmp / "old" / "empty_fn"));  // not marked: not removed
    }
    // The same tree with one foreign file in an entry folder is not a cache: refused untouched.
    {
        const corelab::Memory mem{tmp / "old2", {.verbose = 0}};
        mem.cache("square", squares)(a);
    }
    unmark(tmp / "old2");
    write_file(only_entry(tmp / "old2" / "square") / "notes.txt", "mine");
    const auto before = snapshot(tmp / "old2");
    CHECK(use_as_cache(tmp / "old2").find("not a corelab cache") != std::string::npos);
    CHECK(snapshot(tmp / "old2") == before);
}

TEST_CASE("memory: symlinks planted inside a cache are never followed by clear, reduce_size or the sweep") {
    TempDir tmp;
    plant_user_files(tmp / "home");
    const auto before = snapshot(tmp / "home");
    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options()};
    auto square = mem.cache("square", squares);
    square(ramp(3, 1.0));
    const fs::path fn_dir = tmp / "cache" / "square";
    // A function folder that is a link to the user's folder; an entry name and a temp name
    // in a real function folder that are links out of the cache.
    fs::create_directory_symlink(tmp / "home" / "proj", tmp / "cache" / "proj");
    fs::create_directory_symlink(tmp / "home" / "proj" / "d41d8cd98f00b204e9800998ecf8427e",
                                 fn_dir / "0123456789abcdef0123456789abcdef");
    fs::create_directory_symlink(tmp / "home" / "proj" / ".tmp-1-draft", fn_dir / ".tmp-1-planted");
    fs::create_symlink(tmp / "home" / "notes.txt", tmp / "cache" / "notes.txt");
    try {
        (void)mem.cache("proj", squares);  // the sweep of "proj" must not enter the link
        FAIL_CHECK("a function folder that is a symlink was accepted");
    } catch (const corelab::Error& e) {
        CHECK(std::string(e.what()).find("symbolic link") != std::string::npos);
    }
    mem.clear();
    CHECK(mem.reduce_size(0) == 0);
    CHECK(mem.size_on_disk() == 0);
    CHECK(snapshot(tmp / "home") == before);
    CHECK_FALSE(square.check_call_in_cache(ramp(3, 1.0)));  // the real entry went
    // The links themselves are not the cache's either: left where they were planted.
    CHECK(fs::is_symlink(tmp / "cache" / "proj"));
    CHECK(fs::is_symlink(fn_dir / "0123456789abcdef0123456789abcdef"));
    CHECK(fs::is_symlink(fn_dir / ".tmp-1-planted"));
    CHECK(fs::is_symlink(tmp / "cache" / "notes.txt"));
}

TEST_CASE("memory: files the cache did not write are left alone by clear, reduce_size and the sweep") {
    TempDir tmp;
    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options()};
    auto square = mem.cache("square", squares);
    const auto a = ramp(3, 1.0), b = ramp(4, 1.0);
    const fs::path fn_dir = tmp / "cache" / "square";
    square(a);
    const fs::path entry_a = only_entry(fn_dir);
    square(b);
    // Inside a marked function folder: a file added to a real entry, a 32-hex folder holding a
    // user's file, a stale-looking temp folder holding one, an entry-named plain file.
    write_file(entry_a / "notes.txt", "mine");
    fs::create_directory(fn_dir / "d41d8cd98f00b204e9800998ecf8427e");
    write_file(fn_dir / "d41d8cd98f00b204e9800998ecf8427e" / "thesis.txt", "chapter 1");
    fs::create_directory(fn_dir / ".tmp-1-mine");
    write_file(fn_dir / ".tmp-1-mine" / "draft.txt", "draft");
    const timespec an_hour_ago[2] = {{::time(nullptr) - 3600, 0}, {::time(nullptr) - 3600, 0}};
    REQUIRE(::utimensat(AT_FDCWD, (fn_dir / ".tmp-1-mine").c_str(), an_hour_ago, 0) == 0);
    write_file(fn_dir / "00000000000000000000000000000000", "a file, not a folder");
    // Beside the function folders: a user's folders, unmarked.
    plant_user_files(tmp / "cache");
    const fs::path theirs[] = {entry_a / "notes.txt",
                               fn_dir / "d41d8cd98f00b204e9800998ecf8427e" / "thesis.txt",
                               fn_dir / ".tmp-1-mine" / "draft.txt",
                               fn_dir / "00000000000000000000000000000000",
                               tmp / "cache" / "Music",
                               tmp / "cache" / "notes.txt",
                               tmp / "cache" / "proj" / "d41d8cd98f00b204e9800998ecf8427e" / "thesis.txt",
                               tmp / "cache" / "proj" / ".tmp-1-draft" / "output.bin"};
    std::map<std::string, std::string> before;
    for (const auto& p : theirs) before[p.string()] = fs::is_directory(p) ? "dir" : read_file(p);
    const auto after = [&] {
        std::map<std::string, std::string> now;
        for (const auto& p : theirs) {
            if (fs::exists(p)) now[p.string()] = fs::is_directory(p) ? "dir" : read_file(p);
        }
        return now;
    };

    (void)mem.cache("square", squares);                           // the sweep
    CHECK_THROWS_AS(mem.cache("proj", squares), corelab::Error);  // an unmarked folder of the user's: not swept
    CHECK(after() == before);
    CHECK(mem.reduce_size(0) == 1);  // b's entry; a's holds notes.txt now
    CHECK(after() == before);
    CHECK(square.check_call_in_cache(a));
    CHECK_FALSE(square.check_call_in_cache(b));
    mem.clear();
    CHECK(after() == before);
    CHECK(cap.err.str().find("notes.txt") != std::string::npos);  // said why it was left
}

TEST_CASE("memory: threads of one process share a cache and large arguments hash on two cores" *
          doctest::timeout(120)) {
    TempDir tmp;
    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options(1)};
    std::atomic<int> calls{0};
    auto square = mem.cache("square", [&](const std::vector<double>& x) {
        ++calls;
        return squares(x);
    });
    // 9.6 MB: over the 8 MB where the key's second hash moves to a helper thread.
    const std::vector<std::vector<double>> inputs = {ramp(3, 1.0), ramp(5000, 2.0), ramp(1'200'000, 3.0)};
    std::vector<std::thread> threads;
    std::atomic<int> wrong{0};
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 6; ++i) {
                const auto& x = inputs[static_cast<std::size_t>(t + i) % inputs.size()];
                if (square(x) != squares(x)) ++wrong;
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(wrong == 0);
    CHECK(calls >= 3);
    const int before = calls;
    for (const auto& x : inputs) CHECK(square(x) == squares(x));
    CHECK(calls == before);  // all stored now
    CHECK(list(tmp / "cache" / "square").entries.size() == 3);
    CHECK(cap.warnings() == 0);
}

TEST_CASE("memory: a large result is read and checksummed on two cores and its damage is caught" *
          doctest::timeout(120)) {
    TempDir tmp;
    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options()};
    int calls = 0;
    // 9.6 MB of result: over the 8 MB where a helper thread hashes the chunks already read.
    auto make = mem.cache("make", [&](std::size_t n) {
        ++calls;
        corelab::HugeArray<double> a(n);
        for (std::size_t i = 0; i < n; ++i) a[i] = static_cast<double>(i) * 0.25;
        return a;
    });
    constexpr std::size_t n = 1'200'000;
    const auto right = [&](const corelab::HugeArray<double>& a) {
        if (a.size() != n) return false;
        for (std::size_t i = 0; i < n; ++i)
            if (a[i] != static_cast<double>(i) * 0.25) return false;
        return true;
    };
    CHECK(right(make(n)));
    CHECK(right(make(n)));
    CHECK(calls == 1);
    const fs::path file = only_entry(tmp / "cache" / "make") / "output.bin";
    const std::string whole = read_file(file);
    std::string flipped = whole;
    flipped[whole.size() - 3'000'000] ^= 0x10;  // in a chunk the helper hashes
    write_file(file, flipped);
    CHECK(right(make(n)));
    CHECK(calls == 2);
    CHECK(cap.warnings() == 1);
    CHECK(cap.err.str().find("checksum mismatch") != std::string::npos);
    std::string truncated = read_file(file);
    truncated.resize(truncated.size() - 5'000'000);  // the lengths no longer match the size
    write_file(file, truncated);
    CHECK(right(make(n)));
    CHECK(calls == 3);
    CHECK(cap.warnings() == 2);
    CHECK(right(make(n)));
    CHECK(calls == 3);
}

namespace {

// Waits (at most 30 s) until the child `pid` has ended, without reaping it:
// it stays a zombie, whose pid still answers kill(pid, 0).
bool ended_unreaped(pid_t pid) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    for (;;) {
        siginfo_t info{};
        if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid) {
            return true;
        }
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(1ms);
    }
}

// Forks a writer of square(a) into `cache` that stops just before its rename
// and says so on the returned descriptor; `then` runs there (in the child).
pid_t writer_paused_before_rename(const fs::path& cache, const std::vector<double>& a, int& ready_fd,
                                  std::function<void()> then) {
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t pid = spawn([&] {
        ::close(ready[0]);
        corelab::detail::memory_test_hooks().before_rename = [&] {
            (void)!::write(ready[1], "r", 1);  // the entry is written, not yet renamed
            then();
        };
        const corelab::Memory mem{cache, {.verbose = 0}};
        return mem.cache("square", squares)(a) == squares(a) ? 0 : 1;
    });
    ::close(ready[1]);
    pollfd p{ready[0], POLLIN, 0};
    REQUIRE(::poll(&p, 1, 30'000) == 1);
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    ready_fd = ready[0];
    return pid;
}

}  // namespace

TEST_CASE("memory: a writer that died is swept at once, while it is still a zombie" * doctest::timeout(60)) {
    TempDir tmp;
    const auto a = ramp(1000, 2.0);
    int ready = -1;
    const pid_t pid = writer_paused_before_rename(tmp / "cache", a, ready, [] { ::_exit(7); });
    ::close(ready);
    REQUIRE(ended_unreaped(pid));
    CHECK(::kill(pid, 0) == 0);  // a zombie: by a pid test it still runs
    const fs::path fn_dir = tmp / "cache" / "square";
    REQUIRE(list(fn_dir).temps.size() == 1);

    const corelab::Memory mem{tmp / "cache", {.verbose = 0}};
    auto square = mem.cache("square", squares);
    CHECK(list(fn_dir).temps.empty());  // its writer holds no lock: swept
    CHECK(square(a) == squares(a));
    CHECK(exit_code(reap(pid)) == 7);
}

TEST_CASE("memory: a live writer's temporary directory is kept however old it is" * doctest::timeout(60)) {
    TempDir tmp;
    const auto a = ramp(1000, 3.0);
    int go[2];
    REQUIRE(::pipe(go) == 0);
    int ready = -1;
    const pid_t pid = writer_paused_before_rename(tmp / "cache", a, ready, [&] {
        ::close(go[1]);
        char c = 0;
        (void)!::read(go[0], &c, 1);  // until the test lets it rename
    });
    ::close(ready);
    ::close(go[0]);
    const fs::path fn_dir = tmp / "cache" / "square";
    const Listing before = list(fn_dir);
    REQUIRE(before.temps.size() == 1);
    // a slow writer: its directory was last changed two minutes ago
    const timespec two_minutes_ago[2] = {{::time(nullptr) - 120, 0}, {::time(nullptr) - 120, 0}};
    REQUIRE(::utimensat(AT_FDCWD, before.temps[0].c_str(), two_minutes_ago, 0) == 0);

    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options()};
    auto square = mem.cache("square", squares);
    CHECK(list(fn_dir).temps == before.temps);  // its writer runs and holds the lock: kept
    (void)!::write(go[1], "g", 1);
    ::close(go[1]);
    CHECK(exit_code(reap(pid)) == 0);
    CHECK(list(fn_dir).temps.empty());
    CHECK(list(fn_dir).entries.size() == 1);  // the writer's rename found its directory
    CHECK(square.check_call_in_cache(a));
}

// ------------------------------------------------------------ mapped results, limits, validation
namespace {

// Sets when the entry at `entry` was last used (both files' mtimes, as a hit sets one of them).
void set_used(const fs::path& entry, std::chrono::seconds ago) {
    const timespec t{::time(nullptr) - static_cast<time_t>(ago.count()), 0};
    const timespec times[2] = {t, t};
    for (const char* file : {"output.bin", "metadata.json"}) {
        REQUIRE(::utimensat(AT_FDCWD, (entry / file).c_str(), times, 0) == 0);
    }
}

// Rewrites metadata.json as if the result had been stored `ago` before now, with a valid header line.
void set_computed(const fs::path& entry, std::chrono::seconds ago) {
    const std::string text = read_file(entry / "metadata.json");
    std::string json = text.substr(text.find('\n') + 1);
    const std::string field = "\"time\": ";
    const std::size_t at = json.find(field);
    REQUIRE(at != std::string::npos);
    const std::size_t end = json.find(',', at);
    json.replace(at + field.size(), end - at - field.size(), std::to_string(::time(nullptr) - ago.count()) + ".0");
    char head[96];
    std::snprintf(head, sizeof head, "corelab-memory-metadata 2 %zu %016llx\n", json.size(),
                  static_cast<unsigned long long>(XXH3_64bits(json.data(), json.size())));
    write_file(entry / "metadata.json", head + json);
}

// The new entry folder that `call` makes in `fn_dir`.
fs::path entry_made_by(const fs::path& fn_dir, const std::function<void()>& call) {
    const Listing before = list(fn_dir);
    call();
    for (const auto& e : list(fn_dir).entries) {
        if (std::find(before.entries.begin(), before.entries.end(), e) == before.entries.end()) return e;
    }
    FAIL("the call made no entry");
    return {};
}

// n values of T whose bytes differ from element to element, NaNs with payloads, -0.0 and denormals included.
template <class T>
std::vector<T> pattern(std::size_t n, std::uint64_t seed) {
    std::vector<T> v(n);
    std::mt19937_64 rng(seed);
    for (auto& x : v) {
        const std::uint64_t bits = rng();
        std::memcpy(&x, &bits, sizeof x);
    }
    return v;
}

template <class A, class B>
bool same_bytes(const A& a, const B& b) {
    return a.size() == b.size() && (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0);
}

template <class T, class R>
void mapped_sizes(const corelab::Memory& mem, const std::string& name, const std::function<R(std::size_t)>& make) {
    CAPTURE(name);
    int calls = 0;
    auto f = mem.cache_mapped(name, [&](std::size_t n) {
        ++calls;
        return make(n);
    });
    int expected_calls = 0;
    // 0, a few elements, just under, at and over a page, and a size that is not a multiple of the page
    for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{3}, 4096 / sizeof(T) - 1, 4096 / sizeof(T),
                                4096 / sizeof(T) + 1, std::size_t{100'003}}) {
        CAPTURE(n);
        const R want = make(n);
        const corelab::MappedArray<T> miss = f(n);
        CHECK(calls == ++expected_calls);
        CHECK(same_bytes(miss, want));
        CHECK(miss.file_backed());
        const corelab::MappedArray<T> hit = f(n);
        CHECK(calls == expected_calls);
        CHECK(hit.file_backed());
        CHECK(same_bytes(hit, want));
        if (n != 0) CHECK(reinterpret_cast<std::uintptr_t>(hit.data()) % 4096 == 0);  // the array starts a page
        const std::span<const T> view = hit;
        CHECK(view.size() == n);
        CHECK(std::equal(hit.begin(), hit.end(), view.begin(),
                         [](const T& x, const T& y) { return std::memcmp(&x, &y, sizeof x) == 0; }));
    }
}

}  // namespace

TEST_CASE("memory: a mapped hit equals the stored array bit for bit, whatever its size and type" *
          doctest::timeout(60)) {
    TempDir tmp;
    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options()};
    mapped_sizes<double, std::vector<double>>(mem, "doubles", [](std::size_t n) { return pattern<double>(n, 1); });
    mapped_sizes<std::uint8_t, std::vector<std::uint8_t>>(mem, "bytes",
                                                          [](std::size_t n) { return pattern<std::uint8_t>(n, 2); });
    mapped_sizes<std::int16_t, std::vector<std::int16_t>>(mem, "shorts",
                                                          [](std::size_t n) { return pattern<std::int16_t>(n, 3); });
    mapped_sizes<float, corelab::HugeArray<float>>(mem, "huge_floats", [](std::size_t n) {
        const auto v = pattern<float>(n, 4);
        corelab::HugeArray<float> a(n);
        if (n != 0) std::memcpy(a.data(), v.data(), n * sizeof(float));
        return a;
    });
    CHECK(cap.warnings() == 0);
}

TEST_CASE("memory: a mapped entry and a copied one are the same entry, and a format-1 entry still loads") {
    TempDir tmp;
    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options()};
    int calls = 0;
    const auto fn = [&](const std::vector<double>& x) {
        ++calls;
        return squares(x);
    };
    const auto a = ramp(1000, 1.0);
    auto mapped = mem.cache_mapped("square", fn);
    auto copied = mem.cache("square", fn);
    CHECK(same_bytes(mapped(a), squares(a)));  // stored with its array on a page boundary
    CHECK(copied(a) == squares(a));            // the copying load reads the padding and skips it
    CHECK(calls == 1);

    // The same entry as format 1 wrote it: no padding, the field that holds it was zeros.
    const fs::path file = only_entry(tmp / "cache" / "square") / "output.bin";
    std::string bytes = read_file(file);
    const std::uint64_t key = get_u64(bytes, key_bytes_at), pad = get_u64(bytes, 40);
    CHECK((header_bytes + key + pad + 8) % 4096 == 0);
    bytes.erase(header_bytes + key, pad);
    bytes[8] = 1;
    put_u64(bytes, 40, 0);
    reseal(bytes);
    write_file(file, bytes);
    CHECK(copied(a) == squares(a));
    CHECK(calls == 1);
    CHECK(cap.warnings() == 0);
    // Mapped, its array is aligned for double only when the key's length makes it so.
    const bool aligned = (header_bytes + key + 8) % alignof(double) == 0;
    CHECK(same_bytes(mapped(a), squares(a)));
    CHECK(calls == (aligned ? 1 : 2));
    CHECK(cap.warnings() == (aligned ? 0 : 1));
}

TEST_CASE("memory: a damaged mapped entry is detected before any of its data is handed out" * doctest::timeout(60)) {
    TempDir tmp;
    constexpr std::size_t n = 3000;  // 24 KB: six pages of doubles
    struct Damage {
        const char* what;
        std::function<void(std::string&)> apply;
    };
    const auto array_at = [](const std::string& s) {  // where the array's length is
        return header_bytes + get_u64(s, key_bytes_at) + get_u64(s, 40);
    };
    const std::vector<Damage> damages = {
        {"a byte flipped in the middle of the array", [](std::string& s) { s[s.size() - 12'000] ^= 0x01; }},
        {"the last byte flipped", [](std::string& s) { s.back() ^= 0x80; }},
        {"a byte flipped in the padding", [&](std::string& s) { s[array_at(s) - 1] ^= 0x10; }},
        {"truncated in the array", [](std::string& s) { s.resize(s.size() - 8); }},
        {"truncated to a page", [](std::string& s) { s.resize(4096); }},
        {"truncated in the header", [](std::string& s) { s.resize(40); }},
        {"zero length", [](std::string& s) { s.clear(); }},
        {"wrong magic", [](std::string& s) { s[1] = 'X'; }},
        {"a format version from the future", [](std::string& s) { s[8] = 9; }},
        {"payload length changed",
         [](std::string& s) { put_u64(s, payload_bytes_at, get_u64(s, payload_bytes_at) - 8); }},
        {"padding length changed", [](std::string& s) { put_u64(s, 40, get_u64(s, 40) + 8); }},
        {"the array's length one more, with a valid checksum",
         [&](std::string& s) {
             put_u64(s, array_at(s), get_u64(s, array_at(s)) + 1);
             reseal(s);
         }},
        {"the array's length huge, with a valid checksum",
         [&](std::string& s) {
             put_u64(s, array_at(s), std::uint64_t{1} << 61);
             reseal(s);
         }},
        {"appended bytes", [](std::string& s) { s += "12345678"; }},
    };
    for (const auto& d : damages) {
        CAPTURE(d.what);
        Captured cap;
        const corelab::Memory mem{tmp / "cache", cap.options()};
        mem.clear();
        int calls = 0;
        auto f = mem.cache_mapped("pattern", [&](std::size_t k) {
            ++calls;
            return pattern<double>(k, 7);
        });
        const auto want = pattern<double>(n, 7);
        (void)f(n);
        // A hit once the file's times have settled: its identity is now remembered as checked,
        // so what follows tests that a write to the file makes the next hit check every byte again.
        std::this_thread::sleep_for(60ms);
        CHECK(same_bytes(f(n), want));
        CHECK(same_bytes(f(n), want));
        REQUIRE(calls == 1);
        const fs::path file = only_entry(tmp / "cache" / "pattern") / "output.bin";
        std::string bytes = read_file(file);
        d.apply(bytes);
        write_file(file, bytes);
        const corelab::MappedArray<double> again = f(n);
        CHECK(same_bytes(again, want));
        CHECK(calls == 2);
        CHECK(cap.warnings() == 1);
        CHECK(cap.err.str().find(file.parent_path().string()) != std::string::npos);
        CHECK(same_bytes(f(n), want));  // stored again, whole
        CHECK(calls == 2);
        CHECK(cap.warnings() == 1);
    }
}

TEST_CASE("memory: a mapped view stays valid and unchanged after clear and after reduce_size removed its entry") {
    TempDir tmp;
    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options()};
    int calls = 0;
    // Each computation differs, so a view that followed the entry's new file would show it.
    auto f = mem.cache_mapped("counted", [&](std::size_t n) {
        ++calls;
        return pattern<double>(n, static_cast<std::uint64_t>(calls));
    });
    const auto first = pattern<double>(100'003, 1);
    const corelab::MappedArray<double> view = f(std::size_t{100'003});
    const corelab::MappedArray<double> hit = f(std::size_t{100'003});
    REQUIRE(same_bytes(view, first));
    mem.clear();
    CHECK_FALSE(fs::exists(tmp / "cache" / "counted"));
    CHECK(same_bytes(view, first));
    CHECK(same_bytes(hit, first));
    corelab::MappedArray<double> second = f(std::size_t{100'003});  // computed again, a new file
    CHECK(calls == 2);
    CHECK(same_bytes(second, pattern<double>(100'003, 2)));
    CHECK(same_bytes(view, first));
    CHECK(mem.reduce_size({.items_limit = 0}) == 1);
    CHECK(mem.size_on_disk() == 0);
    CHECK(same_bytes(second, pattern<double>(100'003, 2)));
    CHECK(same_bytes(view, first));
    const corelab::MappedArray<double> moved = std::move(second);  // the mapping moves with the view
    CHECK(second.empty());  // NOLINT(bugprone-use-after-move): a moved-from view is empty
    CHECK(same_bytes(moved, pattern<double>(100'003, 2)));
    CHECK(cap.warnings() == 0);
}

TEST_CASE("memory: reduce_size honours bytes_limit, items_limit and age_limit, alone and together") {
    TempDir tmp;
    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options()};
    auto square = mem.cache("square", squares);
    auto mapped = mem.cache_mapped("square", squares);  // the same entries (written aligned), touched on metadata.json
    const fs::path fn_dir = tmp / "cache" / "square";
    std::vector<std::vector<double>> args;
    for (int i = 0; i < 5; ++i) args.push_back(ramp(1000, 10.0 * i));
    // Five entries; entry i last used i hours ago. Returns each entry's bytes.
    const auto rebuild = [&] {
        mem.clear();
        std::vector<std::uint64_t> bytes;
        for (std::size_t i = 0; i < args.size(); ++i) {
            const fs::path e = entry_made_by(fn_dir, [&] { (void)mapped(args[i]); });
            set_used(e, std::chrono::hours(i));
            bytes.push_back(fs::file_size(e / "output.bin") + fs::file_size(e / "metadata.json"));
        }
        return bytes;
    };
    // Which of the five entries are left.
    const auto kept = [&] {
        std::string out;
        for (const auto& a : args) out += square.check_call_in_cache(a) ? '1' : '0';
        return out;
    };
    using std::chrono::hours;
    const auto big = std::uint64_t{1} << 40;
    struct Case {
        const char* what;
        corelab::SizeLimits limits;
        std::size_t removed;
        const char* kept;
    };
    auto b = rebuild();
    const std::vector<Case> cases = {
        {"no limit", {}, 0, "11111"},
        {"items_limit 3", {.items_limit = 3}, 2, "11100"},
        {"items_limit 0", {.items_limit = 0}, 5, "00000"},
        {"items_limit 9", {.items_limit = 9}, 0, "11111"},
        {"age_limit 2.5 h", {.age_limit = std::chrono::minutes(150)}, 2, "11100"},
        {"age_limit 30 min", {.age_limit = std::chrono::minutes(30)}, 4, "10000"},
        {"bytes_limit: two entries", {.bytes_limit = b[0] + b[1]}, 3, "11000"},
        {"bytes_limit: one byte short of two", {.bytes_limit = b[0] + b[1] - 1}, 4, "10000"},
        {"items binds", {.bytes_limit = big, .items_limit = 2, .age_limit = hours(10)}, 3, "11000"},
        {"age binds", {.bytes_limit = big, .items_limit = 4, .age_limit = std::chrono::minutes(90)}, 3, "11000"},
        {"bytes binds", {.bytes_limit = b[0], .items_limit = 4, .age_limit = hours(10)}, 4, "10000"},
        {"all three at once",
         {.bytes_limit = b[0] + b[1] + b[2], .items_limit = 3, .age_limit = std::chrono::minutes(150)},
         2,
         "11100"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        b = rebuild();
        CHECK(mem.reduce_size(c.limits) == c.removed);
        CHECK(kept() == std::string(c.kept));
    }
    // A hit makes the oldest entry the most recently used: a mapped hit (marked on metadata.json) ...
    // (through a second Memory: each marks an entry used at most once a second, and kept() hit them all)
    const corelab::Memory other{tmp / "cache", cap.options()};
    rebuild();
    (void)other.cache_mapped("square", squares)(args[4]);
    CHECK(mem.reduce_size({.items_limit = 1}) == 4);
    CHECK(kept() == "00001");
    // ... and a copying one (marked on output.bin).
    const corelab::Memory third{tmp / "cache", cap.options()};
    rebuild();
    (void)third.cache("square", squares)(args[3]);
    CHECK(mem.reduce_size({.items_limit = 1}) == 4);
    CHECK(kept() == "00010");
    CHECK(cap.warnings() == 0);
}

TEST_CASE("memory: the validation callback is asked on each hit with the entry's age and a refusal recomputes") {
    TempDir tmp;
    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options()};
    std::vector<corelab::EntryMetadata> asked;
    const auto younger_than_a_minute = [&](const corelab::EntryMetadata& m) {
        asked.push_back(m);
        return m.age() < 60s;
    };
    int calls = 0;
    const auto slow_square = [&](const std::vector<double>& x) {
        ++calls;
        std::this_thread::sleep_for(30ms);
        return squares(x);
    };
    const auto a = ramp(100, 1.0);
    for (const bool is_mapped : {false, true}) {
        CAPTURE(is_mapped);
        mem.clear();
        asked.clear();
        calls = 0;
        auto copied = mem.cache("square", slow_square, {.cache_validation_callback = younger_than_a_minute});
        auto mapped = mem.cache_mapped("square", slow_square, {.cache_validation_callback = younger_than_a_minute});
        const auto call = [&] {
            if (is_mapped) {
                CHECK(same_bytes(mapped(a), squares(a)));
            } else {
                CHECK(copied(a) == squares(a));
            }
        };
        call();  // a miss asks nothing
        CHECK(calls == 1);
        CHECK(asked.empty());
        call();
        CHECK(calls == 1);
        REQUIRE(asked.size() == 1);
        CHECK(asked[0].age() >= 0s);
        CHECK(asked[0].age() < 10s);
        CHECK(asked[0].duration >= 0.03);
        CHECK(asked[0].duration < 10);
        CHECK(asked[0].input_args.find("square([1.0, 2.0, 3.0, ..., 98.0, 99.0, 100.0])") == 0);
        set_computed(only_entry(tmp / "cache" / "square"), std::chrono::hours(1));
        call();  // refused: an hour old
        CHECK(calls == 2);
        REQUIRE(asked.size() == 2);
        CHECK(asked[1].age() > 3590s);
        CHECK(asked[1].age() < 3610s);
        call();  // the new result, stored again
        CHECK(calls == 2);
        REQUIRE(asked.size() == 3);
        CHECK(asked[2].age() < 10s);
        CHECK(cap.warnings() == 0);
        // Unreadable metadata: the callback cannot judge it, so the entry is bad.
        const fs::path meta = only_entry(tmp / "cache" / "square") / "metadata.json";
        std::string text = read_file(meta);
        text[text.size() - 5] ^= 1;
        write_file(meta, text);
        call();
        CHECK(calls == 3);
        CHECK(asked.size() == 3);
        CHECK(cap.warnings() == 1);
        cap.err.str("");
    }
}

TEST_CASE("memory: expires_after accepts results younger than its age and refuses older ones") {
    const auto now = std::chrono::system_clock::now();
    const auto at = [&](std::chrono::seconds ago) { return corelab::EntryMetadata{.computed_at = now - ago}; };
    CHECK(corelab::expires_after(60s)(at(10s)));
    CHECK_FALSE(corelab::expires_after(5s)(at(10s)));
    CHECK(corelab::expires_after(std::chrono::hours(24))(at(std::chrono::hours(23))));
    CHECK_FALSE(corelab::expires_after(std::chrono::hours(24))(at(std::chrono::hours(25))));

    TempDir tmp;
    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options()};
    int calls = 0;
    auto f = mem.cache("square",
                       [&](const std::vector<double>& x) {
                           ++calls;
                           return squares(x);
                       },
                       {.cache_validation_callback = corelab::expires_after(std::chrono::hours(1))});
    const auto a = ramp(10, 1.0);
    f(a);
    f(a);
    CHECK(calls == 1);
    set_computed(only_entry(tmp / "cache" / "square"), std::chrono::minutes(59));
    f(a);
    CHECK(calls == 1);
    set_computed(only_entry(tmp / "cache" / "square"), std::chrono::minutes(61));
    f(a);
    CHECK(calls == 2);
    f(a);
    CHECK(calls == 2);
    CHECK(cap.warnings() == 0);
}

TEST_CASE("memory: a mapped entry written in place right after its check is caught by the next hit" *
          doctest::timeout(60)) {
    // On kernels whose ctime advances once a tick, a write right after the check may leave every
    // time as it was; only identities older than 50 ms are trusted, so each of these is caught.
    // (Linux 6.13+ gives ext4 and tmpfs fine-grained ctimes once they are queried: there every
    // write changes ctime, and this test checks the same thing without the race.)
    TempDir tmp;
    Captured cap;
    const corelab::Memory mem{tmp / "cache", cap.options()};
    int calls = 0;
    auto f = mem.cache_mapped("pattern", [&](std::size_t k) {
        ++calls;
        return pattern<double>(k, 11);
    });
    const auto want = pattern<double>(5000, 11);
    for (int round = 0; round < 20; ++round) {
        CAPTURE(round);
        (void)f(std::size_t{5000});  // a miss: stores, then maps and checks what it stored
        (void)f(std::size_t{5000});  // a hit at once: checked again, the file is too fresh to trust
        const fs::path file = only_entry(tmp / "cache" / "pattern") / "output.bin";
        const int fd = ::open(file.c_str(), O_RDWR);
        REQUIRE(fd >= 0);
        const auto at = static_cast<off_t>(fs::file_size(file) - 100);
        char byte = 0;
        CHECK(::pread(fd, &byte, 1, at) == 1);
        byte ^= 0x5a;
        CHECK(::pwrite(fd, &byte, 1, at) == 1);  // in place: the same size
        ::close(fd);
        CHECK(same_bytes(f(std::size_t{5000}), want));
        CHECK(cap.warnings() == round + 1);
        mem.clear();
    }
    CHECK(calls == 40);
}
