# -*- coding: utf-8 -*-
# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Evidence bundles: one folder per host (layout in docs/development.md).

::

    <host>/dsregcmd_status.txt   device-context ``dsregcmd /status`` (required)
    <host>/aad_events.json       AAD Operational export (optional, PS 5.1 or PS 7 form)
    <host>/host_facts.json       what win_activation_facts gathers (optional, schema 1)

``build_evidence`` is the one place that turns raw texts into the dict the rules
engine (triage.evaluate) reads, so live diagnosis and offline triage agree.
"""

from __future__ import annotations

import json
import os

from .aad_events import normalise_event_records, parse_event_export
from .dsreg import parse_dsreg_status

DSREG_FILE = 'dsregcmd_status.txt'
EVENTS_FILE = 'aad_events.json'
FACTS_FILE = 'host_facts.json'
HOST_FACTS_SCHEMA = 1
USER_STATUSES = ('ok', 'not_logged_on', 'timeout', 'access_denied', 'error')

# Keys every real dsregcmd /status output has in one of its boxes; text with none of
# them is not dsregcmd output (a wrong file, an error page, a truncated paste).
_SIGNATURE_KEYS = ('azure_ad_joined', 'domain_joined', 'workplace_joined', 'enterprise_joined')


class EvidenceError(Exception):
    """Bad or missing evidence. ``file`` names the file (or folder) at fault."""

    def __init__(self, file: str, message: str):
        super().__init__('%s: %s' % (file, message))
        self.file = file
        self.reason = message


def decode_text(data: bytes, file: str = '') -> str:
    """Decode a file as Windows tools write it: UTF-16 with BOM (``>`` in Windows
    PowerShell 5.1), UTF-8 with or without BOM, else the legacy code page (cp1252)."""
    if data.startswith(b'\xff\xfe') or data.startswith(b'\xfe\xff'):
        try:
            return data.decode('utf-16')
        except UnicodeDecodeError as exc:
            raise EvidenceError(file, 'not valid UTF-16 text (%s)' % exc) from exc
    if data.startswith(b'\xef\xbb\xbf'):
        data = data[3:]
    if b'\x00' in data[:200] and len(data) > 1 and data[1:2] == b'\x00':
        # UTF-16 LE without BOM, as some copy tools write it.
        try:
            return data.decode('utf-16-le')
        except UnicodeDecodeError:
            pass
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError:
        return data.decode('cp1252', errors='replace')


def _check_dsreg(parsed: dict, file: str):
    for section in parsed.values():
        if isinstance(section, dict) and any(key in section for key in _SIGNATURE_KEYS):
            return
    raise EvidenceError(file, 'no dsregcmd /status sections found (expected boxes such as '
                              '"Device State" with AzureAdJoined / DomainJoined)')


def _check_host_facts(facts, file: str) -> dict:
    if facts is None:
        return {}
    if not isinstance(facts, dict):
        raise EvidenceError(file, 'expected a JSON object, got %s' % type(facts).__name__)
    schema = facts.get('schema', HOST_FACTS_SCHEMA)
    if schema != HOST_FACTS_SCHEMA:
        raise EvidenceError(file, 'schema %r is not supported (expected %d)' % (schema, HOST_FACTS_SCHEMA))
    for key in ('profiles', 'users'):
        value = facts.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise EvidenceError(file, '"%s" must be a list of objects' % key)
    for key in ('os', 'office', 'network', 'pending_reboot', 'broker_plugin'):
        value = facts.get(key)
        if value is not None and not isinstance(value, dict):
            raise EvidenceError(file, '"%s" must be an object' % key)
    probe = facts.get('network_probe')
    if probe is not None:
        if not isinstance(probe, dict):
            raise EvidenceError(file, '"network_probe" must be an object')
        contexts = probe.get('contexts', [])
        if not isinstance(contexts, list) or not all(isinstance(item, dict) for item in contexts):
            raise EvidenceError(file, '"network_probe.contexts" must be a list of objects')
    for index, user in enumerate(facts.get('users', [])):
        status = user.get('status', 'ok')
        if status not in USER_STATUSES:
            raise EvidenceError(file, 'users[%d].status %r is not one of %s'
                                % (index, status, ', '.join(USER_STATUSES)))
    return facts


def build_evidence(dsregcmd_text: str, event_records, host_facts) -> dict:
    """Raw texts -> the evidence dict triage.evaluate reads.

    ``event_records`` are export records (``Id``, ``TimeCreated``...) or normalised
    ones; ``host_facts`` is the host_facts.json object. Raises EvidenceError naming
    the file the bad part would come from.
    """
    if not isinstance(dsregcmd_text, str) or not dsregcmd_text.strip():
        raise EvidenceError(DSREG_FILE, 'empty (expected the output of dsregcmd /status)')
    dsreg = parse_dsreg_status(dsregcmd_text)
    _check_dsreg(dsreg, DSREG_FILE)
    try:
        events = normalise_event_records(event_records)
    except ValueError as exc:
        raise EvidenceError(EVENTS_FILE, str(exc)) from exc
    facts = _check_host_facts(host_facts, FACTS_FILE)

    users = []
    for user in facts.get('users', []):
        entry = dict(user)
        text = user.get('dsregcmd_status')
        # The user-context output is what tells whether *that user* has a PRT; the
        # device-context one run over WinRM speaks for the admin's network logon.
        entry['dsreg'] = parse_dsreg_status(text) if isinstance(text, str) and text.strip() else None
        users.append(entry)
    return {
        'dsreg': dsreg,
        'events': events,
        'host_facts': facts,
        'users': users,
    }


def _read(path: str) -> str:
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except OSError as exc:
        raise EvidenceError(path, 'cannot read (%s)' % (exc.strerror or exc)) from exc
    return decode_text(data, path)


def load_bundle(host_dir: str) -> dict:
    """Read one host folder and return ``build_evidence(...)`` for it.

    Raises EvidenceError whose ``file`` is the full path of the file at fault.
    """
    if not os.path.isdir(host_dir):
        raise EvidenceError(host_dir, 'evidence folder not found')
    dsreg_path = os.path.join(host_dir, DSREG_FILE)
    events_path = os.path.join(host_dir, EVENTS_FILE)
    facts_path = os.path.join(host_dir, FACTS_FILE)
    if not os.path.isfile(dsreg_path):
        raise EvidenceError(dsreg_path, 'missing (required: the output of dsregcmd /status)')
    dsreg_text = _read(dsreg_path)

    records = None
    if os.path.exists(events_path):
        try:
            records = parse_event_export(_read(events_path))
        except ValueError as exc:
            raise EvidenceError(events_path, str(exc)) from exc

    facts = None
    if os.path.exists(facts_path):
        text = _read(facts_path)
        try:
            facts = json.loads(text.lstrip('\ufeff'))
        except ValueError as exc:
            raise EvidenceError(facts_path, 'malformed JSON: %s' % exc) from exc

    paths = {DSREG_FILE: dsreg_path, EVENTS_FILE: events_path, FACTS_FILE: facts_path}
    try:
        return build_evidence(dsreg_text, records, facts)
    except EvidenceError as exc:
        raise EvidenceError(paths.get(exc.file, exc.file), exc.reason) from exc


def _export_records(event_records) -> list:
    events = normalise_event_records(event_records)
    # Written back in the PowerShell 7 form so load_bundle reads exactly what it wrote.
    return [{'Id': event['id'], 'LevelDisplayName': event['level'],
             'TimeCreated': event['time_created'], 'Message': event['message']} for event in events]


def make_private_dirs(path: str):
    """Create ``path`` and any missing parents as 0700 folders (they hold UPNs, credential
    names and device ids). Folders that exist already keep their permissions: where an
    operator points the files (a share for the service desk) is the operator's choice."""
    path = os.path.abspath(path)
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            if not os.path.isdir(folder):
                raise
            continue
        os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask


