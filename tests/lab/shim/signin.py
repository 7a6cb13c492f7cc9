# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sign-in that follows a lab reboot: sessions survive a lab reboot (autologon), and the
endpoint calls ``sign_in_after_boot`` once per boot, as Windows' logon would run.

What it models, and no more: at sign-in CloudAP asks Entra ID for a Primary Refresh Token.
For a user whose dsregcmd shows ``AzureAdPrt : NO``, the PRT comes back when

* the device registration is sound (``AzureAdJoined : YES``, ``DeviceAuthStatus`` absent or
  ``SUCCESS``, ``AadRecoveryEnabled`` not ``YES``): a broken registration needs the device
  rung, which a restart alone does not give;
* the last attempt did not fail on the network (``HTTP Error`` absent or ``0x0``): a
  blocked path stays blocked after a restart;
* the user's AAD BrokerPlugin TokenBroker cache was reset (its Accounts folder is empty or
  gone): Microsoft's procedure for the 0xCAA5001C / 0xCAA50021 family is credentials out,
  TokenBroker caches reset, restart, sign in. A restart without the reset leaves the broken
  broker state where it was, so the PRT stays missing.

The user's dsregcmd view then shows ``AzureAdPrt : YES`` with an update time just after the
boot and the 14-day expiry, and the failed attempt's diagnostics are gone, as after a real
successful sign-in. Nothing else changes: the event log keeps its old errors (the product
must not count them again; docs/triage.md ``events_before_repair``).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

from . import TOKEN_BROKER_DIRS

SIGN_IN_DELAY = timedelta(seconds=20)
PRT_LIFETIME = timedelta(days=14)
# The SSO State values a successful PRT leaves; the rest are the failed attempt's diagnostics.
KEPT_SSO_KEYS = ('AzureAdPrtAuthority', 'EnterprisePrt', 'EnterprisePrtAuthority')
KEY_VALUE = re.compile(r'^(\s*)([^:]+?) : ?(.*)$')
BOX_TITLE = re.compile(r'^\|\s*(.*?)\s*\|$')


def _value(text: str, key: str) -> str | None:
    m = re.search(r'^\s*%s\s*:\s*(.*?)\s*$' % re.escape(key), text, re.M)
    return m.group(1) if m else None


def device_can_sign_in(device_text: str) -> bool:
    return (_value(device_text, 'AzureAdJoined') == 'YES'
            and (_value(device_text, 'DeviceAuthStatus') or 'SUCCESS').upper() == 'SUCCESS'
            and _value(device_text, 'AadRecoveryEnabled') != 'YES')


def _dsreg_time(dt: datetime) -> str:
    return dt.strftime('%Y-%m-%d %H:%M:%S.000 UTC')


def with_prt(user_text: str, updated: datetime) -> str:
    """The user's dsregcmd text after a successful PRT request at `updated`."""
    newline = '\r\n' if '\r\n' in user_text else '\n'
    out = []
    box = None
    for line in user_text.split(newline):
        title = BOX_TITLE.match(line)
        if title:
            box = title.group(1)
        m = KEY_VALUE.match(line) if box == 'SSO State' and not title else None
        if m:
            key = m.group(2).strip()
            if key == 'AzureAdPrt':
                width = len(m.group(1)) + len(m.group(2))
                out.append('%*s : YES' % (width, 'AzureAdPrt'))
                out.append('%*s : %s' % (width, 'AzureAdPrtUpdateTime', _dsreg_time(updated)))
                out.append('%*s : %s' % (width, 'AzureAdPrtExpiryTime', _dsreg_time(updated + PRT_LIFETIME)))
                continue
            if key not in KEPT_SSO_KEYS:
                continue
        out.append(line)
    return newline.join(out)


def sign_in_after_boot(state: Path, boot: datetime) -> list[str]:
    """Sign every session user in after the boot at `boot`; returns the SIDs that got a PRT."""
    state = Path(state)
    device = (state / 'dsreg' / 'device.txt').read_text(encoding='utf-8')
    if not device_can_sign_in(device):
        return []
    profiles = {u['sid']: u.get('profile') for u in json.loads((state / 'users.json').read_text())}
    signed_in = []
    for session in json.loads((state / 'sessions.json').read_text()):
        sid = session['sid']
        path = state / 'dsreg' / 'users' / ('%s.txt' % sid)
        if not path.is_file() or not profiles.get(sid):
            continue
        text = path.read_text(encoding='utf-8')
        if _value(text, 'AzureAdPrt') != 'NO' or (_value(text, 'HTTP Error') or '0x0') != '0x0':
            continue
        cache = Path(profiles[sid]) / TOKEN_BROKER_DIRS['aad_broker_plugin']
        if cache.is_dir() and any(cache.iterdir()):
            continue
        path.write_text(with_prt(text, boot + SIGN_IN_DELAY), encoding='utf-8')
        signed_in.append(sid)
    return signed_in
