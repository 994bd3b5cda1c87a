// Exercise 07.1: split a data file into byte ranges of whole records.
#pragma once
#include <corelab/chunked_file.hpp>  // FileChunk, data_file_header_bytes
#include <cstddef>                   // std::size_t
#include <vector>                    // std::vector

/// The `parts` chunks of a data file holding `count` doubles (records of 8
/// bytes after the corelab::data_file_header_bytes header), in order: chunk k
/// starts at byte header + 8 * first and spans 8 * count bytes. Together they
/// cover every record exactly once; their record counts differ by at most one
/// (empty chunks when parts > count). parts >= 1.
std::vector<corelab::FileChunk> split_ranges(std::size_t count, std::size_t parts);
