# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the roles cost per host on the wire, against a hand-written ansible.windows baseline.

    .venv/bin/python benchmarks/lab_roundtrips.py [--json FILE] [--keep]

Starts one lab (tests/lab) with four hosts: two seeded from PC-HYB-PRT (TokenBroker broken:
rungs 1 and 3, then a restart) and two from PC-HEALTHY. Through ansible-core's winrm
connection (NTLM + message encryption) it runs, each phase on its own hosts so the
endpoint's per-host counters (counts.json) separate them:

  diagnose   playbooks/diagnose.yml on the broken and the healthy host
  broken     playbooks/remediate.yml on the broken host (remediate_reboot: true): diagnose, the
             one repair execution (rungs, restart scheduled from inside it), the verification
  healthy    playbooks/remediate.yml on the healthy host (a re-run where nothing is wrong)
  baseline   benchmarks/baseline/manual_fix.yml on the other broken and the other healthy
             host: Microsoft's manual procedure, one ansible.windows task per step

and prints, per phase and host: WS-Man requests (logon round trips included), KB up and
down, WinRS commands (= processes started), their seconds, restarts, and of those commands
the module executions (ansible's exec-wrapper bootstrap, from lab.log) apart from
win_reboot's own checks and shutdown command; then the ratios against the baseline and the
issue's targets. Takes 5-8 minutes on two busy cores.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lab_measure import ansible_env, diff_counts, table  # noqa: E402  (sibling script)
from tests.lab.process import LabProcess  # noqa: E402  (the repository root is not a package)

# lab01..lab04: a scenario seeded twice keeps the labNN names (tests/lab/endpoint/server.py).
HOSTS = {"broken": "lab01", "healthy": "lab02", "baseline_broken": "lab03", "baseline_healthy": "lab04"}
SCENARIOS = ["PC-HYB-PRT", "PC-HEALTHY", "PC-HYB-PRT", "PC-HEALTHY"]
# A module execution is ansible's exec-wrapper bootstrap (`-EncodedCommand` of a script that
# starts with this line, the module on stdin); win_reboot's own checks and its shutdown
# command are other encoded scripts. lab.log shows each WinRS command's first 77 characters.
BOOTSTRAP = base64.b64encode("param([string]$InputFile)".encode("utf-16-le")).decode()[:64]
COMMAND_LINE = re.compile(r" lab\.winrs (\S+): Command \S+ pid \d+: (.*)$", re.M)


def command_kinds(log_text: str) -> dict:
    """host -> {"modules": n, "other": n} for the WinRS commands logged in log_text."""
    out: dict = {}
    for host, argv in COMMAND_LINE.findall(log_text):
        kind = "modules" if "-EncodedCommand " + BOOTSTRAP in argv else "other"
        out.setdefault(host, {"modules": 0, "other": 0})[kind] += 1
    return out


def run(lab: LabProcess, book: str, hosts: list[str], *extra: str) -> tuple[int, float, dict, str]:
    env = ansible_env(2)
    report_dir = os.path.join(lab.state_dir, "reports", os.path.basename(book) + "-" + "-".join(hosts))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", lab.inventory("ntlm"),
           book, "-e", "target=%s" % ",".join(hosts), "-e", "report_dir=%s" % report_dir] + list(extra)
    before = lab.counts(settle=0.3)
    log_path = os.path.join(lab.state_dir, "lab.log")
    offset = os.path.getsize(log_path)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - t0
    per_host = {h: c for h, c in diff_counts(before, lab.counts()).items() if h in hosts}
    with open(log_path, encoding="utf-8", errors="replace") as fh:
        fh.seek(offset)
        kinds = command_kinds(fh.read())
    for host, c in per_host.items():
        c["modules"] = kinds.get(host, {}).get("modules", 0)
        c["other_commands"] = kinds.get(host, {}).get("other", 0)
    return proc.returncode, wall, per_host, proc.stdout[-2500:] + proc.stderr[-1500:]


