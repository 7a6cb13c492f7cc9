# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab endpoint: N Windows-like WinRM hosts on loopback addresses, in one process.

Each host listens on its own 127.0.1.x address with an HTTP port (Negotiate +
message encryption) and an HTTPS port (Basic or Negotiate over TLS), serves
POST /wsman, and runs commands in an environment built from its state folder.
One selector thread accepts for every listener; each connection gets a thread
(the Negotiate context belongs to the connection, as on Windows).
"""

from __future__ import annotations

import base64
import collections
import json
import logging
import os
import select
import selectors
import socket
import ssl
import struct
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from . import auth, psrp, replay, shell, wsman, winrs
from ..shim import netprobe, sandbox
from .. import toolchain

log = logging.getLogger("lab.server")

LAB_USER = "labadmin"
# Requests bigger than this are not even read into memory: the connection is dropped.
HARD_BODY_LIMIT = 64 * 1024 * 1024


def pick_subnet() -> str:
    """127.0.1.x when the kernel lets us bind there (Linux routes all of 127/8 to lo), else 127.0.0.x."""
    try:
        with socket.socket() as s:
            s.bind(("127.0.1.1", 0))
        return "127.0.1"
    except OSError:
        log.warning("127.0.1.x is not bindable here; lab hosts use 127.0.0.x instead")
        return "127.0.0"


def find_pwsh(explicit: str | None = None) -> str:
    """--pwsh, else tests/lab/toolchain.py's search ($PWSH, pwsh on PATH, ../shared/tools/pwsh/pwsh)."""
    if explicit:
        return os.path.abspath(explicit)
    found = toolchain.find_pwsh()
    if not found:
        raise ValueError(toolchain.NO_PWSH)
    return found


def scenario_host_name(scenario) -> str | None:
    """The host name a scenario seeds (its `hostname`, else its `name`), or None if unreadable."""
    from ..shim import ScenarioError, load_scenario

    try:
        data, base = load_scenario(scenario)
    except (ScenarioError, OSError, ValueError):
        return None  # seeding reports the problem with the scenario's own words
    name = str(data.get("hostname") or data.get("name") or base.name).upper()
    # The name becomes a folder and an inventory host: keep it to what Windows allows anyway.
    return name if name and all(c.isalnum() or c in "-_" for c in name) else None


