# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/tenant.yml (role tenant_check) end to end against the fake Graph: one ansible-playbook run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.m365ops.activation.plugins.module_utils import graph
# The fixtures are used by name as test arguments, which linters do not see.
# pylint: disable=unused-import
from ansible_collections.m365ops.activation.tests.unit.plugins.fake_graph import (  # noqa: F401
    CLIENT_ID, CLIENT_SECRET, TENANT_ID, fake_tenant, graph_server, graph_tls,
)
# pylint: enable=unused-import

# .../ansible_collections/m365ops/activation/plugins/module_utils/graph.py
COLLECTION = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(graph.__file__))))
COLLECTIONS_PATH = os.path.dirname(os.path.dirname(os.path.dirname(COLLECTION)))

DIAGNOSE_REPORT = {
    "kind": "diagnose", "generated": "2026-11-26T17:00:00Z",
    "hosts": {
        "PC042": {"join_type": "hybrid_joined", "device_id": "e3a1f7c2-9b4d-4c8e-a1f0-3d2c1b0a9f8e",
                  "device_name": "PC042.contoso.local", "users": ["alice@contoso.com"], "findings": [], "plan": []},
        "PC043": {"join_type": "entra_joined", "device_id": "5c4b3a29-1807-4f6e-9d5c-4b3a29180706",
                  "device_name": "PC043", "users": ["bob@contoso.com", "ghost@contoso.com"], "findings": [],
                  "plan": []},
        "PC044": {"join_type": "hybrid_joined", "device_id": "7d6c5b4a-3928-4170-8f6e-5d4c3b2a1908",
                  "device_name": "PC044.contoso.local", "users": ["dave@contoso.com"], "findings": [], "plan": []},
        "PC045": {"unreachable": True, "error": "ntlm: the specified credentials were rejected by the server"},
    },
    "summary": {},
}


def run_tenant(fake_tenant, graph_tls, tmp_path, *args):
    """tenant.yml over DIAGNOSE_REPORT against the fake tenant; (process, report folder)."""
    report_in = tmp_path / "diagnose.json"
    report_in.write_text(json.dumps(DIAGNOSE_REPORT))
    out_dir = tmp_path / "tenant"
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text("[defaults]\nretry_files_enabled = false\n")
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS_PATH, "ANSIBLE_CONFIG": str(cfg),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"), "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "REQUESTS_CA_BUNDLE": graph_tls[1],
        "AZURE_TENANT_ID": TENANT_ID, "AZURE_CLIENT_ID": CLIENT_ID, "AZURE_CLIENT_SECRET": CLIENT_SECRET,
        "AZURE_AUTHORITY_HOST": fake_tenant.base_url, "M365OPS_GRAPH_URL": fake_tenant.base_url,
    })
    proc = subprocess.run(
        [sys.executable, "-m", "ansible.cli.playbook", os.path.join(COLLECTION, "playbooks", "tenant.yml"),
         # relative: resolved against the directory ansible-playbook runs in, as a user expects
         "-e", "diagnose_report=%s" % report_in.name, "-e", "report_dir=%s" % out_dir,
         # The fake tenant is not one of Microsoft's clouds: the role's explicit opt-in.
         "-e", "tenant_check_allow_custom_endpoints=true", "-v", *args],
        env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=300, check=False)
    return proc, out_dir


@pytest.mark.skipif(not os.path.isfile(os.path.join(COLLECTION, "playbooks", "tenant.yml")),
                    reason="collection checkout not found")
