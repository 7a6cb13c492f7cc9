#!/usr/bin/env bash
# Lay out build/collections/ansible_collections/{m365ops/activation,ansible/windows} as
# symlinks, so pytest, ansible-playbook and molecule import this checkout under its
# collection name without copying it.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STAGE="$ROOT/build/collections/ansible_collections"
mkdir -p "$STAGE/m365ops" "$STAGE/ansible"
ln -sfn "$ROOT" "$STAGE/m365ops/activation"
ln -sfn "$ROOT/.collections/ansible_collections/ansible/windows" "$STAGE/ansible/windows"
