# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.m365ops.activation.plugins.plugin_utils.evidence import (
    EvidenceError, build_evidence, decode_text, load_bundle, write_bundle,
)

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures')


def fixture(*parts):
    with open(os.path.join(FIXTURES, *parts), encoding='utf-8', newline='') as handle:
        return handle.read()


HYBRID = fixture('dsreg', 'hybrid_win11.txt')
PS51 = fixture('aad_events', 'ps51_list.json')
FACTS = {
    'schema': 1, 'collected_at': '2026-11-20T09:00:00Z', 'hostname': 'PC042',
    'users': [{'sid': 'S-1-5-21-1-2-3-1104', 'user': 'CONTOSO\\alice', 'status': 'ok', 'sign_in_upn': 'alice@contoso.com',
               'dsregcmd_status': fixture('dsreg', 'cloud_device_auth_failed.txt'),
               'credential_targets': [], 'wam_accounts': []},
              {'sid': 'S-1-5-21-1-2-3-1201', 'user': 'CONTOSO\\frank', 'status': 'not_logged_on', 'message': 'no session'}],
}


def make_bundle(root, name='PC042', dsreg=HYBRID, events=PS51, facts=None, dsreg_bytes=None):
    host = root / name
    host.mkdir()
    if dsreg_bytes is not None:
        (host / 'dsregcmd_status.txt').write_bytes(dsreg_bytes)
    elif dsreg is not None:
        (host / 'dsregcmd_status.txt').write_text(dsreg, encoding='utf-8')
    if events is not None:
        (host / 'aad_events.json').write_text(events, encoding='utf-8')
    if facts is not None:
        (host / 'host_facts.json').write_text(facts if isinstance(facts, str) else json.dumps(facts), encoding='utf-8')
    return str(host)


def test_build_evidence_shape():
    evidence = build_evidence(HYBRID, json.loads(PS51), FACTS)
    assert evidence['dsreg']['join_type'] == 'hybrid_joined'
    assert [e['id'] for e in evidence['events']] == [1104, 1098, 1097]
    assert evidence['host_facts'] is FACTS
    # the user-context dsregcmd output is parsed per user; users without data get None
    assert evidence['users'][0]['dsreg']['device_details']['device_auth_status'].startswith('FAILED')
    assert evidence['users'][1]['dsreg'] is None
    assert build_evidence(HYBRID, None, None)['events'] == []


def test_load_bundle_reads_all_three_files(tmp_path):
    evidence = load_bundle(make_bundle(tmp_path, facts=FACTS))
    assert evidence == build_evidence(HYBRID, json.loads(PS51), FACTS)


def test_load_bundle_windows_encodings(tmp_path):
    utf16 = b'\xff\xfe' + HYBRID.replace('\r\n', '\n').replace('\n', '\r\n').encode('utf-16-le')
    assert load_bundle(make_bundle(tmp_path, 'A', dsreg_bytes=utf16))['dsreg']['join_type'] == 'hybrid_joined'
    bom8 = b'\xef\xbb\xbf' + HYBRID.encode('utf-8')
    host = make_bundle(tmp_path, 'B', dsreg_bytes=bom8, events=None)
    (tmp_path / 'B' / 'aad_events.json').write_bytes(b'\xef\xbb\xbf' + PS51.encode('utf-8'))
    assert len(load_bundle(host)['events']) == 3


@pytest.mark.parametrize('data, expected', [
    (b'\xff\xfeA\x00:\x00', 'A:'),
    (b'A\x00:\x00B\x00', 'A:B'),
    (b'\xef\xbb\xbfcaf\xc3\xa9', 'café'),
    (b'caf\xe9', 'café'),
])
def test_decode_text(data, expected):
    assert decode_text(data) == expected


def test_missing_folder(tmp_path):
    with pytest.raises(EvidenceError) as err:
        load_bundle(str(tmp_path / 'nope'))
    assert err.value.file == str(tmp_path / 'nope')
    assert 'evidence folder not found' in str(err.value)


