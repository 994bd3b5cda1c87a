// Implementation of corelab/ipc/names.hpp: names, liveness locks, the stale
// sweep, and the signal handler's table of names (fixed arrays and atomics: a
// handler may not allocate).
#include "corelab/ipc/names.hpp"

#include <dirent.h>       // fdopendir, readdir
#include <fcntl.h>        // open, openat, fcntl(F_OFD_SETLK)
#include <signal.h>       // sigaction, kill, raise
#include <sys/file.h>     // flock
#include <sys/random.h>   // getrandom
#include <sys/stat.h>     // fstat, fstatat
#include <sys/statvfs.h>  // statvfs
#include <unistd.h>       // getpid, unlink

#include <atomic>   // std::atomic
#include <cerrno>   // errno
#include <chrono>   // std::chrono::milliseconds
#include <cstdio>   // std::snprintf, std::fflush
#include <cstring>  // std::strcmp, std::strerror
#include <mutex>    // std::once_flag
#include <random>   // std::random_device
#include <thread>   // std::this_thread::sleep_for

#include "corelab/error.hpp"  // Error

namespace corelab::ipc {
namespace {

// One tracked object. state: 0 free, 1 being written, 2 in use.
struct NameSlot {
    std::atomic<int> state{0};
    pid_t owner = 0;
    char path[512] = {};
};
NameSlot g_names[256];
// What the handler does first (Children: kill and reap this process's children).
std::atomic<void (*)() noexcept> g_cleanup_hook{nullptr};

template <class Slot, std::size_t N, class Fill>
bool claim_slot(Slot (&slots)[N], Fill fill) {
    for (Slot& s : slots) {
        int expected = 0;
        if (s.state.compare_exchange_strong(expected, 1, std::memory_order_acquire)) {
            s.owner = ::getpid();
            fill(s);
            s.state.store(2, std::memory_order_release);
            return true;
        }
    }
    return false;
}

// The handler: only async-signal-safe calls (the hook's, unlink, sigaction, raise).
void on_signal(int sig) {
    const int saved = errno;
    const pid_t self = ::getpid();
    if (const auto hook = g_cleanup_hook.load(std::memory_order_acquire)) hook();
    for (NameSlot& s : g_names) {
        if (s.state.load(std::memory_order_acquire) == 2 && s.owner == self) ::unlink(s.path);
    }
    // Die of the same signal, so the parent (or the shell: status 130) sees it.
    struct sigaction dfl{};
    dfl.sa_handler = SIG_DFL;
    ::sigemptyset(&dfl.sa_mask);
    ::sigaction(sig, &dfl, nullptr);
    sigset_t set;
    ::sigemptyset(&set);
    ::sigaddset(&set, sig);
    ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
    ::raise(sig);
    errno = saved;
}

bool valid_purpose(std::string_view purpose) {
    if (purpose.empty() || purpose.size() > 64) return false;
    for (char c : purpose) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    }
    return true;
}

std::string shm_path(const std::string& name) {
    return std::string(shm_directory) + "/" + name;
}

}  // namespace

std::string make_name(std::string_view purpose) {
    if (!valid_purpose(purpose)) {
        throw Error("IPC name purpose '" + std::string(purpose) +
                    "' must be 1 to 64 lower-case letters, digits or '_'");
    }
    unsigned char bytes[8];
    if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) {
        std::random_device rd;
        for (auto& b : bytes) b = static_cast<unsigned char>(rd());
    }
    char hex[17];
    for (std::size_t i = 0; i < sizeof bytes; ++i) std::snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
    return std::string(name_prefix) + std::to_string(::getpid()) + "." + std::string(purpose) + "." + hex;
}

std::optional<NameParts> parse_name(std::string_view name) {
    if (name.substr(0, name_prefix.size()) != name_prefix) return std::nullopt;
    name.remove_prefix(name_prefix.size());
    const auto dot1 = name.find('.');
    const auto dot2 = dot1 == std::string_view::npos ? dot1 : name.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || name.find('.', dot2 + 1) != std::string_view::npos) return std::nullopt;
    const std::string_view pid_text = name.substr(0, dot1);
    if (pid_text.empty() || pid_text.size() > 9) return std::nullopt;
    NameParts parts;
    for (char c : pid_text) {
        if (c < '0' || c > '9') return std::nullopt;
        parts.pid = parts.pid * 10 + (c - '0');
    }
    parts.purpose = std::string(name.substr(dot1 + 1, dot2 - dot1 - 1));
    parts.random = std::string(name.substr(dot2 + 1));
    if (parts.pid <= 0 || !valid_purpose(parts.purpose) || parts.random.empty()) return std::nullopt;
    return parts;
}

