#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: win_reboot_if_needed
short_description: Restart a Windows host only when a repair asked for it
description:
  - Restarts the host only when the collection's pending-reboot marker is set (rung
    modules such as M(m365ops.activation.win_token_broker_cache) write it before they
    return C(reboot_required)) or, with O(include_windows_pending=true), when Windows
    itself reports a pending restart.
  - The restart is carried out by the action plugin of M(ansible.windows.win_reboot),
    which waits for the host to go down and come back and reconnects.
  - Once the host is back it checks that the boot time changed and clears the marker
    sources the restart satisfied (those seen before it, and any written before the new
    boot). A run that died between a rung and this step leaves the marker behind, so the
    next run restarts the host, unless the host was restarted in between (the marker is
    older than the boot), in which case the marker is only cleared. A second run after a
    completed restart does nothing and reports no change.
  - When O(requested_by) names a module, the restart is known to be due and the first
    read of the host is skipped (one module execution in all); the marker sources of
    O(requested_by) must then be older than the new boot, or the task fails.
  - In check mode it reports whether it would restart and changes nothing.
version_added: 0.1.0
author:
  - m365ops maintainers (@m365ops)
options:
  reboot:
    description:
      - Allow the restart. With V(false) the task only reports RV(reboot_required) and
        RV(reasons); the marker stays for a later run.
    type: bool
    default: true
  include_windows_pending:
    description:
      - Also restart when Windows reports a pending restart (component servicing,
        Windows Update, pending file renames), not only for the collection's marker.
    type: bool
    default: false
  requested_by:
    description:
      - Short names of modules that returned C(reboot_required) earlier in the play (for
        example the rungs the remediate role ran), as in the marker. They count as reasons to restart even when no
        marker is set, which is how a check-mode run reports that it would restart (in
        check mode the rung modules write no marker).
    type: list
    elements: str
    default: []
  reboot_timeout:
    description: Seconds to wait for the host to come back (passed to M(ansible.windows.win_reboot)).
    type: int
    default: 600
  pre_reboot_delay:
    description: Seconds before the restart starts (passed to M(ansible.windows.win_reboot), minimum 2).
    type: int
    default: 2
  post_reboot_delay:
    description: Seconds to wait after the restart command before polling (passed to M(ansible.windows.win_reboot)).
    type: int
    default: 0
  connect_timeout:
    description: Connection timeout while polling the restarting host (passed to M(ansible.windows.win_reboot)).
    type: int
    default: 5
  test_command:
    description: Command that must succeed before the host counts as back (passed to M(ansible.windows.win_reboot)).
    type: str
  msg:
    description:
      - Message shown to signed-in users. Defaults to one naming the modules that asked
        for the restart.
    type: str
notes:
  - Requires the C(ansible.windows) collection.
  - The host side is M(m365ops.activation.win_reboot_state), one module execution before
    and one after the restart.
  - Does not support C(async).
seealso:
  - module: ansible.windows.win_reboot
  - module: m365ops.activation.win_reboot_state
"""

EXAMPLES = r"""
- name: Restart if a repair step asked for it
  m365ops.activation.win_reboot_if_needed:
    reboot_timeout: 1200

- name: Also honour Windows' own pending restart
  m365ops.activation.win_reboot_if_needed:
    include_windows_pending: true

- name: Only report whether a restart is pending
  m365ops.activation.win_reboot_if_needed:
    reboot: false
  register: pending
"""

RETURN = r"""
rebooted:
  description: Whether the host was restarted.
  returned: always
  type: bool
  sample: true
reboot_required:
  description: Whether a restart was needed when the task started.
  returned: success
  type: bool
  sample: true
reasons:
  description: Why a restart was needed, one entry per marker source or Windows signal.
  returned: success
  type: list
  elements: str
  sample: ["win_token_broker_cache: 2026-11-26T09:20:00Z quarantined the TokenBroker caches of CONTOSO\\alice"]
marker:
  description: The collection's marker as read before the restart; empty when the read was skipped (O(requested_by)).
  returned: always
  type: dict
  sample: {"win_token_broker_cache": "2026-11-26T09:20:00Z quarantined the TokenBroker caches of CONTOSO\\alice"}
windows_reasons:
  description: Windows' own pending-restart signals (only read with O(include_windows_pending=true)).
  returned: always
  type: list
  elements: str
  sample: []
boot_time_before:
  description: Boot time (UTC) before the restart; null when the read was skipped (O(requested_by)).
  returned: always
  type: str
  sample: "2026-11-26T09:15:30.000000Z"
boot_time_after:
  description: Boot time (UTC) after the restart; null when no restart happened.
  returned: always
  type: str
  sample: "2026-11-26T09:41:02.000000Z"
cleared:
  description: Marker sources cleared (after the restart, or because an earlier restart had satisfied them).
  returned: always
  type: list
  elements: str
  sample: ["win_token_broker_cache"]
elapsed:
  description: Seconds the host took to come back.
  returned: when rebooted
  type: int
  sample: 74
reboot_result:
  description: The result of M(ansible.windows.win_reboot) when the restart failed.
  returned: when the restart failed
  type: dict
"""
