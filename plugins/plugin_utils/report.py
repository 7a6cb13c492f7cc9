# -*- coding: utf-8 -*-
# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""report.json / report.md for every playbook (triage, diagnose, remediate, tenant).

Shape (docs/development.md)::

    {"kind": "triage", "generated": "2026-11-26T18:00:00Z",
     "hosts": {"PC042": {"join_type": ..., "findings": [...], "plan": [...]},
               "PC043": {"error": "..."}},
     "summary": {"hosts": 2, "healthy": 0, "with_findings": 1, "errors": 1,
                 "rungs": {"reset_token_broker": 1}}}
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from datetime import datetime, timezone

from .evidence import make_private_dirs, write_private
from .ladder import KINDS, RUNGS, canonical_rung, findings_of, is_healthy, is_problem, state_of
from .report_html import render_html
from .report_slices import describe_slices, job_document_identity, slice_identity
# The report published as AWX job artifacts (set_stats) when its JSON is no larger than this:
# below AWX's MAX_EVENT_RES_DATA (700000 bytes, awx/settings/defaults.py), the size above which
# AWX drops event data. A larger report is published trimmed (artifact_of).
ARTIFACT_MAX_BYTES = 512000
ARTIFACT_KEY = 'm365_report'
JSON_NAME = 'report.json'
MD_NAME = 'report.md'
HTML_NAME = 'report.html'
# A check-mode (--check) report goes to this subfolder of the report folder, so a dry run
# never replaces the report of a real run (docs/reports.md, "Check mode").
CHECK_DIR = 'check'
CHECK_MODE_NOTE = 'check mode (--check): nothing was changed on any host'


def _is_error(entry: dict) -> bool:
    """Counted among the errors: unreachable, or carrying an error (a remediate entry
    that failed keeps its state too; report_html and the AWX summary count it here)."""
    return bool(entry.get('unreachable') or entry.get('error'))


def _has_state(entry: dict) -> bool:
    return 'findings' in entry or 'before' in entry or 'after' in entry


def summarise(hosts: dict) -> dict:
    summary = {'hosts': len(hosts), 'healthy': 0, 'with_findings': 0, 'errors': 0, 'rungs': {}}
    for entry in hosts.values():
        if _is_error(entry):
            summary['errors'] += 1
            continue
        if is_healthy(entry):
            summary['healthy'] += 1
        else:
            summary['with_findings'] += 1
        # A report written before a rung was renamed counts under today's name.
        for rung in state_of(entry).get('plan') or []:
            rung = canonical_rung(rung)
            summary['rungs'][rung] = summary['rungs'].get(rung, 0) + 1
    summary['rungs'] = {rung: summary['rungs'][rung] for rung in RUNGS if rung in summary['rungs']}
    if any('outcome' in entry for entry in hosts.values()):
        outcomes = {}
        for entry in hosts.values():
            if entry.get('outcome'):
                outcomes[entry['outcome']] = outcomes.get(entry['outcome'], 0) + 1
        summary['outcomes'] = outcomes
    return summary


def to_plain(value):
    """Deep copy as plain JSON types. Values templated by Ansible arrive as str/dict
    subclasses (tagged or unsafe); the report files must hold plain data only."""
    if isinstance(value, Mapping):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def _now():
    return datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def build_report(kind: str, hosts: dict, generated: str = None, check_mode: bool = False,
                 run_slice=None) -> dict:
    """The report dict. Raises ValueError naming the parameter on bad input.

    ``check_mode``: the report of a --check run; ``check_mode: true`` is then set on the
    report and on its summary (what the roles publish as job artifacts).
    ``run_slice``: which slice of a sliced run (or which AWX job) this is
    (report_slices.slice_identity); kept as ``slice`` when it says anything."""
    if kind not in KINDS:
        raise ValueError('kind: %r is not one of %s' % (kind, ', '.join(KINDS)))
    if not isinstance(hosts, Mapping):
        raise ValueError('hosts: expected a mapping of host name to entry, got %s' % type(hosts).__name__)
    for name, entry in hosts.items():
        if not isinstance(entry, Mapping):
            raise ValueError('hosts: entry for %r must be a mapping, got %s' % (name, type(entry).__name__))
        if not entry.get('error') and not entry.get('unreachable') and 'findings' not in entry \
                and 'after' not in entry:
            raise ValueError('hosts: entry for %r has neither "findings" nor "error"' % (name,))
    if generated is not None and not isinstance(generated, str):
        raise ValueError('generated: expected an ISO-8601 string')
    if not isinstance(check_mode, bool):
        raise ValueError('check_mode: expected a boolean, got %r' % (check_mode,))
    identity = slice_identity(run_slice)
    ordered = {str(name): to_plain(hosts[name]) for name in sorted(hosts, key=str)}
    report = {'kind': kind, 'generated': generated or _now(), 'hosts': ordered, 'summary': summarise(ordered)}
    if identity:
        report['slice'] = identity
    if check_mode:
        report['check_mode'] = True
        report['summary']['check_mode'] = True
    return report


def report_folder(report_dir: str, report: dict) -> str:
    """Where a report is written: ``report_dir``, or its ``check`` subfolder for a
    check-mode report."""
    return os.path.join(report_dir, CHECK_DIR) if report.get('check_mode') else report_dir


def summary_line(host: str, entry: dict) -> str:
    """One line per host for the console: its problems (is_problem; an informational
    finding is no reason to look at a healthy host) and its plan."""
    if entry.get('error'):
        return '%s: ERROR %s' % (host, entry['error'])
    problems = [f['id'] for f in findings_of(entry) if is_problem(f)]
    plan = entry.get('plan') or []
    if plan:
        planned = ' > '.join(plan)
    else:
        planned = 'no automatic rung, see the findings' if problems else 'nothing to do'
    return '%s: %s; %s; plan: %s' % (
        host, entry.get('join_type'), ('findings: ' + ', '.join(problems)) if problems else 'healthy', planned)


def host_line(host: str, entry: dict) -> str:
    """One line per host for the console, as the offline triage prints it (findings count
    problems only: an informational finding is no reason to look at a healthy host)."""
    if entry.get('unreachable'):
        return '%s: UNREACHABLE %s' % (host, entry.get('error') or '')
    return summary_line(host, state_of(entry) if not entry.get('error') else entry)


def host_failure(entry, unreachable: bool = True, outcomes=(), plan: bool = False, unhealthy: bool = False) -> str:
    """Why one host's entry fails the run, or '' when it does not: the rule every role that
    fails hosts after writing its report applies (remediate: always for hosts it could not
    reach or diagnose, and by ``remediate_fail_on``; diagnose: by
    ``diagnose_fail_on_unreachable`` and ``diagnose_fail_on_findings``).

    ``unreachable``: fail a host that was not reached or not diagnosed (an entry with
    ``unreachable``, or an ``error`` and no outcome, or no result at all); ``outcomes``:
    fail a host whose remediate ``outcome`` is one of them; ``plan``: fail a host whose
    latest state plans a rung; ``unhealthy``: fail a host whose latest state is not healthy
    (ladder.is_healthy: a plan, or a problem finding even when no rung answers it).
    """
    if not isinstance(entry, Mapping) or not entry:
        return 'error: no result' if unreachable else ''
    outcome = entry.get('outcome')
    if entry.get('unreachable'):
        return ('unreachable: %s' % (entry.get('error') or 'the host could not be reached')) if unreachable else ''
    if outcome is None and (entry.get('error') or not _has_state(entry)):
        return ('error: %s' % (entry.get('error') or 'no result')) if unreachable else ''
    if outcome is not None and outcome in (outcomes or ()):
        return '%s: %s' % (outcome, entry.get('outcome_reason') or entry.get('error') or 'no reason given')
    if plan and state_of(entry).get('plan'):
        return 'plan: %s' % ', '.join(str(rung) for rung in state_of(entry)['plan'])
    if unhealthy and not is_healthy(entry):
        return 'findings: %s' % ', '.join(str(f.get('id')) for f in findings_of(state_of(entry)) if is_problem(f))
    return ''


