# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every place that says how a host is doing says the same thing.

For each example host (examples/evidence, plus a copy of PC-HEALTHY whose only problem is
an unsupported identity policy: medium, and no rung repairs it), the verdict "healthy" or
"with findings" and the remediate outcome are read back from every output a run leaves:
the console line, report.json (per host and in its summary), report.md, report.html, the
AWX job artifacts (``m365_report``, whole and trimmed, and the remediate role's fleet
summary ``m365_remediate``). They must all agree with ladder.is_healthy.
"""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ansible_collections.m365ops.activation.plugins.plugin_utils import ladder
from ansible_collections.m365ops.activation.plugins.plugin_utils.offline_triage import triage_dir
from ansible_collections.m365ops.activation.plugins.plugin_utils.remediation import (
    build_host_entry, select_rungs, summarise_fleet,
)
from ansible_collections.m365ops.activation.plugins.plugin_utils.report import (
    artifact_of, build_report, find_report, host_line, write_report,
)

EXAMPLES = Path(__file__).resolve().parents[4] / "examples" / "evidence"
POLICY_ONLY = "PC-POLICY-ONLY"


@pytest.fixture(scope="module")
def diagnoses(tmp_path_factory):
    """Host -> diagnosis, for every example bundle and the identity-policy-only host."""
    if not EXAMPLES.is_dir():
        pytest.skip("examples/evidence is not part of this tree")
    root = tmp_path_factory.mktemp("evidence")
    for bundle in EXAMPLES.iterdir():
        shutil.copytree(bundle, root / bundle.name)
    shutil.copytree(EXAMPLES / "PC-HEALTHY", root / POLICY_ONLY)
    facts_path = root / POLICY_ONLY / "host_facts.json"
    facts = json.loads(facts_path.read_text(encoding="utf-8"))
    facts["profiles"][0]["identity_policy"] = {"DisableAADWAM": 1}
    facts_path.write_text(json.dumps(facts), encoding="utf-8")
    hosts = triage_dir(str(root))
    assert not [h for h, e in hosts.items() if e.get("error")], hosts
    return hosts


def test_the_examples_hold_both_verdicts_and_the_policy_only_case(diagnoses):
    policy_only = diagnoses[POLICY_ONLY]
    assert [f["id"] for f in policy_only["findings"] if ladder.is_problem(f)] == ["unsupported_identity_policy"]
    assert policy_only["plan"] == [] and not ladder.has_rung_work(policy_only)
    assert not ladder.is_healthy(policy_only)
    assert ladder.is_healthy(diagnoses["PC-HEALTHY"])
    verdicts = {ladder.is_healthy(d) for d in diagnoses.values()}
    assert verdicts == {True, False}


class _Rows(HTMLParser):
    """report.html's host rows: data-host -> data-state."""

    def __init__(self):
        super().__init__()
        self.states = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-host" in attrs:
            self.states[attrs["data-host"]] = attrs["data-state"]


def _written(report, folder):
    paths = write_report(report, str(folder))
    rows = _Rows()
    rows.feed(Path(paths["html"]).read_text(encoding="utf-8"))
    return (json.loads(Path(paths["json"]).read_text(encoding="utf-8")),
            Path(paths["md"]).read_text(encoding="utf-8"), rows.states)


def _md_counts(markdown):
    """report.md's summary table: (hosts, healthy, with findings, errors)."""
    match = re.search(r"\| hosts \| healthy \| with findings \| errors \|\n\|---\|---\|---\|---\|\n"
                      r"\| (\d+) \| (\d+) \| (\d+) \| (\d+) \|", markdown)
    assert match, markdown
    return tuple(int(n) for n in match.groups())


def _md_sections(markdown):
    """report.md's per-host sections: host -> text."""
    parts = re.split(r"^## (.+)$", markdown, flags=re.M)
    return {name.replace("\\", ""): text for name, text in zip(parts[1::2], parts[2::2])}


def _trimmed(report):
    """The artifact AWX gets for a report too large for its event data."""
    cut = artifact_of(report, max_bytes=len(json.dumps(report)) - 1)
    assert cut.get("truncated") is True and cut["hosts"], cut
    return cut


