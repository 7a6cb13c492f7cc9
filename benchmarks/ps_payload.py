#!/usr/bin/env python
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bytes ansible-core sends up for one execution of each PowerShell module.

Builds the input of bootstrap_wrapper.ps1 with ansible-core's own PowerShell manifest
builder (``ansible.executor.powershell.module_manifest``), as the winrm/psrp connections
send it for a module run without become or async, and prints its size per module with the
scripts it carries (the module, each util it requires, ansible-core's wrappers and C#).

    python benchmarks/ps_payload.py [--collections build/collections] [--detail] [--breakdown] [--json FILE]

``--collections`` is a folder holding ``ansible_collections/m365ops/activation`` (the
staged build by default), so another tree (an older commit extracted there) can be
measured the same way.

``--breakdown`` splits each payload into ansible-core's share (exec_wrapper.ps1, sent as
JSON text; module_wrapper.ps1, Ansible.Basic.cs and Ansible.ModuleUtils.AddType.psm1,
base64 in the JSON), the collection's utils, the module body, the base64 inflation of
those scripts and the JSON around them; then what the winrm connection puts on the wire
for it (the whole input base64-encoded again in WinRS Send requests, plus the
bootstrap_wrapper command line), and the floor: the same for a module that requires
Ansible.Basic and does nothing else. Where pwsh is found ($PWSH or PATH) it also counts
the comment and indentation bytes of each script with PowerShell's own tokenizer, because
ansible-core ships scripts as they are (it strips only bootstrap_wrapper.ps1).
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTION_UTIL = 'ansible_collections.m365ops.activation.plugins.module_utils.'
# A module that needs Ansible.Basic and nothing else: what every module pays before its
# own first byte.
FLOOR_MODULE = (b"#!powershell\n#AnsibleRequires -CSharpUtil Ansible.Basic\n"
                b"$module = [Ansible.Basic.AnsibleModule]::Create($args, @{})\n$module.ExitJson()\n")
# Comment and leading-whitespace bytes of each file, by PowerShell's tokenizer (the
# #AnsibleRequires/#Requires lines and the shebang are comments ansible-core reads).
COMMENT_COUNTER = r'''
foreach ($path in $args) {
    try { $text = [IO.File]::ReadAllText($path) } catch { continue }
    $tokens = $null; $errors = $null
    [void][System.Management.Automation.Language.Parser]::ParseInput($text, [ref]$tokens, [ref]$errors)
    $comments = 0
    $protected = New-Object System.Collections.Generic.List[object]
    foreach ($t in $tokens) {
        if ($t.Kind -eq 'Comment' -and $t.Text -notmatch '^#(!|requires|ansiblerequires)') {
            $comments += $t.Text.Length
        }
        elseif ($t -is [System.Management.Automation.Language.StringToken] -and
                $t.Extent.StartLineNumber -ne $t.Extent.EndLineNumber) { $protected.Add($t.Extent) }
    }
    $indent = 0; $line = 0
    foreach ($l in ($text -split "`n")) {
        $line++
        $inside = $false
        foreach ($e in $protected) {
            if ($line -gt $e.StartLineNumber -and $line -le $e.EndLineNumber) { $inside = $true; break }
        }
        if (-not $inside) { $indent += $l.Length - $l.TrimStart().Length }
    }
    "{0}`t{1}`t{2}" -f $path, $comments, $indent
}
'''


def _install_loader(collections: str) -> None:
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
    _AnsibleCollectionFinder(paths=[collections])._install()


def _build(mm, name: str, data: bytes, path: str) -> bytes:
    return mm._create_powershell_wrapper(
        name=name, module_data=data, module_path=path, module_args={},
        environment={}, async_timeout=0, become_plugin=None, substyle='powershell', task_vars={},
        profile='legacy')


def _raw_scripts(mm, name: str, data: bytes, path: str) -> dict:
    """script name -> (raw bytes, path or None) of every script the payload's manifest carries."""
    finder = mm.PSModuleDepFinder()
    finder.scan_exec_script('module_wrapper.ps1')
    finder.scan_module(data, fqn=name, powershell=True)
    # ansible-core's own exec scripts carry their bare name as path.
    package = os.path.dirname(mm.__file__)
    out = {key: (base64.b64decode(info.script),
                 info.path if os.path.isabs(info.path) else os.path.join(package, info.path))
           for key, info in finder.scripts.items()}
    out[name + '.ps1'] = (data, path if os.path.isfile(path) else None)
    return out


def _share(script: str, module_key: str) -> str:
    if script == module_key:
        return 'module body'
    if script.startswith(COLLECTION_UTIL):
        return 'collection util %s' % script[len(COLLECTION_UTIL):]
    return 'ansible-core %s' % script


