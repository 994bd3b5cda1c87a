// Lesson 08 — beyond one machine: the same mean with MPI ranks.
//
// Mirrors no notebook cell: it takes lesson 03's mean (and lesson 07's file)
// past one machine. Processes on one machine stop scaling at its cores and its
// memory bandwidth; MPI runs the same program as ranks on many machines.
// Question: what changes when the workers are MPI ranks, and what does
// combining their results cost?
//
// Run it:  ./course lesson 8          (2 ranks; --ranks 3, --hostfile F, --n 1000000, --file F)
// You should see: each rank makes (or reads) only its share of the data; two
// ranks take about half the time of one; the reduce that combines their
// Partials costs microseconds; the mean equals the serial mean of the same data.
#include <algorithm>                   // std::count, std::sort
#include <boost/mpi/collectives.hpp>   // reduce, all_reduce, all_gather, gather
#include <boost/mpi/communicator.hpp>  // communicator: the ranks of this run
#include <boost/mpi/environment.hpp>   // environment: MPI_Init ... MPI_Finalize
#include <boost/mpi/operations.hpp>    // maximum, is_commutative
#include <boost/mpi/request.hpp>       // request: a message still on its way
#include <chrono>                      // std::chrono_literals
#include <cstdio>                      // std::fprintf
#include <functional>                  // std::plus
#include <iostream>                    // std::cout, std::cerr
#include <limits>                      // std::numeric_limits
#include <string>                      // std::string
#include <thread>                      // std::thread::hardware_concurrency, std::this_thread::sleep_for
#include <vector>                      // std::vector

#include "08_mpi_mean.conclude.hpp"  // conclude: what the table says, chosen from its numbers
#include "corelab/chunked_file.hpp"  // open_data_file, split, read_chunk: lesson 07's file
#include "corelab/cli.hpp"           // Cli, run_lesson: the shared command line
#include "corelab/dataset.hpp"       // make_uniform_part: this rank's share of np.random.rand(n)
#include "corelab/reduce.hpp"        // Partial, sum_loop, chunk_range
#include "corelab/report.hpp"        // Report, Stopwatch

namespace mpi = boost::mpi;
using corelab::Partial;
using namespace std::chrono_literals;

// A Partial travels as one MPI message of two numbers, and the reduce
// combines two of them in either order (Boost.MPI then lets MPI reorder).
// [docs:datatype]
namespace corelab {
template <class Archive>
void serialize(Archive& archive, Partial& p, const unsigned /*version*/) {
    // clang-format off
    archive & p.sum & p.count;  // Boost.Serialization's operator&: member by member
    // clang-format on
}
}  // namespace corelab
BOOST_IS_MPI_DATATYPE(corelab::Partial)
struct Combine {
    Partial operator()(const Partial& a, const Partial& b) const { return corelab::combine(a, b); }
};
template <>
struct boost::mpi::is_commutative<Combine, Partial> : boost::mpl::true_ {};
// [docs:end]

namespace {

// A step that may fail on one rank only (its file is missing there): every
// rank learns of it, so none is left waiting in a collective for a dead one.
template <class F>
void on_every_rank(const mpi::communicator& world, F step) {
    std::string error;
    try {
        step();
    } catch (const std::exception& e) {
        error = e.what();
    }
    std::vector<std::string> errors;
    mpi::all_gather(world, error, errors);
    std::string all;  // "rank 1: why" or, when every rank failed alike, "every rank: why"
    for (std::size_t k = 0; k < errors.size(); ++k) {
        if (!errors[k].empty()) all += (all.empty() ? "rank " : "; rank ") + std::to_string(k) + ": " + errors[k];
    }
    if (std::count(errors.begin(), errors.end(), errors[0]) == world.size() && !errors[0].empty()) {
        all = "every rank: " + errors[0];
    }
    if (!all.empty()) throw corelab::Error(all);
}

// Best of `repeat` runs of step() on every rank, each begun by a barrier. A
// run lasts from the first rank's start to the last rank's end: ranks on one
// machine share its clock, so rank 0 gathers both; across machines (clocks
// differ) it is rank 0's own time, from the barrier to the combined result.
template <class F>
corelab::Timed<Partial> together(const mpi::communicator& world, bool one_clock, int repeat, F step) {
    const auto now_ns = [] {
        return static_cast<long long>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
                .count());
    };
    corelab::Timed<Partial> best;
    best.seconds = std::numeric_limits<double>::infinity();
    for (int i = 0; i < repeat; ++i) {
        world.barrier();
        const long long start = now_ns();
        best.value = step();
        const long long end = now_ns();
        long long first = start, last = end;
        if (one_clock) {
            mpi::reduce(world, start, first, mpi::minimum<long long>(), 0);
            mpi::reduce(world, end, last, mpi::maximum<long long>(), 0);
        }
        best.runs.push_back(static_cast<double>(last - first) * 1e-9);
        best.seconds = std::min(best.seconds, best.runs.back());
    }
    return best;
}

