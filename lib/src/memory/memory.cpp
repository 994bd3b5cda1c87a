// Implementation of corelab/memory.hpp's Memory: the cache directory opened
// once and checked (not a symlink, ours, not writable by others), and the
// operations on all its entries (clear, reduce_size, size_on_disk). The rest
// lives beside it: key.cpp (keys), entry_file.cpp (the entry file format),
// marked_folders.cpp and store.cpp (the folders: what is ours, sweeping,
// clearing), calls.cpp (one call: load or compute and store).
#include "corelab/memory.hpp"

#include <fcntl.h>     // open, O_NOFOLLOW
#include <sys/stat.h>  // lstat, fstat, mkdir, mkdirat
#include <unistd.h>    // unlinkat, geteuid

#include <algorithm>     // std::sort
#include <cerrno>        // errno
#include <chrono>        // std::chrono::system_clock: entries' ages
#include <cstdio>        // std::snprintf
#include <cstring>       // std::strerror
#include <system_error>  // std::error_code

#include "corelab/detail/fd.hpp"  // Fd
#include "store.hpp"              // Store, claim, open_function, sweep, clear_function_folder, list_entries

namespace fs = std::filesystem;

namespace corelab {

Memory::Memory(const std::filesystem::path& given, MemoryOptions options) {
    if (given.empty()) throw Error("the cache directory is empty: give a directory such as ./cache");
    // "link/" would make the kernel follow a symlink that "link" does not: no trailing slashes.
    std::string text = given.string();
    while (text.size() > 1 && text.back() == '/') text.pop_back();
    const fs::path dir = text;
    const std::string name = detail::quote(given);
    struct stat st{};
    if (::lstat(dir.c_str(), &st) != 0) {
        if (errno != ENOENT) throw Error("cannot use the cache directory " + name + ": " + std::strerror(errno));
        std::error_code ec;
        if (dir.has_parent_path()) fs::create_directories(dir.parent_path(), ec);
        if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
            throw Error("cannot create the cache directory " + name + ": " + std::strerror(errno) +
                        "; choose a directory you can write to");
        }
    }
    // Opened once, never through a symlink: every file below is reached from this descriptor.
    detail::Fd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!root.ok()) {
        const int e = errno;
        if (::lstat(dir.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
            std::error_code ec;
            const fs::path target = fs::read_symlink(dir, ec);
            throw Error("the cache directory " + name + " is a symbolic link" +
                        (ec ? std::string() : " (to " + detail::quote(target) + ")") +
                        ": Memory does not follow it, so that no link can point its clearing at other files; "
                        "give a real directory: an empty or new one, or an existing corelab cache");
        }
        if (e == ENOTDIR) throw Error("the cache directory " + name + " is not a directory");
        throw Error("cannot use the cache directory " + name + ": " + std::strerror(e));
    }
    if (::fstat(root.get(), &st) != 0) {
        throw Error("cannot use the cache directory " + name + ": " + std::strerror(errno));
    }
    if (st.st_uid != ::geteuid()) {
        throw Error("the cache directory " + name + " belongs to another user (uid " + std::to_string(st.st_uid) +
                    "), who could plant results this program would load as its own; use a directory of your own");
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw Error("the cache directory " + name + " can be written by other users (mode " + mode +
                    "): anyone who can write there could plant results this program would load as its own; "
                    "run chmod 700 on it or choose another directory");
    }
    detail::claim(root.get(), name);
    // Prove it is writable (access() says yes to root even on a read-only mount).
    const std::string probe = detail::temp_name();
    if (::mkdirat(root.get(), probe.c_str(), 0700) != 0) {
        throw Error("cannot write to the cache directory " + name + ": " + std::strerror(errno) +
                    "; choose a directory you can write to");
    }
    ::unlinkat(root.get(), probe.c_str(), AT_REMOVEDIR);
    store_ = std::make_shared<const detail::Store>(dir, std::move(root), options);
}

void Memory::prepare_function(const std::string& name) const {
    detail::check_name(name);
    const detail::Fd dir = detail::open_function(*store_, name, false);
    if (dir.ok()) detail::sweep(dir.get());
}

void Memory::clear() const {
    detail::for_each_child(store_->root_fd(), [&](const std::string& fn) {
        if (detail::valid_function_name(fn)) detail::clear_function_folder(*store_, fn);
    });
}

std::size_t Memory::reduce_size(std::uint64_t bytes_limit) const {
    return reduce_size(SizeLimits{.bytes_limit = bytes_limit});
}

// One rule for every limit: walk the entries from the most recently used
// (output.bin's mtime, set by every hit) and keep each while all kept so far,
// with it, fit every limit; from the first that does not fit, remove it and
// every older one. So what is kept is always the most recent entries.
std::size_t Memory::reduce_size(const SizeLimits& limits) const {
    auto entries = detail::list_entries(*store_);
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        if (a.used_ns != b.used_ns) return a.used_ns > b.used_ns;  // most recently used first
        return a.function != b.function ? a.function < b.function : a.key < b.key;
    });
    const auto now_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    const auto fits = [&](const detail::EntryInfo& e, std::uint64_t kept_bytes, std::size_t kept_items) {
        if (limits.bytes_limit && kept_bytes + e.bytes > *limits.bytes_limit) return false;
        if (limits.items_limit && kept_items + 1 > *limits.items_limit) return false;
        if (limits.age_limit && static_cast<double>(now_ns - e.used_ns) * 1e-9 > limits.age_limit->count()) {
            return false;
        }
        return true;
    };
    std::uint64_t kept = 0;
    std::size_t kept_items = 0, removed = 0;
    bool full = false;  // once one entry does not fit, every older one goes too
    for (const auto& e : entries) {
        if (!full && fits(e, kept, kept_items)) {
            kept += e.bytes;
            ++kept_items;
            continue;
        }
        full = true;
        const detail::Fd fn_dir = detail::open_marked_function(store_->root_fd(), e.function);
        const std::string why = fn_dir.ok() ? detail::remove_folder(fn_dir.get(), e.key, detail::Folder::entry)
                                            : "its function folder is no longer marked";
        if (why.empty()) {
            ++removed;
        } else {
            store_->warn("left " + detail::quote(store_->root() / e.function / e.key) + " as it is: " + why);
        }
    }
    return removed;
}

std::uint64_t Memory::size_on_disk() const {
    std::uint64_t total = 0;
    for (const auto& e : detail::list_entries(*store_)) total += e.bytes;
    return total;
}

const std::filesystem::path& Memory::dir() const noexcept {
    return store_->root();
}

}  // namespace corelab
