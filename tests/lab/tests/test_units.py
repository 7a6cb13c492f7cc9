# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parts of the endpoint: command lines, durations, envelopes, NTLM framing."""

from __future__ import annotations

import base64
import os
import shlex
import subprocess
import xml.etree.ElementTree as ET

import pytest
import spnego
import xmltodict
from winrm.protocol import Protocol

from .. import toolchain
from ..endpoint import auth, wsman
from ..shim import sandbox
from ..process import REPO_ROOT
from ..endpoint.winrs import expand_cmd_variables, program_name, split_command_line

NEEDS_PWSH = False  # the endpoint's parsers and crypto: pure Python


# The examples of Microsoft's "Parsing C command-line arguments" (current rules).
@pytest.mark.parametrize("line, argv", [
    ('"a b c" d e', ["a b c", "d", "e"]),
    ('"ab\\"c" "\\\\" d', ['ab"c', "\\", "d"]),
    ('a\\\\\\b d"e f"g h', ["a\\\\\\b", "de fg", "h"]),
    ('a\\\\\\"b c d', ['a\\"b', "c", "d"]),
    ('a\\\\\\\\"b c" d e', ["a\\\\b c", "d", "e"]),
    ('a"b"" c d', ['ab" c d']),
    ('PowerShell -NoProfile -NonInteractive -EncodedCommand QQA=', [
        "PowerShell", "-NoProfile", "-NonInteractive", "-EncodedCommand", "QQA="]),
    ('  x  ""  y ', ["x", "", "y"]),
])
def test_split_command_line_follows_the_msvc_rules(line, argv):
    assert split_command_line(line) == argv


def test_cmd_variables_expand_case_insensitively_and_unknown_ones_stay():
    env = {"TEMP": "/state/lab01/Temp", "ComputerName": "LAB01"}
    assert expand_cmd_variables("echo %temp% %COMPUTERNAME% %NOPE%", env) == "echo /state/lab01/Temp LAB01 %NOPE%"


@pytest.mark.parametrize("arg0, name", [
    ("PowerShell", "powershell"),
    ("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "powershell"),
    ("pwsh.exe", "pwsh"),
    ("DSREGCMD.EXE", "dsregcmd"),
    ("/bin/sh", "sh"),
])
def test_program_name(arg0, name):
    assert program_name(arg0) == name


@pytest.mark.parametrize("text, seconds", [("PT20S", 20), ("PT1M30.5S", 90.5), ("P1DT1H", 90000), ("PT0.25S", 0.25)])
def test_parse_duration(text, seconds):
    assert wsman.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["20", "PT", "P", "PTS", "PT-1S"])
def test_parse_duration_rejects_garbage(text):
    with pytest.raises(wsman.WSManFault) as err:
        wsman.parse_duration(text)
    assert err.value.subcode == "w:InvalidParameter"


def _pywinrm_envelope(action, shell_id=None, body=None):
    proto = Protocol("http://127.0.0.1:1/wsman", transport="plaintext", username="u", password="p")
    req = {"env:Envelope": proto.build_wsman_header(resource_uri=wsman.RESOURCE_CMD, action=action,
                                                    shell_id=shell_id, message_id="11111111-2222-3333-4444-555555555555")}
    req["env:Envelope"]["env:Body"] = body or {}
    return xmltodict.unparse(req).encode()


def test_parse_request_reads_what_pywinrm_sends():
    req = wsman.parse_request(_pywinrm_envelope(wsman.ACTION_RECEIVE, shell_id="ABC"))
    assert req.operation == "Receive"
    assert req.shell_id == "ABC"
    assert req.operation_timeout == 20
    assert req.max_envelope_size == 153600
    assert req.message_id == "uuid:11111111-2222-3333-4444-555555555555"


@pytest.mark.parametrize("data, subcode, status", [
    (b"<s:Envelope", "w:SchemaValidationError", 400),
    (b"<root/>", "w:SchemaValidationError", 400),
    (_pywinrm_envelope("http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"), "a:ActionNotSupported", 500),
    (b"<x>" + b"a" * 600000 + b"</x>", "w:EncodingLimit", 413),
])
def test_parse_request_faults(data, subcode, status):
    with pytest.raises(wsman.WSManFault) as err:
        wsman.parse_request(data)
    assert (err.value.subcode, err.value.http_status) == (subcode, status)


def test_fault_envelope_is_what_pywinrm_parses():
    xml = wsman.fault_envelope(wsman.shell_not_found("XYZ"), "uuid:1", "lab01")
    root = ET.fromstring(xml)
    ns = {"s": wsman.NS["s"], "f": wsman.NS["f"]}
    fault = root.find("s:Body/s:Fault", ns)
    assert fault.find("s:Code/s:Subcode/s:Value", ns).text == "w:InvalidSelectors"
    assert fault.find("s:Detail/f:WSManFault", ns).get("Code") == "2150858843"
    assert "XYZ" in fault.find("s:Reason/s:Text", ns).text
    assert root.find("s:Header/a:RelatesTo", wsman.NS).text == "uuid:1"


