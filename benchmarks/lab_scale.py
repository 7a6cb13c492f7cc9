# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller time per host for playbooks/diagnose.yml on many lab hosts, and where it goes.

    nice -n 10 .venv/bin/python benchmarks/lab_scale.py                      # 200 hosts, examples/ansible.cfg
    nice -n 10 .venv/bin/python benchmarks/lab_scale.py --hosts 100 --hosts 200 \
        --config tests/ansible.cfg --config examples/ansible.cfg             # ansible-core defaults vs recommended
    nice -n 10 .venv/bin/python benchmarks/lab_scale.py --hosts 100 --profile
    nice -n 10 .venv/bin/python benchmarks/lab_scale.py --hosts 20 --mode real   # a pwsh per host

For each --hosts N (and each --config): starts one lab (tests/lab) with N hosts seeded from
--scenario (default PC-HEALTHY), runs playbooks/diagnose.yml against all of them through
ansible-core's winrm connection (NTLM + message encryption) with that ansible.cfg (default
examples/ansible.cfg, the recommended one; tests/ansible.cfg leaves forks and
internal_poll_interval at ansible-core's defaults) and --forks (default: the config's), and prints:

  controller  CPU seconds (user + sys) of ansible-playbook and everything it started, in total
              and per host (getrusage(RUSAGE_CHILDREN) around it), and the wall time;
  where       the split between ansible-playbook's main process (strategy, templating of task
              arguments, results, callbacks) and its forked workers, the workers' CPU per task
              (each worker records its own getrusage when its task ends), and with --profile a
              cProfile (CPU clock) of main process and workers by code area: WinRM transport,
              NTLM/encryption, module build (exec wrapper, payload), templating, action plugins
              and the collection's Python, other;
  lab         the lab's own CPU, apart: the endpoint process (HTTP, NTLM, WS-Man) and the
              PowerShell processes it ran (their CPU, from /proc cutime/cstime), and the
              counters of counts.json (requests, module executions, replayed ones, lifetimes);
  context     the lab mode, the configuration, forks, internal_poll_interval and the load
              average before and after: the two cores are shared, CPU time is the figure.

--mode replay (default) runs the lab in replay mode (`serve --replay`, docs/lab.md "Scale"):
the first host's win_activation_facts runs for real and is recorded, every other host answers
from that recording --pace seconds (default 15) after its command, over the real HTTP/NTLM/
WS-Man path, so 200 hosts fit on two cores and the controller waits as long as it would for
Windows hosts. --mode real runs a pwsh per host (~19 CPU s each): the lab is then the
bottleneck and sets the wall time. With several --hosts and one config the controller CPU is
fitted as a + b*N and, with --extrapolate M, printed for M hosts, labelled as an
extrapolation. --profile slows the controller (the profiler's own cost is in its CPU
figures): use it for the split, not for the totals.
"""

from __future__ import annotations

import argparse
import configparser
import cProfile
import glob
import json
import os
import pstats
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tests.lab.process import LabProcess  # noqa: E402  (the repository root is not a package)
from lab_measure import ansible_env  # noqa: E402  (sibling script)

FACTS_MODULE = "m365ops.activation.win_activation_facts"
# The recommended configuration that ships with the examples (README, docs/lab.md "Scale").
DEFAULT_CONFIG = os.path.join(REPO_ROOT, "examples", "ansible.cfg")

# Code areas for --profile, first match wins (path fragments of the profiled functions' files).
AREAS = [
    ("NTLM + message encryption", ("/spnego/", "/cryptography/", "/requests_ntlm/", "/ntlm_auth/", "hashlib", "hmac")),
    ("WinRM transport (pywinrm, requests, sockets)",
     ("/winrm/", "/requests/", "/urllib3/", "/http/", "socket", "ssl", "/plugins/connection/", "selectors")),
    ("module build (exec wrapper, payload)", ("/executor/module_common", "/executor/powershell/", "/plugins/shell/",
                                              "/module_utils/", "zlib", "base64", "pkgutil", "zipfile")),
    ("templating (Jinja2)", ("/jinja2/", "/ansible/template/", "/_internal/_templating/", "/markupsafe/")),
    ("action plugins and the collection", ("/ansible_collections/", "/plugins/action/", "/plugins/filter/")),
    ("task executor, play objects, plugin loading", ("/executor/task_executor", "/ansible/playbook/", "/plugins/loader",
                                                     "/ansible/_internal/", "/ansible/utils/", "copy.py", "/re/", "importlib",
                                                     "<frozen")),
    ("strategy, results, callbacks, queues", ("/plugins/strategy/", "/executor/", "/plugins/callback/", "multiprocessing",
                                              "pickle", "queue", "threading")),
    ("YAML, JSON, variables, inventory", ("/yaml/", "json", "/vars/", "/inventory/", "/parsing/")),
]


WAITING = "waiting (other threads' CPU lands here)"
WAITS = ("time.sleep", "posix.waitpid", "acquire", "select.", "poll", " wait", "queue.py", "epoll")


def ticks(pid: int) -> dict:
    """CPU seconds of a live process: its own (utime+stime) and its waited-for children's."""
    with open("/proc/%d/stat" % pid) as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    hz = os.sysconf("SC_CLK_TCK")
    # fields[11..14] are utime, stime, cutime, cstime (man 5 proc, counting from state = 0).
    return {"self": (int(fields[11]) + int(fields[12])) / hz, "children": (int(fields[13]) + int(fields[14])) / hz}


