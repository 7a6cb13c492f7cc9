# -*- coding: utf-8 -*-
# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Microsoft-Windows-AAD/Operational events: parse the JSON export, pull out the hex
error codes and classify them.

The export is what an administrator runs on the device::

    Get-WinEvent -LogName 'Microsoft-Windows-AAD/Operational' |
        Select-Object Id, LevelDisplayName, TimeCreated, Message | ConvertTo-Json

Windows PowerShell 5.1 writes ``TimeCreated`` as ``"\\/Date(1732090443000)\\/"``,
PowerShell 7 as ``"2026-11-20T08:14:03.1234567+01:00"``; one event is written as an
object, several as a list. ``LevelDisplayName`` and ``Message`` are localised, so
decisions rest on the event id and the hex codes only, never on the prose.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

# Event ids of the AAD Operational channel that carry an error code.
ERROR_EVENT_IDS = {
    1098: 'AAD error (WAM/AAD plugin), carries "Error: 0x..."',
    1097: 'AAD warning, carries "Error: 0x..."',
    1081: 'OAuth response error',
    1104: 'HTTP request status',
}

# category drives the rules in triage.py:
#   broker      the token broker / WAM state on the device is broken
#   account     the account WAM hands back is wrong or stale
#   grant       Entra ID refused the grant (expired/revoked token, clock, interaction)
#   network     the broker could not reach Entra ID (proxy, firewall, DNS, TLS)
#   registration  the device registration / join itself failed
#   registration_policy  the tenant refused to register the device
KNOWN_CODES = {
    '0xCAA50021': {
        'name': 'WAM could not get a token for Office',
        'meaning': 'The AAD token broker (WAM) failed to get a token for Microsoft 365 Apps; Microsoft\'s '
                   'article for activation error 0xCAA50021 treats it with the Office credentials, extra '
                   'work accounts, the TokenBroker caches, the license and the device registration.',
        'source': 'WAM / Microsoft.AAD.BrokerPlugin',
        'category': 'broker',
    },
    '0xCAA5001C': {
        'name': 'Token broker operation failed',
        'meaning': 'The Web Account Manager token broker failed the request; usually a damaged '
                   'BrokerPlugin state or TokenBroker cache in the user profile.',
        'source': 'WAM / Microsoft.AAD.BrokerPlugin',
        'category': 'broker',
    },
    '0xCAA20003': {
        'name': 'Authorization grant failed',
        'meaning': 'Entra ID rejected the grant (invalid_grant): an expired or revoked refresh '
                   'token, a changed password, or a device clock that is wrong.',
        'source': 'Entra ID token endpoint',
        'category': 'grant',
    },
    '0xCAA20004': {
        'name': 'Request needs approval',
        'meaning': 'The request needs approval by a resource owner or the authorization server '
                   '(consent or Conditional Access).',
        'source': 'Entra ID token endpoint',
        'category': 'grant',
    },
    '0xCAA90004': {
        'name': 'Interaction required',
        'meaning': 'Entra ID answered the silent token request with a demand for user interaction '
                   '(MFA, consent or a password change) that the broker could not satisfy silently.',
        'source': 'Entra ID token endpoint',
        'category': 'grant',
    },
    '0xCAA90018': {
        'name': 'Wrong credentials',
        'meaning': 'The Windows credentials used differ from the Microsoft 365 credentials.',
        'source': 'WAM / Microsoft.AAD.BrokerPlugin',
        'category': 'account',
    },
    '0x80080300': {
        'name': 'Office/Teams WAM sign-in failure',
        'meaning': 'Office or Teams could not complete the sign-in through WAM ("Something went '
                   'wrong [80080300]"); seen with a stale or mismatched work account in WAM.',
        'source': 'Microsoft 365 Apps / Teams client (WAM)',
        'category': 'account',
    },
    '0xCAA70004': {
        'name': 'Server or proxy not found',
        'meaning': 'The server or proxy was not found: a misconfigured proxy, or an HTTPS '
                   'interception tool in the path.',
        'source': 'network (WinINet/WinHTTP via WAM)',
        'category': 'network',
    },
    '0xCAA70007': {
        'name': 'Connection interrupted',
        'meaning': 'The download failed because the connection was interrupted; a firewall, proxy '
                   'or security agent is cutting the broker off.',
        'source': 'network (WinINet/WinHTTP via WAM)',
        'category': 'network',
    },
    '0xCAA82EE2': {
        'name': 'Request timed out',
        'meaning': 'The request to Entra ID timed out (WinINet 12002).',
        'source': 'network (WinINet/WinHTTP via WAM)',
        'category': 'network',
    },
    '0xCAA82EE7': {
        'name': 'Server name not resolved',
        'meaning': 'The Entra ID server name could not be resolved (WinINet 12007).',
        'source': 'network (WinINet/WinHTTP via WAM)',
        'category': 'network',
    },
    '0x80072EE2': {
        'name': 'WinHTTP timeout',
        'meaning': 'ERROR_WINHTTP_TIMEOUT: the request to the registration or token service timed out.',
        'source': 'network (WinHTTP, dsregcmd)',
        'category': 'network',
    },
    '0x80072EE7': {
        'name': 'WinHTTP name not resolved',
        'meaning': 'ERROR_WINHTTP_NAME_NOT_RESOLVED: the service name could not be resolved.',
        'source': 'network (WinHTTP, dsregcmd)',
        'category': 'network',
    },
    '0x80072EFD': {
        'name': 'WinHTTP cannot connect',
        'meaning': 'ERROR_WINHTTP_CANNOT_CONNECT: the connection to the service failed.',
        'source': 'network (WinHTTP, dsregcmd)',
        'category': 'network',
    },
    '0x801C001D': {
        'name': 'DSREG_AUTOJOIN_ADCONFIG_READ_FAILED',
        'meaning': 'Hybrid join could not read the Service Connection Point (SCP) from Active '
                   'Directory, so it does not know the Entra tenant.',
        'source': 'dsregcmd hybrid join (discover phase)',
        'category': 'registration',
    },
    '0x801C0021': {
        'name': 'DSREG_AUTOJOIN_DISC_FAILED',
        'meaning': 'Hybrid join could not discover the Device Registration Service (usually a '
                   'network path problem; see the second code).',
        'source': 'dsregcmd hybrid join (discover phase)',
        'category': 'registration',
    },
    '0x801C03F2': {
        'name': 'DSREG_E_DIRECTORY_FAILURE',
        'meaning': 'The device object was not found in Entra ID (for a managed domain its '
                   'certificate has not been synced by Entra Connect yet, or it was deleted).',
        'source': 'Device Registration Service',
        'category': 'registration',
    },
    '0x801C0003': {
        'name': 'Device registration not authorized',
        'meaning': 'The user is not allowed to register or join devices ("Users may join/register '
                   'devices" in Entra ID device settings).',
        'source': 'Device Registration Service',
        'category': 'registration_policy',
    },
    '0x801C000E': {
        'name': 'Device registration quota reached',
        'meaning': 'The user has reached the maximum number of devices per user.',
        'source': 'Device Registration Service',
        'category': 'registration_policy',
    },
    '0xC000006D': {
        'name': 'STATUS_LOGON_FAILURE',
        'meaning': 'The PRT request failed with bad user credentials.',
        'source': 'CloudAP AAD plugin (NTSTATUS)',
        'category': 'grant',
    },
}

