# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os
import re
from collections import OrderedDict

import pytest

from ansible_collections.m365ops.activation.plugins.module_utils.report_html import render_html
from ansible_collections.m365ops.activation.plugins.module_utils.report import (
    build_report, is_healthy, render_markdown, to_plain, write_report,
)

FINDING = {'id': 'prt_missing', 'severity': 'high', 'summary': 'No PRT | for alice.',
           'evidence': ['dsregcmd: AzureAdPrt = NO'], 'rung': 'reset_token_broker'}
HEALTHY = {'join_type': 'hybrid_joined', 'plan': [],
           'findings': [{'id': 'device_healthy', 'severity': 'info', 'summary': 'ok', 'evidence': [], 'rung': None}]}
SICK = {'join_type': 'hybrid_joined', 'findings': [FINDING, dict(FINDING, id='network_blocked', rung='fix_network_path')],
        'plan': ['reset_token_broker', 'fix_network_path']}
HOSTS = {'PC2': SICK, 'PC1': HEALTHY, 'PC3': {'error': 'PC3/dsregcmd_status.txt: empty'},
         'PC4': {'unreachable': True, 'error': 'WinRM timeout'},
         'PC5': {'join_type': 'entra_joined', 'plan': [], 'findings': [dict(FINDING, severity='medium', rung=None)]}}


class TaggedStr(str):
    """Stands in for the str subclasses Ansible's templating hands to action plugins."""


def test_report_shape_and_summary():
    report = build_report('triage', HOSTS, generated='2026-11-26T18:00:00Z')
    assert list(report) == ['kind', 'generated', 'hosts', 'summary']
    assert report['kind'] == 'triage' and report['generated'] == '2026-11-26T18:00:00Z'
    assert list(report['hosts']) == ['PC1', 'PC2', 'PC3', 'PC4', 'PC5']
    assert report['summary'] == {'hosts': 5, 'healthy': 1, 'with_findings': 2, 'errors': 2,
                                 'rungs': {'reset_token_broker': 1, 'fix_network_path': 1}}
    assert report['hosts']['PC2'] == SICK and report['hosts']['PC2'] is not SICK