# Characters that start Markdown (or inline HTML) anywhere in a line. CommonMark renders any
# ASCII punctuation preceded by a backslash as itself, so escaping them is always safe. Left
# alone, to keep report.md readable: an underscore inside a word (snake_case never starts
# emphasis) and a backslash before anything but punctuation (CONTOSO\alice is literal).
_MD_INLINE = re.compile(r'\\(?=[!-/:-@\[-`{-~])|[`*\[\]<>#|~&]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])')
# ... and at the start of a line: list items, block quotes, setext underlines, ordered lists.
_MD_LINE_START = re.compile(r'^(\s*)([-+=>]|\d+[.)])')


def _cell(text) -> str:
    """Text from a report (host names, summaries, evidence, errors: anything a host or Graph
    said) as literal Markdown: one line, every character that could start a link, an image,
    inline HTML, emphasis, code or a table cell escaped. report.md says what report.html does,
    and neither can be made to show markup that was not in the report."""
    text = ' '.join(str('' if text is None else text).splitlines())
    text = _MD_INLINE.sub(lambda m: '\\' + m.group(0), text)
    return _MD_LINE_START.sub(lambda m: m.group(1) + (m.group(2)[:-1] + '\\' + m.group(2)[-1]
                                                      if m.group(2)[0].isdigit() else '\\' + m.group(2)), text)


def _code(value) -> str:
    """A value as an inline code span: literal inside, so only backticks need care (a longer
    fence), and the pipe, which still ends a table cell in GitHub's tables."""
    text = ' '.join(str('' if value is None else value).splitlines()).replace('|', '\\|')
    fence = '`' * (max((len(run) for run in re.findall('`+', text)), default=0) + 1)
    pad = ' ' if text.startswith('`') or text.endswith('`') else ''
    return '%s%s%s%s%s' % (fence, pad, text, pad, fence)


def _render_state(lines, state, heading=None):
    if heading:
        lines.append('**%s**' % heading)
        lines.append('')
    # Tenant entries for a user or for the tenant itself have no device, so no join type.
    if state.get('join_type'):
        lines.append('- join type: %s' % _code(state['join_type']))
    plan = state.get('plan') or []
    findings = state.get('findings') or []
    if plan:
        planned = ' → '.join(_code(rung) for rung in plan)
    elif any(is_problem(f) for f in findings):
        planned = 'no automatic rung; see the findings'
    else:
        planned = 'nothing to do'
    lines.append('- plan: %s' % planned)
    lines.append('')
    if findings:
        lines.append('| severity | finding | rung | summary |')
        lines.append('|---|---|---|---|')
        for finding in findings:
            lines.append('| %s | %s | %s | %s |' % (
                _cell(finding.get('severity')), _code(finding.get('id')),
                _code(finding['rung']) if finding.get('rung') else '–', _cell(finding.get('summary', ''))))
        lines.append('')
        for finding in findings:
            if finding.get('evidence'):
                lines.append('- %s rests on:' % _code(finding.get('id')))
                for item in finding['evidence']:
                    lines.append('  - %s' % _cell(item))
        lines.append('')


def _rung_list(rungs, empty) -> str:
    return ', '.join(_code(rung) for rung in rungs) or empty


def _render_remediation(lines, entry):
    """What the remediate role did to one host (remediation.build_host_entry's keys)."""
    reason = ' (%s)' % _cell(entry['outcome_reason']) if entry.get('outcome_reason') else ''
    lines.append('- outcome: %s%s' % (_code(entry.get('outcome', 'unknown')), reason))
    if entry.get('check_mode'):
        # In check mode the rung modules ran only to say what they would do: "rungs run"
        # would read as if the host had been changed.
        lines.append('- check mode: nothing was changed on the host')
        lines.append('- would run: %s' % _rung_list(entry.get('would_run') or [], 'nothing'))
        lines.append('- would restart: %s' % ('yes' if entry.get('would_reboot') else 'no'))
    else:
        lines.append('- rungs run: %s' % _rung_list(entry.get('rungs_run') or [], 'none'))
        if 'rebooted' in entry:
            lines.append('- restarted: %s' % ('yes' if entry['rebooted'] else 'no'))
        if entry.get('restarted_first'):
            lines.append('- restarted first: yes (an earlier run left its restart pending)')
        if entry.get('reboot_pending'):
            lines.append('- reboot pending: yes')
    for skipped in entry.get('rungs_skipped') or []:
        if isinstance(skipped, dict):
            lines.append('- not run: %s (%s)' % (_code(skipped.get('rung')), _cell(skipped.get('reason', ''))))
    for manual in entry.get('manual') or []:
        if isinstance(manual, dict):
            step = ': %s' % _cell(manual['step']) if manual.get('step') else ''
            lines.append('- left to the %s: %s%s' % (_cell(manual.get('who', 'admin')), _code(manual.get('rung')), step))
    # The way back from rung 3: win_token_broker_cache state=restored with this id.
    for quarantine in entry.get('quarantines') or []:
        if isinstance(quarantine, dict):
            owner = _cell(quarantine.get('user') or quarantine.get('sid') or '')
            lines.append('- TokenBroker quarantine: %s (%s)' % (_code(quarantine.get('quarantine_id')), owner))
    lines.append('')


