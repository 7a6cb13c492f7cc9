# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import base64
import re
from types import SimpleNamespace
from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure

from ansible_collections.m365ops.activation.plugins.action.win_reboot_if_needed import ActionModule, STATE_MODULE

BOOT_1 = "2026-11-26T09:15:30.000000Z"
BOOT_2 = "2026-11-26T09:41:02.000000Z"
TB_REASON = "2026-11-26T09:20:00Z quarantined the TokenBroker caches of CONTOSO\\alice"


class FakeHost:
    """A Windows host as win_reboot_state sees it: marker, Windows signals, boot time."""

    def __init__(self, marker=None, windows=None):
        self.marker = dict(marker or {})
        self.windows = list(windows or [])
        self.boots = 0
        self.module_calls = []

    @property
    def boot_time(self):
        return BOOT_1 if self.boots == 0 else "2026-11-26T09:41:%02d.000000Z" % (self.boots + 1)

    def restart(self):
        self.boots += 1
        self.windows = []

    def win_reboot_state(self, module_name, module_args, task_vars, check_mode=False):
        # The contract of plugins/modules/win_reboot_state.ps1 (its Pester tests cover the
        # PowerShell side of it).
        assert module_name == STATE_MODULE
        self.module_calls.append(dict(module_args))
        satisfied = sorted(s for s, value in self.marker.items() if value[:20] < self.boot_time)
        result = {"changed": False, "boot_time": self.boot_time, "cleared": [], "kept": [], "satisfied": satisfied,
                  "windows_reasons": list(self.windows) if module_args.get("include_windows_pending") else [],
                  "invocation": {"module_args": module_args}}
        listed = [s for s in module_args.get("clear_sources") or [] if s in self.marker]
        booted_since = bool(listed) and self.boot_time != module_args["boot_time_before"]
        checked = set(self.marker) if module_args.get("clear_satisfied") else set(listed)
        # A marker value starts with its UTC time; ISO strings of one format sort by time.
        clear = sorted(s for s in checked if (s in listed and booted_since) or self.marker[s][:20] < self.boot_time)
        result["kept"] = sorted(checked - set(clear))
        if clear:
            if not check_mode:
                for source in clear:
                    del self.marker[source]
            result.update(changed=True, cleared=clear)
        result["marker"] = dict(self.marker)
        return result


class FakeTask:
    def __init__(self, args, check_mode=False):
        self.action = "m365ops.activation.win_reboot_if_needed"
        self.args = dict(args)
        self.check_mode = check_mode
        self.async_val = 0
        self.copies = []

    def copy(self, exclude_parent=False, exclude_tasks=False):
        clone = FakeTask(self.args, self.check_mode)
        self.copies.append(clone)
        return clone


def make_action(host, args=None, check_mode=False, reboot=None, connection=None):
    """The action with _execute_module answered by ``host`` and the delegated reboot by ``reboot``."""
    task = FakeTask(args or {}, check_mode)
    connection = connection or MagicMock(_shell=SimpleNamespace(tmpdir=None))
    action = ActionModule(task, connection, MagicMock(), MagicMock(), MagicMock(), MagicMock())
    action._execute_module = MagicMock(side_effect=lambda module_name, module_args, task_vars: host.win_reboot_state(
        module_name, module_args, task_vars, check_mode))
    loader = MagicMock()
    if reboot is not None:
        loader.action_loader.get.side_effect = reboot
    action._shared_loader_obj = loader
    return action, loader


def restarting(host, result=None):
    """A delegated win_reboot that restarts the fake host."""
    def get(name, **kwargs):
        delegated = MagicMock()

        def run(task_vars=None):
            host.restart()
            return result or {"changed": True, "rebooted": True, "failed": False, "unreachable": False, "elapsed": 71}
        delegated.run.side_effect = run
        delegated.kwargs = kwargs
        get.created.append(delegated)
        return delegated
    get.created = []
    return get


