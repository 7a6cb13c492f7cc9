# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""molecule's `lab` scenario (extensions/molecule/lab) on the loopback lab, the way a user
runs it: `molecule test -s lab` from the collection root, converge = the remediate
playbook, idempotence = the same again with nothing changed, verify = diagnose says every
host is healthy. The hosts are the two the ladder repairs completely
(docs/guides/repair-ladder.md): PC-HYB-PRT (rungs 1 and 3, one restart) and PC-HEALTHY
(nothing to do). 2.5-5 minutes on two busy cores (the lab's module executions dominate).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import yaml

from ..process import scenario_lab
from ..process import REPO_ROOT
from .test_ansible import ansible_env

MOLECULE_BIN = os.path.join(os.path.dirname(sys.executable), "molecule")
HOSTS = ["PC-HYB-PRT", "PC-HEALTHY"]
# repair-ladder.md: the TokenBroker host is fixed after one restart, the healthy host is left alone.
EXPECTED_OUTCOME = {"PC-HYB-PRT": "fixed", "PC-HEALTHY": "unchanged"}
EXPECTED_REBOOTS = {"PC-HYB-PRT": 1, "PC-HEALTHY": 0}
STEPS = ("syntax", "converge", "idempotence", "verify")
# Where molecule, ansible-compat and ansible-playbook would write relative to the checkout
# if the run were not confined to tmp_path: a project .ansible/ or .cache/, files next to the
# scenarios, a reports/ folder (the playbooks' default report_dir). Only these are compared:
# other people edit the same checkout while this runs, so the rest may legitimately move.
WATCHED = (".ansible", ".cache", "extensions", "reports", "molecule")


def molecule_env(tmp_path, inventory: str | None) -> dict:
    """The test's ansible environment (collections from build/collections, its own
    ANSIBLE_HOME) with molecule's own places under tmp_path too, so nothing lands in the
    user's home or the checkout."""
    env = ansible_env(tmp_path)
    # molecule writes its own ansible.cfg, and its idempotence step reads the default
    # callback's "changed=N" recap lines: the JSON callback and the test config must not apply.
    for name in ("ANSIBLE_CONFIG", "ANSIBLE_STDOUT_CALLBACK", "ANSIBLE_CALLBACK_PLUGINS",
                 "ANSIBLE_LOAD_CALLBACK_PLUGINS", "MOLECULE_LAB_INVENTORY"):
        env.pop(name, None)
    env.update({
        "HOME": str(tmp_path / "home"),
        "XDG_CACHE_HOME": str(tmp_path / "home" / ".cache"),
        "MOLECULE_EPHEMERAL_DIRECTORY": str(tmp_path / "molecule"),
        # molecule and ansible-compat call ansible-config / ansible-playbook by name.
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")]),
        # Plain logs: molecule then marks its steps "[lab > converge] Executing", which step_outputs reads.
        "NO_COLOR": "1",
        "PY_COLORS": "0",
    })
    if inventory is not None:
        env["MOLECULE_LAB_INVENTORY"] = inventory
    return env


def run_molecule(tmp_path, inventory: str | None = None) -> tuple[int, str]:
    """`molecule test -s lab` from the collection root (molecule 26 finds the scenarios under
    extensions/molecule/ there); returns rc and the combined output, also kept in tmp_path."""
    proc = subprocess.run([MOLECULE_BIN, "test", "-s", "lab"], cwd=REPO_ROOT, env=molecule_env(tmp_path, inventory),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900, check=False)
    (tmp_path / "molecule.log").write_text(proc.stdout)
    return proc.returncode, proc.stdout


def step_outputs(output: str) -> dict:
    """step -> the output between molecule's `[lab > step] Executing` and the next step's."""
    marks = list(re.finditer(r"\[lab > (\w+)\] Executing", output))
    return {m.group(1): output[m.end():nxt.start() if nxt else len(output)]
            for m, nxt in zip(marks, marks[1:] + [None])}


def recap(step_output: str) -> dict:
    """host -> {ok, changed, unreachable, failed, ...} from the PLAY RECAP lines of one step."""
    out: dict = {}
    for m in re.finditer(r"^(\S+)[ \t]+:[ \t]+((?:\w+=\d+[ \t]*)+)$", step_output, re.M):
        counts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
        host = out.setdefault(m.group(1), {})
        for k, v in counts.items():
            host[k] = host.get(k, 0) + v
    return out


def molecule_inventory(lab, path) -> str:
    """The lab's own NTLM inventory, its hosts in m365_clients: every connection variable
    (addresses, ports, transport, credentials, pwsh) is the lab's, none re-typed."""
    with open(lab.inventory("ntlm"), encoding="utf-8") as fh:
        generated = yaml.safe_load(fh)
    assert set(generated["all"]["children"]["m365_clients"]["hosts"]) == set(generated["all"]["hosts"])
    path.write_text(yaml.safe_dump(generated, sort_keys=False))
    return str(path)


def footprint() -> dict:
    """Every file under the WATCHED folders of the checkout, with its mtime: stricter than
    `git status --ignored`, which shows an ignored folder that already exists (reports/) the
    same whatever is written into it."""
    out = {}
    for top in WATCHED:
        for dirpath, _dirs, files in os.walk(os.path.join(REPO_ROOT, top)):
            for name in files:
                path = os.path.join(dirpath, name)
                out[os.path.relpath(path, REPO_ROOT)] = os.stat(path).st_mtime_ns
    return out


def report(tmp_path, name: str) -> dict:
    with open(tmp_path / "molecule" / "reports" / name / "report.json", encoding="utf-8") as fh:
        return json.load(fh)


# ------------------------------------------------------------------------------------------
def test_the_preflight_refuses_to_run_without_the_lab_inventory(tmp_path):
    rc, output = run_molecule(tmp_path)
    assert rc != 0, output[-3000:]
    steps = step_outputs(output)
    # The converge stops in its preflight on localhost: no remediate play started, so a run
    # that forgot the variable can never "pass" over zero hosts.
    assert "MOLECULE_LAB_INVENTORY is not set" in steps.get("converge", ""), output[-3000:]
    assert "PLAY [Remediate" not in output
    assert "idempotence" not in steps and "verify" not in steps, sorted(steps)


def test_molecule_lab_scenario_converges_idempotently_and_verifies_healthy(tmp_path):
    before_files = footprint()
    with scenario_lab(tmp_path / "lab", HOSTS) as lab:
        before = lab.counts(settle=0.3)
        rc, output = run_molecule(tmp_path, molecule_inventory(lab, tmp_path / "inventory.yml"))
        after = lab.counts()
        log = lab.log()
    # molecule.log and the reports (kept by the scenario's safe_files) stay in tmp_path.
    assert rc == 0, (str(tmp_path), output[-6000:], log[-3000:])

    steps = step_outputs(output)
    for step in STEPS:
        assert "[lab > %s] Executed: Successful" % step in output, (step, output[-6000:])
    for step in ("converge", "idempotence", "verify"):
        hosts = recap(steps[step])
        assert set(HOSTS) <= set(hosts), (step, hosts)
        for host in HOSTS:
            assert hosts[host]["ok"] > 0 and hosts[host]["failed"] == 0 and hosts[host]["unreachable"] == 0, \
                (step, host, hosts[host])
            if step == "idempotence":
                assert hosts[host]["changed"] == 0, (host, hosts[host])

    # Converge's report (idempotence does not rewrite it: its report task is tagged
    # molecule-idempotence-notest) and the verify diagnosis, both where the scenario puts them.
    remediate = report(tmp_path, "remediate")
    assert {h: e.get("outcome") for h, e in remediate["hosts"].items()} == EXPECTED_OUTCOME, remediate["summary"]
    verify = report(tmp_path, "verify")
    assert sorted(verify["hosts"]) == sorted(HOSTS)
    assert verify["summary"]["healthy"] == len(HOSTS), {h: e.get("plan") for h, e in verify["hosts"].items()}

    # One restart for the TokenBroker host over converge + idempotence + verify, none for the other.
    assert {h: after[h]["reboots"] - before[h]["reboots"] for h in HOSTS} == EXPECTED_REBOOTS
    # Nothing written into the checkout (molecule's caches and reports stay under tmp_path).
    assert footprint() == before_files
