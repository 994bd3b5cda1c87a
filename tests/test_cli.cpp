// Tests of corelab/cli.hpp: good and bad command lines, and run_lesson's exit statuses.
#include <doctest/doctest.h>

#include <iostream>   // std::cerr (run_lesson's messages, captured)
#include <sstream>    // std::ostringstream
#include <stdexcept>  // std::runtime_error
#include <string>     // std::string
#include <vector>     // std::vector

#include "corelab/cli.hpp"
#include "corelab/dataset.hpp"  // make_uniform: an Error about the size

namespace {

std::optional<corelab::LessonOptions> parse(const corelab::Cli& cli, std::vector<const char*> args) {
    args.insert(args.begin(), "lesson");
    return cli.parse(static_cast<int>(args.size()), args.data());
}

}  // namespace

TEST_CASE("cli: defaults and given values") {
    corelab::Cli cli("lesson", "a test lesson", 1000);
    cli.with_workers(2, 16);
    const auto d = parse(cli, {});
    REQUIRE(d);
    CHECK(d->n == 1000);
    CHECK(d->seed == 42);
    CHECK(d->repeat == 3);
    CHECK(d->workers == 2);
    CHECK(d->format == corelab::Format::table);
    const auto g = parse(cli, {"--n", "100_000", "--seed=0", "--repeat", "5", "--workers", "16", "--format", "csv"});
    REQUIRE(g);
    CHECK(g->n == 100000);
    CHECK(g->seed == 0);
    CHECK(g->repeat == 5);
    CHECK(g->workers == 16);
    CHECK(g->format == corelab::Format::csv);
}

TEST_CASE("cli: bad command lines are usage errors that say what was wrong") {
    corelab::Cli cli("lesson", "a test lesson");
    cli.with_workers(2, 16);
    CHECK_THROWS_WITH_AS(parse(cli, {"--n", "0"}), "--n must be at least 1", corelab::UsageError);
    CHECK_THROWS_WITH_AS(parse(cli, {"--n", "-5"}), "--n takes a whole number, not '-5'", corelab::UsageError);
    CHECK_THROWS_WITH_AS(parse(cli, {"--n", "abc"}), "--n takes a whole number, not 'abc'", corelab::UsageError);
    CHECK_THROWS_WITH_AS(parse(cli, {"--n", "99999999999999999999999"}), doctest::Contains("too large"),
                         corelab::UsageError);
    CHECK_THROWS_WITH_AS(parse(cli, {"--workers", "17"}), doctest::Contains("between 1 and 16"), corelab::UsageError);
    CHECK_THROWS_WITH_AS(parse(cli, {"--format", "xml"}), doctest::Contains("'table' or 'csv'"), corelab::UsageError);
    CHECK_THROWS_AS(parse(cli, {"--frobnicate"}), corelab::UsageError);
    CHECK_THROWS_AS(parse(cli, {"--n"}), corelab::UsageError);
    CHECK_THROWS_AS(parse(cli, {"--repeat", "1000"}), corelab::UsageError);
}

TEST_CASE("cli: a word that follows no option is refused, never ignored") {
    corelab::Cli cli("lesson", "a test lesson");
    // "--n 1 000 000" would otherwise run with n = 1
    CHECK_THROWS_WITH_AS(parse(cli, {"--n", "1", "000", "000"}), doctest::Contains("'000'"), corelab::UsageError);
    CHECK_THROWS_AS(parse(cli, {"extra"}), corelab::UsageError);
    CHECK_THROWS_AS(parse(cli, {"--repeat", "2", "3"}), corelab::UsageError);
    const char* spaced[] = {"lesson", "--n", "1", "000", "000"};
    CHECK(corelab::run_lesson(5, spaced, cli, [](const corelab::LessonOptions&) { FAIL("ran with n = 1"); }) == 2);
}

TEST_CASE("cli: a lesson's own options are parsed and listed in the usage line") {
    corelab::Cli cli("lesson06", "a test lesson");
    cli.add_options()("tasks", boost::program_options::value<int>()->default_value(10), "how many tasks")(
        "keep-cache", "a switch")("cache-dir", boost::program_options::value<std::string>(), "a path");
    const auto o = parse(cli, {"--tasks", "7"});
    REQUIRE(o);
    CHECK(o->extra["tasks"].as<int>() == 7);
    // an option with a value shows it, a switch does not
    CHECK(cli.usage().find("[--tasks TASKS] [--keep-cache] [--cache-dir CACHE_DIR]") != std::string::npos);
    CHECK(cli.usage().find("--workers") == std::string::npos);  // this lesson has none
}

