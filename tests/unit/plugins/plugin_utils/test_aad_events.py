# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

import pytest

from ansible_collections.m365ops.activation.plugins.plugin_utils.aad_events import (
    KNOWN_CODES, classify_code, error_events, hex_codes_in, normalise_code, normalise_event_records,
    parse_event_export, parse_time_created,
)

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures', 'aad_events')


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding='utf-8', newline='') as handle:
        return handle.read()


@pytest.mark.parametrize('code', ['0xCAA50021', '0xCAA5001C', '0xCAA70004', '0xCAA70007', '0xCAA20003',
                                  '0xCAA82EE2', '0xCAA90004', '80080300'])
def test_the_issue_codes_are_known(code):
    result = classify_code(code)
    assert result['known'] is True
    assert result['name'] and result['meaning'] and result['source']
    assert result['category'] in ('broker', 'account', 'grant', 'network', 'registration', 'registration_policy')


def test_known_codes_table_is_normalised():
    for code, entry in KNOWN_CODES.items():
        assert code == normalise_code(code)
        assert set(entry) == {'name', 'meaning', 'source', 'category'}


@pytest.mark.parametrize('given, expected', [
    ('0xcaa50021', '0xCAA50021'),
    ('CAA50021', '0xCAA50021'),
    ('80080300', '0x80080300'),
    (0xCAA50021, '0xCAA50021'),
    (-2145648611, '0x801C001D'),
    ('ERROR (0x801c001d)', '0x801C001D'),
    ('0x0', '0x00000000'),
])
def test_normalise_code(given, expected):
    assert normalise_code(given) == expected


@pytest.mark.parametrize('bad', ['', 'not a code', '0xZZ', '123456789', None, True, 1.5])
def test_bad_codes_raise_naming_the_parameter(bad):
    with pytest.raises(ValueError, match='code'):
        classify_code(bad)


def test_unknown_code():
    assert classify_code('0xDEADBEEF') == {
        'code': '0xDEADBEEF', 'known': False, 'name': 'Unknown code',
        'meaning': 'Not in the table of known WAM/AAD codes.', 'source': 'unknown', 'category': 'unknown'}


def test_codes_in_text_ignore_guids_and_keep_order():
    text = ('Error: 0xCAA5001C Token broker operation failed\r\nLog: 0xcaa5001c\r\n'
            'Correlation ID: 0D3E6C1A-4B7F-4E2D-9A8C-1F5B3E7D9C20 TraceId: {e2c4a8f0-7d1b-4c3e-9a5f-0b6d8e2f4a1c} '
            'thumbprint 9A4C2E1F7B3D5A6C8E0F1B2D3C4A5E6F7A8B9C0D and 12345678 then 80080300 and 0x80072ee2.')
    assert hex_codes_in(text) == ['0xCAA5001C', '0x80080300', '0x80072EE2']
    assert hex_codes_in(None) == []


def test_powershell_51_export():
    records = parse_event_export(fixture('ps51_list.json'))
    events = normalise_event_records(records)
    assert [(e['id'], e['time_created']) for e in events] == [
        (1104, '2026-11-20T07:33:20Z'), (1098, '2026-11-20T08:12:03Z'), (1097, '2026-11-20T08:41:07Z')]
    assert events[1]['codes'] == ['0xCAA5001C']
    assert events[1]['level'] == 'Error'
    assert "'class StoreException'" in events[1]['message']   # \u0027 decoded
    assert events[2]['codes'] == ['0xCAA20003']
    assert events[0]['codes'] == []
    assert [e['id'] for e in error_events(events)] == [1098, 1097]


def test_powershell_51_export_with_windows_line_endings_and_bom():
    text = fixture('ps51_list.json')
    windows = '\ufeff' + text.replace('\n', '\r\n')
    assert normalise_event_records(parse_event_export(windows)) == normalise_event_records(parse_event_export(text))


def test_powershell_7_export_converts_to_utc_and_sorts():
    events = normalise_event_records(parse_event_export(fixture('ps7_list.json')))
    assert [(e['time_created'], e['codes']) for e in events] == [
        ('2026-11-20T07:15:42Z', ['0xCAA70007']), ('2026-11-20T08:47:55Z', ['0xCAA50021'])]


def test_single_object_export_and_localised_prose():
    events = normalise_event_records(parse_event_export(fixture('ps7_single.json')))
    assert events == [{'id': 1098, 'level': 'Errore', 'time_created': '2026-11-20T13:14:03Z', 'codes': ['0xCAA5001C'],
                       'message': 'Errore: 0xCAA5001C Operazione del broker di token non riuscita\r\n\r\nLog: 0xcaa5001c'}]


def test_powershell_51_datetime_with_display_hint():
    events = normalise_event_records(parse_event_export(fixture('ps51_displayhint.json')))
    assert events[0]['time_created'] == '2026-11-20T08:12:03Z'


@pytest.mark.parametrize('value, expected', [
    ('/Date(1795162323000)/', '2026-11-20T08:12:03Z'),
    ('/Date(1795162323000+0100)/', '2026-11-20T08:12:03Z'),
    ('/Date(-1000)/', '1969-12-31T23:59:59Z'),
    ('2026-11-20T08:14:03Z', '2026-11-20T08:14:03Z'),
    ('2026-11-20T08:14:03.1234567+05:30', '2026-11-20T02:44:03Z'),
    ('2026-11-20T08:14:03', '2026-11-20T08:14:03Z'),
    ({'value': '/Date(0)/', 'DateTime': 'Thursday, January 1, 1970'}, '1970-01-01T00:00:00Z'),
])
def test_time_created_forms(value, expected):
    assert parse_time_created(value) == expected


@pytest.mark.parametrize('value', ['yesterday', '2026-02-30T00:00:00Z', None, 12, '/Date(abc)/'])
def test_bad_time_created(value):
    with pytest.raises(ValueError, match='TimeCreated'):
        parse_time_created(value)


def test_empty_export_means_no_events():
    assert parse_event_export('') == []
    assert parse_event_export('\ufeff  \r\n') == []
    assert parse_event_export('[]') == []


@pytest.mark.parametrize('text, message', [
    ('[{"Id": 1098,', 'malformed JSON'),
    ('"just a string"', 'expected a JSON object or a list'),
    ('[1, 2]', 'record 0: expected an object'),
    ('[{"LevelDisplayName": "Error"}]', 'record 0: no "Id"'),
])
def test_malformed_export(text, message):
    with pytest.raises(ValueError, match=message):
        parse_event_export(text)


@pytest.mark.parametrize('records, message', [
    ([{'Id': 'x', 'TimeCreated': '/Date(0)/'}], 'record 0: Id'),
    ([{'Id': 1098, 'TimeCreated': 'soon'}], 'record 0: TimeCreated'),
    ([{'Id': True, 'TimeCreated': '/Date(0)/'}], 'record 0: Id'),
    ([{'Level': 'Error'}], 'record 0: no "Id"'),
    ('not a list', 'expected a list'),
])
def test_bad_records(records, message):
    with pytest.raises(ValueError, match=message):
        normalise_event_records(records)


def test_normalised_records_pass_through():
    events = normalise_event_records(parse_event_export(fixture('ps7_list.json')))
    assert normalise_event_records(events) == events
    assert normalise_event_records(None) == []


def test_null_message_and_level():
    events = normalise_event_records([{'Id': 1098, 'LevelDisplayName': None, 'TimeCreated': '/Date(0)/', 'Message': None}])
    assert events == [{'id': 1098, 'level': '', 'time_created': '1970-01-01T00:00:00Z', 'codes': [], 'message': ''}]
