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
    mode and vNext licenses with Reduced Functionality Mode detection, the unsupported
    C(EnableADAL), C(DisableAADWAM) and C(DisableADALatopWAMOverride) values where the hive
    is loaded, and TokenBroker C(Accounts) file counts, sizes and newest write time."
  - "Per logged-on user (or each of O(users)): one temporary scheduled task inside the
    user's session collects the user-context C(dsregcmd /status) (the user's PRT),
    Credential Manager target names matching O(credential_patterns) (never secrets), the
    work/school accounts WAM offers Office, the sign-in UPN and whether the BrokerPlugin is
    registered for the user."
  - "Network path (O(network_probe)): for each Entra endpoint the AAD BrokerPlugin needs,
    whether the name resolves, TCP 443 connects, the proxy opens a tunnel (or answers 407)
    and the TLS chain ends at a root Microsoft uses - twice, bounded in time: in the module's
    own process (the WinRM administrator, through the WinHTTP proxy SYSTEM uses) and inside
    each logged-on user's task (through the user's WinINET proxy or PAC). The result is
    C(host_facts.network_probe); the triage's C(network_blocked) finding names the layer and
    the context that fail."
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
  network_probe:
    description:
      - The network-path probe. Its findings are in C(host_facts.network_probe) and, when an
        endpoint is blocked, in the C(network_blocked) finding (docs/diagnose.md).
      - "Every key the task does not set is taken from the inventory variable
        C(m365ops_network_probe) (a dict with the same keys), so a site's endpoints and TLS
        policy are set once for the roles, AWX and ad hoc runs."
    type: dict
    suboptions:
      enabled:
        description:
          - Run the probe at all.
        type: bool
        default: true
      endpoints:
        description:
          - The endpoints to probe, as C(host) or C(host:port) (port 443 when none is given);
            1 to 10.
          - The default is the public cloud's Entra names. Left at that default, a device
            whose tenant is in a national cloud (the URLs of its C(dsregcmd /status) Tenant
            Details) is probed with that cloud's names instead - US Government
            C(login.microsoftonline.us), C(device.login.microsoftonline.us),
            C(enterpriseregistration.microsoftonline.us), C(enterpriseregistration.windows.net);
            21Vianet C(login.partner.microsoftonline.cn), C(login.chinacloudapi.cn),
            C(enterpriseregistration.partner.microsoftonline.cn).
        type: list
        elements: str
        default: [login.microsoftonline.com, device.login.microsoftonline.com, enterpriseregistration.windows.net]
      trusted_roots:
        description:
          - SHA-1 thumbprints of the root certificates a chain to the endpoints may end at.
            A chain that ends anywhere else is reported as TLS inspection (a device that
            re-signs the connection), which the BrokerPlugin must be exempted from.
          - Compared by thumbprint, never by name, because an inspection CA can copy any name.
          - "The default is the roots of Microsoft's Azure Certificate Authority details:
            DigiCert Global Root CA, DigiCert Global Root G2 and G3, Baltimore CyberTrust Root,
            Microsoft RSA and ECC Root Certificate Authority 2017, DigiCert TLS RSA 4096 and ECC
            P384 Root G5, Entrust Root Certification Authority G2."
        type: list
        elements: str
        default:
          - A8985D3A65E5E5C4B2D7D66D40C6DD2FB19C5436
          - DF3C24F9BFD666761B268073FE06D1CC8D4F82A4
          - 7E04DE896A3E666D00E687D33FFAD93BE83D349E
          - D4DE20D05E66FC53FE1A50882C78DB2852CAE474
          - 73A5E64A3BFF8316FF0EDCCC618A906E4EAE4D74
          - 999A64C37FF47D9FAB95F14769891460EEC4C3C5
          - A78849DC5D7C758C8CDE399856B3AAD0B2A57135
          - 17F3DE5E9F0F19E98EF61F32266E20C407AE30EE
          - 8CF427FD790C3AD166068DE81E57EFBB932272D4
      timeout:
        description:
          - Seconds the probe may take in each context (the device context, then each user's
            task), all endpoints together (1 to 30). Lookups and connects run in parallel;
            an endpoint the time did not reach is reported as not probed, never as blocked.
        type: int
        default: 4
  clear_satisfied_marker:
    description:
      - Clear the sources of the collection's pending-reboot marker that the current boot
        satisfied (written before it), before C(host_facts.pending_reboot) is read; they
        are listed in C(host_facts.pending_reboot.cleared). Not in check mode.
      - M(m365ops.activation.win_activation_repair) sets it on the verification diagnose
        after the restart it scheduled.
    type: bool
    default: false
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

- name: Probe the endpoints a site's proxy policy is about, with a longer budget
  m365ops.activation.win_activation_facts:
    network_probe:
      endpoints: [login.microsoftonline.com, enterpriseregistration.windows.net]
      timeout: 8

# Site-wide instead (inventory, group_vars/m365_clients.yml): read by every run of the
# module, the diagnose and remediate roles included; a task's own keys win.
# m365ops_network_probe:
#   trusted_roots: [...]            # add the thumbprint of an exempted proxy's root
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
    - C(network_probe) (when O(network_probe.enabled)) is C({endpoints, cloud, timeout_seconds,
      contexts}); each context (C(system), then one C(user) per user whose task ran) has its
      C(proxy), C(complete) and per endpoint the answer of each layer (C(dns), C(tcp),
      C(connect), C(tls) with the certificate chain), C(blocked) (C(dns), C(tcp), C(proxy),
      C(proxy_auth), C(tls_inspection), C(tls) or null) and a C(detail) sentence
      (docs/development.md).
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