def test_generated_defaults_to_now():
    assert re.match(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$', build_report('diagnose', {})['generated'])


def test_remediate_entries_count_the_after_state_and_outcomes():
    hosts = {'PC1': {'before': SICK, 'after': HEALTHY, 'outcome': 'fixed', 'rungs_run': ['reset_token_broker']},
             'PC2': {'before': SICK, 'after': SICK, 'outcome': 'unchanged', 'rungs_run': ['reset_token_broker']}}
    summary = build_report('remediate', hosts, generated='x')['summary']
    assert summary == {'hosts': 2, 'healthy': 1, 'with_findings': 1, 'errors': 0,
                       'rungs': {'reset_token_broker': 1, 'fix_network_path': 1},
                       'outcomes': {'fixed': 1, 'unchanged': 1}}
    assert is_healthy(hosts['PC1']) and not is_healthy(hosts['PC2'])


@pytest.mark.parametrize('kind, hosts, generated, message', [
    ('audit', {}, None, "kind: 'audit' is not one of triage, diagnose, remediate, tenant"),
    ('triage', ['PC1'], None, 'hosts: expected a mapping of host name to entry, got list'),
    ('triage', {'PC1': 'ok'}, None, "hosts: entry for 'PC1' must be a mapping, got str"),
    ('triage', {'PC1': {'plan': []}}, None, 'hosts: entry for \'PC1\' has neither "findings" nor "error"'),
    ('triage', {}, 12, 'generated: expected an ISO-8601 string'),
])
def test_bad_input_names_the_parameter(kind, hosts, generated, message):
    with pytest.raises(ValueError) as err:
        build_report(kind, hosts, generated)
    assert str(err.value) == message


def test_to_plain():
    value = OrderedDict([(TaggedStr('a'), (TaggedStr('x'), 1, True, None, 1.5))])
    plain = to_plain(value)
    assert plain == {'a': ['x', 1, True, None, 1.5]}
    assert type(plain) is dict and type(list(plain)[0]) is str and type(plain['a'][0]) is str
    report = build_report('triage', {TaggedStr('PC1'): {'findings': [], 'plan': [], 'join_type': TaggedStr('workgroup')}}, 'x')
    assert json.loads(json.dumps(report)) == report


def test_markdown():
    md = render_markdown(build_report('triage', HOSTS, generated='2026-11-26T18:00:00Z'))
    assert md.startswith('# m365ops.activation triage report\n')
    assert '| 5 | 1 | 2 | 2 |' in md
    assert 'Rungs planned: `reset_token_broker` × 1, `fix_network_path` × 1' in md
    assert '- plan: `reset_token_broker` → `fix_network_path`' in md
    assert '| high | `prt_missing` | `reset_token_broker` | No PRT \\| for alice. |' in md
    assert '  - dsregcmd: AzureAdPrt = NO' in md
    assert '**Error**: PC3/dsregcmd_status.txt: empty' in md
    assert '**Unreachable**: WinRM timeout' in md
    assert '## PC1\n\n- join type: `hybrid_joined`\n- plan: nothing to do' in md
    # PC5 has a medium finding no rung addresses
    assert '## PC5\n\n- join type: `entra_joined`\n- plan: no automatic rung; see the findings' in md
    assert md.endswith('\n') and not md.endswith('\n\n')


def test_remediate_entries_as_remediation_builds_them():
    # remediation.build_host_entry puts the latest state at the top and may add an error
    failed = dict(SICK, before={'join_type': 'hybrid_joined', 'findings': SICK['findings'], 'plan': SICK['plan']},
                  after=None, outcome='failed', outcome_reason='rung reset_token_broker failed',
                  rungs_run=[], error='win_token_broker_cache: access denied')
    fixed = dict(HEALTHY, before={'join_type': 'hybrid_joined', 'findings': SICK['findings'], 'plan': SICK['plan']},
                 after={'join_type': 'hybrid_joined', 'findings': [], 'plan': SICK['plan']},   # top level wins
                 outcome='fixed', rungs_run=['reset_token_broker'])
    report = build_report('remediate', {'PC1': failed, 'PC2': fixed, 'PC3': {'error': 'unreachable before the role ran'}}, 'x')
    # a failed host counts among the errors (report_html and the AWX summary agree on that)
    assert report['summary'] == {'hosts': 3, 'healthy': 1, 'with_findings': 0, 'errors': 2, 'rungs': {},
                                 'outcomes': {'failed': 1, 'fixed': 1}}
    md = render_markdown(report)
    assert '**Error**: win_token_broker_cache: access denied\n\n- outcome: `failed` (rung reset_token_broker failed)' in md


def test_markdown_remediate():
    hosts = {'PC1': {'before': SICK, 'after': HEALTHY, 'outcome': 'fixed', 'rungs_run': ['reset_token_broker']}}
    md = render_markdown(build_report('remediate', hosts, generated='x'))
    assert '- outcome: `fixed`' in md and '- rungs run: `reset_token_broker`' in md
    assert md.index('**Before**') < md.index('**After**')


def test_write_report(tmp_path):
    report = build_report('triage', HOSTS, generated='2026-11-26T18:00:00Z')
    paths = write_report(report, str(tmp_path / 'reports' / 'today'))
    out = tmp_path / 'reports' / 'today'
    assert paths == {'json': str(out / 'report.json'), 'md': str(out / 'report.md'), 'html': str(out / 'report.html')}
    with open(paths['json'], encoding='utf-8') as handle:
        assert json.load(handle) == report
    with open(paths['md'], encoding='utf-8') as handle:
        assert handle.read() == render_markdown(report)
    with open(paths['html'], encoding='utf-8') as handle:
        assert handle.read() == render_html(report)
    assert sorted(os.listdir(out)) == ['report.html', 'report.json', 'report.md']


def test_write_report_refuses_a_file_as_folder(tmp_path):
    (tmp_path / 'taken').write_text('x')
    with pytest.raises(ValueError, match='report_dir: .* exists and is not a folder'):
        write_report(build_report('triage', {}, 'x'), str(tmp_path / 'taken'))
    with pytest.raises(ValueError, match='report_dir'):
        write_report(build_report('triage', {}, 'x'), '')
