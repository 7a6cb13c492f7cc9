# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The endpoint driven by pywinrm's own client, over NTLM+encryption and Basic/HTTPS."""

from __future__ import annotations

import base64
import os
import re
import socket
import ssl
import subprocess
import sys
import time

import pytest
import requests
import winrm
import xmltodict
from winrm.exceptions import InvalidCredentialsError, WinRMOperationTimeoutError, WinRMTransportError, WSManFaultError
from winrm.protocol import Protocol

from ..endpoint import wsman
from ..process import REPO_ROOT, LabProcess, children_of, pid_alive, runtime_leftovers


def ntlm_session(lab, host="lab01", password=None):
    return winrm.Session(lab.http_url(host), auth=(lab.user, password or lab.password), transport="ntlm",
                         ca_trust_path=lab.ca)


def basic_session(lab, host="lab01", password=None):
    return winrm.Session(lab.https_url(host), auth=(lab.user, password or lab.password), transport="basic",
                         ca_trust_path=lab.ca)


def ntlm_protocol(lab, host="lab01", **kw):
    kw.setdefault("operation_timeout_sec", 20)
    kw.setdefault("read_timeout_sec", 30)
    return Protocol(lab.http_url(host), transport="ntlm", username=lab.user, password=lab.password,
                    ca_trust_path=lab.ca, **kw)


