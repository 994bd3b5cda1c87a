// Implementation of corelab/memory.hpp: keys, entry files, atomic writes,
// checked loads, sweeping, clearing and size limits.
//
// An entry is a directory dir/<name>/<hex>/ with two files:
//   output.bin     64-byte header | stored key | payload (the cereal bytes of the result)
//   metadata.json  one header line | JSON (the call, duration, creation time)
// Header of output.bin (native byte order):
//   magic "CORELABM" | u32 format version | u32 header bytes (64) |
//   u64 key bytes | u64 payload bytes | u64 XXH3-64 of key and payload | zeros
// An entry is built in dir/<name>/.tmp-<pid>-<random>/ and renamed into place,
// so a reader sees a whole entry or none. Last use is output.bin's mtime,
// touched by every hit (one futimens on the open file, no rewrite).
// Marks (see "what is ours" below): dir/CACHEDIR.TAG, dir/.corelab-cache and
// dir/<name>/.corelab-function; nothing unmarked, or not laid out as above,
// is ever removed.
#include "corelab/memory.hpp"

#define XXH_INLINE_ALL      // header-only xxHash: no library to link, and inlined
#include <cxxabi.h>         // abi::__cxa_demangle
#include <dirent.h>         // opendir, readdir
#include <fcntl.h>          // open, openat, O_NOFOLLOW, futimens
#include <linux/openat2.h>  // open_how, RESOLVE_NO_SYMLINKS
#include <sys/random.h>     // getrandom
#include <sys/stat.h>       // fstat, mkdirat
#include <sys/syscall.h>    // SYS_openat2: glibc 2.36 has no wrapper
#include <unistd.h>         // read, write, close, fsync
#include <xxhash.h>         // XXH3-128 keys, XXH3-64 checksums

#include <algorithm>      // std::sort, std::min
#include <array>          // std::array
#include <atomic>         // std::atomic: chunks read, for the hashing helper
#include <cerrno>         // errno
#include <charconv>       // std::to_chars
#include <chrono>         // std::chrono::system_clock
#include <cstdio>         // std::snprintf
#include <cstdlib>        // std::free
#include <cstring>        // std::memcmp, std::memcpy, std::strerror
#include <ctime>          // gmtime_r, strftime
#include <iostream>       // std::cout, std::cerr
#include <mutex>          // std::mutex
#include <optional>       // std::optional
#include <system_error>   // std::system_error: no thread available
#include <thread>         // std::thread: the second hash of a large argument
#include <unordered_map>  // std::unordered_map: when each entry was last touched

#include "corelab/ipc/names.hpp"  // ObjectLock, lock_as_owner, lock_if_unowned: temp dirs' liveness locks

namespace fs = std::filesystem;

namespace corelab {
namespace detail {

// ------------------------------------------------------------ constants
namespace {

constexpr char entry_magic[8] = {'C', 'O', 'R', 'E', 'L', 'A', 'B', 'M'};
constexpr std::uint32_t format_version = 1;
constexpr std::size_t header_bytes = 64;
constexpr const char* output_file = "output.bin";
constexpr const char* metadata_file = "metadata.json";
constexpr const char* metadata_magic = "corelab-memory-metadata";
constexpr std::size_t verbatim_limit = 64 * 1024;             // arguments up to this are stored whole in the key
constexpr std::size_t direct_write = 256 * 1024;              // writes this large skip the buffer
constexpr std::size_t chunk_bytes = 2 * 1024 * 1024;          // hashed while still in cache
constexpr std::uint64_t second_seed = 0x636f72656c616221ULL;  // "corelab!": an independent hash
constexpr const char* key_domain = "corelab.memory.key.v1\n";

struct Header {
    char magic[8];
    std::uint32_t version;
    std::uint32_t header_size;
    std::uint64_t key_bytes;
    std::uint64_t payload_bytes;
    std::uint64_t checksum;
    std::uint8_t reserved[24];
};
static_assert(sizeof(Header) == header_bytes);

std::string errno_text(int e) {
    return std::strerror(e);
}

// A file descriptor closed by its destructor.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = o.fd_;
            o.fd_ = -1;
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    int get() const noexcept { return fd_; }
    bool ok() const noexcept { return fd_ >= 0; }
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

void put_u64(std::string& out, std::uint64_t v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

std::string hex128(const XXH128_hash_t& h) {
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(32, '0');
    for (int i = 0; i < 16; ++i) {
        out[2 * i] = digits[c.digest[i] >> 4];
        out[2 * i + 1] = digits[c.digest[i] & 15];
    }
    return out;
}

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

void read_full(int fd, void* data, std::size_t size) {
    auto* p = static_cast<char*>(data);
    while (size > 0) {
        const ssize_t got = ::read(fd, p, std::min<std::size_t>(size, std::size_t{1} << 30));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) throw Error("cannot read: " + errno_text(errno));
        if (got == 0) throw Error("the file ended early (truncated while being read?)");
        p += got;
        size -= static_cast<std::size_t>(got);
    }
}

void write_full(int fd, const void* data, std::size_t size) {
    const auto* p = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t put = ::write(fd, p, std::min<std::size_t>(size, std::size_t{1} << 30));
        if (put < 0 && errno == EINTR) continue;
        if (put < 0) throw Error("cannot write: " + errno_text(errno));
        p += put;
        size -= static_cast<std::size_t>(put);
    }
}

// Reads an entry's key and payload from an open file, hashing every byte as
// it arrives (small reads through a buffer, large ones straight into the
// destination chunk by chunk, so the hash reads them from cache).
class FileSource final : public Source {
public:
    explicit FileSource(int fd) : fd_(fd) { XXH3_64bits_reset(&hash_); }

