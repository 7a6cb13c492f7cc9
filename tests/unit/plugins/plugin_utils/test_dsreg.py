# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.m365ops.activation.plugins.plugin_utils.dsreg import (
    JOIN_TYPES, hex_codes, join_type_of, lookup, parse_dsreg_status, parse_time, snake_case, validity_window,
)

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures', 'dsreg')
BORDER = '+' + '-' * 70 + '+'


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding='utf-8', newline='') as handle:
        return handle.read()


def box(title, *lines):
    return '\n'.join([BORDER, '| %-69s|' % title, BORDER, ''] + list(lines) + [''])


@pytest.mark.parametrize('name, expected', [
    ('Device State', 'device_state'),
    ('SSO State', 'sso_state'),
    ('URL Specific Proxy Config', 'url_specific_proxy_config'),
    ('AzureAdJoined', 'azure_ad_joined'),
    ('WamDefaultGUID', 'wam_default_guid'),
    ('NgcPreReq', 'ngc_pre_req'),
    ('Client ErrorCode', 'client_error_code'),
    ('Fallback to Fed-Join', 'fallback_to_fed_join'),
    ('IsUserAzureAD', 'is_user_azure_ad'),
    ('DRS Discovery Test', 'drs_discovery_test'),
    ('Auto-Configuration URL', 'auto_configuration_url'),
    ('AzureAdPrtUpdateTime', 'azure_ad_prt_update_time'),
    ('HTTP status', 'http_status'),
    ('Work Account 2', 'work_account_2'),
    ('---', ''),
])
def test_snake_case(name, expected):
    assert snake_case(name) == expected


def test_full_windows_11_output():
    parsed = parse_dsreg_status(fixture('hybrid_win11.txt'))
    assert parsed['join_type'] == 'hybrid_joined'
    assert parsed['device_state']['azure_ad_joined'] is True
    assert parsed['device_state']['enterprise_joined'] is False
    assert parsed['device_state']['virtual_desktop'] == 'NOT SET'
    assert parsed['device_state']['device_name'] == 'PC042.contoso.local'
    assert parsed['device_details']['device_certificate_validity'] == \
        '[ 2025-03-11 07:12:44.000 UTC -- 2035-03-11 07:42:44.000 UTC ]'
    assert parsed['tenant_details']['tenant_name'] == 'Contoso'
    assert parsed['tenant_details']['auth_code_url'].startswith('https://login.microsoftonline.com/')
    assert parsed['user_state']['wam_default_guid'] == '{B16898C6-A148-4967-9171-64D755DA8520} (AzureAd)'
    assert parsed['sso_state']['azure_ad_prt'] is True
    assert parsed['sso_state']['enterprise_prt_authority'] == ''
    assert parsed['diagnostic_data']['executing_account_name'] == 'CONTOSO\\alice, alice@contoso.com'
    assert parsed['ie_proxy_config_for_current_user']['auto_configuration_url'] == ''
    assert parsed['win_http_default_proxy_config']['access_type'] == 'DIRECT'
    assert parsed['ngc_prerequisite_check']['pre_req_result'] == 'WillNotProvision'
    assert parsed['work_accounts'] == []


def test_windows_line_endings():
    # files stay LF in git (ansible-test line-endings); Windows writes CRLF
    text = fixture('hybrid_win11.txt')
    assert parse_dsreg_status(text.replace('\n', '\r\n')) == parse_dsreg_status(text)
    assert parse_dsreg_status(text.replace('\n', '\r')) == parse_dsreg_status(text)


def test_console_wrapped_values_join_back_exactly():
    plain = parse_dsreg_status(fixture('hybrid_win11.txt'))
    wrapped_text = fixture('hybrid_win11_wrapped80.txt')
    assert max(len(line) for line in wrapped_text.split('\n')) == 80
    assert parse_dsreg_status(wrapped_text) == plain
    assert plain['tenant_details']['settings_url'] == (
        'eyJVcmlzIjpbImh0dHBzOi8va2FpbGFuaS5vbmUubWljcm9zb2Z0LmNvbS8iLCJodHRwczovL2thaWxhbmkxLm9uZS5taWNyb3NvZnQu'
        'Y29tLyIsImh0dHBzOi8va2FpbGFuaS5vbmUubWljcm9zb2Z0LmNvbS8iXX0=')