@pytest.mark.parametrize('kwargs, file, message', [
    ({'dsreg': None}, 'dsregcmd_status.txt', 'missing'),
    ({'dsreg': ''}, 'dsregcmd_status.txt', 'empty'),
    ({'dsreg': '  \r\n\r\n'}, 'dsregcmd_status.txt', 'empty'),
    ({'dsreg': '<html><body>Access denied</body></html>'}, 'dsregcmd_status.txt', 'no dsregcmd /status sections'),
    ({'events': '[{"Id": 1098, "TimeCreated": '}, 'aad_events.json', 'malformed JSON'),
    ({'events': '[{"Id": 1098, "TimeCreated": "tomorrow"}]'}, 'aad_events.json', 'record 0: TimeCreated'),
    ({'facts': '{"schema": 1,'}, 'host_facts.json', 'malformed JSON'),
    ({'facts': '[1]'}, 'host_facts.json', 'expected a JSON object'),
    ({'facts': {'schema': 2}}, 'host_facts.json', 'schema 2 is not supported'),
    ({'facts': {'users': {'alice': {}}}}, 'host_facts.json', '"users" must be a list'),
    ({'facts': {'network': 'direct'}}, 'host_facts.json', '"network" must be an object'),
    ({'facts': {'network_probe': ['system']}}, 'host_facts.json', '"network_probe" must be an object'),
    ({'facts': {'network_probe': {'contexts': {'system': {}}}}}, 'host_facts.json',
     '"network_probe.contexts" must be a list of objects'),
    ({'facts': {'users': [{'status': 'maybe'}]}}, 'host_facts.json', 'users\\[0\\].status'),
])
def test_bad_bundles_name_the_file(tmp_path, kwargs, file, message):
    host = make_bundle(tmp_path, **kwargs)
    with pytest.raises(EvidenceError, match=message) as err:
        load_bundle(host)
    assert err.value.file == os.path.join(host, file)
    assert str(err.value).startswith(os.path.join(host, file) + ': ')


def test_write_bundle_round_trip(tmp_path):
    host = str(tmp_path / 'new' / 'PC042')
    written = write_bundle(host, HYBRID, json.loads(PS51), FACTS)
    assert written == [os.path.join(host, n) for n in ('dsregcmd_status.txt', 'aad_events.json', 'host_facts.json')]
    assert load_bundle(host) == build_evidence(HYBRID, json.loads(PS51), FACTS)
    # events are written in the PowerShell 7 form
    written_events = json.loads((tmp_path / 'new' / 'PC042' / 'aad_events.json').read_text())
    assert written_events[0]['TimeCreated'] == '2026-11-20T07:33:20Z'
    assert not [n for n in os.listdir(host) if n.endswith('.tmp')]


def test_write_bundle_optional_parts(tmp_path):
    host = str(tmp_path / 'PC043')
    assert write_bundle(host, HYBRID, None, None) == [os.path.join(host, 'dsregcmd_status.txt')]
    assert load_bundle(host)['events'] == []


def test_write_bundle_refuses_bad_input_and_writes_nothing(tmp_path):
    host = tmp_path / 'PC044'
    with pytest.raises(EvidenceError, match='dsregcmd_status.txt: empty'):
        write_bundle(str(host), '', None, None)
    with pytest.raises(EvidenceError, match='aad_events.json'):
        write_bundle(str(host), HYBRID, [{'Id': 'x'}], None)
    assert not host.exists()


def test_example_evidence_loads():
    examples = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'examples', 'evidence')
    if not os.path.isdir(examples):
        pytest.skip('examples/evidence not shipped with this copy of the collection')
    hosts = sorted(os.listdir(examples))
    assert len(hosts) >= 6
    for host in hosts:
        assert load_bundle(os.path.join(examples, host))['dsreg']['join_type']


def test_evidence_bundle_is_private(tmp_path):
    import stat
    from ansible_collections.m365ops.activation.plugins.plugin_utils import evidence as ev

    source = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "examples", "evidence", "PC-HYB-PRT")
    bundle = ev.load_bundle(source)
    with open(os.path.join(source, ev.DSREG_FILE), encoding="utf-8") as handle:
        dsreg = handle.read()
    old = os.umask(0o022)
    try:
        written = ev.write_bundle(str(tmp_path / "evidence" / "PC-HYB-PRT"), dsreg, None, None)
    finally:
        os.umask(old)
    assert bundle and written
    assert all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in written)
    assert stat.S_IMODE(os.stat(tmp_path / "evidence").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "evidence" / "PC-HYB-PRT").st_mode) == 0o700
