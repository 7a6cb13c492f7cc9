# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugins that may restart a Windows host.

The idea is microsoft.ad's ``ActionModuleWithReboot`` (run a module, reboot when its
result asks for it, let subclasses override small hooks); the shape is our own: the
state is read by a host module, the restart itself is delegated to
``ansible.windows.win_reboot``'s action plugin through Ansible's plugin loader (so its
reconnect logic after the connection drops is used as is, never copied), and the
host is asked again afterwards so a restart that did not happen is caught.

Hooks a subclass implements (win_reboot_if_needed is the one user; each hook is there
because it needs it):

``_state_module(args)``                   the module and arguments that read the host's state
``_reboot_reasons(state, args)``          why a restart is due; ``state`` is ``None`` when asked
                                          before any read (reasons the play already knows: the
                                          read is then skipped); empty list = no restart
``_without_reboot(state, args, vars)``    result keys when no restart is needed (tidy a marker)
``_after_reboot(state, args, vars)``      once the host is back: ``(after, error)``, error being
                                          why it did not really restart (``boot_time_error``)
``_finish(result, args)``                 last shaping of the result
"""

from __future__ import annotations

import contextlib
import datetime
import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

try:
    # win_reboot's own wait: exponential backoff (max 12 s, with jitter), a connection reset
    # after each connection error, the connect timeout while polling.
    from ansible_collections.ansible.windows.plugins.plugin_utils._reboot import (
        _do_until_success_or_timeout, _reset_connection, _set_connection_timeout, _TestCommandFailure,
    )
except ImportError:  # pragma: no cover - ansible.windows missing; RebootWait says so when used
    _do_until_success_or_timeout = None

display = Display()

REBOOT_ACTION = "ansible.windows.win_reboot"

# Options passed through to ansible.windows.win_reboot unchanged.
REBOOT_ARGUMENT_SPEC = {
    "reboot": {"type": "bool", "default": True},
    "reboot_timeout": {"type": "int", "default": 600},
    "pre_reboot_delay": {"type": "int", "default": 2},
    "post_reboot_delay": {"type": "int", "default": 0},
    "connect_timeout": {"type": "int", "default": 5},
    "test_command": {"type": "str"},
    "msg": {"type": "str"},
}
_PASS_THROUGH = ("reboot_timeout", "pre_reboot_delay", "post_reboot_delay", "connect_timeout", "test_command")

# shutdown.exe /c accepts at most 512 characters.
_MAX_REBOOT_MESSAGE = 500


def boot_time_error(state, after):
    """Why the host did not really restart, judged by the state read after it (``None``
    when it did): the read failed, or the boot time did not change."""
    if after.get("failed"):
        return "the host came back but reading its state failed: %s" % after.get("msg", "no message")
    before_boot, after_boot = state.get("boot_time"), after.get("boot_time")
    if before_boot and before_boot == after_boot:
        return "the boot time did not change (%s): the host did not restart" % before_boot
    return None


def boot_instant(text):
    """A boot time as an aware UTC datetime, whole seconds (``2026-12-04T09:15:02Z`` as
    win_activation_facts' ``last_boot`` and win_activation_repair's ``boot_time_before``
    give it); ``None`` for anything else."""
    if not isinstance(text, str):
        return None
    try:
        value = datetime.datetime.strptime(text.strip()[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    return value.replace(tzinfo=datetime.timezone.utc)


def _configured_timeouts(connection, protocol, connection_timeout):
    """The operation and read timeouts the winrm plugin builds its protocol with:
    connection_timeout and ten seconds more; without it the host's
    ``ansible_winrm_operation_timeout_sec`` / ``ansible_winrm_read_timeout_sec``, each
    falling back to pywinrm's default."""
    if connection_timeout:
        return connection_timeout, connection_timeout + 10
    # pywinrm took these when the connection was first made, before the restart.
    extras = connection.get_option("_extras") or {}
    return (int(extras.get("ansible_winrm_operation_timeout_sec", type(protocol).DEFAULT_OPERATION_TIMEOUT_SEC)),
            int(extras.get("ansible_winrm_read_timeout_sec", type(protocol).DEFAULT_READ_TIMEOUT_SEC)))


