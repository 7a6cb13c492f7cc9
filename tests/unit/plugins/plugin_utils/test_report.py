# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os
import re
from collections import OrderedDict

import pytest

from ansible_collections.m365ops.activation.plugins.plugin_utils.remediation import build_host_entry, select_rungs
from ansible_collections.m365ops.activation.plugins.plugin_utils.report_html import render_html
from ansible_collections.m365ops.activation.plugins.plugin_utils.report import (
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
    # exact types: the tagged str/dict subclasses must be gone, not merely still isinstance-compatible
    assert [type(plain), type(list(plain)[0]), type(plain['a'][0])] == [dict, str, str]
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


# Entries as the remediate role builds them (remediation.build_host_entry), so the
# markdown is tested against the producer's real keys.
TB_PLAN = {'join_type': 'hybrid_joined', 'findings': [FINDING], 'plan': ['purge_office_credentials', 'reset_token_broker']}
REJOIN_PLAN = {'join_type': 'hybrid_joined', 'plan': ['rejoin_hybrid'],
               'findings': [dict(FINDING, id='device_auth_failed', severity='critical', rung='rejoin_hybrid')]}
CLOUD_PLAN = {'join_type': 'entra_joined', 'plan': ['forcerecovery_cloud_joined'],
              'findings': [dict(FINDING, id='device_recovery_pending', rung='forcerecovery_cloud_joined')]}
RAN = {'purge_office_credentials': {'changed': True}, 'reset_token_broker': {'changed': True, 'reboot_required': True}}


def _host_md(report, host):
    md = render_markdown(report)
    start = md.index('## %s\n' % host)
    end = md.find('\n## ', start + 1)
    return md[start:] if end < 0 else md[start:end]


def test_markdown_remediate_real_run_keys():
    hosts = {
        'PC-FIXED': build_host_entry(TB_PLAN, HEALTHY, select_rungs(TB_PLAN['plan']), RAN, {'rebooted': True}),
        'PC-PENDING': build_host_entry(TB_PLAN, TB_PLAN, select_rungs(TB_PLAN['plan']), RAN,
                                       {'rebooted': False, 'reboot_required': True}),
        'PC-REJOIN': build_host_entry(REJOIN_PLAN, REJOIN_PLAN, select_rungs(REJOIN_PLAN['plan']), {}, {}),
        'PC-CLOUD': build_host_entry(CLOUD_PLAN, CLOUD_PLAN, select_rungs(CLOUD_PLAN['plan']), {}, {}),
    }
    report = build_report('remediate', hosts, generated='x')
    fixed = _host_md(report, 'PC-FIXED')
    assert '- outcome: `fixed` (no actionable finding left)' in fixed
    assert '- rungs run: `purge_office_credentials`, `reset_token_broker`\n- restarted: yes\n' in fixed
    assert 'reboot pending' not in fixed and 'would' not in fixed

    pending = _host_md(report, 'PC-PENDING')
    assert '- restarted: no\n- reboot pending: yes' in pending
    assert 'restart pending (not allowed in this run)' in pending

    rejoin = _host_md(report, 'PC-REJOIN')
    assert '- not run: `rejoin_hybrid` (needs the opt-in remediate_allow_rejoin_hybrid: true)' in rejoin
    assert '- rungs run: none' in rejoin

    cloud = _host_md(report, 'PC-CLOUD')
    assert '- outcome: `needs_user` (needs the user at the device: forcerecovery_cloud_joined' in cloud
    assert '- left to the user: `forcerecovery_cloud_joined`' in cloud


def test_markdown_remediate_check_mode_says_what_would_happen():
    entry = build_host_entry(TB_PLAN, None, select_rungs(TB_PLAN['plan'], max_rung=2), RAN,
                             {'reboot_required': True}, check_mode=True)
    text = _host_md(build_report('remediate', {'PC1': entry}, generated='x'), 'PC1')
    assert '- check mode: nothing was changed on the host' in text
    assert '- would run: `purge_office_credentials`\n- would restart: yes' in text
    assert '- not run: `reset_token_broker` (above remediate_max_rung (2))' in text
    # The rung modules ran in check mode only: nothing may read as done.
    assert 'rungs run' not in text and 'restarted' not in text and 'reboot pending' not in text
    assert '**After**' not in text

    idle = build_host_entry(HEALTHY, None, select_rungs([]), {}, {}, check_mode=True)
    assert '- would run: nothing\n- would restart: no' in _host_md(build_report('remediate', {'PC2': idle}, 'x'), 'PC2')


def test_markdown_tenant_entries_without_a_device_have_no_join_type():
    license = dict(FINDING, id='license_missing', rung='check_license')
    hosts = {
        'PC1': {'join_type': 'hybrid_joined', 'device_id': 'd', 'device_name': 'PC1', 'users': ['alice@contoso.com'],
                'findings': [], 'plan': []},
        'PC2': {'join_type': None, 'device_id': None, 'device_name': 'PC2', 'users': [], 'findings': [], 'plan': []},
        'bob@contoso.com': {'users': ['bob@contoso.com'], 'findings': [license], 'plan': ['check_license']},
        'tenant': {'error': 'device registration policy: 403 Forbidden'},
    }
    report = build_report('tenant', hosts, generated='x')
    assert '- join type: `hybrid_joined`' in _host_md(report, 'PC1')
    for name in ('PC2', 'bob@contoso.com', 'tenant'):
        assert 'join type' not in _host_md(report, name), name
    assert '- plan: `check_license`' in _host_md(report, 'bob@contoso.com')
    assert '**Error**: device registration policy: 403 Forbidden' in _host_md(report, 'tenant')


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


def test_markdown_remediate_names_the_way_back_and_a_restart_done_first():
    ran = dict(RAN, reset_token_broker={
        'changed': True, 'reboot_required': True, 'quarantine_id': '20261126T181500Z-3f2a',
        'quarantine_path': 'C:\\ProgramData\\m365ops\\quarantine\\20261126T181500Z-3f2a',
        'users': [{'user': 'CONTOSO\\alice', 'sid': 'S-1-5-21-1-2-3-1104', 'status': 'moved'}]})
    entry = build_host_entry(TB_PLAN, HEALTHY, select_rungs(TB_PLAN['plan']), ran, {'rebooted': True},
                             restart_first={'rebooted': True, 'changed': True})
    text = _host_md(build_report('remediate', {'PC1': entry}, generated='x'), 'PC1')
    assert '- TokenBroker quarantine: `20261126T181500Z-3f2a` (CONTOSO\\alice)' in text
    assert '- restarted first: yes' in text
    cloud = build_host_entry(CLOUD_PLAN, CLOUD_PLAN, select_rungs(CLOUD_PLAN['plan']), {}, {})
    step = next(m['step'] for m in cloud['manual'] if m['rung'] == 'forcerecovery_cloud_joined')
    assert 'dsregcmd /forcerecovery' in step
    assert step in _host_md(build_report('remediate', {'PC2': cloud}, generated='x'), 'PC2')


def test_markdown_escapes_what_a_host_or_graph_said(tmp_path):
    """report.md shows hostile text as text, as report.html does: no link, image, inline HTML,
    emphasis, heading, list or extra table cell can come from a report's values."""
    from ansible_collections.m365ops.activation.plugins.plugin_utils.report import build_report, render_markdown

    hostile = {"join_type": "hybrid`joined", "plan": ["reset_token_broker"], "findings": [
        {"id": "prt|missing", "severity": "high", "summary": "<img src=x onerror=alert(1)> [x](http://evil) **b** | cell",
         "evidence": ["# not a heading", "- not an item", "1. not a list", "&lt;script&gt;"], "rung": "reset_token_broker"}]}
    text = render_markdown(build_report("diagnose", {"PC<b>42</b>": hostile}))
    assert "## PC\\<b\\>42\\</b\\>" in text
    assert "\\<img src=x onerror=alert(1)\\> \\[x\\](http://evil) \\*\\*b\\*\\* \\| cell" in text
    assert "``hybrid`joined``" in text and "`prt\\|missing`" in text
    assert "  - \\# not a heading" in text and "  - \\- not an item" in text and "  - 1\\. not a list" in text
    assert "\\&lt;script\\&gt;" in text
    table_row = next(line for line in text.splitlines() if line.startswith("| high"))
    assert len(re.findall(r"(?<!\\)\|", table_row)) == 5  # four cells: the value's pipes are escaped


def test_report_files_are_private(tmp_path):
    """0600 files in 0700 folders: they hold UPNs, credential names and device ids."""
    import stat
    from ansible_collections.m365ops.activation.plugins.plugin_utils.report import build_report, write_report

    old = os.umask(0o022)
    try:
        paths = write_report(build_report("triage", {"PC042": {"findings": [], "plan": []}}),
                             str(tmp_path / "a" / "b" / "reports"))
    finally:
        os.umask(old)
    for path in paths.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    for folder in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "reports"):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder
