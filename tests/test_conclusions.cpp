// The lessons' conclusions, chosen from their tables: each lesson's pure
// conclusion function is fed a recorded table (`lessonNN --conclude FILE`,
// tests/data/results/: a run recorded on the course VM while another build ran,
// and a copy of it marked quiet) with rows changed to reach every branch. A
// sentence must follow its numbers: "threads scaled like processes" never
// under a 0.96x row, a busy machine never explained as the machine's.
#include <doctest/doctest.h>
#include <stdlib.h>  // mkstemp
#include <unistd.h>  // close, unlink

#include <algorithm>  // std::find
#include <cstdio>     // std::snprintf
#include <fstream>    // std::ifstream, std::ofstream
#include <map>        // std::map
#include <sstream>    // std::ostringstream
#include <string>     // std::string
#include <vector>     // std::vector

#include "support/subprocess.hpp"

using corelab::test::Outcome;
using corelab::test::run;

namespace {

const std::string quiet = std::string(CORELAB_TEST_DATA) + "/results/20261201T110000Z-lab/";
const std::string busy = std::string(CORELAB_TEST_DATA) + "/results/20261201T103000Z-vm/";

// A recorded table with some rows' times set (best, median, every run), rows dropped, or a
// column set on every row (other_cpus, cpus, n, lesson_workers), rows added (a copy of a recorded
// row under a new name, before its time is set), then the lesson's conclusions.
struct Edit {
    std::map<std::string, double> seconds;         // row -> its time
    std::vector<std::string> drop;                 // rows to leave out
    std::map<std::string, std::string> every_row;  // column -> value
    std::map<std::string, std::string> results;    // row -> its result
    std::map<std::string, std::string> added;      // new row -> the recorded row it copies
    Edit(std::map<std::string, double> s = {}, std::vector<std::string> d = {},
         std::map<std::string, std::string> e = {}, std::map<std::string, std::string> r = {},
         std::map<std::string, std::string> a = {})
        : seconds(std::move(s)),
          drop(std::move(d)),
          every_row(std::move(e)),
          results(std::move(r)),
          added(std::move(a)) {}
};

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> parts(1);
    for (char c : s) {
        if (c == sep) {
            parts.emplace_back();
        } else {
            parts.back() += c;
        }
    }
    return parts;
}

std::string conclude(const std::string& lesson, const std::string& run_dir, const Edit& edit = {}) {
    std::ifstream in(run_dir + lesson + ".csv");
    REQUIRE(in);
    std::string header, line, text;
    std::getline(in, header);
    const auto columns = split(header, ',');
    const auto column = [&](const std::string& name) {
        for (std::size_t i = 0; i < columns.size(); ++i) {
            if (columns[i] == name) return i;
        }
        FAIL("no column " << name);
        return std::size_t{0};
    };
    text = header + "\n";
    std::vector<std::vector<std::string>> lines;
    while (std::getline(in, line)) {
        const auto recorded = split(line, ',');
        lines.push_back(recorded);
        for (const auto& [name, copied] : edit.added) {
            if (recorded[1] != copied) continue;
            lines.push_back(recorded);
            lines.back()[1] = name;
        }
    }
    for (auto& f : lines) {
        if (std::find(edit.drop.begin(), edit.drop.end(), f[1]) != edit.drop.end()) continue;
        if (auto s = edit.seconds.find(f[1]); s != edit.seconds.end()) {
            char v[32];
            std::snprintf(v, sizeof v, "%.9g", s->second);
            f[column("best_s")] = f[column("median_s")] = f[column("max_s")] = f[column("runs_s")] = v;
        }
        for (const auto& [name, value] : edit.every_row) f[column(name)] = value;
        if (auto r = edit.results.find(f[1]); r != edit.results.end()) f[column("result")] = r->second;
        for (std::size_t i = 0; i < f.size(); ++i) text += (i ? "," : "") + f[i];
        text += "\n";
    }
    char path[] = "/tmp/corelab-conclude-XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::close(fd);
    std::ofstream(path) << text;
    std::vector<std::string> argv{corelab::test::lesson(lesson), "--conclude", path};
#ifdef CORELAB_MPIEXEC
    if (lesson == "08_mpi_mean") {  // one MPI rank; under ASan, Open MPI's own leaks suppressed
        argv.insert(argv.begin(), {"/usr/bin/env", "OMPI_MCA_mca_base_component_disable_dlclose=1",
                                   "LSAN_OPTIONS=" CORELAB_MPI_LSAN_OPTIONS});
    }
#endif
    const Outcome o = run(argv);
    ::unlink(path);
    CAPTURE(o.err);
    REQUIRE(o.exit_code == 0);
    return o.out;
}

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("conclusions 01: what the counts mean, from the counts" * doctest::timeout(60)) {
    const std::string vm = conclude("01_lscpu", quiet);
    CHECK(has(vm, "- 2 hardware threads: at most 2 workers (processes or threads) run at the same instant."));
    CHECK(has(vm, "- 2 physical cores, 1 thread(s) per core."));
    CHECK(has(vm, "Here every hardware thread is a whole core"));
    CHECK_FALSE(has(vm, "Cache sizes are unknown"));
    CHECK(has(vm, "this machine runs 2: expect at most 2x from the parallel lessons here."));
    const std::string laptop =
        conclude("01_lscpu", quiet,
                 {{},
                  {},
                  {},
                  {{"logical_cpus", "8"}, {"physical_cores", "4"}, {"threads_per_core", "2"}, {"l3_cache_bytes", ""}}});
    CHECK(has(laptop, "- 4 physical cores, 2 thread(s) per core."));
    CHECK_FALSE(has(laptop, "whole core"));
    CHECK(has(laptop, "Cache sizes are unknown: this machine exposes no /sys/devices/system/cpu/cpu0/cache"));
    CHECK(has(laptop, "expect at most 4x"));
}

