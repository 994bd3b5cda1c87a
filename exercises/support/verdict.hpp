// exercises/support/verdict.hpp — how a checker tells `./course` that its
// checks ran to their end.
//
// An exit status alone cannot say that: a student function that calls
// std::exit(0), a thread task that does, or an _exit(0) in a static
// initialiser all end the checker with status 0 before anything was checked.
// So `./course` opens a file holding a random token, made afresh for each
// run, on a descriptor the checker inherits, and names it in
// CORELAB_CHECK_FD. The checker reads the token when main() starts and, only
// after the last check returned, replaces it with "PASS <token>" or
// "FAIL <token> <message>". Whatever ends the process before that leaves the
// bare token, and `./course` reports "stopped before its checks finished".
//
// This guards against accidents, not against a student who sets out to forge
// a verdict from inside the process: code that runs in the checker can do
// what the checker does. Grading with pristine checkers (`./course grade`)
// is the teacher's protection against edited checkers.
#pragma once
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view

namespace check {

/// The checker's end of the channel: a descriptor and the token it held.
class VerdictChannel {
public:
    /// The channel `./course` opened (CORELAB_CHECK_FD), or none when the
    /// checker was started by hand (or by ctest): then only the exit status
    /// speaks. Removes the variable and marks the descriptor close-on-exec,
    /// so that programs the checker starts do not inherit it.
    static VerdictChannel from_environment();

    /// The same channel through a file named by CORELAB_CHECK_FILE (for
    /// checkers that start themselves again, as 08.1 does under mpirun, which
    /// does not hand descriptors on to the programs it starts).
    static VerdictChannel from_file_in_environment();

    /// Reports that every check ran and passed.
    void pass() const;
    /// Reports that the checks ran to their end and failed with `message`.
    void fail(std::string_view message) const;

    bool open() const { return fd_ >= 0; }

private:
    void write_line(const std::string& line) const;
    int fd_ = -1;
    std::string token_;
};

/// The harness's end, for a checker that relaunches itself: a temporary file
/// holding a fresh token, named to the processes it starts by
/// CORELAB_CHECK_FILE. Removed by the destructor.
class VerdictFile {
public:
    VerdictFile();
    ~VerdictFile();
    VerdictFile(const VerdictFile&) = delete;
    VerdictFile& operator=(const VerdictFile&) = delete;

    const std::string& path() const { return path_; }

    struct Reported {
        bool passed;
        std::string message;  // empty when passed
    };
    /// What was reported with this file's token, or nothing when no
    /// process reported (it stopped before its checks finished).
    std::optional<Reported> read() const;

private:
    std::string path_;
    std::string token_;
};

/// A fresh random token (32 hex digits from /dev/urandom).
std::string new_token();

}  // namespace check
