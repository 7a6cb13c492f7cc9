#!/usr/bin/env bash
# Render CHANGELOG.rst and changelogs/changelog.yaml from changelogs/fragments with
# antsibull-changelog, as the release of galaxy.yml's version does, without consuming the
# fragments: the release runs in a staged copy (from an empty changelog.yaml, so the result
# depends on the fragments alone) and only the two rendered files come back. The tarball
# then carries the release in both (Galaxy reads changelog.yaml). `--check` compares
# instead of writing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
mode="${1:-write}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
COLL="$TMP/ansible_collections/m365ops/activation"
mkdir -p "$COLL"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' \
    | tar --null -T - -cf -) | (cd "$COLL" && tar -xf -)
printf -- '---\nancestor: null\nreleases: {}\n' > "$COLL/changelogs/changelog.yaml"
version="$("$ROOT/.venv/bin/python" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["version"])' "$ROOT/galaxy.yml")"
# The "new plugins" section comes from ansible-doc, which must find this collection.
(cd "$COLL" && PATH="$ROOT/.venv/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$TMP:$ROOT/.collections" \
    "$ROOT/.venv/bin/antsibull-changelog" release --version "$version" --date "${CHANGELOG_DATE:-2026-11-26}" >/dev/null)
if [ "$mode" = "--check" ]; then
    for f in CHANGELOG.rst changelogs/changelog.yaml; do
        if ! diff -u "$ROOT/$f" "$COLL/$f"; then
            echo "$f is out of date with changelogs/fragments: run 'make changelog'" >&2
            exit 1
        fi
    done
else
    cp "$COLL/CHANGELOG.rst" "$ROOT/CHANGELOG.rst"
    cp "$COLL/changelogs/changelog.yaml" "$ROOT/changelogs/changelog.yaml"
    echo "CHANGELOG.rst and changelogs/changelog.yaml rendered for $version"
fi
