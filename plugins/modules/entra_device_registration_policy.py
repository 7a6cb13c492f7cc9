#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: entra_device_registration_policy
short_description: Read and set who may join or register devices in Microsoft Entra ID
version_added: 0.1.0
description:
  - Reads the tenant's device registration policy through Microsoft Graph
    (C(GET /policies/deviceRegistrationPolicy)) and optionally changes the settings
    B(Users may join devices to Microsoft Entra ID) (O(allowed_to_join)),
    B(Users may register their devices with Microsoft Entra ID) (O(allowed_to_register))
    and the maximum number of devices per user (O(user_device_quota)).
  - These are steps 5 and 6 of Microsoft's procedure for error 0xCAA50021; when joining or registering
    is limited to nobody or to people outside a user's groups, the user's devices cannot get a
    Primary Refresh Token and Office cannot activate.
  - A change is sent with C(PUT) carrying every updatable property read back from the tenant, because
    Graph resets what a C(PUT) leaves out (C(userDeviceQuota) would drop to 0 and block every join).
  - With no option besides the connection, the module only reads and reports the policy and findings.
author:
  - m365ops maintainers (@m365ops)
extends_documentation_fragment:
  - m365ops.activation.graph_auth
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  allowed_to_join:
    description:
      - Who may join devices to Microsoft Entra ID (C(azureADJoin.allowedToJoin)).
      - Leave unset to keep the current value.
    type: dict
    suboptions:
      scope:
        description:
          - V(all) lets every user join devices, V(selected) only O(allowed_to_join.users) and members of
            O(allowed_to_join.groups), V(none) nobody.
        type: str
        required: true
        choices: [all, selected, none]
      users:
        description: Object IDs (GUIDs) of users allowed when O(allowed_to_join.scope=selected).
        type: list
        elements: str
        default: []
      groups:
        description: Object IDs (GUIDs) of groups whose members are allowed when O(allowed_to_join.scope=selected).
        type: list
        elements: str
        default: []
  allowed_to_register:
    description:
      - Who may register devices with Microsoft Entra ID (C(azureADRegistration.allowedToRegister)),
        the setting that also governs adding a work or school account to Windows.
      - Graph refuses changes while Intune enrollment manages this setting (C(isAdminConfigurable) false);
        the module then fails before sending anything. In that case Entra lets every user register whatever
        value Graph returns, and the findings treat it as V(all).
      - Leave unset to keep the current value.
    type: dict
    suboptions:
      scope:
        description: V(all), V(selected) or V(none), as for O(allowed_to_join.scope).
        type: str
        required: true
        choices: [all, selected, none]
      users:
        description: Object IDs (GUIDs) of users allowed when O(allowed_to_register.scope=selected).
        type: list
        elements: str
        default: []
      groups:
        description: Object IDs (GUIDs) of groups whose members are allowed when O(allowed_to_register.scope=selected).
        type: list
        elements: str
        default: []
  user_device_quota:
    description:
      - Maximum number of devices a user may have joined or registered. Leave unset to keep the current value.
    type: int
notes:
  - Reading needs the Graph application permission C(Policy.Read.DeviceConfiguration); changing it needs
    C(Policy.ReadWrite.DeviceConfiguration).
seealso:
  - name: Update deviceRegistrationPolicy (Microsoft Graph)
    description: The Graph call this module makes to change the policy.
    link: https://learn.microsoft.com/graph/api/deviceregistrationpolicy-update
'''

EXAMPLES = r'''
- name: Report the device registration policy
  m365ops.activation.entra_device_registration_policy:
    tenant_id: "{{ entra_tenant_id }}"
    client_id: "{{ entra_client_id }}"
    client_secret: "{{ entra_client_secret }}"
  delegate_to: localhost
  run_once: true
  register: drp

- name: Let every user join and register devices (seed step 6), keeping every other setting
  m365ops.activation.entra_device_registration_policy:
    allowed_to_join:
      scope: all
    allowed_to_register:
      scope: all
  delegate_to: localhost
  run_once: true

- name: Only the pilot group may join devices
  m365ops.activation.entra_device_registration_policy:
    allowed_to_join:
      scope: selected
      groups:
        - b7a1c3d5-e7f9-4b1d-9f3a-5c7e9b1d3f5a
  delegate_to: localhost
  run_once: true
'''

RETURN = r'''
policy:
  description: The policy after the task (as it would be after it, in check mode), in a flat form.
  returned: success
  type: dict
  contains:
    allowed_to_join:
      description: C(scope) (all, selected, none, or unknown), C(users) and C(groups) (sorted object IDs).
      type: dict
      sample: {"scope": "selected", "users": [], "groups": ["b7a1c3d5-e7f9-4b1d-9f3a-5c7e9b1d3f5a"]}
    allowed_to_register:
      description: Same shape as RV(policy.allowed_to_join).
      type: dict
      sample: {"scope": "all", "users": [], "groups": []}
    join_admin_configurable:
      description: Whether Graph lets administrators change RV(policy.allowed_to_join).
      type: bool
    register_admin_configurable:
      description: Whether Graph lets administrators change RV(policy.allowed_to_register) (false when Intune manages it).
      type: bool
    user_device_quota:
      description: Maximum number of devices per user.
      type: int
      sample: 20
    multi_factor_auth_configuration:
      description: C(notRequired) or C(required).
      type: str
      sample: notRequired
    local_admin_password_enabled:
      description: Whether Windows LAPS with Microsoft Entra is enabled.
      type: bool
