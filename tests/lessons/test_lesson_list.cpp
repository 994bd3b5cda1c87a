// lessons/lessons.txt is the one list of lessons: CMake builds what it lists
// (the generated course_lessons.hpp says so), ./course runs it, and the course
// tree agrees with it. The check is shown to fail on copies of the tree with
// one thing broken each.
#include <doctest/doctest.h>
#include <stdlib.h>  // mkdtemp
#include <unistd.h>  // access

#include <filesystem>  // std::filesystem
#include <fstream>     // std::ifstream, std::ofstream
#include <functional>  // std::function
#include <iterator>    // std::istreambuf_iterator
#include <regex>       // std::regex
#include <string>      // std::string
#include <vector>      // std::vector

#include "course_lessons.hpp"  // corelab::course::lessons, generated from lessons/lessons.txt
#include "lessons/lesson_list.hpp"
#include "support/subprocess.hpp"

namespace fs = std::filesystem;
using corelab::test::lesson_list_problems;
using corelab::test::Outcome;
using corelab::test::run;

namespace {

const fs::path source_root = CORELAB_SOURCE_DIR;

std::string read_text(const fs::path& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_text(const fs::path& p, const std::string& text) {
    std::ofstream(p) << text;
}

// `text` with its first match of `pattern` replaced (a failed REQUIRE when there is none).
std::string replaced(const std::string& text, const std::string& pattern, const std::string& by) {
    const std::regex re(pattern);
    REQUIRE_MESSAGE(std::regex_search(text, re), "no match for " << pattern);
    return std::regex_replace(text, re, by, std::regex_constants::format_first_only);
}

void edit(const fs::path& p, const std::string& pattern, const std::string& by) {
    write_text(p, replaced(read_text(p), pattern, by));
}

// A copy of what the list check reads from the course tree (the list, the
// lesson sources, the doc pages, the lesson tests, both tables, and the
// exercises' lesson folders, empty), in a folder removed afterwards.
struct TreeCopy {
    fs::path root;
    TreeCopy() {
        std::string t = (fs::temp_directory_path() / "corelab-lesson-list-XXXXXX").string();
        REQUIRE(::mkdtemp(t.data()) != nullptr);
        root = t;
        for (const char* dir : {"lessons", "docs", "tests/lessons", "exercises"}) fs::create_directories(root / dir);
        fs::copy_file(source_root / "README.md", root / "README.md");
        fs::copy_file(source_root / "lessons" / "lessons.txt", root / "lessons" / "lessons.txt");
        const auto copy_files = [&](const char* dir, const char* ext) {
            for (const auto& e : fs::directory_iterator(source_root / dir)) {
                if (e.is_regular_file() && e.path().extension() == ext)
                    fs::copy_file(e.path(), root / dir / e.path().filename());
            }
        };
        copy_files("lessons", ".cpp");
        copy_files("docs", ".md");
        copy_files("tests/lessons", ".cpp");
        for (const auto& e : fs::directory_iterator(source_root / "exercises")) {
            if (e.is_directory()) fs::create_directory(root / "exercises" / e.path().filename());
        }
    }
    ~TreeCopy() {
        std::error_code ec;
        fs::remove_all(root, ec);
    }
};

std::string all(const std::vector<std::string>& problems) {
    std::string out;
    for (const auto& p : problems) out += "\n  " + p;
    return out;
}

}  // namespace

TEST_CASE("lessons: every lesson of lessons/lessons.txt has its source, doc page, tests and table rows, and is built" *
          doctest::timeout(60)) {
    const auto problems = lesson_list_problems(source_root);
    CHECK_MESSAGE(problems.empty(), "the course tree disagrees with lessons/lessons.txt:" << all(problems));

    // CMake read the list as this test reads it: the generated header is the same list
    const auto listed = corelab::test::read_lesson_list(source_root / "lessons" / "lessons.txt");
    REQUIRE(listed.size() == std::size(corelab::course::lessons));
    for (std::size_t i = 0; i < listed.size(); ++i) {
        const auto& built = corelab::course::lessons[i];
        CAPTURE(listed[i].id());
        CHECK(built.id == listed[i].id());
        CHECK(built.number == listed[i].number);
        CHECK(built.name == listed[i].name);
        CHECK(built.title == listed[i].title);
        CHECK(built.mpi == listed[i].mpi);
        // every lesson that needs no MPI is built, and its program is there
        if (!built.mpi) CHECK(built.built);
#ifdef CORELAB_MPIEXEC
        CHECK(built.built);  // MPI was found: the MPI lessons are built too
#endif
        if (built.built) CHECK(::access(corelab::test::lesson(listed[i].id()).c_str(), X_OK) == 0);
    }
}

TEST_CASE("lessons: the list check fails on a copy whose list, sources, pages, tests or tables disagree" *
          doctest::timeout(60)) {
    {
        const TreeCopy pristine;
        const auto problems = lesson_list_problems(pristine.root);
        CHECK_MESSAGE(problems.empty(), "a faithful copy:" << all(problems));
    }
    struct Fault {
        const char* what;
        std::function<void(const fs::path&)> make;
        std::vector<std::string> expected;  // each in one of the problems found
    };
    const std::vector<Fault> faults{
        {"README.md without lesson 03's row",
         [](const fs::path& r) { edit(r / "README.md", "\\| 03 `two_process_mean` [^\n]*\n", ""); },
         {"README.md: the lesson table has no row for lesson 03 `two_process_mean` of lessons/lessons.txt"}},
        {"docs/README.md with lessons 04 and 05 swapped",
         [](const fs::path& r) {
             edit(r / "docs" / "README.md", "(\\| 04 `two_thread_mean` [^\n]*\n)(\\| 05 `caching` [^\n]*\n)", "$2$1");
         },
         {"docs/README.md: the lesson table's rows (01 `lscpu`, 02 `serial_mean`, 03 `two_process_mean`, 05 `caching`, "
          "04 `two_thread_mean`"}},
        {"README.md's row of lesson 02 linking to lesson 03's page",
         [](const fs::path& r) {
             edit(r / "README.md", "\\(docs/02_serial_mean\\.md\\)", "(docs/03_two_process_mean.md)");
         },
         {"README.md: the row of lesson 02 `serial_mean` does not link to docs/02_serial_mean.md"}},
        {"a lesson added to the list only",
         [](const fs::path& r) {
             std::ofstream(r / "lessons" / "lessons.txt", std::ios::app) << "09   | gpu_mean | | | the mean on a GPU\n";
         },
         {"lesson 09 (gpu_mean) has no source: lessons/09_gpu_mean.cpp is missing",
          "lesson 09 (gpu_mean) has no doc page: docs/09_gpu_mean.md is missing",
          "lesson 09 (gpu_mean) has no tests: tests/lessons/test_lesson09_gpu_mean.cpp is missing",
          "README.md: the lesson table has no row for lesson 09 `gpu_mean`",
          "docs/README.md: the lesson table has no row for lesson 09 `gpu_mean`"}},
        {"a lesson's files and rows without its line in the list",
         [](const fs::path& r) { edit(r / "lessons" / "lessons.txt", "\n07 [^\n]*", ""); },
         {"lessons/07_chunked_file.cpp belongs to lesson 07_chunked_file, which lessons/lessons.txt does not list",
          "docs/07_chunked_file.md belongs to lesson 07_chunked_file",
          "tests/lessons/test_lesson07_chunked_file.cpp belongs to lesson 07_chunked_file",
          "exercises/07_chunked_file belongs to lesson 07_chunked_file",
          "README.md: the lesson table's row '07 `chunked_file`' is no lesson of lessons/lessons.txt",
          "docs/README.md: the lesson table's row '07 `chunked_file`' is no lesson of lessons/lessons.txt"}},
        {"a doc page whose heading is not the list's title",
         [](const fs::path& r) { edit(r / "docs" / "05_caching.md", "^# Lesson 05 — keep", "# Lesson 05 — store"); },
         {"docs/05_caching.md begins with '# Lesson 05 — store results on disk: a cache of function calls', not with "
          "the list's '# Lesson 05 — keep results on disk: a cache of function calls'"}},
        {"a lesson's test file removed",
         [](const fs::path& r) { fs::remove(r / "tests" / "lessons" / "test_lesson06_parallel_for.cpp"); },
         {"lesson 06 (parallel_for) has no tests: tests/lessons/test_lesson06_parallel_for.cpp is missing"}},
        {"a lesson's test file with no test of it",
         [](const fs::path& r) { write_text(r / "tests" / "lessons" / "test_lesson01_lscpu.cpp", "// nothing yet\n"); },
         {"tests/lessons/test_lesson01_lscpu.cpp has no TEST_CASE(\"lesson 01: ...\")"}},
        {"a lesson source nobody listed",
         [](const fs::path& r) { write_text(r / "lessons" / "09_extra.cpp", "// Lesson 09 — extra\n"); },
         {"lessons/09_extra.cpp belongs to lesson 09_extra, which lessons/lessons.txt does not list"}},
        {"lessons 01 and 02 listed out of order",
         [](const fs::path& r) { edit(r / "lessons" / "lessons.txt", "\n(01 [^\n]*\n)(02 [^\n]*\n)", "\n$2$1"); },
         {"lessons/lessons.txt: lesson 01 comes after lesson 02",
          "README.md: the lesson table's rows (01 `lscpu`, 02 `serial_mean`, 03"}},
        {"a line of the list that is not a lesson",
         [](const fs::path& r) {
             edit(r / "lessons" / "lessons.txt", "\n03   \\| two_process_mean", "\n03 two_process_mean");
         },
         {"cannot read the line '03 two_process_mean"}},
    };
    for (const auto& fault : faults) {
        CAPTURE(fault.what);
        const TreeCopy copy;
        fault.make(copy.root);
        const auto problems = lesson_list_problems(copy.root);
        CHECK_MESSAGE(!problems.empty(), "not caught: " << fault.what);
        for (const auto& expected : fault.expected) {
            bool found = false;
            for (const auto& p : problems) found = found || p.find(expected) != std::string::npos;
            CHECK_MESSAGE(found, "missing: " << expected << "\nfound:" << all(problems));
        }
    }
}

TEST_CASE("course: ./course takes its lessons from lessons/lessons.txt" * doctest::timeout(60)) {
    std::string ids;
    for (const auto& l : corelab::course::lessons) ids += (ids.empty() ? "" : " ") + std::string(l.id);
    const Outcome here = run({"/bin/bash", CORELAB_COURSE, "lesson", "99"});
    CHECK(here.exit_code == 2);
    CHECK_MESSAGE(here.err.find("there is no lesson 99 (lessons: " + ids + ")") != std::string::npos, here.err);

    // the script in a tree of its own, with a list of two lessons, one of them new
    const TreeCopy copy;
    fs::create_directories(copy.root / "tools");
    fs::copy_file(CORELAB_COURSE, copy.root / "course");
    fs::copy_file(source_root / "tools" / "coursework.bash", copy.root / "tools" / "coursework.bash");
    write_text(copy.root / "lessons" / "lessons.txt",
               "# two lessons\n\n01 | lscpu | | | how many workers can run at once here?\n"
               "09 | gpu_mean | MPI | --x 1 | the mean on a GPU");  // no newline at the end
    const Outcome other = run({"/bin/bash", (copy.root / "course").string(), "lesson", "5"});
    CHECK(other.exit_code == 2);
    CHECK_MESSAGE(other.err.find("there is no lesson 5 (lessons: 01_lscpu 09_gpu_mean)") != std::string::npos,
                  other.err);
    edit(copy.root / "lessons" / "lessons.txt", "09 \\| gpu_mean", "09 | GPU mean");
    const Outcome bad = run({"/bin/bash", (copy.root / "course").string(), "lesson", "1"});
    CHECK(bad.exit_code == 1);
    CHECK(bad.err.find("lessons/lessons.txt: cannot read the line '09 | GPU mean") != std::string::npos);
}
