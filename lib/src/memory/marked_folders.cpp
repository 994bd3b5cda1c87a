// What in a corelab::Memory cache directory is ours (store.hpp): the names of
// entries and temporary folders, the marks, and the checks that let clearing
// remove only what this cache wrote.
//
// Memory removes only what it can tell it wrote. The cache directory carries
// CACHEDIR.TAG (the Cache Directory Tagging convention, which backup tools
// honour) and .corelab-cache (the layout's version); each function folder
// carries .corelab-function. In a marked function folder, an entry or a
// writer's temporary folder is ours only when it holds nothing but regular
// files that Memory writes there, an entry one of them with its header.
// Every step goes through descriptors: a folder is opened with O_NOFOLLOW
// relative to its parent's descriptor and its files are removed with
// unlinkat, so no symlink, planted or swapped in meanwhile, can lead a
// removal out of the cache.
#include <dirent.h>      // fdopendir, readdir
#include <fcntl.h>       // openat, O_NOFOLLOW
#include <sys/random.h>  // getrandom
#include <sys/stat.h>    // fstat, fstatat
#include <unistd.h>      // unlinkat, renameat, pread, getpid, geteuid

#include <chrono>   // std::chrono::steady_clock: the fallback of random_hex
#include <cstdio>   // std::snprintf
#include <utility>  // std::move

#include "corelab/detail/fd.hpp"  // Fd, write_full, errno_text
#include "entry_file.hpp"         // entry_magic, metadata_magic, output_file, metadata_file
#include "store.hpp"

