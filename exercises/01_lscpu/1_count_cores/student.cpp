// Exercise 01.1 — count physical cores, not logical CPUs (README.md).
#include <fstream>  // std::ifstream
#include <regex>    // std::regex_match: cpu0, cpu1, ... but not cpufreq
#include <set>      // std::set
#include <string>   // std::string

#include "exercise.hpp"

unsigned count_physical_cores(const std::filesystem::path& cpu_dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(cpu_dir, ec)) return 0;
    unsigned cpus = 0;
    for (const auto& entry : fs::directory_iterator(cpu_dir)) {
        if (!std::regex_match(entry.path().filename().string(), std::regex("cpu[0-9]+"))) continue;
        // TODO(exercise): this counts logical CPUs (hardware threads). Read
        // entry.path() / "topology" / "physical_package_id" and "core_id" and
        // count each distinct pair once.
        ++cpus;
    }
    return cpus;
}
