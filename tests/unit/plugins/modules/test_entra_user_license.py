# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import logging

import pytest

from ansible_collections.m365ops.activation.plugins.modules import entra_user_license as mod
# The fixtures are used by name as test arguments, which linters do not see.
# pylint: disable=unused-import
from ansible_collections.m365ops.activation.tests.unit.plugins.fake_graph import (  # noqa: F401
    CLIENT_SECRET, auth_params, fake_tenant, graph_server, graph_tls, run_module,
)
# pylint: enable=unused-import

E5 = "c7df2760-2c81-4ef7-b578-5b5392b571df"
BUSINESS = "cdd28e44-67e3-425e-be4c-737fab2899d3"
AAD_P1 = "078d2b04-f1bd-4111-bbd4-b4b1b354cef4"
TEAMS = "57ff2da0-773e-42df-b2af-ffb7a2317929"
EXCHANGE = "efb87545-963c-4e0d-99df-69c6916d9eb0"
OFFICE = "43de0ff5-c92c-492b-9116-175376d08c38"


def posts(tenant, action="assignLicense"):
    return [json.loads(c["body"]) if c["body"] else None for c in tenant.calls("POST", action + "$")]


def ids(result):
    return [f["id"] for f in result["findings"]]


def test_query_direct_license(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, user="alice@contoso.com"), capsys)
    assert result["changed"] is False
    assert result["user"]["usage_location"] == "IT"
    assert result["licenses"] == [{"sku_id": E5, "sku_part_number": "ENTERPRISEPREMIUM", "direct": True, "groups": [],
                                   "disabled_plans": [TEAMS], "states": ["Active"], "errors": []}]
    assert ids(result) == ["license_ok"]
    assert not posts(fake_tenant)
    get = fake_tenant.calls("GET", r"^/v1.0/users/")[0]
    assert "licenseAssignmentStates" in get["query"]


def test_query_group_license_and_errors(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, user="dave@contoso.com"), capsys)
    by_sku = {l["sku_id"]: l for l in result["licenses"]}
    assert by_sku[BUSINESS]["direct"] is False
    assert by_sku[BUSINESS]["groups"] == ["6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d"]
    assert by_sku[BUSINESS]["errors"] == ["CountViolation"]
    assert set(ids(result)) == {"license_assignment_error", "office_plan_disabled"}
    assert all(f["rung"] == "check_license" for f in result["findings"])


def test_query_unlicensed_user_without_usage_location(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, user="carol@contoso.com"), capsys)
    assert result["licenses"] == []
    assert ids(result) == ["license_missing", "usage_location_missing"]


def test_query_without_sku_permission_warns_and_shows_ids(fake_tenant, capsys):
    fake_tenant.permissions.discard("LicenseAssignment.Read.All")
    fake_tenant.permissions.discard("LicenseAssignment.ReadWrite.All")
    result, o = run_module(mod.main, auth_params(fake_tenant, user="alice@contoso.com"), capsys)
    assert result["licenses"][0]["sku_part_number"] is None
    assert "LicenseAssignment.Read.All" in json.dumps(result["warnings"])


def test_unknown_user_is_a_clear_404(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, user="nobody@contoso.com"), capsys)
    assert result["failed"] is True
    assert result["msg"].startswith("not found: user nobody@contoso.com")


def test_refreshed_removes_then_readds_with_same_disabled_plans(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, user="alice@contoso.com", sku="ENTERPRISEPREMIUM",
                                                 state="refreshed", refresh_delay=0, _ansible_diff=True), capsys)
    assert result["changed"] is True
    assert posts(fake_tenant) == [
        {"addLicenses": [], "removeLicenses": [E5]},
        {"addLicenses": [{"skuId": E5, "disabledPlans": [TEAMS]}], "removeLicenses": []},
    ]
    assert result["actions"] == ["remove %s" % E5, "add %s disabledPlans=[%s]" % (E5, TEAMS)]
    assert result["licenses"][0]["disabled_plans"] == [TEAMS]
    assert result["diff"]["before"] == result["diff"]["after"]
    # posted to the object id read back, not to the name given
    assert fake_tenant.calls("POST", r"assignLicense$")[0]["path"] == \
        "/v1.0/users/4a6e2b1c-0d3f-4e5a-9b8c-7d6e5f4a3b21/assignLicense"


