# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

import pytest

from ansible_collections.m365ops.activation.plugins.modules import entra_device_registration_policy as mod
# The fixtures are used by name as test arguments, which linters do not see.
# pylint: disable=unused-import
from ansible_collections.m365ops.activation.tests.unit.plugins.fake_graph import (  # noqa: F401
    auth_params, fake_tenant, graph_server, graph_tls, run_module,
)
# pylint: enable=unused-import

UPDATABLE = ("userDeviceQuota", "multiFactorAuthConfiguration", "azureADRegistration", "azureADJoin",
             "localAdminPassword")
GROUP = "b7a1c3d5-e7f9-4b1d-9f3a-5c7e9b1d3f5a"


def puts(tenant):
    return [json.loads(c["body"]) for c in tenant.calls("PUT", r"deviceRegistrationPolicy$")]


def test_read_only_reports_policy_and_findings(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant), capsys)
    assert result["changed"] is False
    assert result["policy"]["allowed_to_join"] == {"scope": "selected", "users": ["3c8ef067-8b96-44de-b2ae-557dfa0f97a0"],
                                                   "groups": [GROUP]}
    assert result["policy"]["allowed_to_register"]["scope"] == "all"
    assert result["policy"]["user_device_quota"] == 20
    ids = [f["id"] for f in result["findings"]]
    assert ids == ["device_join_restricted"]
    assert result["findings"][0]["rung"] == "check_device_registration_policy"
    assert not puts(fake_tenant)


def test_set_join_all_puts_every_updatable_property(fake_tenant, capsys):
    before = dict(fake_tenant.policy)
    result, o = run_module(mod.main, auth_params(fake_tenant, allowed_to_join={"scope": "all"}, _ansible_diff=True),
                           capsys)
    assert result["changed"] is True
    assert result["changes"] == ["azureADJoin.allowedToJoin: selected (1 users, 1 groups) -> all"]
    sent = puts(fake_tenant)
    assert len(sent) == 1
    body = sent[0]
    assert set(UPDATABLE) <= set(body)
    for read_only in ("id", "displayName", "description", "@odata.context"):
        assert read_only not in body
    assert body["userDeviceQuota"] == 20
    assert body["multiFactorAuthConfiguration"] == before["multiFactorAuthConfiguration"]
    assert body["localAdminPassword"] == before["localAdminPassword"]
    assert body["azureADRegistration"] == before["azureADRegistration"]
    assert body["azureADJoin"]["allowedToJoin"] == {"@odata.type": "#microsoft.graph.allDeviceRegistrationMembership"}
    # the sibling settings of the same block survive
    assert body["azureADJoin"]["localAdmins"] == before["azureADJoin"]["localAdmins"]
    assert body["azureADJoin"]["isAdminConfigurable"] is True
    # the fake resets what a PUT leaves out: nothing may have been left out
    assert fake_tenant.policy_reset == []
    assert fake_tenant.policy["userDeviceQuota"] == 20
    assert result["diff"]["before"]["allowed_to_join"]["scope"] == "selected"
    assert result["diff"]["after"]["allowed_to_join"]["scope"] == "all"
    assert [f["id"] for f in result["findings"]] == ["device_registration_policy_ok"]


def test_same_value_in_other_order_and_case_is_not_a_change(fake_tenant, capsys):
    wanted = {"scope": "selected", "users": ["3C8EF067-8B96-44DE-B2AE-557DFA0F97A0"], "groups": [GROUP.upper()]}
    result, o = run_module(mod.main, auth_params(fake_tenant, allowed_to_join=wanted,
                                                 user_device_quota=20), capsys)
    assert result["changed"] is False
    assert result["changes"] == []
    assert not puts(fake_tenant)


def test_check_mode_reports_change_without_put(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, allowed_to_register={"scope": "none"},
                                                 _ansible_check_mode=True, _ansible_diff=True), capsys)
    assert result["changed"] is True
    assert result["policy"]["allowed_to_register"]["scope"] == "none"
    assert result["diff"]["before"]["allowed_to_register"]["scope"] == "all"
    assert "device_register_blocked" in [f["id"] for f in result["findings"]]
    assert not puts(fake_tenant)
    assert fake_tenant.policy["azureADRegistration"]["allowedToRegister"]["@odata.type"].endswith("allDeviceRegistrationMembership")


