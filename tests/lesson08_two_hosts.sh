#!/usr/bin/env bash
# Lesson 08 on two hosts that are network namespaces of this machine, joined
# by a veth pair (10.200.0.1 and .2), each with a hostname of its own; mpirun
# starts its daemon on the second through tools/netns-ssh, a stand-in for ssh.
# Through `./course lesson 8 --hostfile` it checks:
#   - the mean equals that of two ranks on one machine, bit for bit, and the
#     two ranks report different hosts;
#   - a remote rank killed with SIGKILL ends the run within 10 s;
#   - the link taken down mid-run ends the run within 60 s;
# and after each, that nothing of the run is left on either host: no process
# in either namespace, no Open MPI file in /dev/shm or /tmp. As root only;
# exit 77 (skipped) where network namespaces cannot be made.
#
# usage: lesson08_two_hosts.sh BUILD_DIR   (the directory of lesson08_mpi_mean)
set -euo pipefail

build="${1:?usage: lesson08_two_hosts.sh BUILD_DIR}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
script="${BASH_SOURCE[0]##*/}"
n=2000000  # the comparison runs; the long runs (to kill or cut) take 20,000,000

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAILED: $*" >&2; exit 1; }
[[ "$(id -u)" -eq 0 ]] || skip "needs root: it makes network namespaces (ip netns add)"
for tool in ip unshare setsid mpirun; do
    command -v "$tool" >/dev/null || skip "$tool is missing"
done
[[ -x "$build/lesson08_mpi_mean" ]] || fail "no $build/lesson08_mpi_mean"

# Names of this run: its namespaces, which are also its hosts' hostnames, so
# that Open MPI's files of this run (named after the host) are told apart
# from those of other tests running meanwhile.
tag="corelab-t$$"
A="$tag-a"
B="$tag-b"
work=""
tmp="${TMPDIR:-/tmp}"

