#!/usr/bin/env bash
# `make test`: every part runs even when an earlier one failed, so one run shows all
# that is broken; the exit status is non-zero if any part failed.
#
# PowerShell is found once (tests/lab/toolchain.py: $PWSH, pwsh on PATH, then
# ../shared/tools/pwsh/pwsh beside the repository). Without it every part that needs it
# is skipped with one loud line saying why, the rest runs, and the summary counts what
# was skipped. With M365OPS_TEST_STRICT=1 (.ci/run sets it) a skipped part or a skipped
# test is a failure: CI must run everything.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 1
PY="$ROOT/.venv/bin/python"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/build/collections" PYTHONPATH="$ROOT/build/collections"
export ANSIBLE_CONFIG="$ROOT/tests/ansible.cfg"
export PATH="$ROOT/.venv/bin:$PATH"
# Every pwsh the suite starts (Pester, the functional module runs, validate-modules) is short-lived:
# tiered PGO's instrumentation costs it ~10% CPU and never pays off (the lab sets the same for its hosts).
export DOTNET_TieredPGO=0
STRICT="${M365OPS_TEST_STRICT:-0}"
NO_PWSH=""
SKIP=77   # a part's exit status for "skipped, and it said why"

loud() {  # one line that cannot be missed in a long log
    printf '\n#### SKIPPED: %s ####\n\n' "$*" >&2
}

if PWSH="$("$PY" -m tests.lab.toolchain pwsh 2>/tmp/m365ops-no-pwsh.$$)"; then
    export PWSH
    # shellcheck disable=SC2016  # $PSVersionTable is PowerShell's, not the shell's
    echo "PowerShell: $PWSH ($("$PWSH" -NoLogo -NoProfile -Command '$PSVersionTable.PSVersion.ToString()' 2>/dev/null))"
else
    NO_PWSH="$(cat /tmp/m365ops-no-pwsh.$$)"
    unset PWSH
fi
rm -f /tmp/m365ops-no-pwsh.$$

run_pytest() {
    # pytest exits 5 when a folder has no test yet; that is not a failure of the suite.
    # --dist loadfile: a test module's lab (module-scoped fixture) and the state its
    # tests build on in file order (tests/lab/tests/test_e2e.py) stay on one worker.
    # Three workers on two cores: the lab files spend much of their time waiting (restarts,
    # WS-Man polls, backoff), and a third worker fills those waits. Measured with .ci/run on
    # one 2-core machine: 851 s with two workers, 743-902 s with three (the spread is the
    # machine's load: the slow run's CPU time was a quarter higher for the same work).
    # What it skipped goes to $NOTES/pytest (the part may run in a background lane).
    local dirs=() d log rc skipped
    for d in tests/functional tests/lab tests/ee tests/browser tests/playbooks tests/awx tests/release; do
        [ -d "$d" ] && dirs+=("$d")
    done
    [ ${#dirs[@]} -eq 0 ] && { echo "no pytest folders"; return 0; }
    log="$(mktemp)"
    $PY -m pytest -q -rs -p no:cacheprovider -p tests.longest_first -n "${M365OPS_PYTEST_WORKERS:-3}" --dist loadfile --no-loadscope-reorder "${dirs[@]}" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 5 ] && rc=0
    skipped="$(tail -n 3 "$log" | grep -oE '[0-9]+ skipped' | grep -oE '[0-9]+' || true)"
    rm -f "$log"
    if [ "$rc" -eq 0 ] && [ -n "$skipped" ]; then
        echo "$skipped tests skipped (reasons above, under 'short test summary info')" > "$NOTES/pytest"
        [ "$STRICT" = 1 ] && { echo "M365OPS_TEST_STRICT: $skipped tests skipped: nothing may skip here" >&2; return 1; }
    fi
    return "$rc"
}

run_sanity() {  # $1: sanity-tarball or sanity-workshop (scripts/ansible-test.sh)
    if [ -z "${PWSH:-}" ]; then
        # validate-modules reads the .ps1 argument specs with pwsh; everything else runs.
        loud "$1: validate-modules needs PowerShell ($NO_PWSH)"
        bash scripts/ansible-test.sh "$1" --skip-test validate-modules || return $?
        return $SKIP
    fi
    bash scripts/ansible-test.sh "$1"
}

run_pester() {
    if [ -z "${PWSH:-}" ]; then
        loud "pester: the PowerShell modules and utils were NOT tested ($NO_PWSH)"
        return $SKIP
    fi
    bash scripts/pester.sh
}

declare -a PARTS=(
    # issue 17 (release gates, docs/development.md "Release gates"): sanity runs on the
    # extracted tarball, plus the git-tree files the tarball leaves out; galaxy-importer on the tarball.
    "sanity|run_sanity sanity-tarball"
    "sanity-workshop|run_sanity sanity-workshop"
    "galaxy-importer|bash scripts/galaxy-importer.sh"
    "units|bash scripts/ansible-test.sh units"
    "units-2.16|bash scripts/ansible-test.sh units-compat"
    "pester|run_pester"
    "pytest|run_pytest"
    "ansible-lint|$ROOT/.venv/bin/ansible-lint"
)
if [ -n "${TEST_PARTS:-}" ]; then  # e.g. TEST_PARTS="pester pytest" make test
    declare -a chosen=()
    for p in "${PARTS[@]}"; do for want in $TEST_PARTS; do [ "${p%%|*}" = "$want" ] && chosen+=("$p"); done; done
    PARTS=("${chosen[@]}")
fi

NOTES="$(mktemp -d)"
trap 'rm -rf "$NOTES"' EXIT

run_part() {  # $1 name, $2 command; prints the part's output, leaves "rc secs" in $NOTES/<name>.rc
    local name="$1" cmd="$2" start rc
    start=$(date +%s)
    case "$cmd" in
        run_*) $cmd; rc=$? ;;  # word-split on purpose: "run_sanity sanity-tarball"
        *) bash -c "$cmd"; rc=$? ;;
    esac
    echo "$rc $(( $(date +%s) - start ))" > "$NOTES/$name.rc"
}