def area_of(filename: str) -> str:
    for name, parts in AREAS:
        if any(p in filename for p in parts):
            return name
    return "other"


def profile_areas(files: list[str], top: int = 8) -> tuple[dict, list]:
    """Own CPU time (tottime) per code area over the given cProfile dumps, and the top functions."""
    out: dict = {}
    if not files:
        return out, []
    stats = pstats.Stats(files[0])
    for f in files[1:]:
        stats.add(f)
    rows = []
    for (filename, line, func), (_cc, _nc, tottime, _ct, callers) in stats.stats.items():  # pylint: disable=no-member
        where = "%s:%d" % ("/".join(filename.split("/")[-3:]), line) if line else filename
        rows.append((round(tottime, 2), "%s %s" % (where, func)))
        if any(w in "%s %s" % (filename, func) for w in WAITS):
            # The profiler's clock is the process's CPU, all threads: while one thread waits,
            # the others' CPU lands on the wait.
            out[WAITING] = out.get(WAITING, 0.0) + tottime
        elif filename == "~" and callers:
            # A builtin (getattr, isinstance, compile, ...): charged to the areas that called it.
            for (cfile, _cl, _cf), (_ncc, _ccc, ctt, _cct) in callers.items():
                area = area_of(cfile)
                out[area] = out.get(area, 0.0) + ctt
        else:
            area = area_of(filename)
            out[area] = out.get(area, 0.0) + tottime
    return out, sorted(rows, reverse=True)[:top]


# --------------------------------------------------------------------------------------
# the probe: ansible-playbook run in-process with its main process and workers measured
# --------------------------------------------------------------------------------------
def probe(outdir: str, profile: bool, argv: list[str]) -> int:
    """Run ansible-playbook here; each worker appends its task's CPU to outdir/workers.jsonl,
    the main process writes outdir/main.json (and .prof dumps with profile)."""
    from ansible.cli.playbook import main as playbook_main
    from ansible.executor.process.worker import WorkerProcess

    original_run = WorkerProcess._run  # pylint: disable=protected-access
    main_prof = cProfile.Profile(time.process_time) if profile else None

    def measured_run(self):
        # A forked worker's rusage starts at zero (fork(2)), so this is the task's own CPU.
        if main_prof:
            main_prof.disable()  # the fork inherited the main process's profiler: its own instead
        prof = cProfile.Profile(time.process_time) if profile else None
        t0 = time.monotonic()
        if prof:
            prof.enable()
        try:
            return original_run(self)
        finally:
            if prof:
                prof.disable()
                prof.dump_stats(os.path.join(outdir, "worker-%d.prof" % os.getpid()))
            me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
            rec = {"task": self._task.get_name(), "host": self._host.name, "wall": time.monotonic() - t0,  # pylint: disable=protected-access
                   "cpu": me.ru_utime + me.ru_stime, "children_cpu": kids.ru_utime + kids.ru_stime}
            # O_APPEND writes of one short line do not interleave between workers.
            with open(os.path.join(outdir, "workers.jsonl"), "a") as fh:
                fh.write(json.dumps(rec) + "\n")

    WorkerProcess._run = measured_run  # pylint: disable=protected-access
    sys.argv = ["ansible-playbook"] + argv
    prof = main_prof
    if prof:
        prof.enable()
    code = 0
    try:
        playbook_main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        if prof:
            prof.disable()
            prof.dump_stats(os.path.join(outdir, "main.prof"))
        me = resource.getrusage(resource.RUSAGE_SELF)
        with open(os.path.join(outdir, "main.json"), "w") as fh:
            json.dump({"cpu": me.ru_utime + me.ru_stime, "user": me.ru_utime, "sys": me.ru_stime}, fh)
    return code


