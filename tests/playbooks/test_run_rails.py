# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The usual mistakes of an admin, each ending in an error that says what to fix (issue 20):
a target that matches no host, a misspelled variable (extra vars or the inventory), a host
that cannot be reached. No lab: the hosts point at a closed loopback port, so a run that
contacted one would show it unreachable; the checks that run before any host must leave
none of that.
"""

from __future__ import annotations

import json
import socket

import pytest

from playbook_helpers import describe, run_playbook

DIAGNOSE = "m365ops.activation.diagnose"
REMEDIATE = "m365ops.activation.remediate"
TENANT = "m365ops.activation.tenant"


def closed_port():
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def inventory(tmp_path, group="m365_clients", group_vars=None, hosts=("PC042", "PC043")):
    """WinRM hosts on a closed loopback port: contacted, each would be unreachable."""
    port = closed_port()
    hosts_vars = {host: {"ansible_host": "127.0.0.1", "ansible_port": port} for host in hosts}
    data = {"all": {
        "vars": {"ansible_connection": "winrm", "ansible_winrm_transport": "ntlm", "ansible_winrm_scheme": "http",
                 "ansible_user": "labadmin", "ansible_password": "not-a-secret",
                 "ansible_winrm_operation_timeout_sec": 5, "ansible_winrm_read_timeout_sec": 10},
        "children": {group: {"hosts": hosts_vars}}}}
    path = tmp_path / "inventory" / "hosts.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    if group_vars:
        (tmp_path / "inventory" / "group_vars").mkdir()
        (tmp_path / "inventory" / "group_vars" / ("%s.json" % group)).write_text(json.dumps(group_vars), encoding="utf-8")
    return path


def contacted_no_host(proc):
    """Nothing but the check ran: no play over the hosts, no host in the recap but localhost."""
    recap = proc.stdout[proc.stdout.index("PLAY RECAP"):]
    return ("unreachable=1" not in proc.stdout and "PC042" not in recap and "PC043" not in recap
            and proc.stdout.count("PLAY [") == 1)


def fatal_message(proc):
    lines = [line for line in proc.stdout.splitlines() if line.startswith("fatal: [")]
    assert len(lines) == 1, describe(proc)
    return json.loads(lines[0].split("=> ", 1)[1])["msg"]


# --- a target that matches no host ---------------------------------------------------------

@pytest.mark.parametrize("playbook", [DIAGNOSE, REMEDIATE])
def test_a_target_that_matches_no_host_fails_naming_it(tmp_path, playbook):
    inv = inventory(tmp_path)
    proc = run_playbook(playbook, "-i", inv, "-e", "target=NO-SUCH-HOST", "-e", "report_dir=%s" % (tmp_path / "r"),
                        cwd=tmp_path)
    assert proc.returncode != 0, describe(proc)
    assert fatal_message(proc) == (
        "target 'NO-SUCH-HOST' matches no host of the inventory (%s). No host was contacted. Give a group, a host "
        "name or a pattern of that inventory with -e target=... (its groups: m365_clients; `ansible-inventory "
        "--graph` lists them all)." % inv)
    assert contacted_no_host(proc), describe(proc)
    assert not (tmp_path / "r").exists()


def test_the_default_target_needs_the_m365_clients_group(tmp_path):
    inv = inventory(tmp_path, group="windows")
    proc = run_playbook(DIAGNOSE, "-i", inv, cwd=tmp_path)
    assert proc.returncode != 0, describe(proc)
    assert fatal_message(proc).startswith("target 'm365_clients' matches no host of the inventory")
    assert "its groups: windows" in fatal_message(proc)
    assert contacted_no_host(proc), describe(proc)


def test_a_limit_that_leaves_no_target_host_fails_too(tmp_path):
    """AWX sends its limit prompt as --limit: the check runs under it and says so."""
    proc = run_playbook(REMEDIATE, "-i", inventory(tmp_path), "-e", "target=PC042", "--limit", "PC043", cwd=tmp_path)
    assert proc.returncode != 0, describe(proc)
    assert fatal_message(proc).startswith("target 'PC042' with --limit 'PC043' matches no host of the inventory")
    assert "PLAY [Remediate" not in proc.stdout and "unreachable=1" not in proc.stdout, describe(proc)


# --- misspelled variables ----------------------------------------------------------------------

def test_a_misspelled_variable_stops_remediate_before_any_host(tmp_path):
    """`-e remediate_rebot=false` would leave remediate_reboot at true: the host would restart."""
    inv = inventory(tmp_path, group_vars={"remediate_max_rungs": 2, "remediate_users": ["alice"]})
    proc = run_playbook(REMEDIATE, "-i", inv, "-e", "remediate_rebot=false", "-e", "remediate_serial=1", cwd=tmp_path)
    assert proc.returncode != 0, describe(proc)
    assert fatal_message(proc).startswith(
        "Unknown variables remediate_max_rungs (inventory: PC042, PC043; did you mean remediate_max_rung?), "
        "remediate_rebot (extra vars; did you mean remediate_reboot?). Nothing was run")
    assert contacted_no_host(proc), describe(proc)


def test_a_misspelled_diagnose_variable_is_refused_and_other_playbooks_variables_are_not(tmp_path):
    """An inventory shared by every playbook holds remediate_* settings: diagnose leaves
    them to remediate, and refuses only its own prefixes' unknown names."""
    inv = inventory(tmp_path, group_vars={"remediate_reboot": False, "diagnose_event_days": 3})
    proc = run_playbook(DIAGNOSE, "-i", inv, "-e", "survey_users=alice", cwd=tmp_path)
    assert proc.returncode != 0, describe(proc)
    assert fatal_message(proc).startswith(
        "Unknown variables diagnose_event_days (inventory: PC042, PC043; did you mean diagnose_events_days?), "
        "survey_users (extra vars; nothing in this run reads it: survey answers are read by the AWX project "
        "playbook). Nothing was run")
    assert contacted_no_host(proc), describe(proc)


