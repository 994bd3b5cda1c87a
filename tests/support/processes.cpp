// Test support: /proc and /dev/shm scans, a job in its own process group.
#include "support/processes.hpp"

#include <dirent.h>    // opendir
#include <fcntl.h>     // open, fcntl, F_SETPIPE_SZ
#include <signal.h>    // kill
#include <sys/wait.h>  // waitpid
#include <unistd.h>    // fork, setpgid, execv, dup, dup2, pipe2

#include <cerrno>     // errno
#include <cstdio>     // std::fflush
#include <cstdlib>    // mkstemp
#include <fstream>    // std::ifstream
#include <iostream>   // std::cout
#include <sstream>    // std::istringstream
#include <stdexcept>  // std::runtime_error

namespace corelab::test {
namespace {

struct ProcStat {
    pid_t pid = 0;
    char state = '?';
    pid_t ppid = 0;
    pid_t pgrp = 0;
};

std::vector<ProcStat> all_processes() {
    std::vector<ProcStat> result;
    DIR* dir = ::opendir("/proc");
    if (dir == nullptr) return result;
    while (const dirent* e = ::readdir(dir)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        std::ifstream in(std::string("/proc/") + e->d_name + "/stat");
        std::string line;
        if (!std::getline(in, line)) continue;
        // pid (comm) state ppid pgrp ...; comm may hold spaces: parse after the last ')'
        const auto close = line.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream rest(line.substr(close + 1));
        ProcStat s;
        s.pid = static_cast<pid_t>(std::stol(line));
        rest >> s.state >> s.ppid >> s.pgrp;
        result.push_back(s);
    }
    ::closedir(dir);
    return result;
}

}  // namespace

std::vector<std::string> shm_objects_of(pid_t pid) {
    std::vector<std::string> names;
    const std::string prefix = "corelab." + std::to_string(pid) + ".";
    DIR* dir = ::opendir("/dev/shm");
    if (dir == nullptr) return names;
    while (const dirent* e = ::readdir(dir)) {
        if (std::string(e->d_name).rfind(prefix, 0) == 0) names.emplace_back(e->d_name);
    }
    ::closedir(dir);
    return names;
}

std::vector<pid_t> live_children_of(pid_t parent) {
    std::vector<pid_t> r;
    for (const auto& p : all_processes()) {
        if (p.ppid == parent && p.state != 'Z' && p.state != 'X') r.push_back(p.pid);
    }
    return r;
}

std::vector<pid_t> children_of(pid_t parent) {
    std::vector<pid_t> r;
    for (const auto& p : all_processes()) {
        if (p.ppid == parent) r.push_back(p.pid);
    }
    return r;
}

std::vector<pid_t> live_group_members(pid_t group) {
    std::vector<pid_t> r;
    for (const auto& p : all_processes()) {
        if (p.pgrp == group && p.state != 'Z' && p.state != 'X') r.push_back(p.pid);
    }
    return r;
}

pid_t start_in_own_group(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork");
    if (pid == 0) {
        ::setpgid(0, 0);
        const int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, 1);
        ::dup2(null, 2);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    ::setpgid(pid, pid);  // also here, so the group exists when we return
    return pid;
}

Ended wait_for(pid_t pid, std::chrono::milliseconds timeout) {
    Ended e;
    int status = 0;
    const bool done = eventually(
        [&] {
            const pid_t r = ::waitpid(pid, &status, WNOHANG);
            return r == pid || (r < 0 && errno != EINTR);
        },
        timeout);
    if (!done) return e;
    e.ended = true;
    if (WIFEXITED(status)) e.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) e.signal = WTERMSIG(status);
    return e;
}

CapturedStdout::CapturedStdout(Into into) : into_(into) {
    std::cout.flush();
    std::fflush(stdout);
    int target = -1;
    if (into == Into::pipe) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
        ::fcntl(fds[0], F_SETPIPE_SZ, 1 << 20);
        read_ = fds[0];
        target = fds[1];
    } else {
        std::string path = "/tmp/corelab-test-stdout-" + std::to_string(::getpid()) + "-XXXXXX";
        target = ::mkstemp(path.data());
        if (target < 0) throw std::runtime_error("mkstemp");
        ::unlink(path.c_str());  // the file lives while it is open
        read_ = ::dup(target);
    }
    saved_ = ::dup(1);
    ::dup2(target, 1);
    ::close(target);
}

CapturedStdout::~CapturedStdout() {
    restore();
    if (read_ >= 0) ::close(read_);
}

void CapturedStdout::restore() noexcept {
    if (saved_ < 0) return;
    std::cout.flush();
    std::fflush(stdout);
    ::dup2(saved_, 1);  // closes our copy of the pipe's write end
    ::close(saved_);
    saved_ = -1;
}

std::string CapturedStdout::text() {
    restore();
    std::string text;
    char buf[65536];
    if (into_ == Into::pipe) {
        // every writer has ended, so all of it is in the pipe: read until it is empty
        ::fcntl(read_, F_SETFL, ::fcntl(read_, F_GETFL) | O_NONBLOCK);
        for (ssize_t r; (r = ::read(read_, buf, sizeof buf)) != 0;) {
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) break;  // EAGAIN: empty (a leftover holder of the write end keeps it open)
            text.append(buf, static_cast<std::size_t>(r));
        }
    } else {
        for (;;) {
            const ssize_t r = ::pread(read_, buf, sizeof buf, static_cast<off_t>(text.size()));
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) throw std::runtime_error("pread");
            if (r == 0) break;
            text.append(buf, static_cast<std::size_t>(r));
        }
    }
    return text;
}

}  // namespace corelab::test
