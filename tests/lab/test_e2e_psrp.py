# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles end to end through ansible-core's `psrp` connection (pypsrp), issue 11: half of
the users connect with `ansible_connection: psrp`, so the repair flow must hold there too,
restart included (ansible.windows.win_reboot, which our reboot step delegates to, has to
reconnect through a new RunspacePool after the host went down).

Three hosts - the healthy one, the cloud-only joined one and the TokenBroker one - run
playbooks/remediate.yml (diagnose -> rungs -> one restart -> diagnose again) over NTLM with
message encryption on the lab's PowerShell plugin (tests/lab/psrp.py), then once more;
the expectations are test_e2e.py's, taken from docs/triage.md and
docs/guides/repair-ladder.md. Then a test-only module (ansible_plugins/modules/lab_probe.ps1)
sends back what stresses a connection: a failure, warnings, and 1 MiB of output.

One lab for the module; the tests run in file order and later ones build on the state the
earlier ones left.
"""

from __future__ import annotations

import hashlib
import json
import os
import re

import pytest

from .conftest import scenario_lab
from .test_ansible import PLAYBOOK_BIN, host_results, run_json
from .test_e2e import (EXPECTED_OUTCOME, REPAIR_HOSTS, TOKEN_BROKER_RUNGS, TRIAGE_TABLE, delta, dsreg_device,
                       host_state, playbook, rung_results)

TRANSPORT = "psrp_ntlm"
PROBE_MODULES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ansible_plugins", "modules")


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    with scenario_lab(tmp_path_factory.mktemp("e2e-psrp"), REPAIR_HOSTS) as lp:
        yield lp


def powershell_shells(lab) -> dict:
    """host -> RunspacePools the PowerShell plugin started so far (psrp.Relay logs one line each):
    proof that a run went through psrp and not through the cmd shell's WinRS commands."""
    found = re.findall(r"(\S+): PowerShell shell \S+: pwsh -s pid", lab.log())
    return {host: found.count(host) for host in REPAIR_HOSTS}


def remediate(lab, tmp_path, name: str, *extra):
    # One fork per host: with fewer, every task runs the third host on its own after the others.
    return playbook(lab, tmp_path, "remediate.yml", tmp_path / name, "-e", "remediate_reboot=true",
                    "--forks", str(len(REPAIR_HOSTS)), *extra, transport=TRANSPORT, hosts=REPAIR_HOSTS)


# ------------------------------------------------------------------------------------------
def test_remediate_over_psrp_runs_the_planned_rungs_and_leaves_the_cloud_device_joined(three, tmp_path, runs):
    shells = powershell_shells(three)
    before = three.counts(settle=0.3)
    rc, doc, err, report = remediate(three, tmp_path, "remediate1", "-e", "remediate_reboot_timeout=180")
    after = three.counts()
    runs["first"] = {"rc": rc, "doc": doc, "err": err, "report": report, "before": before, "after": after}
    for host in REPAIR_HOSTS:
        # Every module execution was a RunspacePool on the PowerShell plugin.
        started = powershell_shells(three)[host] - shells[host]
        assert started == delta(before, after, host, "Create") > 0, (host, started, after[host])
        # The diagnosis the run started from is docs/triage.md's for that evidence.
        entry = report["hosts"][host]
        assert (entry["before"]["join_type"], entry["before"]["plan"]) == TRIAGE_TABLE[host], entry["before"]
    rungs = rung_results(doc)
    assert sorted(rungs.get("PC-HYB-PRT", {})) == TOKEN_BROKER_RUNGS, rungs.get("PC-HYB-PRT")
    assert all(r.get("changed") and not r.get("failed") for r in rungs["PC-HYB-PRT"].values()), rungs["PC-HYB-PRT"]
    assert sorted(rungs) == ["PC-HYB-PRT"], sorted(rungs)
    cloud = report["hosts"]["LT-CLOUD-21"]
    assert [m["rung"] for m in cloud["manual"]] == ["forcerecovery_cloud_joined"], cloud["manual"]
    # repair-ladder.md: a leave on a cloud-only device cannot be undone by /join.
    text = dsreg_device(three, "LT-CLOUD-21")
    assert "AzureAdJoined : YES" in text and "DomainJoined : NO" in text, text