TEST_CASE("cli: a negative number after an option with a value is that value") {
    corelab::Cli cli("lesson06", "a test lesson");
    cli.add_options()("jobs", boost::program_options::value<std::string>(), "n_jobs")("keep", "a switch");
    const auto o = parse(cli, {"--jobs", "-1", "--n", "5"});
    REQUIRE(o);
    CHECK(o->extra["jobs"].as<std::string>() == "-1");
    CHECK(o->n == 5);
    CHECK(parse(cli, {"--jobs=-2"})->extra["jobs"].as<std::string>() == "-2");
    CHECK_THROWS_AS(parse(cli, {"--keep", "-1"}), corelab::UsageError);  // a switch takes no value
    CHECK_THROWS_AS(parse(cli, {"--n", "-5"}), corelab::UsageError);     // still not a count
}

TEST_CASE("cli: a lesson's peak that does not fit names the lesson's own flag and a value that fits") {
    CHECK_NOTHROW(corelab::check_lesson_memory("n", 1000, {.bytes_per_element = 8}, "lesson 02 at n = 1000"));
    try {
        corelab::check_lesson_memory("tasks", 1'000'000'000'000'000ULL, {.bytes_per_element = 64}, "lesson 06");
        FAIL("not refused");
    } catch (const corelab::Error& e) {
        const std::string what = e.what();
        CAPTURE(what);
        CHECK(what.find("lesson 06 needs 64000000.0 GB of memory at once; ") == 0);
        CHECK(what.find(": use a smaller --tasks (--tasks ") != std::string::npos);
        CHECK(what.find(" fits)") == what.size() - 6);
        CHECK(what.find("--n") == std::string::npos);
    }
}

TEST_CASE("cli: run_lesson turns outcomes into exit statuses 0 1 and 2") {
    corelab::Cli cli("lesson", "a test lesson");
    const char* ok[] = {"lesson", "--n", "5"};
    const char* bad[] = {"lesson", "--n", "0"};
    const char* help[] = {"lesson", "--help"};
    std::size_t seen = 0;
    CHECK(corelab::run_lesson(3, ok, cli, [&](const corelab::LessonOptions& o) { seen = o.n; }) == 0);
    CHECK(seen == 5);
    CHECK(corelab::run_lesson(3, bad, cli, [](const corelab::LessonOptions&) { FAIL("ran with --n 0"); }) == 2);
    CHECK(corelab::run_lesson(2, help, cli, [](const corelab::LessonOptions&) { FAIL("ran with --help"); }) == 0);
    CHECK(corelab::run_lesson(3, ok, cli, [](const corelab::LessonOptions&) { throw std::runtime_error("x"); }) == 1);
}

TEST_CASE("cli: the library's error states the fact, and run_lesson adds the advice that names the flag") {
    corelab::Cli cli("lesson", "a test lesson");
    const char* args[] = {"lesson", "--n", "5"};
    const auto body = [](const corelab::LessonOptions&) {
        (void)corelab::make_uniform(10'000'000'000'000ULL, 1);  // 80 TB: more than any test machine has
    };
    std::string library;
    try {
        body({});
    } catch (const corelab::Error& e) {
        library = e.what();
        CHECK(e.about() == corelab::About::size);
    }
    REQUIRE_FALSE(library.empty());
    CHECK(library.find("--") == std::string::npos);  // no lesson's flag in the library's words
    std::ostringstream err;
    auto* const old = std::cerr.rdbuf(err.rdbuf());
    const int status = corelab::run_lesson(3, args, cli, body);
    std::cerr.rdbuf(old);
    CHECK(status == 1);
    CHECK(err.str() == "error: " + library + ": use a smaller --n\n");
    CHECK(corelab::lesson_advice(corelab::Error("x")).empty());
    CHECK(corelab::lesson_advice(corelab::Error("x", corelab::About::jobs)) == "use fewer --jobs");
}
