// Tests of corelab/error.hpp.
#include <doctest/doctest.h>

#include "corelab/error.hpp"

TEST_CASE("error: is a std::runtime_error that keeps its message") {
    try {
        throw corelab::Error("the mean of no numbers is undefined");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()) == "the mean of no numbers is undefined");
        return;
    }
    FAIL("corelab::Error was not caught as std::runtime_error");
}

TEST_CASE("error: a WorkerError names its worker and is a corelab::Error") {
    const corelab::WorkerError e(3, "worker 3 (pid 42) was killed by SIGKILL");
    CHECK(e.worker() == 3);
    const corelab::Error& base = e;
    CHECK(std::string(base.what()).find("SIGKILL") != std::string::npos);
}
