# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The key proof: ansible-core's own `winrm` connection (pywinrm) runs real PowerShell
modules on the lab hosts, with the generated inventory, over NTLM+encryption and over
Basic/HTTPS. No custom connection plugin is involved."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .process import REPO_ROOT

ANSIBLE_BIN = os.path.join(os.path.dirname(sys.executable), "ansible")
PLAYBOOK_BIN = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def ansible_env(tmp_path) -> dict:
    env = dict(os.environ)
    collections = os.path.join(REPO_ROOT, "build", "collections")
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": collections,
        "PYTHONPATH": collections,
        "ANSIBLE_CONFIG": os.path.join(REPO_ROOT, "tests", "ansible.cfg"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "lab_json",
        "ANSIBLE_CALLBACK_PLUGINS": os.path.join(os.path.dirname(os.path.abspath(__file__)), "ansible_plugins",
                                                 "callback"),
        "ANSIBLE_FORKS": "2",
    })
    return env


def run_json(cmd: list[str], tmp_path) -> tuple[int, dict, str]:
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=ansible_env(tmp_path), capture_output=True, text=True,
                          timeout=300, check=False)
    try:
        return proc.returncode, json.loads(proc.stdout), proc.stderr
    except json.JSONDecodeError:
        pytest.fail("ansible printed no JSON (rc %d):\n%s\n%s" % (proc.returncode, proc.stdout[-3000:],
                                                                  proc.stderr[-3000:]))


def host_results(doc: dict) -> dict:
    """host -> list of task results, in play order."""
    out: dict = {}
    for play in doc["plays"]:
        for task in play["tasks"]:
            for host, res in task["hosts"].items():
                out.setdefault(host, []).append(res)
    return out


@pytest.mark.parametrize("transport", ["ntlm", "basic"])
def test_win_ping_through_the_winrm_connection(lab, tmp_path, transport):
    before = lab.counts(settle=0.3)
    rc, doc, err = run_json([ANSIBLE_BIN, "-i", lab.inventory(transport), "all", "-m", "ansible.windows.win_ping"],
                            tmp_path)
    assert rc == 0, (doc, err, lab.log()[-3000:])
    results = host_results(doc)
    assert sorted(results) == ["lab01", "lab02"]
    for host, (res,) in results.items():
        assert res["ping"] == "pong", res
    after = lab.counts()
    for host in ("lab01", "lab02"):
        grew = after[host]["requests"]
        assert grew.get("Command", 0) > before[host]["requests"].get("Command", 0)
        assert after[host]["processes_started"] > before[host]["processes_started"]
        key = "negotiate" if transport == "ntlm" else "basic"
        assert after[host]["auth"][key] > before[host]["auth"].get(key, 0)


PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: "a real #!powershell module (Ansible.Basic) creating a folder"
      ansible.windows.win_file:
        path: "{{ target }}"
        state: directory
"""


def test_a_powershell_module_changes_state_idempotently_and_honours_check_mode(lab, tmp_path):
    book = tmp_path / "play.yml"
    book.write_text(PLAYBOOK)
    target = os.path.join(lab.host("lab01")["state"], "ProgramData", "m365ops-lab-proof")
    inv = lab.inventory("ntlm")
    base = [PLAYBOOK_BIN, "-i", inv, "--limit", "lab01", str(book), "-e", "target=%s" % target]

    rc, doc, err = run_json(base + ["--check"], tmp_path)
    assert rc == 0, (doc, err)
    (res,) = host_results(doc)["lab01"]
    assert res["changed"] is True and not os.path.exists(target)  # check mode: reported, not done

    rc, doc, err = run_json(base, tmp_path)
    assert rc == 0, (doc, err)
    (res,) = host_results(doc)["lab01"]
    assert res["changed"] is True and os.path.isdir(target)

    rc, doc, err = run_json(base, tmp_path)
    assert rc == 0, (doc, err)
    (res,) = host_results(doc)["lab01"]
    assert res["changed"] is False
