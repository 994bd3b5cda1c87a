// The cache directory of corelab::Memory and everything that touches its
// folders (lib/src/memory/, internal): the Store, the marks that say what is
// ours, and the descriptor-based walking, sweeping and removing built on them.
//
// An entry is built in dir/<name>/.tmp-<pid>-<random>/ and renamed into place,
// so a reader sees a whole entry or none. Last use is the later mtime of its
// two files, touched by every hit (one futimens, no rewrite): a copying hit
// touches output.bin, open already; a mapped hit touches metadata.json, so
// that output.bin keeps the identity its check remembers (entry_file.hpp).
// Marks: dir/CACHEDIR.TAG, dir/.corelab-cache and dir/<name>/.corelab-function;
// nothing unmarked, or not laid out as an entry (entry_file.hpp), is ever
// removed (marked_folders.cpp says how that is told).
#pragma once

#include <sys/stat.h>  // futimens

#include <chrono>         // std::chrono::steady_clock
#include <cstddef>        // std::size_t
#include <cstdint>        // std::uint64_t, std::int64_t
#include <filesystem>     // std::filesystem::path
#include <iostream>       // std::cout, std::cerr
#include <mutex>          // std::mutex
#include <optional>       // std::optional
#include <string>         // std::string
#include <string_view>    // std::string_view
#include <unordered_map>  // std::unordered_map: when each entry was last touched
#include <vector>         // std::vector

#include "corelab/detail/fd.hpp"  // Fd
#include "corelab/ipc/names.hpp"  // ObjectLock: temporary folders' liveness locks
#include "corelab/memory.hpp"     // MemoryOptions, CallKey

