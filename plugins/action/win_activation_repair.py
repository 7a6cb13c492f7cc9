# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the selected rungs in one module execution; when that execution scheduled the
restart, wait for the host with win_reboot's timeouts and backoff and make the first
execution after it the verification diagnose (win_activation_facts), whose ``last_boot``
proves the restart happened and which clears the marker the restart satisfied."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.validation import check_type_int
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.m365ops.activation.plugins.plugin_utils.ladder import HOST_RUNGS
from ansible_collections.m365ops.activation.plugins.plugin_utils.reboot_action import RebootWait, boot_instant

display = Display()

MODULE = "m365ops.activation.win_activation_repair"
FACTS_ACTION = "m365ops.activation.win_activation_facts"
# Used here, not by the module: waiting for the restart and the verification diagnose.
CONTROLLER_OPTIONS = ("reboot_timeout", "post_reboot_delay", "connect_timeout", "verify")


def ladder_order(rungs):
    """The rungs in ladder order (plugin_utils/ladder.py), whatever order they were given in."""
    if not isinstance(rungs, list) or not all(isinstance(r, str) for r in rungs):
        raise AnsibleActionFail("rungs: expected a list of rung names, got %r" % (rungs,))
    unknown = [r for r in rungs if r not in HOST_RUNGS]
    if unknown:
        raise AnsibleActionFail("rungs: unknown rung %s; expected any of %s" % (", ".join(unknown), ", ".join(HOST_RUNGS)))
    return [r for r in HOST_RUNGS if r in rungs]


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = False

    def _facts_action(self, verify):
        task = self._task.copy(exclude_parent=True, exclude_tasks=True)
        task.args = dict(verify)
        task.args["clear_satisfied_marker"] = True
        action = self._shared_loader_obj.action_loader.get(
            FACTS_ACTION, task=task, connection=self._connection, play_context=self._play_context,
            loader=self._loader, templar=self._templar, shared_loader_obj=self._shared_loader_obj)
        if action is None:
            raise AnsibleActionFail("%s: the action plugin of %s is missing" % (MODULE, FACTS_ACTION))
        return action

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        args = dict(self._task.args)
        controller = {name: args.pop(name) for name in CONTROLLER_OPTIONS if name in args}
        verify = controller.get("verify")
        if verify is None:
            verify = {}
        if not isinstance(verify, dict):
            raise AnsibleActionFail("verify: expected the options of win_activation_facts as a mapping, got %r" % (verify,))
        for name in ("reboot_timeout", "post_reboot_delay", "connect_timeout"):
            if controller.get(name) is None:
                continue
            # Extra vars and survey answers arrive as text: the module's int type, as Ansible converts it.
            try:
                value = check_type_int(controller[name])
            except TypeError:
                value = -1
            if isinstance(controller[name], bool) or value < 0:
                raise AnsibleActionFail("%s: expected a number of seconds (0 or more), got %r" % (name, controller[name]))
            controller[name] = value
        args["rungs"] = ladder_order(args.get("rungs"))

        repair = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
        repair.pop("invocation", None)
        result.update(repair)
        restart = dict(repair.get("restart") or {})
        result["restart"] = restart
        # Nothing ran, or a dry run: there is no "after" to read.
        if self._task.check_mode or not repair.get("rungs"):
            return result

        waiter = None
        if restart.get("scheduled"):
            waiter = RebootWait(self._task.action, self._connection,
                                reboot_timeout=controller.get("reboot_timeout", 600),
                                connect_timeout=controller.get("connect_timeout", 5),
                                pre_reboot_delay=restart.get("pre_reboot_delay") or 0,
                                post_reboot_delay=controller.get("post_reboot_delay", 0))
        facts = self._facts_action(verify)
        before = boot_instant(restart.get("boot_time_before"))

        def verified():
            answer = facts.run(task_vars=task_vars)
            if answer.get("unreachable"):
                raise ConnectionError(answer.get("msg") or "unreachable")
            if answer.get("failed"):
                raise RuntimeError("win_activation_facts failed: %s" % answer.get("msg", "no message"))
            last_boot = boot_instant((answer.get("host_facts") or {}).get("last_boot"))
            if waiter is not None and before is not None and (last_boot is None or last_boot <= before):
                raise waiter.not_yet("boot time %s is not after %s" % (last_boot, before))
            return answer

        if waiter is None:
            rediagnosis = self._without_restart(verified)
        else:
            rediagnosis, error = waiter.wait(verified)
            restart["elapsed"] = waiter.elapsed
            if error:
                restart.update({"failed": True, "rebooted": False,
                                "msg": "the host did not come back restarted: %s; the marker is kept, the next run "
                                       "restarts it first" % error})
                return result
            restart["rebooted"] = True
            restart["changed"] = True
            restart["boot_time_after"] = (rediagnosis.get("host_facts") or {}).get("last_boot")
            restart["cleared"] = ((rediagnosis.get("host_facts") or {}).get("pending_reboot") or {}).get("cleared") or []
            restart["msg"] = "rebooted: " + "; ".join(restart.get("reasons") or [])
        if rediagnosis is not None:
            rediagnosis.pop("invocation", None)
            result["rediagnosis"] = rediagnosis
        return result

    @staticmethod
    def _without_restart(verified):
        """The verification diagnose when no restart was scheduled: once, as the role's
        own diagnose after the rungs would run; a failure is recorded, not retried."""
        try:
            return verified()
        except Exception as e:  # pylint: disable=broad-except
            return {"failed": True, "msg": str(e)}
