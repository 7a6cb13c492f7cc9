# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

import pytest

from ansible_collections.m365ops.activation.plugins.plugin_utils import evidence, ladder, remediation as rem

ALL_HOST = list(rem.HOST_RUNGS)
EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "examples", "evidence")


def finding(fid, rung, severity="high"):
    return {"id": fid, "severity": severity, "summary": fid, "evidence": [], "rung": rung}


def diag(*findings, join_type="hybrid_joined"):
    plan = [r for r in rem.HOST_RUNGS + tuple(rem.MANUAL_RUNGS) if any(f["rung"] == r for f in findings)]
    return {"join_type": join_type, "findings": list(findings), "plan": plan}


HEALTHY = diag(finding("office_ok", None, "info"))
BROKEN = diag(finding("office_credentials", "purge_office_credentials"),
              finding("prt_missing", "reset_token_broker", "critical"))


def test_host_rungs_match_triage_ladder():
    triage = pytest.importorskip("ansible_collections.m365ops.activation.plugins.plugin_utils.triage")
    assert tuple(triage.plan_of([{"rung": r} for r in rem.HOST_RUNGS])) == rem.HOST_RUNGS
    assert set(triage.plan_of([{"rung": r} for r in ladder.RUNGS])[len(rem.HOST_RUNGS):]) == set(rem.MANUAL_RUNGS)


# --- select_rungs ---------------------------------------------------------------------

def test_select_restarts_first_for_a_pending_marker_when_allowed_then_chooses_again():
    plan = ["purge_office_credentials", "reset_token_broker"]
    first = rem.select_rungs(plan, marker_pending=True, reboot_allowed=True)
    assert first["restart_first"] and not first["ladder"] and not first["restart_after"]
    again = rem.select_rungs(plan, marker_pending=True, reboot_allowed=True, restarted_first=True)
    assert not again["restart_first"] and not again["reboot_held"]
    assert again["run"] == plan and again["ladder"] and again["restart_after"]
    # A restart first with no rung to follow: the host is already as diagnosed after it.
    nothing = rem.select_rungs([], marker_pending=True, reboot_allowed=True, restarted_first=True)
    assert not nothing["ladder"] and not nothing["restart_after"]


def test_select_holds_the_reboot_rungs_when_a_pending_restart_may_not_happen():
    sel = rem.select_rungs(["purge_office_credentials", "reset_token_broker"], marker_pending=True,
                           reboot_allowed=False)
    assert not sel["restart_first"] and sel["reboot_held"]
    assert sel["run"] == ["purge_office_credentials"]
    assert sel["skipped"] == [{"rung": "reset_token_broker", "reason": rem.REBOOT_BLOCKED_REASON}]
    assert sel["ladder"] and sel["restart_after"]


def test_select_after_a_failed_restart_first_runs_nothing_and_does_not_restart():
    sel = rem.select_rungs(["purge_office_credentials"], marker_pending=True, reboot_allowed=True,
                           restarted_first=True, failed="restart first: unreachable")
    assert sel["run"] == ["purge_office_credentials"]
    assert not sel["ladder"] and not sel["restart_after"] and not sel["restart_first"]


def test_select_holds_a_rung_for_the_reason_given_and_ignores_an_empty_one():
    plan = ["purge_office_credentials", "reset_token_broker", "reregister_broker_plugin"]
    sel = rem.select_rungs(plan, held={"reset_token_broker": rem.NO_AFFECTED_USER_REASON})
    assert sel["run"] == ["purge_office_credentials", "reregister_broker_plugin"]
    assert sel["skipped"][-1] == {"rung": "reset_token_broker", "reason": rem.NO_AFFECTED_USER_REASON}
    assert not sel["reboot_expected"]
    assert rem.select_rungs(plan, held={"reset_token_broker": None})["run"] == plan
    only = rem.select_rungs(["reset_token_broker"], held={"reset_token_broker": "nobody"})
    assert not only["ladder"]
    with pytest.raises(ValueError, match="held"):
        rem.select_rungs(plan, held=["reset_token_broker"])


def test_select_rejects_non_boolean_restart_switches():
    for name in ("marker_pending", "reboot_allowed", "restarted_first"):
        with pytest.raises(ValueError, match="expected a boolean"):
            rem.select_rungs([], **{name: "yes"})


def test_select_reads_a_plan_with_the_old_license_rung_name():
    sel = rem.select_rungs(["check_licence"])
    assert sel["manual"] == [{"rung": "check_license", "who": "tenant", "step": rem.MANUAL_STEPS["check_license"]}]


