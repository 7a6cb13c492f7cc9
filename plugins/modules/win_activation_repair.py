#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: win_activation_repair
short_description: Run the selected repair rungs, the restart and the verification in one step
description:
- Runs every rung in O(rungs) in one module execution on the host, in ladder order (cheapest first), through
  the same PowerShell functions the single-rung modules use (M(m365ops.activation.win_credential_purge),
  M(m365ops.activation.win_work_accounts), M(m365ops.activation.win_token_broker_cache) with C(state=absent),
  M(m365ops.activation.win_aad_broker_plugin), M(m365ops.activation.win_dsreg_join) with C(state=rejoined)).
  Each rung's options are those of its module, given under the rung's name.
- The ladder stops at the first rung that fails; the rungs after it do not run and the task fails with
  the rung's message. RV(rungs) holds each rung's result in the shape its own module returns.
- When a rung returned C(reboot_required) (or, with O(include_windows_pending=true), Windows reports a
  pending restart) and O(reboot=true), the same execution records the boot time and the pending-reboot
  marker (source C(win_activation_repair)), then schedules the restart as M(ansible.windows.win_reboot)
  does (C(shutdown /r /t <pre_reboot_delay> /c <msg>)). This happens after a failed rung too, since the
  rungs before it may have changed what only a restart applies.
- The action plugin then waits for the host with M(ansible.windows.win_reboot)'s timeouts and backoff;
  the first module execution after the restart is the verification diagnose, M(m365ops.activation.win_activation_facts)
  with the options in O(verify). Its C(last_boot) must be later than the boot time recorded before the
  restart (an earlier answer is retried), and it clears the marker sources the restart satisfied. Without
  a restart the verification diagnose runs once after the rungs.
- If the controller dies at any point, the marker stays on the host and the next remediate run finishes
  the job; it restarts first, or only clears the marker when the host has restarted since.
- In check mode every rung runs in check mode, RV(restart) says whether it would restart, and nothing
  is restarted or diagnosed again.