class Counters:
    """What the benchmark reads per host: requests by operation, bytes, processes, seconds."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: collections.Counter = collections.Counter()
        self.faults: collections.Counter = collections.Counter()
        self.auth: collections.Counter = collections.Counter()
        self.bytes_in = 0
        self.bytes_out = 0
        self.processes_started = 0
        self.process_seconds = 0.0
        # Module executions answered from a recording (serve --replay): no process ran.
        self.replayed = 0
        self.busy_seconds = 0.0
        self.reboots = 0

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "requests": dict(self.requests),
                "requests_total": sum(self.requests.values()),
                "faults": dict(self.faults),
                "auth": dict(self.auth),
                "bytes_in": self.bytes_in,
                "bytes_out": self.bytes_out,
                "processes_started": self.processes_started,
                "process_seconds": round(self.process_seconds, 3),
                "replayed": self.replayed,
                "busy_seconds": round(self.busy_seconds, 3),
                "reboots": self.reboots,
            }


class LabHost:
    def __init__(self, lab: "Lab", index: int, address: str, name: str | None = None) -> None:
        self.lab = lab
        self.index = index
        self.name = name or "lab%02d" % index
        self.address = address
        self.http_port = 0
        self.https_port = 0
        self.root = os.path.join(lab.state_dir, self.name)
        self.bin_dir = os.path.join(self.root, "bin")
        self.shim_modules = os.path.join(self.root, "shim", "Modules")
        self.profile = os.path.join(self.root, "Users", LAB_USER)
        self.counters = Counters()
        # Resource URI -> shell service. Each service has handle/connection_closed/reap/close_all/live_pids.
        self.services = {
            wsman.RESOURCE_CMD.lower(): winrs.CmdShellService(self, pwsh=lab.pwsh,
                                                              disconnect_grace=lab.disconnect_grace),
            wsman.RESOURCE_POWERSHELL.lower(): psrp.PowerShellService(self, pwsh=lab.pwsh,
                                                                      disconnect_grace=lab.disconnect_grace),
        }
        self._env: dict[str, str] | None = None
        self.scenario: str | None = None
        self.lab_dir = os.path.join(self.root, "lab")
        self.down_until = 0.0
        self._reboot_due: float | None = None
        self.conn_lock = threading.Lock()
        self.connections: set = set()
        # The host's own /etc/hosts and resolver files (netprobe.py), bound over the build
        # machine's in every process it starts; and what its network probe is pointed at.
        self.etc_files: dict[str, str] = {}
        self.network_probe: dict = {"enabled": False}
        self.prepare()

    def prepare(self) -> None:
        local = os.path.join(self.profile, "AppData", "Local")
        for path in (self.bin_dir, self.shim_modules, self.lab_dir, os.path.join(local, "Temp"),
                     os.path.join(self.profile, "AppData", "Roaming"), os.path.join(self.root, "ProgramData"),
                     os.path.join(self.root, "Windows"), os.path.join(self.root, "Program Files"),
                     os.path.join(self.profile, ".local", "share", "powershell")):
            os.makedirs(path, exist_ok=True)
        # pwsh on Linux puts ~/.local/share/powershell/Modules ahead of $env:PSModulePath;
        # linking it to the shim makes the shim win name clashes, as "first" means on Windows.
        user_modules = os.path.join(self.profile, ".local", "share", "powershell", "Modules")
        if not os.path.islink(user_modules):
            os.symlink(self.shim_modules, user_modules)

    def start_process(self, argv: list[str], **kwargs) -> tuple:
        """Start one of the host's processes, confined to its state folder: (Popen, the command's pid)."""
        return self.lab.confinement.popen(argv, self.root, files=self.etc_files, **kwargs)

    def set_network(self, scenario) -> None:
        """The host's names and probe endpoints (netprobe.py), from its scenario's
        `network_probe` block. Without bwrap no resolver can be made hermetic: the probe is off."""
        stand_ins = self.lab.stand_ins
        if stand_ins is None:
            self.network_probe = {"enabled": False}
            return
        data = None
        if scenario is not None:
            from ..shim import load_scenario

            data = load_scenario(scenario)[0]
        try:
            network = netprobe.host_network(data)
        except netprobe.ScenarioNetworkError as exc:
            raise ValueError("scenarios: %s" % exc) from None
        self.etc_files = netprobe.write_host_files(os.path.join(self.lab_dir, "etc"), self.name, self.address, network)
        self.network_probe = stand_ins.inventory_value(network)
        if scenario is not None:
            netprobe.set_user_proxy(self.root, stand_ins, network)

    def base_env(self) -> dict[str, str]:
        """The host's whole process environment, from the shim's one definition of it."""
        if self._env is None:
            from ..shim import host_environment

            self._env = host_environment(Path(self.root), self.lab.pwsh)
        return self._env

    def seed(self, scenario: str) -> None:
        """Lay the host's state out from a shim scenario (name under tests/lab/scenarios or a path)."""
        from ..shim import ScenarioError, seed_host

        try:
            # With the lab's pwsh the registry provider is compiled now, once, not by the
            # host's first module run (~10 s inside someone's WinRM timeout).
            seed_host(Path(self.root), scenario, pwsh=self.lab.pwsh)
        except ScenarioError as exc:
            raise ValueError("scenarios: %s" % exc) from None
        self._env = None
        self.scenario = scenario

    # ---- reboots ---------------------------------------------------------------------------
    # The contract with the Windows shim: its shutdown stand-in writes
    # <host>/lab/reboot.request (optionally JSON {"delay": seconds}); the endpoint then does
    # what a reboot does to WinRM clients and writes <host>/lab/boot_time for the shim.

    @property
    def down(self) -> bool:
        return time.monotonic() < self.down_until

    def check_reboot_request(self) -> None:
        request = os.path.join(self.lab_dir, "reboot.request")
        if self._reboot_due is None and os.path.exists(request):
            delay = 0.0
            try:
                with open(request) as fh:
                    text = fh.read().strip()
                delay = float(json.loads(text).get("delay", 0)) if text else 0.0
            except (OSError, ValueError, AttributeError) as exc:
                log.warning("%s: unreadable reboot.request (%s); rebooting now", self.name, exc)
            os.replace(request, request + ".accepted")
            self._reboot_due = time.monotonic() + max(0.0, min(delay, 600.0))
            log.info("%s: reboot requested, in %.1f s", self.name, delay)
        if self._reboot_due is not None and time.monotonic() >= self._reboot_due:
            self._reboot_due = None
            self.reboot()

    def reboot(self) -> None:
        """Every process ends, every connection drops, and the host answers nothing for a while."""
        self.down_until = time.monotonic() + self.lab.reboot_seconds
        for service in self.services.values():
            service.close_all()
        with self.conn_lock:
            conns = list(self.connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        boot = time.time() + self.lab.reboot_seconds
        tmp = os.path.join(self.lab_dir, "boot_time.tmp")
        with open(tmp, "w") as fh:
            fh.write(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(boot)) + "\n")
        os.replace(tmp, os.path.join(self.lab_dir, "boot_time"))
        # Winlogon re-creates this key at every boot; ansible.windows.win_reboot deletes it
        # before restarting and waits for it to come back as its sign that the host booted.
        os.makedirs(os.path.join(self.root, "registry", "HKEY_LOCAL_MACHINE", "SOFTWARE", "Microsoft", "Windows NT",
                                 "CurrentVersion", "Winlogon", "AutoLogonChecked"), exist_ok=True)
        if self.scenario is not None:
            # The autologon sessions sign in again after the boot (tests/lab/shim/signin.py).
            from ..shim.signin import sign_in_after_boot

            signed_in = sign_in_after_boot(Path(self.root), datetime.fromtimestamp(boot, timezone.utc))
            if signed_in:
                log.info("%s: sign-in after boot got a PRT for %s", self.name, ", ".join(signed_in))
        for leftover in ("reboot.request.accepted",):
            try:
                os.remove(os.path.join(self.lab_dir, leftover))
            except FileNotFoundError:
                pass
        with self.counters.lock:
            self.counters.reboots += 1
        self.lab.mark_dirty()
        log.info("%s: rebooting: %d connection(s) dropped, down for %.1f s", self.name, len(conns),
                 self.lab.reboot_seconds)

    def resolve_path(self, path: str) -> str | None:
        """A client working directory: a POSIX path inside this host's state folder, or None."""
        real = os.path.realpath(path)
        return real if real == self.root or real.startswith(self.root + os.sep) else None

    def endpoint_url(self) -> str:
        return "http://%s:%d/wsman" % (self.address, self.http_port)

    def owner_name(self) -> str:
        return "%s\\%s" % (self.name.upper(), LAB_USER)

    def count_process(self) -> None:
        with self.counters.lock:
            self.counters.processes_started += 1
        self.lab.mark_dirty()

    def count_process_seconds(self, seconds: float) -> None:
        with self.counters.lock:
            self.counters.process_seconds += seconds
        self.lab.mark_dirty()

    def count_replayed(self, seconds: float) -> None:
        """A module execution answered from a recording: counted apart, its wait as its lifetime."""
        with self.counters.lock:
            self.counters.replayed += 1
            self.counters.process_seconds += seconds
        self.lab.mark_dirty()


