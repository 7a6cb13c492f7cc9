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

from . import replay, wsman
from .shell import MAX_BUFFERED_OUTPUT, ClientGone, Shell, ShellService, remove_runtime_endpoints, start_ticks
from .wsman import NS, WSManFault

log = logging.getLogger("lab.winrs")

POWERSHELL_NAMES = {"powershell", "pwsh"}
# How long to keep draining stdout/stderr after the process exited: a grandchild that
# inherited the pipes must not keep a command Running forever.
PIPE_DRAIN_AFTER_EXIT = 1.0


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
    # Killed or interrupted before it had ended: its output is not the whole run's.
    interrupted: bool = False
    # Replay mode (replay.py): an exec wrapper is held, its input collected, until the whole
    # payload says which module it runs; `recording` collects a real run's output to replay.
    held_input: bytearray | None = None
    recording: list[tuple[str, bytes]] | None = None
    on_done: object = None

    @property
    def finished(self) -> bool:
        if self.exit_code is None:
            return False
        if not self.open_streams:
            return True
        return time.monotonic() - (self.exited_at or 0) > PIPE_DRAIN_AFTER_EXIT

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the command's whole process group (it has its own session)."""
        with self.cond:
            # ansible-core's winrm sends a terminate after every command it saw end: cleanup,
            # not an interruption (the replay recorder took it for one under load).
            if self.exit_code is None or self.open_streams:
                self.interrupted = True
            if sig == signal.SIGKILL:
                # Also a held or replaying command (no process yet): it must never start now.
                self.killed = True
            self.cond.notify_all()
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class CmdShellService(ShellService):
    """The cmd shell of one lab host: a command is a process from the host's bin folder (or pwsh)."""

    def create(self, req: wsman.Request, conn_id: int) -> bytes:
        shell = self.new_shell(req, conn_id)
        log.info("%s: Create shell %s (cwd %s)", self.host.name, shell.shell_id, shell.cwd)
        return self.created_response(req, shell)

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
        elif self.host.lab.replay is not None and program == self.pwsh and replay.is_exec_wrapper(argv):
            cmd = Command(command_id=command_id, argv=[program] + argv[1:], proc=None, started=time.monotonic(),
                          held_input=bytearray())
            log.debug("%s: Command %s: exec wrapper held until its input is read (replay)", self.host.name, command_id)
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
        return self._launch(shell, Command(command_id=command_id, argv=argv, proc=None, started=time.monotonic()))

    def _launch(self, shell: Shell, cmd: Command) -> Command:
        argv = cmd.argv
        proc, pid = self.host.start_process(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=shell.cwd, env=shell.env, start_new_session=True, close_fds=True,
        )
        cmd.proc = proc
        command_id = cmd.command_id
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
                    if cmd.recording is not None:
                        cmd.recording.append((name, data))
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
        if cmd.on_done is not None:
            with cmd.cond:
                cmd.cond.wait_for(lambda: not cmd.open_streams, PIPE_DRAIN_AFTER_EXIT)
                complete = not cmd.open_streams and not cmd.interrupted
            cmd.on_done(cmd if complete else None)

    # ---- replay mode (replay.py) ---------------------------------------------------------
    def _release_held(self, shell: Shell, cmd: Command) -> None:
        """The held exec wrapper's input is complete: replay its module, record it, or run it."""
        payload = bytes(cmd.held_input or b"")
        cmd.held_input = None
        store = self.host.lab.replay
        call = replay.module_call(payload)
        if call is None or not store.wants(call[0]):
            self._run_held(shell, cmd, payload)
            return
        key = (self.host.scenario, call[0], replay.arguments_key(call[1]))
        rec, record_it = store.claim(key)
        if record_it:
            cmd.recording = []
            cmd.on_done = lambda done: store.finish(key, rec, self.host.name, done and done.recording,
                                                    done.exit_code if done else None,
                                                    done.exited_at - done.started if done else 0.0)
            log.info("%s: Command %s: %s runs for real and is recorded for scenario %s (%d bytes of input read)",
                     self.host.name, cmd.command_id, call[0], key[0], len(payload))
            self._run_held(shell, cmd, payload)
            return
        threading.Thread(target=self._answer_from, args=(shell, cmd, rec, payload), daemon=True,
                         name="lab-replay-%s" % cmd.command_id).start()

    def _answer_from(self, shell: Shell, cmd: Command, rec, payload: bytes) -> None:
        while not rec.ready.wait(0.5):
            if cmd.killed:
                return
        if rec.chunks is None:  # the recording run failed: this one runs for real
            self._run_held(shell, cmd, payload)
            return
        due = cmd.started + self.host.lab.replay.delay(rec)
        with cmd.cond:
            # Paced like the real run; a killed command (terminate, Delete) stops waiting.
            while not cmd.killed and time.monotonic() < due:
                cmd.cond.wait(due - time.monotonic())
        with cmd.cond:
            if cmd.killed:
                return
            cmd.chunks.extend(rec.chunks)
            cmd.open_streams.clear()
            cmd.exit_code = rec.exit_code
            cmd.exited_at = time.monotonic()
            cmd.cond.notify_all()
        self.host.count_replayed(cmd.exited_at - cmd.started)
        log.info("%s: Command %s replayed (recorded on %s, %d bytes of input read)", self.host.name,
                 cmd.command_id, rec.recorded_on, len(payload))

    def _run_held(self, shell: Shell, cmd: Command, payload: bytes) -> None:
        if cmd.killed:
            return
        self._launch(shell, cmd)
        try:
            cmd.proc.stdin.write(payload)
            cmd.proc.stdin.close()
        except (BrokenPipeError, ValueError, OSError):
            pass

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
            if cmd.held_input is not None:
                with cmd.stdin_lock:
                    if cmd.stdin_closed:
                        raise WSManFault("w:InvalidParameter", "The input stream of command %s was already closed." %
                                         cmd.command_id, wsman.CODE_INVALID_PARAMETER)
                    cmd.held_input += data
                    if end:
                        cmd.stdin_closed = True
                        self._release_held(shell, cmd)
                continue
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
        return self.empty_reply(req, "SendResponse")

    def receive(self, req: wsman.Request, conn_id: int, client_gone) -> bytes:
        shell = self._shell(req, conn_id)
        desired = self.desired_stream(req)
        cmd = self._command(shell, desired.get("CommandId"))
        wanted = set((desired.text or "stdout stderr").split())
        budget = self.receive_budget(req)
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
        return self.empty_reply(req, "SignalResponse")

    def end_shell(self, shell: Shell, running: list[Command]) -> None:
        for cmd in running:
            cmd.kill(signal.SIGKILL)

    def live_pids(self) -> list[int]:
        with self.lock:
            return [c.proc.pid for s in self.shells.values() for c in s.commands.values()
                    if c.proc is not None and c.proc.poll() is None]
