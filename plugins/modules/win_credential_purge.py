#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: win_credential_purge
short_description: Remove Office credentials from users' Windows Credential Manager
description:
  - Rung 1 of the repair ladder (C(purge_office_credentials)).
  - In each selected user's logon session (a temporary scheduled task with the user's
    interactive token, see the task runner), enumerates the user's generic credentials
    with C(CredEnumerate) and deletes, with C(CredDelete), those whose target name
    matches O(patterns).
  - Returns the target names removed per user. Credential secrets are never read.
version_added: 0.1.0
author:
  - m365ops maintainers (@m365ops)
extends_documentation_fragment:
  - m365ops.activation.rung_users
options:
  patterns:
    description:
      - Target name patterns. C(*) matches any run of characters and C(?) one character;
        everything else, including C([), is literal. Matching ignores case.
      - Add C(msteams*), C(Microsoft_OC*) or C(OneDrive Cached Credential*) to purge the
        Teams, Skype/Lync or OneDrive entries as well.
      - Patterns that match every credential (C(*), C(**), C(?*), empty) are refused
        unless O(allow_broad_patterns=true).
    type: list
    elements: str
    default: ['MicrosoftOffice1*']
  allow_broad_patterns:
    description:
      - Accept patterns that match every generic credential of the user.
    type: bool
    default: false
notes:
  - Supports check mode (the task lists the matching targets and deletes nothing) and
    diff mode (matching targets per user before and after).
  - Needs no reboot; C(reboot_required) is always false.
  - Undo is not possible for a deleted credential; Office recreates its entries at the
    next sign-in. See C(docs/rungs/win_credential_purge.md).
seealso:
  - module: m365ops.activation.win_work_accounts
  - module: m365ops.activation.win_token_broker_cache
"""

EXAMPLES = r"""
- name: Purge the Office credentials of everyone logged on
  m365ops.activation.win_credential_purge:

- name: Purge Office, Teams and OneDrive entries of one user, who must be logged on
  m365ops.activation.win_credential_purge:
    users:
      - CONTOSO\alice
    patterns:
      - MicrosoftOffice1*
      - msteams*
      - OneDrive Cached Credential*
    require_logged_on: true
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
      description: C(DOMAIN\name) of the user, or null when the SID does not translate.
      type: str
      sample: CONTOSO\alice
    sid:
      description: The user's SID.
      type: str
      sample: S-1-5-21-1004336348-1177238915-682003330-1104
    status:
      description: C(changed), C(unchanged), C(not_logged_on) (skipped) or C(failed).
      type: str
      sample: changed
    message:
      description: Why a user was skipped or failed.
      type: str
      sample: ""
    removed:
      description: Target names removed (in check mode, that would be removed).
      type: list
      elements: str
      sample: ["MicrosoftOffice16_Data:SSPI:alice@contoso.com"]
removed_count:
  description: Number of credentials removed over all users.
  returned: always
  type: int
  sample: 2
"""
