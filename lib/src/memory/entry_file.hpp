// The entry file format of corelab::Memory (lib/src/memory/, internal).
//
// An entry is a directory dir/<name>/<hex>/ with two files:
//   output.bin     64-byte header | stored key | payload (the cereal bytes of the result)
//   metadata.json  one header line | JSON (the call, duration, creation time)
// Header of output.bin (native byte order):
//   magic "CORELABM" | u32 format version | u32 header bytes (64) |
//   u64 key bytes | u64 payload bytes | u64 XXH3-64 of key and payload | zeros
// The reader (read_entry, memory.hpp) checks every length against the file
// and the checksum over key and payload; it never trusts what it reads.
#pragma once

#include <cstddef>     // std::size_t
#include <cstdint>     // std::uint32_t
#include <functional>  // std::function
#include <string>      // std::string

#include "corelab/memory.hpp"  // CallKey, OutArchive

namespace corelab::detail {

inline constexpr char entry_magic[8] = {'C', 'O', 'R', 'E', 'L', 'A', 'B', 'M'};
inline constexpr std::uint32_t format_version = 1;
inline constexpr std::size_t header_bytes = 64;
inline constexpr const char* output_file = "output.bin";
inline constexpr const char* metadata_file = "metadata.json";
inline constexpr const char* metadata_magic = "corelab-memory-metadata";

/// Writes output.bin into the folder open as `dir`: the header, the stored
/// key and the result `save` serialises, then flushes it to the disk. Throws
/// corelab::Error saying which step failed.
void write_output(int dir, const CallKey& key, const std::function<void(OutArchive&)>& save);
/// Writes metadata.json into the folder open as `dir`: the call, how long it
/// took and when, under a header line with its length and checksum.
void write_metadata(int dir, const CallKey& key, const std::string& call, double seconds);

}  // namespace corelab::detail
