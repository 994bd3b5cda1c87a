// Implementation of corelab/chunked_file.hpp: the file format, the chunks,
// pread and mmap readers, the page cache, and scratch files.
#include "corelab/chunked_file.hpp"

#include <fcntl.h>        // open, posix_fadvise, sync_file_range
#include <sys/mman.h>     // mmap, munmap, mincore
#include <sys/stat.h>     // fstat
#include <sys/statvfs.h>  // statvfs
#include <unistd.h>       // pread, pwrite, close, fdatasync, unlink

#include <algorithm>   // std::min
#include <cerrno>      // errno
#include <cstdio>      // std::snprintf
#include <cstring>     // std::memcpy, std::memcmp, std::strerror
#include <filesystem>  // std::filesystem::absolute
#include <utility>     // std::exchange

#include "corelab/detail/fd.hpp"  // Fd, pread_full, pwrite_full, errno_text
#include "corelab/error.hpp"      // Error
#include "corelab/ipc/names.hpp"  // make_name, track_path, install_signal_cleanup, lock_as_owner

namespace corelab {
namespace {

constexpr char magic[8] = {'C', 'O', 'R', 'E', 'L', 'A', 'B', '\n'};
constexpr std::uint32_t element_float64_le = 1;  // the only element type so far
constexpr std::size_t write_block_bytes = std::size_t{32} << 20;

// The header as it lies on disk (little-endian, 64 bytes).
struct Header {
    char magic[8];
    std::uint32_t version;
    std::uint32_t element;
    std::uint64_t count;
    char zeros[40];
};
static_assert(sizeof(Header) == data_file_header_bytes);

using detail::errno_text;
using detail::Fd;

// Opens `path` (a file descriptor closed by its destructor), or throws saying why not.
Fd open_file(const std::string& path, int flags, const char* why, mode_t mode = 0) {
    Fd fd(::open(path.c_str(), flags, mode));
    if (!fd.ok()) {
        const int err = errno;
        std::string text = std::string("cannot ") + why + " " + path + ": " + std::strerror(err);
        if (err == ENOENT && (flags & O_CREAT) == 0) text += " (was it removed? check the path)";
        if (err == EACCES) text += " (no permission)";
        throw Error(text, err == EACCES ? About::directory : About::nothing);
    }
    return fd;
}

struct stat stat_of(int fd, const std::string& path) {
    struct stat st{};
    if (::fstat(fd, &st) != 0) throw Error("cannot examine " + path + ": " + errno_text());
    return st;
}

// Writes all `bytes` at `offset`, resuming after signals and short writes.
void write_all(int fd, const void* data, std::size_t bytes, std::uint64_t offset, const std::string& path) {
    if (const int err = detail::pwrite_full(fd, data, bytes, offset)) {
        throw Error("cannot write " + path + ": " + std::strerror(err) + (err == ENOSPC ? " (the disk is full)" : ""),
                    err == ENOSPC ? About::disk_room : About::nothing);
    }
}

Header make_header(std::size_t count) {
    Header h{};
    std::memcpy(h.magic, magic, sizeof magic);
    h.version = data_file_version;
    h.element = element_float64_le;
    h.count = count;
    return h;
}

std::string megabytes(std::uint64_t bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
    return text;
}

std::int64_t modified_ns(const struct stat& st) {
    return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

// Checks that `fd` is still the file that was split and holds the chunk.
void check_still_there(int fd, const DataFile& file, const FileChunk& chunk) {
    const struct stat st = stat_of(fd, file.path);
    const std::uint64_t end = chunk.offset + chunk.bytes;
    if (static_cast<std::uint64_t>(st.st_size) < end) {
        throw Error(file.path + " is truncated: it holds " + std::to_string(st.st_size) +
                    " bytes, but this chunk needs bytes " + std::to_string(chunk.offset) + " to " +
                    std::to_string(end) + " (it was cut short after it was split)");
    }
    // a new file may get the inode number the old one had: compare the time too
    if (static_cast<std::uint64_t>(st.st_dev) != file.device || static_cast<std::uint64_t>(st.st_ino) != file.inode ||
        modified_ns(st) != file.modified_ns) {
        throw Error(file.path + " is no longer the file that was split: it was replaced or rewritten since");
    }
}

Partial read_by_pread(int fd, const DataFile& file, const FileChunk& chunk, std::size_t block_bytes) {
    block_bytes = std::max<std::size_t>(sizeof(double), block_bytes / sizeof(double) * sizeof(double));
    HugeArray<double> buffer(std::min<std::uint64_t>(block_bytes, chunk.bytes) / sizeof(double));
    (void)::posix_fadvise(fd, static_cast<off_t>(chunk.offset), static_cast<off_t>(chunk.bytes), POSIX_FADV_SEQUENTIAL);
    Partial total;
    std::uint64_t at = chunk.offset;
    const std::uint64_t end = chunk.offset + chunk.bytes;
    while (at < end) {
        const std::size_t want =
            static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size() * sizeof(double), end - at));
        const std::size_t got = detail::pread_full(fd, buffer.data(), want, at, file.path);
        if (got < want) {
            throw Error(file.path + " ended at byte " + std::to_string(at + got) +
                        ", but this chunk needs bytes up to " + std::to_string(end) +
                        ": it was truncated while it was read");
        }
        total += sum_fast({buffer.data(), want / sizeof(double)});
        at += want;
    }
    return total;
}

Partial read_by_mmap(int fd, const DataFile& file, const FileChunk& chunk) {
    // mmap maps whole pages: start at the page that holds the chunk's first byte
    static const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    const std::uint64_t start = chunk.offset / page * page;
    const std::size_t length = static_cast<std::size_t>(chunk.offset - start + chunk.bytes);
    void* map = ::mmap(nullptr, length, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, static_cast<off_t>(start));
    if (map == MAP_FAILED) throw Error("cannot map " + file.path + ": " + errno_text());
    const auto* first = reinterpret_cast<const double*>(static_cast<const char*>(map) + (chunk.offset - start));
    const Partial total = sum_fast({first, chunk.count});
    ::munmap(map, length);
    return total;
}

const char* kind_of(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a file";
}

// Opens `path` for reading and checks that it is a regular file. O_NONBLOCK
// first: opening a FIFO for reading would wait for a writer, for ever; a
// regular file ignores the flag, which is then cleared anyway.
Fd open_regular(const std::string& path) {
    Fd fd = open_file(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC, "open");
    const struct stat st = stat_of(fd.get(), path);
    if (!S_ISREG(st.st_mode)) {
        throw Error(path + " is " + kind_of(st.st_mode) + ", not a regular file, so not a corelab data file");
    }
    ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
    return fd;
}

}  // namespace

