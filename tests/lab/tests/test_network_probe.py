# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The network probe end to end: playbooks/diagnose.yml, as it ships, over four lab hosts,
each PC-HEALTHY behind one blocker (tests/lab/scenarios/PC-NET-*): no DNS answer, a refused
port, a user proxy answering 407, a TLS server whose chain ends at a foreign CA. The probe
runs inside the one facts execution per host - as the administrator with the WinHTTP proxy,
and in the user's task with the user's WinINET proxy - against loopback stand-ins only
(tests/lab/shim/netprobe.py), and each host's network_blocked finding must name its layer and
the contexts it blocks, as docs/diagnose.md shows it. One playbook run for all four: each
module execution costs seconds of pwsh.
"""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.m365ops.activation.plugins.plugin_utils.offline_triage import triage_bundle
from ansible_collections.m365ops.activation.plugins.plugin_utils.triage import PROBE_LAYERS

from ..shim import netprobe
from ..process import scenario_lab
from ..process import REPO_ROOT
from ..shim import load_scenario
from .test_ansible import PLAYBOOK_BIN, run_json

SCENARIOS = ["PC-NET-DNS", "PC-NET-REFUSED", "PC-NET-PROXY407", "PC-NET-TLSINSPECT"]


@pytest.fixture(scope="module")
def four(tmp_path_factory):
    with scenario_lab(tmp_path_factory.mktemp("netprobe"), SCENARIOS) as lp:
        if not lp.info.get("confined"):
            pytest.skip("the lab's hosts are not under bwrap (%s): no hermetic resolver, so the lab "
                        "switches the network probe off" % lp.info.get("confinement"))
        yield lp


def expectation(name: str) -> dict:
    return load_scenario(name)[0]["expect"]["network_probe"]


def test_each_blocker_is_named_with_its_layer_and_context(four, tmp_path):
    # The inventories the lab writes point every host's probe at its stand-ins, with the lab's root.
    for transport in ("ntlm", "basic", "psrp_ntlm", "psrp_basic"):
        with open(four.inventory(transport), encoding="utf-8") as fh:
            hosts = json.load(fh)["all"]["hosts"]
        for host in SCENARIOS:
            value = hosts[host][netprobe.PROBE_VARIABLE]
            assert value["enabled"] is True and value["trusted_roots"] == [four.info["network_probe"]["trusted_root"]]
            assert not netprobe.violations({"network_probe": {"endpoints": value["endpoints"]}}), value

    evidence = tmp_path / "evidence"
    cmd = [PLAYBOOK_BIN, "-i", four.inventory("ntlm"), os.path.join(REPO_ROOT, "playbooks", "diagnose.yml"),
           "-e", "target=%s" % ",".join(SCENARIOS), "-e", "report_dir=%s" % (tmp_path / "report"),
           "-e", "diagnose_evidence_dir=%s" % evidence]
    # run_json also fails the test if any probe was pointed outside the stand-ins.
    rc, _doc, err = run_json(cmd, tmp_path, lab=four)
    assert rc == 0, (err[-3000:], four.log()[-3000:])
    with open(tmp_path / "report" / "report.json", encoding="utf-8") as fh:
        report = json.load(fh)

    for host in SCENARIOS:
        expect = expectation(host)
        entry = report["hosts"][host]
        assert entry["plan"] == expect["plan"], (host, entry["findings"])
        (finding,) = [f for f in entry["findings"] if f["id"] == "network_blocked"]
        layer_name = PROBE_LAYERS[expect["blocked"]][0]
        facts = json.loads((evidence / host / "host_facts.json").read_text(encoding="utf-8"))
        probe = facts["network_probe"]
        contexts = {c["context"]: c for c in probe["contexts"]}
        # One context per place the probe ran: the device, then the logged-on user's task.
        assert sorted(contexts) == ["system", "user"], probe
        user_sid = contexts["user"]["sid"]
        assert user_sid == facts["users"][0]["sid"]
        named = {"system": "the system context", "user": "the user context (%s)" % user_sid}
        # As the admin reads it: "... blocked at <layer> in the <context>[ and the <context>]."
        where = " and the ".join(named[c][4:] for c in expect["contexts"])
        assert "blocked at %s in the %s." % (layer_name, where) in finding["summary"], (host, finding["summary"])
        for context, result in contexts.items():
            blocked = {r["blocked"] for r in result["results"]}
            assert result["complete"] is True, result
            if context in expect["contexts"]:
                assert blocked == {expect["blocked"]}, (host, context, result["results"])
                assert any(line.startswith("network probe (%s" % ("system" if context == "system" else "user " + user_sid))
                           and "blocked at %s" % layer_name in line for line in finding["evidence"]), finding
            else:
                assert blocked == {None}, (host, context, result["results"])
        # The kept bundle re-triages offline to the same finding.
        offline = triage_bundle(str(evidence / host))
        assert [f for f in offline["findings"] if f["id"] == "network_blocked"] == [finding]

    # What each blocker looked like, layer by layer.
    dns = json.loads((evidence / "PC-NET-DNS" / "host_facts.json").read_text())["network_probe"]["contexts"][0]
    assert {r["dns"]["status"] for r in dns["results"]} == {"failed"} and dns["results"][0]["tcp"] is None
    refused = json.loads((evidence / "PC-NET-REFUSED" / "host_facts.json").read_text())["network_probe"]["contexts"][0]
    assert {r["tcp"]["status"] for r in refused["results"]} == {"refused"}
    proxied = json.loads((evidence / "PC-NET-PROXY407" / "host_facts.json").read_text())["network_probe"]["contexts"]
    system, user = proxied
    assert system["proxy"]["source"] == "none" and {r["route"] for r in system["results"]} == {"direct"}
    assert user["proxy"]["source"] == "wininet"
    assert user["proxy"]["server"] == "127.0.0.1:%d" % four.info["network_probe"]["ports"]["proxy_407"]
    assert {(r["route"], r["connect"]["code"], tuple(r["connect"]["auth"])) for r in user["results"]} == {
        ("proxy", 407, ("Negotiate", "NTLM"))}
    inspected = json.loads((evidence / "PC-NET-TLSINSPECT" / "host_facts.json").read_text())["network_probe"]["contexts"]
    for context in inspected:
        for result in context["results"]:
            assert result["tls"]["status"] == "untrusted_root"
            assert result["tls"]["root"]["subject"] == "CN=Contoso TLS Inspection CA"
            assert result["tls"]["root"]["thumbprint"] == four.info["network_probe"]["foreign_root"]
            assert "Contoso TLS Inspection CA" in result["detail"]
