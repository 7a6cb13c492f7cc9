# -*- coding: utf-8 -*-
# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vocabulary of the repair ladder, defined once (docs/development.md,
"Layout and ownership of shared code").

Rung names and their order, which rungs run on the host, which are left to a person and
which need a restart; finding severities; report kinds; remediate outcomes; the plan of a
set of findings; and what "healthy" means. The rules (triage), the remediate decisions
(remediation), the reports (report, report_html), the filters and the roles all read them
from here.

Pure Python, no Ansible imports.
"""

from __future__ import annotations

from collections.abc import Mapping

# Rungs a module carries out on the host, cheapest first (docs/guides/repair-ladder.md).
HOST_RUNGS = (
    'purge_office_credentials',
    'remove_extra_work_accounts',
    'reset_token_broker',
    'reregister_broker_plugin',
    'rejoin_hybrid',
)
# The module behind each host rung.
RUNG_MODULES = {
    'purge_office_credentials': 'm365ops.activation.win_credential_purge',
    'remove_extra_work_accounts': 'm365ops.activation.win_work_accounts',
    'reset_token_broker': 'm365ops.activation.win_token_broker_cache',
    'reregister_broker_plugin': 'm365ops.activation.win_aad_broker_plugin',
    'rejoin_hybrid': 'm365ops.activation.win_dsreg_join',
}
# Plan entries no module can carry out, in ladder order, and who has to act on them.
MANUAL_RUNGS = {
    'forcerecovery_cloud_joined': 'user',
    'fix_network_path': 'admin',
    'check_license': 'tenant',
    'check_device_registration_policy': 'tenant',
}
# The whole ladder: the order every plan is sorted in.
RUNGS = HOST_RUNGS + tuple(MANUAL_RUNGS)
# Host rungs that leave the host in a state a running session cannot pick up before a restart.
REBOOT_RUNGS = frozenset(('reset_token_broker', 'rejoin_hybrid'))
# Names earlier versions wrote into plans, reports and admins' variables: still read, never written.
LEGACY_RUNGS = {'check_licence': 'check_license'}

SEVERITIES = ('critical', 'high', 'medium', 'low', 'info')
# A finding at one of these severities is a problem: the host is not healthy while it stands.
PROBLEM_SEVERITIES = ('critical', 'high', 'medium')

KINDS = ('triage', 'diagnose', 'remediate', 'tenant')
OUTCOMES = ('fixed', 'improved', 'unchanged', 'failed', 'needs_user')


def canonical_rung(name):
    """The rung ``name`` stands for today (a legacy spelling mapped to its current one)."""
    return LEGACY_RUNGS.get(name, name)


def findings_of(state):
    """The findings of a diagnosis or report entry that are findings (dicts)."""
    if not isinstance(state, Mapping):
        return []
    return [f for f in state.get('findings') or [] if isinstance(f, Mapping)]


def plan_of(findings):
    """The rungs ``findings`` ask for, once each, in ladder order."""
    wanted = {canonical_rung(f.get('rung')) for f in findings or [] if isinstance(f, Mapping)}
    return [rung for rung in RUNGS if rung in wanted]


def is_problem(finding):
    """A finding that keeps a host from being healthy: one that asks for a rung, or one at a
    problem severity even when no rung can answer it (an unsupported identity policy)."""
    return isinstance(finding, Mapping) and bool(finding.get('rung') or finding.get('severity') in PROBLEM_SEVERITIES)


def state_of(entry):
    """The host state an entry reports: its own ``findings``/``plan`` (a remediate entry
    repeats its latest state at the top), else its ``after``."""
    if not isinstance(entry, Mapping):
        return {}
    if 'findings' not in entry and isinstance(entry.get('after'), Mapping):
        return entry['after']
    return entry


def has_rung_work(state):
    """Whether a rung (host or manual) is asked for: a non-empty plan or a finding with a rung.
    Narrower than "not healthy": a medium finding nobody can repair is no rung's work."""
    state = state_of(state)
    return bool(state.get('plan')) or any(f.get('rung') for f in findings_of(state))


def is_healthy(entry):
    """The one meaning of healthy, for a diagnosis, a report entry or a remediate entry: it
    carries no error, nothing is planned and no finding is a problem (``is_problem``). A host
    whose only finding is a medium one that no rung repairs is not healthy: someone has to act."""
    if not isinstance(entry, Mapping) or entry.get('error') or entry.get('unreachable'):
        return False
    state = state_of(entry)
    return not state.get('plan') and not any(is_problem(f) for f in findings_of(state))
