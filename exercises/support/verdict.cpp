// exercises/support/verdict.cpp — the verdict channel (verdict.hpp).
#include "verdict.hpp"

#include <fcntl.h>   // open, fcntl, FD_CLOEXEC
#include <unistd.h>  // pread, pwrite, ftruncate, close, unlink

#include <cstdio>      // std::fprintf
#include <cstdlib>     // std::getenv, std::strtol, mkstemp
#include <filesystem>  // std::filesystem::temp_directory_path
#include <fstream>     // std::ifstream

namespace {

// The first line of the file at `fd`, read from its start.
std::string first_line(int fd) {
    char buffer[512];
    const ssize_t n = ::pread(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return "";
    std::string text(buffer, static_cast<std::size_t>(n));
    return text.substr(0, text.find('\n'));
}

}  // namespace

namespace check {

std::string new_token() {
    std::ifstream random("/dev/urandom", std::ios::binary);
    std::string token;
    for (int i = 0; i < 16; ++i) {
        const auto byte = static_cast<unsigned char>(random.get());
        token += "0123456789abcdef"[byte >> 4];
        token += "0123456789abcdef"[byte & 15];
    }
    return token;
}

VerdictChannel VerdictChannel::from_environment() {
    VerdictChannel channel;
    const char* text = std::getenv("CORELAB_CHECK_FD");
    if (text == nullptr) return channel;
    char* end = nullptr;
    const long fd = std::strtol(text, &end, 10);
    ::unsetenv("CORELAB_CHECK_FD");
    if (*end != '\0' || fd < 0 || ::fcntl(static_cast<int>(fd), F_GETFD) < 0) {
        std::fprintf(stderr, "checker: CORELAB_CHECK_FD names no open descriptor; the verdict cannot be reported\n");
        return channel;
    }
    channel.fd_ = static_cast<int>(fd);
    ::fcntl(channel.fd_, F_SETFD, FD_CLOEXEC);
    channel.token_ = first_line(channel.fd_);
    return channel;
}

VerdictChannel VerdictChannel::from_file_in_environment() {
    VerdictChannel channel;
    const char* path = std::getenv("CORELAB_CHECK_FILE");
    if (path == nullptr) return channel;
    channel.fd_ = ::open(path, O_RDWR | O_CLOEXEC);
    ::unsetenv("CORELAB_CHECK_FILE");
    if (channel.fd_ >= 0) channel.token_ = first_line(channel.fd_);
    return channel;
}

void VerdictChannel::pass() const {
    write_line("PASS " + token_ + "\n");
}

void VerdictChannel::fail(std::string_view message) const {
    std::string line = "FAIL " + token_ + " ";
    for (char c : message) line += c == '\n' || c == '\r' ? ' ' : c;  // one line
    write_line(line + "\n");
}

void VerdictChannel::write_line(const std::string& line) const {
    if (fd_ < 0 || token_.empty()) return;
    // Replace the token with the verdict: a reader sees one or the other.
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size())) {
        std::fprintf(stderr, "checker: cannot write the verdict\n");
    }
}

VerdictFile::VerdictFile() : token_(new_token()) {
    std::string name = (std::filesystem::temp_directory_path() / "corelab_verdict_XXXXXX").string();
    const int fd = ::mkstemp(name.data());
    if (fd < 0) return;
    const std::string line = token_ + "\n";
    const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(fd);
    if (written) {
        path_ = name;
    } else {
        ::unlink(name.c_str());
    }
}

VerdictFile::~VerdictFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
}

std::optional<VerdictFile::Reported> VerdictFile::read() const {
    if (path_.empty()) return std::nullopt;
    std::ifstream in(path_);
    std::string line;
    std::getline(in, line);
    if (line == "PASS " + token_) return Reported{true, ""};
    const std::string failed = "FAIL " + token_ + " ";
    if (line.starts_with(failed)) return Reported{false, line.substr(failed.size())};
    return std::nullopt;
}

}  // namespace check
