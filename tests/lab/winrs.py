# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Windows Remote Shell (resource URI .../windows/shell/cmd) of a lab host.

Shells and commands behave as WinRS does for the operations pywinrm and
ansible-core's winrm connection send (MS-WSMV 3.1.4.5 Create, 3.1.4.11 Command,
3.1.4.13 Send, 3.1.4.14 Receive, 3.1.4.12 Signal, 3.1.4.6 Delete). A command is a
real process in its own process group, so a terminate signal, a deleted shell or a
client that went away takes every process it started with it, the way WinRS
closes the command's job object on Windows.
"""

from __future__ import annotations

import base64
import glob
import logging
import os
import re
import signal
import subprocess
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from . import wsman
from .wsman import NS, WSManFault

log = logging.getLogger("lab.winrs")

POWERSHELL_NAMES = {"powershell", "pwsh"}
# How long to keep draining stdout/stderr after the process exited: a grandchild that
# inherited the pipes must not keep a command Running forever.
PIPE_DRAIN_AFTER_EXIT = 1.0
# Output held for a client that does not Receive; past this the pipe is left unread, so
# the process blocks on write as it would behind WinRS's own flow control.
MAX_BUFFERED_OUTPUT = 4 * 1024 * 1024


class ClientGone(Exception):
    """The HTTP client closed its connection while a Receive was waiting."""


def split_command_line(line: str) -> list[str]:
    """Split a Windows command line the way CommandLineToArgvW / the MSVC runtime do.

    2n backslashes before a quote give n backslashes and a quote toggle; 2n+1 give
    n backslashes and a literal quote; backslashes elsewhere are literal.
    """
    args: list[str] = []
    cur: list[str] = []
    in_quotes = False
    have_arg = False
    i = 0
    n = len(line)
    while i < n:
        ch = line[i]
        if ch == "\\":
            j = i
            while j < n and line[j] == "\\":
                j += 1
            count = j - i
            if j < n and line[j] == '"':
                cur.append("\\" * (count // 2))
                if count % 2:
                    cur.append('"')
                    i = j + 1
                else:
                    i = j
                have_arg = True
                continue
            cur.append("\\" * count)
            have_arg = True
            i = j
            continue
        if ch == '"':
            if in_quotes and i + 1 < n and line[i + 1] == '"':
                cur.append('"')
                i += 2
                have_arg = True
                continue
            in_quotes = not in_quotes
            have_arg = True
            i += 1
            continue
        if ch in " \t" and not in_quotes:
            if have_arg:
                args.append("".join(cur))
                cur = []
                have_arg = False
            i += 1
            continue
        cur.append(ch)
        have_arg = True
        i += 1
    if have_arg:
        args.append("".join(cur))
    return args


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


_CMD_VAR = re.compile(r"%([^%\s]+)%")


def expand_cmd_variables(line: str, env: dict[str, str]) -> str:
    """cmd.exe's %NAME% expansion (case-insensitive; undefined names stay literal)."""
    folded = {k.upper(): v for k, v in env.items()}
    return _CMD_VAR.sub(lambda m: folded.get(m.group(1).upper(), m.group(0)), line)


def program_name(arg0: str) -> str:
    """Lower-case base name of a Windows program path, without .exe."""
    base = re.split(r"[\\/]", arg0)[-1].lower()
    return base[:-4] if base.endswith(".exe") else base


@dataclass
class Command:
    command_id: str
    argv: list[str]
    proc: subprocess.Popen | None
    started: float
    cond: threading.Condition = field(default_factory=threading.Condition)
    chunks: list[tuple[str, bytes]] = field(default_factory=list)
    open_streams: set[str] = field(default_factory=lambda: {"stdout", "stderr"})
    exit_code: int | None = None
    exited_at: float | None = None
    stdin_closed: bool = False
    stdin_lock: threading.Lock = field(default_factory=threading.Lock)
    killed: bool = False

    @property
    def finished(self) -> bool:
        if self.exit_code is None:
            return False
        if not self.open_streams:
            return True
        return time.monotonic() - (self.exited_at or 0) > PIPE_DRAIN_AFTER_EXIT

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the command's whole process group (it has its own session)."""
        if self.proc is None:
            return
        if sig == signal.SIGKILL:
            with self.cond:
                self.killed = True
                self.cond.notify_all()
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


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
    commands: dict[str, Command] = field(default_factory=dict)


