// Implementation of corelab/notebook.hpp: run the cell, read its JSON.
#include "corelab/notebook.hpp"

#include <fcntl.h>     // O_CLOEXEC
#include <poll.h>      // poll
#include <signal.h>    // kill, SIGKILL
#include <spawn.h>     // posix_spawnp
#include <sys/wait.h>  // waitpid
#include <unistd.h>    // pipe2, close, read

#include <boost/json.hpp>  // parse: the cell's answer (built in results.cpp)
#include <cerrno>          // errno
#include <chrono>          // std::chrono::steady_clock
#include <cmath>           // std::llround
#include <cstdio>          // std::snprintf
#include <cstdlib>         // std::getenv
#include <filesystem>      // std::filesystem::exists

#include "corelab/cli.hpp"  // python_advice: the course's command that installs numpy and joblib

extern char** environ;  // the environment the cell inherits

namespace corelab::notebook {
namespace {

struct Ran {
    bool started = false;
    int status = -1;  // exit status, or -1 when killed or not started
    std::string out, err;
};

// Runs argv (searched on the PATH) with a bound on its time; never leaves a child behind.
Ran spawn(const std::vector<std::string>& argv, std::chrono::seconds limit) {
    Ran ran;
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return ran;
    if (::pipe2(err, O_CLOEXEC) != 0) {
        ::close(out[0]);
        ::close(out[1]);
        return ran;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(err[1]);
    if (rc != 0) {
        ::close(out[0]);
        ::close(err[0]);
        return ran;
    }
    ran.started = true;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open = 2;
    char buf[4096];
    bool killed = false;
    while (open > 0) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) {
            ::kill(pid, SIGKILL);
            killed = true;
            break;
        }
        if (::poll(fds, 2, static_cast<int>(left)) < 0 && errno != EINTR) break;
        for (int k = 0; k < 2; ++k) {
            if (fds[k].fd < 0 || (fds[k].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
            const ssize_t got = ::read(fds[k].fd, buf, sizeof buf);
            if (got > 0) {
                (k == 0 ? ran.out : ran.err).append(buf, static_cast<std::size_t>(got));
            } else if (got == 0 || errno != EINTR) {
                ::close(fds[k].fd);
                fds[k].fd = -1;
                --open;
            }
        }
    }
    for (auto& f : fds) {
        if (f.fd >= 0) ::close(f.fd);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    ran.status = !killed && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return ran;
}

std::string script_path() {
#ifdef CORELAB_NOTEBOOK_CELLS
    return CORELAB_NOTEBOOK_CELLS;
#else
    return "lessons/python/notebook_cells.py";
#endif
}

std::string last_line(const std::string& text) {
    std::string t = text;
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
    const auto nl = t.rfind('\n');
    return nl == std::string::npos ? t : t.substr(nl + 1);
}

double number(const boost::json::value& v) {
    return v.is_double()  ? v.as_double()
           : v.is_int64() ? static_cast<double>(v.as_int64())
                          : static_cast<double>(v.as_uint64());
}

}  // namespace

std::string with_commas(double value) {
    std::string digits = std::to_string(std::llround(value));
    for (int at = static_cast<int>(digits.size()) - 3; at > (digits[0] == '-' ? 1 : 0); at -= 3) {
        digits.insert(static_cast<std::size_t>(at), ",");
    }
    return digits;
}

PythonRun run_cell(const std::string& cell, double lesson_work, double max_size, std::uint64_t seed,
                   std::size_t tasks) {
    PythonRun run;
    run.lesson_work = lesson_work;
    std::vector<std::string> interpreters{"python3", "/usr/bin/python3"};
    if (const char* chosen = std::getenv("CORELAB_PYTHON"); chosen != nullptr && *chosen != '\0') {
        if (std::string(chosen) == "no") {
            run.missing = "CORELAB_PYTHON=no skips the notebook's Python cell";
            return run;
        }
        interpreters = {chosen};
    }
    const std::string script = script_path();
    std::error_code ec;
    if (!std::filesystem::exists(script, ec)) {
        run.missing = "the notebook's cells (" + script + ") are not here";
        return run;
    }
    char size[32];
    std::snprintf(size, sizeof size, "%.0f", max_size);
    run.missing = "Python 3 is not installed";
    for (const auto& python : interpreters) {
        const Ran ran = spawn({python, script, cell, "--seconds", "1", "--max-size", size, "--seed",
                               std::to_string(seed), "--tasks", std::to_string(tasks)},
                              std::chrono::seconds(300));
        if (!ran.started) continue;
        if (ran.status == 3) {
            run.missing = "Python has no numpy here";
            continue;
        }
        if (ran.status == 4) {
            run.missing = "Python has no joblib here";
            continue;
        }
        if (ran.status != 0) {
            run.missing = "the notebook's cell failed in " + python + ": " +
                          (ran.status < 0 ? "it ran past 300 s" : last_line(ran.err));
            return run;
        }
        try {
            const auto v = boost::json::parse(ran.out).as_object();
            run.size = number(v.at("size"));
            run.work = number(v.at("work"));
            run.versions = "Python " + std::string(v.at("python").as_string()) + ", numpy " +
                           std::string(v.at("numpy").as_string());
            if (v.at("joblib").is_string()) run.versions += ", joblib " + std::string(v.at("joblib").as_string());
            for (const auto& r : v.at("rows").as_array()) {
                const auto& o = r.as_object();
                Row row;
                row.name = std::string(o.at("name").as_string());
                const double seconds = number(o.at("seconds"));
                const double scale = o.at("scales").as_bool() && run.work > 0 ? lesson_work / run.work : 1.0;
                row.seconds = seconds * scale;
                row.workers = static_cast<unsigned>(number(o.at("workers")));
                if (!o.at("result").is_null()) row.result = number(o.at("result"));
                if (scale != 1.0) {
                    row.measured_at = run.size;
                    row.measured_seconds = seconds;
                }
                run.rows.push_back(row);
                run.labels.emplace_back(o.at("label").as_string());
            }
        } catch (const std::exception& e) {
            run.rows.clear();
            run.missing = "the notebook's cell printed no answer the lesson can read (" + std::string(e.what()) + ")";
            return run;
        }
        run.missing.clear();
        return run;
    }
    return run;
}

void report_python(Report& report, const PythonRun& run, const std::string& unit) {
    if (!run.missing.empty()) {
        report.say("The notebook's own cell was not timed here (" + run.missing +
                   "): its figures in this lesson are\n" + std::string(laptop) + "'s. " + python_advice());
        return;
    }
    std::string text = "The notebook's own cell, run here (" + run.versions + ") at " + unit + " = " +
                       with_commas(run.size) + " so that it takes about a second:";
    for (std::size_t i = 0; i < run.rows.size(); ++i) {
        const Row& r = run.rows[i];
        text += "\n  " + run.labels[i] + ", here: ";
        if (r.measured_seconds) {
            text += format_seconds(*r.measured_seconds) +
                    ", scaled to the lesson's size: " + format_seconds(r.seconds) + " (row " + r.name + ")";
        } else {
            text += format_seconds(r.seconds) + " (row " + r.name + ")";
        }
    }
    report.say(text + "\n(Times scale linearly with the work: " + with_commas(run.lesson_work) + " / " +
               with_commas(run.work) + ".)");
    for (const Row& r : run.rows) report.add_row(r);
}

}  // namespace corelab::notebook
