// Tests of corelab/notebook.hpp: the notebook's cell run by an interpreter
// that answers (its rows scaled to the lesson's work), by one without numpy,
// by none at all; and what a lesson then says. With Debian's python3-numpy
// installed, the real cell runs too.
#include <doctest/doctest.h>
#include <stdlib.h>    // setenv, unsetenv, mkdtemp
#include <sys/stat.h>  // chmod

#include <cstdlib>     // std::system
#include <filesystem>  // std::filesystem
#include <fstream>     // std::ofstream
#include <sstream>     // std::ostringstream
#include <string>      // std::string

#include "corelab/notebook.hpp"

namespace fs = std::filesystem;

namespace {

// A directory with a fake interpreter in it; CORELAB_PYTHON names it while the object lives.
struct FakePython {
    fs::path dir, exe;
    explicit FakePython(const std::string& body) {
        std::string t = (fs::temp_directory_path() / "corelab-python-XXXXXX").string();
        REQUIRE(::mkdtemp(t.data()) != nullptr);
        dir = t;
        exe = dir / "python3";
        std::ofstream(exe) << "#!/bin/sh\n" << body << "\n";
        REQUIRE(::chmod(exe.c_str(), 0700) == 0);
        REQUIRE(::setenv("CORELAB_PYTHON", exe.c_str(), 1) == 0);
    }
    ~FakePython() {
        ::unsetenv("CORELAB_PYTHON");
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

std::string said(const corelab::notebook::PythonRun& run) {
    std::ostringstream out;
    corelab::Report report(corelab::Format::table, out);
    corelab::notebook::report_python(report, run);
    CHECK(report.rows().size() == run.rows.size());
    return out.str();
}

}  // namespace

TEST_CASE("notebook: an interpreter's answer becomes rows scaled to the lesson's work" * doctest::timeout(30)) {
    FakePython py(R"(echo '{"python": "3.11.2", "numpy": "1.24.2", "joblib": null, "size": 2000000, "work": 2000000,
 "rows": [{"name": "python_loop", "label": "Python loop", "seconds": 0.5, "workers": 1, "result": 0.5, "scales": true},
          {"name": "python_cache_hit", "label": "a hit", "seconds": 0.0002, "workers": 1, "result": null, "scales": false}]}')");
    const auto run = corelab::notebook::run_cell("mean_loop", 100'000'000, 100'000'000, 42);
    CHECK(run.missing.empty());
    CHECK(run.versions == "Python 3.11.2, numpy 1.24.2");
    CHECK(run.size == 2'000'000);
    REQUIRE(run.rows.size() == 2);
    const auto& loop = run.rows[0];
    CHECK(loop.name == "python_loop");
    CHECK(loop.seconds == doctest::Approx(25.0));  // 0.5 s for 2M numbers: 25 s for 100M
    CHECK(*loop.measured_at == 2'000'000);
    CHECK(*loop.measured_seconds == 0.5);
    CHECK(*loop.workers == 1);
    CHECK(*loop.result == 0.5);
    CHECK(run.rows[1].seconds == doctest::Approx(0.0002));  // a hit does not grow with n
    CHECK_FALSE(run.rows[1].measured_at.has_value());
    CHECK_FALSE(run.rows[1].result.has_value());
    const std::string text = said(run);
    CHECK(text.find("at n = 2,000,000") != std::string::npos);
    CHECK(text.find("Python loop, here: 500.0 ms, scaled to the lesson's size: 25.00 s (row python_loop)") !=
          std::string::npos);
}

TEST_CASE("notebook: without numpy, without Python, or switched off, the lesson says how to get it" *
          doctest::timeout(30)) {
    {
        FakePython py("echo 'numpy is not installed' >&2; exit 3");
        const auto run = corelab::notebook::run_cell("mean_loop", 1e8, 1e8, 42);
        CHECK(run.rows.empty());
        CHECK(run.missing == "Python has no numpy here");
        const std::string text = said(run);
        CHECK(text.find("./course deps --python installs python3-numpy and") != std::string::npos);
        CHECK(text.find("Intel i5-8265U") != std::string::npos);  // the figures quoted are the laptop's
    }
    {
        FakePython py("exit 4");
        CHECK(corelab::notebook::run_cell("cache", 1e8, 1e8, 42).missing == "Python has no joblib here");
    }
    {
        FakePython py("echo 'Traceback: boom' >&2; exit 1");
        CHECK(corelab::notebook::run_cell("cache", 1e8, 1e8, 42).missing.find("Traceback: boom") != std::string::npos);
    }
    {
        FakePython py("echo 'not json'");
        CHECK(corelab::notebook::run_cell("cache", 1e8, 1e8, 42).missing.find("no answer the lesson can read") !=
              std::string::npos);
    }
    REQUIRE(::setenv("CORELAB_PYTHON", "/nonexistent/python3", 1) == 0);
    CHECK(corelab::notebook::run_cell("mean_loop", 1e8, 1e8, 42).missing == "Python 3 is not installed");
    REQUIRE(::setenv("CORELAB_PYTHON", "no", 1) == 0);
    CHECK(corelab::notebook::run_cell("mean_loop", 1e8, 1e8, 42).missing.find("CORELAB_PYTHON=no") !=
          std::string::npos);
    ::unsetenv("CORELAB_PYTHON");
}

TEST_CASE("notebook: with Debian's numpy the notebook's own loop runs here" * doctest::timeout(120)) {
    if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        MESSAGE("python3-numpy is not installed: the real cell is not run (./course deps --python)");
        return;
    }
    REQUIRE(::setenv("CORELAB_PYTHON", "/usr/bin/python3", 1) == 0);
    const auto run = corelab::notebook::run_cell("mean_loop", 200'000, 200'000, 7);
    ::unsetenv("CORELAB_PYTHON");
    CHECK(run.missing.empty());
    REQUIRE(run.rows.size() == 2);
    CHECK(run.rows[0].name == "python_loop");
    CHECK(run.rows[0].seconds > 0.0);
    CHECK(*run.rows[0].result == doctest::Approx(0.5).epsilon(0.01));  // the mean of uniform numbers
    CHECK(run.size <= 200'000);
}

TEST_CASE("notebook: numbers with commas") {
    CHECK(corelab::notebook::with_commas(100'000'000) == "100,000,000");
    CHECK(corelab::notebook::with_commas(999) == "999");
    CHECK(corelab::notebook::with_commas(1000) == "1,000");
    CHECK(corelab::notebook::with_commas(-1234567) == "-1,234,567");
}
