# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""operation_timeouts: the execution that proves a restart waits on the host with the
connection's own timeouts, on pywinrm's real Protocol (built offline: nothing connects)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from winrm.protocol import Protocol

from ansible_collections.m365ops.activation.plugins.plugin_utils.reboot_action import operation_timeouts


def winrm_connection(connect_timeout, extras=None):
    """What ansible-core's winrm plugin builds under connection_timeout = connect_timeout, with
    the host's ``ansible_winrm_*`` variables in its ``_extras`` option."""
    protocol = Protocol("http://pc042.contoso.test:5985/wsman", transport="ntlm", username="CONTOSO\\admin",
                        password="secret", operation_timeout_sec=connect_timeout, read_timeout_sec=connect_timeout + 10)
    return SimpleNamespace(transport="winrm", protocol=protocol, get_option={"_extras": extras or {}}.__getitem__)


def timeouts(connection):
    protocol = connection.protocol
    return protocol.operation_timeout_sec, protocol.read_timeout_sec, protocol.transport.read_timeout_sec


@pytest.mark.parametrize("original, expected", [
    (None, (Protocol.DEFAULT_OPERATION_TIMEOUT_SEC, Protocol.DEFAULT_READ_TIMEOUT_SEC,
            Protocol.DEFAULT_READ_TIMEOUT_SEC)),
    (60, (60, 70, 70)),
])
def test_the_proving_execution_waits_with_the_connections_own_timeouts_and_keeps_them(original, expected):
    connection = winrm_connection(5)
    with operation_timeouts(connection, original) as retimed:
        assert retimed is True
        assert timeouts(connection) == expected
    assert timeouts(connection) == expected


def test_without_connection_timeout_the_hosts_winrm_timeouts_apply():
    connection = winrm_connection(5, {"ansible_winrm_operation_timeout_sec": "60", "ansible_winrm_read_timeout_sec": 70})
    with operation_timeouts(connection, None):
        assert timeouts(connection) == (60, 70, 70)
    # connection_timeout wins over them, as in the winrm plugin.
    with operation_timeouts(connection, 45):
        assert timeouts(connection) == (45, 55, 55)


def test_a_failed_try_puts_the_connect_timeout_back_for_the_next_reconnect():
    connection = winrm_connection(5)
    with pytest.raises(ConnectionError):
        with operation_timeouts(connection, None):
            raise ConnectionError("the host went down again")
    assert timeouts(connection) == (5, 15, 15)


@pytest.mark.parametrize("connection", [
    # psrp: connection_timeout is the TCP connect alone; its runspace pool has no pywinrm protocol.
    SimpleNamespace(transport="psrp", protocol=None),
    # winrm before it connected.
    SimpleNamespace(transport="winrm", protocol=None),
])
def test_other_connections_are_left_as_they_are(connection):
    with operation_timeouts(connection, None) as retimed:
        assert retimed is False
    assert connection.protocol is None