class _CountingWriter:
    def __init__(self, raw, on_bytes) -> None:
        self._raw = raw
        self._on = on_bytes

    def write(self, data):
        n = self._raw.write(data)
        self._on(len(data))
        return n

    def __getattr__(self, name):
        return getattr(self._raw, name)


class _CountingReader:
    def __init__(self, raw, on_bytes) -> None:
        self._raw = raw
        self._on = on_bytes

    def read(self, n=-1):
        data = self._raw.read(n)
        self._on(len(data))
        return data

    def readline(self, limit=-1):
        data = self._raw.readline(limit)
        self._on(len(data))
        return data

    def __getattr__(self, name):
        return getattr(self._raw, name)


class WSManHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""

    # set per listener through a subclass
    lab_host: LabHost
    tls: bool = False
    cbt_hash: bytes | None = None

    def setup(self) -> None:
        if self.tls:
            self.request.settimeout(10)
            self.request.do_handshake()
        self.request.settimeout(None)
        super().setup()
        self.conn_id = id(self)
        self.acceptor: auth.NegotiateAcceptor | None = None
        self.principal: str | None = None
        self.auth_kind: str | None = None
        self._final_token: bytes | None = None
        self._in = 0
        self._out = 0
        self.rfile = _CountingReader(self.rfile, self._add_in)
        self.wfile = _CountingWriter(self.wfile, self._add_out)

    def _add_in(self, n: int) -> None:
        self._in += n

    def _add_out(self, n: int) -> None:
        self._out += n

    def log_message(self, fmt, *args) -> None:  # route http.server's access log to logging
        log.debug("%s %s", self.lab_host.name, fmt % args)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            for service in self.lab_host.services.values():
                service.connection_closed(self.conn_id)

    # ---- helpers -------------------------------------------------------------------------
    def client_gone(self) -> bool:
        """True when the peer closed the connection (readable with nothing to read)."""
        sock = self.request
        try:
            if isinstance(sock, ssl.SSLSocket):
                if sock.pending():
                    return False
            r = select.select([sock], [], [], 0)[0]
            if not r:
                return False
            if isinstance(sock, ssl.SSLSocket):
                # A TLS close_notify or EOF shows as readable; a pipelined request would too,
                # but WinRM clients never pipeline while a Receive is outstanding.
                return True
            return sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _send(self, status: int, body: bytes = b"", content_type: str | None = None,
              headers: list[tuple[str, str]] | None = None, close: bool = False) -> None:
        self.send_response(status)
        if self._final_token:
            self.send_header("WWW-Authenticate", "Negotiate " + base64.b64encode(self._final_token).decode())
            self._final_token = None
        for k, v in headers or []:
            self.send_header(k, v)
        if body and content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self._account()

    def _account(self, operation: str | None = None) -> None:
        """Move this request's wire bytes (HTTP headers and body, both ways) to the host's counters."""
        c = self.lab_host.counters
        with c.lock:
            c.bytes_in += self._in
            c.bytes_out += self._out
            if operation:
                c.requests[operation] += 1
        self._in = self._out = 0
        self.lab_host.lab.mark_dirty()

    def _challenge(self, token: bytes | None = None, reason: str = "", close: bool = False) -> None:
        value = "Negotiate " + base64.b64encode(token).decode() if token else "Negotiate"
        hdrs = [("WWW-Authenticate", value)]
        if self.tls and token is None:
            hdrs.append(("WWW-Authenticate", 'Basic realm="WSMAN"'))
        if reason:
            log.warning("%s: 401 %s", self.lab_host.name, reason)
            with self.lab_host.counters.lock:
                self.lab_host.counters.auth["denied"] += 1
        self._send(401, headers=hdrs, close=close)
        with self.lab_host.counters.lock:
            self.lab_host.counters.requests["auth"] += 1

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None:
            self._send(411, close=True)
            return None
        try:
            n = int(length)
        except ValueError:
            self._send(400, close=True)
            return None
        if n > HARD_BODY_LIMIT:
            log.warning("%s: dropping a %d-byte request", self.lab_host.name, n)
            self._send(413, close=True)
            return None
        return self.rfile.read(n) if n else b""

    # ---- the one route ---------------------------------------------------------------------
    def do_GET(self) -> None:
        self._read_body()
        self._send(405, headers=[("Allow", "POST")])

    def do_POST(self) -> None:
        started = time.monotonic()
        try:
            self._post()
        finally:
            with self.lab_host.counters.lock:
                self.lab_host.counters.busy_seconds += time.monotonic() - started

    def _post(self) -> None:
        host = self.lab_host
        if self.path.split("?")[0].lower() != "/wsman":
            self._read_body()
            self._send(404)
            return
        body = self._read_body()
        if body is None:
            return
        if self.auth_kind == "basic":
            # Basic authenticates a request, not a connection.
            self.principal = None
        authz = self.headers.get("Authorization")
        if authz:
            scheme, token = auth.split_auth_header(authz)
            if scheme == "basic":
                if not self.tls:
                    # AllowUnencrypted=false: Windows never accepts Basic on the HTTP listener.
                    self._challenge(reason="Basic offered on the HTTP listener (needs HTTPS)", close=True)
                    return
                try:
                    self.principal = auth.check_basic(token, LAB_USER, host.lab.password)
                    self.acceptor = None
                    self.auth_kind = "basic"
                    with host.counters.lock:
                        host.counters.auth["basic"] += 1
                except auth.AuthError as exc:
                    self._challenge(reason=str(exc), close=True)
                    return
            elif scheme in ("negotiate", "ntlm"):
                if self.acceptor is None or self.acceptor.complete:
                    self.acceptor = auth.NegotiateAcceptor(self.cbt_hash if self.tls else None)
                    self.principal = None
                try:
                    out = self.acceptor.step(token)
                except auth.AuthError as exc:
                    self.acceptor = None
                    self._challenge(reason=str(exc), close=True)
                    return
                if not self.acceptor.complete:
                    self._challenge(token=out)
                    return
                # SPNEGO ends with the acceptor's mechListMIC; the client must see it (on this
                # request's answer) or its sealing state drifts from ours.
                self._final_token = out
                self.principal = self.acceptor.principal or LAB_USER
                self.auth_kind = "negotiate"
                with host.counters.lock:
                    host.counters.auth["negotiate"] += 1
            else:
                self._challenge(reason="unsupported auth scheme %r" % scheme, close=True)
                return
        if self.principal is None:
            self._challenge()
            return

        if not body:
            # pywinrm's empty POST that establishes the context for message encryption.
            self._send(200)
            with host.counters.lock:
                host.counters.requests["auth"] += 1
            return

        ctype = self.headers.get("Content-Type", "")
        sealed = ctype.lower().startswith("multipart/encrypted")
        if sealed:
            if self.acceptor is None:
                self._fault_plain(400, "an encrypted message arrived on a connection without a Negotiate context")
                return
            try:
                body = self.acceptor.unseal(body)
            except auth.FramingError as exc:
                self._fault_plain(400, str(exc))
                return
        elif not self.tls:
            self._fault_plain(400, "unencrypted message on the HTTP listener (AllowUnencrypted=false)")
            return

        req = None
        try:
            try:
                req = wsman.parse_request(body, host.lab.max_request_size)
                reply = self._dispatch(req)
                status = 200
            except (wsman.WSManFault, shell.ClientGone):
                raise
            except Exception as exc:
                # A lab bug must still answer like a server, not hang up on the client.
                log.exception("%s: internal error handling %s", host.name, req.operation if req else "request")
                raise wsman.WSManFault("w:InternalError", "The lab failed to process the request: %s" % exc,
                                       wsman.CODE_INVALID_DATA, code="s:Receiver") from None
        except wsman.WSManFault as fault:
            status = fault.http_status
            reply = wsman.fault_envelope(fault, req.message_id if req else None, host.name)
            log.warning("%s: fault %s for %s: %s", host.name, fault.subcode, req.operation if req else "request",
                        fault.reason)
            with host.counters.lock:
                if fault.subcode != "w:TimedOut":
                    host.counters.faults[fault.subcode] += 1
        except shell.ClientGone:
            log.info("%s: client went away during a Receive", host.name)
            self.close_connection = True
            self._account("Receive")
            return
        op = req.operation if req else "invalid"
        if sealed:
            payload = self.acceptor.seal(reply)
            self._send(status, payload, auth.ENCRYPTED_CONTENT_TYPE)
        else:
            self._send(status, reply, "application/soap+xml;charset=UTF-8")
        with host.counters.lock:
            host.counters.requests[op] += 1

    def _fault_plain(self, status: int, reason: str) -> None:
        log.warning("%s: %d %s", self.lab_host.name, status, reason)
        fault = wsman.WSManFault("w:InvalidParameter", reason, wsman.CODE_INVALID_DATA, http_status=status)
        with self.lab_host.counters.lock:
            self.lab_host.counters.faults["transport"] += 1
        self._send(status, wsman.fault_envelope(fault, None, self.lab_host.name),
                   "application/soap+xml;charset=UTF-8", close=True)

    def _dispatch(self, req: wsman.Request) -> bytes:
        service = self.lab_host.services.get(req.resource_uri.rstrip("/").lower())
        if service is None:
            raise wsman.WSManFault(
                "w:DestinationUnreachable",
                "The WS-Management service cannot process the request. The resource URI (%s) was not found in the "
                "WS-Management catalog of the lab." % req.resource_uri, wsman.CODE_NOT_SUPPORTED)
        return service.handle(req, self.conn_id, self.client_gone)


