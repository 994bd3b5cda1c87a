// One call's way through a corelab::Memory cache (memory.hpp's detail
// functions): load the entry of its key, or announce the call, and store its
// result atomically; plus the calls' readable form for the messages.
#include <cxxabi.h>         // abi::__cxa_demangle
#include <fcntl.h>          // openat, O_NOFOLLOW
#include <linux/openat2.h>  // open_how, RESOLVE_NO_SYMLINKS
#include <sys/stat.h>       // fstatat
#include <sys/syscall.h>    // SYS_openat2: glibc 2.36 has no wrapper
#include <unistd.h>         // renameat, fsync, syscall

#include <charconv>  // std::to_chars
#include <cstdio>    // std::snprintf
#include <cstdlib>   // std::free

#include "corelab/detail/fd.hpp"              // Fd, errno_text
#include "corelab/detail/memory_testing.hpp"  // memory_test_hooks: a writer paused before its rename
#include "corelab/ipc/names.hpp"              // ObjectLock: a writer's liveness lock
#include "entry_file.hpp"                     // output_file, write_output, write_metadata
#include "store.hpp"

namespace corelab::detail {

MemoryTestHooks& memory_test_hooks() {
    static MemoryTestHooks hooks;
    return hooks;
}

// ------------------------------------------------------------ readable form
void append_double(std::string& out, double v) {
    char text[32];
    const auto r = std::to_chars(text, text + sizeof text, v);
    std::string s(text, r.ptr);
    if (s.find_first_of(".eni") == std::string::npos) s += ".0";  // 1 -> 1.0, as Python prints it
    out += s;
}

std::string type_name(const char* mangled) {
    int status = 0;
    char* name = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
    std::string out = (status == 0 && name != nullptr) ? name : mangled;
    std::free(name);
    return out;
}

namespace {

// "0.0s, 0.0min": joblib's format_time.
std::string format_time(double seconds) {
    char text[64];
    std::snprintf(text, sizeof text, "%.1fs, %.1fmin", seconds, seconds / 60.0);
    return text;
}

enum class Opened { ok, miss, bad };

struct OpenResult {
    Opened status = Opened::miss;
    std::string reason;  // when bad
    Fd file;
};

// Opens dir/<name>/<hex>/output.bin without following a symlink anywhere below
// dir: one openat2(RESOLVE_NO_SYMLINKS) where the kernel has it (Linux 5.6),
// else one O_NOFOLLOW open per component. O_NONBLOCK: a FIFO planted as
// output.bin must not block the open.
OpenResult open_entry(const Store& store, const CallKey& key) {
    OpenResult r;
    const std::string rel = key.name + "/" + key.hex + "/" + output_file;
    open_how how{};
    how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW;
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH;
    r.file = Fd(static_cast<int>(::syscall(SYS_openat2, store.root_fd(), rel.c_str(), &how, sizeof how)));
    if (!r.file.ok() && errno == ENOSYS) {
        Fd fn_dir(::openat(store.root_fd(), key.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        Fd entry_dir(fn_dir.ok()
                         ? ::openat(fn_dir.get(), key.hex.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                         : -1);
        if (entry_dir.ok()) r.file = Fd(::openat(entry_dir.get(), output_file, how.flags));
    }
    if (r.file.ok()) {
        r.status = Opened::ok;
        return r;
    }
    const int e = errno;
    if (e == ENOENT) {
        // No output.bin: a miss, unless the entry directory is there without it.
        struct stat st{};
        const std::string entry = key.name + "/" + key.hex;
        if (::fstatat(store.root_fd(), entry.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return r;
        r.status = Opened::bad;
        r.reason = "it has no output.bin";
        return r;
    }
    r.status = Opened::bad;
    r.reason = e == ELOOP ? "a symbolic link is in its path (not followed)" : "cannot open it: " + errno_text(e);
    return r;
}

}  // namespace

// [docs:load]
bool load_entry(const Store& store, const CallKey& key, const std::function<void(InArchive&)>& load) {
    OpenResult opened = open_entry(store, key);
    if (opened.status == Opened::miss) return false;
    std::string reason = opened.reason;
    if (opened.status == Opened::ok) {
        reason = read_entry(opened.file.get(), key, load);
        if (reason.empty()) {
            // A hit: mark the entry used now (least recently used go first).
            store.touch(opened.file.get(), key.name + "/" + key.hex);
            if (store.verbose() >= 2) store.message("[Memory] Loading " + key.name + " from cache\n");
            return true;
        }
    }
    const std::string left = remove_entry(store, key);
    store.warn("the cache entry " + quote(entry_path(store, key)) + " cannot be used: " + reason + "; " +
               (left.empty() ? "removed it" : "left it as it is (" + left + ")") + ", calling " + key.name + " again");
    return false;
}
// [docs:end]

void announce_call(const Store& store, const std::string& name, const std::string& call) {
    if (store.verbose() < 1) return;
    store.message(std::string(80, '_') + "\n[Memory] Calling " + name + "...\n" + call + "\n");
}

void store_entry(const Store& store, const CallKey& key, const std::string& call, double seconds,
                 const std::function<void(OutArchive&)>& save) {
    const fs::path fn_path = store.root() / key.name;
    Fd fn_dir;
    std::string tmp;
    try {
        fn_dir = open_function(store, key.name, true);
        ipc::ObjectLock lock;  // "this writer lives": a sweep leaves the directory alone
        {
            Fd dir = make_temp_dir(fn_dir.get(), tmp, lock);
            write_output(dir.get(), key, save);
            write_metadata(dir.get(), key, call, seconds);
        }
        // [docs:rename]
        if (auto& hook = memory_test_hooks().before_rename) hook();
        // The atomic step: the entry appears whole, or (another writer was first) not at all.
        if (::renameat(fn_dir.get(), tmp.c_str(), fn_dir.get(), key.hex.c_str()) == 0) {
            tmp.clear();
            ::fsync(fn_dir.get());
        } else if (errno != EEXIST && errno != ENOTEMPTY) {
            throw Error("cannot rename the entry into place: " + errno_text(errno));
        }
        // [docs:end]
    } catch (const std::exception& e) {
        store.warn("could not store the result of " + key.name + " in " + quote(fn_path) + ": " + e.what());
    }
    if (!tmp.empty()) (void)remove_folder(fn_dir.get(), tmp, Folder::temp);
    if (store.verbose() >= 1) {
        const std::string end = key.name + " - " + format_time(seconds);
        store.message(std::string(end.size() < 80 ? 80 - end.size() : 0, '_') + end + "\n");
    }
}

void clear_function(const Store& store, const std::string& name) {
    clear_function_folder(store, name);
}

}  // namespace corelab::detail