def test_refreshed_check_mode_makes_no_change(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, user="alice@contoso.com", sku=E5, state="refreshed",
                                                 _ansible_check_mode=True), capsys)
    assert result["changed"] is True
    assert len(result["actions"]) == 2
    assert not posts(fake_tenant)


def test_refreshed_refused_for_group_license(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, user="bob@contoso.com", sku="ENTERPRISEPREMIUM",
                                                 state="refreshed", refresh_delay=0), capsys)
    assert result["failed"] is True
    assert "comes from group(s) 1d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d" in result["msg"]
    assert "state=reprocessed" in result["msg"]
    assert not posts(fake_tenant)


def test_refreshed_readd_failure_says_what_to_restore(fake_tenant, capsys):
    fake_tenant.fail_next("POST", r"assignLicense$", 503, times=10, skip=1)
    result, o = run_module(mod.main, auth_params(fake_tenant, user="alice@contoso.com", sku=E5, state="refreshed",
                                                 refresh_delay=0, graph_max_retries=1), capsys)
    assert result["failed"] is True
    assert "WITHOUT this license" in result["msg"]
    assert TEAMS in result["msg"]


def test_reprocessed_for_group_license(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, user="bob@contoso.com", state="reprocessed"), capsys)
    assert result["changed"] is True
    assert len(fake_tenant.calls("POST", r"reprocessLicenseAssignment$")) == 1
    assert fake_tenant.users["8f1d3c2b-6a5e-4f70-8e9d-0c1b2a3f4e5d"]["_reprocessed"] == 1


def test_reprocessed_without_group_licenses_is_no_change(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, user="alice@contoso.com", state="reprocessed"), capsys)
    assert result["changed"] is False
    assert not fake_tenant.calls("POST", r"^/v1.0/")


def test_present_is_idempotent(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, user="alice@contoso.com", sku=E5, state="present"),
                           capsys)
    assert result["changed"] is False
    assert not posts(fake_tenant)


def test_present_updates_disabled_plans_by_name(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, user="alice@contoso.com", sku="enterprisepremium",
                                                 state="present", disabled_plans=["TEAMS1", EXCHANGE.upper()]), capsys)
    assert result["changed"] is True
    assert posts(fake_tenant) == [{"addLicenses": [{"skuId": E5, "disabledPlans": sorted([TEAMS, EXCHANGE])}],
                                   "removeLicenses": []}]


def test_present_new_sku(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, user="alice@contoso.com", sku="AAD_PREMIUM",
                                                 state="present", _ansible_diff=True), capsys)
    assert result["changed"] is True
    assert posts(fake_tenant) == [{"addLicenses": [{"skuId": AAD_P1, "disabledPlans": []}], "removeLicenses": []}]
    assert AAD_P1 in [l["sku_id"] for l in result["diff"]["after"]["licenses"]]
    assert AAD_P1 not in [l["sku_id"] for l in result["diff"]["before"]["licenses"]]


def test_present_refused_without_usage_location(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, user="carol@contoso.com", sku="AAD_PREMIUM",
                                                 state="present"), capsys)
    assert result["failed"] is True
    assert "no usageLocation" in result["msg"]
    assert not posts(fake_tenant)


def test_present_refused_without_free_units(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, user="alice@contoso.com", sku="O365_BUSINESS",
                                                 state="present"), capsys)
    assert result["failed"] is True
    assert "no free licenses" in result["msg"]
    assert not posts(fake_tenant)


def test_absent_direct_and_refused_for_group(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, user="alice@contoso.com", sku=E5, state="absent"),
                           capsys)
    assert result["changed"] is True and result["licenses"] == []
    assert posts(fake_tenant) == [{"addLicenses": [], "removeLicenses": [E5]}]
    result, o = run_module(mod.main, auth_params(fake_tenant, user="bob@contoso.com", sku=E5, state="absent"), capsys)
    assert result["failed"] is True and "inherited from group(s)" in result["msg"]


