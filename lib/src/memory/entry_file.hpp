// The entry file format of corelab::Memory (lib/src/memory/, internal).
//
// An entry is a directory dir/<name>/<hex>/ with two files:
//   output.bin     64-byte header | stored key | zero padding | payload (the cereal bytes of the result)
//   metadata.json  one header line | JSON (the call, duration, creation time)
// Header of output.bin (native byte order):
//   magic "CORELABM" | u32 format version | u32 header bytes (64) |
//   u64 key bytes | u64 payload bytes | u64 XXH3-64 of key, padding and payload |
//   u64 padding bytes | zeros
// The reader (read_entry, memory.hpp) checks every length against the file
// and the checksum over key, padding and payload; it never trusts what it reads.
//
// Version 2 added the padding: a mapped function (Memory::cache_mapped) pads
// so that its array's first element starts on a page boundary of the file,
// and so of its mapping. Copying functions write no padding. Version 1 files
// (the same layout without padding, that field zero) still load; a mapped
// function recomputes one whose array is not aligned for its type.
#pragma once

#include <cstddef>     // std::size_t
#include <cstdint>     // std::uint32_t, std::int64_t
#include <functional>  // std::function
#include <string>      // std::string

#include "corelab/memory.hpp"  // CallKey, OutArchive

namespace corelab::detail {

/// What identifies one version of a file's bytes without reading them.
///
/// Why a mapped hit may check every byte only once per identity and process,
/// and the header, key and array length on every hit: an entry's output.bin
/// is written in a temporary folder and renamed into place, and nothing in
/// this library writes it again (clear and reduce_size unlink; a mapped hit
/// marks its use on metadata.json, a copying hit's futimens on output.bin
/// changes its times, not its bytes, and so costs the next mapped hit one
/// full check). Any write(), truncate or
/// writable mapping's write-back changes the file's ctime, which no program
/// can set back; ctime comes from a clock that advances once a kernel tick,
/// so an identity is only remembered when its ctime was older than 50 ms
/// when its bytes were read (a later write then gets a later ctime). What it
/// does NOT catch: bytes that change without the kernel knowing (a disk or
/// its controller flipping bits, a raw write to the block device, another
/// machine writing the file over a network file system whose ctime this
/// kernel has cached), and a write stamped with a ctime equal to the one
/// remembered because the system clock was set back by exactly that much.
/// The copying load hashes every byte on every hit and catches all of these.
struct FileIdentity {
    std::uint64_t dev = 0, ino = 0, size = 0;
    std::int64_t mtime_ns = 0, ctime_ns = 0;
    friend bool operator==(const FileIdentity&, const FileIdentity&) = default;
};
/// True when this process already checked every byte of the file with this identity.
bool verified(const FileIdentity& id);
/// Records that this process checked every byte of the file with this identity.
void remember_verified(const FileIdentity& id);

/// Maps the output.bin open as `fd` read-only and checks it as the entry of
/// `key` holding an array of `element_size`-byte elements aligned to
/// `element_align`: header, lengths, key and the array's length on every
/// call; the checksum of every byte when `full_check`, or when this process
/// has not yet verified this identity of the file. Returns why it cannot be
/// used (then `out` is empty), or an empty string and the mapping in `out`.
std::string map_entry_file(int fd, const CallKey& key, std::size_t element_size, std::size_t element_align,
                           bool full_check, Mapping& out);

/// Reads metadata.json (open as `fd`): checks its header line, then takes
/// the call's duration, computation time and readable arguments. Returns
/// why it cannot be read, or an empty string.
std::string read_metadata(int fd, EntryMetadata& out);

inline constexpr char entry_magic[8] = {'C', 'O', 'R', 'E', 'L', 'A', 'B', 'M'};
inline constexpr std::uint32_t format_version = 2;
inline constexpr std::uint32_t oldest_format_version = 1;  // still read
inline constexpr std::size_t page_bytes = 4096;            // where a mapped array starts in output.bin
inline constexpr std::size_t header_bytes = 64;
inline constexpr const char* output_file = "output.bin";
inline constexpr const char* metadata_file = "metadata.json";
inline constexpr const char* metadata_magic = "corelab-memory-metadata";

/// Writes output.bin into the folder open as `dir`: the header, the stored
/// key, padding when `aligned` (the payload's first 8 bytes, an array's
/// length, end on a page boundary) and the result `save` serialises, then
/// flushes it to the disk. Throws corelab::Error saying which step failed.
void write_output(int dir, const CallKey& key, const std::function<void(OutArchive&)>& save, bool aligned = false);
/// Writes metadata.json into the folder open as `dir`: the call, how long it
/// took and when, under a header line with its length and checksum.
void write_metadata(int dir, const CallKey& key, const std::string& call, double seconds);

}  // namespace corelab::detail
