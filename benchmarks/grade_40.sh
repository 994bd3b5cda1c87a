#!/usr/bin/env bash
# benchmarks/grade_40.sh — how long `./course grade` takes for a class: N
# submissions (default 40), each holding every exercise's reference solution
# (each file made distinct by a comment, as 40 students' files are), graded
# after the first build. Prints the wall time, the time per submission, the
# CPU time and the machine's load while it ran: on a shared machine the load
# says how much of the wall time was ours. Not a test: it takes minutes.
# Usage: benchmarks/grade_40.sh [N] [--jobs J]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n=40 jobs=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --jobs) jobs=(--jobs "$2"); shift 2 ;;
        *) n="$1"; shift ;;
    esac
done
[[ -d "$root/exercises/solutions" ]] || { echo "grade_40: needs exercises/solutions" >&2; exit 1; }
tmp="$(mktemp -d "${TMPDIR:-/tmp}/grade_40.XXXXXX")"
trap 'rm -rf -- "$tmp"' EXIT

echo "== the first build (./course check --prepare)"
"$root/course" check --prepare >/dev/null

echo "== $n submissions"
for ((i = 1; i <= n; i++)); do
    s="$tmp/submissions/student$(printf '%02d' "$i")/exercises"
    mkdir -p "$s"
    cp -r "$root/exercises/solutions/." "$s/"
    for f in "$s"/*/*/student.cpp; do printf '// submitted by student %d\n' "$i" >>"$f"; done
done

echo "== ./course grade (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
start="$(date +%s.%N)"
ticks_before="$(awk '{ print $16 + $17 }' /proc/$$/stat)"
"$root/course" grade "$tmp"/submissions/* --out "$tmp/out" "${jobs[@]}" | tail -n 3
end="$(date +%s.%N)"
# this shell's children's CPU (user + system, clock ticks): the grading, all of it
ticks="$(($(awk '{ print $16 + $17 }' /proc/$$/stat) - ticks_before))"
load="$(cut -d' ' -f1-3 /proc/loadavg)"
done_rows="$(grep -c ',done,' "$tmp/out/grades.csv" || true)"
all_rows="$(($(wc -l <"$tmp/out/grades.csv") - 1))"
awk -v s="$start" -v e="$end" -v n="$n" -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v l="$load" -v d="$done_rows" -v a="$all_rows" \
    -v cores="$(nproc)" 'BEGIN {
    wall = e - s; cpu = t / hz
    printf "\n%d submissions graded in %.0f s (%.1f min): %.1f s per submission, %d of %d exercises done\n", n, wall, wall / 60, wall / n, d, a
    printf "CPU time %.0f s (%.1f s per submission); on %d otherwise idle cores that is at least %.0f s\n", cpu, cpu / n, cores, cpu / cores
    printf "load average after: %s\n", l
}'
[[ "$done_rows" -eq "$all_rows" ]] || { echo "grade_40: not every solution was graded done" >&2; exit 1; }
