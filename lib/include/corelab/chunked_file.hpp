// corelab/chunked_file.hpp — a large file on disk, split among processes.
//
// Concept: the notebook's last cell ("when the file is very large, break it
// up and assign each part to a process"). A data file is a 64-byte header
// (magic, format version, element type, count) followed by the doubles. The
// parent reads only the header and splits the data into byte ranges of whole
// records; each worker process opens the file itself and reads only its
// range, with pread() in blocks of a few MB or with mmap() of its range, and
// returns a Partial. The notebook's literal idea, N separate files with one
// path per worker, is here too. Where the time goes depends on where the
// bytes are: on disk (the job is I/O-bound), or in the page cache (the job
// is a memory copy, bound by the cores). drop_from_page_cache() and
// cached_fraction() let a lesson show both. Files are ScratchFiles: removed
// on exit, on errors and on SIGINT/SIGTERM. Used by lesson 07.
#pragma once

#include <cstddef>     // std::size_t
#include <cstdint>     // std::uint64_t
#include <functional>  // std::function
#include <span>        // std::span
#include <string>      // std::string
#include <vector>      // std::vector

#include "corelab/huge_array.hpp"       // HugeArray: read_data_file's result
#include "corelab/ipc/names.hpp"        // ObjectLock: a scratch file's liveness lock
#include "corelab/process_workers.hpp"  // ProcessWorkers: one chunk per worker
#include "corelab/reduce.hpp"           // Partial: what a worker returns

