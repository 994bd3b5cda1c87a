// corelab/ipc/message_queue.hpp — fixed-size messages between processes.
//
// Concept: the notebook's `multiprocessing.Queue`. A Boost.Interprocess
// `message_queue` lives in a named shared-memory segment; any process that
// maps it can put a message in or take one out. Its messages are raw bytes,
// so this wrapper carries one trivially copyable type T and checks sizes.
//
// One rule from experiment (see lesson 03's doc): the queue keeps a
// process-shared mutex in its segment, and a process killed while holding it
// can leave a waiter hung inside the queue's condition variable. So nothing
// here ever waits inside Boost: every call is a `try_` call, and the waiting
// calls poll with a short back-off. A queue whose lock was held by a dead
// process throws QueueBroken and is never touched again. Used by lesson 03
// and by ProcessWorkers.
#pragma once

#include <sys/types.h>  // pid_t

#include <array>        // std::array
#include <bit>          // std::bit_cast
#include <chrono>       // std::chrono::microseconds
#include <cstddef>      // std::size_t
#include <memory>       // std::unique_ptr
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <type_traits>  // std::is_trivially_copyable_v

#include "corelab/error.hpp"      // Error
#include "corelab/ipc/names.hpp"  // make_name

namespace corelab::ipc {

/// The queue cannot be used any more: a process died while holding its lock
/// (Boost reports EOWNERDEAD as lock_exception). Remove it and report the failure.
class QueueBroken : public Error {
public:
    using Error::Error;
};

/// Waiting without blocking: spin a little, then sleep 10, 20, 40... µs up to
/// a ceiling (200 µs by default), so a poll loop answers fast and costs
/// little CPU while it waits.
class Backoff {
public:
    explicit Backoff(std::chrono::microseconds ceiling = std::chrono::microseconds(200)) noexcept : ceiling_(ceiling) {}
    /// Waits a little longer than last time.
    void pause() noexcept;
    /// Starts again from the shortest wait (call it after progress).
    void reset() noexcept { step_ = 0; }

private:
    std::chrono::microseconds ceiling_;
    unsigned step_ = 0;
};

namespace detail {

/// The untyped queue: messages of exactly `message_size` bytes.
class QueueCore {
public:
    static QueueCore create(std::string name, std::size_t capacity, std::size_t message_size);
    static QueueCore open(std::string name, std::size_t message_size);
    QueueCore(QueueCore&&) noexcept;
    QueueCore& operator=(QueueCore&&) noexcept;
    ~QueueCore();

    /// False when full. Throws corelab::Error when `size` is not the queue's
    /// message size, QueueBroken when its lock was held by a dead process.
    bool try_send(const void* message, std::size_t size);
    /// False when empty. Same errors as try_send; also when a message of
    /// another size arrives.
    bool try_receive(void* message, std::size_t size);
    std::size_t capacity() const noexcept { return capacity_; }
    std::size_t message_size() const noexcept { return message_size_; }
    const std::string& name() const noexcept { return name_; }
    bool broken() const noexcept { return broken_; }

private:
    struct Impl;
    QueueCore() = default;
    void release() noexcept;
    void check_size(std::size_t size, const char* what) const;
    [[noreturn]] void fail(const std::exception& e);
    std::unique_ptr<Impl> impl_;
    ObjectLock lock_;  // the creator's liveness lock (ipc/names.hpp); empty for an opener
    std::string name_;
    std::size_t capacity_ = 0;
    std::size_t message_size_ = 0;
    pid_t creator_ = 0;
    bool broken_ = false;
};

}  // namespace detail

/// A queue of trivially copyable T between processes. The creating object
/// holds the queue's liveness lock (ipc/names.hpp) and removes the queue when
/// destroyed (only in the creating process).
template <class T>
class MessageQueue {
    static_assert(std::is_trivially_copyable_v<T>,
                  "MessageQueue carries trivially copyable types only: their bytes are the message");

public:
    /// Creates a queue for up to `capacity` messages named make_name(purpose),
    /// create_only, mode 0600. Throws corelab::Error when it cannot.
    static MessageQueue create(std::size_t capacity, std::string_view purpose = "queue") {
        return MessageQueue(detail::QueueCore::create(make_name(purpose), capacity, sizeof(T)));
    }
    /// Creates a queue under exactly `name`; throws corelab::Error if it exists.
    static MessageQueue create_named(std::string name, std::size_t capacity) {
        return MessageQueue(detail::QueueCore::create(std::move(name), capacity, sizeof(T)));
    }
    /// Opens a queue another process created. Throws corelab::Error when it is
    /// missing, not ours (owner, mode 0600), or carries messages of another size.
    static MessageQueue open(std::string name) {
        return MessageQueue(detail::QueueCore::open(std::move(name), sizeof(T)));
    }

    /// Puts `value` in the queue unless it is full; returns whether it did.
    bool try_send(const T& value) { return core_.try_send(&value, sizeof(T)); }

    /// Puts `value` in the queue, polling while it is full. Throws
    /// corelab::Error when it stays full for `timeout`.
    void send(const T& value, std::chrono::microseconds timeout = std::chrono::seconds(10)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (Backoff backoff; !try_send(value); backoff.pause()) {
            if (std::chrono::steady_clock::now() >= deadline) {
                throw Error("message queue '" + name() + "' stayed full for " + std::to_string(timeout.count()) +
                            " µs: nobody is receiving (size the queue for every message)");
            }
        }
    }

    /// Takes the oldest message if there is one.
    std::optional<T> try_receive() {
        std::array<std::byte, sizeof(T)> raw;
        if (!core_.try_receive(raw.data(), sizeof(T))) return std::nullopt;
        return std::bit_cast<T>(raw);
    }

    /// Takes the oldest message, polling for at most `timeout`; nullopt when
    /// none came.
    std::optional<T> receive_for(std::chrono::microseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (Backoff backoff;; backoff.pause()) {
            if (auto value = try_receive()) return value;
            if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        }
    }

    const std::string& name() const noexcept { return core_.name(); }
    std::size_t capacity() const noexcept { return core_.capacity(); }
    /// True once a call threw QueueBroken: the queue must not be used again.
    bool broken() const noexcept { return core_.broken(); }

private:
    explicit MessageQueue(detail::QueueCore core) : core_(std::move(core)) {}
    detail::QueueCore core_;
};

}  // namespace corelab::ipc