findings:
  description:
    - Findings in the collection's shared shape; rung C(check_device_registration_policy) when the policy keeps users
      from joining or registering devices, an C(info) finding with rung null otherwise.
  returned: success
  type: list
  elements: dict
  sample: [{"id": "device_join_restricted", "severity": "medium", "rung": "check_device_registration_policy",
            "summary": "Only selected users and groups may join devices to Microsoft Entra ID.",
            "evidence": ["azureADJoin.allowedToJoin = selected (0 users, 1 groups)"]}]
changes:
  description: One line per property the task changed (or would change, in check mode).
  returned: success
  type: list
  elements: str
  sample: ["azureADJoin.allowedToJoin: selected -> all"]
'''

from ansible.module_utils import basic

from ansible_collections.m365ops.activation.plugins.module_utils import graph

POLICY_PATH = "policies/deviceRegistrationPolicy"
READ_PERMISSION = "Policy.Read.DeviceConfiguration"
WRITE_PERMISSION = "Policy.ReadWrite.DeviceConfiguration"
RUNG = "check_device_registration_policy"

MEMBERSHIP_TYPES = {
    "all": "#microsoft.graph.allDeviceRegistrationMembership",
    "selected": "#microsoft.graph.enumeratedDeviceRegistrationMembership",
    "none": "#microsoft.graph.noDeviceRegistrationMembership",
}
SCOPE_OF_TYPE = dict((v, k) for k, v in MEMBERSHIP_TYPES.items())
# Read-only on the resource: Graph rejects or ignores them in a PUT.
READ_ONLY = ("id", "displayName", "description")
# (option, Graph block, membership property)
SETTINGS = (
    ("allowed_to_join", "azureADJoin", "allowedToJoin"),
    ("allowed_to_register", "azureADRegistration", "allowedToRegister"),
)


def membership_summary(membership):
    membership = membership or {}
    return {
        "scope": SCOPE_OF_TYPE.get(membership.get("@odata.type"), "unknown"),
        "users": sorted(u.lower() for u in membership.get("users") or []),
        "groups": sorted(g.lower() for g in membership.get("groups") or []),
    }


def summarise(policy):
    join = policy.get("azureADJoin") or {}
    register = policy.get("azureADRegistration") or {}
    return {
        "allowed_to_join": membership_summary(join.get("allowedToJoin")),
        "allowed_to_register": membership_summary(register.get("allowedToRegister")),
        "join_admin_configurable": join.get("isAdminConfigurable"),
        "register_admin_configurable": register.get("isAdminConfigurable"),
        "user_device_quota": policy.get("userDeviceQuota"),
        "multi_factor_auth_configuration": policy.get("multiFactorAuthConfiguration"),
        "local_admin_password_enabled": (policy.get("localAdminPassword") or {}).get("isEnabled"),
    }


def validate(params):
    """Raise ValueError naming the parameter; nothing has been sent yet."""
    for option, _block, _prop in SETTINGS:
        wanted = params.get(option)
        if wanted is None:
            continue
        for kind in ("users", "groups"):
            for value in wanted.get(kind) or []:
                if not graph.is_guid(value):
                    raise ValueError("%s.%s: %r is not an object ID (GUID)" % (option, kind, value))
        has_members = bool(wanted.get("users") or wanted.get("groups"))
        if wanted["scope"] == "selected" and not has_members:
            raise ValueError("%s: scope=selected needs at least one entry in %s.users or %s.groups"
                             % (option, option, option))
        if wanted["scope"] != "selected" and has_members:
            raise ValueError("%s: users/groups are only used with scope=selected, not scope=%s"
                             % (option, wanted["scope"]))
    quota = params.get("user_device_quota")
    if quota is not None and quota < 1:
        raise ValueError("user_device_quota must be 1 or more (0 blocks every join and registration), got %d" % quota)


def desired_membership(wanted):
    body = {"@odata.type": MEMBERSHIP_TYPES[wanted["scope"]]}
    if wanted["scope"] == "selected":
        body["users"] = sorted(u.lower() for u in wanted.get("users") or [])
        body["groups"] = sorted(g.lower() for g in wanted.get("groups") or [])
    return body


def plan(current, params):
    """(PUT body, list of changes). The body is every updatable property read back, with our edits."""
    body = dict((k, v) for k, v in current.items() if k not in READ_ONLY and not k.startswith("@odata."))
    changes = []
    for option, block, prop in SETTINGS:
        wanted = params.get(option)
        if wanted is None:
            continue
        before = membership_summary((current.get(block) or {}).get(prop))
        after = membership_summary(desired_membership(wanted))
        if before == after:
            continue
        if (current.get(block) or {}).get("isAdminConfigurable") is False:
            raise ValueError("%s cannot be changed: Graph reports %s.isAdminConfigurable = false for this tenant "
                             "(for registration this means Intune enrollment manages it)" % (option, block))
        new_block = dict(current.get(block) or {})
        new_block[prop] = desired_membership(wanted)
        body[block] = new_block
        changes.append("%s.%s: %s -> %s" % (block, prop, describe(before), describe(after)))
    quota = params.get("user_device_quota")
    if quota is not None and quota != current.get("userDeviceQuota"):
        body["userDeviceQuota"] = quota
        changes.append("userDeviceQuota: %s -> %s" % (current.get("userDeviceQuota"), quota))
    return body, changes


def describe(summary):
    if summary["scope"] != "selected":
        return summary["scope"]
    return "selected (%d users, %d groups)" % (len(summary["users"]), len(summary["groups"]))


def findings(summary):
    out = []
    labels = {
        "allowed_to_join": ("device_join", "join devices to Microsoft Entra ID", "azureADJoin.allowedToJoin"),
        "allowed_to_register": ("device_register", "register their devices with Microsoft Entra ID",
                                "azureADRegistration.allowedToRegister"),
    }
    for key in ("allowed_to_join", "allowed_to_register"):
        prefix, words, prop = labels[key]
        scope = summary[key]
        evidence = ["%s = %s" % (prop, describe(scope))]
        if key == "allowed_to_register" and summary.get("register_admin_configurable") is False:
            # With Intune (or MDM for Microsoft 365) configured, Entra forces registration
            # to All and the portal greys the setting out; Graph may still return the
            # stored value (often none), which then does not apply.
            continue
        if scope["scope"] == "none":
            out.append(graph.make_finding(
                prefix + "_blocked", "high", "No user may %s; affected devices cannot get a Primary Refresh Token "
                "and Office activation fails with 0xCAA50021-type errors." % words, evidence, RUNG))
        elif scope["scope"] == "selected":
            out.append(graph.make_finding(
                prefix + "_restricted", "medium", "Only selected users and groups may %s; check that the affected "
                "users are among them." % words, evidence, RUNG))
        elif scope["scope"] == "unknown":
            out.append(graph.make_finding(
                prefix + "_unknown", "low", "The policy's %s value is of an unknown type." % prop, evidence, RUNG))
    quota = summary.get("user_device_quota")
    register = "all" if summary.get("register_admin_configurable") is False else describe(summary["allowed_to_register"])
    if isinstance(quota, int) and quota < 1:
        out.append(graph.make_finding(
            "device_quota_zero", "high", "userDeviceQuota is %d: no user may join or register another device." % quota,
            ["userDeviceQuota = %d" % quota], RUNG))
    if not out:
        out.append(graph.make_finding(
            "device_registration_policy_ok", "info", "Every user may join and register devices.",
            ["azureADJoin.allowedToJoin = all",
             "azureADRegistration.allowedToRegister = %s%s" % (
                 register, " (managed by MDM enrollment)" if summary.get("register_admin_configurable") is False else ""),
             "userDeviceQuota = %s" % quota], None))
    return out


def run(module, client):
    validate(module.params)
    current = client.get(POLICY_PATH, permission=READ_PERMISSION, what="the device registration policy") or {}
    body, changes = plan(current, module.params)
    after = current
    if changes and not module.check_mode:
        after = client.put(POLICY_PATH, body, permission=WRITE_PERMISSION, what="the device registration policy")
        if not after:
            after = client.get(POLICY_PATH, permission=READ_PERMISSION, what="the device registration policy") or {}
    elif changes:
        after = dict(current)
        after.update(body)
    result = {"changed": bool(changes), "changes": changes, "policy": summarise(after),
              "findings": findings(summarise(after))}
    if module._diff:
        result["diff"] = {"before": summarise(current), "after": summarise(after),
                          "before_header": "deviceRegistrationPolicy", "after_header": "deviceRegistrationPolicy"}
    return result


MEMBERSHIP = dict(
    type="dict",
    options=dict(
        scope=dict(type="str", required=True, choices=["all", "selected", "none"]),
        users=dict(type="list", elements="str", default=[]),
        groups=dict(type="list", elements="str", default=[]),
    ),
)
OPTIONS = dict(
    allowed_to_join=dict(MEMBERSHIP),
    allowed_to_register=dict(MEMBERSHIP),
    user_device_quota=dict(type="int"),
)


def main():
    graph.run_module(basic, OPTIONS, run)


if __name__ == "__main__":
    main()