def render_markdown(report: dict) -> str:
    """A readable report.md for people who will not open the JSON."""
    summary = report.get('summary') or summarise(report.get('hosts') or {})
    lines = ['# m365ops.activation %s report%s' % (report.get('kind', ''), ' (check mode)' if report.get('check_mode') else ''),
             '']
    if report.get('check_mode'):
        lines += ['**Check mode**: a dry run (`--check`); nothing was changed on any host. Kept apart from the '
                  'reports of real runs, in the `%s` subfolder.' % CHECK_DIR, '']
    for line in describe_slices(report):
        lines += ['**%s**' % _cell(line), '']
    lines += ['Generated %s.' % _cell(report.get('generated', '')), '',
              '| hosts | healthy | with findings | errors |', '|---|---|---|---|',
              '| %d | %d | %d | %d |' % (summary['hosts'], summary['healthy'], summary['with_findings'],
                                         summary['errors']), '']
    if summary.get('rungs'):
        lines.append('Rungs planned: ' + ', '.join('%s × %d' % (_code(rung), count)
                                                   for rung, count in summary['rungs'].items()))
        lines.append('')
    for name, entry in (report.get('hosts') or {}).items():
        lines.append('## %s' % _cell(name))
        lines.append('')
        if entry.get('error') or entry.get('unreachable'):
            lines.append('**%s**: %s' % ('Unreachable' if entry.get('unreachable') else 'Error',
                                         _cell(entry.get('error', ''))))
            lines.append('')
            if not _has_state(entry):
                continue
        if 'before' in entry or 'after' in entry:
            _render_remediation(lines, entry)
            if isinstance(entry.get('before'), dict):
                _render_state(lines, entry['before'], 'Before')
            if isinstance(entry.get('after'), dict):
                _render_state(lines, entry['after'], 'After')
            continue
        _render_state(lines, entry)
    return '\n'.join(lines).rstrip('\n') + '\n'


_write = write_private


def write_report(report: dict, report_dir: str) -> dict:
    """Write report.json, report.md and report.html under report_dir; return their paths.
    The caller picks the folder (``report_folder``: a check-mode report goes to its own).

    The files are 0600 and the folders this creates 0700: they hold user principal names,
    credential names and device ids."""
    if not isinstance(report_dir, str) or not report_dir:
        raise ValueError('report_dir: expected a folder path')
    if os.path.exists(report_dir) and not os.path.isdir(report_dir):
        raise ValueError('report_dir: %s exists and is not a folder' % report_dir)
    make_private_dirs(report_dir)
    paths = {'json': os.path.join(report_dir, JSON_NAME), 'md': os.path.join(report_dir, MD_NAME),
             'html': os.path.join(report_dir, HTML_NAME)}
    _write(paths['json'], json.dumps(report, indent=2, ensure_ascii=False) + '\n')
    _write(paths['md'], render_markdown(report))
    _write(paths['html'], render_html(report))
    return paths


def _size(value) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode('utf-8'))


