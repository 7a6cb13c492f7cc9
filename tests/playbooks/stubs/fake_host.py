# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fake Windows host for the playbook tests: one JSON state file per host on the controller.

Placed as ``plugins/module_utils/fake_host.py`` of the throwaway collection the remediate
flow test assembles (tests/playbooks/test_remediate_flow.py). The stub modules (through
AnsiballZ, like any module_utils) and the stub ``ansible.windows.win_reboot`` action read
and write the same file, so a play sees one consistent host: its diagnosis, the rungs it
ran, its pending-reboot marker and its boot time.

State file::

    {"clock": 10,                                  minutes after BASE; every change ticks it
     "boot_time": "2026-11-26T08:00:00.000000Z",   as win_reboot_state reports it
     "marker": {"win_token_broker_cache": "2026-11-26T08:11:00Z <reason>"},
     "bundles": {"before": "<evidence dir>", "after": "<evidence dir>"},
     "fixed_by": {"rungs": ["reset_token_broker"], "reboot": true},   or null: never fixed
     "applied": {"reset_token_broker": "<time>"},
     "reboots": [{"at": "<time>", "args": {...}}]}

The diagnosis is the ``after`` bundle once every rung of ``fixed_by`` has run and (when
``reboot``) the host restarted after the last of them; before that it is ``before``. Every
module call is appended to ``<state>.calls.jsonl`` (also in check mode), never to the
state file, so "check mode changed nothing" is a byte comparison of the state file.

Pure Python, no ansible imports.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta, timezone

BASE = datetime(2026, 11, 26, 8, 0, 0, tzinfo=timezone.utc)
STATE_ENV = "M365OPS_FAKE_HOST_STATE"

# The rung modules that write the pending-reboot marker (docs/development.md, Rungs).
REBOOT_MODULES = ("win_token_broker_cache", "win_dsreg_join")
RUNG_OF_MODULE = {
    "win_credential_purge": "purge_office_credentials",
    "win_work_accounts": "remove_extra_work_accounts",
    "win_token_broker_cache": "reset_token_broker",
    "win_aad_broker_plugin": "reregister_broker_plugin",
    "win_dsreg_join": "rejoin_hybrid",
}
_MARKER_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)\s")


# The user every fake host's evidence speaks for.
ALICE = ("CONTOSO\\alice", "S-1-5-21-1004336348-1177238915-682003330-1104")


