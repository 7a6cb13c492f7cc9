# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.m365ops.activation.plugins.plugin_utils.evidence import EvidenceError, build_evidence
from ansible_collections.m365ops.activation.plugins.plugin_utils.ladder import RUNGS, SEVERITIES, plan_of
from ansible_collections.m365ops.activation.plugins.plugin_utils.offline_triage import triage_bundle, triage_dir
from ansible_collections.m365ops.activation.plugins.plugin_utils.report import summary_line
from ansible_collections.m365ops.activation.plugins.plugin_utils.triage import FINDING_IDS, evaluate

HERE = os.path.dirname(__file__)
EXAMPLES = os.path.join(HERE, '..', '..', '..', '..', 'examples', 'evidence')
BORDER = '+' + '-' * 70 + '+'
TENANT = '4d1c6a4e-2f8b-4b1e-9a53-7c0f2e9d1b64'


def fixture(name):
    with open(os.path.join(HERE, 'fixtures', 'dsreg', name), encoding='utf-8', newline='') as handle:
        return handle.read()


def dsreg_text(boxes):
    """boxes: list of (title, {key: value}) in dsregcmd's layout."""
    lines = ['']
    for title, pairs in boxes:
        lines += [BORDER, '| %-69s|' % title, BORDER, '']
        lines += ['%26s : %s' % (key, value) for key, value in pairs.items()]
        lines.append('')
    return '\n'.join(lines)


def device(aad='YES', domain='YES', auth='SUCCESS', validity='[ 2025-01-08 09:00:00.000 UTC -- 2035-01-08 09:30:00.000 UTC ]',
           prt='YES', prt_updated='2026-11-20 08:10:12.000 UTC', prt_expiry='2026-12-04 08:10:11.000 UTC',
           recovery='NO', wpj='NO', sso_extra=None, diag_extra=None, work_accounts=(), account='CONTOSO\\alice, alice@contoso.com'):
    boxes = [('Device State', {'AzureAdJoined': aad, 'EnterpriseJoined': 'NO', 'DomainJoined': domain,
                               'Device Name': 'PC042.contoso.local'})]
    if aad == 'YES':
        boxes.append(('Device Details', {'DeviceId': '3f6a2c1e-8b4d-4e7f-a9c2-5d1e0b7f3a68',
                                         'DeviceCertificateValidity': validity, 'DeviceAuthStatus': auth}))
        boxes.append(('Tenant Details', {'TenantName': 'Contoso', 'TenantId': TENANT}))
    boxes.append(('User State', {'NgcSet': 'NO', 'WorkplaceJoined': wpj}))
    sso = {'AzureAdPrt': prt}
    if prt == 'YES':
        sso.update({'AzureAdPrtUpdateTime': prt_updated, 'AzureAdPrtExpiryTime': prt_expiry})
    sso.update(sso_extra or {})
    boxes.append(('SSO State', sso))
    for index, (name, tid) in enumerate(work_accounts, 1):
        boxes.append(('Work Account %d' % index, {'WorkplaceTenantId': tid, 'WorkplaceTenantName': name}))
    diag = {'AadRecoveryEnabled': recovery, 'Executing Account Name': account}
    diag.update(diag_extra or {})
    boxes.append(('Diagnostic Data', diag))
    return dsreg_text(boxes)


def event(event_id, code, when='2026-11-20T08:00:00Z'):
    return {'Id': event_id, 'LevelDisplayName': 'Error', 'TimeCreated': when, 'Message': 'Error: %s something' % code}


def user(**kwargs):
    entry = {'sid': 'S-1-5-21-1-2-3-1104', 'user': 'CONTOSO\\alice', 'status': 'ok', 'sign_in_upn': 'alice@contoso.com',
             'credential_targets': ['MicrosoftOffice16_Data:SSPI:alice@contoso.com'],
             'wam_accounts': [{'upn': 'alice@contoso.com', 'provider': 'AzureAD'}], 'broker_plugin_registered': True}
    entry.update(kwargs)
    return entry


def facts(users=None, **kwargs):
    data = {'schema': 1, 'collected_at': '2026-11-20T09:00:00Z', 'hostname': 'PC042',
            'users': [user()] if users is None else users}
    data.update(kwargs)
    return data


def run(text=None, events=None, host_facts=None):
    return evaluate(build_evidence(text or device(), events, host_facts))


def ids(result):
    return [finding['id'] for finding in result['findings']]


def finding(result, finding_id):
    matches = [f for f in result['findings'] if f['id'] == finding_id]
    assert len(matches) == 1, ids(result)
    return matches[0]


def test_rungs_are_the_documented_ladder():
    assert RUNGS == ('purge_office_credentials', 'remove_extra_work_accounts', 'reset_token_broker',
                     'reregister_broker_plugin', 'rejoin_hybrid', 'forcerecovery_cloud_joined', 'fix_network_path',
                     'check_license', 'check_device_registration_policy')


def test_healthy_device():
    result = run(host_facts=facts())
    assert result['plan'] == []
    assert ids(result) == ['device_healthy']
    assert all(f['rung'] is None for f in result['findings'])
    assert result == {**result, 'join_type': 'hybrid_joined', 'device_id': '3f6a2c1e-8b4d-4e7f-a9c2-5d1e0b7f3a68',
                      'device_name': 'PC042.contoso.local', 'tenant_name': 'Contoso', 'users': ['alice@contoso.com']}


def test_finding_shape_and_plan_order():
    result = run(events=[event(1098, '0xCAA70007'), event(1098, '0xCAA50021')],
                 host_facts=facts(broker_plugin={'installed': False}))
    for item in result['findings']:
        assert set(item) == {'id', 'severity', 'summary', 'evidence', 'rung'}
        assert item['id'] in FINDING_IDS
        assert item['severity'] in SEVERITIES
        assert item['rung'] is None or item['rung'] in RUNGS
        assert item['summary'] and isinstance(item['evidence'], list)
    assert result['plan'] == sorted(result['plan'], key=RUNGS.index)
    severities = [SEVERITIES.index(f['severity']) for f in result['findings']]
    assert severities == sorted(severities)


# --- join state --------------------------------------------------------------------------

