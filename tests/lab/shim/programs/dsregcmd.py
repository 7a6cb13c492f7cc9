# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""dsregcmd.exe of a lab host: /status in device or user context, /leave, /join, /forcerecovery.

State: dsreg/device.txt (what the administrator / SYSTEM sees), dsreg/users/<sid>.txt (what
each user sees in their session). /leave and /join rewrite the join state in all of them.
/status shows a Work Account box only while its Workplace Join registration (JoinInfo key)
is in the registry.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import winstate  # noqa: E402  pylint: disable=import-error,wrong-import-position

USAGE = '''DSREGCMD switches
                        /? : Displays the help message for DSREGCMD
                   /status : Displays the device join status
               /status_old : Displays the device join status in old format
                     /join : Schedules and monitors the Autojoin task to Hybrid Join the device
                    /leave : Performs Hybrid Unjoin
                    /debug : Displays debug messages
               /refreshprt : Refreshes PRT in the CloudAP cache
        /refreshp2pcerts   : Refreshes P2P certificates
        /cleanupaccounts   : Deletes all WAM accounts
             /listaccounts : Lists all WAM accounts
             /UpdateDevice : Update device attributes to Azure AD
            /forcerecovery : Forces the device into recovery
'''


def files():
    """Every dsregcmd view of this host: the device's and each user's."""
    names = ['dsreg/device.txt']
    udir = winstate.path('dsreg', 'users')
    if os.path.isdir(udir):
        names += ['dsreg/users/' + n for n in sorted(os.listdir(udir)) if n.endswith('.txt')]
    return names


def value(text, key):
    m = re.search(r'(?m)^\s*%s\s*:\s*(.*?)\s*$' % re.escape(key), text)
    return m.group(1) if m else None


def set_value(text, key, new):
    return re.sub(r'(?m)^(\s*%s\s*:)[^\r\n]*$' % re.escape(key), lambda m: m.group(1) + ' ' + new, text)


def drop_box(text, title):
    # A box is its title frame and everything up to the next frame.
    return re.sub(r'\+-+\+\n\| %s\s*\|\n\+-+\+\n.*?(?=\n\+-+\+\n\||\nFor more information|\Z)' % re.escape(title),
                  '', text, flags=re.S)


# A user's Workplace Join registrations, one key per device certificate thumbprint.
JOIN_INFO = ('Software', 'Microsoft', 'Windows NT', 'CurrentVersion', 'WorkplaceJoin', 'JoinInfo')
WORK_ACCOUNT = re.compile(r'\+-+\+\n\| Work Account \d+\s*\|\n\+-+\+\n.*?(?=\n\+-+\+\n\||\nFor more information|\Z)', re.S)


def _child(folder, name):
    """A registry key's folder, its name matched without regard to case as Windows does."""
    if not os.path.isdir(folder):
        return None
    for entry in os.listdir(folder):
        if entry.lower() == name.lower():
            return os.path.join(folder, entry)
    return None


def registered(sid):
    """Thumbprints of the Workplace Join registrations dsregcmd finds: in the caller's hive, or,
    for the administrator and SYSTEM, in every user's (their view was derived from a user's)."""
    users = winstate.read_json('users.json', []) or []
    if sid and sid != winstate.SYSTEM_SID:
        users = [u for u in users if u.get('sid') == sid]
    hives = [winstate.path('registry', 'HKEY_USERS', u['sid']) for u in users]
    hives += [os.path.join(u['profile'], 'NTUSER.DAT') for u in users if u.get('profile')]
    found = set()
    for folder in hives:
        for name in JOIN_INFO:
            folder = _child(folder, name)
            if folder is None:
                break
        if folder:
            found.update(n.upper() for n in os.listdir(folder) if os.path.isdir(os.path.join(folder, n)))
    return found


