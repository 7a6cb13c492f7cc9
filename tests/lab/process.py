# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the lab as a child process (`python -m tests.lab serve`) and watch its processes.

Used by the pytest fixtures (and tests outside tests/lab) and by the benchmark scripts;
`running_lab`/`scenario_lab` import pytest only when called, so the benchmarks need none.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class LabProcess:
    def __init__(self, state_dir: str, hosts: int = 1, *, disconnect_grace: float = 1.0,
                 extra_args: list[str] | None = None, startup_timeout: float = 60.0) -> None:
        self.state_dir = str(state_dir)
        cmd = [sys.executable, "-m", "tests.lab", "serve", "--hosts", str(hosts), "--state", self.state_dir,
               "--disconnect-grace", str(disconnect_grace), "--parent-pid", str(os.getpid())]
        cmd += extra_args or []
        env = dict(os.environ)
        # The shim seeds hosts with the collection's own parsers (ansible_collections.m365ops...).
        env["PYTHONPATH"] = os.pathsep.join(
            [REPO_ROOT, os.path.join(REPO_ROOT, "build", "collections")] + [env.get("PYTHONPATH", "")])
        self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.inventory_text = []
        # Read stdout on a thread so a lab that hangs before its ready line cannot hang us.
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read_stdout, args=(lines,), daemon=True, name="labprocess-stdout").start()
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise RuntimeError("the lab did not start within %ss:\n%s" % (startup_timeout, self.log()))
            if line is None:
                self.proc.wait(5)
                raise RuntimeError("the lab exited during startup (rc %s):\n%s\n%s" % (
                    self.proc.returncode, "".join(self.inventory_text), self.log()))
            if line.startswith("# lab ready: "):
                break
            self.inventory_text.append(line)
        with open(os.path.join(self.state_dir, "lab.json")) as fh:
            self.info = json.load(fh)

    def _read_stdout(self, lines: "queue.Queue") -> None:
        for line in iter(self.proc.stdout.readline, ""):
            lines.put(line)
        lines.put(None)
        self.proc.stdout.close()

    # ---- convenience --------------------------------------------------------------------
    @property
    def user(self) -> str:
        return self.info["user"]

    @property
    def password(self) -> str:
        return self.info["password"]

    @property
    def ca(self) -> str:
        return self.info["ca"]

    def with_clock(self, env: dict) -> dict:
        """`env` for a controller process, moved to the lab's clock (serve --clock-offset), if it has one."""
        from .shim.sandbox import with_clock

        return with_clock(env, self.info.get("clock", {}).get("env") or {})

    def host(self, name: str = "lab01") -> dict:
        return self.info["hosts"][name]

    def http_url(self, name: str = "lab01") -> str:
        h = self.host(name)
        return "http://%s:%d/wsman" % (h["address"], h["http_port"])

    def https_url(self, name: str = "lab01") -> str:
        h = self.host(name)
        return "https://%s:%d/wsman" % (h["address"], h["https_port"])

    def inventory(self, transport: str = "ntlm") -> str:
        return self.info["inventory"][transport]

    def counts(self, settle: float = 0.6) -> dict:
        """The counters file; waits `settle` seconds because the lab flushes it every 0.25 s."""
        time.sleep(settle)
        with open(self.info["counts"]) as fh:
            return json.load(fh)["hosts"]

    def log(self) -> str:
        try:
            with open(os.path.join(self.state_dir, "lab.log")) as fh:
                return fh.read()
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def pid_alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def children_of(pid: int) -> list[int]:
    """Every live descendant of `pid` (walks /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def runtime_leftovers(root: str) -> list[str]:
    """.NET's per-process debugger FIFOs and diagnostics sockets anywhere under `root` (a lab
    host's folder): what a pwsh that ended left in its TMPDIR (endpoint/shell.py, remove_runtime_endpoints)."""
    return [p for pattern in ("clr-debug-pipe-*", "dotnet-diagnostic-*")
            for p in glob.glob(os.path.join(glob.escape(root), "**", pattern), recursive=True)]


SHARED_DATA = "/usr/share"


@contextlib.contextmanager
def running_lab(state_dir, hosts: int, extra_args: list[str] | None = None, **kwargs):
    """A LabProcess for the duration of the block, then stopped and checked for leftovers.
    Without PowerShell the calling test skips, saying why (also from outside tests/lab)."""
    import pytest  # pylint: disable=import-outside-toplevel
    from . import toolchain  # pylint: disable=import-outside-toplevel
    if not toolchain.find_pwsh():
        pytest.skip(toolchain.NO_PWSH)
    # Where .NET on Linux puts Windows' ProgramData: the place a stray write by product code
    # would land on the build machine (docs/lab.md, "Clock and confinement").
    shared_before = set(os.listdir(SHARED_DATA))
    lp = LabProcess(state_dir, hosts=hosts, extra_args=extra_args, **kwargs)
    pid = lp.proc.pid
    try:
        yield lp
    finally:
        descendants = children_of(pid)
        rc = lp.stop()
        leftovers = [p for p in descendants if pid_alive(p)]
        assert rc == 0, "lab exited with %s:\n%s" % (rc, lp.log()[-3000:])
        assert not leftovers, "lab left processes running: %s" % leftovers
        assert not set(os.listdir(SHARED_DATA)) - shared_before, "the lab wrote to %s: %s" % (
            SHARED_DATA, sorted(set(os.listdir(SHARED_DATA)) - shared_before))


def scenario_lab(state_dir, scenarios: list[str], clock_offset: str | None = None):
    """A lab with one host per scenario (named after it), restarts taking 3 s; with
    `clock_offset` (e.g. "+400d") the lab and its hosts run that far from today."""
    import pytest  # pylint: disable=import-outside-toplevel
    from . import toolchain  # pylint: disable=import-outside-toplevel
    args = ["--reboot-seconds", "3"]
    for name in scenarios:
        args += ["--scenario", name]
    if clock_offset:
        if not toolchain.find_faketime():
            pytest.skip("the lab clock offset %s needs libfaketime: install Debian's faketime package" % clock_offset)
        args += ["--clock-offset", clock_offset]
    return running_lab(state_dir, len(scenarios), args, startup_timeout=300)
