#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: win_aad_broker_plugin
short_description: Re-register the Microsoft.AAD.BrokerPlugin AppX package for users
description:
  - Rung 4 of the repair ladder (C(reregister_broker_plugin)).
  - In each selected user's logon session, reads the user's registration of the
    C(Microsoft.AAD.BrokerPlugin) package (C(Get-AppxPackage)) and, when it is missing,
    its status is not C(Ok), or its manifest is gone, re-registers it with
    C(Add-AppxPackage -Register <AppxManifest.xml> -DisableDevelopmentMode -ForceApplicationShutdown).
    A missing package is registered from
    C(%windir%\SystemApps\Microsoft.AAD.BrokerPlugin_cw5n1h2txyewy).
  - A healthy package is left alone unless O(force=true).
version_added: 0.1.0
author:
  - m365ops maintainers (@m365ops)
extends_documentation_fragment:
  - m365ops.activation.rung_users
options:
  state:
    description:
      - C(registered) makes sure the package is registered and healthy for the users.
    type: str
    choices: [registered]
    default: registered
  force:
    description:
      - Re-register even when the package looks healthy.
    type: bool
    default: false
  timeout:
    default: 300
notes:
  - Supports check mode and diff mode (package state per user).
  - C(-ForceApplicationShutdown) closes the broker in the user's session; apps asking
    for a token at that moment retry.
  - Needs no reboot. See C(docs/rungs/win_aad_broker_plugin.md).
seealso:
  - module: m365ops.activation.win_token_broker_cache
"""

EXAMPLES = r"""
- name: Repair the BrokerPlugin registration of logged-on users where it is broken
  m365ops.activation.win_aad_broker_plugin:

- name: Re-register it for one user regardless
  m365ops.activation.win_aad_broker_plugin:
    users:
      - CONTOSO\alice
    force: true
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
    status:
      description: C(changed), C(unchanged), C(not_logged_on) (skipped) or C(failed).
      type: str
      sample: changed
    action:
      description: C(register) or C(none).
      type: str
      sample: register
    reason:
      description: Why it was re-registered (C(missing), C(status Modified), C(manifest missing), C(force)).
      type: str
      sample: status Modified
    package:
      description: The package after the run (C(installed), C(status), C(version), C(install_location)).
      type: dict
    message:
      description: Details for skipped or failed users.
      type: str
"""
