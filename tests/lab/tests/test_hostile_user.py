# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 16's two lab proofs, on one lab host seeded from tests/lab/scenarios/PC-HYB-LINK
(PC-HYB-PRT's broken TokenBroker, plus links alice planted in her AAD BrokerPlugin
`TokenBroker\\Accounts`: a folder link and a file link to canaries outside her profile).

1. A run killed while it holds a scheduled task (ansible's controller killed mid-run, the
   lab then ending the module's process the way WinRM ends a dropped shell's command, so
   its `finally` never runs) leaves the `\\m365ops\\m365ops-<start>-<pid>-<hex>` task and its
   `%SystemRoot%\\Temp` run folder behind; the next module run sweeps both and says so in
   `stale_cleanup` and its warnings.
2. The same next run is playbooks/remediate.yml (its own diagnosis, rung 3, the diagnosis
   after; no restart): the canaries are byte-identical afterwards, the links were not
   followed, and report.json names both planted paths, for the diagnosis and for rung 3.

Cost (CI): five module executions in all, the killed one included (rung 1 is disabled:
it never touches the file system, and each module execution is ~5 s of CPU); no restart. The tests run
in file order and build on each other, as test_e2e.py's do.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import time

import pytest

from ..process import running_lab
from ..process import REPO_ROOT, children_of
from .test_ansible import ANSIBLE_BIN, PLAYBOOK_BIN, ansible_env, run_json

SCENARIO = "PC-HYB-LINK"
ALICE = "S-1-5-21-3623811015-3361044348-30300820-1104"
ACCOUNTS = "Users/alice/AppData/Local/Packages/Microsoft.AAD.BrokerPlugin_cw5n1h2txyewy/AC/TokenBroker/Accounts"
# The scenario's links (tests/lab/scenarios/PC-HYB-LINK/scenario.yml), below ACCOUNTS, and
# where they point, below the host's state folder.
LINKS = {"planted": "Windows/System32/config/canary", "planted.tbacct": "Windows/System32/config/canary.dat"}
# A runner task (\m365ops\m365ops-<start>-<pid>-<hex>, _ScheduledTaskRunner.psm1 New-M365RunId)
# as the shim files it: tasks/<path and name, lower case, \ as _>.json.
TASK_FILE = re.compile(r"^_m365ops_m365ops-\d{8}t\d{6}z-\d+-[0-9a-f]{8}\.json$")


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    # A short disconnect grace: the killed controller's shell (and with it the module's
    # process) is ended at once, before the module could finish and clean up by itself.
    args = ["--reboot-seconds", "3", "--scenario", SCENARIO]
    with running_lab(tmp_path_factory.mktemp("hostile"), 1, args, startup_timeout=300, disconnect_grace=0.1) as lp:
        yield lp


@pytest.fixture(scope="module")
def state(host) -> str:
    return host.host(SCENARIO)["state"]


@pytest.fixture(scope="module")
def canaries_at_start(state) -> dict:
    """The canaries as seeded, before any module ran."""
    found = canaries(state)
    assert found and all(v != "missing" for v in found.values()), found
    return found


def canaries(state: str) -> dict:
    """relative path -> SHA-256 of every file of every link target (a folder's files each)."""
    out = {}
    for target in LINKS.values():
        path = os.path.join(state, target)
        files = [os.path.join(path, n) for n in sorted(os.listdir(path))] if os.path.isdir(path) else [path]
        for f in files:
            rel = os.path.relpath(f, state)
            if not os.path.isfile(f):
                out[rel] = "missing"
                continue
            with open(f, "rb") as fh:
                out[rel] = hashlib.sha256(fh.read()).hexdigest()
    return out


def leftovers(state: str) -> tuple[list[str], list[str]]:
    """The runner's tasks the shim has registered (tasks/*.json) and its run folders in Temp."""
    tasks = sorted(n for n in os.listdir(os.path.join(state, "tasks")) if TASK_FILE.match(n))
    folders = sorted(n for n in os.listdir(os.path.join(state, "Windows", "Temp")) if n.startswith("m365ops-"))
    return tasks, folders


