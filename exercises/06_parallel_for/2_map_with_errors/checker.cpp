// Checker of exercise 06.2: parallel_sqrt against the serial loop, bit for bit
// and in order, and failing_task's index, on both backends with n_jobs 1, 2
// and -1; with 2 process workers a child must have run and been reaped.
#include <cmath>                 // std::sqrt
#include <corelab/parallel.hpp>  // Backend
#include <cstddef>               // std::size_t
#include <functional>            // std::function
#include <stdexcept>             // std::runtime_error
#include <vector>                // std::vector

#include "check.hpp"
#include "exercise.hpp"

namespace {

// tasks i = 0..n-1 returning i, except `bad`, which throws
std::vector<std::function<double()>> tasks_with(std::size_t n, std::size_t bad) {
    std::vector<std::function<double()>> tasks;
    for (std::size_t i = 0; i < n; ++i) {
        tasks.emplace_back([i, bad]() -> double {
            if (i == bad) throw std::runtime_error("task " + std::to_string(i) + " fails on purpose");
            return static_cast<double>(i);
        });
    }
    return tasks;
}

}  // namespace

void run_check() {
    std::vector<std::size_t> xs;
    for (std::size_t i = 0; i < 10'007; ++i) xs.push_back((i * 7919) % 100'003);  // not sorted: order matters
    for (corelab::Backend b : {corelab::Backend::processes, corelab::Backend::threads}) {
        for (int n_jobs : {2, 1, -1}) {
            for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{5}, xs.size()}) {
                const std::span<const std::size_t> part(xs.data(), n);
                const long faults_before = check::reaped_children_faults();
                const auto got = parallel_sqrt(part, n_jobs, b);
                if (b == corelab::Backend::processes && n_jobs == 2 && n > 1) {
                    check::expect(check::reaped_children_faults() > faults_before,
                                  check::str("parallel_sqrt on processes, n_jobs 2: no child process ran: "
                                             "use corelab::Parallel with the backend you are given"));
                }
                check::expect(got.size() == n, check::str("parallel_sqrt of ", n, " values (", corelab::to_string(b),
                                                          ", n_jobs ", n_jobs, "): ", got.size(), " results"));
                for (std::size_t i = 0; i < n; ++i) {
                    const double want = std::sqrt(static_cast<double>(part[i]));
                    check::expect(got[i] == want, check::str("parallel_sqrt (", corelab::to_string(b), ", n_jobs ",
                                                             n_jobs, ", ", n, " values): result ", i, " is ", got[i],
                                                             ", sqrt(", part[i], ") is ", want));
                }
            }
            for (std::size_t bad : {std::size_t{3}, std::size_t{0}, std::size_t{99}}) {
                const auto got = failing_task(tasks_with(100, bad), n_jobs, b);
                check::expect(got.has_value() && *got == bad,
                              check::str("failing_task (", corelab::to_string(b), ", n_jobs ", n_jobs, "): task ", bad,
                                         " threw, you returned ", got ? std::to_string(*got) : "nullopt",
                                         ": catch corelab::TaskError and ask it which task"));
            }
            const auto none = failing_task(tasks_with(50, 1000), n_jobs, b);
            check::expect(!none.has_value(), check::str("failing_task (", corelab::to_string(b), ", n_jobs ", n_jobs,
                                                        "): no task threw, you returned ",
                                                        none ? std::to_string(*none) : "", " instead of nullopt"));
        }
    }
}
