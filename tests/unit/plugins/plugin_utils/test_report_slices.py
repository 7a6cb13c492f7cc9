# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Slice identity of a report and the merge of the slices of a sliced run into a fleet report."""

from __future__ import annotations

import pytest

from ansible_collections.m365ops.activation.plugins.plugin_utils.report import (
    artifact_of, build_report, load_report, merge_reports, render_markdown, summarise,
)
from ansible_collections.m365ops.activation.plugins.plugin_utils.report_html import render_html
from ansible_collections.m365ops.activation.plugins.plugin_utils.report_slices import (
    describe_slices, job_document_identity, slice_from_variables, slice_identity,
)

FINDING = {'id': 'prt_missing', 'severity': 'high', 'summary': 'No PRT for alice.', 'evidence': [],
           'rung': 'reset_token_broker'}
HEALTHY = {'join_type': 'hybrid_joined', 'plan': [], 'findings': []}
SICK = {'join_type': 'hybrid_joined', 'plan': ['reset_token_broker'], 'findings': [FINDING]}
DOWN = {'unreachable': True, 'error': 'WinRM timeout'}
FIXED = {'outcome': 'fixed', 'before': SICK, 'after': HEALTHY, 'rungs_run': ['reset_token_broker'],
         'join_type': 'hybrid_joined', 'plan': [], 'findings': []}
UNCHANGED = {'outcome': 'unchanged', 'after': HEALTHY, 'rungs_run': [], 'join_type': 'hybrid_joined',
             'plan': [], 'findings': []}


def a_slice(number, hosts, count=2, kind='diagnose', job_id=None, workflow_job_id=100, **extra):
    identity = {'number': number, 'count': count, 'job_id': job_id or 100 + number, 'workflow_job_id': workflow_job_id}
    return build_report(kind, hosts, generated='2026-12-05T09:0%d:00Z' % number, run_slice=identity, **extra)


# --- identity ----------------------------------------------------------------------------------

def test_identity_is_normalised_and_command_line_strings_are_numbers():
    assert slice_identity({'number': '2', 'count': 4, 'job_id': 43}) == \
        {'number': 2, 'count': 4, 'job_id': 43, 'workflow_job_id': None}
    assert slice_identity(None) is None
    assert slice_identity({'number': None, 'count': '', 'job_id': None}) is None


@pytest.mark.parametrize('value, message', [
    ({'number': 3, 'count': 2}, 'slice.number: 3 is beyond slice.count 2'),
    ({'number': 1}, 'slice.number and slice.count: give both or neither (got 1 and None)'),
    ({'number': 0, 'count': 2}, 'slice.number: expected 1 or more, got 0'),
    ({'number': 'first', 'count': 2}, "slice.number: expected a whole number, got 'first'"),
    ({'job_id': True}, 'slice.job_id: expected a whole number, got True'),
    ({'slice_number': 1}, 'slice: unknown field(s) slice_number; known: number, count, job_id, workflow_job_id'),
    ([1, 2], 'slice: expected a mapping'),
])
def test_bad_identity_names_the_field(value, message):
    with pytest.raises(ValueError) as error:
        slice_identity(value)
    assert str(error.value).startswith(message)


def test_identity_from_the_run_variables():
    # What AWX passes a slice job: its id and the id of the workflow job running the slices.
    assert slice_from_variables({'awx_job_id': 43, 'awx_workflow_job_id': 41, 'tower_job_id': 43}) == \
        {'number': None, 'count': None, 'job_id': 43, 'workflow_job_id': 41}
    # A runner slicing the inventory itself passes the slice as AWX's job fields are named.
    assert slice_from_variables({'job_slice_number': '2', 'job_slice_count': '3'}) == \
        {'number': 2, 'count': 3, 'job_id': None, 'workflow_job_id': None}
    # A count of 1 is AWX's "not sliced"; no variable at all is a run outside AWX.
    assert slice_from_variables({'job_slice_number': 1, 'job_slice_count': 1, 'awx_job_id': 7})['count'] is None
    assert slice_from_variables({'job_slice_number': 1, 'job_slice_count': 1}) is None
    assert slice_from_variables({}) is None
    with pytest.raises(ValueError, match=r'^job_slice_number: 5 is beyond job_slice_count 4$'):
        slice_from_variables({'job_slice_number': 5, 'job_slice_count': 4})
    with pytest.raises(ValueError, match=r"^tower_job_id: expected a whole number, got 'x'$"):
        slice_from_variables({'tower_job_id': 'x'})


