# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's network for win_activation_facts' network probe (docs/lab.md, "The network probe").

The probe must never resolve or reach a real Microsoft name, nor anything outside
127.0.0.0/8. So the lab gives it a world of its own:

- **Stand-ins on loopback**, in the lab process: a TLS server whose chain ends at the lab's
  "Microsoft" root (the root every lab host's probe is told to trust), a TLS server whose
  chain ends at a foreign CA (TLS inspection), a port with nothing listening (refused) and a
  proxy that answers every CONNECT with 407. Certificates are made at lab start, with no AIA
  or CRL address a chain builder could fetch.
- **Hermetic names** per host: every host process runs under bwrap with the host's own
  /etc/hosts (the stand-in names -> 127.0.0.1), an /etc/nsswitch.conf whose hosts line is
  `files` alone and an /etc/resolv.conf naming 127.0.0.1: a name not in the file fails at
  once, and no query leaves the machine (mDNS and the build machine's DNS server included).
- **The endpoints** reach the module through the inventory variable `m365ops_network_probe`
  (the action plugin reads it), so diagnose.yml and remediate.yml run as they ship. Without
  bwrap there is no hermetic resolver, and the lab switches the probe off (`enabled: false`).
- **The guard**: `violations(doc)` lists every probed endpoint that is not a stand-in; the
  lab tests' `run_json` fails on any, so the module's defaults (the real Entra names) can
  never be used under the lab unnoticed.

A scenario picks what the names lead to (tests/lab/shim/README.md, "network_probe"):
`endpoints: tls_trusted` (the default), `tls_foreign`, `refused` or `nxdomain` (names not in
the host's file), and `user_proxy: proxy_407` (each logged-on user's WinINET proxy).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import logging
import os
import select
import socket
import ssl
import threading
from pathlib import Path

from ..endpoint.auth import self_signed_ca

log = logging.getLogger("lab.netprobe")

# The names the probe is pointed at in the lab; they exist nowhere else.
LAB_DOMAIN = "lab.test"
STAND_IN_NAMES = ("login.lab.test", "device.login.lab.test", "enterpriseregistration.lab.test")
ENDPOINT_KINDS = ("tls_trusted", "tls_foreign", "refused", "nxdomain")
USER_PROXIES = ("proxy_407",)
PROBE_VARIABLE = "m365ops_network_probe"
# The probe's budget per context wherever the suite probes the stand-ins (the module's
# default is 4 s). No stand-in makes the probe wait it out (each answers, refuses or fails
# to resolve at once), so a larger one costs no time; but a user's task is a cold pwsh whose
# first socket calls are compiled inside the budget, and on two cores shared with other lab
# runs that took the whole TCP phase of 4 s (CI, 2026-12-06: a healthy host "blocked at
# TCP/firewall" in grace's context).
PROBE_TIMEOUT = 15
PROXY_407 = (b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Negotiate\r\n"
             b"Proxy-Authenticate: NTLM\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
INTERNET_SETTINGS = "Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings"


class ScenarioNetworkError(ValueError):
    """A scenario's network_probe block names something the lab does not have."""


def host_network(scenario: dict | None) -> dict:
    """A scenario's `network_probe` block with its defaults: {endpoints, user_proxy}."""
    spec = dict((scenario or {}).get("network_probe") or {})
    where = "scenario %s: network_probe" % (scenario or {}).get("name", "?")
    unknown = sorted(set(spec) - {"endpoints", "user_proxy"})
    if unknown:
        raise ScenarioNetworkError("%s: unknown key(s) %s" % (where, ", ".join(unknown)))
    kind = spec.get("endpoints", "tls_trusted")
    if kind not in ENDPOINT_KINDS:
        raise ScenarioNetworkError("%s.endpoints: %r is not one of %s" % (where, kind, ", ".join(ENDPOINT_KINDS)))
    proxy = spec.get("user_proxy")
    if proxy is not None and proxy not in USER_PROXIES:
        raise ScenarioNetworkError("%s.user_proxy: %r is not one of %s" % (where, proxy, ", ".join(USER_PROXIES)))
    return {"endpoints": kind, "user_proxy": proxy}


def _is_stand_in(name: str) -> bool:
    name = str(name).strip("[]").lower()
    try:
        address = ipaddress.ip_address(name)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return address in ipaddress.ip_network("127.0.0.0/8")
    except ValueError:
        return name.endswith("." + LAB_DOMAIN)


def violations(doc) -> list[str]:
    """Every endpoint a network probe in `doc` (any JSON: a module result, a lab_json run,
    host_facts.json) was pointed at that is not a lab stand-in (`*.lab.test` or 127.0.0.0/8)."""
    found: list[str] = []

    def host_of(endpoint: str) -> str:
        text = str(endpoint)
        if text.startswith("["):
            return text[1:].split("]", 1)[0]
        return text.rsplit(":", 1)[0] if text.count(":") == 1 else text

    def walk(node, path):
        if isinstance(node, dict):
            probe = node.get("network_probe")
            if isinstance(probe, dict):
                names = [host_of(e) for e in probe.get("endpoints") or []]
                for context in probe.get("contexts") or []:
                    for result in (context or {}).get("results") or []:
                        names.append(str((result or {}).get("host")))
                for name in names:
                    if not _is_stand_in(name):
                        found.append("%s.network_probe: %s" % (path, name))
            for key, value in node.items():
                walk(value, "%s.%s" % (path, key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, "%s[%d]" % (path, i))

    walk(doc, "$")
    return sorted(set(found))


# ------------------------------------------------------------------------------------------
# certificates
# ------------------------------------------------------------------------------------------
def _server_context(folder: Path, label: str, ca, ca_key, now) -> ssl.SSLContext:
    """A TLS server context presenting a leaf for the stand-in names (and 127.0.0.1), issued
    by `ca`, and `ca` itself: the chain a client builds ends at that root."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, STAND_IN_NAMES[0])]))
        .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in STAND_IN_NAMES]
                                                   + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    chain = folder / ("%s.pem" % label)
    chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM))
    key_path = folder / ("%s.key" % label)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(chain), str(key_path))
    return ctx


# ------------------------------------------------------------------------------------------
# the stand-ins
# ------------------------------------------------------------------------------------------
def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(32)
    return sock


class StandIns:
    """The loopback services the probe meets; bound at construction (ports known before any
    host is seeded), served from `start()` to `stop()`."""

    def __init__(self, folder) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)
        from cryptography.hazmat.primitives import serialization

        trusted, trusted_key = self_signed_ca("m365ops lab stand-in Microsoft root", now)
        foreign, foreign_key = self_signed_ca("Contoso TLS Inspection CA", now)
        # What the inventory tells every host's probe to trust, as Windows writes thumbprints.
        self.trusted_root = hashlib.sha1(trusted.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
        self.foreign_root = hashlib.sha1(foreign.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
        self.root_files = {}
        for label, ca in (("trusted", trusted), ("foreign", foreign)):
            self.root_files[label] = str(self.folder / ("%s_root.pem" % label))
            Path(self.root_files[label]).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self._contexts = {
            "tls_trusted": _server_context(self.folder, "tls_trusted", trusted, trusted_key, now),
            "tls_foreign": _server_context(self.folder, "tls_foreign", foreign, foreign_key, now),
        }
        self._sockets = {"tls_trusted": _listener(), "tls_foreign": _listener(), "proxy_407": _listener()}
        # Bound but never listening: a connect is refused (RST) at once, and no other
        # program can take the port while the lab runs.
        self._refused = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._refused.bind(("127.0.0.1", 0))
        self.ports = {name: sock.getsockname()[1] for name, sock in self._sockets.items()}
        self.ports["refused"] = self._refused.getsockname()[1]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connections = {name: 0 for name in self._sockets}
        self._lock = threading.Lock()

    def start(self) -> "StandIns":
        self._thread = threading.Thread(target=self._serve, daemon=True, name="lab-netprobe")
        self._thread.start()
        log.info("network probe stand-ins on 127.0.0.1: %s; trusted root %s",
                 ", ".join("%s %d" % kv for kv in sorted(self.ports.items())), self.trusted_root)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        for sock in list(self._sockets.values()) + [self._refused]:
            sock.close()

    def _serve(self) -> None:
        by_fd = {sock.fileno(): name for name, sock in self._sockets.items()}
        while not self._stop.is_set():
            ready, _w, _x = select.select(list(self._sockets.values()), [], [], 0.2)
            for sock in ready:
                name = by_fd[sock.fileno()]
                try:
                    conn, _addr = sock.accept()
                except OSError:
                    continue
                with self._lock:
                    self.connections[name] += 1
                threading.Thread(target=self._answer, args=(name, conn), daemon=True).start()

    def _answer(self, name: str, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            if name == "proxy_407":
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 16384:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                conn.sendall(PROXY_407)
            else:
                with self._contexts[name].wrap_socket(conn, server_side=True) as tls:
                    # The probe closes after the handshake; wait for that (or the timeout).
                    tls.recv(1)
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    # ---- per host ---------------------------------------------------------------------
    def endpoints(self, kind: str) -> list[str]:
        port = self.ports["tls_trusted" if kind == "nxdomain" else kind]
        return ["%s:%d" % (name, port) for name in STAND_IN_NAMES]

    def inventory_value(self, network: dict) -> dict:
        """The host's `m365ops_network_probe`: its endpoints and the lab's trusted root."""
        return {"enabled": True, "endpoints": self.endpoints(network["endpoints"]),
                "trusted_roots": [self.trusted_root], "timeout": PROBE_TIMEOUT}

    def by_address(self) -> dict:
        """`m365ops_network_probe` for a run outside a lab, which has no hermetic resolver:
        the trusted TLS stand-in by address, so no name is looked up at all."""
        return {"enabled": True, "endpoints": ["127.0.0.1:%d" % self.ports["tls_trusted"]],
                "trusted_roots": [self.trusted_root], "timeout": PROBE_TIMEOUT}

    def describe(self) -> dict:
        return {"ports": dict(self.ports), "trusted_root": self.trusted_root, "foreign_root": self.foreign_root,
                "names": list(STAND_IN_NAMES)}


def nsswitch_text(original: str) -> str:
    """The build machine's nsswitch.conf with its hosts line replaced by `files` alone (no DNS,
    no mDNS: a name the host's file lacks fails without a packet)."""
    lines = [line for line in original.splitlines() if not line.strip().startswith("hosts:")]
    return "\n".join(lines + ["hosts:          files"]) + "\n"


def write_host_files(folder, host_name: str, address: str, network: dict) -> dict:
    """The host's /etc stand-ins under `folder`: {"/etc/hosts": path, ...} for bwrap."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "%s\t%s" % (address, host_name)]
    if network["endpoints"] != "nxdomain":
        lines.append("127.0.0.1\t%s" % " ".join(STAND_IN_NAMES))
    files = {
        "/etc/hosts": "\n".join(lines) + "\n",
        "/etc/resolv.conf": "# the lab's hosts resolve from /etc/hosts only (docs/lab.md)\nnameserver 127.0.0.1\n"
                            "options timeout:1 attempts:1\n",
        "/etc/nsswitch.conf": nsswitch_text(Path("/etc/nsswitch.conf").read_text(encoding="utf-8")
                                            if Path("/etc/nsswitch.conf").is_file() else ""),
    }
    out = {}
    for dest, text in files.items():
        path = folder / os.path.basename(dest)
        path.write_text(text, encoding="utf-8")
        out[dest] = str(path)
    return out


def set_user_proxy(state, stand_ins: StandIns, network: dict) -> list[str]:
    """Point each logged-on user's WinINET proxy (HKCU Internet Settings) at a stand-in
    proxy; returns the SIDs set."""
    if not network.get("user_proxy"):
        return []
    from . import set_reg

    state = Path(state)
    server = "127.0.0.1:%d" % stand_ins.ports[network["user_proxy"]]
    sessions = json.loads((state / "sessions.json").read_text(encoding="utf-8"))
    done = []
    for session in sessions:
        sid = session["sid"]
        if not (state / "registry" / "HKEY_USERS" / sid).is_dir():
            continue  # an unloaded hive: the user has no HKCU this run could read
        set_reg(state, "HKU\\%s\\%s" % (sid, INTERNET_SETTINGS), {
            "ProxyEnable": ("REG_DWORD", 1), "ProxyServer": ("REG_SZ", server), "ProxyOverride": ("REG_SZ", "<local>")})
        done.append(sid)
    return done
