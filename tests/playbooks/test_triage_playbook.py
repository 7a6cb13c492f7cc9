# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/triage.yml end to end: what `make demo` does, and what a bad evidence folder does.

The expected join types and plans are the ones docs/triage.md promises for the example
bundles; ``test_docs_table_matches`` keeps that table and this test in step.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from playbook_helpers import EXAMPLES, PLAYBOOKS, ROOT, describe, run_playbook

TRIAGE = PLAYBOOKS / "triage.yml"

# docs/triage.md, table of examples/evidence.
EXPECTED = {
    "PC-HYB-PRT": ("hybrid_joined", ["purge_office_credentials", "reset_token_broker"]),
    "LT-CLOUD-21": ("entra_joined", ["purge_office_credentials", "reset_token_broker", "forcerecovery_cloud_joined"]),
    "LT-REG-EXTRA": ("entra_registered", ["purge_office_credentials", "remove_extra_work_accounts", "check_license"]),
    "PC-DOM-NOSCP": ("domain_joined", []),
    "PC-NET-BLOCK": ("hybrid_joined", ["fix_network_path"]),
    "PC-HEALTHY": ("hybrid_joined", []),
}


def _triage(evidence_dir, report_dir):
    proc = run_playbook(TRIAGE, "-e", "evidence_dir=%s" % evidence_dir, "-e", "report_dir=%s" % report_dir)
    report_json = report_dir / "report.json"
    report = json.loads(report_json.read_text(encoding="utf-8")) if report_json.exists() else None
    return proc, report


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    report_dir = tmp_path_factory.mktemp("demo") / "reports"
    proc, report = _triage(EXAMPLES, report_dir)
    return proc, report, report_dir


def test_demo_exits_zero(demo):
    proc, report, dummy = demo
    assert proc.returncode == 0, describe(proc)
    assert report is not None


def test_demo_triages_every_example_as_documented(demo):
    dummy, report, dummy2 = demo
    assert report["kind"] == "triage"
    got = {host: (entry.get("join_type"), entry.get("plan")) for host, entry in report["hosts"].items()}
    assert got == EXPECTED
    assert report["summary"]["hosts"] == 6
    assert report["summary"]["errors"] == 0
    assert report["summary"]["healthy"] == 1


def test_demo_writes_markdown_and_html(demo):
    dummy, dummy2, report_dir = demo
    markdown = (report_dir / "report.md").read_text(encoding="utf-8")
    html = (report_dir / "report.html").read_text(encoding="utf-8")
    for host in EXPECTED:
        assert "## %s" % host in markdown
        assert host in html
    assert html.lstrip().lower().startswith("<!doctype html")


def test_demo_prints_one_line_per_host(demo):
    proc, dummy, dummy2 = demo
    for host, (join_type, dummy3) in EXPECTED.items():
        assert "%s: %s" % (host, join_type) in proc.stdout


def test_demo_ends_pointing_at_the_html(demo):
    """The page a person opens, not the Markdown (issue 20)."""
    proc, dummy, report_dir = demo
    last = [line for line in proc.stdout.splitlines() if '"msg":' in line][-1]
    assert last.strip().endswith('Report: %s"' % (report_dir / "report.html")), last


def _plan_of(cell):
    """A plan cell of the docs table -> rung names (prose like 'nothing' -> []).
    Rung names are snake_case with at least one underscore; prose words are not."""
    return [part.strip() for part in cell.split("→") if re.fullmatch(r"\s*[a-z]+(_[a-z]+)+\s*", part)]


def test_docs_table_matches():
    text = (ROOT / "docs" / "triage.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].strip("`") in EXPECTED:
            rows[cells[0].strip("`")] = _plan_of(cells[3])
    assert rows == {host: plan for host, (dummy, plan) in EXPECTED.items()}


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("bad")
    evidence = base / "evidence"
    for host in ("PC-HYB-PRT", "PC-HEALTHY"):
        shutil.copytree(EXAMPLES / host, evidence / host)
    empty = evidence / "PC-EMPTY"
    empty.mkdir(parents=True)
    (empty / "dsregcmd_status.txt").write_bytes(b"")
    broken = evidence / "PC-BADJSON"
    shutil.copytree(EXAMPLES / "PC-HYB-PRT", broken)
    # An export cut off mid-record, as a copy interrupted on a file share leaves it.
    (broken / "aad_events.json").write_text('[\n  {\n    "Id": 1098,\n    "LevelDisplayName": "Error",\n',
                                            encoding="utf-8")
    proc, report = _triage(evidence, base / "reports")
    return proc, report, evidence, base / "reports"


def test_bad_evidence_fails_the_play(bad_run):
    proc, dummy, dummy2, dummy3 = bad_run
    assert proc.returncode != 0, describe(proc)
    assert "Evidence could not be used for 2 host(s)" in proc.stdout, describe(proc)


def test_bad_evidence_still_writes_the_report(bad_run):
    dummy, report, evidence, report_dir = bad_run
    assert report is not None
    assert (report_dir / "report.md").exists()
    assert (report_dir / "report.html").exists()
    hosts = report["hosts"]
    assert set(hosts) == {"PC-HYB-PRT", "PC-HEALTHY", "PC-EMPTY", "PC-BADJSON"}
    assert report["summary"]["errors"] == 2

    empty_error = hosts["PC-EMPTY"]["error"]
    assert "dsregcmd_status.txt" in empty_error and "PC-EMPTY" in empty_error
    assert "empty" in empty_error
    json_error = hosts["PC-BADJSON"]["error"]
    assert str(evidence / "PC-BADJSON" / "aad_events.json") in json_error
    assert "malformed JSON" in json_error
    for name in ("PC-EMPTY", "PC-BADJSON"):
        assert "plan" not in hosts[name]


def test_bad_evidence_leaves_the_good_hosts_triaged(bad_run):
    dummy, report, dummy2, dummy3 = bad_run
    for host in ("PC-HYB-PRT", "PC-HEALTHY"):
        entry = report["hosts"][host]
        assert "error" not in entry
        assert (entry["join_type"], entry["plan"]) == EXPECTED[host]


def test_live_bundle_with_nobody_logged_on_has_no_prt_finding(tmp_path):
    """The device file of a live bundle ran in the admin's WinRM network logon (no PRT):
    with no user output there is no user PRT to judge (docs/development.md, Evidence bundle)."""
    evidence = tmp_path / "evidence"
    shutil.copytree(EXAMPLES / "PC-HEALTHY", evidence / "PC-IDLE")
    facts_path = evidence / "PC-IDLE" / "host_facts.json"
    facts = json.loads(facts_path.read_text(encoding="utf-8"))
    # What win_activation_facts writes when no user has an interactive session.
    facts.update({"collector": "win_activation_facts", "user_context": True, "users": []})
    facts_path.write_text(json.dumps(facts, indent=2), encoding="utf-8")
    proc, report = _triage(evidence, tmp_path / "reports")
    assert proc.returncode == 0, describe(proc)
    entry = report["hosts"]["PC-IDLE"]
    assert "prt_missing" not in [f["id"] for f in entry["findings"]]
    assert entry["plan"] == []