def test_after_of_prefers_the_rediagnosis_then_the_last_diagnosis():
    after = {"changed": False, "m365_activation": HEALTHY}
    assert rem.after_of(after, BROKEN) == HEALTHY
    assert rem.after_of({"skipped": True}, BROKEN) == BROKEN
    assert rem.after_of(None, BROKEN, check_mode=True) is None
    assert rem.after_of(None, BROKEN, failed="restart: unreachable") is None
    assert rem.after_of({"m365_activation": {"error": "dsregcmd"}}, BROKEN, failed="diagnose: dsregcmd") is None


def test_select_runs_planned_rungs_in_ladder_order_whatever_the_plan_order():
    sel = rem.select_rungs(["reset_token_broker", "purge_office_credentials"])
    assert sel["run"] == ["purge_office_credentials", "reset_token_broker"]
    assert sel["skipped"] == []
    assert sel["reboot_expected"] is True


def test_select_empty_plan_runs_nothing():
    sel = rem.select_rungs([])
    assert sel == {"run": [], "skipped": [], "manual": [], "reboot_expected": False, "restart_first": False,
                   "restarted_first": False, "reboot_held": False, "ladder": False, "restart_after": False}


def test_select_healthy_rerun_is_the_diagnosis_alone_unless_a_restart_is_owed():
    # Nothing to run and nothing owed: no reboot-state read, no second diagnosis.
    assert not rem.select_rungs([])["restart_after"]
    # A marker that may not be honoured now still goes to the reboot step, which reports it pending.
    assert rem.select_rungs([], marker_pending=True, reboot_allowed=False)["restart_after"]
    # Windows' own pending restart, when the admin asked to honour it.
    assert rem.select_rungs([], windows_pending=True)["restart_after"]
    with pytest.raises(ValueError, match="windows_pending"):
        rem.select_rungs([], windows_pending="yes")


# --- repair_outcome (one win_activation_repair execution) --------------------------------

REDIAGNOSIS = {"changed": True, "m365_activation": HEALTHY, "host_facts": {"last_boot": "2026-12-04T09:31:40Z"}}


def test_repair_outcome_of_a_skipped_task_did_nothing():
    out = rem.repair_outcome({"skipped": True, "changed": False})
    assert out == {"rung_results": {r: {} for r in ALL_HOST}, "failure": "", "reboot": {}, "rediagnosis": None}


def test_repair_outcome_gives_each_rung_its_result_the_restart_and_the_rediagnosis():
    purge = {"changed": True, "reboot_required": False, "users": [{"user": "CONTOSO\\alice", "status": "changed"}]}
    reset = {"changed": True, "reboot_required": True, "users": [], "quarantine_id": "q1"}
    restart = {"reboot_required": True, "scheduled": True, "rebooted": True, "boot_time_before": "2026-12-04T09:15:02Z"}
    out = rem.repair_outcome({"changed": True, "rungs": {"purge_office_credentials": purge, "reset_token_broker": reset},
                              "run": ["purge_office_credentials", "reset_token_broker"], "failed_rung": None,
                              "restart": restart, "rediagnosis": REDIAGNOSIS})
    assert out["rung_results"]["purge_office_credentials"] == purge
    assert out["rung_results"]["reset_token_broker"] == reset
    assert out["rung_results"]["rejoin_hybrid"] == {}
    assert out["reboot"] == restart and out["rediagnosis"] == REDIAGNOSIS and out["failure"] == ""
    # The report reads them as it reads the per-rung path's results.
    entry = rem.build_host_entry(BROKEN, HEALTHY, rem.select_rungs(BROKEN["plan"]), rung_results=out["rung_results"],
                                 reboot=out["reboot"])
    assert entry["rungs_run"] == ["purge_office_credentials", "reset_token_broker"]
    assert entry["rebooted"] and not entry["reboot_pending"] and entry["outcome"] == "fixed"


def test_repair_outcome_names_the_rung_the_ladder_stopped_at_and_a_failed_restart():
    out = rem.repair_outcome({"failed": True, "msg": "reset_token_broker: quarantine_path: no space",
                              "failed_rung": "reset_token_broker",
                              "rungs": {"purge_office_credentials": {"changed": True},
                                        "reset_token_broker": {"failed": True, "msg": "quarantine_path: no space"}},
                              "restart": {"reboot_required": False, "failed": True, "msg": "timed out"}})
    assert out["failure"] == "reset_token_broker: quarantine_path: no space; restart: timed out"
    assert out["rung_results"]["reset_token_broker"]["failed"] is True
    assert out["rediagnosis"] is None


def test_repair_outcome_of_an_unreachable_host_or_a_failed_rediagnosis():
    assert rem.repair_outcome({"unreachable": True, "msg": "timed out"})["failure"] == "repair: timed out"
    broken = rem.repair_outcome({"rungs": {"purge_office_credentials": {"changed": True}}, "restart": {},
                                 "rediagnosis": {"m365_activation": {"error": "dsregcmd failed"}}})
    assert broken["failure"] == "diagnose after the repair: dsregcmd failed" and broken["rediagnosis"] is None


