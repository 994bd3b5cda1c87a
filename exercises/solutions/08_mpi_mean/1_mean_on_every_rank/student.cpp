// Exercise 08.1 — reference solution.
#include <boost/mpi/collectives.hpp>  // all_reduce
#include <corelab/dataset.hpp>        // make_uniform_part
#include <corelab/reduce.hpp>         // chunk_range, sum_loop, combine

#include "exercise.hpp"

namespace {
struct Combine {
    corelab::Partial operator()(const corelab::Partial& a, const corelab::Partial& b) const {
        return corelab::combine(a, b);
    }
};
}  // namespace

corelab::Partial mean_on_every_rank(const boost::mpi::communicator& world, std::size_t n, std::uint64_t seed) {
    const auto [first, count] =
        corelab::chunk_range(n, static_cast<std::size_t>(world.rank()), static_cast<std::size_t>(world.size()));
    corelab::Partial mine;  // a rank with no numbers (n < ranks) still takes part in the all_reduce
    if (count > 0) mine = corelab::sum_loop(corelab::make_uniform_part(n, seed, first, count));
    corelab::Partial total;
    boost::mpi::all_reduce(world, mine, total, Combine{});
    return total;
}