TEST_CASE("conclusions 02: serial_fast's gain, explained only when there is one" * doctest::timeout(60)) {
    const std::string fast = conclude("02_serial_mean", quiet, {{{"serial_loop", 0.1}, {"serial_fast", 0.05}}});
    CHECK(has(fast, "serial_loop read 1.6 GB/s, serial_fast 3.2 GB/s."));
    CHECK(has(fast, "serial_fast was 2.00x faster. In serial_loop every add needs the result of the one before"));
    const std::string same = conclude("02_serial_mean", quiet, {{{"serial_loop", 0.1}, {"serial_fast", 0.095}}});
    CHECK(has(same, "serial_fast was not faster here (1.05x)"));
    CHECK(has(same, "memory or the build did"));
    CHECK_FALSE(has(same, "dependency chain"));
    const std::string busy_same = conclude("02_serial_mean", busy, {{{"serial_loop", 0.1}, {"serial_fast", 0.095}}});
    CHECK(has(busy_same, "other programs shared the CPUs"));
}

TEST_CASE("conclusions 02: the notebook's loop measured here, or the laptop's figure labelled as the laptop's" *
          doctest::timeout(60)) {
    const std::string here = conclude("02_serial_mean", quiet, {{{"serial_loop", 0.1}, {"python_loop", 20.0}}});
    CHECK(has(here,
              "The notebook's Python loop, timed here and scaled to this n, takes 20.00 s: this C++ loop is "
              "200x faster on the same machine."));
    const Edit laptop{{{"serial_loop", 0.1}}, {"python_loop", "python_numpy"}, {{"n", "100000000"}}};
    CHECK(has(conclude("02_serial_mean", quiet, laptop),
              "On the notebook's laptop (Intel i5-8265U, 4 cores, 8 threads) the Python loop took 25.5 s for this n: "
              "255x this machine's C++ loop"));
    const Edit other_n{{}, {"python_loop", "python_numpy"}, {}};
    CHECK(has(conclude("02_serial_mean", quiet, other_n), "(run with the default n to compare)"));
}

