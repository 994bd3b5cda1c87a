// The one list of lessons, lessons/lessons.txt, read as CMake reads it
// (cmake/lesson_list.cmake), and the check that a course tree agrees with it:
// every lesson has its source, doc page, test file and a row in the lesson
// tables of README.md and docs/README.md, and nothing else claims to be one.
#pragma once

#include <filesystem>  // std::filesystem::path
#include <string>      // std::string
#include <vector>      // std::vector

namespace corelab::test {

/// One lesson line of lessons/lessons.txt: "NN | name | needs | smoke | title".
struct ListLine {
    std::string number;  ///< "02"
    std::string name;    ///< "serial_mean"
    bool mpi = false;    ///< needs: MPI
    std::string smoke;   ///< the smoke test's extra options, as written
    std::string title;   ///< the doc page's heading after "Lesson NN — "
    std::string id() const { return number + "_" + name; }
};

/// The lessons of a lessons.txt, in its order. Throws std::runtime_error
/// naming the line when a line is neither a lesson, a comment nor blank, or
/// when the file cannot be read.
std::vector<ListLine> read_lesson_list(const std::filesystem::path& file);

/// What disagrees with root/lessons/lessons.txt in the course tree at root,
/// one sentence each, naming the file; empty when everything agrees.
std::vector<std::string> lesson_list_problems(const std::filesystem::path& root);

}  // namespace corelab::test