def test_a_misspelled_tenant_variable_stops_before_any_graph_call(tmp_path):
    # No AZURE_* variables: a run that got as far as Graph would fail on the credentials instead.
    proc = run_playbook(TENANT, "-e", "tenant_check_user=alice@contoso.com", cwd=tmp_path)
    assert proc.returncode != 0, describe(proc)
    assert fatal_message(proc).startswith(
        "Unknown variable tenant_check_user (extra vars; did you mean tenant_check_users?). Nothing was run")
    assert "AZURE" not in proc.stdout


def test_a_tenant_target_that_matches_no_host_of_the_report_fails_before_graph(tmp_path):
    report = {"kind": "diagnose", "generated": "2026-11-26T17:00:00Z", "summary": {}, "hosts": {
        "PC042": {"join_type": "hybrid_joined", "device_id": None, "device_name": "PC042", "users": [],
                  "findings": [], "plan": []},
        "PC045": {"unreachable": True, "error": "ntlm: the specified credentials were rejected by the server"}}}
    (tmp_path / "diagnose.json").write_text(json.dumps(report), encoding="utf-8")
    proc = run_playbook(TENANT, "-e", "diagnose_report=diagnose.json", "-e", "target=PC045", cwd=tmp_path)
    assert proc.returncode != 0, describe(proc)
    assert fatal_message(proc) == ("target 'PC045' matches none of the 1 host(s) of the diagnose report and "
                                   "tenant_check_devices (PC042). Nothing was checked.")
    del report["hosts"]["PC042"]
    (tmp_path / "diagnose.json").write_text(json.dumps(report), encoding="utf-8")
    proc = run_playbook(TENANT, "-e", "diagnose_report=diagnose.json", cwd=tmp_path)
    assert proc.returncode != 0, describe(proc)
    assert "diagnose.json holds no diagnosed host (1 host(s), none diagnosed" in fatal_message(proc)


# --- unreachable hosts in diagnose ----------------------------------------------------------------

@pytest.fixture(scope="module")
def unreachable_runs(tmp_path_factory):
    """diagnose over two hosts on a closed port: by default, and as a dry run that lets
    unreachable hosts pass (diagnose_fail_on_unreachable: false)."""
    base = tmp_path_factory.mktemp("unreachable")
    inv = inventory(base)
    runs = {}
    for name, args in (("default", ()), ("relaxed_check", ("--check", "-e", "diagnose_fail_on_unreachable=false"))):
        report_dir = base / ("report-%s" % name)
        proc = run_playbook(DIAGNOSE, "-i", inv, "-e", "report_dir=%s" % report_dir, *args, cwd=base)
        runs[name] = (proc, report_dir)
    return runs


def test_unreachable_hosts_fail_diagnose_after_the_report_is_written(unreachable_runs):
    proc, report_dir = unreachable_runs["default"]
    assert proc.returncode == 2, describe(proc)
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    assert report["summary"]["errors"] == 2 and "check_mode" not in report
    for host in ("PC042", "PC043"):
        assert report["hosts"][host]["unreachable"] is True
        assert "Connection refused" in report["hosts"][host]["error"], report["hosts"][host]
        assert "%s: UNREACHABLE " % host in proc.stdout
        # The PLAY RECAP counts the host as failed, not only as an ignored unreachable.
        assert any(line.startswith(host) and "failed=1" in line for line in proc.stdout.splitlines()), describe(proc)
    fatal = [line for line in proc.stdout.splitlines() if line.startswith("fatal: [PC042]")]
    msg = json.loads(fatal[-1].split("=> ", 1)[1])["msg"]
    assert msg.startswith("unreachable: ") and "Connection refused" in msg
    assert msg.endswith("(diagnose_fail_on_unreachable: false reports such a host without failing the run)")
    assert "2 unreachable or not diagnosable (PC042, PC043). Report: %s" % (report_dir / "report.html") in proc.stdout


def test_a_relaxed_dry_run_passes_and_keeps_its_report_apart(unreachable_runs):
    proc, report_dir = unreachable_runs["relaxed_check"]
    assert proc.returncode == 0, describe(proc)
    assert not (report_dir / "report.json").exists()
    report = json.loads((report_dir / "check" / "report.json").read_text(encoding="utf-8"))
    assert report["check_mode"] is True and report["summary"]["check_mode"] is True
    assert report["summary"]["errors"] == 2
    assert "Check mode: 2 host(s)" in proc.stdout
    assert "Report: %s" % (report_dir / "check" / "report.html") in proc.stdout
