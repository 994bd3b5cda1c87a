// Exercise 01.1 — count physical cores, not logical CPUs (README.md).
#include <fstream>  // std::ifstream
#include <regex>    // std::regex_match: cpu0, cpu1, ... but not cpufreq
#include <set>      // std::set
#include <string>   // std::string
#include <utility>  // std::pair

#include "exercise.hpp"

unsigned count_physical_cores(const std::filesystem::path& cpu_dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(cpu_dir, ec)) return 0;
    std::set<std::pair<long, long>> cores;  // (package, core): core ids repeat in every socket
    for (const auto& entry : fs::directory_iterator(cpu_dir)) {
        if (!std::regex_match(entry.path().filename().string(), std::regex("cpu[0-9]+"))) continue;
        long package = -1;
        long core = -1;
        std::ifstream(entry.path() / "topology" / "physical_package_id") >> package;
        std::ifstream(entry.path() / "topology" / "core_id") >> core;
        if (package >= 0 && core >= 0) cores.emplace(package, core);  // no topology: not counted
    }
    return static_cast<unsigned>(cores.size());
}
