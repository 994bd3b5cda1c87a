// Checker of exercise 01.1: the recorded machines of tests/data/cpu and this
// one, against corelab::read_cpu_info (lscpu's rules).
#include <corelab/cpu_info.hpp>  // read_cpu_info: the reference

#include "check.hpp"
#include "exercise.hpp"

void run_check() {
    const std::filesystem::path data = CORELAB_TEST_DATA "/cpu";
    struct Machine {
        const char* name;
        unsigned cores;
        const char* why;
    };
    for (const Machine& m : {Machine{"i5-8265U", 4, "the notebook's laptop: 8 logical CPUs, 2 per core"},
                             Machine{"dual-socket", 16, "two sockets whose core ids are the same numbers"}}) {
        const unsigned got = count_physical_cores(data / m.name / "sys/devices/system/cpu");
        check::expect(got == m.cores, check::str("the ", m.name, " tree (", m.why, ") has ", m.cores,
                                                 " physical cores, your function says ", got));
        check::note(check::str(m.name, ": ", got, " cores"));
    }
    const unsigned none = count_physical_cores(data / "missing/sys/devices/system/cpu");
    check::expect(none == 0, check::str("a tree without sys/ describes no core: expected 0, got ", none));

    const auto here = corelab::read_cpu_info("/");
    const unsigned got = count_physical_cores("/sys/devices/system/cpu");
    if (here.physical_cores()) {
        check::expect(got == *here.physical_cores(), check::str("this machine has ", *here.physical_cores(),
                                                                " physical cores (lscpu), your function says ", got));
    }
    check::note(check::str("this machine: ", got, " physical cores, ", here.logical_cpus.value_or(0), " logical CPUs"));
}
