// corelab/process_workers.hpp — the notebook's `Process`es: forked workers.
//
// Concept: a fork makes a child that starts as a copy of the parent: its
// memory (copy-on-write: a page is copied only when one side writes it), its
// code, its data. Child k runs fn(k), sends its result through an
// ipc::MessageQueue (the notebook's `Queue`) and `_exit`s without running the
// parent's destructors or atexit handlers (having flushed what it printed:
// `_exit` flushes nothing). The parent collects one result per child and
// reaps every child: it looks at the queue (never waiting inside it) each
// time a child ends, sleeping on the children's pidfds in between
// (corelab::Children), so a child that threw, crashed, was killed or hung is
// noticed at once (a hung one at the timeout) and reported by name, pid and
// signal, like joblib's loky does. Children ignore SIGINT (the parent stops
// them), die with their parent (PR_SET_PDEATHSIG), and are never forked from
// a process that runs other threads.
// Used by lesson 03; ThreadWorkers (lesson 04) has the same shape.
#pragma once

#include <sys/types.h>  // pid_t

#include <chrono>       // std::chrono::milliseconds
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint32_t
#include <cstring>      // std::memcpy
#include <functional>   // std::function
#include <optional>     // std::optional
#include <type_traits>  // std::invoke_result_t
#include <utility>      // std::forward
#include <vector>       // std::vector

#include "corelab/children.hpp"           // Children, ChildError
#include "corelab/error.hpp"              // Error, WorkerError
#include "corelab/ipc/message_queue.hpp"  // the results travel through one

namespace corelab {

/// How ProcessWorkers runs its children.
struct ProcessOptions {
    /// 0: no timeout. Otherwise children still running after it are SIGKILLed,
    /// reaped, and run() throws WorkerError naming the first of them.
    std::chrono::milliseconds timeout{0};
};

namespace detail {

/// The fixed part of every message a child sends.
struct MessageHead {
    std::uint32_t worker = 0;
    std::uint32_t failed = 0;  ///< 1: error holds the child's exception message
    ChildError error;
};

template <class R>
struct WorkerMessage {
    MessageHead head;
    R value;
};

/// The untyped part of one run: fork, collect, reap, clean up.
class ProcessRun {
public:
    /// Checks that this process runs no other thread (throws corelab::Error)
    /// and creates the result queue with room for `workers` messages.
    ProcessRun(unsigned workers, const ProcessOptions& options, std::size_t message_size);
    ProcessRun(const ProcessRun&) = delete;
    ProcessRun& operator=(const ProcessRun&) = delete;
    /// Kills and reaps any child still running (when collect() did not finish).
    ~ProcessRun();

    /// Starts worker k. Returns true in the child (which must then call
    /// child_send and never return), false in the parent.
    bool fork_worker(unsigned k) { return children_.start(k); }
    /// In the child: sends the message and _exits (status 0; 70 when the
    /// message could not be sent).
    [[noreturn]] void child_send(const void* message) noexcept;
    /// In the parent: collects one message per child and reaps them all,
    /// calling on_result(message) for each result. Throws WorkerError for
    /// the first worker that failed, after every child is reaped.
    void collect(const std::function<void(const void*)>& on_result);

private:
    unsigned workers_;
    ProcessOptions options_;
    std::size_t message_size_;
    Children children_;  // before the queue: it checks the threads first
    ipc::detail::QueueCore queue_;
};

}  // namespace detail

/// A fixed number of forked worker processes (the notebook's `Process`).
class ProcessWorkers {
public:
    /// Throws corelab::Error when workers is 0.
    explicit ProcessWorkers(unsigned workers, ProcessOptions options = {});
    unsigned size() const noexcept { return workers_; }
    const ProcessOptions& options() const noexcept { return options_; }

    /// Forks size() children; child k runs fn(k), sends its result through an
    /// ipc::MessageQueue and _exits. Returns the results in worker order.
    /// Throws WorkerError when a worker threw (`worker 1 (pid 4242) raised:
    /// <its message>`), was killed by a signal or exited (`worker 1 (pid 4242)
    /// was killed by SIGKILL while computing its part`), or outlived
    /// options().timeout; the other
    /// children are then killed, every child is reaped and the queue removed.
    /// Throws corelab::Error when this process runs other threads (forking
    /// them is unsafe) or the queue cannot be made. The result type must be
    /// trivially copyable and default constructible.
    template <class F>
    auto run(F&& fn) -> std::vector<std::invoke_result_t<F&, unsigned>> {
        using R = std::invoke_result_t<F&, unsigned>;
        static_assert(std::is_trivially_copyable_v<R> && std::is_default_constructible_v<R>,
                      "a process worker's result travels as bytes: make it trivially copyable (a Partial, a "
                      "number, a struct of numbers)");
        using Message = detail::WorkerMessage<R>;
        detail::ProcessRun process_run(workers_, options_, sizeof(Message));
        for (unsigned k = 0; k < workers_; ++k) {
            if (process_run.fork_worker(k)) {
                // in the child: compute, send the result or the error, _exit
                Message message{};
                message.head.worker = k;
                try {
                    message.value = fn(k);
                } catch (...) {
                    message.head.failed = 1;
                    message.head.error = ChildError::current();
                }
                process_run.child_send(&message);
            }
        }
        std::vector<R> results(workers_);
        process_run.collect([&](const void* bytes) {
            Message message;
            std::memcpy(&message, bytes, sizeof message);
            results[message.head.worker] = message.value;
        });
        return results;
    }

private:
    unsigned workers_;
    ProcessOptions options_;
};

}  // namespace corelab
