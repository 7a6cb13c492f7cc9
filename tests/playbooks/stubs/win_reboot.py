# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stub of ansible.windows.win_reboot for the playbook tests: the fake host "restarts"
(its state file gets a new boot time) instead of anything being shut down.

Placed as ``plugins/action/win_reboot.py`` of the throwaway ansible.windows collection
the remediate flow test puts first (and alone) on the collections path, so
win_reboot_if_needed's delegation (plugin_utils/reboot_action.py) lands here.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.m365ops.activation.plugins.module_utils.fake_host import FakeHost

# The options of the real action (ansible.windows 3.3.0 win_reboot); anything else is a bug
# of the caller.
_OPTIONS = frozenset(("boot_time_command", "connect_timeout", "msg", "post_reboot_delay", "pre_reboot_delay",
                      "reboot_timeout", "test_command"))


class ActionModule(ActionBase):
    _VALID_ARGS = _OPTIONS

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        if self._task.check_mode:
            raise AnsibleActionFail("stub win_reboot: asked to restart in check mode")
        path = task_vars.get("m365ops_fake_state")
        if not path:
            raise AnsibleActionFail("stub win_reboot: the host has no m365ops_fake_state variable")
        host = FakeHost(path)
        host.reboot(dict(self._task.args))
        result.update({"changed": True, "rebooted": True, "elapsed": 0, "unreachable": False})
        return result