# --------------------------------------------------------------------------------------
# one measurement
# --------------------------------------------------------------------------------------
def config_settings(config: str) -> dict:
    """The [defaults] settings of an ansible.cfg that this benchmark reports (ansible-core's own
    defaults where it sets none): forks 5, internal_poll_interval 0.001 s."""
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    parser.read(config)
    return {"forks": parser.getint("defaults", "forks", fallback=5),
            "internal_poll_interval": parser.getfloat("defaults", "internal_poll_interval", fallback=0.001)}


def load_average() -> float:
    return round(os.getloadavg()[0], 1)


def measure(hosts: int, forks: int | None, scenario: str, profile: bool, keep: bool, mode: str = "replay",
            config: str = DEFAULT_CONFIG, pace: str = "15") -> dict:
    state = tempfile.mkdtemp(prefix="m365ops-scale-%d-" % hosts)
    outdir = os.path.join(state, "controller")
    os.makedirs(outdir)
    settings = config_settings(config)
    if forks is not None:
        settings["forks"] = forks
    lab_args = ["--scenario", scenario] + (["--replay", FACTS_MODULE, "--replay-pace", pace] if mode == "replay" else [])
    t0 = time.monotonic()
    # Seeding is per host (state folder, shim, native libraries): allow for it on busy cores.
    lab = LabProcess(state, hosts=hosts, extra_args=lab_args, startup_timeout=180 + 5 * hosts)
    startup = time.monotonic() - t0
    try:
        env = ansible_env(forks, config)
        cmd = [sys.executable, os.path.abspath(__file__), "_probe", outdir] + (["--profile"] if profile else []) + [
            "--", "-i", lab.inventory("ntlm"), os.path.join(REPO_ROOT, "playbooks", "diagnose.yml"),
            "-e", "target=all", "-e", "report_dir=%s" % os.path.join(state, "report")]
        lab_before = ticks(lab.proc.pid)
        counts_before = lab.counts(settle=0.3)
        load_before = load_average()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t1 = time.monotonic()
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
        wall = time.monotonic() - t1
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_after = load_average()
        lab_after = ticks(lab.proc.pid)
        counts_after = lab.counts()
    finally:
        lab.stop()
    if not os.path.exists(os.path.join(outdir, "main.json")):
        raise RuntimeError("the controller probe did not run (rc %d):\n%s\n%s" % (
            proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    with open(os.path.join(outdir, "main.json")) as fh:
        main_cpu = json.load(fh)
    workers = []
    if os.path.exists(os.path.join(outdir, "workers.jsonl")):  # no task ran at all: none
        with open(os.path.join(outdir, "workers.jsonl")) as fh:
            workers = [json.loads(line) for line in fh if line.strip()]
    per_task: dict = {}
    for w in workers:
        t = per_task.setdefault(w["task"], {"workers": 0, "cpu": 0.0, "children_cpu": 0.0, "wall": 0.0})
        t["workers"] += 1
        t["cpu"] += w["cpu"]
        t["children_cpu"] += w["children_cpu"]
        t["wall"] += w["wall"]
    user, system = ru1.ru_utime - ru0.ru_utime, ru1.ru_stime - ru0.ru_stime
    requests = sum(counts_after[h]["requests_total"] - counts_before.get(h, {}).get("requests_total", 0)
                   for h in counts_after)
    procs = sum(counts_after[h]["processes_started"] - counts_before.get(h, {}).get("processes_started", 0)
                for h in counts_after)
    replayed = sum(counts_after[h].get("replayed", 0) - counts_before.get(h, {}).get("replayed", 0)
                   for h in counts_after)
    proc_s = sum(counts_after[h]["process_seconds"] - counts_before.get(h, {}).get("process_seconds", 0)
                 for h in counts_after)
    failed = re.findall(r"^(\S+)\s+:\s+ok=\d+\s+changed=\d+\s+unreachable=(\d+)\s+failed=(\d+)", proc.stdout, re.M)
    result = {
        "hosts": hosts, "forks": settings["forks"], "scenario": scenario, "rc": proc.returncode,
        "lab_startup_seconds": round(startup, 1),
        "mode": mode if mode == "real" else "replay (%s pace)" % (pace if pace in ("recorded", "instant") else pace + " s"),
        "config": os.path.relpath(config, REPO_ROOT), "internal_poll_interval": settings["internal_poll_interval"],
        "load_average": [load_before, load_after], "measured_at": time.strftime("%Y-%m-%d %H:%M"),
        "wall_seconds": round(wall, 1),
        "controller": {"user": round(user, 2), "sys": round(system, 2), "cpu": round(user + system, 2),
                       "cpu_per_host": round((user + system) / hosts, 3),
                       "main_process": round(main_cpu["cpu"], 2),
                       "workers": round(sum(w["cpu"] + w["children_cpu"] for w in workers), 2),
                       "per_task": {k: {kk: round(vv, 2) for kk, vv in v.items()} for k, v in per_task.items()}},
        "lab": {"endpoint_cpu": round(lab_after["self"] - lab_before["self"], 2),
                "powershell_cpu": round(lab_after["children"] - lab_before["children"], 2),
                "requests": requests, "module_executions": procs + replayed, "replayed": replayed,
                "processes": procs, "process_lifetime_seconds": round(proc_s, 1)},
        "hosts_failed_or_unreachable": sum(1 for _h, unreach, fail in failed if int(unreach) or int(fail)),
    }
    if profile:
        result["profile"] = {}
        for side, files in (("main_process", [os.path.join(outdir, "main.prof")]),
                            ("workers", sorted(glob.glob(os.path.join(outdir, "worker-*.prof"))))):
            areas, top = profile_areas(files)
            result["profile"][side] = {k: round(v, 2) for k, v in areas.items()}
            result["profile"][side + "_top"] = top
    if proc.returncode != 0:
        result["output_tail"] = proc.stdout[-2000:] + proc.stderr[-2000:]
    if keep:
        result["state"] = state
    else:
        shutil.rmtree(state, ignore_errors=True)
    return result


def report(r: dict) -> str:
    c, lab = r["controller"], r["lab"]
    n = r["hosts"]
    lines = [
        "== %d hosts (%s), lab mode %s, %s (forks %d, internal_poll_interval %g s): playbooks/diagnose.yml, "
        "rc %d, %d host(s) failed/unreachable" % (
            n, r["scenario"], r["mode"], r["config"], r["forks"], r["internal_poll_interval"], r["rc"],
            r["hosts_failed_or_unreachable"]),
        "measured           %s, load average %.1f before, %.1f after (2 cores: CPU time is the figure, not wall)" % (
            r["measured_at"], r["load_average"][0], r["load_average"][1]),
        "wall time           %7.1f s  (%.2f s per host; lab start-up and seeding %.0f s, not included)" % (
            r["wall_seconds"], r["wall_seconds"] / n, r["lab_startup_seconds"]),
        "controller CPU      %7.1f s  (user %.1f + sys %.1f) = %.3f s per host" % (
            c["cpu"], c["user"], c["sys"], c["cpu_per_host"]),
        "  main process      %7.1f s  (strategy, templating, results, callbacks)" % c["main_process"],
        "  workers           %7.1f s  (connection, module build, action plugins; per task below)" % c["workers"],
    ]
    for task, t in sorted(c["per_task"].items(), key=lambda kv: -(kv[1]["cpu"] + kv[1]["children_cpu"])):
        cpu = t["cpu"] + t["children_cpu"]
        lines.append("    %-58s %6.1f s CPU in %4d worker(s), %.3f s each" % (
            task[:58], cpu, t["workers"], cpu / max(t["workers"], 1)))
    for side in ("main_process", "workers"):
        prof = r.get("profile", {}).get(side)
        if prof:
            total = sum(prof.values()) or 1.0
            lines.append("  profile, %s (CPU clock, profiler overhead included):" % side.replace("_", " "))
            for area, sec in sorted(prof.items(), key=lambda kv: -kv[1]):
                lines.append("    %-58s %6.1f s  %3.0f%%" % (area, sec, 100 * sec / total))
            top = r["profile"][side + "_top"][:5]
            lines.append("    top functions (own CPU): " + "; ".join("%s %.1f s" % (name, sec) for sec, name in top))
    lines += [
        "lab CPU (not the controller's): endpoint %.1f s, PowerShell processes %.1f s = %.2f s per host" % (
            lab["endpoint_cpu"], lab["powershell_cpu"], (lab["endpoint_cpu"] + lab["powershell_cpu"]) / n),
        "lab counters: %d WS-Man requests (%.1f per host), %d module executions (%d of them replayed, "
        "%d pwsh processes), %.0f s summed lifetime" % (
            lab["requests"], lab["requests"] / n, lab["module_executions"], lab["replayed"], lab["processes"],
            lab["process_lifetime_seconds"]),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_probe"]:
        outdir, rest = argv[1], argv[2:]
        profile = rest[:1] == ["--profile"]
        rest = rest[1:] if profile else rest
        return probe(outdir, profile, rest[1:] if rest[:1] == ["--"] else rest)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--hosts", type=int, action="append", default=None, help="lab hosts (repeatable; default 200)")
    parser.add_argument("--forks", type=int, default=None, help="forks (default: the config's; ansible-core's is 5)")
    parser.add_argument("--config", action="append", default=None,
                        help="ansible.cfg to run with (repeatable: each --hosts is run once per config; default "
                             "examples/ansible.cfg, the recommended one; tests/ansible.cfg has ansible-core's "
                             "defaults for forks and internal_poll_interval)")
    parser.add_argument("--mode", choices=("replay", "real"), default="replay",
                        help="lab mode: replay (every host answers win_activation_facts from a recorded real run "
                             "of the same scenario: the controller is what is measured) or real (a pwsh per host)")
    parser.add_argument("--pace", default="15",
                        help="replay mode: each host answers this many seconds after its command (default 15, "
                             "a lab diagnosis's own duration: docs/lab.md, round trips), `recorded` (as long as "
                             "the recorded run took, which varies with the load) or `instant`")
    parser.add_argument("--scenario", default="PC-HEALTHY")
    parser.add_argument("--profile", action="store_true", help="also cProfile the controller (main process and workers)")
    parser.add_argument("--extrapolate", type=int, default=None, help="fit the runs and print the controller CPU for this many hosts")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the lab state folders")
    args = parser.parse_args(argv)
    sizes = args.hosts or [200]
    configs = [os.path.abspath(c) for c in (args.config or [DEFAULT_CONFIG])]
    results = []
    for n, config in [(n, c) for n in sizes for c in configs]:
        r = measure(n, args.forks, args.scenario, args.profile, args.keep, args.mode, config, args.pace)
        results.append(r)
        print(report(r), flush=True)
        if r["rc"] != 0:
            print("   (non-zero exit; last output:)\n   " + r.get("output_tail", "").strip().replace("\n", "\n   ")[-1500:])
    fit = None
    if len(results) >= 2 and len(configs) == 1:
        # Least squares a + b*N over the runs: b is the marginal controller CPU per host.
        xs = [r["hosts"] for r in results]
        ys = [r["controller"]["cpu"] for r in results]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        fit = {"a": round(my - b * mx, 2), "b": round(b, 4)}
        print("\n== fit over %s hosts: controller CPU = %.1f s + %.3f s x hosts" % (xs, fit["a"], fit["b"]))
        if args.extrapolate:
            m = args.extrapolate
            fit["extrapolated"] = {"hosts": m, "cpu": round(fit["a"] + fit["b"] * m, 1)}
            print("EXTRAPOLATED (not measured) to %d hosts: controller CPU %.0f s = %.3f s per host" % (
                m, fit["a"] + fit["b"] * m, (fit["a"] + fit["b"] * m) / m))
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump({"runs": results, "fit": fit}, fh, indent=2)
    return max(r["rc"] for r in results)


if __name__ == "__main__":
    sys.exit(main())
