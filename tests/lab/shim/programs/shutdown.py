# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""shutdown.exe of a lab host. /r asks the endpoint for a reboot through the file contract of
docs/lab.md: <state>/lab/reboot.request = {"delay": seconds}. The endpoint drops the host's
connections and writes lab/boot_time; the shim's Win32_OperatingSystem reads it and clears
Windows' pending-reboot flags once per boot. /a cancels a request not yet accepted."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import winstate  # noqa: E402  pylint: disable=import-error,wrong-import-position


def main(argv):
    args = [a.lower().replace('-', '/', 1) if a.startswith('-') else a.lower() for a in argv]
    request = winstate.path('lab', 'reboot.request')
    if '/a' in args:
        if os.path.exists(request):
            os.remove(request)
            return 0
        winstate.out('Unable to abort the system shutdown because no shutdown was in progress.(1116)\n')
        return 1116
    if not winstate.is_admin():
        winstate.out('Access is denied.(5)\n')
        return 5
    if '/r' not in args and '/g' not in args:
        winstate.out('The lab host only reboots (/r); shutting it down (/s) would end the lab.\n')
        return 87
    delay = 30.0  # shutdown.exe's default /t
    if '/t' in args:
        try:
            delay = float(args[args.index('/t') + 1])
        except (IndexError, ValueError):
            winstate.out('The parameter is incorrect.(87)\n')
            return 87
    if os.path.exists(request):
        winstate.out('A system shutdown has already been scheduled.(1190)\n')
        return 1190
    winstate.write_text('lab/reboot.request', json.dumps({'delay': delay, 'by': 'shutdown.exe', 'args': argv}))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
