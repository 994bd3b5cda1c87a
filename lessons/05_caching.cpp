// Lesson 05 — keep results on disk: a cache of function calls.
//
// Mirrors notebook cells In[8]-In[9]: `mem = Memory(cachedir)`,
// `square = mem.cache(np.square)`, `b = square(a)` prints `[Memory] Calling
// square...`; `c = square(a)` prints nothing: the result came from disk.
// Question: what does a cache hit cost, in this process and in a new one,
// and what makes a hit slow? Run it: ./course lesson 5 (or --n 1000000 --format csv)
// You should see: joblib's lines once, then nothing for the same call; the mean takes ~0.3 s
// to compute and µs to load, in a new process too; 80 MB load faster into huge pages than into
// a std::vector, and a mapped hit costs little until its pages are read.
#include <cstring>     // std::memcmp
#include <filesystem>  // std::filesystem::path
#include <iostream>    // std::cout
#include <string>      // std::string
#include <vector>      // std::vector

#include "05_caching.conclude.hpp"      // conclude: what the table says, chosen from its numbers
#include "corelab/cli.hpp"              // Cli, run_lesson: the shared command line
#include "corelab/cpu_info.hpp"         // format_size
#include "corelab/dataset.hpp"          // make_uniform: the numbers of lesson 02
#include "corelab/memory.hpp"           // Memory: the disk cache
#include "corelab/notebook.hpp"         // run_cell: joblib's Memory timed here
#include "corelab/process_workers.hpp"  // ProcessWorkers: the new process of cache_hit_new_process
#include "corelab/reduce.hpp"           // sum_fast
#include "corelab/report.hpp"           // best_of, Report

