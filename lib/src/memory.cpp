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

// The writer's liveness lock (ipc/names.hpp) on the temporary directory
// `name` it has just made in `fn_dir` (open as `dir`), held until after its
// rename: a sweep removes only a temporary directory nobody holds.
ipc::ObjectLock lock_temp_dir(int fn_dir, const std::string& name, int dir) {
    ipc::ObjectLock lock = ipc::lock_as_owner(fn_dir, name, dir);
    if (!lock) throw Error("another process removed the temporary directory before it was locked");
    return lock;
}

// Removes a path and everything under it without following symlinks.
void remove_tree(const fs::path& p) {
    std::error_code ec;
    fs::remove_all(p, ec);
}

std::string quote(const fs::path& p) {
    return "'" + p.string() + "'";
}

}  // namespace

// ------------------------------------------------------------------ Store
class Store {
public:
    Store(fs::path root, MemoryOptions options) : root_(std::move(root)), options_(options) {
        root_fd_ = Fd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!root_fd_.ok()) throw Error("cannot open the cache directory " + quote(root_) + ": " + errno_text(errno));
    }
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

// Moves an entry aside (so no reader sees half of it), then deletes it. A
// function directory that is a symlink (planted: the cache is 0700) is
// unlinked itself; what it points to is never touched.
void remove_entry(const fs::path& fn_dir, const std::string& child) {
    Fd dir(::open(fn_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir.ok()) {
        if (errno == ELOOP || errno == ENOTDIR) ::unlink(fn_dir.c_str());
        return;
    }
    const std::string aside = temp_name();
    if (::renameat(dir.get(), child.c_str(), dir.get(), aside.c_str()) == 0) remove_tree(fn_dir / aside);
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
    const fs::path path = entry_path(store, key);
    store.warn("the cache entry " + quote(path) + " cannot be used: " + reason + "; removed it, calling " + key.name +
               " again");
    remove_entry(path.parent_path(), key.hex);
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
    std::string tmp;
    try {
        if (::mkdir(fn_path.c_str(), 0700) != 0 && errno != EEXIST) {
            throw Error("cannot create " + quote(fn_path) + ": " + errno_text(errno));
        }
        Fd fn_dir(::open(fn_path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!fn_dir.ok()) throw Error(quote(fn_path) + " is not a directory of this cache: " + errno_text(errno));
        tmp = temp_name();
        if (::mkdirat(fn_dir.get(), tmp.c_str(), 0700) != 0) {
            tmp.clear();
            throw Error("cannot create a temporary directory: " + errno_text(errno));
        }
        ipc::ObjectLock lock;  // "this writer lives": a sweep leaves the directory alone
        {
            Fd dir(::openat(fn_dir.get(), tmp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!dir.ok()) throw Error("cannot open the temporary directory: " + errno_text(errno));
            lock = lock_temp_dir(fn_dir.get(), tmp, dir.get());
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
    if (!tmp.empty()) remove_tree(fn_path / tmp);
    if (store.verbose() >= 1) {
        const std::string end = key.name + " - " + format_time(seconds);
        store.message(std::string(end.size() < 80 ? 80 - end.size() : 0, '_') + end + "\n");
    }
}

namespace {

// Calls fn(name) for every child of dir (without "." and "..").
template <class Fn>
void for_each_child(const fs::path& dir, Fn fn) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return;
    std::vector<std::string> names;
    while (const dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(d);
    for (const auto& name : names) fn(name);
}

bool is_real_dir(const fs::path& p) {
    struct stat st{};
    return ::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Removes the temporary directories of writers that are gone: those nobody
// holds the lock on (the writer died, or is a zombie, in whatever pid
// namespace it ran; never judged by the pid in the name, nor by age).
void sweep(const fs::path& fn_dir) {
    Fd dir(::open(fn_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir.ok()) return;
    for_each_child(fn_dir, [&](const std::string& name) {
        if (!is_temp_name(name)) return;
        // while the lock is held: its writer cannot come back to it
        if (const ipc::ObjectLock lock = ipc::lock_if_unowned(dir.get(), name)) remove_tree(fn_dir / name);
    });
}

void clear_dir(const fs::path& fn_dir) {
    if (!is_real_dir(fn_dir)) return;
    for_each_child(fn_dir, [&](const std::string& name) {
        if (is_entry_name(name) || is_temp_name(name)) remove_tree(fn_dir / name);
    });
    ::rmdir(fn_dir.c_str());  // only when nothing else is left in it
}

struct EntryInfo {
    fs::path path;
    std::uint64_t bytes = 0;
    std::int64_t used_ns = 0;
};

std::vector<EntryInfo> list_entries(const fs::path& root) {
    std::vector<EntryInfo> entries;
    for_each_child(root, [&](const std::string& fn) {
        const fs::path fn_dir = root / fn;
        if (!is_real_dir(fn_dir)) return;
        for_each_child(fn_dir, [&](const std::string& name) {
            if (!is_entry_name(name) || !is_real_dir(fn_dir / name)) return;
            EntryInfo info{fn_dir / name};
            for (const char* file : {output_file, metadata_file}) {
                struct stat st{};
                if (::lstat((info.path / file).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
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
    const bool ok = !name.empty() && name.size() <= 100 && name[0] != '.' &&
                    name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") ==
                        std::string::npos;
    if (!ok) {
        throw Error("cannot cache a function named '" + name +
                    "': a name is 1 to 100 letters, digits, '_', '-' or '.' (not first), because it names a directory");
    }
}

}  // namespace

void clear_function(const Store& store, const std::string& name) {
    clear_dir(store.root() / name);
}

}  // namespace detail

// ---------------------------------------------------------------- Memory
Memory::Memory(const std::filesystem::path& dir, MemoryOptions options) {
    if (dir.empty()) throw Error("the cache directory is empty: give a directory such as ./cache");
    const std::string name = detail::quote(dir);
    struct stat st{};
    if (::stat(dir.c_str(), &st) != 0) {
        if (errno != ENOENT) throw Error("cannot use the cache directory " + name + ": " + std::strerror(errno));
        std::error_code ec;
        if (dir.has_parent_path()) fs::create_directories(dir.parent_path(), ec);
        if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
            throw Error("cannot create the cache directory " + name + ": " + std::strerror(errno) +
                        "; choose a directory you can write to");
        }
        if (::stat(dir.c_str(), &st) != 0) {
            throw Error("cannot use the cache directory " + name + ": " + std::strerror(errno));
        }
    }
    if (!S_ISDIR(st.st_mode)) throw Error("the cache directory " + name + " is not a directory");
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
    // Prove it is writable (access() says yes to root even on a read-only mount).
    const fs::path probe = dir / detail::temp_name();
    if (::mkdir(probe.c_str(), 0700) != 0) {
        throw Error("cannot write to the cache directory " + name + ": " + std::strerror(errno) +
                    "; choose a directory you can write to");
    }
    ::rmdir(probe.c_str());
    store_ = std::make_shared<const detail::Store>(dir, options);
}

void Memory::prepare_function(const std::string& name) const {
    detail::check_name(name);
    detail::sweep(store_->root() / name);
}

void Memory::clear() const {
    detail::for_each_child(store_->root(), [&](const std::string& fn) {
        if (fn[0] != '.') detail::clear_dir(store_->root() / fn);
    });
}

std::size_t Memory::reduce_size(std::uint64_t bytes_limit) const {
    auto entries = detail::list_entries(store_->root());
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        return a.used_ns != b.used_ns ? a.used_ns > b.used_ns : a.path < b.path;  // most recently used first
    });
    std::uint64_t kept = 0;
    std::size_t removed = 0;
    bool full = false;  // once one entry does not fit, every older one goes too
    for (const auto& e : entries) {
        if (!full && kept + e.bytes <= bytes_limit) {
            kept += e.bytes;
        } else {
            full = true;
            detail::remove_entry(e.path.parent_path(), e.path.filename().string());
            ++removed;
        }
    }
    return removed;
}

std::uint64_t Memory::size_on_disk() const {
    std::uint64_t total = 0;
    for (const auto& e : detail::list_entries(store_->root())) total += e.bytes;
    return total;
}

const std::filesystem::path& Memory::dir() const noexcept {
    return store_->root();
}

}  // namespace corelab