def ratio(base: dict, ours: dict, key: str) -> str:
    return "%.1fx" % (base[key] / ours[key]) if ours.get(key) else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--json", dest="json_out", default=None, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the lab state folder")
    args = parser.parse_args(argv)

    state = tempfile.mkdtemp(prefix="m365ops-roundtrips-")
    extra = ["--reboot-seconds", "3"]
    for name in SCENARIOS:
        extra += ["--scenario", name]
    lab = LabProcess(state, hosts=len(SCENARIOS), extra_args=extra, startup_timeout=300)
    phases = {}
    try:
        diagnose = os.path.join(REPO_ROOT, "playbooks", "diagnose.yml")
        remediate = os.path.join(REPO_ROOT, "playbooks", "remediate.yml")
        baseline = os.path.join(REPO_ROOT, "benchmarks", "baseline", "manual_fix.yml")
        plan = [
            ("diagnose", diagnose, [HOSTS["broken"], HOSTS["healthy"]], []),
            ("broken", remediate, [HOSTS["broken"]], ["-e", "remediate_reboot=true"]),
            ("healthy", remediate, [HOSTS["healthy"]], ["-e", "remediate_reboot=true"]),
            ("baseline", baseline, [HOSTS["baseline_broken"], HOSTS["baseline_healthy"]], []),
        ]
        for name, book, hosts, more in plan:
            rc, wall, per_host, tail = run(lab, book, hosts, *more)
            phases[name] = {"rc": rc, "wall_seconds": round(wall, 1), "hosts": per_host}
            where = os.path.relpath(book, REPO_ROOT)
            print("== %s: %s on %s  (rc %d, %.0f s)" % (name, where, ", ".join(hosts), rc, wall))
            print(table(per_host))
            print("   module executions: %s (other WinRS commands, win_reboot's own: %s)" % (
                ", ".join("%s %d" % (h, c["modules"]) for h, c in sorted(per_host.items())),
                ", ".join("%s %d" % (h, c["other_commands"]) for h, c in sorted(per_host.items()))))
            if rc != 0:
                print("   (non-zero exit; last output:)\n   " + tail.strip().replace("\n", "\n   ")[-1500:])
    finally:
        lab.stop()
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)

    checks = summarize(phases)
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump({"phases": phases, "targets": dict(checks)}, fh, indent=2)
    return 0 if all(ok for _text, ok in checks) else 1


def summarize(phases: dict) -> list:
    """Print the ratios and the targets; return the targets that set the exit code, as
    (text, met) pairs. Issue 19's KB targets are printed met or MISS but leave the exit code
    alone: they are below ansible-core's per-module floor (docs/lab.md, "The floor")."""
    ours_broken = phases["broken"]["hosts"][HOSTS["broken"]]
    ours_healthy = phases["healthy"]["hosts"][HOSTS["healthy"]]
    base_broken = phases["baseline"]["hosts"][HOSTS["baseline_broken"]]
    base_healthy = phases["baseline"]["hosts"][HOSTS["baseline_healthy"]]
    diag = phases["diagnose"]["hosts"]
    print("\n== ratios (baseline / ours)")
    for label, ours, base in (("broken host", ours_broken, base_broken), ("healthy re-run", ours_healthy, base_healthy)):
        print("%-15s requests %s, KB up %s, WinRS commands %s, module executions %s, process seconds %s" % (
            label, ratio(base, ours, "requests_total"), ratio(base, ours, "bytes_in"), ratio(base, ours, "processes"),
            ratio(base, ours, "modules"), ratio(base, ours, "process_seconds")))
    checks = [
        ("diagnose: 1 module execution per host", all(h["modules"] == 1 == h["processes"] for h in diag.values())),
        # Learn, change, restart, verify: the restart is scheduled from inside the repair
        # execution, so no WinRS command of its own (issue 19).
        ("broken host: <= 3 module executions, no other WinRS command, 1 restart",
         ours_broken["modules"] <= 3 and ours_broken["other_commands"] == 0 and ours_broken["reboots"] == 1),
        ("healthy re-run: 1 module execution (the diagnosis), no restart",
         ours_healthy["modules"] == 1 and ours_healthy["other_commands"] == 0 and ours_healthy["reboots"] == 0),
        (">= 3x fewer requests than the baseline (broken and healthy)",
         base_broken["requests_total"] >= 3 * ours_broken["requests_total"]
         and base_healthy["requests_total"] >= 3 * ours_healthy["requests_total"]),
    ]
    facts_up = max(h["bytes_in"] for h in diag.values()) / 1024
    recorded = [
        ("broken host: >= 2x fewer KB up than the baseline (%s)" % ratio(base_broken, ours_broken, "bytes_in"),
         base_broken["bytes_in"] >= 2 * ours_broken["bytes_in"]),
        ("healthy re-run: >= 8x fewer requests than the baseline (%s)" % ratio(base_healthy, ours_healthy, "requests_total"),
         base_healthy["requests_total"] >= 8 * ours_healthy["requests_total"]),
        ("diagnose: <= 200 KB up per facts execution (%.0f KB)" % facts_up, facts_up <= 200),
    ]
    print("\n== targets (issues 10 and 19; these set the exit code)")
    for text, ok in checks:
        print("%-4s %s" % ("met" if ok else "MISS", text))
    print("\n== issue 19's ratio and payload targets (printed; the KB ones are below ansible-core's floor)")
    for text, ok in recorded:
        print("%-4s %s" % ("met" if ok else "MISS", text))
    return checks


if __name__ == "__main__":
    sys.exit(main())
