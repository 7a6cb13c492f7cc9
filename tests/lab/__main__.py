# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`python -m tests.lab serve --hosts N --state DIR`: run the lab until interrupted.

Prints the inventory (YAML) on stdout, then one line `# lab ready: <DIR>/lab.json`
that scripts and the pytest fixture wait for. SIGTERM/SIGINT stop it cleanly (every
command process is killed); with --parent-pid it also stops when that process dies,
so a killed test run leaves nothing behind.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading

from .shim import sandbox
from .endpoint import replay
from .endpoint.server import Lab


def _yaml(inv: dict) -> str:
    # The inventory is plain strings/ints, and JSON is valid YAML: no PyYAML needed here.
    return json.dumps(inv, indent=2) + "\n"


def _collections_on_path() -> None:
    """Scenario seeding uses the collection's parsers; find them in build/collections if needed."""
    try:
        import ansible_collections.m365ops.activation  # noqa: F401
    except ImportError:
        staged = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                              "build", "collections")
        if os.path.isdir(staged):
            sys.path.insert(0, staged)


_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# winrm connection (ntlm, basic) and psrp connection (psrp_ntlm, psrp_basic), each with the
# same listener and authentication pairing.
INVENTORIES = ("ntlm", "basic", "psrp_ntlm", "psrp_basic")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lab")
    sub = parser.add_subparsers(dest="cmd", required=True)
    serve = sub.add_parser("serve", help="serve N lab hosts until interrupted")
    serve.add_argument("--hosts", type=int, default=1)
    serve.add_argument("--state", required=True, help="state folder (created; one subfolder per host)")
    serve.add_argument("--pwsh", default=None, help="pwsh to run for powershell/pwsh commands")
    serve.add_argument("--transport", choices=INVENTORIES, default="ntlm",
                       help="which listener the printed inventory points at (both are always served)")
    serve.add_argument("--scenario", action="append", dest="scenarios", default=None,
                       help="seed host n with the n-th scenario (repeatable; cycles; a name under "
                            "tests/lab/scenarios or a path)")
    serve.add_argument("--password", default=None, help="lab user's password (default: random per run)")
    serve.add_argument("--disconnect-grace", type=float, default=3.0,
                       help="seconds a shell survives its client's disconnect before its processes are killed")
    serve.add_argument("--reboot-seconds", type=float, default=5.0,
                       help="how long a host stays unreachable when its shim asks for a reboot")
    serve.add_argument("--max-envelope-kb", type=int, default=500, help="MaxEnvelopeSizekb (Windows default 500)")
    serve.add_argument("--parent-pid", type=int, default=None, help="stop when this process is gone")
    serve.add_argument("--log", default=None, help="log file (default: <state>/lab.log)")
    serve.add_argument("--clock-offset", default=os.environ.get("M365OPS_LAB_CLOCK_OFFSET") or None,
                       help="move the clock of the lab and of every host process (libfaketime), e.g. +400d "
                            "(default: $M365OPS_LAB_CLOCK_OFFSET)")
    serve.add_argument("--confine", choices=("auto", "require", "off"),
                       default=os.environ.get("M365OPS_LAB_CONFINE") or "auto",
                       help="run host processes under bwrap, writable only below their state folder "
                            "(auto: when bwrap works here; default: $M365OPS_LAB_CONFINE or auto)")
    serve.add_argument("--replay", action="append", metavar="MODULE", default=None,
                       help="replay mode, for benchmarks that measure the controller: every host answers this "
                            "module (repeatable; e.g. m365ops.activation.win_activation_facts) from a recorded "
                            "run instead of starting pwsh. The first call per scenario and arguments runs for "
                            "real and is recorded (<state>/replay/); the others wait for it. HTTP, NTLM, "
                            "message encryption and every WS-Man operation stay real, the exec wrapper's "
                            "input is received in full; no process runs and the host is not changed, so only "
                            "for read-only modules, over the winrm connection (docs/lab.md, \"Scale\")")
    serve.add_argument("--replay-pace", metavar="|".join(replay.PACES), default="recorded",
                       help="recorded (default): a replayed answer comes as long after its Command as the "
                            "recorded run took, so the controller waits and polls as for real hosts; "
                            "instant: at once; SECONDS: that long after its Command (runs that compare "
                            "configurations, whatever the load during the recording)")
    serve.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.clock_offset:
        try:
            clock = sandbox.clock_environment(args.clock_offset)
        except (ValueError, sandbox.SandboxError) as exc:
            parser.error(str(exc))
        if clock and any(os.environ.get(k) != v for k, v in clock.items()):
            # libfaketime works only from the start of a process: start this one again under it.
            env = sandbox.with_clock(dict(os.environ), clock)
            env["PYTHONPATH"] = os.pathsep.join([_REPO_ROOT, env["PYTHONPATH"]])
            os.execve(sys.executable, [sys.executable, "-m", "tests.lab"] + list(argv if argv is not None else sys.argv[1:]),
                      env)

    if args.hosts < 1 or args.hosts > 250:
        parser.error("--hosts must be between 1 and 250")
    os.makedirs(args.state, exist_ok=True)
    _collections_on_path()
    logging.basicConfig(
        filename=args.log or os.path.join(args.state, "lab.log"),
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        lab = Lab(args.state, args.hosts, pwsh=args.pwsh, password=args.password,
                  max_request_size=args.max_envelope_kb * 1024, disconnect_grace=args.disconnect_grace,
                  reboot_seconds=args.reboot_seconds, scenarios=args.scenarios, confine=args.confine,
                  replay_modules=args.replay, replay_pace=args.replay_pace)
    except ValueError as exc:
        parser.error(str(exc))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    lab.start()
    try:
        info = lab.describe()
        info["inventory"] = {t: os.path.join(lab.state_dir, "inventory_%s.yml" % t) for t in INVENTORIES}
        for transport, path in info["inventory"].items():
            with open(path, "w") as fh:
                fh.write(_yaml(lab.inventory(transport)))
        with open(os.path.join(lab.state_dir, "lab.json"), "w") as fh:
            json.dump(info, fh, indent=2)
        sys.stdout.write(_yaml(lab.inventory(args.transport)))
        sys.stdout.write("# lab ready: %s\n" % os.path.join(lab.state_dir, "lab.json"))
        sys.stdout.flush()
        while not stop.wait(0.5):
            if args.parent_pid and not _alive(args.parent_pid):
                logging.getLogger("lab").warning("parent %d is gone; stopping", args.parent_pid)
                break
    finally:
        lab.stop()
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


if __name__ == "__main__":
    sys.exit(main())
