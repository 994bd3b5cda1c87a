// Lesson 08's MPI glue: a Partial as an MPI message and its reduce, and the
// few rules every step of an MPI program follows here (a failure on one rank
// reaches every rank; a run is timed from the first rank's start to the last
// rank's end; rank 0 alone speaks and times the baseline). Included by
// lessons/08_mpi_mean.cpp alone: the library stays free of MPI.
#pragma once

#include <algorithm>                   // std::count, std::find, std::max, std::min
#include <boost/mpi/collectives.hpp>   // reduce, all_gather
#include <boost/mpi/communicator.hpp>  // communicator: the ranks of this run
#include <boost/mpi/datatype.hpp>      // BOOST_IS_MPI_DATATYPE
#include <boost/mpi/environment.hpp>   // environment::processor_name
#include <boost/mpi/operations.hpp>    // minimum, maximum, is_commutative
#include <boost/mpi/request.hpp>       // request: a message still on its way
#include <chrono>                      // std::chrono::steady_clock, milliseconds
#include <exception>                   // std::exception
#include <functional>                  // std::plus
#include <iostream>                    // std::cout, std::cerr
#include <limits>                      // std::numeric_limits
#include <string>                      // std::string
#include <thread>                      // std::thread::hardware_concurrency, std::this_thread::sleep_for
#include <vector>                      // std::vector

#include "corelab/cli.hpp"     // LessonOptions, check_lesson_memory
#include "corelab/error.hpp"   // Error
#include "corelab/load.hpp"    // sample_load
#include "corelab/reduce.hpp"  // Partial, combine; its serialize lists Partial's members
#include "corelab/report.hpp"  // Timed

// A Partial travels as one MPI message of two numbers (its serialize, beside
// it in reduce.hpp, lists them), and the reduce combines two of them in either
// order (Boost.MPI then lets MPI reorder).
// [docs:datatype]
BOOST_IS_MPI_DATATYPE(corelab::Partial)
struct Combine {
    corelab::Partial operator()(const corelab::Partial& a, const corelab::Partial& b) const {
        return corelab::combine(a, b);
    }
};
template <>
struct boost::mpi::is_commutative<Combine, corelab::Partial> : boost::mpl::true_ {};
// [docs:end]