@contextlib.contextmanager
def operation_timeouts(connection, connection_timeout):
    """While the body runs, an open winrm connection waits on the host with the operation
    and read timeouts it has without win_reboot's ``connect_timeout`` (those of
    ``connection_timeout``, else of the host's variables, else pywinrm's), not with the
    ``connect_timeout`` it was opened under; kept when the body returns, put back
    when it raises (the next try reconnects within ``connect_timeout``). Yields whether it
    retimed anything.

    ansible-core's winrm plugin makes connection_timeout pywinrm's WS-Man operation timeout
    too (read timeout: ten seconds more), so under win_reboot's 5 s a Receive of an
    execution that runs longer comes back empty and is sent again: a request per 5 s of
    module time. Setting the option and resetting costs a Delete and a Create of the shell;
    the open protocol's own timeouts cost nothing. Plugins whose connection_timeout is the
    TCP connect alone (psrp) have no such protocol and are left as they are.
    """
    protocol = getattr(connection, "protocol", None)
    transport = getattr(protocol, "transport", None)
    before = (getattr(protocol, "operation_timeout_sec", None), getattr(protocol, "read_timeout_sec", None))
    if getattr(connection, "transport", None) != "winrm" or not all(isinstance(v, int) for v in before) \
            or not isinstance(getattr(transport, "read_timeout_sec", None), int):
        yield False
        return
    operation, read = _configured_timeouts(connection, protocol, connection_timeout)
    protocol.operation_timeout_sec, protocol.read_timeout_sec = operation, read
    transport.read_timeout_sec = read
    try:
        yield True
    except BaseException:
        protocol.operation_timeout_sec, protocol.read_timeout_sec = before
        transport.read_timeout_sec = before[1]
        raise


class RebootWait:
    """Wait for a restart a module execution scheduled itself (shutdown /r /t
    ``pre_reboot_delay``), with ansible.windows.win_reboot's timeouts and backoff, and
    let the caller's first execution after it be its proof.

    ``wait(func)`` drops the connection (its shell ends with the host), sleeps until the
    restart has begun (``pre_reboot_delay`` plus a second, then ``post_reboot_delay``: a
    host execution started before it would be wasted), then calls ``func`` until it
    returns, within ``reboot_timeout``. Each try first reconnects with ``connect_timeout``
    on the connection; ``func`` then runs with the connection's own timeouts
    (``operation_timeout``). ``func`` raises ``not_yet(...)`` when the host answered but
    has not restarted yet (retried without a reset), anything else on a connection error
    (retried after a reset). Returns ``(value, error)``.
    """

    def __init__(self, task_action, connection, reboot_timeout=600, connect_timeout=5, pre_reboot_delay=2,
                 post_reboot_delay=0):
        if _do_until_success_or_timeout is None:
            raise AnsibleActionFail("%s needs the ansible.windows collection to wait for a restart; install it"
                                    % task_action)
        self.task_action = task_action
        self.connection = connection
        self.reboot_timeout = reboot_timeout
        self.connect_timeout = connect_timeout
        self.first_try_after = pre_reboot_delay + 1 + post_reboot_delay
        self.elapsed = 0

    @staticmethod
    def not_yet(message):
        return _TestCommandFailure(message)

    def _connection_timeout(self):
        try:
            return self.connection.get_option("connection_timeout")
        except KeyError:
            return None

    def wait(self, func):
        host_context = {"do_close_on_reset": True}
        start = time.monotonic()
        _reset_connection(self.task_action, self.connection, host_context, ignore_errors=True)
        time.sleep(self.first_try_after)
        original = self._connection_timeout()
        retimed = []

        def attempt():
            # The host answers within connect_timeout or this raises and the backoff resets.
            self.connection._connect()  # pylint: disable=protected-access
            with operation_timeouts(self.connection, original) as done:
                value = func()
            retimed.append(done)
            return value

        value, error = None, None
        try:
            if self.connect_timeout:
                _set_connection_timeout(self.task_action, self.connection, host_context, self.connect_timeout)
            value = _do_until_success_or_timeout(self.task_action, self.connection, host_context,
                                                 "post-reboot verification", self.reboot_timeout, attempt)
        except Exception as e:  # pylint: disable=broad-except
            error = str(e)
        finally:
            if retimed and retimed[-1]:
                # The open shell already has the original timeouts: the option follows, no reset.
                self.connection.set_option("connection_timeout", original)
            elif original is not None and self.connect_timeout and original != self.connect_timeout:
                # As win_reboot: an unset timeout stays as polling left it.
                try:
                    _set_connection_timeout(self.task_action, self.connection, host_context, original)
                except Exception:  # pylint: disable=broad-except  # best effort, as win_reboot
                    display.vvvv("%s: could not restore connection_timeout %s" % (self.task_action, original))
        self.elapsed = int(time.monotonic() - start)
        return value, error


