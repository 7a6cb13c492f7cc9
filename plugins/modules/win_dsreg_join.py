#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: win_dsreg_join
short_description: Leave, join or rejoin Microsoft Entra hybrid join with dsregcmd as SYSTEM
description:
  - Rung 5 of the repair ladder (C(rejoin_hybrid)), opt-in.
  - Reads C(dsregcmd /status), then runs C(dsregcmd /leave) and/or C(dsregcmd /join /debug)
    as SYSTEM through a temporary scheduled task (this replaces C(PsExec -s)), and reads
    the status again.
  - O(state=joined) joins a domain-joined device that is not hybrid joined;
    O(state=left) leaves a hybrid join; O(state=rejoined) leaves then joins.
  - The join completes asynchronously. The module polls for O(join_wait) seconds and
    then returns RV(join_result=pending) rather than blocking; a later diagnosis confirms
    the join. When dsregcmd's pre-join diagnostics report a failed test or an error other
    than the expected sync-join C(0x801c03f2), the module fails with RV(diagnostic_data).
  - Guard rails. A cloud-only Microsoft Entra joined device (AzureAdJoined YES,
    DomainJoined NO) is never left unless O(allow_cloud_only_leave=true), and never
    rejoined (C(dsregcmd /join) only performs hybrid join; its recovery is
    C(dsregcmd /forcerecovery) with the user present). Before any leave of a hybrid
    device, a preflight checks that a rejoin can succeed (a domain controller answers,
    the service connection point is found, the C(Automatic-Device-Join) task is ready)
    and the leave is refused if not.
  - A leave or join sets the collection's pending-reboot marker, which the reboot step clears.
  - A submitted join is also recorded under C(HKLM:\SOFTWARE\m365ops\activation\HybridJoin)
    (C(SubmittedAt), C(SubmittedBy), C(Action)), because it can stay incomplete for hours after
    the restart. While it is pending the module returns RV(join_result=pending) and does not
    join or rejoin again, until C(dsregcmd /status) shows AzureAdJoined and DomainJoined C(YES)
    (the record is then cleared, with C(changed=false)) or O(pending_expiry) hours have passed
    (the join may then be submitted again). A leave voids the record.
  - A submitted join is recorded as the C(rejoin_hybrid) repair under
    C(HKLM:\SOFTWARE\m365ops\activation\Repairs), so the diagnosis after the restart stops
    counting the AAD errors logged before it.
version_added: 0.1.0
author:
  - m365ops maintainers (@m365ops)
options:
  state:
    description:
      - C(joined), C(left) or C(rejoined), as described above.
    type: str
    required: true
    choices: [joined, left, rejoined]
  allow_cloud_only_leave:
    description:
      - Allow O(state=left) on a cloud-only Entra joined device. It cannot be rejoined by
        this module afterwards.
    type: bool
    default: false
  join_wait:
    description:
      - Seconds to wait for the hybrid join to show in C(dsregcmd /status) after
        C(/join) (0 to 3600). After that RV(join_result) is C(pending).
    type: int
    default: 60
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
  pending_expiry:
    description:
      - Hours a submitted join counts as pending (1 to 720). Entra Connect syncs every 30
        minutes by default and the C(Automatic-Device-Join) task retries hourly; a join
        still incomplete after this is treated as lost and may be submitted again.
    type: int
    default: 24
notes:
  - Supports check mode (status and preflight are read; nothing runs, the HybridJoin
    record is neither written nor cleared) and diff mode (join type before and expected after).
  - Undo a leave with O(state=joined); see C(docs/rungs/win_dsreg_join.md).
seealso:
  - module: m365ops.activation.win_reboot_if_needed
"""

EXAMPLES = r"""
- name: Rejoin a hybrid device whose registration is broken
  m365ops.activation.win_dsreg_join:
    state: rejoined
  register: rejoin

- name: Join a domain-joined device that never completed hybrid join, waiting up to 5 minutes
  m365ops.activation.win_dsreg_join:
    state: joined
    join_wait: 300
"""

RETURN = r"""
users:
  description:
    - Always empty; the join is device-wide. Every rung module returns C(users), the list of
      per-user entries the remediate role reads, so this one has the same shape.
  returned: always
  type: list
  elements: dict
  sample: []
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
action:
  description: What ran (or would run in check mode) - C(none), C(join), C(leave) or C(rejoin).
  returned: always
  type: str
  sample: rejoin
join_result:
  description: C(joined), C(pending) (submitted, not complete yet), C(left) or C(failed).
  returned: always
  type: str
  sample: pending
pending:
  description: Whether RV(join_result) is C(pending) (the remediate role reads this flag).
  returned: always
  type: bool
  sample: true
preflight:
  description: >-
    Rejoin preflight before a leave - C(passed) and C(checks) (C(domain_controller),
    C(service_connection_point), C(automatic_device_join_task), each with C(ok) and C(detail)).
  returned: when a hybrid device is left or rejoined
  type: dict
diagnostic_data:
  description: The C(Diagnostic Data) section of C(dsregcmd /status) after a join that did not complete.
  returned: when a join is pending or failed
  type: dict
  sample: {"Error Phase": "join", "Client ErrorCode": "0x801c03f2"}
device_before:
  description: >-
    Join state before - C(join_type) (C(hybrid_joined), C(entra_joined), C(domain_joined),
    C(entra_registered) or C(workgroup), as the triage names them) and the C(AzureAdJoined), C(EnterpriseJoined),
    C(DomainJoined), C(DomainName), C(DeviceId), C(TenantName), C(TenantId) fields.
  returned: always
  type: dict
device_after:
  description: The same fields after the run.
  returned: when the status could be read
  type: dict
leave_output:
  description: End of the C(dsregcmd /leave) output.
  returned: when a leave ran
  type: str
join_output:
  description: End of the C(dsregcmd /join /debug) output.
  returned: when a join ran
  type: str
submitted_join:
  description: >-
    The recorded join - C(submitted_at) (UTC, C(yyyy-MM-ddTHH:mm:ssZ)), C(submitted_by),
    C(action) (C(join) or C(rejoin)), C(expires_at) and C(status): C(pending), C(confirmed)
    (now hybrid joined; the record was cleared, except in check mode), C(expired), or
    C(submitted) (by this run); null when no join is recorded.
  returned: always
  type: dict
  sample: {"submitted_at": "2026-11-26T18:05:00Z", "submitted_by": "CONTOSO\\admin (win_dsreg_join state=rejoined)",
           "action": "rejoin", "expires_at": "2026-11-27T18:05:00Z", "status": "pending"}
reboot_required:
  description: Whether a restart is needed (after any leave or join).
  returned: always
  type: bool
  sample: true
msg:
  description: What a pending join is waiting for (and until when it is not repeated).
  returned: when join_result is pending
  type: str
"""
