# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sliced diagnose job template (examples/awx/job_templates.yml, job_slice_count) run the
way AWX runs it, against three loopback lab hosts, then merged into one fleet report.

What AWX does, from its sources (docs/guides/awx.md, "Sliced jobs"):
- JobTemplate.create_unified_job makes a workflow job with one node per slice; each slice job
  gets job_slice_number (1..count) and job_slice_count (awx/main/models/workflow.py);
- each slice's inventory holds only its hosts: Inventory.get_sliced_hosts takes the inventory's
  hosts ordered by name and keeps hosts[number - 1::count] (awx/main/models/inventory.py);
- the playbook is told its job's id and the workflow job's as the extra vars awx_job_id and
  awx_workflow_job_id (UnifiedJob.awx_meta_vars), not its slice number or count;
- the job's artifacts are the artifact_data of ansible-runner's playbook_on_stats event, and the
  job document (GET /api/v2/jobs/N/) holds them with job_slice_number and job_slice_count.

So here: two ansible-runner jobs run at once, each over its slice of the lab inventory with
those extra vars; their project folders are deleted afterwards (an execution environment's
files do not survive the job); the job documents AWX would serve are made from what runner left;
the collection's merge_reports playbook merges them.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runner_jobs import collection_playbook, lab_inventory, run_job, stats_event, survey_answers  # noqa: E402
from tests.lab.process import scenario_lab  # noqa: E402  (the lab's own fixture helpers)

# A broken host, a host with an extra work account and a healthy one: findings and rungs to add up.
SCENARIOS = ["PC-HYB-PRT", "LT-REG-EXTRA", "PC-HEALTHY"]
SLICES = 2
WORKFLOW_JOB_ID = 500
TEMPLATE = "M365 activation - diagnose (sliced)"
SUMMARY_COUNTS = ("hosts", "healthy", "with_findings", "errors")


def awx_slice(inventory: dict, number: int, count: int) -> dict:
    """The inventory AWX writes for slice ``number`` of ``count``: every group keeps only the
    hosts of the slice (Inventory.get_sliced_hosts: hosts ordered by name, [number-1::count])."""
    names = sorted(inventory["all"]["hosts"])
    keep = set(names[number - 1::count])
    sliced = copy.deepcopy(inventory)

    def prune(group):
        if isinstance(group.get("hosts"), dict):
            group["hosts"] = {name: value for name, value in group["hosts"].items() if name in keep}
        for child in (group.get("children") or {}).values():
            prune(child)
    prune(sliced["all"])
    return sliced


def slice_job_id(number: int) -> int:
    return WORKFLOW_JOB_ID + number


@pytest.fixture(scope="module")
def sliced_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("awx-slices")
    answers = survey_answers("diagnose.yml", name=TEMPLATE)
    assert "target" not in answers   # the sliced template diagnoses every client of the inventory
    with scenario_lab(base / "lab", SCENARIOS) as lab:
        inventory = lab_inventory(lab, SCENARIOS)
        jobs = {}
        for number in range(1, SLICES + 1):
            extravars = dict(answers, awx_job_id=slice_job_id(number), awx_workflow_job_id=WORKFLOW_JOB_ID,
                             awx_workflow_job_name=TEMPLATE)
            jobs[number] = (base / ("slice-%d" % number), extravars, awx_slice(inventory, number, SLICES))
        started = time.monotonic()
        # AWX runs the slices at once, on whichever execution nodes have capacity.
        with ThreadPoolExecutor(max_workers=SLICES) as pool:
            futures = {number: pool.submit(run_job, folder, "diagnose.yml", extravars, sliced)
                       for number, (folder, extravars, sliced) in jobs.items()}
            done = {number: future.result() for number, future in futures.items()}
        seconds = time.monotonic() - started
    slices = {}
    for number, (folder, _extravars, sliced) in jobs.items():
        proc, status = done[number]
        (folder / "runner.log").write_text(proc.stdout + proc.stderr)
        report_md = folder / "private_data_dir" / "project" / "reports" / "diagnose" / "report.md"
        slices[number] = {
            "folder": folder, "proc": proc, "status": status, "hosts": sorted(sliced["all"]["hosts"]),
            "report_md": report_md.read_text(encoding="utf-8") if report_md.is_file() else "",
            "artifacts": stats_event(folder / "private_data_dir")["event_data"]["artifact_data"],
        }
        # The execution environment is gone: so is everything the job wrote into the project.
        shutil.rmtree(folder / "private_data_dir" / "project")
    print("two slices of %d lab hosts, run at once: %.1f s" % (len(SCENARIOS), seconds))
    return {"base": base, "slices": slices, "seconds": seconds}


