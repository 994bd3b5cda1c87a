// docs_sync — keeps the code quoted in docs/ equal to the code it quotes.
//
// A docs page quotes a marked region of a source file like this:
//
//   <!-- snippet: lessons/02_serial_mean.cpp#generate -->
//   ```cpp
//   ...the lines between `// [docs:generate]` and `// [docs:end]`...
//   ```
//   <!-- end snippet -->
//
// A page quotes a lesson's captured output (docs/captured/, written by
// `./course docs --capture` with the machine it ran on) the same way:
//
//   <!-- capture: docs/captured/03_two_process_mean.txt -->        the whole output
//   <!-- capture: docs/captured/03_two_process_mean.txt#table -->  its header and its table
//   ```text ... ```
//   <!-- end capture -->
//
// `docs_sync --write ROOT` refreshes every such block in ROOT/docs/*.md and
// ROOT/README.md; `docs_sync --check ROOT` changes nothing and exits 1, naming
// the page and the region, when a block has drifted (a ctest runs it).
// `./course docs` runs --write. The idea is the Rust book's ANCHOR listings.
#include <algorithm>   // std::sort
#include <filesystem>  // directory_iterator, path
#include <fstream>     // std::ifstream, std::ofstream
#include <iostream>    // std::cout, std::cerr
#include <sstream>     // std::stringstream
#include <string>      // std::string
#include <vector>      // std::vector

namespace fs = std::filesystem;