def test_wrap_at_a_space_keeps_the_space():
    text = box('SSO State',
               '                AzureAdPrt : NO',
               '  Server Error Description : AADSTS50126: Error validating credentials due to invalid',
               ' username or password.',
               '               HTTP status : 400')
    sso = parse_dsreg_status(text)['sso_state']
    assert sso['server_error_description'] == \
        'AADSTS50126: Error validating credentials due to invalid username or password.'
    assert sso['http_status'] == '400'


def test_blank_line_ends_a_value():
    text = box('Tenant Details', '               SettingsUrl : abc', '', 'def')
    assert parse_dsreg_status(text)['tenant_details']['settings_url'] == 'abc'


def test_pre_1809_layout():
    parsed = parse_dsreg_status(fixture('old_1803_layout.txt'))
    assert parsed['join_type'] == 'hybrid_joined'
    state = parsed['device_state']
    assert state['domain_name'] == 'CONTOSO'
    assert state['tenant_name'] == 'Contoso'
    assert state['key_sign_test'] == 'MUST Run elevated to test.'
    assert state['access_token_url'] == 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/token'
    assert state['dm_compliance_url'] == 'https://portal.manage-beta.microsoft.com/?portalAction=Compliance'
    assert parsed['user_state']['wam_default_authority'] == 'organizations'
    assert parsed['sso_state'] == {
        'azure_ad_prt': True,
        'azure_ad_prt_authority': 'https://login.microsoftonline.com/72b988bf-0000-4c6e-9d2a-2d7cd0110000',
        'enterprise_prt': False,
        'enterprise_prt_authority': '',
    }
    # the old layout kept tenant facts in Device State; lookup finds them without a box
    assert lookup(parsed, 'tenant_name', 'tenant_details') == 'Contoso'


def test_what_people_paste_is_tolerated():
    clean = parse_dsreg_status(fixture('domain_scp_missing.txt'))
    body = fixture('domain_scp_missing.txt').split('\n')
    # prompt, banner, chatter, uniform indentation, trailing footer, CRLF
    messy = ['Microsoft Windows [Version 10.0.19045.5131]', '(c) Microsoft Corporation. All rights reserved.', '']
    for line in body:
        messy.append('\t  ' + line if line else line)
        if 'Token acquisition Test' in line:
            messy.append('\t  Waiting for Diagnostics Task to complete...')
    messy.append('\t  C:\\Windows\\system32>')
    parsed = parse_dsreg_status('\r\n'.join(messy))
    assert parsed == clean
    assert parsed['diagnostic_data']['token_acquisition_test'] == 'SKIPPED'
    assert parsed['diagnostic_data']['fallback_to_fed_join'] == 'DISABLED'
    assert parsed['diagnostic_data']['key_sign_test'] == 'ERROR (0x80090016)'
    assert parsed['join_type'] == 'domain_joined'


def test_work_accounts_in_order():
    parsed = parse_dsreg_status(fixture('registered_two_accounts.txt'))
    assert parsed['join_type'] == 'entra_registered'
    assert [account['workplace_tenant_name'] for account in parsed['work_accounts']] == ['Contoso', 'Fabrikam']
    assert parsed['work_accounts'][0]['tpm_protected'] is False
    assert 'work_account_1' not in parsed