@pytest.mark.parametrize("args, needle", [
    ({"user": "alice"}, "user: 'alice' is neither"),
    ({"user": "alice@contoso.com", "state": "present"}, "sku is required with state=present"),
    ({"user": "alice@contoso.com", "sku": "E5 plan", "state": "absent"}, "sku: 'E5 plan'"),
    ({"user": "alice@contoso.com", "sku": E5, "state": "refreshed", "disabled_plans": ["x"]},
     "disabled_plans is only used with state=present"),
    ({"user": "alice@contoso.com", "sku": E5, "state": "refreshed", "refresh_delay": -1}, "refresh_delay"),
])
def test_bad_input_before_any_call(fake_tenant, capsys, args, needle):
    result, o = run_module(mod.main, auth_params(fake_tenant, **args), capsys)
    assert result["failed"] is True
    assert needle in result["msg"]
    assert not fake_tenant.requests


@pytest.mark.parametrize("args, needle", [
    ({"sku": "SPE_E3", "state": "present"}, "no subscribed SKU has skuPartNumber 'SPE_E3'"),
    ({"sku": E5, "state": "present", "disabled_plans": ["NOPE"]}, "disabled_plans: 'NOPE' is not a service plan"),
])
def test_unresolvable_sku_or_plan_changes_nothing(fake_tenant, capsys, args, needle):
    result, o = run_module(mod.main, auth_params(fake_tenant, user="alice@contoso.com", **args), capsys)
    assert result["failed"] is True
    assert needle in result["msg"]
    assert not fake_tenant.calls("POST", r"^/v1.0/")


def test_secret_never_in_output_or_logs(fake_tenant, capsys, caplog, monkeypatch):
    """The secret comes from the environment; success, a 401 and an echoing server must not reveal it."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", CLIENT_SECRET)
    params = auth_params(fake_tenant, user="alice@contoso.com")
    del params["client_secret"]
    texts = []
    ok, out = run_module(mod.main, params, capsys)
    assert ok["changed"] is False and "failed" not in ok
    texts.append(out)
    # a server error that echoes the secret back
    fake_tenant.fail_next("GET", r"^/v1.0/users/", 400, body={"error": {
        "code": "Request_BadRequest", "message": "Bad value %s in request" % CLIENT_SECRET}})
    echoed, out = run_module(mod.main, params, capsys)
    assert echoed["failed"] is True and "Bad value" in echoed["msg"]
    texts.append(out)
    # wrong secret: the token endpoint answers 401 invalid_client
    fake_tenant.secret = "the-tenant-now-expects-another-one"
    denied, out = run_module(mod.main, params, capsys)
    assert denied["failed"] is True and "AADSTS7000215" in denied["msg"]
    texts.append(out)
    texts.append(caplog.text)
    texts.extend(json.dumps(r) for r in (ok, echoed, denied))
    for text in texts:
        assert CLIENT_SECRET not in text
    # the secret really was sent to the token endpoint (the test would be empty otherwise)
    assert fake_tenant.calls("POST", r"/token$")[0]["form"]["client_secret"] == CLIENT_SECRET
    # and no access token leaks either
    for token in fake_tenant.tokens:
        for text in texts:
            assert token not in text


def test_present_already_held_needs_no_usage_location(fake_tenant, capsys):
    fake_tenant.users["4a6e2b1c-0d3f-4e5a-9b8c-7d6e5f4a3b21"]["usageLocation"] = None
    result, o = run_module(mod.main, auth_params(fake_tenant, user="alice@contoso.com", sku=E5, state="present"),
                           capsys)
    assert result["changed"] is False
    assert "usage_location_missing" in ids(result)
    result, o = run_module(mod.main, auth_params(fake_tenant, user="alice@contoso.com", sku=E5, state="refreshed",
                                                 refresh_delay=0), capsys)
    assert result["failed"] is True and "no usageLocation" in result["msg"]
    assert not posts(fake_tenant)