def test_select_rejoin_needs_opt_in():
    sel = rem.select_rungs(ALL_HOST)
    assert "rejoin_hybrid" not in sel["run"]
    assert {"rung": "rejoin_hybrid", "reason": "needs the opt-in remediate_allow_rejoin_hybrid: true"} in sel["skipped"]
    assert "rejoin_hybrid" in rem.select_rungs(ALL_HOST, allow_rejoin_hybrid=True)["run"]


@pytest.mark.parametrize("cap", [2, "2", "remove_extra_work_accounts"])
def test_select_max_rung_caps_the_ladder(cap):
    sel = rem.select_rungs(ALL_HOST, max_rung=cap, allow_rejoin_hybrid=True)
    assert sel["run"] == ["purge_office_credentials", "remove_extra_work_accounts"]
    assert [s["rung"] for s in sel["skipped"]] == ["reset_token_broker", "reregister_broker_plugin", "rejoin_hybrid"]
    assert all("remediate_max_rung (2)" in s["reason"] for s in sel["skipped"])
    assert sel["reboot_expected"] is False


def test_select_max_rung_zero_runs_nothing():
    assert rem.select_rungs(ALL_HOST, max_rung=0)["run"] == []


@pytest.mark.parametrize("disabled", [["reset_token_broker"], "reset_token_broker", " reset_token_broker , "])
def test_select_disabled_rungs(disabled):
    sel = rem.select_rungs(["purge_office_credentials", "reset_token_broker"], disabled=disabled)
    assert sel["run"] == ["purge_office_credentials"]
    assert sel["skipped"] == [{"rung": "reset_token_broker", "reason": "disabled by remediate_rungs_disabled"}]


def test_select_lists_manual_steps_with_who_acts_and_what_to_do():
    sel = rem.select_rungs(["reset_token_broker", "fix_network_path", "check_license"])
    assert sel["run"] == ["reset_token_broker"]
    assert [(m["rung"], m["who"]) for m in sel["manual"]] == [("fix_network_path", "admin"), ("check_license", "tenant")]
    assert all(m["step"] == rem.MANUAL_STEPS[m["rung"]] for m in sel["manual"])
    assert set(rem.MANUAL_STEPS) == set(rem.MANUAL_RUNGS)


# LT-CLOUD-21 (examples/evidence): cloud-only joined, registration flagged for recovery.
CLOUD_RECOVERY_PLAN = ["purge_office_credentials", "reset_token_broker", "forcerecovery_cloud_joined"]


def test_select_device_recovery_holds_back_every_host_rung():
    sel = rem.select_rungs(CLOUD_RECOVERY_PLAN)
    assert sel["run"] == [] and sel["reboot_expected"] is False
    assert sel["skipped"] == [{"rung": "purge_office_credentials", "reason": rem.DEVICE_FIRST_REASON},
                              {"rung": "reset_token_broker", "reason": rem.DEVICE_FIRST_REASON}]
    assert "dsregcmd /forcerecovery with the user present" in rem.DEVICE_FIRST_REASON
    assert sel["manual"] == [{"rung": "forcerecovery_cloud_joined", "who": "user",
                              "step": rem.MANUAL_STEPS["forcerecovery_cloud_joined"]}]


def test_select_device_recovery_wins_over_the_other_switches():
    # Whatever the admin allows, the per-user rungs wait for the device recovery.
    sel = rem.select_rungs(CLOUD_RECOVERY_PLAN, max_rung=1, disabled=["reset_token_broker"])
    assert sel["run"] == []
    assert {s["reason"] for s in sel["skipped"]} == {rem.DEVICE_FIRST_REASON}


def test_select_device_rung_rule_matches_triage_routing():
    """Triage routes the PRT problems of a broken cloud-only device to this rung
    (Context.device_rung); the role's rule must hold back exactly that rung's plans."""
    triage = pytest.importorskip("ansible_collections.m365ops.activation.plugins.plugin_utils.triage")
    bundle = os.path.join(EXAMPLES, "LT-CLOUD-21")
    if not os.path.isdir(bundle):
        pytest.skip("examples/evidence is not part of this tree")
    plan = triage.evaluate(evidence.load_bundle(bundle))["plan"]
    assert plan == CLOUD_RECOVERY_PLAN
    assert set(rem.DEVICE_FIRST_RUNGS) <= set(plan)
    assert rem.select_rungs(plan)["run"] == []


def test_select_pending_restart_not_allowed_holds_back_the_reboot_rungs():
    sel = rem.select_rungs(["purge_office_credentials", "reset_token_broker", "rejoin_hybrid"],
                           allow_rejoin_hybrid=True, reboot_blocked=True)
    assert sel["run"] == ["purge_office_credentials"] and sel["reboot_expected"] is False
    assert sel["skipped"] == [{"rung": "reset_token_broker", "reason": rem.REBOOT_BLOCKED_REASON},
                              {"rung": "rejoin_hybrid", "reason": rem.REBOOT_BLOCKED_REASON}]
    assert "remediate_reboot is false" in rem.REBOOT_BLOCKED_REASON


