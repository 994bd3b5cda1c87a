// Lesson 05 (lessons/05_caching.cpp) run as a program: its cached means, the
// notebook's joblib lines, a writer killed mid-entry, and cache directories
// it must refuse (unsafe, a symlink, someone's files) without deleting anything.
#include <doctest/doctest.h>
#include <signal.h>    // kill
#include <stdlib.h>    // mkdtemp
#include <sys/stat.h>  // chmod

#include <algorithm>   // std::sort
#include <chrono>      // std::chrono::seconds
#include <cstdlib>     // std::strtod
#include <filesystem>  // std::filesystem
#include <fstream>     // std::ifstream, std::ofstream
#include <iterator>    // std::istreambuf_iterator
#include <string>      // std::string
#include <vector>      // std::vector

#include "corelab/dataset.hpp"
#include "corelab/reduce.hpp"
#include "lessons/common.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"

using corelab::test::csv_rows;
using corelab::test::Outcome;
using corelab::test::run;

namespace {

// A private cache directory for one lesson run, removed afterwards.
struct CacheDir {
    std::filesystem::path path;
    CacheDir() {
        std::string t = (std::filesystem::temp_directory_path() / "corelab-lesson05-XXXXXX").string();
        REQUIRE(::mkdtemp(t.data()) != nullptr);
        path = t;
    }
    ~CacheDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

}  // namespace

TEST_CASE("lesson 05: csv rows and every cached mean equals the library's mean" * doctest::timeout(120)) {
    CacheDir dir;
    const Outcome o = run({corelab::test::lesson("05_caching"), "--n", "200003", "--seed", "5", "--repeat", "2",
                           "--format", "csv", "--cachedir", (dir.path / "c").string()});
    CHECK(o.exit_code == 0);
    CHECK(o.err.empty());
    const auto rows = csv_rows(o);
    REQUIRE(rows.size() == 7);
    const char* names[] = {"compute",
                           "cache_hit",
                           "cache_hit_new_process",
                           "cache_hit_large",
                           "cache_hit_large_vector",
                           "cache_hit_large_mapped",
                           "cache_hit_large_mapped_read"};
    for (std::size_t i = 0; i < rows.size(); ++i) CHECK(rows[i].name == names[i]);
    CHECK(rows[0].speedup == "1");
    const double mean = corelab::sum_fast(corelab::make_uniform(200003, 5)).mean();
    for (std::size_t i = 0; i < 3; ++i) CHECK(std::strtod(rows[i].result.c_str(), nullptr) == mean);
    const double large = corelab::sum_fast(corelab::make_uniform(20000, 5)).mean();
    CHECK(std::strtod(rows[3].result.c_str(), nullptr) == large);
    for (std::size_t i = 4; i < 7; ++i) CHECK(std::strtod(rows[i].result.c_str(), nullptr) == large);
    for (const auto& r : rows) CHECK(r.seconds >= 0.0);
}

TEST_CASE("lesson 05: the notebook's cell prints joblib's lines once and a kept cache computes nothing" *
          doctest::timeout(120)) {
    CacheDir dir;
    const std::string cache = (dir.path / "c").string();
    const std::string exe = corelab::test::lesson("05_caching");
    const Outcome first = run({exe, "--n", "50000", "--repeat", "1", "--cachedir", cache});
    CHECK(first.exit_code == 0);
    const std::string cell = std::string(80, '_') +
                             "\n[Memory] Calling square...\n"
                             "square([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [4.0, 2.0, 1.0]])\n" +
                             std::string(59, '_') + "square - 0.0s, 0.0min\n";
    CHECK(first.out.find(cell) != std::string::npos);
    CHECK(first.out.find("[Memory] Calling square...") == first.out.rfind("[Memory] Calling square..."));
    for (const char* s : {"cache_hit_new_process", "cache_hit_large_vector", "cache_hit_large_mapped_read", "In[9]",
                          "--keep-cache", "Mapped, the same"}) {
        CHECK_MESSAGE(first.out.find(s) != std::string::npos, "missing: " << s);
    }
    const Outcome again = run({exe, "--n", "50000", "--repeat", "1", "--cachedir", cache, "--keep-cache"});
    CHECK(again.exit_code == 0);
    CHECK(again.out.find("[Memory] Calling") == std::string::npos);  // every call loaded from disk
}

namespace {

// The temporary entry directories (.tmp-*) in a cache directory's function folders.
std::vector<std::filesystem::path> temp_dirs_in(const std::filesystem::path& cache) {
    std::vector<std::filesystem::path> found;
    std::error_code ec;
    for (const auto& fn : std::filesystem::directory_iterator(cache, ec)) {
        std::error_code inner;
        for (const auto& e : std::filesystem::directory_iterator(fn.path(), inner)) {
            if (e.path().filename().string().rfind(".tmp-", 0) == 0) found.push_back(e.path());
        }
    }
    return found;
}

}  // namespace

TEST_CASE("lesson 05: killed while writing an entry, the next run at once removes its temporary directory" *
          doctest::timeout(300)) {
    const std::string exe = corelab::test::lesson("05_caching");
    // The large results (2.4 MB here) take long enough to write that a poll
    // catches the writer mid-entry; when the kill comes after its rename, try again.
    for (int attempt = 0; attempt < 5; ++attempt) {
        CacheDir dir;
        const std::filesystem::path cache = dir.path / "c";
        const pid_t pid = corelab::test::start_in_own_group(
            {exe, "--n", "3000000", "--repeat", "1", "--format", "csv", "--cachedir", cache.string()});
        std::vector<std::filesystem::path> caught;
        const bool seen = corelab::test::eventually(
            [&] {
                caught = temp_dirs_in(cache);
                return !caught.empty() || !corelab::test::running(pid);
            },
            std::chrono::seconds(120));
        ::kill(pid, SIGKILL);
        const auto ended = corelab::test::wait_for_zombie(pid, std::chrono::seconds(10));  // not reaped: a zombie
        REQUIRE(ended.ended);
        const auto left = temp_dirs_in(cache);
        if (!seen || caught.empty() || left.empty()) {
            (void)corelab::test::wait_for(pid, std::chrono::seconds(10));
            continue;  // it was not mid-entry when the kill came
        }
        CHECK(::kill(pid, 0) == 0);  // a zombie: by a pid test, the writer still runs
        const Outcome next =
            run({exe, "--n", "1000", "--repeat", "1", "--format", "csv", "--cachedir", cache.string(), "--keep-cache"});
        CHECK(next.exit_code == 0);
        for (const auto& t : left) CHECK_MESSAGE(!std::filesystem::exists(t), "kept: " << t);
        CHECK(temp_dirs_in(cache).empty());
        CHECK(corelab::test::wait_for(pid, std::chrono::seconds(10)).ended);
        return;
    }
    FAIL("lesson 05 was never caught writing an entry in 5 runs");
}

TEST_CASE("lesson 05: an unsafe cache directory is a clear error" * doctest::timeout(60)) {
    CacheDir dir;
    REQUIRE(::chmod(dir.path.c_str(), 0777) == 0);
    const Outcome o = run({corelab::test::lesson("05_caching"), "--n", "1000", "--cachedir", dir.path.string()});
    CHECK(o.exit_code == 1);
    CHECK(o.signal == 0);
    CHECK(o.err.find("error: ") == 0);
    CHECK(o.err.find(dir.path.string()) != std::string::npos);
    CHECK(o.err.find("other users") != std::string::npos);
}

TEST_CASE("lesson 05: a cache directory that is a symlink or holds other files is refused and nothing is deleted" *
          doctest::timeout(60)) {
    namespace fs = std::filesystem;
    CacheDir dir;
    // Someone's files, shaped like what an unguarded clear removes: an empty folder and a
    // folder of the 32-hex-digit kind holding a thesis.
    const fs::path home = dir.path / "home";
    const fs::path thesis = home / "proj" / "d41d8cd98f00b204e9800998ecf8427e" / "thesis.txt";
    fs::create_directories(home / "Music");
    fs::create_directories(thesis.parent_path());
    std::ofstream(thesis) << "Chapter 1\n";
    fs::create_directory_symlink(home, dir.path / "link");
    const auto listing = [&] {
        std::vector<std::string> paths;
        for (const auto& e : fs::recursive_directory_iterator(home)) paths.push_back(e.path().string());
        std::sort(paths.begin(), paths.end());
        return paths;
    };
    const auto before = listing();
    REQUIRE(before.size() == 4);
    for (const fs::path& cachedir : {dir.path / "link", home}) {
        CAPTURE(cachedir);
        const Outcome o = run({corelab::test::lesson("05_caching"), "--n", "1000", "--cachedir", cachedir.string()});
        CHECK(o.exit_code == 1);
        CHECK(o.signal == 0);
        CHECK(o.err.find("error: the cache directory '" + cachedir.string() + "' is ") == 0);
        CHECK(o.err.find(cachedir == home ? "not a corelab cache" : "symbolic link") != std::string::npos);
        CHECK(o.out.find("[Memory] Calling") == std::string::npos);
        CHECK(listing() == before);
        std::ifstream in(thesis);
        CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "Chapter 1\n");
    }
}
