// The folders of a corelab::Memory cache (store.hpp): function folders opened
// and marked, writers' temporary folders made and swept, entries removed,
// listed and cleared, every step through descriptors.
#include "store.hpp"

#include <fcntl.h>     // openat, O_NOFOLLOW
#include <sys/stat.h>  // fstat, fstatat, mkdirat
#include <unistd.h>    // unlinkat, geteuid

#include <algorithm>  // std::max
#include <utility>    // std::move

#include "corelab/detail/fd.hpp"  // Fd, errno_text
#include "corelab/ipc/names.hpp"  // ObjectLock, lock_as_owner, lock_if_unowned: temp dirs' liveness locks
#include "entry_file.hpp"         // output_file

namespace corelab::detail {

// Makes a new temporary directory in `fn_dir`, named in `tmp`, and takes the
// writer's liveness lock (ipc/names.hpp) on it, held until after its rename:
// a sweep removes only a temporary directory nobody holds.
//
// Between mkdirat and the lock the new directory is unlocked, and another
// process's sweep may remove it (it cannot tell a writer that has not locked
// yet from a dead one). The writer then sees it gone (openat fails, or
// lock_as_owner finds another directory under the name) and makes a new one.
Fd make_temp_dir(int fn_dir, std::string& tmp, ipc::ObjectLock& lock) {
    for (int attempt = 0; attempt < 8; ++attempt) {
        tmp = temp_name();
        if (::mkdirat(fn_dir, tmp.c_str(), 0700) != 0) {
            tmp.clear();
            throw Error("cannot create a temporary directory: " + errno_text(errno));
        }
        Fd dir(::openat(fn_dir, tmp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!dir.ok() && errno != ENOENT) throw Error("cannot open the temporary directory: " + errno_text(errno));
        if (dir.ok()) lock = ipc::lock_as_owner(fn_dir, tmp, dir.get());
        if (lock) return dir;
        tmp.clear();  // a sweep removed it before it was locked: not ours to clean up any more
    }
    throw Error("other processes' sweeps removed 8 new temporary directories in a row before they were locked");
}

fs::path entry_path(const Store& store, const CallKey& key) {
    return store.root() / key.name / key.hex;
}

// Opens the function folder `name` when it carries the mark (a folder owned by
// this user, not a link); an invalid Fd when it does not.
Fd open_marked_function(int root, const std::string& name) {
    Fd dir = open_folder(root, name);
    struct stat st{};
    if (dir.ok() && (::fstat(dir.get(), &st) != 0 || st.st_uid != ::geteuid() || !has_function_mark(dir.get()))) {
        dir.reset();
    }
    return dir;
}

// Opens the function folder `name` to write or sweep in it. When `create`, an
// absent folder is made and marked; an unmarked one is marked when all it
// holds is what this cache writes (a writer died before marking it, or an
// earlier corelab wrote it). Throws corelab::Error saying what is wrong when
// it is a symlink, not a folder, or holds anything else; returns an invalid
// Fd when it is absent and not `create`.
Fd open_function(const Store& store, const std::string& name, bool create) {
    const std::string shown = quote(store.root() / name);
    const int root = store.root_fd();
    if (create && ::mkdirat(root, name.c_str(), 0700) != 0 && errno != EEXIST) {
        throw Error("cannot create " + shown + ": " + errno_text(errno));
    }
    Fd dir = open_folder(root, name);
    if (!dir.ok()) {
        const int e = errno;
        if (e == ENOENT && !create) return dir;
        if (is_link_at(root, name)) {
            throw Error(shown + " is a symbolic link, not a function folder of this cache (links are not followed); " +
                        "remove the link or cache the function under another name");
        }
        throw Error("cannot open the function folder " + shown + ": " + errno_text(e));
    }
    struct stat st{};
    if (::fstat(dir.get(), &st) != 0 || st.st_uid != ::geteuid()) {
        throw Error("the function folder " + shown + " belongs to another user; remove it");
    }
    if (has_function_mark(dir.get())) return dir;
    std::size_t entries = 0;
    if (std::string why = function_not_ours(dir.get(), entries); !why.empty()) {
        throw Error(shown + " is not a function folder of this cache (" + why +
                    "); move it away or cache the function under another name");
    }
    write_mark(dir.get(), function_mark, function_mark_line);
    return dir;
}

// Removes the entry of `key` when it is ours (see remove_folder); returns why
// it was left, or an empty string when it is gone.
std::string remove_entry(const Store& store, const CallKey& key) {
    const Fd dir = open_marked_function(store.root_fd(), key.name);
    if (!dir.ok()) return "its function folder is not a marked folder of this cache";
    return remove_folder(dir.get(), key.hex, Folder::entry);
}

// Removes the temporary directories of writers that are gone: those nobody
// holds the lock on (the writer died, or is a zombie, in whatever pid
// namespace it ran; never judged by the pid in the name, nor by age), and only
// when they hold nothing but what Memory writes (remove_folder).
void sweep(int fn_dir) {
    for_each_child(fn_dir, [&](const std::string& name) {
        if (!is_temp_name(name)) return;
        // while the lock is held: its writer cannot come back to it
        if (const ipc::ObjectLock lock = ipc::lock_if_unowned(fn_dir, name)) {
            (void)remove_folder(fn_dir, name, Folder::temp);
        }
    });
}

// Removes every entry and temporary folder of the marked function folder
// `name`, then the folder itself when nothing else is left in it. Says what it
// leaves (things named like entries that are not ours) and why.
void clear_function_folder(const Store& store, const std::string& name) {
    const Fd dir = open_marked_function(store.root_fd(), name);
    if (!dir.ok()) return;
    bool kept = false;
    for_each_child(dir.get(), [&](const std::string& child) {
        if (child == function_mark) return;
        const bool entry = is_entry_name(child);
        if (!entry && !is_temp_name(child)) {
            kept = true;  // not named like anything of ours: not even looked at
            return;
        }
        const std::string why = remove_folder(dir.get(), child, entry ? Folder::entry : Folder::temp);
        if (!why.empty()) {
            kept = true;
            store.warn("left " + quote(store.root() / name / child) + " as it is: " + why);
        }
    });
    if (kept || ::unlinkat(dir.get(), function_mark, 0) != 0) return;
    if (::unlinkat(store.root_fd(), name.c_str(), AT_REMOVEDIR) != 0) {
        // Something arrived meanwhile (a writer's temporary folder): the folder stays, marked.
        try {
            write_mark(dir.get(), function_mark, function_mark_line);
        } catch (const Error&) {
        }
    }
}

// The entries of this cache: in marked function folders, and ours by their layout.
std::vector<EntryInfo> list_entries(const Store& store) {
    std::vector<EntryInfo> entries;
    for_each_child(store.root_fd(), [&](const std::string& fn) {
        if (!valid_function_name(fn)) return;
        const Fd fn_dir = open_marked_function(store.root_fd(), fn);
        if (!fn_dir.ok()) return;
        for_each_child(fn_dir.get(), [&](const std::string& name) {
            if (!is_entry_name(name)) return;
            const Fd dir = open_folder(fn_dir.get(), name);
            std::vector<std::string> files;
            if (!dir.ok() || !not_ours(dir.get(), Folder::entry, files).empty()) return;
            EntryInfo info{fn, name};
            for (const auto& file : files) {
                struct stat st{};
                if (::fstatat(dir.get(), file.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
                info.bytes += static_cast<std::uint64_t>(st.st_size);
                const std::int64_t t = std::int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
                info.used_ns = std::max(info.used_ns, t);  // a hit touches one of them
            }
            entries.push_back(std::move(info));
        });
    });
    return entries;
}

void check_name(const std::string& name) {
    if (!valid_function_name(name)) {
        throw Error("cannot cache a function named '" + name +
                    "': a name is 1 to 100 letters, digits, '_', '-' or '.' (not first), because it names a directory");
    }
}

}  // namespace corelab::detail
