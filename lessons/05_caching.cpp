// Lesson 05 — keep results on disk: a cache of function calls.
//
// Mirrors notebook cells In[8]-In[9]: `mem = Memory(cachedir)`,
// `square = mem.cache(np.square)`, `b = square(a)` prints `[Memory] Calling
// square...`; `c = square(a)` prints nothing: the result came from disk.
// Question: what does a cache hit cost, in this process and in a new one,
// and what makes a hit slow?
//
// Run it:  ./course lesson 5          (or --n 1000000 --cachedir /tmp/c --format csv)
// You should see: joblib's lines once, then nothing for the same call; the mean
// of n numbers takes ~0.3 s to compute and tens of µs to load, in a new process
// too; 80 MB of results load several times faster into huge pages than into a
// std::vector.
#include <sys/wait.h>  // waitpid
#include <unistd.h>    // fork, pipe, _exit

#include <cstring>     // std::memcmp
#include <filesystem>  // std::filesystem::path
#include <iostream>    // std::cout
#include <string>      // std::string
#include <vector>      // std::vector

#include "corelab/children.hpp"  // flush_stdio: before a fork and before a child's _exit
#include "corelab/cli.hpp"       // Cli, run_lesson: the shared command line
#include "corelab/cpu_info.hpp"  // format_size
#include "corelab/dataset.hpp"   // make_uniform: the numbers of lesson 02
#include "corelab/memory.hpp"    // Memory: the disk cache
#include "corelab/notebook.hpp"  // run_cell: joblib's Memory timed here
#include "corelab/reduce.hpp"    // sum_fast
#include "corelab/report.hpp"    // best_of, Report

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
    int fds[2];
    if (::pipe(fds) != 0) throw corelab::Error("cannot create a pipe");
    corelab::flush_stdio();  // or the child would print this process's unwritten output again
    const pid_t pid = ::fork();
    if (pid == 0) {  // the child: time one call, send {seconds, result}, never return
        double out[2] = {-1.0, 0.0};
        try {
            corelab::Stopwatch watch;
            out[1] = call();
            out[0] = watch.seconds();
        } catch (...) {
        }
        corelab::flush_stdio();  // _exit flushes nothing: what the call printed would be lost
        ::_exit(::write(fds[1], out, sizeof out) == static_cast<ssize_t>(sizeof out) ? 0 : 1);
    }
    ::close(fds[1]);
    double in[2] = {-1.0, 0.0};
    const bool got = pid > 0 && ::read(fds[0], in, sizeof in) == static_cast<ssize_t>(sizeof in);
    ::close(fds[0]);
    if (pid > 0) ::waitpid(pid, nullptr, 0);
    if (!got || in[0] < 0) throw corelab::Error("the child process could not load the result");
    corelab::Timed<double> t;
    t.seconds = in[0];
    t.value = in[1];
    return t;
}

// What the table says: chosen from its numbers (tests feed it recorded tables).
std::vector<std::string> conclude(const corelab::Table& t) {
    using corelab::format_seconds, corelab::format_speedup;
    const corelab::Row &hit = t.at("cache_hit"), &huge = t.at("cache_hit_large");
    const double gain = t.speedup("cache_hit"), pages = t.seconds("cache_hit_large_vector") / huge.seconds;
    const std::string against = " than computing the mean (" + format_seconds(t.seconds("compute")) + ")";
    std::vector<std::string> said{
        "A hit took " + format_seconds(hit.seconds) + ", " +
            (gain > 2      ? format_speedup(gain) + " faster" + against + ": the cache pays."
             : gain > 1.05 ? "only " + format_speedup(gain) + " faster" + against +
                                 ": at this n the work is too small "
                                 "to be worth caching."
                           : "no faster" + against + ": at this n the work is too small to be worth caching."),
        "In a new process a hit took " + format_seconds(t.seconds("cache_hit_new_process")) +
            ": it opens the cache and reads the entry from the page cache, not from the computation."};
    const std::string size = corelab::format_size(static_cast<std::uint64_t>(huge.bytes.value_or(0)));
    if (pages > 1.3) {
        said.push_back(size + " of results loaded " + format_speedup(pages) +
                       " faster into a HugeArray (2 MB pages) than into a std::vector, which page-faults every 4 KB.");
    } else {
        said.push_back(size + " of results loaded about as fast into a std::vector as into a HugeArray (" +
                       format_speedup(pages) +
                       "): at this size, or without huge pages, the page faults do not decide.");
    }
    if (const corelab::Row* py = t.find("python_cache_hit")) {
        said.push_back("joblib's hit, here: " + format_seconds(py->seconds) + ", " +
                       format_speedup(py->seconds / hit.seconds) + " as long as this cache's.");
    }
    return said;
}

