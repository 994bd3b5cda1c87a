// Exercise 08.1 — the Partial of all ranks, on every rank (README.md).
#include <boost/mpi/collectives.hpp>  // all_reduce (you will need it)
#include <corelab/dataset.hpp>        // make_uniform_part
#include <corelab/reduce.hpp>         // chunk_range, sum_loop, combine

#include "exercise.hpp"

corelab::Partial mean_on_every_rank(const boost::mpi::communicator& world, std::size_t n, std::uint64_t seed) {
    const auto [first, count] =
        corelab::chunk_range(n, static_cast<std::size_t>(world.rank()), static_cast<std::size_t>(world.size()));
    corelab::Partial mine;
    if (count > 0) mine = corelab::sum_loop(corelab::make_uniform_part(n, seed, first, count));
    // TODO(exercise): this is only this rank's share. Combine every rank's
    // Partial so that every rank returns the Partial of all n numbers.
    return mine;
}
