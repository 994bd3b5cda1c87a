#!/usr/bin/env bash
# ctest coursework.grade: `./course grade` on the hand-out copy's checkers,
# over prepared submissions, two at a time:
#   solutions     a folder: every reference solution and a notes file      -> all done; notes ignored
#   starters.zip  the hand-out's unsolved files, zipped                     -> all not yet
#   cheater.tar.gz  03.1's starter with an edited checker.cpp, exercise.hpp,
#                 CMakeLists.txt and lib/src/reduce.cpp that would pass it  -> 03.1 not yet (the
#                 pristine checker), the edits listed as ignored
#   hanger        03.1 waits forever, 03.2 forks without end                -> both timed out
#   hog           02.1 allocates without end                                -> not yet, std::bad_alloc
#   vandal        01.1 truncates the library, writes in /dev/shm and /tmp,
#                 and leaves a process running                              -> the library intact,
#                 the other submissions unchanged, nothing of it left
#   evil.tar.gz   a member ../../etc/x                                      -> refused, nothing written
#   links.tar     a member that is a symbolic link                          -> refused
# grades.csv and every results.json are parsed (Gradescope's fields) and
# compared with what each submission must get; 03.1 is worth 2 points.
# Usage: grade.sh SRC WORK
set -euo pipefail
SRC="$1" WORK="$2"
. "$SRC/tests/coursework/lib.sh"
needs_tree_others_can_read
[[ -x "$HANDOUT/course" ]] || fail "no hand-out copy: coursework.handout makes it"
[[ -d "$SRC/exercises/solutions" ]] || skip "no solutions in this tree"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/coursework-grade.XXXXXX")"
trap 'rm -rf -- "$tmp"' EXIT
subs="$tmp/submissions"
mkdir -p "$subs"
# the exercises graded here: those built (08.1 only where MPI is)
ids="$(cd "$HANDOUT" && for d in exercises/[0-9][0-9]_*/[0-9]*_*/; do
    d="${d%/}" l="${d%/*}"
    id="$(cut -c1-2 <<<"${l##*/}").${d##*/}"
    id="${id%%_*}"
    ninja -C build/release -t query "ex_${id/./_}_starter" >/dev/null 2>&1 && echo "$id"
done)"
lib="$HANDOUT/build/release/libcorelab.a"
[[ -f "$lib" ]] || fail "the hand-out is not built"
lib_sum="$(md5sum <"$lib")"

note "preparing the submissions"
mkdir -p "$subs/solutions/exercises"
cp -r "$SRC/exercises/solutions/." "$subs/solutions/exercises/"
echo "my notes" >"$subs/solutions/notes.txt"
python3 - "$HANDOUT" "$subs/starters.zip" <<'PY'
import glob, os, sys, zipfile
os.chdir(sys.argv[1])
with zipfile.ZipFile(sys.argv[2], "w") as z:
    for f in sorted(glob.glob("exercises/*/*/student.cpp")):
        z.write(f)
PY

c="$tmp/cheater/corelab/exercises/03_two_process_mean/1_weighted_halves"
mkdir -p "$c" "$tmp/cheater/corelab/lib/src"
cp "$HANDOUT/exercises/03_two_process_mean/1_weighted_halves/student.cpp" "$c/"
printf '#include "check.hpp"\n\nvoid run_check() { check::expect(true, ""); }\n' >"$c/checker.cpp"
printf '#pragma once\n#include <cstddef>\n#include <span>\ndouble two_process_mean(std::span<const double>, std::size_t);\n' >"$c/exercise.hpp"
echo "# nothing to build" >"$tmp/cheater/corelab/CMakeLists.txt"
echo "// a library that agrees with everything" >"$tmp/cheater/corelab/lib/src/reduce.cpp"
tar -czf "$subs/cheater.tar.gz" -C "$tmp/cheater" corelab

mkdir -p "$subs/hanger/exercises/03_two_process_mean/"{1_weighted_halves,2_more_workers}
cat >"$subs/hanger/exercises/03_two_process_mean/1_weighted_halves/student.cpp" <<'CPP'
#include <chrono>
#include <thread>

