# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The remediate job template run the way AWX runs a job: ansible-runner (AWX's executor)
over a private data dir holding the example project (examples/awx/project), an inventory and
the survey's answers as extra vars, against one loopback lab host (tests/lab: PC-HEALTHY, which
the ladder leaves alone: one diagnosis, no rung, no restart). The host is the cheapest the lab
has on purpose: what is tested here is the job's delivery, while the repair itself is tested
on the lab by tests/lab (test_e2e, test_molecule). With PC-HYB-PRT (rungs 1 and 3 and a
restart) this test took 190 s on two busy cores instead of about a minute.

An AWX job's execution environment is thrown away with its files, the project folder
included. So after the run the project folder is deleted, and the report must come back from
what runner leaves: the playbook_on_stats event in artifacts/<ident>/job_events, whose
artifact_data is what AWX stores as the job's artifacts. The HTML is rendered from it with
the collection's report playbook.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runner_jobs import IDENT, collection_playbook, lab_inventory, run_job, stats_event, survey_answers  # noqa: E402
from tests.lab.process import scenario_lab  # noqa: E402  (the lab's own fixture helpers)

HOST = "PC-HEALTHY"


@pytest.fixture(scope="module")
def runner_job(tmp_path_factory):
    base = tmp_path_factory.mktemp("awx-runner")
    pdd = base / "private_data_dir"
    with scenario_lab(base / "lab", [HOST]) as lab:
        started = time.monotonic()
        done, dummy = run_job(base, "remediate.yml", survey_answers(target=HOST), lab_inventory(lab, [HOST]))
        runner_seconds = time.monotonic() - started
    (base / "runner.log").write_text(done.stdout + done.stderr + "\nansible-runner: %.1f s\n" % runner_seconds)
    # The execution environment is gone: so is everything the job wrote into the project.
    wrote_report = (pdd / "project" / "reports" / "remediate" / "report.json").is_file()
    shutil.rmtree(pdd / "project")
    return {"base": base, "pdd": pdd, "proc": done, "wrote_report": wrote_report}


def test_the_job_succeeds(runner_job):
    proc = runner_job["proc"]
    status = (runner_job["pdd"] / "artifacts" / IDENT / "status").read_text().strip()
    assert proc.returncode == 0 and status == "successful", proc.stdout[-5000:] + proc.stderr[-2000:]
    # The role wrote its files where a plain controller keeps them: the (discarded) project folder.
    assert runner_job["wrote_report"]


def test_the_report_comes_back_from_runner_artifacts(runner_job):
    artifact_data = stats_event(runner_job["pdd"])["event_data"]["artifact_data"]
    report = artifact_data["m365_report"]
    assert report["kind"] == "remediate" and "truncated" not in report
    assert list(report["hosts"]) == [HOST]
    entry = report["hosts"][HOST]
    assert entry["outcome"] == "unchanged", entry.get("outcome_reason")
    assert entry["rebooted"] is False and entry["rungs_run"] == []
    outcomes = artifact_data["m365_remediate"]["outcomes"]
    assert outcomes["unchanged"] == 1 and sum(outcomes.values()) == 1, outcomes


def test_the_html_is_rendered_from_the_artifacts(runner_job, tmp_path):
    event = runner_job["pdd"] / "artifacts" / IDENT / "job_events"
    event_file = next(p for p in event.glob("*.json") if json.loads(p.read_text(encoding="utf-8")).get("event") == "playbook_on_stats")
    done = collection_playbook(tmp_path, "report", "-e", "report_file=%s" % event_file,
                               "-e", "report_dir=%s" % (tmp_path / "out"))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and HOST in html
    assert json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))["hosts"][HOST]["outcome"] == "unchanged"


# --- the usual mistakes, as AWX launches them (no lab: nothing may be contacted) ---------------

# Hosts on a port nothing listens on: a job that contacted one would show it unreachable.
OFFLINE_INVENTORY = {"all": {
    "vars": {"ansible_connection": "winrm", "ansible_winrm_transport": "ntlm", "ansible_host": "127.0.0.1",
             "ansible_port": 9, "ansible_user": "svc", "ansible_password": "not-a-secret"},
    "children": {"m365_clients": {"hosts": {"PC042": None, "PC043": None}}}}}


def _job_output(base):
    return "".join(p.read_text(encoding="utf-8") for p in (base / "private_data_dir" / "artifacts" / IDENT).glob("stdout"))


@pytest.mark.parametrize("playbook, misspelled", [
    ("diagnose.yml", "survey_user"),
    ("remediate.yml", "survey_rebot"),
    ("tenant.yml", "survey_fail_on_finding"),
])
def test_a_misspelled_survey_variable_fails_the_job_naming_the_right_one(tmp_path, playbook, misspelled):
    """A survey edited by hand (its variable renamed) sends an answer nothing reads. The job
    fails before any host, naming only that variable: every variable the shipped survey
    sends (its defaults, as AWX sends them) is known, or it would be named too."""
    answers = survey_answers(playbook, target=None)
    answers[misspelled] = "false"
    done, status = run_job(tmp_path, playbook, answers, OFFLINE_INVENTORY)
    output = done.stdout + _job_output(tmp_path)
    assert status == "failed", output[-5000:]
    unknown = re.search(r"Unknown variables? (.*?)\. Nothing was run", output)
    assert unknown, output[-5000:]
    assert unknown.group(1).startswith("%s (extra vars; did you mean survey_" % misspelled), unknown.group(1)
    assert unknown.group(1).count("(extra vars") == 1, unknown.group(1)
    assert "unreachable=1" not in output and "PC042" not in output.split("PLAY RECAP")[-1]


def test_a_target_that_matches_no_host_fails_the_job(tmp_path):
    """`skipping: no hosts matched` used to end as a successful job."""
    done, status = run_job(tmp_path, "diagnose.yml", survey_answers("diagnose.yml", target="NO-SUCH-HOST"),
                           OFFLINE_INVENTORY)
    output = done.stdout + _job_output(tmp_path)
    assert status == "failed", output[-5000:]
    assert "target 'NO-SUCH-HOST' matches no host of the inventory" in output
    assert "no hosts matched" not in output
