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
  - Runs every rung in O(rungs) in one module execution on the host, in ladder order
    (cheapest first), through the same PowerShell functions the single-rung modules use
    (M(m365ops.activation.win_credential_purge), M(m365ops.activation.win_work_accounts),
    M(m365ops.activation.win_token_broker_cache) with C(state=absent),
    M(m365ops.activation.win_aad_broker_plugin),
    M(m365ops.activation.win_dsreg_join) with C(state=rejoined)). Each rung's options
    are those of its module, given under the rung's name.
  - The ladder stops at the first rung that fails; the rungs after it do not run and the
    task fails with the rung's message. RV(rungs) holds each rung's result in the shape its
    own module returns.
  - When a rung returned C(reboot_required) (or, with O(include_windows_pending=true),
    Windows reports a pending restart) and O(reboot=true), the same execution records the
    boot time and the pending-reboot marker (source C(win_activation_repair)), then
    schedules the restart as M(ansible.windows.win_reboot) does
    (C(shutdown /r /t <pre_reboot_delay> /c <msg>)). This happens after a failed rung too,
    since the rungs before it may have changed what only a restart applies.
  - The action plugin then waits for the host with M(ansible.windows.win_reboot)'s
    timeouts and backoff; the first module execution after the restart is the
    verification diagnose, M(m365ops.activation.win_activation_facts) with the options in
    O(verify). Its C(last_boot) must be later than the boot time recorded before the
    restart (an earlier answer is retried), and it clears the marker sources the restart
    satisfied. Without a restart the verification diagnose runs once after the rungs.
  - If the controller dies at any point, the marker stays on the host and the next
    remediate run finishes the job; it restarts first, or only clears the marker when the
    host has restarted since.
  - In check mode every rung runs in check mode, RV(restart) says whether it would restart,
    and nothing is restarted or diagnosed again.
version_added: 0.1.0
author:
  - m365ops maintainers (@m365ops)
options:
  rungs:
    description:
      - The rungs to run, by ladder name (C(purge_office_credentials), C(remove_extra_work_accounts),
        C(reset_token_broker), C(reregister_broker_plugin), C(rejoin_hybrid)). They run in ladder
        order whatever the order given; an unknown name fails the task before the host is reached.
    type: list
    elements: str
    required: true
  purge_office_credentials:
    description: Options of M(m365ops.activation.win_credential_purge) (C(patterns), C(allow_broad_patterns), C(users), C(require_logged_on), C(timeout)).
    type: dict
  remove_extra_work_accounts:
    description: Options of M(m365ops.activation.win_work_accounts) (C(accounts), C(primary_upn), C(client_id), C(disconnect_workplace_join), C(users), C(require_logged_on), C(timeout)).
    type: dict
  reset_token_broker:
    description:
      - Options of M(m365ops.activation.win_token_broker_cache) (C(users), C(all_profiles), C(stop_broker),
        C(quarantine_path), C(quarantine_retention_days)); it always runs with C(state=absent).
      - Name the users (or set C(all_profiles)) when this rung runs, as for its module.
    type: dict
  reregister_broker_plugin:
    description: Options of M(m365ops.activation.win_aad_broker_plugin) (C(force), C(users), C(require_logged_on), C(timeout)).
    type: dict
  rejoin_hybrid:
    description:
      - Options of M(m365ops.activation.win_dsreg_join) (C(allow_cloud_only_leave), C(join_wait), C(poll_interval),
        C(timeout), C(pending_expiry)); it always runs with C(state=rejoined).
    type: dict
  reboot:
    description:
      - Allow the restart. With V(false) RV(restart.reboot_required) says whether one is
        needed, and the markers the rungs wrote stay for a later run.
    type: bool
    default: true
  include_windows_pending:
    description: Also restart when Windows reports a pending restart, not only when a rung asked for one.
    type: bool
    default: false
  pre_reboot_delay:
    description:
      - Seconds before the restart starts (C(shutdown /t), as in M(ansible.windows.win_reboot)), 0 to 600.
      - The restart is scheduled from inside this module's execution, whose result must reach
        the controller before the host goes down, hence a longer default than win_reboot's 2.
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
    description: Connection timeout while polling the restarting host (as in M(ansible.windows.win_reboot)).
    type: int
    default: 5
  msg:
    description: Message shown to signed-in users before the restart; defaults to one naming the rungs that asked for it.
    type: str
  verify:
    description:
      - Options of M(m365ops.activation.win_activation_facts) for the verification diagnose
        (for example C(users), C(evidence_dir)).
    type: dict
notes:
  - Requires the C(ansible.windows) collection for the wait after the restart.
  - Does not support C(async).
  - The single-rung modules stay for a-la-carte use and for the undo steps (a TokenBroker
    restore, a plain leave or join).
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
