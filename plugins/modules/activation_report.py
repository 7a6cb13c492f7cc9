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
  - Records which slice of a sliced run (AWX/AAP C(job_slice_count)) the report covers, as
    C(slice) (C(number), C(count), C(job_id), C(workflow_job_id); unknown ones null). Unless
    O(slice) is given, it is read from the run's variables - C(awx_job_id) and
    C(awx_workflow_job_id), which AWX passes every job (or their C(tower_) spellings), and
    C(job_slice_number) and C(job_slice_count), which AWX does not pass (they are fields of the
    job in its API) but a runner slicing the inventory itself can. A report of a run outside
    AWX, unsliced, has no C(slice).
  - With O(report_files), merges the reports of the slices of one sliced run into one fleet
    report whose summary is the sum of the slices' (C(slices) lists them; C(docs/reports.md),
    "Sliced jobs").
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
  report_files:
    description:
      - The reports of the slices of one sliced run, to merge into one fleet report instead of
        building one from O(kind) and O(hosts). Each file is what O(report_file) takes; the job
        document of an AWX slice job (C(awx jobs get N -f json), C(GET /api/v2/jobs/N/)) also
        gives the slice number and count, which AWX does not tell the playbook.
      - Refused, naming the files, are reports of different kinds, a check-mode report with a
        real one, slices of different runs (slice count or workflow job), a slice or an AWX job
        given twice, a host in two slices, a report with no slice identity, a merged report,
        and slices missing from a known count unless O(allow_missing_slices).
      - A relative path is relative to the directory C(ansible-playbook) was started from.
    type: list
    elements: path
  allow_missing_slices:
    description:
      - With O(report_files), merge even when some slices of a known count are missing; the fleet
        report lists them in C(slices_missing), says so at its top, and the task warns.
    type: bool
    default: false
  slice:
    description:
      - Which slice of a sliced run this report covers, instead of reading it from the run's
        variables. Mapping with C(number) and C(count) (together, C(number) at most C(count)),
        C(job_id) and C(workflow_job_id), whole numbers from 1; all optional.
      - Not with O(report_file) or O(report_files).
    type: dict
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

- name: Merge the reports of two slices into the fleet report
  m365ops.activation.activation_report:
    report_files:
      - slices/job-43.json
      - slices/job-44.json
    report_dir: ./reports/fleet
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
    slice:
      description:
        - Which slice of a sliced run (or which AWX job) the report covers; absent for an unsliced
          run outside AWX. Under AWX C(number) and C(count) are null (AWX does not tell the
          playbook; the merge reads them from the job documents).
      type: dict
      sample: {"number": 2, "count": 4, "job_id": 43, "workflow_job_id": 41}
    slices:
      description:
        - Present only in a merged fleet report (O(report_files)) - each slice's identity, C(file),
          C(generated) and C(hosts) (its host count), by slice number.
      type: list
      elements: dict
    slices_missing:
      description: Slice numbers of a known count that were not merged (O(allow_missing_slices)).
      type: list
      elements: int
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
