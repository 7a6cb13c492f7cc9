# -*- coding: utf-8 -*-
# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side action writing report.json and report.md (docs: modules/activation_report.py)."""

from __future__ import annotations

import json
import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.m365ops.activation.plugins.plugin_utils.report import (
    HTML_NAME, JSON_NAME, KINDS, MD_NAME, artifact_of, build_report, find_report, host_line, report_folder,
    write_report,
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    ARGUMENT_SPEC = {
        'kind': {'type': 'str', 'choices': list(KINDS)},
        'hosts': {'type': 'dict'},
        'report_file': {'type': 'path'},
        'report_dir': {'type': 'path', 'required': True},
        'from_check_mode': {'type': 'bool', 'default': False},
    }
    MUTUALLY_EXCLUSIVE = [('report_file', 'kind'), ('report_file', 'hosts'), ('report_file', 'from_check_mode')]
    REQUIRED_ONE_OF = [('report_file', 'kind')]
    REQUIRED_TOGETHER = [('kind', 'hosts')]

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(
            argument_spec=self.ARGUMENT_SPEC, mutually_exclusive=self.MUTUALLY_EXCLUSIVE,
            required_one_of=self.REQUIRED_ONE_OF, required_together=self.REQUIRED_TOGETHER)
        # Relative to where ansible-playbook was started, as a user typing
        # -e report_dir=./reports expects.
        try:
            if args['report_file']:
                report = _load_report(os.path.abspath(args['report_file']))
            else:
                report = build_report(args['kind'], args['hosts'], check_mode=args['from_check_mode'])
        except ValueError as exc:
            raise AnsibleActionFail(str(exc)) from exc
        # A check-mode report never replaces the report of a real run: it has a folder of its own.
        report_dir = report_folder(os.path.abspath(args['report_dir']), report)
        paths = {name: os.path.join(report_dir, filename)
                 for name, filename in (('json', JSON_NAME), ('md', MD_NAME), ('html', HTML_NAME))}
        # A report that says the same as the one already there (bar its timestamp) is no
        # change: a second run over a fleet that did not move must report changed=false, or
        # idempotence checks (molecule, AWX) would flag every run.
        changed = not _same_report(paths['json'], report)
        if changed and not self._task.check_mode:
            try:
                paths = write_report(report, report_dir)
            except (OSError, ValueError) as exc:
                raise AnsibleActionFail('report_dir: cannot write the report under %s: %s' % (report_dir, exc)) from exc
        result.update(changed=changed, report=report, paths=paths, artifact=artifact_of(report),
                      lines=[host_line(name, entry) for name, entry in report['hosts'].items()])
        return result


def _load_report(path):
    try:
        with open(path, encoding='utf-8') as handle:
            document = json.load(handle)
    except OSError as exc:
        raise ValueError('report_file: cannot read %s: %s' % (path, exc)) from exc
    except ValueError as exc:
        raise ValueError('report_file: %s is not JSON: %s' % (path, exc)) from exc
    report = find_report(document)
    # Validated and summarised again, as a report built here would be.
    rebuilt = build_report(report['kind'], report['hosts'], generated=report.get('generated'),
                           check_mode=report.get('check_mode') is True)
    if report.get('truncated'):
        rebuilt['truncated'] = True
    return rebuilt


def _same_report(json_path, report):
    try:
        with open(json_path, encoding='utf-8') as handle:
            previous = json.load(handle)
    except (OSError, ValueError):
        return False
    if not isinstance(previous, dict):
        return False
    # Round-trip through JSON so tuples and the like compare as what was written.
    current = json.loads(json.dumps(report))
    return {k: v for k, v in previous.items() if k != 'generated'} == {k: v for k, v in current.items() if k != 'generated'}
