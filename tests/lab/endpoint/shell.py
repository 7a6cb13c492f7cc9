# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the lab's two WS-Man shells share: the cmd shell (winrs.py) and the PowerShell
plugin (psrp.py) are both MS-WSMV shells, so creation, ownership by connection, the
disconnect grace, idle reaping, Delete and the quotas are one implementation here. A kind
adds its own Create/Command/Send/Receive/Signal and how to end what runs in a shell.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from . import wsman
from .wsman import NS, WSManFault

log = logging.getLogger("lab.shell")

# Output held for a client that does not Receive; past this the pipe is left unread, so
# the process blocks on write as it would behind WinRS's own flow control.
MAX_BUFFERED_OUTPUT = 4 * 1024 * 1024


class ClientGone(Exception):
    """The HTTP client closed its connection while a Receive was waiting."""


def start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), or None."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


# A Unix socket's path is at most 107 bytes (sun_path[108] with its NUL).
SUN_PATH_MAX = 107


def remove_runtime_endpoints(env: dict[str, str], pid: int, ticks: str | None) -> list[str]:
    """Remove what .NET published for the ended process `pid` in the host's temp folder.

    Every .NET process on Unix creates a debugger FIFO pair and a diagnostics socket in
    $TMPDIR (clr-debug-pipe-<pid>-<start ticks>-in/-out, dotnet-diagnostic-<pid>-<start
    ticks>-socket). On Windows such things are kernel objects that go with the process; here
    a killed pwsh (terminate, a vanished client, a reboot) leaves all three behind, and even a
    clean exit leaves the socket when the host's Temp path is long: the runtime binds the
    name cut to fit a socket address but removes the uncut one. Left alone they pile up in
    the host's Temp, where reading every file blocks on a FIFO and fails on a socket. The
    start ticks keep a later process that got the same pid out of it.
    """
    tmp = (env.get("TMPDIR") or "").rstrip("/")
    if not tmp or ticks is None:
        return []
    paths = set(glob.glob(os.path.join(glob.escape(tmp), "clr-debug-pipe-%d-%s-*" % (pid, ticks))))
    socket_path = os.fsencode("%s/dotnet-diagnostic-%d-%s-socket" % (tmp, pid, ticks))
    paths.update(os.fsdecode(p) for p in (socket_path, socket_path[:SUN_PATH_MAX]))
    removed = []
    for path in sorted(paths):
        try:
            os.unlink(path)
            removed.append(path)
        except OSError:
            pass
    return removed


@dataclass
class Shell:
    shell_id: str
    resource_uri: str
    env: dict[str, str]
    cwd: str
    input_streams: list[str]
    output_streams: list[str]
    idle_timeout: float
    owner: int
    created: float = field(default_factory=time.monotonic)
    last_activity: float = field(default_factory=time.monotonic)
    orphaned_at: float | None = None
    commands: dict = field(default_factory=dict)  # CommandId -> the kind's running command


