# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ladder vocabulary and the one meaning of healthy."""

from __future__ import annotations

import pytest

from ansible_collections.m365ops.activation.plugins.plugin_utils import ladder


def finding(fid, severity, rung=None):
    return {"id": fid, "severity": severity, "summary": "", "evidence": [], "rung": rung}


def test_the_ladder_is_host_rungs_then_manual_rungs():
    assert ladder.RUNGS == ladder.HOST_RUNGS + tuple(ladder.MANUAL_RUNGS)
    assert set(ladder.RUNG_MODULES) == set(ladder.HOST_RUNGS)
    assert ladder.REBOOT_RUNGS <= set(ladder.HOST_RUNGS)
    assert set(ladder.MANUAL_RUNGS.values()) == {"user", "admin", "tenant"}


def test_plan_of_sorts_by_the_ladder_and_reads_the_old_license_spelling():
    findings = [finding("a", "high", "check_licence"), finding("b", "high", "reset_token_broker"),
                finding("c", "info"), "not a finding"]
    assert ladder.plan_of(findings) == ["reset_token_broker", "check_license"]
    assert ladder.canonical_rung("check_licence") == "check_license"
    assert ladder.canonical_rung("reset_token_broker") == "reset_token_broker"


def test_a_medium_finding_no_rung_repairs_is_not_healthy():
    policy_only = {"findings": [finding("unsupported_identity_policy", "medium")], "plan": []}
    assert not ladder.is_healthy(policy_only)
    assert not ladder.has_rung_work(policy_only)


def test_healthy_needs_no_plan_no_problem_and_no_error():
    assert ladder.is_healthy({"findings": [finding("device_healthy", "info")], "plan": []})
    assert ladder.is_healthy({"findings": [finding("prt_stale", "low")], "plan": []})
    assert not ladder.is_healthy({"findings": [finding("prt_stale", "low", "reset_token_broker")], "plan": []})
    assert not ladder.is_healthy({"findings": [], "plan": ["fix_network_path"]})
    assert not ladder.is_healthy({"findings": [], "plan": [], "error": "diagnose: failed"})
    assert not ladder.is_healthy({"unreachable": True, "error": "x"})
    assert not ladder.is_healthy(None)


def test_an_entry_without_its_own_state_is_judged_by_its_after():
    entry = {"outcome": "fixed", "after": {"findings": [finding("device_healthy", "info")], "plan": []}}
    assert ladder.is_healthy(entry)
    entry["after"]["plan"] = ["reset_token_broker"]
    assert not ladder.is_healthy(entry)


def test_the_graph_modules_raise_findings_in_the_ladder_vocabulary():
    """The entra_* modules cannot import plugin_utils (AnsiballZ ships module_utils only), so
    graph.make_finding checks severities itself: it must accept exactly the ladder's."""
    graph = pytest.importorskip("ansible_collections.m365ops.activation.plugins.module_utils.graph")
    for severity in ladder.SEVERITIES:
        assert graph.make_finding("x", severity, "s", [], "check_license")["severity"] == severity
    with pytest.raises(ValueError):
        graph.make_finding("x", "severe", "s")


@pytest.mark.parametrize("module", ["entra_user_license", "entra_device_registration_policy"])
def test_the_graph_modules_name_ladder_rungs(module):
    loaded = pytest.importorskip("ansible_collections.m365ops.activation.plugins.modules." + module)
    assert ladder.MANUAL_RUNGS[loaded.RUNG] == "tenant"
