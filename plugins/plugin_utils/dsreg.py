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
# CamelCase humps with acronyms kept whole: "WamDefaultGUID" -> Wam Default GUID,
# "IsUserAzureAD" -> Is User Azure AD, "NgcPreReq" -> Ngc Pre Req.
_WORD_RE = re.compile(r'[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+')
_WORK_ACCOUNT_RE = re.compile(r'^work_account(?:_\d+)?$')
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


# One match per line for both layouts: "Key : Value" (1809+), "Key: Value" (pre-1809),
# "KeySignTest: : Value" (pre-1809 oddity) and "Key :" (empty value). The key is lazy, so
# it ends at the first colon; values keep their own colons (URLs, times).
_KV_RE = re.compile(r'([A-Za-z][A-Za-z0-9 ()/._\-]*?)\s*:(?:\s*:)?(?:\s+(.*))?$')


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(' \t'))


def _common_indent(lines) -> int:
    """Indentation shared by the box borders: what a paste added to every line."""
    common = None
    for line in lines:
        stripped = line.lstrip(' \t')
        if stripped[:2] == '+-' or stripped[:1] == '|':
            indent = len(line) - len(stripped)
            if common is None or indent < common:
                common = indent
    return common or 0


def parse_dsreg_status(text: str) -> dict:
    """Parse ``dsregcmd /status`` text; see the module docstring for the shape."""
    result = {}
    work_accounts = []
    if not isinstance(text, str):
        text = '' if text is None else str(text)
    lines = text.replace('\r\n', '\n').replace('\r', '\n').split('\n')
    kv_match = _KV_RE.match
    snake_cache = _SNAKE_CACHE

    common = None       # paste indentation, computed on the first wrapped value
    box = None          # dict being filled, None before the first box
    last_key = None     # key a continuation line would extend
    for raw in lines:
        stripped = raw.strip()
        if not stripped:
            last_key = None
            continue
        first = stripped[0]
        if first == '+' and stripped[-1] == '+' and _BORDER_RE.match(stripped):
            last_key = None
            continue
        if first == '|':
            last_key = None
            name = snake_case(stripped.strip('|').strip())
            if not name:
                box = None
            elif _WORK_ACCOUNT_RE.match(name):
                box = {}
                work_accounts.append(box)
            elif name in ('join_type', 'work_accounts'):
                box = None   # reserved for the computed keys
            else:
                box = result.setdefault(name, {})
            continue
        if box is None:
            continue
        match = kv_match(stripped)
        if match is not None:
            raw_key, value = match.groups()
            key = snake_cache.get(raw_key) or snake_case(raw_key)
            if key and key not in box:
                # the line is stripped and \s+ ate the leading blanks: value needs no strip
                box[key] = True if value == 'YES' else False if value == 'NO' else value or ""
                last_key = key
            else:
                # Repeated key in one box (a double paste): the first one stands.
                last_key = None
            continue
        if last_key is not None and ':' not in stripped \
                and not _PROMPT_RE.match(stripped) and not stripped.lower().startswith(_NOISE_PREFIXES):
            # The console wrapped a long value (SettingsUrl, error descriptions): cut
            # back the paste indentation only, keep the rest exactly as printed.
            if common is None:
                common = _common_indent(lines)
            line = raw.rstrip()
            value = box[last_key]
            if isinstance(value, bool):
                value = 'YES' if value else 'NO'
            box[last_key] = value + line[min(common, _indent_of(line)):]
            continue
        last_key = None

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
