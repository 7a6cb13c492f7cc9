# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A lab host reaches none of this machine's Windows-sounding programs: `shutdown` and
friends resolve only into the host's bin folder, both for WinRS commands and inside
pwsh, whose Restart-Computer looks `shutdown` up on PATH on Linux."""

from __future__ import annotations

import os

import pytest
import winrm

from ..process import REPO_ROOT

NAMES = ("shutdown", "shutdown.exe", "dsregcmd", "schtasks", "cmdkey")
# pwsh on Linux has no PATHEXT: `dsregcmd` inside PowerShell finds only a file named exactly
# that, while WinRS also accepts `dsregcmd.exe`. Stand-ins therefore exist under both names.
STUBS = ("shutdown", "dsregcmd", "schtasks", "cmdkey")

RESOLVE = ("foreach ($n in '%s') { $c = Get-Command $n -CommandType Application -ErrorAction SilentlyContinue; "
           "'{0}={1}' -f $n, ($c | Select-Object -First 1).Source }" % "','".join(NAMES))


def session(lab, host):
    return winrm.Session(lab.https_url(host), auth=(lab.user, lab.password), transport="basic",
                         ca_trust_path=lab.ca)


def resolved(lab, host):
    r = session(lab, host).run_ps(RESOLVE)
    assert r.status_code == 0, r.std_err
    return dict(line.split("=", 1) for line in r.std_out.decode().splitlines() if "=" in line)


def test_without_the_shim_nothing_resolves(lab):
    for host in lab.info["hosts"]:
        s = session(lab, host)
        for name in NAMES:
            r = s.run_cmd(name, ["/r", "/t", "0"])
            assert r.status_code == 1 and b"is not recognized" in r.std_err, (host, name)
        assert resolved(lab, host) == {n: "" for n in NAMES}, host


def test_with_stubs_everything_resolves_into_the_hosts_bin_and_a_reboot_stays_there(lab):
    for host in lab.info["hosts"]:
        bin_dir = lab.host(host)["bin"]
        log = os.path.join(lab.host(host)["state"], "stub-calls.log")
        for stub in STUBS:
            path = os.path.join(bin_dir, stub)
            with open(path, "w") as fh:
                fh.write('#!/bin/sh\necho "%s $*" >> "$M365OPS_LAB_STATE/stub-calls.log"\necho "stub %s"\n'
                         % (stub, stub))
            os.chmod(path, 0o755)
            os.symlink(stub, path + ".exe")
        s = session(lab, host)
        for name in NAMES:
            r = s.run_cmd(name, ["/status"])
            assert r.status_code == 0 and r.std_out.startswith(b"stub "), (host, name, r.std_err)
        where = resolved(lab, host)
        assert all(os.path.dirname(p) == bin_dir for p in where.values()), where
        # Restart-Computer on Linux runs whatever `shutdown` resolves to; the guard makes sure
        # it is the stub before it is ever called, so this test cannot reboot anything else.
        r = s.run_ps("$c = Get-Command shutdown -CommandType Application; "
                     "if ($c.Source -ne '%s') { throw \"shutdown resolves to $($c.Source)\" }; "
                     "Restart-Computer" % os.path.join(bin_dir, "shutdown"))
        assert r.status_code == 0, r.std_err
        with open(log) as fh:
            calls = fh.read().splitlines()
        # (pwsh 7.6 starts it with an empty argument list; what matters is who received the call)
        assert [c.split()[0] for c in calls] == ["shutdown", "shutdown", "dsregcmd", "schtasks", "cmdkey",
                                                 "shutdown"], calls


def test_a_host_process_writes_below_its_own_state_folder_and_nowhere_else(lab, tmp_path_factory):
    """docs/lab.md "Clock and confinement": a stray write by product code (ProgramData resolved
    through .NET to /usr/share, say) must fail on the host, not land on the build machine."""
    if not lab.info["confined"]:
        pytest.skip("the lab runs unconfined here: %s" % lab.info["confinement"])
    host, other = sorted(lab.info["hosts"])[:2]
    state = lab.host(host)["state"]
    outside = tmp_path_factory.mktemp("outside")  # a folder the lab was never given
    targets = {
        "inside": os.path.join(state, "ProgramData", "written-by-host.txt"),
        "usr_share": "/usr/share/m365ops-lab-escape-%d.txt" % os.getpid(),
        "lab_state": os.path.join(lab.state_dir, "escape.txt"),
        "other_host": os.path.join(lab.host(other)["state"], "escape.txt"),
        "test_folder": str(outside / "escape.txt"),
        "repository": os.path.join(REPO_ROOT, "escape-%d.txt" % os.getpid()),
    }
    script = "; ".join(
        "try { [IO.File]::WriteAllText('%s', 'x'); '%s=written' } catch { '%s=refused: ' + $_.Exception.InnerException.Message }"
        % (path, name, name) for name, path in targets.items())
    r = session(lab, host).run_ps(script)
    assert r.status_code == 0, r.std_err
    said = dict(line.split("=", 1) for line in r.std_out.decode().splitlines() if "=" in line)
    assert said.pop("inside") == "written" and os.path.isfile(targets["inside"])
    for name, outcome in said.items():
        assert outcome.startswith("refused") and "Read-only file system" in outcome, (name, outcome)
        assert not os.path.exists(targets[name]), name
