#!/usr/bin/env bash
# Run ansible-test on a staged copy of this checkout. ansible-test insists on
# .../ansible_collections/<namespace>/<name> inside a git work tree, and a symlink does
# not do (it resolves the real path), so we copy what git would ship (tracked files and
# untracked, non-ignored ones) and make that copy its own repository.
#   ansible-test.sh sanity          every sanity test but pslint (no PSScriptAnalyzer here)
#   ansible-test.sh sanity-tarball  the same on the extracted build tarball (what Galaxy and
#                                   Automation Hub certification test), in build/ansible-test-tarball
#   ansible-test.sh sanity-workshop the same on the git tree, limited to the files the tarball
#                                   leaves out (tests/lab, benchmarks, scripts, ...): with
#                                   sanity-tarball, every file of the git tree is tested once
#   ansible-test.sh units           unit tests on ansible-core 2.21 (.venv)
#   ansible-test.sh units-compat    unit tests on ansible-core 2.16 / Python 3.11 (.venv/compat-2.16)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
what="${1:?usage: ansible-test.sh sanity|sanity-tarball|sanity-workshop|units|units-compat [extra ansible-test args]}"; shift || true
STAGE="$ROOT/build/ansible-test"
[ "$what" = sanity-tarball ] && STAGE="$ROOT/build/ansible-test-tarball"
COLL="$STAGE/ansible_collections/m365ops/activation"

rm -rf "$COLL"
mkdir -p "$COLL" "$STAGE/ansible_collections/ansible"
if [ "$what" = sanity-tarball ]; then
    # What Galaxy / Automation Hub certification tests: the built tarball, extracted.
    mkdir -p "$ROOT/build/dist"
    rm -f "$ROOT"/build/dist/m365ops-activation-*.tar.gz
    "$ROOT/.venv/bin/ansible-galaxy" collection build --force --output-path "$ROOT/build/dist" "$ROOT" >/dev/null
    tarballs=("$ROOT"/build/dist/m365ops-activation-*.tar.gz)
    tarball="${tarballs[0]}"
    echo "ansible-test sanity on the extracted $(basename "$tarball")"
    tar -xzf "$tarball" -C "$COLL"
else
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' ) \
        | (cd "$ROOT" && tar --null -T - -cf -) | (cd "$COLL" && tar -xf -)
fi
rm -rf "$STAGE/ansible_collections/ansible/windows"
cp -r "$ROOT/.collections/ansible_collections/ansible/windows" "$STAGE/ansible_collections/ansible/windows"
(cd "$COLL" && git init -q && git add -A && git -c user.name=stage -c user.email=stage@invalid commit -qm stage)

PWSH_BIN="$("$ROOT/.venv/bin/python" -m tests.lab.toolchain pwsh 2>/dev/null || true)"
if [ -n "$PWSH_BIN" ]; then
    # validate-modules reads PowerShell argument specs by running pwsh from PATH.
    mkdir -p "$STAGE/bin"
    ln -sfn "$(realpath "$PWSH_BIN")" "$STAGE/bin/pwsh"
    export PATH="$STAGE/bin:$PATH"
fi

cd "$COLL"
case "$what" in
    sanity|sanity-tarball|sanity-workshop)
        if [ "$what" = sanity-workshop ]; then
            # The files of the git tree that the tarball does not hold (build_ignore, and
            # galaxy.yml, which the build turns into MANIFEST.json).
            "$ROOT/.venv/bin/ansible-galaxy" collection build --force --output-path "$STAGE/dist" "$COLL" >/dev/null
            mapfile -t targets < <(comm -23 <(git ls-files | sort) \
                <(tar -tzf "$STAGE"/dist/m365ops-activation-*.tar.gz | sort))
            rm -rf "$STAGE/dist"
            echo "ansible-test sanity on the ${#targets[@]} git-tree files the tarball leaves out"
            set -- "$@" "${targets[@]}"
        fi
        if [ -z "$PWSH_BIN" ] && [[ " $* " != *" --skip-test validate-modules "* ]]; then
            echo "ERROR: sanity needs pwsh (set PWSH or put pwsh on PATH): validate-modules reads the .ps1 argument specs with it;" \
                 "scripts/test.sh runs the rest without it (--skip-test validate-modules)" >&2
            exit 1
        fi
        echo "ansible-test sanity: skipping pslint - it needs PSScriptAnalyzer from the PowerShell Gallery, which these machines cannot reach"
        "$ROOT/.venv/bin/ansible-test" sanity --venv --python "$("$ROOT/.venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
            --skip-test pslint --color no "$@"
        ;;
    units)
        "$ROOT/.venv/bin/ansible-test" units --venv --python "$("$ROOT/.venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
            --color no --requirements "$@"
        ;;
    units-compat)
        bash "$ROOT/scripts/bootstrap.sh" compat  # built on first use (make test does not wait for it)
        if [ ! -x "$ROOT/.venv/compat-2.16/bin/ansible-test" ]; then
            echo "#### SKIPPED: units-2.16: .venv/compat-2.16 missing (no Python 3.11 at bootstrap) ####" >&2
            exit 77  # scripts/test.sh counts it as skipped (a failure under M365OPS_TEST_STRICT)
        fi
        "$ROOT/.venv/compat-2.16/bin/ansible-test" units --venv --python 3.11 --color no --requirements "$@"
        ;;
    *) echo "unknown: $what" >&2; exit 2 ;;
esac
