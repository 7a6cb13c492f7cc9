#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: win_work_accounts
short_description: Sign extra work or school accounts out of Office and disconnect their Workplace Join
description:
  - Rung 2 of the repair ladder (C(remove_extra_work_accounts)).
  - In each selected user's logon session, lists the work/school accounts Web Account
    Manager offers to Office (C(WebAuthenticationCoreManager.FindAllAccountsAsync) with
    Office's client id) and signs out, with C(WebAccount.SignOutAsync), those that
    differ from the account the user signed in to Windows with, or only those listed in
    O(accounts). This is the per-account mechanism Microsoft's C(signoutofwamaccounts.ps1)
    uses; it needs Windows 10 1803 (build 17134) or later.
  - On older builds nothing is removed and the user is reported as C(unsupported), with
    the manual step (Settings > Accounts > Access work or school) naming the Workplace
    Join registrations to disconnect there.
  - The primary (sign-in) account is never signed out. When the Windows sign-in UPN is
    not among the accounts, or the user has no UPN, nothing is removed unless
    O(primary_upn) or O(accounts) says what to remove.
  - With O(disconnect_workplace_join) (the default) it also disconnects, as Settings >
    Accounts > Access work or school > Disconnect does, the Workplace Join (Microsoft Entra
    registered) registration of every account it selects, in the user's session. After
    the account's WAM sign-out it removes the registration's device certificate (issuer
    C(MS-Organization-Access)) from the user's personal certificate store, then the
    registration itself (C(HKCU\Software\Microsoft\Windows NT\CurrentVersion\WorkplaceJoin\JoinInfo\<thumbprint>),
    and C(TenantInfo\<tenant id>) with the tenant's last registration). Each disconnected
    registration is recorded under
    C(HKLM\SOFTWARE\m365ops\activation\WorkplaceJoinDisconnected); the way back is the
    user connecting the account again from Settings > Accounts > Access work or school.
  - A registration in the tenant the device itself is Microsoft Entra joined or hybrid
    joined to is never disconnected, and its account is never signed out; naming such an
    account, or the primary account, in O(accounts) is refused and nothing is changed for
    that user. When the device's join state cannot be read, no registration is
    disconnected.
  - The device registration object in Entra ID is not deleted (that needs the tenant);
    the device key of the registration stays in the user's key store, unused.
version_added: 0.1.0
author:
  - m365ops maintainers (@m365ops)
extends_documentation_fragment:
  - m365ops.activation.rung_users
options:
  accounts:
    description:
      - UPNs to sign out, and whose Workplace Join registration to disconnect (exact,
        case-insensitive). When omitted, every account that differs from the primary
        account is selected.
      - Naming the primary account (the Windows sign-in, or O(primary_upn)), or an account
        registered in the tenant the device is joined to, is refused.
    type: list
    elements: str
  disconnect_workplace_join:
    description:
      - Also disconnect the Workplace Join (Microsoft Entra registered) registrations of
        the selected accounts. With C(false) they are listed and left registered.
    type: bool
    default: true
  primary_upn:
    description:
      - The user's primary work account, when it differs from the Windows sign-in UPN
        (alternate login ID). Needs exactly one entry in O(users).
    type: str
  client_id:
    description:
      - Application (client) id whose accounts are listed and signed out. The default is
        Microsoft Office's.
    type: str
    default: d3590ed6-52b3-4102-aeff-aad2292ab01c
notes:
  - Supports check mode (lists what would be signed out and disconnected) and diff mode
    (accounts and Workplace Join registrations per user, before and after).
  - Needs no reboot. A signed-out account is added back when the user signs in to it
    again in Office; a disconnected registration when the user connects the account
    again in Settings > Accounts > Access work or school. See
    C(docs/rungs/win_work_accounts.md) for the sources.
seealso:
  - module: m365ops.activation.win_credential_purge
  - module: m365ops.activation.win_token_broker_cache
"""

EXAMPLES = r"""
- name: Sign out every work account that is not the user's Windows sign-in
  m365ops.activation.win_work_accounts:

- name: Sign out one stale account of one user and disconnect its Workplace Join
  m365ops.activation.win_work_accounts:
    users:
      - CONTOSO\alice
    accounts:
      - alice@fabrikam.com

- name: Sign extra accounts out of Office but leave their device registrations
  m365ops.activation.win_work_accounts:
    disconnect_workplace_join: false
"""

RETURN = r"""
extends_documentation_fragment:
  - m365ops.activation.rung_users
device:
  description:
    - The device's own join, read from C(dsregcmd /status) before any user is handled.
      Registrations in RV(device.tenant_id) are never disconnected; with RV(device.error)
      set, none is.
  returned: always
  type: dict
  contains:
    join_type:
      description:
        - The join type in the vocabulary of the triage (C(hybrid_joined), C(entra_joined), C(domain_joined),
          C(entra_registered) or C(workgroup)).
        - V(null) when C(dsregcmd /status) could not be read (then C(error) says why).
      type: str
      sample: workgroup
    tenant_id:
      description: The tenant the device is Microsoft Entra (hybrid) joined to, else null.
      type: str
      sample: null
    error:
      description: Why the join state could not be read, else null.
      type: str
      sample: null
users:
  description: One entry per selected user.
  returned: always
  type: list
  elements: dict
  contains:
    user:
      description: C(DOMAIN\name) of the user.
      type: str
      sample: CONTOSO\alice
    sid:
      description: The user's SID.
      type: str
      sample: S-1-5-21-1004336348-1177238915-682003330-1104
    status:
      description:
        - C(changed), C(unchanged), C(unsupported), C(not_logged_on) (skipped) or C(failed).
        - A refused O(accounts) entry makes the user C(failed) with nothing changed.
      type: str
      sample: changed
    message:
      description: Why nothing was removed, what was disconnected and the way back, or what to do by hand.
      type: str
      sample: "disconnected Workplace Join: alice@fabrikam.com in Fabrikam (a7e3b9d2-61c4-4f0e-8d2a-39b5c7e1f480),
        certificate B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5; the way back is Settings > Accounts >
        Access work or school > Connect"
    primary:
      description: The primary account used for the comparison.
      type: str
      sample: alice@contoso.com
    accounts:
      description: UPNs of the accounts found before any removal.
      type: list
      elements: str
      sample: ["alice@contoso.com", "alice@fabrikam.com"]
    removed:
      description: UPNs signed out (in check mode, that would be).
      type: list
      elements: str
      sample: ["alice@fabrikam.com"]
    workplace_joined:
      description: Whether the user has a Workplace Join (Entra registered) account.
      type: bool
      sample: true
    disconnected:
      description: Accounts whose Workplace Join registration was disconnected (in check mode, would be).
      type: list
      elements: str
      sample: ["alice@fabrikam.com"]
    workplace_join:
      description: The user's Workplace Join registrations found before any change, and what became of each.
      type: list
      elements: dict
      contains:
        thumbprint:
          description: Thumbprint of the registration's device certificate (the C(JoinInfo) key name).
          type: str
          sample: B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5
        tenant_id:
          description: C(TenantId) of the registration.
          type: str
          sample: a7e3b9d2-61c4-4f0e-8d2a-39b5c7e1f480
        tenant_name:
          description: C(DisplayName) of the tenant (C(TenantInfo)), or empty.
          type: str
          sample: Fabrikam
        user_email:
          description: C(UserEmail) of the registration, the account it was made with.
          type: str
          sample: alice@fabrikam.com
        device_id:
          description: The registered device id (the certificate's subject CN), or empty without a certificate.
          type: str
          sample: 9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d
        certificate:
          description: C(subject), C(issuer), C(not_before), C(not_after) of the device certificate, or null when it is not in the store.
          type: dict
          sample: {"subject": "CN=9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "issuer": "CN=MS-Organization-Access",
                   "not_before": "2026-02-14T09:30:00Z", "not_after": "2036-02-14T10:00:00Z"}
        action:
          description: C(disconnected) (in check mode, would be), C(kept) or C(failed).
          type: str
          sample: disconnected
        reason:
          description: Why it was kept, or why disconnecting it failed; empty when disconnected.
          type: str
          sample: ""
        way_back:
          description: Only for a disconnected registration, how the user connects it again.
          type: str
          sample: Settings > Accounts > Access work or school > Connect, sign in as alice@fabrikam.com
"""
