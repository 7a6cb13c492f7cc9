#!/usr/bin/env bash
# Build the development toolchain from nothing: .venv with pinned ansible-core 2.21
# (Python >= 3.12), .venv/compat-2.16 with ansible-core 2.16 (Python 3.11) for the unit run on the
# lowest ansible-core meta/runtime.yml promises, .venv/importer with galaxy-importer (the
# Galaxy / Automation Hub import gate; its pins clash with .venv's), ansible.windows taken
# out of the `ansible` wheel on PyPI (no Galaxy needed), and the offline stand-in for
# ansible-test's pip bootstrap script.
# Idempotent: a second run only checks what is there.
#
#   bootstrap.sh [core] [compat] [importer]   default: all three
# core is what everything needs (.venv, ansible.windows, the get-pip stand-in); compat and
# importer serve one part of `make test` each, which builds its own on first use
# (scripts/ansible-test.sh units-compat, scripts/galaxy-importer.sh): the test lanes start
# without waiting for them.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

ANSIBLE_WHEEL_VERSION=12.3.0   # carries ansible.windows 3.3.0
CORE_216=2.16.19
GALAXY_IMPORTER=0.4.44
say() { printf '[bootstrap] %s\n' "$*" >&2; }
# Some images point pip at local mirror folders that may not exist; pip then warns once
# per package. Keep the output readable but keep pip's exit status.
pip_quiet() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" >&2 || true; }; }

python_version_ok() {  # $1 python, $2 minimum minor (3.x)
    "$1" -c "import sys; sys.exit(0 if sys.version_info[:2] >= (3, $2) else 1)" 2>/dev/null
}

