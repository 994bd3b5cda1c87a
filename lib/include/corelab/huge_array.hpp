// corelab/huge_array.hpp — large arrays in 2 MB pages.
//
// Concept: memory has a price per page. The first touch of a 4 KB page costs a
// page fault (~3.5 µs on a small VM), so 800 MB in 4 KB pages costs ~0.7 s to
// fault in, more than summing it; a fork must copy one page-table entry per
// page. In 2 MB-aligned memory marked madvise(MADV_HUGEPAGE) both shrink ~500x.
// Every large array of the course (datasets, large cache results, read
// buffers) lives in a HugeArray. Used by lessons 02, 03, 04, 05 and 07.
#pragma once

#include <cstddef>      // std::size_t
#include <span>         // std::span
#include <string>       // std::string
#include <type_traits>  // std::is_trivially_copyable_v

namespace corelab {

/// What the kernel offers for transparent huge pages.
enum class HugePages {
    always,   ///< every large anonymous mapping gets them
    madvise,  ///< mappings marked madvise(MADV_HUGEPAGE) get them
    never,    ///< disabled: 4 KB pages only
    unknown,  ///< /sys/kernel/mm/transparent_hugepage is not readable
};

/// Reads /sys/kernel/mm/transparent_hugepage/enabled (the bracketed mode).
HugePages transparent_huge_pages();

/// One sentence for a lesson: whether HugeArray gets 2 MB pages here and why.
std::string describe_huge_pages();

namespace detail {
/// Maps `bytes` (rounded up to 2 MB) of anonymous memory aligned to 2 MB and
/// marks it MADV_HUGEPAGE. Throws corelab::Error when the mapping fails.
void* map_huge(std::size_t bytes);
/// Throws corelab::Error: n elements of `size` bytes cannot be addressed.
[[noreturn]] void throw_too_large(std::size_t n, std::size_t size);
/// Unmaps what map_huge returned for the same `bytes`.
void unmap_huge(void* p, std::size_t bytes) noexcept;
}  // namespace detail

/// A fixed-size array of trivially copyable T in 2 MB-aligned memory marked
/// for transparent huge pages. Move-only; contents start zeroed (untouched:
/// a page is faulted in at its first write).
template <class T>
class HugeArray {
    static_assert(std::is_trivially_copyable_v<T>, "HugeArray holds trivially copyable types only");

public:
    HugeArray() = default;
    /// Reserves room for n elements. Throws corelab::Error when it cannot.
    explicit HugeArray(std::size_t n) : size_(n) {
        if (n > max_elements) detail::throw_too_large(n, sizeof(T));
        if (n != 0) data_ = static_cast<T*>(detail::map_huge(n * sizeof(T)));
    }
    HugeArray(HugeArray&& o) noexcept : data_(o.data_), size_(o.size_) {
        o.data_ = nullptr;
        o.size_ = 0;
    }
    HugeArray& operator=(HugeArray&& o) noexcept {
        if (this != &o) {
            release();
            data_ = o.data_;
            size_ = o.size_;
            o.data_ = nullptr;
            o.size_ = 0;
        }
        return *this;
    }
    HugeArray(const HugeArray&) = delete;
    HugeArray& operator=(const HugeArray&) = delete;
    ~HugeArray() { release(); }

    T* data() noexcept { return data_; }
    const T* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    T& operator[](std::size_t i) noexcept { return data_[i]; }
    const T& operator[](std::size_t i) const noexcept { return data_[i]; }
    T* begin() noexcept { return data_; }
    T* end() noexcept { return data_ + size_; }
    const T* begin() const noexcept { return data_; }
    const T* end() const noexcept { return data_ + size_; }
    std::span<T> span() noexcept { return {data_, size_}; }
    std::span<const T> span() const noexcept { return {data_, size_}; }
    operator std::span<const T>() const noexcept { return span(); }  // NOLINT: a view, as std::vector gives

private:
    void release() noexcept {
        if (data_ != nullptr) detail::unmap_huge(data_, size_ * sizeof(T));
        data_ = nullptr;
        size_ = 0;
    }
    static constexpr std::size_t max_elements = (std::size_t{1} << 62) / sizeof(T);
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace corelab
