# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""win_activation_facts executed by ansible-core under pwsh (POSIX PowerShell support):
argument validation, check mode and result shape, module + action plugin together.

There is no Windows here, so the Windows sources fail and must be reported in
collection_errors rather than crash the module. One test puts a ``dsregcmd.exe`` under a fake ``%SystemRoot%`` (System32)
that prints a recorded ``dsregcmd /status``, which is enough for the action plugin to
triage and write the evidence bundle the offline triage reads.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys

from ansible_collections.m365ops.activation.plugins.plugin_utils.evidence import load_bundle
from ansible_collections.m365ops.activation.plugins.plugin_utils.triage import evaluate

HERE = os.path.dirname(os.path.abspath(__file__))
DSREG_FIXTURE = os.path.join(HERE, '..', 'unit', 'plugins', 'action', 'fixtures', 'win_activation_facts',
                             'device_hybrid_no_prt.txt')


def test_bad_arguments_fail_naming_the_parameter(run_module):
    result = run_module('win_activation_facts', {'events_days': 0})
    assert result.get('failed') is True
    assert 'events_days must be between 1 and 365' in result['msg']
    assert 'm365_activation' not in result

    for broad in ('*', '*.*', '*e*'):
        result = run_module('win_activation_facts', {'credential_patterns': [broad]})
        assert result.get('failed') is True
        assert result['msg'].startswith("credential_patterns: pattern '%s' has no literal prefix" % broad), result['msg']


def test_bad_network_probe_settings_fail_naming_the_key(run_module):
    for probe, message in (
            ({'timeout': 0}, 'network_probe.timeout must be between 1 and 30 seconds, got 0.'),
            ({'endpoints': ['login microsoftonline']}, "network_probe.endpoints: 'login microsoftonline' is not a host name"),
            ({'trusted_roots': ['DigiCert Global Root G2']}, "network_probe.trusted_roots: 'DigiCert Global Root G2' is not a SHA-1"),
    ):
        result = run_module('win_activation_facts', {'network_probe': probe, 'user_context': False})
        assert result.get('failed') is True, result
        assert result['msg'].startswith(message), result['msg']
    # The inventory variable is checked on the controller, before anything runs.
    result = run_module('win_activation_facts', {'user_context': False},
                        extra_vars={'m365ops_network_probe': {'endpoint': ['127.0.0.1:9']}})
    assert result.get('failed') is True
    assert result['msg'] == ('m365ops_network_probe: unknown key(s) endpoint '
                             '(known: enabled, endpoints, trusted_roots, timeout)')


def test_the_probe_takes_the_inventory_variable_under_the_tasks_own_keys(run_module, stand_ins):
    # The site sets a refused port and its root; this task names the TLS stand-in instead.
    site = {'endpoints': ['127.0.0.1:%d' % stand_ins.ports['refused']], 'trusted_roots': [stand_ins.trusted_root],
            'timeout': 3}
    task = {'endpoints': ['127.0.0.1:%d' % stand_ins.ports['tls_trusted']]}
    result = run_module('win_activation_facts', {'network_probe': task, 'user_context': False},
                        extra_vars={'m365ops_network_probe': site}, check=True)
    probe = result['host_facts']['network_probe']
    assert probe['endpoints'] == task['endpoints'] and probe['cloud'] is None and probe['timeout_seconds'] == 3
    (system,) = probe['contexts']
    assert system['context'] == 'system' and system['complete'] is True and system['proxy']['source'] == 'unknown'
    (reached,) = system['results']
    # The root came from the inventory: the chain ends where the site said it may.
    assert reached['blocked'] is None and reached['tls']['root']['thumbprint'] == stand_ins.trusted_root, reached
    assert 'network_probe' not in {e['source'] for e in result['collection_errors']}


def test_check_mode_returns_the_full_shape_and_lists_what_it_could_not_read(run_module, tmp_path):
    evidence = tmp_path / 'evidence'
    result = run_module('win_activation_facts', {'events_days': 2, 'evidence_dir': str(evidence)}, check=True)
    assert run_module.last.status == 'SUCCESS', run_module.last.stdout
    assert result['changed'] is False
    for key in ('dsregcmd_status', 'aad_events', 'host_facts', 'collection_errors', 'm365_activation'):
        assert key in result
    facts = result['host_facts']
    assert facts['schema'] == 1
    assert facts['users'] == [] and facts['profiles'] == []
    assert facts['collected_at'].endswith('Z')
    sources = {e['source'] for e in result['collection_errors']}
    assert {'profiles', 'dsregcmd_status', 'aad_events', 'office', 'broker_plugin'} <= sources
    # Without dsregcmd there is nothing to triage: an error entry, not a crash, not a guess.
    assert result['m365_activation']['error'].startswith('dsregcmd /status could not be collected')
    assert 'findings' not in result['m365_activation']
    assert not evidence.exists()


