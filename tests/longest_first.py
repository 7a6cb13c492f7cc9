# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pytest plugin for scripts/test.sh's pytest part: the files that take longest start first.

The part runs on three xdist workers with ``--dist loadfile``. By default xdist hands out the
files with the most tests first, which starts the lab's end-to-end files (few tests, minutes
each) last, and one worker then runs them alone while the others idle. Longest first keeps
them all busy to the end. The order comes from ``--durations`` of a CI run; a file missing here
keeps its collection order after these.
"""

from __future__ import annotations

LONGEST_FIRST = (
    "tests/lab/tests/test_e2e.py",
    "tests/lab/tests/test_molecule.py",
    "tests/lab/tests/test_shim.py",
    "tests/lab/tests/test_e2e_dry_run.py",
    "tests/lab/tests/test_repair_recovery.py",
    "tests/functional/test_win_activation_facts.py",
    "tests/functional/test_rung_modules.py",
    "tests/lab/tests/test_hostile_user.py",
    "tests/lab/tests/test_network_probe.py",
    "tests/lab/tests/test_ansible.py",
    "tests/playbooks/test_remediate_flow.py",
    "tests/awx/test_awx_slices.py",
    "tests/awx/test_awx_runner.py",
    "tests/lab/tests/test_baseline_tools.py",
    "tests/functional/test_win_reboot_if_needed.py",
    "tests/lab/tests/test_endpoint.py",
    "tests/lab/tests/test_psrp.py",
)


def pytest_collection_modifyitems(items):
    rank = {path: index for index, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
