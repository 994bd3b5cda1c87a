// Exercise 01.1: count the physical cores in a sysfs tree.
#pragma once
#include <filesystem>  // std::filesystem::path

/// The number of physical cores described by `cpu_dir` (a directory like
/// /sys/devices/system/cpu): distinct (physical_package_id, core_id) pairs
/// over its cpuN/topology/ directories. 0 when it describes none.
unsigned count_physical_cores(const std::filesystem::path& cpu_dir);