# What Open MPI left of this run's hosts: session directories
# (/tmp/ompi.HOST.UID in Open MPI 4, /tmp/prte.HOST.UID in 5) and shared
# memory (/dev/shm/vader_segment.HOST.*, sm_segment.HOST.*).
leftovers() {
    local host f
    for host in "$@"; do
        for f in /dev/shm/*."$host".* /tmp/*."$host".* "$tmp"/*."$host".*; do
            [[ -e "$f" ]] && echo "$f"
        done
    done
    return 0
}

in_netns() { ip netns pids "$1" 2>/dev/null || true; }

# Every process in the namespaces ends, then the namespaces and files go.
remove() {  # remove PREFIX: the namespaces PREFIX-a and PREFIX-b and what is left of them
    local ns pid i f
    for ns in "$1-a" "$1-b"; do
        for pid in $(in_netns "$ns"); do kill -9 "$pid" 2>/dev/null || true; done
    done
    for ((i = 0; i < 100; i++)); do  # at most 10 s for them to be gone
        [[ -z "$(in_netns "$1-a")$(in_netns "$1-b")" ]] && break
        sleep 0.1
    done
    for ns in "$1-a" "$1-b"; do
        [[ -e "/run/netns/$ns" ]] && ip netns del "$ns" 2>/dev/null
    done
    leftovers "$1-a" "$1-b" | while read -r f; do rm -rf -- "$f"; done
    for f in "$tmp/$1".??????; do [[ -d "$f" ]] && rm -rf -- "$f"; done  # its hostfile's directory
    return 0
}
cleanup() {
    set +e
    trap - EXIT INT TERM
    remove "$tag"
    [[ -n "$work" ]] && rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Namespaces of earlier runs of this test that were killed before their
# cleanup (their pid no longer runs this script); never a live run's.
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^corelab-t[0-9]+-a$' || true); do
    pid="${ns#corelab-t}"
    pid="${pid%-a}"
    if ! grep -qsaF "$script" "/proc/$pid/cmdline"; then
        echo "removing the namespaces of an earlier run: corelab-t$pid-a, corelab-t$pid-b"
        remove "corelab-t$pid"
    fi
done

# two hosts: A (10.200.0.1, eth0) and B (10.200.0.2, ens3: the interface
# names differ, as they may between machines)
err="$(ip netns add "$A" 2>&1)" || skip "ip netns add is not permitted here: $err"
ip netns add "$B"
err="$(ip -n "$A" link add eth0 type veth peer name ens3 netns "$B" 2>&1)" || skip "cannot make a veth pair: $err"
ip -n "$A" addr add 10.200.0.1/24 dev eth0
ip -n "$B" addr add 10.200.0.2/24 dev ens3
ip -n "$A" link set lo up
ip -n "$B" link set lo up
ip -n "$A" link set eth0 up
ip -n "$B" link set ens3 up
ip netns exec "$A" unshare --uts true 2>/dev/null || skip "unshare --uts is not permitted here"
work="$(mktemp -d "$tmp/$tag.XXXXXX")"
printf '%s slots=1\n%s slots=1\n' "$A" "$B" >"$work/hosts"

agent="$root/tools/netns-ssh"
# `./course lesson 8 ARGS` on host A, with the lesson of BUILD_DIR; the agent
# for Open MPI 4 and 5; the network by its subnet (interface names differ)
course_on_a() {
    # shellcheck disable=SC2016  # the inner shell expands $1 and $@
    ip netns exec "$A" unshare --uts -- sh -c 'hostname "$1" && shift && exec "$@"' sh "$A" \
        env CORELAB_BUILD="$build" OMPI_MCA_plm_rsh_agent="$agent" PRTE_MCA_plm_ssh_agent="$agent" \
        OMPI_MCA_btl_tcp_if_include=10.200.0.0/24 OMPI_MCA_oob_tcp_if_include=10.200.0.0/24 \
        PRTE_MCA_oob_tcp_if_include=10.200.0.0/24 "$root/course" lesson 8 "$@"
}
# ranks beyond one machine: --bind-to none (the hosts share this machine's
# cores) and the sanitizers' options passed on to the remote rank
two_hosts=(--hostfile "$work/hosts")
mpirun_options=(-- --bind-to none -x LSAN_OPTIONS -x TSAN_OPTIONS -x UBSAN_OPTIONS)
export LSAN_OPTIONS="${LSAN_OPTIONS:-}" TSAN_OPTIONS="${TSAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}"

# the csv rows' results (name=result), one per line
results() { awk -F, 'NR > 1 && $3 != "" {print $1 "=" $3}' "$1"; }

nothing_left() {  # nothing_left WHAT: no process in either namespace, no file of this run
    local i
    for ((i = 0; i < 100; i++)); do  # processes may take a moment to be reaped: at most 10 s
        [[ -z "$(in_netns "$A")$(in_netns "$B")" ]] && break
        sleep 0.1
    done
    [[ -z "$(in_netns "$A")" ]] || fail "$1: left on host A: $(for p in $(in_netns "$A"); do cat "/proc/$p/comm"; done)"
    [[ -z "$(in_netns "$B")" ]] || fail "$1: left on host B: $(for p in $(in_netns "$B"); do cat "/proc/$p/comm"; done)"
    [[ -z "$(leftovers "$A" "$B")" ]] || fail "$1: Open MPI's files left: $(leftovers "$A" "$B")"
    echo "$1: nothing left on either host"
}

# 1. the same numbers on one machine and on two
echo "== two ranks on one machine (host A alone), then one rank on each host"
course_on_a --ranks 2 --n "$n" --seed 5 --repeat 1 --format csv >"$work/one.csv" 2>"$work/one.err" ||
    { cat "$work/one.err" >&2; fail "the one-machine run failed"; }
course_on_a "${two_hosts[@]}" --n "$n" --seed 5 --repeat 1 --format csv "${mpirun_options[@]}" \
    >"$work/two.csv" 2>"$work/two.err" || { cat "$work/two.err" >&2; fail "the two-host run failed"; }
results "$work/one.csv"
[[ "$(results "$work/one.csv" | wc -l)" -eq 3 ]] || fail "expected 3 results: $(cat "$work/one.csv")"
[[ "$(results "$work/one.csv")" == "$(results "$work/two.csv")" ]] ||
    fail "the two hosts' results differ from one machine's: $(results "$work/two.csv")"
echo "the two hosts' results equal one machine's, bit for bit"
grep -q "the daemons' keepalives: OMPI_MCA_oob_tcp_keepalive_time=10" "$work/two.err" ||
    fail "./course did not shorten the daemons' keepalives: $(cat "$work/two.err")"
nothing_left "after the runs"

course_on_a "${two_hosts[@]}" --n "$n" --seed 5 --repeat 1 "${mpirun_options[@]}" >"$work/two.txt" 2>&1 ||
    { cat "$work/two.txt" >&2; fail "the two-host run (table) failed"; }
grep -E "^  rank [01] on " "$work/two.txt"
if ! grep -q "^  rank 0 on $A: " "$work/two.txt" || ! grep -q "^  rank 1 on $B: " "$work/two.txt"; then
    fail "the ranks did not report hosts $A and $B: $(cat "$work/two.txt")"
fi
nothing_left "after the table run"

# A long run on both hosts in the background; its pid in $run, and its
# ranks' on each host in $rank_a and $rank_b once both run.
start_long_run() {
    course_on_a "${two_hosts[@]}" --n 20000000 --repeat 100 "${mpirun_options[@]}" >"$work/long.txt" 2>&1 &
    run=$!
    local i p
    rank_a="" rank_b=""
    for ((i = 0; i < 600 && (${#rank_a} == 0 || ${#rank_b} == 0); i++)); do  # at most 60 s
        kill -0 "$run" 2>/dev/null || { cat "$work/long.txt" >&2; fail "the long run ended early"; }
        sleep 0.1
        for p in $(in_netns "$A"); do [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == lesson08_mpi_me* ]] && rank_a="$p"; done
        for p in $(in_netns "$B"); do [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == lesson08_mpi_me* ]] && rank_b="$p"; done
    done
    [[ -n "$rank_a" && -n "$rank_b" ]] || fail "the long run did not start a rank on each host in 60 s"
    sleep 2  # into the timed runs
}
# Seconds from now until the run ends (at most LIMIT + 30), and its status.
wait_for_run() {  # wait_for_run LIMIT
    local start="$EPOCHREALTIME" i
    for ((i = 0; i < ($1 + 30) * 10; i++)); do
        kill -0 "$run" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$run" 2>/dev/null && { cat "$work/long.txt" >&2; fail "the run did not end in $(($1 + 30)) s"; }
    took="$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')"
    status=0
    wait "$run" || status=$?
}

# 2. a remote rank killed
echo "== a rank on host B killed with SIGKILL mid-run"
start_long_run
daemon=""
for p in $(in_netns "$B"); do  # what reaches the remote daemon is on its command line
    case "$(cat "/proc/$p/comm" 2>/dev/null)" in orted | prted) daemon="$(tr '\0' ' ' <"/proc/$p/cmdline")" ;; esac
done
[[ -n "$daemon" ]] || fail "no Open MPI daemon (orted, prted) runs on host B"
grep -qE 'oob_tcp_keepalive_time "?10"? ' <<<"$daemon" ||
    fail "the daemon on host B was not given the short keepalive: $daemon"
echo "the daemon on host B was given the short keepalives on its command line"
cpus() { awk '/^Cpus_allowed_list/ {print $2}' "/proc/$1/status"; }
[[ "$(cpus "$rank_a")" == "$(cpus self)" && "$(cpus "$rank_b")" == "$(cpus self)" ]] ||
    fail "--bind-to none after -- did not reach mpirun: the ranks run on cpus $(cpus "$rank_a") and $(cpus "$rank_b")"
echo "the ranks are not bound to a core (--bind-to none, after --, reached mpirun)"
kill -9 "$rank_b"
wait_for_run 10
echo "the run ended ${took} s after the kill, exit status $status"
tail -n 4 "$work/long.txt"
[[ "$status" -ne 0 ]] || fail "the run exited 0 though a rank was killed"
awk -v t="$took" 'BEGIN {exit !(t <= 10)}' || fail "the run took ${took} s to end, more than 10 s"
nothing_left "after the kill"

# 3. the link lost
echo "== the link taken down on host B mid-run"
start_long_run
ip -n "$B" link set ens3 down
wait_for_run 60
echo "the run ended ${took} s after the link went down, exit status $status"
tail -n 12 "$work/long.txt"
[[ "$status" -ne 0 ]] || fail "the run exited 0 though its link was down"
awk -v t="$took" 'BEGIN {exit !(t <= 60)}' || fail "the run took ${took} s to end, more than 60 s"
nothing_left "after the lost link"
echo "PASSED"
