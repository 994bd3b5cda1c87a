// Lesson 08 — beyond one machine: the same mean with MPI ranks.
//
// Mirrors no notebook cell: it takes lesson 03's mean (and lesson 07's file) past one machine.
// Processes on one machine stop scaling at its cores and its memory bandwidth; MPI runs the same
// program as ranks on many machines. Question: what changes when the workers are MPI ranks, and
// what does combining their results cost?
//
// Run it:  ./course lesson 8          (2 ranks; --ranks 3, --hostfile F, --n 1000000, --file F)
// You should see: each rank makes (or reads) only its share of the data; two ranks take about half
// the time of one; the reduce that combines their Partials costs microseconds; the mean equals the
// serial mean of the same data.
#include <algorithm>                   // std::min
#include <boost/mpi/collectives.hpp>   // reduce, gather
#include <boost/mpi/communicator.hpp>  // communicator: the ranks of this run
#include <boost/mpi/environment.hpp>   // environment: MPI_Init ... MPI_Finalize
#include <boost/mpi/operations.hpp>    // maximum
#include <cstdio>                      // std::fprintf
#include <iostream>                    // std::cout
#include <string>                      // std::string
#include <vector>                      // std::vector

#include "08_mpi_mean.conclude.hpp"  // conclude: what the table says, chosen from its numbers
#include "08_mpi_mean.ranks.hpp"     // Combine, place, on_every_rank, on_rank0_alone, together: MPI's rules here
#include "corelab/chunked_file.hpp"  // open_data_file, split, read_chunk: lesson 07's file
#include "corelab/cli.hpp"           // Cli, run_lesson: the shared command line
#include "corelab/dataset.hpp"       // make_uniform_part: this rank's share of np.random.rand(n)
#include "corelab/reduce.hpp"        // Partial, sum_loop, chunk_range, check_within_rounding
#include "corelab/report.hpp"        // Report, Stopwatch

namespace mpi = boost::mpi;
using corelab::Partial;

namespace {

void lesson(const mpi::communicator& world, const corelab::LessonOptions& opt) {
    const int rank = world.rank();
    const int ranks = world.size();
    corelab::Report report(opt, std::cout);  // only rank 0's output is shown (see main)

    // where the ranks run (their machines, how many share each); do their shares fit there?
    const Placement at = place(world);
    if (!opt.given("file")) check_shares_fit(world, at, opt);

    // every rank makes (or reads) only its share of the data, never the whole
    // [docs:share]
    std::size_t n = opt.n;
    corelab::DataFile file;
    corelab::FileChunk chunk;
    corelab::HugeArray<double> share;
    corelab::Stopwatch watch;
    on_every_rank(world, [&] {
        if (opt.given("file")) {  // lesson 07's file: each rank reads its own chunk
            file = corelab::open_data_file(opt.word("file"));
            chunk = corelab::split(file, static_cast<std::size_t>(ranks))[rank];
            n = file.count;
        } else {  // elements [first, first + count) of make_uniform(n, seed), made here
            const auto [first, count] = corelab::chunk_range(n, rank, ranks);
            if (count > 0) share = corelab::make_uniform_part(n, opt.seed, first, count, at.threads);
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

    // the baseline: rank 0 alone times its share, scaled up to all n; the others sleep meanwhile
    // [docs:baseline]
    double serial_seconds = 0.0;
    on_rank0_alone(world, [&] {
        if (mine > 0) serial_seconds = corelab::best_of(opt.repeat, work).seconds * double(n) / double(mine);
    });
    // [docs:end]

    // every rank sums its share; reduce brings the combined Partial to rank 0, all_reduce to every rank
    // [docs:reduce]
    const auto reduced = together(world, at.one_clock, opt.repeat, [&] { return reduce_to_rank0(world, work()); });
    const auto all_reduced = together(world, at.one_clock, opt.repeat, [&] { return all_reduce(world, work()); });
    // [docs:end]
    std::vector<Partial> everyones;
    mpi::gather(world, all_reduced.value, everyones, 0);

    // the reduce alone: what combining costs, without the sums (median of 101)
    // [docs:communication]
    const Partial precomputed = work();
    const auto reduce_only = together(world, at.one_clock, 101, [&] { return reduce_to_rank0(world, precomputed); });
    // [docs:end]
    const double others_cpu = cpu_of_other_ranks(world);  // this lesson's, not other programs' load
    if (rank != 0) return;

    // check: the serial mean of the same data on rank 0 alone (the whole file, or make_uniform(n, seed)
    // again, in pieces of 1 GB), equal within rounding
    // [docs:verify]
    share = corelab::HugeArray<double>();
    Partial serial = file.count != 0 ? corelab::read_serial(file) : Partial{};
    for (std::size_t first = 0, piece = std::size_t{1} << 27; file.count == 0 && first < n; first += piece) {
        serial += corelab::sum_loop(corelab::make_uniform_part(n, opt.seed, first, std::min(piece, n - first)));
    }
    corelab::check_within_rounding("mpi_reduce", reduced.value, "the serial mean", serial);
    corelab::check_within_rounding("mpi_all_reduce", all_reduced.value, "the serial mean", serial);
    for (std::size_t k = 0; k < everyones.size(); ++k) {
        if (everyones[k] != all_reduced.value)
            throw corelab::Error("all_reduce gave rank " + std::to_string(k) + " another result");
    }
    // [docs:end]

    report.say("Lesson 08: the mean of " + std::to_string(n) + " numbers in " + std::to_string(ranks) + " MPI rank" +
               (ranks > 1 ? "s" : "") + (file.count != 0 ? " reading " + file.path : " making their own shares") +
               describe_shares(at.hosts, counts) +
               "\nthe mean equals the serial mean of the same data (within 2(n-1) eps); all_reduce gave every "
               "rank the same Partial.");
    const std::string rs = std::to_string(ranks);
    report.add_uncompared(file.count != 0 ? "open_share" : "make_share", slowest_share, std::nullopt);
    report.baseline(file.count != 0 ? "serial_read" : "serial_loop", serial_seconds, serial.mean());
    report.add("mpi_reduce_" + rs, reduced, reduced.value.mean()).workers = static_cast<unsigned>(ranks);
    report.add("mpi_all_reduce_" + rs, all_reduced, all_reduced.value.mean()).workers = static_cast<unsigned>(ranks);
    report.add_uncompared("reduce_only", reduce_only, std::nullopt);
    report.count_as_own(others_cpu);
    report.conclude(conclude);
    report.print();
}

}  // namespace

int main(int argc, char** argv) {
    const mpi::environment env(argc, argv);  // MPI_Init; MPI_Finalize when main returns
    const mpi::communicator world;           // MPI_COMM_WORLD: every rank of this run
    only_rank0_speaks(world);                // help, usage errors and the table come from rank 0
    corelab::Cli cli("lesson08_mpi_mean",
                     "the mean of n random numbers in MPI ranks; run it with ./course lesson 8 [--ranks N] "
                     "[--hostfile FILE] [options], or mpirun -np N lesson08_mpi_mean [options]");
    cli.text("file", std::nullopt,
             "read lesson 07's data file (./course lesson 7 --keep) instead of making the data; n is then the "
             "file's count");
    cli.with_conclusion(conclude);
    return corelab::run_lesson(argc, argv, cli, [&](const corelab::LessonOptions& opt) { lesson(world, opt); });
}