def test_identity_from_an_awx_job_document():
    # GET /api/v2/jobs/43/ of a slice job (JobSerializer: id, artifacts, job_slice_number/count,
    # summary_fields.source_workflow_job).
    document = {'id': 43, 'artifacts': {}, 'job_slice_number': 2, 'job_slice_count': 4,
                'summary_fields': {'source_workflow_job': {'id': 41, 'name': 'M365 activation - diagnose (sliced)'}}}
    assert job_document_identity(document, 'f') == {'number': 2, 'count': 4, 'job_id': 43, 'workflow_job_id': 41}
    # An unsliced job: AWX says job_slice_number 0, job_slice_count 1.
    assert job_document_identity({'id': 9, 'artifacts': {}, 'job_slice_number': 0, 'job_slice_count': 1}, 'f') == \
        {'number': None, 'count': None, 'job_id': 9, 'workflow_job_id': None}
    assert job_document_identity({'kind': 'diagnose', 'hosts': {}}, 'f') is None


# --- a slice's report ---------------------------------------------------------------------------

def test_a_slice_report_says_which_slice_it_is_and_an_unsliced_one_says_nothing():
    report = a_slice(1, {'PC1': SICK})
    assert report['slice'] == {'number': 1, 'count': 2, 'job_id': 101, 'workflow_job_id': 100}
    line = 'Slice 1 of 2, AWX job 101, workflow job 100: this report covers the hosts of this slice only'
    assert describe_slices(report)[0].startswith(line)
    assert line in render_markdown(report) and line in render_html(report)
    # The artifact the roles publish carries it, trimmed or not.
    assert artifact_of(report)['slice'] == report['slice']
    assert artifact_of(report, max_bytes=10)['slice'] == report['slice']
    plain = build_report('diagnose', {'PC1': SICK})
    assert 'slice' not in plain and describe_slices(plain) == []
    assert 'slice' not in render_markdown(plain).lower() and 'class="slice"' not in render_html(plain)
    awx_only = build_report('diagnose', {'PC1': SICK}, run_slice={'job_id': 42})
    assert describe_slices(awx_only) == ['Run: AWX job 42.']


# --- the merge ----------------------------------------------------------------------------------

def test_the_fleet_totals_are_the_sum_of_the_slices():
    first = a_slice(1, {'PC1': SICK, 'PC3': HEALTHY, 'PC5': DOWN})
    second = a_slice(2, {'PC2': SICK, 'PC4': {'error': 'dsregcmd failed'}})
    merged = merge_reports([('one.json', first), ('two.json', second)])
    assert list(merged['hosts']) == ['PC1', 'PC2', 'PC3', 'PC4', 'PC5']
    assert merged['summary'] == {'hosts': 5, 'healthy': 1, 'with_findings': 2, 'errors': 2,
                                 'rungs': {'reset_token_broker': 2}}
    for key in ('hosts', 'healthy', 'with_findings', 'errors'):
        assert merged['summary'][key] == first['summary'][key] + second['summary'][key], key
    assert merged['summary'] == summarise(merged['hosts'])
    assert [(s['number'], s['job_id'], s['hosts'], s['file']) for s in merged['slices']] == \
        [(1, 101, 3, 'one.json'), (2, 102, 2, 'two.json')]
    assert 'slice' not in merged and 'slices_missing' not in merged
    assert describe_slices(merged) == ['Fleet report merged from 2 slices: slice 1 of 2, AWX job 101, workflow job 100 '
                                       '(3 hosts); slice 2 of 2, AWX job 102, workflow job 100 (2 hosts).']


def test_remediate_outcomes_add_up_and_the_order_of_the_files_does_not_matter():
    first = a_slice(1, {'PC1': FIXED, 'PC3': UNCHANGED}, kind='remediate')
    second = a_slice(2, {'PC2': FIXED}, kind='remediate')
    merged = merge_reports([('b', second), ('a', first)])
    assert merged['summary']['outcomes'] == {'fixed': 2, 'unchanged': 1}
    assert [s['number'] for s in merged['slices']] == [1, 2]
    assert merged['summary'] == summarise(merged['hosts'])


def test_slices_known_by_their_awx_job_only_merge_without_numbers():
    # What the roles record under AWX, which does not tell a job its slice number.
    first = build_report('diagnose', {'PC1': SICK}, run_slice={'job_id': 43, 'workflow_job_id': 41})
    second = build_report('diagnose', {'PC2': HEALTHY}, run_slice={'job_id': 44, 'workflow_job_id': 41})
    merged = merge_reports([('a', first), ('b', second)])
    assert merged['summary']['hosts'] == 2 and [s['job_id'] for s in merged['slices']] == [43, 44]