def wait_for(pred, timeout=10.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


TOOLS = {
    # Small programs in the hosts' bin folders: most tests need a process, not PowerShell,
    # and a shell script starts in milliseconds where pwsh takes a second or more.
    "stream.exe": "echo first\nsleep 3\necho second",
    "late.exe": "sleep 3\necho late",
    "upper.exe": "tr a-z A-Z",
    "count.exe": "wc -l",
    "big.exe": "head -c 600000 /dev/zero | tr '\\0' x",
    "huge.exe": "head -c 10000000 /dev/zero | tr '\\0' y\necho finished >&2",
    "sleeper.exe": "sleep 120 &\necho \"$$ $!\"\nsleep 120",
    "echo.exe": "echo \"$*\"",
    "reboot.exe": "echo '{\"delay\": 0.5}' > \"$M365OPS_LAB_STATE/lab/reboot.request\"",
}


def install_tools(lab):
    for name in lab.info["hosts"]:
        for tool, body in TOOLS.items():
            path = os.path.join(lab.host(name)["bin"], tool)
            with open(path, "w") as fh:
                fh.write("#!/bin/sh\n" + body + "\n")
            os.chmod(path, 0o755)


@pytest.fixture(scope="module", autouse=True)
def tools(lab):
    install_tools(lab)


# ---- commands over both transports ---------------------------------------------------------

def test_run_ps_over_ntlm_with_message_encryption(lab):
    before = lab.counts(settle=0)["lab01"]
    r = ntlm_session(lab).run_ps(
        "Write-Output \"out $env:COMPUTERNAME\"; [Console]::Error.WriteLine('to stderr'); exit 7")
    assert r.status_code == 7
    assert r.std_out.decode().strip() == "out LAB01"
    assert b"to stderr" in r.std_err
    after = lab.counts()["lab01"]
    assert after["auth"]["negotiate"] > before["auth"].get("negotiate", 0)
    for op in ("Create", "Command", "Receive", "Signal", "Delete"):
        assert after["requests"][op] > before["requests"].get(op, 0), op
    assert after["processes_started"] == before["processes_started"] + 1
    assert after["bytes_in"] > before["bytes_in"] and after["bytes_out"] > before["bytes_out"]
    # pwsh's runtime FIFOs and socket are gone with it (the socket outlives a clean exit when
    # the Temp path is long; the lab removes it before it reports the command Done).
    assert runtime_leftovers(lab.host()["state"]) == []


def test_http_listener_refuses_unencrypted_messages(lab):
    s = winrm.Session(lab.http_url(), auth=(lab.user, lab.password), transport="ntlm", message_encryption="never",
                      ca_trust_path=lab.ca)
    with pytest.raises((WinRMTransportError, WSManFaultError)) as err:
        s.run_cmd("pwsh", ["-Command", "1"])
    assert err.value.code == 400
    assert "AllowUnencrypted=false" in lab.log()


def test_run_cmd_over_basic_https_validating_the_lab_ca(lab):
    r = basic_session(lab, "lab02").run_cmd("powershell.exe", ["-NoProfile", "-Command", "$env:COMPUTERNAME"])
    assert (r.status_code, r.std_out.strip()) == (0, b"LAB02")


def test_https_listener_is_not_trusted_without_the_lab_ca(lab):
    s = winrm.Session(lab.https_url(), auth=(lab.user, lab.password), transport="basic",
                      ca_trust_path=certifi_or_system())
    with pytest.raises(requests.exceptions.SSLError):
        s.run_cmd("pwsh", ["-Command", "1"])


def certifi_or_system():
    import certifi
    return certifi.where()


def test_ntlm_over_https_with_channel_binding(lab):
    s = winrm.Session(lab.https_url(), auth=(lab.user, lab.password), transport="ntlm", ca_trust_path=lab.ca)
    r = s.run_cmd("echo", ["cbt", "ok"])
    assert r.std_out.strip() == b"cbt ok"


@pytest.mark.parametrize("make", [ntlm_session, basic_session])
def test_wrong_password_gets_401_and_runs_nothing(lab, make):
    before = lab.counts(settle=0.3)["lab01"]
    with pytest.raises(InvalidCredentialsError):
        make(lab, password="not-the-password").run_cmd("pwsh", ["-Command", "New-Item x"])
    after = lab.counts()["lab01"]
    assert after["processes_started"] == before["processes_started"]
    assert after["requests"].get("Create", 0) == before["requests"].get("Create", 0)
    assert after["auth"]["denied"] > before["auth"].get("denied", 0)


def test_basic_on_the_http_listener_is_refused(lab):
    s = winrm.Session(lab.http_url(), auth=(lab.user, lab.password), transport="basic", ca_trust_path=lab.ca)
    with pytest.raises(InvalidCredentialsError):
        s.run_cmd("pwsh", ["-Command", "1"])
    assert "Basic offered on the HTTP listener" in lab.log()


# ---- the host's environment and programs ----------------------------------------------------

def test_clean_environment_built_from_the_state_folder(lab):
    script = ("$e=[Environment]::GetEnvironmentVariables(); "
              "'TEMP','TMP','USERPROFILE','LOCALAPPDATA','ProgramData','PATH' | % { '{0}={1}' -f $_, $e[$_] }; "
              "'MOD=' + ($env:PSModulePath -split ':')[0]; 'PSHOME=' + $PSHOME; 'TMPPATH=' + [IO.Path]::GetTempPath(); "
              "'HOSTVARS=' + (@($e.Keys) -match '^(PYTEST|VIRTUAL_ENV|NTLM_USER_FILE)').Count")
    for host in ("lab01", "lab02"):
        r = ntlm_session(lab, host).run_ps(script)
        assert r.status_code == 0, r.std_err
        env = dict(line.split("=", 1) for line in r.std_out.decode().splitlines() if "=" in line)
        root = lab.host(host)["state"]
        for var in ("TEMP", "TMP", "USERPROFILE", "LOCALAPPDATA", "ProgramData"):
            assert env[var].startswith(root + os.sep), (var, env[var])
            assert os.path.isdir(env[var])
        assert env["TMPPATH"].rstrip("/") == env["TEMP"]
        # pwsh puts its own $PSHOME in front of PATH at startup (on Windows too); the rest is ours.
        path = env["PATH"].split(":")
        if path[0] == env["PSHOME"]:
            path = path[1:]
        assert path == [lab.host(host)["bin"], "/usr/bin", "/bin"]
        assert os.path.realpath(env["MOD"]) == os.path.realpath(lab.host(host)["shim_modules"])
        assert env["HOSTVARS"] == "0"  # nothing of the test process's environment leaks in


def test_other_programs_come_only_from_the_hosts_bin_folder(lab):
    bin_dir = lab.host("lab02")["bin"]
    tool = os.path.join(bin_dir, "labtool.exe")
    with open(tool, "w") as fh:
        fh.write("#!/bin/sh\necho \"labtool:$*\"\n")
    os.chmod(tool, 0o755)
    s = basic_session(lab, "lab02")
    r = s.run_cmd("LABTOOL", ["/status", "/debug"])
    assert (r.status_code, r.std_out) == (0, b"labtool:/status /debug\n")
    # lab01 has no such program, and an absolute path outside bin is not a way around it.
    r = basic_session(lab, "lab01").run_cmd("labtool.exe")
    assert r.status_code == 1 and b"is not recognized" in r.std_err
    r = s.run_cmd("/bin/sh", ["-c", "echo escaped"])
    assert r.status_code == 1 and b"escaped" not in r.std_out


def test_windows_powershell_path_runs_the_shared_pwsh(lab):
    r = basic_session(lab).run_cmd("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                                   ["-NoProfile", "-Command", "$PSVersionTable.PSEdition"])
    assert r.std_out.strip() == b"Core"


# ---- streaming, stdin, timeouts --------------------------------------------------------------

def test_receive_streams_output_before_the_command_ends(lab):
    p = ntlm_protocol(lab)
    shell = p.open_shell()
    try:
        cid = p.run_command(shell, "stream.exe")
        out = b""
        while b"first" not in out:
            chunk, _err, _rc, done = p.get_command_output_raw(shell, cid)
            out += chunk
            # "first" arrives while the command still runs: output is streamed, not buffered whole.
            assert not done
        stdout, _err, rc = p.get_command_output(shell, cid)
        assert out + stdout == b"first\nsecond\n" and rc == 0
        p.cleanup_command(shell, cid)
    finally:
        p.close_shell(shell)


def test_receive_times_out_with_the_wsman_fault_and_the_client_polls_again(lab):
    p = ntlm_protocol(lab, operation_timeout_sec=1, read_timeout_sec=5)
    shell = p.open_shell()
    try:
        cid = p.run_command(shell, "late")
        t0 = time.monotonic()
        with pytest.raises(WinRMOperationTimeoutError):
            p.get_command_output_raw(shell, cid)  # nothing to say for 3 s; OperationTimeout is 1 s
        assert 0.9 < time.monotonic() - t0 < 3
        stdout, _err, rc = p.get_command_output(shell, cid)
        assert (stdout, rc) == (b"late\n", 0)
        p.cleanup_command(shell, cid)
    finally:
        p.close_shell(shell)


def test_stdin_from_send_reaches_the_process(lab):
    p = ntlm_protocol(lab)
    shell = p.open_shell()
    try:
        cid = p.run_command(shell, "upper")
        p.send_command_input(shell, cid, b"alpha\n")
        p.send_command_input(shell, cid, b"beta\n", end=True)
        stdout, _err, rc = p.get_command_output(shell, cid)
        assert (stdout, rc) == (b"ALPHA\nBETA\n", 0)
        p.cleanup_command(shell, cid)
    finally:
        p.close_shell(shell)


def test_large_output_is_split_to_fit_the_clients_envelope(lab):
    p = ntlm_protocol(lab)
    shell = p.open_shell()
    try:
        cid = p.run_command(shell, "big")
        stdout, _err, rc = p.get_command_output(shell, cid)
        assert rc == 0 and stdout == b"x" * 600000
        p.cleanup_command(shell, cid)
    finally:
        p.close_shell(shell)


def test_output_beyond_the_buffer_limit_waits_for_the_client_and_arrives_whole(lab):
    p = ntlm_protocol(lab)
    shell = p.open_shell()
    try:
        cid = p.run_command(shell, "huge")
        time.sleep(2)  # the lab holds at most 4 MB; the writer blocks meanwhile
        _o, err, _rc, done = p.get_command_output_raw(shell, cid)
        assert not done and b"finished" not in err
        stdout, stderr, rc = p.get_command_output(shell, cid)
        assert rc == 0 and len(_o) + len(stdout) == 10000000 and set(stdout) == {ord("y")}
        assert b"finished" in stderr
        p.cleanup_command(shell, cid)
    finally:
        p.close_shell(shell)


def test_create_honours_a_client_chosen_shell_id(lab):
    p = ntlm_protocol(lab)
    wanted = "5A6B7C8D-1111-4222-8333-944445555666"

    def create(shell_id):
        req = {"env:Envelope": p.build_wsman_header(action=wsman.ACTION_CREATE, resource_uri=wsman.RESOURCE_CMD)}
        req["env:Envelope"]["env:Body"] = {"rsp:Shell": {"@ShellId": shell_id, "rsp:InputStreams": "stdin",
                                                         "rsp:OutputStreams": "stdout stderr"}}
        return p.send_message(xmltodict.unparse(req))

    assert wanted.encode() in create(wanted.lower())
    try:
        with pytest.raises(WSManFaultError) as err:
            create(wanted)
        assert err.value.fault_subcode == "w:AlreadyExists"
        with pytest.raises(WSManFaultError) as err:
            create("not-a-guid")
        assert "not a GUID" in err.value.reason
    finally:
        p.close_shell(wanted)


# ---- faults -------------------------------------------------------------------------------------

def test_unknown_shell_id_fault(lab):
    p = ntlm_protocol(lab)
    with pytest.raises(WSManFaultError) as err:
        p.run_command("6D1E4E52-0000-4000-8000-000000000000", "pwsh")
    assert err.value.wsman_fault_code == 2150858843
    assert err.value.fault_subcode == "w:InvalidSelectors"
    assert re.search(r"fault w:InvalidSelectors for Command: .*6D1E4E52", lab.log())


def test_unknown_command_id_fault(lab):
    p = ntlm_protocol(lab)
    shell = p.open_shell()
    try:
        with pytest.raises(WSManFaultError) as err:
            p.get_command_output_raw(shell, "0BAD0BAD-0000-4000-8000-000000000000")
        assert err.value.fault_subcode == "w:InvalidParameter"
        assert "0BAD0BAD" in err.value.reason
    finally:
        p.close_shell(shell)


def test_malformed_xml_fault(lab):
    p = ntlm_protocol(lab)
    with pytest.raises(WSManFaultError) as err:
        p.send_message("<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Header>")
    assert err.value.code == 400 and err.value.fault_subcode == "w:SchemaValidationError"
    assert "XML is invalid" in lab.log()


def test_unsupported_action_fault(lab):
    p = ntlm_protocol(lab)
    req = {"env:Envelope": p.build_wsman_header(
        action="http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate", resource_uri=wsman.RESOURCE_CMD)}
    req["env:Envelope"]["env:Body"] = {}
    with pytest.raises(WSManFaultError) as err:
        p.send_message(xmltodict.unparse(req))
    assert err.value.fault_subcode == "a:ActionNotSupported"
    assert "enumeration/Enumerate is not supported" in lab.log()


def test_unknown_resource_uri_fault(lab):
    p = ntlm_protocol(lab)
    req = {"env:Envelope": p.build_wsman_header(action=wsman.ACTION_CREATE,
                                                resource_uri="http://schemas.microsoft.com/wbem/wsman/1/wmi/root")}
    req["env:Envelope"]["env:Body"] = {}
    with pytest.raises(WSManFaultError) as err:
        p.send_message(xmltodict.unparse(req))
    assert err.value.fault_subcode == "w:DestinationUnreachable"


def test_envelope_over_max_envelope_size_fault(lab):
    p = ntlm_protocol(lab)
    shell = p.open_shell()
    try:
        cid = p.run_command(shell, "count")
        with pytest.raises(WSManFaultError) as err:
            p.send_command_input(shell, cid, b"y" * 450000)  # base64 makes it ~600 KB > 500 KB
        assert err.value.code == 413 and err.value.fault_subcode == "w:EncodingLimit"
        assert "exceeded the configured MaxEnvelopeSize" in lab.log()
        # The shell is still usable afterwards.
        p.send_command_input(shell, cid, b"ok\n", end=True)
        stdout, _err, rc = p.get_command_output(shell, cid)
        assert (stdout.strip(), rc) == (b"1", 0)
    finally:
        p.close_shell(shell)


# ---- disconnects and leftovers ----------------------------------------------------------------

def _start_sleeper(lab, session_factory):
    """A command that starts a child of its own; returns (protocol, shell, command id, pids)."""
    p = session_factory()
    shell = p.open_shell()
    cid = p.run_command(shell, "sleeper")  # prints its own PID and its background child's
    out = err = b""
    deadline = time.monotonic() + 30
    while not out.endswith(b"\n"):  # the line may come in more than one Receive
        assert time.monotonic() < deadline, "no PIDs from the sleeper: %r" % err
        try:
            o, e, _rc, done = p.get_command_output_raw(shell, cid)
            out, err = out + o, err + e
            assert not done, "the sleeper ended early: %r" % err
        except WinRMOperationTimeoutError:
            pass
    pids = [int(x) for x in out.split()]
    assert len(pids) == 2 and all(pid_alive(x) for x in pids)
    return p, shell, cid, pids


def test_client_disconnect_kills_the_command_and_its_children(lab):
    p, _shell, _cid, pids = _start_sleeper(lab, lambda: ntlm_protocol(lab))
    # Drop the TCP connection without Signal or Delete, as a killed controller would.
    p.transport.close_session()
    assert wait_for(lambda: not any(pid_alive(x) for x in pids), timeout=10), pids
    assert "client disconnected" in lab.log()


def test_disconnect_during_a_waiting_receive(lab):
    p, shell, cid, pids = _start_sleeper(lab, lambda: ntlm_protocol(lab))
    # A Receive on a second (Basic/TLS) connection adopts the shell, then that client
    # vanishes while the Receive waits: the lab notices at once, not after OperationTimeout.
    envelope = {"env:Envelope": p.build_wsman_header(action=wsman.ACTION_RECEIVE, resource_uri=wsman.RESOURCE_CMD,
                                                     shell_id=shell)}
    envelope["env:Envelope"]["env:Header"]["w:OperationTimeout"] = "PT60S"
    envelope["env:Envelope"]["env:Body"] = {"rsp:Receive": {"rsp:DesiredStream": {
        "@CommandId": cid, "#text": "stdout stderr"}}}
    body = xmltodict.unparse(envelope).encode()
    cred = base64.b64encode(("%s:%s" % (lab.user, lab.password)).encode())
    h = lab.host()
    raw = socket.create_connection((h["address"], h["https_port"]))
    tls = ssl.create_default_context(cafile=lab.ca).wrap_socket(raw, server_hostname=h["address"])
    tls.sendall(b"POST /wsman HTTP/1.1\r\nHost: lab01\r\nAuthorization: Basic " + cred +
                b"\r\nContent-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: " +
                str(len(body)).encode() + b"\r\n\r\n" + body)
    time.sleep(1.0)
    tls.close()
    try:
        assert wait_for(lambda: "client went away during a Receive" in lab.log(), timeout=5)
        assert wait_for(lambda: not any(pid_alive(x) for x in pids), timeout=10), pids
    finally:
        p.transport.close_session()


def test_stopping_the_lab_leaves_no_process(tmp_path):
    lp = LabProcess(tmp_path / "lab", hosts=1)
    try:
        install_tools(lp)
        _p, _shell, _cid, pids = _start_sleeper(lp, lambda: ntlm_protocol(lp))
        descendants = children_of(lp.proc.pid)
        assert set(pids) <= set(descendants)
    finally:
        rc = lp.stop()
    assert rc == 0
    assert not [x for x in descendants if pid_alive(x)]
    assert "lab stopped" in lp.log()


PARENT = """
import os, subprocess, sys, time
p = subprocess.Popen([sys.executable, '-m', 'tests.lab', 'serve', '--state', sys.argv[1],
                      '--parent-pid', str(os.getpid())], stdout=subprocess.PIPE, text=True)
for line in p.stdout:
    if line.startswith('# lab ready'):
        print(p.pid, flush=True)
        break
time.sleep(120)
"""


def test_the_lab_stops_when_its_parent_dies(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path / "orphan")], cwd=REPO_ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        lab_pid = int(parent.stdout.readline())
        assert pid_alive(lab_pid)
    finally:
        parent.kill()  # SIGKILL: the parent cannot stop the lab itself
        parent.wait()
        parent.stdout.close()
    assert wait_for(lambda: not pid_alive(lab_pid), timeout=10)


# ---- a second client implementation ---------------------------------------------------------

@pytest.mark.parametrize("auth, tls", [("ntlm", False), ("negotiate", False), ("basic", True)])
def test_pypsrp_winrs_client(lab, auth, tls):
    """pypsrp seals messages with its own code and sends SPNEGO-wrapped NTLM for "negotiate",
    which needs the acceptor's final mechListMIC token on the 200 answer."""
    from pypsrp.client import Client

    h = lab.host("lab02")
    client = Client(h["address"], port=h["https_port"] if tls else h["http_port"], username=lab.user,
                    password=lab.password, ssl=tls, auth=auth, cert_validation=lab.ca if tls else True)
    stdout, stderr, rc = client.execute_cmd("echo.exe via pypsrp %s" % auth)
    assert (stdout, stderr, rc) == ("via pypsrp %s\n" % auth, "", 0)


# ---- reboots ------------------------------------------------------------------------------------

def test_a_reboot_request_drops_processes_and_connections_then_the_host_comes_back(lab):
    boot_file = os.path.join(lab.host("lab02")["lab"], "boot_time")
    assert not os.path.exists(boot_file)
    p, _shell, _cid, pids = _start_sleeper(lab, lambda: ntlm_protocol(lab, "lab02"))
    r = basic_session(lab, "lab02").run_cmd("reboot")  # what the shim's shutdown.exe will do
    assert r.status_code == 0
    assert wait_for(lambda: os.path.exists(boot_file), timeout=10)
    with pytest.raises(requests.exceptions.ConnectionError):
        basic_session(lab, "lab02").run_cmd("echo", ["too", "early"])
    with pytest.raises((requests.exceptions.ConnectionError, WinRMTransportError)):
        p.run_command(_shell, "echo")  # the old connection is gone as well
    assert not any(pid_alive(x) for x in pids)
    # lab01 is not affected.
    assert basic_session(lab, "lab01").run_cmd("echo", ["still", "up"]).std_out == b"still up\n"

    def back():
        try:
            return basic_session(lab, "lab02").run_cmd("echo", ["back"]).std_out == b"back\n"
        except requests.exceptions.ConnectionError:
            return False

    t0 = time.monotonic()
    assert wait_for(back, timeout=15, step=0.3)
    assert time.monotonic() - t0 > 1.5  # it stayed down (3 s in this fixture) before answering
    counts = lab.counts()
    assert counts["lab02"]["reboots"] == 1 and counts["lab01"]["reboots"] == 0
    with open(boot_file) as fh:
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", fh.read().strip())
