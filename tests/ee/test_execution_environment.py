# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's execution-environment metadata, read the way ansible-builder reads it.

`ansible-builder introspect` runs over a staged collections tree (what the builder stage
of every EE build does), and `ansible-builder create` turns examples/execution-environment.yml
into a build context. No container runtime is needed for either.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLE = os.path.join(ROOT, "examples", "execution-environment.yml")
FROM = "  # from collection m365ops.activation"


def find_builder():
    sibling = os.path.join(os.path.dirname(sys.executable), "ansible-builder")
    if os.access(sibling, os.X_OK):
        return sibling
    return shutil.which("ansible-builder")


BUILDER = find_builder()
needs_builder = pytest.mark.skipif(
    BUILDER is None, reason="NO EE CHECK: ansible-builder not installed (pip install ansible-builder==3.2.0)")


def read_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def requirement_lines(path):
    """Lines ansible-builder keeps from a requirements/bindep file: no blanks, no comments."""
    with open(path, encoding="utf-8") as handle:
        lines = [re.sub(r"(?:^|\s+)#.*$", "", line).strip() for line in handle]
    return [line for line in lines if line]


def galaxy_version():
    return read_yaml(os.path.join(ROOT, "galaxy.yml"))["version"]


@pytest.fixture
def collections_tree(tmp_path):
    """A collections path holding only this checkout, as ansible_collections/m365ops/activation."""
    namespace = tmp_path / "collections" / "ansible_collections" / "m365ops"
    namespace.mkdir(parents=True)
    os.symlink(ROOT, str(namespace / "activation"))
    return tmp_path / "collections"


def introspect(tree, *args):
    proc = subprocess.run([BUILDER, "introspect", str(tree)] + list(args),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The YAML document follows a "# Dependency data for ..." comment line.
    return yaml.safe_load(proc.stdout[proc.stdout.index("---"):])


def test_meta_points_at_the_collection_files():
    meta = read_yaml(os.path.join(ROOT, "meta", "execution-environment.yml"))
    assert meta["version"] == 1
    assert set(meta["dependencies"]) == {"python", "system"}
    for key, expected in (("python", "requirements.txt"), ("system", "bindep.txt")):
        path = meta["dependencies"][key]
        # ansible-builder refuses absolute paths; relative ones are from the collection root.
        assert path == expected
        assert requirement_lines(os.path.join(ROOT, path)), "%s is empty" % path


@needs_builder
def test_introspect_reports_the_collection_requirements(collections_tree, tmp_path):
    pip_out, bindep_out = tmp_path / "pip.txt", tmp_path / "bindep.txt"
    data = introspect(collections_tree, "--write-pip", str(pip_out), "--write-bindep", str(bindep_out))
    python = requirement_lines(os.path.join(ROOT, "requirements.txt"))
    system = requirement_lines(os.path.join(ROOT, "bindep.txt"))
    assert data["python"] == [line + FROM for line in python]
    assert data["system"] == [line + FROM for line in system]
    names = {re.split(r"[\[<>=!~;\s]", line, maxsplit=1)[0].lower() for line in python}
    assert {"pywinrm", "pypsrp", "pyspnego", "msal", "requests"} <= names
    # The files the builder stage hands to pip and bindep.
    assert requirement_lines(str(pip_out)) == python
    assert requirement_lines(str(bindep_out)) == system


def _packages(profiles):
    from bindep.depends import Depends

    with open(os.path.join(ROOT, "bindep.txt"), encoding="utf-8") as handle:
        depends = Depends(handle.read())
    return {rule[0] for rule in depends.active_rules(["default"] + profiles)}


@pytest.mark.parametrize("platform, runtime, build", [
    (["platform:redhat", "platform:rpm", "platform:centos", "platform:centos-9"],
     {"krb5-libs", "krb5-workstation"}, {"gcc", "krb5-devel", "python3-devel"}),
    (["platform:dpkg", "platform:debian", "platform:debian-12"],
     {"libkrb5-3", "libgssapi-krb5-2", "krb5-user"}, {"gcc", "libkrb5-dev", "python3-dev"}),
])
def test_bindep_separates_run_time_from_build_time(platform, runtime, build):
    pytest.importorskip("bindep", reason="bindep comes with ansible-builder")
    # ansible-builder installs `bindep` (default profile) in the final image and
    # `bindep compile` only in the builder stage.
    assert _packages(platform) == runtime
    assert _packages(platform + ["compile"]) == runtime | build


def test_example_names_the_tarball_galaxy_builds():
    example = read_yaml(EXAMPLE)
    tarball = "m365ops-activation-%s.tar.gz" % galaxy_version()
    collections = example["dependencies"]["galaxy"]["collections"]
    assert {"name": "collections/" + tarball, "type": "file"} in collections
    assert [c["name"] for c in collections if c["name"] == "ansible.windows"]
    assert {"src": "m365ops-activation-*.tar.gz", "dest": "collections"} in example["additional_build_files"]


@needs_builder
def test_example_builds_a_context_with_kerberos(collections_tree, tmp_path):
    work = tmp_path / "ee"
    work.mkdir()
    shutil.copy(EXAMPLE, str(work / "execution-environment.yml"))
    tarball = "m365ops-activation-%s.tar.gz" % galaxy_version()
    (work / tarball).write_bytes(b"stand-in for the built collection")
    proc = subprocess.run([BUILDER, "create", "-f", "execution-environment.yml", "-c", "context",
                           "--output-filename", "Containerfile"],
                          cwd=str(work), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    build = work / "context" / "_build"
    containerfile = (work / "context" / "Containerfile").read_text(encoding="utf-8")
    assert 'ARG EE_BASE_IMAGE="quay.io/centos/centos:stream9"' in containerfile
    assert 'ARG PYCMD="/usr/bin/python3.12"' in containerfile
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible-core>=2.21,<2.22 ansible-runner"' in containerfile
    assert (build / "collections" / tarball).read_bytes() == b"stand-in for the built collection"
    galaxy = read_yaml(str(build / "requirements.yml"))
    assert {"name": "collections/" + tarball, "type": "file"} in galaxy["collections"]

    # What the builder stage runs once the collections are installed: the user's files
    # merged with every collection's, exactly as pip and bindep will receive them.
    data = introspect(collections_tree, "--user-pip", str(build / "requirements.txt"),
                      "--user-bindep", str(build / "bindep.txt"))
    python = [line.split("  # ")[0] for line in data["python"]]
    assert "pywinrm[kerberos]>=0.5.0" in python
    assert "pypsrp[kerberos]>=0.9.1" in python
    assert any(line.startswith("msal") for line in python)
    system = [line.split("  # ")[0] for line in data["system"]]
    assert "python3.12-devel [platform:redhat compile]" in system
    assert "krb5-devel [platform:redhat compile]" in system
    assert "krb5-workstation [platform:redhat]" in system