def test_workgroup_device():
    result = run(device(aad='NO', domain='NO'))
    assert result['join_type'] == 'workgroup'
    assert finding(result, 'device_not_registered')['severity'] == 'info'
    assert result['plan'] == []


def test_domain_joined_without_blocker_plans_rejoin():
    result = run(device(aad='NO', prt='NO'))
    assert result['join_type'] == 'domain_joined'
    assert finding(result, 'not_hybrid_joined')['rung'] == 'rejoin_hybrid'
    assert result['plan'] == ['rejoin_hybrid']


def test_scp_missing_blocks_the_rejoin():
    result = run(fixture('domain_scp_missing.txt'))
    scp = finding(result, 'scp_missing')
    assert scp['rung'] is None
    assert 'dsregcmd: Client ErrorCode = 0x801C001D' in scp['evidence']
    not_joined = finding(result, 'not_hybrid_joined')
    assert not_joined['rung'] is None
    assert 'The join is blocked (scp_missing)' in not_joined['summary']
    assert result['plan'] == []
    assert result['users'] == ['dave@contoso.com']


def test_drs_unreachable_plans_the_network_fix():
    result = run(fixture('domain_drs_unreachable.txt'))
    drs = finding(result, 'drs_unreachable')
    assert drs['rung'] == 'fix_network_path'
    assert 'codes: 0x80072EE2' in drs['evidence']
    assert result['plan'] == ['fix_network_path']


def test_device_not_synced_waits():
    result = run(device(aad='NO', prt='NO', diag_extra={'Server ErrorCode': '0x801c03f2'}))
    assert finding(result, 'device_not_synced')['rung'] is None
    assert finding(result, 'not_hybrid_joined')['rung'] is None


def submitted(at='2026-11-20T06:30:00Z', action='rejoin'):
    """host_facts.hybrid_join as win_activation_facts reads win_dsreg_join's HybridJoin record."""
    return {'action': action, 'submitted_at': at, 'submitted_by': 'CONTOSO\\svc-m365ops (win_dsreg_join state=rejoined)'}


def test_submitted_hybrid_join_is_awaited_not_planned_again():
    # collected 2.5 h after the join was submitted: Entra Connect may not have synced yet
    result = run(device(aad='NO', prt='NO'), host_facts=facts(hybrid_join=submitted()))
    pending = finding(result, 'hybrid_join_pending')
    assert (pending['severity'], pending['rung']) == ('low', None)
    assert pending['evidence'][0] == ('host facts: hybrid join submitted at 2026-11-20T06:30:00Z by CONTOSO\\svc-m365ops '
                                      '(win_dsreg_join state=rejoined) (action rejoin), 2.5 h before collection '
                                      '(2026-11-20T09:00:00Z)')
    not_joined = finding(result, 'not_hybrid_joined')
    assert not_joined['rung'] is None
    assert 'wait for it, do not rejoin' in not_joined['summary']
    assert pending['evidence'][0] in not_joined['evidence']
    assert 'rejoin_hybrid' not in result['plan']
    assert result['plan'] == []
    assert summary_line('PC042', result).endswith('plan: no automatic rung, see the findings')


@pytest.mark.parametrize('at, pending', [
    ('2026-11-19T09:00:01Z', True),    # 23 h 59 min 59 s before collection
    ('2026-11-19T09:00:00Z', False),   # 24 h: win_dsreg_join would submit it again too
    ('2026-11-18T12:00:00Z', False),
    ('2026-11-20T09:30:00Z', True),    # after collection (clock skew): still pending
])
def test_submitted_hybrid_join_expires_after_24_hours(at, pending):
    result = run(device(aad='NO', prt='NO'), host_facts=facts(hybrid_join=submitted(at=at)))
    not_joined = finding(result, 'not_hybrid_joined')
    if pending:
        assert 'hybrid_join_pending' in ids(result)
        assert result['plan'] == []
    else:
        assert 'hybrid_join_pending' not in ids(result)
        assert result['plan'] == ['rejoin_hybrid']
        assert not_joined['rung'] == 'rejoin_hybrid'
        assert 'The hybrid join submitted at %s did not complete within 24 hours.' % at in not_joined['summary']
        assert any(line.startswith('host facts: hybrid join submitted at %s' % at) for line in not_joined['evidence'])


def test_submitted_hybrid_join_without_a_readable_time_does_not_hold_the_rejoin():
    result = run(device(aad='NO', prt='NO'), host_facts=facts(hybrid_join=submitted(at='26/11/2026 08:00')))
    not_joined = finding(result, 'not_hybrid_joined')
    assert not_joined['rung'] == 'rejoin_hybrid'
    assert 'did not complete' in not_joined['summary']
    assert not_joined['evidence'][-1].endswith('(action rejoin) (not a readable time)')


def test_submitted_hybrid_join_of_unknown_age_is_awaited():
    # host facts without collected_at, no Client Time, no events: no reference time
    host_facts = facts(hybrid_join=submitted())
    del host_facts['collected_at']
    result = run(device(aad='NO', prt='NO'), host_facts=host_facts)
    assert finding(result, 'hybrid_join_pending')['evidence'][0].endswith('(no collection time to judge its age)')
    assert result['plan'] == []


def test_submitted_hybrid_join_blocked_says_so():
    text = fixture('domain_scp_missing.txt')
    result = run(text, host_facts=facts(hybrid_join=submitted(), collected_at='2026-11-20T09:00:00Z'))
    assert 'It cannot complete while scp_missing stands.' in finding(result, 'hybrid_join_pending')['summary']
    assert 'The join is blocked (scp_missing)' in finding(result, 'not_hybrid_joined')['summary']
    assert result['plan'] == []


