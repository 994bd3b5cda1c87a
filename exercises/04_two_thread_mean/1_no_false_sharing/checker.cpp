// Checker of exercise 04.1: the sums against the serial reference, one thread
// per worker (not the caller's), and where the accumulators lie in memory.
#include <corelab/cache_line.hpp>  // cache_line
#include <corelab/dataset.hpp>     // make_uniform
#include <corelab/reduce.hpp>      // chunk, sum_loop
#include <cstdint>                 // std::uintptr_t
#include <mutex>                   // std::mutex
#include <set>                     // std::set
#include <thread>                  // std::this_thread::get_id
#include <vector>                  // std::vector

#include "check.hpp"
#include "exercise.hpp"

namespace {
struct Seen {
    std::uintptr_t address = 0;
    std::thread::id thread;
    int calls = 0;
};
}  // namespace

void run_check() {
    const auto data = corelab::make_uniform(200'003, 9);
    const std::span<const double> all(data.data(), data.size());
    for (unsigned threads : {2u, 1u, 3u, 7u}) {
        std::mutex mutex;
        std::vector<Seen> seen(threads);
        const auto got = shared_sums(all, threads, [&](unsigned k, const corelab::Partial* acc) {
            std::lock_guard lock(mutex);
            check::expect(k < threads, check::str("observe was called with worker ", k, " of ", threads));
            seen[k] = {reinterpret_cast<std::uintptr_t>(acc), std::this_thread::get_id(), seen[k].calls + 1};
        });
        check::expect(got.size() == threads, check::str(threads, " threads: ", got.size(), " results"));
        std::set<std::thread::id> ids;
        std::set<std::uintptr_t> lines;
        for (unsigned k = 0; k < threads; ++k) {
            const auto want = corelab::sum_loop(corelab::chunk(all, k, threads));
            check::expect(got[k].count == want.count && got[k].sum == want.sum,
                          check::str(threads, " threads: worker ", k, " summed ", got[k].sum, " over ", got[k].count,
                                     " values; its part sums to ", want.sum, " over ", want.count));
            check::expect(seen[k].calls == 1, check::str("worker ", k, " called observe ", seen[k].calls,
                                                         " times: once per worker, with its accumulator"));
            check::expect(seen[k].thread != std::this_thread::get_id(),
                          check::str("worker ", k, " ran on the caller's thread: start threads"));
            ids.insert(seen[k].thread);
            const std::uintptr_t first = seen[k].address / corelab::cache_line;
            const std::uintptr_t last = (seen[k].address + sizeof(corelab::Partial) - 1) / corelab::cache_line;
            check::expect(first == last, check::str("the accumulator of worker ", k, " straddles two cache lines"));
            lines.insert(first);
        }
        check::expect(ids.size() == threads, check::str(threads, " workers ran on only ", ids.size(), " threads"));
        check::expect(lines.size() == threads, check::str(threads, " accumulators lie on ", lines.size(),
                                                          " cache lines: two threads write one line (false sharing)"));
    }
}
