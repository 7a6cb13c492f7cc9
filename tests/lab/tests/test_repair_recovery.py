# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A controller that dies after the repair execution scheduled the restart (the host
restarts, nobody verifies it) leaves the marker on the host, and the next remediate run
finishes the job from it: restart first if the host had not restarted, and here, where it
had, only clear the marker - no second restart, no second repair
(docs/remediate.md "If the controller dies")."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from ..process import REPO_ROOT, scenario_lab
from .test_ansible import PLAYBOOK_BIN, ansible_env, run_json

HOST = "PC-HYB-PRT"
MARKER = ("registry", "HKEY_LOCAL_MACHINE", "SOFTWARE", "m365ops", "activation", "RebootRequired", "values.json")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with scenario_lab(tmp_path_factory.mktemp("recovery"), [HOST]) as lp:
        yield lp


def marker(lab) -> dict:
    path = os.path.join(lab.host(HOST)["state"], *MARKER)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        return {name: value["value"] for name, value in json.load(fh).items()}


def remediate_cmd(lab, report_dir) -> list:
    return [PLAYBOOK_BIN, "-i", lab.inventory("ntlm"), os.path.join(REPO_ROOT, "playbooks", "remediate.yml"),
            "-e", "target=%s" % HOST, "-e", "report_dir=%s" % report_dir, "-e", "remediate_reboot=true",
            "-e", "remediate_reboot_timeout=180"]


def test_a_controller_killed_after_the_restart_began_is_finished_by_the_next_run(lab, tmp_path):
    before = lab.counts(settle=0.3)[HOST]
    proc = subprocess.Popen(remediate_cmd(lab, tmp_path / "killed"), cwd=REPO_ROOT, env=lab.with_clock(ansible_env(tmp_path)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 400
        while lab.counts()[HOST]["reboots"] == before["reboots"]:
            assert proc.poll() is None, "the run ended (rc %s) before the host restarted" % proc.returncode
            assert time.monotonic() < deadline, "the host never restarted"
            time.sleep(0.2)
    finally:
        # The controller dies now: the host is restarting, the verification never runs.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed = lab.counts(settle=0.3)[HOST]
    # Learn, change (the restart scheduled from inside that execution): two module executions.
    assert killed["requests"]["Command"] - before["requests"].get("Command", 0) == 2, killed
    left = marker(lab)
    assert "win_activation_repair" in left and "win_token_broker_cache" in left, left

    # The next run comes later, once the host is back (a lab restart takes 3 s, scenario_lab).
    time.sleep(5)
    rc, doc, err = run_json(remediate_cmd(lab, tmp_path / "next"), tmp_path, lab=lab)
    with open(tmp_path / "next" / "report.json", encoding="utf-8") as fh:
        entry = json.load(fh)["hosts"][HOST]
    assert rc == 0, (entry, [(t["task"], r.get("msg")) for play in doc["plays"] for t in play["tasks"]
                             for r in t["hosts"].values() if r.get("failed")])
    after = lab.counts(settle=0.3)[HOST]
    # The host had restarted: the next run restarts nothing, repairs nothing again and
    # clears the marker the restart satisfied.
    assert after["reboots"] == killed["reboots"], after
    assert marker(lab) == {}
    assert entry["outcome"] != "failed" and entry["rungs_run"] == [] and not entry["reboot_pending"], entry
    assert entry["after"]["plan"] == [], entry["after"]
    # And from then on a re-run is the diagnosis alone.
    again = lab.counts(settle=0.3)[HOST]
    rc, doc, err = run_json(remediate_cmd(lab, tmp_path / "third"), tmp_path, lab=lab)
    assert rc == 0, err[-3000:]
    assert lab.counts(settle=0.3)[HOST]["requests"]["Command"] - again["requests"]["Command"] == 1
