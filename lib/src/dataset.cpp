// Implementation of corelab/dataset.hpp: block-seeded xoshiro256+ on all cores.
#include "corelab/dataset.hpp"

#include <sys/statvfs.h>  // statvfs: the room in /dev/shm

#include <algorithm>  // std::min, std::max
#include <atomic>     // std::atomic
#include <cmath>      // std::floor, std::pow, std::log10
#include <cstdio>     // std::snprintf
#include <exception>  // std::exception_ptr
#include <fstream>    // std::ifstream
#include <limits>     // std::numeric_limits
#include <string>     // std::string
#include <thread>     // std::thread
#include <vector>     // std::vector

#include "corelab/error.hpp"  // Error

namespace corelab {
namespace {

// splitmix64: turns (seed, block) into well-mixed 64-bit seeds.
std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// xoshiro256+ (Blackman & Vigna): fast, and its top 53 bits are fine for doubles.
struct Xoshiro256Plus {
    std::uint64_t s[4];
    explicit Xoshiro256Plus(std::uint64_t seed, std::uint64_t block) {
        std::uint64_t x = seed ^ (block * 0xD1B54A32D192ED03ULL);
        for (auto& word : s) word = splitmix64(x);
    }
    static std::uint64_t rotl(std::uint64_t v, int k) { return (v << k) | (v >> (64 - k)); }
    std::uint64_t next() {
        const std::uint64_t result = s[0] + s[3];
        const std::uint64_t t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return result;
    }
};

// Elements [skip, skip + count) of block `block`: the generator steps over the first `skip`.
void fill_block(double* out, std::size_t skip, std::size_t count, std::uint64_t seed, std::uint64_t block) {
    Xoshiro256Plus rng(seed, block);
    for (std::size_t i = 0; i < skip; ++i) (void)rng.next();
    for (std::size_t i = 0; i < count; ++i) out[i] = static_cast<double>(rng.next() >> 11) * 0x1.0p-53;
}

std::string gigabytes(std::size_t bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%.2f GB", static_cast<double>(bytes) / 1e9);
    return text;
}

// 24.0 GB, or 512.0 MB below a gigabyte (10^9 bytes, as disks and the lessons count).
std::string size_text(double bytes) {
    char text[32];
    if (bytes >= 1e9) {
        std::snprintf(text, sizeof text, "%.1f GB", bytes / 1e9);
    } else {
        std::snprintf(text, sizeof text, "%.1f MB", bytes / 1e6);
    }
    return text;
}

}  // namespace

std::size_t available_memory() {
    std::ifstream in("/proc/meminfo");
    std::string key;
    std::size_t value = 0;
    std::string unit;
    while (in >> key >> value) {
        std::getline(in, unit);
        if (key == "MemAvailable:") return value * 1024;
    }
    return 0;
}

void check_fits_in_memory(std::size_t bytes, const char* what) {
    const std::size_t available = available_memory();
    if (available != 0 && bytes > available) {
        throw Error(std::string(what) + " needs " + gigabytes(bytes) + " but only " + gigabytes(available) +
                        " of memory is available",
                    About::size);
    }
}

void check_peak_memory(std::uint64_t count, const Footprint& footprint, const std::string& what) {
    const double n = static_cast<double>(count);
    const double need = n * footprint.bytes_per_element + footprint.fixed_bytes;
    const double shm_need = n * footprint.shm_bytes_per_element;
    const double available = static_cast<double>(available_memory());
    const double usable = usable_memory_share * available;
    double shm_free = -1;  // unknown
    if (struct statvfs fs{}; shm_need > 0 && ::statvfs("/dev/shm", &fs) == 0) {
        shm_free = static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize);
    }
    const bool too_much = available > 0 && need > usable;
    const bool too_much_shm = shm_free >= 0 && shm_need > shm_free;
    if (!too_much && !too_much_shm) return;

    // the largest count that fits both, rounded down to two significant digits
    double largest = n - 1;  // this count does not fit
    if (available > 0) {
        const double room = usable - footprint.fixed_bytes;
        largest = std::min(largest, footprint.bytes_per_element > 0 ? room / footprint.bytes_per_element
                                                                    : (room >= 0 ? largest : 0.0));
    }
    if (shm_free >= 0 && footprint.shm_bytes_per_element > 0) {
        largest = std::min(largest, shm_free / footprint.shm_bytes_per_element);
    }
    largest = std::floor(std::max(0.0, largest));
    if (largest >= 100) {
        const double unit = std::pow(10.0, std::floor(std::log10(largest)) - 1);
        largest = std::floor(largest / unit) * unit;
    }
    char share[16];
    std::snprintf(share, sizeof share, "%.0f%%", 100 * usable_memory_share);
    const std::string text =
        too_much
            ? what + " needs " + size_text(need) + " of memory at once; " + size_text(available) +
                  " is available, and one run takes at most " + share + " of it (" + size_text(usable) + ")"
            : what + " needs " + size_text(shm_need) + " in /dev/shm at once; it has " + size_text(shm_free) + " free";
    throw MemoryShortage(text, static_cast<std::uint64_t>(largest));
}

HugeArray<double> make_uniform(std::size_t n, std::uint64_t seed, unsigned threads) {
    if (n == 0) throw Error("make_uniform: n must be at least 1");
    return make_uniform_part(n, seed, 0, n, threads);
}

HugeArray<double> make_uniform_part(std::size_t n, std::uint64_t seed, std::size_t first, std::size_t count,
                                    unsigned threads) {
    if (count == 0) throw Error("make_uniform_part: count must be at least 1");
    if (first > n || count > n - first) {
        throw Error("make_uniform_part: elements [" + std::to_string(first) + ", " + std::to_string(first) + " + " +
                    std::to_string(count) + ") do not lie within the " + std::to_string(n) + " of the data");
    }
    if (count > std::numeric_limits<std::size_t>::max() / sizeof(double)) {
        throw Error("make_uniform: " + std::to_string(count) + " doubles cannot be addressed", About::size);
    }
    check_fits_in_memory(count * sizeof(double), (std::to_string(count) + " doubles").c_str());

    HugeArray<double> data(count);
    const std::size_t end = first + count;
    const std::size_t first_block = first / dataset_block;
    const std::size_t blocks = (end + dataset_block - 1) / dataset_block - first_block;
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    threads = static_cast<unsigned>(std::min<std::size_t>(threads, blocks));

    // Each thread takes the next unfilled block; block b always gets the same
    // numbers, so neither the thread count nor the slice can change the data.
    std::atomic<std::size_t> next{0};
    auto work = [&] {
        for (std::size_t k; (k = next.fetch_add(1, std::memory_order_relaxed)) < blocks;) {
            const std::size_t b = first_block + k;
            const std::size_t from = std::max(first, b * dataset_block);  // first element of the slice in block b
            const std::size_t to = std::min(end, (b + 1) * dataset_block);
            fill_block(data.data() + (from - first), from - b * dataset_block, to - from, seed, b);
        }
    };
    std::vector<std::thread> pool;
    pool.reserve(threads - 1);
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    return data;
}

}  // namespace corelab