    // Reads the first block and learns the file's size: a short read of a
    // regular file is its end (so a small entry costs one read and no fstat);
    // after a full block, fstat says. Lengths in the file are only ever
    // compared with this size, never trusted for it.
    std::uint64_t start() {
        ssize_t got;
        do {
            got = ::read(fd_, small_, sizeof small_);  // a small entry: this one read is all
        } while (got < 0 && errno == EINTR);
        if (got < 0) throw Error("cannot read: " + errno_text(errno));
        buf_ = small_;
        len_ = static_cast<std::size_t>(got);
        std::uint64_t size = len_;
        if (len_ == sizeof small_) {
            struct stat st{};
            if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) throw Error("output.bin is not a regular file");
            size = static_cast<std::uint64_t>(st.st_size);
            if (size < len_) throw Error("the file shrank while being read");
        }
        remaining_ = size;
        unread_ = size - len_;
        hash(buf_, len_);
        return size;
    }

    void read(void* data, std::size_t size) override {
        if (size > remaining_) throw Error("a length field points past the end of the entry");
        auto* out = static_cast<char*>(data);
        const std::size_t buffered = std::min(size, len_ - pos_);
        if (buffered != 0) std::memcpy(out, buf_ + pos_, buffered);
        pos_ += buffered;
        out += buffered;
        size -= buffered;
        remaining_ -= buffered;
        if (size > buffer_bytes) {  // large: straight into the destination
            if (size >= parallel_bytes) {
                pull_parallel(out, size);
            } else {
                for (std::size_t done = 0; done < size;) {
                    const std::size_t n = std::min(chunk_bytes, size - done);
                    pull(out + done, n);
                    done += n;
                }
            }
            remaining_ -= size;
            return;
        }
        if (size > 0) {
            if (!heap_) heap_ = std::make_unique_for_overwrite<char[]>(buffer_bytes);
            buf_ = heap_.get();
            len_ = static_cast<std::size_t>(std::min<std::uint64_t>(buffer_bytes, unread_));
            pull(buf_, len_);
            std::memcpy(out, buf_, size);
            pos_ = size;
            remaining_ -= size;
        }
    }
    std::uint64_t remaining() const noexcept override { return remaining_; }
    /// True when every byte was consumed and their hash is `checksum`.
    bool matches(std::uint64_t checksum) const { return remaining_ == 0 && XXH3_64bits_digest(&hash_) == checksum; }

private:
    // The header (it holds the checksum) is not hashed: the first header_bytes bytes are skipped.
    void hash(const char* p, std::size_t n) {
        const std::size_t skip = std::min<std::uint64_t>(n, unhashed_);
        XXH3_64bits_update(&hash_, p + skip, n - skip);
        unhashed_ -= skip;
    }
    void pull(char* p, std::size_t n) {
        read_full(fd_, p, n);
        hash(p, n);
        unread_ -= n;
    }
    // A large read: this thread reads 2 MB chunks while a helper hashes the
    // chunks already read, so the checksum costs (nearly) no time of its own.
    void pull_parallel(char* out, std::size_t size) {
        std::atomic<std::size_t> ready{0};  // bytes read so far; `stop` when reading failed
        constexpr std::size_t stop = ~std::size_t{0};
        std::thread hasher;
        try {
            hasher = std::thread([&] {
                for (std::size_t hashed = 0; hashed < size;) {
                    ready.wait(hashed, std::memory_order_acquire);
                    const std::size_t now = ready.load(std::memory_order_acquire);
                    if (now == stop) return;
                    hash(out + hashed, now - hashed);
                    hashed = now;
                }
            });
        } catch (const std::system_error&) {  // no thread to be had: read and hash here
            for (std::size_t done = 0; done < size; done += std::min(chunk_bytes, size - done)) {
                pull(out + done, std::min(chunk_bytes, size - done));
            }
            return;
        }
        try {
            for (std::size_t done = 0; done < size;) {
                const std::size_t n = std::min(chunk_bytes, size - done);
                read_full(fd_, out + done, n);
                done += n;
                ready.store(done, std::memory_order_release);
                ready.notify_one();
            }
        } catch (...) {
            ready.store(stop, std::memory_order_release);
            ready.notify_one();
            hasher.join();
            throw;
        }
        hasher.join();
        unread_ -= size;
    }
    static constexpr std::size_t buffer_bytes = 64 * 1024;
    static constexpr std::size_t parallel_bytes = 8 * 1024 * 1024;
    int fd_;
    std::uint64_t remaining_ = 0;  // bytes the archive has not consumed
    std::uint64_t unread_ = 0;     // bytes not yet read from the file
    std::uint64_t unhashed_ = header_bytes;
    char small_[4096];              // the first read lands here: no allocation for a small entry
    std::unique_ptr<char[]> heap_;  // later reads, for entries over 4 KB
    char* buf_ = small_;
    std::size_t pos_ = 0, len_ = 0;
    XXH3_state_t hash_{};
};

// Writes key and payload to an entry file through a buffer, hashing as it goes.
class FileSink final : public Sink {
public:
    explicit FileSink(int fd) : fd_(fd) {
        XXH3_64bits_reset(&hash_);
        buf_.reserve(64 * 1024);
    }
    void write(const void* data, std::size_t size) override {
        XXH3_64bits_update(&hash_, data, size);
        written_ += size;
        if (size >= direct_write) {
            flush();
            write_full(fd_, data, size);
            return;
        }
        if (buf_.size() + size > buf_.capacity()) flush();
        buf_.insert(buf_.end(), static_cast<const char*>(data), static_cast<const char*>(data) + size);
    }
    void flush() {
        write_full(fd_, buf_.data(), buf_.size());
        buf_.clear();
    }
    std::uint64_t written() const noexcept { return written_; }
    std::uint64_t checksum() const { return XXH3_64bits_digest(&hash_); }

private:
    int fd_;
    std::vector<char> buf_;
    std::uint64_t written_ = 0;
    XXH3_state_t hash_{};
};

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7f) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", u);
            out += esc;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

