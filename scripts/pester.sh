#!/usr/bin/env bash
# Pester suite under pwsh (tests/lab/toolchain.py finds it: $PWSH, pwsh on PATH, then
# ../shared/tools/pwsh/pwsh beside the repository). Without it we say so loudly and exit
# 77, which scripts/test.sh counts as a skipped part: PowerShell is not installable from
# the registries these machines use.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
if ! PWSH_BIN="$("$ROOT/.venv/bin/python" -m tests.lab.toolchain pwsh)"; then
    echo "#### SKIPPED: pester: the PowerShell modules and utils were NOT tested ####" >&2
    exit 77
fi
"$PWSH_BIN" -NoLogo -NoProfile -NonInteractive -File tests/pester/Invoke-PesterSuite.ps1 "$@"
