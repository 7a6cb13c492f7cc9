# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart a Windows host only when the collection's pending-reboot marker (or, if
asked, Windows' own pending-reboot signals) say so, then clear the marker."""

from __future__ import annotations

from ansible_collections.m365ops.activation.plugins.plugin_utils.reboot_action import RebootCapableAction, boot_time_error

STATE_MODULE = "m365ops.activation.win_reboot_state"


def _requested_reasons(args, exclude=()):
    return ["%s: returned reboot_required" % name for name in sorted(set(args["requested_by"])) if name not in exclude]


class ActionModule(RebootCapableAction):

    ARGUMENT_SPEC = {
        "include_windows_pending": {"type": "bool", "default": False},
        "requested_by": {"type": "list", "elements": "str", "default": []},
    }

    def _state_module(self, args):
        return STATE_MODULE, {"include_windows_pending": args["include_windows_pending"]}

    def _reboot_reasons(self, state, args):
        if state is None:
            # Known before reading the host: the steps of this play that asked for a restart.
            return _requested_reasons(args)
        marker = state.get("marker") or {}
        satisfied = set(state.get("satisfied") or [])
        reasons = ["%s: %s" % (source, marker[source]) for source in sorted(marker) if source not in satisfied]
        if args["include_windows_pending"]:
            reasons.extend("Windows: %s" % reason for reason in state.get("windows_reasons") or [])
        # Steps of this play that returned reboot_required. In check mode they wrote no
        # marker, and this is how a dry run still says it would restart.
        reasons.extend(_requested_reasons(args, exclude=marker))
        return reasons

    def _without_reboot(self, state, args, task_vars):
        # The host restarted (a user, an update) after the request was written but before
        # this step ran: nothing left to restart for, only the marker to tidy up.
        satisfied = sorted(state.get("satisfied") or [])
        if not satisfied:
            return {}
        if self._task.check_mode:
            return {"changed": True, "msg": "no reboot needed; would clear what an earlier restart satisfied: %s"
                    % ", ".join(satisfied)}
        after = self._execute_module(module_name=STATE_MODULE, task_vars=task_vars, module_args={
            "include_windows_pending": args["include_windows_pending"], "clear_satisfied": True})
        after.pop("invocation", None)
        if after.get("failed"):
            return {"failed": True, "msg": "clearing the satisfied marker failed: %s" % after.get("msg", "no message")}
        return {"changed": bool(after.get("changed")), "after": after,
                "msg": "no reboot needed; cleared what an earlier restart satisfied: %s" % ", ".join(after.get("cleared") or [])}

    def _after_reboot(self, state, args, task_vars):
        # One round trip reads the new boot time and clears what the restart satisfied:
        # the sources seen before it (if the boot time moved) and any source written
        # before the new boot (when the first read was skipped, and leftovers of a run
        # that died). A host that never restarted keeps its marker for the next run.
        module_args = {
            "include_windows_pending": args["include_windows_pending"],
            "clear_sources": sorted(state.get("marker") or {}),
            "clear_satisfied": True,
        }
        if module_args["clear_sources"]:
            module_args["boot_time_before"] = state.get("boot_time")
        after = self._execute_module(module_name=STATE_MODULE, module_args=module_args, task_vars=task_vars)
        error = boot_time_error(state, after)
        late = sorted(set(args["requested_by"]) & set(after.get("kept") or []))
        if not error and late:
            # Their marker is newer than the current boot: the restart did not happen.
            error = "the host did not restart after %s asked for it (boot time %s); the marker is kept" % (
                ", ".join(late), after.get("boot_time"))
        return after, error

    def _finish(self, result, args):
        state = result.pop("state", None) or {}
        after = result.pop("after", None) or {}
        result["marker"] = state.get("marker") or {}
        result["windows_reasons"] = state.get("windows_reasons") or []
        result["boot_time_before"] = state.get("boot_time")
        result["boot_time_after"] = after.get("boot_time")
        result["cleared"] = after.get("cleared") or []
        if result.get("rebooted") and args["include_windows_pending"] and after.get("windows_reasons"):
            # Some updates need a second restart; one restart per run keeps a run bounded.
            result.setdefault("warnings", []).append(
                "Windows still reports a pending reboot after the restart: %s; the next run restarts again"
                % "; ".join(after["windows_reasons"]))
        return result