@pytest.mark.parametrize('aad, domain, record', [
    ('YES', 'YES', submitted()),             # joined: the record only awaits win_dsreg_join's cleanup
    ('NO', 'NO', submitted()),               # no longer domain joined: the join cannot complete
    ('NO', 'YES', None),                     # nothing recorded
    ('NO', 'YES', {'action': 'join'}),       # a record without SubmittedAt was never completed
    ('NO', 'YES', '2026-11-20T06:30:00Z'),   # not an object
])
def test_no_pending_hybrid_join(aad, domain, record):
    result = run(device(aad=aad, domain=domain, prt='NO' if aad == 'NO' else 'YES'), host_facts=facts(hybrid_join=record))
    assert 'hybrid_join_pending' not in ids(result)
    if (aad, domain) == ('NO', 'YES'):
        assert result['plan'] == ['rejoin_hybrid']
    else:
        assert 'rejoin_hybrid' not in result['plan']


@pytest.mark.parametrize('domain, rung', [('YES', 'rejoin_hybrid'), ('NO', 'forcerecovery_cloud_joined')])
def test_device_auth_failed(domain, rung):
    result = run(device(domain=domain, auth='FAILED. Device is either disabled or deleted'))
    item = finding(result, 'device_auth_failed')
    assert (item['severity'], item['rung']) == ('critical', rung)
    assert rung in result['plan']


def test_device_auth_failed_fixture_prefers_device_rung_for_prt():
    result = run(fixture('cloud_device_auth_failed.txt'))
    assert result['join_type'] == 'entra_joined'
    assert finding(result, 'prt_missing')['rung'] == 'forcerecovery_cloud_joined'
    # collected after the 2026-09-02 end of validity: Client Time is absent, no events -> no reference
    assert 'device_certificate_expired' not in ids(result)
    assert 'rejoin_hybrid' not in result['plan']


def test_certificate_expired_needs_a_reference_time():
    text = device(validity='[ 2016-01-08 09:00:00.000 UTC -- 2026-01-08 09:30:00.000 UTC ]')
    assert finding(run(text, host_facts=facts()), 'device_certificate_expired')['rung'] == 'rejoin_hybrid'
    assert 'device_certificate_expired' not in ids(run(text))


def test_recovery_pending_on_cloud_device():
    result = run(device(domain='NO', recovery='YES'))
    assert finding(result, 'device_recovery_pending')['rung'] == 'forcerecovery_cloud_joined'


# --- events and network ---------------------------------------------------------------------

def test_network_from_events_and_dsregcmd():
    text = device(prt='NO', sso_extra={'Attempt Status': '0xc000023c', 'HTTP Error': '0x80072ee2'})
    result = run(text, [event(1098, '0xCAA70007'), event(1098, '0xCAA70007', '2026-11-20T08:30:00Z'),
                        event(1098, '0xCAA82EE2')],
                 facts(users=[user(dsregcmd_status=text)],
                       network={'proxy_server': 'proxy.contoso.local:8080', 'bypass_list': '<local>',
                                'winhttp_proxy': 'Proxy Server(s) : proxy.contoso.local:8080'}))
    net = finding(result, 'network_blocked')
    assert net['rung'] == 'fix_network_path'
    assert net['evidence'] == [
        'event 1098 0xCAA70007 (x2, last) at 2026-11-20T08:30:00Z: Connection interrupted',
        'event 1098 0xCAA82EE2 at 2026-11-20T08:00:00Z: Request timed out',
        'dsregcmd SSO State: 0x80072EE2 (WinHTTP timeout)',
        'host facts: WinHTTP proxy proxy.contoso.local:8080 (bypass <local>)']
    assert finding(result, 'prt_missing')['rung'] == 'fix_network_path'
    # the cached credentials cannot cause a network failure: no purge
    assert result['plan'] == ['fix_network_path']


def test_broker_errors_reset_the_token_broker():
    result = run(events=[event(1098, '0xCAA50021'), event(1098, '0xCAA5001C')], host_facts=facts())
    broker = finding(result, 'wam_broker_errors')
    assert broker['rung'] == 'reset_token_broker'
    assert len(broker['evidence']) == 2
    # symptomatic now, so the cached Office credentials are purged first (Microsoft's step 1)
    assert finding(result, 'office_credentials_cached')['rung'] == 'purge_office_credentials'
    assert result['plan'] == ['purge_office_credentials', 'reset_token_broker']


def test_broker_errors_behind_a_network_failure_wait_for_it():
    result = run(events=[event(1098, '0xCAA50021'), event(1098, '0xCAA70004')])
    assert finding(result, 'wam_broker_errors')['rung'] is None
    assert result['plan'] == ['fix_network_path']


# --- the network probe (host_facts.network_probe, _NetworkProbe.psm1) -----------------------

def probe_result(endpoint='login.microsoftonline.com', blocked=None, detail=None):
    return {'endpoint': endpoint, 'host': endpoint.split(':')[0], 'port': 443, 'route': 'direct',
            'blocked': blocked, 'detail': detail or ('reached %s:443 (Tls12, chain ends at CN=DigiCert Global Root G2)'
                                                     % endpoint)}


def probe_context(kind='system', results=None, proxy=None, **kwargs):
    context = {'context': kind, 'proxy': proxy or {'source': 'none'}, 'timeout_seconds': 4, 'complete': True,
               'results': results if results is not None else [probe_result()]}
    if kind == 'system':
        context['account'] = 'CONTOSO\\svc-m365ops'
    else:
        context.update({'user': 'CONTOSO\\alice', 'sid': 'S-1-5-21-1-2-3-1104'})
    context.update(kwargs)
    return context


def probed(*contexts):
    return facts(network_probe={'endpoints': ['login.microsoftonline.com'], 'cloud': 'public', 'timeout_seconds': 4,
                                'contexts': list(contexts)})


PROXY_407 = ('the proxy proxy.contoso.local:8080 asks for authentication: HTTP/1.1 407 Proxy Authentication '
             'Required (offers Negotiate, NTLM)')


