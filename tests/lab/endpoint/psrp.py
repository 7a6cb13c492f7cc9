# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PowerShell remoting plugin (resource URI .../powershell/Microsoft.PowerShell) of a lab host.

WinRM hands a PSRP shell's traffic to a PowerShell process and relays PSRP fragments
both ways (MS-PSRP 3.1.5.3: the RunspacePool is the shell, a pipeline is a command
whose CommandId is the pipeline id). The lab does the same with PowerShell's own
out-of-process transport: behind each shell runs one `pwsh -s -NoLogo -NoProfile` in
the host's environment, talked to with the line protocol of PowerShell's
OutOfProcessTransportManager:

    to pwsh:   <Data Stream='Default|PromptResponse' PSGuid='G'>base64</Data>
               <Command PSGuid='G' />   <Signal PSGuid='G' />   <Close PSGuid='G' />
    from pwsh: <Data Stream='Default' PSGuid='G'>base64</Data>   <DataAck PSGuid='G' />
               <CommandAck PSGuid='G' />   <SignalAck PSGuid='G' />   <CloseAck PSGuid='G' />

G is the pipeline id, or the empty GUID for the RunspacePool. The fragments inside are
passed through untouched; the lab only reads them (with psrpcore) to know where one
fragment ends, which message a pipeline's last one was (PIPELINE_STATE: the command is
Done) and whether a client's Create/Command carries what MS-PSRP says it must.
"""

from __future__ import annotations

import base64
import binascii
import collections
import logging
import os
import signal
import struct
import subprocess
import threading
import time
import typing
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from psrpcore.types import PSInvocationState, PSRPMessageType, deserialize

from . import wsman
from .shell import MAX_BUFFERED_OUTPUT, ClientGone, Shell, ShellService, remove_runtime_endpoints, start_ticks
from .wsman import NS, WSManFault

log = logging.getLogger("lab.psrp")

NS_POWERSHELL = "http://schemas.microsoft.com/powershell"
POOL_GUID = "00000000-0000-0000-0000-000000000000"
# WS-Man input stream name -> out-of-process Data stream (MS-PSRP 3.1.5.3.5: "pr" carries host
# prompt responses).
INPUT_STREAMS = {"stdin": "Default", "pr": "PromptResponse"}
# pypsrp sends the relative form, Windows' own client the (misspelt) absolute one.
SIGNALS_PS_CTRL_C = {"powershell/signal/ctrl_c", "http://schemas.microsoft.com/powershell/signal/crtl_c"}
FRAGMENT_HEADER = 21  # object id (8), fragment id (8), start/end flags (1), blob length (4)
FINAL_STATES = {PSInvocationState.Stopped.value, PSInvocationState.Completed.value, PSInvocationState.Failed.value}
ACK_TIMEOUT = 30.0
# How long a Delete waits for pwsh -s to leave by itself once its input ended, before the kill.
EXIT_AFTER_CLOSE = 5.0


class Fragment(typing.NamedTuple):
    """MS-PSRP 2.2.4 Packet Fragment."""

    object_id: int
    fragment_id: int
    start: bool
    end: bool
    data: bytes


class Message(typing.NamedTuple):
    """MS-PSRP 2.2.1 PowerShell Remoting Protocol Message: the header fields the lab reads."""

    destination: int
    message_type: PSRPMessageType
    rpid: uuid.UUID
    pid: uuid.UUID | None
    data: bytes


def unpack_fragment(raw: bytes) -> Fragment:
    """One complete fragment (big-endian ids and length; flag bits 0x1 start, 0x2 end)."""
    object_id, fragment_id, flags, length = struct.unpack(">QQBI", raw[:FRAGMENT_HEADER])
    return Fragment(object_id, fragment_id, bool(flags & 0x1), bool(flags & 0x2),
                    bytes(raw[FRAGMENT_HEADER:FRAGMENT_HEADER + length]))


def unpack_message(data: bytes) -> Message:
    """A message's header (little-endian destination and type, RPID and PID as GUIDs; an
    all-zero PID means none). An unknown message type raises ValueError, a short one struct.error."""
    destination, message_type = struct.unpack("<II", data[:8])
    rpid = uuid.UUID(bytes_le=bytes(data[8:24]))
    pid = uuid.UUID(bytes_le=bytes(data[24:40]))
    body = bytes(data[40:])
    if body.startswith(b"\xef\xbb\xbf"):  # the CLIXML of a message may start with a UTF-8 BOM
        body = body[3:]
    return Message(destination, PSRPMessageType(message_type), rpid, None if pid.int == 0 else pid, body)


def split_fragments(buf: bytearray) -> list[bytes]:
    """Remove and return the complete PSRP fragments at the start of `buf` (an incomplete tail stays)."""
    out = []
    while len(buf) >= FRAGMENT_HEADER:
        length = struct.unpack(">I", buf[17:21])[0]
        if len(buf) < FRAGMENT_HEADER + length:
            break
        out.append(bytes(buf[:FRAGMENT_HEADER + length]))
        del buf[:FRAGMENT_HEADER + length]
    return out


def first_message(data: bytes, what: str):
    """The header of the first PSRP message in `data` (a start fragment), or a fault naming `what`."""
    frags = split_fragments(bytearray(data))
    if not frags:
        raise WSManFault("w:InvalidParameter", "The %s does not hold a complete PSRP fragment." % what,
                         wsman.CODE_INVALID_DATA)
    frag = unpack_fragment(frags[0])
    if not frag.start or len(frag.data) < 40:
        raise WSManFault("w:InvalidParameter", "The %s does not start with the first fragment of a PSRP message."
                         % what, wsman.CODE_INVALID_DATA)
    try:
        return unpack_message(frag.data)
    except ValueError:
        raise WSManFault("w:InvalidParameter", "The %s holds an unknown PSRP message type." % what,
                         wsman.CODE_INVALID_DATA) from None


def b64(text: str | None, what: str) -> bytes:
    try:
        return base64.b64decode((text or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WSManFault("w:InvalidParameter", "The %s is not valid base64." % what,
                         wsman.CODE_INVALID_PARAMETER) from None


@dataclass
class Target:
    """Output waiting for a Receive: of the RunspacePool (shell level) or of one pipeline."""

    fragments: collections.deque = field(default_factory=collections.deque)
    partial: bytearray = field(default_factory=bytearray)
    # object id -> the PIPELINE_STATE message being reassembled (only those are read).
    state_messages: dict[int, bytearray] = field(default_factory=dict)
    state: int | None = None

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES


@dataclass
class Pipeline:
    command_id: str
    started: float = field(default_factory=time.monotonic)


@dataclass
class PsrpShell(Shell):
    relay: "Relay | None" = None


class Relay:
    """One `pwsh -s` and the two directions of its out-of-process transport."""

    def __init__(self, host, shell: PsrpShell, pwsh: str) -> None:
        self.host = host
        self.shell_id = shell.shell_id
        self.cond = threading.Condition()
        self.targets: dict[str, Target] = {POOL_GUID: Target()}
        self.acks: collections.Counter = collections.Counter()
        self.buffered = 0
        self.killed = False
        self.finishing = False  # Delete ended pwsh's input: its exit is expected
        self.exit_code: int | None = None
        self.stderr_tail = collections.deque(maxlen=20)
        self.stdin_lock = threading.Lock()
        self.send_lock = threading.Lock()  # one Data packet waits for its Ack at a time
        self.data_sent: collections.Counter = collections.Counter()
        self.proc, self.pid = host.start_process(
            [pwsh, "-s", "-NoLogo", "-NoProfile"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, cwd=shell.cwd, env=shell.env, start_new_session=True, close_fds=True)
        self.started = time.monotonic()
        self.env = shell.env
        self.ticks = start_ticks(self.pid)
        host.count_process()
        log.info("%s: PowerShell shell %s: pwsh -s pid %d", host.name, shell.shell_id, self.pid)
        for target, name in ((self._read_stdout, "out"), (self._read_stderr, "err"), (self._wait, "wait")):
            threading.Thread(target=target, daemon=True, name="lab-psrp-%s-%d" % (name, self.proc.pid)).start()

    # ---- from pwsh -------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        try:
            for line in self.proc.stdout:
                line = line.strip()
                if line:
                    self._packet(line)
        except (OSError, ValueError):
            pass
        finally:
            with self.cond:
                self.cond.notify_all()

    def _read_stderr(self) -> None:
        try:
            for line in self.proc.stderr:
                self.stderr_tail.append(line.decode("utf-8", "replace").rstrip())
        except (OSError, ValueError):
            pass

    def _wait(self) -> None:
        rc = self.proc.wait()
        remove_runtime_endpoints(self.env, self.pid, self.ticks)
        with self.cond:
            self.exit_code = rc if rc >= 0 else 128 - rc
            self.cond.notify_all()
        self.host.count_process_seconds(time.monotonic() - self.started)
        if not self.killed and not self.finishing:
            log.warning("%s: pwsh -s of shell %s exited by itself (rc %s): %s", self.host.name, self.shell_id,
                        rc, " | ".join(self.stderr_tail))

    def _packet(self, line: bytes) -> None:
        try:
            el = ET.fromstring(line)
        except ET.ParseError:
            log.warning("%s: shell %s: pwsh -s wrote a line that is no packet: %r", self.host.name, self.shell_id,
                        line[:200])
            return
        guid = (el.get("PSGuid") or POOL_GUID).upper()
        if el.tag != "Data":
            log.debug("%s: shell %s: pwsh -s sent %s for %s", self.host.name, self.shell_id, el.tag, guid)
            with self.cond:
                self.acks[(el.tag, guid)] += 1
                self.cond.notify_all()
            return
        try:
            payload = base64.b64decode(el.text or "", validate=True)
        except (binascii.Error, ValueError):
            log.warning("%s: shell %s: undecodable Data packet from pwsh -s", self.host.name, self.shell_id)
            return
        with self.cond:
            target = self.targets.setdefault(guid, Target())
            target.partial += payload
            for frag in split_fragments(target.partial):
                target.fragments.append(frag)
                self.buffered += len(frag)
                if guid != POOL_GUID:
                    self._watch_state(target, frag)
            self.cond.notify_all()
            # Output nobody receives stops being read, so pwsh blocks on write as behind WinRM.
            while self.buffered > MAX_BUFFERED_OUTPUT and not self.killed:
                self.cond.wait(0.5)

    @staticmethod
    def _watch_state(target: Target, raw: bytes) -> None:
        frag = unpack_fragment(raw)
        if frag.start:
            try:
                msg = unpack_message(frag.data)
            except (ValueError, struct.error):
                return
            if msg.message_type != PSRPMessageType.PipelineState:
                return
            target.state_messages[frag.object_id] = bytearray()
        if frag.object_id not in target.state_messages:
            return
        target.state_messages[frag.object_id] += frag.data
        if frag.end:
            msg = unpack_message(target.state_messages.pop(frag.object_id))
            try:
                target.state = int(deserialize(ET.fromstring(bytes(msg.data)), None).PipelineState)
            except (ET.ParseError, AttributeError, TypeError, ValueError):
                log.warning("unreadable PIPELINE_STATE message")

    # ---- to pwsh ---------------------------------------------------------------------------
    def write(self, line: str) -> None:
        with self.stdin_lock:
            try:
                self.proc.stdin.write(line.encode("utf-8") + b"\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                raise self.broken() from None

    def broken(self) -> WSManFault:
        return WSManFault(
            "w:InternalError", "The PowerShell plugin process of shell %s has ended (exit code %s)%s." % (
                self.shell_id, self.exit_code, (": " + self.stderr_tail[-1]) if self.stderr_tail else ""),
            wsman.CODE_INVALID_DATA, code="s:Receiver")

    def data(self, guid: str, stream: str, payload: bytes) -> None:
        """One Data packet, once the previous one for the same GUID has been acknowledged.

        PowerShell's own client keeps one Data packet in flight per GUID: pwsh -s hands a
        pipeline's data to a pipeline that may not exist yet, and drops what arrives before
        it acknowledged the CREATE_PIPELINE (pipeline input would vanish).
        """
        if not payload:
            return
        key = guid.upper()
        with self.send_lock:
            self.settle(key)
            with self.cond:
                self.data_sent[key] += 1
            log.debug("%s: shell %s: Data (%d bytes, %s) for %s", self.host.name, self.shell_id, len(payload),
                      stream, key)
            encoded = base64.b64encode(payload).decode("ascii")
            self.write("<Data Stream='%s' PSGuid='%s'>%s</Data>" % (stream, guid.lower(), encoded))

    def settle(self, key: str) -> None:
        """Wait until pwsh acknowledged every Data packet sent for `key`."""
        deadline = time.monotonic() + ACK_TIMEOUT
        with self.cond:
            while self.acks[("DataAck", key)] < self.data_sent[key]:
                if self.exit_code is not None:
                    raise self.broken()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WSManFault("w:InternalError", "pwsh -s did not acknowledge data for %s within %d s."
                                     % (key, ACK_TIMEOUT), wsman.CODE_INVALID_DATA, code="s:Receiver")
                self.cond.wait(min(remaining, 0.2))

    def control(self, tag: str, guid: str, wait: float = 0.0) -> bool:
        """Send a Command/Signal/Close packet; with `wait`, wait that long for its Ack."""
        key = (tag + "Ack", guid.upper())
        if tag != "Command":
            # A Signal or Close overtaking the pipeline's CREATE_PIPELINE would find nothing to stop.
            with self.send_lock:
                self.settle(guid.upper())
        with self.cond:
            seen = self.acks[key]
        log.debug("%s: shell %s: %s for %s", self.host.name, self.shell_id, tag, guid.upper())
        self.write("<%s PSGuid='%s' />" % (tag, guid.lower()))
        deadline = time.monotonic() + wait
        with self.cond:
            while self.acks[key] == seen:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.exit_code is not None:
                    return False
                self.cond.wait(min(remaining, 0.2))
        return True

    def finish(self, timeout: float) -> bool:
        """End pwsh's input and wait up to `timeout` for it to exit: True if it did.

        pwsh -s leaves when its stdin ends, cleanly (it removes its runtime files), as
        Windows' plugin host does when its last shell closes; a kill stays for what remains.
        """
        with self.cond:
            self.finishing = True
        with self.stdin_lock:
            try:
                self.proc.stdin.close()
            except (BrokenPipeError, OSError, ValueError):
                pass
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.exit_code is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.cond.wait(min(remaining, 0.2))
        return True

    def taken(self, size: int) -> None:
        with self.cond:
            self.buffered -= size
            self.cond.notify_all()

    def kill(self) -> None:
        with self.cond:
            self.killed = True
            self.cond.notify_all()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class PowerShellService(ShellService):
    """PSRP shells of one lab host: a shell is one `pwsh -s` (the RunspacePool), a command a pipeline."""

    kind = "PowerShell"

    def handle(self, req: wsman.Request, conn_id: int, client_gone) -> bytes:
        if req.operation in ("Disconnect", "Reconnect", "Connect"):
            raise WSManFault(
                "a:ActionNotSupported",
                "The action %s is not supported by the service: the lab's PowerShell plugin has no disconnected "
                "sessions. Close the RunspacePool and open a new one." % req.action, wsman.CODE_NOT_SUPPORTED)
        return super().handle(req, conn_id, client_gone)

    def create(self, req: wsman.Request, conn_id: int) -> bytes:
        spec = req.body.find("rsp:Shell", NS)
        creation = spec.find("{%s}creationXml" % NS_POWERSHELL) if spec is not None else None
        if creation is None:
            raise WSManFault("w:InvalidParameter", "The Create request for the PowerShell plugin has no creationXml "
                             "(the SESSION_CAPABILITY and INIT_RUNSPACEPOOL fragments).", wsman.CODE_INVALID_PARAMETER)
        opening = b64(creation.text, "creationXml")
        msg = first_message(opening, "creationXml")
        if msg.message_type != PSRPMessageType.SessionCapability:
            raise WSManFault("w:InvalidParameter", "The creationXml starts with %s, not SESSION_CAPABILITY."
                             % msg.message_type.name, wsman.CODE_INVALID_DATA)
        pool_id = str(msg.rpid).upper()
        if spec.get("ShellId") and spec.get("ShellId").upper() != pool_id:
            raise WSManFault("w:InvalidParameter", "The ShellId %s is not the RunspacePool id %s of the creationXml."
                             % (spec.get("ShellId"), pool_id), wsman.CODE_INVALID_PARAMETER)
        shell = self.new_shell(req, conn_id, shell_class=PsrpShell, default_id=pool_id)
        try:
            shell.relay = Relay(self.host, shell, self.pwsh)
            shell.relay.data(POOL_GUID, "Default", opening)
        except (OSError, WSManFault) as exc:
            self.close_shell(shell, "pwsh -s failed to start")
            raise WSManFault("w:InternalError", "The PowerShell plugin could not start: %s" % exc,
                             wsman.CODE_INVALID_DATA, code="s:Receiver") from None
        return self.created_response(req, shell)

    def command(self, req: wsman.Request, conn_id: int) -> bytes:
        shell = self._shell(req, conn_id)
        line = req.body.find("rsp:CommandLine", NS)
        args = line.findall("rsp:Arguments", NS) if line is not None else []
        if len(args) != 1:
            raise WSManFault("w:InvalidParameter", "A PowerShell Command carries exactly one rsp:Arguments (the "
                             "CREATE_PIPELINE fragment); got %d." % len(args), wsman.CODE_INVALID_PARAMETER)
        payload = b64(args[0].text, "rsp:Arguments of the Command")
        msg = first_message(payload, "rsp:Arguments of the Command")
        if msg.message_type != PSRPMessageType.CreatePipeline or msg.pid is None:
            raise WSManFault("w:InvalidParameter", "The Command's fragment is %s, not CREATE_PIPELINE."
                             % msg.message_type.name, wsman.CODE_INVALID_DATA)
        pipeline_id = str(msg.pid).upper()
        given = line.get("CommandId")
        if given and given.upper() != pipeline_id:
            raise WSManFault("w:InvalidParameter", "The CommandId %s is not the pipeline id %s of the "
                             "CREATE_PIPELINE message." % (given, pipeline_id), wsman.CODE_INVALID_PARAMETER)
        relay = shell.relay
        with self.lock:
            if pipeline_id in shell.commands:
                raise WSManFault("w:AlreadyExists", "A command with CommandId %s already exists." % pipeline_id,
                                 wsman.CODE_INVALID_PARAMETER)
            if len(shell.commands) >= self.max_commands_per_shell:
                raise WSManFault("w:QuotaLimit", "The shell %s already runs %d commands." % (
                    shell.shell_id, self.max_commands_per_shell), 2150859174)
            shell.commands[pipeline_id] = Pipeline(pipeline_id)
        with relay.cond:
            relay.targets[pipeline_id] = Target()
        # pwsh must have the pipeline's transport before its first Data, hence the wait for the Ack.
        if not relay.control("Command", pipeline_id, wait=ACK_TIMEOUT):
            raise relay.broken() if relay.exit_code is not None else WSManFault(
                "w:InternalError", "pwsh -s did not acknowledge pipeline %s." % pipeline_id,
                wsman.CODE_INVALID_DATA, code="s:Receiver")
        relay.data(pipeline_id, "Default", payload)
        log.info("%s: Command (pipeline) %s in shell %s", self.host.name, pipeline_id, shell.shell_id)
        env_el, body = wsman.response(req)
        resp = ET.SubElement(body, "{%s}CommandResponse" % NS["rsp"])
        ET.SubElement(resp, "{%s}CommandId" % NS["rsp"]).text = pipeline_id
        return wsman.serialize(env_el)

    def send(self, req: wsman.Request, conn_id: int) -> bytes:
        shell = self._shell(req, conn_id)
        streams = req.body.findall("rsp:Send/rsp:Stream", NS)
        if not streams:
            raise WSManFault("w:InvalidParameter", "The Send request has no rsp:Send/rsp:Stream.",
                             wsman.CODE_INVALID_PARAMETER)
        packets = []
        for stream in streams:
            name = stream.get("Name")
            if name not in shell.input_streams or name not in INPUT_STREAMS:
                raise WSManFault("w:InvalidParameter", "The stream %r is not an input stream of shell %s." % (
                    name, shell.shell_id), wsman.CODE_INVALID_PARAMETER)
            guid = self._command(shell, stream.get("CommandId")).command_id if stream.get("CommandId") else POOL_GUID
            packets.append((guid, INPUT_STREAMS[name], b64(stream.text, "rsp:Stream content")))
        for guid, name, payload in packets:
            shell.relay.data(guid, name, payload)
        return self.empty_reply(req, "SendResponse")

    def receive(self, req: wsman.Request, conn_id: int, client_gone) -> bytes:
        shell = self._shell(req, conn_id)
        desired = self.desired_stream(req)
        command_id = self._command(shell, desired.get("CommandId")).command_id if desired.get("CommandId") else None
        relay = shell.relay
        budget = self.receive_budget(req)
        deadline = time.monotonic() + req.operation_timeout
        with relay.cond:
            target = relay.targets.get(command_id or POOL_GUID)
            if target is None:  # terminated while this Receive was on its way
                raise self._gone(shell, command_id)
            while not target.fragments and not target.done:
                if relay.exit_code is not None:
                    raise relay.broken()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise wsman.timeout_fault()
                relay.cond.wait(min(remaining, 0.2))
                if client_gone():
                    raise ClientGone()
            # Whole fragments only: pypsrp reassembles messages from fragments, not from bytes.
            chunks: list[bytes] = []
            size = 0
            while target.fragments and (not chunks or size + len(target.fragments[0]) <= budget):
                frag = target.fragments.popleft()
                chunks.append(frag)
                size += len(frag)
            done = target.done and not target.fragments
        relay.taken(size)

        env_el, body = wsman.response(req)
        rr = ET.SubElement(body, "{%s}ReceiveResponse" % NS["rsp"])
        attrs = {"Name": "stdout"}
        if command_id:
            attrs["CommandId"] = command_id
        if chunks:
            ET.SubElement(rr, "{%s}Stream" % NS["rsp"], attrs).text = base64.b64encode(b"".join(chunks)).decode()
        if command_id:
            if done:
                ET.SubElement(rr, "{%s}Stream" % NS["rsp"], dict(attrs, End="true"))
                st = ET.SubElement(rr, "{%s}CommandState" % NS["rsp"],
                                   {"CommandId": command_id, "State": wsman.STATE_DONE})
                ET.SubElement(st, "{%s}ExitCode" % NS["rsp"]).text = "0"
            else:
                ET.SubElement(rr, "{%s}CommandState" % NS["rsp"],
                              {"CommandId": command_id, "State": wsman.STATE_RUNNING})
        return wsman.serialize(env_el)

    def _gone(self, shell: PsrpShell, command_id: str | None) -> WSManFault:
        return WSManFault("w:InvalidParameter", "The request for the Windows Remote Shell with ShellId %s failed "
                          "because the command with CommandId %s was not found." % (shell.shell_id, command_id),
                          wsman.CODE_INVALID_PARAMETER)

    def signal(self, req: wsman.Request, conn_id: int) -> bytes:
        shell = self._shell(req, conn_id)
        sig = req.body.find("rsp:Signal", NS)
        if sig is None:
            raise WSManFault("w:InvalidParameter", "The Signal request has no rsp:Signal.",
                             wsman.CODE_INVALID_PARAMETER)
        cmd = self._command(shell, sig.get("CommandId"))
        code = (sig.findtext("rsp:Code", default="", namespaces=NS) or "").strip()
        relay = shell.relay
        if code.lower() == wsman.SIGNAL_TERMINATE.lower():
            # The pipeline's resources go; pwsh acknowledges the Close (stopping it if it still runs).
            relay.control("Close", cmd.command_id, wait=5.0)
            with self.lock:
                shell.commands.pop(cmd.command_id, None)
            with relay.cond:
                target = relay.targets.pop(cmd.command_id, None)
                if target is not None:
                    relay.buffered -= sum(len(f) for f in target.fragments)
                relay.cond.notify_all()
            log.info("%s: Signal terminate %s", self.host.name, cmd.command_id)
        elif code in SIGNALS_PS_CTRL_C:
            with relay.cond:
                target = relay.targets.get(cmd.command_id)
                running = target is not None and not target.done
            # A finished pipeline has nothing to stop (ansible stops its previous one before each command).
            if running:
                relay.control("Signal", cmd.command_id, wait=5.0)
            log.info("%s: Signal ps_ctrl_c %s (%s)", self.host.name, cmd.command_id,
                     "stopping" if running else "already finished")
        else:
            raise WSManFault("w:InvalidParameter", "The signal code %r is not supported by the PowerShell plugin."
                             % code, wsman.CODE_INVALID_PARAMETER)
        return self.empty_reply(req, "SignalResponse")

    def delete(self, req: wsman.Request, conn_id: int) -> bytes:
        shell = self._shell(req, conn_id)
        relay = shell.relay
        if relay is not None and relay.exit_code is None:
            # Let pwsh close the RunspacePool and exit as WinRM's plugin host does; whatever
            # remains (a process it started, a pwsh that did not leave) is killed anyway.
            try:
                if relay.control("Close", POOL_GUID, wait=2.0) and not relay.finish(EXIT_AFTER_CLOSE):
                    log.warning("%s: pwsh -s of shell %s did not exit within %.0f s of its Close; killing it",
                                self.host.name, shell.shell_id, EXIT_AFTER_CLOSE)
            except WSManFault:
                pass
        return super().delete(req, conn_id)

    def end_shell(self, shell: Shell, running: list) -> None:
        relay = getattr(shell, "relay", None)
        if relay is not None:
            relay.kill()

    def live_pids(self) -> list[int]:
        with self.lock:
            relays = [s.relay for s in self.shells.values() if getattr(s, "relay", None) is not None]
        return [r.proc.pid for r in relays if r.proc.poll() is None]
