# -*- coding: utf-8 -*-
# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse ``dsregcmd /status`` output into a plain dict.

Pure Python (no Ansible imports): the same parser serves the action plugins, the
filters, the offline triage, the benchmark and the tests. The contract is described
in docs/triage.md; in short:

* one key per box title, snake_cased (``SSO State`` -> ``sso_state``); boxes titled
  ``Work Account N`` go, in order, into the list ``work_accounts``;
* inside a box one key per ``Key : Value`` line (``AzureAdJoined`` ->
  ``azure_ad_joined``), ``YES``/``NO`` as booleans, everything else a stripped string;
* ``join_type`` is added: hybrid_joined, entra_joined, domain_joined,
  entra_registered or workgroup.

The parser never raises on text: what people paste into tickets is messy.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

JOIN_TYPES = ('hybrid_joined', 'entra_joined', 'domain_joined', 'entra_registered', 'workgroup')

# Box borders are a run of dashes between two plus signs; the width has changed over
# Windows releases, so only the shape is checked.
_BORDER_RE = re.compile(r'^\+-{3,}\+$')
# cmd.exe and PowerShell prompts, e.g. "C:\Users\alice>dsregcmd /status" or "PS C:\> ...".
_PROMPT_RE = re.compile(r'^(?:PS\s+)?[A-Za-z]:\\[^>]*>')
# Console chatter dsregcmd itself prints around the boxes.
_NOISE_PREFIXES = ('waiting for', 'for more information')
# A key: letters first, then the characters seen in real keys ("Fallback to Fed-Join",
# "Auto-Configuration URL", "KeySignTest:" in the pre-1809 layout).
_KEY_RE = re.compile(r'^[A-Za-z][A-Za-z0-9 ()/._\-]*:?$')
# The pre-1809 layout prints "Key: Value" (no space before the colon). The value may
# itself contain colons (URLs, times), so the key ends at the first colon followed by
# whitespace or the end of the line.
_OLD_KV_RE = re.compile(r'^([A-Za-z][A-Za-z0-9 ()/._\-]*?)\s*:(?:\s+(.*))?$')
# CamelCase humps with acronyms kept whole: "WamDefaultGUID" -> Wam Default GUID,
# "IsUserAzureAD" -> Is User Azure AD, "NgcPreReq" -> Ngc Pre Req.
_WORD_RE = re.compile(r'[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+')
_WORK_ACCOUNT_RE = re.compile(r'^work_account_?(\d+)?$')
_HEX_RE = re.compile(r'0x[0-9A-Fa-f]{1,8}\b')
_TIME_RE = re.compile(r'(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:\s*UTC|Z)?')

_SNAKE_CACHE = {}


def snake_case(name: str) -> str:
    """``'Client ErrorCode'`` -> ``'client_error_code'``; ``''`` for a name with no words."""
    cached = _SNAKE_CACHE.get(name)
    if cached is not None:
        return cached
    result = '_'.join(word.lower() for word in _WORD_RE.findall(name))
    # Bounded so a hostile paste with endless distinct keys cannot grow it without limit.
    if len(_SNAKE_CACHE) < 4096:
        _SNAKE_CACHE[name] = result
    return result


def _convert(value: str):
    value = value.strip()
    if value == 'YES':
        return True
    if value == 'NO':
        return False
    return value


def _split_key_value(line: str):
    """Return ``(key, raw_value)`` for a key line, ``None`` for anything else."""
    pos = line.find(' : ')
    if pos > 0:
        key = line[:pos].strip()
        if _KEY_RE.match(key):
            return key.rstrip(':').rstrip(), line[pos + 3:]
        return None
    if line.endswith(' :'):
        # "Proxy Server List :" - a key whose value is empty.
        key = line[:-2].strip()
        if _KEY_RE.match(key):
            return key.rstrip(':').rstrip(), ''
        return None
    match = _OLD_KV_RE.match(line)
    if match:
        return match.group(1), match.group(2) or ''
    return None


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(' \t'))


