# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PowerShell remoting plugin driven by pypsrp's own client (what ansible's psrp connection uses)."""

from __future__ import annotations

import base64
import time
import xml.etree.ElementTree as ET

import pytest
from pypsrp.client import Client
from pypsrp.exceptions import AuthenticationError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from ..endpoint import wsman
from ..process import pid_alive, runtime_leftovers


def connection(lab, host="lab01", auth="ntlm", password=None) -> WSMan:
    h = lab.host(host)
    tls = auth == "basic"
    return WSMan(h["address"], port=h["https_port"] if tls else h["http_port"], ssl=tls, auth=auth,
                 encryption="auto", username=lab.user, password=password or lab.password,
                 cert_validation=lab.ca if tls else True, operation_timeout=5, read_timeout=15)


def client(lab, host="lab01", auth="ntlm", password=None) -> Client:
    h = lab.host(host)
    tls = auth == "basic"
    return Client(h["address"], port=h["https_port"] if tls else h["http_port"], ssl=tls, auth=auth,
                  encryption="auto", username=lab.user, password=password or lab.password,
                  cert_validation=lab.ca if tls else True)


def wait_for(pred, timeout=10.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


# ---- pypsrp's Client -----------------------------------------------------------------------

@pytest.mark.parametrize("auth, host", [("ntlm", "lab01"), ("basic", "lab02")])
def test_execute_ps_through_the_powershell_plugin(lab, auth, host):
    before = lab.counts(settle=0.3)[host]
    text = "Achtung: Zertifikat läuft ab ✓ <&>"
    out, streams, had_errors = client(lab, host, auth).execute_ps(
        "Write-Warning '%s'; $env:COMPUTERNAME; $env:USERNAME; $PSVersionTable.PSEdition" % text)
    assert out.splitlines() == [host.upper(), lab.user, "Core"]
    assert had_errors is False
    # Warnings come back as records, unmangled (non-ASCII and XML characters included).
    assert [w.message for w in streams.warning] == [text]
    after = lab.counts()[host]
    grew = {op: after["requests"].get(op, 0) - before["requests"].get(op, 0) for op in after["requests"]}
    assert grew["Create"] == 1 and grew["Command"] == 1 and grew["Delete"] == 1 and grew["Receive"] >= 2
    assert after["processes_started"] == before["processes_started"] + 1
    assert after["auth"]["negotiate" if auth == "ntlm" else "basic"] > before["auth"].get(
        "negotiate" if auth == "ntlm" else "basic", 0)
    # Delete ended the pwsh -s behind the shell: it exited by itself once its input ended (no
    # "did not exit" kill), and nothing of its .NET runtime (FIFOs, socket) is left in Temp.
    assert "PowerShell shell" in lab.log() and "closed (Delete)" in lab.log()
    assert "did not exit within" not in lab.log()
    assert runtime_leftovers(lab.host(host)["state"]) == []


def test_a_failing_command_returns_its_error_record(lab):
    out, streams, had_errors = client(lab).execute_ps(
        "'before'; Write-Error -Message 'the lab says no' -ErrorId Lab.Refused -Category PermissionDenied; 'after'")
    # A non-terminating error: the pipeline completes (pypsrp's had_errors means "Failed").
    assert had_errors is False
    assert out.splitlines() == ["before", "after"]
    (err,) = streams.error
    assert str(err) == "the lab says no"
    assert err.fq_error == "Lab.Refused"
    assert err.category == 18  # ErrorCategory.PermissionDenied
    assert err.message == "PermissionDenied: (:) [Write-Error], WriteErrorException"


def test_a_terminating_error_fails_the_pipeline(lab):
    with RunspacePool(connection(lab)) as pool:
        ps = PowerShell(pool)
        ps.add_script("'partial'; throw 'fatal from the lab'")
        out = ps.invoke()
        assert out == ["partial"]
        assert ps.had_errors is True
        assert ps.state == 5  # PSInvocationState.Failed, from the server's PIPELINE_STATE
        assert any("fatal from the lab" in str(e) for e in ps.streams.error)


def test_one_runspace_pool_two_pipelines_at_once(lab):
    with RunspacePool(connection(lab), max_runspaces=2) as pool:
        first = PowerShell(pool)
        first.add_script("Start-Sleep -Milliseconds 1500; 'first'; $PID")
        second = PowerShell(pool)
        second.add_script("'second'; $PID")
        started = time.monotonic()
        first.begin_invoke()
        second.begin_invoke()
        second.end_invoke()
        first.end_invoke()
        # Both ran in the same pwsh -s process, concurrently (well under two sleeps).
        assert second.output[0] == "second" and first.output[0] == "first"
        assert first.output[1] == second.output[1]
        assert time.monotonic() - started < 15
        # The pool stays usable; pipeline input right behind CREATE_PIPELINE must not be lost
        # (pwsh -s drops data sent before it acknowledged the previous packet).
        for n in range(3):
            more = PowerShell(pool)
            more.add_script("process { $_ * 2 }")
            assert more.invoke(input=[1, 2, n]) == [2, 4, 2 * n]


def test_a_megabyte_of_output_arrives_whole_in_several_receives(lab):
    before = lab.counts(settle=0.3)["lab02"]["requests"].get("Receive", 0)
    out, _streams, had_errors = client(lab, "lab02").execute_ps("'x' * 1048576; 'end'")
    assert had_errors is False
    assert out == "x" * 1048576 + "\nend"
    # pypsrp's envelope is 150 KiB, so the lab had to split the fragments over Receives.
    assert lab.counts()["lab02"]["requests"]["Receive"] - before >= 6


def test_stopping_a_running_pipeline(lab):
    with RunspacePool(connection(lab)) as pool:
        ps = PowerShell(pool)
        ps.add_script("'started'; Start-Sleep -Seconds 60; 'not reached'")
        ps.begin_invoke()
        # Stop it once it runs (pwsh ignores a stop that overtakes the pipeline's start).
        deadline = time.monotonic() + 30
        while not ps.output:
            assert time.monotonic() < deadline
            ps.poll_invoke()
        started = time.monotonic()
        ps.stop()  # Signal powershell/signal/ctrl_c: pwsh gets <Signal/> and stops the pipeline
        after = PowerShell(pool)
        after.add_script("'still here'")
        assert after.invoke() == ["still here"]
        # The pool has one runspace: the second pipeline ran only because the first stopped.
        assert time.monotonic() - started < 30
    assert "Signal ps_ctrl_c" in lab.log() and "(stopping)" in lab.log()


def test_wrong_password_gets_401_and_starts_nothing(lab):
    before = lab.counts(settle=0.3)["lab01"]
    with pytest.raises(AuthenticationError):
        client(lab, password="not-the-password").execute_ps("'x'")
    after = lab.counts()["lab01"]
    assert after["processes_started"] == before["processes_started"]
    assert after["auth"].get("denied", 0) > before["auth"].get("denied", 0)


def test_a_vanished_client_leaves_no_process(lab):
    conn = connection(lab)
    pool = RunspacePool(conn)
    pool.open()
    ps = PowerShell(pool)
    ps.add_script("$PID; (Start-Process -FilePath /bin/sleep -ArgumentList 120 -PassThru).Id")
    pids = [int(x) for x in ps.invoke()]
    assert len(pids) == 2 and all(pid_alive(p) for p in pids)
    busy = PowerShell(pool)
    busy.add_script("Start-Sleep -Seconds 120")
    busy.begin_invoke()
    # The controller dies: its TCP connection closes with no Signal and no Delete.
    conn.transport.close()
    assert wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=15), pids
    assert "client disconnected" in lab.log()
    # pwsh was killed, so its runtime FIFOs and socket stayed behind until the lab removed
    # them, as Windows drops a dead process's pipes (a FIFO blocks whoever opens it).
    root = lab.host()["state"]
    assert wait_for(lambda: runtime_leftovers(root) == [], timeout=5), runtime_leftovers(root)


