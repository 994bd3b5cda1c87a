// corelab/detail/fd.hpp — a file descriptor closed by its destructor, and
// the read and write loops every caller of read(2) and write(2) needs: the
// kernel may move fewer bytes than asked (a short read or write) or be
// interrupted by a signal (EINTR), and neither is an error. Shared by the
// library's file code (Memory's entries, lesson 07's data files); not part of
// the public API.
#pragma once

#include <cerrno>       // errno
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint64_t
#include <string>       // std::string
#include <string_view>  // std::string_view

namespace corelab::detail {

/// strerror(e) as a string: the errno part of a library message.
std::string errno_text(int e = errno);

/// Owns one file descriptor (or none: -1) and closes it when destroyed.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = other.fd_;
            other.fd_ = -1;
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const noexcept { return fd_; }
    bool ok() const noexcept { return fd_ >= 0; }
    /// Closes it now, ignoring what close reports.
    void reset() noexcept;
    /// Closes it now and reports the error a close may carry (a late write
    /// error): throws corelab::Error "cannot close <what>: <errno text>".
    void close(std::string_view what);

private:
    int fd_ = -1;
};

/// Reads into `data` until `size` bytes have arrived or the file ends, from
/// the file position, resuming after signals and short reads. Returns how many
/// arrived: fewer than `size` only at the end of the file. Throws
/// corelab::Error "cannot read[ <what>]: <errno text>" when a read fails.
std::size_t read_full(int fd, void* data, std::size_t size, std::string_view what = {});
/// As read_full, with pread from `offset` (the file position is not moved).
std::size_t pread_full(int fd, void* data, std::size_t size, std::uint64_t offset, std::string_view what = {});

/// Writes all `size` bytes of `data` at the file position, resuming after
/// signals and short writes. Throws corelab::Error "cannot write[ <what>]:
/// <errno text>" when a write fails.
void write_full(int fd, const void* data, std::size_t size, std::string_view what = {});
/// Writes all `size` bytes of `data` at `offset` (pwrite), resuming after
/// signals and short writes. Returns 0, or the errno of the write that failed
/// (for callers that word that failure themselves). Never throws.
int pwrite_full(int fd, const void* data, std::size_t size, std::uint64_t offset) noexcept;

}  // namespace corelab::detail
