# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The remediate role's decision flow end to end, without Windows.

``ansible-playbook m365ops.activation.remediate`` runs unchanged - real role, filters,
win_activation_facts action (triage on the controller), win_reboot_if_needed action,
activation_report - against fake hosts over ``connection: local``. Only the host modules
and ansible.windows.win_reboot are stubs (tests/playbooks/stubs/; why a whole throwaway
collection: playbook_helpers.build_stub_collections). Each fake host is a JSON state
file (stubs/fake_host.py) whose diagnosis is a real evidence bundle from
examples/evidence, so the plans come from the real triage rules.

A module finds its host's state file through its interpreter: each fake host's
``ansible_python_interpreter`` is a two-line wrapper that sets M365OPS_FAKE_HOST_STATE
and execs this Python. The interpreter is the one per-host value that reaches a module
process without changing the role (the stub win_reboot action reads the host variable
``m365ops_fake_state`` instead).

Three runs on the same hosts, one module fixture:
  1. ``--check``: nothing changes, the report says what would run and restart;
  2. the real run;
  3. the same run again: hosts already repaired, and the cloud-only host waiting for its
     user, see no rung and no restart; the host whose restart was not allowed in run 2 is
     restarted first and its rungs are not repeated.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import types

import pytest

from playbook_helpers import (
    CALLBACKS, EXAMPLES, STUBS, ansible_env, build_stub_collections, describe, run_playbook,
)

# fake_host.py is a module_utils of the throwaway collection; the test seeds the host
# state files with the same code the stubs read them with.
sys.path.insert(0, str(STUBS))
from fake_host import RUNG_OF_MODULE, new_state, parse_time, boot_text  # noqa: E402  pylint: disable=wrong-import-position

PLAYBOOK = "m365ops.activation.remediate"
TB_FIX = {"rungs": ["reset_token_broker"], "reboot": True}

# host -> (before bundle, after bundle, fixed_by, marker, host vars for run 2)
# Marker times: the fake hosts booted at 08:00 (fake_host.BASE).
HOSTS = {
    # PRT missing + broker errors: purge and TokenBroker reset, one restart, healthy.
    "PC-TB": ("PC-HYB-PRT", "PC-HEALTHY", TB_FIX, None, {}),
    "PC-OK": ("PC-HEALTHY", None, None, None, {}),
    # Cloud-only, registration needs recovery: no rung runs until the user has recovered
    # the device; the device is never left.
    "LT-CLOUD": ("LT-CLOUD-21", None, None, None, {}),
    # Device object disabled/deleted on a hybrid device: rejoin planned, no opt-in.
    "PC-REJOIN": ("devauth", None, None, None, {}),
    "PC-REJOIN-OPTIN": ("devauth", "PC-HEALTHY", {"rungs": ["rejoin_hybrid"], "reboot": True}, None,
                        {"remediate_allow_rejoin_hybrid": True}),
    # The admin caps the ladder at rung 2: the TokenBroker reset is left out.
    "PC-CAP": ("PC-HYB-PRT", "PC-HEALTHY", TB_FIX, None, {"remediate_max_rung": 2}),
    # A run that died after rung 3 wrote its marker, before the restart.
    "PC-LEFTOVER": ("PC-HEALTHY", None, None,
                    {"win_token_broker_cache": "2026-11-26T08:05:00Z quarantined the TokenBroker caches"}, {}),
    # The same, on a host whose repair that restart completes: restart first, no rung again.
    "PC-DIED": ("PC-HYB-PRT", "PC-HEALTHY", TB_FIX,
                {"win_token_broker_cache": "2026-11-26T08:05:00Z quarantined the TokenBroker caches"}, {}),
    # Marker left pending and restarts still not allowed: no rung that needs a restart runs.
    "PC-HELD": ("PC-HYB-PRT", "PC-HEALTHY", TB_FIX,
                {"win_token_broker_cache": "2026-11-26T08:05:00Z quarantined the TokenBroker caches"},
                {"remediate_reboot": False}),
    # Restart not allowed in run 2; run 3 allows it.
    "PC-NOREBOOT": ("PC-HYB-PRT", "PC-HEALTHY", TB_FIX, None, {"remediate_reboot": False}),
}
# Nothing left to do in run 3: healthy after run 2, or waiting for the user's device
# recovery. (PC-REJOIN and PC-CAP still have a rung their switches hold back, so their
# purge runs again; PC-HELD keeps its restart pending.)
SETTLED_AFTER_RUN_2 = ("PC-TB", "PC-OK", "PC-REJOIN-OPTIN", "PC-LEFTOVER", "PC-DIED", "LT-CLOUD")
DEVICE_FIRST = ("device recovery first: dsregcmd /forcerecovery with the user present; "
                "the per-user rungs run on the next run after it")
