# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles end to end: playbooks/diagnose.yml and playbooks/remediate.yml against the six
example hosts (tests/lab/scenarios, mirroring examples/evidence) through ansible-core's own
`winrm` connection: NTLM with message encryption, and the dry run over Basic/HTTPS with the
lab CA. The expectations come from the docs, not from what the code happens to do:
docs/triage.md (join type and plan of each example host) and docs/guides/repair-ladder.md
(outcomes, one restart, idempotency, dry run).

One lab for the module; the tests run in file order and later ones build on the state the
earlier ones left, the way an admin runs diagnose, then a dry run, then the repair, then
the repair again. About 5 minutes on two busy cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.m365ops.activation.plugins.module_utils.triage import triage_bundle

from .conftest import scenario_lab
from .test_ansible import PLAYBOOK_BIN, run_json
from .process import REPO_ROOT

SCENARIOS = ["PC-HYB-PRT", "LT-CLOUD-21", "LT-REG-EXTRA", "PC-DOM-NOSCP", "PC-NET-BLOCK", "PC-HEALTHY"]

# docs/triage.md, "examples/evidence/ holds six hosts": the plan column, and the join state
# the situation column names, as the report spells them.
TRIAGE_TABLE = {
    "PC-HYB-PRT": ("hybrid_joined", ["purge_office_credentials", "reset_token_broker"]),
    "LT-CLOUD-21": ("entra_joined", ["purge_office_credentials", "reset_token_broker", "forcerecovery_cloud_joined"]),
    "LT-REG-EXTRA": ("entra_registered", ["purge_office_credentials", "remove_extra_work_accounts", "check_licence"]),
    "PC-DOM-NOSCP": ("domain_joined", []),
    "PC-NET-BLOCK": ("hybrid_joined", ["fix_network_path"]),
    "PC-HEALTHY": ("hybrid_joined", []),
}

# The hosts the repair runs on: the TokenBroker host (rungs 1 and 3, then a restart), the
# cloud-only host flagged for recovery (repair-ladder.md "Device recovery comes first": no
# rung, no restart, needs_user; the device is never left) and the healthy one (nothing).
REPAIR_HOSTS = ["PC-HYB-PRT", "LT-CLOUD-21", "PC-HEALTHY"]
EXPECTED_OUTCOME = {"PC-HYB-PRT": "fixed", "LT-CLOUD-21": "needs_user", "PC-HEALTHY": "unchanged"}
RUNG_TASKS = ("Rung 1", "Rung 2", "Rung 3", "Rung 4", "Rung 5")
TOKEN_BROKER_RUNGS = ["Rung 1 - purge the Office credentials from the users' vaults",
                      "Rung 3 - quarantine the TokenBroker caches"]


# The whole lab - its own process, every host process, the controller - runs this far from
# today: the plans must not depend on the date the suite runs (docs/lab.md "Clock and confinement").
CLOCK_OFFSET = "+400d"


@pytest.fixture(scope="module")
def six(tmp_path_factory):
    with scenario_lab(tmp_path_factory.mktemp("e2e"), SCENARIOS, clock_offset=CLOCK_OFFSET) as lp:
        yield lp


def playbook(lab, tmp_path, book: str, report_dir, *extra, transport: str = "ntlm", hosts=None):
    cmd = [PLAYBOOK_BIN, "-i", lab.inventory(transport), os.path.join(REPO_ROOT, "playbooks", book),
           "-e", "target=%s" % ",".join(hosts or SCENARIOS), "-e", "report_dir=%s" % report_dir]
    rc, doc, err = run_json(cmd + list(extra), tmp_path, lab=lab)
    with open(os.path.join(str(report_dir), "report.json")) as fh:
        report = json.load(fh)
    return rc, doc, err, report


def delta(before: dict, after: dict, host: str, key: str) -> int:
    if key == "reboots" or key == "processes_started":
        return after[host][key] - before[host][key]
    return after[host]["requests"].get(key, 0) - before[host]["requests"].get(key, 0)


