# tools/coursework.bash — the coursework verbs of ./course, sourced by it:
#   check    build each exercise from the student's files and run its checker
#   hint     the next hint of an exercise, one at a time
#   handout  the course a teacher gives out (no solutions)
#   grade    the course's own checkers over a folder of submissions
# It uses ROOT, JOBS, say, die and deps from ./course (the current directory
# is ROOT). exercises/README.md says how students and teachers use them.

# ------------------------------------------------------------ small helpers

usage_error() {
    printf 'course: %s\n' "$*" >&2
    exit 2
}

# A temporary folder of this run, removed however it ends; an interrupt
# first stops the checker that runs (its process group, see run_with_verdict)
# and the submissions being graded.
CW_TMP="" CW_CHILD="" CW_JOBS=()
coursework_tmp() {
    if [[ -z "$CW_TMP" ]]; then
        CW_TMP="$(mktemp -d "${TMPDIR:-/tmp}/corelab-course.XXXXXX")"
        trap cw_cleanup EXIT
        trap 'exit 130' INT TERM
    fi
}

cw_cleanup() {
    local p
    [[ -n "$CW_CHILD" ]] && kill -KILL -- "-$CW_CHILD" 2>/dev/null
    for p in "${CW_JOBS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    wait 2>/dev/null
    [[ -n "${GRADE_WORK:-}" ]] && rm -rf -- "$GRADE_WORK"
    rm -rf -- "$CW_TMP"
}

now_us() { echo "${EPOCHREALTIME/./}"; }

# Seconds since a now_us value, with two decimals.
seconds_since() {
    local us=$(($(now_us) - $1))
    printf '%d.%02d' $((us / 1000000)) $((us % 1000000 / 10000))
}

# A JSON string: quotes, backslashes and control characters escaped, bytes
# that are not UTF-8 dropped (compiler and program output can hold anything).
json_string() {
    local s="$1" ascii=0
    # printable ASCII, tabs and line breaks (most text) need no filter programs
    # (globasciiranges, bash's default: the range is ASCII's in every locale)
    [[ "$s" == *[!\ -~$'\n\t\r']* ]] || ascii=1
    [[ $ascii -eq 1 ]] ||
        s="$(printf '%s' "$1" | iconv -c -f UTF-8 -t UTF-8 2>/dev/null || printf '%s' "$1" | tr -cd '\11\12\15\40-\176')"
    s="${s//\\/\\\\}"
    s="${s//\"/\\\"}"
    s="${s//$'\n'/\\n}"
    s="${s//$'\t'/\\t}"
    s="${s//$'\r'/\\r}"
    [[ $ascii -eq 1 ]] || s="$(printf '%s' "$s" | tr '\000-\037\177' ' ')"
    printf '"%s"' "$s"
}

