# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the remediate role decides with; the decisions live in plugin_utils/remediation.py."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.m365ops.activation.plugins.plugin_utils import remediation


def remediate_select(plan, max_rung=None, disabled=None, allow_rejoin_hybrid=False, reboot_blocked=False,
                     marker_pending=False, reboot_allowed=True, restarted_first=False, failed=None, held=None,
                     windows_pending=False):
    """Which planned rungs run, and the restarts around them: ``plan | m365ops.activation.remediate_select(...)``."""
    try:
        return remediation.select_rungs(plan, max_rung=max_rung, disabled=disabled,
                                        allow_rejoin_hybrid=allow_rejoin_hybrid, reboot_blocked=reboot_blocked,
                                        marker_pending=marker_pending, reboot_allowed=reboot_allowed,
                                        restarted_first=restarted_first, failed=failed or None, held=held,
                                        windows_pending=windows_pending)
    except ValueError as e:
        raise AnsibleFilterError(str(e)) from e


def remediate_token_broker_targets(diagnosis, host_facts=None, users=None, all_profiles=False):
    """Whom rung 3 works on: ``diagnosis | remediate_token_broker_targets(host_facts, users, all)``."""
    try:
        return remediation.token_broker_targets(diagnosis, host_facts=host_facts, users=users,
                                                all_profiles=all_profiles)
    except ValueError as e:
        raise AnsibleFilterError(str(e)) from e


def remediate_skip(selection, rung, reason=None):
    """``selection`` with ``rung`` moved to ``skipped`` when ``reason`` is set."""
    return remediation.skip_rung(selection, rung, reason)


def remediate_entry(before, after=None, selection=None, rung_results=None, reboot=None, failed=None,
                    check_mode=False, restart_first=None, rediagnosis=None, current=None):
    """One host's report entry with its outcome. Without ``after``, the diagnosis after the repair is
    ``rediagnosis`` (the registered re-diagnosis) or ``current`` (remediation.after_of)."""
    if after is None and (rediagnosis is not None or current is not None):
        after = remediation.after_of(rediagnosis, current, failed=failed or None, check_mode=check_mode)
    return remediation.build_host_entry(before, after, selection, rung_results=rung_results, reboot=reboot,
                                        failed=failed or None, check_mode=check_mode,
                                        restart_first=restart_first)


def remediate_collect(all_hosts, hostvars, active_hosts, var_name="_remediate_entry"):
    """The report's hosts: ``ansible_play_hosts_all | remediate_collect(hostvars, ansible_play_hosts)``."""
    entries = {}
    for host in all_hosts or []:
        host_vars = hostvars[host] if host in hostvars else {}
        entries[host] = host_vars.get(var_name)
    return remediation.collect_entries(all_hosts, entries, active_hosts)


def remediate_reboot_requests(rung_results):
    """Rungs that returned reboot_required: ``_rung_results | remediate_reboot_requests``."""
    return remediation.reboot_requests(rung_results)


def remediate_repair_outcome(result):
    """The rung results, failure, restart and re-diagnosis of one registered
    win_activation_repair result (remediation.repair_outcome)."""
    return remediation.repair_outcome(result)


def remediate_summary(entries):
    """Fleet counts per outcome and per rung (AWX job artifacts)."""
    return remediation.summarise_fleet(entries)


class FilterModule:
    def filters(self):
        return {
            "remediate_select": remediate_select,
            "remediate_token_broker_targets": remediate_token_broker_targets,
            "remediate_skip": remediate_skip,
            "remediate_entry": remediate_entry,
            "remediate_collect": remediate_collect,
            "remediate_summary": remediate_summary,
            "remediate_reboot_requests": remediate_reboot_requests,
            "remediate_repair_outcome": remediate_repair_outcome,
        }