std::string utc_now() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

// "0.0s, 0.0min": joblib's format_time.
std::string format_time(double seconds) {
    char text[64];
    std::snprintf(text, sizeof text, "%.1fs, %.1fmin", seconds, seconds / 60.0);
    return text;
}

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

std::string quote(const fs::path& p) {
    return "'" + p.string() + "'";
}

// ------------------------------------------------------------ what is ours
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

constexpr const char* tag_file = "CACHEDIR.TAG";
constexpr const char* cache_mark = ".corelab-cache";
constexpr const char* function_mark = ".corelab-function";
constexpr std::string_view cache_mark_line = "corelab-memory-cache 1\n";
constexpr std::string_view function_mark_line = "corelab-memory-function 1\n";
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

enum class Folder { entry, temp };

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

}  // namespace

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
        const auto now = std::chrono::steady_clock::now();
        {
            const std::lock_guard lock(mutex_);
            auto [it, fresh] = touched_.try_emplace(entry, now);
            if (!fresh && now - it->second < std::chrono::seconds(1)) return;
            it->second = now;
            if (touched_.size() > 4096) touched_.clear();
        }
        ::futimens(fd, nullptr);
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

MemoryTestHooks& memory_test_hooks() {
    static MemoryTestHooks hooks;
    return hooks;
}

void InArchive::require(std::uint64_t count, std::uint64_t element_bytes) const {
    const std::uint64_t left = source_->remaining();
    if (element_bytes != 0 && count > left / element_bytes) {
        throw Error("a length field claims " + std::to_string(count) + " elements of " + std::to_string(element_bytes) +
                    " bytes but the entry has " + std::to_string(left) + " bytes left");
    }
}