def artifact_of(report: dict, max_bytes: int = ARTIFACT_MAX_BYTES) -> dict:
    """The report as published in the job artifacts: the whole report when its JSON fits in
    ``max_bytes``; else the same report with each host cut to what the fleet view needs
    (outcome, plan, finding ids and severities, error), ``truncated: true`` and the path
    hint, so the job still says which host needs what."""
    if _size(report) <= max_bytes:
        return report
    hosts = {}
    for name, entry in (report.get('hosts') or {}).items():
        state = state_of(entry)
        cut = {key: entry[key] for key in ('outcome', 'outcome_reason', 'error', 'unreachable', 'join_type')
               if key in entry}
        cut['plan'] = list(state.get('plan') or [])
        cut['findings'] = [{'id': f.get('id'), 'severity': f.get('severity'), 'rung': f.get('rung')}
                           for f in state.get('findings') or [] if isinstance(f, dict)]
        hosts[name] = cut
    trimmed = dict(report, hosts=hosts, truncated=True)
    if _size(trimmed) > max_bytes:
        trimmed['hosts'] = {}
        trimmed['hosts_left_out'] = len(hosts)
    return trimmed


def find_report(document, name: str = 'report_file') -> dict:
    """The report inside what a job leaves: a report.json itself, AWX's job ``artifacts``
    (``{"m365_report": ...}``), or ansible-runner's ``playbook_on_stats`` event
    (``event_data.artifact_data``). Raises ValueError when there is none."""
    candidates = [document]
    if isinstance(document, Mapping):
        candidates.append(document.get(ARTIFACT_KEY))
        event_data = document.get('event_data')
        if isinstance(event_data, Mapping) and isinstance(event_data.get('artifact_data'), Mapping):
            candidates.append(event_data['artifact_data'].get(ARTIFACT_KEY))
        if isinstance(document.get('artifacts'), Mapping):
            candidates.append(document['artifacts'].get(ARTIFACT_KEY))
    for candidate in candidates:
        if isinstance(candidate, Mapping) and candidate.get('kind') in KINDS \
                and isinstance(candidate.get('hosts'), Mapping):
            return dict(candidate)
    raise ValueError('%s: holds no m365ops.activation report (a report.json, AWX job artifacts '
                     'with %s, or an ansible-runner playbook_on_stats event)' % (name, ARTIFACT_KEY))


def _recorded_summary(report: dict, name: str) -> dict:
    """The summary a report's hosts give; a report whose hosts were all left out of its
    artifact (artifact_of) keeps the summary it was published with."""
    if report.get('hosts_left_out'):
        if not isinstance(report.get('summary'), Mapping):
            raise ValueError('%s: its hosts were left out of the artifact and it has no summary' % name)
        return to_plain(report['summary'])
    return summarise(report['hosts'])


def load_report(document, name: str = 'report_file') -> dict:
    """The report held by ``document`` (find_report), validated and summarised again as a
    report built here would be. What a report carries beside its hosts stays: its slice
    identity (filled from the AWX job document around it, when it is one), the slices of a
    merged report, and what artifact_of cut."""
    report = find_report(document, name)
    job = job_document_identity(document, name)
    identity = slice_identity(report.get('slice'), name + ': slice')
    if job:
        if identity and identity['job_id'] is not None and identity['job_id'] != job['job_id']:
            raise ValueError('%s: the report is of AWX job %d but the job document around it is job %d'
                             % (name, identity['job_id'], job['job_id']))
        identity = {key: job[key] if job[key] is not None else (identity or {}).get(key) for key in job}
    rebuilt = build_report(report['kind'], report['hosts'], generated=report.get('generated'),
                           check_mode=report.get('check_mode') is True, run_slice=identity)
    for key in ('truncated', 'hosts_left_out', 'slices', 'slices_missing'):
        if report.get(key):
            rebuilt[key] = to_plain(report[key])
    if report.get('hosts_left_out'):
        rebuilt['summary'] = _recorded_summary(report, name)
    return rebuilt


def _add_counts(total: dict, part: Mapping) -> dict:
    for key, value in part.items():
        if isinstance(value, bool):
            total[key] = total.get(key, False) or value
        elif isinstance(value, int):
            total[key] = total.get(key, 0) + value
        elif isinstance(value, Mapping):
            total[key] = _add_counts(dict(total.get(key) or {}), value)
    return total