class CmdShellService:
    """Shells of one lab host. `host` provides name, base env, bin dir, pwsh and counters."""

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
    def _command(shell: Shell, command_id: str | None) -> Command:
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

    def create(self, req: wsman.Request, conn_id: int) -> bytes:
        shell = self.new_shell(req, conn_id)
        log.info("%s: Create shell %s (cwd %s)", self.host.name, shell.shell_id, shell.cwd)
        return self.created_response(req, shell)

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

    def command(self, req: wsman.Request, conn_id: int) -> bytes:
        shell = self._shell(req, conn_id)
        line_el = req.body.find("rsp:CommandLine", NS)
        if line_el is None or not (line_el.findtext("rsp:Command", default="", namespaces=NS) or "").strip():
            raise WSManFault("w:InvalidParameter", "The Command request has no rsp:CommandLine/rsp:Command.",
                             wsman.CODE_INVALID_PARAMETER)
        parts = [line_el.findtext("rsp:Command", default="", namespaces=NS).strip()]
        parts += [(a.text or "") for a in line_el.findall("rsp:Arguments", NS)]
        line = " ".join(p for p in parts if p)
        skip_cmd = req.options.get("WINRS_SKIP_CMD_SHELL", "FALSE").upper() == "TRUE"
        if not skip_cmd:
            line = expand_cmd_variables(line, shell.env)
        argv = split_command_line(line)
        with self.lock:
            if len(shell.commands) >= self.max_commands_per_shell:
                raise WSManFault("w:QuotaLimit", "The shell %s already runs %d commands." % (
                    shell.shell_id, self.max_commands_per_shell), 2150859174)
        command_id = (req.body.find("rsp:CommandLine", NS).get("CommandId") or str(uuid.uuid4())).upper()
        program = self.resolve(argv[0])
        if program is None:
            if skip_cmd:
                raise WSManFault("w:InternalError", "The system cannot find the file specified.",
                                 wsman.CODE_FILE_NOT_FOUND, code="s:Receiver")
            cmd = self._not_recognized(command_id, argv[0])
            log.info("%s: Command %s: %r is not in the host's bin folder", self.host.name, command_id, argv[0])
        else:
            cmd = self._start(shell, command_id, [program] + argv[1:])
        with self.lock:
            shell.commands[command_id] = cmd
        env_el, body = wsman.response(req)
        resp = ET.SubElement(body, "{%s}CommandResponse" % NS["rsp"])
        ET.SubElement(resp, "{%s}CommandId" % NS["rsp"]).text = command_id
        return wsman.serialize(env_el)

    def resolve(self, arg0: str) -> str | None:
        """powershell/pwsh run the lab's pwsh; anything else only from the host's bin folder."""
        name = program_name(arg0)
        if name in POWERSHELL_NAMES:
            return self.pwsh
        bin_dir = self.host.bin_dir
        try:
            entries = os.listdir(bin_dir)
        except OSError:
            return None
        for entry in entries:
            low = entry.lower()
            if low == name or low == name + ".exe" or low == re.split(r"[\\/]", arg0)[-1].lower():
                path = os.path.join(bin_dir, entry)
                if os.path.isfile(path) and os.access(path, os.X_OK):
                    return path
        return None

    def _not_recognized(self, command_id: str, arg0: str) -> Command:
        # What cmd.exe prints for an unknown program; exit code 1, no process.
        cmd = Command(command_id=command_id, argv=[arg0], proc=None, started=time.monotonic())
        cmd.chunks.append(("stderr", ("'%s' is not recognized as an internal or external command,\r\n"
                                      "operable program or batch file.\r\n" % arg0).encode()))
        cmd.open_streams.clear()
        cmd.exit_code = 1
        cmd.exited_at = time.monotonic()
        cmd.stdin_closed = True
        return cmd

    def _start(self, shell: Shell, command_id: str, argv: list[str]) -> Command:
        proc, pid = self.host.start_process(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=shell.cwd, env=shell.env, start_new_session=True, close_fds=True,
        )
        cmd = Command(command_id=command_id, argv=argv, proc=proc, started=time.monotonic())
        self.host.count_process()
        log.info("%s: Command %s pid %d: %s", self.host.name, command_id, pid,
                 " ".join(a if len(a) < 80 else a[:77] + "..." for a in argv))
        for name, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            threading.Thread(target=self._pump, args=(cmd, name, pipe), daemon=True,
                             name="lab-%s-%s" % (name, proc.pid)).start()
        # Read now, while the pid is certainly this process's (live_pids' poll() may reap it later).
        ticks = start_ticks(pid)
        threading.Thread(target=self._reap, args=(cmd, shell.env, pid, ticks), daemon=True,
                         name="lab-wait-%s" % proc.pid).start()
        return cmd

    @staticmethod
    def _pump(cmd: Command, name: str, pipe) -> None:
        fd = pipe.fileno()
        try:
            while True:
                data = os.read(fd, 65536)
                if not data:
                    break
                with cmd.cond:
                    cmd.chunks.append((name, data))
                    cmd.cond.notify_all()
                    while sum(len(d) for _stream, d in cmd.chunks) > MAX_BUFFERED_OUTPUT and not cmd.killed:
                        cmd.cond.wait(0.5)
        except OSError:
            pass
        finally:
            pipe.close()
            with cmd.cond:
                cmd.open_streams.discard(name)
                cmd.cond.notify_all()

    def _reap(self, cmd: Command, env: dict[str, str], pid: int, ticks: str | None) -> None:
        rc = cmd.proc.wait()
        remove_runtime_endpoints(env, pid, ticks)
        with cmd.cond:
            # A death by signal (negative returncode) is reported with the shell's 128+N
            # convention, so ExitCode stays a non-negative number as on Windows.
            cmd.exit_code = rc if rc >= 0 else 128 - rc
            cmd.exited_at = time.monotonic()
            cmd.cond.notify_all()
        self.host.count_process_seconds(cmd.exited_at - cmd.started)

    def send(self, req: wsman.Request, conn_id: int) -> bytes:
        shell = self._shell(req, conn_id)
        streams = req.body.findall("rsp:Send/rsp:Stream", NS)
        if not streams:
            raise WSManFault("w:InvalidParameter", "The Send request has no rsp:Send/rsp:Stream.",
                             wsman.CODE_INVALID_PARAMETER)
        for stream in streams:
            if stream.get("Name") not in shell.input_streams:
                raise WSManFault("w:InvalidParameter", "The stream %r is not an input stream of shell %s." % (
                    stream.get("Name"), shell.shell_id), wsman.CODE_INVALID_PARAMETER)
            cmd = self._command(shell, stream.get("CommandId"))
            try:
                data = base64.b64decode((stream.text or "").strip(), validate=True)
            except ValueError:
                raise WSManFault("w:InvalidParameter", "The rsp:Stream content is not valid base64.",
                                 wsman.CODE_INVALID_PARAMETER) from None
            end = (stream.get("End") or "false").lower() == "true"
            with cmd.stdin_lock:
                if cmd.stdin_closed:
                    raise WSManFault("w:InvalidParameter", "The input stream of command %s was already closed." %
                                     cmd.command_id, wsman.CODE_INVALID_PARAMETER)
                if cmd.proc is not None:
                    try:
                        if data:
                            cmd.proc.stdin.write(data)
                            cmd.proc.stdin.flush()
                        if end:
                            cmd.proc.stdin.close()
                    except (BrokenPipeError, ValueError, OSError):
                        # The process stopped reading or exited; Windows drops the input too.
                        pass
                if end:
                    cmd.stdin_closed = True
        env_el, body = wsman.response(req)
        ET.SubElement(body, "{%s}SendResponse" % NS["rsp"])
        return wsman.serialize(env_el)

    def receive(self, req: wsman.Request, conn_id: int, client_gone) -> bytes:
        shell = self._shell(req, conn_id)
        desired = req.body.find("rsp:Receive/rsp:DesiredStream", NS)
        if desired is None:
            raise WSManFault("w:InvalidParameter", "The Receive request has no rsp:DesiredStream.",
                             wsman.CODE_INVALID_PARAMETER)
        cmd = self._command(shell, desired.get("CommandId"))
        wanted = set((desired.text or "stdout stderr").split())
        # Base64 grows the data by 4/3; leave room for the envelope around it.
        budget = max(1024, (req.max_envelope_size - 2048) * 3 // 4)
        deadline = time.monotonic() + req.operation_timeout
        with cmd.cond:
            while not any(s in wanted for s, _data in cmd.chunks) and not cmd.finished:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise wsman.timeout_fault()
                cmd.cond.wait(min(remaining, 0.2))
                if client_gone():
                    raise ClientGone()
            taken: list[tuple[str, bytes]] = []
            size = 0
            keep: list[tuple[str, bytes]] = []
            for name, data in cmd.chunks:
                if name not in wanted:
                    continue
                if size >= budget:
                    keep.append((name, data))
                    continue
                room = budget - size
                if len(data) > room:
                    taken.append((name, data[:room]))
                    keep.append((name, data[room:]))
                    size = budget
                else:
                    taken.append((name, data))
                    size += len(data)
            cmd.chunks = keep
            cmd.cond.notify_all()  # a pump held back by MAX_BUFFERED_OUTPUT may read again
            done = cmd.finished and not cmd.chunks
            exit_code = cmd.exit_code

        env_el, body = wsman.response(req)
        rr = ET.SubElement(body, "{%s}ReceiveResponse" % NS["rsp"])
        merged: list[list] = []
        for name, data in taken:
            if merged and merged[-1][0] == name:
                merged[-1][1] += data
            else:
                merged.append([name, bytearray(data)])
        for name, data in merged:
            ET.SubElement(rr, "{%s}Stream" % NS["rsp"], {"Name": name, "CommandId": cmd.command_id}).text = (
                base64.b64encode(bytes(data)).decode("ascii"))
        if done:
            for name in sorted(wanted & {"stdout", "stderr"}):
                ET.SubElement(rr, "{%s}Stream" % NS["rsp"],
                              {"Name": name, "CommandId": cmd.command_id, "End": "true"})
            st = ET.SubElement(rr, "{%s}CommandState" % NS["rsp"],
                               {"CommandId": cmd.command_id, "State": wsman.STATE_DONE})
            ET.SubElement(st, "{%s}ExitCode" % NS["rsp"]).text = str(exit_code)
        else:
            ET.SubElement(rr, "{%s}CommandState" % NS["rsp"],
                          {"CommandId": cmd.command_id, "State": wsman.STATE_RUNNING})
        return wsman.serialize(env_el)

    def signal(self, req: wsman.Request, conn_id: int) -> bytes:
        shell = self._shell(req, conn_id)
        sig = req.body.find("rsp:Signal", NS)
        if sig is None:
            raise WSManFault("w:InvalidParameter", "The Signal request has no rsp:Signal.",
                             wsman.CODE_INVALID_PARAMETER)
        cmd = self._command(shell, sig.get("CommandId"))
        code = (sig.findtext("rsp:Code", default="", namespaces=NS) or "").strip()
        if code == wsman.SIGNAL_TERMINATE:
            cmd.kill(signal.SIGKILL)
            with self.lock:
                shell.commands.pop(cmd.command_id, None)
            log.info("%s: Signal terminate %s", self.host.name, cmd.command_id)
        elif code in (wsman.SIGNAL_CTRL_C, wsman.SIGNAL_CTRL_BREAK):
            cmd.kill(signal.SIGINT)
        else:
            raise WSManFault("w:InvalidParameter", "The signal code %r is not supported." % code,
                             wsman.CODE_INVALID_PARAMETER)
        env_el, body = wsman.response(req)
        ET.SubElement(body, "{%s}SignalResponse" % NS["rsp"])
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
            commands = list(shell.commands.values())
            shell.commands.clear()
        for cmd in commands:
            cmd.kill(signal.SIGKILL)
        log.info("%s: shell %s closed (%s), %d command(s) ended", self.host.name, shell.shell_id, why, len(commands))

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

    def live_pids(self) -> list[int]:
        with self.lock:
            return [c.proc.pid for s in self.shells.values() for c in s.commands.values()
                    if c.proc is not None and c.proc.poll() is None]
