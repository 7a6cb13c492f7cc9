# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os
from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail

from ansible_collections.m365ops.activation.plugins.action.activation_report import ActionModule

HOSTS = {'PC1': {'join_type': 'hybrid_joined', 'plan': ['reset_token_broker'],
                 'findings': [{'id': 'prt_missing', 'severity': 'high', 'summary': 's', 'evidence': [],
                               'rung': 'reset_token_broker'}]},
         'PC2': {'error': 'PC2/dsregcmd_status.txt: empty'}}


def action(args, check_mode=False):
    task = MagicMock()
    task.args = args
    task.check_mode = check_mode
    task.async_val = 0
    task.action = 'm365ops.activation.activation_report'
    connection = MagicMock()
    connection._shell.tmpdir = None
    return ActionModule(task, connection, MagicMock(), MagicMock(), MagicMock(), MagicMock())


def test_writes_the_report(tmp_path):
    result = action({'kind': 'triage', 'hosts': HOSTS, 'report_dir': str(tmp_path / 'out')}).run(task_vars={})
    assert result['changed'] is True
    assert result['paths'] == {'json': str(tmp_path / 'out' / 'report.json'), 'md': str(tmp_path / 'out' / 'report.md'),
                               'html': str(tmp_path / 'out' / 'report.html')}
    with open(result['paths']['json'], encoding='utf-8') as handle:
        assert json.load(handle) == result['report']
    assert result['report']['summary'] == {'hosts': 2, 'healthy': 0, 'with_findings': 1, 'errors': 1,
                                           'rungs': {'reset_token_broker': 1}}
    assert os.path.isfile(result['paths']['md'])


def test_relative_report_dir_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = action({'kind': 'diagnose', 'hosts': {}, 'report_dir': 'reports'}).run(task_vars={})
    assert result['paths']['json'] == str(tmp_path / 'reports' / 'report.json')
    assert (tmp_path / 'reports' / 'report.md').is_file()


def test_same_report_again_is_no_change(tmp_path):
    args = {'kind': 'triage', 'hosts': HOSTS, 'report_dir': str(tmp_path / 'out')}
    first = action(args).run(task_vars={})
    written = (tmp_path / 'out' / 'report.json').read_text(encoding='utf-8')
    second = action(args).run(task_vars={})
    assert (first['changed'], second['changed']) == (True, False)
    assert (tmp_path / 'out' / 'report.json').read_text(encoding='utf-8') == written
    moved = dict(HOSTS, PC3={'join_type': 'entra_joined', 'findings': [], 'plan': []})
    assert action(dict(args, hosts=moved)).run(task_vars={})['changed'] is True
    assert 'PC3' in json.loads((tmp_path / 'out' / 'report.json').read_text(encoding='utf-8'))['hosts']


def test_check_mode_writes_nothing(tmp_path):
    result = action({'kind': 'triage', 'hosts': HOSTS, 'report_dir': str(tmp_path / 'out')}, check_mode=True).run(task_vars={})
    assert result['changed'] is True
    assert result['report']['kind'] == 'triage'
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('args, message', [
    ({'kind': 'audit', 'hosts': {}, 'report_dir': '/tmp/x'}, 'kind'),
    ({'kind': 'triage', 'report_dir': '/tmp/x'}, 'hosts'),
    ({'kind': 'triage', 'hosts': {}}, 'report_dir'),
    ({'kind': 'triage', 'hosts': {'PC1': 'fine'}, 'report_dir': '/tmp/x'}, "hosts: entry for 'PC1' must be a mapping"),
])
def test_bad_arguments_name_the_parameter(args, message):
    with pytest.raises(AnsibleActionFail, match=message):
        action(args).run(task_vars={})


def test_unwritable_report_dir(tmp_path):
    (tmp_path / 'file').write_text('x')
    with pytest.raises(AnsibleActionFail, match='report_dir: cannot write the report'):
        action({'kind': 'triage', 'hosts': HOSTS, 'report_dir': str(tmp_path / 'file')}).run(task_vars={})