# A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
csv_field() {
    local s="$1"
    if [[ "$s" == *[,\"$'\n'$'\r']* ]]; then
        s="${s//\"/\"\"}"
        printf '"%s"' "$s"
    else
        printf '%s' "$s"
    fi
}

# ---------------------------------------------------------------- exercises
# Exercises live in exercises/NN_lesson/K_name/ (exercises/README.md); their
# id is NN.K and their checker, built with the student's file, ex_NN_K_starter.

exercise_id() {
    local dir="${1%/}" lesson name
    name="${dir##*/}"
    lesson="${dir%/*}"
    lesson="${lesson##*/}"
    echo "${lesson%%_*}.${name%%_*}"
}

# Every exercise folder, in course order (select_exercises picks some).
exercise_dirs() {
    local d
    for d in exercises/[0-9][0-9]_*/[0-9]*_*/; do
        [[ -f "$d/student.cpp" ]] && echo "${d%/}"
    done
    return 0
}

exercise_target() { echo "ex_${1/./_}_starter"; }

# The checker objects of exercise ID that a build of the student's file
# reuses, as build targets of PRESET: the checker's own objects and the
# precompiled header the student's file is compiled with (where there is one).
exercise_prebuilt() {
    local id="$1" preset="$2" pch
    echo "ex_${id/./_}_checker"
    pch="exercises/CMakeFiles/$(exercise_target "$id").dir/cmake_pch.hxx.gch"
    build_has_target "$preset" "$pch" && echo "$pch"
    return 0
}

# "03.1 weighted_halves" for the reports.
exercise_title() {
    local d="$1" name="${1##*/}"
    echo "$(exercise_id "$d") ${name#*_}"
}

# Exercises marked THREADS in exercises/CMakeLists.txt: --sanitize uses TSan.
exercise_uses_threads() {
    local d="$1" lesson name
    name="${d##*/}"
    lesson="${d%/*}"
    lesson="${lesson##*/}"
    grep -Eq "^[[:space:]]*add_exercise\($lesson $name .*THREADS" exercises/CMakeLists.txt
}

# The exercise folders named by ARGS (lesson numbers "3", ids "03.2"), one a
# line, in course order; every exercise when ARGS is empty. Exits 2 on a name
# that is no exercise.
select_exercises() {
    local all a d id lesson k found picked=()
    all="$(exercise_dirs)"
    [[ -n "$all" ]] || die "no exercises in exercises/"
    if [[ $# -eq 0 ]]; then
        echo "$all"
        return 0
    fi
    for a; do
        found=0
        if [[ "$a" =~ ^[0-9]+$ ]]; then
            # validated as text first (small_number, course): bash arithmetic wraps at 2^64
            lesson="$(printf '%02d' "$(small_number "$a" 2 || echo 99)")"
            while read -r d; do
                [[ "$d" == exercises/"$lesson"_* ]] && picked+=("$d") && found=1
            done <<<"$all"
        elif [[ "$a" =~ ^[0-9]+\.[0-9]+$ ]]; then
            id="$(printf '%02d.%d' "$(small_number "${a%%.*}" 2 || echo 99)" "$(small_number "${a#*.}" 3 || echo 999)")"
            while read -r d; do
                [[ "$(exercise_id "$d")" == "$id" ]] && picked+=("$d") && found=1
            done <<<"$all"
        else
            usage_error "'$a' is neither a lesson number (3) nor an exercise id (03.2)"
        fi
        [[ $found -eq 1 ]] ||
            usage_error "there is no exercise '$a' (exercises: $(while read -r d; do exercise_id "$d"; done <<<"$all" | paste -sd ' '))"
    done
    # course order, each once
    while read -r d; do
        for a in "${picked[@]}"; do
            if [[ "$a" == "$d" ]]; then
                echo "$d"
                break
            fi
        done
    done <<<"$all"
}

# ------------------------------------------------------------------- builds

# Configures PRESET where it is not yet, and builds the library and the
# checkers' shared objects (quietly: the log goes to build/PRESET/exercises/).
prepare_exercise_build() {
    local preset="$1"
    shift
    if [[ ! -f "build/$preset/build.ninja" ]]; then
        say "configuring the $preset preset"
        cmake --preset "$preset" >/dev/null
    fi
    say "building the library and the checkers (${preset} preset)"
    mkdir -p "build/$preset/exercises"
    local log="build/$preset/exercises/library.build.log"
    if ! cmake --build --preset "$preset" --target corelab exercise_check_main exercise_verdict "$@" -j "$JOBS" \
        >"$log" 2>&1; then
        cat "$log" >&2
        die "the library or a checker does not build (log: $log)"
    fi
}

# Does build/PRESET define TARGET? (08.1 only where MPI was found.)
build_has_target() {
    ninja -C "build/$1" -t query "$2" >/dev/null 2>&1
}

# The line of a build log that says why it failed: the compiler's first
# error, else the linker's first "undefined reference" or "multiple
# definition", else the first line that names an error. Paths under the
# prefixes given are shortened.
build_message() {
    local log="$1" line p
    shift
    line="$(grep -E '(^|: )(fatal )?error: ' "$log" | grep -v -E 'collect2: error|^ninja: |^FAILED: ' | head -n1 || true)"
    [[ -n "$line" ]] || line="$(grep -m1 -E 'undefined reference to|multiple definition of' "$log" || true)"
    [[ -n "$line" ]] || line="$(grep -m1 -iE 'error' "$log" | grep -v '^FAILED: ' || true)"
    [[ -n "$line" ]] || line="$(grep -v '^[[:space:]]*$' "$log" | tail -n1 || true)"  # out of memory, killed...
    [[ -n "$line" ]] || line="the build failed and wrote nothing"
    line="${line#/usr/bin/ld: }"
    for p in "$@" "$ROOT/"; do line="${line//"$p"/}"; done
    # the linker names the object file: the student's source is what counts
    line="$(sed -E 's#[^ :]*CMakeFiles/[^ :]*/(student\.cpp)\.o#\1#g; s#[^ :]*/student\.o#student.cpp#g
        s#(\.\./)+(exercises|lib)/#\2/#g' <<<"$line")"
    echo "$line"
}

# The warnings about the student's file in a build log, one a line, paths
# shortened to student.cpp.
student_warnings() {
    grep -E 'student\.cpp:[0-9]+:[0-9]+: warning: ' "$1" | sed -E 's#^.*/(student\.cpp:)#\1#' || true
}

# What a failed build's log says about the student's file (its errors, the
# linker's undefined references), paths shortened, at most 40 lines; the
# log's last lines where it names neither (the compiler ran out of memory,
# or the build was stopped).
compiler_output() {
    local text
    text="$(grep -E 'student\.cpp|undefined reference|multiple definition' "$1" || true)"
    [[ -n "$text" ]] || text="$(grep -v '^[[:space:]]*$' "$1" | tail -n 5 || true)"
    sed -E "s#$2##g; s#[^ :]*CMakeFiles/[^ :]*/##g" <<<"$text" | head -n 40 | head -c 6000 || true
}

# The first finding of a sanitizer in a checker's log, or nothing.
sanitizer_finding() {
    local log="$1" line p
    shift
    line="$(grep -m1 -E ': runtime error: ' "$log" || true)"
    [[ -n "$line" ]] || line="$(grep -m1 -E '^SUMMARY: (Address|Thread|Leak|UndefinedBehavior)Sanitizer' "$log" || true)"
    [[ -n "$line" ]] || line="$(grep -m1 -E '^(==[0-9]+==)?(ERROR|WARNING): (Address|Thread|Leak)Sanitizer' "$log" || true)"
    [[ -n "$line" ]] || return 0
    line="${line#SUMMARY: }"
    line="$(sed -E 's/^==[0-9]+==//' <<<"$line")"
    for p in "$@" "$ROOT/"; do line="${line//"$p"/}"; done
    sed -E 's#(\.\./)+(exercises|lib)/#\2/#g' <<<"$line"  # paths relative to a build folder (ccache's base_dir)
}

# ------------------------------------------------------------------ verdicts

# run_with_verdict LOG LIMIT CMD...: runs CMD (a checker, or a sandbox that
# starts one) with a fresh token on descriptor 9 (CORELAB_CHECK_FD=9, see
# exercises/support/verdict.hpp), its output in LOG, for at most LIMIT
# seconds. Sets VERDICT_STATUS (done, not yet, timed out, crashed),
# VERDICT_MESSAGE and VERDICT_SECONDS. `done` only when the checker wrote
# "PASS <token>" after its last check and exited 0.
run_with_verdict() {
    local log="$1" limit="$2" file token line rc=0 start
    shift 2
    coursework_tmp
    file="$(mktemp "$CW_TMP/verdict.XXXXXX")"
    token="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    printf '%s\n' "$token" >"$file"
    start="$(now_us)"
    # In the background, so that an interrupted ./course can stop it:
    # timeout leads a process group of its own (cw_abort kills the group).
    CORELAB_CHECK_FD=9 timeout -k 5 "$limit" "$@" >"$log" 2>&1 9<>"$file" </dev/null &
    CW_CHILD=$!
    { wait "$CW_CHILD" || rc=$?; } 2>/dev/null  # the group's stderr catches bash's own "Killed" line
    CW_CHILD=""
    VERDICT_SECONDS="$(seconds_since "$start")"
    line="$(head -n1 "$file")"
    rm -f -- "$file"
    VERDICT_MESSAGE=""
    if [[ $rc -eq 124 || ($rc -eq 137 && "${VERDICT_SECONDS%.*}" -ge "$limit") ]]; then
        VERDICT_STATUS="timed out"
        VERDICT_MESSAGE="did not finish in $limit s: something waits forever (a thread not joined? a queue?) or works far too long"
    elif [[ "$line" == "PASS $token" && $rc -eq 0 ]]; then
        VERDICT_STATUS="done"
    elif [[ "$line" == "FAIL $token "* ]]; then
        VERDICT_STATUS="not yet"
        VERDICT_MESSAGE="${line#"FAIL $token "}"
    elif [[ $rc -gt 128 ]]; then
        VERDICT_STATUS="crashed"
        VERDICT_MESSAGE="killed by signal $((rc - 128)) (SIG$(kill -l $((rc - 128)) 2>/dev/null || echo '?'))"
        [[ $((rc - 128)) -eq 25 ]] && VERDICT_MESSAGE+=": it wrote a file larger than the limit"
    elif [[ "$line" == "PASS $token" ]]; then
        VERDICT_STATUS="not yet"
        VERDICT_MESSAGE="its checks passed, then the program ended with exit status $rc (after main returned: a static object's destructor?)"
    else
        VERDICT_STATUS="not yet"
        VERDICT_MESSAGE="stopped before its checks finished (exit status $rc): does your code call exit(), or end the process another way?"
    fi
}

# ------------------------------------------------------------- ./course check

check_exercises() {
    local format=table sanitize=0 limit=120 prepare=0 selection=()
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --format) [[ $# -ge 2 ]] || usage_error "--format needs table, json or csv"; format="$2"; shift 2 ;;
            --format=*) format="${1#*=}"; shift ;;
            --timeout) [[ $# -ge 2 ]] || usage_error "--timeout needs seconds"; limit="$2"; shift 2 ;;
            --timeout=*) limit="${1#*=}"; shift ;;
            --sanitize) sanitize=1; shift ;;
            --prepare) prepare=1; shift ;;
            -*) usage_error "check: unknown option '$1' (options: --format table|json|csv, --sanitize, --timeout S, --prepare)" ;;
            *) selection+=("$1"); shift ;;
        esac
    done
    case "$format" in table | json | csv) ;; *) usage_error "--format takes table, json or csv, not '$format'" ;; esac
    [[ "$limit" =~ ^[0-9]+$ && "$limit" -ge 1 ]] || usage_error "--timeout takes a number of seconds, not '$limit'"
    local dirs
    dirs="$(select_exercises "${selection[@]}")"
    if [[ $prepare -eq 1 ]]; then  # CI set-up: the build, no checks
        local d targets=()
        prepare_exercise_build release
        while read -r d; do
            build_has_target release "ex_$(exercise_id "$d" | tr . _)_checker" &&
                mapfile -t -O "${#targets[@]}" targets < <(exercise_prebuilt "$(exercise_id "$d")" release)
        done <<<"$dirs"
        cmake --build --preset release --target "${targets[@]}" -j "$JOBS" >/dev/null
        say "ready: ./course check builds only the students' files now"
        return 0
    fi

    local presets=(release)
    if [[ $sanitize -eq 1 ]]; then
        presets=()
        grep -q . <<<"$(while read -r d; do exercise_uses_threads "$d" || echo "$d"; done <<<"$dirs")" && presets+=(dev)
        grep -q . <<<"$(while read -r d; do exercise_uses_threads "$d" && echo "$d"; done <<<"$dirs")" && presets+=(tsan)
    fi
    local p
    for p in "${presets[@]}"; do prepare_exercise_build "$p" >&2; done

    local d id target preset logs build_log check_log warnings status message seconds n_done=0 total=0
    local ids=() statuses=() messages=() times=() warns=()
    [[ "$format" == table ]] && printf '\n%-9s %-15s %8s  %s\n' exercise status seconds message
    while read -r d; do
        id="$(exercise_id "$d")"
        target="$(exercise_target "$id")"
        preset=release
        if [[ $sanitize -eq 1 ]]; then
            preset=dev
            exercise_uses_threads "$d" && preset=tsan
        fi
        logs="build/$preset/exercises/logs"
        mkdir -p "$logs"
        build_log="$logs/$id.build.log"
        check_log="$logs/$id.check.log"
        total=$((total + 1))
        status="" message="" seconds="" warnings=""
        if ! build_has_target "$preset" "$target"; then
            status="does not build"
            message="not built on this machine: lesson 08 needs MPI and Boost.MPI (./course deps installs them; then rm -rf build/$preset)"
        elif ! cmake --build --preset "$preset" --target "$target" -j "$JOBS" >"$build_log" 2>&1; then
            status="does not build"
            message="$(build_message "$build_log")"
            student_warnings "$build_log" >"$logs/$id.warnings"
        else
            # an up-to-date target was not compiled: its warnings are those of the last compile
            grep -q 'no work to do' "$build_log" || student_warnings "$build_log" >"$logs/$id.warnings"
            local env=()
            [[ $preset == tsan ]] && env=(env "TSAN_OPTIONS=halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}")
            run_with_verdict "$check_log" "$limit" "${env[@]}" "build/$preset/exercises/$target"
            status="$VERDICT_STATUS" message="$VERDICT_MESSAGE" seconds="$VERDICT_SECONDS"
            if [[ $sanitize -eq 1 ]]; then
                local finding
                finding="$(sanitizer_finding "$check_log")"
                if [[ -n "$finding" ]]; then
                    status="crashed"
                    message="$finding"
                fi
            fi
        fi
        [[ -f "$logs/$id.warnings" ]] && warnings="$(cat "$logs/$id.warnings")"
        [[ "$status" == "done" ]] && n_done=$((n_done + 1))
        ids+=("$id") statuses+=("$status") messages+=("$message") times+=("$seconds") warns+=("$warnings")
        if [[ "$format" == table ]]; then
            printf '%-9s %-15s %8s  %s\n' "$id" "$status" "$seconds" "${message:0:200}"
            if [[ -n "$warnings" ]]; then
                printf '%35s%s\n' "" "warning: $(head -n1 <<<"$warnings" | sed 's/: warning: /: /')$([[ $(wc -l <<<"$warnings") -gt 1 ]] && echo " (and $(($(wc -l <<<"$warnings") - 1)) more)")"
            fi
            [[ "$status" == "done" ]] || printf '%35s%s\n' "" "hint: ./course hint $id   (log: $logs/$id.*.log)"
        fi
    done <<<"$dirs"

    local i n=${#ids[@]}
    case "$format" in
        table) printf '\n%d of %d exercises done\n' "$n_done" "$total" ;;
        csv)
            echo "id,status,message,seconds,warnings"
            for ((i = 0; i < n; i++)); do
                printf '%s,%s,%s,%s,%s\n' "${ids[i]}" "$(csv_field "${statuses[i]}")" "$(csv_field "${messages[i]}")" \
                    "${times[i]}" "$(grep -c . <<<"${warns[i]}" || true)"
            done
            ;;
        json)
            echo "["
            for ((i = 0; i < n; i++)); do
                printf '  {"id": %s, "status": %s, "message": %s, "seconds": %s, "warnings": %s}%s\n' \
                    "$(json_string "${ids[i]}")" "$(json_string "${statuses[i]}")" "$(json_string "${messages[i]}")" \
                    "${times[i]:-null}" "$(grep -c . <<<"${warns[i]}" || true)" "$([[ $i -lt $((n - 1)) ]] && echo ,)"
            done
            echo "]"
            ;;
    esac
    [[ $n_done -eq $total ]]
}

