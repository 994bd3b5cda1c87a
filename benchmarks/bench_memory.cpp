// bench_memory — what a cache hit of corelab::Memory costs, beside joblib's.
//
// Rows: a hit on the notebook's 3x3 matrix; a hit on square(a) for 80 MB of
// doubles with the result in a HugeArray and in a std::vector, and mapped
// (Memory::cache_mapped: every byte checked once per file identity, or on
// every hit, and the mapped hit then read once); XXH3-128 throughput on
// 80 MB alone and as the key builder runs it (two hashes).
// Then, in the same run, joblib's Memory on the same sizes (Debian's
// python3-joblib and python3-numpy for /usr/bin/python3, or the interpreter
// named by CORELAB_PYTHON; "not installed" otherwise), and the ratios
// against the goals of issue 5: >= 20x on the 3x3 hit, >= 5x on 80 MB.
#include <benchmark/benchmark.h>  // Google Benchmark
#include <sys/wait.h>             // WEXITSTATUS

#define XXH_INLINE_ALL
#include <xxhash.h>  // XXH3_128bits: the raw hash throughput

#include <algorithm>   // std::sort
#include <cstdio>      // std::popen, std::printf
#include <cstdlib>     // mkdtemp, std::getenv
#include <filesystem>  // std::filesystem
#include <map>         // std::map
#include <sstream>     // std::istringstream
#include <string>      // std::string
#include <utility>     // std::pair
#include <vector>      // std::vector

#include "bench_support.hpp"                  // print_goal
#include "corelab/detail/memory_testing.hpp"  // memory_test_hooks: a mapped hit that checks every byte
#include "corelab/memory.hpp"                 // Memory, HugeArray, MappedArray
#include "corelab/report.hpp"                 // format_seconds

namespace fs = std::filesystem;

namespace {

constexpr std::size_t large_n = 10'000'000;  // 80 MB of doubles

using Matrix = std::vector<std::vector<double>>;

const fs::path& cache_dir() {
    static const fs::path dir = [] {
        std::string t = (fs::temp_directory_path() / "corelab-bench-memory-XXXXXX").string();
        if (::mkdtemp(t.data()) == nullptr) throw corelab::Error("cannot create a temporary directory");
        return fs::path(t);
    }();
    return dir;
}

const corelab::Memory& memory() {
    static const corelab::Memory mem{cache_dir() / "cache", {.verbose = 0}};
    return mem;
}

const corelab::HugeArray<double>& large_input() {
    static const corelab::HugeArray<double> a = [] {
        corelab::HugeArray<double> x(large_n);
        for (std::size_t i = 0; i < large_n; ++i) x[i] = static_cast<double>(i % 1000) * 0.001;
        return x;
    }();
    return a;
}

void hit_3x3(benchmark::State& state) {
    auto square = memory().cache("square", [](const Matrix& a) {
        Matrix b = a;
        for (auto& row : b)
            for (double& x : row) x *= x;
        return b;
    });
    const Matrix a = {{0, 0, 1}, {1, 1, 1}, {4, 2, 1}};
    square(a);  // the miss: computes and stores
    for (auto _ : state) benchmark::DoNotOptimize(square(a));
}

void hit_80mb_huge(benchmark::State& state) {
    auto square = memory().cache("square_huge", [](const corelab::HugeArray<double>& a) {
        corelab::HugeArray<double> b(a.size());
        for (std::size_t i = 0; i < a.size(); ++i) b[i] = a[i] * a[i];
        return b;
    });
    square(large_input());
    for (auto _ : state) benchmark::DoNotOptimize(square(large_input()).data());
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * large_n * sizeof(double)));
}

void hit_80mb_vector(benchmark::State& state) {
    auto square = memory().cache("square_vector", [](const corelab::HugeArray<double>& a) {
        std::vector<double> b(a.size());
        for (std::size_t i = 0; i < a.size(); ++i) b[i] = a[i] * a[i];
        return b;
    });
    square(large_input());
    for (auto _ : state) benchmark::DoNotOptimize(square(large_input()).data());
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * large_n * sizeof(double)));
}

corelab::HugeArray<double> square_huge(const corelab::HugeArray<double>& a) {
    corelab::HugeArray<double> b(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) b[i] = a[i] * a[i];
    return b;
}

// A mapped hit: header, key and length checked; every byte hashed the first
// time this process sees this version of the file (the warm-up call).
void hit_80mb_mapped(benchmark::State& state) {
    auto square = memory().cache_mapped("square_mapped", square_huge);
    square(large_input());
    for (auto _ : state) benchmark::DoNotOptimize(square(large_input()).data());
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * large_n * sizeof(double)));
}

// The same, hashing every byte of the mapped file on every hit.
void hit_80mb_mapped_checksummed(benchmark::State& state) {
    auto square = memory().cache_mapped("square_mapped", square_huge);
    square(large_input());
    corelab::detail::memory_test_hooks().full_checksum_on_mapped_hits = true;
    for (auto _ : state) benchmark::DoNotOptimize(square(large_input()).data());
    corelab::detail::memory_test_hooks().full_checksum_on_mapped_hits = false;
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * large_n * sizeof(double)));
}

