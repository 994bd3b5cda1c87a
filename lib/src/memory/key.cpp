// Keys of corelab::Memory (memory.hpp's KeyBuilder): the function's name and
// version and the call's serialised arguments, hashed with XXH3-128 into the
// entry's directory name, and stored whole (small arguments) or as a second,
// independent 128-bit hash (large ones) for the entry to repeat.
#define XXH_INLINE_ALL  // header-only xxHash: no library to link, and inlined
#include <xxhash.h>     // XXH3-128 keys

#include <algorithm>     // std::min
#include <cstring>       // std::memcpy, std::strlen
#include <system_error>  // std::system_error: no thread available
#include <thread>        // std::thread: the second hash of a large argument

#include "corelab/detail/memory_testing.hpp"  // memory_test_hooks: forced collisions
#include "corelab/memory.hpp"

namespace corelab::detail {
namespace {

constexpr std::size_t verbatim_limit = 64 * 1024;             // arguments up to this are stored whole in the key
constexpr std::uint64_t second_seed = 0x636f72656c616221ULL;  // "corelab!": an independent hash
constexpr const char* key_domain = "corelab.memory.key.v1\n";

void put_u64(std::string& out, std::uint64_t v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

std::string hex128(const XXH128_hash_t& h) {
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(32, '0');
    for (int i = 0; i < 16; ++i) {
        out[2 * i] = digits[c.digest[i] >> 4];
        out[2 * i + 1] = digits[c.digest[i] & 15];
    }
    return out;
}

}  // namespace

struct KeyBuilder::State {
    XXH3_state_t primary;
    XXH3_state_t second;
    std::string stored;    // domain, name, version: the start of the stored key
    std::string verbatim;  // the arguments, while they are small
    std::uint64_t total = 0;
};

KeyBuilder::KeyBuilder(std::string_view name, std::string_view version) : state_(std::make_unique<State>()) {
    State& s = *state_;
    XXH3_128bits_reset(&s.primary);
    XXH3_128bits_reset_withSeed(&s.second, second_seed);
    s.stored = key_domain;
    put_u64(s.stored, name.size());
    s.stored += name;
    put_u64(s.stored, version.size());
    s.stored += version;
    XXH3_128bits_update(&s.primary, s.stored.data(), s.stored.size());
    XXH3_128bits_update(&s.second, s.stored.data(), s.stored.size());
}

KeyBuilder::~KeyBuilder() = default;

void KeyBuilder::write(const void* data, std::size_t size) {
    State& s = *state_;
    const auto* p = static_cast<const char*>(data);
    // A large argument: the second hash runs on another core at the same time.
    if (size >= (std::size_t{8} << 20)) {
        try {
            std::thread second([&] { XXH3_128bits_update(&s.second, p, size); });
            XXH3_128bits_update(&s.primary, p, size);
            second.join();
            if (s.total + size <= verbatim_limit) s.verbatim.append(p, size);
            s.total += size;
            return;
        } catch (const std::system_error&) {
            // no thread to be had: hash both here
        }
    }
    // Both hashes take each slice while it is still in cache: one pass over memory.
    for (std::size_t done = 0; done < size;) {
        const std::size_t n = std::min<std::size_t>(size - done, 128 * 1024);
        XXH3_128bits_update(&s.primary, p + done, n);
        XXH3_128bits_update(&s.second, p + done, n);
        done += n;
    }
    if (s.total + size <= verbatim_limit) s.verbatim.append(p, size);
    s.total += size;
}

CallKey KeyBuilder::finish() {
    State& s = *state_;
    CallKey key;
    const auto read_string = [&](std::size_t& at) {
        std::uint64_t n;
        std::memcpy(&n, s.stored.data() + at, sizeof n);
        at += sizeof n;
        std::string out = s.stored.substr(at, n);
        at += n;
        return out;
    };
    std::size_t at = std::strlen(key_domain);
    key.name = read_string(at);
    key.version = read_string(at);
    // [docs:key]
    key.hex = memory_test_hooks().constant_hash ? std::string(32, '0') : hex128(XXH3_128bits_digest(&s.primary));
    key.arg_bytes = s.total;
    key.stored = s.stored;
    put_u64(key.stored, s.total);
    if (s.total <= verbatim_limit) {
        key.stored += '\0';  // the arguments follow, whole: equal keys mean equal arguments
        key.stored += s.verbatim;
    } else {
        key.stored += '\1';  // too large to repeat: a second, independent 128-bit hash
        const XXH128_hash_t h = XXH3_128bits_digest(&s.second);
        put_u64(key.stored, h.low64);
        put_u64(key.stored, h.high64);
    }
    // [docs:end]
    return key;
}

}  // namespace corelab::detail
