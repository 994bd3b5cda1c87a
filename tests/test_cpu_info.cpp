// Tests of corelab/cpu_info.hpp: recorded /proc and /sys trees read exactly
// as util-linux 2.38 lscpu reads them, missing files left unknown, and this
// machine's values checked against the installed lscpu; usable_cpus against
// nproc and against a thread's narrowed affinity mask.
//
// The fixtures under tests/data/cpu/ hold only the files the reader reads. Their
// expected values were checked with `lscpu --sysroot` (util-linux 2.38.1) on a
// copy that also had the mask files (thread_siblings, cpumap, ...) lscpu reads.
#include <doctest/doctest.h>
#include <sched.h>  // sched_getaffinity, sched_setaffinity, CPU_SET

#include <algorithm>   // std::min
#include <cstdio>      // popen, pclose
#include <filesystem>  // std::filesystem
#include <fstream>     // std::ofstream
#include <map>         // std::map
#include <random>      // std::random_device
#include <string>      // std::string
#include <thread>      // std::thread: a thread whose mask is narrowed
#include <utility>     // std::pair
#include <vector>      // std::vector

#include "corelab/cpu_info.hpp"

namespace fs = std::filesystem;
using corelab::CacheSummary;
using Lines = std::vector<std::pair<std::string, std::string>>;

