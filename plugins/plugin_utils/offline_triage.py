# -*- coding: utf-8 -*-
# Copyright: (c) 2026, m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline triage: a folder of evidence bundles (docs/triage.md) through the rules.

The folder walking and reading live here; the rules (triage.evaluate) see only the
evidence dict. Pure Python, no Ansible imports.
"""

from __future__ import annotations

import os

from .evidence import EvidenceError, load_bundle
from .triage import evaluate


def triage_bundle(host_dir: str) -> dict:
    """Report entry for one evidence folder: evaluate()'s result, or ``{error}`` naming
    the file at fault."""
    try:
        return evaluate(load_bundle(host_dir))
    except EvidenceError as exc:
        return {'error': str(exc)}


def triage_dir(evidence_dir: str) -> dict:
    """Triage every host folder under evidence_dir: ``{host: entry}``.

    One bad host never stops the others; its entry carries ``error``. Raises
    EvidenceError when evidence_dir itself is missing or holds no host folder.
    """
    if not os.path.isdir(evidence_dir):
        raise EvidenceError(evidence_dir, 'evidence folder not found')
    names = sorted(name for name in os.listdir(evidence_dir)
                   if not name.startswith('.') and os.path.isdir(os.path.join(evidence_dir, name)))
    if not names:
        raise EvidenceError(evidence_dir, 'no host folders (expected <host>/dsregcmd_status.txt)')
    return {name: triage_bundle(os.path.join(evidence_dir, name)) for name in names}
