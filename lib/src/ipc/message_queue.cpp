// Implementation of corelab/ipc/message_queue.hpp: the untyped queue and the back-off.
#include "corelab/ipc/message_queue.hpp"

#include <fcntl.h>     // AT_FDCWD
#include <sys/stat.h>  // stat
#include <unistd.h>    // getpid, geteuid

#include <boost/interprocess/ipc/message_queue.hpp>  // message_queue
#include <cstdio>                                    // std::snprintf
#include <cstring>                                   // std::strerror
#include <thread>                                    // std::this_thread

#include "corelab/ipc/names.hpp"  // check_room, track_name, lock_as_owner

namespace bip = boost::interprocess;

namespace corelab::ipc {

void Backoff::pause() noexcept {
    // A few yields first (a message is often a few microseconds away), then
    // sleeps that double up to the ceiling.
    if (step_ < 4) {
        ++step_;
        std::this_thread::yield();
        return;
    }
    const auto wait = std::chrono::microseconds(10 << std::min(step_ - 4, 10u));
    std::this_thread::sleep_for(std::min(wait, ceiling_));
    ++step_;
}

namespace detail {

struct QueueCore::Impl {
    template <class... Args>
    explicit Impl(Args&&... args) : queue(std::forward<Args>(args)...) {}
    bip::message_queue queue;
};

QueueCore QueueCore::create(std::string name, std::size_t capacity, std::size_t message_size) {
    remove_stale_once();
    install_signal_cleanup();
    if (capacity == 0) throw Error("message queue '" + name + "' needs room for at least one message");
    // Boost keeps each message with a small header and a pointer to it; this
    // over-estimates its segment a little (its exact size is private).
    const std::size_t bytes = capacity * ((message_size + 15) / 16 * 16 + 64) + 65536;
    check_room(bytes, "message queue '" + name + "'");
    QueueCore q;
    const HoldSignals hold;  // until it is tracked
    const std::string path = std::string(shm_directory) + "/" + name;
    for (int attempt = 1; !q.lock_; ++attempt) {
        try {
            // create the queue: create_only (never adopt an existing one), mode 0600
            q.impl_ =
                std::make_unique<Impl>(bip::create_only, name.c_str(), capacity, message_size, bip::permissions(0600));
        } catch (const bip::interprocess_exception& e) {
            if (e.get_error_code() == bip::already_exists_error) {
                throw Error("message queue '" + name + "' already exists: refusing to use an object someone else made");
            }
            throw Error("cannot create message queue '" + name + "': " + e.what());
        }
        // lock its file: the lock tells a sweep that its owner lives (ipc/names.hpp).
        // Boost keeps no descriptor of it, so open it again; a sweep that removed
        // it before the lock is noticed: create it again.
        try {
            q.lock_ = lock_as_owner(AT_FDCWD, path);
        } catch (...) {
            q.impl_.reset();
            bip::message_queue::remove(name.c_str());
            throw;
        }
        if (!q.lock_) {
            q.impl_.reset();
            if (attempt == 8) {
                throw Error("cannot create message queue '" + name + "': another process removed it 8 times");
            }
        }
    }
    q.name_ = std::move(name);
    q.creator_ = ::getpid();
    q.capacity_ = capacity;
    q.message_size_ = message_size;
    track_name(q.name_);  // throws: q's destructor removes the queue
    return q;
}

QueueCore QueueCore::open(std::string name, std::size_t message_size) {
    // check that the object is ours before Boost maps it
    const std::string path = std::string(shm_directory) + "/" + name;
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) {
        throw Error("cannot open message queue '" + name + "': " + std::strerror(errno));
    }
    if (st.st_uid != ::geteuid() || (st.st_mode & 0077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw Error("refusing to open message queue '" + name + "': it belongs to uid " + std::to_string(st.st_uid) +
                    " with mode " + mode + ", not to this user with mode 0600");
    }
    QueueCore q;
    try {
        q.impl_ = std::make_unique<Impl>(bip::open_only, name.c_str());
    } catch (const bip::interprocess_exception& e) {
        throw Error("cannot open message queue '" + name + "': " + e.what());
    }
    q.name_ = std::move(name);
    q.capacity_ = q.impl_->queue.get_max_msg();
    q.message_size_ = q.impl_->queue.get_max_msg_size();
    q.check_size(message_size, "opened for");
    return q;
}

QueueCore::QueueCore(QueueCore&& o) noexcept
    : impl_(std::move(o.impl_)),
      lock_(std::move(o.lock_)),
      name_(std::move(o.name_)),
      capacity_(o.capacity_),
      message_size_(o.message_size_),
      creator_(o.creator_),
      broken_(o.broken_) {
    o.creator_ = 0;
    o.name_.clear();
}

QueueCore& QueueCore::operator=(QueueCore&& o) noexcept {
    if (this != &o) {
        release();
        impl_ = std::move(o.impl_);
        lock_ = std::move(o.lock_);
        name_ = std::move(o.name_);
        capacity_ = o.capacity_;
        message_size_ = o.message_size_;
        creator_ = o.creator_;
        broken_ = o.broken_;
        o.creator_ = 0;
        o.name_.clear();
    }
    return *this;
}

QueueCore::~QueueCore() {
    release();
}

void QueueCore::release() noexcept {
    // Unmapping never takes the queue's lock, so a broken queue is released
    // like any other; only its creator removes the name.
    impl_.reset();
    if (creator_ != 0 && creator_ == ::getpid()) {
        bip::message_queue::remove(name_.c_str());
        untrack_name(name_);
    }
    lock_.reset();  // after the removal: a sweep never sees our live queue unlocked
    creator_ = 0;
}

void QueueCore::check_size(std::size_t size, const char* what) const {
    // Boost answers a wrong size with a generic library_error: say what was wrong.
    if (size != message_size_) {
        throw Error("message queue '" + name_ + "' carries messages of " + std::to_string(message_size_) +
                    " bytes, but it was " + what + " a message of " + std::to_string(size) +
                    " bytes: both sides must use the same message type");
    }
}

void QueueCore::fail(const std::exception& e) {
    broken_ = true;
    throw QueueBroken("message queue '" + name_ + "' is unusable: a process died while holding its lock (" + e.what() +
                      "); it is no longer touched and is removed by its creator");
}

bool QueueCore::try_send(const void* message, std::size_t size) {
    if (broken_) throw QueueBroken("message queue '" + name_ + "' is unusable: it broke earlier");
    check_size(size, "given");
    try {
        return impl_->queue.try_send(message, size, 0);
    } catch (const bip::lock_exception& e) {
        fail(e);
    } catch (const bip::interprocess_exception& e) {
        throw Error("message queue '" + name_ + "': " + e.what());
    }
}

bool QueueCore::try_receive(void* message, std::size_t size) {
    if (broken_) throw QueueBroken("message queue '" + name_ + "' is unusable: it broke earlier");
    check_size(size, "asked for");
    bip::message_queue::size_type received = 0;
    unsigned priority = 0;
    bool got = false;
    try {
        got = impl_->queue.try_receive(message, size, received, priority);
    } catch (const bip::lock_exception& e) {
        fail(e);
    } catch (const bip::interprocess_exception& e) {
        throw Error("message queue '" + name_ + "': " + e.what());
    }
    if (got && received != size) {
        throw Error("message queue '" + name_ + "' delivered a message of " + std::to_string(received) +
                    " bytes, expected " + std::to_string(size) + ": a sender used another message type");
    }
    return got;
}

}  // namespace detail
}  // namespace corelab::ipc
