// corelab/ipc/names.hpp — names of IPC objects, and who removes them.
//
// Concept: a named shared-memory segment or message queue outlives the
// process that made it unless someone removes it. Ours are named
// `corelab.<pid>.<purpose>.<random>`: the pid says who made the object, the
// random suffix makes the name impossible to guess (so nobody can plant an
// object under it first), and every object is created `create_only` with
// permissions 0600. The creator removes it on normal exit and on exceptions
// (RAII), on SIGINT/SIGTERM (a handler removes what this process created and
// kills the workers it started, then lets the signal end the process).
//
// A SIGKILLed owner removes nothing, so the next program that creates an IPC
// object (or `./course clean-ipc`) sweeps what it left. Who is gone is not
// decided by the pid in the name: a zombie still answers kill(pid, 0), an
// unrelated process may have the pid by now, and a run in another pid
// namespace (a container sharing /dev/shm) has a pid that means nothing here.
// Instead the creator holds a lock on each object for as long as it lives (a
// shared open-file-description lock, fcntl F_OFD_SETLK), and the sweep removes
// only what it can lock exclusively. The kernel drops the lock when the last
// descriptor of the object's open file is closed, which an ending process does
// before it becomes a zombie, in whatever pid namespace it ran; forked workers
// that inherit the descriptor keep it while they live. Used by lesson 03 and
// by SharedArray, MessageQueue and ProcessWorkers; lesson 07 tracks and locks
// its data files the same way (ScratchFile, remove_stale in their directory),
// and lesson 05's cache its temporary entry directories.
#pragma once

#include <signal.h>     // sigset_t
#include <sys/types.h>  // pid_t

#include <cstddef>      // std::size_t
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <vector>       // std::vector

namespace corelab::ipc {

/// Every object of ours starts with this.
inline constexpr std::string_view name_prefix = "corelab.";

/// Where Linux keeps POSIX shared-memory objects (and Boost's message queues).
inline constexpr const char* shm_directory = "/dev/shm";

/// `corelab.<this pid>.<purpose>.<16 random hex digits>`. `purpose` is
/// lower-case letters, digits and '_' (throws corelab::Error otherwise).
std::string make_name(std::string_view purpose);

/// The parts of one of our names.
struct NameParts {
    pid_t pid = 0;
    std::string purpose;
    std::string random;
};

/// The parts of `name`, or nullopt when it is not one of ours.
std::optional<NameParts> parse_name(std::string_view name);

/// A descriptor that holds an open-file-description lock on a file or a
/// directory (fcntl F_OFD_SETLK on a file, flock on a directory): shared when
/// a creator holds it (lock_as_owner: "I live"), exclusive when a sweep took
/// it (lock_if_unowned: nobody holds it). The lock goes when the last
/// descriptor of its open file is closed: this object's, and those of forked
/// children that inherited it (it is close-on-exec). Move-only.
class ObjectLock {
public:
    ObjectLock() noexcept = default;
    explicit ObjectLock(int fd) noexcept : fd_(fd) {}
    ObjectLock(ObjectLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    ObjectLock& operator=(ObjectLock&& other) noexcept;
    ObjectLock(const ObjectLock&) = delete;
    ObjectLock& operator=(const ObjectLock&) = delete;
    ~ObjectLock() { reset(); }

    /// True while a lock is held.
    explicit operator bool() const noexcept { return fd_ >= 0; }
    /// The descriptor holding the lock, or -1.
    int fd() const noexcept { return fd_; }
    /// Closes the descriptor (the lock goes unless another descriptor of the
    /// same open file, in this process or a forked child, still holds it).
    void reset() noexcept;

private:
    int fd_ = -1;
};

/// The creator's lock on a file or directory it has just created as `name`
/// (relative to the directory descriptor `dir_fd`, or AT_FDCWD): a shared
/// lock taken through a close-on-exec duplicate of `fd` (a descriptor of the
/// new object), or, when `fd` is -1, through a descriptor opened here without
/// following a symlink. It waits (at most 5 s) while a sweep holds it, then
/// checks that `name` still is what it locked. Returns an empty lock when it
/// is not: a sweep removed it between its creation and this call, and the
/// caller must create it again. Throws corelab::Error when it cannot be
/// opened, is not a regular file or directory of this user, or stays locked
/// by a sweep.
ObjectLock lock_as_owner(int dir_fd, const std::string& name, int fd = -1);

/// The sweep's test: opens `name` in `dir_fd` without following a symlink
/// and, when it is a regular file or directory of this user that no process
/// holds a lock on, returns an exclusive lock on it (the caller removes it
/// while it holds the lock); an empty lock otherwise. Never blocks.
ObjectLock lock_if_unowned(int dir_fd, const std::string& name);

/// Removes the files in `directory` (/dev/shm unless told) named like ours
/// that belong to this user and that no process holds (lock_if_unowned: its
/// creator and every child that inherited its lock are gone, or never took
/// it), and returns their names. Symlinks and other non-regular files are
/// left alone; the pid in a name is never consulted.
std::vector<std::string> remove_stale(const std::string& directory = shm_directory);

/// Runs remove_stale() the first time it is called in a process; every
/// creation of an IPC object calls it.
void remove_stale_once();

/// Throws corelab::Error, before anything is created, when the filesystem
/// behind /dev/shm has less than `bytes` free for `what`.
void check_room(std::size_t bytes, const std::string& what);

/// Signal cleanup: on SIGINT or SIGTERM the handler calls the cleanup hook
/// (set_signal_cleanup_hook: Children kills and reaps this process's
/// children), removes its tracked names, restores the
/// signal's default action and raises it again (so the exit status says which
/// signal ended the process). Installed once, and only for a signal whose
/// disposition is still the default (a program's own handler is kept).
void install_signal_cleanup();

/// The function the signal cleanup calls first; it may make only
/// async-signal-safe calls. The Workers layer (Children) sets it.
void set_signal_cleanup_hook(void (*hook)() noexcept) noexcept;

/// Holds SIGINT and SIGTERM back for its lifetime, so that an object is
/// never created without being tracked (the signal arrives just after).
class HoldSignals {
public:
    HoldSignals() noexcept;
    ~HoldSignals();
    HoldSignals(const HoldSignals&) = delete;
    HoldSignals& operator=(const HoldSignals&) = delete;

private:
    sigset_t old_;
};

/// Tracks a name this process created, for the signal handler. Throws
/// corelab::Error when too many are tracked at once.
void track_name(const std::string& name);
/// Stops tracking a name (it has been removed).
void untrack_name(const std::string& name) noexcept;
/// Tracks a file by its path (anywhere, not only in /dev/shm), for the
/// signal handler, which unlinks it. Throws corelab::Error when too many are
/// tracked at once or the path is longer than 511 bytes.
void track_path(const std::string& path);
/// Stops tracking a path (it has been removed, or is to be kept).
void untrack_path(const std::string& path) noexcept;

}  // namespace corelab::ipc
