#!/usr/bin/env bash
# Pester suite under pwsh. pwsh comes from $PWSH or PATH; without it we say so loudly
# and skip, because PowerShell is not installable from the registries these machines use.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PWSH_BIN="${PWSH:-$(command -v pwsh || true)}"
if [ -z "$PWSH_BIN" ] || [ ! -x "$PWSH_BIN" ]; then
    cat >&2 <<'MSG'
########################################################################
##  PESTER SKIPPED: no pwsh found (set PWSH=/path/to/pwsh or put pwsh  ##
##  on PATH). The PowerShell modules and utils were NOT tested.       ##
########################################################################
MSG
    exit 0
fi
cd "$ROOT"
"$PWSH_BIN" -NoLogo -NoProfile -NonInteractive -File tests/pester/Invoke-PesterSuite.ps1 "$@"
