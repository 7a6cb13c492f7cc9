# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stdout callback for the lab tests: every task result as one JSON document at the end.

ansible-core ships no JSON stdout callback (that one lives in ansible.posix, which is not
installed here); the shape follows ansible.posix.json: plays -> tasks -> hosts -> result.
"""

from __future__ import annotations

DOCUMENTATION = """
name: lab_json
type: stdout
short_description: task results as one JSON document (lab tests only)
description: [Collects every task result and prints them as JSON when the run ends.]
"""

import json

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "lab_json"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.plays = []

    def v2_playbook_on_play_start(self, play):
        self.plays.append({"play": play.get_name(), "tasks": []})

    def v2_playbook_on_task_start(self, task, is_conditional):
        if not self.plays:  # ad-hoc commands have no play start event
            self.plays.append({"play": "adhoc", "tasks": []})
        self.plays[-1]["tasks"].append({"task": task.get_name(), "hosts": {}})

    def _record(self, result, **extra):
        if not self.plays or not self.plays[-1]["tasks"]:
            self.v2_playbook_on_task_start(result._task, False)
        res = dict(result._result)
        res.update(extra)
        self.plays[-1]["tasks"][-1]["hosts"][result._host.get_name()] = res

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, failed=True)

    def v2_runner_on_unreachable(self, result):
        self._record(result, unreachable=True)

    def v2_runner_on_skipped(self, result):
        self._record(result, skipped=True)

    def v2_playbook_on_stats(self, stats):
        summary = {h: stats.summarize(h) for h in sorted(stats.processed)}
        self._display.display(json.dumps({"plays": self.plays, "stats": summary}, default=str, sort_keys=True))
