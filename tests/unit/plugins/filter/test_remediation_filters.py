# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.m365ops.activation.plugins.filter.remediation import FilterModule

FILTERS = FilterModule().filters()


def test_every_documented_filter_is_exported():
    assert set(FILTERS) == {"remediate_select", "remediate_entry", "remediate_collect", "remediate_summary",
                            "remediate_reboot_requests", "remediate_token_broker_targets", "remediate_skip",
                            "remediate_repair_outcome"}


def test_repair_outcome_filter_reads_a_registered_repair_result():
    out = FILTERS["remediate_repair_outcome"]({"rungs": {"purge_office_credentials": {"changed": True}},
                                               "failed_rung": "purge_office_credentials", "msg": "purge_office_credentials: x",
                                               "restart": {"reboot_required": False}})
    assert out["rung_results"]["purge_office_credentials"] == {"changed": True}
    assert out["failure"] == "purge_office_credentials: x"
    assert FILTERS["remediate_repair_outcome"]({"skipped": True})["rung_results"]["reset_token_broker"] == {}


def test_select_windows_pending_keeps_the_reboot_step_for_a_healthy_host():
    assert FILTERS["remediate_select"]([], windows_pending=True)["restart_after"] is True
    assert FILTERS["remediate_select"]([])["restart_after"] is False
    with pytest.raises(AnsibleFilterError, match="windows_pending"):
        FILTERS["remediate_select"]([], windows_pending="yes")


def test_token_broker_targets_turns_bad_variables_into_filter_errors():
    with pytest.raises(AnsibleFilterError, match="remediate_token_broker_all_profiles"):
        FILTERS["remediate_token_broker_targets"]({"findings": []}, {}, [], "yes")
    t = FILTERS["remediate_token_broker_targets"]({"findings": []}, {"users": [{"sid": "S-1-5-21-1-2-3-1104", "status": "ok"}]}, [], False)
    assert t["users"] == ["S-1-5-21-1-2-3-1104"]


def test_select_turns_bad_variables_into_filter_errors():
    with pytest.raises(AnsibleFilterError, match="remediate_max_rung"):
        FILTERS["remediate_select"](["reset_token_broker"], 9)
    assert FILTERS["remediate_select"](["reset_token_broker"], 5, [], False)["run"] == ["reset_token_broker"]


def test_collect_reads_entries_from_hostvars_and_summary_counts_them():
    entry = FILTERS["remediate_entry"]({"findings": [], "plan": []}, {"findings": [], "plan": []},
                                       FILTERS["remediate_select"]([]), {}, {}, "", False)
    hostvars = {"PC1": {"_remediate_entry": entry}, "PC2": {"_remediate_entry": {}}, "PC3": {}}
    hosts = FILTERS["remediate_collect"](["PC1", "PC2", "PC3"], hostvars, ["PC1", "PC3"])
    assert hosts["PC1"]["outcome"] == "unchanged"
    assert "error" in hosts["PC2"]  # failed before its entry was recorded
    assert "PC3" not in hosts  # still active: a later batch
    summary = FILTERS["remediate_summary"](hosts)
    assert summary["hosts"] == 2 and summary["errors"] == 1 and summary["outcomes"]["unchanged"] == 1


def test_empty_failure_text_means_no_failure():
    entry = FILTERS["remediate_entry"]({"findings": [], "plan": []}, {"findings": [], "plan": []}, None, None, None, "")
    assert entry["outcome"] == "unchanged" and "error" not in entry


def test_reboot_requests_names_marker_sources():
    results = {"reset_token_broker": {"changed": True, "reboot_required": True},
               "rejoin_hybrid": {"changed": True, "reboot_required": True},
               "purge_office_credentials": {"changed": True, "reboot_required": False}}
    assert FILTERS["remediate_reboot_requests"](results) == ["win_token_broker_cache", "win_dsreg_join"]


def test_select_passes_the_pending_restart_through_positionally():
    # The role calls remediate_select(max, disabled, opt_in, reboot_blocked) positionally.
    sel = FILTERS["remediate_select"](["purge_office_credentials", "reset_token_broker"], 5, [], False, True)
    assert sel["run"] == ["purge_office_credentials"]
    assert sel["skipped"][0]["rung"] == "reset_token_broker"
    with pytest.raises(AnsibleFilterError, match="reboot_blocked"):
        FILTERS["remediate_select"](["reset_token_broker"], 5, [], False, "true")


def test_entry_takes_the_first_restart_as_last_positional():
    healthy = {"findings": [], "plan": []}
    skipped = {"skipped": True, "changed": False}
    entry = FILTERS["remediate_entry"](healthy, healthy, FILTERS["remediate_select"]([]), {}, skipped, "", False,
                                       {"rebooted": True, "reboot_required": True})
    assert entry["restarted_first"] is True and entry["rebooted"] is True and entry["reboot_pending"] is False
