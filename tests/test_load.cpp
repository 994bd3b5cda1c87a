// Tests of corelab/load.hpp: /proc/stat read from recorded samples, the
// load between two of them, and the line a busy machine gets.
#include <doctest/doctest.h>
#include <stdlib.h>  // setenv, unsetenv

#include <fstream>  // std::ifstream
#include <sstream>  // std::ostringstream
#include <string>   // std::string

#include "corelab/load.hpp"

namespace {

std::string fixture(const std::string& name) {
    std::ifstream in(std::string(CORELAB_TEST_DATA) + "/proc_stat/" + name);
    REQUIRE_MESSAGE(in, "missing fixture " << name);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// A sample of a recorded /proc/stat, at `wall` seconds, this process having used `own` CPU seconds.
corelab::LoadSample sample(const std::string& name, double wall, double own) {
    corelab::LoadSample s;
    s.machine = corelab::parse_proc_stat(fixture(name), 100.0);
    s.wall = wall;
    s.own = own;
    return s;
}

}  // namespace

TEST_CASE("load: /proc/stat gives the programs' and the hypervisor's time and counts the CPUs") {
    const auto t = corelab::parse_proc_stat(fixture("before"), 100.0);
    REQUIRE(t.has_value());
    CHECK(t->busy == doctest::Approx((378600 + 2200 + 103200) / 100.0));  // user + nice + system
    CHECK(t->steal == doctest::Approx(7.0));
    CHECK(t->cpus == 2);
    CHECK_FALSE(corelab::parse_proc_stat("intr 1 2 3\nctxt 5\n").has_value());
    CHECK_FALSE(corelab::parse_proc_stat("cpu  1 2\n").has_value());  // fewer than 4 numbers
    const auto old = corelab::parse_proc_stat("cpu  100 0 50 1000\ncpu0 100 0 50 1000\n", 100.0);  // no steal field
    REQUIRE(old.has_value());
    CHECK(old->steal == 0.0);
    CHECK(old->cpus == 1);
}

TEST_CASE("load: a quiet machine is not busy and gets no line") {
    // 2 s in which all CPUs ran 2.0 s of programs and this lesson used 1.9 s: others 0.05 of a CPU
    const auto load = corelab::load_between(sample("before", 10.0, 5.0), sample("quiet_after", 12.0, 6.9));
    CHECK(load.known);
    CHECK(load.seconds == doctest::Approx(2.0));
    CHECK(load.other_cpus == doctest::Approx(0.05));
    CHECK(load.steal_cpus == 0.0);
    CHECK(load.cpus == 2);
    CHECK_FALSE(load.busy());
    CHECK(corelab::busy_warning(load).empty());
}

TEST_CASE("load: other programs above a tenth of a CPU make the machine busy and the line says how busy") {
    const auto load = corelab::load_between(sample("before", 10.0, 5.0), sample("busy_after", 12.0, 6.9));
    CHECK(load.other_cpus == doctest::Approx(0.9));
    CHECK(load.busy());
    CHECK(corelab::busy_warning(load) ==
          "other programs used 0.9 of 2 CPUs while this ran: the speed-ups below are lower than this machine gives "
          "when idle; run again when it is quiet");
    // the same CPU time, all of it this lesson's own: quiet
    CHECK_FALSE(corelab::load_between(sample("before", 10.0, 5.0), sample("busy_after", 12.0, 8.7)).busy());
    // ... or another MPI rank's, counted as the lesson's own
    CHECK_FALSE(corelab::load_between(sample("before", 10.0, 5.0), sample("busy_after", 12.0, 6.9), 1.8).busy());
}

TEST_CASE("load: steal counts as load and the line names the hypervisor") {
    const auto load = corelab::load_between(sample("before", 10.0, 5.0), sample("steal_after", 12.0, 7.0));
    CHECK(load.other_cpus == doctest::Approx(0.0));
    CHECK(load.steal_cpus == doctest::Approx(0.7));
    CHECK(load.busy());
    CHECK(corelab::busy_warning(load).find("the hypervisor took 0.7 (steal) of 2 CPUs") != std::string::npos);
}

TEST_CASE("load: a window too short for the kernel's clock ticks is not called busy") {
    // 0.9 of a CPU for 20 ms is 1.8 ticks: rounding, not a load
    const auto load = corelab::load_between(sample("before", 10.0, 5.0), sample("busy_after", 10.02, 8.682));
    CHECK(load.other_cpus > corelab::busy_threshold_cpus);
    CHECK_FALSE(load.busy());
}

TEST_CASE("load: no /proc/stat means an unknown load, never a busy one") {
    corelab::LoadSample none;
    none.wall = 1.0;
    const auto load = corelab::load_between(none, sample("busy_after", 5.0, 0.0));
    CHECK_FALSE(load.known);
    CHECK_FALSE(load.busy());
    CHECK(corelab::busy_warning(load).empty());
}

TEST_CASE("load: sample_load reads the file CORELAB_PROC_STAT names, and /proc/loadavg") {
    const std::string path = std::string(CORELAB_TEST_DATA) + "/proc_stat/busy_after";
    REQUIRE(::setenv("CORELAB_PROC_STAT", path.c_str(), 1) == 0);
    const auto s = corelab::sample_load();
    ::unsetenv("CORELAB_PROC_STAT");
    REQUIRE(s.machine.has_value());
    CHECK(s.machine->busy == doctest::Approx(4843.70));
    CHECK(s.own > 0.0);
    const auto real = corelab::sample_load();
    REQUIRE(real.machine.has_value());
    CHECK(real.machine->cpus >= 1);
    CHECK(real.loadavg.has_value());
    const auto avg = corelab::parse_loadavg("0.52 1.25 3.50 2/431 12345\n");
    REQUIRE(avg.has_value());
    CHECK((*avg)[2] == doctest::Approx(3.5));
    CHECK_FALSE(corelab::parse_loadavg("none").has_value());
}