TEST_CASE("conclusions 03: processes close to the cores, short of them, no gain, or a busy machine" *
          doctest::timeout(60)) {
    const auto with = [](double two) {
        return conclude("03_two_process_mean", quiet, {{{"serial_loop", 1.0}, {"two_process", 1.0 / two}}});
    };
    CHECK(has(with(1.85), "2 processes made it 1.85x faster, close to the 2x that 2 CPUs allow."));
    CHECK(has(with(1.3), "2 processes made it 1.30x faster, short of the 2x: forking, copying page tables"));
    CHECK(has(with(0.98), "2 processes gained nothing (0.98x): their fixed costs ate the gain."));
    const std::string b = conclude("03_two_process_mean", busy, {{{"serial_loop", 1.0}, {"two_process", 0.8}}});
    CHECK(has(b, "2 processes gave 1.25x on a busy machine (the line above the table): they waited for the CPUs"));
    CHECK_FALSE(has(b, "close to the"));
    CHECK(has(conclude("03_two_process_mean", busy, {{{"serial_loop", 1.0}, {"two_process", 0.55}}}),
              "2 processes gave 1.82x even on a busy machine (the line above the table), close to the 2x"));
}

TEST_CASE("conclusions 03: the fork's cost against the work, the queue, the notebook and the sweep" *
          doctest::timeout(60)) {
    const std::string small =
        conclude("03_two_process_mean", quiet,
                 {{{"serial_loop", 0.1}, {"process_spawn", 0.001}, {"share_fork", 0.05}, {"copy_through_queue", 0.5}}});
    CHECK(has(small, "A fork and reap of this 160 MB process cost 1.0 ms, 1% of the loop's 100.0 ms: small against"));
    CHECK(has(small, "Copying the data through the queue took 10.00x as long as inheriting it (share_fork)."));
    CHECK(has(small, "Its cell here: 0.51x from two Python processes."));
    CHECK(has(small, "Sweep of processes (workers: speed-up): 1: "));
    const std::string large = conclude("03_two_process_mean", quiet,
                                       {{{"serial_loop", 0.01}, {"process_spawn", 0.002}},
                                        {"python_loop", "python_two_process", "sweep_processes_1", "sweep_processes_2",
                                         "sweep_processes_3", "sweep_processes_4"}});
    CHECK(has(large, "20% of the loop's 10.0 ms: large, so processes need a bigger n to pay."));
    CHECK(has(large, "The notebook, on its laptop: 25.5 s for one Python loop, 12.7 s for two processes (2.00x)."));
    CHECK_FALSE(has(large, "Its cell here"));
    CHECK_FALSE(has(large, "--sweep"));
}

TEST_CASE("conclusions 04: threads, the emulated GIL, false sharing" * doctest::timeout(60)) {
    const std::string q = conclude("04_two_thread_mean", quiet,
                                   {{{"serial_loop", 1.0},
                                     {"two_thread", 0.52},
                                     {"two_thread_gil", 1.02},
                                     {"false_sharing", 2.0},
                                     {"padded_slots", 0.5}}});
    CHECK(has(q, "2 threads made it 1.92x faster, close to the 2x that 2 CPUs allow."));
    CHECK(has(q, "Under the emulated GIL the same threads gave 0.98x: one computed at a time, as CPython's"));
    CHECK(has(q, "false_sharing took 4.00x as long as padded_slots for the same adds"));
    CHECK(has(q, "Its cell here") == false);
    CHECK(has(q, "The notebook's cell here: two Python threads gave 1.13x over its loop."));
    CHECK(has(q, "A thread starts and joins in 23.0 µs"));
    CHECK(has(q, "Sweep of threads"));
    const std::string odd =
        conclude("04_two_thread_mean", quiet,
                 {{{"serial_loop", 1.0}, {"two_thread_gil", 0.5}, {"false_sharing", 0.5}, {"padded_slots", 0.5}}});
    CHECK(has(odd,
              "Under the emulated GIL the threads still gained 2.00x, more than taking turns allows: serial_loop "
              "was disturbed on this run; run again."));
    CHECK(has(odd, "false_sharing was not slower than padded_slots here (1.00x): the threads did not share"));
    // 1.22x slower (a run of this machine's): slower, so never "not slower"
    const std::string little =
        conclude("04_two_thread_mean", quiet,
                 {{{"serial_loop", 1.0}, {"two_thread", 0.52}, {"false_sharing", 0.1758}, {"padded_slots", 0.1438}}});
    CHECK(has(little, "false_sharing took only 1.22x as long as padded_slots on this run"));
    CHECK_FALSE(has(little, "not slower"));
    const std::string b =
        conclude("04_two_thread_mean", busy,
                 {{{"serial_loop", 1.0}, {"two_thread_gil", 0.5}, {"false_sharing", 0.5}, {"padded_slots", 0.5}}});
    CHECK(has(b, "other programs slowed serial_loop more than them."));
    CHECK(has(b, "(1.00x): the machine was busy."));
    const std::string one = conclude("04_two_thread_mean", quiet, {{}, {}, {{"lesson_workers", "1"}}});
    CHECK(has(one, "With one thread nobody shares a cache line"));
    CHECK(has(one, "1 threads gained nothing") == false);
}

