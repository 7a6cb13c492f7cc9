"""Release checks: the built artifact holds the collection and nothing of the workshop,
and the collection documentation lints clean with antsibull-docs."""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STAGED = ROOT / "build" / "collections"

# Anything matching these must never reach the tarball users install.
FORBIDDEN_PARTS = {".venv", ".venv-2.19", ".cache", ".collections", "build", "reports",
                   "__pycache__", ".pytest_cache", ".hypothesis", ".git", ".ci",
                   "benchmarks", "scripts"}
# The loopback lab and ansible-test's output live under tests/ and never ship
# (extensions/molecule/lab, the scenario that drives the lab, does).
FORBIDDEN_PREFIXES = ("tests/lab/", "tests/output/")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(out), str(ROOT)],
                   check=True, capture_output=True, text=True)
    tarballs = list(out.glob("m365ops-activation-*.tar.gz"))
    assert len(tarballs) == 1, tarballs
    return tarballs[0]


def test_artifact_holds_the_collection(artifact):
    with tarfile.open(artifact) as tar:
        names = set(tar.getnames())
    for required in ("MANIFEST.json", "FILES.json", "README.md", "COPYING", "meta/runtime.yml",
                     "plugins/module_utils/dsreg.py", "playbooks/triage.yml"):
        assert required in names, f"{required} missing from {artifact.name}"


def test_artifact_leaves_out_workshop_files(artifact):
    with tarfile.open(artifact) as tar:
        names = tar.getnames()
    leaked = [n for n in names if FORBIDDEN_PARTS.intersection(Path(n).parts) or n.endswith((".pyc", ".tar.gz"))
              or (n + "/").startswith(FORBIDDEN_PREFIXES) or n in ("Makefile", "requirements-dev.txt")]
    assert leaked == [], f"files that must not ship: {leaked[:20]}"


def test_collection_docs_lint_clean():
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(STAGED), PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run([str(BIN / "antsibull-docs"), "lint-collection-docs", "--plugin-docs", str(ROOT)],
                            capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_changelog_fragments_lint_clean():
    result = subprocess.run([str(BIN / "antsibull-changelog"), "lint"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_changelog_is_rendered_from_the_fragments():
    # CHANGELOG.rst is antsibull-changelog's output for the fragments as they are now.
    result = subprocess.run(["bash", str(ROOT / "scripts" / "changelog.sh"), "--check"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
