# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `lab` fixture: the lab runs as its own process (`python -m tests.lab serve`), exactly
as the make targets and the benchmark run it, so the NTLM_USER_FILE it sets and the
processes it starts never leak into the test process. Teardown fails the test module if the
lab exited badly or left anything running."""

from __future__ import annotations

import pytest

from .. import toolchain
from ..process import running_lab


@pytest.fixture(scope="module", autouse=True)
def _powershell_or_skip(request):
    """Every lab host runs pwsh: without one, a lab test skips saying why (scripts/test.sh
    counts it) instead of erroring. Modules that need none say NEEDS_PWSH = False."""
    if getattr(request.module, "NEEDS_PWSH", True) and not toolchain.find_pwsh():
        pytest.skip(toolchain.NO_PWSH)


@pytest.fixture(scope="module")
def runs() -> dict:
    """Results of a test module's playbook runs, shared between its tests (in file order)."""
    return {}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """Two lab hosts for a test module; stopped (and checked for leftovers) afterwards."""
    with running_lab(tmp_path_factory.mktemp("lab"), 2, ["--reboot-seconds", "3"]) as lp:
        yield lp
