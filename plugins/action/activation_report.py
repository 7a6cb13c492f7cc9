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
    HTML_NAME, JSON_NAME, KINDS, MD_NAME, artifact_of, build_report, host_line, load_report, merge_reports,
    report_folder, write_report,
)
from ansible_collections.m365ops.activation.plugins.plugin_utils.report_slices import SLICE_VARIABLES, slice_from_variables


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
        'slice': {'type': 'dict'},
        'report_files': {'type': 'list', 'elements': 'path'},
        'allow_missing_slices': {'type': 'bool', 'default': False},
    }
    MUTUALLY_EXCLUSIVE = [('report_file', 'kind', 'report_files'), ('report_file', 'hosts', 'report_files'),
                          ('report_file', 'from_check_mode', 'report_files'), ('report_file', 'slice', 'report_files')]
    REQUIRED_ONE_OF = [('report_file', 'kind', 'report_files')]
    REQUIRED_TOGETHER = [('kind', 'hosts')]

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(
            argument_spec=self.ARGUMENT_SPEC, mutually_exclusive=self.MUTUALLY_EXCLUSIVE,
            required_one_of=self.REQUIRED_ONE_OF, required_together=self.REQUIRED_TOGETHER)
        # Relative to where ansible-playbook was started, as a user typing
        # -e report_dir=./reports expects.
        try:
            if args['report_files']:
                report = merge_reports([(path, _load_report(os.path.abspath(path), 'report_files: %s' % path))
                                        for path in args['report_files']],
                                       allow_missing=args['allow_missing_slices'])
            elif args['report_file']:
                report = _load_report(os.path.abspath(args['report_file']))
            else:
                report = build_report(args['kind'], args['hosts'], check_mode=args['from_check_mode'],
                                      run_slice=args['slice'] if args['slice'] is not None
                                      else self._run_slice(task_vars or {}))
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
        if report.get('slices_missing'):
            result['warnings'] = ['report_files: slice(s) %s missing: the fleet report covers the slices given only'
                                  % ', '.join(str(n) for n in report['slices_missing'])]
        result.update(changed=changed, report=report, paths=paths, artifact=artifact_of(report),
                      lines=[host_line(name, entry) for name, entry in report['hosts'].items()])
        return result

    def _run_slice(self, task_vars):
        """This run's slice identity from its variables (AWX's extra vars; job_slice_number and
        job_slice_count where the runner passes them)."""
        names = [name for names in SLICE_VARIABLES.values() for name in names if name in task_vars]
        return slice_from_variables({name: self._templar.template(task_vars[name]) for name in names})


def _load_report(path, name='report_file'):
    try:
        with open(path, encoding='utf-8') as handle:
            document = json.load(handle)
    except OSError as exc:
        raise ValueError('%s: cannot read %s: %s' % (name, path, exc)) from exc
    except ValueError as exc:
        raise ValueError('%s: %s is not JSON: %s' % (name, path, exc)) from exc
    return load_report(document, name)


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