DataFile write_data_file(const std::string& path, std::span<const double> data, const WriteProgress& progress) {
    Fd fd = open_file(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, "create", 0600);
    const Header header = make_header(data.size());
    write_all(fd.get(), &header, sizeof header, 0, path);
    const std::uint64_t total = sizeof header + data.size_bytes();
    const auto* bytes = reinterpret_cast<const char*>(data.data());
    std::uint64_t previous = 0, previous_bytes = 0;  // the block written before this one
    for (std::size_t at = 0; at < data.size_bytes(); at += write_block_bytes) {
        const std::size_t block = std::min(write_block_bytes, data.size_bytes() - at);
        write_all(fd.get(), bytes + at, block, sizeof header + at, path);
        // start writing this block to the disk and wait for the one before: the
        // progress then says what reached the disk, and dirty pages stay few
        const std::uint64_t offset = sizeof header + at;
        (void)::sync_file_range(fd.get(), static_cast<off_t>(offset), static_cast<off_t>(block), SYNC_FILE_RANGE_WRITE);
        if (previous_bytes > 0) {
            (void)::sync_file_range(fd.get(), static_cast<off_t>(previous), static_cast<off_t>(previous_bytes),
                                    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
        }
        previous = offset;
        previous_bytes = block;
        if (progress) progress(offset + block, total);
    }
    if (::fdatasync(fd.get()) != 0) throw Error("cannot flush " + path + " to the disk: " + errno_text());
    fd.close(path);
    if (progress && data.empty()) progress(total, total);
    return open_data_file(path);
}

DataFile open_data_file(const std::string& path) {
    const Fd fd = open_regular(path);
    const struct stat st = stat_of(fd.get(), path);
    const auto size = static_cast<std::uint64_t>(st.st_size);
    Header h{};
    if (detail::pread_full(fd.get(), &h, sizeof h, 0, path) < sizeof h) {
        throw Error(path + " holds " + std::to_string(size) + " bytes, less than the " +
                    std::to_string(data_file_header_bytes) +
                    "-byte header of a corelab data file: it is truncated or not a data file");
    }
    if (std::memcmp(h.magic, magic, sizeof magic) != 0) {
        throw Error(path + " is not a corelab data file: it does not start with the magic \"CORELAB\\n\"");
    }
    if (h.version != data_file_version) {
        throw Error(path + " has format version " + std::to_string(h.version) + "; this library reads version " +
                    std::to_string(data_file_version) + ": write it again with this version");
    }
    if (h.element != element_float64_le) {
        throw Error(path + " holds element type " + std::to_string(h.element) +
                    ", not 1 (little-endian 64-bit doubles): it was not written by this library");
    }
    if (h.count > (UINT64_MAX - sizeof h) / sizeof(double)) {
        throw Error(path + " has a corrupt header: a count of " + std::to_string(h.count) + " doubles");
    }
    const std::uint64_t expected = sizeof h + h.count * sizeof(double);
    if (size < expected) {
        throw Error(path + " is truncated: its header promises " + std::to_string(h.count) + " doubles (" +
                    std::to_string(expected) + " bytes) but it holds " + std::to_string(size) +
                    " bytes (was its writing interrupted?)");
    }
    if (size > expected) {
        throw Error(path + " holds " + std::to_string(size - expected) + " bytes more than its header's " +
                    std::to_string(h.count) + " doubles: it is corrupt");
    }
    return DataFile{path,
                    static_cast<std::size_t>(h.count),
                    size,
                    static_cast<std::uint64_t>(st.st_dev),
                    static_cast<std::uint64_t>(st.st_ino),
                    modified_ns(st)};
}

HugeArray<double> read_data_file(const std::string& path) {
    const DataFile file = open_data_file(path);
    HugeArray<double> data(file.count);
    Fd fd = open_file(path, O_RDONLY | O_CLOEXEC, "open");
    check_still_there(fd.get(), file, split(file, 1)[0]);
    const std::size_t bytes = file.count * sizeof(double);
    if (detail::pread_full(fd.get(), data.data(), bytes, data_file_header_bytes, path) < bytes) {
        throw Error(path + " was truncated while it was read");
    }
    return data;
}

std::vector<FileChunk> split(const DataFile& file, std::size_t parts) {
    if (parts == 0) throw Error("cannot split " + file.path + " into 0 parts: give at least 1");
    std::vector<FileChunk> chunks;
    chunks.reserve(parts);
    for (std::size_t k = 0; k < parts; ++k) {
        const auto [first, count] = chunk_range(file.count, k, parts);
        chunks.push_back({data_file_header_bytes + first * sizeof(double), count * sizeof(double), first, count});
    }
    return chunks;
}

Partial read_chunk(const DataFile& file, const FileChunk& chunk, ReadMethod method, std::size_t read_block_bytes) {
    const Fd fd = open_regular(file.path);  // a FIFO put in its place is refused, not waited on
    check_still_there(fd.get(), file, chunk);
    if (chunk.count == 0) return {};
    return method == ReadMethod::pread ? read_by_pread(fd.get(), file, chunk, read_block_bytes)
                                       : read_by_mmap(fd.get(), file, chunk);
}

Partial read_serial(const DataFile& file, ReadMethod method) {
    return read_chunk(file, split(file, 1)[0], method);
}

Partial read_in_processes(const DataFile& file, ProcessWorkers& workers, ReadMethod method) {
    const std::vector<FileChunk> chunks = split(file, workers.size());
    const std::vector<Partial> parts = workers.run([&](unsigned k) { return read_chunk(file, chunks[k], method); });
    const Partial total = combine(parts);
    if (total.count != file.count) {
        throw Error("the workers read " + std::to_string(total.count) + " doubles of " + file.path + ", not " +
                    std::to_string(file.count));
    }
    return total;
}

std::vector<DataFile> split_into_files(const DataFile& file, const std::vector<std::string>& paths) {
    const std::vector<FileChunk> chunks = split(file, paths.size());
    Fd source = open_file(file.path, O_RDONLY | O_CLOEXEC, "open");
    check_still_there(source.get(), file, {data_file_header_bytes, file.bytes - data_file_header_bytes, 0, file.count});
    HugeArray<char> buffer(std::min<std::uint64_t>(write_block_bytes, file.bytes));
    std::vector<DataFile> files;
    for (std::size_t k = 0; k < paths.size(); ++k) {
        Fd target = open_file(paths[k], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, "create", 0600);
        const Header header = make_header(chunks[k].count);
        write_all(target.get(), &header, sizeof header, 0, paths[k]);
        // copy in large blocks, as write_data_file writes: the page cache then keeps the copy in large
        // folios too (copy_file_range would copy page by page), so split_files reads compare like with like
        for (std::uint64_t done = 0; done < chunks[k].bytes;) {
            const std::size_t want =
                static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), chunks[k].bytes - done));
            const std::size_t r =
                detail::pread_full(source.get(), buffer.data(), want, chunks[k].offset + done, file.path);
            if (r < want) throw Error(file.path + " was truncated while it was split into files");
            write_all(target.get(), buffer.data(), r, sizeof header + done, paths[k]);
            done += r;
        }
        // on the disk before it is read: a flusher writing it back meanwhile would compete for the cores
        if (::fdatasync(target.get()) != 0) throw Error("cannot flush " + paths[k] + " to the disk: " + errno_text());
        target.close(paths[k]);
        files.push_back(open_data_file(paths[k]));
    }
    return files;
}

