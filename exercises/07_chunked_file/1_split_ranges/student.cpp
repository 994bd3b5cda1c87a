// Exercise 07.1 — byte ranges of whole records (README.md).
#include <corelab/chunked_file.hpp>  // FileChunk, data_file_header_bytes

#include "exercise.hpp"

std::vector<corelab::FileChunk> split_ranges(std::size_t count, std::size_t parts) {
    // TODO(exercise): every part takes count / parts records, so when count is
    // not a multiple of parts the last count % parts records are never read.
    std::vector<corelab::FileChunk> chunks;
    const std::size_t each = count / parts;
    for (std::size_t k = 0; k < parts; ++k) {
        const std::size_t first = k * each;
        chunks.push_back(
            {corelab::data_file_header_bytes + first * sizeof(double), each * sizeof(double), first, each});
    }
    return chunks;
}