namespace corelab::detail {

namespace fs = std::filesystem;

// ------------------------------------------------------------------ Store
class Store {
public:
    // `root_fd` is the directory `root` opened once: every file of the cache is reached from it.
    Store(fs::path root, Fd root_fd, MemoryOptions options)
        : root_(std::move(root)), root_fd_(std::move(root_fd)), options_(options) {}
    const fs::path& root() const noexcept { return root_; }
    int root_fd() const noexcept { return root_fd_.get(); }
    int verbose() const noexcept { return options_.verbose; }
    void message(const std::string& text) const {
        const std::lock_guard lock(mutex_);
        std::ostream& out = options_.out != nullptr ? *options_.out : std::cout;
        out << text << std::flush;
    }
    // Sets the entry's mtime to now, at most once a second per entry and
    // process: a hot loop of hits pays no extra system call each time.
    void touch(int fd, const std::string& entry) const {
        if (due_for_touch(entry)) ::futimens(fd, nullptr);
    }
    // True when `entry` was not touched by this process in the last second
    // (and counts it as touched now).
    bool due_for_touch(const std::string& entry) const {
        const auto now = std::chrono::steady_clock::now();
        const std::lock_guard lock(mutex_);
        auto [it, fresh] = touched_.try_emplace(entry, now);
        if (!fresh && now - it->second < std::chrono::seconds(1)) return false;
        it->second = now;
        if (touched_.size() > 4096) touched_.clear();
        return true;
    }
    void warn(const std::string& text) const {
        const std::lock_guard lock(mutex_);
        std::ostream& err = options_.err != nullptr ? *options_.err : std::cerr;
        err << "[Memory] warning: " << text << '\n' << std::flush;
    }

private:
    fs::path root_;
    Fd root_fd_;
    MemoryOptions options_;
    mutable std::mutex mutex_;
    mutable std::unordered_map<std::string, std::chrono::steady_clock::time_point> touched_;
};

// ------------------------------------------------ names and marks (marked_folders.cpp)
inline constexpr const char* function_mark = ".corelab-function";
inline constexpr std::string_view function_mark_line = "corelab-memory-function 1\n";

/// 16 random hex digits (getrandom; the clock and pid where it fails).
std::string random_hex();
/// ".tmp-<pid>-<random>": a writer's temporary folder, or an entry moved aside.
std::string temp_name();
/// 32 lowercase hex digits: how an entry is named.
bool is_entry_name(const std::string& s);
/// ".tmp-...": how a writer's temporary folder is named.
bool is_temp_name(const std::string& s);
/// 'path', as messages show a path.
std::string quote(const fs::path& p);
/// 1 to 100 letters, digits, '_', '-' and '.' (not first).
bool valid_function_name(const std::string& name);
/// Opens the folder `name` in the folder open as `dir`; fails (ELOOP,
/// ENOTDIR) on a symlink or anything that is not a folder.
Fd open_folder(int dir, const std::string& name);
/// True when `name` in `dir` is a symbolic link (not followed).
bool is_link_at(int dir, const std::string& name);
/// The names in the folder open as `dir`; nullopt when it cannot be read.
std::optional<std::vector<std::string>> children(int dir);
/// True when the folder open as `dir` carries .corelab-function.
bool has_function_mark(int dir);
/// Writes a mark whole or not at all: a temporary file, renamed over the name.
void write_mark(int dir, const char* name, std::string_view text);

enum class Folder { entry, temp };

/// Why the folder open as `dir` is not an entry (or a writer's temporary
/// folder) of this cache, or an empty string when it is; `files` gets the
/// names it holds.
std::string not_ours(int dir, Folder kind, std::vector<std::string>& files);
/// Removes the folder `name` of the function folder open as `parent` when it
/// is ours; returns why it was left, or an empty string when it is gone.
std::string remove_folder(int parent, const std::string& name, Folder kind);
/// Why the unmarked function folder open as `dir` is not ours, or an empty
/// string when all it holds is entries, temporary folders and marks of this
/// cache; `entries` counts the entries.
std::string function_not_ours(int dir, std::size_t& entries);
/// Makes sure the cache directory open as `root` (shown as `shown`) is ours,
/// marking it when it is empty or an unmarked cache; throws corelab::Error otherwise.
void claim(int root, const std::string& shown);

// ------------------------------------------------ the store's folders (store.cpp)
/// Calls fn(name) for every child of the folder open as `dir` (without "." and "..").
template <class Fn>
void for_each_child(int dir, Fn fn) {
    if (const auto names = children(dir)) {
        for (const auto& name : *names) fn(name);
    }
}

/// dir/<name>/<hex>: where the entry of `key` lies.
fs::path entry_path(const Store& store, const CallKey& key);
/// The function folder `name` when it carries the mark; an invalid Fd otherwise.
Fd open_marked_function(int root, const std::string& name);
/// Opens (when `create`, makes and marks) the function folder `name` to write
/// or sweep in it; throws corelab::Error when it is not a folder of this cache.
Fd open_function(const Store& store, const std::string& name, bool create);
/// Makes a new temporary folder in `fn_dir`, named in `tmp`, and takes its
/// writer's liveness lock in `lock`.
Fd make_temp_dir(int fn_dir, std::string& tmp, ipc::ObjectLock& lock);
/// Removes the entry of `key` when it is ours; returns why it was left, or
/// an empty string when it is gone.
std::string remove_entry(const Store& store, const CallKey& key);
/// Removes the temporary folders of writers that are gone.
void sweep(int fn_dir);
/// Removes every entry and temporary folder of the marked function folder
/// `name`, then the folder when nothing else is left; warns about what it leaves.
void clear_function_folder(const Store& store, const std::string& name);

struct EntryInfo {
    std::string function, key;
    std::uint64_t bytes = 0;
    std::int64_t used_ns = 0;
};

/// The entries of this cache: in marked function folders, and ours by their layout.
std::vector<EntryInfo> list_entries(const Store& store);
/// Throws corelab::Error unless `name` is a valid function name.
void check_name(const std::string& name);

}  // namespace corelab::detail
