// Implementation of corelab/cpu_info.hpp: util-linux 2.38 lscpu's summary rules.
#include "corelab/cpu_info.hpp"

#include <sched.h>        // sched_getaffinity, CPU_COUNT
#include <sys/utsname.h>  // uname

#include <algorithm>                // std::max, std::sort, std::unique
#include <boost/thread/thread.hpp>  // boost::thread::hardware_concurrency, physical_concurrency
#include <cctype>                   // std::isdigit, std::isspace
#include <cstdio>                   // std::snprintf
#include <exception>                // std::exception
#include <fstream>                  // std::ifstream
#include <iterator>                 // std::istreambuf_iterator
#include <map>                      // std::map
#include <set>                      // std::set
#include <system_error>             // std::error_code
#include <thread>                   // std::thread::hardware_concurrency

namespace corelab {
namespace {

namespace fs = std::filesystem;

std::string trim(std::string_view s) {
    const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
    while (!s.empty() && space(s.front())) s.remove_prefix(1);
    while (!s.empty() && space(s.back())) s.remove_suffix(1);
    return std::string(s);
}

// The whole file, trimmed; nullopt when it cannot be opened or read.
std::optional<std::string> read_text(const fs::path& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return std::nullopt;
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) return std::nullopt;
    return trim(text);
}

std::optional<unsigned> to_unsigned(std::string_view s) {
    if (s.empty() || s.size() > 9) return std::nullopt;
    unsigned v = 0;
    for (char c : s) {
        if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    return v;
}

std::optional<unsigned> read_unsigned(const fs::path& path) {
    const auto text = read_text(path);
    return text ? to_unsigned(*text) : std::nullopt;
}

std::optional<std::vector<unsigned>> read_list(const fs::path& path) {
    const auto text = read_text(path);
    return text ? parse_cpu_list(*text) : std::nullopt;
}

// "cpu12" with prefix "cpu" -> 12; anything else (cpufreq, cpuidle) -> nullopt.
std::optional<unsigned> numbered(const std::string& name, std::string_view prefix) {
    if (name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
    return to_unsigned(std::string_view(name).substr(prefix.size()));
}

// The numbers N of the `prefixN` entries of a directory, sorted; nullopt when
// the directory cannot be read.
std::optional<std::vector<unsigned>> numbered_entries(const fs::path& dir, std::string_view prefix) {
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) return std::nullopt;
    std::vector<unsigned> numbers;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
        if (ec) break;
        if (auto n = numbered(it->path().filename().string(), prefix)) numbers.push_back(*n);
    }
    std::sort(numbers.begin(), numbers.end());
    return numbers;
}

// sysfs cache sizes: "32K", "6144K", "12M"; util-linux's parse_size is 1024-based.
std::optional<std::uint64_t> parse_cache_size(std::string_view s) {
    std::uint64_t multiplier = 1;
    if (!s.empty() && !std::isdigit(static_cast<unsigned char>(s.back()))) {
        switch (s.back()) {
            case 'K':
                multiplier = 1ULL << 10;
                break;
            case 'M':
                multiplier = 1ULL << 20;
                break;
            case 'G':
                multiplier = 1ULL << 30;
                break;
            default:
                return std::nullopt;
        }
        s.remove_suffix(1);
    }
    const auto n = to_unsigned(s);
    return n ? std::optional<std::uint64_t>(*n * multiplier) : std::nullopt;
}

// The fields of the first processor in /proc/cpuinfo, and how many there are.
void read_proc_cpuinfo(const fs::path& path, CpuInfo& info, unsigned& processors) {
    std::ifstream in(path);
    std::string line;
    bool first_block = true;
    bool seen_any = false;
    while (std::getline(in, line)) {
        if (trim(line).empty()) {
            if (seen_any) first_block = false;
            continue;
        }
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        seen_any = true;
        const std::string key = trim(std::string_view(line).substr(0, colon));
        const std::string value = trim(std::string_view(line).substr(colon + 1));
        if (key == "processor" && to_unsigned(value)) ++processors;
        if (!first_block) continue;
        if (key == "vendor_id" && !info.vendor_id && !value.empty()) info.vendor_id = value;
        if (key == "model name" && !info.model_name && !value.empty()) info.model_name = value;
        if (key == "cpu MHz" && !info.cpu_mhz) {
            try {
                info.cpu_mhz = std::stod(value);
            } catch (const std::exception&) {  // not a number: leave it unknown
            }
        }
    }
}

// Threads per core, cores per socket and sockets, counted as lscpu counts them:
// a core is a distinct set of thread siblings, a socket a distinct set of
// package siblings.
void read_topology(const fs::path& cpu_dir, const std::vector<unsigned>& cpus, CpuInfo& info) {
    std::set<std::string> cores;
    std::set<std::string> sockets;
    std::map<std::string, unsigned> threads_of_core;  // when only core_id/physical_package_id exist
    unsigned threads = 0;
    for (unsigned cpu : cpus) {
        const fs::path topo = cpu_dir / ("cpu" + std::to_string(cpu)) / "topology";
        const auto siblings = read_list(topo / "thread_siblings_list");
        auto package = read_list(topo / "package_cpus_list");
        if (!package) package = read_list(topo / "core_siblings_list");
        const auto package_id = read_unsigned(topo / "physical_package_id");
        const auto core_id = read_unsigned(topo / "core_id");

        std::string core_key;
        if (siblings) {
            core_key = format_cpu_list(*siblings);
            threads = std::max(threads, std::max<unsigned>(1, static_cast<unsigned>(siblings->size())));
        } else if (package_id && core_id) {
            core_key = "ids " + std::to_string(*package_id) + ":" + std::to_string(*core_id);
            threads = std::max(threads, ++threads_of_core[core_key]);
        } else {
            continue;  // no topology for this CPU (offline, or not exported)
        }
        cores.insert(core_key);
        if (package) {
            sockets.insert(format_cpu_list(*package));
        } else if (package_id) {
            sockets.insert("id " + std::to_string(*package_id));
        }
    }
    if (cores.empty()) return;
    info.threads_per_core = threads;
    if (sockets.empty()) return;
    info.sockets = static_cast<unsigned>(sockets.size());
    info.cores_per_socket = static_cast<unsigned>(cores.size() / sockets.size());
}

// Caches: an instance is identified by level, type and its id file (or, without
// one, the CPUs that share it); its size is counted once.
void read_caches(const fs::path& cpu_dir, const std::vector<unsigned>& cpus, CpuInfo& info) {
    struct Instance {
        std::string name;
        std::uint64_t bytes;
    };
    std::map<std::string, Instance> instances;  // key: name + id or shared CPUs
    for (unsigned cpu : cpus) {
        const fs::path cache = cpu_dir / ("cpu" + std::to_string(cpu)) / "cache";
        for (unsigned index = 0;; ++index) {
            const fs::path dir = cache / ("index" + std::to_string(index));
            std::error_code ec;
            if (!fs::is_directory(dir, ec)) break;  // lscpu stops at the first gap too
            const auto level = read_unsigned(dir / "level");
            const auto type = read_text(dir / "type");
            if (!level || !type) continue;
            std::string name = "L" + std::to_string(*level);
            if (*type == "Data") name += 'd';
            if (*type == "Instruction") name += 'i';
            std::string key = name + " " + *type;
            if (const auto id = read_unsigned(dir / "id")) {
                key += " id " + std::to_string(*id);
            } else if (const auto shared = read_list(dir / "shared_cpu_list")) {
                key += " cpus " + format_cpu_list(*shared);
            } else {
                key += " cpu " + std::to_string(cpu);  // nothing says it is shared
            }
            if (instances.count(key) != 0) continue;
            const auto size = read_text(dir / "size");
            const auto bytes = size ? parse_cache_size(*size) : std::nullopt;
            instances.emplace(key, Instance{name, bytes.value_or(0)});
        }
    }
    std::map<std::string, CacheSummary> sums;
    for (const auto& [key, instance] : instances) {
        CacheSummary& sum = sums[instance.name];
        sum.bytes += instance.bytes;
        ++sum.instances;
    }
    const auto take = [&](const char* name, std::optional<CacheSummary>& field) {
        const auto it = sums.find(name);
        if (it != sums.end() && it->second.bytes != 0) field = it->second;  // lscpu skips size 0
    };
    take("L1d", info.l1d);
    take("L1i", info.l1i);
    take("L2", info.l2);
    take("L3", info.l3);
}

void read_numa(const fs::path& node_dir, CpuInfo& info) {
    const auto nodes = numbered_entries(node_dir, "node");
    if (!nodes || nodes->empty()) return;
    info.numa_nodes = static_cast<unsigned>(nodes->size());
    for (unsigned node : *nodes) {
        const auto cpus = read_list(node_dir / ("node" + std::to_string(node)) / "cpulist");
        info.numa_node_cpus.emplace_back(node, cpus ? format_cpu_list(*cpus) : "unknown");
    }
}

}  // namespace

