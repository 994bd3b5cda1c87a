// The entry file format of corelab::Memory (entry_file.hpp): reading
// output.bin with every length checked and every byte hashed as it arrives,
// writing output.bin and metadata.json.
#define XXH_INLINE_ALL  // header-only xxHash: no library to link, and inlined
#include "entry_file.hpp"

#include <fcntl.h>     // openat
#include <sys/mman.h>  // mmap, munmap, mprotect: mapped results
#include <sys/stat.h>  // fstat
#include <unistd.h>    // pwrite, fdatasync
#include <xxhash.h>    // XXH3-64 checksums

#include <algorithm>     // std::min
#include <array>         // std::array
#include <atomic>        // std::atomic: chunks read, for the hashing helper
#include <chrono>        // std::chrono::system_clock: when a result was stored
#include <cstdio>        // std::snprintf
#include <cstdlib>       // std::strtod
#include <cstring>       // std::memcmp, std::memcpy
#include <ctime>         // gmtime_r, strftime, strptime, timegm
#include <map>           // std::map: the file identities this process verified
#include <memory>        // std::unique_ptr
#include <mutex>         // std::mutex
#include <optional>      // std::optional
#include <system_error>  // std::system_error: no thread available
#include <thread>        // std::thread: the hashing helper of a large read
#include <vector>        // std::vector

#include "corelab/detail/fd.hpp"  // Fd, read_full, write_full, errno_text