def merge_reports(reports, allow_missing: bool = False, name: str = 'report_files') -> dict:
    """One fleet report from the reports of the slices of one sliced run.

    ``reports``: (label, report) pairs, the label (a file name) naming a report in errors;
    each report as load_report returns it. The merged report holds every host once, a summary
    that is the sum of the slices' summaries, and ``slices`` (each slice's identity, host count
    and time). Raises ValueError naming ``name`` for a mixed run: different kinds, a dry run
    with a real one, slices of different runs or counts, a slice given twice, a host in two
    slices, a report that is no slice, and, unless ``allow_missing``, slices missing (then the
    merged report lists them in ``slices_missing``)."""
    reports = list(reports)
    if not reports:
        raise ValueError('%s: no report given' % name)
    first_label, first = reports[0]
    slices, hosts, owner, total = [], {}, {}, {}
    seen_numbers, seen_jobs = {}, {}
    for label, report in reports:
        where = '%s: %s' % (name, label)
        if report.get('slices'):
            raise ValueError('%s is already a merged fleet report; merge the slice reports it came from' % where)
        if report['kind'] != first['kind']:
            raise ValueError('%s: mixed kinds: %s is a %s report, %s a %s report'
                             % (name, first_label, first['kind'], label, report['kind']))
        if bool(report.get('check_mode')) != bool(first.get('check_mode')):
            raise ValueError('%s: a check-mode (--check) report and a real one: %s and %s'
                             % (name, first_label if first.get('check_mode') else label,
                                label if first.get('check_mode') else first_label))
        identity = report.get('slice')
        if not identity:
            raise ValueError('%s carries no slice identity (neither a slice number nor an AWX job id): not a '
                             'slice of a sliced run' % where)
        for key, seen in (('number', seen_numbers), ('job_id', seen_jobs)):
            if identity[key] is not None and identity[key] in seen:
                raise ValueError('%s: %s and %s are both %s %d' % (
                    name, seen[identity[key]], label, 'slice' if key == 'number' else 'AWX job', identity[key]))
            if identity[key] is not None:
                seen[identity[key]] = label
        for key in ('count', 'workflow_job_id'):
            other = next((s for s in slices if s[key] is not None and identity[key] is not None
                          and s[key] != identity[key]), None)
            if other:
                raise ValueError('%s: slices of different runs: %s has %s %d, %s has %d' % (
                    name, other['file'], 'slice count' if key == 'count' else 'workflow job', other[key],
                    label, identity[key]))
        for host in report['hosts']:
            if host in owner:
                raise ValueError('%s: host %s is in two slices, %s and %s' % (name, host, owner[host], label))
            owner[host] = label
            hosts[host] = report['hosts'][host]
        _add_counts(total, _recorded_summary(report, where))
        slices.append(dict(identity, file=label, generated=report.get('generated'),
                           hosts=len(report['hosts']) + int(report.get('hosts_left_out') or 0),
                           **({'truncated': True} if report.get('truncated') else {})))
    count = next((s['count'] for s in slices if s['count'] is not None), None)
    missing = []
    if count is not None:
        numbers = {s['number'] for s in slices}
        missing = [number for number in range(1, count + 1) if number not in numbers]
        if missing and not allow_missing:
            raise ValueError('%s: slice%s %s of %d missing (given: %s); set allow_missing_slices to merge what '
                             'is there' % (name, '' if len(missing) == 1 else 's', ', '.join(map(str, missing)), count,
                                           ', '.join(sorted(str(s['number']) for s in slices))))
    merged = build_report(first['kind'], hosts, check_mode=bool(first.get('check_mode')))
    total['rungs'] = {rung: total['rungs'][rung] for rung in RUNGS if rung in total.get('rungs', {})}
    if merged.get('check_mode'):
        total['check_mode'] = True
    merged['summary'] = total
    left_out = sum(int(report.get('hosts_left_out') or 0) for _label, report in reports)
    if any(report.get('truncated') for _label, report in reports):
        merged['truncated'] = True
    if left_out:
        merged['hosts_left_out'] = left_out
    merged['slices'] = sorted(slices, key=lambda s: (s['number'] or 0, s['job_id'] or 0))
    if missing:
        merged['slices_missing'] = missing
    return merged
