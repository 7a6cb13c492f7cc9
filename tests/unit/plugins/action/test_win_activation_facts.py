# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The win_activation_facts action: one module execution per host, triage on the
controller, evidence bundle that re-triages to the same answer."""

from __future__ import annotations

import copy
import json
import os
from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail

from ansible_collections.m365ops.activation.plugins.action.win_activation_facts import (
    FACT, MODULE, ActionModule, triage_result,
)
from ansible_collections.m365ops.activation.plugins.plugin_utils.evidence import load_bundle
from ansible_collections.m365ops.activation.plugins.plugin_utils.ladder import RUNGS
from ansible_collections.m365ops.activation.plugins.plugin_utils.triage import evaluate

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures', 'win_activation_facts')


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding='utf-8') as handle:
        return handle.read()


def user_entry(sid, name, upn, dsreg_file, targets=(), accounts=None):
    return {
        'sid': sid, 'user': 'CONTOSO\\%s' % name, 'status': 'ok', 'message': '',
        'sign_in_upn': upn, 'dsregcmd_status': fixture(dsreg_file),
        'credential_targets': list(targets),
        'wam_accounts': accounts if accounts is not None else [{'upn': upn, 'provider': 'AzureAD', 'state': 'Connected'}],
        'broker_plugin_registered': True,
    }


SIDS = ['S-1-5-21-1004336348-1177238915-682003330-%d' % rid for rid in (1104, 1105, 1106)]


def module_result(users=3):
    """What plugins/modules/win_activation_facts.ps1 returns for PC042 with ``users``
    logged-on users (its Pester tests hold the PowerShell side of this contract)."""
    entries = [
        user_entry(SIDS[0], 'alice', 'alice@contoso.com', 'user_alice_no_prt.txt',
                   targets=['MicrosoftOffice16_Data:SSPI:alice@contoso.com'],
                   accounts=[{'upn': 'alice@contoso.com', 'provider': 'AzureAD', 'state': 'Connected'},
                             {'upn': 'alice@fabrikam.com', 'provider': 'AzureAD', 'state': 'Connected'}]),
        user_entry(SIDS[1], 'bob', 'bob@contoso.com', 'user_bob_prt.txt'),
        user_entry(SIDS[2], 'carol', 'carol@contoso.com', 'user_carol_prt.txt'),
    ][:users]
    profiles = [{
        'sid': e['sid'], 'user': e['user'], 'path': 'C:\\Users\\%s' % e['user'].split('\\')[1],
        'hive_loaded': True, 'logged_on': True,
        'licensing': {'mode': 'vNext', 'modes': {'O365ProPlusRetail': 'vNext'}, 'licenses': [{
            'file': 'C:\\Users\\x\\AppData\\Local\\Microsoft\\Office\\Licenses\\5\\a.json',
            'product': 'O365ProPlusRetail', 'license_type': 'User', 'status': 'Ok',
            'not_after': '2026-12-20T00:00:00Z', 'expires_on': '2027-01-31T00:00:00Z',
            'tenant_id': '4d1c6a4e-2f8b-4b1e-9a53-7c0f2e9d1b64', 'reduced_functionality': False}]},
        'identity_policy': {'EnableADAL': None, 'DisableAADWAM': None, 'DisableADALatopWAMOverride': None},
        'token_broker': {
            'aad_broker_plugin': {'files': 4, 'bytes': 18231, 'newest': '2026-11-25T17:02:11Z'},
            'cloud_experience_host': {'files': 1, 'bytes': 2210, 'newest': '2026-10-02T08:00:00Z'}},
    } for e in entries]
    return {
        'changed': False,
        'dsregcmd_status': fixture('device_hybrid_no_prt.txt'),
        'aad_events': [
            {'Id': 1098, 'LevelDisplayName': 'Error', 'TimeCreated': '2026-11-26T08:10:03Z',
             'Message': 'Error: 0xCAA50021 Number of redirects exceeded the maximum.\r\n'
                        'Logged at ClientCache.cpp, line: 312, method: ClientCache::LoadPrimaryAccount.'},
            {'Id': 1097, 'LevelDisplayName': 'Warning', 'TimeCreated': '2026-11-26T08:10:02Z',
             'Message': 'Error: 0xCAA50021 Number of redirects exceeded the maximum.'},
        ],
        'host_facts': {
            'schema': 1, 'collected_at': '2026-11-26T09:00:00Z', 'hostname': 'PC042',
            'os': {'build': 22631, 'version': '10.0.22631', 'ubr': 4460, 'display_version': '23H2',
                   'product_name': 'Windows 10 Enterprise'},
            'office': {'installed': True, 'version': '16.0.17928.20114', 'channel': 'MonthlyEnterprise',
                       'shared_computer_licensing': False, 'platform': 'x64',
                       'product_release_ids': ['O365ProPlusRetail']},
            'network': {'winhttp_proxy': 'Direct access (no proxy server).', 'proxy_server': None, 'bypass_list': None},
            'pending_reboot': {'marker': False, 'windows': False, 'reasons': []},
            'broker_plugin': {'installed': True, 'version': '1000.19580.1000.0', 'status': 'Ok',
                              'registered_sids': [e['sid'] for e in entries]},
            'profiles': profiles,
            'users': entries,
        },
        'collection_errors': [],
    }


class Host:
    """Answers _execute_module and counts the executions."""

    def __init__(self, result):
        self.result = result
        self.calls = []

    def execute(self, module_name=None, module_args=None, task_vars=None, **kwargs):
        self.calls.append((module_name, dict(module_args or {})))
        return copy.deepcopy(self.result)


def make_action(host, args=None, check_mode=False):
    task = MagicMock()
    task.action = MODULE
    task.args = dict(args or {})
    task.check_mode = check_mode
    task.async_val = 0
    task.diff = False
    connection = MagicMock()
    connection._shell.tmpdir = None
    action = ActionModule(task, connection, MagicMock(), MagicMock(), MagicMock(), MagicMock())
    action._execute_module = MagicMock(side_effect=host.execute)
    return action


def run(action, hostname='PC042'):
    return action.run(task_vars={'inventory_hostname': hostname})


def test_one_module_execution_for_three_logged_on_users():
    host = Host(module_result(users=3))
    result = run(make_action(host, {'events_days': 7}))
    # The whole diagnosis of a host with three users is one round trip.
    assert len(host.calls) == 1
    assert host.calls[0] == (MODULE, {'events_days': 7})
    fact = result['ansible_facts'][FACT]
    assert fact is result[FACT]
    assert [u['sign_in_upn'] for u in result['host_facts']['users']] == [
        'alice@contoso.com', 'bob@contoso.com', 'carol@contoso.com']
    assert set(fact['users']) == {'alice@contoso.com', 'bob@contoso.com', 'carol@contoso.com'}


def test_findings_and_plan_match_the_offline_rules():
    result = run(make_action(Host(module_result())))
    fact = result[FACT]
    assert fact['join_type'] == 'hybrid_joined'
    assert fact['device_id'] == '6f2d3c1b-9a8e-4c7d-b5a4-3e2f1d0c9b8a'
    assert fact['collection_errors'] == []
    ids = {f['id'] for f in fact['findings']}
    # alice: no PRT with 0xCAA50021, an extra fabrikam WAM account, an Office credential.
    assert {'prt_missing', 'extra_work_accounts', 'office_credentials_cached'} <= ids
    prt = next(f for f in fact['findings'] if f['id'] == 'prt_missing')
    # The PRT verdict comes from alice's own session, not from the admin's WinRM logon.
    assert any('alice@contoso.com' in line for line in prt['evidence'])
    assert fact['plan'] == ['purge_office_credentials', 'remove_extra_work_accounts', 'reset_token_broker']
    assert fact['plan'] == [r for r in RUNGS if r in fact['plan']]
    for finding in fact['findings']:
        assert finding['rung'] is None or finding['rung'] in RUNGS
    assert result['changed'] is False


def test_evidence_bundle_retriages_to_the_same_answer(tmp_path):
    host = Host(module_result())
    result = run(make_action(host, {'evidence_dir': str(tmp_path)}))
    # evidence_dir is the controller's business: the module never sees it.
    assert 'evidence_dir' not in host.calls[0][1]
    host_dir = tmp_path / 'PC042'
    assert sorted(os.listdir(host_dir)) == ['aad_events.json', 'dsregcmd_status.txt', 'host_facts.json']
    assert sorted(result['evidence_paths']) == sorted(str(host_dir / n) for n in os.listdir(host_dir))
    offline = evaluate(load_bundle(str(host_dir)))
    live = dict(result[FACT])
    live.pop('collection_errors')
    assert offline == live
    facts = json.loads((host_dir / 'host_facts.json').read_text(encoding='utf-8'))
    assert facts['users'][0]['credential_targets'] == ['MicrosoftOffice16_Data:SSPI:alice@contoso.com']


def test_check_mode_still_gathers_but_writes_no_evidence(tmp_path):
    host = Host(module_result())
    result = run(make_action(host, {'evidence_dir': str(tmp_path)}, check_mode=True))
    assert len(host.calls) == 1
    assert result[FACT]['findings']
    assert result['evidence_paths'] == []
    assert os.listdir(tmp_path) == []


def test_module_failure_is_returned_untouched():
    failed = {'failed': True, 'msg': "users: Identity 'mallory' is unknown: no account or user profile on this host matches it."}
    result = run(make_action(Host(failed), {'users': ['mallory']}))
    assert result['failed'] is True
    assert "'mallory'" in result['msg']
    assert FACT not in result


def test_missing_dsregcmd_gives_an_error_entry_naming_why(tmp_path):
    res = module_result(users=0)
    res['dsregcmd_status'] = None
    res['collection_errors'] = [{'source': 'dsregcmd_status', 'message': "The term 'dsregcmd.exe' is not recognized"},
                                {'source': 'aad_events', 'message': 'channel not found'}]
    result = run(make_action(Host(res), {'evidence_dir': str(tmp_path)}))
    fact = result[FACT]
    assert fact['error'].startswith('dsregcmd /status could not be collected: ')
    assert 'dsregcmd.exe' in fact['error']
    assert len(fact['collection_errors']) == 2
    assert 'failed' not in result
    # Nothing that cannot be triaged is written as evidence.
    assert os.listdir(tmp_path) == []


def test_malformed_dsregcmd_output_is_an_error_entry():
    res = module_result(users=0)
    res['dsregcmd_status'] = 'The command completed with errors.\r\n'
    res['collection_errors'] = [{'source': 'dsregcmd_status', 'message': 'dsregcmd /status output not recognised'}]
    fact = triage_result(res)
    assert 'dsregcmd_status.txt' in fact['error']
    assert 'findings' not in fact


def test_partial_collection_still_triages_and_shows_the_gaps():
    res = module_result(users=1)
    del res['host_facts']['office']
    res['collection_errors'] = [{'source': 'office', 'message': 'access denied'}]
    fact = run(make_action(Host(res)))[FACT]
    assert 'findings' in fact
    assert fact['collection_errors'] == [{'source': 'office', 'message': 'access denied'}]


@pytest.mark.parametrize('bad', ['', '   '])
def test_empty_evidence_dir_is_refused_before_the_host_is_touched(bad):
    host = Host(module_result())
    with pytest.raises(AnsibleActionFail, match='evidence_dir'):
        run(make_action(host, {'evidence_dir': bad}))
    assert host.calls == []


@pytest.mark.parametrize('name', ['..', 'a/b', 'c:\\x'])
def test_unsafe_inventory_name_never_becomes_a_folder(tmp_path, name):
    with pytest.raises(AnsibleActionFail, match='inventory name'):
        run(make_action(Host(module_result()), {'evidence_dir': str(tmp_path)}), hostname=name)
    assert os.listdir(tmp_path) == []


def join_submitted_result(submitted_at):
    """PC042 right after win_dsreg_join state=rejoined: domain joined, the join waiting for
    Entra Connect (0x801c03f2), the HybridJoin record in host_facts.hybrid_join."""
    res = module_result(users=1)
    res['dsregcmd_status'] = fixture('device_domain_join_submitted.txt')
    res['aad_events'] = []
    res['host_facts']['hybrid_join'] = {
        'action': 'rejoin', 'submitted_at': submitted_at,
        'submitted_by': 'CONTOSO\\svc-m365ops (win_dsreg_join state=rejoined)'}
    res['host_facts']['pending_reboot'] = {
        'marker': True, 'windows': False,
        'reasons': ['marker win_dsreg_join: %s dsregcmd /leave + /join submitted' % submitted_at]}
    return res


def test_submitted_hybrid_join_is_awaited_live_and_offline(tmp_path):
    result = run(make_action(Host(join_submitted_result('2026-11-26T08:30:00Z')), {'evidence_dir': str(tmp_path)}))
    fact = result[FACT]
    assert fact['join_type'] == 'domain_joined'
    pending = next(f for f in fact['findings'] if f['id'] == 'hybrid_join_pending')
    assert pending['rung'] is None
    # 0x801c03f2 (device_not_synced) is what the join waits for, not a blocker of it
    assert 'device_not_synced' in {f['id'] for f in fact['findings']}
    assert 'cannot complete' not in pending['summary']
    assert pending['evidence'][0].startswith('host facts: hybrid join submitted at 2026-11-26T08:30:00Z by CONTOSO')
    assert 'rejoin_hybrid' not in fact['plan']
    # The bundle keeps the record, so an offline re-triage waits too.
    facts = json.loads((tmp_path / 'PC042' / 'host_facts.json').read_text(encoding='utf-8'))
    assert facts['hybrid_join']['submitted_at'] == '2026-11-26T08:30:00Z'
    offline = evaluate(load_bundle(str(tmp_path / 'PC042')))
    live = dict(fact)
    live.pop('collection_errors')
    assert offline == live


def test_submitted_hybrid_join_older_than_a_day_is_reported_as_not_completed():
    fact = triage_result(join_submitted_result('2026-11-25T08:30:00Z'))
    assert 'hybrid_join_pending' not in {f['id'] for f in fact['findings']}
    not_joined = next(f for f in fact['findings'] if f['id'] == 'not_hybrid_joined')
    assert 'The hybrid join submitted at 2026-11-25T08:30:00Z did not complete within 24 hours.' in not_joined['summary']
    # Entra ID still has no device object: the rejoin stays held back by device_not_synced.
    assert 'device_not_synced' in {f['id'] for f in fact['findings']}
    assert not_joined['rung'] is None


def test_no_hybrid_join_recorded():
    res = join_submitted_result('2026-11-26T08:30:00Z')
    res['host_facts']['hybrid_join'] = None
    fact = triage_result(res)
    assert 'hybrid_join_pending' not in {f['id'] for f in fact['findings']}


# --- the network probe's settings: the task's keys over the inventory variable ---------------

SITE_PROBE = {'endpoints': ['login.microsoftonline.us'], 'trusted_roots': ['DF3C24F9BFD666761B268073FE06D1CC8D4F82A4'],
              'timeout': 6}


def run_with_inventory(action, probe):
    # The templar renders the variable as Ansible would; here it holds plain values.
    action._templar.template = lambda value: value
    return action.run(task_vars={'inventory_hostname': 'PC042', 'm365ops_network_probe': probe})


def test_the_inventory_variable_sets_the_probe_for_every_task_that_does_not():
    host = Host(module_result())
    run_with_inventory(make_action(host, {'events_days': 7}), dict(SITE_PROBE))
    assert host.calls[0] == (MODULE, {'events_days': 7, 'network_probe': SITE_PROBE})


def test_the_tasks_own_probe_keys_win_over_the_inventory_variable():
    host = Host(module_result())
    run_with_inventory(make_action(host, {'network_probe': {'timeout': 2, 'enabled': False, 'endpoints': None}}),
                       dict(SITE_PROBE))
    # None is "not set" (what a role passes for omit-like values): the site's endpoints stay.
    assert host.calls[0][1]['network_probe'] == dict(SITE_PROBE, timeout=2, enabled=False)


def test_without_either_the_module_keeps_its_own_defaults():
    host = Host(module_result())
    run(make_action(host, {'users': ['alice']}))
    assert 'network_probe' not in host.calls[0][1]


@pytest.mark.parametrize('task, inventory, message', [
    ({}, ['login.microsoftonline.com'], 'm365ops_network_probe: expected a dict of enabled, endpoints, '
                                        'trusted_roots, timeout, got list'),
    ({}, {'endpoint': ['x']}, r'm365ops_network_probe: unknown key\(s\) endpoint \(known: enabled, endpoints, '
                              r'trusted_roots, timeout\)'),
    ({'network_probe': {'budget': 3}}, None, r'network_probe: unknown key\(s\) budget'),
])
def test_bad_probe_settings_fail_before_the_host_is_touched(task, inventory, message):
    host = Host(module_result())
    with pytest.raises(AnsibleActionFail, match=message):
        run_with_inventory(make_action(host, task), inventory)
    assert host.calls == []
