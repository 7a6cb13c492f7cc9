# -*- coding: utf-8 -*-
# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side checks of a run before any host is contacted (docs: modules/preflight.py)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.inventory.manager import InventoryManager
from ansible.plugins.action import ActionBase
from ansible.utils.vars import load_extra_vars

from ansible_collections.m365ops.activation.plugins.plugin_utils import preflight

# .../ansible_collections/m365ops/activation/plugins/action/preflight.py: the roles and
# playbooks whose variables are known ship in the same collection. Not resolved through
# symlinks: the collection is wherever Ansible found this file.
COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Variables of the run that are not the admin's: walking them for templates finds nothing.
_NOT_SCANNED = frozenset(("hostvars", "groups", "group_names", "omit", "vars", "environment"))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True   # reads the run's own data only

    ARGUMENT_SPEC = {
        'prefixes': {'type': 'list', 'elements': 'str', 'default': []},
        'target': {'type': 'raw'},
        'candidates': {'type': 'list', 'elements': 'str'},
        'candidates_from': {'type': 'str'},
    }

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        task_vars = task_vars or {}
        target = args['target']
        if isinstance(target, (list, tuple)):
            target = ','.join(str(t) for t in target)
        if target is not None and not str(target).strip():
            raise AnsibleActionFail('target: empty; give a group, a host name or a host pattern')

        hosts = None
        if target is not None:
            hosts = self._match(str(target), task_vars, args['candidates'])
        result.update(changed=False, hosts=hosts or [], unknown=[])

        if args['prefixes']:
            checked = hosts if hosts else [task_vars.get('inventory_hostname', 'localhost')]
            unknown = self._unknown(task_vars, checked, args['prefixes'])
            if unknown:
                result.update(failed=True, unknown=unknown, msg=preflight.unknown_message(unknown, args['prefixes']))
                return result

        if target is not None and not hosts:
            if args['candidates'] is not None:
                msg = preflight.no_match_message(str(target), candidates=args['candidates'],
                                                 candidates_from=args['candidates_from'])
            else:
                msg = preflight.no_match_message(str(target), limit=task_vars.get('ansible_limit'),
                                                 sources=task_vars.get('ansible_inventory_sources'),
                                                 groups=task_vars.get('groups'))
            result.update(failed=True, msg=msg)
        return result

    def _match(self, target, task_vars, candidates):
        """The hosts ``target`` selects, as the play's ``hosts:`` would (the limit included),
        or, with ``candidates``, which of those names it selects (a name the inventory does
        not hold is matched by name and wildcard)."""
        # The inventory_hostnames lookup's way: the inventory rebuilt from the groups.
        manager = InventoryManager(self._loader, parse=False)
        for group, names in (task_vars.get('groups') or {}).items():
            manager.add_group(group)
            for name in names:
                manager.add_host(name, group=group)
        if candidates is not None:
            known = set(manager.hosts)
            for name in candidates:
                if name not in known:
                    manager.add_host(name, group='ungrouped')
        else:
            limit = task_vars.get('ansible_limit')
            if limit:
                manager.subset(limit)
        try:
            matched = [h.name for h in manager.get_hosts(pattern=target)]
        except AnsibleError as exc:
            # host_pattern_mismatch = error (ansible.cfg) turns "no match" into an exception.
            if 'Could not match supplied host pattern' not in str(exc):
                raise AnsibleActionFail('target: %s' % exc) from exc
            matched = []
        if candidates is not None:
            wanted = set(candidates)
            return [name for name in matched if name in wanted]
        return matched

    def _unknown(self, task_vars, hosts, prefixes):
        known = preflight.collection_variables(COLLECTION_ROOT)
        # Survey answers are read by the project playbook that imports ours: its vars are
        # this play's vars, still as the templates it wrote.
        for name, value in task_vars.items():
            if name not in _NOT_SCANNED and isinstance(value, (str, list, dict)):
                known |= preflight.names_read(value, contains='survey_')
        extra = set(load_extra_vars(self._loader))
        hostvars = task_vars.get('hostvars')
        inventory = {}
        for host in hosts:
            if isinstance(hostvars, Mapping) and host in hostvars:
                inventory[host] = list(hostvars[host])
        return preflight.unknown_variables(extra, inventory, known, prefixes)
