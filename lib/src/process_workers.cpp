// Implementation of corelab/process_workers.hpp: a queue for the results,
// and Children to start, watch and reap the workers.
#include "corelab/process_workers.hpp"

#include <sys/wait.h>  // WIFEXITED, WEXITSTATUS
#include <unistd.h>    // _exit

#include <string>  // std::string

#include "corelab/ipc/names.hpp"  // make_name

namespace corelab {

ProcessWorkers::ProcessWorkers(unsigned workers, ProcessOptions options) : workers_(workers), options_(options) {
    if (workers == 0) throw Error("ProcessWorkers needs at least one worker");
}

namespace detail {

ProcessRun::ProcessRun(unsigned workers, const ProcessOptions& options, std::size_t message_size)
    : workers_(workers),
      options_(options),
      message_size_(message_size),
      children_(workers, "Start the processes before any thread (or use ThreadWorkers)", About::workers),
      queue_(ipc::detail::QueueCore::create(ipc::make_name("results"), workers, message_size)) {}

ProcessRun::~ProcessRun() {
    children_.kill_all();  // before the queue goes
}

void ProcessRun::child_send(const void* message) noexcept {
    flush_stdio();  // _exit flushes nothing: what the worker printed would be lost
    // The queue has room for every worker's message, so this succeeds at
    // once unless the parent is gone; poll, never wait inside the queue.
    try {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        for (ipc::Backoff backoff; !queue_.try_send(message, message_size_); backoff.pause()) {
            if (std::chrono::steady_clock::now() >= deadline) ::_exit(exit_could_not_send);
        }
    } catch (...) {
        ::_exit(exit_could_not_send);
    }
    ::_exit(0);
}

// Why the parent sleeps on pidfds instead of polling: on a 2-core machine with
// two busy children, every wake-up of a polling parent preempts a child.
// Waking every 200 µs cost the two-process mean ~8 ms of its ~40 (measured).
// A child sends its result just before it exits, so the parent looks at the
// queue each time a child ends, and sleeps in between.
void ProcessRun::collect(const std::function<void(const void*)>& on_result) {
    static const std::string doing = " while computing its part";
    std::vector<unsigned char> buffer(message_size_);
    std::vector<bool> answered(workers_, false);
    unsigned received = 0;
    std::optional<std::pair<unsigned, std::string>> failure;
    std::string broken;  // why the queue is unusable, once it is
    std::optional<std::chrono::steady_clock::time_point> deadline;
    if (options_.timeout.count() > 0) deadline = std::chrono::steady_clock::now() + options_.timeout;

    // take every message waiting in the queue
    const auto drain = [&] {
        while (!failure && broken.empty()) {
            try {
                if (!queue_.try_receive(buffer.data(), message_size_)) break;
            } catch (const ipc::QueueBroken& e) {
                broken = e.what();  // a child died holding the lock: its wait status names it
                break;
            }
            MessageHead head;
            std::memcpy(&head, buffer.data(), sizeof head);
            if (head.worker >= workers_ || answered[head.worker]) {
                failure.emplace(0, "a worker sent a message for worker " + std::to_string(head.worker) +
                                       ", which is not one that is still due");
                break;
            }
            answered[head.worker] = true;
            ++received;
            if (head.failed != 0) {
                failure.emplace(head.worker, children_.who(head.worker) + " raised: " + head.error.str());
            } else {
                on_result(buffer.data());
            }
        }
    };

    std::vector<pollfd> none;
    while (!failure && (received < workers_ || !children_.all_reaped())) {
        drain();
        // reap every child that ended, and say how it ended
        for (unsigned k = 0; k < workers_ && !failure; ++k) {
            const std::optional<int> status = children_.try_reap(k);
            if (!status) continue;
            if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
                failure.emplace(k, describe_end(k, children_.pid(k), *status, doing));
            } else if (!answered[k]) {
                drain();  // it sent before it exited: the message is in the queue
                if (!answered[k] && !failure) {
                    failure.emplace(k, describe_end(k, children_.pid(k), *status, doing) +
                                           ", before returning its result" + (broken.empty() ? "" : ": " + broken));
                }
            }
        }
        if (!failure && deadline && std::chrono::steady_clock::now() >= *deadline) {
            std::string running;
            unsigned first = workers_;
            for (unsigned k = 0; k < workers_; ++k) {
                if (answered[k] && children_.reaped(k)) continue;
                if (first == workers_) first = k;
                running += (running.empty() ? "" : ", ") + children_.who(k) + " was" +
                           (answered[k] ? " exiting" : doing.substr(std::string(" while").size()));
            }
            failure.emplace(
                first == workers_ ? 0 : first,
                describe_timeout("ProcessWorkers(" + std::to_string(workers_) + ")", options_.timeout, running));
        }
        if (!failure && (received < workers_ || !children_.all_reaped())) children_.wait(none, deadline);
    }
    if (failure) {
        children_.kill_all();  // stop the others; every child is reaped before we throw
        throw WorkerError(failure->first, failure->second);
    }
}

}  // namespace detail
}  // namespace corelab