@pytest.fixture
def ntlm_pair(tmp_path, monkeypatch):
    monkeypatch.setenv("NTLM_USER_FILE", "")
    auth.write_ntlm_user_file(str(tmp_path / "users"), "labadmin", "Pw-1", ["LAB01"])
    assert os.environ["NTLM_USER_FILE"] == str(tmp_path / "users")
    client = spnego.client("labadmin", "Pw-1", protocol="ntlm")
    server = auth.NegotiateAcceptor()
    out = server.step(base64.b64encode(client.step()).decode())
    final = client.step(out)
    assert server.step(base64.b64encode(final).decode()) is None
    assert server.complete and server.principal == "labadmin"
    return client, server


def _pywinrm_encryption(client):
    """pywinrm's own Encryption object, driven by the client-side NTLM context."""
    from requests_ntlm.requests_ntlm import ShimSessionSecurity
    from winrm.encryption import Encryption

    class _Auth:
        session_security = ShimSessionSecurity(client)

    class _Session:
        auth = _Auth()

        @staticmethod
        def prepare_request(req):
            return req.prepare()

    enc = Encryption(_Session(), "ntlm")
    return enc, (lambda msg: enc.prepare_encrypted_request(_Session(), "http://127.0.1.1:5985/wsman", msg).body)


def test_seal_and_unseal_use_the_pywinrm_framing(ntlm_pair):
    client, server = ntlm_pair
    enc, sealed_by_client = _pywinrm_encryption(client)
    body = sealed_by_client(b"<soap>hello</soap>")
    assert b"<soap>" not in body
    assert server.unseal(body) == b"<soap>hello</soap>"

    class _Resp:
        headers = {"Content-Type": auth.ENCRYPTED_CONTENT_TYPE}
        content = server.seal(b"<soap>answer</soap>")

        class request:
            url = "http://127.0.1.1:5985/wsman"

    assert enc.parse_encrypted_response(_Resp()) == b"<soap>answer</soap>"


@pytest.mark.parametrize("tamper", [
    lambda b: b.replace(b"Length=4", b"Length=5"),  # declared length differs
    lambda b: b[:-10],  # closing boundary cut off
    lambda b: b[:-40] + bytes([b[-40] ^ 1]) + b[-39:],  # one sealed byte flipped: signature fails
    lambda b: b"plain text",
])
def test_unseal_refuses_tampered_or_truncated_bodies(ntlm_pair, tamper):
    client, server = ntlm_pair
    _enc, sealed_by_client = _pywinrm_encryption(client)
    with pytest.raises(auth.FramingError):
        server.unseal(tamper(sealed_by_client(b"<x/>")))


def test_wrong_password_is_refused_by_the_acceptor(tmp_path, monkeypatch):
    monkeypatch.setenv("NTLM_USER_FILE", "")
    auth.write_ntlm_user_file(str(tmp_path / "users"), "labadmin", "right", [])
    client = spnego.client("labadmin", "wrong", protocol="ntlm")
    server = auth.NegotiateAcceptor()
    challenge = server.step(base64.b64encode(client.step()).decode())
    with pytest.raises(auth.AuthError):
        server.step(base64.b64encode(client.step(challenge)).decode())


@pytest.mark.parametrize("user, password, ok", [
    ("labadmin", "pw", True), ("LAB01\\LabAdmin", "pw", True), ("labadmin@lab01", "pw", True),
    ("labadmin", "PW", False), ("other", "pw", False), ("", "", False)])
def test_check_basic(user, password, ok):
    token = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    if ok:
        assert auth.check_basic(token, "labadmin", "pw") == user
    else:
        with pytest.raises(auth.AuthError):
            auth.check_basic(token, "labadmin", "pw")


