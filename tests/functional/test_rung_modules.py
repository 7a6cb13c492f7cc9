# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The five repair-rung modules run through ansible-core's POSIX PowerShell path.

Under pwsh on Linux there is no ProfileList, CIM or Task Scheduler, so these tests cover
what runs before any of that: argument validation (each refusal must name its option and
happen before anything is touched) and, for win_dsreg_join and a restore of an empty
quarantine, check mode end to end. ``dsregcmd.exe`` and ``nltest.exe`` are small
stand-in scripts on PATH printing documented output; the module finds them as it finds
the real ones on Windows.
"""

from __future__ import annotations

import json
import os
import stat

import pytest


DOMAIN_ONLY = """
+----------------------------------------------------------------------+
| Device State                                                         |
+----------------------------------------------------------------------+

             AzureAdJoined : NO
          EnterpriseJoined : NO
              DomainJoined : YES
                DomainName : CONTOSO
               Device Name : PC042.contoso.com

+----------------------------------------------------------------------+
"""

HYBRID = DOMAIN_ONLY.replace("AzureAdJoined : NO", "AzureAdJoined : YES")
CLOUD_ONLY = HYBRID.replace("DomainJoined : YES", "DomainJoined : NO").replace(
    "                DomainName : CONTOSO\n", "")


@pytest.fixture
def fake_windows(tmp_path):
    """dsregcmd.exe (under SystemRoot) and nltest.exe (on PATH) stand-ins; returns (env, set_status, recorded)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    status_file = tmp_path / "dsregcmd_status.txt"
    calls = tmp_path / "calls.log"
    scripts = {
        # Only /status may run in these tests: anything else is recorded so a test can
        # prove that check mode and refusals never invoked /join or /leave.
        "dsregcmd.exe": f'#!/bin/sh\necho "dsregcmd $*" >> "{calls}"\n'
                        f'if [ "$1" = "/status" ]; then cat "{status_file}"; exit 0; fi\nexit 1\n',
        "nltest.exe": f'#!/bin/sh\necho "nltest $*" >> "{calls}"\n'
                      'printf "           DC: \\\\\\\\DC01.contoso.com\\nThe command completed successfully\\n"\n',
    }
    # dsregcmd runs by absolute path, %SystemRoot%\System32\dsregcmd.exe (never through
    # PATH); nltest through PATH.
    system32 = tmp_path / "Windows" / "System32"
    system32.mkdir(parents=True)
    for name, body in scripts.items():
        path = (system32 if name == "dsregcmd.exe" else bindir) / name
        path.write_text(body, encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    env = {"PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", "SystemRoot": str(tmp_path / "Windows")}

    def set_status(text: str) -> None:
        status_file.write_text(text, encoding="utf-8")

    def recorded() -> list[str]:
        return calls.read_text(encoding="utf-8").splitlines() if calls.exists() else []

    return env, set_status, recorded


def test_credential_purge_refuses_broad_pattern(run_module):
    for broad in ("**", "*.*", "*e*"):
        result = run_module("win_credential_purge", {"patterns": ["MicrosoftOffice1*", broad]}, check=True)
        assert run_module.last.status == "FAILED!"
        assert result["msg"].startswith("patterns: pattern '%s' has no literal prefix" % broad), result["msg"]
        assert result["users"] == []


def test_work_accounts_refuses_bad_client_id_and_wildcard_upn(run_module):
    result = run_module("win_work_accounts", {"client_id": "office", "accounts": ["*@contoso.com"]})
    assert run_module.last.status == "FAILED!"
    assert result["msg"].startswith("client_id: 'office' is not a GUID")


def test_work_accounts_refuses_to_remove_the_primary_account_before_reading_anything(run_module, fake_windows):
    # Disconnecting work accounts never touches the user's primary account: naming it in
    # `accounts` fails the module before the device state is read or any user is resolved.
    env, set_status, recorded = fake_windows
    set_status(HYBRID)
    result = run_module("win_work_accounts", {
        "users": ["alice"], "primary_upn": "alice@contoso.com",
        "accounts": ["alice@fabrikam.com", "Alice@Contoso.com"], "disconnect_workplace_join": True}, env=env)
    assert run_module.last.status == "FAILED!"
    assert result["msg"] == ("accounts: 'alice@contoso.com' is primary_upn, the user's primary account; "
                             "it is never signed out or disconnected. Nothing was changed.")
    assert result["users"] == [] and result["changed"] is False
    assert recorded() == []


def test_broker_plugin_refuses_traversal_user(run_module):
    result = run_module("win_aad_broker_plugin", {"users": ["..\\..\\Windows\\System32"]}, check=True)
    assert run_module.last.status == "FAILED!"
    assert result["msg"].startswith("users: ")
    assert "path characters" in result["msg"]


def test_token_broker_refuses_traversal_quarantine_id(run_module, tmp_path):
    qroot = tmp_path / "quarantine"
    result = run_module("win_token_broker_cache", {
        "state": "restored", "quarantine_id": "../../Windows", "quarantine_path": str(qroot)})
    assert run_module.last.status == "FAILED!"
    assert result["msg"].startswith("quarantine_id: '../../Windows' is not a quarantine id")
    assert not qroot.exists()


def test_token_broker_refuses_a_quarantine_it_did_not_write(run_module, tmp_path):
    # A folder and manifest made by hand (anyone could): neither the folder is one this
    # collection created nor is the manifest recorded under HKLM, so nothing is trusted.
    qid = "20261126T181500Z-3fa2c9d1"
    qdir = tmp_path / "quarantine" / qid
    qdir.mkdir(parents=True)
    manifest = {"schema": 1, "id": qid, "created": "2026-11-26T18:15:00Z", "computer": "PC042",
                "module": "win_token_broker_cache", "entries": []}
    (qdir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    before = sorted(p.name for p in qdir.iterdir())
    result = run_module("win_token_broker_cache", {
        "state": "restored", "quarantine_id": qid, "quarantine_path": str(tmp_path / "quarantine")},
        check=True)
    assert run_module.last.status == "FAILED!"
    assert result["msg"].startswith("quarantine_path: ")
    assert "was not created by this collection" in result["msg"]
    assert sorted(p.name for p in qdir.iterdir()) == before


def test_token_broker_needs_users_or_all_profiles(run_module, tmp_path):
    for args, start in (({}, "users: name the users"), ({"users": []}, "users: the list is empty")):
        result = run_module("win_token_broker_cache", dict(args, quarantine_path=str(tmp_path / "q")), check=True)
        assert run_module.last.status == "FAILED!"
        assert result["msg"].startswith(start), result["msg"]
    assert not (tmp_path / "q").exists()


def test_dsreg_join_check_mode_plans_join_and_runs_nothing(run_module, fake_windows):
    env, set_status, recorded = fake_windows
    set_status(DOMAIN_ONLY)
    result = run_module("win_dsreg_join", {"state": "joined"}, check=True, env=env)
    assert run_module.last.status in ("SUCCESS", "CHANGED"), result
    assert result["changed"] is True
    assert result["action"] == "join"
    assert result["reboot_required"] is True
    assert result["device_before"]["join_type"] == "domain_joined"
    assert recorded() == ["dsregcmd /status"]


def test_dsreg_join_refuses_cloud_only_leave(run_module, fake_windows):
    env, set_status, recorded = fake_windows
    set_status(CLOUD_ONLY)
    result = run_module("win_dsreg_join", {"state": "left"}, env=env)
    assert run_module.last.status == "FAILED!"
    assert result["msg"].startswith("allow_cloud_only_leave: refusing dsregcmd /leave")
    assert "dsregcmd /forcerecovery" in result["msg"]
    assert recorded() == ["dsregcmd /status"]


def test_dsreg_join_refuses_leave_when_preflight_fails(run_module, fake_windows):
    # pwsh on Linux has neither ADSI nor Get-ScheduledTask: the SCP and task checks cannot
    # run, and a check that cannot run must block the leave.
    env, set_status, recorded = fake_windows
    set_status(HYBRID)
    result = run_module("win_dsreg_join", {"state": "left"}, check=True, env=env)
    assert run_module.last.status == "FAILED!"
    assert "refusing dsregcmd /leave because a rejoin could not succeed" in result["msg"]
    checks = result["preflight"]["checks"]
    assert checks["domain_controller"]["ok"] is True
    assert checks["service_connection_point"]["ok"] is False
    assert checks["automatic_device_join_task"]["ok"] is False
    assert "nltest /dsgetdc:CONTOSO" in recorded()
    assert not [c for c in recorded() if c.startswith("dsregcmd /leave")]


# --- win_activation_repair: the rungs above in one execution ------------------------------

def test_repair_runs_the_rungs_in_ladder_order_and_stops_at_the_first_that_fails(run_module, fake_windows):
    # Given out of order, rung 1 still runs first (the action plugin orders them by the
    # ladder); its refusal stops the ladder, so rung 5 never reads the device or joins.
    env, set_status, recorded = fake_windows
    set_status(DOMAIN_ONLY)
    result = run_module("win_activation_repair", {
        "rungs": ["rejoin_hybrid", "purge_office_credentials"],
        "purge_office_credentials": {"patterns": ["MicrosoftOffice1*", "**"]}}, env=env)
    assert run_module.last.status == "FAILED!"
    assert result["failed_rung"] == "purge_office_credentials" and result["run"] == ["purge_office_credentials"]
    # The rung's result is what win_credential_purge itself returns for the same options.
    rung = result["rungs"]["purge_office_credentials"]
    assert rung["failed"] is True and rung["users"] == [] and rung["reboot_required"] is False
    assert rung["msg"].startswith("patterns: pattern '**' has no literal prefix"), rung["msg"]
    assert result["msg"] == "purge_office_credentials: " + rung["msg"]
    assert result["restart"]["reboot_required"] is False and result["restart"]["scheduled"] is False
    # Nothing to restart for: the verification diagnose runs once, straight after the rungs,
    # and is the only dsregcmd call (rung 5 would have made its own).
    assert "m365_activation" in result["rediagnosis"] and "host_facts" in result["rediagnosis"], result["rediagnosis"]
    assert result["rediagnosis"]["host_facts"]["collector"] == "win_activation_facts"
    assert recorded() == ["dsregcmd /status"]


def test_repair_check_mode_plans_the_rejoin_and_would_restart_without_restarting(run_module, fake_windows):
    env, set_status, recorded = fake_windows
    set_status(DOMAIN_ONLY)
    result = run_module("win_activation_repair", {"rungs": ["rejoin_hybrid"]}, check=True, env=env)
    assert run_module.last.status in ("SUCCESS", "CHANGED"), result
    rung = result["rungs"]["rejoin_hybrid"]
    # win_dsreg_join's own shape, run with state=rejoined.
    assert (rung["action"], rung["join_result"], rung["reboot_required"]) == ("join", "pending", True), rung
    assert rung["device_before"]["join_type"] == "domain_joined" and rung["users"] == []
    restart = result["restart"]
    assert restart["reboot_required"] is True and restart["scheduled"] is False
    assert restart["msg"] == "would restart: rejoin_hybrid: returned reboot_required"
    # Check mode: no shutdown.exe, no verification diagnose.
    assert recorded() == ["dsregcmd /status"]
    assert "rediagnosis" not in result


def test_repair_refuses_an_unknown_rung_before_reaching_the_host(run_module, fake_windows):
    env, set_status, recorded = fake_windows
    result = run_module("win_activation_repair", {"rungs": ["purge_office_credentials", "format_disk"]}, env=env)
    assert run_module.last.status == "FAILED!"
    assert result["msg"].startswith("rungs: unknown rung format_disk; expected any of purge_office_credentials"), result
    assert recorded() == []