version_added: 0.1.0
author:
- m365ops maintainers (@m365ops)
options:
  rungs:
    description:
    - The rungs to run, by ladder name (C(purge_office_credentials), C(remove_extra_work_accounts), C(reset_token_broker),
      C(reregister_broker_plugin), C(rejoin_hybrid)). They run in ladder order whatever the order given;
      an unknown name fails the task before the host is reached.
    type: list
    elements: str
    required: true
  purge_office_credentials:
    description: Options of M(m365ops.activation.win_credential_purge) (C(patterns), C(allow_broad_patterns),
      C(users), C(require_logged_on), C(timeout)).
    type: dict
    suboptions:
      allow_broad_patterns:
        description:
        - Accept patterns that match every generic credential of the user.
        type: bool
        default: false
      patterns:
        description:
        - Target name patterns. C(*) matches any run of characters and C(?) one character; everything
          else, including C([), is literal. Matching ignores case.
        - Add C(msteams*), C(Microsoft_OC*) or C(OneDrive Cached Credential*) to purge the Teams, Skype/Lync
          or OneDrive entries as well.
        - Patterns that match every credential (C(*), C(**), C(?*), empty) are refused unless C(allow_broad_patterns=true).
        type: list
        elements: str
        default:
        - MicrosoftOffice1*
      require_logged_on:
        description:
        - Fail, before anything is changed, when a selected user is not logged on (or no user is logged
          on), instead of reporting the user as skipped with status C(not_logged_on).
        type: bool
        default: false
      timeout:
        description:
        - Seconds to wait for each user's task (1 to 3600).
        type: int
        default: 120
      users:
        description:
        - Users to work on, as name, C(DOMAIN\name), UPN or SID. Each must resolve to exactly one user
          profile on the host; wildcards and path characters are refused, and one bad name fails the run
          before anything is changed.
        - When omitted, every user logged on to the host.
        type: list
        elements: str
  remove_extra_work_accounts:
    description: Options of M(m365ops.activation.win_work_accounts) (C(accounts), C(primary_upn), C(client_id),
      C(disconnect_workplace_join), C(users), C(require_logged_on), C(timeout)).
    type: dict
    suboptions:
      accounts:
        description:
        - UPNs to sign out, and whose Workplace Join registration to disconnect (exact, case-insensitive).
          When omitted, every account that differs from the primary account is selected.
        - Naming the primary account (the Windows sign-in, or C(primary_upn)), or an account registered
          in the tenant the device is joined to, is refused.
        type: list
        elements: str
      client_id:
        description:
        - Application (client) id whose accounts are listed and signed out. The default is Microsoft Office's.
        type: str
        default: d3590ed6-52b3-4102-aeff-aad2292ab01c
      disconnect_workplace_join:
        description:
        - Also disconnect the Workplace Join (Microsoft Entra registered) registrations of the selected
          accounts. With C(false) they are listed and left registered.
        type: bool
        default: true
      primary_upn:
        description:
        - The user's primary work account, when it differs from the Windows sign-in UPN (alternate login
          ID). Needs exactly one entry in C(users).
        type: str
      require_logged_on:
        description:
        - Fail, before anything is changed, when a selected user is not logged on (or no user is logged
          on), instead of reporting the user as skipped with status C(not_logged_on).
        type: bool
        default: false
      timeout:
        description:
        - Seconds to wait for each user's task (1 to 3600).
        type: int
        default: 120
      users:
        description:
        - Users to work on, as name, C(DOMAIN\name), UPN or SID. Each must resolve to exactly one user
          profile on the host; wildcards and path characters are refused, and one bad name fails the run
          before anything is changed.
        - When omitted, every user logged on to the host.
        type: list
        elements: str
  reset_token_broker:
    description:
    - Options of M(m365ops.activation.win_token_broker_cache) (C(users), C(all_profiles), C(stop_broker),
      C(quarantine_path), C(quarantine_retention_days)); it always runs with C(state=absent).
    - Name the users (or set C(all_profiles)) when this rung runs, as for its module.
    type: dict
    suboptions:
      all_profiles:
        description:
        - Quarantine the caches of every profile that has cached account files. On a shared PC this signs
          every user out of Microsoft 365; it must be asked for explicitly.
        - Mutually exclusive with C(users).
        type: bool
        default: false
      quarantine_path:
        description:
        - Absolute folder holding the quarantines.
        - Defaults to C(%ProgramData%\m365ops\activation\quarantine).
        - Only a new folder (its parent must exist; it is created with the protected ACL and marked under
          C(HKLM:\SOFTWARE\m365ops\activation\QuarantineRoots)) or one an earlier run created is accepted.
          Any other existing folder (C(C:\ProgramData), C(D:\)) is an error that changes nothing, so a
          typo cannot re-ACL a tree.
        type: path
      quarantine_retention_days:
        description:
        - Quarantines older than this many days are deleted at the end of a run (0 keeps them forever).
          Only folders named like a quarantine id are touched.
        type: int
        default: 30
      stop_broker:
        description:
        - Stop the user's C(Microsoft.AAD.BrokerPlugin) processes before moving the files, so locked files
          can be moved.
        type: bool
        default: false
      users:
        description:
        - Users whose caches to quarantine, as name, C(DOMAIN\name), UPN or SID.
        - With C(state=absent) either C(users) or C(all_profiles=true) is required; an empty list is an
          error (it never means everyone).
        - Not used with C(state=restored), which restores a quarantine as a whole.
        type: list
        elements: str
  reregister_broker_plugin:
    description: Options of M(m365ops.activation.win_aad_broker_plugin) (C(force), C(users), C(require_logged_on),
      C(timeout)).
    type: dict
    suboptions:
      force:
        description:
        - Re-register even when the package looks healthy.
        type: bool
        default: false
      require_logged_on:
        description:
        - Fail, before anything is changed, when a selected user is not logged on (or no user is logged
          on), instead of reporting the user as skipped with status C(not_logged_on).
        type: bool
        default: false
      state:
        description:
        - C(registered) makes sure the package is registered and healthy for the users.
        type: str
        choices:
        - registered
        default: registered
      timeout:
        description:
        - Seconds to wait for each user's task (1 to 3600).
        type: int
        default: 300
      users:
        description:
        - Users to work on, as name, C(DOMAIN\name), UPN or SID. Each must resolve to exactly one user
          profile on the host; wildcards and path characters are refused, and one bad name fails the run
          before anything is changed.
        - When omitted, every user logged on to the host.
        type: list
        elements: str
  rejoin_hybrid:
    description:
    - Options of M(m365ops.activation.win_dsreg_join) (C(allow_cloud_only_leave), C(join_wait), C(poll_interval),
      C(timeout), C(pending_expiry)); it always runs with C(state=rejoined).
    type: dict
    suboptions:
      allow_cloud_only_leave:
        description:
        - Allow C(state=left) on a cloud-only Entra joined device. It cannot be rejoined by this module
          afterwards.
        type: bool
        default: false
      join_wait:
        description:
        - Seconds to wait for the hybrid join to show in C(dsregcmd /status) after C(/join) (0 to 3600).
          After that C(join_result) is C(pending).
        type: int
        default: 60
      pending_expiry:
        description:
        - Hours a submitted join counts as pending (1 to 720). Entra Connect syncs every 30 minutes by
          default and the C(Automatic-Device-Join) task retries hourly; a join still incomplete after
          this is treated as lost and may be submitted again.
        type: int
        default: 24
      poll_interval:
        description:
        - Seconds between status reads while waiting (1 to 300).
        type: int
        default: 10
      timeout:
        description:
        - Seconds to wait for each SYSTEM task (1 to 3600).
        type: int
        default: 300
  reboot:
    description:
    - Allow the restart. With V(false) C(restart.reboot_required) says whether one is needed, and the
      markers the rungs wrote stay for a later run.
    type: bool
    default: true
  include_windows_pending:
    description: Also restart when Windows reports a pending restart, not only when a rung asked for one.
    type: bool
    default: false
  pre_reboot_delay:
    description:
    - Seconds before the restart starts (C(shutdown /t), as in M(ansible.windows.win_reboot)), 0 to 600.
    - The restart is scheduled from inside this module's execution, whose result must reach the controller
      before the host goes down, hence a longer default than win_reboot's 2.
    type: int
    default: 10
  post_reboot_delay:
    description: Seconds to wait after the restart has begun before polling the host (as in M(ansible.windows.win_reboot)).
    type: int
    default: 0
  reboot_timeout:
    description: Seconds to wait for the host to come back restarted (as in M(ansible.windows.win_reboot)).
    type: int
    default: 600
  connect_timeout:
    description:
    - Connection timeout while polling the restarting host (as in M(ansible.windows.win_reboot)).
    - It bounds reaching the host only. The verification diagnose then runs in the shell it opened with the
      connection's own timeouts (C(ansible_winrm_connection_timeout), else C(ansible_winrm_operation_timeout_sec)
      and C(ansible_winrm_read_timeout_sec), else pywinrm's defaults), which the connection keeps afterwards;
      win_reboot leaves an unset timeout at this value.
    type: int
    default: 5
  msg:
    description: Message shown to signed-in users before the restart; defaults to one naming the rungs
      that asked for it.
    type: str
  verify:
    description:
    - Options of M(m365ops.activation.win_activation_facts) for the verification diagnose (for example
      C(users), C(evidence_dir)).
    type: dict
