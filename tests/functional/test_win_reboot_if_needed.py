# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reboot step through ansible-core: action plugin -> win_reboot_state under pwsh.

pwsh on Linux has no CIM, so a throwaway module on PSModulePath supplies
Get-CimInstance with a fixed boot time; the marker's registry key does not exist
there, which is the "no marker" case. The restart itself is covered by the unit tests
(tests/unit/plugins/action/test_win_reboot_if_needed.py).
"""

from __future__ import annotations

import pytest

FAKE_CIM = """
function Get-CimInstance {
    param([string]$ClassName, [string[]]$Property, $ErrorAction)
    [pscustomobject]@{ LastBootUpTime = [DateTime]::new(2026, 11, 26, 9, 15, 30, [DateTimeKind]::Utc) }
}
"""


@pytest.fixture
def fake_cim(tmp_path):
    module_dir = tmp_path / "psmodules" / "FakeCim"
    module_dir.mkdir(parents=True)
    (module_dir / "FakeCim.psm1").write_text(FAKE_CIM, encoding="utf-8")
    return {"PSModulePath": str(tmp_path / "psmodules")}


def test_check_mode_would_reboot_for_a_rung_request(run_module, fake_cim):
    result = run_module("win_reboot_if_needed", {"requested_by": ["win_token_broker_cache"]}, check=True,
                        env=fake_cim)
    assert run_module.last.status == "CHANGED", run_module.last.stdout
    assert result["rebooted"] is False
    assert result["msg"] == "would reboot: win_token_broker_cache: returned reboot_required"
    # read on the host through the real module: the boot time in UTC, no marker there
    assert result["boot_time_before"] == "2026-11-26T09:15:30.000000Z"
    assert result["marker"] == {} and result["cleared"] == []


def test_bad_source_name_is_refused_before_anything_is_read(run_module):
    result = run_module("win_reboot_state", {"clear_sources": ["..\\Run"], "boot_time_before": "x"})
    assert run_module.last.status == "FAILED!"
    assert result["msg"].startswith("clear_sources: '..\\Run' is not a marker source name")
