#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: win_token_broker_cache
short_description: Quarantine or restore the TokenBroker account caches of Windows users
description:
  - Rung 3 of the repair ladder (C(reset_token_broker)).
  - O(state=absent) moves the files under
    C(AppData\Local\Packages\Microsoft.AAD.BrokerPlugin_cw5n1h2txyewy\AC\TokenBroker\Accounts)
    and
    C(AppData\Local\Packages\Microsoft.Windows.CloudExperienceHost_cw5n1h2txyewy\AC\TokenBroker\Accounts)
    of each selected profile into a new quarantine folder under O(quarantine_path)
    (ACL SYSTEM and Administrators only) with a C(manifest.json) recording, per file,
    the original path, size, SHA-256, time and user SID. Files are never deleted
    outright; a reboot is required and the collection's pending-reboot marker is set.
  - O(state=restored) puts the files of quarantine O(quarantine_id) back, after checking
    each file's SHA-256 and that its original path is inside that user's cache folders.
  - Profiles are found through ProfileList, never C(%LOCALAPPDATA%); a cache folder that
    leaves its profile (junction, symbolic link) fails the run before any file moves.
  - The user owns the cache folders. Nothing below them is enumerated, opened, copied,
    deleted or restored through a junction or symbolic link; the folders are walked one
    at a time without entering links, each file and its parent chain are checked again
    immediately before it is opened, copied, deleted or restored, and every link met is
    skipped and listed in RV(refused) (and as a warning) with the reason.
  - Every folder of the quarantine chain the collection owns (by default
    C(%ProgramData%\m365ops), C(\activation), C(\quarantine)) is created with a protected
    SYSTEM and Administrators DACL and the Administrators owner; a folder of the chain that
    is a link, or that someone else owns (created in advance by a standard user), is
    refused with nothing moved. The SHA-256 of each manifest is recorded under
    C(HKLM:\SOFTWARE\m365ops\activation\Quarantines) when it is written, and
    O(state=restored) refuses a quarantine whose manifest does not match that record.
  - The free space on the quarantine volume is checked before anything moves.
  - When a file is locked (the broker is running in the user's session) nothing is moved
    for that user and the locked files are reported, unless O(stop_broker=true).
version_added: 0.1.0
author:
  - m365ops maintainers (@m365ops)
options:
  users:
    description:
      - Users whose caches to quarantine, as name, C(DOMAIN\name), UPN or SID.
      - With O(state=absent) either O(users) or O(all_profiles=true) is required; an empty
        list is an error (it never means everyone).
      - Not used with O(state=restored), which restores a quarantine as a whole.
    type: list
    elements: str
  all_profiles:
    description:
      - Quarantine the caches of every profile that has cached account files. On a shared
        PC this signs every user out of Microsoft 365; it must be asked for explicitly.
      - Mutually exclusive with O(users).
    type: bool
    default: false
  state:
    description:
      - C(absent) quarantines the cache files; C(restored) puts a quarantine back.
    type: str
    choices: [absent, restored]
    default: absent
  quarantine_id:
    description:
      - The quarantine to restore, as returned in RV(quarantine_id)
        (C(yyyyMMddTHHmmssZ-xxxxxxxx)). Required with O(state=restored); anything else
        in the value, such as a path, is refused.
    type: str
  quarantine_path:
    description:
      - Absolute folder holding the quarantines.
      - Defaults to C(%ProgramData%\m365ops\activation\quarantine).
      - Only a new folder (its parent must exist; it is created with the protected ACL and
        marked under C(HKLM:\SOFTWARE\m365ops\activation\QuarantineRoots)) or one an
        earlier run created is accepted. Any other existing folder (C(C:\ProgramData),
        C(D:\)) is an error that changes nothing, so a typo cannot re-ACL a tree.
    type: path
  quarantine_retention_days:
    description:
      - Quarantines older than this many days are deleted at the end of a run
        (0 keeps them forever). Only folders named like a quarantine id are touched.
    type: int
    default: 30
  stop_broker:
    description:
      - Stop the user's C(Microsoft.AAD.BrokerPlugin) processes before moving the files,
        so locked files can be moved.
    type: bool
    default: false
notes:
  - Supports check mode (lists the files and the locks, moves nothing) and diff mode
    (file counts per user and cache).
  - Undo with O(state=restored) and the RV(quarantine_id) of the run; see
    C(docs/rungs/win_token_broker_cache.md).
  - A quarantine (not in check mode) is recorded as the C(reset_token_broker) repair under
    C(HKLM:\SOFTWARE\m365ops\activation\Repairs), so the next diagnosis after the restart
    stops counting the AAD errors logged before it; O(state=restored) removes that record.
seealso:
  - module: m365ops.activation.win_reboot_if_needed
"""

EXAMPLES = r"""
- name: Quarantine the TokenBroker caches of every profile that has some
  m365ops.activation.win_token_broker_cache:
    stop_broker: true
  register: tb

- name: Put them back
  m365ops.activation.win_token_broker_cache:
    state: restored
    quarantine_id: "{{ tb.quarantine_id }}"
"""

RETURN = r"""
quarantine_root:
  description: Folder holding the quarantines.
  returned: always
  type: str
  sample: C:\ProgramData\m365ops\activation\quarantine
quarantine_id:
  description: Id of the quarantine created (null when nothing was moved) or restored.
  returned: always
  type: str
  sample: 20261126T181500Z-3fa2c9d1
quarantine_path:
  description: Folder of that quarantine.
  returned: always
  type: str
  sample: C:\ProgramData\m365ops\activation\quarantine\20261126T181500Z-3fa2c9d1
users:
  description: One entry per processed user (state absent).
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
      description: C(moved), C(unchanged), C(locked) or C(failed).
      type: str
      sample: moved
    files:
      description: Files moved (in check mode, to be moved), each with C(cache), C(original_path), C(size), C(sha256).
      type: list
      elements: dict
    locked:
      description: Files that were in use.
      type: list
      elements: str
    broker_stopped:
      description: Whether broker processes of the user were stopped.
      type: bool
    message:
      description: Details for locked or failed users.
      type: str
    refused:
      description: >-
        This user's paths that were not followed because they are (or are below) a junction
        or symbolic link, each with C(path) and C(reason).
      type: list
      elements: dict
moved_count:
  description: Number of files moved.
  returned: when state is absent
  type: int
  sample: 5
files:
  description: >-
    Per file of the quarantine, C(original_path), C(user_sid), C(status) (C(restored),
    C(already_present), C(conflict), C(missing), C(hash_mismatch), C(refused)) and C(message).
  returned: when state is restored
  type: list
  elements: dict
restored_count:
  description: Number of files restored.
  returned: when state is restored
  type: int
  sample: 5
refused:
  description:
    - Paths refused because they are (or are below) a junction or symbolic link, with the
      reason; nothing was read, moved, deleted or restored through them. Also given as
      warnings. With O(state=absent) each user's own are in RV(users[].refused) as well.
  returned: always
  type: list
  elements: dict
  sample: [{"path": "C:\\Users\\alice\\AppData\\Local\\Packages\\Microsoft.AAD.BrokerPlugin_cw5n1h2txyewy\\AC\\TokenBroker\\Accounts\\x",
            "reason": "junction or symbolic link: not followed"}]
pruned:
  description: Ids of the quarantines deleted by O(quarantine_retention_days).
  returned: always
  type: list
  elements: str
  sample: ["20261020T080000Z-0a1b2c3d"]
reboot_required:
  description: Whether a restart is needed (files moved or restored); the pending-reboot marker is set too, outside check mode.
  returned: always
  type: bool
  sample: true
msg:
  description: Set when no profile had cache files.
  returned: sometimes
  type: str
"""