namespace corelab {

/// Bytes before the first double: magic "CORELAB\n", format version,
/// element type, count, then zeros. Doubles start 8-byte aligned.
inline constexpr std::size_t data_file_header_bytes = 64;

/// The format version this library writes and reads.
inline constexpr std::uint32_t data_file_version = 1;

/// The default pread block: large enough that a call's cost vanishes, small
/// enough to stay in the core's L2 cache between the copy and the sum
/// (512 KB beat 128 KB, 1 MB and 4 MB on the course's machine).
inline constexpr std::size_t default_read_block_bytes = std::size_t{512} << 10;

/// A data file whose header has been read and checked.
struct DataFile {
    std::string path;
    std::size_t count = 0;                ///< doubles in the file
    std::uint64_t bytes = 0;              ///< header + 8 * count: the file's size
    std::uint64_t device = 0, inode = 0;  ///< which file it was (a replaced one differs)
    std::int64_t modified_ns = 0;         ///< its last modification (a rewritten one differs)
};

/// One worker's share: whole records, [offset, offset + bytes) of the file.
struct FileChunk {
    std::uint64_t offset = 0;  ///< byte offset in the file (past the header)
    std::uint64_t bytes = 0;   ///< 8 * count
    std::size_t first = 0;     ///< index of the first record
    std::size_t count = 0;     ///< records in the chunk (0 when parts > records)
};

/// How a worker gets its bytes.
enum class ReadMethod {
    pread,  ///< pread() into a buffer of read_block_bytes, then sum it
    mmap,   ///< mmap() the chunk's range (read-only, populated) and sum it in place
};

/// Called while a file is written: bytes done so far, bytes in all.
using WriteProgress = std::function<void(std::uint64_t done, std::uint64_t total)>;

/// Writes `data` to `path` (created or truncated, mode 0600) and flushes it
/// to the disk (fdatasync), calling `progress` after every block. Returns
/// the file as open_data_file would. Throws corelab::Error when it cannot.
DataFile write_data_file(const std::string& path, std::span<const double> data, const WriteProgress& progress = {});

/// Opens `path`, reads and checks its header and size, closes it. Throws
/// corelab::Error for a missing or unreadable file, a foreign one (wrong
/// magic, version or element type) and a truncated or over-long one.
DataFile open_data_file(const std::string& path);

/// All the doubles of a file, read back (with the same checks).
HugeArray<double> read_data_file(const std::string& path);

/// `parts` chunks of whole records that cover the data exactly once, in
/// order, sizes differing by at most one record (empty chunks when parts >
/// count). Throws corelab::Error when parts is 0.
std::vector<FileChunk> split(const DataFile& file, std::size_t parts);

/// Opens the file, checks it is still the one split (long enough, same
/// device, inode and modification time), reads only `chunk` and returns its sum and count. Throws
/// corelab::Error when the file is gone, replaced, or shorter than the chunk
/// needs. With ReadMethod::mmap a file truncated while it is being summed
/// raises SIGBUS (ProcessWorkers reports the worker killed by it).
Partial read_chunk(const DataFile& file, const FileChunk& chunk, ReadMethod method,
                   std::size_t read_block_bytes = default_read_block_bytes);

/// The whole file in this process: read_chunk over one chunk.
Partial read_serial(const DataFile& file, ReadMethod method = ReadMethod::pread);

/// Splits the file into workers.size() chunks; worker k reads chunk k.
/// Returns the combined Partial. Throws WorkerError naming the worker that
/// failed (its message says why: the file vanished, was truncated, ...).
Partial read_in_processes(const DataFile& file, ProcessWorkers& workers, ReadMethod method = ReadMethod::pread);

/// The notebook's literal idea: copies chunk k of `file` into a data file of
/// its own, `paths[k]` (parts = paths.size()), each with its own header,
/// and flushes them to the disk. Returns them. Throws corelab::Error when it
/// cannot.
std::vector<DataFile> split_into_files(const DataFile& file, const std::vector<std::string>& paths);

/// Worker k opens `paths[k]` (it gets a path, nothing else), reads the whole
/// file with pread. Throws corelab::Error when paths.size() != workers.size(),
/// WorkerError when a worker failed.
Partial read_files_in_processes(const std::vector<std::string>& paths, ProcessWorkers& workers);

/// Writes back what is dirty (fdatasync) and asks the kernel to drop the
/// file's pages from its page cache (posix_fadvise POSIX_FADV_DONTNEED), so
/// the next read comes from the disk. Throws corelab::Error when it cannot.
void drop_from_page_cache(const std::string& path);

/// The fraction (0 to 1) of the file's pages in the page cache now (mincore).
/// Throws corelab::Error when the file cannot be opened or mapped.
double cached_fraction(const std::string& path);

/// Bytes free to this user in the filesystem that holds `directory`.
/// Throws corelab::Error when the directory cannot be examined.
std::uint64_t free_disk_bytes(const std::string& directory);

/// Throws corelab::Error, before anything is written, when `directory` has
/// less than `bytes` free for `what` (its message says how much it has).
void check_disk_room(const std::string& directory, std::uint64_t bytes, const std::string& what);

/// A file this process creates and removes: it is unlinked when the
/// ScratchFile is destroyed (so on errors too) unless keep() was called, and
/// by the signal handler of ipc/names.hpp on SIGINT/SIGTERM. Its name,
/// `corelab.<pid>.<purpose>.<random>`, and the liveness lock it holds on the
/// file (ipc::lock_as_owner) let a later run remove it once its owner is gone
/// (ipc::remove_stale(directory)). Move-only.
class ScratchFile {
public:
    /// Creates an empty file (mode 0600) in `directory` (made absolute),
    /// locks it and tracks it; write it by its path (writing in place keeps
    /// the lock; replacing the file by another would not). Throws
    /// corelab::Error for a bad purpose, too long a path, or when the file
    /// cannot be created.
    ScratchFile(const std::string& directory, const std::string& purpose);
    ScratchFile(ScratchFile&& other) noexcept;
    ScratchFile& operator=(ScratchFile&& other) noexcept;
    ScratchFile(const ScratchFile&) = delete;
    ScratchFile& operator=(const ScratchFile&) = delete;
    ~ScratchFile();

    /// The absolute path; empty after keep() or remove().
    const std::string& path() const noexcept { return path_; }
    /// Keeps the file: renames it to `name` in the same directory (a plain
    /// file name; a file of that name is replaced), lets its lock go and
    /// returns the new path. It is no longer removed, not even on a signal,
    /// and its name is not one that remove_stale() sweeps. Throws corelab::Error when `name` is not a
    /// plain file name or the rename fails (the file then stays scratch).
    std::string keep(const std::string& name);
    /// Removes the file now (if it exists) and stops tracking it.
    void remove() noexcept;

private:
    std::string path_;
    ipc::ObjectLock lock_;  // held while the file is scratch
};

}  // namespace corelab