@pytest.mark.parametrize('layer, name, detail, advice', [
    ('dns', 'DNS', 'login.microsoftonline.com does not resolve (No such host is known.)', 'make the names resolve'),
    ('tcp', 'TCP/firewall', 'no TCP connection to 20.190.151.7:443 (timeout: no answer within 1333 ms)',
     'allow outbound TCP 443'),
    ('proxy', 'the proxy', 'the proxy proxy.contoso.local:8080 refused the tunnel to login.microsoftonline.com:443: '
                           'HTTP/1.1 403 Forbidden', 'let the proxy open HTTPS tunnels'),
    ('proxy_auth', 'proxy authentication', PROXY_407, 'exempt the endpoints from proxy authentication'),
    ('tls_inspection', 'TLS inspection', 'the certificate chain ends at the root CN=Contoso TLS Inspection CA [AB12], '
                                         'not at a root Microsoft uses', 'exempt Microsoft.AAD.BrokerPlugin'),
    ('tls', 'TLS', 'the TLS handshake with login.microsoftonline.com failed: Received an unexpected EOF',
     'check the TLS handshake'),
])
def test_a_blocked_probe_alone_names_the_layer_and_the_context(layer, name, detail, advice):
    # No AAD error, no dsregcmd error: the probe is the only evidence, and enough.
    result = run(host_facts=probed(probe_context('system', [probe_result(blocked=layer, detail=detail)])))
    net = finding(result, 'network_blocked')
    assert net['rung'] == 'fix_network_path' and net['severity'] == 'high'
    assert 'the network probe is blocked at %s in the system context.' % name in net['summary']
    assert advice in net['summary']
    assert net['evidence'] == ['network probe (system as CONTOSO\\svc-m365ops, direct): login.microsoftonline.com '
                               'blocked at %s: %s' % (name, detail)]
    assert result['plan'] == ['fix_network_path']


def test_the_probe_names_each_context_and_proxy_it_blocks_in():
    result = run(host_facts=probed(
        probe_context('system', [probe_result(), probe_result('enterpriseregistration.windows.net')]),
        probe_context('user', [probe_result(blocked='proxy_auth', detail=PROXY_407),
                               probe_result('enterpriseregistration.windows.net', blocked='proxy_auth', detail=PROXY_407)],
                      proxy={'source': 'wininet', 'server': 'proxy.contoso.local:8080'})))
    net = finding(result, 'network_blocked')
    assert net['summary'].startswith('The AAD token broker cannot reach Entra ID: the network probe is blocked at proxy '
                                     'authentication in the user context (CONTOSO\\alice). Fix it before touching '
                                     'caches: exempt the endpoints from proxy authentication')
    assert net['evidence'] == [
        'network probe (user CONTOSO\\alice, WinINET proxy proxy.contoso.local:8080): login.microsoftonline.com '
        'blocked at proxy authentication: ' + PROXY_407,
        'network probe (user CONTOSO\\alice, WinINET proxy proxy.contoso.local:8080): enterpriseregistration.windows.net '
        'blocked at proxy authentication: ' + PROXY_407]


def test_one_layer_in_both_contexts_and_two_layers_are_all_named():
    dns = probe_result(blocked='dns', detail='the name of the proxy proxy.contoso.local:8080 does not resolve (x)')
    tls = probe_result('enterpriseregistration.windows.net', blocked='tls_inspection', detail='the chain ends at X')
    result = run(host_facts=probed(
        probe_context('system', [dns], proxy={'source': 'winhttp', 'server': 'proxy.contoso.local:8080'}),
        probe_context('user', [dns, tls], proxy={'source': 'pac', 'pac_url': 'http://wpad/wpad.dat'})))
    summary = finding(result, 'network_blocked')['summary']
    assert ('blocked at DNS in the system context and the user context (CONTOSO\\alice); TLS inspection in the user '
            'context (CONTOSO\\alice).') in summary
    evidence = finding(result, 'network_blocked')['evidence']
    assert evidence[0].startswith('network probe (system as CONTOSO\\svc-m365ops, WinHTTP proxy proxy.contoso.local:8080): ')
    assert evidence[1].startswith('network probe (user CONTOSO\\alice, PAC http://wpad/wpad.dat): ')


def test_a_probe_that_passed_keeps_the_events_verdict_and_says_so():
    result = run(events=[event(1098, '0xCAA70007')],
                 host_facts=probed(probe_context('system'), probe_context('user')))
    net = finding(result, 'network_blocked')
    assert net['evidence'] == ['event 1098 0xCAA70007 at 2026-11-20T08:00:00Z: Connection interrupted',
                               'network probe: every endpoint reached in the system context, '
                               'user context (CONTOSO\\alice)']
    assert net['summary'].endswith('The network probe reached every endpoint, so the block is intermittent or '
                                   'specific to the broker (an antivirus or a per-app firewall rule).')
    # Without AAD errors a probe that passed is no finding at all.
    healthy = run(host_facts=probed(probe_context('system'), probe_context('user')))
    assert 'network_blocked' not in ids(healthy) and healthy['plan'] == []


def test_unknown_parts_of_a_probe_are_said_never_reported_as_blocked():
    skipped = probe_result('enterpriseregistration.windows.net', detail='not probed: the time budget ran out')
    result = run(events=[event(1098, '0xCAA70007')], host_facts=probed(
        probe_context('system', [probe_result(), skipped], complete=False),
        probe_context('user', results=[], error='the script failed: Access is denied')))
    evidence = finding(result, 'network_blocked')['evidence']
    assert 'network probe (system as CONTOSO\\svc-m365ops, direct): 1 endpoint(s) not probed, the 4 s budget ran out' in evidence
    assert 'network probe (user CONTOSO\\alice, direct): did not run (the script failed: Access is denied)' in evidence
    assert not any('every endpoint reached' in line for line in evidence)
    # and alone they raise nothing
    assert 'network_blocked' not in ids(run(host_facts=probed(probe_context('system', [skipped], complete=False))))


def test_a_hand_edited_probe_of_odd_types_is_read_as_empty():
    for probe in ({'contexts': [{'results': 'x'}, {'results': [5, None]}]},
                  {'contexts': [{'context': 'user', 'results': [{'blocked': 'firewall'}]}]}):
        result = run(host_facts=facts(network_probe=probe))
        assert 'network_blocked' not in ids(result), probe
    # The rules never see a worse shape: the bundle is refused first (test_evidence.py).
    with pytest.raises(EvidenceError, match='network_probe.contexts'):
        run(host_facts=facts(network_probe={'contexts': 'none'}))