// ------------------------------------------------------------ liveness locks
//
// A creator cannot lock an object before its name is visible (shm_open and
// Boost's queue create the name first), so there is a moment when a new object
// is unlocked and looks abandoned. Both sides therefore check the name while
// they hold their lock:
//   - the creator takes its shared lock, then checks that the name is still
//     the file it locked;
//   - a sweep takes its exclusive lock, checks the same, and removes the name
//     while it still holds the lock.
// The two locks exclude each other, so one of two things happens. The creator
// locks first: the sweep's lock fails and the object is kept. Or the sweep
// locks first and removes the name: the creator's lock waits until the sweep
// lets go, then finds the name gone and creates the object again (or, for a
// cache's temporary directory, reports that it could not store). A new object
// is never lost unnoticed, and a dead owner's is removed at once, however
// young: no age rule, no pid.

ObjectLock& ObjectLock::operator=(ObjectLock&& other) noexcept {
    if (this != &other) {
        reset();
        fd_ = other.fd_;
        other.fd_ = -1;
    }
    return *this;
}

void ObjectLock::reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

namespace {

// The whole file, shared (F_RDLCK) or exclusive (F_WRLCK), owned by the open
// file description (not by the process, unlike a classic POSIX lock).
int ofd_lock(int fd, short type) {
    struct flock lock{};
    lock.l_type = type;
    lock.l_whence = SEEK_SET;
    lock.l_start = 0;
    lock.l_len = 0;
    return ::fcntl(fd, F_OFD_SETLK, &lock);
}

// A regular file takes an fcntl OFD lock. A directory cannot be opened for
// writing, which an exclusive fcntl lock needs, so it takes flock(), which is
// owned by the open file description too and dropped the same way.
int shared_lock(int fd, const struct stat& st) {
    return S_ISDIR(st.st_mode) ? ::flock(fd, LOCK_SH | LOCK_NB) : ofd_lock(fd, F_RDLCK);
}
int exclusive_lock(int fd, const struct stat& st) {
    return S_ISDIR(st.st_mode) ? ::flock(fd, LOCK_EX | LOCK_NB) : ofd_lock(fd, F_WRLCK);
}

bool same_file(const struct stat& a, const struct stat& b) {
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// Whether `name` in `dir_fd` (not followed if a symlink) is the file of `st`.
bool still_named(int dir_fd, const std::string& name, const struct stat& st) {
    struct stat now{};
    return ::fstatat(dir_fd, name.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0 && same_file(now, st);
}

}  // namespace

ObjectLock lock_as_owner(int dir_fd, const std::string& name, int fd) {
    ObjectLock lock(fd >= 0
                        ? ::fcntl(fd, F_DUPFD_CLOEXEC, 0)
                        : ::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    if (!lock) {
        if (fd < 0 && errno == ENOENT) return {};  // swept before it was opened
        throw Error("cannot lock '" + name + "': " + std::strerror(errno));
    }
    struct stat st{};
    if (::fstat(lock.fd(), &st) != 0) throw Error("cannot inspect '" + name + "': " + std::strerror(errno));
    if (!(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) || st.st_uid != ::geteuid()) {
        throw Error("refusing to lock '" + name + "': it is not a regular file or directory of this user");
    }
    // A sweep holds its exclusive lock only while it checks and removes the name.
    for (int waited_ms = 0; shared_lock(lock.fd(), st) != 0; ++waited_ms) {
        if ((errno != EAGAIN && errno != EACCES && errno != EINTR) || waited_ms >= 5000) {
            throw Error("cannot lock '" + name + "': " +
                        (waited_ms >= 5000 ? std::string("another process held it for 5 s") : std::strerror(errno)));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (!still_named(dir_fd, name, st)) return {};  // a sweep removed it before it was locked
    return lock;
}

ObjectLock lock_if_unowned(int dir_fd, const std::string& name) {
    // Look before opening: never open a symlink, a FIFO or a device, nor
    // another user's file.
    struct stat seen{};
    if (::fstatat(dir_fd, name.c_str(), &seen, AT_SYMLINK_NOFOLLOW) != 0 ||
        !(S_ISREG(seen.st_mode) || S_ISDIR(seen.st_mode)) || seen.st_uid != ::geteuid()) {
        return {};
    }
    // An exclusive fcntl lock needs a descriptor open for writing, which a
    // directory cannot have.
    const int flags = S_ISDIR(seen.st_mode) ? O_RDONLY | O_DIRECTORY : O_RDWR | O_NONBLOCK | O_NOCTTY;
    ObjectLock lock(::openat(dir_fd, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC));
    struct stat st{};
    if (!lock || ::fstat(lock.fd(), &st) != 0 || !same_file(st, seen)) return {};
    if (exclusive_lock(lock.fd(), st) != 0) return {};  // someone holds it: its owner lives
    if (!still_named(dir_fd, name, st)) return {};      // renamed or replaced meanwhile
    return lock;
}

std::vector<std::string> remove_stale(const std::string& directory) {
    std::vector<std::string> removed;
    const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) return removed;
    std::vector<std::string> names;
    const int list_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (DIR* dir = list_fd >= 0 ? ::fdopendir(list_fd) : nullptr) {
        while (const dirent* entry = ::readdir(dir)) {
            if (parse_name(entry->d_name)) names.emplace_back(entry->d_name);
        }
        ::closedir(dir);
    } else if (list_fd >= 0) {
        ::close(list_fd);
    }
    for (const auto& name : names) {
        const ObjectLock lock = lock_if_unowned(dir_fd, name);
        struct stat st{};
        if (!lock || ::fstat(lock.fd(), &st) != 0 || !S_ISREG(st.st_mode)) continue;  // held, or not a file
        if (::unlinkat(dir_fd, name.c_str(), 0) == 0) removed.push_back(name);
    }
    ::close(dir_fd);
    return removed;
}

void remove_stale_once() {
    static std::once_flag once;
    std::call_once(once, [] { (void)remove_stale(); });
}

void check_room(std::size_t bytes, const std::string& what) {
    struct statvfs fs{};
    if (::statvfs(shm_directory, &fs) != 0) {
        throw Error(std::string("cannot create ") + what + ": " + shm_directory + " is not usable (" +
                        std::strerror(errno) + "); POSIX shared memory needs a tmpfs mounted there",
                    About::shared_memory);
    }
    const unsigned long long free_bytes = static_cast<unsigned long long>(fs.f_bavail) * fs.f_frsize;
    if (bytes > free_bytes) {
        char text[320];
        std::snprintf(text, sizeof text, "%s needs %.1f MB but %s has only %.1f MB free", what.c_str(),
                      static_cast<double>(bytes) / 1e6, shm_directory, static_cast<double>(free_bytes) / 1e6);
        throw Error(text, About::shared_memory);
    }
}

void set_signal_cleanup_hook(void (*hook)() noexcept) noexcept {
    g_cleanup_hook.store(hook, std::memory_order_release);
}

void install_signal_cleanup() {
    static std::once_flag once;
    std::call_once(once, [] {
        for (int sig : {SIGINT, SIGTERM}) {
            struct sigaction old{};
            if (::sigaction(sig, nullptr, &old) != 0) continue;
            if ((old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL) continue;  // keep theirs
            struct sigaction act{};
            act.sa_handler = on_signal;
            ::sigemptyset(&act.sa_mask);
            ::sigaddset(&act.sa_mask, SIGINT);  // one cleanup at a time
            ::sigaddset(&act.sa_mask, SIGTERM);
            ::sigaction(sig, &act, nullptr);
        }
    });
}

HoldSignals::HoldSignals() noexcept {
    sigset_t hold;
    ::sigemptyset(&hold);
    ::sigaddset(&hold, SIGINT);
    ::sigaddset(&hold, SIGTERM);
    ::sigprocmask(SIG_BLOCK, &hold, &old_);
}

HoldSignals::~HoldSignals() {
    ::sigprocmask(SIG_SETMASK, &old_, nullptr);
}

void track_name(const std::string& name) {
    track_path(shm_path(name));
}

void untrack_name(const std::string& name) noexcept {
    untrack_path(shm_path(name));
}

void track_path(const std::string& path) {
    if (path.size() >= sizeof(NameSlot::path)) throw Error("path too long to track for cleanup: " + path);
    if (!claim_slot(g_names, [&](NameSlot& s) { std::memcpy(s.path, path.c_str(), path.size() + 1); })) {
        throw Error("too many IPC objects and files at once (" + std::to_string(std::size(g_names)) +
                    "): remove some before creating '" + path + "'");
    }
}

void untrack_path(const std::string& path) noexcept {
    const pid_t self = ::getpid();
    for (NameSlot& s : g_names) {
        if (s.state.load(std::memory_order_acquire) == 2 && s.owner == self && std::strcmp(s.path, path.c_str()) == 0) {
            s.state.store(0, std::memory_order_release);
            return;
        }
    }
}

}  // namespace corelab::ipc
