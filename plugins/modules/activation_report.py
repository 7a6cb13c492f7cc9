#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds the documentation only; the work is done by the action plugin of the
# same name on the controller.

from __future__ import annotations

DOCUMENTATION = r'''
---
module: activation_report
short_description: Write the collection's report.json, report.md and report.html
version_added: 0.1.0
description:
  - Builds the report every playbook of the collection writes (triage, diagnose,
    remediate, tenant) from a mapping of host name to result, adds the summary counts,
    and writes C(report.json), a readable C(report.md) and a self-contained C(report.html)
    (inline CSS and SVG charts, no external resources) under O(report_dir).
  - Runs on the controller; no connection to the managed hosts is made.
  - Reports C(changed) only when the new report differs from the C(report.json) already in
    O(report_dir) in anything but its C(generated) time; an unchanged report is not rewritten.
  - The report shape is described in C(docs/development.md) of the collection.
  - Returns RV(artifact), the report as the roles publish it in the job artifacts with
    M(ansible.builtin.set_stats), which is what survives an AWX job in an execution
    environment (C(docs/reports.md)).
  - Returns RV(lines), one line per host for the console.
  - With O(report_file) instead of O(kind) and O(hosts), renders an existing report again from
    a C(report.json), the C(artifacts) of an AWX job, or the C(playbook_on_stats) event
    ansible-runner leaves under C(artifacts/<ident>/job_events/).
options:
  kind:
    description:
      - Which playbook the report belongs to. Required unless O(report_file) is given.
    type: str
    choices: [triage, diagnose, remediate, tenant]
  hosts:
    description:
      - Mapping of host name to its entry, V({join_type, findings, plan}) (remediate adds
        V(before), V(after), V(outcome), V(rungs_run)), or V({error}) for a host whose
        evidence could not be used. Required unless O(report_file) is given.
    type: dict
  report_file:
    description:
      - A JSON file holding a report to render again instead of building one from O(kind) and
        O(hosts), namely a C(report.json), AWX job artifacts (a mapping with C(m365_report)), or an
        ansible-runner C(playbook_on_stats) event. A relative path is relative to the
        directory C(ansible-playbook) was started from.
    type: path
  report_dir:
    description:
      - Folder for C(report.json), C(report.md) and C(report.html); created when missing. A relative path
        is relative to the directory C(ansible-playbook) was started from.
    type: path
    required: true
  from_check_mode:
    description:
      - The report of a check-mode (C(--check)) run. It says so (C(check_mode=true) on the report and
        its summary, a line at the top of C(report.md) and C(report.html)) and is written to the
        C(check) subfolder of O(report_dir), so a dry run never replaces the report of a real run.
      - The roles pass C(ansible_check_mode) and run this task with C(check_mode=false), so that a
        dry run leaves its report too. A report read from O(report_file) keeps its own flag and
        goes to the same subfolder when it has it.
    type: bool
    default: false
attributes:
  check_mode:
    description: In check mode the report is built and returned but no file is written.
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
- name: Write the triage report
  m365ops.activation.activation_report:
    kind: triage
    hosts: "{{ triage.hosts }}"
    report_dir: ./reports
  register: report

- name: Say where it went
  ansible.builtin.debug:
    msg: "{{ report.paths.md }}: {{ report.report.summary.with_findings }} host(s) need work"
'''

RETURN = r'''
report:
  description: The report written, including the summary.
  returned: always
  type: dict
  contains:
    kind:
      description: The O(kind) given.
      type: str
      sample: triage
    generated:
      description: UTC time the report was built, ISO-8601.
      type: str
      sample: "2026-11-26T18:00:00Z"
    hosts:
      description: The host entries, sorted by host name.
      type: dict
    summary:
      description:
        - Counts of hosts, healthy hosts, hosts with findings, errors, and of each planned rung.
        - V(check_mode=true) for the report of a check-mode run.
      type: dict
      sample: {"hosts": 3, "healthy": 1, "with_findings": 1, "errors": 1, "rungs": {"reset_token_broker": 1}}
    check_mode:
      description: Present (V(true)) only in the report of a check-mode run (O(from_check_mode)).
      type: bool
      sample: true
artifact:
  description:
    - The report as the roles publish it in the job artifacts (C(set_stats) key C(m365_report)) -
      the whole report when its JSON is at most 512000 bytes (below AWX's 700000-byte event
      limit), else each host cut to its outcome, plan, finding ids and error, with V(truncated=true).
  returned: always
  type: dict
lines:
  description:
    - One line per host, as the offline triage prints them - join type, the finding ids of
      medium severity or worse (an informational finding is not counted), the plan - or
      V(UNREACHABLE) / V(ERROR) with the error.
  returned: always
  type: list
  elements: str
  sample: ["PC042: hybrid_joined; healthy; plan: nothing to do", "PC043: UNREACHABLE ntlm: the specified credentials were rejected by the server"]
paths:
  description:
    - Paths of the report files (in check mode, where they would be written).
    - Under the C(check) subfolder of O(report_dir) for a check-mode report.
  returned: always
  type: dict
  sample: {"json": "/srv/reports/report.json", "md": "/srv/reports/report.md", "html": "/srv/reports/report.html"}
'''