def workplace_view(text, sid):
    """The Work Account boxes whose registration still exists, renumbered; WorkplaceJoined NO
    once none is left. Windows builds these boxes from the registrations, so a disconnect
    (JoinInfo key removed) takes its box away."""
    boxes = WORK_ACCOUNT.findall(text)
    if not boxes:
        return text
    keep = registered(sid)
    gone = [b for b in boxes if (value(b, 'WorkplaceThumbprint') or '').upper() not in keep]
    if not gone:
        return text
    for box in gone:
        text = text.replace(box, '', 1)
    counter = iter(range(1, len(boxes) + 1))
    text = re.sub(r'(?m)^\| Work Account \d+( *)\|$',
                  lambda m: ('| Work Account %d' % next(counter)).ljust(len(m.group(0)) - 1) + '|', text)
    if len(gone) == len(boxes):
        text = set_value(text, 'WorkplaceJoined', 'NO')
    return text


def status():
    sid = winstate.caller_sid()
    text = None
    if sid and sid != winstate.SYSTEM_SID:
        text = winstate.read_text('dsreg/users/%s.txt' % sid)
    if text is None:
        text = winstate.read_text('dsreg/device.txt', '')
    winstate.out(workplace_view(text, sid))
    return 0


def leave():
    if not winstate.is_admin():
        winstate.out('DSREGCMD_END_STAT: -2147024891\nAccess is denied.\n')
        return 1
    device = winstate.read_text('dsreg/device.txt', '')
    if value(device, 'DomainJoined') != 'YES' or value(device, 'AzureAdJoined') != 'YES':
        # /leave performs hybrid unjoin only; there is nothing to leave otherwise.
        winstate.out('Leave failed: the device is not hybrid Azure AD joined.\n')
        return 1
    for rel in files():
        text = winstate.read_text(rel)
        winstate.write_text(rel + '.joined', text)
        text = set_value(text, 'AzureAdJoined', 'NO')
        text = set_value(text, 'AzureAdPrt', 'NO')
        for box in ('Device Details', 'Tenant Details'):
            text = drop_box(text, box)
        winstate.write_text(rel, text)
    return 0


def join(debug):
    if winstate.caller_sid() != winstate.SYSTEM_SID:
        # Windows' own words when /join does not run as SYSTEM.
        winstate.out('DSREGCMD_END_STAT: -2145648572\nThe /join operation should be run as local system.\n')
        return 1
    device = winstate.read_text('dsreg/device.txt', '')
    if value(device, 'DomainJoined') != 'YES':
        winstate.out('DSREGCMD_END_STAT: -2145648611\nThe device is not domain joined.\n')
        return 1
    lines = ['DsrCmdJoinHelper::Join: ClientRequestId: 4a1c6a4e-0000-4000-8000-000000000001']
    if value(device, 'AzureAdJoined') == 'YES':
        lines.append('Join: device is already joined, nothing to do.')
    else:
        for rel in files():
            saved = winstate.read_text(rel + '.joined')
            if saved is not None:
                winstate.write_text(rel, saved)
                os.remove(winstate.path(rel + '.joined'))
        lines.append('Join request ID: 7f3e1a9b-0000-4000-8000-000000000002')
        lines.append('Join response time: now')
        lines.append('Join HTTP status: 200')
    lines.append('DSREGCMD_END_STAT: 0')
    winstate.out('\n'.join(lines if debug else lines[-1:]) + '\n')
    return 0


def forcerecovery():
    sid = winstate.caller_sid()
    if not sid or sid == winstate.SYSTEM_SID:
        winstate.out('The /forcerecovery option needs a signed-in user session.\n')
        return 1
    winstate.write_text('dsreg/recovery_requested', sid + '\n')
    winstate.out('Recovery flow scheduled. Sign out and sign in again to complete it.\n')
    return 0


def main(argv):
    args = [a.lower() for a in argv]
    if not args or '/?' in args:
        winstate.out(USAGE)
        return 0
    if args[0] in ('/status', '/status_old'):
        return status()
    if args[0] == '/leave':
        return leave()
    if args[0] == '/join':
        return join('/debug' in args)
    if args[0] == '/forcerecovery':
        return forcerecovery()
    if args[0] == '/listaccounts':
        for a in winstate.read_json('wam/%s.json' % (winstate.caller_sid() or 'none'), []) or []:
            winstate.out('Account: %s, Provider: %s\n' % (a.get('upn'), a.get('provider')))
        return 0
    winstate.out('Invalid option %s\n\n%s' % (argv[0], USAGE))
    return 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
