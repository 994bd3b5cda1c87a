// Checker of exercise 06.1: the chosen batch size keeps 4 batches per worker
// and at least 100 tasks per batch when there are 1000 tasks per worker, for
// many task and worker counts, and gives the serial loop's results in order.
// The speed-up over batch_size 1 is measured and printed as a note only: in a
// debug build on a busy machine it is too noisy to be a verdict.
#include <corelab/parallel.hpp>  // Parallel, Backend, range
#include <cstddef>               // std::size_t
#include <cstdint>               // std::uint64_t
#include <vector>                // std::vector

#include "check.hpp"
#include "exercise.hpp"

namespace {

// a tiny task: a few nanoseconds, so the cost of a batch shows
std::uint64_t tiny(std::size_t i) {
    return static_cast<std::uint64_t>(i) * 2654435761u + 1;
}

std::vector<std::uint64_t> run(std::size_t tasks, unsigned workers, std::size_t batch) {
    corelab::Parallel par(
        {.n_jobs = static_cast<int>(workers), .backend = corelab::Backend::threads, .batch_size = batch});
    return par.map(tiny, corelab::range(tasks));
}

}  // namespace

void run_check() {
    const std::size_t tasks = 200'000;
    const unsigned workers = 2;
    const std::size_t batch = choose_batch_size(tasks, workers);
    std::vector<std::uint64_t> serial(tasks);
    for (std::size_t i = 0; i < tasks; ++i) serial[i] = tiny(i);

    std::vector<std::uint64_t> got;
    const double one = check::best_seconds(3, [&] { got = run(tasks, workers, 1); });
    const double yours = check::best_seconds(3, [&] { got = run(tasks, workers, batch); });
    check::note(check::str(tasks, " tasks on ", workers, " threads: batch_size 1 ", one * 1e3, " ms, yours (", batch,
                           ") ", yours * 1e3, " ms: ", one / yours, "x"));
    check::expect(got == serial, check::str("with batch_size ", batch, " the results differ from the serial loop's"));

    for (unsigned w : {2u, 1u, 3u, 8u}) {
        for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{31}, std::size_t{32}, std::size_t{1000},
                              std::size_t{100'003}, std::size_t{10'000'000}}) {
            const std::size_t b = choose_batch_size(n, w);
            check::expect(b >= 1, check::str(n, " tasks on ", w, " workers: batch size 0 means auto, not yours"));
            if (n >= 4 * std::size_t{w}) {
                check::expect(b * 4 * w <= n, check::str(n, " tasks on ", w, " workers: batch size ", b, " leaves ",
                                                         "fewer than 4 batches per worker"));
            }
            if (n >= 1000 * std::size_t{w}) {
                check::expect(b >= 100, check::str(n, " tasks on ", w, " workers: batch size ", b,
                                                   " makes a claim on the shared cursor every ", b,
                                                   " tasks: take at least 100 per batch"));
            }
            if (n <= 100'003) {
                std::vector<std::uint64_t> want(n);
                for (std::size_t i = 0; i < n; ++i) want[i] = tiny(i);
                check::expect(run(n, w, b) == want, check::str(n, " tasks on ", w, " workers with batch size ", b,
                                                               ": the results differ from the serial loop's"));
            }
        }
    }
}
