# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""nltest.exe /dsgetdc:<domain> of a lab host: answers from machine.json domain_controller."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import winstate  # noqa: E402  pylint: disable=import-error,wrong-import-position


def main(argv):
    arg = next((a for a in argv if a.lower().startswith('/dsgetdc:')), None)
    if not arg:
        winstate.out('Usage: nltest [/OPTIONS]\n    /DSGETDC:<DomainName> - Call DsGetDcName\n')
        return 87
    domain = arg.split(':', 1)[1]
    machine = winstate.read_json('machine.json', {}) or {}
    dc = machine.get('domain_controller')
    if not dc or domain.lower() != str(machine.get('domain', '')).lower():
        winstate.out('Getting DC name failed: Status = 1355 0x54b ERROR_NO_SUCH_DOMAIN\n')
        return 1355
    winstate.out('           DC: \\\\%s\n      Address: \\\\10.0.0.10\n     Dom Guid: 2f3e4d5c-6b7a-4988-9a0b-1c2d3e4f5a6b\n'
                 '     Dom Name: %s\n  Forest Name: %s\n Dc Site Name: Default-First-Site-Name\n'
                 'Our Site Name: Default-First-Site-Name\n        Flags: PDC GC DS LDAP KDC TIMESERV WRITABLE DNS_FOREST CLOSE_SITE FULL_SECRET WS DS_8\n'
                 'The command completed successfully\n' % (dc, domain, domain))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