// ------------------------------------------------------------- keys
struct KeyBuilder::State {
    XXH3_state_t primary;
    XXH3_state_t second;
    std::string stored;    // domain, name, version: the start of the stored key
    std::string verbatim;  // the arguments, while they are small
    std::uint64_t total = 0;
};

KeyBuilder::KeyBuilder(std::string_view name, std::string_view version) : state_(std::make_unique<State>()) {
    State& s = *state_;
    XXH3_128bits_reset(&s.primary);
    XXH3_128bits_reset_withSeed(&s.second, second_seed);
    s.stored = key_domain;
    put_u64(s.stored, name.size());
    s.stored += name;
    put_u64(s.stored, version.size());
    s.stored += version;
    XXH3_128bits_update(&s.primary, s.stored.data(), s.stored.size());
    XXH3_128bits_update(&s.second, s.stored.data(), s.stored.size());
}

KeyBuilder::~KeyBuilder() = default;

void KeyBuilder::write(const void* data, std::size_t size) {
    State& s = *state_;
    const auto* p = static_cast<const char*>(data);
    // A large argument: the second hash runs on another core at the same time.
    if (size >= (std::size_t{8} << 20)) {
        try {
            std::thread second([&] { XXH3_128bits_update(&s.second, p, size); });
            XXH3_128bits_update(&s.primary, p, size);
            second.join();
            if (s.total + size <= verbatim_limit) s.verbatim.append(p, size);
            s.total += size;
            return;
        } catch (const std::system_error&) {
            // no thread to be had: hash both here
        }
    }
    // Both hashes take each slice while it is still in cache: one pass over memory.
    for (std::size_t done = 0; done < size;) {
        const std::size_t n = std::min<std::size_t>(size - done, 128 * 1024);
        XXH3_128bits_update(&s.primary, p + done, n);
        XXH3_128bits_update(&s.second, p + done, n);
        done += n;
    }
    if (s.total + size <= verbatim_limit) s.verbatim.append(p, size);
    s.total += size;
}

