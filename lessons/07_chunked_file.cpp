// Lesson 07 — the mean of a file on disk, split among processes.
//
// Mirrors the notebook's last cell: "When the file is very large in the disk,
// break the file up into 2 and assign each file path to a process" (image 6).
// Question: when two processes read one large file, what do they gain, and
// where does the time go: the disk, the page cache, or the CPU?
//
// Run it:  ./course lesson 7          (800 MB under build/release; or --n 1000000 --dir /tmp --keep)
// You should see: writing to the disk takes seconds; a warm read (the file in
// the page cache) is a memory copy that two processes do nearly twice as
// fast; a cold read waits for the disk, and two readers gain only what the
// disk gives. Every mean equals the mean of the data written.
#include <cstdio>    // std::fprintf
#include <iostream>  // std::cout
#include <string>    // std::string
#include <vector>    // std::vector

#include "07_chunked_file.conclude.hpp"  // conclude: what the table says, chosen from its numbers
#include "07_chunked_file.reads.hpp"     // Measured, cold, throughput, add_rows: the rows of each read
#include "corelab/chunked_file.hpp"      // write_data_file, split, read_in_processes, ScratchFile
#include "corelab/cli.hpp"               // Cli, run_lesson: the shared command line
#include "corelab/dataset.hpp"           // make_uniform: the notebook's np.random.rand(n)
#include "corelab/ipc/names.hpp"         // remove_stale: files of killed runs
#include "corelab/process_workers.hpp"   // ProcessWorkers: the notebook's Process
#include "corelab/report.hpp"            // best_of, Report, Stopwatch

namespace {

using corelab::Partial;
using corelab::ReadMethod;

void lesson(const corelab::LessonOptions& opt) {
    const unsigned w = opt.workers;
    const std::string dir =
        opt.given("dir") ? opt.word("dir") : corelab::beside_program("lesson07_data.bin").parent_path().string();
    const std::uint64_t file_bytes = corelab::data_file_header_bytes + opt.n * sizeof(double);
    corelab::Report report(opt, std::cout);
    report.say("Lesson 07: the mean of " + std::to_string(opt.n) + " numbers in a " +
               std::to_string(file_bytes / 1'000'000) + " MB file, read by " + std::to_string(w) +
               " processes (notebook, last cell)");

    // make room: the file and its split copies; sweep what killed runs left
    for (const auto& stale : corelab::ipc::remove_stale(dir)) report.say("removed " + stale + " (its run was killed)");
    corelab::check_disk_room(dir, 2 * file_bytes + (64 << 20), "lesson 07's data file and its split copies");
    corelab::check_lesson_memory("n", opt.n, {.bytes_per_element = sizeof(double), .fixed_bytes = 32e6},
                                 "lesson 07 at n = " + std::to_string(opt.n) + " (the data, before it is written)");

    // generate the data and write it: the reference mean is the data's own
    // [docs:write]
    corelab::ScratchFile file(dir, "chunked_file");  // removed at the end, on errors and on Ctrl-C
    auto data = corelab::make_uniform(opt.n, opt.seed);
    const Partial expected = corelab::sum_fast(data);
    corelab::Stopwatch watch;
    int shown = -1;  // tenths of the file shown so far; -1: nothing printed yet
    const corelab::DataFile f = corelab::write_data_file(file.path(), data, [&](std::uint64_t done, std::uint64_t all) {
        if (opt.format != corelab::Format::table) return;  // csv: the rows only
        if (shown < 0) std::fprintf(stderr, "writing %s:", file.path().c_str()), shown = 0;
        for (; shown < static_cast<int>(10 * done / all); ++shown) std::fprintf(stderr, " %d%%", 10 * (shown + 1));
        if (done == all) std::fprintf(stderr, ", on disk after %.1f s\n", watch.seconds());
    });
    std::vector<Measured> rows{{"write_file", watch.seconds(), {}, 0.0, false}};
    data = corelab::HugeArray<double>();  // from here on, the numbers are only in the file
    // [docs:end]

    // warm: the file is in the page cache; one process reads it all, then two share it
    // [docs:warm]
    corelab::ProcessWorkers workers(w);
    const std::string ws = std::to_string(w);
    const auto warm = [&](const std::string& name, auto read) {
        const auto t = corelab::best_of(opt.repeat, read);
        rows.push_back({name, t.seconds, t.value, corelab::cached_fraction(file.path()), true, t.runs});
    };
    warm("serial_read", [&] { return corelab::read_serial(f); });
    warm("chunks_pread_" + ws, [&] { return corelab::read_in_processes(f, workers, ReadMethod::pread); });
    warm("chunks_mmap_" + ws, [&] { return corelab::read_in_processes(f, workers, ReadMethod::mmap); });
    // [docs:end]

    // the notebook's literal idea: one file per process, each worker gets a path
    // [docs:split_files]
    std::vector<corelab::ScratchFile> parts;
    std::vector<std::string> paths;
    for (unsigned k = 0; k < w; ++k) paths.push_back(parts.emplace_back(dir, "chunked_part").path());
    watch.restart();
    (void)corelab::split_into_files(f, paths);  // copies the file, flushed to the disk
    rows.push_back({"make_split_files", watch.seconds(), {}, 1.0, false});
    warm("split_files_" + ws, [&] { return corelab::read_files_in_processes(paths, workers); });
    for (auto& p : parts) p.remove();
    // [docs:end]

    // cold: the file's pages dropped from the page cache before each read
    // [docs:cold]
    rows.push_back(cold("cold_serial_read", opt.repeat, f.path, [&] { return corelab::read_serial(f); }));
    rows.push_back(cold("cold_chunks_pread_" + ws, opt.repeat, f.path,
                        [&] { return corelab::read_in_processes(f, workers, ReadMethod::pread); }));
    rows.push_back(cold("cold_chunks_mmap_" + ws, opt.repeat, f.path,
                        [&] { return corelab::read_in_processes(f, workers, ReadMethod::mmap); }));
    // [docs:end]

    // check every result against the mean of the data written (only rounding may differ); the table
    report.say("every mean equals the mean of the data written (within 2(n-1) eps)" +
               throughput(rows, file_bytes, expected));
    report.bytes_per_row(double(file_bytes));
    add_rows(report, rows);
    if (opt.given("keep")) {
        report.say("kept the data file as " + file.keep("lesson07_data.bin") +
                   " (lesson 08 reads it with --file; a later --keep replaces it)");
    }
    report.conclude(conclude);
    report.print();
}

}  // namespace

int main(int argc, char** argv) {
    corelab::Cli cli("lesson07_chunked_file", "the mean of n random numbers in a file, read by worker processes");
    cli.with_workers(2, 16).with_conclusion(conclude);
    cli.text("dir", std::nullopt, "where to write the data file (default: beside this program)");
    cli.flag("keep", "keep the data file at the end as lesson07_data.bin (it is removed otherwise)");
    return corelab::run_lesson(argc, argv, cli, lesson);
}
