// The entry file format of corelab::Memory (entry_file.hpp): reading
// output.bin with every length checked and every byte hashed as it arrives,
// writing output.bin and metadata.json.
#define XXH_INLINE_ALL  // header-only xxHash: no library to link, and inlined
#include "entry_file.hpp"

#include <fcntl.h>     // openat
#include <sys/stat.h>  // fstat
#include <unistd.h>    // pwrite, fdatasync
#include <xxhash.h>    // XXH3-64 checksums

#include <algorithm>     // std::min
#include <array>         // std::array
#include <atomic>        // std::atomic: chunks read, for the hashing helper
#include <cstdio>        // std::snprintf
#include <cstring>       // std::memcmp, std::memcpy
#include <ctime>         // gmtime_r, strftime
#include <memory>        // std::unique_ptr
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
    std::uint8_t reserved[24];
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

}  // namespace corelab::detail
