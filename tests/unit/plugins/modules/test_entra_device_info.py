# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from ansible_collections.m365ops.activation.plugins.modules import entra_device_info as mod
# The fixtures are used by name as test arguments, which linters do not see.
# pylint: disable=unused-import
from ansible_collections.m365ops.activation.tests.unit.plugins.fake_graph import (  # noqa: F401
    auth_params, fake_tenant, graph_server, graph_tls, run_module,
)
# pylint: enable=unused-import

PC042_ID = "e3a1f7c2-9b4d-4c8e-a1f0-3d2c1b0a9f8e"
PC043_ID = "5c4b3a29-1807-4f6e-9d5c-4b3a29180706"
PC044_ID = "7d6c5b4a-3928-4170-8f6e-5d4c3b2a1908"


def ids(findings):
    return [f["id"] for f in findings]


def test_healthy_hybrid_device_by_id_and_name(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, lookups=[
        {"key": "PC042", "device_id": PC042_ID.upper(), "display_name": "PC042", "join_type": "hybrid_joined"}]), capsys)
    entry = result["by_key"]["PC042"]
    assert result["changed"] is False
    assert entry["found"] is True and entry["duplicates"] is False
    assert len(entry["devices"]) == 1
    device = entry["devices"][0]
    assert device["trust_type"] == "ServerAd" and device["join_type"] == "hybrid_joined"
    assert device["account_enabled"] is True
    assert device["approximate_last_sign_in"] == "2026-11-25T07:58:12Z"
    assert ids(entry["findings"]) == ["device_object_ok"]
    assert entry["findings"][0]["severity"] == "info"
    filters = [parse_qs(c["query"])["$filter"][0] for c in fake_tenant.calls("GET", r"^/v1.0/devices$")]
    assert filters == ["deviceId eq '%s'" % PC042_ID.upper(), "displayName eq 'PC042'"]


def test_disabled_device_and_trust_mismatch(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, lookups=[
        {"key": "pc043.contoso.com", "device_id": PC043_ID, "join_type": "hybrid_joined"}]), capsys)
    findings = {f["id"]: f for f in result["by_key"]["pc043.contoso.com"]["findings"]}
    assert set(findings) == {"device_object_disabled", "device_trust_type_mismatch"}
    assert findings["device_object_disabled"]["severity"] == "high"
    assert "AzureAd" in findings["device_trust_type_mismatch"]["summary"]


def test_duplicates_across_pages(fake_tenant, capsys):
    fake_tenant.page_size = 1  # Graph pages even filtered lists; all three PC044 objects must be seen
    result, o = run_module(mod.main, auth_params(fake_tenant, lookups=[
        {"key": "PC044", "device_id": PC044_ID, "display_name": "PC044", "join_type": "hybrid_joined"}]), capsys)
    entry = result["by_key"]["PC044"]
    assert entry["duplicates"] is True
    assert len(entry["devices"]) == 3
    assert result["duplicates"] == ["PC044"]
    dup = [f for f in entry["findings"] if f["id"] == "device_duplicates"][0]
    assert dup["severity"] == "medium" and len(dup["evidence"]) == 3


def test_missing_hybrid_device_points_to_rejoin(fake_tenant, capsys):
    missing = "00000000-1111-4222-8333-444444444444"
    result, o = run_module(mod.main, auth_params(fake_tenant, lookups=[
        {"key": "PC099", "device_id": missing, "join_type": "hybrid_joined"},
        {"key": "PC098", "device_id": "10000000-1111-4222-8333-444444444444", "join_type": "entra_joined"}]), capsys)
    assert result["by_key"]["PC099"]["found"] is False
    f99 = result["by_key"]["PC099"]["findings"][0]
    assert f99["id"] == "device_object_missing" and f99["rung"] == "rejoin_hybrid"
    f98 = result["by_key"]["PC098"]["findings"][0]
    assert f98["id"] == "device_object_missing" and f98["rung"] is None


def test_shorthand_options_and_query_cache(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, device_id=[PC042_ID], display_name=["PC042", "NOPE"]),
                           capsys)
    assert set(result["by_key"]) == {PC042_ID, "PC042", "NOPE"}
    assert ids(result["by_key"]["NOPE"]["findings"]) == ["device_name_not_found"]
    assert len(result["devices"]) == 1


def test_name_with_quote_is_escaped_not_injected(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, display_name=["PC042' or displayName eq 'PC043"]), capsys)
    assert result["failed"] is True
    assert "display_name" in result["msg"]
    assert not fake_tenant.requests


@pytest.mark.parametrize("args, needle", [
    ({}, "give at least one of device_id, display_name or lookups"),
    ({"device_id": ["PC042"]}, "device_id: 'PC042' is not a GUID"),
    ({"lookups": [{"key": "a"}]}, "lookups[0] (a): give device_id or display_name"),
    ({"lookups": [{"key": "a", "display_name": "A"}, {"key": "a", "display_name": "B"}]}, "the key is used twice"),
])
def test_bad_input(fake_tenant, capsys, args, needle):
    result, o = run_module(mod.main, auth_params(fake_tenant, **args), capsys)
    assert result["failed"] is True
    assert needle in result["msg"]
    assert not fake_tenant.requests


def test_missing_permission(fake_tenant, capsys):
    fake_tenant.permissions.discard("Device.Read.All")
    result, o = run_module(mod.main, auth_params(fake_tenant, display_name=["PC042"]), capsys)
    assert result["failed"] is True and result["graph_status"] == 403
    assert "Device.Read.All" in result["msg"]
