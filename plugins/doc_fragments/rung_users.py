# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # The rungs that work inside each logged-on user's session (win_credential_purge,
    # win_work_accounts, win_aad_broker_plugin) share these options and their handling
    # (_UserRung.psm1 Invoke-M365UserRung). A module may override a default (timeout).
    DOCUMENTATION = r'''
options:
  users:
    description:
      - Users to work on, as name, C(DOMAIN\name), UPN or SID. Each must resolve to exactly
        one user profile on the host; wildcards and path characters are refused, and one bad
        name fails the run before anything is changed.
      - When omitted, every user logged on to the host.
    type: list
    elements: str
  require_logged_on:
    description:
      - Fail, before anything is changed, when a selected user is not logged on (or no user
        is logged on), instead of reporting the user as skipped with status C(not_logged_on).
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait for each user's task (1 to 3600).
    type: int
    default: 120
notes:
  - The per-user work runs in a temporary scheduled task inside each selected user's logon
    session (the user's interactive token), because a WinRM network logon cannot reach the
    user's vault, Web Account Manager or AppX registration. A user who is not logged on is
    skipped with status C(not_logged_on), never reported as repaired.
  - When a user's state changed (not in check mode), the module records the time under
    C(HKLM:\SOFTWARE\m365ops\activation\Repairs), value named after its rung, so the next
    diagnosis stops counting the AAD errors logged before this repair (docs/triage.md).
'''

    # Return values with the same meaning in those rungs. (Ansible merges return fragments
    # key by key, not inside RV(users), so each module documents its own per-user entry.)
    RETURN = r'''
reboot_required:
  description: Always false for this rung; kept for the common rung result shape.
  returned: always
  type: bool
  sample: false
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
msg:
  description: Set when no user was selected.
  returned: when no user is logged on and no users were given
  type: str
  sample: "no user selected: nobody is logged on and no users were given"
'''
