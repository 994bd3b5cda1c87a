// Exercise 08.1 — what student.cpp implements (README.md).
#pragma once

#include <boost/mpi/communicator.hpp>  // communicator: the ranks of this run
#include <boost/mpi/datatype.hpp>      // BOOST_IS_MPI_DATATYPE
#include <cstddef>                     // std::size_t
#include <cstdint>                     // std::uint64_t

#include "corelab/reduce.hpp"  // Partial, and its serialize: the members Boost.MPI sends

// A Partial can be sent as it is (16 bytes), as in lesson 08.
BOOST_IS_MPI_DATATYPE(corelab::Partial)

/// Called on every rank of `world` at once. Rank k makes only its share of
/// make_uniform(n, seed) (corelab::chunk_range(n, k, ranks), made with
/// corelab::make_uniform_part) and sums it with corelab::sum_loop. Returns, on
/// EVERY rank, the Partial of all n numbers.
corelab::Partial mean_on_every_rank(const boost::mpi::communicator& world, std::size_t n, std::uint64_t seed);