def test_select_bad_reboot_blocked_names_the_parameter():
    with pytest.raises(ValueError, match="reboot_blocked"):
        rem.select_rungs(["reset_token_broker"], reboot_blocked="yes")


@pytest.mark.parametrize("cap", [6, -1, "7", "rung_six", True, 2.5, [1]])
def test_select_bad_max_rung_names_the_variable(cap):
    with pytest.raises(ValueError, match="remediate_max_rung"):
        rem.select_rungs(ALL_HOST, max_rung=cap)


@pytest.mark.parametrize("disabled", [["purge_credentials"], "reset_token_broker,nope", 3, ["check_license"]])
def test_select_bad_disabled_names_the_variable(disabled):
    with pytest.raises(ValueError, match="remediate_rungs_disabled"):
        rem.select_rungs(ALL_HOST, disabled=disabled)


def test_select_bad_opt_in_and_plan():
    with pytest.raises(ValueError, match="remediate_allow_rejoin_hybrid"):
        rem.select_rungs(ALL_HOST, allow_rejoin_hybrid="yes")
    with pytest.raises(ValueError, match="plan: unknown rung 'format_disk'"):
        rem.select_rungs(["format_disk"])
    with pytest.raises(ValueError, match="plan: expected a list"):
        rem.select_rungs("reset_token_broker")


# --- classify_outcome -------------------------------------------------------------------

def test_outcome_fixed_when_no_actionable_finding_left():
    assert rem.classify_outcome(BROKEN, HEALTHY)["outcome"] == "fixed"


def test_outcome_unchanged_for_a_host_that_was_healthy():
    out = rem.classify_outcome(HEALTHY, HEALTHY)
    assert out == {"outcome": "unchanged", "reason": "already healthy; nothing to do"}


def test_outcome_improved_when_some_findings_resolved():
    after = diag(finding("prt_missing", "reset_token_broker", "critical"))
    out = rem.classify_outcome(BROKEN, after)
    assert out["outcome"] == "improved"
    assert "office_credentials" in out["reason"]


def test_outcome_unchanged_when_same_findings_remain():
    out = rem.classify_outcome(BROKEN, BROKEN)
    assert out["outcome"] == "unchanged"
    assert "office_credentials" in out["reason"] and "prt_missing" in out["reason"]


def test_outcome_failed_when_worse():
    worse = diag(*BROKEN["findings"], finding("device_not_joined", "rejoin_hybrid", "critical"))
    out = rem.classify_outcome(BROKEN, worse)
    assert out["outcome"] == "failed"
    assert "device_not_joined" in out["reason"]


def test_outcome_failed_when_a_rung_failed_or_no_after():
    assert rem.classify_outcome(BROKEN, HEALTHY, failed="rung reset_token_broker: access denied") == {
        "outcome": "failed", "reason": "rung reset_token_broker: access denied"}
    assert rem.classify_outcome(BROKEN, None)["outcome"] == "failed"


def test_outcome_needs_user_for_forcerecovery():
    cloud = diag(finding("cloud_joined_prt_broken", "forcerecovery_cloud_joined", "critical"), join_type="entra_joined")
    out = rem.classify_outcome(cloud, cloud)
    assert out["outcome"] == "needs_user"
    assert rem.MANUAL_STEPS["forcerecovery_cloud_joined"] in out["reason"]


def test_host_entry_for_device_recovery_spells_out_the_step_and_changes_nothing():
    cloud = diag(finding("office_credentials", "purge_office_credentials"),
                 finding("device_auth_failed", "forcerecovery_cloud_joined", "critical"), join_type="entra_joined")
    sel = rem.select_rungs(cloud["plan"])
    no_restart = {"changed": False, "rebooted": False, "reboot_required": False}
    entry = rem.build_host_entry(cloud, cloud, sel, {}, reboot=no_restart)
    assert entry["outcome"] == "needs_user" and entry["rungs_run"] == [] and entry["rebooted"] is False
    assert "dsregcmd /forcerecovery" in entry["outcome_reason"]
    # The step is spelled out once, by the needs_user reason; the rungs it holds back only
    # say why, in short (each skipped rung keeps the whole reason in rungs_skipped).
    assert entry["outcome_reason"].endswith("; not run: purge_office_credentials (device recovery first)")
    assert entry["outcome_reason"].count("dsregcmd /forcerecovery") == 1
    assert entry["rungs_skipped"] == [{"rung": "purge_office_credentials", "reason": rem.DEVICE_FIRST_REASON}]