namespace {

const fs::path fixtures = fs::path(CORELAB_TEST_DATA) / "cpu";

// Our lines without Architecture, which comes from uname(), not from the fixture.
Lines lines_without_architecture(const corelab::CpuInfo& info) {
    Lines lines = corelab::lscpu_lines(info);
    REQUIRE(lines.front().first == "Architecture:");
    lines.erase(lines.begin());
    return lines;
}

// What a shell command printed; empty when it could not run.
std::string output_of(const char* command) {
    std::string out;
    FILE* pipe = popen(command, "r");
    if (pipe == nullptr) return out;
    char buffer[4096];
    std::size_t n = 0;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
    pclose(pipe);
    return out;
}

std::string trim(const std::string& s) {
    const auto first = s.find_first_not_of(" \t");
    if (first == std::string::npos) return "";
    return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

}  // namespace

TEST_CASE("cpu_info: the i5-8265U fixture reads like the notebook's laptop") {
    const auto info = corelab::read_cpu_info(fixtures / "i5-8265U");
    CHECK(info.logical_cpus == 8u);
    CHECK(info.online_list == "0-7");
    CHECK(info.threads_per_core == 2u);
    CHECK(info.cores_per_socket == 4u);
    CHECK(info.sockets == 1u);
    CHECK(info.physical_cores() == 4u);
    CHECK(info.numa_nodes == 1u);
    CHECK(info.vendor_id == "GenuineIntel");
    CHECK(info.model_name == "Intel(R) Core(TM) i5-8265U CPU @ 1.60GHz");
    CHECK(info.cpu_mhz == doctest::Approx(2854.352));
    CHECK(info.l1d == CacheSummary{128 * 1024, 4});
    CHECK(info.l1i == CacheSummary{128 * 1024, 4});
    CHECK(info.l2 == CacheSummary{1024 * 1024, 4});
    CHECK(info.l3 == CacheSummary{6 * 1024 * 1024, 1});
    const Lines expected{
        {"CPU(s):", "8"},
        {"On-line CPU(s) list:", "0-7"},
        {"Thread(s) per core:", "2"},
        {"Core(s) per socket:", "4"},
        {"Socket(s):", "1"},
        {"NUMA node(s):", "1"},
        {"Vendor ID:", "GenuineIntel"},
        {"Model name:", "Intel(R) Core(TM) i5-8265U CPU @ 1.60GHz"},
        {"CPU MHz:", "2854.352"},
        {"L1d cache:", "128 KiB (4 instances)"},
        {"L1i cache:", "128 KiB (4 instances)"},
        {"L2 cache:", "1 MiB (4 instances)"},
        {"L3 cache:", "6 MiB (1 instance)"},
        {"NUMA node0 CPU(s):", "0-7"},
    };
    CHECK(lines_without_architecture(info) == expected);
}

TEST_CASE("cpu_info: the dual-socket fixture counts sockets and cores and NUMA nodes") {
    const auto info = corelab::read_cpu_info(fixtures / "dual-socket");
    CHECK(info.logical_cpus == 32u);
    CHECK(info.online_list == "0-31");
    CHECK(info.threads_per_core == 2u);
    CHECK(info.cores_per_socket == 8u);
    CHECK(info.sockets == 2u);
    CHECK(info.physical_cores() == 16u);
    CHECK(info.numa_nodes == 2u);
    CHECK(info.vendor_id == "GenuineIntel");
    CHECK(info.model_name == "Intel(R) Xeon(R) Silver 4110 CPU @ 2.10GHz");
    CHECK(info.l1d == CacheSummary{512 * 1024, 16});
    CHECK(info.l1i == CacheSummary{512 * 1024, 16});
    CHECK(info.l2 == CacheSummary{16 * 1024 * 1024, 16});
    CHECK(info.l3 == CacheSummary{22 * 1024 * 1024, 2});
    const Lines expected{
        {"CPU(s):", "32"},
        {"On-line CPU(s) list:", "0-31"},
        {"Thread(s) per core:", "2"},
        {"Core(s) per socket:", "8"},
        {"Socket(s):", "2"},
        {"NUMA node(s):", "2"},
        {"Vendor ID:", "GenuineIntel"},
        {"Model name:", "Intel(R) Xeon(R) Silver 4110 CPU @ 2.10GHz"},
        {"CPU MHz:", "2100.000"},
        {"L1d cache:", "512 KiB (16 instances)"},
        {"L1i cache:", "512 KiB (16 instances)"},
        {"L2 cache:", "16 MiB (16 instances)"},
        {"L3 cache:", "22 MiB (2 instances)"},
        {"NUMA node0 CPU(s):", "0-7,16-23"},
        {"NUMA node1 CPU(s):", "8-15,24-31"},
    };
    CHECK(lines_without_architecture(info) == expected);
}

TEST_CASE("cpu_info: an ARM cpuinfo without sysfs leaves everything but the count unknown") {
    corelab::CpuInfo info;
    REQUIRE_NOTHROW(info = corelab::read_cpu_info(fixtures / "missing"));
    CHECK(info.logical_cpus == 4u);  // the processor entries of /proc/cpuinfo
    CHECK_FALSE(info.online_list);
    CHECK_FALSE(info.threads_per_core);
    CHECK_FALSE(info.cores_per_socket);
    CHECK_FALSE(info.sockets);
    CHECK_FALSE(info.physical_cores());
    CHECK_FALSE(info.numa_nodes);
    CHECK(info.numa_node_cpus.empty());
    CHECK_FALSE(info.vendor_id);
    CHECK_FALSE(info.model_name);
    CHECK_FALSE(info.cpu_mhz);
    CHECK_FALSE(info.l1d);
    CHECK_FALSE(info.l1i);
    CHECK_FALSE(info.l2);
    CHECK_FALSE(info.l3);
    const Lines expected{
        {"CPU(s):", "4"},
        {"On-line CPU(s) list:", "unknown"},
        {"Thread(s) per core:", "unknown"},
        {"Core(s) per socket:", "unknown"},
        {"Socket(s):", "unknown"},
        {"NUMA node(s):", "unknown"},
        {"Vendor ID:", "unknown"},
        {"Model name:", "unknown"},
        {"L1d cache:", "unknown"},
        {"L1i cache:", "unknown"},
        {"L2 cache:", "unknown"},
        {"L3 cache:", "unknown"},
    };
    CHECK(lines_without_architecture(info) == expected);
}

TEST_CASE("cpu_info: a root with nothing in it gives unknowns and no exception") {
    corelab::CpuInfo info;
    REQUIRE_NOTHROW(info = corelab::read_cpu_info(fixtures / "no such root"));
    CHECK_FALSE(info.logical_cpus);
    CHECK_FALSE(info.online_list);
    CHECK_FALSE(info.threads_per_core);
    CHECK_FALSE(info.numa_nodes);
    CHECK_FALSE(info.vendor_id);
    CHECK_FALSE(info.l3);
    CHECK(info.hardware_concurrency >= 1u);  // the running machine, whatever the root
}

TEST_CASE("cpu_info: garbled files are unknown and raise no exception") {
    const fs::path root = fs::temp_directory_path() / ("corelab-cpu-info-" + std::to_string(std::random_device{}()));
    const auto write = [&](const fs::path& rel, const std::string& text) {
        fs::create_directories((root / rel).parent_path());
        std::ofstream(root / rel) << text;
    };
    write("proc/cpuinfo", "processor : x\ncpu MHz : fast\nmodel name :\n");
    write("sys/devices/system/cpu/present", "0-\n");
    write("sys/devices/system/cpu/online", "3-1\n");
    write("sys/devices/system/cpu/cpu0/topology/thread_siblings_list", "zero\n");
    write("sys/devices/system/cpu/cpu0/cache/index0/level", "one\n");
    write("sys/devices/system/cpu/cpu0/cache/index0/type", "Data\n");
    write("sys/devices/system/cpu/cpu0/cache/index1/level", "2\n");
    write("sys/devices/system/cpu/cpu0/cache/index1/type", "Unified\n");
    write("sys/devices/system/cpu/cpu0/cache/index1/size", "lots\n");
    write("sys/devices/system/node/node0/cpulist", "?\n");
    corelab::CpuInfo info;
    REQUIRE_NOTHROW(info = corelab::read_cpu_info(root));
    fs::remove_all(root);
    CHECK_FALSE(info.logical_cpus);
    CHECK_FALSE(info.online_list);
    CHECK_FALSE(info.threads_per_core);
    CHECK_FALSE(info.model_name);
    CHECK_FALSE(info.cpu_mhz);
    CHECK_FALSE(info.l1d);
    CHECK_FALSE(info.l2);
    CHECK(info.numa_nodes == 1u);
    CHECK(info.numa_node_cpus == std::vector<std::pair<unsigned, std::string>>{{0u, "unknown"}});
}

TEST_CASE("cpu_info: CPU lists are parsed and printed as util-linux does") {
    using List = std::vector<unsigned>;
    CHECK(corelab::format_cpu_list(List{}) == "");
    CHECK(corelab::format_cpu_list(List{0}) == "0");
    CHECK(corelab::format_cpu_list(List{0, 1}) == "0,1");  // a run of two is not a range
    CHECK(corelab::format_cpu_list(List{0, 1, 2}) == "0-2");
    CHECK(corelab::format_cpu_list(List{0, 1, 2, 3, 5, 6, 8}) == "0-3,5,6,8");
    CHECK(corelab::format_cpu_list(List{1, 3, 4, 5, 9, 10}) == "1,3-5,9,10");
    CHECK(corelab::parse_cpu_list("0-3,8,10-11\n") == List{0, 1, 2, 3, 8, 10, 11});
    CHECK(corelab::parse_cpu_list("5,1,1") == List{1, 5});
    CHECK(corelab::parse_cpu_list("") == List{});
    CHECK_FALSE(corelab::parse_cpu_list("3-1"));
    CHECK_FALSE(corelab::parse_cpu_list("0-"));
    CHECK_FALSE(corelab::parse_cpu_list("a"));
    CHECK_FALSE(corelab::parse_cpu_list("0,,1"));
}

TEST_CASE("cpu_info: sizes are printed like util-linux's size_to_human_string") {
    CHECK(corelab::format_size(0) == "0 B");
    CHECK(corelab::format_size(512) == "512 B");
    CHECK(corelab::format_size(48 * 1024) == "48 KiB");
    CHECK(corelab::format_size(192 * 1024) == "192 KiB");
    CHECK(corelab::format_size(1280 * 1024) == "1.3 MiB");  // 1.25 rounds up
    CHECK(corelab::format_size(1536 * 1024) == "1.5 MiB");
    CHECK(corelab::format_size(1065 * 1024) == "1 MiB");         // 1.04: the ".0" is dropped
    CHECK(corelab::format_size(1024 * 1024 - 1) == "1024 KiB");  // 1023.999 KiB rounds to the next whole
    CHECK(corelab::format_size(32ULL << 20) == "32 MiB");
    CHECK(corelab::format_size(3ULL << 30) == "3 GiB");
    CHECK(corelab::format_cache(CacheSummary{48 * 1024, 1}) == "48 KiB (1 instance)");
    CHECK(corelab::format_cache(CacheSummary{192 * 1024, 4}) == "192 KiB (4 instances)");
}

TEST_CASE("cpu_info: this machine's values are the installed lscpu's") {
    const auto info = corelab::read_cpu_info();
    CHECK(info.hardware_concurrency >= 1u);
    CHECK(info.physical_concurrency >= 1u);
    CHECK(info.physical_concurrency <= info.hardware_concurrency);

    const std::string out = output_of("command -v lscpu >/dev/null 2>&1 && LC_ALL=C lscpu 2>/dev/null");
    if (out.empty()) {
        MESSAGE("lscpu is not installed: comparison skipped");
        return;
    }
    std::map<std::string, std::string> theirs;
    std::size_t start = 0;
    while (start < out.size()) {
        const auto end = out.find('\n', start);
        const std::string line = out.substr(start, end == std::string::npos ? std::string::npos : end - start);
        start = end == std::string::npos ? out.size() : end + 1;
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string label = trim(line.substr(0, colon + 1));
        // On a terminal lscpu >= 2.37 nests caches as "L1d:" under "Caches (sum of all):".
        if (label == "L1d:" || label == "L1i:" || label == "L2:" || label == "L3:") {
            label.insert(label.size() - 1, " cache");
        }
        theirs[label] = trim(line.substr(colon + 1));
    }
    REQUIRE(theirs.count("CPU(s):") == 1);
    int compared = 0;
    for (const auto& [label, ours] : corelab::lscpu_lines(info)) {
        const auto it = theirs.find(label);
        if (it == theirs.end()) continue;
        CAPTURE(label);
        CHECK(it->second == ours);
        ++compared;
    }
    CHECK(compared >= 9);  // at least Architecture .. Model name
}

TEST_CASE("cpu_info: usable_cpus counts this process's affinity mask, as nproc does") {
    const unsigned cpus = corelab::usable_cpus();
    CHECK(cpus >= 1u);
    CHECK(cpus <= corelab::read_cpu_info().hardware_concurrency);
    // nproc reads the same mask (OMP_NUM_THREADS would override it: unset)
    std::string nproc =
        output_of("command -v nproc >/dev/null 2>&1 && env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null");
    while (!nproc.empty() && nproc.back() == '\n') nproc.pop_back();
    if (nproc.empty()) {
        MESSAGE("nproc is not installed: comparison skipped");
    } else {
        CHECK(std::to_string(cpus) == nproc);
    }
}

TEST_CASE("cpu_info: usable_cpus follows a narrowed affinity mask (taskset)") {
    cpu_set_t mine;
    CPU_ZERO(&mine);
    REQUIRE(::sched_getaffinity(0, sizeof mine, &mine) == 0);
    std::vector<int> allowed;
    for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (CPU_ISSET(c, &mine)) allowed.push_back(c);
    }
    REQUIRE(static_cast<unsigned>(allowed.size()) == corelab::usable_cpus());
    // A thread of its own narrows only its own mask: the other tests keep theirs.
    for (std::size_t keep = 1; keep <= std::min<std::size_t>(allowed.size(), 2); ++keep) {
        CAPTURE(keep);
        unsigned seen = 0;
        int set_rc = -1;
        std::thread narrowed([&] {
            cpu_set_t few;
            CPU_ZERO(&few);
            for (std::size_t i = 0; i < keep; ++i) CPU_SET(allowed[i], &few);
            set_rc = ::sched_setaffinity(0, sizeof few, &few);
            seen = corelab::usable_cpus();
        });
        narrowed.join();
        REQUIRE(set_rc == 0);
        CHECK(seen == keep);
    }
    CHECK(corelab::usable_cpus() == allowed.size());  // this thread's mask is unchanged
}