@pytest.mark.parametrize('code, finding_id, rung', [
    ('0xCAA20003', 'token_grant_rejected', 'purge_office_credentials'),
    ('0xCAA90004', 'token_grant_rejected', 'purge_office_credentials'),
    ('80080300', 'wam_account_errors', 'purge_office_credentials'),
    ('0x801C0003', 'device_registration_refused', 'check_device_registration_policy'),
    ('0x801C000E', 'device_registration_refused', 'check_device_registration_policy'),
])
def test_event_code_rules(code, finding_id, rung):
    result = run(events=[event(1097, code)])
    assert finding(result, finding_id)['rung'] == rung


def test_old_events_describe_the_past():
    old = event(1098, '0xCAA50021', '2026-10-01T08:00:00Z')   # 50 days before collected_at
    assert run(events=[old], host_facts=facts())['plan'] == []
    recent = event(1098, '0xCAA50021', '2026-11-10T08:00:00Z')
    assert 'wam_broker_errors' in ids(run(events=[old, recent], host_facts=facts()))


# After a repair: the rung modules record when they changed the host (host_facts.repairs),
# and the errors that led to the repair stay in the log for the whole window.
AFTER_PURGE = [user(credential_targets=[])]


def repaired(rung='reset_token_broker', at='2026-11-20T08:30:00Z', last_boot='2026-11-20T08:35:00Z', **kwargs):
    return facts(users=AFTER_PURGE, repairs={rung: {'at': at, 'summary': 'test'}}, last_boot=last_boot, **kwargs)


def test_broker_errors_before_the_reset_and_its_restart_do_not_count():
    events = [event(1098, '0xCAA50021', '2026-11-20T08:00:00Z'), event(1098, '0xCAA5001C', '2026-11-20T08:10:00Z'),
              # between the reset and the restart: the broker still ran on its old state
              event(1098, '0xCAA50021', '2026-11-20T08:32:00Z')]
    result = run(events=events, host_facts=repaired())
    assert result['plan'] == []
    assert 'wam_broker_errors' not in ids(result)
    note = finding(result, 'events_before_repair')
    assert note['severity'] == 'info' and note['rung'] is None
    assert note['evidence'] == ['3 AAD error event(s) logged before reset_token_broker (the restart at '
                                '2026-11-20T08:35:00Z after it was done at 2026-11-20T08:30:00Z) not counted '
                                'for reset_token_broker']


def test_broker_errors_after_the_restart_count_again():
    events = [event(1098, '0xCAA50021', '2026-11-20T08:00:00Z'), event(1098, '0xCAA50021', '2026-11-20T08:50:00Z')]
    result = run(events=events, host_facts=repaired())
    broker = finding(result, 'wam_broker_errors')
    assert broker['evidence'] == ['event 1098 0xCAA50021 at 2026-11-20T08:50:00Z: ' + broker['evidence'][0].split(': ', 1)[1]]
    assert result['plan'] == ['reset_token_broker']
    assert finding(result, 'events_before_repair')['evidence'][0].startswith('1 AAD error event(s)')


def test_a_reset_without_its_restart_counts_from_the_reset():
    events = [event(1098, '0xCAA50021', '2026-11-20T08:00:00Z'), event(1098, '0xCAA50021', '2026-11-20T08:32:00Z')]
    # the last boot is older than the reset: the restart is still owed
    result = run(events=events, host_facts=repaired(last_boot='2026-11-20T07:00:00Z'))
    assert finding(result, 'wam_broker_errors')['evidence'][0].startswith('event 1098 0xCAA50021 at 2026-11-20T08:32:00Z')
    assert finding(result, 'events_before_repair')['evidence'] == [
        '1 AAD error event(s) logged before reset_token_broker (2026-11-20T08:30:00Z) not counted for reset_token_broker']
    # no boot time at all: the same, the reset's own time
    again = run(events=events, host_facts=repaired(last_boot=None))
    assert finding(again, 'events_before_repair')['evidence'] == finding(result, 'events_before_repair')['evidence']


def test_a_credential_purge_answers_account_and_grant_errors_not_broker_errors():
    events = [event(1098, '0xCAA50021', '2026-11-20T08:00:00Z'), event(1097, '0xCAA20003', '2026-11-20T08:00:00Z'),
              event(1097, '80080300', '2026-11-20T08:05:00Z')]
    result = run(events=events, host_facts=repaired(rung='purge_office_credentials'))
    assert 'token_grant_rejected' not in ids(result) and 'wam_account_errors' not in ids(result)
    assert result['plan'] == ['reset_token_broker']
    # a purge needs no restart: it counts from its own time, whatever the boot time
    assert finding(result, 'events_before_repair')['evidence'] == [
        '2 AAD error event(s) logged before purge_office_credentials (2026-11-20T08:30:00Z) not counted for '
        'purge_office_credentials']


def test_network_errors_are_never_cut_off_by_a_repair():
    events = [event(1098, '0xCAA70004', '2026-11-20T08:00:00Z'), event(1098, '0xCAA50021', '2026-11-20T08:00:00Z')]
    result = run(events=events, host_facts=repaired())
    assert result['plan'] == ['fix_network_path']
    assert finding(result, 'wam_broker_errors')['rung'] is None
    assert 'events_before_repair' not in ids(result)


@pytest.mark.parametrize('repairs', ['reset', ['reset_token_broker'], {'reset_token_broker': 'yesterday'},
                                     {'reset_token_broker': {'at': None, 'summary': 'edited by hand'}},
                                     {'reset_token_broker': {'at': 'last week'}}, {}])
def test_unreadable_repair_records_cut_nothing(repairs):
    events = [event(1098, '0xCAA50021', '2026-11-20T08:00:00Z')]
    result = run(events=events, host_facts=facts(users=AFTER_PURGE, repairs=repairs, last_boot='2026-11-20T08:35:00Z'))
    assert result['plan'] == ['reset_token_broker']
    assert 'events_before_repair' not in ids(result)


def test_unknown_codes_only_from_error_events():
    result = run(events=[event(1098, '0xDEADBEEF'), event(1104, '0x12345678')])
    unknown = finding(result, 'unknown_aad_errors')
    assert unknown['rung'] is None
    assert unknown['evidence'] == ['event 1098 0xDEADBEEF at 2026-11-20T08:00:00Z: Unknown code']