void lesson(const corelab::LessonOptions& opt) {
    corelab::Report report(opt, std::cout);
    const std::filesystem::path dir = opt.extra["cachedir"].as<std::string>();
    corelab::check_lesson_memory("n", opt.n, {.bytes_per_element = sizeof(double)},
                                 "lesson 05 at n = " + std::to_string(opt.n) + " (the numbers the slow mean makes)");
    report.say("Lesson 05: a disk cache of function results (notebook In[8]-In[9]), in " + dir.string() + "\n");

    // the notebook's cell: square a 3x3 matrix twice
    // [docs:notebook]
    const corelab::Memory mem{dir, {.verbose = opt.format == corelab::Format::table ? 1 : 0}};
    if (opt.extra.count("keep-cache") == 0) mem.clear();  // so the first call computes, as in the notebook
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

    // a large result: n/10 doubles (80 MB at the default n) in huge pages or in a std::vector
    // [docs:large]
    const std::size_t large_n = std::max<std::size_t>(opt.n / 10, 1);
    auto huge = mem.cache("uniform_huge", [](std::size_t n, std::uint64_t s) { return corelab::make_uniform(n, s); });
    auto vec = mem.cache("uniform_vector", [](std::size_t n, std::uint64_t s) {
        const auto d = corelab::make_uniform(n, s);
        return std::vector<double>(d.begin(), d.end());
    });
    const corelab::HugeArray<double> reference = huge(large_n, opt.seed);  // computes and stores
    (void)vec(large_n, opt.seed);
    const auto huge_hit = corelab::best_of(opt.repeat, [&] { return huge(large_n, opt.seed); });
    const auto vec_hit = corelab::best_of(opt.repeat, [&] { return vec(large_n, opt.seed); });
    // [docs:end]
    const std::size_t bytes = large_n * sizeof(double);
    if (std::memcmp(huge_hit.value.data(), reference.data(), bytes) != 0 ||
        std::memcmp(vec_hit.value.data(), reference.data(), bytes) != 0) {
        throw corelab::Error("a cached large result differs from the computed one");
    }
    const double large_mean = corelab::sum_fast(reference).mean();

    report.say(
        "\nWhat a hit costs: hashing the arguments (XXH3), opening the entry, checking its header, key and\n"
        "checksum, and copying the result into memory. Watch for: arguments that are large to hash (they are\n"
        "hashed on every call), results that are large to load, and invalidation: change {.version} when\n"
        "the function's code changes, or old results come back. Entries live in " +
        dir.string() + "/<function>/<key>/;\nrun again with --keep-cache to start from them.\n");

    report.baseline("compute", compute_seconds, computed);
    report.add("cache_hit", hit, hit.value);
    report.add("cache_hit_new_process", fresh, fresh.value);
    report.add_uncompared("cache_hit_large", huge_hit, large_mean).bytes = double(bytes);
    report.add_uncompared("cache_hit_large_vector", vec_hit, large_mean).bytes = double(bytes);
    corelab::notebook::report_python(report,
                                     corelab::notebook::run_cell("cache", double(opt.n), double(opt.n), opt.seed));
    report.conclude(conclude);
    report.print();
}

std::string default_cachedir() {
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ((ec ? std::filesystem::current_path() : exe.parent_path()) / "lesson05_cache").string();
}

}  // namespace

int main(int argc, char** argv) {
    corelab::Cli cli("lesson05_caching", "a disk cache of function results: joblib.Memory in C++");
    cli.with_conclusion(conclude);
    cli.add_options()("cachedir", boost::program_options::value<std::string>()->default_value(default_cachedir()),
                      "the cache directory: a new or empty one (created with mode 0700 and marked as a cache), or a "
                      "cache made here before; a symlink or a directory holding other files is refused")(
        "keep-cache", "do not clear the cache first: results of earlier runs are loaded");
    return corelab::run_lesson(argc, argv, cli, lesson);
}