def boot_text(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def marker_text(moment, reason):
    return "%s %s" % (moment.strftime("%Y-%m-%dT%H:%M:%SZ"), reason)


def parse_time(text):
    """A boot time or the time at the start of a marker value; None when unreadable."""
    text = text or ""
    match = _MARKER_TIME.match(text)
    try:
        if match:
            return datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def new_state(before, after=None, fixed_by=None, marker=None):
    """The state of a freshly seeded host, booted at BASE, clock at BASE + 10 min."""
    return {
        "clock": 10,
        "boot_time": boot_text(BASE),
        "marker": dict(marker or {}),
        "bundles": {"before": str(before), "after": str(after or before)},
        "fixed_by": fixed_by,
        "applied": {},
        "reboots": [],
    }


class FakeHost:
    """One host's state file; ``save()`` writes it back."""

    def __init__(self, path=None):
        self.path = path or os.environ.get(STATE_ENV)
        if not self.path:
            raise ValueError("%s is not set: this module only runs inside the playbook tests" % STATE_ENV)
        with open(self.path, encoding="utf-8") as handle:
            self.state = json.load(handle)

    def save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(self.state, handle, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def log(self, module, args, check_mode):
        with open(self.path + ".calls.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"module": module, "args": args, "check_mode": bool(check_mode)},
                                    sort_keys=True) + "\n")

    def tick(self):
        self.state["clock"] += 1
        return BASE + timedelta(minutes=self.state["clock"])

    # --- what the host looks like -------------------------------------------------

    def is_fixed(self):
        fix = self.state.get("fixed_by")
        if not fix:
            return False
        applied = self.state["applied"]
        if not all(rung in applied for rung in fix["rungs"]):
            return False
        if not fix.get("reboot"):
            return True
        last = max(parse_time(applied[rung]) for rung in fix["rungs"])
        return parse_time(self.state["boot_time"]) > last

    def bundle(self):
        return self.state["bundles"]["after" if self.is_fixed() else "before"]

    def facts(self):
        """win_activation_facts: the bundle's texts, with ``pending_reboot`` from this
        host's marker (Get-M365PendingReboot: one ``marker <source>: <value>`` reason per
        source) instead of the bundle's, which was captured on another machine."""
        result = read_bundle(self.bundle())
        marker = self.state["marker"]
        # Hand-collected bundles have no host_facts.json. The real module always reports
        # the marker and the session it examined (the one the file was collected in, so its
        # dsregcmd view is that file): rung 3 targets the users the diagnosis examined.
        if result["host_facts"] is None:
            result["host_facts"] = {"schema": 1, "users": [{
                "user": ALICE[0], "sid": ALICE[1], "status": "ok", "dsregcmd_status": result["dsregcmd_status"]}]}
        if result["host_facts"] is not None or marker:
            result["host_facts"]["pending_reboot"] = {
                "marker": bool(marker), "windows": False,
                "reasons": ["marker %s: %s" % (source, marker[source]) for source in sorted(marker)]}
        return result

    # --- host-side behaviour of the stubbed modules ----------------------------------

    def run_rung(self, module, check_mode):
        """A rung module: in check mode it would change; else it records the change and,
        for the rungs that need one, writes the pending-reboot marker."""
        rung = RUNG_OF_MODULE[module]
        reboot = module in REBOOT_MODULES
        if not check_mode:
            moment = self.tick()
            self.state["applied"][rung] = boot_text(moment)
            if reboot:
                self.state["marker"][module] = marker_text(moment, "%s ran (fake host)" % rung)
            self.save()
        result = {"changed": True, "reboot_required": reboot,
                  "users": [{"user": ALICE[0], "sid": ALICE[1],
                             "status": "ok" if module != "win_token_broker_cache" else "moved"}]}
        if module == "win_token_broker_cache":
            # One quarantine per run, named like the module names it (UTC time + 8 hex).
            qid = None if check_mode else "%s-%08x" % (moment.strftime("%Y%m%dT%H%M%SZ"), self.state["clock"])
            result.update({"quarantine_id": qid,
                           "quarantine_path": qid and "C:\\ProgramData\\m365ops\\activation\\quarantine\\" + qid,
                           "moved_count": 4})
        if module == "win_dsreg_join":
            result.update({"action": "rejoin", "join_result": "joined", "pending": False})
        return result

    def reboot_state(self, params, check_mode):
        """win_reboot_state (plugins/modules/win_reboot_state.ps1, Get-RebootState)."""
        clear_sources = params.get("clear_sources") or []
        before_boot = params.get("boot_time_before")
        if clear_sources and not before_boot:
            raise ValueError("boot_time_before is required with clear_sources")
        boot = self.state["boot_time"]
        boot_at = parse_time(boot)
        marker = dict(self.state["marker"])
        to_clear, kept = [], []
        result = {"changed": False, "boot_time": boot, "boot_time_changed": None, "cleared": [],
                  "windows_pending": False, "windows_reasons": []}
        if clear_sources:
            result["boot_time_changed"] = boot != before_boot
            for source in sorted(set(clear_sources) & set(marker)):
                (to_clear if result["boot_time_changed"] else kept).append(source)
        if params.get("clear_satisfied"):
            for source in sorted(marker):
                if source in to_clear:
                    continue
                written = parse_time(marker[source])
                if written is not None and written < boot_at:
                    if source in kept:
                        kept.remove(source)
                    to_clear.append(source)
                elif source not in kept:
                    kept.append(source)
        for source in to_clear:
            del marker[source]
        if to_clear:
            result["changed"] = True
            result["cleared"] = sorted(to_clear)
            if not check_mode:
                self.state["marker"] = marker
                self.save()
        result["kept"] = sorted(kept)
        result["marker"] = marker
        result["satisfied"] = sorted(s for s in marker if (parse_time(marker[s]) or boot_at) < boot_at)
        result["reboot_required"] = any(s not in result["satisfied"] for s in marker)
        return result

    def reboot(self, args):
        """ansible.windows.win_reboot: the host comes back with a new boot time."""
        moment = self.tick()
        self.state["boot_time"] = boot_text(moment)
        self.state["reboots"].append({"at": boot_text(moment), "args": args})
        self.save()


def read_bundle(folder):
    """What win_activation_facts returns for an evidence bundle folder (raw texts)."""
    def text(name):
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8-sig") as handle:
            return handle.read()

    events = text("aad_events.json")
    events = json.loads(events) if events and events.strip() else []
    facts = text("host_facts.json")
    return {
        "dsregcmd_status": text("dsregcmd_status.txt"),
        "aad_events": [events] if isinstance(events, dict) else events,
        "host_facts": json.loads(facts) if facts else None,
        "collection_errors": [],
    }