Partial read_files_in_processes(const std::vector<std::string>& paths, ProcessWorkers& workers) {
    if (paths.size() != workers.size()) {
        throw Error("read_files_in_processes: " + std::to_string(paths.size()) + " files for " +
                    std::to_string(workers.size()) + " workers: give one file per worker");
    }
    const std::vector<Partial> parts =
        workers.run([&](unsigned k) { return read_serial(open_data_file(paths[k]), ReadMethod::pread); });
    return combine(parts);
}

void drop_from_page_cache(const std::string& path) {
    Fd fd = open_file(path, O_RDONLY | O_CLOEXEC, "open");
    // the kernel drops only clean pages: write the dirty ones back first
    if (::fdatasync(fd.get()) != 0) throw Error("cannot flush " + path + ": " + errno_text());
    const int err = ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);
    if (err != 0) throw Error("cannot drop " + path + " from the page cache: " + std::strerror(err));
}

double cached_fraction(const std::string& path) {
    Fd fd = open_file(path, O_RDONLY | O_CLOEXEC, "open");
    const auto size = static_cast<std::size_t>(stat_of(fd.get(), path).st_size);
    if (size == 0) return 0.0;
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd.get(), 0);
    if (map == MAP_FAILED) throw Error("cannot map " + path + ": " + errno_text());
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    std::vector<unsigned char> resident((size + page - 1) / page);
    const int rc = ::mincore(map, size, resident.data());
    const int err = errno;
    ::munmap(map, size);
    if (rc != 0) throw Error("cannot ask the page cache about " + path + ": " + std::strerror(err));
    std::size_t in = 0;
    for (unsigned char r : resident) in += r & 1u;
    return static_cast<double>(in) / static_cast<double>(resident.size());
}

