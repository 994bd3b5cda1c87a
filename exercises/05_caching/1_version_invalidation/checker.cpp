// Checker of exercise 05.1: calls counted across revisions in a fresh cache.
#include <corelab/memory.hpp>  // Memory
#include <cstdlib>             // mkdtemp
#include <filesystem>          // std::filesystem::remove_all
#include <string>              // std::string

#include "check.hpp"
#include "exercise.hpp"

int transform_calls = 0;

std::vector<double> transform(const std::vector<double>& a, int revision) {
    ++transform_calls;
    std::vector<double> out;
    for (double x : a) out.push_back(revision == 1 ? x * x : x * x * x);
    return out;
}

namespace {
// A temporary cache directory, removed however the check ends.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string name = (std::filesystem::temp_directory_path() / "corelab_ex05_XXXXXX").string();
        check::expect(::mkdtemp(name.data()) != nullptr, "cannot make a temporary directory");
        path = name;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

void expect_call(const corelab::Memory& memory, const std::vector<double>& a, int revision, int calls,
                 const char* what) {
    const auto got = cached_transform(memory, a, revision);
    check::expect(got == transform(a, revision),
                  check::str(what, ": revision ", revision, " returned ", got.empty() ? 0.0 : got[1],
                             " for 2, expected ", revision == 1 ? 4.0 : 8.0));
    --transform_calls;  // not the call above
    check::expect(transform_calls == calls,
                  check::str(what, ": transform ran ", transform_calls, " times in all, expected ", calls));
}
}  // namespace

void run_check() {
    TempDir dir;
    const corelab::Memory memory(dir.path, {.verbose = 0});
    const std::vector<double> a = {1.0, 2.0, 3.0};
    expect_call(memory, a, 1, 1, "the first call (a miss)");
    expect_call(memory, a, 1, 1, "the same call again (a hit)");
    expect_call(memory, a, 2, 2, "after the code changed to revision 2");
    expect_call(memory, a, 2, 2, "revision 2 again (a hit)");
    expect_call(memory, a, 1, 2, "back to revision 1 (its entry is still there)");
    expect_call(memory, {4.0, 2.0}, 2, 3, "other arguments");
    check::note(check::str("cache size on disk: ", memory.size_on_disk(), " bytes"));
}
