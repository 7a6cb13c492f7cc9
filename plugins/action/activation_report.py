# -*- coding: utf-8 -*-
# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side action writing report.json and report.md (docs: modules/activation_report.py)."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.m365ops.activation.plugins.module_utils.report import (
    HTML_NAME, JSON_NAME, KINDS, MD_NAME, build_report, write_report,
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    ARGUMENT_SPEC = {
        'kind': {'type': 'str', 'required': True, 'choices': list(KINDS)},
        'hosts': {'type': 'dict', 'required': True},
        'report_dir': {'type': 'path', 'required': True},
    }

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        # Relative to where ansible-playbook was started, as a user typing
        # -e report_dir=./reports expects.
        report_dir = os.path.abspath(args['report_dir'])
        try:
            report = build_report(args['kind'], args['hosts'])
        except ValueError as exc:
            raise AnsibleActionFail(str(exc)) from exc
        paths = {name: os.path.join(report_dir, filename)
                 for name, filename in (('json', JSON_NAME), ('md', MD_NAME), ('html', HTML_NAME))}
        if not self._task.check_mode:
            try:
                paths = write_report(report, report_dir)
            except (OSError, ValueError) as exc:
                raise AnsibleActionFail('report_dir: cannot write the report under %s: %s' % (report_dir, exc)) from exc
        result.update(changed=True, report=report, paths=paths)
        return result
