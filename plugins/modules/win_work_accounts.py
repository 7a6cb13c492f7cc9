#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: win_work_accounts
short_description: Sign extra work or school (WAM) accounts out of Office for a user
description:
  - Rung 2 of the repair ladder (C(remove_extra_work_accounts)).
  - In each selected user's logon session, lists the work/school accounts Web Account
    Manager offers to Office (C(WebAuthenticationCoreManager.FindAllAccountsAsync) with
    Office's client id) and signs out, with C(WebAccount.SignOutAsync), those that
    differ from the account the user signed in to Windows with, or only those listed in
    O(accounts). This is the per-account mechanism Microsoft's C(signoutofwamaccounts.ps1)
    uses; it needs Windows 10 1803 (build 17134) or later.
  - On older builds nothing is removed and the user is reported as C(unsupported), with
    the manual step (Settings > Accounts > Access work or school).
  - The primary (sign-in) account is never signed out. When the Windows sign-in UPN is
    not among the accounts, or the user has no UPN, nothing is removed unless
    O(primary_upn) or O(accounts) says what to remove.
  - Workplace Join (Microsoft Entra registered) accounts stay registered; the result
    points to Settings for them.
version_added: 0.1.0
author:
  - m365ops maintainers (@m365ops)
extends_documentation_fragment:
  - m365ops.activation.rung_users
options:
  accounts:
    description:
      - UPNs to sign out (exact, case-insensitive). When omitted, every account that
        differs from the primary account is signed out.
    type: list
    elements: str
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
  - Supports check mode (lists what would be signed out) and diff mode (accounts per
    user before and after).
  - Needs no reboot. A signed-out account is added back when the user signs in to it
    again in Office. See C(docs/rungs/win_work_accounts.md) for the sources.
seealso:
  - module: m365ops.activation.win_credential_purge
  - module: m365ops.activation.win_token_broker_cache
"""

EXAMPLES = r"""
- name: Sign out every work account that is not the user's Windows sign-in
  m365ops.activation.win_work_accounts:

- name: Sign out one stale account of one user
  m365ops.activation.win_work_accounts:
    users:
      - CONTOSO\alice
    accounts:
      - alice@fabrikam.com
"""

RETURN = r"""
extends_documentation_fragment:
  - m365ops.activation.rung_users
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
      description: C(changed), C(unchanged), C(unsupported), C(not_logged_on) (skipped) or C(failed).
      type: str
      sample: changed
    message:
      description: Why nothing was removed, or what to do by hand.
      type: str
      sample: ""
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
      sample: false
"""