// A mapped hit whose view is then summed once: the page faults a mapping defers.
void hit_80mb_mapped_then_read(benchmark::State& state) {
    auto square = memory().cache_mapped("square_mapped", square_huge);
    square(large_input());
    for (auto _ : state) {
        const auto view = square(large_input());
        double sum = 0;
        for (const double x : view) sum += x;
        benchmark::DoNotOptimize(sum);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * large_n * sizeof(double)));
}

void hash_xxh3_80mb(benchmark::State& state) {
    const auto& a = large_input();
    for (auto _ : state) benchmark::DoNotOptimize(XXH3_128bits(a.data(), a.size() * sizeof(double)));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * large_n * sizeof(double)));
}

void hash_key_80mb(benchmark::State& state) {
    const auto& a = large_input();
    for (auto _ : state) {
        corelab::detail::KeyBuilder key("square", "0");
        key.write(a.data(), a.size() * sizeof(double));
        benchmark::DoNotOptimize(key.finish());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * large_n * sizeof(double)));
}

// Keeps the median time of every row while printing as usual.
class Collector : public benchmark::ConsoleReporter {
public:
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const auto& r : runs) {
            if (r.run_type != Run::RT_Iteration) continue;
            const std::string name = r.benchmark_name();  // "hit_3x3/repeats:5": keep "hit_3x3"
            seconds[name.substr(0, name.find('/'))].push_back(r.GetAdjustedRealTime() /
                                                              benchmark::GetTimeUnitMultiplier(r.time_unit));
        }
        ConsoleReporter::ReportRuns(runs);
    }
    double median(const std::string& name) const {
        auto it = seconds.find(name);
        if (it == seconds.end() || it->second.empty()) return -1;
        auto v = it->second;
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    }
    std::map<std::string, std::vector<double>> seconds;
};

// joblib's Memory on the same calls, timed in Python: the median of many hits.
constexpr const char* joblib_script = R"PY(
import sys, tempfile, time, statistics
try:
    import joblib, numpy as np
except ImportError:
    print("missing"); sys.exit(0)
d = tempfile.mkdtemp(prefix="corelab-bench-joblib-")
mem = joblib.Memory(d, verbose=0)
square = mem.cache(np.square)
def median_hit(a, reps):
    square(a)
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); square(a); ts.append(time.perf_counter() - t)
    return statistics.median(ts)
small = np.vander(np.arange(3)).astype(float)
large = (np.arange(10_000_000) % 1000) * 0.001
print("version", joblib.__version__)
print("hit_3x3", median_hit(small, 300))
print("hit_80mb", median_hit(large, 9))
mem.clear(warn=False)
mem = joblib.Memory(d, mmap_mode="r", verbose=0)
square = mem.cache(np.square)
print("hit_80mb_mmap", median_hit(large, 9))
mem.clear(warn=False)
import shutil; shutil.rmtree(d, ignore_errors=True)
)PY";

std::map<std::string, std::string> run_joblib() {
    std::map<std::string, std::string> out;
    const fs::path script = cache_dir() / "joblib_peer.py";
    {
        std::FILE* f = std::fopen(script.c_str(), "w");
        if (f == nullptr) return out;
        std::fputs(joblib_script, f);
        std::fclose(f);
    }
    // Debian's python3-joblib installs for /usr/bin/python3, not for a python3 earlier on
    // PATH; CORELAB_PYTHON names another interpreter.
    const char* chosen = std::getenv("CORELAB_PYTHON");
    const std::string python = chosen != nullptr                ? chosen
                               : fs::exists("/usr/bin/python3") ? "/usr/bin/python3"
                                                                : "python3";
    std::FILE* p = ::popen((python + " " + script.string() + " 2>/dev/null").c_str(), "r");
    if (p == nullptr) return out;
    char line[256];
    while (std::fgets(line, sizeof line, p) != nullptr) {
        std::istringstream in(line);
        std::string key, value;
        if (in >> key) {
            in >> value;
            out[key] = value;
        }
    }
    ::pclose(p);
    return out;
}

// The mapped hit beside joblib's copying hit and joblib's own mmap_mode='r' hit: its rows of
// the table, and its goals with their ratios (printed after the table, with the others).
struct MappedGoal {
    const char* what;
    double ratio;  // joblib's time over ours; not positive: a row is missing
    double goal;
};

