# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# Nested in the lab pwsh's Microsoft.PowerShell.Management (tests/lab/shim lab_pwsh), the
# module Windows' Registry provider lives in: any runspace that loads Test-Path, Get-Item,
# New-ItemProperty ... gets the lab registry with it, before the first registry path is
# touched. Only .NET and Core cmdlets here: Management itself is still loading.
$state = [Environment]::GetEnvironmentVariable('M365OPS_LAB_STATE')
if ($state) {
    $have = $false
    try { $have = [bool]$ExecutionContext.SessionState.Provider.GetOne('Registry') } catch { $have = $false }
    $cache = [IO.Path]::Combine($state, 'shim', 'cache')
    if (-not $have -and [IO.Directory]::Exists($cache)) {
        $dll = [IO.Directory]::GetFiles($cache, 'M365Lab.Registry.*.dll') |
            Sort-Object -Property { [IO.File]::GetLastWriteTimeUtc($_) } -Descending | Select-Object -First 1
        if ($dll) { Import-Module -Name $dll -Global }
    }
}
    # Windows programs called by absolute path (ansible.windows.win_reboot runs
    # C:\Windows\System32\shutdown.exe): pwsh on Linux cannot resolve a C: path, so the
    # host's stand-in answers under that name.
if ($state) {
    $shutdown = [IO.Path]::Combine($state, 'bin', 'shutdown.exe')
    if ([IO.File]::Exists($shutdown)) {
        Microsoft.PowerShell.Utility\Set-Alias -Name 'C:\Windows\System32\shutdown.exe' -Value $shutdown -Scope Global
    }
}