find_python() {  # $1 minimum minor, $2.. candidates by name
    local min=$1; shift
    local cand
    for cand in "$@"; do
        if command -v "$cand" >/dev/null 2>&1 && python_version_ok "$(command -v "$cand")" "$min"; then
            command -v "$cand"; return 0
        fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        for cand in $(printf '%s\n' "$(pyenv root)"/versions/*/bin/python3 | sort -rV); do
            if [ -x "$cand" ] && python_version_ok "$cand" "$min"; then echo "$cand"; return 0; fi
        done
    fi
    return 1
}

PY312="${PYTHON:-}"
if [ -n "$PY312" ]; then
    python_version_ok "$PY312" 12 || { say "PYTHON=$PY312 is older than 3.12; ansible-core 2.21 needs >= 3.12"; exit 1; }
else
    PY312="$(find_python 12 python3.13 python3.12 python3)" || {
        say "no Python >= 3.12 found (looked at \$PYTHON, python3.13, python3.12, python3, pyenv versions)"; exit 1; }
fi
say "Python for ansible-core 2.21: $PY312 ($("$PY312" --version 2>&1))"

# ansible-test --venv downloads get-pip from an Ansible CI host we cannot reach; give it a
# stand-in that uses ensurepip and then plain pip against PyPI.
get_pip_stand_in() {  # $1: a venv whose ansible-test gets the stand-in
    local venv=$1 pipver stand_in
    pipver=$("$venv/bin/python" - <<'PY' 2>/dev/null || true
import re, pathlib, ansible_test
src = (pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py").read_text()
# The cache file is named after pip's whole version: get_pip_25_2.py (2.21), get_pip_23_1_2.py (2.16).
m = re.search(r"pip=['\"]?(\d+(?:\.\d+)+)", src) or re.search(r"PIP_VERSION\s*=\s*'?(\d+(?:\.\d+)+)", src)
print(m.group(1).replace(".", "_") if m else "")
PY
)
    [ -n "$pipver" ] || return 0
    mkdir -p "$HOME/.ansible/test/cache"
    stand_in="$HOME/.ansible/test/cache/get_pip_${pipver}.py"
    cp "$ROOT/scripts/get_pip_offline.py" "$stand_in"
}

core() {
    if [ ! -x .venv/bin/python ] || ! python_version_ok .venv/bin/python 12; then
        rm -rf .venv
        "$PY312" -m venv .venv
    fi
    if ! cmp -s requirements-dev.txt .venv/.requirements-installed 2>/dev/null; then
        pip_quiet .venv/bin/python -m pip install -q --upgrade pip
        pip_quiet .venv/bin/python -m pip install -q -r requirements-dev.txt
        cp requirements-dev.txt .venv/.requirements-installed
    fi
    say "$(.venv/bin/ansible --version | sed -n 1p)"

    # ansible.windows without Galaxy: it ships inside the `ansible` package on PyPI.
    COLL_DIR="$ROOT/.collections"
    if [ ! -f "$COLL_DIR/ansible_collections/ansible/windows/MANIFEST.json" ]; then
        mkdir -p .cache/wheels
        if ! ls .cache/wheels/ansible-"$ANSIBLE_WHEEL_VERSION"-*.whl >/dev/null 2>&1; then
            pip_quiet .venv/bin/python -m pip download -q --no-deps -d .cache/wheels "ansible==$ANSIBLE_WHEEL_VERSION"
        fi
        rm -rf .cache/ansible-wheel && mkdir -p .cache/ansible-wheel
        .venv/bin/python - "$(ls .cache/wheels/ansible-"$ANSIBLE_WHEEL_VERSION"-*.whl)" .cache/ansible-wheel <<'PY'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as zf:
    zf.extractall(dest, [n for n in zf.namelist() if n.startswith("ansible_collections/ansible/windows/")])
PY
        .venv/bin/ansible-galaxy collection install --offline --force -p "$COLL_DIR" \
            .cache/ansible-wheel/ansible_collections/ansible/windows >/dev/null
        rm -rf .cache/ansible-wheel
    fi
    say "ansible.windows $(.venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['collection_info']['version'])" "$COLL_DIR/ansible_collections/ansible/windows/MANIFEST.json") in $COLL_DIR"

    get_pip_stand_in .venv
}

compat() {
    # ansible-core 2.16 on Python 3.11: the lowest ansible-core meta/runtime.yml promises (what
    # stock AWX / AAP execution environments in wide use carry). 2.16 runs on Python 3.10-3.12.
    PY311="${PYTHON311:-}"
    if [ -z "$PY311" ]; then
        pyenv311=""
        if command -v pyenv >/dev/null 2>&1; then
            pyenv311="$(printf '%s\n' "$(pyenv root)"/versions/3.11*/bin/python3.11 | sort -V | tail -1)"
        fi
        for cand in python3.11 "$pyenv311"; do
            if [ -n "$cand" ] && command -v "$cand" >/dev/null 2>&1; then PY311="$(command -v "$cand")"; break; fi
        done
    fi
    if [ -n "$PY311" ]; then
        if [ ! -x .venv/compat-2.16/bin/ansible-test ] || ! .venv/compat-2.16/bin/ansible --version 2>/dev/null | grep -q "core $CORE_216"; then
            rm -rf .venv/compat-2.16
            "$PY311" -m venv .venv/compat-2.16
            pip_quiet .venv/compat-2.16/bin/python -m pip install -q --upgrade pip
            pip_quiet .venv/compat-2.16/bin/python -m pip install -q "ansible-core==$CORE_216"
        fi
        say "compat: $(.venv/compat-2.16/bin/ansible --version | sed -n 1p) on $("$PY311" --version 2>&1)"
    else
        say "WARNING: no Python 3.11 found; the ansible-core $CORE_216 unit run will be skipped"
        return 0
    fi
    get_pip_stand_in .venv/compat-2.16
}

importer() {
    # galaxy-importer in a venv of its own: it pins attrs < 24 and flake8 < 7, and brings its
    # own ansible-lint; the importer runs ansible-doc and ansible-lint from this venv.
    if [ ! -x .venv/importer/bin/python ] || ! .venv/importer/bin/python -m pip show galaxy-importer 2>/dev/null | grep -q "^Version: $GALAXY_IMPORTER\$"; then
        rm -rf .venv/importer
        "$PY312" -m venv .venv/importer
        pip_quiet .venv/importer/bin/python -m pip install -q --upgrade pip
        pip_quiet .venv/importer/bin/python -m pip install -q "galaxy-importer==$GALAXY_IMPORTER" \
            "$(grep '^ansible-core==' requirements-dev.txt)" "$(grep '^ansible-lint==' requirements-dev.txt)"
    fi
    say "galaxy-importer $GALAXY_IMPORTER in .venv/importer"
}

[ $# -gt 0 ] || set -- core compat importer
for what in "$@"; do
    case "$what" in
        core|compat|importer) "$what" ;;
        *) say "unknown part $what (core, compat, importer)"; exit 2 ;;
    esac
done
say "ready: $*"
