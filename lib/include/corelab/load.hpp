// corelab/load.hpp — was the machine quiet while a lesson ran?
//
// Concept: a speed-up measured beside other busy programs is not the
// machine's speed-up. The kernel counts, per CPU, the time spent running
// programs (/proc/stat: user, nice, system) and, in a virtual machine, the time
// the hypervisor gave the CPU to someone else (steal). Two samples around the
// timed parts, minus what this process and its children used (getrusage), say
// how many CPUs others kept busy meanwhile. Above busy_threshold_cpus (a tenth
// of one core) a lesson says so above its table, and run.json records it.
// Used by every lesson, through Report.
#pragma once

#include <array>        // std::array
#include <chrono>       // std::chrono::system_clock
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view

namespace corelab {

/// CPU time of the whole machine, in seconds summed over its CPUs.
struct CpuTimes {
    double busy = 0.0;   ///< user + nice + system: running programs (guest time is inside user)
    double steal = 0.0;  ///< taken by the hypervisor for other machines
    unsigned cpus = 0;   ///< the cpuN lines
};

/// Parses the text of /proc/stat (its first "cpu" line and the cpuN lines).
/// `ticks_per_second` is USER_HZ (sysconf(_SC_CLK_TCK), 100 on Linux).
/// nullopt when the text has no "cpu" line of numbers.
std::optional<CpuTimes> parse_proc_stat(std::string_view text, double ticks_per_second = 100.0);

/// One sample: the machine's CPU time, this process's own, and the clock.
struct LoadSample {
    std::optional<CpuTimes> machine;               ///< nullopt where /proc/stat cannot be read
    double own = 0.0;                              ///< CPU seconds of this process and its reaped children
    double wall = 0.0;                             ///< steady-clock seconds
    std::chrono::system_clock::time_point at{};    ///< the date and time, for run.json
    std::optional<std::array<double, 3>> loadavg;  ///< /proc/loadavg: 1, 5 and 15 minutes
};

/// Takes a sample now: /proc/stat (or the file named by $CORELAB_PROC_STAT,
/// which tests use for a quiet machine), getrusage(SELF) + getrusage(CHILDREN),
/// the clocks and /proc/loadavg.
LoadSample sample_load();

/// The 1, 5 and 15 minute load averages of a /proc/loadavg text; nullopt when it is not one.
std::optional<std::array<double, 3>> parse_loadavg(std::string_view text);

/// Below this many CPUs used by others the machine counts as quiet.
inline constexpr double busy_threshold_cpus = 0.1;

/// What other programs did between two samples.
struct Load {
    bool known = false;       ///< false: /proc/stat could not be read
    double seconds = 0.0;     ///< wall time between the samples
    double other_cpus = 0.0;  ///< CPUs other programs kept busy, on average (never below 0)
    double steal_cpus = 0.0;  ///< CPUs the hypervisor took, on average
    unsigned cpus = 0;        ///< the machine's CPUs

    /// Others (programs and steal) used more than busy_threshold_cpus, and
    /// for at least 5 clock ticks in all (so a short window's rounding is not a load).
    bool busy() const noexcept;
};

/// The load between two samples (pure: tests feed it recorded samples).
/// `extra_own` adds CPU seconds that were ours but not our children's
/// (the other MPI ranks of lesson 08).
Load load_between(const LoadSample& before, const LoadSample& after, double extra_own = 0.0);

/// "other programs used 0.9 of 2 CPUs while this ran: ...", or "" when quiet.
std::string busy_warning(const Load& load);

}  // namespace corelab
