# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Skip the playbook tests when the collections are not staged (``make bootstrap``)."""

from __future__ import annotations

import pytest

from playbook_helpers import ANSIBLE_PLAYBOOK, COLLECTIONS


@pytest.fixture(scope="session", autouse=True)
def _staged_collections():
    if not (COLLECTIONS / "ansible_collections" / "m365ops" / "activation" / "galaxy.yml").exists():
        pytest.skip("build/collections is not staged: run `make bootstrap` first")
    if not ANSIBLE_PLAYBOOK.exists():
        pytest.skip("ansible-playbook not found at %s" % ANSIBLE_PLAYBOOK)
