// Implementation of corelab/process_usage.hpp: getrusage and /proc/self.
#include "corelab/process_usage.hpp"

#include <sys/resource.h>  // getrusage

#include <fstream>  // std::ifstream
#include <string>   // std::string, std::getline, std::stoull

namespace corelab {
namespace {

// The sum of the `key` lines of a /proc file, whose values are in kB; 0 when it cannot be read.
std::size_t kilobytes_field(const char* path, const std::string& key) {
    std::ifstream in(path);
    std::size_t total = 0;
    for (std::string line; std::getline(in, line);) {
        if (line.compare(0, key.size(), key) == 0) total += std::stoull(line.substr(key.size())) * 1024;
    }
    return total;
}

}  // namespace

ProcessUsage process_usage() {
    ProcessUsage usage;
    rusage ru{};
    if (::getrusage(RUSAGE_SELF, &ru) == 0) usage.minor_faults = ru.ru_minflt;
    usage.rss_bytes = kilobytes_field("/proc/self/status", "VmRSS:");
    usage.peak_rss_bytes = kilobytes_field("/proc/self/status", "VmHWM:");
    usage.private_bytes = kilobytes_field("/proc/self/smaps_rollup", "Private_Clean:") +
                          kilobytes_field("/proc/self/smaps_rollup", "Private_Dirty:");
    return usage;
}

}  // namespace corelab
