# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render a fleet report (report.json shape, see docs/development.md) as one HTML page.

The page is self-contained on purpose: it is attached to tickets, mailed, opened from
AWX artifacts on machines without Internet access, so it carries its CSS and its SVG
charts inline and loads nothing. A Content-Security-Policy forbids scripts and remote
loads, so even a report built from hostile evidence (a host named ``<script>``) cannot
run code in the reader's browser; every string is also escaped.

Pure Python, no Ansible imports: the report writer, the offline triage and the tests
share it.
"""

from __future__ import annotations

import html
import json

from .triage import PROBLEM_SEVERITIES, RUNGS, SEVERITIES

KINDS = ("triage", "diagnose", "remediate", "tenant")
OUTCOMES = ("fixed", "improved", "unchanged", "failed", "needs_user")

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

_CSS = """
:root{--fg:#1b1f24;--muted:#59636e;--line:#d1d9e0;--bg:#ffffff;--panel:#f6f8fa;
--critical:#8b0000;--high:#cf222e;--medium:#bc4c00;--low:#9a6700;--info:#0969da;
--ok:#1a7f37;--warn:#bc4c00;--bad:#cf222e;--grey:#6e7781}
*{box-sizing:border-box}
body{margin:0;padding:24px 32px;font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:var(--fg);background:var(--bg)}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:16px;margin:28px 0 10px}
.meta{color:var(--muted);margin:0 0 18px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:0 0 8px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 16px;min-width:120px;background:var(--panel)}
.card .n{font-size:24px;font-weight:600;display:block}
.card .l{color:var(--muted)}
.charts{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start;margin-top:16px}
.chart{margin:0;border:1px solid var(--line);border-radius:8px;padding:12px;background:var(--bg)}
.chart h3{font-size:14px;margin:0 0 8px}
svg text{font:12px -apple-system,"Segoe UI",Roboto,Arial,sans-serif;fill:var(--fg)}
table{border-collapse:collapse;width:100%;margin-top:4px}
th,td{border-bottom:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}
th{background:var(--panel);font-weight:600;position:sticky;top:0}
td.host{font-family:ui-monospace,SFMono-Regular,Consolas,monospace;max-width:30ch;overflow-wrap:break-word}
td.details{min-width:320px;overflow-wrap:anywhere}
.badge{display:inline-block;border-radius:10px;padding:0 8px;margin:1px 2px 1px 0;font-size:12px;
color:#fff;background:var(--grey);white-space:nowrap}
.sev-critical{background:var(--critical)}.sev-high{background:var(--high)}
.sev-medium{background:var(--medium)}.sev-low{background:var(--low)}.sev-info{background:var(--info)}
.st-healthy,.st-fixed{background:var(--ok)}.st-improved{background:#4d8f2a}
.st-with_findings,.st-needs_user,.st-unchanged{background:var(--warn)}
.st-error,.st-failed,.st-unreachable{background:var(--bad)}
.rung{font-family:ui-monospace,SFMono-Regular,Consolas,monospace;font-size:12px}
.none{color:var(--muted)}
details summary{cursor:pointer;color:var(--info)}
details ul{margin:6px 0;padding-left:18px}
details .err{color:var(--bad);white-space:pre-wrap}
details dl{display:grid;grid-template-columns:minmax(0,max-content) minmax(0,1fr);gap:2px 12px;margin:6px 0}
details dt{color:var(--muted)}details dd{margin:0;word-break:break-word}
.why{color:var(--muted);font-size:12px;max-width:260px;margin-top:2px}
.flag{font-size:12px;font-weight:600;margin-top:2px}
.ev{color:var(--muted);font-family:ui-monospace,SFMono-Regular,Consolas,monospace;font-size:12px}
.fill-critical{fill:var(--critical)}.fill-high{fill:var(--high)}.fill-medium{fill:var(--medium)}
.fill-low{fill:var(--low)}.fill-info{fill:var(--info)}.fill-unknown{fill:var(--grey)}
.fill-healthy,.fill-fixed{fill:var(--ok)}.fill-improved{fill:#4d8f2a}
.fill-with_findings,.fill-needs_user,.fill-unchanged{fill:var(--warn)}
.fill-error,.fill-failed,.fill-unreachable{fill:var(--bad)}
.fill-before{fill:#8c959f}.fill-after{fill:var(--info)}
@media print{th{position:static}details{display:block}}
"""


def _esc(value) -> str:
    """Text for HTML content or a quoted attribute; None becomes empty."""
    if value is None:
        return ""
    return html.escape(str(value), quote=True)


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


def _actionable(findings: list) -> list:
    """Findings that count as a problem (the triage rules' PROBLEM_SEVERITIES)."""
    return [f for f in findings if f.get("severity") in PROBLEM_SEVERITIES]


def _worst_severity(findings: list):
    ranked = [_severity(f) for f in findings if _severity(f) != "unknown"]
    if not ranked:
        return None
    return min(ranked, key=lambda s: _SEVERITY_RANK[s])


def _host_state(entry: dict) -> str:
    """One state per host; a remediate outcome wins over a generic error because it
    says how far the ladder got (the error is still shown in the details)."""
    # Imported here, not at the top: report.py imports this module to write report.html,
    # and healthy must mean exactly what report.md and report.json's summary say.
    from .report import is_healthy

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


def _bar_chart(title: str, labels: list, series: list, empty_text: str) -> str:
    """Horizontal bars, one group per label.

    series: list of (name, values, css classes) where values and classes run parallel
    to labels. One series draws plain bars; two or more draw grouped bars and a legend.
    """
    label_w, bar_w, bar_h, gap = 210, 300, 16, 10
    group_h = bar_h * len(series) + gap
    legend_h = 22 if len(series) > 1 else 0
    width = label_w + bar_w + 50
    parts = []
    if not labels:
        height = 60
        parts.append('<text x="%d" y="34" text-anchor="middle">%s</text>'
                     % (width // 2, _esc(empty_text)))
    else:
        height = legend_h + group_h * len(labels) + 8
        peak = max([max(values) for _name, values, _cls in series] + [1])
        if legend_h:
            x = label_w
            for name, _values, classes in series:
                parts.append('<rect x="%d" y="4" width="12" height="12" class="%s"/>'
                             % (x, _esc(classes[0])))
                parts.append('<text x="%d" y="14">%s</text>' % (x + 16, _esc(name)))
                x += 16 + 8 * len(name) + 16
        for i, label in enumerate(labels):
            top = legend_h + i * group_h
            shown = label if len(label) <= 30 else label[:29] + "\u2026"
            parts.append('<text x="%d" y="%d" text-anchor="end"><title>%s</title>%s</text>'
                         % (label_w - 8, top + bar_h * len(series) / 2 + 4, _esc(label), _esc(shown)))
            for j, (name, values, classes) in enumerate(series):
                value = values[i]
                y = top + j * bar_h
                w = 0 if not value else max(2, round(bar_w * value / peak))
                parts.append('<rect x="%d" y="%d" width="%d" height="%d" rx="2" class="%s">'
                             '<title>%s: %s</title></rect>'
                             % (label_w, y + 1, w, bar_h - 2, _esc(classes[i]),
                                _esc(label if len(series) == 1 else "%s (%s)" % (label, name)), value))
                parts.append('<text x="%d" y="%d">%s</text>' % (label_w + w + 6, y + bar_h - 4, value))
    return ('<figure class="chart"><h3>%s</h3>'
            '<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="%s" width="%d" height="%d" '
            'viewBox="0 0 %d %d">%s</svg></figure>'
            % (_esc(title), _esc(title), width, height, width, height, "".join(parts)))


def _charts(kind: str, rows: list) -> str:
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
            rungs[rung] = rungs.get(rung, 0) + 1
    if rungs:
        # Ladder order, so the chart reads like the remediate role will run it.
        names = sorted(rungs, key=lambda r: (RUNGS.index(r) if r in RUNGS else len(RUNGS), r))
        title = "Still planned after the run (hosts)" if kind == "remediate" else "Planned rungs (hosts)"
        out.append(_bar_chart(title, names, [("hosts", [rungs[r] for r in names], ["fill-info"] * len(names))],
                              "Nothing planned"))
    return '<section class="charts">%s</section>' % "".join(out)


def _badge(text: str, css: str) -> str:
    return '<span class="badge %s">%s</span>' % (_esc(css), _esc(text))


_UNKNOWN = '<span class="none">not diagnosed</span>'


def _finding_badges(findings: list) -> str:
    if not findings:
        return '<span class="none">none</span>'
    per_severity = {}
    for finding in findings:
        severity = _severity(finding)
        per_severity[severity] = per_severity.get(severity, 0) + 1
    order = list(SEVERITIES) + ["unknown"]
    return "".join(_badge("%d %s" % (per_severity[s], s), "sev-" + s)
                   for s in order if s in per_severity)


def _rung_list(rungs: list) -> str:
    if not rungs:
        return '<span class="none">none</span>'
    return "<br>".join('<span class="rung">%s</span>' % _esc(r) for r in rungs)


def _join_cell(row: dict) -> str:
    now = row["join_type"]
    was = row["before"]["join_type"] if row["before"] else None
    if was and now and was != now:
        return "%s \u2192 %s" % (_esc(was), _esc(now))
    return _esc(now or was) or '<span class="none">unknown</span>'


def _before_after_cell(row: dict) -> str:
    if row["before"] is None:
        return '<span class="none">not run</span>'
    was = len(_actionable(row["before"]["findings"]))
    if row["after"] is None:
        why = "check mode" if row["entry"].get("check_mode") else "not re-diagnosed"
        return '%d \u2192 <span class="none">%s</span>' % (was, why)
    now = len(_actionable(row["after"]))
    return "%d \u2192 %d finding%s" % (was, now, "" if now == 1 else "s")


def _finding_list(findings: list) -> str:
    if not findings:
        return '<p class="none">No findings.</p>'
    items = []
    for finding in sorted(findings, key=lambda f: _SEVERITY_RANK.get(_severity(f), len(SEVERITIES))):
        severity = _severity(finding)
        evidence = finding.get("evidence") or []
        rung = finding.get("rung")
        items.append(
            "<li>%s <b>%s</b> %s%s%s</li>" % (
                _badge(str(finding.get("severity") or "unknown"), "sev-" + severity),
                _esc(finding.get("id") or "(no id)"),
                _esc(finding.get("summary")),
                ' <span class="rung">[%s]</span>' % _esc(rung) if rung else "",
                "".join('<div class="ev">%s</div>' % _esc(e) for e in evidence)))
    return "<ul>%s</ul>" % "".join(items)


def _items(value) -> list:
    """A list key of an entry as a list: a report from a future version (or a hand edit)
    must not stop the page from rendering."""
    return list(value) if isinstance(value, (list, tuple)) else ([] if value in (None, "") else [value])


def _field(item, key) -> str:
    return _esc(item.get(key)) if isinstance(item, dict) and item.get(key) is not None else ""


def _listed(items, render) -> str:
    return "<ul>%s</ul>" % "".join(
        "<li>%s</li>" % (render(i) if isinstance(i, dict) else _esc(_fact_text(i))) for i in items)


def _remediation(row: dict) -> str:
    """What the remediate role did (remediation.build_host_entry's keys), in the words of
    report.md: run or would run, restarts, rungs not run and why, manual steps, and where
    the TokenBroker caches were quarantined (the undo guide points here)."""
    entry = row["entry"]
    body = []
    if entry.get("check_mode"):
        body.append("<p>Check mode: nothing was changed on the host. Would run: %s. Would restart: %s.</p>"
                    % (", ".join(_esc(r) for r in _items(entry.get("would_run"))) or "nothing",
                       "yes" if entry.get("would_reboot") else "no"))
    else:
        body.append("<p>Rungs run: %s</p>" % (", ".join(_esc(r) for r in row["rungs_run"]) or "none"))
        if "rebooted" in entry:
            first = " (first, for a restart an earlier run left pending)" if entry.get("restarted_first") else ""
            body.append("<p>Restarted: %s%s</p>" % ("yes" if entry["rebooted"] else "no", first))
        if entry.get("reboot_pending"):
            body.append('<p class="err">Reboot pending: a restart is needed and was not allowed in this run.</p>')
    skipped = _items(entry.get("rungs_skipped"))
    if skipped:
        body.append("<h4>Not run</h4>" + _listed(skipped, lambda s: '<span class="rung">%s</span> %s'
                                                 % (_field(s, "rung"), _field(s, "reason"))))
    manual = _items(entry.get("manual"))
    if manual:
        body.append("<h4>Manual steps</h4>" + _listed(manual, lambda m: 'left to the %s: <span class="rung">%s</span>%s'
                                                      % (_field(m, "who") or "admin", _field(m, "rung"),
                                                         (" \u2014 " + _field(m, "step")) if _field(m, "step") else "")))
    quarantines = _items(entry.get("quarantines"))
    if quarantines:
        body.append("<h4>TokenBroker quarantines</h4>" + _listed(quarantines, lambda q: "%s (%s): quarantine_id <code>%s</code>%s"
                                                                 % (_field(q, "user") or _field(q, "sid"), _field(q, "sid"),
                                                                    _field(q, "quarantine_id"),
                                                                    (" in " + _field(q, "quarantine_path"))
                                                                    if _field(q, "quarantine_path") else "")))
    return "".join(body)


def _status_flags(entry: dict) -> str:
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
    return "".join('<div class="flag">%s</div>' % _esc(f) for f in flags)


def _details(row: dict) -> str:
    entry = row["entry"]
    body = []
    if entry.get("error"):
        body.append('<p class="err">%s</p>' % _esc(entry["error"]))
    if row["before"] is not None:
        body.append("<h4>Before</h4>" + _finding_list(row["before"]["findings"]))
        body.append(_remediation(row))
        after = _finding_list(row["after"]) if row["after"] is not None else '<p class="none">Not re-diagnosed.</p>'
        body.append("<h4>After</h4>" + after)
    elif row["known"]:
        body.append(_finding_list(row["findings"]))
    if row["plan"]:
        body.append("<p>Plan: %s</p>" % ", ".join('<span class="rung">%s</span>' % _esc(r) for r in row["plan"]))
    body.append(_facts(entry))
    return "<details><summary>details</summary>%s</details>" % "".join(body)


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


def _facts(entry: dict) -> str:
    # False flags (rebooted: no, check mode: no) are the normal case and only add noise.
    keys = sorted((k for k in entry if k not in _SHOWN_KEYS and entry[k] not in (None, "", [], {}, False)),
                  key=lambda k: (k != "outcome_reason", str(k)))
    if not keys:
        return ""
    return "<dl>%s</dl>" % "".join(
        "<dt>%s</dt><dd>%s</dd>" % (_esc(str(k).replace("_", " ")), _esc(_fact_text(entry[k])))
        for k in keys)


def _table(kind: str, rows: list) -> str:
    remediate = kind == "remediate" or any(r["before"] is not None for r in rows)
    head = ["Host", "Status", "Join type", "Findings", "Plan"]
    if remediate:
        head[4] = "Still planned"
        head += ["Rungs run", "Before \u2192 after"]
    head.append("Details")
    body = []
    for row in rows:
        cells = [
            '<td class="host">%s</td>' % _esc(row["host"]),
            "<td>%s%s%s</td>" % (_badge(_STATE_LABELS[row["state"]], "st-" + row["state"]),
                                 _status_flags(row["entry"]),
                                 '<div class="why">%s</div>' % _esc(row["entry"]["outcome_reason"])
                                 if row["entry"].get("outcome_reason") else ""),
            "<td>%s</td>" % _join_cell(row),
            "<td>%s</td>" % (_finding_badges(row["findings"]) if row["known"] else _UNKNOWN),
            "<td>%s</td>" % (_rung_list(row["plan"]) if row["known"] else _UNKNOWN),
        ]
        if remediate:
            cells.append("<td>%s</td>" % _rung_list(row["rungs_run"]))
            cells.append("<td>%s</td>" % _before_after_cell(row))
        cells.append('<td class="details">%s</td>' % _details(row))
        body.append('<tr class="host-row" data-host="%s" data-state="%s">%s</tr>'
                    % (_esc(row["host"]), _esc(row["state"]), "".join(cells)))
    if not body:
        body.append('<tr><td colspan="%d" class="none">No hosts in this report.</td></tr>' % len(head))
    return ('<table id="hosts"><thead><tr>%s</tr></thead><tbody>%s</tbody></table>'
            % ("".join("<th>%s</th>" % h for h in head), "".join(body)))


def _cards(kind: str, rows: list) -> str:
    cards = [("hosts", len(rows))]
    for label, count, _state in _state_counts(kind, rows):
        cards.append((label, count))
    return '<section class="cards">%s</section>' % "".join(
        '<div class="card"><span class="n">%d</span><span class="l">%s</span></div>' % (n, _esc(label))
        for label, n in cards)


def render_html(report: dict) -> str:
    """Return the report as one self-contained HTML document (str).

    Raises TypeError if report is not a dict and ValueError naming the offending key
    when the structure does not follow the report contract.
    """
    kind, rows = _normalise(report)
    title = "m365ops.activation %s report" % kind
    generated = report.get("generated")
    meta = "%d host%s" % (len(rows), "" if len(rows) == 1 else "s")
    if generated:
        meta = "Generated %s \u00b7 %s" % (_esc(generated), meta)
    return "".join((
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        '<meta http-equiv="Content-Security-Policy" content="%s">' % _esc(_CSP),
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>%s</title><style>%s</style></head>\n<body>" % (_esc(title), _CSS),
        '<h1>%s</h1><p class="meta">%s</p>' % (_esc(title), meta),
        _cards(kind, rows),
        _charts(kind, rows),
        "<h2>Hosts</h2>",
        _table(kind, rows),
        "</body></html>\n",
    ))
