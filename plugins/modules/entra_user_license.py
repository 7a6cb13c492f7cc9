#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: entra_user_license
short_description: Read, assign, remove or refresh a user's Microsoft 365 license
version_added: 0.1.0
description:
  - Reads a user's licenses through Microsoft Graph, direct and group-based
    (C(assignedLicenses) and C(licenseAssignmentStates)), with findings about what keeps
    Microsoft 365 Apps from activating.
  - O(state=present) and O(state=absent) assign or remove one SKU directly (C(POST /users/{id}/assignLicense)).
  - O(state=refreshed) is step 5 of Microsoft's procedure for error 0xCAA50021 (toggle the license off and on);
    the direct assignment is removed and added again with the same C(disabledPlans).
    It is refused for a license a group gives the user (removing the direct part would not take the
    license away); use O(state=reprocessed) there, which asks Entra to re-evaluate the user's
    group-based licenses (C(POST /users/{id}/reprocessLicenseAssignment)).
  - Before adding a license the user's C(usageLocation) is checked, because Graph refuses licenses for users
    without one, and O(state=refreshed) would otherwise leave the user with no license at all.
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
  user:
    description: The user's user principal name or object ID.
    type: str
    required: true
  state:
    description:
      - V(query) only reads.
      - V(present) makes sure the user holds O(sku) directly (and with O(disabled_plans), when given).
      - V(absent) removes the direct assignment of O(sku).
      - V(refreshed) removes and re-adds the direct assignment of O(sku), keeping its disabled plans. Always
        reports a change.
      - V(reprocessed) asks Entra to re-evaluate the user's group-based licenses.
    type: str
    default: query
    choices: [query, present, absent, refreshed, reprocessed]
  sku:
    description:
      - The SKU, as C(skuId) (GUID) or C(skuPartNumber) (for example V(SPE_E3), V(O365_BUSINESS_PREMIUM)),
        resolved through the tenant's C(subscribedSkus).
      - Required with O(state=present), O(state=absent) and O(state=refreshed).
    type: str
  disabled_plans:
    description:
      - With O(state=present), the service plans of O(sku) to switch off, as C(servicePlanId) or C(servicePlanName).
      - Leave unset to keep the current plans of an existing assignment (none for a new one).
    type: list
    elements: str
  refresh_delay:
    description: Seconds to wait between removing and re-adding the license with O(state=refreshed).
    type: int
    default: 10
  office_service_plans:
    description:
      - Service plan IDs that carry the Microsoft 365 Apps desktop license, for the findings.
      - The default holds C(OFFICESUBSCRIPTION) (Microsoft 365 Apps for enterprise) and C(OFFICE_BUSINESS)
        (Microsoft 365 Apps for business).
    type: list
    elements: str
    default: [43de0ff5-c92c-492b-9116-175376d08c38, 094e7854-93fc-4d55-b2c0-3ab5369ebdc1]
notes:
  - Reading needs C(User.Read.All) and, for SKU names, C(LicenseAssignment.Read.All) (without it the module warns and
    reports SKU IDs only). O(state=present), O(state=absent) and O(state=refreshed) need C(LicenseAssignment.ReadWrite.All);
    O(state=reprocessed) needs C(User.ReadWrite.All).
seealso:
  - name: "user: assignLicense (Microsoft Graph)"
    description: The call behind present, absent and refreshed.
    link: https://learn.microsoft.com/graph/api/user-assignlicense
  - name: "user: reprocessLicenseAssignment (Microsoft Graph)"
    description: The call behind reprocessed.
    link: https://learn.microsoft.com/graph/api/user-reprocesslicenseassignment
'''

EXAMPLES = r'''
- name: Licenses of a user, with findings
  m365ops.activation.entra_user_license:
    user: alice@contoso.com
  delegate_to: localhost
  register: lic

- name: Toggle Alice's E5 license off and on (seed step 5), keeping her disabled plans
  m365ops.activation.entra_user_license:
    user: alice@contoso.com
    sku: ENTERPRISEPREMIUM
    state: refreshed
  delegate_to: localhost

- name: Bob gets his license from a group; have Entra re-evaluate it instead
  m365ops.activation.entra_user_license:
    user: bob@contoso.com
    state: reprocessed
  delegate_to: localhost

- name: Give Carol Microsoft 365 Apps for business without OneDrive
  m365ops.activation.entra_user_license:
    user: carol@contoso.com
    sku: O365_BUSINESS
    disabled_plans: [ONEDRIVESTANDARD]
    state: present
  delegate_to: localhost
