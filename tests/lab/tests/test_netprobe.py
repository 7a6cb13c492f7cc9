# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's network for the probe (tests/lab/shim/netprobe.py), without PowerShell: the guard
that keeps the real Entra names out of every lab run, the hermetic resolver each host gets
under bwrap, and the loopback stand-ins themselves."""

from __future__ import annotations

import socket
import ssl
import subprocess

import pytest

from ..shim import netprobe, sandbox

NEEDS_PWSH = False


def probe_doc(endpoints, hosts=None):
    contexts = [{"context": "system", "results": [{"host": h} for h in (hosts or [])]}]
    return {"plays": [{"tasks": [{"hosts": {"PC1": {"host_facts": {"network_probe": {
        "endpoints": endpoints, "contexts": contexts}}}}}]}]}


def test_the_guard_names_every_endpoint_outside_the_stand_ins():
    # The module's defaults, as a run that missed the lab's inventory variable would probe them.
    defaults = ["login.microsoftonline.com", "device.login.microsoftonline.com", "enterpriseregistration.windows.net"]
    found = netprobe.violations(probe_doc(defaults, hosts=["login.microsoftonline.com"]))
    assert [v.rsplit(": ", 1)[1] for v in found] == sorted(defaults), found
    assert found[0].startswith("$.plays[0].tasks[0].hosts.PC1.host_facts.network_probe")
    # An address outside loopback is as bad as a real name.
    assert netprobe.violations(probe_doc(["10.0.0.5:443", "[2001:db8::1]:443"])) != []
    assert len(netprobe.violations(probe_doc(["10.0.0.5:443", "[2001:db8::1]:443"]))) == 2
    # The stand-ins pass: names under lab.test and loopback addresses, with or without a port.
    ok = probe_doc(["login.lab.test:4443", "127.0.0.1:9", "[::ffff:127.0.0.1]:9", "127.1.2.3"],
                   hosts=["login.lab.test", "127.0.0.1"])
    assert netprobe.violations(ok) == []
    # A look-alike is not a stand-in.
    assert netprobe.violations(probe_doc(["login.lab.test.contoso.com"])) != []


def test_a_scenarios_network_block_is_checked_by_name():
    assert netprobe.host_network(None) == {"endpoints": "tls_trusted", "user_proxy": None}
    assert netprobe.host_network({"network_probe": {"endpoints": "nxdomain", "user_proxy": "proxy_407"}}) == {
        "endpoints": "nxdomain", "user_proxy": "proxy_407"}
    with pytest.raises(netprobe.ScenarioNetworkError, match=r"scenario X: network_probe.endpoints: 'firewall' is not one"):
        netprobe.host_network({"name": "X", "network_probe": {"endpoints": "firewall"}})
    with pytest.raises(netprobe.ScenarioNetworkError, match=r"network_probe.user_proxy: 'squid'"):
        netprobe.host_network({"name": "X", "network_probe": {"user_proxy": "squid"}})
    with pytest.raises(netprobe.ScenarioNetworkError, match=r"unknown key\(s\) dns"):
        netprobe.host_network({"name": "X", "network_probe": {"dns": "off"}})


def test_host_files_resolve_the_stand_ins_from_the_file_alone(tmp_path):
    files = netprobe.write_host_files(tmp_path, "PC-NET-X", "127.0.1.7", {"endpoints": "tls_trusted"})
    hosts = open(files["/etc/hosts"]).read()
    assert "127.0.0.1\tlogin.lab.test device.login.lab.test enterpriseregistration.lab.test" in hosts
    assert "127.0.1.7\tPC-NET-X" in hosts
    nxdomain = netprobe.write_host_files(tmp_path / "nx", "PC-NET-DNS", "127.0.1.8", {"endpoints": "nxdomain"})
    assert "lab.test" not in open(nxdomain["/etc/hosts"]).read()
    switch = netprobe.nsswitch_text("passwd: files systemd\nhosts: files mdns4_minimal [NOTFOUND=return] dns\n")
    assert switch.splitlines() == ["passwd: files systemd", "hosts:          files"]


def test_under_bwrap_a_host_resolves_only_what_its_file_names(tmp_path):
    confinement = sandbox.Confinement("auto")
    if not confinement.active:
        pytest.skip("no bwrap here (%s): the lab switches the probe off" % confinement.reason)
    files = netprobe.write_host_files(tmp_path / "etc", "PC-NET-X", "127.0.1.7", {"endpoints": "tls_trusted"})

    def getent(name):
        proc, _pid = confinement.popen(["getent", "ahostsv4", name], str(tmp_path), files=files,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, _err = proc.communicate(timeout=30)
        return proc.returncode, out.decode()

    rc, out = getent("device.login.lab.test")
    assert rc == 0 and out.startswith("127.0.0.1"), out
    # The real name is not in the file and the host has no DNS: it fails, and no query left
    # the machine (nsswitch "files" alone).
    rc, out = getent("login.microsoftonline.com")
    assert rc == 2 and out == "", (rc, out)


@pytest.fixture
def stand_ins(tmp_path):
    servers = netprobe.StandIns(tmp_path / "netprobe").start()
    yield servers
    servers.stop()


def test_the_stand_ins_refuse_answer_407_and_present_their_chains(stand_ins):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", stand_ins.ports["refused"]), timeout=5)
    with socket.create_connection(("127.0.0.1", stand_ins.ports["proxy_407"]), timeout=5) as conn:
        conn.sendall(b"CONNECT login.lab.test:443 HTTP/1.1\r\nHost: login.lab.test:443\r\n\r\n")
        answer = conn.recv(4096)
    assert answer.startswith(b"HTTP/1.1 407 Proxy Authentication Required\r\n")
    assert b"Proxy-Authenticate: Negotiate\r\n" in answer and b"Proxy-Authenticate: NTLM\r\n" in answer

    def handshake(kind, root):
        ctx = ssl.create_default_context(cafile=stand_ins.root_files[root])
        with socket.create_connection(("127.0.0.1", stand_ins.ports[kind]), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="enterpriseregistration.lab.test") as tls:
                return tls.version()

    # Each server's chain verifies against its own root and no other.
    assert handshake("tls_trusted", "trusted").startswith("TLS")
    assert handshake("tls_foreign", "foreign").startswith("TLS")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake("tls_foreign", "trusted")
    assert stand_ins.trusted_root != stand_ins.foreign_root and len(stand_ins.trusted_root) == 40
    assert stand_ins.inventory_value({"endpoints": "refused"}) == {
        "enabled": True, "timeout": netprobe.PROBE_TIMEOUT, "trusted_roots": [stand_ins.trusted_root],
        "endpoints": ["%s:%d" % (n, stand_ins.ports["refused"]) for n in netprobe.STAND_IN_NAMES]}
