# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The endpoint seeds hosts from the shim's scenarios (`--scenario`) and its processes see
that state: here the shim's dsregcmd stand-in answers from the PC-HEALTHY scenario."""

from __future__ import annotations

import pytest
import winrm

from ..process import LabProcess


def test_a_scenario_seeded_host_answers_dsregcmd_over_winrm(tmp_path):
    lp = LabProcess(tmp_path / "lab", hosts=2, extra_args=["--scenario", "PC-HEALTHY"])
    try:
        assert [lp.host(h)["scenario"] for h in ("lab01", "lab02")] == ["PC-HEALTHY", "PC-HEALTHY"]
        s = winrm.Session(lp.https_url("lab02"), auth=(lp.user, lp.password), transport="basic", ca_trust_path=lp.ca)
        r = s.run_cmd("dsregcmd.exe", ["/status"])
        assert r.status_code == 0, r.std_err
        text = r.std_out.decode()
        assert "| Device State" in text
        assert "AzureAdJoined : YES" in text and "DomainJoined : YES" in text
    finally:
        assert lp.stop() == 0


def test_an_unknown_scenario_stops_the_lab_with_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError) as err:
        LabProcess(tmp_path / "lab", hosts=1, extra_args=["--scenario", "NO-SUCH-SCENARIO"])
    assert "scenarios:" in str(err.value) and "NO-SUCH-SCENARIO" in str(err.value)
