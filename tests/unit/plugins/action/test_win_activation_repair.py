# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller side of win_activation_repair: ladder order, the wait after the restart
the module scheduled (ansible.windows' own backoff, its sleeps stubbed here) and the
verification diagnose whose last_boot proves the restart."""

from __future__ import annotations

from types import SimpleNamespace
from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure
from winrm.protocol import Protocol

from ansible_collections.ansible.windows.plugins.plugin_utils import _reboot
from ansible_collections.m365ops.activation.plugins.action import win_activation_repair as repair_action
from ansible_collections.m365ops.activation.plugins.plugin_utils import reboot_action

BOOT_1 = "2026-12-04T09:15:02Z"
BOOT_2 = "2026-12-04T09:31:40Z"
RESET_TB = {"changed": True, "reboot_required": True, "users": [], "quarantine_id": "q1"}


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    slept = []
    monkeypatch.setattr(_reboot.time, "sleep", slept.append)
    monkeypatch.setattr(reboot_action.time, "sleep", slept.append)
    return slept


class FakeTask:
    def __init__(self, args, check_mode=False):
        self.action = "m365ops.activation.win_activation_repair"
        self.args = dict(args)
        self.check_mode = check_mode
        self.async_val = 0

    def copy(self, exclude_parent=False, exclude_tasks=False):
        return FakeTask(self.args, self.check_mode)


def facts_answers(*answers):
    """The verification diagnose: each call gives the next answer (an exception is raised)."""
    calls = []

    def get(name, task=None, **kwargs):
        assert name == "m365ops.activation.win_activation_facts"
        action = MagicMock()

        def run(task_vars=None):
            calls.append(dict(task.args))
            answer = answers[min(len(calls), len(answers)) - 1]
            if isinstance(answer, Exception):
                raise answer
            return answer
        action.run.side_effect = run
        return action
    get.calls = calls
    return get


def diagnosis(last_boot):
    return {"changed": False, "m365_activation": {"plan": []},
            "host_facts": {"last_boot": last_boot, "pending_reboot": {"marker": False, "cleared": ["win_token_broker_cache"]}}}


def make_action(args, module_result, facts, check_mode=False):
    task = FakeTask(args, check_mode)
    connection = MagicMock(_shell=SimpleNamespace(tmpdir=None))
    connection.get_option.return_value = 30
    action = repair_action.ActionModule(task, connection, MagicMock(), MagicMock(), MagicMock(), MagicMock())
    action._execute_module = MagicMock(return_value=dict(module_result, invocation={}))
    loader = MagicMock()
    loader.action_loader.get.side_effect = facts
    action._shared_loader_obj = loader
    return action


def scheduled(rungs=None):
    return {"changed": True, "rungs": rungs or {"reset_token_broker": RESET_TB}, "run": list(rungs or ["reset_token_broker"]),
            "failed_rung": None, "restart": {"reboot_required": True, "scheduled": True, "rebooted": False,
                                             "boot_time_before": BOOT_1, "pre_reboot_delay": 2,
                                             "reasons": ["reset_token_broker: returned reboot_required"]}}


def test_rungs_go_in_ladder_order_and_the_controller_options_stay_on_the_controller():
    facts = facts_answers(diagnosis(BOOT_2))
    action = make_action({"rungs": ["reset_token_broker", "purge_office_credentials"], "reboot_timeout": "180",
                          "verify": {"users": ["alice"]}}, scheduled(), facts)
    result = action.run(task_vars={})
    sent = action._execute_module.call_args.kwargs["module_args"]
    assert sent["rungs"] == ["purge_office_credentials", "reset_token_broker"]
    assert not set(sent) & {"reboot_timeout", "post_reboot_delay", "connect_timeout", "verify"}
    # The verification is win_activation_facts with the verify options, clearing the marker.
    assert facts.calls == [{"users": ["alice"], "clear_satisfied_marker": True}]
    assert result["restart"]["rebooted"] is True and result["restart"]["boot_time_after"] == BOOT_2
    assert result["restart"]["cleared"] == ["win_token_broker_cache"]
    assert result["rediagnosis"]["host_facts"]["last_boot"] == BOOT_2


def test_waits_until_the_diagnose_shows_a_later_boot_with_win_reboots_backoff(no_sleep):
    # Still up on the old boot, then down (connection refused), then back restarted.
    facts = facts_answers(diagnosis(BOOT_1), AnsibleConnectionFailure("connection refused"), diagnosis(BOOT_2))
    action = make_action({"rungs": ["reset_token_broker"]}, scheduled(), facts)
    result = action.run(task_vars={})
    assert len(facts.calls) == 3
    assert result["restart"]["rebooted"] is True and not result["restart"].get("failed")
    assert result["rediagnosis"]["host_facts"]["last_boot"] == BOOT_2
    # First the restart's own delay plus a second, then ansible.windows' exponential backoff.
    assert no_sleep[0] == 3
    assert 1 <= no_sleep[1] < 2 and 2 <= no_sleep[2] < 3
    # A connection error resets the connection before the next try, as win_reboot does.
    assert action._connection.reset.called


def test_a_host_that_never_shows_a_later_boot_fails_the_restart_and_keeps_no_diagnosis():
    facts = facts_answers(diagnosis(BOOT_1))
    action = make_action({"rungs": ["reset_token_broker"], "reboot_timeout": 0}, scheduled(), facts)
    result = action.run(task_vars={})
    restart = result["restart"]
    assert restart["failed"] is True and restart["rebooted"] is False
    assert restart["msg"].startswith("the host did not come back restarted: Timed out waiting for post-reboot verification")
    assert "rediagnosis" not in result


def test_without_a_restart_the_verification_runs_once_right_after_the_rungs(no_sleep):
    facts = facts_answers(diagnosis(BOOT_1))
    module = {"changed": True, "rungs": {"purge_office_credentials": {"changed": True, "users": []}},
              "run": ["purge_office_credentials"], "failed_rung": None,
              "restart": {"reboot_required": False, "scheduled": False, "rebooted": False, "msg": "no reboot needed"}}
    result = make_action({"rungs": ["purge_office_credentials"]}, module, facts).run(task_vars={})
    assert len(facts.calls) == 1 and no_sleep == []
    assert result["rediagnosis"]["host_facts"]["last_boot"] == BOOT_1
    assert result["restart"]["rebooted"] is False


def test_check_mode_and_an_empty_ladder_diagnose_nothing():
    facts = facts_answers(diagnosis(BOOT_1))
    result = make_action({"rungs": ["reset_token_broker"]}, scheduled(), facts, check_mode=True).run(task_vars={})
    assert facts.calls == [] and "rediagnosis" not in result


@pytest.mark.parametrize("args, message", [
    ({"rungs": ["format_disk"]}, "rungs: unknown rung format_disk"),
    ({"rungs": "purge_office_credentials"}, "rungs: expected a list of rung names"),
    ({"rungs": [], "reboot_timeout": "soon"}, "reboot_timeout: expected a number of seconds"),
    ({"rungs": [], "connect_timeout": -1}, "connect_timeout: expected a number of seconds"),
    ({"rungs": [], "verify": ["alice"]}, "verify: expected the options of win_activation_facts"),
])
def test_bad_input_fails_naming_the_option_before_the_host_is_reached(args, message):
    action = make_action(args, scheduled(), facts_answers(diagnosis(BOOT_2)))
    with pytest.raises(AnsibleActionFail, match=message):
        action.run(task_vars={})
    action._execute_module.assert_not_called()


def test_boot_instant_reads_the_boot_times_of_facts_and_of_the_repair():
    assert reboot_action.boot_instant(BOOT_2) > reboot_action.boot_instant(BOOT_1)
    assert reboot_action.boot_instant("2026-11-26T09:15:30.000000Z") == reboot_action.boot_instant("2026-11-26T09:15:30Z")
    assert reboot_action.boot_instant(None) is None and reboot_action.boot_instant("yesterday") is None


class WinrmLike:
    """ansible-core's winrm plugin as RebootWait sees it: connection_timeout becomes pywinrm's
    operation timeout (read: ten seconds more) when the shell is opened; close and reset drop it."""
    transport = "winrm"

    def __init__(self, connection_timeout=None):
        self.options = {"connection_timeout": connection_timeout, "_extras": {}}
        self.protocol = None
        self.shells_opened = 0
        self._shell = SimpleNamespace(tmpdir=None)

    def get_option(self, name):
        return self.options[name]

    def set_option(self, name, value):
        self.options[name] = value

    def _connect(self):
        if self.protocol is None:
            timeout = self.options["connection_timeout"]
            kwargs = {"operation_timeout_sec": timeout, "read_timeout_sec": timeout + 10} if timeout else {}
            self.protocol = Protocol("http://pc042.contoso.test:5985/wsman", transport="ntlm", username="u",
                                     password="p", **kwargs)
            self.shells_opened += 1

    def close(self):
        self.protocol = None

    def reset(self):
        self.protocol = None


@pytest.mark.parametrize("original", [None, 60])
def test_the_verification_after_the_restart_waits_with_the_connections_own_timeouts(original):
    # Reconnecting uses connect_timeout (5 s); the diagnose itself must not: under it, every
    # 5 s of module time costs one more WS-Man Receive.
    connection = WinrmLike(original)
    seen = []

    def facts(name, task=None, **kwargs):
        action = MagicMock()

        def run(task_vars=None):
            protocol = connection.protocol
            seen.append((protocol.operation_timeout_sec, protocol.transport.read_timeout_sec))
            return diagnosis(BOOT_2)
        action.run.side_effect = run
        return action

    action = make_action({"rungs": ["reset_token_broker"]}, scheduled(), facts)
    action._connection = connection
    result = action.run(task_vars={})
    assert result["restart"]["rebooted"] is True
    assert seen == [(60, 70)] if original else seen == [(20, 30)]
    # The shell opened under connect_timeout is the one the diagnose ran in, and is kept.
    assert connection.shells_opened == 1 and connection.protocol is not None
    assert connection.get_option("connection_timeout") == original