def test_marker_set_reboot_is_delegated_and_marker_cleared():
    host = FakeHost({"win_token_broker_cache": TB_REASON})
    reboot = restarting(host)
    action, loader = make_action(host, {"reboot_timeout": 900}, reboot=reboot)
    result = action.run(task_vars={})

    assert loader.action_loader.get.call_count == 1
    name = loader.action_loader.get.call_args.args[0]
    kwargs = loader.action_loader.get.call_args.kwargs
    assert name == "ansible.windows.win_reboot"
    assert kwargs["connection"] is action._connection
    assert kwargs["task"].args["reboot_timeout"] == 900
    assert "win_token_broker_cache" in kwargs["task"].args["msg"]
    assert set(kwargs["task"].args) <= {"reboot_timeout", "pre_reboot_delay", "post_reboot_delay",
                                        "connect_timeout", "test_command", "msg"}
    assert result["rebooted"] is True and result["changed"] is True
    assert not result.get("failed")
    assert result["cleared"] == ["win_token_broker_cache"]
    assert result["boot_time_before"] == BOOT_1 and result["boot_time_after"] != BOOT_1
    assert result["reasons"] == ["win_token_broker_cache: " + TB_REASON]
    assert host.marker == {}
    assert host.module_calls[1] == {"include_windows_pending": False, "clear_sources": ["win_token_broker_cache"],
                                    "boot_time_before": BOOT_1, "clear_satisfied": True}


def test_no_marker_no_reboot():
    host = FakeHost()
    action, loader = make_action(host, reboot=restarting(host))
    result = action.run(task_vars={})
    assert result["changed"] is False and result["rebooted"] is False
    assert result["reboot_required"] is False and result["msg"] == "no reboot needed"
    loader.action_loader.get.assert_not_called()
    assert len(host.module_calls) == 1 and host.boots == 0


def test_second_run_after_a_reboot_changes_nothing():
    host = FakeHost({"win_token_broker_cache": TB_REASON, "win_dsreg_join": "2026-11-26T09:21:00Z rejoined"})
    first, dummy = make_action(host, reboot=restarting(host))
    assert first.run(task_vars={})["rebooted"] is True
    second, loader = make_action(host, reboot=restarting(host))
    result = second.run(task_vars={})
    assert result["changed"] is False and result["rebooted"] is False
    loader.action_loader.get.assert_not_called()
    assert host.boots == 1


def test_run_that_died_before_the_reboot_is_finished_by_the_next_run():
    # The rung wrote its marker, then the play died: nothing else happened on the host.
    host = FakeHost({"win_token_broker_cache": TB_REASON})
    action, dummy = make_action(host, reboot=restarting(host))
    result = action.run(task_vars={})
    assert result["rebooted"] is True and host.boots == 1 and host.marker == {}


def test_check_mode_reports_would_reboot_without_rebooting():
    host = FakeHost({"win_token_broker_cache": TB_REASON})
    action, loader = make_action(host, check_mode=True, reboot=restarting(host))
    result = action.run(task_vars={})
    assert result["changed"] is True and result["rebooted"] is False
    assert result["msg"].startswith("would reboot: win_token_broker_cache")
    loader.action_loader.get.assert_not_called()
    assert host.marker == {"win_token_broker_cache": TB_REASON} and len(host.module_calls) == 1


def test_boot_time_unchanged_is_a_failure_and_the_marker_stays():
    host = FakeHost({"win_token_broker_cache": TB_REASON})

    def get(name, **kwargs):
        # win_reboot claims success but the host never restarted
        return MagicMock(run=MagicMock(return_value={"changed": True, "rebooted": True, "failed": False}))
    action, dummy = make_action(host, reboot=get)
    result = action.run(task_vars={})
    assert result["failed"] is True
    assert "boot time did not change" in result["msg"]
    assert result["cleared"] == []
    assert host.marker == {"win_token_broker_cache": TB_REASON}


def test_failed_delegated_reboot_keeps_the_marker():
    host = FakeHost({"win_token_broker_cache": TB_REASON})
    failed = {"changed": True, "rebooted": True, "failed": True, "unreachable": False,
              "msg": "Timed out waiting for last boot time check (timeout=600)"}

    def get(name, **kwargs):
        return MagicMock(run=MagicMock(return_value=failed))
    action, dummy = make_action(host, reboot=get)
    result = action.run(task_vars={})
    assert result["failed"] is True
    assert "Timed out waiting for last boot time check" in result["msg"]
    assert result["reboot_result"] == failed
    assert len(host.module_calls) == 1  # nothing cleared: the next run reboots again
    assert host.marker == {"win_token_broker_cache": TB_REASON}


def test_unreachable_before_reboot_is_reported_as_unreachable():
    host = FakeHost({"win_token_broker_cache": TB_REASON})
    res = {"changed": False, "rebooted": False, "failed": False, "unreachable": True, "msg": "winrm: connection refused"}
    action, dummy = make_action(host, reboot=lambda name, **kw: MagicMock(run=MagicMock(return_value=res)))
    result = action.run(task_vars={})
    assert result["unreachable"] is True and result["failed"] is True and result["rebooted"] is False