def test_rungs_held_back_for_one_reason_are_listed_once():
    """LT-CLOUD-21 plans two per-user rungs and the device recovery: the reason reads once
    per reason, not once per rung, and the device step once in all (issue 20)."""
    cloud = diag(finding("office_credentials", "purge_office_credentials"), finding("prt_missing", "reset_token_broker"),
                 finding("device_auth_failed", "forcerecovery_cloud_joined", "critical"), join_type="entra_joined")
    sel = rem.select_rungs(cloud["plan"])
    entry = rem.build_host_entry(cloud, cloud, sel, {})
    assert entry["outcome"] == "needs_user"
    assert entry["outcome_reason"] == (
        "needs the user at the device: forcerecovery_cloud_joined (%s); not run: purge_office_credentials, "
        "reset_token_broker (device recovery first)" % rem.MANUAL_STEPS["forcerecovery_cloud_joined"])
    # A dry run says nothing of the step elsewhere: the reason stays whole, still once.
    dry = rem.build_host_entry(cloud, None, sel, {}, check_mode=True)
    assert dry["outcome_reason"] == ("check mode: nothing was changed on the host; not run: purge_office_credentials, "
                                     "reset_token_broker (%s)" % rem.DEVICE_FIRST_REASON)
    # Different reasons stay apart, each with its own rungs.
    capped = rem.build_host_entry(BROKEN, BROKEN, rem.select_rungs(BROKEN["plan"], max_rung=0), {})
    assert "not run: purge_office_credentials, reset_token_broker (above remediate_max_rung (0))" in capped["outcome_reason"]


def test_outcome_needs_user_when_a_user_was_not_logged_on():
    results = {"purge_office_credentials": {"changed": False, "users": [
        {"sid": "S-1-5-21-1-2-3-1104", "status": "not_logged_on", "removed": []}]}}
    out = rem.classify_outcome(BROKEN, BROKEN, results)
    assert out["outcome"] == "needs_user"
    assert "not logged on" in out["reason"]


def test_outcome_mentions_pending_hybrid_join():
    before = diag(finding("device_not_joined", "rejoin_hybrid", "critical"))
    out = rem.classify_outcome(before, before, {"rejoin_hybrid": {"changed": True, "status": "pending"}})
    assert out["outcome"] == "unchanged"
    assert "hybrid join pending" in out["reason"]


def test_outcome_mentions_a_join_the_next_diagnosis_sees_pending():
    # a later run: the rung did nothing this time, but the diagnosis itself says the join
    # submitted earlier is still waiting for Entra Connect
    before = diag(finding("not_hybrid_joined", None, "high"), finding("hybrid_join_pending", None, "low"))
    out = rem.classify_outcome(before, before, {})
    assert out["outcome"] == "unchanged"
    assert "hybrid join pending" in out["reason"]
    assert "hybrid join pending" not in rem.classify_outcome(BROKEN, BROKEN, {})["reason"]
    # the run that submitted the join: the rejoin finding is gone but the join is not done
    broken = diag(finding("device_not_joined", "rejoin_hybrid", "critical"))
    submitted = rem.classify_outcome(broken, before, {"rejoin_hybrid": {"changed": True, "status": "pending"}})
    assert submitted["outcome"] == "improved" and "hybrid join pending" in submitted["reason"]


def test_outcome_in_check_mode_is_unchanged():
    assert rem.classify_outcome(BROKEN, None, check_mode=True)["outcome"] == "unchanged"


def test_informational_findings_do_not_count():
    info_only = diag(finding("office_version", None, "info"), finding("proxy_set", None, "low"))
    assert rem.is_healthy(info_only)
    assert rem.classify_outcome(BROKEN, info_only)["outcome"] == "fixed"


# --- report entry and fleet summary ------------------------------------------------------

def test_host_entry_carries_before_after_and_rungs_run():
    sel = rem.select_rungs(BROKEN["plan"])
    results = {"purge_office_credentials": {"changed": True},
               "reset_token_broker": {"changed": True, "reboot_required": True},
               "reregister_broker_plugin": {"skipped": True, "changed": False}}
    entry = rem.build_host_entry(BROKEN, HEALTHY, sel, results, reboot={"rebooted": True, "reboot_required": True})
    assert entry["outcome"] == "fixed"
    assert entry["rungs_run"] == ["purge_office_credentials", "reset_token_broker"]
    assert entry["before"]["plan"] == ["purge_office_credentials", "reset_token_broker"]
    assert entry["after"] == {"join_type": "hybrid_joined", "findings": HEALTHY["findings"], "plan": []}
    assert entry["findings"] == HEALTHY["findings"] and entry["plan"] == []
    assert entry["rebooted"] is True and entry["reboot_pending"] is False
    assert "error" not in entry


def test_host_entry_reboot_declined_is_pending():
    entry = rem.build_host_entry(BROKEN, BROKEN, rem.select_rungs(BROKEN["plan"]),
                                 {"reset_token_broker": {"changed": True}},
                                 reboot={"rebooted": False, "reboot_required": True})
    assert entry["reboot_pending"] is True
    assert "restart pending" in entry["outcome_reason"]


