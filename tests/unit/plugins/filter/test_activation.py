# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.m365ops.activation.plugins.filter.activation import FilterModule

FIXTURES = os.path.join(os.path.dirname(__file__), '..', 'plugin_utils', 'fixtures')
FILTERS = FilterModule().filters()


def fixture(*parts):
    with open(os.path.join(FIXTURES, *parts), encoding='utf-8') as handle:
        return handle.read()


HYBRID = fixture('dsreg', 'hybrid_win11.txt')
EVENTS = fixture('aad_events', 'ps7_list.json')


def test_the_filters():
    assert sorted(FILTERS) == ['aad_classify', 'aad_events', 'activation_evaluate', 'activation_evidence',
                               'activation_plan', 'dsreg_status', 'report_host_failure']


UNREACHABLE = {'unreachable': True, 'error': 'ntlm: the specified credentials were rejected by the server'}
NOT_DIAGNOSED = {'error': 'dsregcmd_status.txt: empty file'}
NEEDS_REPAIR = {'join_type': 'hybrid_joined', 'findings': [], 'plan': ['purge_office_credentials', 'reset_token_broker']}
HEALTHY = {'join_type': 'hybrid_joined', 'findings': [], 'plan': []}


@pytest.mark.parametrize('entry, options, expected', [
    # diagnose, by default (diagnose_fail_on_unreachable: true)
    (UNREACHABLE, {}, 'unreachable: ntlm: the specified credentials were rejected by the server'),
    (NOT_DIAGNOSED, {}, 'error: dsregcmd_status.txt: empty file'),
    (None, {}, 'error: no result'),
    (NEEDS_REPAIR, {}, ''),
    (HEALTHY, {}, ''),
    # diagnose_fail_on_unreachable: false
    (UNREACHABLE, {'unreachable': False}, ''),
    (NOT_DIAGNOSED, {'unreachable': False}, ''),
    # diagnose_fail_on_findings: true
    (NEEDS_REPAIR, {'plan': True}, 'plan: purge_office_credentials, reset_token_broker'),
    (HEALTHY, {'plan': True}, ''),
    # remediate: by remediate_fail_on; unreachable and undiagnosed hosts always
    ({'outcome': 'failed', 'outcome_reason': 'rung 1: boom', 'findings': [], 'plan': [], 'error': 'rung 1: boom'},
     {'outcomes': ['failed']}, 'failed: rung 1: boom'),
    ({'outcome': 'needs_user', 'outcome_reason': 'a user was not logged on', 'findings': [], 'plan': []},
     {'outcomes': ['failed']}, ''),
    ({'outcome': 'needs_user', 'outcome_reason': 'a user was not logged on', 'findings': [], 'plan': []},
     {'outcomes': ['failed', 'needs_user']}, 'needs_user: a user was not logged on'),
    ({'error': 'diagnose: win_activation_facts failed'}, {'outcomes': ['failed']}, 'error: diagnose: win_activation_facts failed'),
])
def test_report_host_failure_is_the_one_rule_of_diagnose_and_remediate(entry, options, expected):
    assert FILTERS['report_host_failure'](entry, **options) == expected


def test_report_host_failure_refuses_what_is_not_a_switch():
    with pytest.raises(AnsibleFilterError, match="report_host_failure: unreachable must be a boolean, got 'false'"):
        FILTERS['report_host_failure'](UNREACHABLE, unreachable='false')
    with pytest.raises(AnsibleFilterError, match='expected a report entry'):
        FILTERS['report_host_failure']('PC042')


def test_dsreg_status_text_or_lines():
    parsed = FILTERS['dsreg_status'](HYBRID)
    assert parsed['join_type'] == 'hybrid_joined'
    assert FILTERS['dsreg_status'](HYBRID.split('\n')) == parsed
    with pytest.raises(AnsibleFilterError, match='dsreg_status: expected the text'):
        FILTERS['dsreg_status']({'a': 1})


def test_aad_classify():
    assert FILTERS['aad_classify']('caa50021')['code'] == '0xCAA50021'
    assert FILTERS['aad_classify'](0x80080300)['known'] is True
    with pytest.raises(AnsibleFilterError, match='aad_classify: code'):
        FILTERS['aad_classify']('nonsense')


def test_aad_events_text_list_or_object():
    from_text = FILTERS['aad_events'](EVENTS)
    assert [e['codes'] for e in from_text] == [['0xCAA70007'], ['0xCAA50021']]
    assert FILTERS['aad_events'](json.loads(EVENTS)) == from_text
    assert FILTERS['aad_events'](json.loads(EVENTS)[0]) == from_text[1:]
    with pytest.raises(AnsibleFilterError, match='aad_events: malformed JSON'):
        FILTERS['aad_events']('[{')


def test_evidence_evaluate_and_plan():
    evidence = FILTERS['activation_evidence'](HYBRID, events=EVENTS, host_facts={'schema': 1})
    assert [e['id'] for e in evidence['events']] == [1098, 1098]
    result = FILTERS['activation_evaluate'](evidence)
    assert result['plan'] == ['fix_network_path']
    assert FILTERS['activation_evaluate'](HYBRID, events=EVENTS) == result
    assert FILTERS['activation_plan'](evidence) == ['fix_network_path']
    assert FILTERS['activation_plan'](result) == ['fix_network_path']
    assert FILTERS['activation_plan'](result['findings']) == ['fix_network_path']
    assert FILTERS['activation_plan'](HYBRID) == []


@pytest.mark.parametrize('name, args, message', [
    ('activation_evidence', ('',), 'activation_evidence: dsregcmd_status.txt: empty'),
    ('activation_evidence', (HYBRID, '[{'), 'activation_evidence: malformed JSON'),
    ('activation_evaluate', (42,), 'activation_evaluate: expected dsregcmd /status text or an evidence dict'),
    ('activation_evaluate', (HYBRID, None, {'schema': 3}), 'host_facts.json: schema 3'),
    ('activation_plan', ({'nothing': 1},), 'activation_evaluate: expected'),
])
def test_filter_errors(name, args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        FILTERS[name](*args)