namespace corelab::detail {
namespace {

constexpr std::size_t direct_write = 256 * 1024;      // writes this large skip the buffer
constexpr std::size_t chunk_bytes = 2 * 1024 * 1024;  // hashed while still in cache

struct Header {
    char magic[8];
    std::uint32_t version;
    std::uint32_t header_size;
    std::uint64_t key_bytes;
    std::uint64_t payload_bytes;
    std::uint64_t checksum;
    std::uint64_t pad_bytes;  // zero in version 1, whose field was reserved (zeros)
    std::uint8_t reserved[16];
};
static_assert(sizeof(Header) == header_bytes);

// Reads exactly `size` bytes: an entry that ends sooner was cut short.
void read_exactly(int fd, void* data, std::size_t size) {
    if (read_full(fd, data, size) < size) throw Error("the file ended early (truncated while being read?)");
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
        read_exactly(fd_, p, n);
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
                read_exactly(fd_, out + done, n);
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

// Checks a header against the size of its file: magic, version, lengths.
std::optional<std::string> check_header(const Header& h, std::uint64_t size) {
    if (std::memcmp(h.magic, entry_magic, sizeof entry_magic) != 0) return "not a corelab cache entry (wrong magic)";
    if (h.version < oldest_format_version || h.version > format_version) {
        return "format version " + std::to_string(h.version) + ", this build reads " +
               std::to_string(oldest_format_version) + " to " + std::to_string(format_version);
    }
    if (h.header_size != header_bytes) return "a header of " + std::to_string(h.header_size) + " bytes";
    const std::uint64_t body = size - header_bytes;
    if (h.key_bytes > body || h.pad_bytes >= page_bytes || h.pad_bytes > body - h.key_bytes ||
        h.payload_bytes != body - h.key_bytes - h.pad_bytes) {
        return "its lengths (key " + std::to_string(h.key_bytes) + ", padding " + std::to_string(h.pad_bytes) +
               ", payload " + std::to_string(h.payload_bytes) + ") do not match the file's " + std::to_string(size) +
               " bytes (truncated or corrupted)";
    }
    return std::nullopt;
}

// Checks the header, then the stored key; returns the reason it is bad, or
// nothing and a source positioned at the payload.
std::optional<std::string> check_header_and_key(FileSource& source, const CallKey& key, Header& h) {
    const std::uint64_t size = source.start();
    if (size < header_bytes) return "the file is too short to hold a header (" + std::to_string(size) + " bytes)";
    source.read(&h, sizeof h);
    if (auto bad = check_header(h, size)) return bad;
    if (h.key_bytes != key.stored.size()) return "it belongs to another call (its key differs)";
    std::string stored(key.stored.size(), '\0');
    source.read(stored.data(), stored.size());
    if (stored != key.stored) return "it belongs to another call (same hash, different key)";
    char pad[page_bytes];
    source.read(pad, static_cast<std::size_t>(h.pad_bytes));  // hashed with the rest; check_header bounds it
    return std::nullopt;
}

Fd create_file(int dir, const char* name) {
    Fd fd(::openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd.ok()) throw Error(std::string("cannot create ") + name + ": " + errno_text(errno));
    return fd;
}

}  // namespace

void InArchive::require(std::uint64_t count, std::uint64_t element_bytes) const {
    const std::uint64_t left = source_->remaining();
    if (element_bytes != 0 && count > left / element_bytes) {
        throw Error("a length field claims " + std::to_string(count) + " elements of " + std::to_string(element_bytes) +
                    " bytes but the entry has " + std::to_string(left) + " bytes left");
    }
}

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

void write_output(int dir, const CallKey& key, const std::function<void(OutArchive&)>& save, bool aligned) {
    Fd fd = create_file(dir, output_file);
    const std::array<char, page_bytes> zeros{};
    write_full(fd.get(), zeros.data(), header_bytes);
    FileSink sink(fd.get());
    sink.write(key.stored.data(), key.stored.size());
    // An array's 8-byte length, then its first element on a page boundary.
    const std::size_t pad =
        aligned ? (page_bytes - (header_bytes + key.stored.size() + 8) % page_bytes) % page_bytes : 0;
    sink.write(zeros.data(), pad);
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
    h.pad_bytes = pad;
    h.payload_bytes = sink.written() - key.stored.size() - pad;
    h.checksum = sink.checksum();
    if (::pwrite(fd.get(), &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) {
        throw Error("cannot write the header: " + errno_text(errno));
    }
    if (::fdatasync(fd.get()) != 0) throw Error("cannot flush output.bin: " + errno_text(errno));
}

void write_metadata(int dir, const CallKey& key, const std::string& call, double seconds) {
    char duration[32];
    std::snprintf(duration, sizeof duration, "%.6f", seconds);
    // joblib's "time": seconds since 1970 when the result was stored, to the microsecond.
    char unix_now[32];
    const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
    std::snprintf(unix_now, sizeof unix_now, "%.6f", std::chrono::duration<double>(since_epoch).count());
    const std::string json =
        "{\n  \"function\": " + json_string(key.name) + ",\n  \"version\": " + json_string(key.version) +
        ",\n  \"key\": " + json_string(key.hex) + ",\n  \"input_args\": " + json_string(call) +
        ",\n  \"argument_bytes\": " + std::to_string(key.arg_bytes) + ",\n  \"duration\": " + duration +
        ",\n  \"time\": " + unix_now + ",\n  \"created\": " + json_string(utc_now()) +
        ",\n  \"last_used\": \"the modification time of output.bin\"\n}\n";
    char head[96];
    std::snprintf(head, sizeof head, "%s %u %zu %016llx\n", metadata_magic, format_version, json.size(),
                  static_cast<unsigned long long>(XXH3_64bits(json.data(), json.size())));
    Fd fd = create_file(dir, metadata_file);
    const std::string text = head + json;
    write_full(fd.get(), text.data(), text.size());
    if (::fdatasync(fd.get()) != 0) throw Error("cannot flush metadata.json: " + errno_text(errno));
}

// ------------------------------------------------------------ mapped entries
void Mapping::reset() noexcept {
    if (base_ != nullptr) ::munmap(base_, bytes_);
    base_ = nullptr;
    bytes_ = offset_ = 0;
    count_ = 0;
    file_ = false;
}

void Mapping::swap(Mapping& o) noexcept {
    std::swap(base_, o.base_);
    std::swap(bytes_, o.bytes_);
    std::swap(offset_, o.offset_);
    std::swap(count_, o.count_);
    std::swap(file_, o.file_);
}

Mapping anonymous_copy(const void* data, std::uint64_t count, std::size_t element_size) {
    const std::size_t bytes = static_cast<std::size_t>(count) * element_size;
    if (bytes == 0) return Mapping(nullptr, 0, 0, 0, false);
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw Error("cannot map " + std::to_string(bytes) + " bytes: " + errno_text(errno));
    std::memcpy(p, data, bytes);
    ::mprotect(p, bytes, PROT_READ);  // read-only, as a mapped entry
    return Mapping(p, bytes, 0, count, false);
}

namespace {

FileIdentity identity_of_stat(const struct stat& st) {
    return {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
            static_cast<std::uint64_t>(st.st_size),
            std::int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec,
            std::int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec};
}

// The identity of every output.bin this process checked or wrote, the
// latest one per file; forgotten wholesale past 4096 files (they are then
// checked again: slower, never wrong).
struct Verified {
    std::mutex mutex;
    std::map<std::pair<std::uint64_t, std::uint64_t>, FileIdentity> files;
};
Verified& verified_files() {
    static Verified v;
    return v;
}

// The kernel stamps a file's ctime from a clock that advances once a tick
// (1 to 10 ms): a write in the same tick as the last change leaves ctime as
// it was. A file whose ctime is older than this when its bytes are read
// cannot be written again without its ctime changing.
constexpr std::int64_t settle_ns = 50'000'000;

std::int64_t realtime_ns() {
    timespec t{};
    ::clock_gettime(CLOCK_REALTIME, &t);
    return std::int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

// Unmaps on every early return.
struct Unmap {
    void* base;
    std::size_t bytes;
    ~Unmap() {
        if (base != nullptr) ::munmap(base, bytes);
    }
};

}  // namespace

bool verified(const FileIdentity& id) {
    auto& v = verified_files();
    const std::lock_guard lock(v.mutex);
    const auto it = v.files.find({id.dev, id.ino});
    return it != v.files.end() && it->second == id;
}

void remember_verified(const FileIdentity& id) {
    if (id.ino == 0) return;  // fstat failed
    auto& v = verified_files();
    const std::lock_guard lock(v.mutex);
    if (v.files.size() >= 4096) v.files.clear();
    v.files[{id.dev, id.ino}] = id;
}

std::string map_entry_file(int fd, const CallKey& key, std::size_t element_size, std::size_t element_align,
                           bool full_check, Mapping& out) {
    struct stat st{};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return "output.bin is not a regular file";
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size < header_bytes) return "the file is too short to hold a header (" + std::to_string(size) + " bytes)";
    void* base = ::mmap(nullptr, static_cast<std::size_t>(size), PROT_READ, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) return "cannot map it: " + errno_text(errno);
    Unmap guard{base, static_cast<std::size_t>(size)};
    const char* p = static_cast<const char*>(base);
    // Header, key and the array's length on every hit: a few hundred bytes.
    Header h{};
    std::memcpy(&h, p, sizeof h);
    if (auto bad = check_header(h, size)) return *bad;
    if (h.key_bytes != key.stored.size()) return "it belongs to another call (its key differs)";
    if (std::memcmp(p + header_bytes, key.stored.data(), key.stored.size()) != 0) {
        return "it belongs to another call (same hash, different key)";
    }
    const std::uint64_t at = header_bytes + h.key_bytes + h.pad_bytes;
    std::uint64_t n = 0;
    if (h.payload_bytes < sizeof n) return "its payload is too short to hold an array";
    std::memcpy(&n, p + at, sizeof n);
    const std::uint64_t bytes = h.payload_bytes - sizeof n;
    if (n > bytes / element_size || n * element_size != bytes) {
        return "its array claims " + std::to_string(n) + " elements of " + std::to_string(element_size) +
               " bytes but its payload holds " + std::to_string(bytes) + " bytes";
    }
    if ((at + sizeof n) % element_align != 0) return "its array is not aligned for its type (an older format)";
    // [docs:map]
    // Every byte, once per version of the file in this process: an entry is
    // never written after its rename, and any write would change its identity
    // (entry_file.hpp says when that holds).
    const FileIdentity id = identity_of_stat(st);
    if (full_check || !verified(id)) {
        const bool settled = id.ctime_ns + settle_ns < realtime_ns();  // before the bytes are read
        if (XXH3_64bits(p + header_bytes, static_cast<std::size_t>(size - header_bytes)) != h.checksum) {
            return "checksum mismatch (corrupted)";
        }
        if (settled) remember_verified(id);
    }
    // [docs:end]
    guard.base = nullptr;  // handed over
    out = Mapping(base, static_cast<std::size_t>(size), static_cast<std::size_t>(at + sizeof n), n, true);
    return {};
}

// ------------------------------------------------------------ metadata.json
namespace {

// The JSON string value after `"name": "`, unescaped as json_string escapes; nullopt when absent.
std::optional<std::string> json_string_field(const std::string& json, const std::string& name) {
    const std::string open = "\"" + name + "\": \"";
    std::size_t at = json.find(open);
    if (at == std::string::npos) return std::nullopt;
    std::string out;
    for (at += open.size(); at < json.size(); ++at) {
        const char c = json[at];
        if (c == '"') return out;
        if (c != '\\') {
            out += c;
        } else if (++at < json.size()) {
            if (json[at] == 'u' && at + 4 < json.size()) {
                out += static_cast<char>(std::strtol(json.substr(at + 1, 4).c_str(), nullptr, 16));
                at += 4;
            } else {
                out += json[at];
            }
        }
    }
    return std::nullopt;  // no closing quote
}

// The number after `"name": `; nullopt when absent.
std::optional<double> json_number_field(const std::string& json, const std::string& name) {
    const std::string open = "\"" + name + "\": ";
    const std::size_t at = json.find(open);
    if (at == std::string::npos) return std::nullopt;
    const char* start = json.c_str() + at + open.size();
    char* end = nullptr;
    const double v = std::strtod(start, &end);
    if (end == start) return std::nullopt;
    return v;
}

}  // namespace

std::string read_metadata(int fd, EntryMetadata& out) {
    std::string text(64 * 1024, '\0');
    try {
        text.resize(read_full(fd, text.data(), text.size()));
    } catch (const std::exception& e) {
        return e.what();
    }
    const std::size_t eol = text.find('\n');
    unsigned version = 0;
    std::size_t length = 0;
    unsigned long long checksum = 0;
    const std::string format = std::string(metadata_magic) + " %u %zu %16llx";
    if (eol == std::string::npos ||
        std::sscanf(text.substr(0, eol).c_str(), format.c_str(), &version, &length, &checksum) != 3) {
        return "metadata.json has no header line";
    }
    const std::string json = text.substr(eol + 1);
    if (version < oldest_format_version || version > format_version || json.size() != length ||
        XXH3_64bits(json.data(), json.size()) != checksum) {
        return "metadata.json does not match its header line (truncated or corrupted)";
    }
    const auto duration = json_number_field(json, "duration");
    if (!duration) return "metadata.json has no duration";
    out.duration = *duration;
    out.input_args = json_string_field(json, "input_args").value_or("");
    if (const auto t = json_number_field(json, "time")) {
        out.computed_at = std::chrono::system_clock::time_point(
            std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(*t)));
        return {};
    }
    // Version 1 stored the time to the second only, as text.
    const auto created = json_string_field(json, "created");
    std::tm tm{};
    if (!created || ::strptime(created->c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) == nullptr) {
        return "metadata.json has no time";
    }
    out.computed_at = std::chrono::system_clock::from_time_t(::timegm(&tm));
    return {};
}

}  // namespace corelab::detail