def test_events_of_other_ids_are_ignored():
    # 1022 is not an error-carrying id; 1104 without a code says nothing
    result = run(events=[event(1022, '0xCAA50021'), event(1104, 'no code')])
    assert result['plan'] == []


# --- PRT ------------------------------------------------------------------------------------

def test_prt_missing_resets_the_broker():
    result = run(device(prt='NO', sso_extra={'Attempt Status': '0xc000006d', 'Server Error Code': 'invalid_grant'}))
    prt = finding(result, 'prt_missing')
    assert prt['rung'] == 'reset_token_broker'
    assert prt['evidence'] == ['dsregcmd (alice@contoso.com): AzureAdPrt = NO',
                               'dsregcmd (alice@contoso.com): Attempt Status = 0xc000006d',
                               'dsregcmd (alice@contoso.com): Server Error Code = invalid_grant']


def test_user_context_output_speaks_for_the_user():
    # device-context output over WinRM has no PRT (admin network logon); the user's own has one
    text = device(prt='NO')
    result = run(text, host_facts=facts(users=[user(dsregcmd_status=device())]))
    assert 'prt_missing' not in ids(result)
    result = run(device(), host_facts=facts(users=[user(dsregcmd_status=device(prt='NO'))]))
    assert finding(result, 'prt_missing')['evidence'][0] == 'dsregcmd (alice@contoso.com): AzureAdPrt = NO'


def test_device_file_of_a_live_bundle_does_not_speak_for_users():
    # win_activation_facts ran dsregcmd over WinRM: the admin's network logon has no PRT
    admin = device(prt='NO', account='CONTOSO\\svc-m365ops, svc-m365ops@contoso.com')
    no_user_output = run(admin, host_facts=facts(users=[user(), {'sid': 'S-1', 'status': 'not_logged_on'}]))
    assert 'prt_missing' not in ids(no_user_output)
    assert no_user_output['users'] == ['alice@contoso.com']
    # collected by hand (no host facts): the file is the user's own
    by_hand = run(admin)
    assert finding(by_hand, 'prt_missing')['evidence'][0] == 'dsregcmd (svc-m365ops@contoso.com): AzureAdPrt = NO'
    assert by_hand['users'] == ['svc-m365ops@contoso.com']


def test_live_bundle_without_users_does_not_blame_the_admin_logon():
    # win_activation_facts with nobody logged on (or user_context off): no user output at all,
    # and the device file still ran as the admin, so no PRT finding and no broker reset
    admin = device(prt='NO', account='CONTOSO\\svc-m365ops, svc-m365ops@contoso.com')
    live = run(admin, host_facts=dict(facts(users=[]), collector='win_activation_facts', user_context=False))
    assert 'prt_missing' not in ids(live)
    assert 'reset_token_broker' not in live['plan']


def test_prt_expired_and_stale():
    def live(text):
        # collected_at in the host facts is the reference time
        return run(device(prt='NO'), host_facts=facts(users=[user(dsregcmd_status=text)]))
    expired = live(device(prt_updated='2026-11-01 08:00:00.000 UTC', prt_expiry='2026-11-15 08:00:00.000 UTC'))
    assert finding(expired, 'prt_expired')['rung'] == 'reset_token_broker'
    stale = live(device(prt_updated='2026-11-20 03:00:00.000 UTC'))
    item = finding(stale, 'prt_stale')
    assert (item['severity'], item['rung']) == ('low', None)
    assert stale['plan'] == []
    assert 'prt_stale' not in ids(run(device(prt_updated='2026-11-20 03:00:00.000 UTC')))   # no reference time


def test_no_prt_rules_for_registered_devices():
    result = run(device(aad='NO', domain='NO', wpj='YES', prt='NO'))
    assert result['join_type'] == 'entra_registered'
    assert 'prt_missing' not in ids(result)


# --- host facts -------------------------------------------------------------------------------

def test_extra_work_accounts_from_host_facts():
    accounts = [{'upn': 'alice@contoso.com', 'provider': 'AzureAD'}, {'upn': 'a.b@fabrikam.com', 'provider': 'AzureAD'},
                {'upn': 'alice@outlook.com', 'provider': 'MSA'}]
    result = run(host_facts=facts(users=[user(wam_accounts=accounts)]))
    item = finding(result, 'extra_work_accounts')
    assert item['rung'] == 'remove_extra_work_accounts'
    assert item['evidence'] == ['host facts: CONTOSO\\alice has WAM work account a.b@fabrikam.com (signs in as alice@contoso.com)']


def test_extra_work_accounts_from_dsregcmd():
    registered = run(fixture('registered_two_accounts.txt'))
    assert finding(registered, 'extra_work_accounts')['evidence'] == ['dsregcmd: 2 Work Account boxes (Contoso, Fabrikam)']
    joined = run(device(work_accounts=[('Fabrikam', 'a7e3b9d2-61c4-4f0e-8d2a-39b5c7e1f480')]))
    assert 'extra_work_accounts' in ids(joined)
    same_tenant = run(device(work_accounts=[('Contoso', TENANT)]))
    assert 'extra_work_accounts' not in ids(same_tenant)


def test_office_credentials_for_another_account_are_purged_even_without_symptoms():
    targets = ['MicrosoftOffice16_Data:SSPI:alice@contoso.com', 'MicrosoftOffice16_Data:SSPI:bob@fabrikam.com',
               'virtualapp/didlogical']
    result = run(host_facts=facts(users=[user(credential_targets=targets)]))
    item = finding(result, 'office_credentials_cached')
    assert item['severity'] == 'medium'
    assert len(item['evidence']) == 2 and item['evidence'][1].endswith('(not the sign-in account)')
    assert result['plan'] == ['purge_office_credentials']