std::uint64_t free_disk_bytes(const std::string& directory) {
    struct statvfs fs{};
    if (::statvfs(directory.c_str(), &fs) != 0) {
        throw Error("cannot use the directory " + directory + ": " + errno_text() + " (does it exist?)",
                    About::directory);
    }
    return static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
}

void check_disk_room(const std::string& directory, std::uint64_t bytes, const std::string& what) {
    const std::uint64_t free_bytes = free_disk_bytes(directory);
    if (bytes > free_bytes) {
        throw Error(what + " needs " + megabytes(bytes) + " in " + directory + ", but it has only " +
                        megabytes(free_bytes) + " free",
                    About::disk_room);
    }
}

ScratchFile::ScratchFile(const std::string& directory, const std::string& purpose)
    : path_((std::filesystem::absolute(directory) / ipc::make_name(purpose)).string()) {
    ipc::install_signal_cleanup();
    ipc::track_path(path_);  // before it exists: a signal never leaves it behind
    // create it and take its liveness lock (ipc/names.hpp); a sweep that
    // removed it between the two is noticed: create it again
    for (int attempt = 1; !lock_; ++attempt) {
        const int fd = ::open(path_.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            const int err = errno;
            ipc::untrack_path(path_);
            throw Error("cannot create " + path_ + ": " + std::strerror(err));
        }
        try {
            lock_ = ipc::lock_as_owner(AT_FDCWD, path_, fd);
        } catch (...) {
            ::close(fd);
            remove();
            throw;
        }
        ::close(fd);
        if (!lock_ && attempt == 8) {
            ipc::untrack_path(path_);
            throw Error("cannot create " + path_ + ": another process removed it 8 times");
        }
    }
}

ScratchFile::ScratchFile(ScratchFile&& other) noexcept
    : path_(std::exchange(other.path_, {})), lock_(std::move(other.lock_)) {}

ScratchFile& ScratchFile::operator=(ScratchFile&& other) noexcept {
    if (this != &other) {
        remove();
        path_ = std::exchange(other.path_, {});
        lock_ = std::move(other.lock_);
    }
    return *this;
}

ScratchFile::~ScratchFile() {
    remove();
}

std::string ScratchFile::keep(const std::string& name) {
    if (path_.empty()) throw Error("ScratchFile::keep: the file was already kept or removed");
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos || ipc::parse_name(name)) {
        throw Error("cannot keep " + path_ + " as '" + name + "': give a plain file name not starting with corelab.");
    }
    const std::string kept = (std::filesystem::path(path_).parent_path() / name).string();
    if (::rename(path_.c_str(), kept.c_str()) != 0) {
        throw Error("cannot keep " + path_ + " as " + kept + ": " + std::strerror(errno));
    }
    ipc::untrack_path(path_);
    path_.clear();
    lock_.reset();  // no longer scratch: its name is not one a sweep looks at
    return kept;
}

void ScratchFile::remove() noexcept {
    if (path_.empty()) return;
    ::unlink(path_.c_str());
    ipc::untrack_path(path_);
    path_.clear();
    lock_.reset();  // after the unlink: a sweep never sees our live file unlocked
}

}  // namespace corelab
