// Implementation of corelab/load.hpp.
#include "corelab/load.hpp"

#include <sys/resource.h>  // getrusage
#include <unistd.h>        // sysconf

#include <algorithm>  // std::max
#include <chrono>     // std::chrono::steady_clock
#include <cstdio>     // std::snprintf
#include <cstdlib>    // std::getenv
#include <fstream>    // std::ifstream
#include <sstream>    // std::istringstream, std::ostringstream

namespace corelab {
namespace {

double seconds_of(const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
}

double own_cpu_seconds() {
    rusage self{}, children{};
    ::getrusage(RUSAGE_SELF, &self);
    ::getrusage(RUSAGE_CHILDREN, &children);
    return seconds_of(self.ru_utime) + seconds_of(self.ru_stime) + seconds_of(children.ru_utime) +
           seconds_of(children.ru_stime);
}

}  // namespace

std::optional<CpuTimes> parse_proc_stat(std::string_view text, double ticks_per_second) {
    std::istringstream in{std::string(text)};
    std::optional<CpuTimes> times;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("cpu", 0) != 0) continue;
        if (line.size() > 3 && line[3] != ' ') {  // cpu0, cpu1, ...: one CPU each
            if (times) ++times->cpus;
            continue;
        }
        std::istringstream fields(line.substr(3));
        // user nice system idle iowait irq softirq steal (guest and guest_nice are inside user and nice)
        double v[8] = {};
        int got = 0;
        while (got < 8 && fields >> v[got]) ++got;
        if (got < 4) return std::nullopt;
        times = CpuTimes{(v[0] + v[1] + v[2]) / ticks_per_second, v[7] / ticks_per_second, 0};
    }
    return times;
}

std::optional<std::array<double, 3>> parse_loadavg(std::string_view text) {
    std::istringstream in{std::string(text)};
    std::array<double, 3> avg{};
    if (!(in >> avg[0] >> avg[1] >> avg[2])) return std::nullopt;
    return avg;
}

LoadSample sample_load() {
    LoadSample s;
    if (std::ifstream avg("/proc/loadavg"); avg) {
        std::ostringstream text;
        text << avg.rdbuf();
        s.loadavg = parse_loadavg(text.str());
    }
    const char* path = std::getenv("CORELAB_PROC_STAT");
    std::ifstream in(path != nullptr && *path != '\0' ? path : "/proc/stat");
    if (in) {
        std::ostringstream text;
        text << in.rdbuf();
        const long hz = ::sysconf(_SC_CLK_TCK);
        s.machine = parse_proc_stat(text.str(), hz > 0 ? static_cast<double>(hz) : 100.0);
    }
    s.own = own_cpu_seconds();
    s.wall = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    s.at = std::chrono::system_clock::now();
    return s;
}

bool Load::busy() const noexcept {
    const double others = other_cpus + steal_cpus;
    return known && others > busy_threshold_cpus && others * seconds >= 0.05;
}

Load load_between(const LoadSample& before, const LoadSample& after, double extra_own) {
    Load load;
    load.seconds = std::max(0.0, after.wall - before.wall);
    if (!before.machine || !after.machine || load.seconds <= 0.0) return load;
    load.known = true;
    load.cpus = after.machine->cpus;
    const double busy = after.machine->busy - before.machine->busy;
    const double own = after.own - before.own + extra_own;
    load.other_cpus = std::max(0.0, busy - own) / load.seconds;
    load.steal_cpus = std::max(0.0, after.machine->steal - before.machine->steal) / load.seconds;
    return load;
}

std::string busy_warning(const Load& load) {
    if (!load.busy()) return {};
    char text[320];
    const char* advice =
        "while this ran: the speed-ups below are lower than this machine gives when idle; run again when it is quiet";
    if (load.steal_cpus > busy_threshold_cpus / 2) {
        std::snprintf(text, sizeof text, "other programs used %.1f and the hypervisor took %.1f (steal) of %u CPUs %s",
                      load.other_cpus, load.steal_cpus, load.cpus, advice);
    } else {
        std::snprintf(text, sizeof text, "other programs used %.1f of %u CPUs %s", load.other_cpus + load.steal_cpus,
                      load.cpus, advice);  // a little steal is counted with them
    }
    return text;
}

}  // namespace corelab