# -------------------------------------------------------------- ./course hint

# The hints of an exercise are the numbered items of its hints.md; the
# number shown so far is kept in build/hints/ID (per clone, git-ignored).
show_hint() {
    local id="" all=0 a
    for a; do
        case "$a" in
            --all) all=1 ;;
            -*) usage_error "hint: unknown option '$a' (./course hint 03.2 [--all])" ;;
            *) [[ -z "$id" ]] || usage_error "hint takes one exercise, e.g. ./course hint 03.2"; id="$a" ;;
        esac
    done
    [[ "$id" =~ ^[0-9]+\.[0-9]+$ ]] || usage_error "which exercise? e.g. ./course hint 03.2"
    local d file count shown state
    d="$(select_exercises "$id")"
    id="$(exercise_id "$d")"
    file="$d/hints.md"
    [[ -f "$file" ]] || die "exercise $id has no hints.md"
    count="$(grep -cE '^[0-9]+\. ' "$file" || true)"
    [[ "$count" -gt 0 ]] || die "$file holds no numbered hints"
    local hints_dir="${CORELAB_HINTS_DIR:-build/hints}"  # tests point it elsewhere
    state="$hints_dir/$id"
    shown="$(cat "$state" 2>/dev/null || echo 0)"
    [[ "$shown" =~ ^[0-9]+$ ]] || shown=0
    mkdir -p "$hints_dir"
    if [[ $all -eq 1 ]]; then
        printf 'Hints for exercise %s, from the concept to nearly the answer:\n\n' "$(exercise_title "$d")"
        hint_text "$file" 0
        echo "$count" >"$state"
        return 0
    fi
    if [[ $shown -ge $count ]]; then
        printf 'All %d hints of exercise %s are shown; ./course hint %s --all prints them again.\n' "$count" "$id" "$id"
        return 0
    fi
    shown=$((shown + 1))
    printf 'Hint %d of %d for exercise %s:\n\n' "$shown" "$count" "$(exercise_title "$d")"
    hint_text "$file" "$shown"
    echo "$shown" >"$state"
    if [[ $shown -lt $count ]]; then
        printf '\nThe next one: ./course hint %s   (every hint: ./course hint %s --all)\n' "$id" "$id"
    else
        printf '\nThat was the last hint.\n'
    fi
}

# Hint K of FILE (0: all of them), each item with its continuation lines.
hint_text() {
    awk -v want="$2" '
        /^[0-9]+\. / { k++; if (want == 0 && k > 1) print "" }
        k > 0 && (want == 0 || k == want) { print "  " $0 }
    ' "$1"
}

# ----------------------------------------------------------- ./course handout

