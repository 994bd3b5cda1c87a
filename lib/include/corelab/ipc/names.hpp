// corelab/ipc/names.hpp — names of IPC objects, and who removes them.
//
// Concept: a named shared-memory segment or message queue outlives the
// process that made it unless someone removes it. Ours are named
// `corelab.<pid>.<purpose>.<random>`: the pid says who owns the object, the
// random suffix makes the name impossible to guess (so nobody can plant an
// object under it first), and every object is created `create_only` with
// permissions 0600. The creator removes it on normal exit and on exceptions
// (RAII), on SIGINT/SIGTERM (a handler removes what this process created and
// kills the workers it started, then lets the signal end the process), and a
// SIGKILLed owner's leftovers are swept by the next program that creates an
// IPC object (or by `./course clean-ipc`). Used by lesson 03 and by
// SharedArray, MessageQueue and ProcessWorkers; lesson 07 tracks its data
// files the same way (track_path, remove_stale in their directory).
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

/// Removes the objects in `directory` (/dev/shm unless told) named like ours
/// whose owning pid no longer runs and which belong to this user; returns
/// their names.
std::vector<std::string> remove_stale(const std::string& directory = shm_directory);

/// Runs remove_stale() the first time it is called in a process; every
/// creation of an IPC object calls it.
void remove_stale_once();

/// Throws corelab::Error, before anything is created, when the filesystem
/// behind /dev/shm has less than `bytes` free for `what`.
void check_room(std::size_t bytes, const std::string& what);

/// Signal cleanup: on SIGINT or SIGTERM the handler kills and reaps the
/// tracked children of this process, removes its tracked names, restores the
/// signal's default action and raises it again (so the exit status says which
/// signal ended the process). Installed once, and only for a signal whose
/// disposition is still the default (a program's own handler is kept).
void install_signal_cleanup();

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
/// Tracks a child this process forked, for the signal handler.
void track_child(pid_t child);
/// Stops tracking a child (it has been reaped).
void untrack_child(pid_t child) noexcept;

/// Writes out what stdio (every FILE) and std::cout, std::cerr and std::clog
/// still buffer. A worker calls it before its `_exit`, which flushes
/// nothing; fork_worker_child calls it before forking, or every child would
/// write its copy of the parent's unwritten text again.
void flush_stdio() noexcept;

/// Forks one worker child the way every corelab worker is forked: stdio is
/// flushed first (flush_stdio); SIGINT and SIGTERM are held until the child
/// is tracked (so the cleanup handler never misses it); the child dies with
/// its parent (PR_SET_PDEATHSIG), ignores SIGINT (the parent stops it) and
/// keeps SIGTERM's default. Returns 0 in the child and the child's pid,
/// already tracked, in the parent. Throws corelab::Error naming `worker` and
/// ending with `advice` when fork fails.
pid_t fork_worker_child(unsigned worker, const std::string& advice);

/// SIGKILLs every child of `pids` not yet `reaped` (pid <= 0: never started),
/// then reaps and untracks each one and marks it reaped. Does nothing in a
/// process other than `parent` (a child that inherited the lists).
void kill_and_reap(pid_t parent, const std::vector<pid_t>& pids, std::vector<bool>& reaped) noexcept;

/// How many threads this process runs now (entries of /proc/self/task).
unsigned live_threads();

}  // namespace corelab::ipc
