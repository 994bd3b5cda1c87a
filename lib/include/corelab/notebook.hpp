// corelab/notebook.hpp — the notebook's own figures, and its cells timed here.
//
// Concept: a speed-up is a ratio of two times measured on one machine. The
// notebook's figures come from its laptop (an Intel i5-8265U, 4 cores, 8
// hardware threads); quoting them beside this machine's C++ compares two
// machines as much as two languages. So when Python with numpy is installed
// (`./course deps --python`), lessons 02-06 run the notebook's own cell
// (lessons/python/notebook_cells.py) here, at a size that takes about a
// second, scale its time to the lesson's size and show it beside the C++ rows
// ("Python loop, here: ..."). Without Python they say how to get it and quote
// the laptop's figures, labelled as the laptop's. Used by lessons 02-06 and
// by the report's charts (the notebook's own points).
#pragma once

#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint64_t
#include <string>   // std::string
#include <vector>   // std::vector

#include "corelab/report.hpp"  // Report, Row

namespace corelab::notebook {

/// The notebook's laptop, as its figures are labelled.
inline constexpr const char* laptop = "the notebook's laptop (Intel i5-8265U, 4 cores, 8 threads)";
inline constexpr std::size_t n = 100'000'000;            ///< In[3]: numbers in d
inline constexpr double loop_seconds = 25.498;           ///< In[4]: the for loop over d
inline constexpr double two_process_seconds = 12.733;    ///< In[5]: two Processes and a Queue
inline constexpr double two_thread_seconds = 20.911;     ///< In[6]: two Threads (the GIL)
inline constexpr std::size_t tasks = 10;                 ///< In[10]: f(i) for i in range(10)
inline constexpr std::uint64_t loop_size = 10'000;       ///< In[10]: x in f
inline constexpr double f_loop_seconds = 21.692;         ///< In[10]: the loop of f
inline constexpr double f_processes_2_seconds = 10.974;  ///< In[11]: Parallel(n_jobs=2)
inline constexpr double f_threads_2_seconds = 19.128;    ///< In[12]: prefer="threads"
inline constexpr double f_jobs_6_seconds = 7.557;        ///< In[13]: n_jobs=6

/// A notebook cell run here with Python, or why it was not.
struct PythonRun {
    std::vector<Row> rows;            ///< python_* rows; scaled ones carry measured_at/measured_seconds
    std::vector<std::string> labels;  ///< per row: "Python loop", "joblib, 2 threads", ...
    std::string versions;             ///< "Python 3.11.2, numpy 1.24.2, joblib 1.2.0"
    double size = 0;                  ///< the size it ran at (n, or x for parallel_for)
    double work = 0;                  ///< its work in the lesson's units
    double lesson_work = 0;           ///< the lesson's work the rows were scaled to
    std::string missing;              ///< empty when it ran; else why not, and how to get it
};

/// Runs `cell` (mean_loop, two_process, two_thread, cache, parallel_for) of
/// notebook_cells.py with the first interpreter that has numpy: $CORELAB_PYTHON
/// ("no" runs nothing), else python3 on the PATH, else /usr/bin/python3.
/// `lesson_work` is the lesson's work in the cell's units (n, or
/// tasks x(x-1)/2 multiplications for parallel_for); `max_size` caps the size
/// it runs at. Rows that scale get seconds * lesson_work / work. Never throws
/// for a missing or failing Python: `missing` says what happened.
PythonRun run_cell(const std::string& cell, double lesson_work, double max_size, std::uint64_t seed,
                   std::size_t tasks = notebook::tasks);

/// Says "Python loop, here: 1.02 s for n = 4,223,961 (Python 3.11.2, numpy
/// 1.24.2), 24.1 s scaled to n = 100,000,000" for each row and adds the rows to
/// `report`; without Python says that the figures quoted are the laptop's and
/// how to measure them here (`./course deps --python`). `unit` names the size: "n" or "x".
void report_python(Report& report, const PythonRun& run, const std::string& unit = "n");

/// 100000000 -> "100,000,000".
std::string with_commas(double value);

}  // namespace corelab::notebook
