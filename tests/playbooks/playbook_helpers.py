# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of tests/playbooks: run the collection's playbooks with ansible-playbook, as a
user would, without Windows.

``run_playbook(playbook, *args, env=..., cwd=...)`` returns the CompletedProcess. The
environment is built from scratch for every call (collections from build/collections,
tests/ansible.cfg) so a developer's own ANSIBLE_* settings never change the result.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / "build" / "collections"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
PLAYBOOKS = ROOT / "playbooks"
EXAMPLES = ROOT / "examples" / "evidence"


def ansible_env(collections_path=COLLECTIONS, extra=None) -> dict:
    """A clean environment for ansible-playbook: no inherited ANSIBLE_* variables."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("ANSIBLE_") and key != "PYTHONPATH"}
    env.update({
        "ANSIBLE_CONFIG": str(ROOT / "tests" / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(collections_path),
        # Only the path above: a collection installed in site-packages must not win.
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCAL_TEMP": str(Path(env.get("TMPDIR", "/tmp")) / ("ansible-local-%d" % os.getpid())),
    })
    env.update(extra or {})
    return env


def run_playbook(playbook, *args, env=None, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    cmd = [str(ANSIBLE_PLAYBOOK), str(playbook), *[str(a) for a in args]]
    return subprocess.run(cmd, cwd=str(cwd or ROOT), env=env or ansible_env(), capture_output=True,
                          text=True, timeout=timeout, check=False)


def describe(proc: subprocess.CompletedProcess) -> str:
    """The tail of a run's output, for assertion messages."""
    return "exit %d\n--- stdout (tail) ---\n%s\n--- stderr ---\n%s" % (
        proc.returncode, proc.stdout[-6000:], proc.stderr[-3000:])


STUBS = Path(__file__).resolve().parent / "stubs"
CALLBACKS = Path(__file__).resolve().parent / "callback_plugins"

# Host modules the remediate role calls; tests/playbooks/stubs/fake_module.py stands in
# for each of them.
STUBBED_MODULES = (
    "win_activation_facts",
    "win_credential_purge",
    "win_work_accounts",
    "win_token_broker_cache",
    "win_aad_broker_plugin",
    "win_dsreg_join",
    "win_reboot_state",
)


def _link_children(real: Path, dest: Path, skip=()):
    dest.mkdir(parents=True, exist_ok=True)
    for child in real.iterdir():
        if child.name not in skip and child.name != "__pycache__":
            (dest / child.name).symlink_to(child)


def build_stub_collections(dest: Path, stubbed=STUBBED_MODULES) -> Path:
    """Assemble the collections path the remediate flow test runs with; return it.

    Why a whole collection: the role calls its modules by FQCN
    (``m365ops.activation.win_token_broker_cache``), and ansible-core resolves an FQCN to
    the first ``ansible_collections/m365ops/activation`` on the collections path, wholesale.
    There is no supported way to swap one module of a collection (``module_defaults`` sets
    arguments, ``collections:`` only affects short names). So the test's path holds one
    m365ops.activation whose roles, filters, action plugins, plugin_utils and
    module_utils are symlinks to this checkout - the code under test, unchanged - and
    whose host modules are stubs, plus an ansible.windows with only a stub win_reboot
    action. Nothing else is on that path, so the real win_reboot can never be reached.
    """
    collection = dest / "ansible_collections" / "m365ops" / "activation"
    collection.mkdir(parents=True)
    for name in ("galaxy.yml", "meta", "roles", "playbooks"):
        (collection / name).symlink_to(ROOT / name)
    plugins = collection / "plugins"
    plugins.mkdir()
    for child in (ROOT / "plugins").iterdir():
        if child.name not in ("modules", "module_utils", "__pycache__"):
            (plugins / child.name).symlink_to(child)
    _link_children(ROOT / "plugins" / "module_utils", plugins / "module_utils")
    fake_host = (STUBS / "fake_host.py").read_text(encoding="utf-8")
    (plugins / "module_utils" / "fake_host.py").write_text(fake_host, encoding="utf-8")
    skip = {"%s%s" % (name, ext) for name in stubbed for ext in (".py", ".ps1")}
    _link_children(ROOT / "plugins" / "modules", plugins / "modules", skip=skip)
    body = (STUBS / "fake_module.py").read_text(encoding="utf-8")
    for name in stubbed:
        docs = (ROOT / "plugins" / "modules" / ("%s.py" % name)).read_text(encoding="utf-8")
        stub = '%s\n\n%s\n\nif __name__ == "__main__":\n    main(%r)\n' % (docs.rstrip(), body, name)
        (plugins / "modules" / ("%s.py" % name)).write_text(stub, encoding="utf-8")

    windows = dest / "ansible_collections" / "ansible" / "windows"
    (windows / "plugins" / "action").mkdir(parents=True)
    (windows / "galaxy.yml").write_text("namespace: ansible\nname: windows\nversion: 3.3.0\n", encoding="utf-8")
    (windows / "plugins" / "action" / "win_reboot.py").write_text(
        (STUBS / "win_reboot.py").read_text(encoding="utf-8"), encoding="utf-8")
    return dest
