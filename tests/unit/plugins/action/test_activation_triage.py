# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail

from ansible_collections.m365ops.activation.plugins.action.activation_triage import ActionModule

DSREG = os.path.join(os.path.dirname(__file__), '..', 'plugin_utils', 'fixtures', 'dsreg')


def action(args, check_mode=False):
    task = MagicMock()
    task.args = args
    task.check_mode = check_mode
    task.async_val = 0
    task.action = 'm365ops.activation.activation_triage'
    connection = MagicMock()
    connection._shell.tmpdir = None
    return ActionModule(task, connection, MagicMock(), MagicMock(), MagicMock(), MagicMock())


def host(root, name, dsreg_fixture=None, dsreg_text=None, events=None):
    folder = root / name
    folder.mkdir()
    if dsreg_fixture:
        with open(os.path.join(DSREG, dsreg_fixture), encoding='utf-8') as handle:
            dsreg_text = handle.read()
    if dsreg_text is not None:
        (folder / 'dsregcmd_status.txt').write_text(dsreg_text, encoding='utf-8')
    if events is not None:
        (folder / 'aad_events.json').write_text(events, encoding='utf-8')


@pytest.mark.parametrize('check_mode', [False, True])
def test_triages_every_host_and_reports_bad_ones(tmp_path, check_mode):
    host(tmp_path, 'PC1', 'hybrid_win11.txt')
    host(tmp_path, 'PC2', 'domain_scp_missing.txt')
    host(tmp_path, 'PC3', 'hybrid_win11.txt', events='[{"Id": 1098, "TimeCreated": ')
    host(tmp_path, 'PC4', dsreg_text='garbage')
    result = action({'evidence_dir': str(tmp_path)}, check_mode).run(task_vars={})
    assert result.get('failed') is not True and result['changed'] is False
    assert result['evidence_dir'] == str(tmp_path)
    assert sorted(result['hosts']) == ['PC1', 'PC2', 'PC3', 'PC4']
    assert result['hosts']['PC1']['plan'] == []
    assert result['hosts']['PC2']['join_type'] == 'domain_joined'
    assert [e.split(': ')[0] for e in result['errors']] == [
        str(tmp_path / 'PC3' / 'aad_events.json'), str(tmp_path / 'PC4' / 'dsregcmd_status.txt')]
    assert result['lines'][0] == 'PC1: hybrid_joined; healthy; plan: nothing to do'
    assert result['lines'][3].startswith('PC4: ERROR ')


@pytest.mark.parametrize('args, message', [
    ({}, 'evidence_dir'),
    ({'evidence_dir': '/nonexistent/evidence'}, 'evidence_dir: /nonexistent/evidence: evidence folder not found'),
])
def test_bad_evidence_dir(args, message):
    with pytest.raises(AnsibleActionFail, match=message):
        action(args).run(task_vars={})


def test_evidence_dir_without_hosts(tmp_path):
    with pytest.raises(AnsibleActionFail, match='no host folders'):
        action({'evidence_dir': str(tmp_path)}).run(task_vars={})
