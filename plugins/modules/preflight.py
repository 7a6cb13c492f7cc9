#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds the documentation only; the work is done by the action plugin of the
# same name on the controller.

from __future__ import annotations

DOCUMENTATION = r'''
---
module: preflight
short_description: Refuse a run with misspelled variables or a target that matches no host
version_added: 0.1.0
description:
  - The first step of the collection's playbooks, before any host is contacted.
  - With O(prefixes), fails when an extra variable (C(-e), an AWX survey answer) or an
    inventory variable of the targeted hosts (group_vars, host_vars, the inventory file)
    starts with one of the prefixes but is not a variable of the collection, and names the
    closest known variable. A misspelled C(remediate_rebot=false) would otherwise be ignored
    and C(remediate_reboot) keep its default.
  - Known variables are those a role of the collection declares (C(meta/argument_specs.yml),
    C(defaults/main.yml)) or a template of one of its playbooks reads, and the C(survey_*)
    variables a template of the running play reads (an AWX project playbook that imports
    a playbook of the collection maps its survey answers in the imported play's C(vars)).
  - With O(target), fails when the host pattern, with the C(--limit) of the run, selects no
    host of the inventory, so a mistyped host name cannot end in a run that did nothing and
    reports success.
  - Runs on the controller; no connection to any host is made and nothing is changed.
options:
  prefixes:
    description:
      - Variable name prefixes to check, for example V(remediate_) and V(survey_).
      - Empty checks no variable.
    type: list
    elements: str
    default: []
  target:
    description:
      - The host pattern the playbook's play runs on (a group, a host name, a pattern, or a list of them).
      - Not given, no target is checked.
    type: raw
  candidates:
    description:
      - Match O(target) against these host names instead of the inventory's hosts (the
        tenant check picks hosts of a diagnose report this way). A name the inventory holds
        is matched with its groups; any other by its name and wildcards. C(--limit) does not apply.
    type: list
    elements: str
  candidates_from:
    description: Where O(candidates) come from, for the failure message.
    type: str
attributes:
  check_mode:
    description: Reads the run's own data only; runs the same in check mode.
    support: full
  diff_mode:
    description: No diff is returned.
    support: none
  action:
    description: Implemented as an action plugin running on the controller.
    support: full
notes:
  - The playbooks of the collection run it in a first play on V(localhost:all) with
    C(run_once), so that it runs whatever C(--limit) is given and even when the target matches nothing.
author:
  - m365ops maintainers (@m365ops)
'''

EXAMPLES = r'''
- name: Check the variables and the target before contacting any host
  m365ops.activation.preflight:
    prefixes: [remediate_, survey_]
    target: "{{ target | default('m365_clients') }}"
  run_once: true
  delegate_to: localhost

- name: Which hosts of a diagnose report the target selects
  m365ops.activation.preflight:
    target: "{{ target }}"
    candidates: "{{ report.hosts.keys() | list }}"
    candidates_from: the diagnose report
  register: picked
'''

RETURN = r'''
hosts:
  description: The hosts O(target) selects (with O(candidates), those of the candidates); V([]) without O(target).
  returned: always
  type: list
  elements: str
  sample: ["PC042", "PC043"]
unknown:
  description: The unknown variables, each with where it came from and the closest known name (V(null) when none is close).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "remediate_rebot", "source": "extra vars", "closest": "remediate_reboot"}]
'''