def test_tenant_playbook_writes_tenant_report(fake_tenant, graph_tls, tmp_path):
    proc, out_dir = run_tenant(fake_tenant, graph_tls, tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert CLIENT_SECRET not in output

    report = json.loads((out_dir / "report.json").read_text())
    assert report["kind"] == "tenant"
    hosts = report["hosts"]
    assert set(hosts) == {"PC042", "PC043", "PC044", "tenant"}  # PC045 was not diagnosed

    def ids(name):
        return [f["id"] for f in hosts[name]["findings"]]

    assert set(ids("PC042")) == {"device_object_ok", "license_ok"}
    assert hosts["PC042"]["plan"] == []
    assert {"device_object_disabled", "user_not_found"} <= set(ids("PC043"))
    assert {"device_duplicates", "license_assignment_error", "office_plan_disabled"} <= set(ids("PC044"))
    assert hosts["PC044"]["plan"] == ["check_license"]
    assert ids("tenant") == ["device_join_restricted"]
    assert hosts["tenant"]["plan"] == ["check_device_registration_policy"]
    assert report["summary"]["hosts"] == 4
    assert (out_dir / "report.md").is_file()
    # read-only: nothing was posted or put
    assert not fake_tenant.calls("POST", r"^/v1.0/") and not fake_tenant.calls("PUT")
    # the devices of PC042 were looked up by the short name, as Entra names hybrid devices
    assert any("PC042'" in c["query"] or "PC042%27" in c["query"] for c in fake_tenant.calls("GET", r"^/v1.0/devices$"))


@pytest.mark.skipif(not os.path.isfile(os.path.join(COLLECTION, "playbooks", "tenant.yml")),
                    reason="collection checkout not found")
def test_tenant_target_picks_hosts_of_the_report(fake_tenant, graph_tls, tmp_path):
    """-e target, as diagnose and remediate take it: only PC043 (and its users) is checked,
    with no inventory given (the name is matched among the report's hosts)."""
    proc, out_dir = run_tenant(fake_tenant, graph_tls, tmp_path, "-e", "target=PC043")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out_dir / "report.json").read_text())
    assert set(report["hosts"]) == {"PC043", "tenant"}
    assert "Report: %s" % (out_dir / "report.html") in proc.stdout
    # Nothing about the other hosts was asked of Graph.
    queries = " ".join(c["query"] for c in fake_tenant.calls("GET", r"^/v1.0/devices$"))
    assert queries and "PC042" not in queries and "PC044" not in queries


@pytest.mark.skipif(not os.path.isfile(os.path.join(COLLECTION, "playbooks", "tenant.yml")),
                    reason="collection checkout not found")
def test_tenant_devices_users_and_fail_on_findings(fake_tenant, graph_tls, tmp_path):
    """A device given explicitly and a user tied to no host get entries of their own; with
    tenant_check_fail_on_findings the run fails after the report, naming the entries that are
    not healthy (ladder.is_healthy: the same verdict as the report's summary)."""
    proc, out_dir = run_tenant(
        fake_tenant, graph_tls, tmp_path, "-e", "target=PC042:PC050",
        "-e", json.dumps({"tenant_check_devices": [{"host": "PC050", "device_name": "PC050.contoso.local"}],
                          "tenant_check_users": ["ghost2@contoso.com"], "tenant_check_fail_on_findings": True}))
    assert proc.returncode != 0, proc.stdout
    report = json.loads((out_dir / "report.json").read_text())
    assert set(report["hosts"]) == {"PC042", "PC050", "ghost2@contoso.com", "tenant"}
    ghost = report["hosts"]["ghost2@contoso.com"]
    assert ghost["users"] == ["ghost2@contoso.com"] and [f["id"] for f in ghost["findings"]] == ["user_not_found"]
    assert ghost["plan"] == []
    unhealthy = sorted(name for name, entry in report["hosts"].items()
                       if any(f["severity"] in ("critical", "high", "medium") or f["rung"] for f in entry["findings"])
                       or entry["plan"])
    assert report["summary"]["with_findings"] == len(unhealthy)
    assert "Tenant entries that are not healthy" in proc.stdout
    assert ("not healthy (findings of medium severity or worse, or failed checks): %s" % ", ".join(unhealthy)) in proc.stdout


@pytest.mark.skipif(not os.path.isfile(os.path.join(COLLECTION, "playbooks", "tenant.yml")),
                    reason="collection checkout not found")
def test_tenant_reads_the_old_spelling_of_the_license_switch(fake_tenant, graph_tls, tmp_path):
    """tenant_check_licences (0.1.0) still switches the license checks off."""
    proc, out_dir = run_tenant(fake_tenant, graph_tls, tmp_path, "-e", '{"tenant_check_licences": false}')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out_dir / "report.json").read_text())
    ids = {f["id"] for entry in report["hosts"].values() for f in entry.get("findings", [])}
    assert "license_ok" not in ids and "user_not_found" not in ids
    assert not fake_tenant.calls("GET", r"^/v1.0/users")