def write_private(path: str, text: str):
    """Write ``text`` to ``path`` as a 0600 file, through a temporary file and a rename so a
    reader never sees half of it. The temporary file is created 0600 (never wider, whatever
    the umask), and the rename keeps that mode."""
    tmp = path + '.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an earlier .tmp left behind keeps its mode through O_CREAT
    with os.fdopen(fd, 'w', encoding='utf-8', newline='\n') as handle:
        handle.write(text)
    os.replace(tmp, path)


_write = write_private


def write_bundle(host_dir: str, dsregcmd_text: str, event_records, host_facts) -> list:
    """Write the layout load_bundle reads; return the paths written.

    The inputs are validated with build_evidence first, so a bundle that cannot be
    read back is never written (EvidenceError, nothing changed).
    """
    build_evidence(dsregcmd_text, event_records, host_facts)
    make_private_dirs(host_dir)
    written = []
    path = os.path.join(host_dir, DSREG_FILE)
    _write(path, dsregcmd_text)
    written.append(path)
    if event_records is not None:
        path = os.path.join(host_dir, EVENTS_FILE)
        _write(path, json.dumps(_export_records(event_records), indent=2, ensure_ascii=False) + '\n')
        written.append(path)
    if host_facts is not None:
        path = os.path.join(host_dir, FACTS_FILE)
        _write(path, json.dumps(host_facts, indent=2, ensure_ascii=False) + '\n')
        written.append(path)
    return written
