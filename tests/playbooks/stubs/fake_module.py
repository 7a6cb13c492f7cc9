# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Stub module body of the playbook tests (tests/playbooks/test_remediate_flow.py).
#
# The throwaway collection's plugins/modules/<name>.py is the real module's docs file
# (DOCUMENTATION/EXAMPLES/RETURN, which validate-modules keeps equal to the real argument
# spec) followed by this body and a last line ``main("<name>")``. So the stub accepts
# exactly the options the real module documents - a role passing an unknown option, a
# wrong type or a bad choice fails here as it would on Windows - and answers from the
# fake host's state file (fake_host.py) instead of touching a machine.
# No __future__ import here: the docs file above carries it, and it must come first.

import yaml

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.m365ops.activation.plugins.module_utils.fake_host import (
    FakeHost, RUNG_OF_MODULE,
)

_SPEC_KEYS = ("type", "elements", "choices", "default", "required", "aliases", "no_log")


def _documented_spec():
    options = (yaml.safe_load(DOCUMENTATION) or {}).get("options") or {}  # noqa: F821  pylint: disable=undefined-variable
    return {name: {key: opt[key] for key in _SPEC_KEYS if key in opt} for name, opt in options.items()}


def main(name):
    module = AnsibleModule(argument_spec=_documented_spec(), supports_check_mode=True)
    host = FakeHost()
    params = {key: value for key, value in module.params.items() if value is not None}
    host.log(name, params, module.check_mode)
    if name == "win_activation_facts":
        module.exit_json(changed=False, **host.facts())
    if name == "win_reboot_state":
        try:
            result = host.reboot_state(module.params, module.check_mode)
        except ValueError as exc:
            module.fail_json(msg=str(exc))
        module.exit_json(**result)
    if name in RUNG_OF_MODULE:
        module.exit_json(**host.run_rung(name, module.check_mode))
    module.fail_json(msg="fake_module: no stub behaviour for %s" % name)