REBOOT_MODULES = {"win_token_broker_cache", "win_dsreg_join"}
RUNG_MODULES = {"win_credential_purge", "win_work_accounts", "win_token_broker_cache", "win_aad_broker_plugin",
                "win_dsreg_join"}


def _devauth_bundle(dest):
    """PC-HEALTHY with the device object gone from Entra ID: dsregcmd then prints
    ``DeviceAuthStatus : FAILED. Device is either disabled or deleted``."""
    shutil.copytree(EXAMPLES / "PC-HEALTHY", dest)
    status = dest / "dsregcmd_status.txt"
    text = status.read_text(encoding="utf-8")
    assert "DeviceAuthStatus : SUCCESS" in text
    status.write_text(text.replace("DeviceAuthStatus : SUCCESS",
                                   "DeviceAuthStatus : FAILED. Device is either disabled or deleted"),
                      encoding="utf-8")
    return dest


class Flow:
    """The three runs and what each left behind."""

    def __init__(self, base):
        self.base = base
        self.collections = build_stub_collections(base / "collections")
        self.states = base / "state"
        self.states.mkdir()
        bundles = {"devauth": _devauth_bundle(base / "bundles" / "PC-DEVAUTH")}

        def where(name):
            return (bundles.get(name) or EXAMPLES / name) if name else None

        for host, (before, after, fixed_by, marker, dummy) in HOSTS.items():
            state = new_state(where(before), where(after), fixed_by, marker)
            # A marker is what a rung left behind: that rung ran when it was written.
            for source, value in (marker or {}).items():
                state["applied"][RUNG_OF_MODULE[source]] = boot_text(parse_time(value))
            self.state_path(host).write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
        self.runs = {}

    def state_path(self, host):
        return self.states / ("%s.json" % host)

    def state(self, host):
        return json.loads(self.state_path(host).read_text(encoding="utf-8"))

    def inventory(self, name, overrides):
        hosts = {}
        for host, (dummy, dummy2, dummy3, dummy4, host_vars) in HOSTS.items():
            path = str(self.state_path(host))
            python = self.states / ("%s.python" % host)
            python.write_text("#!/bin/sh\nM365OPS_FAKE_HOST_STATE=%s exec %s \"$@\"\n"
                              % (shlex.quote(path), shlex.quote(sys.executable)), encoding="utf-8")
            python.chmod(0o755)
            hosts[host] = dict(host_vars, **overrides.get(host, {}))
            hosts[host].update({"ansible_python_interpreter": str(python), "m365ops_fake_state": path})
        inventory = {"m365_clients": {"hosts": hosts, "vars": {"ansible_connection": "local"}}}
        path = self.base / ("inventory-%s.json" % name)
        path.write_text(json.dumps(inventory, indent=1), encoding="utf-8")
        return path

    def run(self, name, *args, overrides=None):
        record = self.base / ("record-%s.json" % name)
        report_dir = self.base / ("report-%s" % name)
        env = ansible_env(self.collections, {
            "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
            "ANSIBLE_CALLBACKS_ENABLED": "record_run",
            "M365OPS_RECORD": str(record),
            "ANSIBLE_PIPELINING": "true",
            "ANSIBLE_FORKS": str(len(HOSTS)),
        })
        before = {host: self.state_path(host).read_bytes() for host in HOSTS}
        # The per-rung path (one stub module per rung, win_reboot_if_needed): the fake hosts
        # answer module by module. The default one-execution path (win_activation_repair,
        # the restart scheduled on the host) takes the same decisions from the same Python
        # (plugin_utils/remediation.py) and runs for real in the lab (tests/lab/tests/
        # test_e2e.py, test_molecule.py, test_repair_recovery.py).
        proc = run_playbook(PLAYBOOK, "-i", self.inventory(name, overrides or {}),
                            "-e", "report_dir=%s" % report_dir, "-e", "remediate_one_execution=false",
                            *args, env=env, cwd=self.base)
        # A dry run's report goes to the check/ subfolder, apart from the real runs' reports.
        if "--check" in args:
            report_dir = report_dir / "check"
        calls = {}
        for host in HOSTS:
            log = self.states / ("%s.json.calls.jsonl" % host)
            calls[host] = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] \
                if log.exists() else []
            if log.exists():
                log.unlink()
        self.runs[name] = {
            "proc": {"returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr},
            "record": json.loads(record.read_text(encoding="utf-8")) if record.exists() else None,
            "report": json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
            if (report_dir / "report.json").exists() else None,
            "markdown": (report_dir / "report.md").read_text(encoding="utf-8")
            if (report_dir / "report.md").exists() else "",
            "calls": calls,
            "states_before": {host: text.decode("utf-8") for host, text in before.items()},
            "states_after": {host: self.state_path(host).read_text(encoding="utf-8") for host in HOSTS},
        }
        return self.runs[name]


def _run_all(base):
    flow = Flow(base)
    flow.run("check", "--check")
    flow.run("first")
    flow.run("second", overrides={"PC-NOREBOOT": {"remediate_reboot": True}})
    return flow.runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The three runs, done once even when pytest-xdist spreads this file's tests over
    several workers: the first worker runs them under a lock, the others read its
    results (the pattern of pytest-xdist's docs, with fcntl instead of filelock)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _run_all(tmp_path_factory.mktemp("remediate_flow"))
    shared = tmp_path_factory.getbasetemp().parent / "remediate_flow"
    shared.mkdir(exist_ok=True)
    results = shared / "runs.json"
    with open(shared / "lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not results.exists():
            results.write_text(json.dumps(_run_all(shared / "work")), encoding="utf-8")
        return json.loads(results.read_text(encoding="utf-8"))


@pytest.fixture(name="flow")
def _flow(runs):
    return types.SimpleNamespace(runs=runs)


def _modules(run, host, check_mode=None):
    return [c["module"] for c in run["calls"][host] if check_mode is None or c["check_mode"] is check_mode]


def _entry(run, host):
    return run["report"]["hosts"][host]


# --- every run -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["check", "first", "second"])
def test_run_succeeds_and_writes_the_report(flow, name):
    run = flow.runs[name]
    proc = subprocess.CompletedProcess([], **run["proc"])
    assert proc.returncode == 0, describe(proc)
    assert run["report"] is not None and run["report"]["kind"] == "remediate"
    assert set(run["report"]["hosts"]) == set(HOSTS)
    assert run["markdown"].startswith("# m365ops.activation remediate report")
    # Only the dry run's report lives in the check/ subfolder.
    assert ("check_mode" in run["report"]) is (name == "check")


# --- check mode ------------------------------------------------------------------------

def test_check_mode_report_is_apart_and_says_check_mode(flow):
    """A dry run never replaces a real run's report: its own folder, flagged in the JSON,
    the summary, the job artifacts and the fleet summary, whose rungs are would-run ones."""
    run = flow.runs["check"]
    assert run["report"]["check_mode"] is True and run["report"]["summary"]["check_mode"] is True
    assert run["markdown"].startswith("# m365ops.activation remediate report (check mode)")
    stats = run["record"]["custom_stats"]["_run"]
    assert stats["m365_report"]["check_mode"] is True
    fleet = stats["m365_remediate"]
    assert fleet["check_mode"] is True and fleet["rungs"] == {} and fleet["rebooted"] == 0
    entries = run["report"]["hosts"].values()
    assert fleet["would_run"]["reset_token_broker"] == sum("reset_token_broker" in e["would_run"] for e in entries)
    # PC-TB, PC-NOREBOOT and PC-DIED (check mode cannot restart it first); not PC-CAP (max rung 2)
    # nor PC-HELD (its restart is pending and not allowed).
    assert fleet["would_run"]["reset_token_broker"] == 3
    assert fleet["would_reboot"] == sum(e["would_reboot"] for e in entries) > 0
    for name in ("first", "second"):
        assert "check_mode" not in flow.runs[name]["report"], name
        assert flow.runs[name]["record"]["custom_stats"]["_run"]["m365_remediate"]["check_mode"] is False, name


def test_check_mode_changes_no_host(flow):
    run = flow.runs["check"]
    assert run["states_after"] == run["states_before"]
    for host in HOSTS:
        assert all(c["check_mode"] for c in run["calls"][host]), host


def test_check_mode_reports_what_would_run_and_restart(flow):
    run = flow.runs["check"]
    tb = _entry(run, "PC-TB")
    assert tb["check_mode"] is True
    assert tb["would_run"] == ["purge_office_credentials", "reset_token_broker"]
    assert tb["would_reboot"] is True
    assert tb["after"] is None and tb["rungs_run"] == ["purge_office_credentials", "reset_token_broker"]
    assert tb["outcome"] == "unchanged"
    assert _entry(run, "PC-OK")["would_run"] == [] and _entry(run, "PC-OK")["would_reboot"] is False
    # The leftover marker alone is a reason to restart.
    assert _entry(run, "PC-LEFTOVER")["would_reboot"] is True
    assert _entry(run, "PC-CAP")["would_run"] == ["purge_office_credentials"]
    assert "would run: `purge_office_credentials`, `reset_token_broker`" in run["markdown"]


# --- the first real run ------------------------------------------------------------------

def test_tokenbroker_host_is_fixed_with_one_restart(flow):
    run = flow.runs["first"]
    # The play knows a restart is due, so the reboot step reads the state only once the
    # host is back (to clear the marker), then the host is diagnosed again.
    assert _modules(run, "PC-TB") == ["win_activation_facts", "win_credential_purge", "win_token_broker_cache",
                                      "win_reboot_state", "win_activation_facts"]
    assert len(json.loads(run["states_after"]["PC-TB"])["reboots"]) == 1
    entry = _entry(run, "PC-TB")
    assert entry["outcome"] == "fixed", entry["outcome_reason"]
    assert entry["rungs_run"] == ["purge_office_credentials", "reset_token_broker"]
    assert entry["rebooted"] is True and entry["reboot_pending"] is False
    assert entry["before"]["plan"] == ["purge_office_credentials", "reset_token_broker"]
    assert entry["after"]["plan"] == [] and entry["plan"] == []
    assert json.loads(run["states_after"]["PC-TB"])["marker"] == {}


def test_restart_goes_through_win_reboot_with_the_reason(flow):
    reboot = json.loads(flow.runs["first"]["states_after"]["PC-TB"])["reboots"][0]["args"]
    assert reboot["reboot_timeout"] == 1200
    assert "win_token_broker_cache" in reboot["msg"]


def test_healthy_host_runs_no_rung_and_does_not_restart(flow):
    run = flow.runs["first"]
    # The diagnosis alone: no rung, no second diagnosis, and no reboot-state read either,
    # since the diagnosis's pending_reboot already says no restart is owed (issue 19).
    assert _modules(run, "PC-OK") == ["win_activation_facts"]
    entry = _entry(run, "PC-OK")
    assert entry["outcome"] == "unchanged" and "already healthy" in entry["outcome_reason"]
    assert entry["rebooted"] is False and entry["rungs_run"] == []


def test_cloud_only_host_waits_for_device_recovery(flow):
    """LT-CLOUD-21 plans purge, TokenBroker reset and /forcerecovery: per-user resets
    cannot repair the registration, so nothing runs and the user's step is spelled out."""
    for name in ("check", "first", "second"):
        run = flow.runs[name]
        assert _modules(run, "LT-CLOUD") == ["win_activation_facts"], name
        assert run["states_after"]["LT-CLOUD"] == run["states_before"]["LT-CLOUD"], name
        entry = _entry(run, "LT-CLOUD")
        assert entry["rungs_skipped"] == [{"rung": "purge_office_credentials", "reason": DEVICE_FIRST},
                                          {"rung": "reset_token_broker", "reason": DEVICE_FIRST}], name
        assert entry["rebooted"] is False and entry["rungs_run"] == [], name
    assert _entry(flow.runs["check"], "LT-CLOUD")["would_run"] == []
    assert _entry(flow.runs["check"], "LT-CLOUD")["would_reboot"] is False
    for name in ("first", "second"):
        entry = _entry(flow.runs[name], "LT-CLOUD")
        assert entry["outcome"] == "needs_user", name
        # The step once (the needs_user reason), then the rungs it holds back, once.
        assert entry["outcome_reason"].count("dsregcmd /forcerecovery") == 1, entry["outcome_reason"]
        assert entry["outcome_reason"].endswith(
            "; not run: purge_office_credentials, reset_token_broker (device recovery first)"), entry["outcome_reason"]
        manual = [m for m in entry["manual"] if m["rung"] == "forcerecovery_cloud_joined"]
        assert manual and manual[0]["who"] == "user" and "dsregcmd /forcerecovery" in manual[0]["step"]


def test_rejoin_without_opt_in_is_skipped(flow):
    run = flow.runs["first"]
    assert "win_dsreg_join" not in _modules(run, "PC-REJOIN")
    entry = _entry(run, "PC-REJOIN")
    assert entry["rungs_skipped"] == [{"rung": "rejoin_hybrid",
                                       "reason": "needs the opt-in remediate_allow_rejoin_hybrid: true"}]
    assert entry["rungs_run"] == ["purge_office_credentials"]
    assert entry["outcome"] == "unchanged"
    assert "not run: rejoin_hybrid" in entry["outcome_reason"]


def test_rejoin_with_opt_in_runs_and_restarts(flow):
    run = flow.runs["first"]
    joins = [c for c in run["calls"]["PC-REJOIN-OPTIN"] if c["module"] == "win_dsreg_join"]
    assert [c["args"]["state"] for c in joins] == ["rejoined"]
    assert joins[0]["args"].get("allow_cloud_only_leave") is False
    entry = _entry(run, "PC-REJOIN-OPTIN")
    assert entry["outcome"] == "fixed" and entry["rebooted"] is True


def test_max_rung_caps_the_ladder(flow):
    run = flow.runs["first"]
    assert "win_token_broker_cache" not in _modules(run, "PC-CAP")
    entry = _entry(run, "PC-CAP")
    assert entry["rungs_run"] == ["purge_office_credentials"]
    assert entry["rungs_skipped"] == [{"rung": "reset_token_broker", "reason": "above remediate_max_rung (2)"}]
    assert entry["rebooted"] is False and entry["outcome"] == "unchanged"


def test_leftover_marker_is_restarted_and_cleared(flow):
    run = flow.runs["first"]
    assert not set(_modules(run, "PC-LEFTOVER")) & RUNG_MODULES
    state = json.loads(run["states_after"]["PC-LEFTOVER"])
    assert len(state["reboots"]) == 1 and state["marker"] == {}
    entry = _entry(run, "PC-LEFTOVER")
    assert entry["rebooted"] is True and entry["restarted_first"] is True
    assert "restarted first for a reboot an earlier run left pending" in entry["outcome_reason"]


def test_leftover_marker_restarts_first_and_rungs_are_not_repeated(flow):
    """PC-DIED: a run died after rung 3. Diagnosed before the restart it still plans the
    purge and the TokenBroker reset; restarted first, it is healthy and nothing runs."""
    run = flow.runs["first"]
    calls = _modules(run, "PC-DIED")
    assert not set(calls) & RUNG_MODULES, calls
    assert calls[0] == "win_activation_facts" and calls[-1] == "win_activation_facts"
    assert calls.count("win_activation_facts") == 2
    state = json.loads(run["states_after"]["PC-DIED"])
    assert len(state["reboots"]) == 1 and state["marker"] == {}
    entry = _entry(run, "PC-DIED")
    assert entry["before"]["plan"] == ["purge_office_credentials", "reset_token_broker"]
    assert entry["after"]["plan"] == [] and entry["rungs_run"] == [] and entry["quarantines"] == []
    assert entry["outcome"] == "fixed" and entry["restarted_first"] is True
    # Check mode restarts nothing, so it can only say the restart comes first.
    assert _entry(flow.runs["check"], "PC-DIED")["would_reboot"] is True


def test_pending_restart_not_allowed_holds_back_the_rungs_that_need_one(flow):
    for name in ("first", "second"):
        run = flow.runs[name]
        calls = _modules(run, "PC-HELD")
        assert "win_credential_purge" in calls and "win_token_broker_cache" not in calls, (name, calls)
        state = json.loads(run["states_after"]["PC-HELD"])
        assert state["reboots"] == [] and "win_token_broker_cache" in state["marker"], name
        entry = _entry(run, "PC-HELD")
        assert entry["rungs_skipped"] == [{
            "rung": "reset_token_broker",
            "reason": "a restart is pending and remediate_reboot is false: it runs after that restart"}], name
        assert entry["reboot_pending"] is True and entry["rebooted"] is False, name
        assert "restart pending" in entry["outcome_reason"], name


def test_restart_not_allowed_leaves_it_pending(flow):
    run = flow.runs["first"]
    state = json.loads(run["states_after"]["PC-NOREBOOT"])
    assert state["reboots"] == [] and "win_token_broker_cache" in state["marker"]
    entry = _entry(run, "PC-NOREBOOT")
    assert entry["rebooted"] is False and entry["reboot_pending"] is True
    assert entry["outcome"] == "unchanged" and "restart pending" in entry["outcome_reason"]
    assert "- reboot pending: yes" in run["markdown"]


def test_quarantine_ids_are_in_the_report(flow):
    entry = _entry(flow.runs["first"], "PC-TB")
    assert [(q["user"], q["sid"]) for q in entry["quarantines"]] == [
        ("CONTOSO\\alice", "S-1-5-21-1004336348-1177238915-682003330-1104")]
    quarantine = entry["quarantines"][0]
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", quarantine["quarantine_id"])
    assert quarantine["quarantine_path"].endswith("\\" + quarantine["quarantine_id"])
    # Check mode moves nothing, so there is no quarantine to point at.
    assert _entry(flow.runs["check"], "PC-TB")["quarantines"] == []


def test_set_stats_publishes_the_fleet_summary(flow):
    run = flow.runs["first"]
    stats = run["record"]["custom_stats"]["_run"]["m365_remediate"]
    assert stats["hosts"] == len(HOSTS)
    # fixed: PC-TB, PC-REJOIN-OPTIN, PC-DIED; needs_user: LT-CLOUD
    assert stats["outcomes"] == {"fixed": 3, "improved": 0, "unchanged": 6, "failed": 0, "needs_user": 1}
    assert stats["rebooted"] == 4  # PC-TB, PC-REJOIN-OPTIN, PC-LEFTOVER, PC-DIED
    assert stats["reboot_pending"] == 2  # PC-NOREBOOT, PC-HELD
    assert stats["rungs"]["reset_token_broker"] == 2  # PC-TB, PC-NOREBOOT
    assert stats["already_healthy"] == 2  # PC-OK, PC-LEFTOVER


def test_report_keeps_before_after_and_outcome_per_host(flow):
    report = flow.runs["first"]["report"]
    assert report["summary"]["outcomes"] == {"fixed": 3, "unchanged": 6, "needs_user": 1}
    for host, entry in report["hosts"].items():
        assert set(entry["before"]) == {"join_type", "findings", "plan"}, host
        assert entry["after"] is not None, host
        assert entry["check_mode"] is False and "would_run" not in entry, host


# --- the second real run ------------------------------------------------------------------

@pytest.mark.parametrize("host", SETTLED_AFTER_RUN_2)
def test_second_run_changes_nothing_on_a_settled_host(flow, host):
    run = flow.runs["second"]
    assert run["states_after"][host] == run["states_before"][host]
    assert _modules(run, host) == ["win_activation_facts"]
    changed = [r["task"] for r in run["record"]["results"]
               if r["host"] == host and r["changed"] and r["action"].startswith("m365ops.activation.win_")]
    assert changed == []
    assert _entry(run, host)["rebooted"] is False


def test_second_run_restarts_the_host_left_pending_before_any_rung(flow):
    run = flow.runs["second"]
    calls = _modules(run, "PC-NOREBOOT")
    assert not set(calls) & RUNG_MODULES, calls
    state = json.loads(run["states_after"]["PC-NOREBOOT"])
    assert len(state["reboots"]) == 1 and state["marker"] == {}
    assert sorted(state["applied"]) == ["purge_office_credentials", "reset_token_broker"]
    entry = _entry(run, "PC-NOREBOOT")
    assert entry["outcome"] == "fixed" and entry["restarted_first"] is True and entry["rungs_run"] == []
