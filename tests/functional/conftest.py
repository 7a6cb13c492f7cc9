# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared fixtures for functional tests: run one collection module through ansible-core.

``run_module`` executes a module (PowerShell or Python, with its action plugin if it has
one) with ``ansible localhost -c local``. PowerShell modules run under pwsh through
ansible-core 2.21's POSIX PowerShell support (``ansible_pwsh_interpreter``), so argument
validation, check mode and result shape are tested without Windows. Each call costs a
few seconds (Ansible.Basic is compiled per run): keep calls few.

    def test_x(run_module):
        result = run_module("win_activation_facts", {"events_days": 3}, check=True)
        assert result["changed"] is False
        assert run_module.last.status == "SUCCESS"

A failed task comes back with ``failed: True`` (the callback prints that only as status).

win_activation_facts probes the network: every run gets the inventory variable
``m365ops_network_probe`` pointing at the lab's loopback stand-ins (tests/lab/shim/netprobe.py) by
address, since this machine has no hermetic resolver and must never look up the module's
default Entra names; ``probe_guard`` fails a run whose result probed anything else.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.m365ops.activation.tests.lab.shim import netprobe
from ansible_collections.m365ops.activation.tests.lab.toolchain import NO_PWSH, find_pwsh, module_pwsh

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / "build" / "collections"
NAMESPACE = "m365ops.activation"


@dataclasses.dataclass
class ModuleRun:
    """The last call: status as the callback printed it (SUCCESS, CHANGED, FAILED!, ...)."""

    status: str = ""
    stdout: str = ""
    stderr: str = ""
    returncode: int = 0
    command: list = dataclasses.field(default_factory=list)


class ModuleRunner:
    """Callable returned by the ``run_module`` fixture."""

    def __init__(self, pwsh: str | None, tmp_path: Path, probe: dict | None = None):
        # The interpreter in $PSHOME itself: ansible-core would start each module twice otherwise.
        self.pwsh, self.pwsh_env = module_pwsh(pwsh) if pwsh else (None, ())
        self.tmp_path = tmp_path
        self.probe = probe
        self.last = ModuleRun()
        self.calls = 0

    def __call__(self, module: str, args: dict | None = None, *, check: bool = False,
                 diff: bool = False, extra_vars: dict | None = None, env: dict | None = None,
                 timeout: int = 180) -> dict:
        """Run ``module`` (short name or FQCN) with ``args``; return the parsed result."""
        fqcn = module if module.count(".") >= 2 else f"{NAMESPACE}.{module}"
        hostvars = {
            "ansible_python_interpreter": sys.executable,
        }
        if self.pwsh:
            hostvars["ansible_pwsh_interpreter"] = self.pwsh
        if self.probe:
            hostvars[netprobe.PROBE_VARIABLE] = self.probe
        hostvars.update(extra_vars or {})
        vars_file = self.tmp_path / f"vars_{self.calls}.json"
        vars_file.write_text(json.dumps(hostvars), encoding="utf-8")
        cmd = [
            str(Path(sys.executable).parent / "ansible"), "localhost",
            "-i", "localhost,", "-c", "local",
            "-m", fqcn, "-e", f"@{vars_file}",
        ]
        if args:
            # An empty JSON object would reach the action as raw params.
            cmd += ["-a", json.dumps(args)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        run_env = dict(os.environ)
        run_env.update({
            "ANSIBLE_CONFIG": str(ROOT / "tests" / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
            "PYTHONPATH": str(COLLECTIONS),
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            # minimal prints "host | STATUS => {json}" and nothing else on stdout.
            "ANSIBLE_STDOUT_CALLBACK": "minimal",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_LOCAL_TEMP": str(self.tmp_path / "ansible-local"),
            "ANSIBLE_REMOTE_TEMP": str(self.tmp_path / "ansible-remote"),
            "ANSIBLE_HOME": str(self.tmp_path / "ansible-home"),
        })
        run_env.update(self.pwsh_env)
        run_env.update(env or {})
        self.calls += 1
        proc = subprocess.run(cmd, capture_output=True, text=True, env=run_env, timeout=timeout,
                              cwd=str(self.tmp_path), check=False)
        self.last = ModuleRun(stdout=proc.stdout, stderr=proc.stderr, returncode=proc.returncode, command=cmd)
        head, sep, body = proc.stdout.partition(" => ")
        if not sep:
            raise AssertionError(
                f"no module result in ansible output (rc {proc.returncode})\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        self.last.status = head.split("|", 1)[-1].strip()
        try:
            result = json.loads(body)
        except ValueError as exc:
            raise AssertionError(f"unparsable module result ({exc}):\n{proc.stdout}\nstderr:\n{proc.stderr}") from exc
        # The callback prints failure in the status ("FAILED!") and drops the key itself.
        if self.last.status.startswith("FAILED") or self.last.status == "UNREACHABLE!":
            result.setdefault("failed", True)
        outside = netprobe.violations(result)
        assert not outside, "the network probe was pointed outside the loopback stand-ins: %s" % outside
        return result


@pytest.fixture(scope="session")
def pwsh_path() -> str:
    """Absolute path of pwsh; skips the test when there is none (loudly, by reason)."""
    path = find_pwsh()
    if not path:
        pytest.skip(NO_PWSH)
    return path


@pytest.fixture(scope="session")
def stand_ins(tmp_path_factory):
    """The loopback stand-ins of the network probe (tests/lab/shim/netprobe.py), for the session."""
    servers = netprobe.StandIns(tmp_path_factory.mktemp("netprobe")).start()
    yield servers
    servers.stop()


@pytest.fixture
def probe_vars(stand_ins) -> dict:
    """``m365ops_network_probe`` for a run here: the trusted TLS stand-in, by address."""
    return stand_ins.by_address()


@pytest.fixture
def run_module(pwsh_path, tmp_path, probe_vars) -> ModuleRunner:
    """Callable: run_module(module, args, check=False, diff=False, extra_vars=None, env=None)."""
    if not (COLLECTIONS / "ansible_collections" / "m365ops" / "activation").exists():
        pytest.fail(f"{COLLECTIONS} is not staged: run `make stage` first")
    return ModuleRunner(pwsh_path, tmp_path, probe=probe_vars)
