// exercises/support/check_main.cpp — the main() of every checker.
//
// Runs the exercise's run_check(), then asks what a correct parallel program
// leaves behind: every thread joined, every IPC object removed. Prints the
// verdict first ("done" or what is wrong), then the notes. Exit status: 0 done,
// 1 not yet. Then, and only then, it reports the verdict on the channel
// `./course` gave it (verdict.hpp): a run that ends earlier, whatever its exit
// status, is "stopped before its checks finished". A crash is the student's
// bug too: `./course check` reports the signal.
#include <sys/resource.h>  // getrusage
#include <unistd.h>        // getpid

#include <atomic>      // std::atomic
#include <exception>   // std::exception
#include <filesystem>  // std::filesystem::directory_iterator
#include <iostream>    // std::cout
#include <string>      // std::string
#include <thread>      // std::thread
#include <vector>      // std::vector

#include "check.hpp"
#include "verdict.hpp"

namespace {
std::vector<std::string>& notes() {
    static std::vector<std::string> lines;
    return lines;
}

std::atomic<long> checks_made{0};
}  // namespace

void check::count_check() {
    checks_made.fetch_add(1, std::memory_order_relaxed);
}

void check::note(const std::string& line) {
    notes().push_back(line);
}

std::size_t check::thread_count() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) ++n;
    return n;
}

std::vector<std::string> check::our_ipc_objects() {
    const std::string prefix = "corelab." + std::to_string(::getpid()) + ".";
    std::vector<std::string> found;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec)) {
        const std::string name = entry.path().filename().string();
        if (name.starts_with(prefix)) found.push_back(name);
    }
    return found;
}

long check::reaped_children_faults() {
    rusage usage{};
    ::getrusage(RUSAGE_CHILDREN, &usage);
    return usage.ru_minflt;
}

int main() {
    // First of all: take the token, before any of the student's code runs
    // (only static initialisers ran before main, and they cannot report).
    const auto channel = check::VerdictChannel::from_environment();
    std::string verdict = "done";
    try {
        // ThreadSanitizer starts a thread of its own with the first thread
        // created: start and join one first, so that it is counted before.
        std::thread([] {}).join();
        const std::size_t threads_before = check::thread_count();
        run_check();
        check::expect(checks_made.load() > 0,
                      "the checker made no check: its run_check() is not the course's (restore checker.cpp)");
        check::expect(check::thread_count() == threads_before,
                      check::str("a thread is still running after your function returned (", check::thread_count(),
                                 " threads, ", threads_before, " before): join every thread you start"));
        const auto left = check::our_ipc_objects();
        check::expect(left.empty(), "an IPC object is left in /dev/shm: " + (left.empty() ? "" : left.front()) +
                                        " (remove what you create, RAII does it)");
    } catch (const check::Failure& failure) {
        verdict = failure.message;
    } catch (const std::exception& e) {
        verdict = std::string("your code threw: ") + e.what();
    } catch (...) {
        verdict = "your code threw something that is not a std::exception";
    }
    std::cout << verdict << '\n';
    for (const auto& line : notes()) std::cout << "  " << line << '\n';
    std::cout.flush();
    if (verdict == "done") {
        channel.pass();
    } else {
        channel.fail(verdict);
    }
    return verdict == "done" ? 0 : 1;
}
