// Tests of corelab/cli.hpp: good and bad command lines, and run_lesson's exit statuses.
#include <doctest/doctest.h>

#include <filesystem>  // std::filesystem::read_symlink
#include <iostream>    // std::cerr (run_lesson's messages, captured)
#include <sstream>     // std::ostringstream
#include <stdexcept>   // std::runtime_error
#include <string>      // std::string
#include <vector>      // std::vector

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

TEST_CASE("cli: typed options give checked values and their own usage errors") {
    corelab::Cli cli("lesson06", "a test lesson");
    cli.integer("tasks", 10, {.min = 1}, "how many tasks")
        .integer("loop-size", 10000, {.min = 1, .max = 100'000, .why_at_most = "it would run for hours"}, "x")
        .integer("jobs", std::nullopt, {.min = -1024, .max = 1024, .zero_refused = "means no worker"}, "n_jobs")
        .integer("batch-size", 0, {.min = 1, .zero_word = "auto"}, "tasks per batch")
        .choice("backend", {"processes", "threads"}, "the backend")
        .text("dir", std::nullopt, "a directory")
        .flag("keep", "a switch");
    const auto d = parse(cli, {});
    REQUIRE(d);
    CHECK(d->integer<std::size_t>("tasks") == 10);
    CHECK(d->integer("loop-size") == 10000);
    CHECK(d->integer("batch-size") == 0);  // its default is the word: auto
    CHECK(d->word("backend") == "processes");
    CHECK_FALSE(d->given("jobs"));
    CHECK_FALSE(d->given("tasks"));  // a default is not given
    CHECK_FALSE(d->given("keep"));
    CHECK_THROWS_WITH_AS(d->integer("jobs"), "--jobs has no value: it was not given", corelab::Error);
    CHECK_THROWS_AS(d->word("dir"), corelab::Error);
    CHECK(cli.usage().find("[--tasks TASKS] [--loop-size LOOP_SIZE] [--jobs JOBS] [--batch-size BATCH_SIZE] "
                           "[--backend BACKEND] [--dir DIR] [--keep]") != std::string::npos);

    const auto g = parse(cli, {"--tasks", "1_000", "--jobs", "-1", "--batch-size", "auto", "--backend", "threads",
                               "--dir", "/tmp/x", "--keep"});
    REQUIRE(g);
    CHECK(g->integer("tasks") == 1000);
    CHECK(g->integer<int>("jobs") == -1);
    CHECK(g->given("jobs"));
    CHECK(g->integer("batch-size") == 0);
    CHECK(g->word("backend") == "threads");
    CHECK(g->word("dir") == "/tmp/x");
    CHECK(g->given("keep"));
    CHECK(parse(cli, {"--batch-size", "7"})->integer("batch-size") == 7);
    CHECK(parse(cli, {"--jobs=1024"})->integer("jobs") == 1024);
    CHECK(parse(cli, {"--jobs", "-1024"})->integer("jobs") == -1024);
    CHECK_THROWS_WITH_AS(parse(cli, {"--jobs", "-1"})->integer<unsigned>("jobs"), "--jobs does not fit its type",
                         corelab::Error);

    CHECK_THROWS_WITH_AS(parse(cli, {"--tasks", "0"}), "--tasks must be at least 1", corelab::UsageError);
    CHECK_THROWS_WITH_AS(parse(cli, {"--tasks", "-3"}), "--tasks takes a whole number, not '-3'", corelab::UsageError);
    CHECK_THROWS_WITH_AS(parse(cli, {"--tasks", "ten"}), "--tasks takes a whole number, not 'ten'",
                         corelab::UsageError);
    CHECK_THROWS_WITH_AS(parse(cli, {"--tasks", "99999999999999999999999"}),
                         "--tasks must be at most 9223372036854775807", corelab::UsageError);
    CHECK_THROWS_WITH_AS(parse(cli, {"--loop-size", "100001"}),
                         "--loop-size must be at most 100000 (it would run for hours)", corelab::UsageError);
    CHECK_THROWS_WITH_AS(parse(cli, {"--jobs", "0"}), "--jobs 0 means no worker", corelab::UsageError);
    CHECK_THROWS_WITH_AS(parse(cli, {"--jobs", "two"}), "--jobs takes a whole number from -1024 to 1024, not 'two'",
                         corelab::UsageError);
    CHECK_THROWS_WITH_AS(parse(cli, {"--jobs", "-"}), doctest::Contains("not '-'"), corelab::UsageError);
    CHECK_THROWS_WITH_AS(parse(cli, {"--jobs", "1025"}), "--jobs must be at most 1024", corelab::UsageError);
    CHECK_THROWS_WITH_AS(parse(cli, {"--jobs", "-1025"}), "--jobs must be at least -1024", corelab::UsageError);
    CHECK_THROWS_WITH_AS(parse(cli, {"--jobs", "-99999999999999999999999"}), "--jobs must be at least -1024",
                         corelab::UsageError);
    CHECK_THROWS_WITH_AS(parse(cli, {"--batch-size", "0"}), "--batch-size must be at least 1", corelab::UsageError);
    CHECK_THROWS_WITH_AS(parse(cli, {"--batch-size", "x"}), "--batch-size takes auto or a whole number, not 'x'",
                         corelab::UsageError);
    CHECK_THROWS_WITH_AS(parse(cli, {"--backend", "gpu"}), "--backend takes processes or threads, not 'gpu'",
                         corelab::UsageError);
    CHECK_THROWS_AS(parse(cli, {"--keep", "1"}), corelab::UsageError);  // a switch takes no value
    // through run_lesson: exit 2 with the usage line, and the lesson never runs
    const char* bad[] = {"lesson06", "--backend", "gpu"};
    CHECK(corelab::run_lesson(3, bad, cli, [](const corelab::LessonOptions&) { FAIL("ran with --backend gpu"); }) == 2);
}

TEST_CASE("cli: a choice lists every word it takes") {
    corelab::Cli cli("lesson", "a test lesson");
    cli.choice("method", {"pread", "mmap", "split"}, "how to read");
    CHECK(parse(cli, {"--method", "split"})->word("method") == "split");
    CHECK_THROWS_WITH_AS(parse(cli, {"--method", "read"}), "--method takes pread, mmap or split, not 'read'",
                         corelab::UsageError);
}

TEST_CASE("cli: beside_program names a file in the running program's directory") {
    const auto exe = std::filesystem::read_symlink("/proc/self/exe");
    CHECK(corelab::beside_program("lesson05_cache") == exe.parent_path() / "lesson05_cache");
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
