# -*- coding: utf-8 -*-
# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""win_activation_facts: one module execution on the host, triage on the controller.

The host module returns raw texts (dsregcmd, events, host facts); this action parses them
with the same pure-Python code the offline triage uses (evidence.build_evidence +
triage.evaluate), so a live diagnosis and a re-triage of its evidence bundle agree. With
``evidence_dir`` it writes that bundle (evidence.write_bundle) under
``<evidence_dir>/<inventory_hostname>``.

The network probe's settings of a site (its national cloud's or a lab's endpoints, the
roots its TLS policy accepts) come from the inventory variable ``m365ops_network_probe``:
every ``network_probe`` key the task does not set is taken from it, so the roles, AWX job
templates and ad hoc runs all use them without a role variable of their own.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.m365ops.activation.plugins.plugin_utils.evidence import (
    EvidenceError, build_evidence, write_bundle,
)
from ansible_collections.m365ops.activation.plugins.plugin_utils.report import to_plain
from ansible_collections.m365ops.activation.plugins.plugin_utils.triage import evaluate

MODULE = 'm365ops.activation.win_activation_facts'
FACT = 'm365_activation'
PROBE_VARIABLE = 'm365ops_network_probe'
PROBE_KEYS = ('enabled', 'endpoints', 'trusted_roots', 'timeout')
# Host folder names come from inventory names; nothing that could climb out of
# evidence_dir or name a device file.
_BAD_HOST_CHARS = set('/\\\0:')


def triage_result(module_result: dict) -> dict:
    """The m365_activation fact for one module result: the triage entry, or
    ``{"error": ...}`` when the evidence cannot be triaged. Always carries the
    module's collection_errors so a partial picture is visible as such."""
    errors = list(module_result.get('collection_errors') or [])
    dsreg_errors = ['%s' % e.get('message') for e in errors
                    if isinstance(e, dict) and e.get('source') == 'dsregcmd_status']
    text = module_result.get('dsregcmd_status') or ''
    if not text.strip() and dsreg_errors:
        # Nothing to triage without the device state; say why it is missing.
        return {'error': 'dsregcmd /status could not be collected: %s' % '; '.join(dsreg_errors),
                'collection_errors': errors}
    try:
        evidence = build_evidence(text, module_result.get('aad_events'), module_result.get('host_facts'))
    except EvidenceError as exc:
        return {'error': str(exc), 'collection_errors': errors}
    entry = evaluate(evidence)
    entry['collection_errors'] = errors
    return entry


def probe_options(task_value, inventory_value) -> dict | None:
    """The module's ``network_probe``: the task's keys over the inventory variable's.
    None when neither sets anything (the module's defaults apply)."""
    merged = {}
    for name, value in ((PROBE_VARIABLE, inventory_value), ('network_probe', task_value)):
        if value is None:
            continue
        if not isinstance(value, dict):
            raise AnsibleActionFail('%s: expected a dict of %s, got %s'
                                    % (name, ', '.join(PROBE_KEYS), type(value).__name__))
        unknown = sorted(str(k) for k in value if k not in PROBE_KEYS)
        if unknown:
            raise AnsibleActionFail('%s: unknown key(s) %s (known: %s)'
                                    % (name, ', '.join(unknown), ', '.join(PROBE_KEYS)))
        merged.update({k: v for k, v in value.items() if v is not None})
    return merged or None


def host_dir_name(name: str) -> str:
    if not name or name in ('.', '..') or any(c in _BAD_HOST_CHARS for c in name):
        raise AnsibleActionFail('evidence_dir: inventory name %r cannot be used as a folder name' % (name,))
    return name


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp

        module_args = dict(self._task.args)
        evidence_dir = module_args.pop('evidence_dir', None)
        if evidence_dir is not None and not isinstance(evidence_dir, str):
            raise AnsibleActionFail('evidence_dir: expected a path string, got %s' % type(evidence_dir).__name__)
        if evidence_dir is not None and not evidence_dir.strip():
            raise AnsibleActionFail('evidence_dir: empty path')
        inventory_probe = task_vars.get(PROBE_VARIABLE)
        if inventory_probe is not None:
            inventory_probe = self._templar.template(inventory_probe)
        probe = probe_options(module_args.pop('network_probe', None), inventory_probe)
        if probe is not None:
            module_args['network_probe'] = probe

        # The one host round trip.
        module_result = self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)
        result.update(module_result)
        if result.get('failed'):
            return result

        entry = triage_result(result)
        result[FACT] = entry
        result['ansible_facts'] = {FACT: entry}
        result['changed'] = False

        if evidence_dir and 'error' not in entry:
            host = host_dir_name(str(task_vars.get('inventory_hostname') or ''))
            host_dir = os.path.join(os.path.abspath(os.path.expanduser(evidence_dir)), host)
            if self._task.check_mode:
                # Writing on the controller is still a change of state; check mode says
                # where it would go and leaves the disk alone.
                result['evidence_paths'] = []
                result['evidence_dir'] = host_dir
            else:
                try:
                    result['evidence_paths'] = write_bundle(
                        host_dir, result['dsregcmd_status'], to_plain(result.get('aad_events')),
                        to_plain(result.get('host_facts')))
                except (OSError, EvidenceError) as exc:
                    raise AnsibleActionFail('evidence_dir: cannot write the evidence bundle under %s: %s'
                                            % (host_dir, exc))
                result['evidence_dir'] = host_dir
        return result
