# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preflight action: the variables and the target of a run, before any host is contacted.
ansible-playbook runs of it: tests/playbooks/test_run_rails.py."""

from __future__ import annotations

from unittest.mock import MagicMock

import pytest

from ansible import context
from ansible.errors import AnsibleActionFail
from ansible.parsing.dataloader import DataLoader
from ansible.utils.context_objects import CLIArgs
from ansible.utils.vars import load_extra_vars

from ansible_collections.m365ops.activation.plugins.action.preflight import ActionModule

GROUPS = {"all": ["PC042", "PC043", "PC099"], "ungrouped": [], "m365_clients": ["PC042", "PC043"], "others": ["PC099"]}


def action(args):
    task = MagicMock()
    task.args = args
    task.check_mode = False
    task.async_val = 0
    task.action = "m365ops.activation.preflight"
    connection = MagicMock()
    connection._shell.tmpdir = None
    return ActionModule(task, connection, MagicMock(), DataLoader(), MagicMock(), MagicMock())


def task_vars(limit=None, hostvars=None, **more):
    found = {"groups": GROUPS, "inventory_hostname": "localhost", "ansible_inventory_sources": ["/srv/inventory.yml"],
             "hostvars": hostvars or {host: {"ansible_host": "10.0.0.1"} for host in GROUPS["all"] + ["localhost"]}}
    if limit:
        found["ansible_limit"] = limit
    found.update(more)
    return found


@pytest.fixture(autouse=True)
def extra_vars(monkeypatch):
    """-e as ansible-playbook's command line leaves it in the CLI arguments."""
    def given(*pairs):
        monkeypatch.setattr(context, "CLIARGS", CLIArgs({"extra_vars": tuple(pairs)}))
        # ansible-core parses them once per process and keeps them on the function.
        monkeypatch.setattr(load_extra_vars, "extra_vars", None, raising=False)
    given()
    return given


@pytest.mark.parametrize("target, limit, hosts", [
    ("m365_clients", None, ["PC042", "PC043"]),
    ("PC042", None, ["PC042"]),
    ("PC04*", None, ["PC042", "PC043"]),
    ("m365_clients:!PC043", None, ["PC042"]),
    (["PC042", "PC099"], None, ["PC042", "PC099"]),
    ("m365_clients", "PC043", ["PC043"]),
])
def test_the_target_selects_what_the_play_would(target, limit, hosts):
    result = action({"target": target}).run(task_vars=task_vars(limit))
    assert not result.get("failed") and result["hosts"] == hosts


@pytest.mark.parametrize("target, limit, said", [
    ("NO-SUCH-HOST", None, "target 'NO-SUCH-HOST' matches no host of the inventory (/srv/inventory.yml)"),
    ("PC042", "PC043", "target 'PC042' with --limit 'PC043' matches no host"),
    ("windows_clients", None, "its groups: m365_clients, others"),
])
def test_a_target_that_matches_no_host_fails(target, limit, said):
    result = action({"target": target}).run(task_vars=task_vars(limit))
    assert result["failed"] is True and result["hosts"] == []
    assert said in result["msg"] and "No host was contacted" in result["msg"]


def test_no_match_reads_the_same_when_ansible_cfg_makes_a_mismatch_an_error(monkeypatch):
    from ansible import constants
    monkeypatch.setattr(constants, "HOST_PATTERN_MISMATCH", "error")
    result = action({"target": "NO-SUCH-HOST"}).run(task_vars=task_vars())
    assert result["failed"] is True and "target 'NO-SUCH-HOST' matches no host of the inventory" in result["msg"]


def test_an_empty_target_is_refused_naming_the_option():
    with pytest.raises(AnsibleActionFail, match="target: empty"):
        action({"target": " "}).run(task_vars=task_vars())


def test_candidates_are_matched_by_name_and_by_inventory_group():
    """The tenant check picks hosts of a diagnose report: names the inventory has match with
    their groups, others by name and wildcard; --limit (for another play) does not apply."""
    candidates = ["PC042", "PC043", "LT-CLOUD-21"]
    run = action({"target": "m365_clients", "candidates": candidates}).run(task_vars=task_vars("PC099"))
    assert run["hosts"] == ["PC042", "PC043"]
    assert action({"target": "LT-*", "candidates": candidates}).run(task_vars=task_vars())["hosts"] == ["LT-CLOUD-21"]
    missed = action({"target": "PC099", "candidates": candidates, "candidates_from": "the diagnose report"}).run(
        task_vars=task_vars())
    assert missed["failed"] is True
    assert missed["msg"] == ("target 'PC099' matches none of the 3 host(s) of the diagnose report "
                             "(LT-CLOUD-21, PC042, PC043). Nothing was checked.")


def test_unknown_extra_and_inventory_variables_fail_naming_the_closest(extra_vars):
    extra_vars("remediate_rebot=false", "target=PC042")
    hostvars = {"PC042": {"remediate_rebot": False, "target": "PC042", "remediate_max_rungs": 2},
                "PC043": {"remediate_rebot": False, "target": "PC042"}}
    result = action({"prefixes": ["remediate_", "survey_"], "target": "m365_clients"}).run(
        task_vars=task_vars(hostvars=hostvars))
    assert result["failed"] is True
    assert result["unknown"] == [
        {"name": "remediate_max_rungs", "source": "inventory: PC042", "closest": "remediate_max_rung"},
        {"name": "remediate_rebot", "source": "extra vars", "closest": "remediate_reboot"},
    ]
    assert result["msg"].startswith("Unknown variables remediate_max_rungs (inventory: PC042; did you mean "
                                    "remediate_max_rung?), remediate_rebot (extra vars; did you mean remediate_reboot?)")


def test_known_variables_and_other_prefixes_pass(extra_vars):
    extra_vars("remediate_reboot=false", "remediate_serial=10%", "diagnose_evets_days=3")
    hostvars = {"PC042": {"remediate_allow_rejoin_hybrid": True, "diagnose_users": ["alice"]}}
    result = action({"prefixes": ["remediate_", "survey_"], "target": "PC042"}).run(
        task_vars=task_vars(hostvars=hostvars))
    assert not result.get("failed") and result["unknown"] == [] and result["hosts"] == ["PC042"]


def test_survey_answers_the_running_play_reads_are_known(extra_vars):
    """An AWX project playbook maps survey answers in the imported play's vars: those it
    reads are known, a misspelled answer is not."""
    extra_vars("survey_reboot=false", "survey_rebot=false")
    play_vars = {"remediate_reboot": "{{ survey_reboot | default('true') | bool }}"}
    result = action({"prefixes": ["remediate_", "survey_"]}).run(task_vars=task_vars(**play_vars))
    assert result["unknown"] == [{"name": "survey_rebot", "source": "extra vars", "closest": "survey_reboot"}]
    # Without the project playbook nothing reads a survey answer.
    result = action({"prefixes": ["remediate_", "survey_"]}).run(task_vars=task_vars())
    assert [u["name"] for u in result["unknown"]] == ["survey_reboot", "survey_rebot"]


def test_without_a_target_the_running_host_s_inventory_is_checked(extra_vars):
    hostvars = {"localhost": {"tenant_check_user": ["alice@contoso.com"]}, "PC042": {"tenant_x": 1}}
    result = action({"prefixes": ["tenant_", "survey_"]}).run(task_vars=task_vars(hostvars=hostvars))
    assert result["unknown"] == [{"name": "tenant_check_user", "source": "inventory: localhost",
                                  "closest": "tenant_check_users"}]