def job_document(number: int, artifacts: dict) -> dict:
    """GET /api/v2/jobs/N/ of a slice job, as much of it as the merge reads (JobSerializer)."""
    return {"id": slice_job_id(number), "type": "job", "status": "successful", "artifacts": artifacts,
            "job_slice_number": number, "job_slice_count": SLICES,
            "summary_fields": {"source_workflow_job": {"id": WORKFLOW_JOB_ID, "name": TEMPLATE}}}


def merge(tmp_path, files, *extra):
    return collection_playbook(tmp_path, "merge_reports", "-e", "report_files=%s" % ",".join(str(f) for f in files),
                               "-e", "report_dir=%s" % (tmp_path / "fleet"), *extra)


def test_the_slices_hold_awx_slices_of_the_inventory(sliced_run):
    # Ordered by name: LT-REG-EXTRA, PC-HEALTHY, PC-HYB-PRT; slice 1 takes the 1st and 3rd.
    assert {n: s["hosts"] for n, s in sliced_run["slices"].items()} == {
        1: ["LT-REG-EXTRA", "PC-HYB-PRT"], 2: ["PC-HEALTHY"]}
    for number, run in sliced_run["slices"].items():
        assert run["proc"].returncode == 0 and run["status"] == "successful", \
            (number, run["proc"].stdout[-4000:] + run["proc"].stderr[-2000:])


def test_each_slice_reports_its_own_hosts_and_its_identity(sliced_run):
    for number, run in sliced_run["slices"].items():
        report = run["artifacts"]["m365_report"]
        assert sorted(report["hosts"]) == run["hosts"], number
        assert report["summary"]["hosts"] == len(run["hosts"])
        # What AWX tells a slice job: its id and the workflow job's (not its number).
        assert report["slice"] == {"number": None, "count": None, "job_id": slice_job_id(number),
                                   "workflow_job_id": WORKFLOW_JOB_ID}, report.get("slice")
        assert run["artifacts"]["m365_diagnose"] == report["summary"]
        assert "Run: AWX job %d, workflow job %d." % (slice_job_id(number), WORKFLOW_JOB_ID) in run["report_md"]
    assert sliced_run["slices"][1]["artifacts"]["m365_report"]["summary"]["rungs"], "PC-HYB-PRT plans rungs"


def test_the_merged_fleet_report_adds_up_the_slices(sliced_run, tmp_path):
    files = []
    for number, run in sliced_run["slices"].items():
        path = tmp_path / ("job-%d.json" % slice_job_id(number))
        path.write_text(json.dumps(job_document(number, run["artifacts"])), encoding="utf-8")
        files.append(path)
    done = merge(tmp_path, reversed(files))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    fleet = json.loads((tmp_path / "fleet" / "report.json").read_text(encoding="utf-8"))
    slices = [run["artifacts"]["m365_report"] for run in sliced_run["slices"].values()]
    assert sorted(fleet["hosts"]) == sorted(SCENARIOS)
    for key in SUMMARY_COUNTS:
        assert fleet["summary"][key] == sum(s["summary"][key] for s in slices), key
    rungs = {}
    for report in slices:
        for rung, count in report["summary"]["rungs"].items():
            rungs[rung] = rungs.get(rung, 0) + count
    assert fleet["summary"]["rungs"] == rungs and rungs
    assert fleet["summary"]["hosts"] == len(SCENARIOS)
    assert [(s["number"], s["count"], s["job_id"], s["workflow_job_id"], s["hosts"]) for s in fleet["slices"]] == [
        (1, SLICES, slice_job_id(1), WORKFLOW_JOB_ID, 2), (2, SLICES, slice_job_id(2), WORKFLOW_JOB_ID, 1)]
    md = (tmp_path / "fleet" / "report.md").read_text(encoding="utf-8")
    assert "Fleet report merged from 2 slices: slice 1 of 2, AWX job %d" % slice_job_id(1) in md
    html = (tmp_path / "fleet" / "report.html").read_text(encoding="utf-8")
    assert all(host in html for host in SCENARIOS) and "Fleet report merged from 2 slices" in html


def test_a_missing_slice_is_named(sliced_run, tmp_path):
    path = tmp_path / "job-1.json"
    path.write_text(json.dumps(job_document(1, sliced_run["slices"][1]["artifacts"])), encoding="utf-8")
    done = merge(tmp_path, [path])
    assert done.returncode != 0
    assert "report_files: slice 2 of 2 missing (given: 1)" in done.stdout + done.stderr
    assert not (tmp_path / "fleet").exists()