def test_a_check_mode_report_never_replaces_a_real_one(tmp_path):
    """The roles write a dry run's report too (the task runs with check_mode: false): it goes
    to the check/ subfolder, says check mode in the JSON, its summary (the job artifacts),
    report.md and the top of report.html, and leaves the real run's report as it was."""
    out = tmp_path / 'out'
    real = action({'kind': 'remediate', 'hosts': HOSTS, 'report_dir': str(out)}).run(task_vars={})
    written = (out / 'report.json').read_text(encoding='utf-8')
    dry = action({'kind': 'remediate', 'hosts': {'PC1': HOSTS['PC1']}, 'report_dir': str(out),
                  'from_check_mode': True}).run(task_vars={})
    assert (out / 'report.json').read_text(encoding='utf-8') == written
    assert 'check_mode' not in real['report'] and 'check_mode' not in real['report']['summary']
    assert 'class="check"' not in (out / 'report.html').read_text(encoding='utf-8')
    assert 'check mode' not in (out / 'report.md').read_text(encoding='utf-8').lower()
    assert dry['paths'] == {name: str(out / 'check' / ('report.%s' % name)) for name in ('json', 'md', 'html')}
    assert dry['report']['check_mode'] is True and dry['report']['summary']['check_mode'] is True
    assert dry['artifact']['check_mode'] is True and dry['artifact']['summary']['check_mode'] is True
    assert json.loads((out / 'check' / 'report.json').read_text(encoding='utf-8'))['check_mode'] is True
    assert (out / 'check' / 'report.md').read_text(encoding='utf-8').startswith(
        '# m365ops.activation remediate report (check mode)\n\n**Check mode**: a dry run (`--check`)')
    html = (out / 'check' / 'report.html').read_text(encoding='utf-8')
    body = html[html.index('<body>'):]
    assert body.startswith('<body><h1>m365ops.activation remediate report (check mode)</h1><p class="check">Check mode:')


def test_a_check_mode_report_rendered_again_keeps_its_flag_and_its_folder(tmp_path):
    dry = action({'kind': 'diagnose', 'hosts': HOSTS, 'report_dir': str(tmp_path / 'job'),
                  'from_check_mode': True}).run(task_vars={})
    artifacts = tmp_path / 'artifacts.json'
    artifacts.write_text(json.dumps({'m365_report': dry['artifact']}), encoding='utf-8')
    again = action({'report_file': str(artifacts), 'report_dir': str(tmp_path / 'again')}).run(task_vars={})
    assert again['report']['check_mode'] is True
    assert again['paths']['html'] == str(tmp_path / 'again' / 'check' / 'report.html')
    assert not (tmp_path / 'again' / 'report.json').exists()


def test_one_line_per_host_counts_problems_only(tmp_path):
    """A healthy host whose only finding is informational reads healthy, not "1 finding(s)"."""
    hosts = dict(HOSTS, PC3={'join_type': 'hybrid_joined', 'plan': [],
                             'findings': [{'id': 'device_healthy', 'severity': 'info', 'summary': 's', 'evidence': [],
                                           'rung': None}]},
                 PC4={'unreachable': True, 'error': 'ntlm: the specified credentials were rejected by the server'})
    result = action({'kind': 'diagnose', 'hosts': hosts, 'report_dir': str(tmp_path)}).run(task_vars={})
    assert result['lines'] == [
        'PC1: hybrid_joined; findings: prt_missing; plan: reset_token_broker',
        'PC2: ERROR PC2/dsregcmd_status.txt: empty',
        'PC3: hybrid_joined; healthy; plan: nothing to do',
        'PC4: UNREACHABLE ntlm: the specified credentials were rejected by the server',
    ]


# --- sliced runs (docs/reports.md, "Sliced jobs") ------------------------------------------------

def with_templar(module):
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    module._templar = Templar(loader=DataLoader())
    return module