@pytest.mark.parametrize('aad, domain, wpj, expected', [
    ('YES', 'YES', 'NO', 'hybrid_joined'),
    ('YES', 'NO', 'NO', 'entra_joined'),
    ('NO', 'YES', 'NO', 'domain_joined'),
    ('NO', 'NO', 'YES', 'entra_registered'),
    ('NO', 'NO', 'NO', 'workgroup'),
    ('YES', 'NO', 'YES', 'entra_joined'),
])
def test_join_type(aad, domain, wpj, expected):
    text = box('Device State', '             AzureAdJoined : %s' % aad, '              DomainJoined : %s' % domain) \
        + box('User State', '           WorkplaceJoined : %s' % wpj)
    parsed = parse_dsreg_status(text)
    assert parsed['join_type'] == expected
    assert join_type_of(parsed) == expected


def test_only_upper_case_yes_no_are_booleans():
    text = box('Device State', '             AzureAdJoined : Yes', '           Virtual Desktop : NO ')
    state = parse_dsreg_status(text)['device_state']
    assert state == {'azure_ad_joined': 'Yes', 'virtual_desktop': False}


def test_repeated_key_keeps_the_first_and_repeated_box_merges():
    text = box('Device State', '             AzureAdJoined : YES', '             AzureAdJoined : NO') \
        + box('Device State', '              DomainJoined : YES')
    assert parse_dsreg_status(text)['device_state'] == {'azure_ad_joined': True, 'domain_joined': True}


def test_lines_outside_boxes_and_reserved_titles_are_ignored():
    text = 'Note: pasted from the ticket\nAzureAdJoined : YES\n' + box('Join Type', 'Foo : bar') \
        + box('Work Accounts', 'Foo : bar')
    assert parse_dsreg_status(text) == {'work_accounts': [], 'join_type': 'workgroup'}


@pytest.mark.parametrize('text', ['', None, '   \n\n', 'garbage without structure', '|', '+--+'])
def test_empty_and_garbage(text):
    assert parse_dsreg_status(text) == {'work_accounts': [], 'join_type': 'workgroup'}


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_raises_on_arbitrary_text(text):
    parsed = parse_dsreg_status(text)
    assert parsed['join_type'] in JOIN_TYPES
    assert isinstance(parsed['work_accounts'], list)


_PIECES = [BORDER, '| Device State |', '| Work Account 1 |', '| SSO State |', '|', '+', ' : ', ':', 'YES', 'NO',
           '             AzureAdJoined : YES', '              DomainJoined : YES', 'KeySignTest: : x',
           'https://login.microsoftonline.com/x', 'C:\\Users\\a>', 'Waiting for', 'For more information',
           '\t', '    ', '\r\n', '\n', '\r', '0xCAA50021', '[ 2026-01-01 00:00:00.000 UTC -- x ]']


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=12)), max_size=40))
def test_never_raises_on_dsregcmd_like_text(pieces):
    parsed = parse_dsreg_status(''.join(pieces))
    assert parsed['join_type'] in JOIN_TYPES
    for name, section in parsed.items():
        if name not in ('join_type', 'work_accounts'):
            assert isinstance(section, dict)
            assert all(isinstance(v, (bool, str)) for v in section.values())


def test_hex_codes():
    assert hex_codes('FAIL [0x801c0021/0x80072ee2]') == ['0x801C0021', '0x80072EE2']
    assert hex_codes('ERROR (0x80090016)') == ['0x80090016']
    assert hex_codes('0x0') == ['0x00000000']
    assert hex_codes('PASS') == []
    assert hex_codes(True) == []


def test_times_and_validity():
    assert parse_time('2026-11-20 08:10:12.000 UTC') == datetime(2026, 11, 20, 8, 10, 12, tzinfo=timezone.utc)
    assert parse_time('NONE') is None
    assert parse_time('2026-13-40 99:00:00.000 UTC') is None
    assert parse_time(None) is None
    start, end = validity_window('[ 2025-03-11 07:12:44.000 UTC -- 2035-03-11 07:42:44.000 UTC ]')
    assert (start.year, end.year, end.minute) == (2025, 2035, 42)
    assert validity_window('NOT SET') is None
    assert validity_window('[ x -- y ]') is None