# Codes without the 0x prefix that Office and Teams show to users.
_BARE_CODES = {'80080300'}

_HEX_RE = re.compile(r'(?<![0-9A-Za-z\-])(0[xX][0-9A-Fa-f]{8}|[0-9A-Fa-f]{8})(?![0-9A-Za-z\-])')
_MS_DATE_RE = re.compile(r'^/Date\((-?\d+)(?:[+-]\d{4})?\)/$')
_ISO_RE = re.compile(
    r'^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?$')


def normalise_code(code) -> str:
    """``0xcaa50021``, ``CAA50021``, ``80080300``, ``3400334369`` -> ``0xCAA50021`` form."""
    if isinstance(code, bool):
        raise ValueError('code: expected a hex error code, got a boolean')
    if isinstance(code, int):
        return '0x%08X' % (code & 0xFFFFFFFF)
    if not isinstance(code, str):
        raise ValueError('code: expected a hex error code such as 0xCAA50021, got %r' % (code,))
    text = code.strip()
    found = hex_codes_in(text) if len(text) > 10 else []
    if found:
        return found[0]
    if text[:2] in ('0x', '0X'):
        text = text[2:]
    if not text or len(text) > 8 or not re.match(r'^[0-9A-Fa-f]+$', text):
        raise ValueError('code: %r is not a hex error code such as 0xCAA50021' % (code,))
    return '0x' + text.upper().rjust(8, '0')


def classify_code(code) -> dict:
    """Classification of one code: ``{code, known, name, meaning, source, category}``.

    Unknown but well-formed codes come back with ``known: False`` and category
    ``unknown``; malformed input raises ValueError naming the parameter.
    """
    normal = normalise_code(code)
    entry = KNOWN_CODES.get(normal)
    if entry is None:
        return {'code': normal, 'known': False, 'name': 'Unknown code',
                'meaning': 'Not in the table of known WAM/AAD codes.', 'source': 'unknown',
                'category': 'unknown'}
    result = {'code': normal, 'known': True}
    result.update(entry)
    return result


