#!/usr/bin/env bash
# ctest coursework.check: `./course check` on the hand-out copy, with the
# student's file (or the checker) replaced for each case and put back on
# every path. Injected, each checked for the verdict it must get:
#   03.1 std::exit(0) in the student's function       -> not yet, stopped before its checks finished
#   03.2 _exit(0) from a static initialiser           -> not yet, stopped before its checks finished
#   06.2 std::exit(0) in a task on the thread backend -> never done
#   03.2 std::exit(0) in a process worker's task      -> not yet, the worker named
#   06.2 std::exit(0) in a task on the process backend -> not yet, the task named
#   03.1 checker.cpp with an empty run_check()        -> not yet, the checker made no check
#   03.1 the solution with an unused variable         -> done (exit 0), its warning shown
#   03.1 a call to a function defined nowhere         -> does not build, the undefined reference shown
#   03.1 a syntax error                               -> does not build, the compiler's error shown
#   03.1 a function that never returns, --timeout 3   -> timed out, its process gone
# and usage errors (exit 2), --format csv and table, and hints one at a time.
# Usage: check.sh SRC WORK
set -euo pipefail
SRC="$1" WORK="$2"
. "$SRC/tests/coursework/lib.sh"
[[ -x "$HANDOUT/course" ]] || fail "no hand-out copy: coursework.handout makes it"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/coursework-check.XXXXXX")"
saved=()
restore() {
    local f
    for f in "${saved[@]}"; do cp -- "$tmp/saved/${f//\//_}" "$HANDOUT/$f"; done
    rm -rf -- "$tmp"
}
trap restore EXIT
mkdir -p "$tmp/saved"

ex31=exercises/03_two_process_mean/1_weighted_halves
ex32=exercises/03_two_process_mean/2_more_workers
ex62=exercises/06_parallel_for/2_map_with_errors
for f in $ex31/student.cpp $ex31/checker.cpp $ex32/student.cpp $ex62/student.cpp; do
    cp -- "$HANDOUT/$f" "$tmp/saved/${f//\//_}"
    saved+=("$f")
done

# put FILE's text (stdin) in place of the hand-out's FILE
put() { cat >"$HANDOUT/$1"; }
# the original of FILE back
put_back() { cp -- "$tmp/saved/${1//\//_}" "$HANDOUT/$1"; }

# check ID: runs ./course check ID --format json [more options], sets RC and
# RECORD ("ID<TAB>STATUS<TAB>MESSAGE")
check() {
    local id="$1"
    shift
    RC=0
    (cd "$HANDOUT" && ./course check "$id" --format json "$@" >"$tmp/out.json" 2>"$tmp/err") || RC=$?
    RECORD="$(facts check-json "$tmp/out.json")" || { cat "$tmp/err"; fail "check $id wrote no valid JSON"; }
    echo "$RECORD"
}

expect() {  # expect STATUS MESSAGE-PART
    local status message
    IFS=$'\t' read -r _ status message <<<"$RECORD"
    [[ "$status" == "$1" ]] || fail "expected '$1', got '$status': $message"
    [[ "$message" == *"$2"* ]] || fail "expected a message with '$2', got: $message"
    if [[ "$1" == "done" ]]; then [[ $RC -eq 0 ]] || fail "done, but exit status $RC"; else [[ $RC -eq 1 ]] || fail "exit status $RC, not 1"; fi
}

note "03.1: std::exit(0) in the student's function"
put $ex31/student.cpp <<'CPP'
#include <cstdlib>

#include "exercise.hpp"

double two_process_mean(std::span<const double>, std::size_t) {
    std::exit(0);  // ends the checker with status 0 before any check
}
CPP
check 03.1
expect "not yet" "stopped before its checks finished (exit status 0)"

note "03.2: _exit(0) from a static initialiser in student.cpp"
put $ex32/student.cpp <<'CPP'
#include <unistd.h>

#include "exercise.hpp"

namespace {
[[maybe_unused]] const int quit = (::_exit(0), 0);  // runs before main
}

std::vector<corelab::Partial> process_sums(std::span<const double>, unsigned) {
    return {};
}
CPP
check 03.2
expect "not yet" "stopped before its checks finished (exit status 0)"

note "06.2: std::exit(0) in a task on the thread backend"
exit_in_task() {  # exit_in_task BACKEND CONDITION
    cat <<CPP
#include <cmath>
#include <corelab/parallel.hpp>
#include <cstdlib>

#include "exercise.hpp"

std::vector<double> parallel_sqrt(std::span<const std::size_t> xs, int n_jobs, corelab::Backend b) {
    corelab::Parallel par({.n_jobs = n_jobs, .backend = b});
    return par.map(
        [b](std::size_t x) {
            if (b == corelab::Backend::$1 && $2) std::exit(0);
            return std::sqrt(static_cast<double>(x));
        },
        xs);
}

std::optional<std::size_t> failing_task(const std::vector<std::function<double()>>& tasks, int n_jobs,
                                        corelab::Backend b) {
    corelab::Parallel par({.n_jobs = n_jobs, .backend = b});
    try {
        par.map([&tasks](std::size_t i) { return tasks[i](); }, corelab::range(tasks.size()));
    } catch (const corelab::TaskError& e) {
        return e.task();
    }
    return std::nullopt;
}
CPP
}
exit_in_task threads true | put $ex62/student.cpp
check 06.2 --timeout 60
IFS=$'\t' read -r _ status message <<<"$RECORD"
[[ "$status" != "done" && $RC -eq 1 ]] || fail "an exit in a thread task reads as '$status'"
[[ "$status" != "not yet" || "$message" == *"stopped before its checks finished"* ]] || fail "message: $message"