'''

RETURN = r'''
user:
  description: The user.
  returned: success
  type: dict
  contains:
    id:
      description: Object ID.
      type: str
    user_principal_name:
      description: User principal name.
      type: str
    display_name:
      description: Display name.
      type: str
    account_enabled:
      description: Whether the account may sign in.
      type: bool
    usage_location:
      description: Two-letter country code Graph needs before it assigns a license, or null.
      type: str
licenses:
  description: The user's licenses after the task (predicted in check mode), one entry per SKU.
  returned: success
  type: list
  elements: dict
  contains:
    sku_id:
      description: SKU ID.
      type: str
    sku_part_number:
      description: SKU part number, when C(subscribedSkus) could be read.
      type: str
    direct:
      description: Whether the SKU is assigned to the user directly.
      type: bool
    groups:
      description: Object IDs of the groups that give the user this SKU.
      type: list
      elements: str
    disabled_plans:
      description: Disabled service plan IDs of the direct assignment (of the first group one, when not direct).
      type: list
      elements: str
    states:
      description: C(state) of each assignment (Active, ActiveWithError, Disabled, Error).
      type: list
      elements: str
    errors:
      description: Assignment errors such as C(CountViolation) or C(MutuallyExclusiveViolation).
      type: list
      elements: str
  sample: [{"sku_id": "c7df2760-2c81-4ef7-b578-5b5392b571df", "sku_part_number": "ENTERPRISEPREMIUM", "direct": true,
            "groups": [], "disabled_plans": ["57ff2da0-773e-42df-b2af-ffb7a2317929"], "states": ["Active"], "errors": []}]
actions:
  description: The Graph operations the task made (or would make, in check mode), in order.
  returned: success
  type: list
  elements: str
  sample: ["remove c7df2760-2c81-4ef7-b578-5b5392b571df", "add c7df2760-2c81-4ef7-b578-5b5392b571df disabledPlans=[57ff2da0-773e-42df-b2af-ffb7a2317929]"]
findings:
  description: Findings in the collection's shared shape (rung C(check_license) for license problems).
  returned: success
  type: list
  elements: dict
  sample: [{"id": "license_ok", "severity": "info", "rung": null, "summary": "alice@contoso.com holds an enabled Microsoft 365 Apps license.",
            "evidence": ["ENTERPRISEPREMIUM direct, Active"]}]