TEST_CASE("conclusions 05: a hit against the computation, huge pages against a vector, joblib's hit" *
          doctest::timeout(60)) {
    const std::string pays = conclude("05_caching", quiet,
                                      {{{"compute", 0.1},
                                        {"cache_hit", 0.00001},
                                        {"cache_hit_large", 0.01},
                                        {"cache_hit_large_vector", 0.03},
                                        {"python_cache_hit", 0.0002}}});
    CHECK(has(pays, "A hit took 10.0 µs, 10000x faster than computing the mean (100.0 ms): the cache pays."));
    CHECK(has(pays, "loaded 3.00x faster into a HugeArray (2 MB pages) than into a std::vector"));
    CHECK(has(pays, "joblib's hit, here: 200.0 µs, 20.00x as long as this cache's."));
    const std::string small = conclude(
        "05_caching", quiet,
        {{{"compute", 0.00002}, {"cache_hit", 0.00001}, {"cache_hit_large", 0.01}, {"cache_hit_large_vector", 0.011}},
         {"python_compute", "python_cache_hit"}});
    CHECK(has(small, "only 2.00x faster than computing the mean (20.0 µs): at this n the work is too small"));
    CHECK(has(small, "about as fast into a std::vector as into a HugeArray (1.10x)"));
    CHECK_FALSE(has(small, "joblib's hit"));
    CHECK(has(conclude("05_caching", quiet, {{{"compute", 0.00001}, {"cache_hit", 0.00001}}}),
              "A hit took 10.0 µs, no faster than computing the mean (10.0 µs)"));
    // the mapped hit: far faster than the copy, and read once still sooner than the copy, or not
    const std::string mapped = conclude(
        "05_caching", quiet,
        {{{"cache_hit_large", 0.02}, {"cache_hit_large_mapped", 0.00002}, {"cache_hit_large_mapped_read", 0.005}}});
    CHECK(has(mapped,
              "Mapped, the same 15.3 MiB hit in 20.0 µs, 1000x faster than the copying hit (20.0 ms): it maps "
              "the entry's file and copies nothing."));
    CHECK(has(mapped,
              "Hit and summed once, the mapped result took 5.0 ms: the first read (5.0 ms, the sum and the "
              "page faults the hit put off) still ended before the copying hit (20.0 ms) alone."));
    const std::string slow_read = conclude(
        "05_caching", quiet,
        {{{"cache_hit_large", 0.02}, {"cache_hit_large_mapped", 0.018}, {"cache_hit_large_mapped_read", 0.05}}});
    CHECK(has(slow_read,
              "hit in 18.0 ms, about as fast as the copying hit (20.0 ms): at this size the copy costs little."));
    CHECK(has(slow_read,
              "(32.0 ms, the sum and the page faults the hit put off) cost more than the copying hit "
              "(20.0 ms) alone: a mapping pays when the result is read in part, not in full at once."));
    const std::string older =
        conclude("05_caching", quiet, {{}, {"cache_hit_large_mapped", "cache_hit_large_mapped_read"}});
    CHECK_FALSE(has(older, "Mapped"));  // a run recorded before the mapped rows: no sentence about them
}

