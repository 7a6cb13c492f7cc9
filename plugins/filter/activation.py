# -*- coding: utf-8 -*-
# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters exposing the offline analysis (plugin_utils dsreg, aad_events, evidence,
triage, ladder) to playbooks. Each filter is documented in the .yml file of its name."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.m365ops.activation.plugins.plugin_utils.aad_events import (
    classify_code, normalise_event_records, parse_event_export,
)
from ansible_collections.m365ops.activation.plugins.plugin_utils.dsreg import parse_dsreg_status
from ansible_collections.m365ops.activation.plugins.plugin_utils.evidence import EvidenceError, build_evidence
from ansible_collections.m365ops.activation.plugins.plugin_utils.report import host_failure, to_plain
from ansible_collections.m365ops.activation.plugins.plugin_utils.ladder import plan_of
from ansible_collections.m365ops.activation.plugins.plugin_utils.triage import evaluate


def dsreg_status(text):
    """``dsregcmd /status`` text (a string or a list of lines) -> parsed dict."""
    if isinstance(text, (list, tuple)):
        # win_command's stdout_lines, or a PowerShell string array
        text = '\n'.join(str(line) for line in text)
    if not isinstance(text, str):
        raise AnsibleFilterError('dsreg_status: expected the text of dsregcmd /status, got %s'
                                 % type(text).__name__)
    return parse_dsreg_status(str(text))


def aad_classify(code):
    """Hex error code -> {code, known, name, meaning, source, category}."""
    try:
        return classify_code(code if isinstance(code, int) else str(code))
    except ValueError as exc:
        raise AnsibleFilterError('aad_classify: %s' % exc) from exc


def aad_events(data):
    """AAD Operational export (JSON text, or the already loaded list/object) -> normalised events."""
    try:
        if isinstance(data, str):
            return normalise_event_records(parse_event_export(str(data)))
        if isinstance(data, Mapping):
            data = [data]
        return normalise_event_records(to_plain(data))
    except ValueError as exc:
        raise AnsibleFilterError('aad_events: %s' % exc) from exc


def _evidence(value, events=None, host_facts=None, name='activation_evidence'):
    try:
        if isinstance(value, str):
            records = parse_event_export(str(events)) if isinstance(events, str) else to_plain(events)
            return build_evidence(str(value), records, to_plain(host_facts) if host_facts is not None else None)
        if isinstance(value, Mapping) and 'dsreg' in value:
            return to_plain(value)
    except (EvidenceError, ValueError) as exc:
        raise AnsibleFilterError('%s: %s' % (name, exc)) from exc
    raise AnsibleFilterError('%s: expected dsregcmd /status text or an evidence dict, got %s'
                             % (name, type(value).__name__))


def activation_evidence(dsregcmd_text, events=None, host_facts=None):
    """dsregcmd text (+ event export, + host facts) -> the evidence dict the rules read."""
    return _evidence(dsregcmd_text, events, host_facts)


def activation_evaluate(value, events=None, host_facts=None):
    """Evidence (or dsregcmd text) -> {join_type, ..., findings, plan}."""
    evidence = _evidence(value, events, host_facts, 'activation_evaluate')
    try:
        return evaluate(evidence)
    except ValueError as exc:
        raise AnsibleFilterError('activation_evaluate: %s' % exc) from exc


def activation_plan(value, events=None, host_facts=None):
    """Findings list, an evaluate() result, evidence, or dsregcmd text -> ordered rungs."""
    if isinstance(value, (list, tuple)):
        return plan_of(to_plain(value))
    if isinstance(value, Mapping) and 'findings' in value:
        return plan_of(to_plain(value['findings']))
    return activation_evaluate(value, events, host_facts)['plan']


def report_host_failure(entry, unreachable=True, outcomes=None, plan=False, unhealthy=False):
    """Why a host's report entry fails the run ('' when it does not)."""
    if entry is not None and not isinstance(entry, Mapping):
        raise AnsibleFilterError('report_host_failure: expected a report entry (a dict), got %s' % type(entry).__name__)
    for name, value in (('unreachable', unreachable), ('plan', plan), ('unhealthy', unhealthy)):
        if not isinstance(value, bool):
            raise AnsibleFilterError('report_host_failure: %s must be a boolean, got %r' % (name, value))
    return host_failure(to_plain(entry) if entry is not None else None, unreachable=unreachable,
                        outcomes=[str(o) for o in outcomes or []], plan=plan, unhealthy=unhealthy)


class FilterModule:
    def filters(self):
        return {
            'dsreg_status': dsreg_status,
            'aad_classify': aad_classify,
            'aad_events': aad_events,
            'activation_evidence': activation_evidence,
            'activation_evaluate': activation_evaluate,
            'activation_plan': activation_plan,
            'report_host_failure': report_host_failure,
        }
