#!/usr/bin/env bash
# ctest coursework.sanitize: `./course check --sanitize` builds the checker
# with ASan+UBSan (the dev preset, in the hand-out copy) and reports what they
# find. Injected in 02.1: a read one past the end of a heap array (the sum
# is still right, so only AddressSanitizer can tell), and a signed overflow
# (UndefinedBehaviorSanitizer). Without --sanitize the first reads as done.
# Usage: sanitize.sh SRC WORK
set -euo pipefail
SRC="$1" WORK="$2"
. "$SRC/tests/coursework/lib.sh"
[[ -x "$HANDOUT/course" ]] || fail "no hand-out copy: coursework.handout makes it"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/coursework-sanitize.XXXXXX")"
f="exercises/02_serial_mean/1_four_accumulators/student.cpp"
cp -- "$HANDOUT/$f" "$tmp/saved"
trap 'cp -- "$tmp/saved" "$HANDOUT/$f"; rm -rf -- "$tmp"' EXIT

# a right sum that reads one element past a copy of the data
cat >"$HANDOUT/$f" <<'CPP'
#include <algorithm>
#include <memory>

#include "exercise.hpp"

corelab::Partial sum_four(std::span<const double> data) {
    const std::size_t n = data.size();
    const auto copy = std::make_unique<double[]>(n + (n == 0));
    std::copy(data.begin(), data.end(), copy.get());
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    for (std::size_t i = 0; i < n; ++i) acc[i % 4] += copy[i];
    volatile double past = n > 0 ? copy[n] : 0.0;  // one past the end
    (void)past;
    return {(acc[0] + acc[1]) + (acc[2] + acc[3]), n};
}
CPP
note "without --sanitize: done (the bug is invisible)"
RC=0
(cd "$HANDOUT" && ./course check 02.1 --format json >"$tmp/out.json" 2>"$tmp/err") || RC=$?
r="$(facts check-json "$tmp/out.json")" || { cat "$tmp/err"; fail "no JSON"; }
echo "$r"
[[ "$r" == 02.1$'\t'done$'\t'* ]] || note "(the release build read past the end unnoticed, or not: $r)"

note "with --sanitize: AddressSanitizer's finding"
RC=0
(cd "$HANDOUT" && ./course check 02.1 --sanitize --format json >"$tmp/out.json" 2>"$tmp/err") || RC=$?
r="$(facts check-json "$tmp/out.json")" || { cat "$tmp/err"; fail "no JSON"; }
echo "$r"
[[ $RC -eq 1 ]] || fail "exit status $RC"
has_text "$r" "02.1	crashed	AddressSanitizer: heap-buffer-overflow"
has_text "$r" "student.cpp"

note "with --sanitize: UndefinedBehaviorSanitizer's finding"
cat >"$HANDOUT/$f" <<'CPP'
#include <climits>

#include "exercise.hpp"

corelab::Partial sum_four(std::span<const double> data) {
    volatile int big = INT_MAX;
    const int over = big + static_cast<int>(data.size() > 0);  // signed overflow
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    for (std::size_t i = 0; i < data.size(); ++i) acc[i % 4] += data[i];
    return {(acc[0] + acc[1]) + (acc[2] + acc[3]) + (over == 0 ? 1.0 : 0.0), data.size()};
}
CPP
RC=0
(cd "$HANDOUT" && ./course check 02.1 --sanitize --format json >"$tmp/out.json" 2>"$tmp/err") || RC=$?
r="$(facts check-json "$tmp/out.json")" || { cat "$tmp/err"; fail "no JSON"; }
echo "$r"
[[ $RC -eq 1 ]] || fail "exit status $RC"
has_text "$r" "02.1	crashed	"
has_text "$r" "runtime error: signed integer overflow"