TEST_CASE("conclusions 06: threads never 'scale like processes' under a 0.96x row" * doctest::timeout(60)) {
    // the case a student saw: "Threads scale like processes in C++" printed under "2 threads 0.96x"
    const std::string lagging =
        conclude("06_parallel_for", quiet, {{{"serial_loop", 1.0}, {"processes_2", 0.55}, {"threads_2", 1.0 / 0.96}}});
    CHECK(has(lagging, "2 threads gained nothing (0.96x)"));
    CHECK(has(lagging, "Threads gained 0.96x against the processes' 1.82x"));
    CHECK_FALSE(has(lagging, "like processes"));
    const std::string both =
        conclude("06_parallel_for", quiet, {{{"serial_loop", 1.0}, {"processes_2", 0.55}, {"threads_2", 0.51}}});
    CHECK(has(both, "Threads scaled like processes (1.96x and 1.82x): C++ has no interpreter lock."));
    const std::string b =
        conclude("06_parallel_for", busy, {{{"serial_loop", 1.0}, {"processes_2", 0.55}, {"threads_2", 0.51}}});
    CHECK(has(b, "2 threads gave 1.96x even on a busy machine"));
    CHECK_FALSE(has(b, "like processes"));
    CHECK_FALSE(has(b, "processes_6 (6 workers"));
}

TEST_CASE("conclusions 06: a reused pool against a call that forks and against threads" * doctest::timeout(60)) {
    const auto pool = [](const std::string& run, double forked, double reused, double threads) {
        return conclude(
            "06_parallel_for", run,
            {{{"serial_loop", 1.0}, {"processes_2", forked}, {"processes_2_reused", reused}, {"threads_2", threads}},
             {},
             {},
             {},
             {{"processes_2_reused", "processes_2"}}});
    };
    // the fork saved, and the pool as fast as threads
    const std::string fast = pool(quiet, 0.56, 0.51, 0.5);
    CHECK(has(fast,
              "A reused pool (the same map() again on one Parallel, its 2 processes kept) took 510.0 ms a call"
              " against 560.0 ms for processes_2, which forks and reaps its workers each call: about 50.0 ms of each"
              " forking call was starting and ending workers, which a pool pays once."));
    CHECK(has(fast, "It was within 5% of threads_2 (1.02x its time)"));
    // tasks long enough to hide the fork, and a pool that lags threads
    const std::string slow = pool(quiet, 0.6, 0.595, 0.5);
    CHECK(has(slow, "next to tasks this long the fork is lost in the noise; a pool pays off for many short calls."));
    CHECK(has(slow, "It took 1.19x threads_2's time"));
    CHECK_FALSE(has(slow, "within 5%"));
    // a busy machine: no claim against threads
    const std::string b = pool(busy, 0.56, 0.51, 0.5);
    CHECK(has(b,
              "took 510.0 ms a call against 560.0 ms for processes_2, which forks and reaps its workers each call."
              " Other programs shared the CPUs meanwhile, so neither the difference (50.0 ms) nor how the pool"
              " compares with threads_2 is the machine's: run it again when it is quiet."));
    CHECK_FALSE(has(b, "of each forking call was starting and ending workers"));
    CHECK_FALSE(has(b, "within 5%"));
    // a table without the row (recorded before it existed) says nothing of a pool
    CHECK_FALSE(has(conclude("06_parallel_for", quiet), "reused pool"));
}

TEST_CASE("conclusions 06: the optimiser, more jobs than CPUs, the notebook here and on its laptop" *
          doctest::timeout(60)) {
    const std::string q = conclude("06_parallel_for", quiet, {{{"f_naive", 2e-8}, {"f_call", 0.09}}});
    CHECK(has(q, "took 20 ns for one call, f 90.0 ms: p is never used, so the optimiser removed both loops"));
    CHECK(has(q, "processes_6 (6 workers on 2 CPUs) gave"));
    CHECK(has(q, "The notebook (its laptop, Python, x = 10000): loop 21.7 s, 2 processes 1.98x, 2 threads 1.13x"));
    CHECK(has(q, "Its cell here: 2 processes 0.36x, 2 threads 0.89x over its own loop."));
    CHECK(has(q, "Sweep of processes"));
    CHECK(has(q, "Sweep of threads"));
    const std::string debug = conclude("06_parallel_for", quiet, {{{"f_naive", 0.08}, {"f_call", 0.09}}});
    CHECK(has(debug, "this build kept the loops of both"));
    const std::string many = conclude("06_parallel_for", quiet,
                                      {{}, {"python_loop", "python_processes_2", "python_threads_2"}, {{"cpus", "8"}}});
    CHECK(has(many, "8 CPUs ran the 6 workers at once."));
    CHECK_FALSE(has(many, "Its cell here"));
}