# Two lanes: pytest (three workers, mostly waiting on the lab's pwsh processes) runs in the
# background while the other parts, each a single process, run one after the other. On
# two cores that keeps both busy; the whole suite was 19 minutes one part at a time.
total_start=$(date +%s)
lane=""
if [ "${M365OPS_TEST_LANES:-2}" = 2 ]; then
    for part in "${PARTS[@]}"; do
        if [ "${part%%|*}" = pytest ]; then
            lane="$NOTES/pytest.log"
            echo "pytest runs in the background lane; its output follows the other parts"
            run_part pytest run_pytest > "$lane" 2>&1 &
            lane_pid=$!
        fi
    done
fi
for part in "${PARTS[@]}"; do
    name="${part%%|*}"; cmd="${part#*|}"
    [ -n "$lane" ] && [ "$name" = pytest ] && continue
    echo; echo "==================== $name ===================="
    run_part "$name" "$cmd"
done
if [ -n "$lane" ]; then
    wait "$lane_pid"
    echo; echo "==================== pytest ===================="
    cat "$lane"
fi

passed=0; failed=0; skipped=0; summary=()
for part in "${PARTS[@]}"; do
    name="${part%%|*}"
    read -r rc secs < "$NOTES/$name.rc" || { rc=1; secs=0; }
    note=""; [ -f "$NOTES/$name" ] && note=", $(cat "$NOTES/$name")"
    if [ "$rc" -eq $SKIP ] && [ "$STRICT" = 1 ]; then
        failed=$((failed+1)); summary+=("  FAIL  $name (${secs}s): skipped, and M365OPS_TEST_STRICT forbids skipping")
    elif [ "$rc" -eq $SKIP ]; then
        skipped=$((skipped+1)); summary+=("  SKIP  $name (${secs}s): see its '#### SKIPPED' line${NO_PWSH:+ ($NO_PWSH)}")
    elif [ "$rc" -eq 0 ]; then
        passed=$((passed+1)); summary+=("  ok    $name (${secs}s)$note")
    else
        failed=$((failed+1)); summary+=("  FAIL  $name (${secs}s, exit $rc)")
    fi
done
echo; echo "==================== summary ===================="
printf '%s\n' "${summary[@]}"
echo "total: $(( $(date +%s) - total_start ))s"
echo "parts: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
