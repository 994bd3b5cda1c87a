// Implementation of tests/lessons/common.hpp.
#include "lessons/common.hpp"

#include <doctest/doctest.h>
#include <stdlib.h>  // mkdtemp

#include <cstdlib>     // std::strtod
#include <filesystem>  // std::filesystem

namespace corelab::test {

std::vector<CsvRow> csv_rows(const Outcome& o) {
    const auto ls = lines(o.out);
    REQUIRE(!ls.empty());
    REQUIRE(ls[0] == "name,seconds,result,speedup");
    std::vector<CsvRow> rows;
    for (std::size_t i = 1; i < ls.size(); ++i) {
        std::vector<std::string> f;
        std::string field;
        for (char c : ls[i] + ",") {
            if (c == ',') {
                f.push_back(field);
                field.clear();
            } else {
                field += c;
            }
        }
        REQUIRE_MESSAGE(f.size() == 4, "bad csv line: " << ls[i]);
        rows.push_back({f[0], std::strtod(f[1].c_str(), nullptr), f[2], f[3]});
    }
    return rows;
}

LessonDir::LessonDir(const std::string& number) {
    path = (std::filesystem::current_path() / ("lesson" + number + "_XXXXXX")).string();
    REQUIRE(::mkdtemp(path.data()) != nullptr);
}

LessonDir::~LessonDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
}

std::vector<std::string> LessonDir::files() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path)) names.push_back(e.path().string());
    return names;
}

}  // namespace corelab::test