def breakdown(mm, name: str, data: bytes, path: str) -> dict:
    """One payload split into its parts; every figure in bytes."""
    payload = _build(mm, name, data, path)
    exec_wrapper = mm._get_powershell_script('exec_wrapper.ps1')
    bootstrap = mm._get_powershell_script('bootstrap_wrapper.ps1')
    scripts = _raw_scripts(mm, name, data, path)
    parts = {}
    raw_total = b64_total = 0
    for script, (raw, _path) in scripts.items():
        encoded = len(base64.b64encode(raw))
        parts[_share(script, name + '.ps1')] = encoded
        raw_total += len(raw)
        b64_total += encoded
    exec_json = len(json.dumps(exec_wrapper.decode(), ensure_ascii=True))
    parts['ansible-core exec_wrapper.ps1 (JSON text)'] = exec_json
    parts['JSON, paths, actions and arguments'] = len(payload) - b64_total - exec_json
    command_line = len(base64.b64encode(bootstrap.decode().encode('utf-16-le')))
    return {
        'payload': len(payload),
        'parts': parts,
        'scripts_raw': raw_total,
        'base64_inflation': b64_total - raw_total,
        'files': {script: (_share(script, name + '.ps1'), p) for script, (raw, p) in scripts.items()},
        # pywinrm sends stdin base64-encoded inside the WinRS Send envelope.
        'winrs_stdin': 4 * ((len(payload) + 2) // 3),
        'command_line': command_line,
    }


def comment_bytes(paths: list[str]) -> dict:
    """path -> (comment bytes, indentation bytes), or {} without pwsh."""
    pwsh = os.environ.get('PWSH') or shutil.which('pwsh')
    if not pwsh or not paths:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, 'count_comments.ps1')
        with open(script, 'w', encoding='utf-8') as handle:
            handle.write(COMMENT_COUNTER)
        proc = subprocess.run([pwsh, '-NoProfile', '-NonInteractive', '-File', script] + paths,
                              capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {}
    out = {}
    for line in proc.stdout.splitlines():
        fields = line.rsplit('\t', 2)
        if len(fields) == 3:
            out[fields[0]] = (int(fields[1]), int(fields[2]))
    return out


def measure(collections: str, with_breakdown: bool = False) -> dict:
    """module name -> {"total": bytes, "scripts": {name: base64 bytes}[, "breakdown": {...}]}."""
    _install_loader(collections)
    from ansible.executor.powershell import module_manifest as mm

    modules_dir = os.path.join(collections, 'ansible_collections', 'm365ops', 'activation', 'plugins', 'modules')
    out = {}
    for file_name in sorted(os.listdir(modules_dir)):
        if not file_name.endswith('.ps1'):
            continue
        name = file_name[:-4]
        path = os.path.join(modules_dir, file_name)
        with open(path, 'rb') as handle:
            data = handle.read()
        fqn = 'm365ops.activation.%s' % name
        payload = _build(mm, fqn, data, path)
        scripts = {key: len(base64.b64encode(raw)) for key, (raw, _path) in _raw_scripts(mm, fqn, data, path).items()}
        out[name] = {'total': len(payload), 'scripts': scripts}
        if with_breakdown:
            out[name]['breakdown'] = breakdown(mm, fqn, data, path)
    if with_breakdown:
        out['(floor)'] = {'breakdown': breakdown(mm, 'm365ops.activation.floor', FLOOR_MODULE, 'floor.ps1')}
        out['(floor)']['total'] = out['(floor)']['breakdown']['payload']
    return out


def print_breakdown(result: dict) -> None:
    paths = sorted({p for entry in result.values() for _share, p in entry['breakdown']['files'].values()
                    if p and p.endswith(('.ps1', '.psm1'))})
    comments = comment_bytes(paths)
    for name, entry in result.items():
        b = entry['breakdown']
        print('\n== %s: %d bytes (%.1f KB) into bootstrap_wrapper.ps1'
              % (name, b['payload'], b['payload'] / 1024.0))
        for part, size in sorted(b['parts'].items(), key=lambda kv: -kv[1]):
            print('    %-62s %8d  %5.1f%%' % (part, size, 100.0 * size / b['payload']))
        print('    %-62s %8d  (in the lines above)'
              % ('of which base64 inflation of the scripts', b['base64_inflation']))
        ours_stripped = 0
        if comments:
            for owner in ('ansible-core', 'collection'):
                found = sum(sum(comments[p]) for share, p in b['files'].values()
                            if p in comments and (share.startswith('ansible-core') == (owner == 'ansible-core')))
                print('    %-62s %8d  (raw; x4/3 in the payload)'
                      % ('of which comments and indentation, %s scripts' % owner, found))
                if owner == 'collection':
                    ours_stripped = 4 * found // 3
        basic = b['parts'].get('ansible-core Ansible.Basic.cs', 0) + b['parts'].get(
            'ansible-core Ansible.ModuleUtils.AddType.psm1', 0)
        print('    what-ifs, payload (estimates of changes the collection does not make): collection scripts'
              ' without comments and indentation %d; without Ansible.Basic and AddType %d; both %d'
              % (b['payload'] - ours_stripped, b['payload'] - basic, b['payload'] - basic - ours_stripped))
        wire = b['winrs_stdin'] + b['command_line']
        print('    winrm on the wire: stdin base64 again in WinRS Send %d + command line %d = %d bytes (%.1f KB),'
              ' before the SOAP envelopes, NTLM logon and encryption headers'
              % (b['winrs_stdin'], b['command_line'], wire, wire / 1024.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--collections', default=os.path.join(ROOT, 'build', 'collections'))
    parser.add_argument('--detail', action='store_true', help='list the scripts each payload carries')
    parser.add_argument('--breakdown', action='store_true',
                        help='split each payload by owner and encoding, with the wire estimate and the floor')
    parser.add_argument('--json', dest='json_out', default=None,
                        help='also write the figures here ({module: {total, scripts[, breakdown]}})')
    args = parser.parse_args(argv)
    result = measure(os.path.abspath(args.collections), with_breakdown=args.breakdown)
    print('%-26s %10s' % ('module', 'bytes up'))
    for name, entry in result.items():
        print('%-26s %10d  (%.1f KB)' % (name, entry['total'], entry['total'] / 1024.0))
        if args.detail and 'scripts' in entry:
            for script, size in sorted(entry['scripts'].items(), key=lambda kv: -kv[1]):
                print('    %-60s %8d' % (script, size))
    if args.breakdown:
        print_breakdown(result)
    if args.json_out:
        with open(args.json_out, 'w') as handle:
            json.dump(result, handle, indent=2, sort_keys=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
