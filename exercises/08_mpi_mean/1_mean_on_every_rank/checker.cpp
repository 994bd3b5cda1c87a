// Exercise 08.1 — the checker. Started by `./course check 8`, it runs itself
// again as 3 MPI ranks (mpirun), calls mean_on_every_rank on every rank at
// once and compares what each rank got with the serial mean of the same data.
// Rank 0 prints the verdict; every rank exits 0 (done) or 1 (not yet).
// Unlike the other checkers it has its own main: MPI runs threads of its own.
// The verdict is earned as in check_main (verdict.hpp), one level down: mpirun
// does not hand descriptors on, so the first process gives the ranks a file
// with a token of its own, and reports `./course`'s token only when rank 0
// wrote "PASS" there after its last check and mpirun ended with status 0.
#include <signal.h>    // kill, SIGTERM, SIGKILL
#include <spawn.h>     // posix_spawn
#include <sys/wait.h>  // waitpid
#include <unistd.h>    // geteuid, environ

#include <boost/mpi/collectives.hpp>  // gather, broadcast
#include <boost/mpi/environment.hpp>  // environment
#include <chrono>                     // std::chrono
#include <cstdio>                     // std::printf, std::fflush
#include <cstdlib>                    // std::getenv
#include <exception>                  // std::exception
#include <string>                     // std::string
#include <thread>                     // std::this_thread::sleep_for
#include <vector>                     // std::vector

#include "corelab/dataset.hpp"  // make_uniform
#include "corelab/reduce.hpp"   // sum_loop
#include "exercise.hpp"
#include "verdict.hpp"  // VerdictChannel, VerdictFile

namespace {

constexpr int ranks = 3;
constexpr int time_limit_seconds = 60;

// Not under mpirun yet: run this program as `ranks` ranks, wait for them and
// pass rank 0's verdict on to `channel`.
int relaunch(const char* self, const check::VerdictChannel& channel) {
    std::vector<std::string> args{CORELAB_MPIEXEC, "-np", std::to_string(ranks), "--oversubscribe"};
    if (::geteuid() == 0) args.emplace_back("--allow-run-as-root");
    args.emplace_back(self);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // under ASan: Open MPI keeps memory until exit (tests/mpi.lsan.supp); harmless otherwise
    ::setenv("OMPI_MCA_mca_base_component_disable_dlclose", "1", 0);
    ::setenv("LSAN_OPTIONS", CORELAB_MPI_LSAN_OPTIONS, 0);
    const check::VerdictFile ranks_verdict;
    ::setenv("CORELAB_CHECK_FILE", ranks_verdict.path().c_str(), 1);
    pid_t pid = 0;
    if (::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) {
        const std::string message =
            std::string("cannot start ") + CORELAB_MPIEXEC + ": is Open MPI installed? (./course deps)";
        std::printf("%s\n", message.c_str());
        channel.fail(message);
        return 1;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(time_limit_seconds);
    for (;;) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            const auto reported = ranks_verdict.read();
            if (!reported) {  // no rank 0 that finished its checks: ./course says "stopped before ..."
                std::printf("the ranks stopped before their checks finished (mpirun exit status %d)\n", code);
                return code == 0 ? 1 : code;
            }
            if (reported->passed && code == 0) {
                channel.pass();
                return 0;
            }
            channel.fail(reported->passed ? "rank 0 passed, but mpirun ended with status " + std::to_string(code)
                                          : reported->message);
            return 1;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGTERM);  // mpirun ends and reaps its ranks, then exits
            bool ended = false;
            for (int i = 0; i < 500 && !ended; ++i) {
                ended = ::waitpid(pid, &status, WNOHANG) == pid;
                if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
            if (!ended) {  // still there after 10 s
                ::kill(pid, SIGKILL);
                ::waitpid(pid, &status, 0);
            }
            const std::string message = "the ranks did not finish in " + std::to_string(time_limit_seconds) +
                                        " s: does every rank call the collective, even a rank with no numbers?";
            std::printf("%s\n", message.c_str());
            channel.fail(message);
            return 1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

// "" when every rank got the Partial of all n numbers, else what is wrong (rank 0 only).
std::string check_case(const boost::mpi::communicator& world, std::size_t n, std::uint64_t seed) {
    const corelab::Partial got = mean_on_every_rank(world, n, seed);
    std::vector<corelab::Partial> everyone;
    boost::mpi::gather(world, got, everyone, 0);
    if (world.rank() != 0) return "";
    const corelab::Partial serial = corelab::sum_loop(corelab::make_uniform(n, seed));
    for (std::size_t k = 0; k < everyone.size(); ++k) {
        const corelab::Partial& p = everyone[k];
        const std::string where =
            "with " + std::to_string(ranks) + " ranks and n = " + std::to_string(n) + ", rank " + std::to_string(k);
        if (p.count != n) {
            return where + " returned the Partial of " + std::to_string(p.count) + " numbers, not of all " +
                   std::to_string(n) + ": every rank must get the combined Partial (./course hint 08.1)";
        }
        if (!corelab::same_within_rounding(p, serial)) {
            return where + " returned sum " + std::to_string(p.sum) + ", not " + std::to_string(serial.sum) +
                   " (the serial sum of the same data)";
        }
    }
    return "";
}

}  // namespace

int main(int argc, char** argv) {
    if (std::getenv("OMPI_COMM_WORLD_SIZE") == nullptr) {
        return relaunch(argv[0], check::VerdictChannel::from_environment());
    }
    const auto channel = check::VerdictChannel::from_file_in_environment();
    const boost::mpi::environment env(argc, argv);
    const boost::mpi::communicator world;
    std::string verdict;
    try {
        // n not a multiple of the ranks; fewer numbers than ranks; shares that start inside generation blocks
        for (const auto& [n, seed] :
             {std::pair<std::size_t, std::uint64_t>{1'000'003, 7}, {2, 3}, {3 * corelab::dataset_block + 5, 11}}) {
            verdict = check_case(world, n, seed);
            boost::mpi::broadcast(world, verdict, 0);
            if (!verdict.empty()) break;
        }
    } catch (const std::exception& e) {  // one rank alone: the others may wait in a collective
        std::printf("mean_on_every_rank threw on rank %d: %s\n", world.rank(), e.what());
        std::fflush(stdout);
        world.abort(1);
    }
    if (world.rank() == 0) {
        std::printf("%s\n", verdict.empty() ? "done" : verdict.c_str());
        if (verdict.empty()) {
            std::printf("every one of %d ranks got the Partial of all n numbers, for 3 sizes\n", ranks);
        }
        std::fflush(stdout);
        if (verdict.empty()) {
            channel.pass();
        } else {
            channel.fail(verdict);
        }
    }
    return verdict.empty() ? 0 : 1;
}
