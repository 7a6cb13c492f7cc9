# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The key proof: ansible-core's own `winrm` connection (pywinrm) and `psrp` connection
(pypsrp) run real PowerShell modules on the lab hosts, with the generated inventories,
over NTLM+encryption and over Basic/HTTPS. No custom connection plugin is involved."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ..shim import netprobe
from ..process import REPO_ROOT

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


def run_json(cmd: list[str], tmp_path, lab=None) -> tuple[int, dict, str]:
    """Run an ansible command with the JSON callback; with `lab`, under the lab's clock."""
    env = ansible_env(tmp_path)
    if lab is not None:
        env = lab.with_clock(env)
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail("ansible printed no JSON (rc %d):\n%s\n%s" % (proc.returncode, proc.stdout[-3000:],
                                                                  proc.stderr[-3000:]))
    # The lab's guard: a network probe pointed at anything but the lab's stand-ins (the
    # module's default Entra names above all) fails the test that ran it.
    outside = netprobe.violations(doc)
    if outside:
        pytest.fail("the network probe was pointed outside the lab's stand-ins: %s" % ", ".join(outside))
    return proc.returncode, doc, proc.stderr


def host_results(doc: dict) -> dict:
    """host -> list of task results, in play order."""
    out: dict = {}
    for play in doc["plays"]:
        for task in play["tasks"]:
            for host, res in task["hosts"].items():
                out.setdefault(host, []).append(res)
    return out


@pytest.mark.parametrize("transport", ["ntlm", "basic", "psrp_ntlm", "psrp_basic"])
def test_win_ping_through_the_winrm_and_psrp_connections(lab, tmp_path, transport):
    # One host per transport (the other transports reach both hosts in the tests below and
    # in test_e2e.py): each module execution costs the suite seconds of pwsh.
    host = "lab01" if transport in ("ntlm", "psrp_ntlm") else "lab02"
    before = lab.counts(settle=0.3)
    rc, doc, err = run_json([ANSIBLE_BIN, "-i", lab.inventory(transport), host, "-m", "ansible.windows.win_ping"],
                            tmp_path)
    assert rc == 0, (doc, err, lab.log()[-3000:])
    results = host_results(doc)
    assert sorted(results) == [host]
    for res in results[host]:
        assert res["ping"] == "pong", res
    after = lab.counts()
    for other in sorted(lab.info["hosts"]):
        if other != host:
            assert after[other]["requests"] == before[other]["requests"], other
    grew = after[host]["requests"]
    assert grew.get("Command", 0) > before[host]["requests"].get("Command", 0)
    assert after[host]["processes_started"] > before[host]["processes_started"]
    key = "negotiate" if transport.endswith("ntlm") else "basic"
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


PSRP_PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: "the same module through the psrp connection, one folder per host"
      ansible.windows.win_file:
        path: "{{ roots[inventory_hostname] }}/ProgramData/m365ops-psrp-proof"
        state: directory
"""


def test_a_powershell_module_over_the_psrp_connection_honours_check_mode(lab, tmp_path):
    """win_file through ansible_connection: psrp on both hosts: the exec wrapper runs in the
    lab's `pwsh -s` RunspacePool, not in a `powershell -EncodedCommand` process."""
    book = tmp_path / "play.yml"
    book.write_text(PSRP_PLAYBOOK)
    roots = {h: lab.host(h)["state"] for h in ("lab01", "lab02")}
    targets = {h: os.path.join(root, "ProgramData", "m365ops-psrp-proof") for h, root in roots.items()}
    base = [PLAYBOOK_BIN, "-i", lab.inventory("psrp_ntlm"), str(book), "-e", json.dumps({"roots": roots})]
    before = lab.counts(settle=0.3)

    rc, doc, err = run_json(base + ["--check"], tmp_path)
    assert rc == 0, (doc, err, lab.log()[-3000:])
    results = host_results(doc)
    assert sorted(results) == ["lab01", "lab02"]
    for host, (res,) in results.items():
        assert res["changed"] is True and not os.path.exists(targets[host]), res  # reported, not done

    rc, doc, err = run_json(base, tmp_path)
    assert rc == 0, (doc, err)
    for host, (res,) in host_results(doc).items():
        assert res["changed"] is True and os.path.isdir(targets[host]), res

    after = lab.counts()
    for host in roots:
        # One RunspacePool (a Create on the PowerShell plugin, one pwsh -s) per host and run;
        # nothing went through the cmd shell's `powershell -EncodedCommand` bootstrap.
        assert after[host]["requests"]["Create"] - before[host]["requests"].get("Create", 0) == 2, after[host]
        assert after[host]["processes_started"] - before[host]["processes_started"] == 2
