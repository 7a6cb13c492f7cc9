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