@pytest.mark.parametrize('plugin, user_registered, expected', [
    ({'installed': False}, True, 'host facts: Microsoft.AAD.BrokerPlugin is not installed'),
    ({'installed': True, 'status': 'Modified'}, True, 'host facts: Microsoft.AAD.BrokerPlugin status Modified'),
    ({'installed': True, 'status': 'Ok'}, False, 'host facts: BrokerPlugin not registered for CONTOSO\\alice'),
])
def test_broker_plugin_broken(plugin, user_registered, expected):
    result = run(host_facts=facts(users=[user(broker_plugin_registered=user_registered)], broker_plugin=plugin))
    item = finding(result, 'broker_plugin_broken')
    assert (item['rung'], item['evidence']) == ('reregister_broker_plugin', [expected])


def profile(**kwargs):
    data = {'sid': 'S-1-5-21-1-2-3-1104', 'user': 'CONTOSO\\alice',
            'licensing': {'mode': 'vNext', 'licenses': [
                {'product': 'O365ProPlusRetail', 'not_after': '2026-12-14T00:00:00Z', 'reduced_functionality': False}]},
            'identity_policy': {'EnableADAL': None, 'DisableAADWAM': None, 'DisableADALatopWAMOverride': None}}
    data.update(kwargs)
    return data


def test_unsupported_identity_policy_is_reported_not_planned():
    policy = {'EnableADAL': 0, 'DisableAADWAM': 1, 'DisableADALatopWAMOverride': 1}
    result = run(host_facts=facts(profiles=[profile(identity_policy=policy)]))
    item = finding(result, 'unsupported_identity_policy')
    assert item['rung'] is None and len(item['evidence']) == 3
    assert result['plan'] == []


@pytest.mark.parametrize('license', [
    {'product': 'O365ProPlusRetail', 'not_after': '2026-12-14T00:00:00Z', 'reduced_functionality': True},
    {'product': 'O365ProPlusRetail', 'not_after': '2026-11-01T00:00:00Z', 'reduced_functionality': False},
])
def test_reduced_functionality_mode(license):
    result = run(host_facts=facts(profiles=[profile(licensing={'mode': 'vNext', 'licenses': [license]})]))
    assert finding(result, 'reduced_functionality_mode')['rung'] == 'check_license'
    # a license problem is a sign-in symptom: cached Office credentials go first
    assert result['plan'] == ['purge_office_credentials', 'check_license']


def test_no_office_license():
    result = run(host_facts=facts(office={'installed': True}, profiles=[profile(licensing={'mode': 'vNext', 'licenses': []})]))
    assert finding(result, 'no_office_license')['rung'] == 'check_license'
    not_installed = run(host_facts=facts(office={'installed': False}, profiles=[profile(licensing={'licenses': []})]))
    assert 'no_office_license' not in ids(not_installed)
    assert finding(not_installed, 'office_not_installed')['severity'] == 'info'


def test_reboot_pending_and_users_not_checked():
    frank = {'sid': 'S-1', 'user': 'CONTOSO\\frank', 'status': 'not_logged_on', 'message': 'no session'}
    result = run(host_facts=facts(users=[user(), frank], pending_reboot={'marker': True, 'windows': False, 'reasons': []}))
    assert finding(result, 'reboot_pending')['evidence'] == ['host facts: pending reboot (collection marker)']
    assert finding(result, 'user_not_checked')['evidence'] == ['host facts: CONTOSO\\frank not_logged_on: no session']
    assert result['plan'] == []
    assert 'device_healthy' in ids(result)


# --- safety property ----------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(aad=st.sampled_from(['YES', 'NO']), domain=st.sampled_from(['YES', 'NO']), wpj=st.sampled_from(['YES', 'NO']),
       auth=st.sampled_from(['SUCCESS', 'FAILED. Device is either disabled or deleted']),
       recovery=st.sampled_from(['YES', 'NO']), prt=st.sampled_from(['YES', 'NO']),
       expired=st.booleans(), codes=st.lists(st.sampled_from(['0xCAA50021', '0xCAA70007', '0xCAA20003', '0x801C0003',
                                                              '80080300', '0xDEADBEEF']), max_size=4),
       diag=st.sampled_from([{}, {'Client ErrorCode': '0x801c001d'}, {'DRS Discovery Test': 'FAIL [0x801c0021/0x80072ee2]'}]),
       join_age=st.sampled_from([None, 0, 5, 23, 24, 30, 200]))
def test_rejoin_hybrid_only_for_domain_joined_devices(aad, domain, wpj, auth, recovery, prt, expired, codes, diag, join_age):
    validity = '[ 2016-01-01 00:00:00.000 UTC -- %s ]' % ('2026-01-01 00:00:00.000 UTC' if expired else '2036-01-01 00:00:00.000 UTC')
    text = device(aad=aad, domain=domain, wpj=wpj, auth=auth, recovery=recovery, prt=prt, validity=validity, diag_extra=diag)
    record = None
    if join_age is not None:
        at = datetime(2026, 11, 20, 9, 0, 0, tzinfo=timezone.utc) - timedelta(hours=join_age)
        record = submitted(at=at.strftime('%Y-%m-%dT%H:%M:%SZ'))
    result = run(text, [event(1098, code) for code in codes], facts(hybrid_join=record))
    if 'rejoin_hybrid' in result['plan']:
        assert domain == 'YES'
    # a join submitted less than 24 h ago on a device that is not AzureAdJoined yet is awaited
    if join_age is not None and join_age < 24 and (aad, domain) == ('NO', 'YES'):
        assert 'rejoin_hybrid' not in result['plan']
        assert 'hybrid_join_pending' in ids(result)
    else:
        assert 'hybrid_join_pending' not in ids(result)
    if 'forcerecovery_cloud_joined' in result['plan']:
        assert (aad, domain) == ('YES', 'NO')
    assert result['plan'] == plan_of(result['findings'])
    assert (result['plan'] == []) or any(f['rung'] for f in result['findings'])
    assert {f['id'] for f in result['findings']} <= set(FINDING_IDS)


def test_every_finding_and_rung_is_documented():
    docs = os.path.join(HERE, '..', '..', '..', '..', 'docs', 'triage.md')
    if not os.path.isfile(docs):
        pytest.skip('docs not shipped with this copy of the collection')
    with open(docs, encoding='utf-8') as handle:
        text = handle.read()
    assert [name for name in FINDING_IDS if '#### `%s`' % name not in text] == []
    assert [rung for rung in RUNGS if '| `%s` |' % rung not in text] == []


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
                     max_leaves=6)