TEST_CASE("conclusions 07: the fastest warm and cold reads and what limited them" * doctest::timeout(60)) {
    const std::string q = conclude("07_chunked_file", quiet,
                                   {{{"serial_read", 0.02},
                                     {"chunks_pread_2", 0.011},
                                     {"cold_serial_read", 0.2},
                                     {"cold_chunks_pread_2", 0.19},
                                     {"cold_chunks_mmap_2", 0.3}}});
    CHECK(has(q, "From the page cache (warm) the fastest read was split_files_2"));
    CHECK(has(q, "2 processes reading with pread gave 1.82x against serial_read: a warm read is a memory copy"));
    CHECK(has(q, "From the disk (cold) the fastest read was cold_chunks_pread_2"));
    CHECK(has(q, "2 readers gave 1.05x against one: the disk, not the CPU, was the limit."));
    const std::string flat = conclude("07_chunked_file", quiet,
                                      {{{"serial_read", 0.02},
                                        {"chunks_pread_2", 0.019},
                                        {"split_files_2", 0.02},
                                        {"cold_serial_read", 0.4},
                                        {"cold_chunks_pread_2", 0.2},
                                        {"cold_chunks_mmap_2", 0.4}}});
    CHECK(has(flat, "gave 1.05x against serial_read: the copy from the page cache was limited by memory"));
    CHECK(has(flat, "2 readers gave 2.00x against one: the disk serves more than one request at a time."));
    const std::string cached = conclude("07_chunked_file", quiet,
                                        {{{"split_files_2", 0.02},
                                          {"cold_serial_read", 0.021},
                                          {"cold_chunks_pread_2", 0.021},
                                          {"cold_chunks_mmap_2", 0.021},
                                          {"serial_read", 0.02}}});
    CHECK(has(cached, "were nearly as fast as the warm ones: the file stayed in memory"));
    const std::string b = conclude("07_chunked_file", busy, {{{"cold_serial_read", 0.2}}});
    CHECK(has(b, "on a busy machine (the line above the table)."));
    CHECK(has(b, "against one, on a busy machine."));
}

#ifdef CORELAB_MPIEXEC
TEST_CASE("conclusions 08: ranks against the ideal and the reduce against the sums" * doctest::timeout(60)) {
    const std::string q =
        conclude("08_mpi_mean", quiet, {{{"serial_loop", 0.02}, {"mpi_reduce_2", 0.0105}, {"reduce_only", 0.00001}}});
    CHECK(has(q, "2 ranks made it 1.90x faster, close to the 2x that 2 CPUs allow."));
    CHECK(has(q, "took 10.0 µs, under 1% of the whole reduce: the sums cost the time, not the messages."));
    const std::string tiny = conclude(
        "08_mpi_mean", quiet, {{{"serial_loop", 0.00002}, {"mpi_reduce_2", 0.00002}, {"reduce_only", 0.00001}}});
    CHECK(has(tiny, "2 ranks gained nothing (1.00x)"));
    CHECK(has(tiny, "50% of the whole reduce: at this n the messages cost as much as the sums."));
}
#endif  // lesson 08 is built where MPI is

TEST_CASE("conclusions: a file that is not a recorded table is a clear error, exit 1" * doctest::timeout(60)) {
    const Outcome o = run({corelab::test::lesson("02_serial_mean"), "--conclude", "/nonexistent.csv"});
    CHECK(o.exit_code == 1);
    CHECK(o.err.find("error: cannot read /nonexistent.csv") == 0);
    const Outcome wrong =
        run({corelab::test::lesson("02_serial_mean"), "--conclude", quiet + "03_two_process_mean.csv"});
    CHECK(wrong.exit_code == 1);
    CHECK(wrong.err.find("has no row 'serial_fast'") != std::string::npos);
}
