// Exercise 01.2: choose how many workers to start from what lscpu says.
#pragma once
#include <corelab/cpu_info.hpp>  // CpuInfo

/// What the workers will spend their time on.
enum class Work { compute, wait };

/// How many workers to start (never 0):
/// - Work::compute: one per physical core (info.physical_cores()); when that
///   is unknown, info.logical_cpus; when that is unknown too,
///   info.hardware_concurrency; when all are unknown (0), 1.
/// - Work::wait (workers that mostly wait for I/O): two per logical CPU
///   (info.logical_cpus, else info.hardware_concurrency), else 2.
unsigned pick_workers(const corelab::CpuInfo& info, Work work);
