# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugin_utils/preflight.py: which variables the collection knows, and the messages."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.m365ops.activation.plugins.plugin_utils import preflight

# .../ansible_collections/m365ops/activation: the checkout under test.
COLLECTION = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(preflight.__file__))))


def _spec_options(role):
    with open(os.path.join(COLLECTION, "roles", role, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
        return set(yaml.safe_load(handle)["argument_specs"]["main"]["options"])


@pytest.fixture(scope="module")
def known():
    return preflight.collection_variables(COLLECTION)


def test_known_variables_come_from_the_roles_and_the_playbooks(known):
    for role in ("diagnose", "remediate", "tenant_check"):
        options = _spec_options(role)
        assert options and options <= known, role
    # Read by the playbooks, declared by no role: play keywords and the tenant playbook's input.
    assert {"remediate_serial", "remediate_max_fail_percentage", "diagnose_report", "target", "report_dir"} <= known
    assert "diagnose_fail_on_unreachable" in known and "tenant_check_target" in known
    assert "remediate_rebot" not in known


def test_names_read_follows_templates_and_bare_expressions():
    tree = [{"name": "x", "vars": {"users": "{{ (survey_users | default('')).splitlines() | map('trim') | list }}",
                                   "plain": "survey_plain is no template"},
             "tasks": [{"ansible.builtin.debug": {"msg": "hi"}, "when": "survey_flag | bool"}]}]
    assert preflight.names_read(tree) == {"survey_users", "survey_flag"}
    assert preflight.names_read(tree, contains="survey_users") == {"survey_users"}
    assert preflight.template_names("{{ broken") == set()


@pytest.mark.parametrize("name, expected", [
    ("remediate_rebot", "remediate_reboot"),
    ("remediate_max_rungs", "remediate_max_rung"),
    ("diagnose_event_days", "diagnose_events_days"),
    ("tenant_check_user", "tenant_check_users"),
    ("remediate_anything_else", None),
])
def test_closest_known_name_of_the_same_prefix(known, name, expected):
    assert preflight.closest(name, known, ("remediate_", "diagnose_", "tenant_", "survey_")) == expected


def test_a_survey_variable_is_not_offered_another_prefix_s_name(known):
    assert preflight.closest("survey_reboot", known, ("remediate_", "survey_")) is None
    assert preflight.closest("survey_rebot", known | {"survey_reboot"}, ("remediate_", "survey_")) == "survey_reboot"


def test_unknown_variables_say_where_they_came_from(known):
    inventory = {"PC%03d" % n: ["ansible_host", "remediate_rebot", "remediate_reboot"] for n in range(1, 6)}
    inventory["PC042"] = ["survey_users", "diagnose_users"]
    unknown = preflight.unknown_variables(["remediate_max_rungs", "survey_users", "target"], inventory, known,
                                          ("remediate_", "survey_"))
    assert unknown == [
        {"name": "remediate_max_rungs", "source": "extra vars", "closest": "remediate_max_rung"},
        {"name": "remediate_rebot", "source": "inventory: PC001, PC002, PC003 and 2 more", "closest": "remediate_reboot"},
        # An extra var seen in every host's variables is the extra var, not the inventory's.
        {"name": "survey_users", "source": "extra vars", "closest": None},
    ]


def test_unknown_message_names_each_variable_and_the_closest_known_one():
    msg = preflight.unknown_message([
        {"name": "remediate_rebot", "source": "extra vars", "closest": "remediate_reboot"},
        {"name": "survey_rebot", "source": "extra vars", "closest": None},
        {"name": "remediate_zzz", "source": "inventory: PC042", "closest": None},
    ], ("remediate_", "survey_"))
    assert msg.startswith("Unknown variables remediate_rebot (extra vars; did you mean remediate_reboot?), "
                          "survey_rebot (extra vars; nothing in this run reads it: survey answers are read by the AWX "
                          "project playbook), remediate_zzz (inventory: PC042; no role or playbook of m365ops.activation "
                          "has it). Nothing was run")
    assert "remediate_*, survey_*" in msg


def test_no_match_message_names_the_target_the_limit_and_the_inventory():
    msg = preflight.no_match_message("NO-SUCH-HOST", limit=None, sources=["/srv/inventory.yml"],
                                     groups={"all": [], "ungrouped": [], "m365_clients": ["PC042"]})
    assert msg.startswith("target 'NO-SUCH-HOST' matches no host of the inventory (/srv/inventory.yml). "
                          "No host was contacted.")
    assert "its groups: m365_clients" in msg
    assert "with --limit 'PC043'" in preflight.no_match_message("PC042", limit="PC043", sources=[], groups={})
    assert "it has no group" in preflight.no_match_message("m365_clients", sources=[], groups={"all": []})
    msg = preflight.no_match_message("PC099", candidates=["PC042", "PC043"], candidates_from="the diagnose report")
    assert msg == "target 'PC099' matches none of the 2 host(s) of the diagnose report (PC042, PC043). Nothing was checked."