#include "exercise.hpp"

double two_process_mean(std::span<const double>, std::size_t) {
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}
CPP
cat >"$subs/hanger/exercises/03_two_process_mean/2_more_workers/student.cpp" <<'CPP'
#include <unistd.h>

#include "exercise.hpp"

std::vector<corelab::Partial> process_sums(std::span<const double>, unsigned) {
    for (;;) ::fork();  // the process limit stops it; the time limit ends it
}
CPP

mkdir -p "$subs/hog/exercises/02_serial_mean/1_four_accumulators"
cat >"$subs/hog/exercises/02_serial_mean/1_four_accumulators/student.cpp" <<'CPP'
#include <vector>

#include "exercise.hpp"

corelab::Partial sum_four(std::span<const double>) {
    std::vector<std::vector<char>> hoard;
    for (;;) hoard.emplace_back(1 << 20, 'x');  // until the address space limit
}
CPP

mkdir -p "$subs/vandal/exercises/01_lscpu/1_count_cores"
cat >"$subs/vandal/exercises/01_lscpu/1_count_cores/student.cpp" <<CPP
#include <fcntl.h>
#include <unistd.h>

#include <fstream>

#include "exercise.hpp"

unsigned count_physical_cores(const std::filesystem::path&) {
    ::truncate("$lib", 0);                          // the checkers' library
    std::ofstream("/dev/shm/corelab.vandal") << 1;  // a shared-memory object
    std::ofstream("/tmp/corelab.vandal") << 1;      // a temporary file
    if (::fork() == 0) {                            // a process that stays
        ::setsid();
        ::execl("/bin/sleep", "sleep", "1000", nullptr);
        ::_exit(1);
    }
    return 4;
}
CPP