notes:
- Requires the C(ansible.windows) collection for the wait after the restart.
- Does not support C(async).
- The single-rung modules stay for a-la-carte use and for the undo steps (a TokenBroker restore, a plain
  leave or join).
seealso:
- module: m365ops.activation.win_activation_facts
- module: m365ops.activation.win_reboot_if_needed
- module: ansible.windows.win_reboot
"""

EXAMPLES = r"""
- name: Purge the Office credentials and reset the TokenBroker caches, restart, verify
  m365ops.activation.win_activation_repair:
    rungs: [purge_office_credentials, reset_token_broker]
    reset_token_broker:
      users: [CONTOSO\alice]
      stop_broker: true
    reboot_timeout: 1200
  register: repair

- name: The diagnosis after the restart
  ansible.builtin.debug:
    var: repair.rediagnosis.m365_activation.plan
"""

RETURN = r"""
rungs:
  description:
    - Each rung that ran, by ladder name, with the result its own module returns (C(changed),
      C(reboot_required), C(users), C(failed) and C(msg) when it failed, C(warnings), C(diff)
      in diff mode, and the rung's own keys).
  returned: always
  type: dict
  sample: {"purge_office_credentials": {"changed": true, "reboot_required": false, "removed_count": 2, "users": []}}
run:
  description: The rungs that ran, in order; the last one is the one that failed when RV(failed_rung) is set.
  returned: always
  type: list
  elements: str
  sample: [purge_office_credentials, reset_token_broker]
failed_rung:
  description: The rung that failed (the ladder stopped there), or null.
  returned: always
  type: str
  sample: null
restart:
  description:
    - The restart, in the keys of M(m365ops.activation.win_reboot_if_needed)'s result
      C(reboot_required), C(reasons), C(rebooted), C(msg), plus C(scheduled),
      C(boot_time_before) (recorded before it was scheduled), C(boot_time_after) (the
      verification's C(last_boot)), C(cleared) (marker sources it satisfied), and
      C(failed) when the host did not come back restarted within O(reboot_timeout).
  returned: always
  type: dict
  sample: {"reboot_required": true, "scheduled": true, "rebooted": true, "boot_time_before": "2026-12-04T09:15:02Z",
           "boot_time_after": "2026-12-04T09:31:40Z", "reasons": ["reset_token_broker: returned reboot_required"]}
rediagnosis:
  description:
    - The verification diagnose after the rungs (and the restart), as
      M(m365ops.activation.win_activation_facts) returns it (C(m365_activation), C(host_facts), ...).
  returned: when a rung ran, not in check mode, and the host came back
  type: dict
"""
