#!/usr/bin/env python
# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (not a test): dsregcmd /status outputs parsed per second on one core.

    PYTHONPATH=build/collections python benchmarks/dsreg_parse.py [--seconds 3]

Parses the unit-test fixtures (full Windows 11 output, console-wrapped copy, pre-1809
layout, pre-join diagnostics, registered device) round-robin in one process pinned to
one CPU where the OS allows it, and prints outputs/second per core (CPU time) and by
the wall clock. Target: >= 10,000/s per core.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIXTURES = os.path.join(ROOT, 'tests', 'unit', 'plugins', 'module_utils', 'fixtures', 'dsreg')
TARGET = 10000


def _import_parser():
    try:
        from ansible_collections.m365ops.activation.plugins.module_utils.dsreg import parse_dsreg_status
    except ImportError:
        # Run from a checkout without the staged collection path: the parser has no
        # package-relative imports, so load the file directly.
        import importlib.util
        spec = importlib.util.spec_from_file_location('dsreg', os.path.join(ROOT, 'plugins', 'module_utils', 'dsreg.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        parse_dsreg_status = module.parse_dsreg_status
    return parse_dsreg_status


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=3.0, help='how long to measure (default 3)')
    args = parser.parse_args()
    if hasattr(os, 'sched_setaffinity'):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    parse = _import_parser()
    texts = []
    for name in sorted(os.listdir(FIXTURES)):
        with open(os.path.join(FIXTURES, name), encoding='utf-8', newline='') as handle:
            texts.append(handle.read())
    if not texts:
        sys.exit('no fixtures under %s' % FIXTURES)
    lines = sum(text.count('\n') for text in texts) / len(texts)

    for text in texts:          # warm-up (regex compilation, key cache)
        parse(text)
    count = 0
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    deadline = wall_start + args.seconds
    while True:
        for text in texts:
            parse(text)
        count += len(texts)
        if time.perf_counter() >= deadline:
            break
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    # CPU time is the per-core figure: on a shared machine the wall clock also counts
    # the time other processes held the core.
    rate = count / cpu
    print('dsregcmd /status outputs parsed: %d in %.2f s wall, %.2f s CPU (%d fixtures, %.0f lines each on average)'
          % (count, wall, cpu, len(texts), lines))
    print('%.0f outputs/s per core (CPU time), %.0f outputs/s wall clock; target >= %d/s: %s'
          % (rate, count / wall, TARGET, 'OK' if rate >= TARGET else 'BELOW TARGET'))
    return 0 if rate >= TARGET else 1


if __name__ == '__main__':
    sys.exit(main())
