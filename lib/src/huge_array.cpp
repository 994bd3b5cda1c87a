// Implementation of corelab/huge_array.hpp: 2 MB-aligned anonymous mappings.
#include "corelab/huge_array.hpp"

#include <sys/mman.h>  // mmap, munmap, madvise

#include <cerrno>   // errno
#include <cstdint>  // std::uintptr_t
#include <cstring>  // std::strerror
#include <fstream>  // std::ifstream
#include <string>   // std::string

#include "corelab/error.hpp"  // Error

namespace corelab {
namespace {

constexpr std::size_t huge_page = std::size_t{2} << 20;

std::size_t round_up(std::size_t bytes) {
    return (bytes + huge_page - 1) / huge_page * huge_page;
}

}  // namespace

HugePages transparent_huge_pages() {
    std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string line;
    if (!std::getline(in, line)) return HugePages::unknown;
    if (line.find("[always]") != std::string::npos) return HugePages::always;
    if (line.find("[madvise]") != std::string::npos) return HugePages::madvise;
    if (line.find("[never]") != std::string::npos) return HugePages::never;
    return HugePages::unknown;
}

std::string describe_huge_pages() {
    switch (transparent_huge_pages()) {
        case HugePages::always:
        case HugePages::madvise:
            return "large arrays use 2 MB transparent huge pages (one page fault per 2 MB instead of per 4 KB)";
        case HugePages::never:
            return "transparent huge pages are disabled here (/sys/kernel/mm/transparent_hugepage/enabled is "
                   "'never'): large arrays use 4 KB pages, so page faults and forks cost ~500x more";
        case HugePages::unknown:
            break;
    }
    return "this kernel does not say whether it offers transparent huge pages: large arrays may use 4 KB pages";
}

namespace detail {

void* map_huge(std::size_t bytes) {
    if (bytes > (std::size_t{1} << 62)) throw Error("cannot allocate " + std::to_string(bytes) + " bytes: too large");
    const std::size_t size = round_up(bytes);
    // Map one huge page more than needed, then trim both ends so the start
    // is 2 MB aligned: the kernel can only back aligned 2 MB ranges with huge pages.
    const std::size_t span = size + huge_page;
    void* raw = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) {
        throw Error("cannot map " + std::to_string(bytes) + " bytes: " + std::strerror(errno), About::size);
    }
    const auto start = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t aligned = (start + huge_page - 1) / huge_page * huge_page;
    const std::size_t head = aligned - start;
    const std::size_t tail = span - head - size;
    if (head != 0) ::munmap(raw, head);
    if (tail != 0) ::munmap(reinterpret_cast<void*>(aligned + size), tail);
    void* p = reinterpret_cast<void*>(aligned);
    // Advice only: where THP is 'never' this fails or is ignored, and the
    // array simply uses 4 KB pages (describe_huge_pages() says so).
    (void)::madvise(p, size, MADV_HUGEPAGE);
    return p;
}

void throw_too_large(std::size_t n, std::size_t size) {
    throw Error("cannot allocate " + std::to_string(n) + " elements of " + std::to_string(size) +
                    " bytes: the size does not fit in memory",
                About::size);
}

void unmap_huge(void* p, std::size_t bytes) noexcept {
    ::munmap(p, round_up(bytes));
}

}  // namespace detail
}  // namespace corelab
