# -*- coding: utf-8 -*-
# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: win_activation_facts
short_description: Gather Microsoft 365 Apps activation and WAM facts from a Windows host in one round trip
version_added: 0.1.0
description:
  - Collects, in one module execution, everything the collection's triage rules need to
    diagnose Microsoft 365 Apps activation and sign-in failures (0xCAA50021 and siblings).
  - "Device context: raw C(dsregcmd /status); C(Microsoft-Windows-AAD/Operational) events
    1098, 1097, 1104 and 1081 of the last O(events_days) days; Click-to-Run version, channel
    and shared computer licensing; the WinHTTP proxy; pending-reboot signals (the
    collection's marker and Windows' own); a hybrid join submitted by
    M(m365ops.activation.win_dsreg_join) and not yet confirmed (its C(HybridJoin) record);
    the C(Microsoft.AAD.BrokerPlugin) package."
  - "Per user profile (paths from C(ProfileList), never environment variables): licensing
    mode and vNext licences with Reduced Functionality Mode detection, the unsupported
    C(EnableADAL), C(DisableAADWAM) and C(DisableADALatopWAMOverride) values where the hive
    is loaded, and TokenBroker C(Accounts) file counts, sizes and newest write time."
  - "Per logged-on user (or each of O(users)): one temporary scheduled task inside the
    user's session collects the user-context C(dsregcmd /status) (the user's PRT),
    Credential Manager target names matching O(credential_patterns) (never secrets), the
    work/school accounts WAM offers Office, the sign-in UPN and whether the BrokerPlugin is
    registered for the user."
  - A source that cannot be read is listed in RV(collection_errors) and the others are still
    returned.
  - The action plugin of the same name parses the result with the collection's triage rules
    into the C(m365_activation) fact and can write an evidence bundle on the controller.
  - The module only reads. The per-user tasks it registers are removed before it returns.
options:
  events_days:
    description:
      - How many days of AAD Operational events to read (1 to 365).
    type: int
    default: 14
  max_events:
    description:
      - At most this many events are returned, newest first (1 to 5000).
    type: int
    default: 200
  users:
    description:
      - Users to run the user-context task for, as name, C(DOMAIN\name), UPN or SID.
      - Each must resolve to exactly one user profile on the host, else the module fails
        naming it and nothing runs.
      - Default is every user with an interactive session.
      - A named user who is not logged on gets status C(not_logged_on).
    type: list
    elements: str
  user_context:
    description:
      - Run the per-user task at all. With V(false) only device-context facts are gathered.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for each user-context task (10 to 3600).
    type: int
    default: 120
  credential_patterns:
    description:
      - Wildcard patterns (C(-like)) of Credential Manager target names to report.
      - Patterns that match everything are refused.
    type: list
    elements: str
    default: [MicrosoftOffice1*]
  evidence_dir:
    description:
      - Controller folder to write this host's evidence bundle to, as
        C(<evidence_dir>/<inventory_hostname>/) with C(dsregcmd_status.txt),
        C(aad_events.json) and C(host_facts.json) - the layout the offline triage reads.
      - Handled by the action plugin on the controller; nothing is written on the host.
      - Not written in check mode, nor when the evidence cannot be triaged.
    type: str
notes:
  - Per-user data is read inside the user's own session through an interactive-token
    scheduled task, because a WinRM network logon cannot reach the user's credential vault,
    WAM accounts or PRT.
  - Supports check mode; the module never changes the host, so C(changed) is always false.
  - One host's full diagnosis is exactly one module execution, however many users are logged on.
seealso:
  - module: m365ops.activation.activation_report
  - module: m365ops.activation.win_credential_purge
author:
  - m365ops maintainers (@m365ops)
"""

EXAMPLES = r"""
- name: Gather facts, triage them and keep an evidence bundle on the controller
  m365ops.activation.win_activation_facts:
    events_days: 7
    evidence_dir: "{{ playbook_dir }}/../reports/evidence"
  register: facts

- name: Show the plan
  ansible.builtin.debug:
    var: ansible_facts.m365_activation.plan

- name: Only one user, no device events beyond two days
  m365ops.activation.win_activation_facts:
    users: [CONTOSO\alice]
    events_days: 2

- name: Device context only (no user-context tasks)
  m365ops.activation.win_activation_facts:
    user_context: false
"""

RETURN = r"""
stale_cleanup:
  description:
    - Leftovers of interrupted runs of the task runner swept before this run used it
      (C(\\m365ops\\m365ops-*) scheduled tasks and C(%SystemRoot%\\Temp\\m365ops-*) folders
      whose run is older than the longest run or whose owning process is gone).
      C(removed) lists what was removed (in check mode, what would be), C(failed) what
      could not be, C({item, message}). Each is also a warning. This is housekeeping and does not
      make the module report changed.
  returned: when the module used the task runner
  type: dict
  sample: {"removed": ["task \\m365ops\\m365ops-20261126T181500Z-4242-0a1b2c3d"], "failed": []}
dsregcmd_status:
  description: Raw device-context C(dsregcmd /status) output; null when it could not be run.
  returned: always
  type: str
  sample: "+----------------------------------------------------------------------+\n| Device State |\n..."
aad_events:
  description:
    - AAD Operational events as exported records (C(Get-WinEvent | Select-Object Id,
      LevelDisplayName, TimeCreated, Message)), TimeCreated in ISO 8601 UTC.
    - Null when the log could not be read.
  returned: always
  type: list
  elements: dict
  sample: [{"Id": 1098, "LevelDisplayName": "Error", "TimeCreated": "2026-11-20T08:14:03Z",
            "Message": "Error: 0xCAA50021 ..."}]
host_facts:
  description:
    - Everything else, in the host_facts.json schema 1 of docs/development.md.
    - C(hybrid_join) is C({action, submitted_at, submitted_by}) of the hybrid join
      M(m365ops.activation.win_dsreg_join) submitted and has not seen complete, null when
      none is recorded, absent when the record could not be read.
    - C(last_boot) is the last boot time (UTC ISO 8601); C(repairs) maps each rung that ever
      changed the host to C({at, summary}) of its last change (the C(Repairs) record the rung
      modules keep), C({}) when none did. The triage rules stop counting AAD errors logged
      before the repair that answers them.
  returned: always
  type: dict
  sample: {"schema": 1, "hostname": "PC042", "office": {"installed": true}, "hybrid_join": null,
           "last_boot": "2026-11-20T07:58:00Z", "repairs": {}, "profiles": [], "users": []}
collection_errors:
  description: Sources that could not be read, each with what went wrong.
  returned: always
  type: list
  elements: dict
  sample: [{"source": "aad_events", "message": "The specified channel could not be found."}]
m365_activation:
  description:
    - Added by the action plugin. The triage of this host (join type, findings, plan), or
      C(error) when the evidence could not be triaged, with the module's collection errors.
    - Also set as the fact C(ansible_facts.m365_activation).
  returned: always
  type: dict
  sample: {"join_type": "hybrid_joined", "findings": [], "plan": []}
evidence_paths:
  description: Files of the evidence bundle written on the controller (empty in check mode).
  returned: when evidence_dir is set and the evidence could be triaged
  type: list
  elements: str
evidence_dir:
  description: The controller folder of this host's evidence bundle.
  returned: when evidence_dir is set and the evidence could be triaged
  type: str
  sample: /srv/m365ops/reports/evidence/PC042
"""
