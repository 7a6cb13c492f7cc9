# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test callback: write what a playbook run did to the JSON file named by $M365OPS_RECORD.

ansible-core has no built-in JSON callback (that one lives in ansible.posix), and the
default callback prints set_stats data only as text; the playbook tests read this file
instead: every task result (host, task, action, status, changed), the per-host recap and
the custom stats (``set_stats``).
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: record_run
type: aggregate
short_description: Record task results and set_stats data to a JSON file (tests only)
description:
  - Writes C(results), C(recap) and C(custom_stats) to the file named by the environment
    variable E(M365OPS_RECORD) when the playbook ends.
requirements:
  - enabled with C(ANSIBLE_CALLBACKS_ENABLED=record_run)
"""

import json
import os

from ansible.plugins.callback import CallbackBase


def _plain(value):
    return json.loads(json.dumps(value, default=str))


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "record_run"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._results = []

    def _record(self, result, status):
        data = result._result  # pylint: disable=protected-access
        self._results.append({
            "host": result._host.get_name(),  # pylint: disable=protected-access
            "task": result._task.get_name(),  # pylint: disable=protected-access
            "action": result._task.action,  # pylint: disable=protected-access
            "status": status,
            "changed": bool(data.get("changed")),
            "msg": str(data.get("msg", "")),
        })

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("M365OPS_RECORD")
        if not path:
            return
        record = {
            "results": self._results,
            "recap": {host: stats.summarize(host) for host in sorted(stats.processed)},
            "custom_stats": _plain(stats.custom),
        }
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=1, default=str)
