// Implementation of tests/lessons/lesson_list.hpp.
#include "lessons/lesson_list.hpp"

#include <algorithm>  // std::find_if, std::sort
#include <fstream>    // std::ifstream
#include <regex>      // std::regex
#include <set>        // std::set
#include <sstream>    // std::ostringstream
#include <stdexcept>  // std::runtime_error

namespace fs = std::filesystem;

namespace corelab::test {

namespace {

std::string trimmed(const std::string& s) {
    const auto first = s.find_first_not_of(" \t");
    if (first == std::string::npos) return "";
    return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

std::vector<std::string> lines_of(const fs::path& file) {
    std::ifstream in(file);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

std::string first_line(const fs::path& file) {
    const auto lines = lines_of(file);
    return lines.empty() ? "" : lines.front();
}

std::string read_text(const fs::path& file) {
    std::ifstream in(file);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The cells of a Markdown table row "| a | b |": {"a", "b"}.
std::vector<std::string> cells(const std::string& row) {
    std::vector<std::string> out;
    std::string cell;
    for (std::size_t i = 1; i < row.size(); ++i) {
        if (row[i] == '|') {
            out.push_back(trimmed(cell));
            cell.clear();
        } else {
            cell += row[i];
        }
    }
    return out;
}

// The rows of the first table in `file` whose header's first cell is
// "lesson", without the header and its separator; empty when there is none.
std::vector<std::string> lesson_table(const fs::path& file) {
    const auto lines = lines_of(file);
    for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
        if (!lines[i].starts_with("| ") || cells(lines[i]).empty() || cells(lines[i])[0] != "lesson") continue;
        std::vector<std::string> rows;
        for (std::size_t j = i + 2; j < lines.size() && lines[j].starts_with("|"); ++j) rows.push_back(lines[j]);
        return rows;
    }
    return {};
}

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
    return out;
}

// The table of `file` (relative to root) against the list: a row per lesson,
// in its order, each "NN `name`" and linking to `link_prefix` + id + ".md".
void check_table(const fs::path& root, const std::string& file, const std::string& link_prefix,
                 const std::vector<ListLine>& lessons, std::vector<std::string>& problems) {
    if (!fs::exists(root / file)) {
        problems.push_back(file + " is missing");
        return;
    }
    const auto rows = lesson_table(root / file);
    if (rows.empty()) {
        problems.push_back(file + " has no lesson table (a table whose first column is 'lesson')");
        return;
    }
    std::vector<std::string> listed, shown;
    for (const auto& l : lessons) listed.push_back(l.number + " `" + l.name + "`");
    for (const auto& r : rows) shown.push_back(cells(r).empty() ? r : cells(r)[0]);
    const std::set<std::string> listed_set(listed.begin(), listed.end()), shown_set(shown.begin(), shown.end());
    for (std::size_t i = 0; i < lessons.size(); ++i) {
        const auto at = std::find(shown.begin(), shown.end(), listed[i]);
        if (at == shown.end()) {
            problems.push_back(file + ": the lesson table has no row for lesson " + listed[i] +
                               " of lessons/lessons.txt");
            continue;
        }
        const std::string link = "](" + link_prefix + lessons[i].id() + ".md)";
        if (rows[at - shown.begin()].find(link) == std::string::npos)
            problems.push_back(file + ": the row of lesson " + listed[i] + " does not link to " + link_prefix +
                               lessons[i].id() + ".md");
    }
    for (const auto& s : shown) {
        if (!listed_set.contains(s))
            problems.push_back(file + ": the lesson table's row '" + s + "' is no lesson of lessons/lessons.txt");
    }
    if (listed_set == shown_set && listed != shown)
        problems.push_back(file + ": the lesson table's rows (" + joined(shown) +
                           ") are not in the order of lessons/lessons.txt (" + joined(listed) + ")");
}

// Every entry of root/dir whose name matches `pattern` ($1: the lesson id) is a listed lesson.
void check_nothing_else(const fs::path& root, const std::string& dir, const std::regex& pattern,
                        const std::set<std::string>& ids, std::vector<std::string>& problems) {
    std::error_code ec;
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(root / dir, ec)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
        std::smatch m;
        if (std::regex_match(name, m, pattern) && !ids.contains(m[1].str()))
            problems.push_back(dir + "/" + name + " belongs to lesson " + m[1].str() +
                               ", which lessons/lessons.txt does not list");
    }
}

}  // namespace

std::vector<ListLine> read_lesson_list(const fs::path& file) {
    std::ifstream in(file);
    if (!in) throw std::runtime_error("cannot read " + file.string());
    // the patterns of cmake/lesson_list.cmake
    static const std::regex skipped("^[ \t]*(#.*)?$");
    static const std::regex lesson("^([0-9][0-9]) *\\| *([a-z][a-z0-9_]*) *\\| *(MPI)? *\\|([^|]*)\\| *([^ |][^|]*)$");
    std::vector<ListLine> lessons;
    int number = 0;
    for (std::string line; std::getline(in, line);) {
        ++number;
        if (std::regex_match(line, skipped)) continue;
        std::smatch m;
        if (!std::regex_match(line, m, lesson))
            throw std::runtime_error(file.string() + ":" + std::to_string(number) + ": cannot read the line '" + line +
                                     "' (NN | name | needs | smoke | title)");
        lessons.push_back({m[1].str(), m[2].str(), m[3].matched, trimmed(m[4].str()), trimmed(m[5].str())});
    }
    return lessons;
}

std::vector<std::string> lesson_list_problems(const fs::path& root) {
    std::vector<std::string> problems;
    std::vector<ListLine> lessons;
    try {
        lessons = read_lesson_list(root / "lessons" / "lessons.txt");
    } catch (const std::exception& e) {
        return {e.what()};
    }
    if (lessons.empty()) return {"lessons/lessons.txt lists no lesson"};
    std::set<std::string> ids;
    for (std::size_t i = 0; i < lessons.size(); ++i) {
        const ListLine& l = lessons[i];
        const std::string id = l.id(), lesson = "lesson " + l.number + " (" + l.name + ")";
        if (i > 0 && l.number <= lessons[i - 1].number)
            problems.push_back("lessons/lessons.txt: lesson " + l.number + " comes after lesson " +
                               lessons[i - 1].number + ": the lessons are listed once each, in order");
        ids.insert(id);
        const fs::path source = root / "lessons" / (id + ".cpp");
        if (!fs::exists(source)) {
            problems.push_back(lesson + " has no source: lessons/" + id + ".cpp is missing");
        } else if (!first_line(source).starts_with("// Lesson " + l.number + " — ")) {
            problems.push_back("lessons/" + id + ".cpp does not begin with '// Lesson " + l.number + " — '");
        }
        const fs::path page = root / "docs" / (id + ".md");
        const std::string heading = "# Lesson " + l.number + " — " + l.title;
        if (!fs::exists(page)) {
            problems.push_back(lesson + " has no doc page: docs/" + id + ".md is missing");
        } else if (first_line(page) != heading) {
            problems.push_back("docs/" + id + ".md begins with '" + first_line(page) + "', not with the list's '" +
                               heading + "'");
        }
        const fs::path tests = root / "tests" / "lessons" / ("test_lesson" + id + ".cpp");
        if (!fs::exists(tests)) {
            problems.push_back(lesson + " has no tests: tests/lessons/test_lesson" + id + ".cpp is missing");
        } else if (read_text(tests).find("TEST_CASE(\"lesson " + l.number + ": ") == std::string::npos) {
            problems.push_back("tests/lessons/test_lesson" + id + ".cpp has no TEST_CASE(\"lesson " + l.number +
                               ": ...\")");
        }
    }
    check_table(root, "README.md", "docs/", lessons, problems);
    check_table(root, "docs/README.md", "", lessons, problems);
    check_nothing_else(root, "lessons", std::regex("([0-9][0-9]_[a-z0-9_]+)\\.cpp"), ids, problems);
    check_nothing_else(root, "docs", std::regex("([0-9][0-9]_[a-z0-9_]+)\\.md"), ids, problems);
    check_nothing_else(root, "tests/lessons", std::regex("test_lesson([0-9][0-9]_[a-z0-9_]+)\\.cpp"), ids, problems);
    check_nothing_else(root, "exercises", std::regex("([0-9][0-9]_[a-z0-9_]+)"), ids, problems);
    return problems;
}

}  // namespace corelab::test
