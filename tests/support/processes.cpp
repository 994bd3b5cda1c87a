// Test support: /proc and /dev/shm scans, a job in its own process group.
#include "support/processes.hpp"

#include <dirent.h>    // opendir
#include <fcntl.h>     // open, fcntl, F_SETPIPE_SZ
#include <signal.h>    // kill
#include <sys/wait.h>  // waitpid, waitid
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

Ended wait_for_zombie(pid_t pid, std::chrono::milliseconds timeout) {
    Ended e;
    siginfo_t info{};
    const bool done = eventually(
        [&] {
            info = {};
            const int r = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
            return (r == 0 && info.si_pid == pid) || (r < 0 && errno != EINTR);
        },
        timeout);
    if (!done || info.si_pid != pid) return e;
    e.ended = true;
    if (info.si_code == CLD_EXITED) e.exit_code = info.si_status;
    if (info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED) e.signal = info.si_status;
    return e;
}

bool running(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) return false;
    const auto close = line.rfind(')');  // pid (comm) state ...
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z' && line[close + 2] != 'X';
}

bool finished(pid_t pid) {
    const std::string dir = "/proc/" + std::to_string(pid);
    if (running(pid)) return false;
    DIR* tasks = ::opendir((dir + "/task").c_str());
    if (tasks == nullptr) return true;  // gone
    int threads = 0;
    while (const dirent* e = ::readdir(tasks)) {
        if (e->d_name[0] != '.') ++threads;
    }
    ::closedir(tasks);
    return threads <= 1;  // only the zombie leader is left
}

bool group_finished(pid_t group) {
    for (const auto& p : all_processes()) {
        if (p.pgrp == group && !finished(p.pid)) return false;
    }
    return true;
}

pid_t unused_pids(pid_t from, pid_t length) {
    pid_t start = from;
    for (pid_t p = from; p < 4194304; ++p) {
        if (::kill(p, 0) == 0 || errno != ESRCH) {
            start = p + 1;
        } else if (p - start + 1 >= length) {
            return start;
        }
    }
    return 0;
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
