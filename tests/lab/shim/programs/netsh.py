# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""netsh.exe winhttp show proxy of a lab host, decoded from the WinHttpSettings value."""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import winstate  # noqa: E402  pylint: disable=import-error,wrong-import-position

KEY = 'registry/HKEY_LOCAL_MACHINE/SOFTWARE/Microsoft/Windows/CurrentVersion/Internet Settings/Connections/values.json'


def main(argv):
    if [a.lower() for a in argv[:3]] != ['winhttp', 'show', 'proxy']:
        winstate.out('The following command was not found: %s.\n' % ' '.join(argv))
        return 1
    values = winstate.read_json(KEY, {}) or {}
    blob = bytes.fromhex(values.get('WinHttpSettings', {}).get('value', '') or '')
    text = '\nCurrent WinHTTP proxy settings:\n\n    Direct access (no proxy server).\n\n'
    if len(blob) >= 16:
        flags, plen = struct.unpack_from('<IIII', blob)[2:]
        if flags & 2 and plen:
            proxy = blob[16:16 + plen].decode('ascii')
            at = 16 + plen
            blen = struct.unpack_from('<I', blob, at)[0] if at + 4 <= len(blob) else 0
            bypass = blob[at + 4:at + 4 + blen].decode('ascii') if blen else '(none)'
            text = ('\nCurrent WinHTTP proxy settings:\n\n    Proxy Server(s) :  %s\n    Bypass List     :  %s\n\n'
                    % (proxy, bypass))
    winstate.out(text)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
