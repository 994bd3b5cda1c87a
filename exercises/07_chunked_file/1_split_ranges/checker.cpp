// Checker of exercise 07.1: for many record counts and part counts, the
// chunks cover every record exactly once, in order, in whole records, their
// sizes differ by at most one record, and they equal corelab::split's.
#include <algorithm>                 // std::minmax_element
#include <corelab/chunked_file.hpp>  // split, DataFile, FileChunk
#include <cstddef>                   // std::size_t

#include "check.hpp"
#include "exercise.hpp"

void run_check() {
    for (std::size_t parts : {std::size_t{3}, std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{16}}) {
        for (std::size_t count : {std::size_t{1000}, std::size_t{1001}, std::size_t{0}, std::size_t{1}, std::size_t{5},
                                  std::size_t{17}, std::size_t{100'003}}) {
            const auto where = check::str(count, " records in ", parts, " parts: ");
            const auto got = split_ranges(count, parts);
            check::expect(got.size() == parts, check::str(where, got.size(), " chunks"));
            std::size_t next = 0, smallest = count, largest = 0;
            for (std::size_t k = 0; k < parts; ++k) {
                const corelab::FileChunk& c = got[k];
                check::expect(c.first == next, check::str(where, "chunk ", k, " starts at record ", c.first,
                                                          ", the previous one ended at ", next));
                check::expect(c.offset == corelab::data_file_header_bytes + 8 * c.first && c.bytes == 8 * c.count,
                              check::str(where, "chunk ", k, " has offset ", c.offset, " and ", c.bytes,
                                         " bytes, which are not records ", c.first, " to ", c.first + c.count));
                next += c.count;
                smallest = std::min(smallest, c.count);
                largest = std::max(largest, c.count);
            }
            check::expect(next == count, check::str(where, "the chunks hold ", next, " records, the file ", count,
                                                    next < count ? ": the last records are never read" : ""));
            check::expect(largest - smallest <= 1, check::str(where, "chunks of ", smallest, " to ", largest,
                                                              " records: sizes must differ by at most one"));
            corelab::DataFile file;
            file.count = count;
            file.bytes = corelab::data_file_header_bytes + 8 * count;
            const auto want = corelab::split(file, parts);
            for (std::size_t k = 0; k < parts; ++k) {
                check::expect(got[k].first == want[k].first && got[k].count == want[k].count,
                              check::str(where, "chunk ", k, " is records ", got[k].first, " +", got[k].count,
                                         ", corelab::split gives ", want[k].first, " +", want[k].count));
            }
        }
    }
}
