# -*- coding: utf-8 -*-
# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which slice of a sliced run (AWX/AAP ``job_slice_count``) a report covers.

A report of one slice carries ``"slice": {"number", "count", "job_id", "workflow_job_id"}``
(unknown fields null); a report of an unsliced run outside AWX has no ``slice`` key. A fleet
report merged from slices carries ``"slices": [...]`` instead, and ``"slices_missing"`` when
some were not given (docs/reports.md, "Sliced jobs").

AWX hands a playbook ``awx_job_id`` and, for a job started by a workflow (which is how a sliced
job template runs its slices), ``awx_workflow_job_id`` as extra vars (awx/main/models/
unified_jobs.py, ``awx_meta_vars``). It does not hand it the slice number or count: those are
fields of the job in its API (``job_slice_number``, ``job_slice_count`` of GET /api/v2/jobs/N/),
which the merge reads from the job documents. Outside AWX a run that slices its inventory itself
passes them as the extra vars ``job_slice_number`` and ``job_slice_count``.

Pure Python, no Ansible imports: used by report.py and report_html.py alike.
"""

from __future__ import annotations

from collections.abc import Mapping

SLICE_KEYS = ('number', 'count', 'job_id', 'workflow_job_id')


def _whole_number(value, name: str):
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
        raise ValueError('%s: expected a whole number, got %r' % (name, value))
    try:
        number = int(str(value).strip()) if not isinstance(value, (int, float)) else int(value)
    except ValueError:
        raise ValueError('%s: expected a whole number, got %r' % (name, value)) from None
    if number < 1:
        raise ValueError('%s: expected 1 or more, got %d' % (name, number))
    return number


def slice_identity(value, name: str = 'slice', field_names: Mapping = None):
    """``value`` checked and normalised to the four ``SLICE_KEYS`` (None for the unknown ones),
    or None when it says nothing (no value, or every field unknown: not a slice, not an AWX job).
    A count of 1 is no slice: number and count are then None.

    Extra vars typed on a command line arrive as strings; ``"2"`` is read as 2. Raises
    ValueError naming the field (``name.<field>``, or its name in ``field_names``) on anything
    else."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError('%s: expected a mapping with %s, got %s' % (name, ', '.join(SLICE_KEYS), type(value).__name__))
    unknown = sorted(str(key) for key in value if key not in SLICE_KEYS)
    if unknown:
        raise ValueError('%s: unknown field(s) %s; known: %s' % (name, ', '.join(unknown), ', '.join(SLICE_KEYS)))
    label = {key: (field_names or {}).get(key) or '%s.%s' % (name, key) for key in SLICE_KEYS}
    identity = {key: _whole_number(value.get(key), label[key]) for key in ('count', 'job_id', 'workflow_job_id')}
    if identity['count'] == 1:
        # AWX's word for "not sliced" (its job then says slice number 0): no number or count.
        identity.update(number=None, count=None)
    else:
        identity['number'] = _whole_number(value.get('number'), label['number'])
    identity = {key: identity[key] for key in SLICE_KEYS}
    if (identity['number'] is None) != (identity['count'] is None):
        raise ValueError('%s and %s: give both or neither (got %r and %r)'
                         % (label['number'], label['count'], value.get('number'), value.get('count')))
    if identity['number'] is not None and identity['number'] > identity['count']:
        raise ValueError('%s: %d is beyond %s %d' % (label['number'], identity['number'], label['count'], identity['count']))
    if all(item is None for item in identity.values()):
        return None
    return identity


def job_document_identity(document, name: str):
    """The slice identity AWX's API gives a job (GET /api/v2/jobs/N/, ``awx jobs get N``):
    ``id``, ``job_slice_number`` and ``job_slice_count`` (1 when the job was not sliced, and
    then no number is given), and the workflow job that ran the slices. None for a document
    that is not an AWX job (a report.json, an ansible-runner event)."""
    if not isinstance(document, Mapping) or 'artifacts' not in document or 'id' not in document:
        return None
    workflow = (document.get('summary_fields') or {}).get('source_workflow_job') or {}
    return slice_identity({
        'job_id': document.get('id'),
        'number': document.get('job_slice_number'),
        'count': document.get('job_slice_count'),
        'workflow_job_id': workflow.get('id') if isinstance(workflow, Mapping) else None,
    }, name, field_names={'job_id': name + ': id', 'number': name + ': job_slice_number',
                          'count': name + ': job_slice_count', 'workflow_job_id': name + ': source_workflow_job.id'})


def _identity_text(identity: Mapping) -> str:
    parts = []
    if identity.get('number') is not None:
        parts.append('slice %d of %d' % (identity['number'], identity['count']))
    if identity.get('job_id') is not None:
        parts.append('AWX job %d' % identity['job_id'])
    if identity.get('workflow_job_id') is not None:
        parts.append('workflow job %d' % identity['workflow_job_id'])
    return ', '.join(parts)


def describe_slices(report: Mapping) -> list:
    """Plain-text lines for the head of report.md and report.html: which slice a slice's
    report covers, which slices a merged fleet report holds and which it lacks. Empty for
    the report of an unsliced run outside AWX."""
    lines = []
    identity = report.get('slice')
    if isinstance(identity, Mapping):
        text = _identity_text(identity)
        if identity.get('number') is not None and identity.get('count', 1) > 1:
            lines.append('%s%s: this report covers the hosts of this slice only; merge the slices for the '
                         'fleet report (playbooks/merge_reports.yml).' % (text[0].upper(), text[1:]))
        elif text:
            lines.append('Run: %s.' % text)
    slices = report.get('slices')
    if isinstance(slices, list) and slices:
        held = ['%s (%s host%s)' % (_identity_text(item) or 'unnamed slice', item.get('hosts', 0),
                                    '' if item.get('hosts', 0) == 1 else 's')
                for item in slices if isinstance(item, Mapping)]
        lines.append('Fleet report merged from %d slice%s: %s.' % (len(held), '' if len(held) == 1 else 's', '; '.join(held)))
    missing = report.get('slices_missing')
    if missing:
        lines.append('Incomplete: slice%s %s missing; the totals cover the slices above only.'
                     % ('' if len(missing) == 1 else 's', ', '.join(str(n) for n in missing) + (' is' if len(missing) == 1 else ' are')))
    return lines


# Where a run finds its own identity (slice_from_variables): AWX's extra vars (both of its
# prefixes, awx/main/constants.py JOB_VARIABLE_PREFIXES), and for the slice itself the names of
# AWX's job fields, which a runner that slices the inventory itself passes as extra vars.
SLICE_VARIABLES = {
    'number': ('job_slice_number',),
    'count': ('job_slice_count',),
    'job_id': ('awx_job_id', 'tower_job_id'),
    'workflow_job_id': ('awx_workflow_job_id', 'tower_workflow_job_id'),
}


def slice_from_variables(variables: Mapping):
    """The run's slice identity from its variables (SLICE_VARIABLES), or None outside AWX and
    unsliced; an error names the variable."""
    found, names = {}, {}
    for key, candidates in SLICE_VARIABLES.items():
        names[key] = next((n for n in candidates if variables.get(n) not in (None, '')), candidates[0])
        found[key] = variables.get(names[key])
    return slice_identity(found, 'slice', field_names=names)
