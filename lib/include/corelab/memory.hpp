// corelab/memory.hpp — a disk cache of function results: joblib.Memory for C++.
//
// Concept: a result that took long to compute can be kept on disk and
// returned again, even by another process, without computing it. The notebook
// does `Memory(cachedir).cache(np.square)` (In[8]-In[9]); here
//
//     corelab::Memory mem{dir, {.verbose = 1}};
//     auto square = mem.cache("square", square_fn, {.version = "1"});
//     auto a2 = square(a);   // computes and stores; the next call loads
//
// The key is the function's name and version plus an XXH3-128 hash of the
// arguments' serialised bytes. An entry is a directory dir/<name>/<key hex>/
// holding output.bin (header, full key, padding, result) and metadata.json.
// Entries are written to a temporary directory and renamed into place, so a
// crash leaves nothing that loads; every load checks magic, version, lengths, key and
// checksum, and a bad entry is reported, removed and computed again. Unlike
// joblib's pickles, loading only ever reads data: it never runs code.
// The cache directory is marked as a cache (CACHEDIR.TAG, .corelab-cache) and
// so is each function's folder (.corelab-function): clearing removes only
// what carries the marks and is laid out as an entry, and never follows a
// symlink, so a cache pointed at the wrong directory cannot delete its files.
// Large results load fastest as HugeArray (2 MB pages), or are not loaded at
// all: Memory::cache_mapped returns a MappedArray, a read-only mapping of the
// entry's file (joblib's mmap_mode='r'). reduce_size keeps the most recently
// used entries within bytes, items and age limits; a validation callback
// (expires_after) can refuse a stored result on a hit. Used by lesson 05.
#pragma once

#include <cereal/cereal.hpp>         // OutputArchive, InputArchive, SizeTag, BinaryData
#include <cereal/types/array.hpp>    // std::array
#include <cereal/types/string.hpp>   // std::string
#include <cereal/types/tuple.hpp>    // std::tuple
#include <cereal/types/utility.hpp>  // std::pair
#include <cereal/types/vector.hpp>   // std::vector
#include <chrono>                    // std::chrono::system_clock: an entry's age
#include <cstddef>                   // std::size_t
#include <cstdint>                   // std::uint64_t
#include <filesystem>                // std::filesystem::path
#include <functional>                // std::function, std::invoke
#include <iosfwd>                    // std::ostream
#include <memory>                    // std::shared_ptr, std::unique_ptr
#include <optional>                  // std::optional: the limits of reduce_size
#include <span>                      // std::span: a mapped result's view
#include <string>                    // std::string
#include <string_view>               // std::string_view
#include <tuple>                     // std::tuple_size, std::apply
#include <type_traits>               // std::invoke_result_t, std::decay_t
#include <typeinfo>                  // typeid: the name of a type with no readable form
#include <utility>                   // std::move
#include <vector>                    // std::vector

#include "corelab/error.hpp"       // Error
#include "corelab/huge_array.hpp"  // HugeArray: large results in 2 MB pages
#include "corelab/report.hpp"      // Stopwatch