def fake_system_root(tmp_path, status_file) -> str:
    """A SystemRoot whose System32\\dsregcmd.exe prints `status_file`: the modules run dsregcmd
    by that absolute path, never through PATH."""
    system32 = tmp_path / 'Windows' / 'System32'
    system32.mkdir(parents=True)
    script = system32 / 'dsregcmd.exe'
    script.write_text('#!/bin/sh\ncat "%s"\n' % status_file, encoding='utf-8')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(tmp_path / 'Windows')


def test_with_dsregcmd_under_system_root_it_triages_and_writes_a_bundle_offline_triage_reads(run_module, tmp_path):
    shutil.copy(DSREG_FIXTURE, tmp_path / 'dsreg.txt')
    system_root = fake_system_root(tmp_path, tmp_path / 'dsreg.txt')
    evidence = tmp_path / 'evidence'

    result = run_module('win_activation_facts', {'evidence_dir': str(evidence), 'user_context': False},
                        env={'SystemRoot': system_root})
    assert run_module.last.status == 'SUCCESS', run_module.last.stdout
    fact = result['m365_activation']
    assert fact['join_type'] == 'hybrid_joined'
    assert fact['device_id'] == '6f2d3c1b-9a8e-4c7d-b5a4-3e2f1d0c9b8a'
    assert 'dsregcmd_status' not in {e['source'] for e in result['collection_errors']}
    host_dir = evidence / 'localhost'
    assert sorted(os.listdir(host_dir)) == ['dsregcmd_status.txt', 'host_facts.json']
    offline = evaluate(load_bundle(str(host_dir)))
    live = dict(fact)
    live.pop('collection_errors')
    assert offline == live


def test_diagnose_playbook_reports_every_host_including_unreachable_ones(pwsh_path, tmp_path, probe_vars):
    """playbooks/diagnose.yml with -e target: one host diagnosed through pwsh (dsregcmd
    stand-in under SystemRoot), one that cannot be reached; both end up in report.json."""
    root = os.path.abspath(os.path.join(HERE, '..', '..'))
    system_root = fake_system_root(tmp_path, DSREG_FIXTURE)
    inventory = tmp_path / 'inventory.yml'
    inventory.write_text(json.dumps({'m365_clients': {'hosts': {
        'PC-LOCAL': {'ansible_connection': 'local', 'ansible_pwsh_interpreter': pwsh_path,
                     'ansible_python_interpreter': sys.executable, 'm365ops_network_probe': probe_vars},
        # Nothing listens on port 9: WinRM is refused at once.
        'PC-DOWN': {'ansible_connection': 'winrm', 'ansible_host': '127.0.0.1', 'ansible_port': 9,
                    'ansible_user': 'nobody', 'ansible_password': 'x', 'ansible_winrm_transport': 'basic',
                    'ansible_winrm_scheme': 'http', 'ansible_winrm_operation_timeout_sec': 5,
                    'ansible_winrm_read_timeout_sec': 10},
        'PC-OTHER': {'ansible_connection': 'local'},
    }}}), encoding='utf-8')
    report_dir = tmp_path / 'report'
    env = dict(os.environ)
    env.update({
        'ANSIBLE_CONFIG': os.path.join(root, 'tests', 'ansible.cfg'),
        'ANSIBLE_COLLECTIONS_PATH': os.path.join(root, 'build', 'collections'),
        'PYTHONPATH': os.path.join(root, 'build', 'collections'),
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_LOCAL_TEMP': str(tmp_path / 'tmp'),
        'ANSIBLE_HOME': str(tmp_path / 'home'),
        'SystemRoot': system_root,
    })
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', str(inventory),
           os.path.join(root, 'playbooks', 'diagnose.yml'),
           '-e', 'target=PC-LOCAL:PC-DOWN', '-e', 'report_dir=%s' % report_dir,
           '-e', '{"diagnose_user_context": false}']
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=400, check=False)
    assert (report_dir / 'report.json').exists(), proc.stdout + proc.stderr
    report = json.loads((report_dir / 'report.json').read_text(encoding='utf-8'))
    assert report['kind'] == 'diagnose'
    # -e target=... limits the run to those hosts; PC-OTHER is not in the report.
    assert sorted(report['hosts']) == ['PC-DOWN', 'PC-LOCAL']
    assert report['hosts']['PC-DOWN']['unreachable'] is True
    local = report['hosts']['PC-LOCAL']
    assert local['join_type'] == 'hybrid_joined'
    assert isinstance(local['findings'], list) and isinstance(local['plan'], list)
    assert report['summary']['hosts'] == 2 and report['summary']['errors'] == 1
    assert (report_dir / 'report.md').exists()
    # The unreachable host fails the run once the report is written (diagnose_fail_on_unreachable).
    assert proc.returncode == 2, proc.stdout + proc.stderr
    recap = proc.stdout[proc.stdout.index('PLAY RECAP'):]
    assert re.search(r'PC-DOWN\s+:.* failed=1 ', recap) and re.search(r'PC-LOCAL\s+:.* failed=0 ', recap), recap