def parse_dsreg_status(text: str) -> dict:
    """Parse ``dsregcmd /status`` text; see the module docstring for the shape."""
    result = {}
    work_accounts = []
    if not isinstance(text, str):
        text = '' if text is None else str(text)
    lines = text.replace('\r\n', '\n').replace('\r', '\n').split('\n')

    # Pasted text is often indented as a whole (a ticket, an e-mail quote). The
    # box borders carry that indentation; continuation lines are cut back by it so a
    # value wrapped by the console joins back exactly.
    common = None
    for line in lines:
        stripped = line.strip()
        if stripped[:2] == '+-' or stripped[:1] == '|':
            indent = _indent_of(line)
            if common is None or indent < common:
                common = indent
    common = common or 0

    box = None          # dict being filled, None before the first box
    last_key = None     # key a continuation line would extend
    for raw in lines:
        line = raw.rstrip()
        stripped = line.lstrip()
        if not stripped:
            last_key = None
            continue
        first = stripped[0]
        if first == '+' and _BORDER_RE.match(stripped):
            last_key = None
            continue
        if first == '|':
            last_key = None
            title = stripped.strip('|').strip()
            name = snake_case(title)
            if not name:
                box = None
                continue
            match = _WORK_ACCOUNT_RE.match(name)
            if match and name.startswith('work_account'):
                box = {}
                work_accounts.append(box)
            elif name in ('join_type', 'work_accounts'):
                box = None   # reserved for the computed keys
            else:
                box = result.setdefault(name, {})
            continue
        if _PROMPT_RE.match(stripped) or stripped.lower().startswith(_NOISE_PREFIXES):
            last_key = None
            continue
        if box is None:
            continue
        pair = _split_key_value(stripped)
        if pair is not None:
            key = snake_case(pair[0])
            if key:
                if key not in box:
                    box[key] = pair[1]
                    last_key = key
                else:
                    # Repeated key in one box (a double paste): the first one stands.
                    last_key = None
            continue
        if last_key is not None and ':' not in stripped:
            # The console wrapped a long value (SettingsUrl, error descriptions):
            # cut back the paste indentation only, keep the rest as printed.
            cut = min(common, _indent_of(line))
            box[last_key] = box[last_key].rstrip('\n') + line[cut:]
            continue
        last_key = None

    for section in list(result.values()) + work_accounts:
        for key, value in section.items():
            section[key] = _convert(value)
    result['work_accounts'] = work_accounts
    result['join_type'] = join_type_of(result)
    return result


def lookup(parsed: dict, key: str, box: str = None):
    """Value of ``key`` from ``box`` if given and present, else from the first box holding it.

    The pre-1809 layout put device, tenant and join flags all under Device State; later
    builds split them into Device Details / Tenant Details. Looking a key up across boxes
    keeps the rules independent of the Windows build.
    """
    if box is not None:
        section = parsed.get(box)
        if isinstance(section, dict) and key in section:
            return section[key]
    for name, section in parsed.items():
        if name in ('join_type', 'work_accounts') or not isinstance(section, dict):
            continue
        if key in section:
            return section[key]
    return None


def join_type_of(parsed: dict) -> str:
    """Join type from the YES/NO flags of a parsed output (see JOIN_TYPES)."""
    azure = lookup(parsed, 'azure_ad_joined', 'device_state') is True
    domain = lookup(parsed, 'domain_joined', 'device_state') is True
    if azure and domain:
        return 'hybrid_joined'
    if azure:
        return 'entra_joined'
    if domain:
        return 'domain_joined'
    if lookup(parsed, 'workplace_joined', 'user_state') is True:
        return 'entra_registered'
    return 'workgroup'


def hex_codes(value) -> list:
    """Hex error codes in a value such as ``FAIL [0x801c0021/0x80072ee2]``, normalised
    to ``0x`` + eight upper-case digits, in order, without duplicates."""
    if not isinstance(value, str):
        return []
    codes = []
    for match in _HEX_RE.findall(value):
        code = '0x' + match[2:].upper().rjust(8, '0')
        if code not in codes:
            codes.append(code)
    return codes


def parse_time(value):
    """``2020-07-12 22:57:53.000 UTC`` -> aware UTC datetime; None when absent or invalid."""
    if not isinstance(value, str):
        return None
    match = _TIME_RE.search(value)
    if not match:
        return None
    try:
        return datetime(*(int(part) for part in match.groups()), tzinfo=timezone.utc)
    except ValueError:
        return None


def validity_window(value):
    """``[ 2023-03-03 14:37:29.000 UTC -- 2033-03-03 15:07:29.000 UTC ]`` -> (start, end)
    aware datetimes, or None when the value is not such a window."""
    if not isinstance(value, str) or '--' not in value:
        return None
    start_text, _sep, end_text = value.partition('--')
    start, end = parse_time(start_text), parse_time(end_text)
    if start is None or end is None:
        return None
    return start, end
