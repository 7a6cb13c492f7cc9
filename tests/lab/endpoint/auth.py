# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Authentication and message protection as a Windows WinRM listener does them.

- HTTP listener: Negotiate (raw NTLM or SPNEGO-wrapped, as pywinrm/requests_ntlm and
  pypsrp send it) through pyspnego's acceptor, then every SOAP message sealed in the
  `multipart/encrypted` framing of MS-WSMV 2.2.9.1.1 (AllowUnencrypted=false).
- HTTPS listener: Basic or Negotiate, no message sealing (TLS protects it), a server
  certificate per host signed by a CA made for this lab run.

pyspnego's NTLM acceptor only reads credentials from the file named by the
NTLM_USER_FILE environment variable (Heimdal format, `DOMAIN:USER:PASSWORD`), so the
lab writes that file into its state folder and sets the variable in its own process.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import ipaddress
import os
import re
import struct

import spnego
from spnego.channel_bindings import GssChannelBindings

BOUNDARY = b"--Encrypted Boundary"
SPNEGO_ENCRYPTED = "application/HTTP-SPNEGO-session-encrypted"
ENCRYPTED_CONTENT_TYPE = 'multipart/encrypted;protocol="%s";boundary="Encrypted Boundary"' % SPNEGO_ENCRYPTED


class AuthError(Exception):
    """Authentication failed; the listener answers 401 and runs nothing."""


class FramingError(Exception):
    """An encrypted body that cannot be unframed or unsealed (Windows answers 400)."""


def write_ntlm_user_file(path: str, username: str, password: str, domains: list[str]) -> None:
    """Write the acceptor's credential store and point NTLM_USER_FILE at it.

    One line without a domain (`.\\user` and plain `user` logons) and one per host
    name, because the acceptor matches the domain the client sends exactly.
    """
    lines = [":%s:%s" % (username, password)] + ["%s:%s:%s" % (d, username, password) for d in domains]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.environ["NTLM_USER_FILE"] = path


def split_auth_header(value: str) -> tuple[str, str]:
    scheme, _sep, token = value.strip().partition(" ")
    return scheme.lower(), token.strip()


def check_basic(token: str, username: str, password: str) -> str:
    """Return the logon name for a valid Basic token, else raise AuthError."""
    try:
        user, _sep, given = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        raise AuthError("malformed Basic credentials") from None
    bare = re.split(r"[\\@]", user)[-1] if "\\" in user else user.split("@")[0]
    ok_user = hmac.compare_digest(bare.lower().encode(), username.lower().encode())
    ok_pass = hmac.compare_digest(given.encode(), password.encode())
    if not (ok_user and ok_pass):
        raise AuthError("Basic logon denied for %r" % user)
    return user


class NegotiateAcceptor:
    """One Negotiate/NTLM security context; WinRM binds it to the TCP connection."""

    def __init__(self, cbt_hash: bytes | None = None) -> None:
        bindings = None
        if cbt_hash:
            bindings = GssChannelBindings(application_data=b"tls-server-end-point:" + cbt_hash)
        self.ctx = spnego.server(protocol="negotiate", channel_bindings=bindings)

    @property
    def complete(self) -> bool:
        return self.ctx.complete

    @property
    def principal(self) -> str | None:
        return self.ctx.client_principal

    def step(self, token_b64: str) -> bytes | None:
        try:
            token = base64.b64decode(token_b64, validate=True)
        except ValueError:
            raise AuthError("Negotiate token is not base64") from None
        try:
            return self.ctx.step(token)
        except Exception as exc:  # pyspnego raises several types for a refused logon
            raise AuthError("Negotiate logon denied: %s" % exc) from None

    def unseal(self, body: bytes) -> bytes:
        """Unframe and unseal a `multipart/encrypted` request body (one part, as WinRM clients send)."""
        header_end = body.find(BOUNDARY + b"\r\n", len(BOUNDARY))
        head = body[:header_end]
        m = re.search(rb"Length=(\d+)", head)
        if not body.startswith(BOUNDARY + b"\r\n") or header_end < 0 or not m:
            raise FramingError("multipart/encrypted body without the expected MIME headers")
        expected = int(m.group(1))
        marker = b"\tContent-Type: application/octet-stream\r\n"
        start = body.find(marker, header_end)
        if start < 0:
            raise FramingError("multipart/encrypted body without an application/octet-stream part")
        payload = body[start + len(marker):]
        trailer = BOUNDARY + b"--\r\n"
        if not payload.endswith(trailer):
            raise FramingError("multipart/encrypted body without the closing boundary")
        payload = payload[: -len(trailer)]
        if len(payload) < 4:
            raise FramingError("encrypted part too short")
        sig_len = struct.unpack("<i", payload[:4])[0]
        if sig_len <= 0 or sig_len > len(payload) - 4:
            raise FramingError("encrypted part has an impossible signature length %d" % sig_len)
        header = payload[4:4 + sig_len]
        sealed = payload[4 + sig_len:]
        try:
            plain = self.ctx.unwrap_winrm(header, sealed)
        except Exception as exc:
            raise FramingError("the message does not unseal with this connection's context: %s" % exc) from None
        if len(plain) != expected:
            raise FramingError("unsealed length %d differs from the declared Length=%d" % (len(plain), expected))
        return plain

    def seal(self, plain: bytes) -> bytes:
        res = self.ctx.wrap_winrm(plain)
        stream = struct.pack("<i", len(res.header)) + res.header + res.data
        return (
            BOUNDARY + b"\r\n"
            b"\tContent-Type: " + SPNEGO_ENCRYPTED.encode() + b"\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + str(len(plain)).encode() + b"\r\n"
            + BOUNDARY + b"\r\n"
            b"\tContent-Type: application/octet-stream\r\n" + stream + BOUNDARY + b"--\r\n"
        )


# ---- per-run certificate authority --------------------------------------------------------

def self_signed_ca(common_name: str, now: datetime.datetime):
    """A CA certificate and its key, valid from a few minutes before `now` for two days:
    the WinRM/HTTPS listeners and the network probe's TLS stand-ins both issue from one."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_ca(folder: str, hosts: list[tuple[str, str]]) -> dict[str, tuple[str, str, bytes]]:
    """Create a CA and one server certificate per (name, address); returns name -> (cert, key, cbt hash).

    The CA certificate goes to `<folder>/ca.pem`, the file the inventory's
    ansible_winrm_ca_trust_path points at. The CBT hash is what an NTLM client over
    TLS binds to (RFC 5929 tls-server-end-point: SHA-256 for an ECDSA-SHA256 cert).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    os.makedirs(folder, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_cert, ca_key = self_signed_ca("m365ops lab CA %s" % now.strftime("%Y%m%d%H%M%S"), now)
    with open(os.path.join(folder, "ca.pem"), "wb") as fh:
        fh.write(ca_cert.public_bytes(serialization.Encoding.PEM))

    out = {}
    for name, address in hosts:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName(name), x509.IPAddress(ipaddress.ip_address(address))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        cert_path = os.path.join(folder, "%s.crt" % name)
        key_path = os.path.join(folder, "%s.key" % name)
        with open(cert_path, "wb") as fh:
            fh.write(cert.public_bytes(serialization.Encoding.PEM))
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
        cbt = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
        out[name] = (cert_path, key_path, cbt)
    return out
