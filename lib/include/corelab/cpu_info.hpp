// corelab/cpu_info.hpp — what the machine offers parallel work: lscpu's facts.
//
// Concept: before splitting work, count the workers that can really run at
// once. Linux says so in /proc/cpuinfo and /sys/devices/system/{cpu,node};
// this reads the same files as util-linux 2.38 `lscpu` and reports its summary
// fields with its rules (logical CPUs, threads per core, cores per socket,
// sockets, NUMA nodes, caches summed over their instances). Anything a machine
// does not expose (containers, VMs, ARM) is left unknown, never guessed.
// usable_cpus() counts what this process may use (its affinity mask, which
// taskset and container limits narrow): joblib's n_jobs = -1.
// Used by lesson 01 (notebook In[1], `!lscpu`); usable_cpus by Parallel and
// lesson 06.
#pragma once

#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint64_t
#include <filesystem>   // std::filesystem::path
#include <optional>     // std::optional: a field this machine does not expose
#include <span>         // std::span
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::pair
#include <vector>       // std::vector

namespace corelab {

/// One cache level summed like lscpu: the total size of its distinct
/// instances (one per distinct set of CPUs sharing it) and how many there are.
struct CacheSummary {
    std::uint64_t bytes = 0;
    std::size_t instances = 0;
    friend bool operator==(const CacheSummary&, const CacheSummary&) = default;
};

/// lscpu's summary of a machine. std::nullopt (or "unknown") means the files
/// that say it were not there.
struct CpuInfo {
    std::string architecture = "unknown";      ///< uname() machine: of the running kernel, not of `root`
    std::optional<unsigned> logical_cpus;      ///< "CPU(s)": present CPUs (hardware threads)
    std::optional<std::string> online_list;    ///< "On-line CPU(s) list", util-linux format ("0,1", "0-7")
    std::optional<unsigned> threads_per_core;  ///< "Thread(s) per core"
    std::optional<unsigned> cores_per_socket;  ///< "Core(s) per socket"
    std::optional<unsigned> sockets;           ///< "Socket(s)"
    std::optional<unsigned> numa_nodes;        ///< "NUMA node(s)"
    std::vector<std::pair<unsigned, std::string>> numa_node_cpus;  ///< "NUMA nodeN CPU(s)": (N, CPU list)
    std::optional<std::string> vendor_id;                          ///< "Vendor ID" (vendor_id of /proc/cpuinfo)
    std::optional<std::string> model_name;                         ///< "Model name" (model name of /proc/cpuinfo)
    std::optional<double> cpu_mhz;                                 ///< "cpu MHz" of the first CPU in /proc/cpuinfo
    std::optional<CacheSummary> l1d, l1i, l2, l3;                  ///< "L1d cache" ... "L3 cache"
    unsigned hardware_concurrency = 0;  ///< boost::thread::hardware_concurrency() of the running machine
    unsigned physical_concurrency = 0;  ///< boost::thread::physical_concurrency() of the running machine

    /// Physical cores in all sockets (cores_per_socket * sockets), when both are known.
    std::optional<unsigned> physical_cores() const;
};

/// Reads `<root>/proc/cpuinfo`, `<root>/sys/devices/system/cpu` and
/// `<root>/sys/devices/system/node`. A missing or unreadable file leaves its
/// fields unknown; never throws for what the machine does not expose.
CpuInfo read_cpu_info(const std::filesystem::path& root = "/");

/// CPUs this process may run on (its affinity mask; hardware threads); the
/// hardware concurrency when the mask cannot be read, never below 1.
unsigned usable_cpus();

/// lscpu's label/value lines, in the notebook's order: "Architecture:",
/// "CPU(s):", "On-line CPU(s) list:", "Thread(s) per core:", "Core(s) per
/// socket:", "Socket(s):", "NUMA node(s):", "Vendor ID:", "Model name:",
/// "CPU MHz:" (only when known), "L1d cache:" ... "L3 cache:", then
/// "NUMA nodeN CPU(s):" per node. Unknown values read "unknown".
std::vector<std::pair<std::string, std::string>> lscpu_lines(const CpuInfo& info);

/// CPU numbers of a kernel list such as "0-3,8,10-11" (sorted, unique);
/// nullopt when the text is not such a list. An empty text is an empty list.
std::optional<std::vector<unsigned>> parse_cpu_list(std::string_view text);

/// util-linux's cpulist format: runs of 3 or more as "0-3", a run of 2 as
/// "0,1". `cpus` must be sorted and unique.
std::string format_cpu_list(std::span<const unsigned> cpus);

/// util-linux's size_to_human_string: 1024-based, one decimal, ".0" dropped:
/// "512 B", "48 KiB", "1.3 MiB", "32 MiB".
std::string format_size(std::uint64_t bytes);

/// "192 KiB (4 instances)", "6 MiB (1 instance)": lscpu's cache summary value.
std::string format_cache(const CacheSummary& cache);

}  // namespace corelab
