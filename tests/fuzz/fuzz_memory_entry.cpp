// libFuzzer target for the cache entry reader (corelab/memory.hpp): any bytes
// as output.bin must be refused with a reason or load a value; never a crash,
// a hang, an out-of-bounds access or an allocation larger than the file allows
// (ASan and UBSan watch; -rss_limit_mb catches the rest).
//
// Built with clang++ -fsanitize=fuzzer,address,undefined when clang is present
// (tests/CMakeLists.txt). With CORELAB_FUZZ_WRITE_SEEDS=DIR it writes valid
// entries of every result type it reads to DIR and exits: the seed corpus.
#include <sys/mman.h>  // memfd_create
#include <unistd.h>    // write, lseek

#include <array>       // std::array
#include <cstdint>     // std::uint8_t
#include <cstdlib>     // std::getenv, std::exit
#include <filesystem>  // std::filesystem
#include <fstream>     // std::ifstream, std::ofstream
#include <string>      // std::string
#include <tuple>       // std::tuple
#include <vector>      // std::vector

#include "corelab/memory.hpp"

namespace {

struct Point {
    double x = 0;
    int y = 0;
    std::string label;
    template <class Archive>
    void serialize(Archive& ar) {
        ar(x, y, label);
    }
};

using Nested = std::vector<std::vector<double>>;
using Mixed = std::tuple<int, std::vector<std::string>, Point, std::array<float, 3>>;

// The key every input is read as: square(std::vector<double>{1, 2, 3}), version 1.
const corelab::detail::CallKey& fuzz_key() {
    static const corelab::detail::CallKey key = [] {
        corelab::detail::KeyBuilder builder("square", "1");
        {
            corelab::detail::OutArchive ar(builder);
            ar(std::vector<double>{1, 2, 3});
        }
        return builder.finish();
    }();
    return key;
}

template <class T>
void read_as(int fd) {
    ::lseek(fd, 0, SEEK_SET);
    T value{};
    (void)corelab::detail::read_entry(fd, fuzz_key(), [&](corelab::detail::InArchive& ar) { ar(value); });
}

// Writes one valid entry per result type, through the real Memory.
void write_seeds(const std::filesystem::path& out) {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("corelab-fuzz-seeds-" + std::to_string(::getpid()));
    fs::create_directories(out);
    int k = 0;
    const auto save = [&](auto fn) {
        fs::remove_all(dir);
        {
            const corelab::Memory mem{dir, {.verbose = 0}};
            mem.cache("square", fn, {.version = "1"})(std::vector<double>{1, 2, 3});
        }
        for (const auto& e : fs::directory_iterator(dir / "square")) {
            if (!e.is_directory()) continue;  // the folder's .corelab-function mark
            fs::copy_file(e.path() / "output.bin", out / ("seed" + std::to_string(k++)),
                          fs::copy_options::overwrite_existing);
        }
    };
    save([](const std::vector<double>& a) { return std::vector<double>{a[0] * a[0], a[1] * a[1], a[2] * a[2]}; });
    save([](const std::vector<double>&) { return std::string("nine"); });
    save([](const std::vector<double>&) { return Nested{{0, 0, 1}, {1, 1, 1}, {16, 4, 1}}; });
    save([](const std::vector<double>&) { return Mixed{7, {"a", "bc"}, Point{1.5, 2, "p"}, {1, 2, 3}}; });
    save([](const std::vector<double>&) {
        corelab::HugeArray<double> h(5);
        for (std::size_t i = 0; i < h.size(); ++i) h[i] = static_cast<double>(i);
        return h;
    });
    fs::remove_all(dir);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    if (const char* out = std::getenv("CORELAB_FUZZ_WRITE_SEEDS")) {
        write_seeds(out);
        std::exit(0);
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const int fd = ::memfd_create("corelab-fuzz-entry", MFD_CLOEXEC);
    if (fd < 0) return 0;
    if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0) return 0;
    for (std::size_t done = 0; done < size;) {
        const ssize_t put = ::write(fd, data + done, size - done);
        if (put <= 0) return 0;
        done += static_cast<std::size_t>(put);
    }
    read_as<std::vector<double>>(fd);
    read_as<std::string>(fd);
    read_as<Nested>(fd);
    read_as<Mixed>(fd);
    read_as<corelab::HugeArray<double>>(fd);
    return 0;
}