namespace corelab {

/// How a Memory talks.
struct MemoryOptions {
    int verbose = 1;              ///< 0 silent; 1 joblib's lines on a miss; 2 also a line on a hit
    std::ostream* out = nullptr;  ///< where messages go (nullptr: std::cout)
    std::ostream* err = nullptr;  ///< where warnings about bad entries go (nullptr: std::cerr)
};

/// What a cache validation callback is told about a stored result.
struct EntryMetadata {
    std::chrono::system_clock::time_point computed_at{};  ///< when the result was stored
    double duration = 0;                                  ///< seconds the call took
    std::string input_args{};                             ///< the call in readable form, as the miss printed it
    /// How long ago the result was stored (negative when the clock was set back).
    std::chrono::duration<double> age() const { return std::chrono::system_clock::now() - computed_at; }
};

/// Called on a hit with the entry's metadata: false means "do not use it",
/// and the call is computed and stored again (joblib's cache_validation_callback).
using CacheValidationCallback = std::function<bool(const EntryMetadata&)>;

/// A validation callback that accepts results stored less than `age` ago
/// (joblib's expires_after).
inline CacheValidationCallback expires_after(std::chrono::duration<double> age) {
    return [age](const EntryMetadata& m) {
        return std::chrono::duration<double>(std::chrono::system_clock::now() - m.computed_at) < age;
    };
}

/// How one function is cached.
struct CacheOptions {
    /// Part of every key: change it when the function's code changes, and its
    /// old entries are no longer used (C++ cannot read its own source to notice).
    std::string version = "0";
    /// Asked on every hit whether the stored result may be used (empty: always).
    CacheValidationCallback cache_validation_callback{};
};

/// What Memory::reduce_size keeps: the most recently used entries (a hit is
/// a use) within every limit given, joblib's reduce_size(bytes_limit,
/// items_limit, age_limit). An absent limit does not limit.
struct SizeLimits {
    std::optional<std::uint64_t> bytes_limit{};                ///< all kept entries together take at most this
    std::optional<std::size_t> items_limit{};                  ///< at most this many entries are kept
    std::optional<std::chrono::duration<double>> age_limit{};  ///< entries not used for longer are removed
};

namespace detail {

/// Where serialised bytes go: the key hasher or an entry file.
class Sink {
public:
    virtual void write(const void* data, std::size_t size) = 0;

protected:
    ~Sink() = default;
};

/// Where serialised bytes come from: an entry file, never trusted.
class Source {
public:
    /// Copies the next `size` bytes to `data`; throws corelab::Error when the
    /// entry has fewer left.
    virtual void read(void* data, std::size_t size) = 0;
    /// Bytes left in the entry.
    virtual std::uint64_t remaining() const noexcept = 0;

protected:
    ~Source() = default;
};

/// cereal archive writing raw native bytes (lengths as 64-bit sizes) to a Sink.
class OutArchive : public cereal::OutputArchive<OutArchive, cereal::AllowEmptyClassElision> {
public:
    explicit OutArchive(Sink& sink) : OutputArchive(this), sink_(&sink) {}
    void saveBinary(const void* data, std::size_t size) { sink_->write(data, size); }

private:
    Sink* sink_;
};

/// cereal archive reading what OutArchive wrote, bounded by what the entry
/// holds: no length field can make it allocate more than the entry's bytes.
class InArchive : public cereal::InputArchive<InArchive, cereal::AllowEmptyClassElision> {
public:
    explicit InArchive(Source& source) : InputArchive(this), source_(&source) {}
    void loadBinary(void* data, std::size_t size) { source_->read(data, size); }
    /// Throws corelab::Error unless `count` elements of `element_bytes` each
    /// can still follow in the entry.
    void require(std::uint64_t count, std::uint64_t element_bytes) const;

private:
    Source* source_;
};

// The glue cereal needs for an archive (as in cereal/archives/binary.hpp).
template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_SAVE_FUNCTION_NAME(OutArchive& ar, const T& t) {
    ar.saveBinary(&t, sizeof t);
}
template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_LOAD_FUNCTION_NAME(InArchive& ar, T& t) {
    ar.loadBinary(&t, sizeof t);
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(OutArchive& ar, const cereal::NameValuePair<T>& t) {
    ar(t.value);
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(InArchive& ar, cereal::NameValuePair<T>& t) {
    ar(t.value);
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(OutArchive& ar, const cereal::SizeTag<T>& t) {
    const auto n = static_cast<std::uint64_t>(t.size);
    ar.saveBinary(&n, sizeof n);
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(InArchive& ar, cereal::SizeTag<T>& t) {
    std::uint64_t n = 0;
    ar.loadBinary(&n, sizeof n);
    ar.require(n, 1);  // every element takes at least one byte
    t.size = static_cast<std::remove_reference_t<T>>(n);
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(OutArchive& ar, const cereal::BinaryData<T>& bd) {
    ar.saveBinary(bd.data, static_cast<std::size_t>(bd.size));
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(InArchive& ar, cereal::BinaryData<T>& bd) {
    ar.loadBinary(bd.data, static_cast<std::size_t>(bd.size));
}
// Arrays of numbers and strings: check the whole length before allocating.
template <class T, class A>
    requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>)
void CEREAL_LOAD_FUNCTION_NAME(InArchive& ar, std::vector<T, A>& v) {
    cereal::size_type n = 0;
    ar(cereal::make_size_tag(n));
    ar.require(n, sizeof(T));
    v.resize(static_cast<std::size_t>(n));
    ar(cereal::binary_data(v.data(), static_cast<std::size_t>(n) * sizeof(T)));
}
template <class C, class Tr, class A>
void CEREAL_LOAD_FUNCTION_NAME(InArchive& ar, std::basic_string<C, Tr, A>& s) {
    cereal::size_type n = 0;
    ar(cereal::make_size_tag(n));
    ar.require(n, sizeof(C));
    s.resize(static_cast<std::size_t>(n));
    ar(cereal::binary_data(s.data(), static_cast<std::size_t>(n) * sizeof(C)));
}

/// A call's key: what names its entry and what the entry must repeat.
struct CallKey {
    std::string name;           ///< the function's name (its directory)
    std::string version;        ///< CacheOptions::version
    std::string hex;            ///< XXH3-128 of name, version and arguments: the entry's directory
    std::string stored;         ///< the full key as the entry stores it and must repeat
    std::uint64_t arg_bytes{};  ///< length of the serialised arguments
};

/// Serialises a call's arguments into XXH3-128 (and, for small arguments, a
/// verbatim copy; for large ones a second, independent 128-bit hash).
class KeyBuilder final : public Sink {
public:
    KeyBuilder(std::string_view name, std::string_view version);
    ~KeyBuilder();
    KeyBuilder(const KeyBuilder&) = delete;
    KeyBuilder& operator=(const KeyBuilder&) = delete;
    void write(const void* data, std::size_t size) override;
    CallKey finish();

private:
    struct State;
    std::unique_ptr<State> state_;
};

/// The cache directory and everything that touches its files (lib/src/memory/store.hpp).
class Store;

/// A read-only mapping holding an array: of an entry's output.bin, or of an
/// anonymous copy when no entry could be stored. Move-only; unmaps when destroyed.
class Mapping {
public:
    Mapping() = default;
    Mapping(void* base, std::size_t bytes, std::size_t offset, std::uint64_t count, bool file) noexcept
        : base_(base), bytes_(bytes), offset_(offset), count_(count), file_(file) {}
    Mapping(Mapping&& o) noexcept { swap(o); }
    Mapping& operator=(Mapping&& o) noexcept {
        if (this != &o) {
            reset();
            swap(o);
        }
        return *this;
    }
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping() { reset(); }
    const void* data() const noexcept { return static_cast<const char*>(base_) + offset_; }
    std::uint64_t count() const noexcept { return count_; }
    bool file_backed() const noexcept { return file_; }
    void reset() noexcept;

private:
    void swap(Mapping& o) noexcept;
    void* base_ = nullptr;
    std::size_t bytes_ = 0, offset_ = 0;
    std::uint64_t count_ = 0;
    bool file_ = false;
};

/// Loads the entry of `key`, calling `load` to deserialise its result, and
/// asks `validate` (when set) whether it may be used. Returns false on a
/// miss; a bad entry is reported, removed and missed; an entry `validate`
/// refuses is removed and missed.
bool load_entry(const Store& store, const CallKey& key, const std::function<void(InArchive&)>& load,
                const CacheValidationCallback& validate = {});
/// Maps the entry of `key`, an array of `element_size`-byte elements aligned
/// to `element_align`, into `out`, as load_entry does (`after_store`: the
/// entry was just stored; no hit is announced or validated).
bool map_entry(const Store& store, const CallKey& key, std::size_t element_size, std::size_t element_align,
               const CacheValidationCallback& validate, bool after_store, Mapping& out);
/// A read-only anonymous mapping holding a copy of `count` elements of
/// `element_size` bytes at `data`. Throws corelab::Error when it cannot map.
Mapping anonymous_copy(const void* data, std::uint64_t count, std::size_t element_size);
/// The entry reader alone (the fuzzer's target): reads `fd` as the entry file
/// of `key` and deserialises its result with `load`. Returns why the entry
/// cannot be used, or an empty string when it loads. Never trusts the file.
std::string read_entry(int fd, const CallKey& key, const std::function<void(InArchive&)>& load);
/// Prints joblib's "Calling" lines for a miss (at verbose >= 1).
void announce_call(const Store& store, const std::string& name, const std::string& call);
/// Writes the entry of `key` atomically and prints joblib's closing line.
/// A failure to write is a warning: the result is still returned.
/// `aligned`: pad so that an array result starts on a page boundary (mapped functions).
void store_entry(const Store& store, const CallKey& key, const std::string& call, double seconds,
                 const std::function<void(OutArchive&)>& save, bool aligned = false);
/// Removes every entry of one function (see Memory::clear).
void clear_function(const Store& store, const std::string& name);

// ------------------------------------------------ calls in readable form
/// Appends a Python-like readable form of `v` ("[0.0, 1.0, ..., 9.0]", "'text'",
/// "(1, 2)"); long sequences show their first and last three elements.
template <class T>
void append_repr(std::string& out, const T& v);

void append_double(std::string& out, double v);
std::string type_name(const char* mangled);

template <class T>
concept Sequence = requires(const T& t) {
    std::begin(t);
    std::end(t);
    t.size();
};
template <class T>
concept TupleLike = requires { std::tuple_size<T>::value; };

template <class T>
void append_repr(std::string& out, const T& v) {
    if constexpr (std::is_same_v<T, bool>) {
        out += v ? "true" : "false";
    } else if constexpr (std::is_floating_point_v<T>) {
        append_double(out, static_cast<double>(v));
    } else if constexpr (std::is_integral_v<T>) {
        out += std::to_string(v);
    } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
        const std::string_view s = v;
        out += '\'';
        out += s.size() <= 60 ? s : std::string(s.substr(0, 57)) + "...";
        out += '\'';
    } else if constexpr (Sequence<T>) {
        const std::size_t n = v.size();
        out += '[';
        std::size_t i = 0;
        for (const auto& x : v) {
            if (n > 6 && i == 3) out += "..., ";
            if (n <= 6 || i < 3 || i >= n - 3) {
                append_repr(out, x);
                if (i + 1 < n) out += ", ";
            }
            ++i;
            if (out.size() > 4096) break;
        }
        out += ']';
    } else if constexpr (TupleLike<T>) {
        out += '(';
        std::apply(
            [&](const auto&... xs) {
                std::size_t k = 0;
                ((out += (k++ ? ", " : ""), append_repr(out, xs)), ...);
            },
            v);
        out += ')';
    } else {
        out += '<' + type_name(typeid(T).name()) + '>';
    }
}

/// "name(arg1, arg2)", shortened to about 700 characters like joblib's.
template <class... Args>
std::string describe_call(const std::string& name, const Args&... args) {
    std::string out = name + '(';
    std::size_t k = 0;
    ((out += (k++ ? ", " : ""), append_repr(out, args)), ...);
    out += ')';
    if (out.size() > 700) out = out.substr(0, 700) + "...";
    return out;
}

}  // namespace detail

/// A read-only view of a cached array result, backed by the mapping of its
/// entry's file (joblib's mmap_mode='r'): a hit costs a few system calls
/// whatever the size, and each page is read from the page cache when it is
/// first touched. The view holds its own mapping: it stays valid and
/// unchanged after clear() or reduce_size() removed its entry. Move-only.
template <class T>
class MappedArray {
public:
    MappedArray() = default;
    explicit MappedArray(detail::Mapping m) noexcept
        : map_(std::move(m)),
          data_(static_cast<const T*>(map_.data())),
          size_(static_cast<std::size_t>(map_.count())) {}
    MappedArray(MappedArray&& o) noexcept : map_(std::move(o.map_)), data_(o.data_), size_(o.size_) {
        o.data_ = nullptr;
        o.size_ = 0;
    }
    MappedArray& operator=(MappedArray&& o) noexcept {
        if (this != &o) {
            map_ = std::move(o.map_);
            data_ = o.data_;
            size_ = o.size_;
            o.data_ = nullptr;
            o.size_ = 0;
        }
        return *this;
    }

    const T* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    const T& operator[](std::size_t i) const noexcept { return data_[i]; }
    const T* begin() const noexcept { return data_; }
    const T* end() const noexcept { return data_ + size_; }
    std::span<const T> span() const noexcept { return {data_, size_}; }
    operator std::span<const T>() const noexcept { return span(); }  // NOLINT: a view, as std::vector gives
    /// True when the view maps the entry's file; false for the copy made when
    /// the result could not be stored.
    bool file_backed() const noexcept { return map_.file_backed(); }

private:
    detail::Mapping map_;
    const T* data_ = nullptr;
    std::size_t size_ = 0;
};

namespace detail {
/// The element type of a result a mapped function may return: a std::vector
/// of numbers or a HugeArray (both stored as a length and their raw bytes).
template <class R>
struct MappedElement {
    static constexpr bool ok = false;
};
template <class T, class A>
struct MappedElement<std::vector<T, A>> {
    static constexpr bool ok = std::is_arithmetic_v<T> && !std::is_same_v<T, bool>;
    using type = T;
};
template <class T>
struct MappedElement<HugeArray<T>> {
    static constexpr bool ok = true;
    using type = T;
};
}  // namespace detail

/// A function whose results are kept in a Memory. Copyable; calls from several
/// threads or processes at once are safe. `Mapped`: made by Memory::cache_mapped.
template <class F, bool Mapped = false>
class CachedFunction {
public:
    CachedFunction(std::shared_ptr<const detail::Store> store, std::string name, F fn, CacheOptions options)
        : store_(std::move(store)), name_(std::move(name)), fn_(std::move(fn)), options_(std::move(options)) {}

    /// Returns fn(args...): from the cache when this call was made before with
    /// equal arguments and the same version (and the validation callback, if
    /// any, accepts the entry), else by calling fn and storing the result.
    /// Arguments and the result must be serialisable with cereal (numbers,
    /// std::string, std::vector, std::array, std::pair, std::tuple, HugeArray,
    /// nestings of these, types with a `serialize` function); the result must
    /// be default-constructible. Throws what fn throws.
    /// A mapped function returns a MappedArray<T> on a hit and on a miss (the
    /// miss stores the result, then maps what it stored).
    template <class... Args>
    auto operator()(const Args&... args) const {
        using R = std::decay_t<std::invoke_result_t<const F&, const Args&...>>;
        static_assert(!std::is_void_v<R>, "a cached function must return a value");
        static_assert(std::is_default_constructible_v<R>, "a cached function's result must be default-constructible");
        if constexpr (Mapped) {
            return call_mapped<R>(args...);
        } else {
            // [docs:call]
            const detail::CallKey key = make_key(args...);
            R loaded{};
            const auto load = [&](detail::InArchive& ar) { ar(loaded); };
            if (detail::load_entry(*store_, key, load, options_.cache_validation_callback)) return loaded;
            const std::string call = detail::describe_call(name_, args...);
            detail::announce_call(*store_, name_, call);
            Stopwatch watch;
            R result = std::invoke(fn_, args...);
            const double seconds = watch.seconds();
            detail::store_entry(*store_, key, call, seconds, [&](detail::OutArchive& ar) { ar(result); });
            return result;
            // [docs:end]
        }
    }

    /// True when a call with these arguments would load a whole, valid entry
    /// (the validation callback is not asked).
    template <class... Args>
    bool check_call_in_cache(const Args&... args) const {
        using R = std::decay_t<std::invoke_result_t<const F&, const Args&...>>;
        if constexpr (Mapped) {
            using T = typename detail::MappedElement<R>::type;
            detail::Mapping m;
            return detail::map_entry(*store_, make_key(args...), sizeof(T), alignof(T), {}, true, m);
        } else {
            R loaded{};
            return detail::load_entry(*store_, make_key(args...), [&](detail::InArchive& ar) { ar(loaded); });
        }
    }

    /// Removes every stored result of this function (only entries, as Memory::clear).
    void clear() const { detail::clear_function(*store_, name_); }

    const std::string& name() const noexcept { return name_; }
    const std::string& version() const noexcept { return options_.version; }

private:
    template <class R, class... Args>
    auto call_mapped(const Args&... args) const {
        static_assert(detail::MappedElement<R>::ok,
                      "a mapped function returns a std::vector of numbers or a HugeArray");
        using T = typename detail::MappedElement<R>::type;
        // [docs:mapped]
        const detail::CallKey key = make_key(args...);
        detail::Mapping m;
        if (detail::map_entry(*store_, key, sizeof(T), alignof(T), options_.cache_validation_callback, false, m)) {
            return MappedArray<T>(std::move(m));  // a hit: no byte of the array was copied
        }
        const std::string call = detail::describe_call(name_, args...);
        detail::announce_call(*store_, name_, call);
        Stopwatch watch;
        const R result = std::invoke(fn_, args...);
        const double seconds = watch.seconds();
        detail::store_entry(*store_, key, call, seconds, [&](detail::OutArchive& ar) { ar(result); }, true);
        if (detail::map_entry(*store_, key, sizeof(T), alignof(T), {}, true, m)) return MappedArray<T>(std::move(m));
        // Not stored (a full disk, say: already warned): the caller still gets its result.
        return MappedArray<T>(detail::anonymous_copy(result.data(), result.size(), sizeof(T)));
        // [docs:end]
    }

    template <class... Args>
    detail::CallKey make_key(const Args&... args) const {
        detail::KeyBuilder builder(name_, options_.version);
        {
            detail::OutArchive ar(builder);
            if constexpr (sizeof...(Args) > 0) ar(args...);
        }
        return builder.finish();
    }

    std::shared_ptr<const detail::Store> store_;
    std::string name_;
    F fn_;
    CacheOptions options_;
};

/// A cache directory, as joblib's Memory(location).
class Memory {
public:
    /// Opens the cache directory `dir`: a new one is created (mode 0700) and
    /// marked as a cache (CACHEDIR.TAG with the standard signature, and
    /// .corelab-cache with the layout's version); an existing one must carry
    /// the mark, be empty (it is marked), or hold only a cache an earlier
    /// corelab wrote (function folders of entries; it is marked). `dir`
    /// itself must not be a symlink: it is opened once with O_NOFOLLOW and
    /// everything below is reached from that descriptor. Throws corelab::Error
    /// naming `dir` when it is a symlink, not a directory, not empty and not a
    /// cache, cannot be created or written, or other users can write to it
    /// (they could plant results).
    explicit Memory(const std::filesystem::path& dir, MemoryOptions options = {});

    /// Wraps `fn` so that its results are cached under dir/<name>/ (marked
    /// .corelab-function when created). `name` is letters, digits, '_', '-'
    /// and '.' (not first), at most 100 characters; anything else throws
    /// corelab::Error, as does a dir/<name> that is a symlink or a folder
    /// holding files this cache did not write. Sweeps temporary folders that
    /// killed writers left behind (older than a minute, or whose writer is dead).
    template <class F>
    CachedFunction<F> cache(const std::string& name, F fn, CacheOptions options = {}) const {
        prepare_function(name);
        return CachedFunction<F>(store_, name, std::move(fn), std::move(options));
    }

    /// As cache(), for a function returning a large array (a std::vector of
    /// numbers or a HugeArray): its calls return a read-only MappedArray
    /// backed by the entry's file instead of a copy (joblib's
    /// mmap_mode='r'). Its entries pad the array to a page boundary.
    template <class F>
    CachedFunction<F, true> cache_mapped(const std::string& name, F fn, CacheOptions options = {}) const {
        prepare_function(name);
        return CachedFunction<F, true>(store_, name, std::move(fn), std::move(options));
    }

    /// Removes every entry of every function, then each function folder left
    /// empty. Only marked function folders are entered, and only entries laid
    /// out as this cache writes them (output.bin and metadata.json, nothing
    /// else) are removed, without following any symlink; anything else named
    /// like an entry is left and reported as a warning.
    void clear() const;

    /// Removes least recently used entries (a hit counts as a use) until all
    /// entries together take at most `bytes_limit` bytes. Counts and removes
    /// only entries as clear() recognises them. Returns how many it removed.
    std::size_t reduce_size(std::uint64_t bytes_limit) const;

    /// Removes entries until what is left keeps every limit in `limits`: the
    /// most recently used are kept, in that order, while they fit all of
    /// them (at most items_limit entries, bytes_limit bytes together, none
    /// unused for longer than age_limit); the first that does not fit goes,
    /// and every less recently used one with it. Returns how many it removed.
    std::size_t reduce_size(const SizeLimits& limits) const;

    /// Bytes all entries take on disk (their files' sizes).
    std::uint64_t size_on_disk() const;

    const std::filesystem::path& dir() const noexcept;

private:
    void prepare_function(const std::string& name) const;
    std::shared_ptr<const detail::Store> store_;
};

/// HugeArray in a cache entry: its length, then its bytes. Loading checks the
/// length against the entry before allocating, and reads straight into 2 MB pages.
template <class Archive, class T>
void save(Archive& ar, const HugeArray<T>& a) {
    ar(cereal::make_size_tag(static_cast<cereal::size_type>(a.size())));
    ar(cereal::binary_data(a.data(), a.size() * sizeof(T)));
}
template <class Archive, class T>
void load(Archive& ar, HugeArray<T>& a) {
    cereal::size_type n = 0;
    ar(cereal::make_size_tag(n));
    if constexpr (std::is_same_v<Archive, detail::InArchive>) ar.require(n, sizeof(T));
    a = HugeArray<T>(static_cast<std::size_t>(n));
    ar(cereal::binary_data(a.data(), static_cast<std::size_t>(n) * sizeof(T)));
}

}  // namespace corelab

CEREAL_SETUP_ARCHIVE_TRAITS(corelab::detail::InArchive, corelab::detail::OutArchive)