CallKey KeyBuilder::finish() {
    State& s = *state_;
    CallKey key;
    const auto read_string = [&](std::size_t& at) {
        std::uint64_t n;
        std::memcpy(&n, s.stored.data() + at, sizeof n);
        at += sizeof n;
        std::string out = s.stored.substr(at, n);
        at += n;
        return out;
    };
    std::size_t at = std::strlen(key_domain);
    key.name = read_string(at);
    key.version = read_string(at);
    // [docs:key]
    key.hex = memory_test_hooks().constant_hash ? std::string(32, '0') : hex128(XXH3_128bits_digest(&s.primary));
    key.arg_bytes = s.total;
    key.stored = s.stored;
    put_u64(key.stored, s.total);
    if (s.total <= verbatim_limit) {
        key.stored += '\0';  // the arguments follow, whole: equal keys mean equal arguments
        key.stored += s.verbatim;
    } else {
        key.stored += '\1';  // too large to repeat: a second, independent 128-bit hash
        const XXH128_hash_t h = XXH3_128bits_digest(&s.second);
        put_u64(key.stored, h.low64);
        put_u64(key.stored, h.high64);
    }
    // [docs:end]
    return key;
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

// ------------------------------------------------------------ entries
namespace {

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

// Checks the header, then the stored key; returns the reason it is bad, or
// nothing and a source positioned at the payload.
std::optional<std::string> check_header_and_key(FileSource& source, const CallKey& key, Header& h) {
    const std::uint64_t size = source.start();
    if (size < header_bytes) return "the file is too short to hold a header (" + std::to_string(size) + " bytes)";
    source.read(&h, sizeof h);
    if (std::memcmp(h.magic, entry_magic, sizeof entry_magic) != 0) return "not a corelab cache entry (wrong magic)";
    if (h.version != format_version) {
        return "format version " + std::to_string(h.version) + ", this build reads " + std::to_string(format_version);
    }
    if (h.header_size != header_bytes) return "a header of " + std::to_string(h.header_size) + " bytes";
    const std::uint64_t body = size - header_bytes;
    if (h.key_bytes > body || h.payload_bytes != body - h.key_bytes) {
        return "its lengths (key " + std::to_string(h.key_bytes) + ", payload " + std::to_string(h.payload_bytes) +
               ") do not match the file's " + std::to_string(size) + " bytes (truncated or corrupted)";
    }
    if (h.key_bytes != key.stored.size()) return "it belongs to another call (its key differs)";
    std::string stored(key.stored.size(), '\0');
    source.read(stored.data(), stored.size());
    if (stored != key.stored) return "it belongs to another call (same hash, different key)";
    return std::nullopt;
}

}  // namespace

std::string read_entry(int fd, const CallKey& key, const std::function<void(InArchive&)>& load) {
    try {
        Header h{};
        FileSource source(fd);
        if (auto bad = check_header_and_key(source, key, h)) return *bad;
        InArchive ar(source);
        load(ar);
        if (source.remaining() != 0) {
            return "the result ends " + std::to_string(source.remaining()) + " bytes before the payload";
        }
        if (!source.matches(h.checksum)) return "checksum mismatch (corrupted)";
        return {};
    } catch (const std::exception& e) {
        const std::string what = e.what();
        return what.empty() ? "unreadable" : what;
    }
}

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

namespace {

Fd create_file(int dir, const char* name) {
    Fd fd(::openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd.ok()) throw Error(std::string("cannot create ") + name + ": " + errno_text(errno));
    return fd;
}

void write_output(int dir, const CallKey& key, const std::function<void(OutArchive&)>& save) {
    Fd fd = create_file(dir, output_file);
    const std::array<char, header_bytes> zeros{};
    write_full(fd.get(), zeros.data(), zeros.size());
    FileSink sink(fd.get());
    sink.write(key.stored.data(), key.stored.size());
    {
        OutArchive ar(sink);
        save(ar);
    }
    sink.flush();
    Header h{};
    std::memcpy(h.magic, entry_magic, sizeof entry_magic);
    h.version = format_version;
    h.header_size = header_bytes;
    h.key_bytes = key.stored.size();
    h.payload_bytes = sink.written() - key.stored.size();
    h.checksum = sink.checksum();
    if (::pwrite(fd.get(), &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) {
        throw Error("cannot write the header: " + errno_text(errno));
    }
    if (::fdatasync(fd.get()) != 0) throw Error("cannot flush output.bin: " + errno_text(errno));
}

void write_metadata(int dir, const CallKey& key, const std::string& call, double seconds) {
    char duration[32];
    std::snprintf(duration, sizeof duration, "%.6f", seconds);
    const std::string json = "{\n  \"function\": " + json_string(key.name) +
                             ",\n  \"version\": " + json_string(key.version) + ",\n  \"key\": " + json_string(key.hex) +
                             ",\n  \"input_args\": " + json_string(call) +
                             ",\n  \"argument_bytes\": " + std::to_string(key.arg_bytes) +
                             ",\n  \"duration\": " + duration + ",\n  \"created\": " + json_string(utc_now()) +
                             ",\n  \"last_used\": \"the modification time of output.bin\"\n}\n";
    char head[96];
    std::snprintf(head, sizeof head, "%s %u %zu %016llx\n", metadata_magic, format_version, json.size(),
                  static_cast<unsigned long long>(XXH3_64bits(json.data(), json.size())));
    Fd fd = create_file(dir, metadata_file);
    const std::string text = head + json;
    write_full(fd.get(), text.data(), text.size());
    if (::fdatasync(fd.get()) != 0) throw Error("cannot flush metadata.json: " + errno_text(errno));
}

}  // namespace

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

namespace {

// Calls fn(name) for every child of the folder open as `dir` (without "." and "..").
template <class Fn>
void for_each_child(int dir, Fn fn) {
    if (const auto names = children(dir)) {
        for (const auto& name : *names) fn(name);
    }
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

struct EntryInfo {
    std::string function, key;
    std::uint64_t bytes = 0;
    std::int64_t used_ns = 0;
};

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
                if (file == output_file) info.used_ns = t;  // a hit touches output.bin
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

}  // namespace

void clear_function(const Store& store, const std::string& name) {
    clear_function_folder(store, name);
}

}  // namespace detail

// ---------------------------------------------------------------- Memory
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
    auto entries = detail::list_entries(*store_);
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        if (a.used_ns != b.used_ns) return a.used_ns > b.used_ns;  // most recently used first
        return a.function != b.function ? a.function < b.function : a.key < b.key;
    });
    std::uint64_t kept = 0;
    std::size_t removed = 0;
    bool full = false;  // once one entry does not fit, every older one goes too
    for (const auto& e : entries) {
        if (!full && kept + e.bytes <= bytes_limit) {
            kept += e.bytes;
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