def test_host_entry_check_mode_lists_what_would_run():
    sel = rem.select_rungs(BROKEN["plan"])
    entry = rem.build_host_entry(BROKEN, None, sel, {}, check_mode=True)
    assert entry["would_run"] == ["purge_office_credentials", "reset_token_broker"]
    assert entry["after"] is None and entry["plan"] == BROKEN["plan"]
    assert entry["check_mode"] is True


def test_host_entry_failure_keeps_latest_known_state():
    entry = rem.build_host_entry(BROKEN, None, rem.select_rungs(BROKEN["plan"]),
                                 {"purge_office_credentials": {"failed": True}}, failed="rung purge_office_credentials: boom")
    assert entry["outcome"] == "failed" and entry["error"] == "rung purge_office_credentials: boom"
    assert entry["plan"] == BROKEN["plan"]


def test_fleet_summary_counts():
    sel = rem.select_rungs(BROKEN["plan"])
    entries = {
        "PC1": rem.build_host_entry(BROKEN, HEALTHY, sel, {"purge_office_credentials": {"changed": True},
                                                           "reset_token_broker": {"changed": True}},
                                    reboot={"rebooted": True}),
        "PC2": rem.build_host_entry(HEALTHY, HEALTHY, rem.select_rungs([]), {}),
        "PC3": {"unreachable": True, "error": "timed out"},
    }
    summary = rem.summarise_fleet(entries)
    assert summary["hosts"] == 3
    assert summary["outcomes"] == {"fixed": 1, "improved": 0, "unchanged": 1, "failed": 0, "needs_user": 0}
    assert summary["rungs"] == {"purge_office_credentials": 1, "reset_token_broker": 1}
    assert summary["rebooted"] == 1 and summary["errors"] == 1 and summary["already_healthy"] == 1
    assert summary["check_mode"] is False and "would_run" not in summary


def test_fleet_summary_of_a_dry_run_counts_no_rung_as_run():
    """In check mode the rung modules run only to say what they would do: the fleet summary
    says check mode and counts those rungs as would_run, never among the rungs run."""
    sel = rem.select_rungs(BROKEN["plan"])
    results = {"purge_office_credentials": {"changed": True}, "reset_token_broker": {"changed": True, "reboot_required": True}}
    entries = {
        "PC1": rem.build_host_entry(BROKEN, None, sel, results, reboot={"reboot_required": True, "rebooted": False},
                                    check_mode=True),
        "PC2": rem.build_host_entry(HEALTHY, None, rem.select_rungs([]), {}, check_mode=True),
    }
    assert entries["PC1"]["rungs_run"] == ["purge_office_credentials", "reset_token_broker"]
    summary = rem.summarise_fleet(entries)
    assert summary["check_mode"] is True
    assert summary["rungs"] == {} and summary["rebooted"] == 0
    assert summary["would_run"] == {"purge_office_credentials": 1, "reset_token_broker": 1}
    assert summary["would_reboot"] == 1


def test_collect_entries_across_batches():
    done = rem.build_host_entry(HEALTHY, HEALTHY, rem.select_rungs([]), {})
    hosts = rem.collect_entries(["PC1", "PC2", "PC3", "PC4"],
                                {"PC1": done, "PC2": {"unreachable": True, "error": "timed out"}, "PC3": None},
                                active_hosts=["PC1", "PC4"])
    assert hosts["PC1"] is done and hosts["PC2"]["unreachable"] is True
    assert "failed or was unreachable" in hosts["PC3"]["error"]
    assert "PC4" not in hosts  # a later batch


def test_host_entry_keeps_identity_for_the_tenant_checks():
    before = dict(BROKEN, device_id="6f9a9b1e-3f0c-4a3e-9d67-1d7c0c3b2a11", device_name="PC042", users=["alice@contoso.com"])
    entry = rem.build_host_entry(before, None, rem.select_rungs(BROKEN["plan"]), {}, failed="x")
    assert entry["device_id"] == before["device_id"] and entry["users"] == ["alice@contoso.com"]


def test_host_entry_reason_names_rungs_that_were_not_run():
    before = diag(finding("device_not_joined", "rejoin_hybrid", "critical"))
    entry = rem.build_host_entry(before, before, rem.select_rungs(before["plan"]), {})
    assert entry["outcome"] == "unchanged"
    assert "not run: rejoin_hybrid (needs the opt-in remediate_allow_rejoin_hybrid: true)" in entry["outcome_reason"]


def test_host_entry_reason_mentions_a_finished_leftover_reboot():
    entry = rem.build_host_entry(HEALTHY, HEALTHY, rem.select_rungs([]), {}, reboot={"rebooted": True})
    assert entry["outcome"] == "unchanged" and entry["rebooted"] is True
    assert "earlier run left pending" in entry["outcome_reason"]


