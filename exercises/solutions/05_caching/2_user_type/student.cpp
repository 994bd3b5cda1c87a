// Exercise 05.2 — teach cereal a type of your own (README.md).
#include "exercise.hpp"

// cereal finds this function by its name and arguments: it writes a
// Histogram into a cache entry and reads it back.
template <class Archive>
void serialize(Archive& archive, Histogram& h) {
    archive(h.lo, h.hi, h.counts);  // every member, the same order both ways
}

Histogram cached_histogram(const corelab::Memory& memory, const std::vector<double>& data, std::size_t bins) {
    auto cached = memory.cache("histogram", make_histogram);
    return cached(data, bins);
}