def test_remediate_over_psrp_restarts_once_and_reaches_the_documented_outcomes(three, runs):
    first = runs["first"]
    report = first["report"]
    reboots = {h: delta(first["before"], first["after"], h, "reboots") for h in REPAIR_HOSTS}
    assert reboots == {"PC-HYB-PRT": 1, "LT-CLOUD-21": 0, "PC-HEALTHY": 0}, report["hosts"]["PC-HYB-PRT"]
    # ansible.windows.win_reboot (our reboot step delegates to it) saw the host go down and
    # come back through a new RunspacePool, and the boot time moved.
    (restart,) = [t["hosts"]["PC-HYB-PRT"] for play in first["doc"]["plays"] for t in play["tasks"]
                  if "Restart once" in t["task"] and "PC-HYB-PRT" in t["hosts"]]
    assert restart.get("rebooted") is True and not restart.get("failed"), restart
    assert restart["boot_time_after"] != restart["boot_time_before"], restart
    assert {h: report["hosts"][h]["outcome"] for h in REPAIR_HOSTS} == EXPECTED_OUTCOME, {
        h: report["hosts"][h].get("outcome_reason") for h in REPAIR_HOSTS}
    assert first["rc"] == 0, first["err"][-3000:]


def test_a_second_remediate_run_over_psrp_changes_nothing_and_does_not_restart(three, tmp_path, runs):
    first = runs["first"]
    # Without the first run's restart the marker is still set and this run would restart
    # (correctly): nothing to learn from running it.
    assert delta(first["before"], first["after"], "PC-HYB-PRT", "reboots") == 1
    states = {h: host_state(three.host(h)["state"]) for h in REPAIR_HOSTS}
    before = three.counts(settle=0.3)
    rc, doc, err, report = remediate(three, tmp_path, "remediate2")
    assert rc == 0, err[-3000:]
    after = three.counts()
    for host in REPAIR_HOSTS:
        assert delta(before, after, host, "reboots") == 0
        # Healthy rerun target: the diagnosis plus at most the reboot-state read.
        assert delta(before, after, host, "Command") <= 2, (host, after[host])
        assert host_state(three.host(host)["state"]) == states[host], host
    assert not rung_results(doc), rung_results(doc)
    assert report["hosts"]["LT-CLOUD-21"]["outcome"] == "needs_user"


# The module results that stress a connection. The text carries what PSRP's CLIXML has to
# escape (XML specials, control characters, a literal "_x000A_", which must not come back
# as a newline) and non-ASCII; the large value is 1 MiB characters, more than one Receive.
AWKWARD = "m365ops <psrp> & 'lab' \"é€ñ\" _x000A_ \t\r\n"
WARNINGS = ["first warning: " + AWKWARD, "second warning, plain"]
FAILURE = "lab_probe failed on purpose (parameter fail_msg): " + AWKWARD
BIG = 1024 * 1024

PROBE_PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: a module that writes warnings
      lab_probe:
        warnings: %(warnings)s
    - name: a module with 1 MiB of output
      lab_probe:
        pattern: %(pattern)s
        length: %(length)d
    - name: a module that fails
      lab_probe:
        fail_msg: %(fail)s
      ignore_errors: true
""" % {"warnings": json.dumps(WARNINGS), "pattern": json.dumps(AWKWARD), "length": BIG, "fail": json.dumps(FAILURE)}


def test_failures_warnings_and_a_megabyte_come_back_intact_over_psrp(three, tmp_path):
    book = tmp_path / "probe.yml"
    book.write_text(PROBE_PLAYBOOK)
    rc, doc, err = run_json([PLAYBOOK_BIN, "-i", three.inventory(TRANSPORT), "--limit", "PC-HEALTHY",
                             "-M", PROBE_MODULES, str(book)], tmp_path)
    assert rc == 0, (err[-3000:], three.log()[-3000:])
    warned, big, failed = host_results(doc)["PC-HEALTHY"]

    assert warned.get("warnings") == WARNINGS, warned
    assert not warned.get("failed"), warned

    value = big.get("value", "")
    expected = (AWKWARD * (BIG // len(AWKWARD) + 1))[:BIG]
    digest = hashlib.sha256(expected.encode("utf-8")).hexdigest()
    # The host's own length and hash say what it sent; the value must match both, and the text.
    assert (big.get("length"), big.get("sha256")) == (BIG, digest), {k: v for k, v in big.items() if k != "value"}
    assert (len(value), hashlib.sha256(value.encode("utf-8")).hexdigest()) == (BIG, digest)
    assert value == expected

    assert failed.get("failed") is True, failed
    assert failed.get("msg") == FAILURE, failed
