#!/usr/bin/env bash
# ctest coursework.fallbacks: `./course grade` in each way it keeps the
# submissions apart, and where it cannot: each submission gets its rows, or
# the grading stops with an error that says why; never fewer rows in silence.
#   CORELAB_GRADE_ISOLATION=user  (root without namespaces: a chroot, most
#                                 containers)                     -> every row
#   CORELAB_GRADE_ISOLATION=none  (what runs when not root)       -> every row
#   no unshare on PATH            (chosen by itself)              -> user, every row
#   no prlimit on PATH                                            -> exit 1, names prlimit
#   the course in a folder other users cannot enter (0700)        -> exit 1, says so
#   a submission's grading job killed while its checker runs      -> exit 1, names it;
#                                                                    the others' rows
# over these submissions:
#   solved    the solutions of 02.1 and 03.1                      -> done
#   oom       01.1 whose compile runs out of memory (the compiler
#             writes nothing about student.cpp)                   -> does not build, why
#   pipe.tar  a FIFO, not an archive                              -> refused, nothing blocks
# Usage: fallbacks.sh SRC WORK
set -euo pipefail
SRC="$1" WORK="$2"
. "$SRC/tests/coursework/lib.sh"
needs_tree_others_can_read
[[ -x "$HANDOUT/course" ]] || fail "no hand-out copy: coursework.handout makes it"
[[ -d "$SRC/exercises/solutions" ]] || skip "no solutions in this tree"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/coursework-fallbacks.XXXXXX")"
closed=""
trap '[[ -n "$closed" ]] && chmod "$closed" "$WORK"; rm -rf -- "$tmp"' EXIT
subs="$tmp/submissions"
root=0
[[ "$(id -u)" -eq 0 ]] && root=1

note "preparing the submissions"
for e in 02_serial_mean/1_four_accumulators 03_two_process_mean/1_weighted_halves; do
    mkdir -p "$subs/solved/exercises/$e"
    cp "$SRC/exercises/solutions/$e/student.cpp" "$subs/solved/exercises/$e/"
done
mkdir -p "$subs/oom/exercises/01_lscpu/1_count_cores"
cat >"$subs/oom/exercises/01_lscpu/1_count_cores/student.cpp" <<'CPP'
#include "exercise.hpp"