class _Listener:
    def __init__(self, host: LabHost, tls_context: ssl.SSLContext | None, cbt_hash: bytes | None) -> None:
        self.host = host
        self.tls = tls_context
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host.address, 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.handler = type("Handler_%s_%s" % (host.name, "https" if tls_context else "http"), (WSManHandler,), {
            "lab_host": host, "tls": tls_context is not None, "cbt_hash": cbt_hash})

    def accept(self, threads: set) -> None:
        try:
            conn, addr = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        if self.host.down:
            # A rebooting machine: the connection is reset, as clients see it on Windows.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return
        conn.setblocking(True)
        # Headers and body go out in separate writes; without NODELAY, Nagle plus the
        # client's delayed ACK adds ~40 ms to every WinRM round trip.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls:
            conn = self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        t = threading.Thread(target=self._serve, args=(conn, addr, threads), daemon=True,
                             name="lab-conn-%s" % self.host.name)
        threads.add(t)
        t.start()

    def _serve(self, conn, addr, threads: set) -> None:
        with self.host.conn_lock:
            self.host.connections.add(conn)
        try:
            self.handler(conn, addr, self)
        except (OSError, ssl.SSLError) as exc:
            log.debug("%s: connection ended: %s", self.host.name, exc)
        except Exception:
            log.exception("%s: connection handler failed", self.host.name)
        finally:
            with self.host.conn_lock:
                self.host.connections.discard(conn)
            try:
                conn.close()
            except OSError:
                pass
            threads.discard(threading.current_thread())


