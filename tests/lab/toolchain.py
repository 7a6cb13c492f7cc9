# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The outside tools the whole suite runs (it lives with the lab, its main user), found one way everywhere (tests, the lab, benchmarks,
scripts): PowerShell, libfaketime (the lab's clock) and bubblewrap (the lab's confinement).

    python -m tests.lab.toolchain pwsh       # prints pwsh's absolute path, or why there is none (exit 1)
    python -m tests.lab.toolchain faketime   # libfaketime.so.1
    python -m tests.lab.toolchain bwrap      # bubblewrap

No machine path is written here: PowerShell comes from $PWSH, then `pwsh` on PATH, then the
bundle a checkout may have beside it (../shared/tools/pwsh/pwsh, relative to the repository).
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
import tempfile

# realpath: imported as ansible_collections.m365ops.activation... through build/collections, a symlink.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
SHARED_PWSH = os.path.join(os.path.dirname(REPO_ROOT), "shared", "tools", "pwsh", "pwsh")
NO_PWSH = ("no PowerShell found: set PWSH=/path/to/pwsh, put pwsh (7.4 or later) on PATH, or place the "
           "toolchain bundle at ../shared/tools/pwsh/pwsh beside the repository")


def _executable(path: str | None) -> str | None:
    if path and os.path.isfile(path) and os.access(path, os.X_OK):
        return os.path.abspath(path)
    return None


def find_pwsh() -> str | None:
    """pwsh from $PWSH, then PATH, then ../shared/tools/pwsh/pwsh beside the repository; None if none.

    A $PWSH that names no executable is an error rather than a fallback: whoever set it meant that one.
    """
    explicit = os.environ.get("PWSH")
    if explicit:
        found = _executable(explicit)
        if not found:
            raise FileNotFoundError("PWSH=%s is not an executable file" % explicit)
        return found
    return _executable(shutil.which("pwsh")) or _executable(SHARED_PWSH)


@functools.lru_cache(maxsize=None)
def pwsh_home(pwsh: str) -> tuple[str, str]:
    """``pwsh``'s $PSHOME and the process that runs it (its apphost, or ``dotnet`` for a
    framework-dependent pwsh.dll), asked of pwsh itself, once per process."""
    with tempfile.TemporaryDirectory(prefix="m365ops-pwsh-probe-") as home:  # pwsh writes a cache below HOME
        probe = subprocess.run([pwsh, "-NoProfile", "-NonInteractive", "-Command", "$PSHOME; [Environment]::ProcessPath"],
                               capture_output=True, text=True, check=True, timeout=120,
                               env={"PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8"})
    pshome, process = [line.strip() for line in probe.stdout.strip().splitlines()[-2:]]
    return pshome, process


def module_pwsh(pwsh: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The interpreter to give ansible-core as ``ansible_pwsh_interpreter`` for ``pwsh``, and
    the environment it needs: an executable in $PSHOME itself.

    ansible-core's exec wrapper starts the module in a second pwsh when the interpreter's
    folder is not $PSHOME (on Windows it always is). A launcher script outside $PSHOME, as
    the toolchain bundle's ``pwsh``, would double every module execution's processes, so
    the apphost beside pwsh.dll is used instead, with the DOTNET_ROOT the launcher sets.
    Anything else is returned as it is.
    """
    pshome, process = pwsh_home(pwsh)
    if os.path.dirname(process) == pshome:
        return process, ()
    apphost = _executable(os.path.join(pshome, "pwsh"))
    if apphost and os.path.basename(process) == "dotnet":
        return apphost, (("DOTNET_ROOT", os.path.dirname(process)), ("POWERSHELL_TELEMETRY_OPTOUT", "1"),
                         ("POWERSHELL_UPDATECHECK", "Off"))
    return pwsh, ()


def find_faketime() -> str | None:
    """libfaketime (Debian's faketime package), which moves a process tree's clock; None if absent."""
    for pattern in ("/usr/lib/*/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1",
                    "/usr/local/lib/faketime/libfaketime.so.1", "/usr/lib64/faketime/libfaketime.so.1"):
        for path in sorted(glob.glob(pattern)):
            if os.path.isfile(path):
                return path
    return None


def find_bwrap() -> str | None:
    """bubblewrap (Debian's bubblewrap package), which confines the lab hosts' processes; None if absent."""
    return _executable(shutil.which("bwrap"))


def main(argv: list[str]) -> int:
    finders = {"pwsh": (find_pwsh, NO_PWSH),
               "faketime": (find_faketime, "no libfaketime found: install Debian's faketime package"),
               "bwrap": (find_bwrap, "no bwrap found: install Debian's bubblewrap package")}
    if len(argv) != 1 or argv[0] not in finders:
        sys.stderr.write("usage: python -m tests.lab.toolchain %s\n" % "|".join(finders))
        return 2
    finder, missing = finders[argv[0]]
    try:
        found = finder()
    except FileNotFoundError as exc:
        found, missing = None, str(exc)
    if not found:
        sys.stderr.write(missing + "\n")
        return 1
    sys.stdout.write(found + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
