#!/usr/bin/env bash
# `make test`: every part runs even when an earlier one failed, so one run shows all
# that is broken; the exit status is non-zero if any part failed.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 1
PY="$ROOT/.venv/bin/python"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/build/collections" PYTHONPATH="$ROOT/build/collections"
export ANSIBLE_CONFIG="$ROOT/tests/ansible.cfg"
export PATH="$ROOT/.venv/bin:$PATH"

declare -a PARTS=(
    # issue 17 (release gates, docs/development.md "Release gates"): sanity runs on the
    # extracted tarball, plus the git-tree files the tarball leaves out; galaxy-importer on the tarball.
    "sanity|bash scripts/ansible-test.sh sanity-tarball"
    "sanity-workshop|bash scripts/ansible-test.sh sanity-workshop"
    "galaxy-importer|bash scripts/galaxy-importer.sh"
    "units|bash scripts/ansible-test.sh units"
    "units-2.16|bash scripts/ansible-test.sh units-compat"
    "pester|bash scripts/pester.sh"
    "pytest|(see below)"
    "ansible-lint|$ROOT/.venv/bin/ansible-lint"
)
if [ -n "${TEST_PARTS:-}" ]; then  # e.g. TEST_PARTS="pester pytest" make test
    declare -a chosen=()
    for p in "${PARTS[@]}"; do for want in $TEST_PARTS; do [ "${p%%|*}" = "$want" ] && chosen+=("$p"); done; done
    PARTS=("${chosen[@]}")
fi

passed=0; failed=0; summary=()
for part in "${PARTS[@]}"; do
    name="${part%%|*}"; cmd="${part#*|}"
    echo; echo "==================== $name ===================="
    start=$(date +%s)
    if [ "$name" = pytest ]; then
        # pytest exits 5 when a folder has no test yet; that is not a failure of the suite.
        # --dist loadfile: a test module's lab (module-scoped fixture) and the state its
        # tests build on in file order (tests/lab/test_e2e.py) stay on one worker.
        dirs=(); for d in tests/functional tests/lab tests/ee tests/browser tests/playbooks tests/awx tests/release; do [ -d "$d" ] && dirs+=("$d"); done
        if [ ${#dirs[@]} -eq 0 ]; then echo "no pytest folders"; rc=0
        else $PY -m pytest -q -p no:cacheprovider -n 2 --dist loadfile "${dirs[@]}"; rc=$?; [ $rc -eq 5 ] && rc=0; fi
    else
        bash -c "$cmd"; rc=$?
    fi
    secs=$(( $(date +%s) - start ))
    if [ $rc -eq 0 ]; then passed=$((passed+1)); summary+=("  ok    $name (${secs}s)")
    else failed=$((failed+1)); summary+=("  FAIL  $name (${secs}s, exit $rc)"); fi
done
echo; echo "==================== summary ===================="
printf '%s\n' "${summary[@]}"
echo "parts: $passed passed, $failed failed"
[ $failed -eq 0 ]
