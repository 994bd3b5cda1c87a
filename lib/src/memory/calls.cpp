// One call's way through a corelab::Memory cache (memory.hpp's detail
// functions): load the entry of its key, or announce the call, and store its
// result atomically; plus the calls' readable form for the messages.
#include <cxxabi.h>         // abi::__cxa_demangle
#include <fcntl.h>          // openat, O_NOFOLLOW
#include <linux/openat2.h>  // open_how, RESOLVE_NO_SYMLINKS
#include <sys/stat.h>       // fstatat, futimens
#include <sys/syscall.h>    // SYS_openat2: glibc 2.36 has no wrapper
#include <unistd.h>         // renameat, fsync, syscall

#include <charconv>  // std::to_chars
#include <cstdio>    // std::snprintf
#include <cstdlib>   // std::free

#include "corelab/detail/fd.hpp"              // Fd, errno_text
#include "corelab/detail/memory_testing.hpp"  // memory_test_hooks: a writer paused before its rename
#include "corelab/ipc/names.hpp"              // ObjectLock: a writer's liveness lock
#include "entry_file.hpp"                     // output_file, write_output, write_metadata, map_entry_file
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

// Opens dir/<name>/<hex>/<file> without following a symlink anywhere below
// dir: one openat2(RESOLVE_NO_SYMLINKS) where the kernel has it (Linux 5.6),
// else one O_NOFOLLOW open per component. O_NONBLOCK: a FIFO planted as
// output.bin must not block the open.
OpenResult open_entry(const Store& store, const CallKey& key, const char* file = output_file) {
    OpenResult r;
    const std::string rel = key.name + "/" + key.hex + "/" + file;
    open_how how{};
    how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW;
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH;
    r.file = Fd(static_cast<int>(::syscall(SYS_openat2, store.root_fd(), rel.c_str(), &how, sizeof how)));
    if (!r.file.ok() && errno == ENOSYS) {
        Fd fn_dir(::openat(store.root_fd(), key.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        Fd entry_dir(fn_dir.ok()
                         ? ::openat(fn_dir.get(), key.hex.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                         : -1);
        if (entry_dir.ok()) r.file = Fd(::openat(entry_dir.get(), file, how.flags));
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
        r.reason = std::string("it has no ") + file;
        return r;
    }
    r.status = Opened::bad;
    r.reason = e == ELOOP ? "a symbolic link is in its path (not followed)" : "cannot open it: " + errno_text(e);
    return r;
}

// Asks `validate` whether the entry of `key` may be used; returns why it
// cannot be asked (its metadata is unreadable: a bad entry), or "" with `ok`.
std::string validate_entry(const Store& store, const CallKey& key, const CacheValidationCallback& validate, bool& ok) {
    ok = true;
    if (!validate) return {};
    OpenResult opened = open_entry(store, key, metadata_file);
    if (opened.status != Opened::ok) return opened.status == Opened::miss ? "it has no metadata.json" : opened.reason;
    EntryMetadata meta;
    if (std::string bad = read_metadata(opened.file.get(), meta); !bad.empty()) return bad;
    ok = validate(meta);
    return {};
}

// A bad entry: reported, removed, and the call computed again.
bool reject(const Store& store, const CallKey& key, const std::string& reason) {
    const std::string left = remove_entry(store, key);
    store.warn("the cache entry " + quote(entry_path(store, key)) + " cannot be used: " + reason + "; " +
               (left.empty() ? "removed it" : "left it as it is (" + left + ")") + ", calling " + key.name + " again");
    return false;
}

// An entry its validation callback refused: removed (so that the new result can take its place) and missed.
bool refused(const Store& store, const CallKey& key) {
    const std::string left = remove_entry(store, key);
    if (!left.empty()) store.warn("left " + quote(entry_path(store, key)) + " as it is: " + left);
    if (store.verbose() >= 2) {
        store.message("[Memory] " + key.name + ": the cache validation callback refused the stored result\n");
    }
    return false;
}

}  // namespace

// [docs:load]
bool load_entry(const Store& store, const CallKey& key, const std::function<void(InArchive&)>& load,
                const CacheValidationCallback& validate) {
    OpenResult opened = open_entry(store, key);
    if (opened.status == Opened::miss) return false;
    std::string reason = opened.reason;
    if (opened.status == Opened::ok) {
        reason = read_entry(opened.file.get(), key, load);
        bool valid = true;
        if (reason.empty()) reason = validate_entry(store, key, validate, valid);
        if (reason.empty() && !valid) return refused(store, key);
        if (reason.empty()) {
            // A hit: mark the entry used now (least recently used go first).
            store.touch(opened.file.get(), key.name + "/" + key.hex);
            if (store.verbose() >= 2) store.message("[Memory] Loading " + key.name + " from cache\n");
            return true;
        }
    }
    return reject(store, key, reason);
}
// [docs:end]

bool map_entry(const Store& store, const CallKey& key, std::size_t element_size, std::size_t element_align,
               const CacheValidationCallback& validate, bool after_store, Mapping& out) {
    OpenResult opened = open_entry(store, key);
    if (opened.status == Opened::miss) return false;
    std::string reason = opened.reason;
    if (opened.status == Opened::ok) {
        const bool full_check = memory_test_hooks().full_checksum_on_mapped_hits;
        reason = map_entry_file(opened.file.get(), key, element_size, element_align, full_check, out);
        bool valid = true;
        if (reason.empty() && !after_store) reason = validate_entry(store, key, validate, valid);
        if (!reason.empty() || !valid) out.reset();
        if (reason.empty() && !valid) return refused(store, key);
        if (reason.empty()) {
            // Marked used on metadata.json: a touch of output.bin would change the identity just verified.
            if (store.due_for_touch(key.name + "/" + key.hex)) {
                const OpenResult meta = open_entry(store, key, metadata_file);
                if (meta.status == Opened::ok) ::futimens(meta.file.get(), nullptr);
            }
            if (!after_store && store.verbose() >= 2) store.message("[Memory] Loading " + key.name + " from cache\n");
            return true;  // the descriptor closes here; the mapping stays
        }
    }
    return reject(store, key, reason);
}

void announce_call(const Store& store, const std::string& name, const std::string& call) {
    if (store.verbose() < 1) return;
    store.message(std::string(80, '_') + "\n[Memory] Calling " + name + "...\n" + call + "\n");
}

void store_entry(const Store& store, const CallKey& key, const std::string& call, double seconds,
                 const std::function<void(OutArchive&)>& save, bool aligned) {
    const fs::path fn_path = store.root() / key.name;
    Fd fn_dir;
    std::string tmp;
    try {
        fn_dir = open_function(store, key.name, true);
        ipc::ObjectLock lock;  // "this writer lives": a sweep leaves the directory alone
        {
            Fd dir = make_temp_dir(fn_dir.get(), tmp, lock);
            write_output(dir.get(), key, save, aligned);
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