def host_state(root: str) -> dict:
    """Every file (content hash) and folder of a host, minus logs and caches that are not its
    state: the endpoint's lab/ folder, the shim's compile cache, the task scheduler's run
    history (tasks/runs: the per-user diagnosis task runs in check mode too, as on Windows)
    and pwsh's own ~/.cache (Windows keeps that under LOCALAPPDATA\\Microsoft\\Windows)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        parts = rel.split(os.sep)
        if parts[0] in ("lab", "shim") or ".cache" in parts or parts[:2] == ["tasks", "runs"]:
            dirnames[:] = []
            continue
        out[rel + os.sep] = "dir"
        for name in filenames:
            path = os.path.join(dirpath, name)
            # A FIFO or socket a killed pwsh left in Temp would hang or fail the read.
            mode = os.lstat(path).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                continue
            if os.path.islink(path):
                out[os.path.join(rel, name)] = "link:" + os.readlink(path)
                continue
            with open(path, "rb") as fh:
                out[os.path.join(rel, name)] = hashlib.sha1(fh.read()).hexdigest()
    return out


def rung_results(doc: dict) -> dict:
    """host -> {task name: result} for the rung tasks that were not skipped."""
    out: dict = {}
    for play in doc["plays"]:
        for task in play["tasks"]:
            short = task["task"].split(" : ", 1)[-1]
            if short.startswith(RUNG_TASKS):
                for host, res in task["hosts"].items():
                    if not res.get("skipped"):
                        out.setdefault(host, {})[short] = res
    return out


def dsreg_device(lab, host: str) -> str:
    with open(os.path.join(lab.host(host)["state"], "dsreg", "device.txt"), encoding="utf-8") as fh:
        return fh.read()


# ------------------------------------------------------------------------------------------
def test_diagnose_reports_what_the_offline_triage_of_the_same_evidence_lists(six, tmp_path, runs):
    before = six.counts(settle=0.3)
    evidence = tmp_path / "evidence"
    rc, doc, err, report = playbook(six, tmp_path, "diagnose.yml", tmp_path / "diagnose",
                                    "-e", "diagnose_evidence_dir=%s" % evidence)
    assert rc == 0, (err[-3000:], six.log()[-3000:])
    got = {h: (e.get("join_type"), e.get("plan")) for h, e in report["hosts"].items()}
    assert got == TRIAGE_TABLE
    # ... on a day 400 days from today, for the controller and for every host process alike.
    moved = datetime.now(timezone.utc) + timedelta(days=int(CLOCK_OFFSET.strip("+d")) - 1)
    assert datetime.fromisoformat(report["generated"].replace("Z", "+00:00")) > moved, report["generated"]
    for host in SCENARIOS:
        facts = json.loads((evidence / host / "host_facts.json").read_text(encoding="utf-8-sig"))
        assert datetime.fromisoformat(facts["collected_at"].replace("Z", "+00:00")) > moved, (host, facts["collected_at"])
        # The bundle the run kept gives the same plan when triaged offline.
        assert triage_bundle(str(evidence / host))["plan"] == TRIAGE_TABLE[host][1], host
    after = six.counts()
    for host in SCENARIOS:
        # The target: one module execution per host, and diagnosing changes nothing.
        assert delta(before, after, host, "Command") == 1, (host, after[host])
        assert delta(before, after, host, "reboots") == 0
    facts = [r for play in doc["plays"] for t in play["tasks"] if "win_activation_facts" in t["task"]
             or t["task"].endswith("(one module execution)") for r in t["hosts"].values()]
    assert facts and not any(r.get("changed") for r in facts)


def test_a_dry_run_over_basic_https_changes_nothing_on_the_hosts(six, tmp_path):
    hosts = ["PC-HYB-PRT", "LT-CLOUD-21"]
    states = {h: host_state(six.host(h)["state"]) for h in hosts}
    before = six.counts(settle=0.3)
    rc, doc, err, report = playbook(six, tmp_path, "remediate.yml", tmp_path / "check", "--check",
                                    transport="basic", hosts=hosts)
    assert rc == 0, (err[-3000:], six.log()[-3000:])
    after = six.counts()
    would = {"PC-HYB-PRT": (["purge_office_credentials", "reset_token_broker"], True), "LT-CLOUD-21": ([], False)}
    for host in hosts:
        entry = report["hosts"][host]
        assert entry["outcome"] == "unchanged", entry
        assert "check mode" in entry.get("outcome_reason", ""), entry
        detail = json.dumps({k: v for k, v in entry.items() if k not in ("before", "after", "findings")})[:3000]
        assert (entry["would_run"], entry["would_reboot"]) == would[host], detail
        assert delta(before, after, host, "reboots") == 0
        assert after[host]["auth"].get("basic", 0) > before[host]["auth"].get("basic", 0)
        assert host_state(six.host(host)["state"]) == states[host], host
    # The rungs were asked what they would do, and said they would change something; the
    # cloud-only host waits for its device recovery, every planned rung listed as not run.
    rungs = rung_results(doc)
    assert sorted(rungs.get("PC-HYB-PRT", {})) == TOKEN_BROKER_RUNGS, rungs.get("PC-HYB-PRT")
    assert all(r.get("changed") for r in rungs["PC-HYB-PRT"].values()), rungs["PC-HYB-PRT"]
    assert "LT-CLOUD-21" not in rungs
    skipped = report["hosts"]["LT-CLOUD-21"]["rungs_skipped"]
    assert [s["rung"] for s in skipped] == ["purge_office_credentials", "reset_token_broker"], skipped
    assert all("device recovery first" in s["reason"] for s in skipped), skipped


def test_remediate_runs_the_planned_rungs_and_nothing_on_the_healthy_host(six, tmp_path, runs):
    before = six.counts(settle=0.3)
    rc, doc, err, report = playbook(six, tmp_path, "remediate.yml", tmp_path / "remediate1",
                                    "-e", "remediate_reboot=true", "-e", "remediate_reboot_timeout=180",
                                    hosts=REPAIR_HOSTS)
    runs["first"] = {"rc": rc, "doc": doc, "err": err, "report": report, "before": before, "after": six.counts()}
    rungs = rung_results(doc)
    assert sorted(rungs.get("PC-HYB-PRT", {})) == TOKEN_BROKER_RUNGS, rungs.get("PC-HYB-PRT")
    assert all(r.get("changed") and not r.get("failed") for r in rungs["PC-HYB-PRT"].values()), rungs["PC-HYB-PRT"]
    assert "PC-HEALTHY" not in rungs and "LT-CLOUD-21" not in rungs, sorted(rungs)
    first = runs["first"]
    for host, outcome in (("PC-HEALTHY", "unchanged"), ("LT-CLOUD-21", "needs_user")):
        entry = report["hosts"][host]
        assert entry["outcome"] == outcome, entry
        assert delta(first["before"], first["after"], host, "reboots") == 0
    cloud = report["hosts"]["LT-CLOUD-21"]
    assert [m["rung"] for m in cloud["manual"]] == ["forcerecovery_cloud_joined"], cloud["manual"]
    assert cloud["manual"][0]["who"] == "user"
    # The cloud-only device is never left (a leave there cannot be undone by /join), and its
    # user's caches are untouched until the recovery: no quarantine, no restart marker.
    text = dsreg_device(six, "LT-CLOUD-21")
    assert "AzureAdJoined : YES" in text and "DomainJoined : NO" in text
    assert not cloud.get("quarantines") and not cloud.get("reboot_pending"), cloud


def test_remediate_restarts_once_and_reaches_the_documented_outcomes(six, runs):
    first = runs["first"]
    report = first["report"]
    assert delta(first["before"], first["after"], "PC-HYB-PRT", "reboots") == 1, report["hosts"]["PC-HYB-PRT"]
    assert {h: report["hosts"][h]["outcome"] for h in REPAIR_HOSTS} == EXPECTED_OUTCOME
    assert first["rc"] == 0, first["err"][-3000:]
    # The AAD errors that led to the repair are still in the host's log: the re-diagnosis
    # says it left them out because of the repair (docs/triage.md events_before_repair),
    # rather than the errors silently vanishing or planning the rungs again.
    after = {f["id"]: f for f in report["hosts"]["PC-HYB-PRT"]["after"]["findings"]}
    assert report["hosts"]["PC-HYB-PRT"]["after"]["plan"] == [], after
    note = after["events_before_repair"]["evidence"]
    assert any("before reset_token_broker (the restart at" in line for line in note), note
    text = dsreg_device(six, "LT-CLOUD-21")
    assert "AzureAdJoined : YES" in text


def test_a_second_remediate_run_changes_nothing_and_does_not_restart(six, tmp_path, runs):
    first = runs["first"]
    # Without the first run's restart the markers are still set and this run would restart
    # (correctly): nothing to learn from running it.
    assert delta(first["before"], first["after"], "PC-HYB-PRT", "reboots") == 1
    before = six.counts(settle=0.3)
    rc, doc, err, report = playbook(six, tmp_path, "remediate.yml", tmp_path / "remediate2",
                                    "-e", "remediate_reboot=true", hosts=REPAIR_HOSTS)
    assert rc == 0, err[-3000:]
    after = six.counts()
    for host in REPAIR_HOSTS:
        assert delta(before, after, host, "reboots") == 0
        # Healthy rerun target: the diagnosis plus at most the reboot-state read.
        assert delta(before, after, host, "Command") <= 2, (host, after[host])
    assert all(not r.get("changed") for results in rung_results(doc).values() for r in results.values())
    assert report["hosts"]["LT-CLOUD-21"]["outcome"] == "needs_user"
