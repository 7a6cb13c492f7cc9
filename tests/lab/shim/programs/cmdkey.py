# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cmdkey.exe /list and /delete:<target> of a lab host over the caller's credentials file."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import winstate  # noqa: E402  pylint: disable=import-error,wrong-import-position


def load(rel):
    """The vault native/advapi32.c serves: "type<TAB>target<TAB>user" lines."""
    creds = []
    for line in (winstate.read_text(rel, '') if rel else '').splitlines():
        parts = line.split('\t')
        if len(parts) >= 2:
            creds.append({'type': int(parts[0]), 'target': parts[1], 'user': parts[2] if len(parts) > 2 else ''})
    return creds


def main(argv):
    sid = winstate.caller_sid()
    # The administrator's network logon has no vault of its own here.
    rel = 'credentials/%s.tsv' % sid if sid and sid != winstate.SYSTEM_SID else None
    creds = load(rel)
    arg = argv[0] if argv else '/?'
    if arg.lower().startswith('/list'):
        lines = ['', 'Currently stored credentials:', '']
        if not creds:
            lines += ['* NONE *', '']
        for c in creds:
            lines += ['    Target: LegacyGeneric:target=%s' % c['target'], '    Type: Generic ',
                      '    User: %s' % c.get('user', ''), '    Local machine persistence', '']
        winstate.out('\n'.join(lines) + '\n')
        return 0
    if arg.lower().startswith('/delete:'):
        target = arg.split(':', 1)[1]
        keep = [c for c in creds if c['target'].lower() != target.lower()]
        if len(keep) == len(creds):
            winstate.out('\nCMDKEY: Element not found.\n')
            return 1
        winstate.write_text(rel, ''.join('%d\t%s\t%s\n' % (c['type'], c['target'], c['user']) for c in keep))
        winstate.out('\nCMDKEY: Credential deleted successfully.\n')
        return 0
    winstate.out('The command line parameters are incorrect.\n')
    return 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
