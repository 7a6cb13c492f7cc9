#!/usr/bin/env bash
# The Galaxy / Automation Hub import gate on the tarball users install: build it, run
# galaxy-importer on it (from .venv/importer: it pins ansible-lint and attrs versions the
# development venv does not share) and fail on any ERROR or WARNING it logs.
#   galaxy-importer.sh [TARBALL]   default: build one into build/dist
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.venv/importer"
bash "$ROOT/scripts/bootstrap.sh" importer  # built on first use (make test does not wait for it)
tarball="${1:-}"
if [ -z "$tarball" ]; then
    rm -rf "$ROOT/build/dist" && mkdir -p "$ROOT/build/dist"
    "$ROOT/.venv/bin/ansible-galaxy" collection build --force --output-path "$ROOT/build/dist" "$ROOT" >/dev/null
    tarballs=("$ROOT"/build/dist/m365ops-activation-*.tar.gz)
    tarball="${tarballs[0]}"
fi
work="$ROOT/build/galaxy-importer"
rm -rf "$work" && mkdir -p "$work/tmp"
{ cat "$ROOT/scripts/galaxy-importer.cfg"; echo "ANSIBLE_LOCAL_TMP = $work/tmp"; echo "TMP_ROOT_DIR = $work/tmp"; } > "$work/galaxy-importer.cfg"
# The importer runs ansible-doc and ansible-lint from PATH: its own venv's.
rc=0
(cd "$work" && GALAXY_IMPORTER_CONFIG="$work/galaxy-importer.cfg" PATH="$VENV/bin:$PATH" \
    "$VENV/bin/python" -m galaxy_importer.main "$tarball") > "$work/output.txt" 2>&1 || rc=$?
grep -v '^Loading ' "$work/output.txt" || true
problems=$(grep -cE '^(WARNING|ERROR)' "$work/output.txt" || true)
if [ $rc -ne 0 ] || [ "$problems" -ne 0 ] || ! tail -1 "$work/output.txt" | grep -q 'Importer processing completed successfully'; then
    echo "galaxy-importer: FAILED (exit $rc, $problems error/warning line(s)); full log: $work/output.txt" >&2
    exit 1
fi
echo "galaxy-importer: $(basename "$tarball"): 0 errors, 0 warnings"
