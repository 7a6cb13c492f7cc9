# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What keeps the lab honest about time and about this machine (docs/lab.md, "Clock and
confinement").

Clock: `serve --clock-offset +400d` runs the lab, and every process of every host, with the
clock moved by libfaketime (LD_PRELOAD). The hosts get their environment from scratch
(shim.host_environment), so a faked clock around the test run would never reach them: the
lab hands its own FAKETIME on instead. Seeding maps each scenario's reference_time onto the
moved "now", so the same plans must come out on any day.

Confinement: every process a host starts runs under bubblewrap with the whole file system
read-only except that host's state folder. Product code that writes somewhere else (.NET
maps CommonApplicationData to /usr/share on Linux, for one) fails loudly with EROFS
instead of landing on the build machine.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import time

from .. import toolchain

OFFSET = re.compile(r"^[+-]\d{1,6}(\.\d+)?[smhdy]?$")
# The variables that carry a moved clock into a process tree; nothing else of the caller's
# environment reaches a host process.
CLOCK_VARIABLES = ("LD_PRELOAD", "FAKETIME", "FAKETIME_DONT_FAKE_MONOTONIC", "FAKETIME_FORCE_MONOTONIC_FIX")
# sitecustomize.py for Python processes under the moved clock (see that file for why).
CLOCK_PYTHONPATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "clock")


class SandboxError(RuntimeError):
    """The clock or the confinement asked for cannot be had; the message says what is missing."""


def parse_offset(text: str) -> str:
    """A libfaketime relative offset ('+400d', '-2h', '+30'); ValueError naming the option otherwise."""
    value = str(text).strip()
    if not OFFSET.match(value):
        raise ValueError("--clock-offset %r: give a signed amount with an optional unit s, m, h, d or y, "
                         "e.g. +400d" % text)
    return value


def clock_environment(offset: str | None) -> dict[str, str]:
    """The variables that move a process's clock by `offset` (none for no offset)."""
    if not offset or parse_offset(offset) in ("+0", "-0"):
        return {}
    lib = toolchain.find_faketime()
    if not lib:
        raise SandboxError("--clock-offset %s needs libfaketime: install Debian's faketime package" % offset)
    # Monotonic clocks stay real, and so do the timed waits on them (checked with .NET's
    # Process.WaitForExit and ManualResetEventSlim, Python's Condition and queues): with a
    # faked monotonic clock, or libfaketime's monotonic "fix", they return at once or hang.
    return {"LD_PRELOAD": lib, "FAKETIME": parse_offset(offset), "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "FAKETIME_FORCE_MONOTONIC_FIX": "0"}


def with_clock(env: dict[str, str], clock: dict[str, str]) -> dict[str, str]:
    """`env` (a process environment) moved to `clock`: its variables, and the sitecustomize
    that Python needs under it ahead of whatever PYTHONPATH `env` has."""
    if not clock:
        return dict(env)
    paths = [CLOCK_PYTHONPATH] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != CLOCK_PYTHONPATH]
    return {**env, **clock, "PYTHONPATH": os.pathsep.join(paths)}


def inherited_clock() -> dict[str, str]:
    """The clock variables of this process, if it runs under a moved clock (to pass on to hosts)."""
    if not os.environ.get("FAKETIME") or "faketime" not in os.environ.get("LD_PRELOAD", ""):
        return {}
    return {k: os.environ[k] for k in CLOCK_VARIABLES if k in os.environ}


class Confinement:
    """Wraps a host's command lines so they can write only below the host's state folder."""

    def __init__(self, mode: str = "auto") -> None:
        if mode not in ("auto", "require", "off"):
            raise ValueError("--confine must be auto, require or off, got %r" % mode)
        self.bwrap = None
        self.reason = "--confine off"
        if mode == "off":
            return
        bwrap = toolchain.find_bwrap()
        if not bwrap:
            self.reason = "no bwrap found (Debian's bubblewrap package)"
        else:
            probe = subprocess.run(self._prefix(bwrap, []) + ["/bin/true"], capture_output=True, text=True,
                                   check=False, timeout=30)
            if probe.returncode == 0:
                self.bwrap, self.reason = bwrap, ""
            else:
                self.reason = "bwrap cannot build a sandbox here: %s" % (probe.stderr.strip() or probe.returncode)
        if not self.bwrap and mode == "require":
            raise SandboxError("--confine require: %s" % self.reason)

    @property
    def active(self) -> bool:
        return self.bwrap is not None

    @staticmethod
    def _prefix(bwrap: str, writable: list[str], *options: str) -> list[str]:
        argv = [bwrap, "--ro-bind", "/", "/"]
        for path in writable:
            argv += ["--bind", path, path]
        # A private /dev and /proc; the host dies with the lab even if the lab is killed.
        return argv + ["--dev", "/dev", "--proc", "/proc", "--die-with-parent", *options, "--"]

    def popen(self, argv: list[str], writable: str, files: dict[str, str] | None = None,
              **kwargs) -> tuple[subprocess.Popen, int]:
        """Start `argv` confined to writing below `writable`: (the Popen, the pid of the command itself).

        Under bwrap the Popen is bwrap's monitor and the command is its child; what a .NET
        process leaves behind is named after its own pid (endpoint/shell.py, remove_runtime_endpoints), so
        bwrap reports that pid on an info descriptor. `files` ({path seen by the command: file
        it reads}) are bound read-only over the build machine's own: the host's /etc/hosts and
        resolver configuration (netprobe.py). Without bwrap there is nothing to bind them with.
        """
        if not self.bwrap:
            proc = subprocess.Popen(argv, **kwargs)
            return proc, proc.pid
        binds: list[str] = []
        for dest, src in sorted((files or {}).items()):
            binds += ["--ro-bind", src, dest]
        read_fd, write_fd = os.pipe()
        try:
            argv = self._prefix(self.bwrap, [os.path.realpath(writable)], "--info-fd", str(write_fd), *binds) + list(argv)
            proc = subprocess.Popen(argv, pass_fds=(write_fd,), **kwargs)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        try:
            return proc, _child_pid(read_fd, proc)
        finally:
            os.close(read_fd)


def _child_pid(fd: int, proc: subprocess.Popen, timeout: float = 30.0) -> int:
    """bwrap's {"child-pid": N} from its info descriptor; the monitor's own pid if it never says."""
    data = b""
    deadline = time.monotonic() + timeout
    while b"}" not in data and time.monotonic() < deadline:
        ready, _w, _x = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 4096) if ready else b""
        if not chunk:
            break
        data += chunk
    try:
        return int(json.loads(data.decode())["child-pid"])
    except (ValueError, KeyError, TypeError):
        return proc.pid