def hex_codes_in(text) -> list:
    """Hex codes in free text, normalised, in order of appearance, without duplicates.

    ``0x`` followed by eight hex digits always counts; bare eight-digit codes only when
    they are in the known table (``80080300``): a bare pattern would also match
    GUID fragments and thumbprints.
    """
    if not isinstance(text, str):
        return []
    codes = []
    for token in _HEX_RE.findall(text):
        if token[:2] in ('0x', '0X'):
            code = '0x' + token[2:].upper()
        elif token in _BARE_CODES:
            code = '0x' + token
        else:
            continue
        if code not in codes:
            codes.append(code)
    return codes


def _iso_utc(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def parse_time_created(value) -> str:
    """TimeCreated in either export form -> ISO-8601 UTC (``2026-11-20T08:14:03Z``).

    Raises ValueError on anything else.
    """
    if isinstance(value, dict):
        # PowerShell 5.1 wraps a DateTime carrying ETS members as
        # {"value": "\/Date(...)\/", "DisplayHint": 2, "DateTime": "..."}.
        value = value.get('value')
    if not isinstance(value, str):
        raise ValueError('TimeCreated: expected a date string, got %r' % (value,))
    text = value.strip()
    match = _MS_DATE_RE.match(text)
    if match:
        # The milliseconds are since the Unix epoch in UTC; an offset suffix, when
        # present, only says which zone the value was displayed in.
        epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
        return _iso_utc(epoch + timedelta(milliseconds=int(match.group(1))))
    match = _ISO_RE.match(text)
    if match:
        year, month, day, hour, minute, second, fraction, zone = match.groups()
        micro = int((fraction or '0')[:6].ljust(6, '0'))
        try:
            dt = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                          micro, tzinfo=timezone.utc)
        except ValueError as exc:
            raise ValueError('TimeCreated: %r is not a valid date (%s)' % (value, exc)) from exc
        if zone and zone != 'Z':
            sign = 1 if zone[0] == '+' else -1
            digits = zone[1:].replace(':', '')
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            # The wall time was local to that offset; subtract it to get UTC.
            dt = dt - sign * offset
        return _iso_utc(dt)
    raise ValueError('TimeCreated: %r is neither "\\/Date(ms)\\/" nor an ISO-8601 time' % (value,))


def parse_event_export(text: str) -> list:
    """Parse the JSON text of the export into a list of raw records (dicts).

    Accepts a single object or a list; whitespace only means no events. Raises
    ValueError with a clear message on malformed input.
    """
    if not isinstance(text, str):
        raise ValueError('event export: expected JSON text, got %s' % type(text).__name__)
    text = text.lstrip('\ufeff')
    if not text.strip():
        return []
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError('malformed JSON: %s' % exc) from exc
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ValueError('expected a JSON object or a list of objects, got %s' % type(data).__name__)
    for index, record in enumerate(data):
        if not isinstance(record, dict):
            raise ValueError('record %d: expected an object with Id, LevelDisplayName, '
                             'TimeCreated, Message; got %s' % (index, type(record).__name__))
        if 'Id' not in record and 'id' not in record:
            raise ValueError('record %d: no "Id" (export with Select-Object Id, LevelDisplayName, '
                             'TimeCreated, Message)' % index)
    return data


def _event_id(value, index):
    if isinstance(value, bool):
        value = None
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ValueError('record %d: Id %r is not an event id' % (index, value)) from exc


def normalise_event_records(records: list) -> list:
    """Raw export records (or already normalised ones) -> ``{id, level, time_created,
    codes, message}``, oldest first. Raises ValueError naming the record on bad input."""
    if records is None:
        return []
    if not isinstance(records, list):
        raise ValueError('event records: expected a list, got %s' % type(records).__name__)
    events = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ValueError('record %d: expected an object, got %s' % (index, type(record).__name__))
        if 'Id' in record:
            raw_id, level, created, message = (record.get('Id'), record.get('LevelDisplayName'),
                                               record.get('TimeCreated'), record.get('Message'))
        elif 'id' in record:
            raw_id, level, created, message = (record.get('id'), record.get('level'),
                                               record.get('time_created'), record.get('message'))
        else:
            raise ValueError('record %d: no "Id"' % index)
        event_id = _event_id(raw_id, index)
        try:
            time_created = parse_time_created(created)
        except ValueError as exc:
            raise ValueError('record %d: %s' % (index, exc)) from exc
        message = message if isinstance(message, str) else ''
        events.append({
            'id': event_id,
            'level': level if isinstance(level, str) else '',
            'time_created': time_created,
            'codes': hex_codes_in(message),
            'message': message,
        })
    events.sort(key=lambda event: event['time_created'])
    return events


def error_events(events: list) -> list:
    """The normalised events of the error-carrying ids that hold at least one code."""
    return [event for event in events if event['id'] in ERROR_EVENT_IDS and event['codes']]
