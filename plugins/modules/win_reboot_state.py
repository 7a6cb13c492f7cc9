#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: win_reboot_state
short_description: Read and clear the pending-reboot state of a Windows host
description:
  - Reads the host's last boot time, the collection's pending-reboot marker
    (C(HKLM:\SOFTWARE\m365ops\activation\RebootRequired), one value per rung module that
    asked for a restart) and, when O(include_windows_pending=true), the pending-reboot
    signals of Windows itself.
  - With O(clear_sources) it clears those marker sources, but only when the boot time is
    no longer O(boot_time_before); with O(clear_satisfied=true) it clears every source
    written before the current boot. A host that did not restart keeps its marker, so
    the next run restarts it.
  - This is the host side of M(m365ops.activation.win_reboot_if_needed); playbooks
    normally use that action instead.
version_added: 0.1.0
author:
  - m365ops maintainers (@m365ops)
options:
  include_windows_pending:
    description:
      - Also read Windows' own signals, the C(Component Based Servicing\RebootPending) and
        C(WindowsUpdate\Auto Update\RebootRequired) keys and the
        C(PendingFileRenameOperations) value of the session manager.
    type: bool
    default: false
  clear_sources:
    description:
      - Marker sources (module names) to clear once the boot time has moved.
      - Sources that are not set are ignored. Names other than letters, digits, C(_),
        C(.) and C(-) are refused.
    type: list
    elements: str
    default: []
  boot_time_before:
    description:
      - RV(boot_time) as read before the restart. Required when O(clear_sources) is not
        empty.
    type: str
  clear_satisfied:
    description:
      - Clear every marker source whose time (the start of its value) is older than the
        current boot, whoever restarted the host since. Values without a readable time
        are kept.
    type: bool
    default: false
notes:
  - Check mode reads everything and reports what it would clear without clearing it.
seealso:
  - module: m365ops.activation.win_reboot_if_needed
"""

EXAMPLES = r"""
- name: Read the pending-reboot state
  m365ops.activation.win_reboot_state:
    include_windows_pending: true
  register: reboot_state

- name: Clear the marker after a restart
  m365ops.activation.win_reboot_state:
    clear_sources: "{{ reboot_state.marker.keys() | list }}"
    boot_time_before: "{{ reboot_state.boot_time }}"

- name: Clear whatever a restart since has satisfied
  m365ops.activation.win_reboot_state:
    clear_satisfied: true
"""

RETURN = r"""
boot_time:
  description: Last boot time of the host in UTC (ISO 8601).
  returned: success
  type: str
  sample: "2026-11-26T09:15:30.000000Z"
boot_time_changed:
  description: Whether the boot time differs from O(boot_time_before); null when no source was to be cleared.
  returned: success
  type: bool
  sample: true
marker:
  description: The marker after any clearing, source -> C(<UTC ISO time> <reason>).
  returned: success
  type: dict
  sample: {"win_token_broker_cache": "2026-11-26T09:20:00Z quarantined the TokenBroker caches of CONTOSO\\alice"}
cleared:
  description: Sources cleared (or that would be cleared in check mode).
  returned: success
  type: list
  elements: str
  sample: ["win_token_broker_cache"]
kept:
  description: Sources asked to be cleared (or checked, with O(clear_satisfied=true)) that were kept because the host has not restarted since they were written.
  returned: success
  type: list
  elements: str
  sample: []
windows_pending:
  description: Whether Windows reports a pending restart (false unless O(include_windows_pending=true)).
  returned: success
  type: bool
  sample: false
windows_reasons:
  description: The Windows signals found.
  returned: success
  type: list
  elements: str
  sample: ["Component Based Servicing: RebootPending"]
satisfied:
  description: Sources left in the marker that were written before the current boot, so a restart already satisfied them.
  returned: success
  type: list
  elements: str
  sample: []
reboot_required:
  description: Whether a restart is still needed after this call (an unsatisfied marker source, or Windows pending).
  returned: success
  type: bool
  sample: false
"""
