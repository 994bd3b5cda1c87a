# shellcheck shell=bash
# tests/coursework/lib.sh — what the coursework tests share (sourced).
# Each test gets SRC (this source tree) and WORK (its build folder); the
# hand-out copy that coursework.handout builds is $WORK/handout.

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

skip() {
    printf 'SKIP: %s\n' "$*"
    exit 77
}

note() { printf '== %s\n' "$*"; }

# As root, ./course grade runs each submission as a user of its own, which must
# be able to read the hand-out copy by its absolute path: a clone under a folder
# only root may enter (/root, a 0700 home) cannot be graded that way, and
# ./course grade says so. Skips there, with the reason.
needs_tree_others_can_read() {
    [[ "$(id -u)" -eq 0 ]] || return 0
    setpriv --reuid=65534 --regid=65534 --clear-groups test -r "$HANDOUT/course" 2>/dev/null ||
        skip "other users cannot read $HANDOUT (a folder above it is closed to them): ./course grade runs each submission as a user of its own; clone the course where all can read"
}

# Parses JSON or CSV with python3's own modules and prints what the tests
# compare, one fact a line (json_facts.py says which).
facts() {
    python3 "$SRC/tests/coursework/json_facts.py" "$@"
}

# Asserts that the text $1 holds the line $2 exactly.
has_line() {
    grep -qxF -- "$2" <<<"$1" || fail "expected the line '$2' in:"$'\n'"$1"
}

# Asserts that the text $1 holds $2 somewhere.
has_text() {
    grep -qF -- "$2" <<<"$1" || fail "expected '$2' in:"$'\n'"$1"
}

# The processes (pids) whose program lies under folder $1.
processes_under() {
    local p exe
    for p in /proc/[0-9]*; do
        exe="$(readlink "$p/exe" 2>/dev/null)" || continue
        [[ "$exe" == "$1"/* ]] && echo "${p#/proc/}"
    done
    return 0
}

command -v python3 >/dev/null || skip "python3 is missing (the tests parse JSON and CSV with it)"
# shellcheck disable=SC2034  # used by the tests that source this file
HANDOUT="$WORK/handout"