std::optional<unsigned> CpuInfo::physical_cores() const {
    if (!cores_per_socket || !sockets) return std::nullopt;
    return *cores_per_socket * *sockets;
}

std::optional<std::vector<unsigned>> parse_cpu_list(std::string_view text) {
    std::vector<unsigned> cpus;
    const std::string all = trim(text);
    std::string_view rest = all;
    while (!rest.empty()) {
        const auto comma = rest.find(',');
        const std::string_view item = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        const auto dash = item.find('-');
        const auto first = to_unsigned(item.substr(0, dash));
        const auto last = dash == std::string_view::npos ? first : to_unsigned(item.substr(dash + 1));
        if (!first || !last || *last < *first || *last - *first > 65536) return std::nullopt;
        for (unsigned c = *first; c <= *last; ++c) cpus.push_back(c);
    }
    std::sort(cpus.begin(), cpus.end());
    cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
    return cpus;
}

std::string format_cpu_list(std::span<const unsigned> cpus) {
    std::string out;
    for (std::size_t i = 0; i < cpus.size();) {
        std::size_t run = 0;  // how many CPUs follow cpus[i] without a gap
        while (i + run + 1 < cpus.size() && cpus[i + run + 1] == cpus[i + run] + 1) ++run;
        if (!out.empty()) out += ',';
        if (run == 0) {
            out += std::to_string(cpus[i]);
        } else if (run == 1) {
            out += std::to_string(cpus[i]) + ',' + std::to_string(cpus[i + 1]);
        } else {
            out += std::to_string(cpus[i]) + '-' + std::to_string(cpus[i + run]);
        }
        i += run + 1;
    }
    return out;
}

