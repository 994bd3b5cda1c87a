#!/usr/bin/env bash
# ctest coursework.autograder: Gradescope's setup.sh and run_autograder
# against a fake /autograder tree (CORELAB_AUTOGRADER_ROOT), the hand-out
# copy as its source: a submission of two solved exercises gets a valid
# results.json with those two passed; a source whose ./course cannot run
# still gets a valid results.json (score 0) and exit status 1.
# Usage: autograder.sh SRC WORK
set -euo pipefail
SRC="$1" WORK="$2"
. "$SRC/tests/coursework/lib.sh"
needs_tree_others_can_read
[[ -x "$HANDOUT/course" ]] || fail "no hand-out copy: coursework.handout makes it"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/coursework-autograder.XXXXXX")"
trap 'rm -rf -- "$tmp"' EXIT
ag="$tmp/autograder"
mkdir -p "$ag/submission/exercises/02_serial_mean" "$ag/results"
for e in 1_four_accumulators 2_kahan_sum; do
    mkdir -p "$ag/submission/exercises/02_serial_mean/$e"
    cp "$SRC/exercises/solutions/02_serial_mean/$e/student.cpp" "$ag/submission/exercises/02_serial_mean/$e/"
done

note "setup.sh"
CORELAB_AUTOGRADER_SOURCE="$HANDOUT" bash "$HANDOUT/exercises/autograder/setup.sh" >"$tmp/setup.log" 2>&1 ||
    { cat "$tmp/setup.log"; fail "setup.sh failed"; }

note "run_autograder"
CORELAB_AUTOGRADER_ROOT="$ag" CORELAB_AUTOGRADER_SOURCE="$HANDOUT" bash "$HANDOUT/exercises/autograder/run_autograder" ||
    fail "run_autograder exited $?"
r="$(facts gradescope "$ag/results/results.json")"
echo "$r"
has_line "$r" "02.1	passed	1/1"
has_line "$r" "02.2	passed	1/1"
has_line "$r" "03.1	failed	0/1"
has_text "$r" "total 2/"

note "run_autograder whose course cannot run"
rm -f "$ag/results/results.json"
RC=0
CORELAB_AUTOGRADER_ROOT="$ag" CORELAB_AUTOGRADER_SOURCE="$tmp/nowhere" bash "$HANDOUT/exercises/autograder/run_autograder" \
    >/dev/null 2>&1 || RC=$?
[[ $RC -eq 1 ]] || fail "run_autograder exited $RC, not 1"
has_line "$(facts gradescope "$ag/results/results.json")" "total 0/-"
