# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render a fleet report (report.json shape, see docs/development.md) as one HTML page.

The page is self-contained on purpose: it is attached to tickets, mailed, opened from
AWX artifacts on machines without Internet access, so it carries its CSS and its SVG
charts inline and loads nothing. A Content-Security-Policy forbids scripts and remote
loads, so even a report built from hostile evidence (a host named ``<script>``) cannot
run code in the reader's browser.

The markup is the Jinja2 template ``templates/report.html.j2`` beside this file, rendered
with autoescape on: every value from the report is escaped by Jinja itself, so no code path
can forget to. This module checks the report's structure and builds the view the template
draws (rows, counts, chart geometry); it writes no markup.

No Ansible imports: the report writer, the offline triage and the tests share it. Jinja2
(which ansible-core requires) is imported when a page is rendered, so importing this module
needs nothing outside the standard library.
"""

from __future__ import annotations

import json
import os

from .ladder import KINDS, OUTCOMES, RUNGS, SEVERITIES, canonical_rung, is_healthy, is_problem
from .report_slices import describe_slices

# Host states in the order a reader has to act on them; the table is sorted by it.
_STATE_ORDER = (
    "unreachable", "error", "failed", "needs_user", "unchanged", "improved",
    "with_findings", "fixed", "healthy",
)
_STATE_LABELS = {
    "unreachable": "unreachable", "error": "error", "failed": "failed",
    "needs_user": "needs user", "unchanged": "unchanged", "improved": "improved",
    "with_findings": "with findings", "fixed": "fixed", "healthy": "healthy",
}
_SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
TEMPLATE = "report.html.j2"


def _require_mapping(value, name: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError("%s must be a mapping, got %s" % (name, type(value).__name__))
    return value


def _require_list(value, name: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("%s must be a list, got %s" % (name, type(value).__name__))
    return value


def _findings(section: dict, name: str) -> list:
    findings = _require_list(section.get("findings"), name + "['findings']")
    for index, finding in enumerate(findings):
        where = "%s['findings'][%d]" % (name, index)
        _require_mapping(finding, where)
        _require_list(finding.get("evidence"), where + "['evidence']")
        if not isinstance(finding.get("severity"), (str, type(None))):
            raise ValueError("%s['severity'] must be a string" % where)
    return findings


def _severity(finding: dict) -> str:
    """The finding's severity, or "unknown" for one outside the contract's vocabulary."""
    severity = finding.get("severity")
    return severity if severity in _SEVERITY_RANK else "unknown"


def _plan(section: dict, name: str) -> list:
    plan = _require_list(section.get("plan"), name + "['plan']")
    return [str(rung) for rung in plan]


def _problems(findings: list) -> list:
    """Findings that keep a host from being healthy (ladder.is_problem)."""
    return [f for f in findings if is_problem(f)]


def _worst_severity(findings: list):
    ranked = [_severity(f) for f in findings if _severity(f) != "unknown"]
    if not ranked:
        return None
    return min(ranked, key=lambda s: _SEVERITY_RANK[s])


def _host_state(entry: dict) -> str:
    """One state per host; a remediate outcome wins over a generic error because it
    says how far the ladder got (the error is still shown in the details)."""
    if entry.get("unreachable"):
        return "unreachable"
    outcome = entry.get("outcome")
    if outcome in OUTCOMES:
        return outcome
    if entry.get("error"):
        return "error"
    return "healthy" if is_healthy(entry) else "with_findings"


def _normalise(report) -> tuple:
    """Check the structure once, so the renderers below can trust it."""
    if not isinstance(report, dict):
        raise TypeError("report must be a dict (the report.json structure), got %s"
                        % type(report).__name__)
    kind = report.get("kind")
    if kind not in KINDS:
        raise ValueError("report['kind'] must be one of %s, got %r" % (", ".join(KINDS), kind))
    hosts = _require_mapping(report.get("hosts", {}), "report['hosts']")
    rows = []
    for host_name in hosts:
        name = "report['hosts'][%r]" % (host_name,)
        entry = _require_mapping(hosts[host_name], name)
        before = after = None
        if "before" in entry and entry["before"] is not None:
            before = _require_mapping(entry["before"], name + "['before']")
        if "after" in entry and entry["after"] is not None:
            after = _require_mapping(entry["after"], name + "['after']")
        # The state to show is the latest known: after the ladder when it was re-diagnosed,
        # else the entry's own (a remediate entry repeats its latest state at the top).
        current = after if after is not None else entry
        current_name = name + ("['after']" if after is not None else "")
        findings = _findings(current, current_name)
        row = {
            "host": str(host_name),
            "entry": entry,
            "findings": findings,
            "plan": _plan(current, current_name),
            "join_type": current.get("join_type") or entry.get("join_type"),
            "before": None,
            "after": findings if after is not None else None,
            # False when there is no state to show at all (unreachable, or failed before
            # any diagnosis): "no findings known" must not read as "no findings".
            "known": after is not None or "findings" in entry or not (
                entry.get("error") or entry.get("unreachable")),
            "rungs_run": [str(r) for r in _require_list(entry.get("rungs_run"), name + "['rungs_run']")],
        }
        if before is not None:
            row["before"] = {
                "findings": _findings(before, name + "['before']"),
                "plan": _plan(before, name + "['before']"),
                "join_type": before.get("join_type"),
            }
        row["state"] = _host_state(entry)
        rows.append(row)
    rows.sort(key=lambda r: (_STATE_ORDER.index(r["state"]),
                             _SEVERITY_RANK.get(_worst_severity(r["findings"]), len(SEVERITIES)),
                             r["host"].lower()))
    return kind, rows


def _state_counts(kind: str, rows: list) -> list:
    if kind == "remediate":
        states = OUTCOMES + ("error", "unreachable")
    else:
        states = ("healthy", "with_findings", "error", "unreachable")
    counts = {state: 0 for state in states}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    # A state outside the expected set (a remediate host without an outcome) still shows.
    ordered = [s for s in _STATE_ORDER if s in counts]
    return [(_STATE_LABELS[s], counts[s], s) for s in ordered if counts[s] or s in states]


def _finding_counts(rows: list, key) -> dict:
    """finding id -> (hosts with it, worst severity seen)."""
    counts = {}
    for row in rows:
        findings = key(row)
        for finding_id in sorted({str(f.get("id") or "(no id)") for f in findings}):
            worst = _worst_severity([f for f in findings if str(f.get("id") or "(no id)") == finding_id])
            hosts, seen = counts.get(finding_id, (0, None))
            if seen is None or (worst is not None and _SEVERITY_RANK[worst] < _SEVERITY_RANK[seen]):
                seen = worst
            counts[finding_id] = (hosts + 1, seen)
    return counts


def _bar_chart(title: str, labels: list, series: list, empty_text: str) -> dict:
    """Geometry of horizontal bars, one group per label.

    series: list of (name, values, css classes) where values and classes run parallel
    to labels. One series draws plain bars; two or more draw grouped bars and a legend.
    """
    label_w, bar_w, bar_h, gap = 210, 300, 16, 10
    group_h = bar_h * len(series) + gap
    legend_h = 22 if len(series) > 1 else 0
    chart = {"title": title, "width": label_w + bar_w + 50, "label_x": label_w - 8, "bar_x": label_w,
             "empty_text": empty_text, "legend": [], "groups": []}
    if not labels:
        chart["height"] = 60
        return chart
    chart["height"] = legend_h + group_h * len(labels) + 8
    peak = max([max(values) for _name, values, _cls in series] + [1])
    if legend_h:
        x = label_w
        for name, _values, classes in series:
            chart["legend"].append({"x": x, "css": classes[0], "name": name})
            x += 16 + 8 * len(name) + 16
    for i, label in enumerate(labels):
        top = legend_h + i * group_h
        group = {"label": label, "shown": label if len(label) <= 30 else label[:29] + "\u2026",
                 "label_y": int(top + bar_h * len(series) / 2 + 4), "bars": []}
        for j, (name, values, classes) in enumerate(series):
            value = values[i]
            y = top + j * bar_h
            group["bars"].append({
                "y": y + 1, "w": 0 if not value else max(2, round(bar_w * value / peak)), "h": bar_h - 2,
                "css": classes[i], "value": value, "text_y": y + bar_h - 4,
                "title": label if len(series) == 1 else "%s (%s)" % (label, name)})
        chart["groups"].append(group)
    return chart


def _charts(kind: str, rows: list) -> list:
    states = _state_counts(kind, rows)
    outcome_title = "Outcome per host" if kind == "remediate" else "Host status"
    out = [_bar_chart(outcome_title, [s[0] for s in states],
                      [("hosts", [s[1] for s in states], ["fill-" + s[2] for s in states])],
                      "No hosts in this report")]
    if any(row["before"] is not None for row in rows):
        # Hosts that were not re-diagnosed have no "after": they add nothing to it.
        after = _finding_counts(rows, lambda r: r["after"] or [])
        before = _finding_counts(rows, lambda r: r["before"]["findings"] if r["before"] else [])
        ids = sorted(set(before) | set(after), key=lambda i: (-before.get(i, (0,))[0], i))
        out.append(_bar_chart(
            "Findings by kind: before \u2192 after", ids,
            [("before", [before.get(i, (0,))[0] for i in ids], ["fill-before"] * len(ids)),
             ("after", [after.get(i, (0,))[0] for i in ids], ["fill-after"] * len(ids))],
            "No findings before or after"))
    else:
        after = _finding_counts(rows, lambda r: r["findings"] if r["known"] else [])
        ids = sorted(after, key=lambda i: (-after[i][0], i))
        out.append(_bar_chart(
            "Findings by kind (hosts)", ids,
            [("hosts", [after[i][0] for i in ids],
              ["fill-" + (after[i][1] or "unknown") for i in ids])],
            "No findings"))
    rungs = {}
    for row in rows:
        for rung in row["plan"]:
            rung = canonical_rung(rung)
            rungs[rung] = rungs.get(rung, 0) + 1
    if rungs:
        # Ladder order, so the chart reads like the remediate role will run it.
        names = sorted(rungs, key=lambda r: (RUNGS.index(r) if r in RUNGS else len(RUNGS), r))
        title = "Still planned after the run (hosts)" if kind == "remediate" else "Planned rungs (hosts)"
        out.append(_bar_chart(title, names, [("hosts", [rungs[r] for r in names], ["fill-info"] * len(names))],
                              "Nothing planned"))
    return out


def _severity_counts(findings: list) -> list:
    per_severity = {}
    for finding in findings:
        severity = _severity(finding)
        per_severity[severity] = per_severity.get(severity, 0) + 1
    return [(s, per_severity[s]) for s in list(SEVERITIES) + ["unknown"] if s in per_severity]


def _finding_view(findings: list) -> list:
    return [{"severity": _severity(f), "severity_text": str(f.get("severity") or "unknown"),
             "id": f.get("id") or "(no id)", "summary": _text(f.get("summary")), "rung": f.get("rung"),
             "evidence": [_text(e) for e in f.get("evidence") or []]}
            for f in sorted(findings, key=lambda f: _SEVERITY_RANK.get(_severity(f), len(SEVERITIES)))]


def _text(value) -> str:
    return "" if value is None else str(value)


def _items(value) -> list:
    """A list key of an entry as a list: a report from a future version (or a hand edit)
    must not stop the page from rendering."""
    return list(value) if isinstance(value, (list, tuple)) else ([] if value in (None, "") else [value])


def _listed(value, keys) -> list:
    """Items of a list key for the template: a dict's ``keys`` as text (empty when missing),
    anything else as its plain text."""
    out = []
    for item in _items(value):
        if isinstance(item, dict):
            view = {key: _text(item.get(key)) for key in keys}
            view["plain"] = None
        else:
            view = {"plain": _fact_text(item)}
        out.append(view)
    return out


def _status_flags(entry: dict) -> list:
    """Short remediate flags under the status badge: what a reader scanning the table
    must not miss (nothing changed, a restart owed, a person to act)."""
    flags = []
    if entry.get("check_mode"):
        flags.append("check mode" + (", would restart" if entry.get("would_reboot") else ""))
    if entry.get("reboot_pending"):
        flags.append("reboot pending")
    elif entry.get("restarted_first"):
        flags.append("restarted first")
    elif entry.get("rebooted"):
        flags.append("restarted")
    who = sorted({str(m["who"]) for m in _items(entry.get("manual")) if isinstance(m, dict) and m.get("who")})
    if who:
        flags.append("manual step: " + ", ".join(who))
    return flags


# Keys the table, the finding lists and the remediation section already show; every
# other key of a host entry (users, device_id, policy, ...) is listed as a fact.
_SHOWN_KEYS = frozenset(("findings", "plan", "before", "after", "error", "unreachable",
                         "outcome", "rungs_run", "join_type", "rungs_skipped", "manual",
                         "check_mode", "would_run", "would_reboot", "rebooted", "restarted_first",
                         "reboot_pending", "quarantines"))


def _fact_text(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fact_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return str(value)


def _facts(entry: dict) -> list:
    # False flags (rebooted: no, check mode: no) are the normal case and only add noise.
    keys = sorted((k for k in entry if k not in _SHOWN_KEYS and entry[k] not in (None, "", [], {}, False)),
                  key=lambda k: (k != "outcome_reason", str(k)))
    return [(str(k).replace("_", " "), _fact_text(entry[k])) for k in keys]


def _row_view(row: dict) -> dict:
    entry = row["entry"]
    view = dict(row)
    view.update({
        "state_label": _STATE_LABELS[row["state"]],
        "flags": _status_flags(entry),
        "join_now": row["join_type"],
        "join_was": row["before"]["join_type"] if row["before"] else None,
        "severity_counts": _severity_counts(row["findings"]),
        "findings": _finding_view(row["findings"]),
        "after": _finding_view(row["after"]) if row["after"] is not None else None,
        "would_run": [_text(r) for r in _items(entry.get("would_run"))],
        "has_rebooted": "rebooted" in entry,
        "skipped": _listed(entry.get("rungs_skipped"), ("rung", "reason")),
        "manual": _listed(entry.get("manual"), ("who", "rung", "step")),
        "quarantines": _listed(entry.get("quarantines"), ("user", "sid", "quarantine_id", "quarantine_path")),
        "facts": _facts(entry),
    })
    if row["before"] is not None:
        view["before"] = {"findings": _finding_view(row["before"]["findings"])}
        view["before_count"] = len(_problems(row["before"]["findings"]))
        view["not_after_why"] = "check mode" if entry.get("check_mode") else "not re-diagnosed"
        if row["after"] is not None:
            view["after_count"] = len(_problems(row["after"]))
    return view


_ENVIRONMENT = None


def _template():
    global _ENVIRONMENT
    if _ENVIRONMENT is None:
        import jinja2  # ansible-core's own dependency; imported late (see the module docstring)

        _ENVIRONMENT = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True,
                                          keep_trailing_newline=True, undefined=jinja2.Undefined)
    return _ENVIRONMENT.get_template(TEMPLATE)


def render_html(report: dict) -> str:
    """Return the report as one self-contained HTML document (str).

    Raises TypeError if report is not a dict and ValueError naming the offending key
    when the structure does not follow the report contract.
    """
    kind, rows = _normalise(report)
    remediate = kind == "remediate" or any(r["before"] is not None for r in rows)
    head = ["Host", "Status", "Join type", "Findings", "Plan"]
    if remediate:
        head[4] = "Still planned"
        head += ["Rungs run", "Before \u2192 after"]
    head.append("Details")
    cards = [("hosts", len(rows))] + [(label, count) for label, count, _state in _state_counts(kind, rows)]
    check_mode = report.get("check_mode") is True
    return _template().render(
        title="m365ops.activation %s report%s" % (kind, " (check mode)" if check_mode else ""),
        generated=report.get("generated"), csp=_CSP, check_mode=check_mode, slice_lines=describe_slices(report),
        cards=cards, charts=_charts(kind, rows), head=head, remediate_columns=remediate,
        rows=[_row_view(row) for row in rows])
