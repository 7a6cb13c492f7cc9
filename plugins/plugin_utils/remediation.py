# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decisions of the remediate workflow, kept out of YAML so they can be unit tested.

Pure Python (no ansible imports): the remediate role reaches it through its filter
plugin, the tests import it directly.

- ``select_rungs``: which host rungs of a diagnosis plan run, given the admin's switches.
- ``classify_outcome``: fixed / improved / unchanged / failed / needs_user from the
  diagnosis before and after.
- ``build_host_entry``: one host's entry of the remediate report.
- ``summarise_fleet``: counts per outcome and per rung, for AWX ``set_stats``.
"""

from __future__ import annotations

from .ladder import (
    HOST_RUNGS, MANUAL_RUNGS, OUTCOMES, REBOOT_RUNGS, RUNG_MODULES, canonical_rung, findings_of, has_rung_work,
    is_healthy, is_problem,
)

# A leave on the wrong device locks users out; it must be asked for explicitly.
OPT_IN_RUNGS = {"rejoin_hybrid": "remediate_allow_rejoin_hybrid"}

# What the person named in MANUAL_RUNGS does, spelled out for the report.
MANUAL_STEPS = {
    "forcerecovery_cloud_joined": (
        "with the user present at the device, run dsregcmd /forcerecovery as an administrator, "
        "let the user sign in when asked, then restart; the next remediate run does the per-user rungs"
    ),
    "fix_network_path": "let the device reach the Entra ID and Office endpoints (proxy, firewall, TLS inspection)",
    "check_license": "check the user's Microsoft 365 Apps license assignment in the tenant",
    "check_device_registration_policy": "check the tenant's device registration settings for this user and device",
}

# Manual rungs that repair the device registration itself. While one is planned, the
# per-user rungs cannot help (triage routes the PRT problems of a broken device to the
# device rung, docs/triage.md) and would only churn caches and restart on every run.
DEVICE_FIRST_RUNGS = frozenset(("forcerecovery_cloud_joined",))
DEVICE_FIRST_HEAD = "device recovery first"
DEVICE_FIRST_REASON = (
    DEVICE_FIRST_HEAD + ": dsregcmd /forcerecovery with the user present; "
    "the per-user rungs run on the next run after it"
)
# A restart left pending by an earlier run (or a run that died after a rung) that this
# run may not do: a rung that needs a restart would only stack a second change on it.
REBOOT_BLOCKED_REASON = "a restart is pending and remediate_reboot is false: it runs after that restart"

# Weights only order "better" and "worse"; their absolute values mean nothing.
SEVERITY_WEIGHT = {"critical": 16, "high": 8, "medium": 4, "low": 2, "info": 0}

# Result statuses (task runner, rung modules) that mean a person has to be at the device.
_USER_ABSENT_STATUSES = frozenset(("not_logged_on",))


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def parse_max_rung(value):
    """Return the highest rung number (0-5) allowed by ``remediate_max_rung``.

    Accepts a number, a numeric string (AWX survey text fields) or a rung name.
    ``None`` means no cap.
    """
    if value is None or value == "":
        return len(HOST_RUNGS)
    if isinstance(value, str):
        text = value.strip()
        if text in HOST_RUNGS:
            return HOST_RUNGS.index(text) + 1
        if text.isdigit():
            value = int(text)
    if not _is_int(value) or not 0 <= value <= len(HOST_RUNGS):
        raise ValueError(
            "remediate_max_rung: %r is not a rung number from 0 to %d or one of %s"
            % (value, len(HOST_RUNGS), ", ".join(HOST_RUNGS))
        )
    return value


def parse_disabled(value):
    """Return the list of rungs switched off by ``remediate_rungs_disabled``.

    Accepts a list or a comma-separated string (survey text field); unknown names are an
    error rather than silently ignored, because a typo would leave a rung switched on.
    """
    if value is None or value == "":
        return []
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
    else:
        raise ValueError("remediate_rungs_disabled: expected a list of rung names, got %s" % type(value).__name__)
    for item in items:
        if item not in HOST_RUNGS:
            raise ValueError(
                "remediate_rungs_disabled: unknown rung %r; expected any of %s" % (item, ", ".join(HOST_RUNGS))
            )
    return [rung for rung in HOST_RUNGS if rung in items]


def _validate_plan(plan):
    if plan is None:
        return []
    if not isinstance(plan, (list, tuple)):
        raise ValueError("plan: expected a list of rung names, got %s" % type(plan).__name__)
    # A diagnosis saved by an earlier version may still carry a rung under its old name.
    plan = [canonical_rung(rung) for rung in plan]
    for rung in plan:
        if rung not in HOST_RUNGS and rung not in MANUAL_RUNGS:
            raise ValueError("plan: unknown rung %r (diagnosis from a different collection version?)" % (rung,))
    return plan


def _flag(value, name):
    if not isinstance(value, bool):
        raise ValueError("%s: expected a boolean, got %r" % (name, value))
    return value


def select_rungs(plan, max_rung=None, disabled=None, allow_rejoin_hybrid=False, reboot_blocked=False,
                 marker_pending=False, reboot_allowed=True, restarted_first=False, failed=None, held=None,
                 windows_pending=False):
    """Decide which planned rungs run on the host.

    Returns ``{"run": [...], "skipped": [{"rung", "reason"}], "manual": [{"rung", "who",
    "step"}], "reboot_expected": bool}``. ``run`` is in ladder order (cheapest first)
    whatever the order of ``plan``; every planned host rung that does not run is in
    ``skipped`` with the reason, so the report can say why. A planned device-recovery
    step (DEVICE_FIRST_RUNGS) holds back every host rung.

    It also decides the restarts around the rungs, so the remediate role only sequences:

    - ``restart_first``: the collection's marker is pending (``marker_pending``: an earlier
      run died after a rung, or was not allowed to restart) and a restart is allowed
      (``reboot_allowed``, ``remediate_reboot``): restart before the rungs, then choose again
      from the host as it is after that restart (``restarted_first: true``). Rungs chosen
      before it would redo what the earlier run did on a state the restart may have fixed.
    - ``reboot_held``: the marker is pending but no restart is allowed in this run (or the
      caller says so with ``reboot_blocked``): the rungs that need a restart are held back,
      the rest of the plan still runs.
    ``held`` maps a rung to a reason it may not run this time (rung 3 when the diagnosis
    names nobody affected, ``token_broker_targets``); a rung with an empty reason runs.

    - ``ladder``: the rungs in ``run`` are carried out; not after a failure recorded before
      choosing (``failed``: the restart first failed).
    - ``restart_after``: the restart (if anything asks for it) and the diagnosis after the
      rungs run. Not after a failed restart first, and not when a restart first was done
      and no rung followed it: the host is already as diagnosed after that restart. Not
      either when no rung runs and the diagnosis shows no restart owed (no marker, and no
      ``windows_pending``: Windows' own flags when the admin asked to honour them): a
      healthy re-run is the diagnosis alone, one module execution.
    """
    planned = _validate_plan(plan)
    cap = parse_max_rung(max_rung)
    off = set(parse_disabled(disabled))
    _flag(allow_rejoin_hybrid, "remediate_allow_rejoin_hybrid")
    _flag(reboot_blocked, "reboot_blocked")
    _flag(marker_pending, "marker_pending")
    _flag(reboot_allowed, "remediate_reboot")
    _flag(restarted_first, "restarted_first")
    _flag(windows_pending, "windows_pending")
    restart_first = marker_pending and reboot_allowed and not restarted_first and not failed
    reboot_blocked = reboot_blocked or (marker_pending and not reboot_allowed)
    opted_in = {"remediate_allow_rejoin_hybrid": allow_rejoin_hybrid}
    device_first = any(rung in DEVICE_FIRST_RUNGS for rung in planned)

    run, skipped = [], []
    for number, rung in enumerate(HOST_RUNGS, start=1):
        if rung not in planned:
            continue
        if device_first:
            skipped.append({"rung": rung, "reason": DEVICE_FIRST_REASON})
        elif rung in off:
            skipped.append({"rung": rung, "reason": "disabled by remediate_rungs_disabled"})
        elif number > cap:
            skipped.append({"rung": rung, "reason": "above remediate_max_rung (%d)" % cap})
        elif rung in OPT_IN_RUNGS and not opted_in[OPT_IN_RUNGS[rung]]:
            skipped.append({"rung": rung, "reason": "needs the opt-in %s: true" % OPT_IN_RUNGS[rung]})
        elif reboot_blocked and rung in REBOOT_RUNGS:
            skipped.append({"rung": rung, "reason": REBOOT_BLOCKED_REASON})
        else:
            run.append(rung)
    if held is not None and not isinstance(held, dict):
        raise ValueError("held: expected a mapping of rung name to reason, got %r" % (held,))
    for rung, reason in (held or {}).items():
        if reason and rung in run:
            run.remove(rung)
            skipped.append({"rung": rung, "reason": str(reason)})
    manual = [{"rung": rung, "who": MANUAL_RUNGS[rung], "step": MANUAL_STEPS[rung]}
              for rung in planned if rung in MANUAL_RUNGS]
    return {
        "run": run,
        "skipped": skipped,
        "manual": manual,
        "reboot_expected": any(rung in REBOOT_RUNGS for rung in run),
        "restart_first": restart_first,
        "restarted_first": restarted_first,
        "reboot_held": reboot_blocked,
        "ladder": bool(run) and not failed and not restart_first,
        "restart_after": not failed and not restart_first and not (restarted_first and not run)
        and bool(run or marker_pending or windows_pending),
    }


TOKEN_BROKER_RUNG = "reset_token_broker"
NO_AFFECTED_USER_REASON = ("no affected user identified (nobody signed in was diagnosed); set "
                           "remediate_token_broker_all_profiles: true to reset every profile")


def _user_labels(user):
    """The names a diagnosis may use for one host_facts.users entry (triage labels a user
    by sign-in UPN, else account name)."""
    return [v.strip().lower() for v in (user.get("sign_in_upn"), user.get("user"), user.get("sid"))
            if isinstance(v, str) and v.strip()]


def token_broker_targets(diagnosis, host_facts=None, users=None, all_profiles=False):
    """Whom rung 3 (TokenBroker quarantine) works on, so it never signs out a shared PC's
    other users by default.

    Returns ``{"users": [...], "all_profiles": bool, "skip_reason": str or None}``:

    - ``users`` given (``remediate_users``): exactly those;
    - ``all_profiles`` (``remediate_token_broker_all_profiles``): every profile, asked for
      explicitly;
    - otherwise the users the diagnosis found affected, by SID: those a
      ``reset_token_broker`` finding names (its summary or evidence carries the user's
      UPN or account name), or, when the findings are device-wide (AAD events carry no
      user), every user whose session the diagnosis examined (``host_facts.users`` with
      status ``ok``). Nobody affected -> ``skip_reason``; rung 3 does not run.
    """
    if users:
        if not isinstance(users, (list, tuple)) or not all(isinstance(u, str) and u.strip() for u in users):
            raise ValueError("remediate_users: expected a list of user names, UPNs or SIDs, got %r" % (users,))
        return {"users": list(users), "all_profiles": False, "skip_reason": None}
    if not isinstance(all_profiles, bool):
        raise ValueError("remediate_token_broker_all_profiles: expected a boolean, got %r" % (all_profiles,))
    if all_profiles:
        return {"users": [], "all_profiles": True, "skip_reason": None}
    examined = [u for u in ((host_facts or {}).get("users") or [])
                if isinstance(u, dict) and u.get("status") == "ok" and isinstance(u.get("sid"), str) and u["sid"]]
    findings = [f for f in _findings(diagnosis) if f.get("rung") == TOKEN_BROKER_RUNG]
    texts = []
    for f in findings:
        texts.append(str(f.get("summary") or "").lower())
        texts.extend(str(e).lower() for e in (f.get("evidence") or []))
    named = [u for u in examined if any(label in text for label in _user_labels(u) for text in texts)]
    chosen = named or examined
    sids = []
    for u in chosen:
        if u["sid"] not in sids:
            sids.append(u["sid"])
    return {"users": sids, "all_profiles": False, "skip_reason": None if sids else NO_AFFECTED_USER_REASON}


def skip_rung(selection, rung, reason):
    """``selection`` with ``rung`` moved from ``run`` to ``skipped`` (with ``reason``) when
    ``reason`` is set; unchanged otherwise."""
    if not reason or rung not in (selection or {}).get("run", []):
        return selection
    out = dict(selection)
    out["run"] = [r for r in selection["run"] if r != rung]
    out["skipped"] = list(selection.get("skipped") or []) + [{"rung": rung, "reason": reason}]
    out["reboot_expected"] = any(r in REBOOT_RUNGS for r in out["run"])
    if not out["run"]:
        # Nothing left to carry out: no ladder, and no restart after a restart first.
        if "ladder" in out:
            out["ladder"] = False
        if out.get("restarted_first"):
            out["restart_after"] = False
    return out


def refused_paths(before, rung_results=None):
    """Paths the host-side code refused to follow (junctions and symbolic links a user
    planted), ``[{path, reason, by}]``: from the diagnosis' collection errors and from
    rung 3's per-user results. The report names them so an admin can look at the host."""
    out, seen = [], set()
    for err in ((before or {}).get("collection_errors") or []):
        if isinstance(err, dict) and err.get("path") and err.get("refused"):
            key = (err["path"], "diagnose")
            if key not in seen:
                seen.add(key)
                out.append({"path": err["path"], "reason": err.get("message"), "by": "diagnose"})
    result = (rung_results or {}).get(TOKEN_BROKER_RUNG)
    if isinstance(result, dict):
        for item in result.get("refused") or []:
            if isinstance(item, dict) and item.get("path"):
                key = (item["path"], TOKEN_BROKER_RUNG)
                if key not in seen:
                    seen.add(key)
                    out.append({"path": item["path"], "reason": item.get("reason"), "by": TOKEN_BROKER_RUNG})
    return out


_findings = findings_of


def _actionable(diagnosis):
    """Findings that ask for a rung: what the ladder can work on."""
    return [f for f in _findings(diagnosis) if f.get("rung")]


def _unrepaired(diagnosis):
    """Problems no rung answers (ladder.is_problem without a rung): they keep a host from
    being healthy, but no run of the ladder changes them."""
    return sorted({f.get("id") for f in _findings(diagnosis) if is_problem(f) and not f.get("rung") and f.get("id")})


def _score(diagnosis):
    return sum(SEVERITY_WEIGHT.get(f.get("severity"), SEVERITY_WEIGHT["medium"]) or 1 for f in _actionable(diagnosis))


def rung_users(rung_result):
    """The per-user entries of one rung module's result: its top-level ``users`` list of
    ``{user, sid, status, message, ...}`` (docs/development.md, "Rung module results").
    Device-wide rungs return ``users: []``; a rung that did not run has no result."""
    users = rung_result.get("users") if isinstance(rung_result, dict) else None
    return [entry for entry in users if isinstance(entry, dict)] if isinstance(users, list) else []


def users_absent(rung_results):
    """Whether any rung had to skip a user because nobody was logged on (rung name ->
    module result; a user's ``status`` is ``not_logged_on``)."""
    return any(entry.get("status") in _USER_ABSENT_STATUSES
               for result in (rung_results or {}).values() for entry in rung_users(result))


def _pending_join(rung_results):
    result = (rung_results or {}).get("rejoin_hybrid") or {}
    return result.get("pending") is True or result.get("status") == "pending"


def _ids(findings):
    return {f.get("id") for f in findings if f.get("id")}


def classify_outcome(before, after, rung_results=None, failed=None, check_mode=False):
    """Classify one host after remediation.

    ``before``/``after`` are diagnoses (``{findings, plan, ...}``); ``after`` is ``None``
    when the host could not be diagnosed again. ``failed`` is the error message of a
    rung or reboot that failed, if any. Returns ``{"outcome", "reason"}``.
    """
    if failed:
        return {"outcome": "failed", "reason": str(failed)}
    if check_mode:
        return {"outcome": "unchanged", "reason": "check mode: nothing was changed on the host"}
    if after is None:
        return {"outcome": "failed", "reason": "the host could not be diagnosed after remediation"}

    # The join completes only after Entra Connect syncs the device (docs/rungs/win_dsreg_join.md): a submitted
    # join is not a fix yet, but the report must say that it is on its way.
    join_pending = _pending_join(rung_results) or "hybrid_join_pending" in _ids(after.get("findings") or [])
    pending = " (hybrid join pending: confirm with a later diagnose)" if join_pending else ""

    before_findings, after_findings = _actionable(before), _actionable(after)
    if not has_rung_work(after):
        # Nothing left for a rung. Fixed only when the host is healthy as well (ladder.is_healthy):
        # a problem no rung answers still needs someone, so it is never reported as fixed.
        left = _unrepaired(after)
        still = "; still found, no rung repairs it: %s" % ", ".join(left) if left else ""
        if not has_rung_work(before):
            if is_healthy(after) and not pending:
                return {"outcome": "unchanged", "reason": "already healthy; nothing to do"}
            return {"outcome": "unchanged", "reason": "nothing to do%s%s" % (still, pending)}
        if join_pending or left:
            # Not fixed until the device authenticates; a later diagnose confirms it.
            return {"outcome": "improved", "reason": "no actionable finding left%s%s" % (still, pending)}
        return {"outcome": "fixed", "reason": "no actionable finding left"}

    user_rungs = [r for r in (after.get("plan") or []) if MANUAL_RUNGS.get(r) == "user"]
    if user_rungs:
        return {"outcome": "needs_user", "reason": "needs the user at the device: %s"
                % "; ".join("%s (%s)" % (r, MANUAL_STEPS[r]) for r in user_rungs)}
    if users_absent(rung_results):
        return {
            "outcome": "needs_user",
            "reason": "a user was not logged on, so their part of the repair was skipped; re-run while they are signed in",
        }

    new_ids = sorted(_ids(after_findings) - _ids(before_findings))
    score_before, score_after = _score(before), _score(after)
    if score_after > score_before:
        return {"outcome": "failed", "reason": "worse after remediation: %s" % (", ".join(new_ids) or "higher severity")}

    resolved = sorted(_ids(before_findings) - _ids(after_findings))
    if score_after < score_before or (resolved and not new_ids):
        return {"outcome": "improved", "reason": "resolved: %s%s" % (", ".join(resolved) or "lower severity", pending)}
    remaining = sorted(_ids(after_findings))
    return {"outcome": "unchanged", "reason": "still found: %s%s" % (", ".join(remaining), pending)}


def _summary_of(diagnosis):
    if diagnosis is None:
        return None
    return {
        "join_type": diagnosis.get("join_type"),
        "findings": _findings(diagnosis),
        "plan": list(diagnosis.get("plan") or []),
    }


def reboot_requests(rung_results):
    """Modules (short names, as in the marker) whose rung result says the host needs a restart.

    Passed to win_reboot_if_needed's ``requested_by``; the short name is the marker's
    source name, so a rung that also wrote its marker is one reason, not two.
    """
    return [RUNG_MODULES[rung].rsplit(".", 1)[-1] for rung in HOST_RUNGS
            if isinstance((rung_results or {}).get(rung), dict) and rung_results[rung].get("reboot_required")]


REPAIR_STEP = "repair"
RESTART_STEP = "restart"
REDIAGNOSE_STEP = "diagnose after the repair"


def repair_outcome(result):
    """What one win_activation_repair execution did, in the shapes the per-rung path records:
    ``{"rung_results", "failure", "reboot", "rediagnosis"}``.

    ``rung_results`` maps every host rung to its result (``{}`` for a rung that did not
    run), ``reboot`` is its ``restart`` (``rebooted``, ``reboot_required``, ``failed``,
    ``msg``: what build_host_entry reads from win_reboot_if_needed), ``rediagnosis`` the
    verification diagnose or ``None``. ``failure`` names the step that failed - the rung
    (the ladder stopped there), the restart, or the diagnosis after it - else ``""``.
    A skipped task (the ladder did not run) did nothing.
    """
    empty = {"rung_results": {rung: {} for rung in HOST_RUNGS}, "failure": "", "reboot": {}, "rediagnosis": None}
    if not isinstance(result, dict) or not result or result.get("skipped"):
        return empty
    rungs = result.get("rungs") if isinstance(result.get("rungs"), dict) else {}
    outcome = dict(empty)
    outcome["rung_results"] = {rung: rungs.get(rung) or {} for rung in HOST_RUNGS}
    restart = result.get("restart") if isinstance(result.get("restart"), dict) else {}
    outcome["reboot"] = restart
    failures = []
    if result.get("unreachable"):
        failures.append("%s: %s" % (REPAIR_STEP, result.get("msg") or "the host is unreachable"))
    elif result.get("failed_rung"):
        failures.append(result.get("msg") or "%s: failed" % result["failed_rung"])
    elif result.get("failed") and not rungs:
        failures.append("%s: %s" % (REPAIR_STEP, result.get("msg") or "failed"))
    if restart.get("failed"):
        failures.append("%s: %s" % (RESTART_STEP, restart.get("msg") or "failed"))
    rediagnosis = result.get("rediagnosis")
    if isinstance(rediagnosis, dict):
        diagnosis = rediagnosis.get("m365_activation")
        if rediagnosis.get("failed") or not isinstance(diagnosis, dict):
            failures.append("%s: %s" % (REDIAGNOSE_STEP, rediagnosis.get("msg") or "no diagnosis"))
        elif diagnosis.get("error"):
            failures.append("%s: %s" % (REDIAGNOSE_STEP, diagnosis["error"]))
        else:
            outcome["rediagnosis"] = rediagnosis
    outcome["failure"] = "; ".join(failures)
    return outcome


def _ran(rung_results):
    """Rungs whose module actually executed (not skipped by a condition)."""
    ran = []
    for rung in HOST_RUNGS:
        result = (rung_results or {}).get(rung)
        if isinstance(result, dict) and result and not result.get("skipped"):
            ran.append(rung)
    return ran


def quarantines(rung_results):
    """Where rung 3 put each user's TokenBroker caches: ``[{user, sid, quarantine_id,
    quarantine_path}]`` for the users whose files were moved.

    win_token_broker_cache makes one quarantine per run (``quarantine_id``, null when
    nothing moved or in check mode); listing it per user lets the undo guide point at the
    report: ``state: restored`` with that id puts exactly these users' files back.
    """
    result = (rung_results or {}).get("reset_token_broker")
    if not isinstance(result, dict) or not result.get("quarantine_id"):
        return []
    entries = []
    for user in result.get("users") or []:
        if isinstance(user, dict) and (user.get("status") == "moved" or user.get("files")):
            entries.append({"user": user.get("user"), "sid": user.get("sid"),
                            "quarantine_id": result["quarantine_id"],
                            "quarantine_path": result.get("quarantine_path")})
    return entries


def _executed(result):
    return isinstance(result, dict) and bool(result) and not result.get("skipped")


def _skipped_text(skipped, reason):
    """The rungs not run, each reason said once: rungs held back for the same reason are
    listed together, and the device-first reason is cut to its head when ``reason`` (the
    outcome's) already spells out the device recovery step."""
    step_said = any(MANUAL_STEPS[rung] in reason for rung in DEVICE_FIRST_RUNGS)
    by_reason = {}
    for item in skipped:
        why = DEVICE_FIRST_HEAD if step_said and item["reason"] == DEVICE_FIRST_REASON else item["reason"]
        by_reason.setdefault(why, []).append(item["rung"])
    return "; ".join("%s (%s)" % (", ".join(rungs), why) for why, rungs in by_reason.items())


def after_of(rediagnosis, current, failed=None, check_mode=False):
    """The diagnosis after the repair: the re-diagnosis when it ran (a registered
    win_activation_facts result), else the host as last diagnosed (``current``: before, or
    after a restart first) when nothing ran that could change it. ``None`` when there is no
    honest "after": check mode, or a failure that stopped the re-diagnosis."""
    if _executed(rediagnosis) and isinstance(rediagnosis.get("m365_activation"), dict) \
            and "error" not in rediagnosis["m365_activation"]:
        return rediagnosis["m365_activation"]
    if failed or check_mode:
        return None
    return current


def build_host_entry(before, after, selection, rung_results=None, reboot=None, failed=None, check_mode=False,
                     restart_first=None):
    """One host's entry of the remediate report (docs/development.md, Report).

    The top-level ``join_type``/``findings``/``plan`` are the latest known state (after,
    or before when the host could not be diagnosed again), so the report's shared
    summary counts healthy hosts the same way for every kind. ``restart_first`` is the
    result of the restart done before choosing the rungs (an earlier run's marker);
    ``reboot`` that of the restart after them. Either may be a skipped task's result.
    """
    selection = selection or {"run": [], "skipped": [], "manual": []}
    first = restart_first if _executed(restart_first) else {}
    last = reboot if _executed(reboot) else {}
    outcome = classify_outcome(before, after, rung_results, failed=failed, check_mode=check_mode)
    reason = outcome["reason"]
    skipped = list(selection.get("skipped") or [])
    if skipped and outcome["outcome"] in ("improved", "unchanged", "needs_user"):
        reason += "; not run: " + _skipped_text(skipped, outcome["reason"])
    if first.get("rebooted"):
        reason += "; restarted first for a reboot an earlier run left pending"
    elif last.get("rebooted") and not _ran(rung_results):
        reason += "; restarted for a reboot an earlier run left pending"
    # The later step knows best whether a restart is still owed; without it (nothing
    # ran after the first restart) the first step's answer stands.
    latest_reboot = last or first
    reboot_failed = bool(latest_reboot.get("failed")) and not latest_reboot.get("rebooted")
    reboot_pending = (bool(latest_reboot.get("reboot_required")) or reboot_failed) and not latest_reboot.get("rebooted") \
        and not check_mode
    if reboot_failed and not check_mode:
        # The marker stays on the host, so the next run restarts it; say why this one did not.
        reason += "; the restart failed (%s): the next run restarts the host" % (latest_reboot.get("msg") or "see the task output")
    elif reboot_pending:
        reason += "; restart pending (not allowed in this run): it completes the repair, the next run restarts the host"
    latest = after if after is not None and not check_mode else before
    entry = {
        "join_type": (latest or {}).get("join_type"),
        "device_id": (latest or {}).get("device_id"),
        "device_name": (latest or {}).get("device_name"),
        "users": list((latest or {}).get("users") or []),
        "findings": _findings(latest),
        "plan": list((latest or {}).get("plan") or []),
        "before": _summary_of(before),
        "after": _summary_of(None if check_mode else after),
        "outcome": outcome["outcome"],
        "outcome_reason": reason,
        "rungs_run": _ran(rung_results),
        "rungs_skipped": skipped,
        "manual": list(selection.get("manual") or []),
        "rebooted": bool(first.get("rebooted") or last.get("rebooted")),
        "restarted_first": bool(first.get("rebooted")),
        "reboot_pending": reboot_pending,
        "quarantines": quarantines(rung_results),
        "refused_paths": refused_paths(before, rung_results),
        "check_mode": bool(check_mode),
    }
    if check_mode:
        entry["would_run"] = list(selection.get("run") or [])
        entry["would_reboot"] = bool(first.get("reboot_required") or last.get("reboot_required"))
    if failed:
        entry["error"] = str(failed)
    return entry


def collect_entries(all_hosts, entries, active_hosts):
    """The report's ``hosts`` for every host of the play seen so far.

    ``entries`` maps host -> the entry the role built (or ``None``). A host with no entry
    that is no longer active failed or went unreachable outside the steps the role
    records; a host with no entry that is still active belongs to a later batch
    (``serial``) and is left out until its batch has run.
    """
    active = set(active_hosts or [])
    hosts = {}
    for host in all_hosts or []:
        entry = (entries or {}).get(host)
        if entry:
            hosts[host] = entry
        elif host not in active:
            hosts[host] = {"error": "the host failed or was unreachable before the remediate role recorded a result; see the play output"}
    return hosts


def summarise_fleet(entries):
    """Counts for AWX job artifacts: per outcome, per rung run, reboots.

    ``rungs`` counts rungs that changed hosts; a check-mode entry's rungs only would have
    run, so they are counted apart (``would_run``, ``would_reboot``) and ``check_mode``
    says the run was a dry run."""
    outcomes = {name: 0 for name in OUTCOMES}
    rungs = {}
    would_run = {}
    summary = {"hosts": 0, "outcomes": outcomes, "rungs": rungs, "rebooted": 0, "reboot_pending": 0,
               "errors": 0, "already_healthy": 0, "check_mode": False}
    would_reboot = 0
    for host in sorted(entries or {}):
        entry = entries[host] or {}
        summary["hosts"] += 1
        outcome = entry.get("outcome")
        if outcome in outcomes:
            outcomes[outcome] += 1
        if entry.get("unreachable") or (entry.get("error") and outcome is None):
            summary["errors"] += 1
        if entry.get("check_mode"):
            summary["check_mode"] = True
            for rung in entry.get("would_run") or []:
                would_run[rung] = would_run.get(rung, 0) + 1
            would_reboot += 1 if entry.get("would_reboot") else 0
        else:
            for rung in entry.get("rungs_run") or []:
                rungs[rung] = rungs.get(rung, 0) + 1
        summary["rebooted"] += 1 if entry.get("rebooted") else 0
        summary["reboot_pending"] += 1 if entry.get("reboot_pending") else 0
        if entry.get("before") is not None and is_healthy(entry.get("before")):
            summary["already_healthy"] += 1
    if summary["check_mode"]:
        summary["would_run"] = would_run
        summary["would_reboot"] = would_reboot
    return summary