void lesson(const mpi::communicator& world, const corelab::LessonOptions& opt) {
    const int rank = world.rank();
    const int ranks = world.size();
    corelab::Report report(opt, std::cout);  // only rank 0's output is shown (see main)

    // where the ranks run: their machines' names, and how many share each
    std::vector<std::string> hosts;
    mpi::all_gather(world, mpi::environment::processor_name(), hosts);
    const auto here = static_cast<unsigned>(std::count(hosts.begin(), hosts.end(), hosts[rank]));
    const unsigned threads = std::max(1u, std::thread::hardware_concurrency() / here);
    const bool one_clock = here == static_cast<unsigned>(ranks);  // every rank on this machine

    // the ranks of one machine hold their shares at once: refuse, before any
    // is made, what does not fit in its memory
    if (opt.extra.count("file") == 0) {
        on_every_rank(world, [&] {
            corelab::check_lesson_memory("n", opt.n,
                                         {.bytes_per_element = 8.0 * here / ranks, .fixed_bytes = 8.0 * here},
                                         "lesson 08 at n = " + std::to_string(opt.n) + " (the shares of the " +
                                             std::to_string(here) + " ranks on " + hosts[rank] + ")");
        });
    }

    // every rank makes (or reads) only its share of the data, never the whole
    // [docs:share]
    std::size_t n = opt.n;
    corelab::DataFile file;
    corelab::FileChunk chunk;
    corelab::HugeArray<double> share;
    corelab::Stopwatch watch;
    on_every_rank(world, [&] {
        if (opt.extra.count("file") != 0) {  // lesson 07's file: each rank reads its own chunk
            file = corelab::open_data_file(opt.extra["file"].as<std::string>());
            chunk = corelab::split(file, static_cast<std::size_t>(ranks))[rank];
            n = file.count;
        } else {  // elements [first, first + count) of make_uniform(n, seed), made here
            const auto [first, count] = corelab::chunk_range(n, rank, ranks);
            if (count > 0) share = corelab::make_uniform_part(n, opt.seed, first, count, threads);
        }
    });
    double slowest_share = 0.0;
    mpi::reduce(world, watch.seconds(), slowest_share, mpi::maximum<double>(), 0);
    // [docs:end]
    // [docs:work]
    const auto work = [&]() -> Partial {  // this rank's sum; it runs between collectives
        try {
            return file.count != 0 ? corelab::read_chunk(file, chunk, corelab::ReadMethod::pread)
                                   : corelab::sum_loop(share);
        } catch (const std::exception& e) {  // the file was truncated or replaced meanwhile
            std::fprintf(stderr, "error: rank %d: %s\n", rank, e.what());  // std::cerr is rank 0's only
            world.abort(1);  // MPI_Abort: the others wait in a collective; mpirun ends them all
            return {};       // not reached
        }
    };
    // [docs:end]
    const std::size_t mine = file.count != 0 ? chunk.count : share.size();
    std::vector<std::size_t> counts;
    mpi::gather(world, mine, counts, 0);

    // the baseline: rank 0 alone times its share, scaled up to all n; the
    // others sleep meanwhile (in a barrier they would spin on a core)
    // [docs:baseline]
    double serial_seconds = 0.0;
    if (rank == 0) {
        if (mine > 0) serial_seconds = corelab::best_of(opt.repeat, work).seconds * double(n) / double(mine);
        for (int k = 1; k < ranks; ++k) world.send(k, 0);
    } else {
        for (mpi::request done = world.irecv(0, 0); !done.test();) std::this_thread::sleep_for(1ms);
    }
    // [docs:end]

    // every rank sums its share; reduce brings the combined Partial to rank 0,
    // all_reduce to every rank
    // [docs:reduce]
    const auto reduced = together(world, one_clock, opt.repeat, [&] {
        Partial total;
        mpi::reduce(world, work(), total, Combine{}, 0);
        return total;
    });
    const auto all_reduced = together(world, one_clock, opt.repeat, [&] {
        Partial total;
        mpi::all_reduce(world, work(), total, Combine{});
        return total;
    });
    // [docs:end]
    std::vector<Partial> everyones;
    mpi::gather(world, all_reduced.value, everyones, 0);

    // the reduce alone: what combining costs, without the sums (median of 101)
    // [docs:communication]
    const Partial precomputed = work();
    std::vector<double> reduce_times;
    for (int i = 0; i < 101; ++i) {
        reduce_times.push_back(together(world, one_clock, 1, [&] {
                                   Partial total;
                                   mpi::reduce(world, precomputed, total, Combine{}, 0);
                                   return total;
                               }).seconds);
    }
    std::sort(reduce_times.begin(), reduce_times.end());
    // [docs:end]
    double others_cpu = 0.0;  // the other ranks' CPU time: this lesson's, not other programs' load
    mpi::reduce(world, rank == 0 ? 0.0 : corelab::sample_load().own, others_cpu, std::plus<double>(), 0);
    if (rank != 0) return;

    // check: the serial mean of the same data on rank 0 alone (the whole file,
    // or make_uniform(n, seed) again, in pieces of 1 GB), equal within rounding
    // [docs:verify]
    share = corelab::HugeArray<double>();
    Partial serial = file.count != 0 ? corelab::read_serial(file) : Partial{};
    for (std::size_t first = 0, piece = std::size_t{1} << 27; file.count == 0 && first < n; first += piece) {
        serial += corelab::sum_loop(corelab::make_uniform_part(n, opt.seed, first, std::min(piece, n - first)));
    }
    for (const Partial& p : {reduced.value, all_reduced.value}) {
        if (!corelab::same_within_rounding(p, serial)) {
            throw corelab::Error("the ranks' mean disagrees with the serial mean by more than rounding allows");
        }
    }
    for (std::size_t k = 0; k < everyones.size(); ++k) {
        if (everyones[k] != all_reduced.value)
            throw corelab::Error("all_reduce gave rank " + std::to_string(k) + " another result");
    }
    // [docs:end]

    std::string where;
    for (std::size_t k = 0, first = 0; k < counts.size(); first += counts[k++]) {
        where += "\n  rank " + std::to_string(k) + " on " + hosts[k] + ": elements " + std::to_string(first) + " to " +
                 std::to_string(first + counts[k]) + " (" + std::to_string(counts[k] * 8 / 1'000'000) + " MB)";
    }
    report.say("Lesson 08: the mean of " + std::to_string(n) + " numbers in " + std::to_string(ranks) + " MPI rank" +
               (ranks > 1 ? "s" : "") + (file.count != 0 ? " reading " + file.path : " making their own shares") +
               where +
               "\nthe mean equals the serial mean of the same data (within 2(n-1) eps); all_reduce gave every "
               "rank the same Partial.");
    const std::string rs = std::to_string(ranks);
    report.add_uncompared(file.count != 0 ? "open_share" : "make_share", slowest_share, std::nullopt);
    report.baseline(file.count != 0 ? "serial_read" : "serial_loop", serial_seconds, serial.mean());
    report.add("mpi_reduce_" + rs, reduced, reduced.value.mean()).workers = static_cast<unsigned>(ranks);
    report.add("mpi_all_reduce_" + rs, all_reduced, all_reduced.value.mean()).workers = static_cast<unsigned>(ranks);
    report.add_uncompared("reduce_only", corelab::Timing{reduce_times[0], reduce_times}, std::nullopt);
    report.count_as_own(others_cpu);
    report.conclude(conclude);
    report.print();
}

}  // namespace

int main(int argc, char** argv) {
    const mpi::environment env(argc, argv);  // MPI_Init; MPI_Finalize when main returns
    const mpi::communicator world;           // MPI_COMM_WORLD: every rank of this run
    if (world.rank() != 0) {                 // rank 0 speaks for all: help, usage errors, the table
        std::cout.rdbuf(nullptr);
        std::cerr.rdbuf(nullptr);
    }
    corelab::Cli cli("lesson08_mpi_mean",
                     "the mean of n random numbers in MPI ranks; run it with ./course lesson 8 [--ranks N] "
                     "[--hostfile FILE] [options], or mpirun -np N lesson08_mpi_mean [options]");
    cli.add_options()("file", boost::program_options::value<std::string>(),
                      "read lesson 07's data file (./course lesson 7 --keep) instead of making the data; n is then the "
                      "file's count");
    cli.with_conclusion(conclude);
    return corelab::run_lesson(argc, argv, cli, [&](const corelab::LessonOptions& opt) { lesson(world, opt); });
}