namespace {

// The Partials of every rank combined: at rank 0 alone (reduce), or at every rank (all_reduce).
// [docs:combine]
inline corelab::Partial reduce_to_rank0(const boost::mpi::communicator& world, const corelab::Partial& mine) {
    corelab::Partial total;
    boost::mpi::reduce(world, mine, total, Combine{}, 0);
    return total;
}
inline corelab::Partial all_reduce(const boost::mpi::communicator& world, const corelab::Partial& mine) {
    corelab::Partial total;
    boost::mpi::all_reduce(world, mine, total, Combine{});
    return total;
}
// [docs:end]

// Where the ranks run: every rank's machine, how many ranks share this one.
struct Placement {
    std::vector<std::string> hosts;  // rank k runs on hosts[k]
    unsigned here = 1;               // ranks on this rank's machine
    unsigned threads = 1;            // this rank's share of its machine's hardware threads
    bool one_clock = true;           // every rank on this machine: one steady_clock for all
};

inline Placement place(const boost::mpi::communicator& world) {
    Placement p;
    boost::mpi::all_gather(world, boost::mpi::environment::processor_name(), p.hosts);
    p.here = static_cast<unsigned>(std::count(p.hosts.begin(), p.hosts.end(), p.hosts[world.rank()]));
    p.threads = std::max(1u, std::thread::hardware_concurrency() / p.here);
    p.one_clock = p.here == static_cast<unsigned>(world.size());
    return p;
}

// At rank 0: the CPU time of the other ranks, this lesson's and not other programs' load.
inline double cpu_of_other_ranks(const boost::mpi::communicator& world) {
    double others = 0.0;
    boost::mpi::reduce(world, world.rank() == 0 ? 0.0 : corelab::sample_load().own, others, std::plus<double>(), 0);
    return others;
}

// Rank 0 speaks for all: help, usage errors and the table; the others are silent.
inline void only_rank0_speaks(const boost::mpi::communicator& world) {
    if (world.rank() == 0) return;
    std::cout.rdbuf(nullptr);
    std::cerr.rdbuf(nullptr);
}

// A step that may fail on one rank only (its file is missing there): every
// rank learns of it, so none is left waiting in a collective for a dead one.
template <class F>
void on_every_rank(const boost::mpi::communicator& world, F step) {
    std::string error;
    try {
        step();
    } catch (const std::exception& e) {
        error = e.what();
    }
    std::vector<std::string> errors;
    boost::mpi::all_gather(world, error, errors);
    std::string all;  // "rank 1: why" or, when every rank failed alike, "every rank: why"
    for (std::size_t k = 0; k < errors.size(); ++k) {
        if (!errors[k].empty()) all += (all.empty() ? "rank " : "; rank ") + std::to_string(k) + ": " + errors[k];
    }
    if (std::count(errors.begin(), errors.end(), errors[0]) == world.size() && !errors[0].empty()) {
        all = "every rank: " + errors[0];
    }
    if (!all.empty()) throw corelab::Error(all);
}

// The ranks of one machine hold their shares at once: every rank refuses, before any share is
// made, an n whose shares do not fit in its machine's memory. The first rank of each machine
// measures its memory for all of them: ranks measuring apart see it change between their reads
// (other programs allocate), and would then refuse in words that differ by a tenth of a GB.
inline void check_shares_fit(const boost::mpi::communicator& world, const Placement& at,
                             const corelab::LessonOptions& opt) {
    const auto first_here = static_cast<std::size_t>(
        std::find(at.hosts.begin(), at.hosts.end(), at.hosts[world.rank()]) - at.hosts.begin());
    std::string verdict;  // empty: the shares fit
    if (static_cast<std::size_t>(world.rank()) == first_here) {
        try {
            corelab::check_lesson_memory(
                "n", opt.n, {.bytes_per_element = 8.0 * at.here / world.size(), .fixed_bytes = 8.0 * at.here},
                "lesson 08 at n = " + std::to_string(opt.n) + " (the shares of the " + std::to_string(at.here) +
                    " ranks on " + at.hosts[world.rank()] + ")");
        } catch (const std::exception& e) {
            verdict = e.what();
        }
    }
    std::vector<std::string> verdicts;
    boost::mpi::all_gather(world, verdict, verdicts);
    on_every_rank(world, [&] {
        if (!verdicts[first_here].empty()) throw corelab::Error(verdicts[first_here]);
    });
}

// Runs step() on rank 0 while the other ranks sleep in 1 ms steps (waiting in
// a barrier they would spin on a core that rank 0 may need).
template <class F>
void on_rank0_alone(const boost::mpi::communicator& world, F step) {
    if (world.rank() == 0) {
        step();
        for (int k = 1; k < world.size(); ++k) world.send(k, 0);
    } else {
        for (boost::mpi::request done = world.irecv(0, 0); !done.test();) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
}

// Best of `repeat` runs of step() on every rank, each begun by a barrier. A
// run lasts from the first rank's start to the last rank's end: ranks on one
// machine share its clock, so rank 0 gathers both; across machines (clocks
// differ) it is rank 0's own time, from the barrier to the combined result.
template <class F>
corelab::Timed<corelab::Partial> together(const boost::mpi::communicator& world, bool one_clock, int repeat, F step) {
    const auto now_ns = [] {
        return static_cast<long long>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
                .count());
    };
    corelab::Timed<corelab::Partial> best;
    best.seconds = std::numeric_limits<double>::infinity();
    for (int i = 0; i < repeat; ++i) {
        world.barrier();
        const long long start = now_ns();
        best.value = step();
        const long long end = now_ns();
        long long first = start, last = end;
        if (one_clock) {
            boost::mpi::reduce(world, start, first, boost::mpi::minimum<long long>(), 0);
            boost::mpi::reduce(world, end, last, boost::mpi::maximum<long long>(), 0);
        }
        best.runs.push_back(static_cast<double>(last - first) * 1e-9);
        best.seconds = std::min(best.seconds, best.runs.back());
    }
    return best;
}

// "rank 0 on host: elements 0 to 500 (0 MB)", a line per rank: which share each held.
inline std::string describe_shares(const std::vector<std::string>& hosts, const std::vector<std::size_t>& counts) {
    std::string where;
    for (std::size_t k = 0, first = 0; k < counts.size(); first += counts[k++]) {
        where += "\n  rank " + std::to_string(k) + " on " + hosts[k] + ": elements " + std::to_string(first) + " to " +
                 std::to_string(first + counts[k]) + " (" + std::to_string(counts[k] * 8 / 1'000'000) + " MB)";
    }
    return where;
}

}  // namespace
