# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replay mode (`serve --replay MODULE`): a host answers a module from a recorded run.

Only the process that would run the module is replaced. Everything the controller sees
stays real: HTTP, NTLM and message encryption, the WinRS shell's Create, Command, Send (the
whole exec-wrapper payload is received and read), Receive (the recorded output, streamed
and split to the client's MaxEnvelopeSize like a live one) and Delete. What a host answers
is what a real pwsh run of the same module, with the same arguments, printed on a host
seeded from the same scenario: the first execution of each (scenario, module, arguments)
runs for real and is recorded; the others wait for that recording and get it.

By default (`--replay-pace recorded`) an answer comes as long after its Command as the
recorded run took, so the controller waits, and polls, as it would for real hosts; with
`instant` it comes at once, with a number of seconds that long after its Command. What a
replayed answer keeps from its recording: the recorder host's own values
(`hostname`, `collected_at`, the scheduled task's name). What it does not do: change the
host (no process, no task, no file), which is why it is for read-only modules only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading

log = logging.getLogger("lab.replay")

# ansible's exec-wrapper bootstrap (executor/powershell/bootstrap_wrapper.ps1) starts with
# this line; its input is the bootstrap manifest, a line of four NULs, then the exec manifest.
BOOTSTRAP_FIRST_LINE = "param([string]$InputFile)"
MANIFEST_SEPARATOR = b"\n\0\0\0\0\n"
MODULE_ACTION = "module_wrapper.ps1"
# recorded: a replayed answer comes as long after its Command as the real run took, so the
# controller waits (and polls) as long as it would for real hosts; instant: at once; a number:
# that many seconds after its Command (comparable runs whatever the recording run's load).
PACES = ("recorded", "instant", "SECONDS")


def parse_pace(value: str) -> str | float:
    """'recorded', 'instant' or a number of seconds >= 0; ValueError naming --replay-pace otherwise."""
    if value in ("recorded", "instant"):
        return value
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds > 3600:
        raise ValueError("--replay-pace must be recorded, instant or seconds from 0 to 3600, got %r" % (value,))
    return seconds


def is_exec_wrapper(argv: list[str]) -> bool:
    """True for `powershell ... -EncodedCommand <bootstrap_wrapper.ps1>`, ansible's module execution."""
    lowered = [a.lower() for a in argv]
    for flag in ("-encodedcommand", "-enc", "-e", "-ec"):
        if flag in lowered:
            i = lowered.index(flag)
            if i + 1 < len(argv):
                try:
                    script = base64.b64decode(argv[i + 1], validate=True).decode("utf-16-le")
                except ValueError:
                    return False
                return script.lstrip("\ufeff").startswith(BOOTSTRAP_FIRST_LINE)
    return False


def module_call(payload: bytes) -> tuple[str, dict] | None:
    """(module name, its arguments) from an exec-wrapper payload, or None if it runs no module."""
    _bootstrap, sep, rest = payload.partition(MANIFEST_SEPARATOR)
    if not sep:
        return None
    try:
        manifest = json.loads(rest.decode("utf-8"))
    except ValueError:
        return None
    for action in manifest.get("actions") or []:
        if action.get("name") != MODULE_ACTION:
            continue
        params = action.get("params") or {}
        script = str(params.get("Script") or "")
        name = script[:-4] if script.lower().endswith(".ps1") else script
        # ansible names a collection's module by its Python path:
        # ansible_collections.<ns>.<coll>.plugins.modules.<name> is <ns>.<coll>.<name>.
        parts = name.split(".")
        if len(parts) == 6 and parts[0] == "ansible_collections" and parts[3:5] == ["plugins", "modules"]:
            name = ".".join(parts[1:3] + parts[5:])
        args = {}
        for var in params.get("Variables") or []:
            if var.get("Name") == "complex_args":
                args = var.get("Value") or {}
        return name, args
    return None


def arguments_key(args: dict) -> str:
    """What makes two calls the same for a recording: every argument but ansible's own
    per-run `_ansible_*` values (temp folders, verbosity, the check-mode flag is kept)."""
    kept = {k: v for k, v in args.items() if not k.startswith("_ansible_") or k == "_ansible_check_mode"}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Recording:
    """One recorded module run: the output chunks in order and the exit code."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.chunks: list[tuple[str, bytes]] | None = None
        self.exit_code: int | None = None
        self.recorded_on: str | None = None
        # How long the real run took, from its Command to its exit: what a paced replay waits.
        self.seconds = 0.0


class ReplayStore:
    """The lab's recordings, shared by every host, written to `<state>/replay/` for inspection."""

    def __init__(self, modules: list[str], folder: str, pace: str = "recorded") -> None:
        self.pace = parse_pace(str(pace))
        self.modules = {m.lower() for m in modules}
        self.folder = folder
        self.lock = threading.Lock()
        self.recordings: dict[tuple, Recording] = {}

    def wants(self, module: str) -> bool:
        return module.lower() in self.modules

    def claim(self, key: tuple) -> tuple[Recording, bool]:
        """The recording for `key`, and True when the caller must record it (the first to ask)."""
        with self.lock:
            rec = self.recordings.get(key)
            if rec is None:
                rec = self.recordings[key] = Recording()
                return rec, True
            return rec, False

    def delay(self, rec: Recording) -> float:
        """Seconds a replayed answer takes after its Command: the recorded run's, none, or the set pace."""
        if self.pace == "recorded":
            return rec.seconds
        return 0.0 if self.pace == "instant" else float(self.pace)

    def finish(self, key: tuple, rec: Recording, host: str, chunks: list[tuple[str, bytes]] | None,
               exit_code: int | None, seconds: float = 0.0) -> None:
        """Publish a real run's output; a failed run is not kept, and the next call records again."""
        if chunks is None or exit_code != 0:
            with self.lock:
                if self.recordings.get(key) is rec:
                    del self.recordings[key]
            log.warning("%s: recording of %s failed (exit %s); the next call runs for real", host, key[1], exit_code)
            rec.ready.set()
            return
        rec.chunks, rec.exit_code, rec.recorded_on, rec.seconds = chunks, exit_code, host, seconds
        os.makedirs(self.folder, exist_ok=True)
        path = os.path.join(self.folder, "%s--%s--%s.json" % (key[0] or "unseeded", key[1], key[2]))
        with open(path, "w") as fh:
            json.dump({"scenario": key[0], "module": key[1], "arguments_key": key[2], "recorded_on": host,
                       "exit_code": exit_code, "seconds": round(seconds, 3),
                       "chunks": [[name, data.decode("utf-8", "replace")] for name, data in chunks]}, fh, indent=1)
        log.info("%s: recorded %s for scenario %s (%d bytes)", host, key[1], key[0],
                 sum(len(d) for _n, d in chunks))
        rec.ready.set()