std::vector<MappedGoal> compare_mapped(const Collector& c, const std::map<std::string, std::string>& peer) {
    const double ours = c.median("hit_80mb_mapped"), checked = c.median("hit_80mb_mapped_checksummed");
    const double read = c.median("hit_80mb_mapped_then_read");
    const auto theirs = [&](const char* key) {
        return peer.count(key) != 0 ? std::strtod(peer.at(key).c_str(), nullptr) : -1.0;
    };
    if (ours <= 0) return {};
    std::printf("  %-38s %12s\n", "hit, 80 MB of doubles (mmap_mode)", corelab::format_seconds(ours).c_str());
    if (checked > 0) {
        std::printf("  %-38s %12s  (every byte hashed on every hit)\n", "  the same, checksum on every hit",
                    corelab::format_seconds(checked).c_str());
    }
    if (read > 0) {
        std::printf("  %-38s %12s  (the mapping's page faults)\n", "  the same, then summed once",
                    corelab::format_seconds(read).c_str());
    }
    std::vector<MappedGoal> goals;
    const struct {
        const char* what;
        double theirs;
        double goal;
    } rows[] = {{"mapped hit vs joblib's copying hit", theirs("hit_80mb"), 20.0},
                {"mapped hit vs joblib's mmap_mode='r'", theirs("hit_80mb_mmap"), 2.0}};
    for (const auto& g : rows) {
        goals.push_back({g.what, g.theirs > 0 ? g.theirs / ours : -1.0, g.goal});
        if (g.theirs <= 0) continue;
        std::printf("  %-38s %12s %14s %8.1fx %6.0fx\n", g.what, corelab::format_seconds(ours).c_str(),
                    corelab::format_seconds(g.theirs).c_str(), g.theirs / ours, g.goal);
    }
    return goals;
}

void compare(const Collector& c) {
    const auto peer = run_joblib();
    std::printf("\ncorelab::Memory beside joblib.Memory, same machine, same run (medians):\n");
    if (peer.count("version") == 0) {
        std::printf("  joblib: not installed (apt-get install python3-joblib python3-numpy to compare)\n");
        return;
    }
    struct Line {
        const char* what;
        std::string ours;
        const char* theirs;
        double goal;
    };
    const Line lines[] = {{"hit, 3x3 matrix", "hit_3x3", "hit_3x3", 20.0},
                          {"hit, 80 MB of doubles (HugeArray)", "hit_80mb_huge", "hit_80mb", 5.0},
                          {"hit, 80 MB of doubles (std::vector)", "hit_80mb_vector", "hit_80mb", 0.0}};
    std::printf("  %-38s %12s %14s %9s %7s\n", "", "corelab", ("joblib " + peer.at("version")).c_str(), "ratio",
                "goal");
    std::vector<std::pair<const Line*, double>> goals;  // each line with a goal, and its ratio
    for (const Line& l : lines) {
        const double ours = c.median(l.ours);
        const double theirs = peer.count(l.theirs) != 0 ? std::strtod(peer.at(l.theirs).c_str(), nullptr) : -1;
        const double ratio = ours > 0 && theirs > 0 ? theirs / ours : -1;
        if (l.goal > 0) goals.emplace_back(&l, ratio);
        if (ratio <= 0) continue;
        std::printf("  %-38s %12s %14s %8.1fx ", l.what, corelab::format_seconds(ours).c_str(),
                    corelab::format_seconds(theirs).c_str(), ratio);
        if (l.goal > 0) {
            std::printf("%6.0fx\n", l.goal);
        } else {
            std::printf("%7s (4 KB page faults: why large results go to a HugeArray)\n", "-");
        }
    }
    const auto mapped_goals = compare_mapped(c, peer);
    for (const auto& [l, ratio] : goals) {
        char what[128];
        std::snprintf(what, sizeof what, "%s at least %.0fx faster than joblib's", l->what, l->goal);
        corelab::bench::print_goal(what, ratio, l->goal);
    }
    for (const MappedGoal& g : mapped_goals) {
        char what[128];
        std::snprintf(what, sizeof what, "%s at least %.0fx faster", g.what, g.goal);
        corelab::bench::print_goal(what, g.ratio, g.goal);
    }
}

}  // namespace

BENCHMARK(hit_3x3)->Repetitions(5)->ReportAggregatesOnly(false);
BENCHMARK(hit_80mb_huge)->Unit(benchmark::kMillisecond)->Repetitions(5);
BENCHMARK(hit_80mb_vector)->Unit(benchmark::kMillisecond)->Repetitions(5);
BENCHMARK(hit_80mb_mapped)->Unit(benchmark::kMillisecond)->Repetitions(5);
BENCHMARK(hit_80mb_mapped_checksummed)->Unit(benchmark::kMillisecond)->Repetitions(5);
BENCHMARK(hit_80mb_mapped_then_read)->Unit(benchmark::kMillisecond)->Repetitions(5);
BENCHMARK(hash_xxh3_80mb)->Unit(benchmark::kMillisecond)->Repetitions(3);
BENCHMARK(hash_key_80mb)->Unit(benchmark::kMillisecond)->Repetitions(3);

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    int status = 0;
    try {
        Collector collector;
        benchmark::RunSpecifiedBenchmarks(&collector);
        compare(collector);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_memory: %s\n", e.what());
        status = 1;
    }
    std::error_code ec;
    fs::remove_all(cache_dir(), ec);
    benchmark::Shutdown();
    return status;
}
