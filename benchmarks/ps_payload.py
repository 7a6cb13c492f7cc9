#!/usr/bin/env python3
# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bytes ansible-core sends up for one execution of each PowerShell module.

Builds the input of bootstrap_wrapper.ps1 with ansible-core's own PowerShell manifest
builder (``ansible.executor.powershell.module_manifest``), as the winrm/psrp connections
send it for a module run without become or async, and prints its size per module with the
scripts it carries (the module, each util it requires, ansible-core's wrappers and C#).

    python benchmarks/ps_payload.py [--collections build/collections] [--detail]

``--collections`` is a folder holding ``ansible_collections/m365ops/activation`` (the
staged build by default), so another tree (an older commit extracted there) can be
measured the same way.
"""
from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _install_loader(collections: str) -> None:
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
    _AnsibleCollectionFinder(paths=[collections])._install()


def measure(collections: str) -> dict:
    """module name -> {"total": bytes, "scripts": {name: bytes}}."""
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
        payload = mm._create_powershell_wrapper(
            name='m365ops.activation.%s' % name, module_data=data, module_path=path, module_args={},
            environment={}, async_timeout=0, become_plugin=None, substyle='powershell', task_vars={},
            profile='legacy')
        finder = mm.PSModuleDepFinder()
        finder.scan_exec_script('module_wrapper.ps1')
        finder.scan_module(data, fqn='m365ops.activation.%s' % name, powershell=True)
        scripts = {key: len(info.script) if hasattr(info, 'script') else len(getattr(info, 'content', b''))
                   for key, info in finder.scripts.items()}
        out[name] = {'total': len(payload), 'scripts': scripts}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--collections', default=os.path.join(ROOT, 'build', 'collections'))
    parser.add_argument('--detail', action='store_true', help='list the scripts each payload carries')
    args = parser.parse_args(argv)
    result = measure(os.path.abspath(args.collections))
    print('%-26s %10s' % ('module', 'bytes up'))
    for name, entry in result.items():
        print('%-26s %10d  (%.1f KB)' % (name, entry['total'], entry['total'] / 1024.0))
        if args.detail:
            for script, size in sorted(entry['scripts'].items(), key=lambda kv: -kv[1]):
                print('    %-60s %8d' % (script, size))
    return 0


if __name__ == '__main__':
    sys.exit(main())
