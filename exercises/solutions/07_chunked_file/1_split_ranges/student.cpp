// Exercise 07.1 — byte ranges of whole records (README.md).
#include <algorithm>                 // std::min
#include <corelab/chunked_file.hpp>  // FileChunk, data_file_header_bytes

#include "exercise.hpp"

std::vector<corelab::FileChunk> split_ranges(std::size_t count, std::size_t parts) {
    std::vector<corelab::FileChunk> chunks;
    const std::size_t each = count / parts, extra = count % parts;
    for (std::size_t k = 0; k < parts; ++k) {
        // the first `extra` parts take one record more: sizes differ by at most one
        const std::size_t first = k * each + std::min(k, extra);
        const std::size_t n = each + (k < extra ? 1 : 0);
        // split in records, then convert: a byte split could cut a double in two
        chunks.push_back({corelab::data_file_header_bytes + first * sizeof(double), n * sizeof(double), first, n});
    }
    return chunks;
}