# ---- bad input -------------------------------------------------------------------------------

def _create(conn: WSMan, creation: str | None, shell_id: str | None = None):
    rsp = wsman.NS["rsp"]
    shell = ET.Element("{%s}Shell" % rsp)
    if shell_id:
        shell.attrib["ShellId"] = shell_id
    ET.SubElement(shell, "{%s}InputStreams" % rsp).text = "stdin pr"
    ET.SubElement(shell, "{%s}OutputStreams" % rsp).text = "stdout"
    if creation is not None:
        ET.SubElement(shell, "creationXml", xmlns="http://schemas.microsoft.com/powershell").text = creation
    return conn.create(wsman.RESOURCE_POWERSHELL, shell)


@pytest.mark.parametrize("creation, code, words", [
    (None, 87, "no creationXml"),
    ("not base64!", 87, "creationXml is not valid base64"),
    (base64.b64encode(b"\x00" * 10).decode(), 13, "creationXml does not hold a complete PSRP fragment"),
])
def test_a_bad_create_is_refused_and_starts_nothing(lab, creation, code, words):
    before = lab.counts(settle=0.3)["lab02"]
    with pytest.raises(WSManFaultError) as err:
        _create(connection(lab, "lab02"), creation)
    assert err.value.code == code and words in err.value.reason
    after = lab.counts()["lab02"]
    assert after["processes_started"] == before["processes_started"]
    assert after["faults"]["w:InvalidParameter"] > before["faults"].get("w:InvalidParameter", 0)


@pytest.mark.parametrize("action", [wsman.ACTION_RECONNECT, wsman.ACTION_CONNECT, wsman.ACTION_DISCONNECT])
def test_disconnected_session_operations_are_not_supported(lab, action):
    conn = connection(lab, "lab02")
    with pytest.raises(WSManFaultError) as err:
        conn.invoke(action, wsman.RESOURCE_POWERSHELL, ET.Element("{%s}%s" % (wsman.NS["rsp"], action.rsplit("/")[-1])))
    assert err.value.code == wsman.CODE_NOT_SUPPORTED
    assert "no disconnected sessions" in err.value.reason


def test_a_command_without_a_create_pipeline_fragment_is_refused(lab):
    with RunspacePool(connection(lab, "lab02")) as pool:
        with pytest.raises(WSManFaultError) as err:
            pool.shell.command("", arguments=[base64.b64encode(b"no fragment").decode()],
                               command_id="6F1D3F0E-6C43-4C0B-9B43-2E1B8C1F2A10")
        assert "does not hold a complete PSRP fragment" in err.value.reason
        with pytest.raises(WSManFaultError) as err:
            pool.shell.command("", arguments=[], command_id="6F1D3F0E-6C43-4C0B-9B43-2E1B8C1F2A10")
        assert "exactly one rsp:Arguments" in err.value.reason
        # Nothing was registered, and the pool still runs pipelines.
        ps = PowerShell(pool)
        ps.add_script("'fine'")
        assert ps.invoke() == ["fine"]