def test_reboot_false_only_reports():
    host = FakeHost({"win_token_broker_cache": TB_REASON})
    action, loader = make_action(host, {"reboot": False}, reboot=restarting(host))
    result = action.run(task_vars={})
    assert result["reboot_required"] is True and result["rebooted"] is False and result["changed"] is False
    assert "reboot: false" in result["msg"]
    loader.action_loader.get.assert_not_called()


def test_windows_pending_only_when_asked():
    host = FakeHost(windows=["Component Based Servicing: RebootPending"])
    action, loader = make_action(host, reboot=restarting(host))
    assert action.run(task_vars={})["rebooted"] is False
    assert host.module_calls[0] == {"include_windows_pending": False}

    action, loader = make_action(host, {"include_windows_pending": True}, reboot=restarting(host))
    result = action.run(task_vars={})
    assert result["rebooted"] is True
    assert result["reasons"] == ["Windows: Component Based Servicing: RebootPending"]
    assert "warnings" not in result


def test_windows_still_pending_after_restart_warns():
    host = FakeHost(windows=["Windows Update: RebootRequired"])

    def get(name, **kwargs):
        def run(task_vars=None):
            host.boots += 1  # restarted, but the update wants another restart
            return {"changed": True, "rebooted": True}
        return MagicMock(run=MagicMock(side_effect=run))
    action, dummy = make_action(host, {"include_windows_pending": True}, reboot=get)
    result = action.run(task_vars={})
    assert result["rebooted"] is True and not result.get("failed")
    assert "still reports a pending reboot" in result["warnings"][0]


def test_state_module_failure_fails_without_reboot():
    host = FakeHost()
    action, loader = make_action(host, reboot=restarting(host))
    action._execute_module = MagicMock(return_value={"failed": True, "msg": "reading the reboot state failed: access denied"})
    result = action.run(task_vars={})
    assert result["failed"] is True and "access denied" in result["msg"] and result["rebooted"] is False
    loader.action_loader.get.assert_not_called()


def test_missing_ansible_windows_is_a_clear_error():
    host = FakeHost({"win_token_broker_cache": TB_REASON})
    action, dummy = make_action(host, reboot=lambda name, **kw: None)
    with pytest.raises(AnsibleActionFail, match="needs the ansible.windows collection"):
        action.run(task_vars={})


def test_bad_option_names_the_parameter():
    host = FakeHost()
    action, dummy = make_action(host, {"reboot_timeout": "soon"})
    with pytest.raises(AnsibleActionFail, match="reboot_timeout"):
        action.run(task_vars={})
    assert host.module_calls == []


# --- the real ansible.windows.win_reboot, with a connection that drops -------------------

class DroppingConnection:
    """Enough of a WinRM connection for win_reboot: it drops while the host restarts."""

    def __init__(self, host, down_for=2):
        self.host = host
        self.down_for = down_for
        self.down = 0
        self.resets = 0
        self.dropped = 0
        self.options = {"connection_timeout": 30}
        self._shell = SimpleNamespace(tmpdir=None)

    def get_option(self, name):
        if name not in self.options:
            raise KeyError(name)
        return self.options[name]

    def set_option(self, name, value):
        self.options[name] = value

    def close(self):
        pass

    def reset(self):
        self.resets += 1

    def exec_command(self, cmd, in_data=None, sudoable=False):
        script = base64.b64decode(cmd.split()[-1]).decode("utf-16-le")
        if self.down:
            self.down -= 1
            self.dropped += 1
            raise AnsibleConnectionFailure("winrm: connection refused")
        if "shutdown.exe /r" in script:
            self.host.restart()
            self.down = self.down_for
            raise AnsibleConnectionFailure("winrm: connection reset by peer")
        if "LastBootUpTime" in script:
            return 0, ("13400000000%d" % self.host.boots).encode(), b""
        expected = re.search(r"'(success-[0-9a-f-]+)'", script)
        if expected:
            return 0, expected.group(1).encode(), b""
        raise AssertionError("unexpected command: %s" % script)


def test_connection_drop_during_reboot_is_handled_by_the_delegated_plugin(monkeypatch):
    win_reboot = pytest.importorskip("ansible_collections.ansible.windows.plugins.action.win_reboot")
    reboot_utils = pytest.importorskip("ansible_collections.ansible.windows.plugins.plugin_utils._reboot")
    monkeypatch.setattr(reboot_utils.time, "sleep", lambda seconds: None)

    host = FakeHost({"win_token_broker_cache": TB_REASON})
    connection = DroppingConnection(host)

    def get(name, **kwargs):
        assert name == "ansible.windows.win_reboot"
        return win_reboot.ActionModule(**kwargs)
    action, dummy = make_action(host, {"reboot_timeout": 60}, reboot=get, connection=connection)
    result = action.run(task_vars={})

    assert not result.get("failed"), result
    assert result["rebooted"] is True and host.boots == 1
    assert connection.dropped == 2 and connection.resets >= 1
    assert result["cleared"] == ["win_token_broker_cache"] and host.marker == {}