class ShellService:
    """The shells of one kind on one lab host. `host` provides name, base env, bin dir and
    counters; a subclass provides the operations that differ between kinds."""

    def __init__(self, host, *, pwsh: str, idle_timeout: float = 7200.0, disconnect_grace: float = 3.0,
                 max_shells: int = 30, max_commands_per_shell: int = 25) -> None:
        self.host = host
        self.pwsh = pwsh
        self.idle_timeout = idle_timeout
        self.disconnect_grace = disconnect_grace
        self.max_shells = max_shells
        self.max_commands_per_shell = max_commands_per_shell
        self.lock = threading.Lock()
        self.shells: dict[str, Shell] = {}

    # ---- lookups -------------------------------------------------------------------
    def _shell(self, req: wsman.Request, conn_id: int) -> Shell:
        if not req.shell_id:
            raise WSManFault(
                "w:InvalidSelectors",
                "The Windows Remote Shell cannot process the request because it requires the following selector: "
                "ShellId. Retry with the correct selector.", wsman.CODE_INVALID_PARAMETER)
        with self.lock:
            shell = self.shells.get(req.shell_id.upper())
            if shell is None:
                raise wsman.shell_not_found(req.shell_id)
            # Whichever connection touches a shell owns it from now on (a client may
            # reconnect); an orphaned shell is adopted back.
            shell.owner = conn_id
            shell.orphaned_at = None
            shell.last_activity = time.monotonic()
            return shell

    @staticmethod
    def _command(shell: Shell, command_id: str | None) -> object:
        cmd = shell.commands.get((command_id or "").upper())
        if cmd is None:
            raise WSManFault(
                "w:InvalidParameter",
                "The request for the Windows Remote Shell with ShellId %s failed because the command with "
                "CommandId %s was not found." % (shell.shell_id, command_id), wsman.CODE_INVALID_PARAMETER)
        return cmd

    # ---- operations ----------------------------------------------------------------
    def handle(self, req: wsman.Request, conn_id: int, client_gone) -> bytes:
        op = req.operation
        if op == "Create":
            return self.create(req, conn_id)
        if op == "Command":
            return self.command(req, conn_id)
        if op == "Send":
            return self.send(req, conn_id)
        if op == "Receive":
            return self.receive(req, conn_id, client_gone)
        if op == "Signal":
            return self.signal(req, conn_id)
        if op == "Delete":
            return self.delete(req, conn_id)
        raise WSManFault("a:ActionNotSupported", "The action %s is not supported by the service." % req.action,
                         wsman.CODE_NOT_SUPPORTED)

    def new_shell(self, req: wsman.Request, conn_id: int, shell_class: type | None = None,
                  default_id: str | None = None, **extra) -> Shell:
        """Check a Create request's rsp:Shell and register the shell (environment, cwd, ShellId, quota)."""
        spec = req.body.find("rsp:Shell", NS)
        if spec is None:
            raise WSManFault("w:InvalidParameter", "The Create request has no rsp:Shell element in its body.",
                             wsman.CODE_INVALID_PARAMETER)
        env = dict(self.host.base_env())
        for var in spec.findall("rsp:Environment/rsp:Variable", NS):
            name = var.get("Name")
            if not name:
                raise WSManFault("w:InvalidParameter", "An rsp:Variable has no Name attribute.",
                                 wsman.CODE_INVALID_PARAMETER)
            env[name] = var.text or ""
        cwd = env["USERPROFILE"]
        wd = spec.findtext("rsp:WorkingDirectory", default="", namespaces=NS).strip()
        if wd:
            resolved = self.host.resolve_path(wd)
            if resolved is None or not os.path.isdir(resolved):
                raise WSManFault("w:InvalidParameter",
                                 "The working directory %s does not exist on %s." % (wd, self.host.name),
                                 wsman.CODE_INVALID_PARAMETER)
            cwd = resolved
        idle = self.idle_timeout
        idle_text = spec.findtext("rsp:IdleTimeOut", default="", namespaces=NS).strip()
        if idle_text:
            # pywinrm passes a number of seconds, MS-WSMV says xs:duration: take both.
            try:
                idle = wsman.parse_duration(idle_text) if idle_text.startswith("P") else float(idle_text)
            except ValueError:
                raise WSManFault("w:InvalidParameter", "The IdleTimeOut value %r is not valid." % idle_text,
                                 wsman.CODE_INVALID_PARAMETER) from None
        shell_id = (default_id or str(uuid.uuid4())).upper()
        if spec.get("ShellId"):
            # PSRP clients (pypsrp, MS-PSRP 3.1.5.3.1) choose the ShellId: the RunspacePool id.
            try:
                shell_id = str(uuid.UUID(spec.get("ShellId"))).upper()
            except ValueError:
                raise WSManFault("w:InvalidParameter", "The ShellId %r is not a GUID." % spec.get("ShellId"),
                                 wsman.CODE_INVALID_PARAMETER) from None
            with self.lock:
                if shell_id in self.shells:
                    raise WSManFault("w:AlreadyExists", "A shell with ShellId %s already exists." % shell_id,
                                     wsman.CODE_INVALID_PARAMETER)
        shell = (shell_class or Shell)(
            shell_id=shell_id,
            resource_uri=req.resource_uri,
            env=env,
            cwd=cwd,
            input_streams=(spec.findtext("rsp:InputStreams", default="stdin", namespaces=NS) or "stdin").split(),
            output_streams=(spec.findtext("rsp:OutputStreams", default="stdout stderr", namespaces=NS)
                            or "stdout stderr").split(),
            idle_timeout=idle,
            owner=conn_id,
            **extra,
        )
        with self.lock:
            if len(self.shells) >= self.max_shells:
                raise WSManFault("w:QuotaLimit",
                                 "The WS-Management service cannot process the request. This user is allowed a "
                                 "maximum number of %d concurrent shells, which has been exceeded." % self.max_shells,
                                 2150859173)
            self.shells[shell.shell_id] = shell
        return shell

    def created_response(self, req: wsman.Request, shell: Shell) -> bytes:
        """x:ResourceCreated plus the rsp:Shell description, as Windows answers a Create."""
        env_el, body = wsman.response(req)
        created = ET.SubElement(body, "{%s}ResourceCreated" % NS["x"])
        ET.SubElement(created, "{%s}Address" % NS["a"]).text = self.host.endpoint_url()
        ref = ET.SubElement(created, "{%s}ReferenceParameters" % NS["a"])
        ET.SubElement(ref, "{%s}ResourceURI" % NS["w"]).text = req.resource_uri
        sels = ET.SubElement(ref, "{%s}SelectorSet" % NS["w"])
        ET.SubElement(sels, "{%s}Selector" % NS["w"], {"Name": "ShellId"}).text = shell.shell_id
        # Windows follows ResourceCreated with the shell's description (WinRM 3.0).
        desc = ET.SubElement(body, "{%s}Shell" % NS["rsp"])
        ET.SubElement(desc, "{%s}ShellId" % NS["rsp"]).text = shell.shell_id
        ET.SubElement(desc, "{%s}ResourceUri" % NS["rsp"]).text = req.resource_uri
        ET.SubElement(desc, "{%s}Owner" % NS["rsp"]).text = self.host.owner_name()
        ET.SubElement(desc, "{%s}ClientIP" % NS["rsp"]).text = "127.0.0.1"
        ET.SubElement(desc, "{%s}IdleTimeOut" % NS["rsp"]).text = "PT%.3fS" % shell.idle_timeout
        ET.SubElement(desc, "{%s}InputStreams" % NS["rsp"]).text = " ".join(shell.input_streams)
        ET.SubElement(desc, "{%s}OutputStreams" % NS["rsp"]).text = " ".join(shell.output_streams)
        ET.SubElement(desc, "{%s}ShellRunTime" % NS["rsp"]).text = "P0DT0H0M0S"
        ET.SubElement(desc, "{%s}ShellInactivity" % NS["rsp"]).text = "P0DT0H0M0S"
        return wsman.serialize(env_el)

    def delete(self, req: wsman.Request, conn_id: int) -> bytes:
        shell = self._shell(req, conn_id)
        self.close_shell(shell, "Delete")
        env_el, _body = wsman.response(req)
        return wsman.serialize(env_el)

    # ---- lifetime --------------------------------------------------------------------
    def close_shell(self, shell: Shell, why: str) -> None:
        with self.lock:
            self.shells.pop(shell.shell_id, None)
            running = list(shell.commands.values())
            shell.commands.clear()
        self.end_shell(shell, running)
        log.info("%s: %s shell %s closed (%s), %d command(s) ended", self.host.name, self.kind, shell.shell_id, why,
                 len(running))

    def connection_closed(self, conn_id: int) -> None:
        now = time.monotonic()
        with self.lock:
            for shell in self.shells.values():
                if shell.owner == conn_id:
                    shell.orphaned_at = now

    def reap(self) -> None:
        """Close shells whose client went away (after the grace) or that sat idle too long."""
        now = time.monotonic()
        doomed = []
        with self.lock:
            for shell in self.shells.values():
                if shell.orphaned_at is not None and now - shell.orphaned_at > self.disconnect_grace:
                    doomed.append((shell, "client disconnected"))
                elif now - shell.last_activity > shell.idle_timeout:
                    doomed.append((shell, "idle timeout"))
        for shell, why in doomed:
            self.close_shell(shell, why)

    def close_all(self) -> None:
        with self.lock:
            shells = list(self.shells.values())
        for shell in shells:
            self.close_shell(shell, "lab stopping")

    # ---- pieces of the operations both kinds answer alike ----------------------------
    @staticmethod
    def desired_stream(req: wsman.Request) -> ET.Element:
        desired = req.body.find("rsp:Receive/rsp:DesiredStream", NS)
        if desired is None:
            raise WSManFault("w:InvalidParameter", "The Receive request has no rsp:DesiredStream.",
                             wsman.CODE_INVALID_PARAMETER)
        return desired

    @staticmethod
    def receive_budget(req: wsman.Request) -> int:
        """Output bytes one ReceiveResponse may carry: base64 grows data by 4/3, and the envelope needs room."""
        return max(1024, (req.max_envelope_size - 2048) * 3 // 4)

    @staticmethod
    def empty_reply(req: wsman.Request, tag: str) -> bytes:
        """The response whose body is one empty rsp element (SendResponse, SignalResponse)."""
        env_el, body = wsman.response(req)
        ET.SubElement(body, "{%s}%s" % (NS["rsp"], tag))
        return wsman.serialize(env_el)

    # ---- what each kind of shell provides -------------------------------------------
    kind = "WinRS"

    def create(self, req: wsman.Request, conn_id: int) -> bytes:
        raise NotImplementedError

    def command(self, req: wsman.Request, conn_id: int) -> bytes:
        raise NotImplementedError

    def send(self, req: wsman.Request, conn_id: int) -> bytes:
        raise NotImplementedError

    def receive(self, req: wsman.Request, conn_id: int, client_gone) -> bytes:
        raise NotImplementedError

    def signal(self, req: wsman.Request, conn_id: int) -> bytes:
        raise NotImplementedError

    def end_shell(self, shell: Shell, running: list) -> None:
        """Stop what still runs in a shell that was just closed (its commands, its process)."""
        raise NotImplementedError

    def live_pids(self) -> list[int]:
        raise NotImplementedError
