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
FORBIDDEN_PARTS = {".venv", ".cache", ".collections", "build", "reports",
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
                     "plugins/plugin_utils/dsreg.py", "playbooks/triage.yml"):
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


WINDOWS = ROOT / ".collections" / "ansible_collections" / "ansible" / "windows"


def clean_galaxy_env(dest) -> dict:
    """An environment in which ansible-galaxy knows no installed collection but those under
    ``dest``: not the checkout on PYTHONPATH (make test sets it), not ~/.ansible."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "PYTHONPATH"}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(dest), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false")
    return env


@pytest.fixture(scope="module")
def installed(artifact, tmp_path_factory):
    """The tarball installed offline, as the README says: with its dependency ansible.windows
    given beside it (a directory or tarball of it), never from Galaxy."""
    dest = tmp_path_factory.mktemp("installed")
    env = clean_galaxy_env(dest)
    done = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(dest),
                           str(WINDOWS), str(artifact)], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (dest / "ansible_collections" / "m365ops" / "activation" / "MANIFEST.json").is_file()
    return dest


def test_offline_install_without_its_dependency_says_so(artifact, tmp_path):
    env = clean_galaxy_env(tmp_path)
    done = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(tmp_path),
                           str(artifact)], capture_output=True, text=True, env=env, check=False)
    assert done.returncode != 0 and "ansible.windows" in done.stdout + done.stderr


def test_installed_triage_runs_from_any_folder(installed, tmp_path):
    """`ansible-playbook m365ops.activation.triage` with no arguments, started from a folder
    that is not the collection: the default evidence is the collection's own examples."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "PYTHONPATH"}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_NOCOLOR="1")
    done = subprocess.run([str(BIN / "ansible-playbook"), "m365ops.activation.triage"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    import json
    report = json.loads((tmp_path / "reports" / "report.json").read_text(encoding="utf-8"))
    assert report["summary"]["hosts"] == 6 and report["summary"]["errors"] == 0


def test_changelog_yaml_holds_the_release():
    import yaml
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text(encoding="utf-8"))["version"]
    changes = yaml.safe_load((ROOT / "changelogs" / "changelog.yaml").read_text(encoding="utf-8"))
    assert version in changes["releases"], "changelogs/changelog.yaml has no release %s" % version
    assert "v%s\n" % version in (ROOT / "CHANGELOG.rst").read_text(encoding="utf-8")


def test_docsite_links_as_ansible_windows_has_them():
    import yaml
    links = yaml.safe_load((ROOT / "docs" / "docsite" / "links.yml").read_text(encoding="utf-8"))
    assert set(links) <= {"edit_on_github", "extra_links", "communication"}
    assert all(link["url"].startswith("https://") for link in links.get("extra_links", []))
