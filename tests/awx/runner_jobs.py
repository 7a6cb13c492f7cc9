# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jobs run the way AWX runs them: ansible-runner over a private data dir holding the example
project (examples/awx/project), an inventory and the survey's answers as extra vars. Shared by
test_awx_runner.py and test_awx_slices.py."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BIN = Path(sys.executable).parent
PROJECT = ROOT / "examples" / "awx" / "project"
IDENT = "job42"


def survey_answers(playbook="remediate.yml", target=None, name=None):
    """What AWX sends for a job template's survey answered with its defaults; ``target``: one host by name
    or pattern instead of the default. The template is the first for ``playbook``, or the one ``name``d."""
    templates = yaml.safe_load((ROOT / "examples" / "awx" / "job_templates.yml").read_text(encoding="utf-8"))
    template = next(t for t in templates["m365_awx_job_templates"]
                    if t["playbook"] == playbook and name in (None, t["name"]))
    answers = {}
    for question in template["survey_spec"]["spec"]:
        default = question.get("default", "")
        if question["type"] == "multiselect":
            answers[question["variable"]] = [c for c in str(default).splitlines() if c.strip()]
        else:
            answers[question["variable"]] = default
    if target is not None:
        answers["target"] = target
    return answers


def lab_inventory(lab, hosts) -> dict:
    """The lab's NTLM inventory as it is: its hosts are in m365_clients (every connection variable the lab's)."""
    with open(lab.inventory("ntlm"), encoding="utf-8") as handle:
        generated = yaml.safe_load(handle)
    assert set(hosts) <= set(generated["all"]["children"]["m365_clients"]["hosts"])
    return generated


def run_job(base, playbook, extravars, inventory, ident=IDENT):
    """``ansible-runner run`` over a private data dir holding the example project, the
    inventory and the survey's answers, as AWX runs a job; returns (process, status)."""
    pdd = base / "private_data_dir"
    shutil.copytree(PROJECT, pdd / "project")
    (pdd / "inventory").mkdir(parents=True)
    (pdd / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    (pdd / "env").mkdir()
    (pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars))
    # What the execution environment provides: the collections and ansible on PATH.
    (pdd / "env" / "envvars").write_text(yaml.safe_dump({
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "build" / "collections"),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
        "ANSIBLE_HOME": str(base / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(base / "ansible-local"),
        "ANSIBLE_FORKS": "2",
    }))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "PYTHONPATH"}
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    done = subprocess.run([sys.executable, "-m", "ansible_runner", "run", str(pdd), "--playbook", playbook,
                           "--ident", ident], cwd=base, env=env, capture_output=True, text=True, timeout=900,
                          check=False)
    status_file = pdd / "artifacts" / ident / "status"
    return done, status_file.read_text().strip() if status_file.exists() else None


def stats_event(private_data_dir: Path, ident=IDENT) -> dict:
    """ansible-runner's playbook_on_stats event: its artifact_data is what AWX keeps as the job's artifacts."""
    found = glob.glob(str(private_data_dir / "artifacts" / ident / "job_events" / "*-playbook_on_stats*.json")) \
        or [p for p in glob.glob(str(private_data_dir / "artifacts" / ident / "job_events" / "*.json"))
            if json.loads(Path(p).read_text(encoding="utf-8")).get("event") == "playbook_on_stats"]
    assert len(found) == 1, found
    return json.loads(Path(found[0]).read_text(encoding="utf-8"))


def collection_playbook(cwd: Path, playbook: str, *args):
    """``ansible-playbook m365ops.activation.<playbook> ARGS`` on the controller, from ``cwd``,
    with the staged collection only (no ANSIBLE_* of the caller's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "PYTHONPATH"}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "collections"), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
               ANSIBLE_LOCAL_TEMP=str(cwd / "tmp"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([str(BIN / "ansible-playbook"), "m365ops.activation." + playbook, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