def test_check_mode_would_reboot_for_a_rung_that_wrote_no_marker():
    # In check mode the rung wrote nothing; the role passes the rungs that said reboot_required.
    host = FakeHost()
    action, loader = make_action(host, {"requested_by": ["win_token_broker_cache"]}, check_mode=True, reboot=restarting(host))
    result = action.run(task_vars={})
    assert result["changed"] is True and result["rebooted"] is False
    assert result["reasons"] == ["win_token_broker_cache: returned reboot_required"]
    loader.action_loader.get.assert_not_called()


def test_requested_by_counts_once_with_the_marker():
    # With reboot: false the host is read, and a rung that also wrote its marker is one reason.
    host = FakeHost({"win_token_broker_cache": TB_REASON})
    action, loader = make_action(host, {"reboot": False, "requested_by": ["win_dsreg_join", "win_token_broker_cache"]},
                                 reboot=restarting(host))
    result = action.run(task_vars={})
    assert result["reasons"] == ["win_token_broker_cache: " + TB_REASON, "win_dsreg_join: returned reboot_required"]
    assert result["rebooted"] is False and result["reboot_required"] is True
    loader.action_loader.get.assert_not_called()


def test_a_rung_request_skips_the_first_read():
    # The rung just wrote its marker and told the play: restart without asking the host
    # first, then clear what the restart satisfied (one module execution in all).
    host = FakeHost({"win_token_broker_cache": TB_REASON,
                     "win_dsreg_join": "2026-11-20T10:00:00Z left by a run that died"})
    action, loader = make_action(host, {"requested_by": ["win_token_broker_cache"]}, reboot=restarting(host))
    result = action.run(task_vars={})
    assert not result.get("failed"), result
    assert result["rebooted"] is True and host.boots == 1
    assert host.module_calls == [{"include_windows_pending": False, "clear_sources": [], "clear_satisfied": True}]
    assert result["cleared"] == ["win_dsreg_join", "win_token_broker_cache"] and host.marker == {}
    assert result["boot_time_before"] is None and result["boot_time_after"] != BOOT_1
    assert "win_token_broker_cache" in loader.action_loader.get.call_args.kwargs["task"].args["msg"]


def test_a_rung_request_without_a_restart_fails_and_keeps_the_marker():
    host = FakeHost({"win_token_broker_cache": TB_REASON})

    def get(name, **kwargs):
        return MagicMock(run=MagicMock(return_value={"changed": True, "rebooted": True, "failed": False}))
    action, dummy = make_action(host, {"requested_by": ["win_token_broker_cache"]}, reboot=get)
    result = action.run(task_vars={})
    assert result["failed"] is True
    assert "did not restart after win_token_broker_cache asked for it" in result["msg"]
    assert host.marker == {"win_token_broker_cache": TB_REASON}


def test_a_request_an_earlier_restart_satisfied_is_cleared_without_restarting():
    # The run died before its restart, then the user restarted the laptop overnight.
    host = FakeHost({"win_token_broker_cache": "2026-11-20T10:00:00Z quarantined caches"})
    action, loader = make_action(host, reboot=restarting(host))
    result = action.run(task_vars={})
    assert result["rebooted"] is False and result["changed"] is True and host.boots == 0
    assert result["cleared"] == ["win_token_broker_cache"] and host.marker == {}
    assert result["msg"] == "no reboot needed; cleared what an earlier restart satisfied: win_token_broker_cache"
    loader.action_loader.get.assert_not_called()

    # ... and the next run has nothing to do at all
    action, loader = make_action(host, reboot=restarting(host))
    result = action.run(task_vars={})
    assert result["changed"] is False and len(host.module_calls) == 3


def test_a_satisfied_request_in_check_mode_is_only_reported():
    host = FakeHost({"win_token_broker_cache": "2026-11-20T10:00:00Z quarantined caches"})
    action, dummy = make_action(host, check_mode=True, reboot=restarting(host))
    result = action.run(task_vars={})
    assert result["changed"] is True and result["rebooted"] is False
    assert "would clear" in result["msg"] and host.marker and len(host.module_calls) == 1