namespace {

struct Failure {
    std::string message;
};

std::vector<std::string> read_lines(const fs::path& file) {
    std::ifstream in(file);
    if (!in) throw Failure{"cannot read " + file.string()};
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t");
    if (b == std::string::npos) return {};
    const auto e = s.find_last_not_of(" \t");
    return s.substr(b, e - b + 1);
}

// The lines between `[docs:NAME]` and the next `[docs:end]`, without other
// marker lines, dedented to the least indentation.
std::vector<std::string> region(const fs::path& root, const std::string& ref) {
    const auto hash = ref.find('#');
    if (hash == std::string::npos) throw Failure{"snippet '" + ref + "' needs the form path#region"};
    const fs::path file = root / ref.substr(0, hash);
    const std::string open = "[docs:" + ref.substr(hash + 1) + "]";
    const auto lines = read_lines(file);
    std::vector<std::string> out;
    bool inside = false;
    bool found = false;
    for (const auto& line : lines) {
        const std::string t = trim(line);
        const bool marker = t.rfind("//", 0) == 0 && t.find("[docs:") != std::string::npos;
        if (!inside) {
            if (marker && t.find(open) != std::string::npos) inside = found = true;
            continue;
        }
        if (marker && t.find("[docs:end]") != std::string::npos) break;
        if (!marker) out.push_back(line);
    }
    if (!found) throw Failure{file.string() + " has no region " + open};
    std::size_t indent = std::string::npos;
    for (const auto& l : out) {
        if (trim(l).empty()) continue;
        indent = std::min(indent, l.find_first_not_of(" \t"));
    }
    for (auto& l : out) l = trim(l).empty() ? std::string{} : l.substr(indent == std::string::npos ? 0 : indent);
    return out;
}

std::string language(const std::string& ref) {
    const std::string path = ref.substr(0, ref.find('#'));
    const std::string ext = fs::path(path).extension().string();
    if (ext == ".cpp" || ext == ".hpp") return "cpp";
    if (ext == ".txt" || ext == ".cmake") return "cmake";
    return "bash";
}

// A captured output: its '#' header lines (the machine), then all of it, or
// with #table only the table that ends the lesson (from its header, the line
// that starts with "row " and names the speed-up column, to the end).
std::vector<std::string> capture(const fs::path& root, const std::string& ref) {
    const auto hash = ref.find('#');
    const std::string part = hash == std::string::npos ? "" : ref.substr(hash + 1);
    if (!part.empty() && part != "table") throw Failure{"capture '" + ref + "': the only part is #table"};
    const auto lines = read_lines(root / ref.substr(0, hash));
    std::vector<std::string> out;
    std::size_t i = 0;
    for (; i < lines.size() && lines[i].rfind("# ", 0) == 0; ++i) out.push_back(lines[i]);
    if (!part.empty()) {
        std::size_t table = i;
        while (table < lines.size() &&
               (lines[table].rfind("row ", 0) != 0 || lines[table].find("speed-up") == std::string::npos)) {
            ++table;
        }
        if (table == lines.size()) throw Failure{"capture '" + ref + "' has no table (a line that starts with 'row ')"};
        out.push_back("...");
        i = table;
    }
    for (; i < lines.size(); ++i) out.push_back(lines[i]);
    while (!out.empty() && trim(out.back()).empty()) out.pop_back();
    return out;
}

// Returns the page with every snippet block refreshed; counts the blocks.
std::vector<std::string> refresh(const fs::path& root, const fs::path& page, int& blocks) {
    const auto lines = read_lines(page);
    std::vector<std::string> out;
    const std::string start = "<!-- snippet: ";
    for (std::size_t i = 0; i < lines.size(); ++i) {
        out.push_back(lines[i]);
        const std::string t = trim(lines[i]);
        const std::string captured = "<!-- capture: ";
        if (t.rfind(captured, 0) == 0) {
            const auto close = t.find(" -->");
            if (close == std::string::npos)
                throw Failure{page.string() + ":" + std::to_string(i + 1) + ": unclosed marker"};
            const std::string ref = t.substr(captured.size(), close - captured.size());
            std::size_t j = i + 1;
            while (j < lines.size() && trim(lines[j]) != "<!-- end capture -->") ++j;
            if (j == lines.size()) {
                throw Failure{page.string() + ":" + std::to_string(i + 1) + ": no '<!-- end capture -->' after " + ref};
            }
            out.push_back("```text");
            for (auto& l : capture(root, ref)) out.push_back(l);
            out.push_back("```");
            out.push_back(lines[j]);
            i = j;
            ++blocks;
            continue;
        }
        if (t.rfind(start, 0) != 0) continue;
        const auto close = t.find(" -->");
        if (close == std::string::npos)
            throw Failure{page.string() + ":" + std::to_string(i + 1) + ": unclosed marker"};
        const std::string ref = t.substr(start.size(), close - start.size());
        std::size_t j = i + 1;
        while (j < lines.size() && trim(lines[j]) != "<!-- end snippet -->") ++j;
        if (j == lines.size()) {
            throw Failure{page.string() + ":" + std::to_string(i + 1) + ": no '<!-- end snippet -->' after " + ref};
        }
        out.push_back("```" + language(ref));
        for (auto& l : region(root, ref)) out.push_back(l);
        out.push_back("```");
        out.push_back(lines[j]);
        i = j;
        ++blocks;
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3 || (std::string(argv[1]) != "--check" && std::string(argv[1]) != "--write")) {
        std::cerr << "usage: docs_sync --check|--write ROOT\n";
        return 2;
    }
    const bool write = std::string(argv[1]) == "--write";
    const fs::path root = argv[2];
    try {
        std::vector<fs::path> pages;
        if (fs::exists(root / "README.md")) pages.push_back(root / "README.md");
        for (const auto& e : fs::directory_iterator(root / "docs")) {
            if (e.path().extension() == ".md") pages.push_back(e.path());
        }
        std::sort(pages.begin(), pages.end());
        int drifted = 0;
        int blocks = 0;
        for (const auto& page : pages) {
            const auto now = read_lines(page);
            const auto fresh = refresh(root, page, blocks);
            if (now == fresh) continue;
            if (write) {
                std::ofstream out(page);
                for (const auto& l : fresh) out << l << '\n';
                std::cout << "refreshed " << fs::relative(page, root).string() << '\n';
            } else {
                std::size_t k = 0;
                while (k < now.size() && k < fresh.size() && now[k] == fresh[k]) ++k;
                std::cerr << fs::relative(page, root).string() << ":" << k + 1
                          << ": quoted code differs from its source (run ./course docs)\n"
                          << "  page:   " << (k < now.size() ? now[k] : "<end>") << "\n"
                          << "  source: " << (k < fresh.size() ? fresh[k] : "<end>") << '\n';
                ++drifted;
            }
        }
        if (!write) {
            if (drifted != 0) return 1;
            std::cout << "docs in sync: " << blocks << " quoted blocks in " << pages.size() << " pages\n";
        }
        return 0;
    } catch (const Failure& f) {
        std::cerr << "docs_sync: " << f.message << '\n';
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "docs_sync: " << e.what() << '\n';
        return 1;
    }
}
