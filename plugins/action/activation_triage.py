# -*- coding: utf-8 -*-
# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side offline triage of an evidence folder (docs: modules/activation_triage.py)."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.m365ops.activation.plugins.plugin_utils.evidence import EvidenceError
from ansible_collections.m365ops.activation.plugins.plugin_utils.offline_triage import triage_dir
from ansible_collections.m365ops.activation.plugins.plugin_utils.report import summary_line


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True   # reads files only

    ARGUMENT_SPEC = {
        'evidence_dir': {'type': 'path', 'required': True},
    }

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        evidence_dir = args['evidence_dir']
        try:
            hosts = triage_dir(evidence_dir)
        except EvidenceError as exc:
            raise AnsibleActionFail('evidence_dir: %s' % exc) from exc
        # Bad hosts do not fail this task: the report still has to be written for the
        # good ones. The playbook fails at the end, naming the files in `errors`.
        result.update(
            changed=False,
            evidence_dir=os.path.abspath(evidence_dir),
            hosts=hosts,
            errors=[entry['error'] for entry in hosts.values() if entry.get('error')],
            lines=[summary_line(name, entry) for name, entry in hosts.items()],
        )
        return result
