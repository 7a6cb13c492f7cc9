# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the lab's Windows programs (bin/dsregcmd, shutdown, ...) share: where the host's
state is and who is calling. Copied into <state>/shim/lib by seed_host; standard library only,
because the stand-ins run under /usr/bin/python3 with the host's clean environment."""

import json
import os
import sys

SYSTEM_SID = 'S-1-5-18'


def state_dir():
    state = os.environ.get('M365OPS_LAB_STATE')
    if not state:
        sys.stderr.write('M365OPS_LAB_STATE is not set: not a lab host process\n')
        sys.exit(1)
    return state


def path(*parts):
    return os.path.join(state_dir(), *parts)


def caller_sid():
    """The SID a user-context task runs as; the administrator's network logon otherwise."""
    return os.environ.get('M365OPS_LAB_USER_SID') or None


def is_admin():
    """SYSTEM and the WinRM administrator are elevated; a user-context task is not."""
    sid = caller_sid()
    return sid is None or sid == SYSTEM_SID


def read_json(rel, default=None):
    try:
        with open(path(rel), encoding='utf-8') as fh:
            return json.load(fh)
    except FileNotFoundError:
        return default


def write_text(rel, text):
    target = path(rel)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = '%s.tmp%d' % (target, os.getpid())
    with open(tmp, 'w', encoding='utf-8') as fh:
        fh.write(text)
    os.replace(tmp, target)


def read_text(rel, default=None):
    try:
        with open(path(rel), encoding='utf-8') as fh:
            return fh.read()
    except FileNotFoundError:
        return default


def out(text):
    # Windows console programs end lines with CRLF.
    sys.stdout.write(text.replace('\r\n', '\n').replace('\n', '\r\n'))
    sys.stdout.flush()
