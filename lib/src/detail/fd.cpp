// Implementation of corelab/detail/fd.hpp: close, and the loops around read,
// pread, write and pwrite.
#include "corelab/detail/fd.hpp"

#include <sys/types.h>  // ssize_t, off_t
#include <unistd.h>     // read, pread, write, pwrite, close

#include <algorithm>  // std::min
#include <cstring>    // std::strerror
#include <optional>   // std::optional: at the file position, or at an offset

#include "corelab/error.hpp"  // Error

namespace corelab::detail {
namespace {

// One call moves at most 1 GiB: Linux moves at most 2 GiB - 4 KiB anyway.
constexpr std::size_t most_per_call = std::size_t{1} << 30;

std::string failed(const char* verb, std::string_view what, int e) {
    std::string text = std::string("cannot ") + verb;
    if (!what.empty()) text.append(" ").append(what);
    return text + ": " + errno_text(e);
}

// The read loop of read_full and pread_full: the bytes read (fewer only at the end of the file).
std::size_t read_loop(int fd, void* data, std::size_t size, std::optional<std::uint64_t> offset,
                      std::string_view what) {
    auto* p = static_cast<char*>(data);
    std::size_t done = 0;
    while (done < size) {
        const std::size_t want = std::min(size - done, most_per_call);
        const ssize_t got =
            offset ? ::pread(fd, p + done, want, static_cast<off_t>(*offset + done)) : ::read(fd, p + done, want);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) throw Error(failed("read", what, errno));
        if (got == 0) break;  // the end of the file
        done += static_cast<std::size_t>(got);
    }
    return done;
}

// The write loop of write_full and pwrite_full: returns 0 or the errno of the failed write.
int write_loop(int fd, const void* data, std::size_t size, std::optional<std::uint64_t> offset) noexcept {
    const auto* p = static_cast<const char*>(data);
    for (std::size_t done = 0; done < size;) {
        const std::size_t want = std::min(size - done, most_per_call);
        const ssize_t put =
            offset ? ::pwrite(fd, p + done, want, static_cast<off_t>(*offset + done)) : ::write(fd, p + done, want);
        if (put < 0 && errno == EINTR) continue;
        if (put < 0) return errno;
        done += static_cast<std::size_t>(put);
    }
    return 0;
}

}  // namespace

std::string errno_text(int e) {
    return std::strerror(e);
}

void Fd::reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

void Fd::close(std::string_view what) {
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) throw Error(failed("close", what, errno));
}

std::size_t read_full(int fd, void* data, std::size_t size, std::string_view what) {
    return read_loop(fd, data, size, std::nullopt, what);
}

std::size_t pread_full(int fd, void* data, std::size_t size, std::uint64_t offset, std::string_view what) {
    return read_loop(fd, data, size, offset, what);
}

void write_full(int fd, const void* data, std::size_t size, std::string_view what) {
    if (const int e = write_loop(fd, data, size, std::nullopt)) throw Error(failed("write", what, e));
}

int pwrite_full(int fd, const void* data, std::size_t size, std::uint64_t offset) noexcept {
    return write_loop(fd, data, size, offset);
}

}  // namespace corelab::detail