_USER_KEYS = st.sampled_from(['sid', 'user', 'status', 'sign_in_upn', 'dsregcmd_status', 'credential_targets',
                              'wam_accounts', 'broker_plugin_registered', 'message'])
_PROFILE_KEYS = st.sampled_from(['user', 'licensing', 'identity_policy', 'token_broker'])


@settings(max_examples=250, deadline=None)
@given(dsreg=st.text(max_size=300) | st.sampled_from([device(), device(prt='NO'), device(aad='NO')]),
       users=st.lists(st.dictionaries(_USER_KEYS, _JSON | st.sampled_from(['ok', 'error', device()])), max_size=2),
       profiles=st.lists(st.dictionaries(_PROFILE_KEYS, _JSON), max_size=2),
       extra=st.dictionaries(st.sampled_from(['collected_at', 'office', 'network', 'pending_reboot', 'broker_plugin',
                                              'hybrid_join', 'network_probe']),
                             _JSON, max_size=3))
def test_any_evidence_is_either_refused_by_file_or_triaged(dsreg, users, profiles, extra):
    host_facts = dict(extra, schema=1, users=users, profiles=profiles)
    try:
        evidence = build_evidence(dsreg, None, host_facts)
    except EvidenceError as exc:
        assert exc.file in ('dsregcmd_status.txt', 'host_facts.json')
        return
    result = evaluate(evidence)
    assert result['plan'] == plan_of(result['findings'])
    assert {f['id'] for f in result['findings']} <= set(FINDING_IDS)


def test_odd_types_in_host_facts():
    odd = facts(users=[user(wam_accounts='alice', credential_targets={'a': 1}),
                       {'status': 'error', 'message': 5, 'user': ['x']}],
                profiles=[profile(identity_policy=['EnableADAL'], licensing={'licenses': 'none'})],
                pending_reboot={'windows': True, 'reasons': 'CBS'})
    result = run(host_facts=odd)
    assert finding(result, 'user_not_checked')['evidence'] == ["host facts: ['x'] error: 5"]
    assert finding(result, 'reboot_pending')['evidence'] == ['host facts: pending reboot (Windows)']


def test_bad_evidence():
    with pytest.raises(ValueError, match='evidence'):
        evaluate({'events': []})


# --- folders ------------------------------------------------------------------------------------

EXPECTED_EXAMPLES = {
    'LT-CLOUD-21': (['purge_office_credentials', 'reset_token_broker', 'forcerecovery_cloud_joined'],
                    {'device_recovery_pending', 'wam_broker_errors', 'unsupported_identity_policy',
                     'office_credentials_cached'}),
    'LT-REG-EXTRA': (['purge_office_credentials', 'remove_extra_work_accounts', 'check_license'],
                     {'reduced_functionality_mode', 'extra_work_accounts', 'office_credentials_cached'}),
    'PC-DOM-NOSCP': ([], {'scp_missing', 'not_hybrid_joined'}),
    'PC-HEALTHY': ([], {'device_healthy'}),
    'PC-HYB-PRT': (['purge_office_credentials', 'reset_token_broker'],
                   {'wam_broker_errors', 'prt_missing', 'token_grant_rejected'}),
    'PC-NET-BLOCK': (['fix_network_path'], {'network_blocked', 'prt_missing', 'user_not_checked'}),
}


def test_the_example_hosts():
    if not os.path.isdir(EXAMPLES):
        pytest.skip('examples/evidence not shipped with this copy of the collection')
    hosts = triage_dir(EXAMPLES)
    assert set(EXPECTED_EXAMPLES) <= set(hosts)
    for name, (plan, finding_ids) in EXPECTED_EXAMPLES.items():
        assert hosts[name]['plan'] == plan, name
        assert set(ids(hosts[name])) == finding_ids, name
    # every example exercises a different set of rules
    signatures = [frozenset(ids(entry)) for entry in hosts.values()]
    assert len(set(signatures)) == len(signatures)


def test_triage_dir_keeps_going_past_bad_hosts(tmp_path):
    (tmp_path / 'good').mkdir()
    (tmp_path / 'good' / 'dsregcmd_status.txt').write_text(device())
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'dsregcmd_status.txt').write_text('')
    (tmp_path / 'badjson').mkdir()
    (tmp_path / 'badjson' / 'dsregcmd_status.txt').write_text(device())
    (tmp_path / 'badjson' / 'aad_events.json').write_text('{"Id": ')
    (tmp_path / '.hidden').mkdir()
    (tmp_path / 'README.txt').write_text('not a host')
    hosts = triage_dir(str(tmp_path))
    assert sorted(hosts) == ['badjson', 'empty', 'good']
    assert hosts['good']['plan'] == []
    assert hosts['empty'] == {'error': '%s: empty (expected the output of dsregcmd /status)'
                                       % os.path.join(str(tmp_path), 'empty', 'dsregcmd_status.txt')}
    assert hosts['badjson']['error'].startswith(os.path.join(str(tmp_path), 'badjson', 'aad_events.json') + ': malformed JSON')
    assert triage_bundle(str(tmp_path / 'missing'))['error'].endswith('missing: evidence folder not found')


def test_triage_dir_without_hosts(tmp_path):
    with pytest.raises(EvidenceError, match='no host folders'):
        triage_dir(str(tmp_path))
    with pytest.raises(EvidenceError, match='evidence folder not found'):
        triage_dir(str(tmp_path / 'nope'))


def test_summary_line():
    assert summary_line('PC1', {'error': 'x: empty'}) == 'PC1: ERROR x: empty'
    assert summary_line('PC2', run(host_facts=facts())) == 'PC2: hybrid_joined; healthy; plan: nothing to do'
    blocked = run(fixture('domain_scp_missing.txt'))
    assert summary_line('PC3', blocked) == \
        'PC3: domain_joined; findings: scp_missing, not_hybrid_joined; plan: no automatic rung, see the findings'
    planned = run(events=[event(1098, '0xCAA70007')])
    assert summary_line('PC4', planned) == 'PC4: hybrid_joined; findings: network_blocked; plan: fix_network_path'
