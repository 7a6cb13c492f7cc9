# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's replay mode (`serve --replay`, tests/lab/endpoint/replay.py), which the scale
benchmark measures the controller with: a replay host must give the controller what a real
host of the same scenario gives, over the same request path, and replay nothing else."""

from __future__ import annotations

import re

import pytest

from ..process import running_lab
from .test_ansible import ANSIBLE_BIN, host_results, run_json

FACTS = "m365ops.activation.win_activation_facts"
SCENARIO = "PC-HYB-PRT"  # a broken host: findings and a plan to compare, not just "healthy"
HOSTS = 3


@pytest.fixture(scope="module")
def replay_lab(tmp_path_factory):
    with running_lab(tmp_path_factory.mktemp("replay"), HOSTS,
                     ["--scenario", SCENARIO, "--replay", FACTS], startup_timeout=300) as lp:
        yield lp


def facts(lab, tmp_path, args: str) -> tuple[dict, dict]:
    """Run the facts module on every host at once (one fork each): per-host results and counters."""
    before = lab.counts(settle=0.3)
    rc, doc, err = run_json([ANSIBLE_BIN, "-i", lab.inventory("ntlm"), "all", "-f", str(HOSTS), "-m", FACTS,
                             "-a", args], tmp_path, lab)
    assert rc == 0, (doc, err, lab.log()[-3000:])
    after = lab.counts()
    grew = {h: {k: after[h][k] - before[h][k] for k in ("processes_started", "replayed", "bytes_in")}
            | {"requests": {op: n - before[h]["requests"].get(op, 0) for op, n in after[h]["requests"].items()}}
            for h in after}
    return {h: r[0] for h, r in host_results(doc).items()}, grew


def test_a_replay_host_answers_what_the_real_run_of_its_scenario_answered(replay_lab, tmp_path):
    results, grew = facts(replay_lab, tmp_path, "events_days=7")
    real = [h for h in grew if grew[h]["processes_started"] == 1]
    replayed = [h for h in grew if grew[h]["replayed"] == 1]
    assert len(real) == 1 and len(replayed) == HOSTS - 1, grew
    assert all(grew[h]["processes_started"] == 0 for h in replayed), grew
    recorder = results[real[0]]
    assert recorder["m365_activation"]["plan"], recorder["m365_activation"]  # PC-HYB-PRT needs repair
    for host in replayed:
        # The diagnosis (triage on the controller of what came back) and the raw facts are the
        # real run's; `hostname` too, which a replay keeps from its recording (docs/lab.md).
        assert results[host]["m365_activation"] == recorder["m365_activation"], host
        for key in ("dsregcmd_status", "aad_events", "host_facts", "collection_errors", "hostname"):
            assert results[host].get(key) == recorder.get(key), (host, key)
        # The request path stayed real: a shell, the command, its whole input, the output, Delete.
        for op in ("Create", "Command", "Send", "Receive", "Delete"):
            assert grew[host]["requests"].get(op, 0) >= 1, (host, op, grew[host])
    # The ~400 KB exec-wrapper payload was read in full by every host: the same input as the
    # recorded run's, to the byte (the lab logs what each Command read), and it came over the
    # wire. The wire bytes around it differ by timing alone: a longer real run under load
    # polls with more Receives.
    log = replay_lab.log()
    read = {m.group(1): int(m.group(2)) for m in re.finditer(
        r"(\S+): Command [^\s:]+(?:: \S+ runs for real and is recorded| replayed)[^\n]*?(\d+) bytes of input read\)", log)}
    assert set(read) == set(grew) and len(set(read.values())) == 1, (read, log[-3000:])
    assert all(grew[host]["bytes_in"] > read[host] for host in grew), (grew, read)
    assert log.count("replayed (recorded on %s" % real[0]) >= HOSTS - 1, log[-3000:]


def test_other_arguments_or_another_module_run_for_real(replay_lab, tmp_path):
    # Different arguments are a different run: recorded anew, not answered from the first.
    results, grew = facts(replay_lab, tmp_path, "events_days=3")
    assert sum(g["processes_started"] for g in grew.values()) == 1, grew
    assert sum(g["replayed"] for g in grew.values()) == HOSTS - 1, grew
    assert len({str(r["m365_activation"]) for r in results.values()}) == 1, results
    # A module that is not replayed runs on every host.
    before = replay_lab.counts(settle=0.3)
    rc, doc, err = run_json([ANSIBLE_BIN, "-i", replay_lab.inventory("ntlm"), "all", "-f", str(HOSTS),
                             "-m", "ansible.windows.win_ping"], tmp_path, replay_lab)
    assert rc == 0, (doc, err)
    after = replay_lab.counts()
    assert all(r[0]["ping"] == "pong" for r in host_results(doc).values())
    for host in after:
        assert after[host]["processes_started"] == before[host]["processes_started"] + 1, host
        assert after[host]["replayed"] == before[host]["replayed"], host