def test_a_slice_records_what_awx_and_the_runner_tell_it(tmp_path):
    """Under AWX the report carries the job's id and the workflow job's (its extra vars); a
    runner that slices the inventory itself adds job_slice_number and job_slice_count."""
    args = {'kind': 'diagnose', 'hosts': HOSTS, 'report_dir': str(tmp_path / 'awx')}
    awx = with_templar(action(args)).run(task_vars={'awx_job_id': 43, 'awx_workflow_job_id': 41})
    assert awx['report']['slice'] == {'number': None, 'count': None, 'job_id': 43, 'workflow_job_id': 41}
    assert awx['artifact']['slice'] == awx['report']['slice']
    runner = with_templar(action(dict(args, report_dir=str(tmp_path / 'runner')))).run(
        task_vars={'job_slice_number': '2', 'job_slice_count': '3'})
    assert runner['report']['slice']['number'] == 2
    assert 'Slice 2 of 3' in (tmp_path / 'runner' / 'report.md').read_text(encoding='utf-8')
    plain = with_templar(action(dict(args, report_dir=str(tmp_path / 'plain')))).run(task_vars={})
    assert 'slice' not in plain['report']
    with pytest.raises(AnsibleActionFail, match=r'^job_slice_number: 4 is beyond job_slice_count 3$'):
        with_templar(action(args)).run(task_vars={'job_slice_number': 4, 'job_slice_count': 3})


def write_slice(folder, number, hosts, **run_slice):
    args = {'kind': 'diagnose', 'hosts': hosts, 'report_dir': str(folder),
            'slice': dict({'number': number, 'count': 2, 'job_id': 100 + number}, **run_slice)}
    return action(args).run(task_vars={})['paths']['json']


def test_report_files_merge_the_slices(tmp_path):
    first = write_slice(tmp_path / 's1', 1, {'PC1': HOSTS['PC1']})
    second = write_slice(tmp_path / 's2', 2, {'PC2': HOSTS['PC2']})
    result = action({'report_files': [second, first], 'report_dir': str(tmp_path / 'fleet')}).run(task_vars={})
    assert result['report']['summary'] == {'hosts': 2, 'healthy': 0, 'with_findings': 1, 'errors': 1,
                                           'rungs': {'reset_token_broker': 1}}
    assert [s['number'] for s in result['report']['slices']] == [1, 2]
    assert 'Fleet report merged from 2 slices' in (tmp_path / 'fleet' / 'report.md').read_text(encoding='utf-8')
    assert 'warnings' not in result


def test_report_files_missing_a_slice(tmp_path):
    first = write_slice(tmp_path / 's1', 1, {'PC1': HOSTS['PC1']})
    with pytest.raises(AnsibleActionFail, match=r'^report_files: slice 2 of 2 missing \(given: 1\)'):
        action({'report_files': [first], 'report_dir': str(tmp_path / 'fleet')}).run(task_vars={})
    assert not (tmp_path / 'fleet').exists()
    result = action({'report_files': [first], 'allow_missing_slices': True,
                     'report_dir': str(tmp_path / 'fleet')}).run(task_vars={})
    assert result['report']['slices_missing'] == [2]
    assert result['warnings'] == ['report_files: slice(s) 2 missing: the fleet report covers the slices given only']


@pytest.mark.parametrize('extra, message', [
    ({'kind': 'diagnose'}, 'mutually exclusive'),
    ({'report_file': 'x.json'}, 'mutually exclusive'),
])
def test_report_files_exclude_the_other_sources(tmp_path, extra, message):
    with pytest.raises(AnsibleActionFail, match=message):
        action(dict({'report_files': ['a.json'], 'report_dir': str(tmp_path)}, **extra)).run(task_vars={})


def test_report_files_unreadable_names_the_file(tmp_path):
    with pytest.raises(AnsibleActionFail, match=r'^report_files: .*nope\.json: cannot read'):
        action({'report_files': [str(tmp_path / 'nope.json')], 'report_dir': str(tmp_path)}).run(task_vars={})