std::string format_size(std::uint64_t bytes) {
    int exp = 0;  // the power of two of the unit: 0 (B), 10 (KiB), 20 (MiB), ...
    while (exp < 60 && bytes >= (1ULL << (exp + 10))) exp += 10;
    const char letter = "BKMGTPE"[exp / 10];
    std::uint64_t dec = bytes >> exp;
    std::uint64_t frac = exp != 0 ? bytes & ((1ULL << exp) - 1) : 0;
    if (frac != 0) {
        frac = (frac / (1ULL << (exp - 10)) + 50) / 100;  // tenths, rounded as util-linux does
        if (frac == 10) {
            ++dec;
            frac = 0;
        }
    }
    std::string out = std::to_string(dec);
    if (frac != 0) out += "." + std::to_string(frac);
    out += ' ';
    out += letter;
    if (letter != 'B') out += "iB";
    return out;
}

std::string format_cache(const CacheSummary& cache) {
    return format_size(cache.bytes) + " (" + std::to_string(cache.instances) +
           (cache.instances == 1 ? " instance)" : " instances)");
}

CpuInfo read_cpu_info(const std::filesystem::path& root) {
    CpuInfo info;
    if (utsname u{}; uname(&u) == 0) info.architecture = u.machine;
    info.hardware_concurrency = boost::thread::hardware_concurrency();
    info.physical_concurrency = boost::thread::physical_concurrency();

    unsigned processors = 0;
    read_proc_cpuinfo(root / "proc" / "cpuinfo", info, processors);

    // CPU(s) counts the present CPUs; lscpu falls back to the possible ones,
    // then to /proc/cpuinfo.
    const fs::path cpu_dir = root / "sys" / "devices" / "system" / "cpu";
    auto present = read_list(cpu_dir / "present");
    if (!present) present = read_list(cpu_dir / "possible");
    if (present && !present->empty()) {
        info.logical_cpus = static_cast<unsigned>(present->size());
    } else if (processors != 0) {
        info.logical_cpus = processors;
    }
    if (const auto online = read_list(cpu_dir / "online")) info.online_list = format_cpu_list(*online);

    if (const auto cpus = numbered_entries(cpu_dir, "cpu")) {
        read_topology(cpu_dir, *cpus, info);
        read_caches(cpu_dir, *cpus, info);
    }
    read_numa(root / "sys" / "devices" / "system" / "node", info);
    return info;
}

unsigned usable_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) == 0) {
        const int count = CPU_COUNT(&set);
        if (count > 0) return static_cast<unsigned>(count);
    }
    return std::max(1u, std::thread::hardware_concurrency());
}

std::vector<std::pair<std::string, std::string>> lscpu_lines(const CpuInfo& info) {
    const auto text = [](const std::optional<std::string>& v) { return v.value_or("unknown"); };
    const auto count = [](const std::optional<unsigned>& v) { return v ? std::to_string(*v) : "unknown"; };
    const auto cache = [](const std::optional<CacheSummary>& v) { return v ? format_cache(*v) : "unknown"; };
    std::vector<std::pair<std::string, std::string>> lines{
        {"Architecture:", info.architecture},
        {"CPU(s):", count(info.logical_cpus)},
        {"On-line CPU(s) list:", text(info.online_list)},
        {"Thread(s) per core:", count(info.threads_per_core)},
        {"Core(s) per socket:", count(info.cores_per_socket)},
        {"Socket(s):", count(info.sockets)},
        {"NUMA node(s):", count(info.numa_nodes)},
        {"Vendor ID:", text(info.vendor_id)},
        {"Model name:", text(info.model_name)},
    };
    if (info.cpu_mhz) {
        char mhz[32];
        std::snprintf(mhz, sizeof mhz, "%.3f", *info.cpu_mhz);
        lines.emplace_back("CPU MHz:", mhz);
    }
    lines.emplace_back("L1d cache:", cache(info.l1d));
    lines.emplace_back("L1i cache:", cache(info.l1i));
    lines.emplace_back("L2 cache:", cache(info.l2));
    lines.emplace_back("L3 cache:", cache(info.l3));
    for (const auto& [node, cpus] : info.numa_node_cpus) {
        lines.emplace_back("NUMA node" + std::to_string(node) + " CPU(s):", cpus);
    }
    return lines;
}

}  // namespace corelab
