#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: entra_device_info
short_description: Find the Microsoft Entra device objects of Windows hosts
version_added: 0.1.0
description:
  - Looks device objects up in Microsoft Entra ID through Microsoft Graph (C(GET /devices)), by the
    C(DeviceId) that C(dsregcmd /status) shows on the host and/or by display name (the host name).
  - Returns for each object whether it is enabled, its trust type (C(AzureAd) = Entra joined,
    C(ServerAd) = hybrid joined, C(Workplace) = registered) and its approximate last sign-in.
  - Several objects with one display name are reported as duplicates, a known cause of sign-in and
    activation trouble (stale objects left behind by re-imaging or a leave/join).
  - Each lookup also gets findings in the collection's shared shape, comparing the objects with the
    join type the host itself reports (O(lookups[].join_type)).
  - Read-only; never changes anything.
author:
  - m365ops maintainers (@m365ops)
extends_documentation_fragment:
  - m365ops.activation.graph_auth
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  device_id:
    description:
      - Device IDs (GUIDs) as shown by C(dsregcmd /status) under C(DeviceId). Shorthand for O(lookups) entries
        with only a device ID.
    type: list
    elements: str
    default: []
  display_name:
    description:
      - Device display names (normally the host name). Shorthand for O(lookups) entries with only a name.
    type: list
    elements: str
    default: []
  lookups:
    description:
      - One entry per host to check; objects and findings are returned per O(lookups[].key) in RV(by_key).
    type: list
    elements: dict
    default: []
    suboptions:
      key:
        description: Label of the entry in RV(by_key), normally the inventory host name.
        type: str
        required: true
      device_id:
        description: The host's C(DeviceId) from C(dsregcmd /status).
        type: str
      display_name:
        description: The host's device name.
        type: str
      join_type:
        description:
          - The join type the host reports (from the diagnosis), used to check the object's trust type.
        type: str
        choices: [hybrid_joined, entra_joined, domain_joined, entra_registered, workgroup]
notes:
  - Needs the Graph application permission C(Device.Read.All).
seealso:
  - name: device resource type (Microsoft Graph)
    description: Meaning of trustType, accountEnabled and approximateLastSignInDateTime.
    link: https://learn.microsoft.com/graph/api/resources/device
'''

EXAMPLES = r'''
- name: Device object of every diagnosed host
  m365ops.activation.entra_device_info:
    lookups:
      - key: PC042
        device_id: e3a1f7c2-9b4d-4c8e-a1f0-3d2c1b0a9f8e
        display_name: PC042
        join_type: hybrid_joined
  delegate_to: localhost
  run_once: true
  register: devices

- name: Quick look by name
  m365ops.activation.entra_device_info:
    display_name: [PC044]
  delegate_to: localhost
  run_once: true
'''

RETURN = r'''
by_key:
  description: Per lookup key (for O(device_id) and O(display_name) shorthands the key is the value itself).
  returned: success
  type: dict
  sample:
    PC044:
      found: true
      duplicates: true
      devices: [{"id": "2c3d4e5f-6071-4829-a3b4-c5d6e7f8091a", "trust_type": "ServerAd"}]
      findings: [{"id": "device_duplicates", "severity": "medium", "rung": null,
                  "summary": "3 device objects are named PC044.", "evidence": []}]
devices:
  description: Every device object found, once each.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: Object ID of the device in Microsoft Entra ID.
      type: str
    device_id:
      description: The device ID (what C(dsregcmd /status) calls C(DeviceId)).
      type: str
    display_name:
      description: Display name.
      type: str
    account_enabled:
      description: Whether the device object is enabled; a disabled device cannot get tokens.
      type: bool
    trust_type:
      description: C(AzureAd), C(ServerAd) or C(Workplace).
      type: str
    join_type:
      description: The trust type in the collection's join type vocabulary (entra_joined, hybrid_joined, entra_registered).
      type: str
    approximate_last_sign_in:
      description: Approximate last sign-in (UTC, ISO 8601); Entra updates it at most every 14 days or so.
      type: str
    registration_date_time:
      description: When the object was registered.
      type: str
    operating_system:
      description: Operating system.
      type: str
    operating_system_version:
      description: Operating system version.
      type: str
    is_compliant:
      description: Intune compliance state.
      type: bool
    is_managed:
      description: Whether an MDM manages the device.
      type: bool
    on_premises_sync_enabled:
      description: Whether the object is synchronised from Active Directory.
      type: bool