def test_selected_with_groups_and_quota(fake_tenant, capsys):
    result, o = run_module(mod.main, auth_params(fake_tenant, user_device_quota=50, allowed_to_register={
        "scope": "selected", "groups": [GROUP]}), capsys)
    assert result["changed"] is True
    body = puts(fake_tenant)[0]
    assert body["userDeviceQuota"] == 50
    assert body["azureADRegistration"]["allowedToRegister"] == {
        "@odata.type": "#microsoft.graph.enumeratedDeviceRegistrationMembership", "users": [], "groups": [GROUP]}
    assert sorted(result["changes"]) == sorted([
        "azureADRegistration.allowedToRegister: all -> selected (0 users, 1 groups)", "userDeviceQuota: 20 -> 50"])


@pytest.mark.parametrize("args, needle", [
    ({"allowed_to_join": {"scope": "selected"}}, "allowed_to_join: scope=selected needs"),
    ({"allowed_to_join": {"scope": "all", "groups": [GROUP]}}, "only used with scope=selected"),
    ({"allowed_to_register": {"scope": "selected", "users": ["alice@contoso.com"]}}, "allowed_to_register.users"),
    ({"user_device_quota": 0}, "user_device_quota must be 1 or more"),
])
def test_bad_input_fails_before_any_call(fake_tenant, capsys, args, needle):
    result, o = run_module(mod.main, auth_params(fake_tenant, **args), capsys)
    assert result["failed"] is True
    assert needle in result["msg"]
    assert not fake_tenant.requests


def test_registration_managed_by_intune_is_refused(fake_tenant, capsys):
    fake_tenant.policy["azureADRegistration"]["isAdminConfigurable"] = False
    result, o = run_module(mod.main, auth_params(fake_tenant, allowed_to_register={"scope": "none"}), capsys)
    assert result["failed"] is True
    assert "allowed_to_register cannot be changed" in result["msg"]
    assert not puts(fake_tenant)


def test_missing_write_permission_names_it(fake_tenant, capsys):
    fake_tenant.permissions.discard("Policy.ReadWrite.DeviceConfiguration")
    result, o = run_module(mod.main, auth_params(fake_tenant, allowed_to_join={"scope": "all"}), capsys)
    assert result["failed"] is True
    assert "Policy.ReadWrite.DeviceConfiguration" in result["msg"]
    assert result["graph_status"] == 403


def test_blocked_join_and_zero_quota_findings():
    summary = mod.summarise({"userDeviceQuota": 0, "azureADJoin": {"allowedToJoin": {
        "@odata.type": "#microsoft.graph.noDeviceRegistrationMembership"}}, "azureADRegistration": {"allowedToRegister": {
            "@odata.type": "#microsoft.graph.allDeviceRegistrationMembership"}}})
    found = {f["id"]: f for f in mod.findings(summary)}
    assert set(found) == {"device_join_blocked", "device_quota_zero"}
    assert found["device_join_blocked"]["severity"] == "high"
    assert all(f["rung"] == "check_device_registration_policy" for f in found.values())


def test_registration_managed_by_mdm_is_not_reported_as_blocked():
    # Microsoft's documented GET example: MDM-managed registration reads back as "none"
    summary = mod.summarise({"userDeviceQuota": 50, "azureADJoin": {"isAdminConfigurable": True, "allowedToJoin": {
        "@odata.type": "#microsoft.graph.allDeviceRegistrationMembership"}}, "azureADRegistration": {
            "isAdminConfigurable": False, "allowedToRegister": {
                "@odata.type": "#microsoft.graph.noDeviceRegistrationMembership"}}})
    found = mod.findings(summary)
    assert [f["id"] for f in found] == ["device_registration_policy_ok"]
    assert "azureADRegistration.allowedToRegister = all (managed by MDM enrollment)" in found[0]["evidence"]
