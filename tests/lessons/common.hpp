// What the lessons' tests share: a lesson's CSV rows, read back, and a fresh
// folder for a lesson's files. Each lesson's own tests are in
// tests/lessons/test_lessonNN_name.cpp.
#pragma once

#include <string>  // std::string
#include <vector>  // std::vector

#include "support/subprocess.hpp"  // Outcome

namespace corelab::test {

/// One row of a lesson's `--format csv` output.
struct CsvRow {
    std::string name;
    double seconds;
    std::string result;
    std::string speedup;
};

/// The rows of `--format csv` output, after checking its header (a failed
/// REQUIRE when the output is not that).
std::vector<CsvRow> csv_rows(const Outcome& o);

/// A fresh directory for a lesson's files, in the build tree
/// (lesson<NN>_XXXXXX), removed with everything in it at the end.
struct LessonDir {
    std::string path;
    explicit LessonDir(const std::string& number);
    LessonDir(const LessonDir&) = delete;
    LessonDir& operator=(const LessonDir&) = delete;
    ~LessonDir();
    /// The paths of the entries in it.
    std::vector<std::string> files() const;
};

}  // namespace corelab::test