'''

import re
import time

from ansible.module_utils import basic

from ansible_collections.m365ops.activation.plugins.module_utils import graph

READ_USER = "User.Read.All"
READ_SKUS = "LicenseAssignment.Read.All"
WRITE_LICENSE = "LicenseAssignment.ReadWrite.All"
REPROCESS = "User.ReadWrite.All"
RUNG = "check_license"
USER_SELECT = ("id,userPrincipalName,displayName,accountEnabled,usageLocation,assignedLicenses,"
               "licenseAssignmentStates,assignedPlans")
UPN_RE = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")
PART_NUMBER_RE = re.compile(r"^[A-Za-z0-9_.+-]{2,64}$")
NEEDS_SKU = ("present", "absent", "refreshed")


def validate(params):
    user = params["user"]
    if not (graph.is_guid(user) or UPN_RE.match(user)):
        raise ValueError("user: %r is neither a user principal name (name@domain) nor an object ID (GUID)" % user)
    state = params["state"]
    sku = params.get("sku")
    if state in NEEDS_SKU and not sku:
        raise ValueError("sku is required with state=%s" % state)
    if sku and not (graph.is_guid(sku) or PART_NUMBER_RE.match(sku)):
        raise ValueError("sku: %r is neither a skuId (GUID) nor a skuPartNumber" % sku)
    if params.get("disabled_plans") is not None and state != "present":
        raise ValueError("disabled_plans is only used with state=present (refreshed keeps the current ones)")
    if params.get("refresh_delay") is not None and params["refresh_delay"] < 0:
        raise ValueError("refresh_delay must be 0 or more seconds")
    for plan in params.get("office_service_plans") or []:
        if not graph.is_guid(plan):
            raise ValueError("office_service_plans: %r is not a servicePlanId (GUID)" % plan)


def load_user(client, user):
    return client.get(graph.user_path(user), params={"$select": USER_SELECT}, permission=READ_USER,
                      what="user %s" % user)


def license_view(raw_user, skus):
    """One entry per SKU merging direct and group assignments."""
    by_sku = {}
    order = []
    states = raw_user.get("licenseAssignmentStates")
    if states is None:  # older payloads: only assignedLicenses, all taken as direct
        states = [{"skuId": a.get("skuId"), "disabledPlans": a.get("disabledPlans") or [], "assignedByGroup": None,
                   "state": "Active", "error": None} for a in raw_user.get("assignedLicenses") or []]
    for state in states:
        sku_id = (state.get("skuId") or "").lower()
        if sku_id not in by_sku:
            order.append(sku_id)
            sku = skus.get(sku_id) or {}
            by_sku[sku_id] = {"sku_id": sku_id, "sku_part_number": sku.get("skuPartNumber"), "direct": False,
                              "groups": [], "disabled_plans": None, "states": [], "errors": []}
        entry = by_sku[sku_id]
        plans = sorted(p.lower() for p in state.get("disabledPlans") or [])
        if state.get("assignedByGroup"):
            entry["groups"].append(state["assignedByGroup"])
            if entry["disabled_plans"] is None:
                entry["disabled_plans"] = plans
        else:
            entry["direct"] = True
            entry["disabled_plans"] = plans
        entry["states"].append(state.get("state"))
        if state.get("error") and state.get("error") != "None":
            entry["errors"].append(state["error"])
    for entry in by_sku.values():
        entry["disabled_plans"] = entry["disabled_plans"] or []
    return [by_sku[k] for k in order]


def user_view(raw_user):
    return {"id": raw_user.get("id"), "user_principal_name": raw_user.get("userPrincipalName"),
            "display_name": raw_user.get("displayName"), "account_enabled": raw_user.get("accountEnabled"),
            "usage_location": raw_user.get("usageLocation")}


def license_findings(raw_user, licenses, office_plans):
    name = raw_user.get("userPrincipalName") or raw_user.get("id")
    office_plans = set(p.lower() for p in office_plans)
    out = []
    evidence = ["%s %s, %s" % (l["sku_part_number"] or l["sku_id"],
                               "direct" if l["direct"] else "via group %s" % ", ".join(l["groups"]),
                               "/".join(s for s in l["states"] if s)) for l in licenses]
    if raw_user.get("accountEnabled") is False:
        out.append(graph.make_finding("user_account_disabled", "high",
                                      "%s's account is disabled (sign-in blocked)." % name,
                                      ["accountEnabled = false"], None))
    if not licenses:
        out.append(graph.make_finding("license_missing", "high", "%s holds no license at all." % name,
                                      ["assignedLicenses = []"], RUNG))
    for lic in licenses:
        if lic["errors"] or any(s in ("Error", "ActiveWithError") for s in lic["states"]):
            out.append(graph.make_finding(
                "license_assignment_error", "high",
                "The %s license of %s is in error (%s); fix the cause, then reprocess the assignment."
                % (lic["sku_part_number"] or lic["sku_id"], name, ", ".join(lic["errors"]) or "Error"),
                ["licenseAssignmentStates %s: state=%s error=%s"
                 % (lic["sku_id"], "/".join(lic["states"]), ",".join(lic["errors"]) or "None")], RUNG))
    enabled_office = [p for p in raw_user.get("assignedPlans") or []
                      if (p.get("servicePlanId") or "").lower() in office_plans and p.get("capabilityStatus") == "Enabled"]
    disabled_office = [l for l in licenses if office_plans.intersection(l["disabled_plans"])]
    if licenses and not enabled_office:
        if disabled_office:
            out.append(graph.make_finding(
                "office_plan_disabled", "high",
                "%s's license includes Microsoft 365 Apps but the plan is disabled in the assignment." % name,
                ["%s disabledPlans contains %s" % (l["sku_part_number"] or l["sku_id"],
                                                   ", ".join(sorted(office_plans.intersection(l["disabled_plans"]))))
                 for l in disabled_office], RUNG))
        else:
            out.append(graph.make_finding(
                "office_license_missing", "high",
                "No license of %s carries an enabled Microsoft 365 Apps plan; Office will not activate." % name,
                evidence or ["assignedPlans: no enabled Microsoft 365 Apps plan"], RUNG))
    if not raw_user.get("usageLocation"):
        out.append(graph.make_finding(
            "usage_location_missing", "medium" if licenses else "high",
            "%s has no usageLocation; Graph refuses to assign licenses until it is set." % name,
            ["usageLocation = null"], RUNG))
    if not out:
        out.append(graph.make_finding("license_ok", "info",
                                      "%s holds an enabled Microsoft 365 Apps license." % name, evidence, None))
    return out


def load_skus(module, client, required):
    try:
        skus = client.get_all("subscribedSkus", permission=READ_SKUS, what="the tenant's subscribed SKUs")
    except graph.GraphError as exc:
        if required or exc.status != 403:
            raise
        module.warn("SKU names not shown: %s" % exc)
        return {}
    return dict(((s.get("skuId") or "").lower(), s) for s in skus)


def resolve_sku(value, skus):
    if graph.is_guid(value):
        sku = skus.get(value.lower())
        if sku is None:
            raise ValueError("sku: %s is not among the tenant's subscribedSkus (%s)"
                             % (value, ", ".join(sorted(s.get("skuPartNumber") or k for k, s in skus.items()))))
        return sku
    matches = [s for s in skus.values() if (s.get("skuPartNumber") or "").lower() == value.lower()]
    if not matches:
        raise ValueError("sku: no subscribed SKU has skuPartNumber %r (known: %s)"
                         % (value, ", ".join(sorted(s.get("skuPartNumber") or "" for s in skus.values()))))
    return matches[0]


def resolve_plans(values, sku):
    plans = sku.get("servicePlans") or []
    out = []
    for value in values:
        match = [p for p in plans if (p.get("servicePlanId") or "").lower() == value.lower()
                 or (p.get("servicePlanName") or "").lower() == value.lower()]
        if not match:
            raise ValueError("disabled_plans: %r is not a service plan of %s (plans: %s)"
                             % (value, sku.get("skuPartNumber"),
                                ", ".join(p.get("servicePlanName") or p.get("servicePlanId") for p in plans)))
        out.append(match[0]["servicePlanId"].lower())
    return sorted(set(out))


def _find(licenses, sku_id):
    for lic in licenses:
        if lic["sku_id"] == sku_id:
            return lic
    return None


def _label(sku):
    return "%s (%s)" % (sku.get("skuPartNumber"), sku.get("skuId"))


def plan_actions(params, raw_user, licenses, sku):
    """[(kind, body)] for the requested state; raises ValueError when it cannot be done safely."""
    state = params["state"]
    upn = raw_user.get("userPrincipalName") or raw_user.get("id")
    if state == "query":
        return []
    if state == "reprocessed":
        if not any(l["groups"] for l in licenses):
            return []
        return [("reprocess", None)]
    sku_id = sku["skuId"].lower()
    current = _find(licenses, sku_id)
    if state == "absent":
        if current is None or not current["direct"]:
            if current is not None and current["groups"]:
                raise ValueError("sku: %s of %s is inherited from group(s) %s and cannot be removed per user; remove "
                                 "the user from the group or change the group's license"
                                 % (_label(sku), upn, ", ".join(current["groups"])))
            return []
        return [("remove", {"addLicenses": [], "removeLicenses": [sku_id]})]
    if state == "present":
        wanted = None if params.get("disabled_plans") is None else resolve_plans(params["disabled_plans"], sku)
        if current is not None and current["direct"] and (wanted is None or wanted == current["disabled_plans"]):
            return []
    if not raw_user.get("usageLocation"):
        raise ValueError("user: %s has no usageLocation; Graph refuses to assign licenses without one. Set it in "
                         "Entra (or Set-MgUser -UsageLocation) first; nothing was changed" % upn)
    if state == "present":
        if current is not None and current["direct"]:
            return [("add", {"addLicenses": [{"skuId": sku_id, "disabledPlans": wanted}], "removeLicenses": []})]
        units = sku.get("prepaidUnits") or {}
        free = (units.get("enabled") or 0) - (sku.get("consumedUnits") or 0)
        if current is None and free <= 0:
            raise ValueError("sku: %s has no free licenses (%s enabled, %s consumed); nothing was changed"
                             % (_label(sku), units.get("enabled"), sku.get("consumedUnits")))
        return [("add", {"addLicenses": [{"skuId": sku_id, "disabledPlans": wanted or []}], "removeLicenses": []})]
    # refreshed
    if current is None:
        raise ValueError("sku: %s does not hold %s; nothing to refresh (use state=present to assign it)"
                         % (upn, _label(sku)))
    if current["groups"]:
        raise ValueError("sku: %s of %s comes from group(s) %s; toggling it per user would not take it away. Use "
                         "state=reprocessed (POST /users/{id}/reprocessLicenseAssignment) instead; nothing was changed"
                         % (_label(sku), upn, ", ".join(current["groups"])))
    keep = list(current["disabled_plans"])
    return [("remove", {"addLicenses": [], "removeLicenses": [sku_id]}),
            ("add", {"addLicenses": [{"skuId": sku_id, "disabledPlans": keep}], "removeLicenses": []})]


def describe(kind, body):
    if kind == "reprocess":
        return "reprocessLicenseAssignment"
    if kind == "remove":
        return "remove %s" % body["removeLicenses"][0]
    lic = body["addLicenses"][0]
    return "add %s disabledPlans=[%s]" % (lic["skuId"], ", ".join(lic["disabledPlans"]))


def predict(licenses, actions):
    """Licenses as they would be after the actions (check mode and diff)."""
    out = [dict(l) for l in licenses]
    for kind, body in actions:
        if kind == "remove":
            sku_id = body["removeLicenses"][0]
            for lic in list(out):
                if lic["sku_id"] == sku_id:
                    if lic["groups"]:
                        lic["direct"] = False
                    else:
                        out.remove(lic)
        elif kind == "add":
            add = body["addLicenses"][0]
            lic = _find(out, add["skuId"])
            if lic is None:
                out.append({"sku_id": add["skuId"], "sku_part_number": None, "direct": True, "groups": [],
                            "disabled_plans": list(add["disabledPlans"]), "states": ["Active"], "errors": []})
            else:
                lic["direct"] = True
                lic["disabled_plans"] = list(add["disabledPlans"])
    return out


def run(module, client):
    params = module.params
    validate(params)
    raw_user = load_user(client, params["user"])
    skus = load_skus(module, client, required=params["state"] in NEEDS_SKU)
    sku = resolve_sku(params["sku"], skus) if params["state"] in NEEDS_SKU else None
    before = license_view(raw_user, skus)
    actions = plan_actions(params, raw_user, before, sku)
    after_user = raw_user
    done = []
    if actions and not module.check_mode:
        path = graph.user_path(raw_user["id"])
        for index, (kind, body) in enumerate(actions):
            if kind == "add" and index > 0 and params["refresh_delay"]:
                time.sleep(params["refresh_delay"])
            try:
                if kind == "reprocess":
                    client.post(path + "/reprocessLicenseAssignment", permission=REPROCESS,
                                what="user %s" % params["user"])
                else:
                    client.post(path + "/assignLicense", body, permission=WRITE_LICENSE,
                                what="user %s" % params["user"])
            except graph.GraphError as exc:
                if done:
                    # The license is off and could not be put back: say exactly what to restore.
                    raise graph.GraphError(
                        "%s succeeded but '%s' failed, so %s may now be WITHOUT this license. Re-add it: state=present "
                        "sku=%s disabled_plans=%s. Cause: %s" % ("; ".join(done), describe(kind, body),
                                                                 params["user"], body["addLicenses"][0]["skuId"],
                                                                 body["addLicenses"][0]["disabledPlans"], exc),
                        status=exc.status, code=exc.code, request_id=exc.request_id)
                raise
            done.append(describe(kind, body))
        after_user = load_user(client, raw_user["id"])
        after = license_view(after_user, skus)
    else:
        after = predict(before, actions)
        for lic in after:
            if lic["sku_part_number"] is None and lic["sku_id"] in skus:
                lic["sku_part_number"] = skus[lic["sku_id"]].get("skuPartNumber")
    result = {
        "changed": bool(actions),
        "user": user_view(after_user),
        "licenses": after,
        "actions": [describe(k, b) for k, b in actions],
        "findings": license_findings(after_user, after, params["office_service_plans"]),
    }
    if module._diff:
        result["diff"] = {"before": {"licenses": before}, "after": {"licenses": after},
                          "before_header": "licenses of %s" % params["user"],
                          "after_header": "licenses of %s" % params["user"]}
    return result


OPTIONS = dict(
    user=dict(type="str", required=True),
    state=dict(type="str", default="query", choices=["query", "present", "absent", "refreshed", "reprocessed"]),
    sku=dict(type="str"),
    disabled_plans=dict(type="list", elements="str"),
    refresh_delay=dict(type="int", default=10),
    office_service_plans=dict(type="list", elements="str",
                              default=["43de0ff5-c92c-492b-9116-175376d08c38",
                                       "094e7854-93fc-4d55-b2c0-3ab5369ebdc1"]),
)


def main():
    graph.run_module(basic, OPTIONS, run)


if __name__ == "__main__":
    main()