handout() {
    local dest="" only="" worktree=0
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --only) [[ $# -ge 2 ]] || usage_error "--only needs exercise ids, e.g. --only 03.1,06.2"; only="$2"; shift 2 ;;
            --only=*) only="${1#*=}"; shift ;;
            --worktree) worktree=1; shift ;;
            -*) usage_error "handout: unknown option '$1' (./course handout DIR [--only 03.1,06.2] [--worktree])" ;;
            *) [[ -z "$dest" ]] || usage_error "handout takes one folder"; dest="$1"; shift ;;
        esac
    done
    [[ -n "$dest" ]] || usage_error "where to? e.g. ./course handout ../corelab-class"
    [[ "$dest" == /* ]] || dest="$CALLER/$dest"
    if [[ -e "$dest" ]] && [[ ! -d "$dest" || -n "$(ls -A "$dest")" ]]; then
        die "$dest exists and is not an empty folder"
    fi
    git rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
        die "not a git checkout: ./course handout copies the course's committed files"
    # selected exercises (all by default), before anything is written
    local keep
    keep="$(select_exercises ${only:+$(tr ',' ' ' <<<"$only")})"
    mkdir -p "$dest"
    if [[ $worktree -eq 1 ]]; then
        git ls-files -z -- . ':(exclude)exercises/solutions' |
            while IFS= read -r -d '' f; do [[ -e "$f" || -L "$f" ]] && printf '%s\0' "$f"; done |
            tar -c --null --no-recursion -T - | tar -x -C "$dest"
    else
        local changed
        changed="$(git status --porcelain --untracked-files=no | wc -l)"
        [[ "$changed" -eq 0 ]] ||
            say "note: $changed changed file(s) are not committed and not in the hand-out (it is HEAD's tree; --worktree takes the files as they are)"
        git archive --format=tar HEAD -- . ':(exclude)exercises/solutions' | tar -x -C "$dest"
    fi
    # the exercises not set: their folders, their build lines and table rows
    local d id ids=() removed=0
    while read -r d; do
        id="$(exercise_id "$d")"
        if grep -qxF "$d" <<<"$keep"; then
            ids+=("$d")
            continue
        fi
        local lesson="${d%/*}" name="${d##*/}"
        rm -rf -- "${dest:?}/$d"
        rmdir -- "$dest/$lesson" 2>/dev/null || true
        sed -i "/^[[:space:]]*add_exercise(${lesson##*/} $name\b/d" "$dest/exercises/CMakeLists.txt"
        sed -i "/^| ${id/./\\.} | /d" "$dest/exercises/README.md"
        removed=$((removed + 1))
    done <<<"$(exercise_dirs)"
    mkdir -p "$dest/.github/workflows"
    classroom_workflow "${ids[@]}" >"$dest/.github/workflows/classroom.yml"
    say "wrote $dest: ${#ids[@]} exercise(s), no solutions$([[ $removed -gt 0 ]] && echo ", $removed exercise(s) left out")"
    printf 'Hand it out as a repository (GitHub Classroom runs .github/workflows/classroom.yml),\nor as an archive; exercises/README.md, "For teachers", says how to grade it.\n'
}

# The GitHub Classroom workflow for the exercise folders given: one
# autograding-command-grader test per exercise, `./course check NN.K`.
classroom_workflow() {
    local d id step runners=() env=()
    cat <<'YAML'
# GitHub Classroom autograding for this course's exercises (written by
# ./course handout; exercises/README.md, "For teachers"). Each exercise is one
# test: `./course check NN.K` exits 0 when the exercise is done. Change
# max-score to weigh an exercise more.
name: Autograding Tests
'on':
  - push
  - repository_dispatch
permissions:
  checks: write
  actions: read
  contents: read
jobs:
  run-autograding-tests:
    runs-on: ubuntu-latest
    # the course's Debian packages (./course deps installs them as root)
    container: debian:12
    if: github.actor != 'github-classroom[bot]'
    steps:
      - name: Checkout code
        uses: actions/checkout@v4
      - name: Install the packages and build the library and the checkers
        run: ./course check --prepare
YAML
    for d; do
        id="$(exercise_id "$d")"
        step="ex-${id/./-}"
        runners+=("$step")
        env+=("          ${step^^}_RESULTS: \"\${{steps.$step.outputs.result}}\"")
        cat <<YAML
      - name: $(exercise_title "$d")
        id: $step
        uses: education/autograding-command-grader@v1
        with:
          test-name: $(exercise_title "$d")
          command: ./course check $id
          timeout: 10
          max-score: 1
YAML
    done
    echo "      - name: Autograding Reporter"
    echo "        uses: education/autograding-grading-reporter@v1"
    echo "        env:"
    printf '%s\n' "${env[@]}"
    echo "        with:"
    echo "          runners: $(
        IFS=,
        echo "${runners[*]}"
    )"
}

# ------------------------------------------------------------ ./course grade
#
# A submission is a folder or a .tar, .tar.gz (.tgz) or .zip archive holding
# some or all of exercises/NN_lesson/K_name/student.cpp, anywhere below its
# top (a student's whole copy of the course, or just those files). Only those
# files are taken; everything else is listed as ignored. Each is compiled
# against this tree's headers and linked with this tree's library and
# checker objects (build/release), then its checker runs with limits, as a
# user of its own where we are root. See exercises/README.md, "For teachers".

GRADE_STATUSES=("done" "not yet" "does not build" "timed out" "crashed" "not submitted" "refused")