duplicates:
  description: Display names that more than one device object carries.
  returned: success
  type: list
  elements: str
  sample: [PC044]
'''

import re

from ansible.module_utils import basic

from ansible_collections.m365ops.activation.plugins.module_utils import graph

PERMISSION = "Device.Read.All"
SELECT = ("id,deviceId,displayName,accountEnabled,trustType,approximateLastSignInDateTime,registrationDateTime,"
          "operatingSystem,operatingSystemVersion,isCompliant,isManaged,onPremisesSyncEnabled")
JOIN_TYPE_OF_TRUST = {"AzureAd": "entra_joined", "ServerAd": "hybrid_joined", "Workplace": "entra_registered"}
# What a host's own join type expects to find in Entra.
TRUST_FOR_JOIN = {"entra_joined": "AzureAd", "hybrid_joined": "ServerAd", "entra_registered": "Workplace"}
NAME_RE = r"^[^'\x00-\x1f]{1,256}$"


def device_view(raw):
    return {
        "id": raw.get("id"),
        "device_id": raw.get("deviceId"),
        "display_name": raw.get("displayName"),
        "account_enabled": raw.get("accountEnabled"),
        "trust_type": raw.get("trustType"),
        "join_type": JOIN_TYPE_OF_TRUST.get(raw.get("trustType"), "unknown"),
        "approximate_last_sign_in": raw.get("approximateLastSignInDateTime"),
        "registration_date_time": raw.get("registrationDateTime"),
        "operating_system": raw.get("operatingSystem"),
        "operating_system_version": raw.get("operatingSystemVersion"),
        "is_compliant": raw.get("isCompliant"),
        "is_managed": raw.get("isManaged"),
        "on_premises_sync_enabled": raw.get("onPremisesSyncEnabled"),
    }


def normalise_lookups(params):
    """Lookups from all three options; raises ValueError naming the parameter."""
    lookups = []
    for value in params.get("device_id") or []:
        lookups.append({"key": value, "device_id": value, "display_name": None, "join_type": None})
    for value in params.get("display_name") or []:
        lookups.append({"key": value, "device_id": None, "display_name": value, "join_type": None})
    for index, entry in enumerate(params.get("lookups") or []):
        if not entry.get("device_id") and not entry.get("display_name"):
            raise ValueError("lookups[%d] (%s): give device_id or display_name" % (index, entry.get("key")))
        lookups.append(dict(entry))
    if not lookups:
        raise ValueError("give at least one of device_id, display_name or lookups")
    seen = set()
    for entry in lookups:
        where = "lookups[key=%s]" % entry["key"]
        if entry.get("device_id") and not graph.is_guid(entry["device_id"]):
            raise ValueError("%s device_id: %r is not a GUID (dsregcmd /status shows it as DeviceId)"
                             % (where, entry["device_id"]))
        if entry.get("display_name") and not re.match(NAME_RE, entry["display_name"]):
            raise ValueError("%s display_name: %r is not a valid device name" % (where, entry["display_name"]))
        if entry["key"] in seen:
            raise ValueError("%s: the key is used twice" % where)
        seen.add(entry["key"])
    return lookups


def query(client, prop, value, cache):
    key = (prop, value.lower())
    if key not in cache:
        flt = "%s eq %s" % (prop, graph.odata_quote(value))
        cache[key] = client.get_all("devices", params={"$filter": flt, "$select": SELECT, "$top": "100"},
                                    permission=PERMISSION, what="devices with %s" % flt)
    return cache[key]


def lookup_findings(entry, by_id, by_name):
    """Findings for one host from the objects found by its device ID and by its name."""
    out = []
    join_type = entry.get("join_type")
    label = entry.get("display_name") or entry.get("device_id")
    if entry.get("device_id"):
        if not by_id:
            if join_type == "hybrid_joined":
                out.append(graph.make_finding(
                    "device_object_missing", "high",
                    "The device ID the host reports has no device object in Microsoft Entra ID; the hybrid join "
                    "must be redone (and the computer object synchronised by Entra Connect).",
                    ["dsregcmd DeviceId %s: no object in Entra" % entry["device_id"]], "rejoin_hybrid"))
            else:
                out.append(graph.make_finding(
                    "device_object_missing", "high",
                    "The device ID the host reports has no device object in Microsoft Entra ID (deleted or never "
                    "registered); the host cannot get a Primary Refresh Token until it joins again.",
                    ["dsregcmd DeviceId %s: no object in Entra" % entry["device_id"]], None))
        for device in by_id:
            if device.get("account_enabled") is False:
                out.append(graph.make_finding(
                    "device_object_disabled", "high",
                    "The host's device object is disabled in Microsoft Entra ID; an administrator must enable it "
                    "before the device can get tokens.",
                    ["device %s (%s) accountEnabled = false" % (device["display_name"], device["id"])], None))
            expected = TRUST_FOR_JOIN.get(join_type)
            if expected and device.get("trust_type") != expected:
                out.append(graph.make_finding(
                    "device_trust_type_mismatch", "medium",
                    "The host reports %s but its device object has trustType %s." % (join_type, device["trust_type"]),
                    ["device %s trustType = %s" % (device["id"], device["trust_type"]),
                     "host join_type = %s" % join_type], None))
    if len(by_name) > 1:
        out.append(graph.make_finding(
            "device_duplicates", "medium",
            "%d device objects are named %s; stale objects (re-imaging, leave/join) confuse sign-in and "
            "conditional access; remove the ones not matching the host's DeviceId." % (len(by_name), label),
            ["%s trustType=%s enabled=%s lastSignIn=%s"
             % (d["id"], d["trust_type"], d["account_enabled"], d["approximate_last_sign_in"]) for d in by_name], None))
    if entry.get("display_name") and not entry.get("device_id") and not by_name:
        out.append(graph.make_finding(
            "device_name_not_found", "low", "No device object is named %s." % label,
            ["GET /devices?$filter=displayName eq '%s': 0 objects" % label], None))
    if not out:
        found = by_id or by_name
        out.append(graph.make_finding(
            "device_object_ok", "info", "The device object of %s is enabled and matches the host." % label,
            ["%s trustType=%s enabled=%s" % (d["id"], d["trust_type"], d["account_enabled"]) for d in found], None))
    return out


def run(module, client):
    lookups = normalise_lookups(module.params)
    cache = {}
    by_key = {}
    every = {}
    duplicates = set()
    for entry in lookups:
        by_id = [device_view(d) for d in query(client, "deviceId", entry["device_id"], cache)] \
            if entry.get("device_id") else []
        by_name = [device_view(d) for d in query(client, "displayName", entry["display_name"], cache)] \
            if entry.get("display_name") else []
        found = {}
        for device in by_id + by_name:
            found.setdefault(device["id"], device)
            every.setdefault(device["id"], device)
        if len(by_name) > 1:
            duplicates.add(entry["display_name"])
        by_key[entry["key"]] = {
            "found": bool(found),
            "duplicates": len(by_name) > 1,
            "devices": list(found.values()),
            "findings": lookup_findings(entry, by_id, by_name),
        }
    return {"changed": False, "by_key": by_key, "devices": list(every.values()), "duplicates": sorted(duplicates)}


OPTIONS = dict(
    device_id=dict(type="list", elements="str", default=[]),
    display_name=dict(type="list", elements="str", default=[]),
    lookups=dict(type="list", elements="dict", default=[], options=dict(
        key=dict(type="str", required=True, no_log=False),
        device_id=dict(type="str"),
        display_name=dict(type="str"),
        join_type=dict(type="str", choices=["hybrid_joined", "entra_joined", "domain_joined",
                                            "entra_registered", "workgroup"]),
    )),
)


def main():
    graph.run_module(basic, OPTIONS, run)


if __name__ == "__main__":
    main()
