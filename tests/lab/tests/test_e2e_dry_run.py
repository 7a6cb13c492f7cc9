# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The parts of the end-to-end run that change nothing on the hosts, on a lab of their own so
that they run beside tests/lab/tests/test_e2e.py (diagnose, the repair and its re-run) on the
suite's other worker: the remediate playbook's dry run over winrm with Basic/HTTPS and the
lab CA (docs/guides/repair-ladder.md, "Dry run"), and the module results that stress the
psrp connection (warnings, a failure, 1 MiB of output).

Like test_e2e.py, the whole lab runs 400 days from today (docs/lab.md, "Clock and
confinement"); the expectations come from docs/triage.md and the repair ladder guide.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from ..process import scenario_lab
from .test_ansible import PLAYBOOK_BIN, host_results, run_json
from .test_e2e import (CLOCK_OFFSET, TOKEN_BROKER_RUNGS, WORK_ACCOUNT_RUNGS, delta, host_state, playbook,
                       rung_results)

# The dry run's hosts (the TokenBroker host, the cloud-only host waiting for its device
# recovery, the registered laptop with a second tenant's work account) and the healthy
# host the connection test runs on.
HOSTS = ["PC-HYB-PRT", "LT-CLOUD-21", "LT-REG-EXTRA", "PC-HEALTHY"]
PROBE_MODULES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ansible_plugins", "modules")


@pytest.fixture(scope="module")
def four(tmp_path_factory):
    with scenario_lab(tmp_path_factory.mktemp("e2e-dry"), HOSTS, clock_offset=CLOCK_OFFSET) as lp:
        yield lp


# ------------------------------------------------------------------------------------------
def test_a_dry_run_over_basic_https_changes_nothing_on_the_hosts(four, tmp_path):
    hosts = ["PC-HYB-PRT", "LT-CLOUD-21", "LT-REG-EXTRA"]
    states = {h: host_state(four.host(h)["state"]) for h in hosts}
    before = four.counts(settle=0.3)
    rc, doc, err, report = playbook(four, tmp_path, "remediate.yml", tmp_path / "check", "--check",
                                    transport="basic", hosts=hosts)
    assert rc == 0, (err[-3000:], four.log()[-3000:])
    assert report["check_mode"] is True and not (tmp_path / "check" / "report.json").exists()
    after = four.counts()
    would = {"PC-HYB-PRT": (["purge_office_credentials", "reset_token_broker"], True), "LT-CLOUD-21": ([], False),
             "LT-REG-EXTRA": (["purge_office_credentials", "remove_extra_work_accounts"], False)}
    for host in hosts:
        entry = report["hosts"][host]
        assert entry["outcome"] == "unchanged", entry
        assert "check mode" in entry.get("outcome_reason", ""), entry
        detail = json.dumps({k: v for k, v in entry.items() if k not in ("before", "after", "findings")})[:3000]
        assert (entry["would_run"], entry["would_reboot"]) == would[host], detail
        assert delta(before, after, host, "reboots") == 0
        assert after[host]["auth"].get("basic", 0) > before[host]["auth"].get("basic", 0)
        assert host_state(four.host(host)["state"]) == states[host], host
    # The rungs were asked what they would do, and said they would change something; the
    # cloud-only host waits for its device recovery, every planned rung listed as not run.
    rungs = rung_results(doc)
    assert sorted(rungs.get("PC-HYB-PRT", {})) == TOKEN_BROKER_RUNGS, rungs.get("PC-HYB-PRT")
    assert all(r.get("changed") for r in rungs["PC-HYB-PRT"].values()), rungs["PC-HYB-PRT"]
    assert "LT-CLOUD-21" not in rungs
    # Rung 2 names the second tenant's registration it would disconnect, and changed nothing
    # (the host's registry, certificate store and WAM state are compared above).
    assert sorted(rungs.get("LT-REG-EXTRA", {})) == WORK_ACCOUNT_RUNGS, rungs.get("LT-REG-EXTRA")
    (carol,) = rungs["LT-REG-EXTRA"][WORK_ACCOUNT_RUNGS[1]]["users"]
    assert carol["disconnected"] == ["c.jones@fabrikam.com"], carol
    assert carol["message"].startswith("would disconnect Workplace Join: c.jones@fabrikam.com in Fabrikam"), carol
    skipped = report["hosts"]["LT-CLOUD-21"]["rungs_skipped"]
    assert [s["rung"] for s in skipped] == ["purge_office_credentials", "reset_token_broker"], skipped
    assert all("device recovery first" in s["reason"] for s in skipped), skipped


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


def test_failures_warnings_and_a_megabyte_come_back_intact_over_psrp(four, tmp_path):
    book = tmp_path / "probe.yml"
    book.write_text(PROBE_PLAYBOOK)
    rc, doc, err = run_json([PLAYBOOK_BIN, "-i", four.inventory("psrp_ntlm"), "--limit", "PC-HEALTHY",
                             "-M", PROBE_MODULES, str(book)], tmp_path, lab=four)
    assert rc == 0, (err[-3000:], four.log()[-3000:])
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