def test_reboot_requests_and_check_mode_would_reboot():
    results = {"purge_office_credentials": {"changed": True, "reboot_required": False},
               "reset_token_broker": {"changed": True, "reboot_required": True},
               "rejoin_hybrid": {"skipped": True}}
    assert rem.reboot_requests(results) == ["win_token_broker_cache"]
    entry = rem.build_host_entry(BROKEN, None, rem.select_rungs(BROKEN["plan"]), results,
                                 reboot={"changed": True, "rebooted": False, "reboot_required": True}, check_mode=True)
    assert entry["would_reboot"] is True and entry["reboot_pending"] is False


# --- restart first, quarantines --------------------------------------------------------

SKIPPED_TASK = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}


def test_host_entry_restart_first_then_nothing_to_run():
    entry = rem.build_host_entry(BROKEN, HEALTHY, rem.select_rungs([]), {}, reboot=SKIPPED_TASK,
                                 restart_first={"changed": True, "rebooted": True, "reboot_required": True})
    assert entry["outcome"] == "fixed"
    assert entry["rebooted"] is True and entry["restarted_first"] is True and entry["reboot_pending"] is False
    assert "restarted first for a reboot an earlier run left pending" in entry["outcome_reason"]


def test_host_entry_restart_first_then_rungs_and_a_second_restart():
    results = {"reset_token_broker": {"changed": True, "reboot_required": True}}
    entry = rem.build_host_entry(BROKEN, HEALTHY, rem.select_rungs(BROKEN["plan"]), results,
                                 reboot={"rebooted": True, "reboot_required": True},
                                 restart_first={"rebooted": True, "reboot_required": True})
    assert entry["rebooted"] is True and entry["restarted_first"] is True
    assert entry["rungs_run"] == ["reset_token_broker"]


def test_host_entry_without_restart_first_is_not_marked():
    entry = rem.build_host_entry(HEALTHY, HEALTHY, rem.select_rungs([]), {}, reboot={"rebooted": False},
                                 restart_first=SKIPPED_TASK)
    assert entry["restarted_first"] is False and entry["rebooted"] is False
    assert "earlier run" not in entry["outcome_reason"]


def test_host_entry_check_mode_would_restart_first():
    entry = rem.build_host_entry(HEALTHY, None, rem.select_rungs([]), {}, reboot=SKIPPED_TASK, check_mode=True,
                                 restart_first={"changed": True, "rebooted": False, "reboot_required": True})
    assert entry["would_reboot"] is True and entry["reboot_pending"] is False and entry["rebooted"] is False


ALICE = "S-1-5-21-1004336348-1177238915-682003330-1104"
BOB = "S-1-5-21-1004336348-1177238915-682003330-1105"


def test_quarantines_per_user_whose_files_moved():
    results = {"reset_token_broker": {
        "changed": True, "quarantine_id": "20261126T181500Z-3fa2c9d1",
        "quarantine_path": "C:\\ProgramData\\m365ops\\activation\\quarantine\\20261126T181500Z-3fa2c9d1",
        "users": [{"user": "CONTOSO\\alice", "sid": ALICE, "status": "moved", "files": [{"cache": "x"}]},
                  {"user": "CONTOSO\\bob", "sid": BOB, "status": "unchanged", "files": []}]}}
    assert rem.quarantines(results) == [{
        "user": "CONTOSO\\alice", "sid": ALICE, "quarantine_id": "20261126T181500Z-3fa2c9d1",
        "quarantine_path": "C:\\ProgramData\\m365ops\\activation\\quarantine\\20261126T181500Z-3fa2c9d1"}]
    entry = rem.build_host_entry(BROKEN, HEALTHY, rem.select_rungs(BROKEN["plan"]), results)
    assert entry["quarantines"] == rem.quarantines(results)


def test_quarantines_locked_user_with_some_files_moved_is_listed():
    results = {"reset_token_broker": {"quarantine_id": "20261126T181500Z-3fa2c9d1", "users": [
        {"user": "CONTOSO\\bob", "sid": BOB, "status": "locked", "files": [{"cache": "x"}], "locked": ["y"]}]}}
    assert [q["sid"] for q in rem.quarantines(results)] == [BOB]


@pytest.mark.parametrize("results", [
    {},
    {"reset_token_broker": SKIPPED_TASK},
    # check mode: files listed as "to be moved", but no quarantine was made
    {"reset_token_broker": {"quarantine_id": None, "users": [{"sid": ALICE, "status": "moved", "files": [{}]}]}},
])
def test_quarantines_empty_without_a_quarantine(results):
    assert rem.quarantines(results) == []