class Lab:
    """Start with `start()`, stop with `stop()`; `hosts` and `inventory()` describe it."""

    def __init__(self, state_dir: str, hosts: int = 1, *, pwsh: str | None = None, password: str | None = None,
                 subnet: str | None = None, max_request_size: int = wsman.DEFAULT_SERVER_ENVELOPE,
                 disconnect_grace: float = 3.0, reboot_seconds: float = 5.0,
                 scenarios: list[str] | None = None, confine: str = "auto", replay_modules: list[str] | None = None,
                 replay_pace: str = "recorded") -> None:
        if hosts < 1 or hosts > 250:
            raise ValueError("hosts must be between 1 and 250, got %d" % hosts)
        self.state_dir = os.path.abspath(state_dir)
        try:
            self.confinement = sandbox.Confinement(confine)
        except sandbox.SandboxError as exc:
            raise ValueError(str(exc)) from None
        if not self.confinement.active:
            log.warning("host processes are NOT confined to their state folders: %s", self.confinement.reason)
        os.makedirs(state_dir, exist_ok=True)
        # The network probe's stand-ins need the hermetic resolver only bwrap gives each host.
        self.stand_ins = netprobe.StandIns(os.path.join(os.path.abspath(state_dir), "netprobe")) \
            if self.confinement.active else None
        if self.stand_ins is None:
            log.warning("the network probe is switched off on every host: %s (netprobe.py)", self.confinement.reason)
        # The moved clock this process runs under (serve --clock-offset), handed on to every host.
        self.clock = sandbox.inherited_clock()
        self.pwsh = find_pwsh(pwsh)
        if not os.access(self.pwsh, os.X_OK):
            raise ValueError("pwsh %r is not an executable file" % self.pwsh)
        self.password = password or "Lab-" + os.urandom(12).hex()
        self.max_request_size = max_request_size
        self.disconnect_grace = disconnect_grace
        self.reboot_seconds = reboot_seconds
        self.subnet = subnet or pick_subnet()
        os.makedirs(self.state_dir, exist_ok=True)
        # serve --replay: these modules are answered from a recorded real run (replay.py).
        self.replay = replay.ReplayStore(replay_modules, os.path.join(self.state_dir, "replay"), replay_pace) \
            if replay_modules else None
        assigned = [scenarios[i % len(scenarios)] for i in range(hosts)] if scenarios else [None] * hosts
        if scenarios:
            # Every runspace must have the Registry provider before any shim command runs (a
            # module may read HKLM: first); only the shim's $PSHOME overlay gives it that, for
            # ansible's own powershell commands and for WinRS "powershell" alike. Built once per
            # checkout, named by its content and never changed in place, so labs share it safely.
            from ..shim import lab_pwsh

            self.pwsh = lab_pwsh(self.pwsh)
        names = [scenario_host_name(s) if s else None for s in assigned]
        self.hosts = [LabHost(self, i + 1, "%s.%d" % (self.subnet, i + 1),
                              # A scenario's own host name, so the inventory, COMPUTERNAME and the
                              # report all say PC-HEALTHY; a name seeded twice falls back to labNN.
                              name=names[i] if names[i] and names.count(names[i]) == 1 else None)
                      for i in range(hosts)]
        # Host n gets scenario n (cycling when there are more hosts than scenarios).
        for host, scenario in zip(self.hosts, assigned):
            if scenario:
                host.seed(scenario)
            host.set_network(scenario)
        self.counts_path = os.path.join(self.state_dir, "counts.json")
        self._listeners: list[_Listener] = []
        self._threads: set = set()
        self._stop = threading.Event()
        self._dirty = threading.Event()
        self._loop: threading.Thread | None = None
        self._reaper: threading.Thread | None = None
        self.ca_path = os.path.join(self.state_dir, "tls", "ca.pem")

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> "Lab":
        auth.write_ntlm_user_file(os.path.join(self.state_dir, "ntlm_users"), LAB_USER, self.password,
                                  [h.name.upper() for h in self.hosts])
        certs = auth.make_ca(os.path.join(self.state_dir, "tls"), [(h.name, h.address) for h in self.hosts])
        if self.stand_ins is not None:
            self.stand_ins.start()
        sel = selectors.DefaultSelector()
        for host in self.hosts:
            http = _Listener(host, None, None)
            cert, key, cbt = certs[host.name]
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(cert, key)
            https = _Listener(host, ctx, cbt)
            host.http_port, host.https_port = http.port, https.port
            for lst in (http, https):
                self._listeners.append(lst)
                sel.register(lst.sock, selectors.EVENT_READ, lst)
        self._selector = sel
        self._loop = threading.Thread(target=self._accept_loop, daemon=True, name="lab-accept")
        self._loop.start()
        self._reaper = threading.Thread(target=self._reap_loop, daemon=True, name="lab-reaper")
        self._reaper.start()
        self.write_counts()
        log.info("lab up: %d host(s) on %s.x, state %s", len(self.hosts), self.subnet, self.state_dir)
        return self

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            for key, _events in self._selector.select(timeout=0.2):
                key.data.accept(self._threads)

    def _reap_loop(self) -> None:
        while not self._stop.wait(0.25):
            for host in self.hosts:
                for service in host.services.values():
                    service.reap()
                host.check_reboot_request()
            if self._dirty.is_set():
                self.write_counts()

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        for t in (self._loop, self._reaper):
            if t:
                t.join(5)
        for lst in self._listeners:
            self._selector.unregister(lst.sock)
            lst.sock.close()
        for host in self.hosts:
            for service in host.services.values():
                service.close_all()
        if self.stand_ins is not None:
            self.stand_ins.stop()
        self.write_counts()
        log.info("lab stopped")

    def __enter__(self) -> "Lab":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- counting -------------------------------------------------------------------------
    def mark_dirty(self) -> None:
        self._dirty.set()

    def counts(self) -> dict:
        return {"generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "hosts": {h.name: h.counters.snapshot() for h in self.hosts}}

    def write_counts(self) -> None:
        self._dirty.clear()
        tmp = self.counts_path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(self.counts(), fh, indent=1, sort_keys=True)
        os.replace(tmp, self.counts_path)

    def live_pids(self) -> list[int]:
        return [pid for h in self.hosts for svc in h.services.values() for pid in svc.live_pids()]

    # ---- description ----------------------------------------------------------------------
    def describe(self) -> dict:
        return {
            "pid": os.getpid(),
            "state_dir": self.state_dir,
            "user": LAB_USER,
            "password": self.password,
            "ca": self.ca_path,
            "pwsh": self.pwsh,
            "counts": self.counts_path,
            # The controller must run under the same clock (TLS certificates, NTLM times, reports).
            "clock": {"offset": self.clock.get("FAKETIME"), "env": self.clock},
            "confined": self.confinement.active,
            "replay": {"modules": sorted(self.replay.modules), "pace": self.replay.pace}
            if self.replay is not None else None,
            "confinement": self.confinement.reason or "bwrap: each host writes only below its state folder",
            "network_probe": self.stand_ins.describe() if self.stand_ins is not None
            else {"off": "no hermetic resolver without bwrap: %s" % self.confinement.reason},
            "hosts": {h.name: {"address": h.address, "http_port": h.http_port, "https_port": h.https_port,
                               "state": h.root, "bin": h.bin_dir, "shim_modules": h.shim_modules,
                               "lab": h.lab_dir, "scenario": h.scenario, "network_probe": h.network_probe}
                      for h in self.hosts},
        }

    def inventory(self, transport: str = "ntlm") -> dict:
        """An Ansible inventory (as a dict, YAML/JSON-ready) in the shape of a real Windows one.

        "ntlm": winrm connection, HTTP 5985-style listener, NTLM with message encryption;
        "basic": winrm connection, HTTPS 5986-style listener, Basic, the per-run CA as trust path;
        "psrp_ntlm" / "psrp_basic": the same two through the psrp connection (pypsrp).
        """
        if transport not in ("ntlm", "basic", "psrp_ntlm", "psrp_basic"):
            raise ValueError("transport must be 'ntlm', 'basic', 'psrp_ntlm' or 'psrp_basic', got %r" % transport)
        psrp_conn = transport.startswith("psrp_")
        auth_name = transport.split("_")[-1]
        hostvars = {}
        for h in self.hosts:
            if psrp_conn:
                hv = {"ansible_host": h.address, "ansible_connection": "psrp", "ansible_psrp_auth": auth_name}
                if auth_name == "ntlm":
                    hv.update(ansible_port=h.http_port, ansible_psrp_protocol="http",
                              ansible_psrp_message_encryption="always")
                else:
                    hv.update(ansible_port=h.https_port, ansible_psrp_protocol="https",
                              ansible_psrp_ca_cert=self.ca_path, ansible_psrp_cert_validation="validate")
            else:
                hv = {"ansible_host": h.address, "ansible_connection": "winrm", "ansible_winrm_transport": transport}
                if transport == "ntlm":
                    hv.update(ansible_port=h.http_port, ansible_winrm_scheme="http")
                else:
                    hv.update(ansible_port=h.https_port, ansible_winrm_scheme="https",
                              ansible_winrm_ca_trust_path=self.ca_path,
                              ansible_winrm_server_cert_validation="validate")
            # What the host's win_activation_facts probes (the action plugin reads it), so the
            # playbooks run as they ship and never with the real Entra names.
            hv[netprobe.PROBE_VARIABLE] = h.network_probe
            hostvars[h.name] = hv
        # Every host is in m365_clients too, the group the playbooks target by default, as
        # in a real inventory (examples/inventory.yml); its variables stay under all.hosts.
        return {"all": {
            "hosts": hostvars,
            "vars": {
                "ansible_user": LAB_USER,
                "ansible_password": self.password,
                "ansible_pwsh_interpreter": self.pwsh,
            },
            "children": {"m365_clients": {"hosts": {name: None for name in hostvars}}},
        }}