def test_a_slice_whose_hosts_were_left_out_of_its_artifact_counts_by_its_summary():
    big = a_slice(1, {'PC1': SICK, 'PC3': HEALTHY})
    cut = artifact_of(big, max_bytes=10)   # every host left out, the summary kept
    assert cut['hosts'] == {} and cut['hosts_left_out'] == 2
    merged = merge_reports([('a', load_report(cut)), ('b', a_slice(2, {'PC2': SICK}))])
    assert merged['summary']['hosts'] == 3 and merged['summary']['with_findings'] == 2
    assert merged['truncated'] is True and merged['hosts_left_out'] == 2
    assert merged['slices'][0]['hosts'] == 2


def test_a_check_mode_merge_says_so():
    merged = merge_reports([('a', a_slice(1, {'PC1': SICK}, check_mode=True)),
                            ('b', a_slice(2, {'PC2': SICK}, check_mode=True))])
    assert merged['check_mode'] is True and merged['summary']['check_mode'] is True


@pytest.mark.parametrize('reports, message', [
    ([('a', a_slice(1, {'PC1': SICK})), ('b', a_slice(2, {'PC2': FIXED}, kind='remediate'))],
     'report_files: mixed kinds: a is a diagnose report, b a remediate report'),
    ([('a', a_slice(1, {'PC1': SICK})), ('b', a_slice(2, {'PC2': SICK}, check_mode=True))],
     'report_files: a check-mode (--check) report and a real one: b and a'),
    ([('a', a_slice(1, {'PC1': SICK})), ('b', a_slice(1, {'PC2': SICK}, job_id=102))],
     'report_files: a and b are both slice 1'),
    ([('a', a_slice(1, {'PC1': SICK}, job_id=7)), ('b', a_slice(2, {'PC2': SICK}, job_id=7))],
     'report_files: a and b are both AWX job 7'),
    ([('a', a_slice(1, {'PC1': SICK})), ('b', a_slice(2, {'PC1': HEALTHY}))],
     'report_files: host PC1 is in two slices, a and b'),
    ([('a', a_slice(1, {'PC1': SICK})), ('b', a_slice(2, {'PC2': SICK}, count=3))],
     'report_files: slices of different runs: a has slice count 2, b has 3'),
    ([('a', a_slice(1, {'PC1': SICK})), ('b', a_slice(2, {'PC2': SICK}, workflow_job_id=200))],
     'report_files: slices of different runs: a has workflow job 100, b has 200'),
    ([('a', a_slice(1, {'PC1': SICK})), ('b', build_report('diagnose', {'PC2': SICK}))],
     'report_files: b carries no slice identity'),
    ([('a', a_slice(1, {'PC1': SICK}, count=4)), ('c', a_slice(3, {'PC3': SICK}, count=4))],
     'report_files: slices 2, 4 of 4 missing (given: 1, 3); set allow_missing_slices'),
    ([], 'report_files: no report given'),
])
def test_a_mixed_or_incomplete_run_is_refused_naming_the_files(reports, message):
    with pytest.raises(ValueError) as error:
        merge_reports(reports)
    assert str(error.value).startswith(message), str(error.value)


def test_a_merged_report_is_not_merged_again():
    merged = merge_reports([('a', a_slice(1, {'PC1': SICK})), ('b', a_slice(2, {'PC2': SICK}))])
    with pytest.raises(ValueError, match='^report_files: m is already a merged fleet report'):
        merge_reports([('m', load_report(merged))])


def test_missing_slices_are_merged_when_allowed_and_named():
    merged = merge_reports([('a', a_slice(1, {'PC1': SICK}, count=3))], allow_missing=True)
    assert merged['slices_missing'] == [2, 3]
    assert merged['summary']['hosts'] == 1
    assert 'Incomplete: slices 2, 3 are missing' in render_markdown(merged)
    assert 'Incomplete: slices 2, 3 are missing' in render_html(merged)


def test_loading_a_slice_job_document_fills_its_number_from_awx():
    report = build_report('diagnose', {'PC2': SICK}, run_slice={'job_id': 43, 'workflow_job_id': 41})
    document = {'id': 43, 'job_slice_number': 2, 'job_slice_count': 2, 'artifacts': {'m365_report': report},
                'summary_fields': {'source_workflow_job': {'id': 41}}}
    loaded = load_report(document, 'report_files: slice-2.json')
    assert loaded['slice'] == {'number': 2, 'count': 2, 'job_id': 43, 'workflow_job_id': 41}
    with pytest.raises(ValueError, match='^report_files: slice-2.json: the report is of AWX job 43 but the job '
                                         'document around it is job 44'):
        load_report(dict(document, id=44), 'report_files: slice-2.json')
    # A merged report read again keeps its slices.
    merged = merge_reports([('a', a_slice(1, {'PC1': SICK})), ('b', a_slice(2, {'PC2': SICK}))])
    assert load_report(merged)['slices'] == merged['slices']
