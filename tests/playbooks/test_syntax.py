# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every playbook under playbooks/ passes ``ansible-playbook --syntax-check``.

The list is discovered, so a new playbook is checked the day it is added.
"""

from __future__ import annotations

import pytest

from playbook_helpers import PLAYBOOKS, describe, run_playbook

FOUND = sorted(p for p in PLAYBOOKS.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())


def test_playbooks_are_found():
    names = {p.name for p in FOUND}
    # The four documented entry points; more are welcome, fewer means discovery broke.
    assert {"triage.yml", "diagnose.yml", "remediate.yml", "tenant.yml"} <= names


@pytest.mark.parametrize("playbook", FOUND, ids=[p.name for p in FOUND])
def test_syntax_check(playbook):
    proc = run_playbook(playbook, "--syntax-check", "-i", "localhost,")
    assert proc.returncode == 0, "playbooks/%s fails --syntax-check: %s" % (playbook.name, describe(proc))
    assert "ERROR" not in proc.stderr, "playbooks/%s: %s" % (playbook.name, proc.stderr)