grade() {
    local out="" limit=60 jobs="$JOBS" points_file="" subs=()
    GRADE_MEMORY_MB=2048 GRADE_NPROC=256
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --out) [[ $# -ge 2 ]] || usage_error "--out needs a folder"; out="$2"; shift 2 ;;
            --out=*) out="${1#*=}"; shift ;;
            --timeout) [[ $# -ge 2 ]] || usage_error "--timeout needs seconds"; limit="$2"; shift 2 ;;
            --timeout=*) limit="${1#*=}"; shift ;;
            --jobs) [[ $# -ge 2 ]] || usage_error "--jobs needs a number"; jobs="$2"; shift 2 ;;
            --jobs=*) jobs="${1#*=}"; shift ;;
            --points) [[ $# -ge 2 ]] || usage_error "--points needs a file"; points_file="$2"; shift 2 ;;
            --points=*) points_file="${1#*=}"; shift ;;
            --memory) [[ $# -ge 2 ]] || usage_error "--memory needs MiB"; GRADE_MEMORY_MB="$2"; shift 2 ;;
            --memory=*) GRADE_MEMORY_MB="${1#*=}"; shift ;;
            -*) usage_error "grade: unknown option '$1' (./course grade SUBMISSION... --out DIR [--timeout S] [--jobs N] [--points FILE] [--memory MIB])" ;;
            *) subs+=("$1"); shift ;;
        esac
    done
    [[ ${#subs[@]} -gt 0 ]] || usage_error "grade what? ./course grade SUBMISSION... --out DIR"
    [[ -n "$out" ]] || usage_error "grade needs --out DIR: where grades.csv and each submission's results go"
    [[ "$limit" =~ ^[0-9]+$ && "$limit" -ge 1 ]] || usage_error "--timeout takes seconds, not '$limit'"
    [[ "$jobs" =~ ^[0-9]+$ && "$jobs" -ge 1 && "$jobs" -le 64 ]] || usage_error "--jobs takes 1 to 64, not '$jobs'"
    [[ "$GRADE_MEMORY_MB" =~ ^[0-9]+$ && "$GRADE_MEMORY_MB" -ge 256 ]] ||
        usage_error "--memory takes MiB per process, at least 256, not '$GRADE_MEMORY_MB'"
    [[ "$out" == /* ]] || out="$CALLER/$out"
    local i s
    for i in "${!subs[@]}"; do
        s="${subs[i]}"
        [[ "$s" == /* ]] || s="$CALLER/$s"
        [[ -e "$s" || -L "$s" ]] || usage_error "no such submission: ${subs[i]}"
        subs[i]="$s"
    done

    # the exercises this build can check, and their points
    if [[ -d build && ! -w build ]] || [[ -d build/release && ! -w build/release ]]; then
        die "grading builds and works in $ROOT/build, which you cannot write to: grade as its owner ($(stat -c %U build)) or as root"
    fi
    prepare_exercise_build release >&2
    local d id targets=()
    GRADE_DIRS=()
    while read -r d; do
        id="$(exercise_id "$d")"
        if build_has_target release "$(exercise_target "$id")"; then
            GRADE_DIRS+=("$d")
            mapfile -t -O "${#targets[@]}" targets < <(exercise_prebuilt "$id" release)
        else
            say "exercise $id is not graded: it is not built here (lesson 08 needs MPI)"
        fi
    done <<<"$(exercise_dirs)"
    [[ ${#GRADE_DIRS[@]} -gt 0 ]] || die "no exercise to grade"
    cmake --build --preset release --target "${targets[@]}" -j "$JOBS" >/dev/null ||
        die "a checker does not build: run cmake --build --preset release --target ${targets[*]}"
    declare -gA GRADE_POINTS=()
    for d in "${GRADE_DIRS[@]}"; do GRADE_POINTS["$(exercise_id "$d")"]=1; done
    [[ -z "$points_file" ]] || grade_read_points "$points_file"
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1 &&
        ! git diff --quiet HEAD -- exercises/support 'exercises/*/*/checker.cpp' 'exercises/*/*/exercise.hpp' 2>/dev/null; then
        say "note: this tree's checkers differ from its last commit; grading uses them as they are"
    fi

    coursework_tmp
    GRADE_WORK="$ROOT/build/grade.$$"
    rm -rf -- "$GRADE_WORK"
    mkdir -p "$GRADE_WORK/recipes"
    chmod 711 "$GRADE_WORK"
    grade_recipes
    grade_isolation
    mkdir -p "$out"

    # the submissions, --jobs at a time; each writes its rows and summary line
    local names=() name n start
    declare -A taken=()
    for i in "${!subs[@]}"; do
        name="$(grade_submission_name "${subs[i]}")"
        n="$name"
        s=2
        while [[ -n "${taken[$n]:-}" || "$n" == grades.csv ]]; do n="$name-$s" && s=$((s + 1)); done
        taken[$n]=1
        names+=("$n")
    done
    say "grading ${#subs[@]} submission(s), $jobs at a time, ${limit} s per checker: results in $out"
    start="$(now_us)"
    for i in "${!subs[@]}"; do
        while [[ $(jobs -rp | wc -l) -ge $jobs ]]; do wait -n || true; done
        grade_one "$i" "${subs[i]}" "${names[i]}" "$out" "$limit" &
        CW_JOBS+=($!)
    done
    wait || true
    CW_JOBS=()
    local total_seconds
    total_seconds="$(seconds_since "$start")"

    # A submission counts once its summary is written (its last step); one
    # whose grading stopped before is named with why, never left out silently.
    local failed=() why
    for i in "${!subs[@]}"; do
        [[ -f "$GRADE_WORK/summary.$i" ]] && continue
        failed+=("${names[i]}")
        why="$(tail -n 2 "$GRADE_WORK/error.$i" 2>/dev/null | paste -sd ';' | sed 's/;/; /g' || true)"
        printf 'course: %s (%s) was not graded: %s\n' "${names[i]}" "${subs[i]}" \
            "${why:-its grading ended before it finished, without a word (was it killed?)}" >&2
        grade_leftovers $((GRADE_UID_BASE + i % 512))
    done
    {
        echo "submission,exercise,status,points,max_points,message,seconds"
        for i in "${!subs[@]}"; do
            [[ -f "$GRADE_WORK/summary.$i" ]] && cat "$GRADE_WORK/rows.$i"
        done
    } >"$out/grades.csv"
    grade_summary "${#subs[@]}" "$total_seconds" "$jobs"
    rm -rf -- "$GRADE_WORK"
    GRADE_WORK=""
    echo "wrote $out/grades.csv and $out/<submission>/results.json (Gradescope's format)"
    [[ ${#failed[@]} -eq 0 ]] ||
        die "${#failed[@]} of ${#subs[@]} submission(s) not graded (why: above), grades.csv lacks their rows: ${failed[*]}"
}

# grade_one I PATH NAME OUT LIMIT: grade_submission as a job of its own.
# Whatever stops it early (a command that fails: the course's own fault, or
# the machine's) is written to GRADE_WORK/error.I with its line, for the
# message that names the submission.
grade_one() {
    GRADE_I="$1"
    set -E
    trap 'grade_error "$GRADE_I" "line $LINENO of tools/coursework.bash: \`$BASH_COMMAND\` failed (exit status $?)"' ERR
    grade_submission "$@"
}

# grade_error I WHY: records why submission I could not be graded.
grade_error() {
    printf '%s\n' "$2" >>"$GRADE_WORK/error.$1"
}

# What a submission's user left (isolation user: processes; user and
# namespaces: files in the world-writable folders).
grade_leftovers() {
    sandbox_cleanup "$1"
    if [[ "$GRADE_ISOLATION" != none ]]; then
        find /tmp /var/tmp /dev/shm -xdev -user "$1" -delete 2>/dev/null || true
    fi
}

# Points per exercise: lines "ID POINTS" (03.1 2, or 06.2 1.5), # comments.
grade_read_points() {
    local file="$1" a b rest line=0
    [[ "$file" == /* ]] || file="$CALLER/$file"
    [[ -r "$file" ]] || usage_error "cannot read the points file $1"
    while read -r a b rest || [[ -n "$a" ]]; do
        line=$((line + 1))
        [[ -z "$a" || "$a" == \#* ]] && continue
        [[ "$a" =~ ^[0-9]+\.[0-9]+$ && "$b" =~ ^[0-9]+(\.[0-9]+)?$ && -z "$rest" ]] ||
            usage_error "$1:$line: expected 'ID POINTS' (e.g. 03.1 2), not '$a $b $rest'"
        a="$(printf '%02d.%d' "$(small_number "${a%%.*}" 2 || echo 99)" "$(small_number "${a#*.}" 3 || echo 999)")"
        [[ -n "${GRADE_POINTS[$a]:-}" ]] || usage_error "$1:$line: there is no exercise $a to grade here"
        GRADE_POINTS[$a]="$b"
    done <"$file"
}

# A submission's name in the results: its file name without the archive
# suffix, in letters, digits, '.', '_' and '-'.
grade_submission_name() {
    local n="${1%/}"
    n="${n##*/}"
    shopt -s nocasematch
    case "$n" in
        *.tar.gz) n="${n%.???.??}" ;;
        *.tgz | *.tar | *.zip) n="${n%.*}" ;;
    esac
    shopt -u nocasematch
    n="$(tr -c 'A-Za-z0-9._\n-' '_' <<<"$n")"
    n="${n#.}"
    [[ -n "$n" && "$n" != . && "$n" != .. ]] || n="submission"
    echo "$n"
}

# The build and link commands of each exercise, taken from ninja, with
# @SRC@, @OBJ@ and @EXE@ where the student's file, its object and the
# checker go. They reuse this build's library and checker objects.
grade_recipes() {
    local cxx d id target src obj compile link
    cxx="$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' build/release/CMakeCache.txt)"
    for d in "${GRADE_DIRS[@]}"; do
        id="$(exercise_id "$d")"
        target="$(exercise_target "$id")"
        src="$ROOT/$d/student.cpp"
        compile="$(ninja -C build/release -t commands "$target" | grep -F -- "-c $src" | tail -n1)"
        link="$(ninja -C build/release -t commands "$target" | tail -n1)"
        [[ -n "$compile" && "$link" == *" -o exercises/$target "* ]] || die "cannot read how $target is built from build/release"
        compile="$cxx ${compile#*"$cxx "}"  # without a launcher (ccache): each submission is new
        compile="$(sed -E 's/ -MD -MT [^ ]+ -MF [^ ]+//' <<<"$compile")"  # no dependency file: built once
        obj="$(sed -E 's/.* -o ([^ ]+) -c .*/\1/' <<<"$compile")"
        compile="${compile//"$obj"/@OBJ@}"
        compile="${compile//"$src"/@SRC@}"
        # no linker dependency file either (CMake 3.27+ asks GNU ld 2.35+ for one,
        # as on Debian 13): the link runs as the submission's user, who may not
        # write in build/release
        link="$(sed -E 's/ -Wl,--dependency-file[=,][^ ]+//' <<<"$link")"
        link="${link//"$obj"/@OBJ@}"
        link="${link//" -o exercises/$target "/" -o @EXE@ "}"
        printf '%s\n' "$compile" >"$GRADE_WORK/recipes/$id.compile"
        printf '%s\n' "$link" >"$GRADE_WORK/recipes/$id.link"
    done
}

# How far apart the submissions are kept (GRADE_ISOLATION):
#   namespaces  root: each submission runs as a user of its own, in new
#               network, mount, IPC and PID namespaces with a private
#               /dev/shm and temporary folder (size-limited, gone with it)
#   user        root, but no namespaces (a container): a user of its own;
#               what it leaves in /tmp, /var/tmp and /dev/shm is removed
#   none        not root: limits only, in the teacher's own account
# CORELAB_GRADE_ISOLATION chooses one (tests do).
grade_isolation() {
    GRADE_UID_BASE=$((2000000000 + ($$ % 4194304) * 512))
    GRADE_ISOLATION="${CORELAB_GRADE_ISOLATION:-}"
    if [[ -z "$GRADE_ISOLATION" ]]; then
        GRADE_ISOLATION=none
        if [[ "$(id -u)" -eq 0 ]]; then
            if command -v ip >/dev/null &&
                unshare --net --mount --ipc --pid --fork --kill-child --mount-proc --propagation private true 2>/dev/null; then
                GRADE_ISOLATION=namespaces
            elif setpriv --reuid="$GRADE_UID_BASE" --regid="$GRADE_UID_BASE" --clear-groups true 2>/dev/null; then
                GRADE_ISOLATION=user
            else
                # never the students' code as root unless asked for
                die "as root, but submissions cannot run as a user of their own here (setpriv --reuid fails): grade as another user, or set CORELAB_GRADE_ISOLATION=none to run them as root with limits only"
            fi
        fi
    fi
    case "$GRADE_ISOLATION" in
        namespaces) say "each submission runs as a user of its own, without network, with a private /dev/shm and temporary folder" ;;
        user) say "each submission runs as a user of its own (no namespaces here: it can reach the network)" ;;
        none) say "submissions run as $(id -un 2>/dev/null || id -u), with limits only$([[ "$(id -u)" -ne 0 ]] && echo "; grade as root to keep them apart")" ;;
        *) die "CORELAB_GRADE_ISOLATION is namespaces, user or none, not '$GRADE_ISOLATION'" ;;
    esac
    command -v prlimit >/dev/null ||
        die "grading limits each submission with prlimit, which is not installed (Debian's util-linux has it)"
    if [[ "$GRADE_ISOLATION" != none ]]; then
        command -v setpriv >/dev/null || die "grading runs each submission as a user of its own with setpriv (util-linux), not installed"
        # the submission's users must be able to read this tree
        # by the absolute path they are given (a relative one would pass through a closed /root)
        setpriv --reuid="$GRADE_UID_BASE" --regid="$GRADE_UID_BASE" --clear-groups test -r "$ROOT/build/release/libcorelab.a" ||
            die "other users cannot read $ROOT/build/release: grade from a folder that all can read (chmod o+rx on the path)"
    fi
    grade_probe
}

# Starts one sandbox as a submission's would be, before any is graded: in a
# folder like theirs, it must enter the build, read the library and a
# header, and write its folder and its temporary folder. Whatever keeps it
# from that (a folder closed to its user, a tool missing or refused) stops
# the grading here, with what failed, rather than in every submission.
grade_probe() {
    local probe="$GRADE_WORK/probe" log="$GRADE_WORK/probe.log" rc=0
    mkdir -p "$probe/ex" "$probe/tmp"
    chmod 711 "$probe"
    [[ "$GRADE_ISOLATION" == none ]] || chown "$GRADE_UID_BASE:$GRADE_UID_BASE" "$probe/ex" "$probe/tmp"
    sandbox_prefix "$GRADE_UID_BASE" "$probe/ex" "$probe/tmp"
    timeout -k 5 60 "${SANDBOX[@]}" bash -c 'test -w . && cd "$1" && test -r libcorelab.a && test -r "$2" && : >"$3/probe"' \
        probe "$ROOT/build/release" "$ROOT/lib/include/corelab/reduce.hpp" "$probe/tmp" >"$log" 2>&1 </dev/null || rc=$?
    sandbox_cleanup "$GRADE_UID_BASE"
    if [[ $rc -ne 0 ]]; then
        die "a submission's sandbox cannot work here (isolation '$GRADE_ISOLATION'$([[ "$GRADE_ISOLATION" != none ]] && echo ", user $GRADE_UID_BASE"), exit status $rc): $(grep -v '^[[:space:]]*$' "$log" | tail -n 3 | paste -sd ' ')$([[ -s "$log" ]] || echo "it could not enter $ROOT/build/release, read its library or write its own folders")"
    fi
    rm -rf -- "$probe" "$log"
}

# The script that starts a sandbox in its namespaces, as root: private
# /dev/shm and temporary folders (and /tmp, /var/tmp unless the course or
# the work lies there), the solutions hidden, loopback up (mpirun needs it).
# Arguments: UID DIR TMP ROOT MEM_MB CMD...; runs CMD in DIR, reaping what
# CMD leaves (it is PID 1); all of it ends with the namespace.
GRADE_NS_INIT='
uid=$1 dir=$2 tmp=$3 root=$4 mb=$5
shift 5
mount -t tmpfs -o "size=${mb}m,mode=1777" tmpfs /dev/shm || exit 125
mount -t tmpfs -o "size=${mb}m,mode=0700,uid=$uid,gid=$uid" tmpfs "$tmp" || exit 125
for d in /tmp /var/tmp; do
    case "$root/" in "$d"/*) continue ;; esac
    case "$dir/" in "$d"/*) continue ;; esac
    [ -d "$d" ] && mount -t tmpfs -o "size=${mb}m,mode=1777" tmpfs "$d"
done
[ -d "$root/exercises/solutions" ] && mount -t tmpfs -o size=64k,mode=0755 tmpfs "$root/exercises/solutions"
ip link set lo up 2>/dev/null
cd "$dir" || exit 125
"$@"
rc=$?
exit $rc
'

# sandbox_prefix UID DIR TMP [ENV=VALUE...]: sets SANDBOX, the command line
# that runs a command in DIR as user UID (where root), with the limits:
# GRADE_MEMORY_MB of address space and files of at most 64 MiB per process,
# GRADE_NPROC processes and threads, no core file, TMP as its temporary
# folder, a bare environment (plus the ENV given).
sandbox_prefix() {
    local uid="$1" dir="$2" tmp="$3" nproc="$GRADE_NPROC"
    shift 3
    local envs=(PATH=/usr/local/bin:/usr/bin:/bin HOME="$dir" TMPDIR="$tmp" LC_ALL=C "$@")
    local limits=(prlimit --as=$((GRADE_MEMORY_MB * 1048576)) --fsize=$((64 * 1048576)) --core=0 --nofile=1024)
    if [[ "$GRADE_ISOLATION" != none ]]; then
        limits+=(--nproc="$nproc")
    elif command -v ps >/dev/null; then  # RLIMIT_NPROC counts all of this user's tasks
        limits+=(--nproc=$(($(ps -L -u "$(id -u)" --no-headers | wc -l) + GRADE_NPROC)))
    fi
    limits+=(--)
    local as_user=(setpriv --reuid="$uid" --regid="$uid" --clear-groups --inh-caps=-all --)
    case "$GRADE_ISOLATION" in
        namespaces)
            SANDBOX=(unshare --net --mount --ipc --pid --fork --kill-child --mount-proc --propagation private --
                bash -c "$GRADE_NS_INIT" sandbox "$uid" "$dir" "$tmp" "$ROOT" 512
                "${limits[@]}" "${as_user[@]}" env -i "${envs[@]}")
            ;;
        user) SANDBOX=("${limits[@]}" "${as_user[@]}" env -i -C "$dir" "${envs[@]}") ;;
        none) SANDBOX=("${limits[@]}" env -i -C "$dir" "${envs[@]}") ;;
    esac
}

# After a sandboxed command: without namespaces, stop what its user left
# running (the namespaces end with their first process).
sandbox_cleanup() {
    if [[ "$GRADE_ISOLATION" == user ]]; then
        setpriv --reuid="$1" --regid="$1" --clear-groups --inh-caps=-all -- kill -KILL -1 2>/dev/null || true
    fi
}

# Checks an archive's members before anything is extracted: regular files
# and folders only, relative names without '..', at most 10000 members and
# 256 MiB. Prints why not, and fails, when it is refused.
grade_check_archive() {
    local archive="$1" names types count sizes
    # a FIFO or a device would block the reading below, or never end
    [[ -f "$archive" ]] || { echo "not a folder, nor a file (.tar, .tar.gz or .zip)"; return 1; }
    shopt -s nocasematch
    case "$archive" in
        *.zip)
            shopt -u nocasematch
            command -v unzip >/dev/null || { echo "a .zip needs unzip, which is not installed (apt-get install unzip)"; return 1; }
            names="$(unzip -Z1 "$archive" 2>/dev/null)" || { echo "not a readable .zip archive"; return 1; }
            types="$(unzip -Z "$archive" 2>/dev/null | sed '1,2d;$d')"
            sizes="$(awk '{ s += $4 } END { print s + 0 }' <<<"$types")"
            ;;
        *.tar | *.tar.gz | *.tgz)
            shopt -u nocasematch
            names="$(tar -tf "$archive" 2>/dev/null)" || { echo "not a readable tar archive"; return 1; }
            types="$(tar -tvf "$archive" 2>/dev/null)"
            sizes="$(awk '{ s += $3 } END { print s + 0 }' <<<"$types")"
            ;;
        *)
            shopt -u nocasematch
            echo "not a folder, .tar, .tar.gz or .zip"
            return 1
            ;;
    esac
    count="$(grep -c . <<<"$names" || true)"
    [[ "$count" -gt 0 ]] || { echo "the archive is empty"; return 1; }
    [[ "$count" -le 10000 ]] || { echo "the archive has $count members (at most 10000)"; return 1; }
    [[ "$(grep -c . <<<"$types" || true)" -eq "$count" ]] || { echo "the archive has a member whose name cannot be read safely"; return 1; }
    [[ "$sizes" -le $((256 * 1048576)) ]] || { echo "the archive unpacks to $((sizes / 1048576)) MiB (at most 256)"; return 1; }
    local bad
    bad="$(grep -m1 -E '^/|(^|/)\.\.(/|$)' <<<"$names" || true)"
    [[ -z "$bad" ]] || { echo "the archive has a member outside its own folder: $bad"; return 1; }
    bad="$(grep -m1 -F '\' <<<"$names" || true)"
    [[ -z "$bad" ]] || { echo "the archive has a member with an unusual name: $bad"; return 1; }
    bad="$(grep -m1 -v -E '^[-d]' <<<"$types" || true)"
    if [[ -n "$bad" ]]; then  # its name: what follows the mode, owner, size, date and time (tar), or more (zip)
        bad="$(awk -v zip="$([[ "$archive" == *.[zZ][iI][pP] ]] && echo 1)" \
            '{ n = zip ? 8 : 5; for (i = 1; i <= n; i++) $i = ""; sub(/^ +/, ""); print }' <<<"$bad")"
        echo "the archive has a member that is not a file or a folder (a link or a device): $bad"
        return 1
    fi
}

# Unpacks a checked archive into the empty folder DEST.
grade_unpack() {
    local archive="$1" dest="$2"
    shopt -s nocasematch
    if [[ "$archive" == *.zip ]]; then
        shopt -u nocasematch
        unzip -q -n "$archive" -d "$dest" >/dev/null 2>&1
    else
        shopt -u nocasematch
        tar -xf "$archive" -C "$dest" --no-same-owner --no-same-permissions 2>/dev/null
    fi
}

# grade_submission I PATH NAME OUT LIMIT: grades one submission; writes
# OUT/NAME/{results.json,ignored.txt,logs/}, GRADE_WORK/rows.I (its CSV rows)
# and GRADE_WORK/summary.I.
grade_submission() {
    local i="$1" sub="$2" name="$3" out="$4" limit="$5"
    trap '[[ -n "$CW_CHILD" ]] && kill -KILL -- "-$CW_CHILD" 2>/dev/null; exit 143' TERM INT
    local dir="$out/$name" work="$GRADE_WORK/$i" uid=$((GRADE_UID_BASE + i % 512)) start refused="" files
    start="$(now_us)"
    rm -rf -- "$dir"
    mkdir -p "$dir/logs" "$work/tmp"
    chmod 711 "$work"  # its user passes through to its own folders
    if [[ "$GRADE_ISOLATION" != none ]] && getent passwd "$uid" >/dev/null; then
        grade_error "$i" "user id $uid is taken on this machine: grade again (another run picks other ids)"
        exit 1
    fi

    # the files: a folder as it is, an archive once checked and unpacked
    files="$sub"
    if [[ ! -d "$sub" || -L "$sub" ]]; then
        if refused="$(grade_check_archive "$sub")"; then
            files="$work/unpacked"
            mkdir -m 700 "$files"
            grade_unpack "$sub" "$files" || refused="the archive could not be unpacked"
        else
            [[ -n "$refused" ]] || refused="the archive was refused"
        fi
    fi
    declare -A found=()
    local known=() d id type path rel
    for d in "${GRADE_DIRS[@]}"; do known+=("${d#exercises/}"); done
    : >"$dir/ignored.txt"
    if [[ -z "$refused" ]]; then
        # every entry, by type, without following links: only regular files
        # at .../exercises/NN_lesson/K_name/student.cpp are taken
        while IFS= read -r -d '' type && IFS= read -r -d '' path; do
            [[ "$type" == d ]] && continue
            rel="$path"
            id=""
            if [[ "$type" == f && "$rel" =~ (^|/)exercises/([0-9][0-9]_[^/]+/[0-9]+_[^/]+)/student\.cpp$ ]]; then
                for d in "${known[@]}"; do
                    [[ "$d" == "${BASH_REMATCH[2]}" ]] && id="$(exercise_id "exercises/$d")"
                done
            fi
            if [[ -n "$id" && -z "${found[$id]:-}" ]]; then
                found[$id]="$rel"
            elif [[ -n "$id" && ${#rel} -lt ${#found[$id]} ]]; then  # two copies: the shallower one counts
                printf '%s (another copy of exercise %s)\n' "${found[$id]}" "$id" >>"$dir/ignored.txt"
                found[$id]="$rel"
            elif [[ -n "$id" ]]; then
                printf '%s (another copy of exercise %s)\n' "$rel" "$id" >>"$dir/ignored.txt"
            else
                printf '%s\n' "$rel$([[ "$type" != f ]] && echo " (not a regular file)")" >>"$dir/ignored.txt"
            fi
        done < <(find "$files" -mindepth 1 -printf '%y\0%P\0' 2>/dev/null)
    fi

    # each exercise: build, then check
    local title status message seconds points max warnings rows="" tests=() score=0 max_score=0 ex
    local counts=""
    for d in "${GRADE_DIRS[@]}"; do
        id="$(exercise_id "$d")"
        title="$(exercise_title "$d")"
        max="${GRADE_POINTS[$id]}"
        status="" message="" seconds="" warnings=""
        local build_log="$dir/logs/$id.build.log" check_log="$dir/logs/$id.check.log" output=""
        if [[ -n "$refused" ]]; then
            status="refused" message="$refused"
        elif [[ -z "${found[$id]:-}" ]]; then
            status="not submitted" message="no ${d}/student.cpp in the submission"
        elif [[ $(stat -c %s "$files/${found[$id]}") -gt 1048576 ]]; then
            status="does not build" message="student.cpp is larger than 1 MiB"
        else
            ex="$work/$id"
            mkdir -p "$ex"
            cat -- "$files/${found[$id]}" >"$ex/student.cpp"
            chown -R "$uid:$uid" "$ex" "$work/tmp" 2>/dev/null || true
            grade_build "$id" "$uid" "$ex" "$work/tmp" "$build_log"
            if [[ $GRADE_BUILD_RC -ne 0 ]]; then
                status="does not build"
                message="$(build_message "$build_log" "$ex/")"
                [[ $GRADE_BUILD_RC -eq 124 || $GRADE_BUILD_RC -eq 137 ]] && message="the build did not finish in 120 s"
            else
                sandbox_prefix "$uid" "$ex" "$work/tmp" CORELAB_CHECK_FD=9
                run_with_verdict "$check_log" "$limit" "${SANDBOX[@]}" "$ex/checker"
                sandbox_cleanup "$uid"
                status="$VERDICT_STATUS" message="$VERDICT_MESSAGE" seconds="$VERDICT_SECONDS"
            fi
            warnings="$(student_warnings "$build_log")"
        fi
        points=0
        [[ "$status" == "done" ]] && points="$max"
        score="$(awk -v a="$score" -v b="$points" 'BEGIN { print a + b }')"
        max_score="$(awk -v a="$max_score" -v b="$max" 'BEGIN { print a + b }')"
        counts+="$status"$'\n'
        rows+="$(csv_field "$name"),$id,$(csv_field "$status"),$points,$max,$(csv_field "$message"),$seconds"$'\n'
        output="$status${message:+: $message}"
        [[ -n "$warnings" ]] && output+=$'\n\n'"warnings:"$'\n'"$(head -n 20 <<<"$warnings")"
        if [[ -f "$check_log" ]]; then
            output+=$'\n\n'"checker output:"$'\n'"$(head -c 6000 "$check_log")"
        elif [[ "$status" == "does not build" && -f "$build_log" ]]; then
            output+=$'\n\n'"compiler output:"$'\n'"$(compiler_output "$build_log" "$ex/")"
        fi
        tests+=("$(printf '    {"name": %s, "number": %s, "score": %s, "max_score": %s, "status": "%s", "output": %s, "visibility": "visible"}' \
            "$(json_string "$title")" "$(json_string "$id")" "$points" "$max" \
            "$([[ "$status" == "done" ]] && echo passed || echo failed)" "$(json_string "$output")")")
    done
    printf '%s' "$rows" >"$GRADE_WORK/rows.$i"

    # Gradescope's results.json
    local summary ignored seconds_all
    ignored="$(grep -c . "$dir/ignored.txt" || true)"
    seconds_all="$(seconds_since "$start")"
    summary="Graded by ./course grade with the course's own checkers: only exercises/**/student.cpp of the submission is used."
    [[ -n "$refused" ]] && summary+=$'\n'"The submission was refused: $refused"
    if [[ "$ignored" -gt 0 ]]; then
        summary+=$'\n'"Ignored ($ignored): $(head -n 50 "$dir/ignored.txt" | cut -c1-200 | paste -sd ';' | sed 's/;/; /g')"
        [[ $ignored -le 50 ]] || summary+="; ..."
    fi
    {
        printf '{\n  "score": %s,\n  "max_score": %s,\n  "execution_time": %s,\n' "$score" "$max_score" "${seconds_all%.*}"
        printf '  "output": %s,\n  "visibility": "visible",\n  "stdout_visibility": "hidden",\n  "tests": [\n' "$(json_string "$summary")"
        local k
        for k in "${!tests[@]}"; do
            printf '%s%s\n' "${tests[k]}" "$([[ $k -lt $((${#tests[@]} - 1)) ]] && echo ,)"
        done
        printf '  ]\n}\n'
    } >"$dir/results.json"

    # leftovers of its user: files in the world-writable folders (the
    # namespaces' own folders are gone already)
    grade_leftovers "$uid"
    rm -rf -- "$work"
    local c tally=""
    for c in "${GRADE_STATUSES[@]}"; do tally+="$(grep -cxF "$c" <<<"$counts" || true)"$'\t'; done
    printf '%s\t%s\t%s\t%s%s\t%s\n' "$name" "$score" "$max_score" "$tally" "$seconds_all" "$ignored" >"$GRADE_WORK/summary.$i"
}

# grade_build ID UID DIR TMP LOG: compiles DIR/student.cpp and links DIR/checker
# in the sandbox (120 s at most); sets GRADE_BUILD_RC.
grade_build() {
    local id="$1" uid="$2" ex="$3" tmp="$4" log="$5" compile link q
    compile="$(<"$GRADE_WORK/recipes/$id.compile")"
    link="$(<"$GRADE_WORK/recipes/$id.link")"
    q="$(printf '%q' "$ex/student.cpp")"
    compile="${compile//@SRC@/$q}"
    q="$(printf '%q' "$ex/student.o")"
    compile="${compile//@OBJ@/$q}"
    link="${link//@OBJ@/$q}"
    q="$(printf '%q' "$ex/checker")"
    link="${link//@EXE@/$q}"
    GRADE_BUILD_RC=0
    local memory="$GRADE_MEMORY_MB"
    [[ $GRADE_MEMORY_MB -ge 2048 ]] || GRADE_MEMORY_MB=2048  # the compiler's own needs
    sandbox_prefix "$uid" "$ex" "$tmp"
    GRADE_MEMORY_MB="$memory"
    timeout -k 5 120 "${SANDBOX[@]}" bash -c "cd $(printf '%q' "$ROOT/build/release") && $compile && $link" \
        >"$log" 2>&1 </dev/null &
    CW_CHILD=$!
    { wait "$CW_CHILD" || GRADE_BUILD_RC=$?; } 2>/dev/null
    CW_CHILD=""
    sandbox_cleanup "$uid"
}

# The table on the terminal: one row per submission.
grade_summary() {
    local n="$1" total="$2" jobs="$3" i name score max ndone notyet nobuild timedout crashed notsent refused secs ignored
    printf '\n%-24s %9s %5s %8s %9s %6s %8s %9s %8s %8s\n' submission score "done" "not yet" "no build" "timed" crashed "not sent" ignored seconds
    for ((i = 0; i < n; i++)); do
        [[ -f "$GRADE_WORK/summary.$i" ]] || continue
        IFS=$'\t' read -r name score max ndone notyet nobuild timedout crashed notsent refused secs ignored <"$GRADE_WORK/summary.$i"
        [[ "$refused" -gt 0 ]] && notsent="refused"
        printf '%-24s %9s %5s %8s %9s %6s %8s %9s %8s %8s\n' "${name:0:24}" "$score/$max" "$ndone" "$notyet" "$nobuild" \
            "$timedout" "$crashed" "$notsent" "$ignored" "$secs"
    done
    printf '\ngraded %d submission(s) in %s s, %d at a time: %s s per submission\n' "$n" "$total" "$jobs" \
        "$(awk -v t="$total" -v n="$n" 'BEGIN { printf "%.1f", t / n }')"
}