namespace {

using Matrix = std::vector<std::vector<double>>;

// np.square: every element times itself.
Matrix square_fn(const Matrix& a) {
    Matrix b = a;
    for (auto& row : b)
        for (double& x : row) x *= x;
    return b;
}

// The slow function of lesson 02, from its inputs: the mean of n numbers.
double mean_fn(std::size_t n, std::uint64_t seed) {
    return corelab::sum_fast(corelab::make_uniform(n, seed)).mean();
}

// Times `call` in a forked child: a fresh process that opens the cache itself.
template <class F>
corelab::Timed<double> in_new_process(F call) {
    struct Answer {
        double seconds, value;
    };
    const Answer answer = corelab::ProcessWorkers(1).run([&](unsigned) {
        const corelab::Stopwatch watch;
        const double value = call();
        return Answer{watch.seconds(), value};
    })[0];
    corelab::Timed<double> t;
    t.seconds = answer.seconds;
    t.value = answer.value;
    return t;
}

void lesson(const corelab::LessonOptions& opt) {
    corelab::Report report(opt, std::cout);
    const std::filesystem::path dir = opt.word("cachedir");
    corelab::check_lesson_memory("n", opt.n, {.bytes_per_element = sizeof(double)},
                                 "lesson 05 at n = " + std::to_string(opt.n) + " (the numbers the slow mean makes)");
    report.say("Lesson 05: a disk cache of function results (notebook In[8]-In[9]), in " + dir.string() + "\n");

    // the notebook's cell: square a 3x3 matrix twice
    // [docs:notebook]
    const corelab::Memory mem{dir, {.verbose = opt.format == corelab::Format::table ? 1 : 0}};
    if (!opt.given("keep-cache")) mem.clear();  // so the first call computes, as in the notebook
    auto square = mem.cache("square", square_fn, {.version = "1"});
    const Matrix a = {{0, 0, 1}, {1, 1, 1}, {4, 2, 1}};  // np.vander(np.arange(3)).astype(float)
    const Matrix b = square(a);                          // prints [Memory] Calling square...
    const Matrix c = square(a);                          // prints nothing: loaded from disk
    // [docs:end]
    if (b != square_fn(a) || c != b) throw corelab::Error("square(a) from the cache differs from a*a");
    report.say(
        "\nThe second call printed nothing and returned the same matrix, as In[9] did. The notebook\n"
        "printed `square - 0.0s, 0.0min` for the first call: squaring 9 numbers takes no time; the\n"
        "cache pays only when the function is slow. So cache the slow mean of lesson 02:\n");

    // a slow function, cached: the first call computes, the next ones load
    // [docs:mean]
    auto mean = mem.cache("mean", mean_fn, {.version = "1"});
    corelab::Stopwatch watch;
    const double computed = mean(opt.n, opt.seed);
    const double compute_seconds = watch.seconds();
    const auto hit = corelab::best_of(opt.repeat, [&] { return mean(opt.n, opt.seed); });
    const auto fresh = in_new_process([&] {
        const corelab::Memory other{dir, {.verbose = 0}};
        return other.cache("mean", mean_fn, {.version = "1"})(opt.n, opt.seed);
    });
    // [docs:end]
    if (hit.value != computed || fresh.value != computed) throw corelab::Error("a cached mean differs");

    // a large result: n/10 doubles (80 MB at the default n) in huge pages or in a std::vector, or mapped
    // [docs:large]
    const std::size_t large_n = std::max<std::size_t>(opt.n / 10, 1);
    const auto uniform = [](std::size_t n, std::uint64_t s) { return corelab::make_uniform(n, s); };
    auto huge = mem.cache("uniform_huge", uniform);
    auto vec = mem.cache("uniform_vector", [](std::size_t n, std::uint64_t s) {
        const auto d = corelab::make_uniform(n, s);
        return std::vector<double>(d.begin(), d.end());
    });
    auto mapped = mem.cache_mapped("uniform_mapped", uniform);             // hits map the entry's file: no copy
    const corelab::HugeArray<double> reference = huge(large_n, opt.seed);  // computes and stores
    (void)vec(large_n, opt.seed);
    (void)mapped(large_n, opt.seed);
    const auto huge_hit = corelab::best_of(opt.repeat, [&] { return huge(large_n, opt.seed); });
    const auto vec_hit = corelab::best_of(opt.repeat, [&] { return vec(large_n, opt.seed); });
    const auto map_hit = corelab::best_of(opt.repeat, [&] { return mapped(large_n, opt.seed); });
    const auto map_read = corelab::best_of(opt.repeat, [&] { return corelab::sum_fast(mapped(large_n, opt.seed)); });
    // [docs:end]
    const std::size_t bytes = large_n * sizeof(double);
    for (const double* got : {huge_hit.value.data(), vec_hit.value.data(), map_hit.value.data()})
        if (std::memcmp(got, reference.data(), bytes) != 0) throw corelab::Error("a cached large result differs");
    const double large_mean = corelab::sum_fast(reference).mean();

    report.say(
        "\nWhat a hit costs: hashing the arguments (XXH3), opening the entry, checking its header, key and\n"
        "checksum, and copying the result into memory (a mapped hit maps the file instead). Watch for: large\n"
        "arguments (hashed on every call), large results, and invalidation: change {.version} when the\n"
        "function's code changes. Entries live in " +
        dir.string() + "/<function>/<key>/;\nrun again with --keep-cache to start from them.\n");

    report.baseline("compute", compute_seconds, computed);
    report.add("cache_hit", hit, hit.value);
    report.add("cache_hit_new_process", fresh, fresh.value);
    report.add_uncompared("cache_hit_large", huge_hit, large_mean).bytes = double(bytes);
    report.add_uncompared("cache_hit_large_vector", vec_hit, large_mean).bytes = double(bytes);
    report.add_uncompared("cache_hit_large_mapped", map_hit, large_mean).bytes = double(bytes);
    report.add_uncompared("cache_hit_large_mapped_read", map_read, map_read.value.mean()).bytes = double(bytes);
    corelab::notebook::report_python(report,
                                     corelab::notebook::run_cell("cache", double(opt.n), double(opt.n), opt.seed));
    report.conclude(conclude);
    report.print();
}

}  // namespace

int main(int argc, char** argv) {
    corelab::Cli cli("lesson05_caching", "a disk cache of function results: joblib.Memory in C++");
    cli.with_conclusion(conclude);
    cli.text("cachedir", corelab::beside_program("lesson05_cache").string(),
             "the cache directory: a new or empty one (created with mode 0700 and marked as a cache), or a cache made "
             "here before; a symlink or a directory holding other files is refused");
    cli.flag("keep-cache", "do not clear the cache first: results of earlier runs are loaded");
    return corelab::run_lesson(argc, argv, cli, lesson);
}
