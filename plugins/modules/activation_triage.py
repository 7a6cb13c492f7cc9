#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds the documentation only; the work is done by the action plugin of the
# same name on the controller.

from __future__ import annotations

DOCUMENTATION = r'''
---
module: activation_triage
short_description: Offline triage of dsregcmd and AAD event evidence
version_added: 0.1.0
description:
  - Reads an evidence folder holding one sub-folder per host, each with
    C(dsregcmd_status.txt) (required), C(aad_events.json) (optional, the JSON export of the
    C(Microsoft-Windows-AAD/Operational) log from Windows PowerShell 5.1 or PowerShell 7)
    and C(host_facts.json) (optional), and turns each into findings and a repair plan.
  - Runs on the controller and needs no access to the Windows hosts.
  - A host whose evidence is missing or malformed gets an V(error) entry naming the file;
    the other hosts are still triaged and the task does not fail for it. The playbook
    decides what to do with RV(errors).
  - The findings and rungs are explained in C(docs/triage.md) of the collection.
options:
  evidence_dir:
    description:
      - Folder holding one sub-folder per host. A relative path is relative to the
        directory C(ansible-playbook) was started from.
    type: path
    required: true
attributes:
  check_mode:
    description: Only reads files, so it runs the same in check mode.
    support: full
  diff_mode:
    description: No diff is returned.
    support: none
  action:
    description: Implemented as an action plugin running on the controller.
    support: full
author:
  - m365ops maintainers (@m365ops)
'''

EXAMPLES = r'''
- name: Triage the evidence collected from the help desk tickets
  m365ops.activation.activation_triage:
    evidence_dir: /srv/evidence
  register: triage

- name: Show one line per host
  ansible.builtin.debug:
    msg: "{{ triage.lines }}"
'''

RETURN = r'''
evidence_dir:
  description: Absolute path of the folder read.
  returned: always
  type: str
  sample: /srv/evidence
hosts:
  description:
    - Host folder name to its entry. A triaged host has C(join_type), C(device_id),
      C(device_name), C(tenant_name), C(users), C(findings) and C(plan); a host whose
      evidence could not be used has only C(error).
  returned: always
  type: dict
  sample:
    PC042:
      join_type: hybrid_joined
      device_id: 3f6a2c1e-8b4d-4e7f-a9c2-5d1e0b7f3a68
      device_name: PC042.contoso.local
      tenant_name: Contoso
      users: [alice@contoso.com]
      findings:
        - id: prt_missing
          severity: high
          summary: No Primary Refresh Token for alice@contoso.com, so Office cannot sign in silently.
          evidence: ["dsregcmd (alice@contoso.com): AzureAdPrt = NO"]
          rung: reset_token_broker
      plan: [reset_token_broker]
    PC043:
      error: "/srv/evidence/PC043/dsregcmd_status.txt: empty (expected the output of dsregcmd /status)"
errors:
  description: The error of every host that could not be triaged, each naming the file at fault.
  returned: always
  type: list
  elements: str
lines:
  description: One summary line per host, for the console.
  returned: always
  type: list
  elements: str
  sample: ["PC042: hybrid_joined; findings: prt_missing; plan: reset_token_broker"]
'''
