# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `lab` fixture: the lab runs as its own process (`python -m tests.lab serve`), exactly
as the make targets and the benchmark run it, so the NTLM_USER_FILE it sets and the
processes it starts never leak into the test process. Teardown fails the test module if the
lab exited badly or left anything running."""

from __future__ import annotations

import contextlib
import os

import pytest

from . import toolchain
from .process import LabProcess, children_of, pid_alive

SHARED_DATA = "/usr/share"


@contextlib.contextmanager
def running_lab(state_dir, hosts: int, extra_args: list[str] | None = None, **kwargs):
    """A LabProcess for the duration of the block, then stopped and checked for leftovers.
    Without PowerShell the calling test skips, saying why (also from outside tests/lab)."""
    if not toolchain.find_pwsh():
        pytest.skip(toolchain.NO_PWSH)
    # Where .NET on Linux puts Windows' ProgramData: the place a stray write by product code
    # would land on the build machine (docs/lab.md, "Clock and confinement").
    shared_before = set(os.listdir(SHARED_DATA))
    lp = LabProcess(state_dir, hosts=hosts, extra_args=extra_args, **kwargs)
    pid = lp.proc.pid
    try:
        yield lp
    finally:
        descendants = children_of(pid)
        rc = lp.stop()
        leftovers = [p for p in descendants if pid_alive(p)]
        assert rc == 0, "lab exited with %s:\n%s" % (rc, lp.log()[-3000:])
        assert not leftovers, "lab left processes running: %s" % leftovers
        assert not set(os.listdir(SHARED_DATA)) - shared_before, "the lab wrote to %s: %s" % (
            SHARED_DATA, sorted(set(os.listdir(SHARED_DATA)) - shared_before))


def scenario_lab(state_dir, scenarios: list[str], clock_offset: str | None = None):
    """A lab with one host per scenario (named after it), restarts taking 3 s; with
    `clock_offset` (e.g. "+400d") the lab and its hosts run that far from today."""
    args = ["--reboot-seconds", "3"]
    for name in scenarios:
        args += ["--scenario", name]
    if clock_offset:
        if not toolchain.find_faketime():
            pytest.skip("the lab clock offset %s needs libfaketime: install Debian's faketime package" % clock_offset)
        args += ["--clock-offset", clock_offset]
    return running_lab(state_dir, len(scenarios), args, startup_timeout=300)


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