def started_runner_task(state: str):
    """(file name, task) of a runner task that has been started, or None."""
    folder = os.path.join(state, "tasks")
    for name in os.listdir(folder):
        if TASK_FILE.match(name):
            try:
                with open(os.path.join(folder, name), encoding="utf-8-sig") as fh:
                    task = json.load(fh)
            except (OSError, ValueError):
                continue  # being written
            if task.get("run"):
                return name, task
    return None


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a controller and every process it started: ansible's task workers are not
    all in its process group, and one left alive would finish the module run cleanly."""
    for pid in [proc.pid] + children_of(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def task_results(doc: dict, host: str, prefix: str) -> list[dict]:
    return [t["hosts"][host] for play in doc["plays"] for t in play["tasks"]
            if t["task"].split(" : ", 1)[-1].startswith(prefix) and host in t["hosts"]]


# ------------------------------------------------------------------------------------------
def test_a_controller_killed_mid_run_leaves_the_runner_task_behind(host, state, canaries_at_start, tmp_path, runs):
    assert leftovers(state) == ([], [])
    env = host.with_clock(ansible_env(tmp_path))
    # The facts module runs its user-context task (the scheduled task of the runner); the
    # controller is killed while that task runs, as a killed AWX job or a closed laptop would.
    proc = subprocess.Popen([ANSIBLE_BIN, "-i", host.inventory("ntlm"), SCENARIO, "-m",
                             "m365ops.activation.win_activation_facts"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    found = None
    try:
        deadline = time.monotonic() + 240
        while found is None and proc.poll() is None and time.monotonic() < deadline:
            found = started_runner_task(state)
            time.sleep(0.02)
    finally:
        kill_tree(proc)
        out = proc.communicate()[0].decode(errors="replace")
    assert found, "the run ended (rc %s) before its task started:\n%s\n%s" % (
        proc.returncode, out[-3000:], host.log()[-3000:])
    name, task = found
    # The lab ends the module's process once the client is gone (winrs.py reap: the
    # disconnect grace), as a dropped WinRM shell does; nothing of the module runs after.
    ended = "closed (client disconnected), 1 command(s) ended"
    deadline = time.monotonic() + 30
    while ended not in host.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ended in host.log(), host.log()[-3000:]
    time.sleep(0.5)
    tasks, folders = leftovers(state)
    run_name = task["name"]
    # The killed run's `finally` never ran: its task is registered and its run folder is there.
    assert tasks == [name], (tasks, host.log()[-2000:])
    assert folders == [run_name], folders
    assert task["path"] == "\\m365ops\\" and name == "_m365ops_%s.json" % run_name.lower(), task
    runs["leftover"] = {"task": task["path"] + task["name"], "folder": run_name, "file": name}
    # Diagnosing reads; nothing of the canaries has been touched so far.
    assert canaries(state) == canaries_at_start


def test_the_next_run_leaves_the_canaries_byte_identical_and_names_the_links(host, state, canaries_at_start,
                                                                             tmp_path, runs):
    report_dir = tmp_path / "report"
    before = host.counts(settle=0.3)
    rc, doc, err = run_json([PLAYBOOK_BIN, "-i", host.inventory("ntlm"),
                             os.path.join(REPO_ROOT, "playbooks", "remediate.yml"),
                             "-e", "target=%s" % SCENARIO, "-e", "report_dir=%s" % report_dir,
                             "-e", "remediate_reboot=false",
                             # Rung 1 (the credential vault) never touches files: not run, to save CI time.
                             "-e", '{"remediate_rungs_disabled": ["purge_office_credentials"]}'],
                            tmp_path, lab=host)
    with open(os.path.join(str(report_dir), "report.json"), encoding="utf-8") as fh:
        report = json.load(fh)
    runs["remediate"] = {"rc": rc, "doc": doc, "err": err, "report": report}
    entry = report["hosts"][SCENARIO]
    assert rc == 0, (err[-3000:], host.log()[-3000:])
    after = host.counts()
    # No restart, and the run's cost stays what the module docstring says: the diagnosis,
    # the repair execution (rung 3) and at most the diagnosis after.
    assert after[SCENARIO]["reboots"] == before[SCENARIO]["reboots"]
    commands = after[SCENARIO]["requests"].get("Command", 0) - before[SCENARIO]["requests"].get("Command", 0)
    assert commands <= 4, commands

    # What the links point at is exactly as seeded: nothing read through them was copied,
    # moved or deleted, by the diagnosis, by rung 3 or by the diagnosis after it.
    assert canaries(state) == canaries_at_start
    accounts = os.path.join(state, ACCOUNTS)
    for link, target in LINKS.items():
        assert os.path.islink(os.path.join(accounts, link)), sorted(os.listdir(accounts))
        assert os.readlink(os.path.join(accounts, link)) == os.path.join(state, target)

    # Rung 3 ran for alice and quarantined her real cache files; only the links are left.
    assert entry["before"]["plan"] == ["purge_office_credentials", "reset_token_broker"], entry["before"]
    assert "reset_token_broker" in entry["rungs_run"], entry
    # Rung 3's own result inside the one repair execution (the remediate role's default).
    (repair,) = task_results(doc, SCENARIO, "Repair in one execution")
    rung = repair["rungs"]["reset_token_broker"]
    assert rung.get("changed") and not rung.get("failed"), rung
    assert sorted(os.listdir(accounts)) == sorted(LINKS), sorted(os.listdir(accounts))
    assert entry["quarantines"], entry

    # The report names both planted paths, as the diagnosis and as rung 3 refused them.
    planted = {os.path.join(accounts, link) for link in LINKS}
    refused = entry["refused_paths"]
    for by in ("diagnose", "reset_token_broker"):
        named = {r["path"] for r in refused if r["by"] == by}
        assert named == planted, (by, refused)
    assert all("link" in (r.get("reason") or "") for r in refused), refused
    # ... and so do rung 3's result and its warnings.
    assert {r["path"] for r in rung["refused"]} == planted, rung
    for path in planted:
        assert any(path in w for w in rung.get("warnings") or []), rung.get("warnings")


def test_the_next_run_swept_the_killed_runs_task_and_said_so(host, state, runs):
    left = runs.get("leftover")
    first = runs.get("remediate")
    assert left and first, "needs the killed run and the next run (the tests above)"
    # The first module of the next run - the remediate role's diagnosis - swept what the
    # killed run left, and reported it in its result and as warnings the operator sees.
    (facts, *_after) = task_results(first["doc"], SCENARIO, "Diagnose the host")
    sweep = facts.get("stale_cleanup")
    folder = os.path.join(state, "Windows", "Temp", left["folder"])
    assert sweep and not sweep["failed"], facts.get("stale_cleanup")
    assert "task %s" % left["task"] in sweep["removed"], sweep
    assert any(item.startswith("folder ") and item.endswith(left["folder"]) for item in sweep["removed"]), sweep
    warnings = facts.get("warnings") or []
    assert any("leftover of an interrupted run removed: task %s" % left["task"] in w for w in warnings), warnings
    # Gone from the host: the task scheduler's registration and the run folder.
    assert leftovers(state) == ([], []), leftovers(state)
    assert not os.path.exists(folder)
    assert not os.path.exists(os.path.join(state, "tasks", left["file"]))