def test_lab_in_process_serves_and_stops_cleanly(tmp_path, monkeypatch):
    """The Lab class without the CLI (what a benchmark can embed); NTLM_USER_FILE is restored."""
    if not toolchain.find_pwsh():
        pytest.skip(toolchain.NO_PWSH)  # the one test of this file that starts a lab
    import threading

    import winrm

    from ..endpoint.server import Lab

    monkeypatch.setenv("NTLM_USER_FILE", "")
    before = {t.name for t in threading.enumerate()}
    with Lab(str(tmp_path / "state"), hosts=1, password="Pw-in-process") as lab:
        h = lab.hosts[0]
        tool = os.path.join(h.bin_dir, "hello.exe")
        with open(tool, "w") as fh:
            fh.write("#!/bin/sh\necho hello $COMPUTERNAME\n")
        os.chmod(tool, 0o755)
        s = winrm.Session("http://%s:%d/wsman" % (h.address, h.http_port), auth=("labadmin", "Pw-in-process"),
                          transport="ntlm", ca_trust_path=lab.ca_path)
        r = s.run_cmd("hello")
        assert (r.status_code, r.std_out) == (0, b"hello LAB01\n")
        counts = lab.counts()["hosts"]["lab01"]
        assert counts["processes_started"] == 1 and counts["requests"]["Command"] == 1
        inv = lab.inventory("basic")["all"]
        assert inv["hosts"]["lab01"]["ansible_port"] == h.https_port
        # The playbooks' default target: a lab inventory works without -e target.
        assert list(inv["children"]["m365_clients"]["hosts"]) == ["lab01"]
        assert inv["vars"]["ansible_password"] == "Pw-in-process"
    import time
    deadline = time.monotonic() + 5  # connection/pipe threads end as their sockets and pipes close
    while {t.name for t in threading.enumerate() if t.name.startswith("lab-")} - before:
        assert time.monotonic() < deadline, [t.name for t in threading.enumerate()]
        time.sleep(0.1)
    with open(lab.counts_path) as fh:
        assert '"processes_started": 1' in fh.read()
    with pytest.raises(ValueError, match="hosts must be between 1 and 250"):
        Lab(str(tmp_path / "bad"), hosts=0)
    with pytest.raises(ValueError, match="transport must be"):
        lab.inventory("kerberos")


# ---- tests/lab/shim/sandbox.py and toolchain.py: the clock, the confinement, finding pwsh ----
@pytest.mark.parametrize("text", ["+400d", "-2h", "+30", "+1.5y"])
def test_clock_offsets_in_libfaketime_form_are_taken(text):
    assert sandbox.parse_offset(" %s " % text) == text


@pytest.mark.parametrize("text", ["400d", "+400 days", "@2027-01-01 00:00:00", "", "+d"])
def test_other_clock_offsets_are_refused_naming_the_option(text):
    with pytest.raises(ValueError, match="--clock-offset"):
        sandbox.parse_offset(text)


def test_a_moved_clock_keeps_the_callers_pythonpath_behind_its_sitecustomize():
    clock = {"LD_PRELOAD": "/lib/libfaketime.so.1", "FAKETIME": "+400d"}
    env = sandbox.with_clock({"PYTHONPATH": "/a:/b", "HOME": "/h"}, clock)
    assert env["PYTHONPATH"].split(os.pathsep) == [sandbox.CLOCK_PYTHONPATH, "/a", "/b"]
    assert (env["FAKETIME"], env["HOME"]) == ("+400d", "/h")
    assert sandbox.with_clock({"PYTHONPATH": "/a"}, {}) == {"PYTHONPATH": "/a"}


def test_confinement_off_leaves_command_lines_alone_and_bad_modes_are_refused():
    off = sandbox.Confinement("off")
    assert not off.active and off.reason == "--confine off"
    with pytest.raises(ValueError, match="--confine must be auto, require or off"):
        sandbox.Confinement("sometimes")


def test_pwsh_is_found_in_the_documented_order(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "pwsh"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PWSH", str(fake))
    assert toolchain.find_pwsh() == str(fake)
    monkeypatch.setenv("PWSH", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="PWSH=.*missing is not an executable file"):
        toolchain.find_pwsh()
    monkeypatch.delenv("PWSH")
    monkeypatch.setenv("PATH", str(fake.parent))
    assert toolchain.find_pwsh() == str(fake)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(toolchain, "SHARED_PWSH", str(tmp_path / "shared" / "tools" / "pwsh" / "pwsh"))
    assert toolchain.find_pwsh() is None


# ---- make lab-serve: the six example hosts it says it serves ----
def test_make_lab_serve_seeds_one_host_per_example_device():
    """`make lab-serve` leaves the example devices serving (README), each host seeded from the
    scenario of its examples/evidence folder: not six blank hosts."""
    done = subprocess.run(["make", "-n", "lab-serve"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    serve = [line for line in done.stdout.splitlines() if "-m tests.lab serve" in line]
    assert len(serve) == 1, done.stdout
    args = shlex.split(serve[0])
    examples = sorted(os.listdir(os.path.join(REPO_ROOT, "examples", "evidence")))
    scenarios = [args[i + 1] for i, arg in enumerate(args) if arg == "--scenario"]
    assert scenarios == examples and len(examples) == 6
    assert args[args.index("--hosts") + 1] == str(len(examples))
    for name in scenarios:
        assert os.path.isfile(os.path.join(REPO_ROOT, "tests", "lab", "scenarios", name, "scenario.yml")), name