unsigned count_physical_cores(const std::filesystem::path&) {
    static const char bytes[] = {
#include "/dev/zero"  // without end: the compiler runs out of memory
    };
    return bytes[0];
}
CPP
mkfifo "$subs/pipe.tar"
n_ex="$(grep -c . <<<"$(cd "$HANDOUT" && for d in exercises/[0-9][0-9]_*/[0-9]*_*/; do
    d="${d%/}" l="${d%/*}"
    id="$(cut -c1-2 <<<"${l##*/}").${d##*/}"
    id="${id%%_*}"
    ninja -C build/release -t query "ex_${id/./_}_starter" >/dev/null 2>&1 && echo "$id"
done)")"

# grade_with LABEL [ENV=VALUE...]: grades the three submissions; sets RC,
# GRADES (facts of grades.csv) and ERR (its standard error).
grade_with() {
    local label="$1"
    shift
    rm -rf -- "$tmp/out"
    RC=0
    (cd "$HANDOUT" && env "$@" ./course grade "$subs"/* --out "$tmp/out" --timeout 20 --jobs 2 \
        >"$tmp/$label.out" 2>"$tmp/$label.err") || RC=$?
    ERR="$(cat "$tmp/$label.err")"
    GRADES=""
    [[ -f "$tmp/out/grades.csv" ]] && GRADES="$(facts grades "$tmp/out/grades.csv")"
    return 0
}

# expect_every_row LABEL: the grading of grade_with ended well, with every row.
expect_every_row() {
    [[ $RC -eq 0 ]] || fail "$1: ./course grade exited $RC:"$'\n'"$ERR"
    [[ "$(grep -c . <<<"$GRADES")" -eq $((3 * n_ex)) ]] ||
        fail "$1: grades.csv has $(grep -c . <<<"$GRADES") rows, not $((3 * n_ex)):"$'\n'"$GRADES"$'\n'"$ERR"
    grep -qP '^solved\t02.1\tdone\t1/1\t' <<<"$GRADES" || fail "$1: solved 02.1 is not done:"$'\n'"$GRADES"
    grep -qP '^solved\t03.1\tdone\t1/1\t' <<<"$GRADES" || fail "$1: solved 03.1 is not done:"$'\n'"$GRADES"
    grep -qP '^oom\t01.1\tdoes not build\t0/1\t.*out of memory' <<<"$GRADES" ||
        fail "$1: oom 01.1: $(grep -P '^oom\t01.1\t' <<<"$GRADES")"
    grep -qP '^pipe\t01.1\trefused\t0/1\tnot a folder, nor a file' <<<"$GRADES" ||
        fail "$1: pipe 01.1: $(grep -P '^pipe\t01.1\t' <<<"$GRADES")"
    [[ -z "$(processes_under "$HANDOUT/build")" ]] || fail "$1: a checker still runs"
    [[ -z "$(ls -d "$HANDOUT"/build/grade.* 2>/dev/null)" ]] || fail "$1: the grading work folder is left"
}

if [[ $root -eq 1 ]]; then
    note "isolation 'user': a user of its own, no namespaces"
    grade_with user CORELAB_GRADE_ISOLATION=user
    has_text "$ERR" "each submission runs as a user of its own (no namespaces here"
    expect_every_row user
fi

note "isolation 'none': limits only"
grade_with none CORELAB_GRADE_ISOLATION=none
has_text "$ERR" "with limits only"
expect_every_row none

# PATH without TOOL: every program of PATH's folders but TOOL, by symbolic links.
path_without() {
    local dir="$tmp/path-without-$1" p f
    mkdir -p "$dir"
    IFS=: read -r -a p <<<"$PATH"
    for d in "${p[@]}"; do
        for f in "$d"/*; do
            [[ -x "$f" && "${f##*/}" != "$1" && ! -e "$dir/${f##*/}" ]] && ln -s "$f" "$dir/${f##*/}"
        done
    done
    echo "$dir"
}

if [[ $root -eq 1 ]]; then
    note "no unshare: grading picks isolation 'user' by itself"
    grade_with no-unshare PATH="$(path_without unshare)"
    has_text "$ERR" "each submission runs as a user of its own (no namespaces here"
    expect_every_row no-unshare
fi

note "no prlimit: a clear error, no grades"
grade_with no-prlimit PATH="$(path_without prlimit)"
[[ $RC -eq 1 ]] || fail "without prlimit ./course grade exited $RC, not 1:"$'\n'"$ERR"
has_text "$ERR" "prlimit, which is not installed"
[[ ! -e "$tmp/out/grades.csv" ]] || fail "without prlimit grades.csv was written"

if [[ $root -eq 1 ]]; then
    note "the course in a folder other users cannot enter"
    closed="$(stat -c %a "$WORK")"
    chmod 700 "$WORK"
    for mode in user namespaces; do
        [[ $mode == namespaces ]] && ! unshare --net --mount --pid --fork true 2>/dev/null && continue
        grade_with "closed-$mode" CORELAB_GRADE_ISOLATION=$mode
        [[ $RC -eq 1 ]] || fail "closed, $mode: ./course grade exited $RC, not 1:"$'\n'"$ERR"
        has_text "$ERR" "other users cannot read $HANDOUT/build/release"
        [[ ! -e "$tmp/out/grades.csv" ]] || fail "closed, $mode: grades.csv was written"
    done
    chmod "$closed" "$WORK"
    closed=""
fi

note "a grading job killed while its checker runs"
mkdir -p "$subs/hanger/exercises/03_two_process_mean/1_weighted_halves"
cat >"$subs/hanger/exercises/03_two_process_mean/1_weighted_halves/student.cpp" <<'CPP'
#include <chrono>
#include <thread>

#include "exercise.hpp"

double two_process_mean(std::span<const double>, std::size_t) {
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}
CPP
rm -rf -- "$subs/oom" "$subs/pipe.tar" "$tmp/out"
RC=0
(cd "$HANDOUT" && exec ./course grade "$subs"/* --out "$tmp/out" --timeout 60 --jobs 2 >"$tmp/killed.out" 2>"$tmp/killed.err") &
grader=$!
# the hanger is the first submission (job 0): its checker's timeout is a child of its job
job=""
for ((k = 0; k < 600; k++)); do
    [[ -z "$job" ]] || break
    job="$(ps -ww -eo ppid=,args= | awk '$2 == "timeout" && / 60 / && /\/build\/grade\.[0-9]+\/0\/03\.1\/checker/ { print $1; exit }')"
    [[ -n "$job" ]] || sleep 0.1
done
[[ -n "$job" ]] || { kill -TERM "$grader"; wait "$grader" || true; fail "the hanger's checker never started"; }
kill -KILL "$job"
wait "$grader" || RC=$?
ERR="$(cat "$tmp/killed.err")"
[[ $RC -eq 1 ]] || fail "a killed job: ./course grade exited $RC, not 1:"$'\n'"$ERR"
has_text "$ERR" "course: hanger ($subs/hanger) was not graded: its grading ended before it finished"
has_text "$ERR" "1 of 2 submission(s) not graded"
GRADES="$(facts grades "$tmp/out/grades.csv")"
[[ "$(grep -c . <<<"$GRADES")" -eq "$n_ex" ]] || fail "a killed job: grades.csv has not only solved's rows:"$'\n'"$GRADES"
grep -qP '^solved\t03.1\tdone\t' <<<"$GRADES" || fail "a killed job: solved 03.1 is not done"
for ((k = 0; k < 700; k++)); do  # its user's processes are stopped (not root: its timeout ends them)
    [[ -z "$(processes_under "$HANDOUT/build")" ]] && break
    sleep 0.1
done
[[ -z "$(processes_under "$HANDOUT/build")" ]] || fail "a killed job: its checker still runs"
echo "every fallback gives every row or says why not"