@pytest.mark.parametrize("kind", ["triage", "diagnose"])
def test_diagnosis_reports_agree_on_every_host(diagnoses, kind, tmp_path):
    expected = {host: ladder.is_healthy(d) for host, d in diagnoses.items()}
    report = build_report(kind, diagnoses, generated="2026-11-26T18:00:00Z")
    written, markdown, html_states = _written(report, tmp_path)
    healthy = sum(expected.values())
    counts = (len(expected), healthy, len(expected) - healthy, 0)

    assert (written["summary"]["healthy"], written["summary"]["with_findings"]) == counts[1:3]
    assert _md_counts(markdown) == counts
    sections = _md_sections(markdown)
    for source in (artifact_of(report), _trimmed(report)):
        # The diagnose role publishes the summary and the report as job artifacts.
        published = find_report({"m365_report": source})
        assert {h: ladder.is_healthy(e) for h, e in published["hosts"].items()} == expected
    assert (report["summary"]["healthy"], report["summary"]["with_findings"]) == counts[1:3]
    for host, is_healthy in expected.items():
        assert html_states[host] == ("healthy" if is_healthy else "with_findings"), host
        assert ("- plan: nothing to do" in sections[host]) is is_healthy, host
        assert ("; healthy; " in host_line(host, written["hosts"][host])) is is_healthy, host
        alone = build_report(kind, {host: diagnoses[host]})
        assert alone["summary"]["healthy"] == int(is_healthy), host


@pytest.mark.parametrize("check_mode", [False, True], ids=["rungs-changed-nothing", "check-mode"])
def test_remediate_outputs_agree_on_every_host(diagnoses, check_mode, tmp_path):
    """A remediate run over the examples in which the host looked the same afterwards (or a
    dry run): the fleet summary, the report files and the artifacts tell one story."""
    entries = {}
    for host, diagnosis in diagnoses.items():
        selection = select_rungs(diagnosis["plan"], allow_rejoin_hybrid=True)
        ran = {rung: {"changed": True} for rung in selection["run"]}
        entries[host] = build_host_entry(diagnosis, None if check_mode else diagnosis, selection,
                                         rung_results=None if check_mode else ran, check_mode=check_mode)
    expected_healthy = {host: ladder.is_healthy(d) for host, d in diagnoses.items()}
    outcomes = {host: entry["outcome"] for host, entry in entries.items()}
    assert set(outcomes.values()) <= set(ladder.OUTCOMES)

    report = build_report("remediate", entries, generated="2026-11-26T18:00:00Z", check_mode=check_mode)
    written, markdown, html_states = _written(report, tmp_path)
    fleet = summarise_fleet(entries)
    sections = _md_sections(markdown)

    healthy = sum(expected_healthy.values())
    assert fleet["already_healthy"] == healthy
    assert (written["summary"]["healthy"], written["summary"]["with_findings"]) == (healthy, len(entries) - healthy)
    assert _md_counts(markdown)[1:3] == (healthy, len(entries) - healthy)
    assert fleet["outcomes"] == {o: list(outcomes.values()).count(o) for o in ladder.OUTCOMES}
    assert written["summary"]["outcomes"] == {o: n for o, n in fleet["outcomes"].items() if n}
    for host, outcome in outcomes.items():
        assert written["hosts"][host]["outcome"] == outcome, host
        assert html_states[host] == outcome, host
        assert "- outcome: `%s`" % outcome in sections[host], host
        alone = summarise_fleet({host: entries[host]})
        assert alone["already_healthy"] == int(expected_healthy[host]), host
        assert build_report("remediate", {host: entries[host]})["summary"]["healthy"] == int(expected_healthy[host])
        # "already healthy" is said only of a host every output counts as healthy.
        assert ("already healthy" in entries[host]["outcome_reason"]) is (expected_healthy[host] and not check_mode)
    for source in (artifact_of(report), _trimmed(report)):
        published = find_report({"m365_report": source})
        assert {h: e.get("outcome") for h, e in published["hosts"].items()} == outcomes
        assert {h: ladder.is_healthy(e) for h, e in published["hosts"].items()} == expected_healthy
