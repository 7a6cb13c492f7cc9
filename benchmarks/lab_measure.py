# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Measure what one ansible run costs on the lab's WinRM endpoint, per host.

    .venv/bin/python benchmarks/lab_measure.py --hosts 4 --forks 4 -- -m ansible.windows.win_ping
    .venv/bin/python benchmarks/lab_measure.py --hosts 6 -- playbooks/diagnose.yml
    .venv/bin/python benchmarks/lab_measure.py --scenario PC-HEALTHY -- playbooks/diagnose.yml
    .venv/bin/python benchmarks/lab_measure.py --transport ntlm --transport psrp_ntlm -- -m ansible.windows.win_ping

Starts a lab (tests/lab), runs `ansible` (arguments starting with -m) or `ansible-playbook`
against its generated inventory through ansible-core's winrm or psrp connection (one run
per --transport, same lab, one after the other), and prints, per
host, the endpoint's counters for that run only: WS-Man requests by operation, bytes in and
out, processes started and their seconds; then the controller's wall time. This is the
measuring part of the issue-10 benchmark; the ours-versus-baseline comparison builds on it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from tests.lab.process import LabProcess  # noqa: E402  (the repository root is not a package)


def ansible_env(forks: int | None, config: str | None = None) -> dict:
    """The environment the benchmarks run ansible in: the staged collections, the tests' config
    (or `config`), and `forks` (None: the config's own)."""
    collections = os.path.join(REPO_ROOT, "build", "collections")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, PYTHONPATH=collections,
               ANSIBLE_CONFIG=config or os.path.join(REPO_ROOT, "tests", "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_FORKS", None)
    if forks is not None:
        env["ANSIBLE_FORKS"] = str(forks)
    return env


OPS = ("Create", "Command", "Send", "Receive", "Signal", "Delete", "auth")
# The lab's generated inventories: winrm connection (pywinrm) and psrp connection (pypsrp),
# each over HTTP+NTLM with message encryption and over HTTPS+Basic.
TRANSPORTS = ("ntlm", "basic", "psrp_ntlm", "psrp_basic")


def diff_counts(before: dict, after: dict) -> dict:
    out = {}
    for host, a in after.items():
        b = before.get(host, {})
        reqs = {op: a["requests"].get(op, 0) - b.get("requests", {}).get(op, 0) for op in a["requests"]}
        out[host] = {
            "requests": {k: v for k, v in reqs.items() if v},
            "requests_total": sum(reqs.values()),
            "bytes_in": a["bytes_in"] - b.get("bytes_in", 0),
            "bytes_out": a["bytes_out"] - b.get("bytes_out", 0),
            "processes": a["processes_started"] - b.get("processes_started", 0),
            "process_seconds": round(a["process_seconds"] - b.get("process_seconds", 0), 2),
            "reboots": a.get("reboots", 0) - b.get("reboots", 0),
        }
    return out


def table(per_host: dict, transports: dict | None = None) -> str:
    """One row per host; with `transports` ({label: per_host}) one row per transport and host."""
    runs = transports if transports is not None else {None: per_host}
    head = (["transport"] if transports is not None else []) + ["host", "requests"] + list(OPS) + [
        "KB in", "KB out", "procs", "proc s", "reboots"]
    rows = [head]
    for label, hosts in runs.items():
        for host in sorted(hosts):
            h = hosts[host]
            rows.append(([label] if transports is not None else []) + _row(host, h))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) if i and not (transports is not None and i == 1) else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths))) for r in rows)


def _row(host: str, h: dict) -> list[str]:
    return [host, str(h["requests_total"])] + [str(h["requests"].get(op, 0)) for op in OPS] + [
        "%.1f" % (h["bytes_in"] / 1024), "%.1f" % (h["bytes_out"] / 1024), str(h["processes"]),
        "%.1f" % h["process_seconds"], str(h["reboots"])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--hosts", type=int, default=None,
                        help="lab hosts (default 2, or one per --scenario; the lab cycles the scenarios over them)")
    parser.add_argument("--forks", type=int, default=5)
    parser.add_argument("--transport", action="append", choices=TRANSPORTS, default=None,
                        help="inventory to run through (repeatable; default ntlm)")
    parser.add_argument("--state", default=None, help="lab state folder (default: a temporary one)")
    parser.add_argument("--scenario", action="append", default=[],
                        help="seed a host from tests/lab/scenarios/NAME (repeatable, one host each, as the lab's own"
                             " --scenario); without it the hosts are plain lab hosts")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the figures here")
    parser.add_argument("ansible_args", nargs=argparse.REMAINDER,
                        help="after --: `-m MODULE [-a ARGS]` for ad-hoc, or a playbook and its options")
    args = parser.parse_args(argv)
    rest = [a for a in args.ansible_args if a != "--"] if args.ansible_args[:1] == ["--"] else args.ansible_args
    if not rest:
        parser.error("give the ansible arguments after --, e.g. -- -m ansible.windows.win_ping")
    transports = list(dict.fromkeys(args.transport or ["ntlm"]))

    state = args.state or tempfile.mkdtemp(prefix="m365ops-lab-")
    extra = [arg for name in args.scenario for arg in ("--scenario", name)]
    hosts = args.hosts or len(args.scenario) or 2
    lab = LabProcess(state, hosts=hosts, extra_args=extra, startup_timeout=300 if extra else 60.0)
    runs = []
    try:
        env = ansible_env(args.forks)
        bindir = os.path.dirname(sys.executable)
        for transport in transports:
            program = "ansible" if rest[0] in ("-m", "--module-name") else "ansible-playbook"
            cmd = [os.path.join(bindir, program)] + (["all"] if program == "ansible" else []) + [
                "-i", lab.inventory(transport)] + rest
            before = lab.counts(settle=0.3)
            t0 = time.monotonic()
            proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
            wall = time.monotonic() - t0
            runs.append({"transport": transport, "command": cmd, "rc": proc.returncode, "wall_seconds": round(wall, 2),
                         "forks": args.forks, "hosts": diff_counts(before, lab.counts()),
                         "output": proc.stdout[-4000:] + proc.stderr[-4000:]})
    finally:
        lab.stop()
        if not args.state:
            shutil.rmtree(state, ignore_errors=True)

    for run in runs:
        if run["rc"] != 0:
            sys.stderr.write(run["output"])
        print("%s  (%s, rc %d)" % (" ".join(os.path.basename(c) if i == 0 else c for i, c in enumerate(run["command"])),
                                   run["transport"], run["rc"]))
    if len(runs) == 1:
        print(table(runs[0]["hosts"]))
    else:
        print(table(None, {run["transport"]: run["hosts"] for run in runs}))
    for run in runs:
        n = len(run["hosts"])
        print("controller wall time (%s): %.1f s for %d host(s), forks %d: %.2f s per host" % (
            run["transport"], run["wall_seconds"], n, args.forks, run["wall_seconds"] / n))
    for run in runs:
        del run["output"]
    if args.json_out:
        with open(args.json_out, "w") as fh:
            # One run keeps the original shape; several are listed under "runs".
            json.dump(runs[0] if len(runs) == 1 else {"runs": runs}, fh, indent=2)
    return max(run["rc"] for run in runs)


if __name__ == "__main__":
    sys.exit(main())