class RebootCapableAction(ActionBase):
    """Read state on the host, restart it when a hook says so, check it really restarted."""

    # Extra options of the subclass, merged with REBOOT_ARGUMENT_SPEC.
    ARGUMENT_SPEC: dict = {}

    _supports_check_mode = True
    _supports_async = False

    def _state_module(self, args):
        raise NotImplementedError

    def _reboot_reasons(self, state, args):
        raise NotImplementedError

    def _without_reboot(self, state, args, task_vars):
        raise NotImplementedError

    def _after_reboot(self, state, args, task_vars):
        raise NotImplementedError

    def _finish(self, result, args):
        raise NotImplementedError

    # --- machinery ---------------------------------------------------------------------

    def _reboot_message(self, reasons, args):
        message = args.get("msg") or "Restart by m365ops.activation: " + "; ".join(reasons)
        return message[:_MAX_REBOOT_MESSAGE]

    def _delegate_reboot(self, task_vars, reasons, args):
        """Restart through ansible.windows.win_reboot, as if the play had a task for it."""
        reboot_task = self._task.copy(exclude_parent=True, exclude_tasks=True)
        reboot_args = {name: args[name] for name in _PASS_THROUGH if args.get(name) is not None}
        reboot_args["msg"] = self._reboot_message(reasons, args)
        reboot_task.args = reboot_args
        action = self._shared_loader_obj.action_loader.get(
            REBOOT_ACTION,
            task=reboot_task,
            connection=self._connection,
            play_context=self._play_context,
            loader=self._loader,
            templar=self._templar,
            shared_loader_obj=self._shared_loader_obj,
        )
        if action is None:
            raise AnsibleActionFail(
                "%s needs the ansible.windows collection (%s) to restart the host; install it" % (
                    self._task.action, REBOOT_ACTION)
            )
        display.vv("%s: restarting through %s: %s" % (self._task.action, REBOOT_ACTION, "; ".join(reasons)))
        return action.run(task_vars=task_vars)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}

        spec = dict(REBOOT_ARGUMENT_SPEC)
        spec.update(self.ARGUMENT_SPEC)
        dummy, args = self.validate_argument_spec(spec)

        known = self._reboot_reasons(None, args)
        if known and args["reboot"] and not self._task.check_mode:
            # The play already knows a restart is due: one module execution fewer.
            state, reasons = {}, known
        else:
            name, module_args = self._state_module(args)
            state = self._execute_module(module_name=name, module_args=module_args, task_vars=task_vars)
            state.pop("invocation", None)
            if state.get("failed"):
                result.update(state)
                result.setdefault("msg", "%s failed" % name)
                result["rebooted"] = False
                return self._finish(result, args)
            reasons = self._reboot_reasons(state, args)
        result.update({
            "changed": bool(state.get("changed")),
            "rebooted": False,
            "reboot_required": bool(reasons),
            "reasons": reasons,
            "state": state,
        })
        if not reasons:
            result["msg"] = "no reboot needed"
            result.update(self._without_reboot(state, args, task_vars))
            return self._finish(result, args)
        if not args["reboot"]:
            result["msg"] = "reboot needed but not allowed (reboot: false): " + "; ".join(reasons)
            return self._finish(result, args)
        if self._task.check_mode:
            result["changed"] = True
            result["msg"] = "would reboot: " + "; ".join(reasons)
            return self._finish(result, args)

        reboot_result = self._delegate_reboot(task_vars, reasons, args)
        result["elapsed"] = reboot_result.get("elapsed", 0)
        if reboot_result.get("failed") or reboot_result.get("unreachable") or not reboot_result.get("rebooted"):
            # Nothing was cleared: the next run sees the same reasons and tries again.
            result.update({
                "failed": True,
                "unreachable": bool(reboot_result.get("unreachable")),
                "changed": bool(reboot_result.get("changed")),
                "rebooted": bool(reboot_result.get("rebooted")),
                "reboot_result": reboot_result,
                "msg": "reboot through %s failed: %s" % (REBOOT_ACTION, reboot_result.get("msg", "no message")),
            })
            return self._finish(result, args)

        result["changed"] = True
        result["rebooted"] = True
        after, error = self._after_reboot(state, args, task_vars)
        after.pop("invocation", None)
        result["after"] = after
        if error:
            result["failed"] = True
            result["msg"] = error
        else:
            result["msg"] = "rebooted: " + "; ".join(reasons)
        return self._finish(result, args)