python3 - "$subs" <<'PY'
import io, sys, tarfile
subs = sys.argv[1]
def member(t, name, data=b"", kind=tarfile.REGTYPE, target=""):
    i = tarfile.TarInfo(name)
    i.type, i.linkname, i.size = kind, target, len(data)
    t.addfile(i, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
with tarfile.open(subs + "/evil.tar.gz", "w:gz") as t:
    member(t, "exercises/03_two_process_mean/1_weighted_halves/student.cpp", b"int x;\n")
    member(t, "../../etc/x", b"written outside\n")
with tarfile.open(subs + "/links.tar", "w") as t:
    member(t, "exercises/01_lscpu/1_count_cores/student.cpp", kind=tarfile.SYMTYPE, target="/etc/passwd")
PY
printf '# weights\n03.1 2\n' >"$tmp/points"

note "./course grade, 2 at a time"
RC=0
(cd "$HANDOUT" && exec ./course grade "$subs"/* --out "$tmp/out" --timeout 20 --jobs 2 --memory 768 --points "$tmp/points") &
grader=$!
wait "$grader" || RC=$?
[[ $RC -eq 0 ]] || fail "./course grade exited $RC"
# the users of this run (GRADE_UID_BASE in tools/coursework.bash): other runs' users are not ours to count
uid_lo=$((2000000000 + (grader % 4194304) * 512)) uid_hi=$((2000000000 + (grader % 4194304) * 512 + 512))

note "grades.csv"
grades="$(facts grades "$tmp/out/grades.csv")"
echo "$grades" | grep -v 'not submitted' || true
n="$(wc -l <<<"$ids")"
[[ "$(wc -l <<<"$grades")" -eq $((8 * n)) ]] || fail "grades.csv has $(wc -l <<<"$grades") rows, not $((8 * n))"
expect_rows() {  # expect_rows SUBMISSION STATUS [IDS]: each of IDS (default all) has STATUS
    local sub="$1" status="$2" id want
    for id in ${3:-$ids}; do
        want=1
        [[ "$id" == 03.1 ]] && want=2
        grep -qP "^$sub\t$id\t$status\t" <<<"$grades" || fail "$sub $id is not '$status': $(grep -P "^$sub\t$id\t" <<<"$grades")"
        if [[ "$status" == "done" ]]; then
            grep -qP "^$sub\t$id\t$status\t$want/$want\t" <<<"$grades" || fail "$sub $id: points"
        else
            grep -qP "^$sub\t$id\t$status\t0/$want\t" <<<"$grades" || fail "$sub $id: points"
        fi
    done
}
others() { grep -vxF -f <(tr ' ' '\n' <<<"$1") <<<"$ids"; }
expect_rows solutions "done"
expect_rows starters "not yet"
expect_rows cheater "not yet" 03.1
expect_rows cheater "not submitted" "$(others 03.1)"
expect_rows hanger "timed out" "03.1 03.2"
expect_rows hog "not yet" 02.1
grep -qP '^hog\t02.1\tnot yet\t0/1\tyour code threw: std::bad_alloc$' <<<"$grades" || fail "hog: not bad_alloc"
expect_rows evil refused
grep -qP '^evil\t03.1\trefused\t0/2\tthe archive has a member outside its own folder: ../../etc/x$' <<<"$grades" ||
    fail "evil: why it was refused"
expect_rows links refused
grep -qP '^links\t01.1\trefused\t.*not a file or a folder' <<<"$grades" || fail "links: why it was refused"
grep -qP '^vandal\t01.1\t(done|not yet)\t' <<<"$grades" || fail "vandal: $(grep -P '^vandal\t01.1' <<<"$grades")"

note "what was ignored"
has_line "$(cat "$tmp/out/solutions/ignored.txt")" "notes.txt"
ignored="$(cat "$tmp/out/cheater/ignored.txt")"
for f in checker.cpp exercise.hpp; do has_line "$ignored" "corelab/exercises/03_two_process_mean/1_weighted_halves/$f"; done
has_line "$ignored" "corelab/CMakeLists.txt"
has_line "$ignored" "corelab/lib/src/reduce.cpp"

note "results.json (Gradescope's format)"
for s in solutions starters cheater hanger hog vandal evil links; do
    r="$(facts gradescope "$tmp/out/$s/results.json")" || fail "$s/results.json"
    [[ "$(grep -c $'\t' <<<"$r")" -eq "$n" ]] || fail "$s/results.json has not one test per exercise"
done
max=$((n + 1))
has_line "$(facts gradescope "$tmp/out/solutions/results.json")" "total $max/$max"
has_line "$(facts gradescope "$tmp/out/solutions/results.json")" "03.1	passed	2/2"
has_line "$(facts gradescope "$tmp/out/starters/results.json")" "total 0/$max"
has_line "$(facts gradescope "$tmp/out/cheater/results.json")" "03.1	failed	0/2"
has_line "$(facts gradescope "$tmp/out/evil/results.json")" "total 0/$max"

note "nothing of the submissions left, nothing outside written"
[[ "$(md5sum <"$lib")" == "$lib_sum" ]] || fail "a submission changed the checkers' library"
[[ ! -e "$tmp/etc/x" && ! -e "$subs/../../etc/x" && ! -e /etc/x ]] || fail "the evil archive wrote outside its folder"
[[ ! -e /dev/shm/corelab.vandal && ! -e /tmp/corelab.vandal ]] || fail "the vandal's files are left"
if [[ "$(id -u)" -eq 0 ]]; then
    left="$(ps -eo uid=,pid=,args= | awk -v lo="$uid_lo" -v hi="$uid_hi" '$1 >= lo && $1 < hi')"
    [[ -z "$left" ]] || fail "processes of the submissions' users still run: $left"
    left="$(find /tmp /var/tmp /dev/shm -xdev -uid +$((uid_lo - 1)) -uid -"$uid_hi" 2>/dev/null | head)"
    [[ -z "$left" ]] || fail "files of the submissions' users are left: $left"
fi
[[ -z "$(ls -d "$HANDOUT"/build/grade.* 2>/dev/null)" ]] || fail "the grading work folder is left"
[[ -z "$(processes_under "$tmp")" ]] || fail "a checker still runs"
echo "every submission got the grades it must"