namespace corelab::detail {
namespace {

constexpr const char* tag_file = "CACHEDIR.TAG";
constexpr const char* cache_mark = ".corelab-cache";
constexpr std::string_view cache_mark_line = "corelab-memory-cache 1\n";
constexpr const char* tag_text =
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by corelab::Memory.\n"
    "# For information about cache directory tags, see https://bford.info/cachedir/\n";
constexpr const char* cache_mark_text =
    "corelab-memory-cache 1\n"
    "# A corelab::Memory cache: <function>/<key>/ holds output.bin and metadata.json.\n"
    "# Memory removes only the entries it wrote here; delete the whole directory to drop the cache.\n";

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

// Every file Memory writes into an entry or a writer's temporary folder.
bool written_by_memory(const std::string& file) {
    return file == output_file || file == metadata_file;
}

// A mark being written: <mark>.tmp-<pid>-<random>, renamed over the mark when whole.
bool is_mark_temp(const std::string& name) {
    for (const char* mark : {tag_file, cache_mark, function_mark}) {
        if (starts_with(name, std::string(mark) + ".tmp-")) return true;
    }
    return false;
}

bool is_regular_at(int dir, const std::string& name) {
    struct stat st{};
    return ::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

// The type of `name` in `dir` (S_IFREG, S_IFDIR, S_IFLNK, ...), not following
// a link; 0 when it is gone (another process renamed or removed it meanwhile).
mode_t type_at(int dir, const std::string& name) {
    struct stat st{};
    return ::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 ? (st.st_mode & S_IFMT) : 0;
}

// A mark of ours, or one being written, that is a regular file or gone meanwhile.
bool is_mark_at(int dir, const std::string& name, const char* mark) {
    if (name != mark && !is_mark_temp(name)) return false;
    const mode_t type = type_at(dir, name);
    return type == 0 || type == S_IFREG;
}

// The first bytes of the regular file `name` in `dir` (not through a symlink,
// never blocking on a FIFO); empty when it is not a regular file.
std::string file_head(int dir, const char* name, std::size_t bytes) {
    Fd f(::openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    struct stat st{};
    if (!f.ok() || ::fstat(f.get(), &st) != 0 || !S_ISREG(st.st_mode)) return {};
    std::string head(bytes, '\0');
    const ssize_t got = ::pread(f.get(), head.data(), bytes, 0);
    head.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
    return head;
}

}  // namespace

std::string random_hex() {
    std::uint64_t r = 0;
    if (::getrandom(&r, sizeof r, 0) != static_cast<ssize_t>(sizeof r)) {
        r = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
            (static_cast<std::uint64_t>(::getpid()) << 32);
    }
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(r));
    return text;
}

std::string temp_name() {
    return ".tmp-" + std::to_string(::getpid()) + "-" + random_hex();
}

bool is_entry_name(const std::string& s) {
    return s.size() == 32 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

bool is_temp_name(const std::string& s) {
    return s.rfind(".tmp-", 0) == 0;
}

std::string quote(const fs::path& p) {
    return "'" + p.string() + "'";
}

bool valid_function_name(const std::string& name) {
    return !name.empty() && name.size() <= 100 && name[0] != '.' &&
           name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") ==
               std::string::npos;
}

// Opens the folder `name` in the folder open as `dir`; fails (ELOOP, ENOTDIR)
// on a symlink or anything that is not a folder.
Fd open_folder(int dir, const std::string& name) {
    return Fd(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

bool is_link_at(int dir, const std::string& name) {
    struct stat st{};
    return ::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

// The names in the folder open as `dir`, read through a descriptor of their
// own; nullopt when the folder cannot be read.
std::optional<std::vector<std::string>> children(int dir) {
    const int fd = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
        ::close(fd);
        return std::nullopt;
    }
    std::vector<std::string> names;
    for (;;) {
        errno = 0;  // readdir's end and its error both return nullptr: errno tells them apart
        const dirent* e = ::readdir(d);
        if (e == nullptr) break;
        const std::string name = e->d_name;
        if (name != "." && name != "..") names.push_back(name);
    }
    const bool read_all = errno == 0;
    ::closedir(d);
    if (!read_all) return std::nullopt;
    return names;
}

bool has_function_mark(int dir) {
    return starts_with(file_head(dir, function_mark, function_mark_line.size()), function_mark_line);
}

// Writes a mark whole or not at all: a temporary file, renamed over the name.
void write_mark(int dir, const char* name, std::string_view text) {
    const std::string tmp = std::string(name) + ".tmp-" + std::to_string(::getpid()) + "-" + random_hex();
    Fd fd(::openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd.ok()) throw Error(std::string("cannot create ") + name + ": " + errno_text(errno));
    try {
        write_full(fd.get(), text.data(), text.size());
        if (::renameat(dir, tmp.c_str(), dir, name) != 0) {
            throw Error(std::string("cannot write ") + name + ": " + errno_text(errno));
        }
    } catch (...) {
        ::unlinkat(dir, tmp.c_str(), 0);
        throw;
    }
}

// Why the folder open as `dir` is not an entry (or a writer's temporary
// folder) of this cache, or an empty string when it is: it is owned by this
// user and holds nothing but regular files Memory writes there, an entry one
// of them starting with its header. `files` gets the names it holds.
std::string not_ours(int dir, Folder kind, std::vector<std::string>& files) {
    struct stat st{};
    if (::fstat(dir, &st) != 0 || st.st_uid != ::geteuid()) return "it belongs to another user";
    auto names = children(dir);
    if (!names) return "it cannot be read";
    bool headed = false;
    for (const auto& name : *names) {
        if (!written_by_memory(name)) return "it holds '" + name + "', which this cache did not write";
        const mode_t type = type_at(dir, name);
        if (type == S_IFLNK) return "its " + name + " is a symbolic link";
        if (type != S_IFREG && type != 0) return "its " + name + " is not a regular file";
        if (kind == Folder::entry && !headed) {
            headed = name == output_file
                         ? file_head(dir, output_file, sizeof entry_magic) ==
                               std::string_view(entry_magic, sizeof entry_magic)
                         : starts_with(file_head(dir, metadata_file, 32), std::string(metadata_magic) + ' ');
        }
    }
    if (kind == Folder::entry && !headed) return names->empty() ? "it is empty" : "no file in it has a corelab header";
    files = std::move(*names);
    return {};
}

// Removes the folder `name` of the function folder open as `parent` when it
// is ours: opened without following a link, checked, moved aside when it is
// an entry (a reader sees all of it or nothing), emptied of exactly the files
// it was seen to hold, and removed; a file added meanwhile keeps it. Returns
// why it was left, or an empty string when it is gone.
std::string remove_folder(int parent, const std::string& name, Folder kind) {
    const Fd dir = open_folder(parent, name);
    if (!dir.ok()) {
        if (errno == ENOENT) return {};
        return is_link_at(parent, name) ? "it is a symbolic link (not followed)" : "it is not a folder";
    }
    std::vector<std::string> files;
    if (std::string why = not_ours(dir.get(), kind, files); !why.empty()) return why;
    std::string gone = name;
    if (kind == Folder::entry) {
        gone = temp_name();
        if (::renameat(parent, name.c_str(), parent, gone.c_str()) != 0) {
            return errno == ENOENT ? "" : "cannot move it aside: " + errno_text(errno);
        }
    }
    for (const auto& file : files) ::unlinkat(dir.get(), file.c_str(), 0);
    if (::unlinkat(parent, gone.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
        return "something was added to it while it was being removed";
    }
    return {};
}

// Why the unmarked function folder open as `dir` is not ours, or an empty
// string when all it holds is: entries and temporary folders of this cache,
// and marks. `entries` counts the entries.
std::string function_not_ours(int dir, std::size_t& entries) {
    const auto names = children(dir);
    if (!names) return "it cannot be read";
    for (const auto& name : *names) {
        if (is_mark_at(dir, name, function_mark)) continue;
        const bool entry = is_entry_name(name);
        if (!entry && !is_temp_name(name)) return "it holds '" + name + "', which this cache did not write";
        const Fd sub = open_folder(dir, name);
        if (!sub.ok() && errno == ENOENT) continue;  // renamed into place or swept meanwhile
        if (!sub.ok()) return "its '" + name + "' is not a folder";
        std::vector<std::string> files;
        if (std::string why = not_ours(sub.get(), entry ? Folder::entry : Folder::temp, files); !why.empty()) {
            return "its '" + name + "': " + why;
        }
        if (entry) ++entries;
    }
    return {};
}

// Makes sure the cache directory open as `root` (shown as `shown`) is ours: it
// carries the mark; or it is empty (or holds only marks being written) and is
// marked now; or it is a cache an earlier corelab wrote, before directories
// were marked (function folders of entries, nothing else), and is marked now.
// Anything else is refused before anything is written in it.
void claim(int root, const std::string& shown) {
    const auto writing = [&](auto write) {
        try {
            write();
        } catch (const Error& e) {
            throw Error("cannot write to the cache directory " + shown + ": " + e.what() +
                        "; choose a directory you can write to");
        }
    };
    const std::string mark = file_head(root, cache_mark, 64);
    if (starts_with(mark, cache_mark_line)) {
        if (!is_regular_at(root, tag_file)) {  // deleted by hand: put it back
            writing([&] { write_mark(root, tag_file, tag_text); });
        }
        return;
    }
    if (starts_with(mark, "corelab-memory-cache ")) {
        throw Error("the cache directory " + shown + " holds a corelab cache of another layout (" +
                    mark.substr(0, mark.find('\n')) + "; this build writes " +
                    std::string(cache_mark_line.substr(0, cache_mark_line.size() - 1)) +
                    "); delete it or choose another directory");
    }
    const auto names = children(root);
    if (!names) throw Error("cannot read the cache directory " + shown + ": " + errno_text(errno));
    std::vector<std::string> functions;  // folders of entries an earlier corelab wrote: marked below
    std::string foreign, first_folder;
    for (const auto& name : *names) {
        if (is_mark_at(root, name, tag_file)) continue;
        const Fd dir = valid_function_name(name) ? open_folder(root, name) : Fd();
        if (!dir.ok() && errno == ENOENT && valid_function_name(name)) continue;  // removed meanwhile
        std::size_t entries = 0;
        if (!dir.ok() || !function_not_ours(dir.get(), entries).empty()) {
            foreign = name;
            break;
        }
        if (first_folder.empty()) first_folder = name;
        if (entries > 0) functions.push_back(name);  // empty folders stay unmarked: they may be anyone's
    }
    if (foreign.empty() && functions.empty()) foreign = first_folder;  // only empty folders: not a cache
    // Another process may have marked it meanwhile (its probe folder is what looked foreign).
    if (!foreign.empty() && starts_with(file_head(root, cache_mark, 64), cache_mark_line)) return;
    if (!foreign.empty()) {
        throw Error("the cache directory " + shown + " is not empty and is not a corelab cache (it holds '" + foreign +
                    "' and no " + cache_mark +
                    " mark): Memory keeps its entries in a directory of its own, so that "
                    "clearing the cache can never remove other files; choose an empty or new directory");
    }
    writing([&] {
        if (!is_regular_at(root, tag_file)) write_mark(root, tag_file, tag_text);
        for (const auto& name : functions) {
            const Fd dir = open_folder(root, name);
            if (dir.ok()) write_mark(dir.get(), function_mark, function_mark_line);
        }
        write_mark(root, cache_mark, cache_mark_text);  // last: from now on the directory is a cache
    });
}

}  // namespace corelab::detail
