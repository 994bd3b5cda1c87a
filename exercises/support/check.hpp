// exercises/support/check.hpp — what every exercise's checker is built from.
//
// A checker is a program: it calls the student's functions, compares what
// they return with the library's serial reference, times them, and exits 0
// ("done") or 1 ("not yet"). The first line it prints is the verdict: "done",
// or the one sentence that says what is wrong; notes (timings, details)
// follow. `./course check` shows that first line in its table.
//
// Each checker defines run_check(); check_main.cpp runs it and then checks
// what every exercise must leave behind: no thread still running and no IPC
// object of this process in /dev/shm. A run_check() that made no check at
// all fails too. Only then does check_main report the verdict to `./course`
// (verdict.hpp): an exit before that is never "done".
#pragma once
#include <cstddef>  // std::size_t
#include <sstream>  // std::ostringstream
#include <string>   // std::string
#include <vector>   // std::vector

namespace check {

/// Thrown by expect(): the check stops with this message as its verdict.
struct Failure {
    std::string message;
};

/// Counts one check made (expect() does; check_main fails a run_check that made none).
void count_check();

/// Fails the check with `message` unless `ok`.
inline void expect(bool ok, const std::string& message) {
    count_check();
    if (!ok) throw Failure{message};
}

/// A line printed after the verdict (a timing, a detail).
void note(const std::string& line);

/// Threads this process runs now (entries of /proc/self/task).
std::size_t thread_count();

/// This process's IPC objects in /dev/shm (names corelab.<our pid>.*).
std::vector<std::string> our_ipc_objects();

/// Minor page faults of every child process reaped so far (getrusage
/// RUSAGE_CHILDREN): it grows when a forked child ran and was reaped.
long reaped_children_faults();

/// Shortest of `repeat` runs of fn(), in seconds.
template <class F>
double best_seconds(int repeat, F&& fn);

/// Streams its arguments into a string: check::str("got ", x, " want ", y).
template <class... Args>
std::string str(const Args&... args) {
    std::ostringstream out;
    out.precision(17);
    (out << ... << args);
    return out.str();
}

}  // namespace check

/// Defined by each exercise's checker.cpp.
void run_check();

#include <algorithm>  // std::min
#include <chrono>     // std::chrono::steady_clock

template <class F>
double check::best_seconds(int repeat, F&& fn) {
    double best = 1e300;
    for (int i = 0; i < repeat; ++i) {
        const auto start = std::chrono::steady_clock::now();
        fn();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return best;
}
