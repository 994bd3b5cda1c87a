// corelab/ipc/shared_array.hpp — an array in a named shared-memory segment.
//
// Concept: processes do not share memory unless they ask for it. A named
// POSIX shared-memory object (Boost.Interprocess `shared_memory_object` +
// `mapped_region`) is a file in /dev/shm that several processes map: what one
// writes, the others read, without copying. A child forked from the creator
// inherits the mapping; a program started any other way opens the segment by
// its name, as a worker started with exec must. The creator removes the
// segment (its destructor, or the signal handler of ipc/names.hpp) and holds
// its liveness lock meanwhile (ipc/names.hpp: a later run sweeps it only once
// nobody holds that lock).
// Used by lesson 03 (row share_named_shm).
#pragma once

#include <sys/types.h>  // pid_t

#include <cstddef>      // std::size_t
#include <memory>       // std::unique_ptr
#include <span>         // std::span
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <type_traits>  // std::is_trivially_copyable_v

#include "corelab/ipc/names.hpp"  // make_name, ObjectLock

namespace corelab::ipc {

/// How a process maps a segment it opens.
enum class Access { read_only, read_write };

namespace detail {

/// A mapped segment of raw bytes with a small header (magic, element size,
/// element count) so that an opener can check it holds what it expects.
class Segment {
public:
    /// Creates `name` (create_only, 0600) for `count` elements of `element_size`
    /// bytes, takes its liveness lock (lock_as_owner), reserves its memory
    /// (posix_fallocate) and maps it read-write. Throws corelab::Error when the
    /// name exists, /dev/shm lacks room, or it fails.
    static Segment create(std::string name, std::size_t element_size, std::size_t count);
    /// Opens an existing segment of ours. Throws corelab::Error when it does
    /// not exist, is not owned by this user with mode 0600, or holds other elements.
    static Segment open(std::string name, std::size_t element_size, Access access);

    Segment(Segment&&) noexcept;
    Segment& operator=(Segment&&) noexcept;
    ~Segment();

    void* data() const noexcept { return data_; }
    std::size_t count() const noexcept { return count_; }
    const std::string& name() const noexcept { return name_; }
    bool creator() const noexcept { return creator_ != 0; }
    bool writable() const noexcept { return writable_; }

private:
    struct Mapping;
    Segment() = default;
    void release() noexcept;
    std::unique_ptr<Mapping> mapping_;
    std::string name_;
    ObjectLock lock_;  // the creator's liveness lock; empty for an opener
    void* data_ = nullptr;
    std::size_t count_ = 0;
    pid_t creator_ = 0;  // pid that removes it; 0 for an opener
    bool writable_ = false;
};

}  // namespace detail

/// An array of `n` trivially copyable T in a named shared-memory segment.
/// Move-only. The creating object removes the segment when destroyed (only in
/// the process that created it: a forked child's copy never removes it).
template <class T>
class SharedArray {
    static_assert(std::is_trivially_copyable_v<T>, "SharedArray holds trivially copyable types only");

public:
    /// Creates a segment for n elements (zeroed) named make_name(purpose).
    /// Throws corelab::Error when /dev/shm lacks room (before anything is written).
    static SharedArray create(std::size_t n, std::string_view purpose = "array");
    /// Creates a segment under exactly `name`; throws corelab::Error if it exists.
    static SharedArray create_named(std::string name, std::size_t n) {
        return SharedArray(detail::Segment::create(std::move(name), sizeof(T), n));
    }
    /// Opens a segment another process created. Throws corelab::Error when it
    /// is missing, not ours (owner, mode 0600) or holds elements of another size.
    static SharedArray open(std::string name, Access access = Access::read_only) {
        return SharedArray(detail::Segment::open(std::move(name), sizeof(T), access));
    }

    /// The name another process opens it by.
    const std::string& name() const noexcept { return segment_.name(); }
    std::size_t size() const noexcept { return segment_.count(); }
    bool empty() const noexcept { return size() == 0; }
    /// False when opened read-only: writing through data() then is a SIGSEGV.
    bool writable() const noexcept { return segment_.writable(); }
    T* data() noexcept { return static_cast<T*>(segment_.data()); }
    const T* data() const noexcept { return static_cast<const T*>(segment_.data()); }
    T& operator[](std::size_t i) noexcept { return data()[i]; }
    const T& operator[](std::size_t i) const noexcept { return data()[i]; }
    std::span<T> span() noexcept { return {data(), size()}; }
    std::span<const T> span() const noexcept { return {data(), size()}; }
    operator std::span<const T>() const noexcept { return span(); }  // NOLINT: a view, like HugeArray

private:
    explicit SharedArray(detail::Segment segment) : segment_(std::move(segment)) {}
    detail::Segment segment_;
};

template <class T>
SharedArray<T> SharedArray<T>::create(std::size_t n, std::string_view purpose) {
    return SharedArray(detail::Segment::create(make_name(purpose), sizeof(T), n));
}

}  // namespace corelab::ipc