def test_entry_says_a_failed_restart_failed():
    sel = rem.select_rungs(BROKEN["plan"])
    ran = {"purge_office_credentials": {"changed": True}, "reset_token_broker": {"changed": True, "reboot_required": True}}
    failed_restart = {"failed": True, "msg": "timed out waiting for the host to come back", "reboot_required": True}
    entry = rem.build_host_entry(BROKEN, BROKEN, sel, ran, reboot=failed_restart)
    assert entry["reboot_pending"] is True
    assert "the restart failed (timed out waiting for the host to come back)" in entry["outcome_reason"]
    assert "not allowed" not in entry["outcome_reason"]


# --- rung 3 targeting ---------------------------------------------------------------------

_ALICE = {"sid": "S-1-5-21-1-2-3-1104", "user": "CONTOSO\\alice", "sign_in_upn": "alice@contoso.com", "status": "ok"}
_BOB = {"sid": "S-1-5-21-1-2-3-1105", "user": "CONTOSO\\bob", "sign_in_upn": "bob@contoso.com", "status": "ok"}
_CAROL_OFF = {"sid": "S-1-5-21-1-2-3-1106", "user": "CONTOSO\\carol", "status": "not_logged_on"}


def _diag(*findings):
    return {"findings": list(findings), "plan": ["reset_token_broker"]}


def test_token_broker_targets_the_user_a_finding_names():
    prt = {"id": "prt_missing", "severity": "high", "rung": "reset_token_broker",
           "summary": "No Primary Refresh Token for bob@contoso.com, so Office cannot sign in silently",
           "evidence": ["dsregcmd (bob@contoso.com): AzureAdPrt = NO"]}
    t = rem.token_broker_targets(_diag(prt), {"users": [_ALICE, _BOB, _CAROL_OFF]})
    assert t == {"users": [_BOB["sid"]], "all_profiles": False, "skip_reason": None}


def test_token_broker_device_wide_findings_target_the_examined_sessions_only():
    events = {"id": "wam_broker_errors", "severity": "high", "rung": "reset_token_broker",
              "summary": "The AAD token broker is failing", "evidence": ["event 1098 0xCAA50021 at 2026-11-20T08:14:03Z"]}
    t = rem.token_broker_targets(_diag(events), {"users": [_ALICE, _CAROL_OFF]})
    assert t["users"] == [_ALICE["sid"]]
    assert t["all_profiles"] is False


def test_token_broker_nobody_affected_is_skipped_not_everyone():
    events = {"id": "wam_broker_errors", "severity": "high", "rung": "reset_token_broker", "summary": "x", "evidence": []}
    t = rem.token_broker_targets(_diag(events), {"users": [_CAROL_OFF]})
    assert t["users"] == [] and t["all_profiles"] is False
    assert "remediate_token_broker_all_profiles" in t["skip_reason"]
    selection = rem.select_rungs(["reset_token_broker"])
    held = rem.skip_rung(selection, "reset_token_broker", t["skip_reason"])
    assert held["run"] == [] and held["reboot_expected"] is False
    assert held["skipped"] == [{"rung": "reset_token_broker", "reason": t["skip_reason"]}]
    assert rem.skip_rung(selection, "reset_token_broker", None) == selection


def test_token_broker_named_users_and_explicit_all_profiles():
    assert rem.token_broker_targets(_diag(), {}, users=["alice"]) == {"users": ["alice"], "all_profiles": False, "skip_reason": None}
    assert rem.token_broker_targets(_diag(), {}, all_profiles=True) == {"users": [], "all_profiles": True, "skip_reason": None}


@pytest.mark.parametrize("users,all_profiles,message", [
    (["alice", ""], False, "remediate_users"),
    ("alice", False, "remediate_users"),
    (None, "yes", "remediate_token_broker_all_profiles"),
])
def test_token_broker_bad_input_names_the_variable(users, all_profiles, message):
    with pytest.raises(ValueError, match=message):
        rem.token_broker_targets(_diag(), {}, users=users, all_profiles=all_profiles)


def test_refused_paths_from_diagnose_and_rung_3_are_named_once_each():
    before = {"collection_errors": [
        {"source": "token_broker:S-1", "message": "C:\\Users\\al\\x: junction or symbolic link: not followed",
         "path": "C:\\Users\\al\\x", "refused": True},
        {"source": "os", "message": "registry unavailable"}]}
    rungs = {"reset_token_broker": {"refused": [{"path": "C:\\Users\\al\\x", "reason": "junction or symbolic link: not followed"}]}}
    out = rem.refused_paths(before, rungs)
    assert [(r["path"], r["by"]) for r in out] == [("C:\\Users\\al\\x", "diagnose"), ("C:\\Users\\al\\x", "reset_token_broker")]
    entry = rem.build_host_entry(dict(before, findings=[], plan=[]), None, None, rung_results=rungs, check_mode=True)
    assert entry["refused_paths"] == out