note "06.2: std::exit(0) in a task on the process backend"
exit_in_task processes "x == 7919" | put $ex62/student.cpp
check 06.2
expect "not yet" "exited with status 0 while running task 1"
put_back $ex62/student.cpp

note "03.2: std::exit(0) in a process worker's task"
put $ex32/student.cpp <<'CPP'
#include <corelab/process_workers.hpp>
#include <cstdlib>

#include "exercise.hpp"

std::vector<corelab::Partial> process_sums(std::span<const double> data, unsigned workers) {
    corelab::ProcessWorkers processes(workers);
    return processes.run([&](unsigned k) {
        if (k == 1) std::exit(0);  // the child ends before it sends its result
        return corelab::sum_loop(corelab::chunk(data, k, workers));
    });
}
CPP
check 03.2
expect "not yet" "worker 1"
put_back $ex32/student.cpp

note "03.1: checker.cpp with an empty run_check()"
printf '#include "check.hpp"\n\nvoid run_check() {}\n' | put $ex31/checker.cpp
put_back $ex31/student.cpp
check 03.1
expect "not yet" "the checker made no check"
put_back $ex31/checker.cpp

note "03.1: the solution, with an unused variable"
sed 's|^    // Each mean stands|    int unused = 0;\n&|' "$SRC/exercises/solutions/03_two_process_mean/1_weighted_halves/student.cpp" |
    put $ex31/student.cpp
grep -q 'int unused' "$HANDOUT/$ex31/student.cpp" || fail "the test's edit of the solution did not apply"
check 03.1
expect "done" ""
has_text "$(cat "$tmp/out.json")" '"warnings": 1'
RC=0
(cd "$HANDOUT" && ./course check 3.1 2>/dev/null >"$tmp/table") || RC=$?
[[ $RC -eq 0 ]] || fail "the table check exited $RC"
has_text "$(cat "$tmp/table")" "warning: student.cpp:"
has_text "$(cat "$tmp/table")" "unused variable"
has_text "$(cat "$tmp/table")" "1 of 1 exercises done"
(cd "$HANDOUT" && ./course check 03.1 --format csv 2>/dev/null >"$tmp/out.csv")
has_line "$(facts check-csv "$tmp/out.csv")" "03.1	done	"

note "03.1: a call to a function defined nowhere (a link error)"
put $ex31/student.cpp <<'CPP'
#include "exercise.hpp"

double weighted(double m0, double n0, double m1, double n1);  // declared, never defined

double two_process_mean(std::span<const double> data, std::size_t split) {
    return weighted(data[0], static_cast<double>(split), data[split], static_cast<double>(data.size() - split));
}
CPP
check 03.1
expect "does not build" "undefined reference to"
has_text "$RECORD" "weighted(double, double, double, double)"

note "03.1: a syntax error"
printf '#include "exercise.hpp"\n\ndouble two_process_mean(std::span<const double> data, std::size_t) {\n    return data[0]\n}\n' |
    put $ex31/student.cpp
check 03.1
expect "does not build" "student.cpp:4"
has_text "$RECORD" "error:"

note "03.1: a function that never returns, --timeout 3"
put $ex31/student.cpp <<'CPP'
#include <chrono>
#include <thread>

#include "exercise.hpp"

double two_process_mean(std::span<const double>, std::size_t) {
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}
CPP
check 03.1 --timeout 3
expect "timed out" "did not finish in 3 s"
[[ -z "$(processes_under "$HANDOUT/build")" ]] || fail "a checker still runs: $(processes_under "$HANDOUT/build")"
put_back $ex31/student.cpp

note "usage errors exit 2"
for args in "--format xml" "9.9" "abc" "--timeout 0" "--bogus"; do
    RC=0
    # shellcheck disable=SC2086  # the words are the arguments
    (cd "$HANDOUT" && ./course check $args >/dev/null 2>&1) || RC=$?
    [[ $RC -eq 2 ]] || fail "./course check $args exited $RC, not 2"
done

note "hints one at a time, remembered in build/hints"
rm -rf -- "$HANDOUT/build/hints"
out="$(cd "$HANDOUT" && ./course hint 3.2)"
has_text "$out" "Hint 1 of 3 for exercise 03.2"
has_text "$out" "*Concept.*"
[[ "$out" != *"Nearly the answer"* ]] || fail "the first hint gives away the third"
out="$(cd "$HANDOUT" && ./course hint 03.2)"
has_text "$out" "Hint 2 of 3"
out="$(cd "$HANDOUT" && ./course hint 03.2)"
has_text "$out" "Hint 3 of 3"
has_text "$out" "Nearly the answer"
out="$(cd "$HANDOUT" && ./course hint 03.2)"
has_text "$out" "All 3 hints of exercise 03.2 are shown"
out="$(cd "$HANDOUT" && ./course hint 03.2 --all)"
has_text "$out" "*Concept.*"
has_text "$out" "*Nearly the answer.*"
! grep -q 'Nearly the answer' "$HANDOUT"/exercises/*/*/README.md || fail "a README still holds a hint"
RC=0
(cd "$HANDOUT" && ./course hint 99.1 >/dev/null 2>&1) || RC=$?
[[ $RC -eq 2 ]] || fail "./course hint 99.1 exited $RC, not 2"
rm -rf -- "$HANDOUT/build/hints"
echo "all cases gave the verdict they must"
