#!powershell

# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils.RebootMarker

# Host side of the reboot step (action m365ops.activation.win_reboot_if_needed): one
# round trip reads the boot time, the collection's marker and, if asked, Windows' own
# pending-reboot signals; after the restart one more round trip reads the new boot time
# and clears the marker sources that asked for it.

Set-StrictMode -Version 2.0

$script:SourcePattern = '^[A-Za-z0-9_.-]{1,128}$'

# Windows-only reads live in these small functions so Pester mocks them and the logic
# below runs under pwsh on Linux.
Function Get-RebootStateBootTime {
    $os = Get-CimInstance -ClassName Win32_OperatingSystem -Property LastBootUpTime -ErrorAction Stop
    $os.LastBootUpTime
}

Function Test-RebootStateRegistryKey {
    param([string]$Path)
    Test-Path -LiteralPath $Path
}

Function Get-RebootStateRegistryValue {
    param([string]$Path, [string]$Name)
    $item = Get-ItemProperty -LiteralPath $Path -Name $Name -ErrorAction SilentlyContinue
    if ($null -eq $item) { return $null }
    $item.$Name
}

Function ConvertTo-RebootStateTime {
    param([DateTime]$Time)
    # CIM gives local time; UTC text compares equal across calls whatever the time zone.
    $Time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
}

Function Get-WindowsPendingReboot {
    <#
    .SYNOPSIS
    The reasons Windows itself gives for a pending restart (servicing, updates, file renames).
    #>
    $reasons = [System.Collections.Generic.List[string]]::new()
    if (Test-RebootStateRegistryKey -Path 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending') {
        $reasons.Add('Component Based Servicing: RebootPending')
    }
    if (Test-RebootStateRegistryKey -Path 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired') {
        $reasons.Add('Windows Update: RebootRequired')
    }
    $renames = @(Get-RebootStateRegistryValue -Path 'HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager' -Name 'PendingFileRenameOperations' |
        Where-Object { -not [string]::IsNullOrWhiteSpace($_) })
    if ($renames.Count -gt 0) {
        # REG_MULTI_SZ pairs: source, then destination (empty destination = delete).
        $reasons.Add("Session Manager: PendingFileRenameOperations ($($renames.Count) entries)")
    }
    $reasons.ToArray()
}

Function Get-RebootState {
    <#
    .SYNOPSIS
    Read (and optionally clear) the pending-reboot state; returns the module result as a hashtable.
    #>
    param(
        [bool]$IncludeWindowsPending,
        [string[]]$ClearSources = @(),
        [AllowNull()][string]$BootTimeBefore,
        [bool]$CheckMode
    )
    foreach ($source in $ClearSources) {
        if ($source -notmatch $script:SourcePattern) {
            throw [System.ArgumentException]::new("clear_sources: '$source' is not a marker source name (letters, digits, _ . - only)")
        }
    }
    if ($ClearSources.Count -gt 0 -and [string]::IsNullOrWhiteSpace($BootTimeBefore)) {
        throw [System.ArgumentException]::new('boot_time_before is required with clear_sources: the marker is only cleared once the boot time has moved')
    }

    $bootTime = ConvertTo-RebootStateTime -Time (Get-RebootStateBootTime)
    $markerBefore = @{} + (Get-M365RebootMarker)
    $result = @{
        changed = $false
        boot_time = $bootTime
        boot_time_changed = $null
        cleared = @()
        kept = @()
        marker = $markerBefore
        windows_pending = $false
        windows_reasons = @()
        diff = @{ before = @{ marker = $markerBefore }; after = @{ marker = $markerBefore } }
    }
    if ($IncludeWindowsPending) {
        $result.windows_reasons = @(Get-WindowsPendingReboot)
        $result.windows_pending = $result.windows_reasons.Count -gt 0
    }

    if ($ClearSources.Count -gt 0) {
        $result.boot_time_changed = $bootTime -ne $BootTimeBefore
        $present = @($ClearSources | Where-Object { $markerBefore.ContainsKey($_) } | Sort-Object -Unique)
        if (-not $result.boot_time_changed) {
            # The restart did not happen (or has not yet): keep every request so the next
            # run restarts the host instead of forgetting why it had to.
            $result.kept = $present
        }
        elseif ($present.Count -gt 0) {
            $markerAfter = @{} + $markerBefore
            foreach ($source in $present) {
                if (-not $CheckMode) {
                    Clear-M365RebootMarker -Source $source
                }
                $markerAfter.Remove($source)
            }
            $result.cleared = $present
            $result.changed = $true
            $result.marker = $markerAfter
            $result.diff.after = @{ marker = $markerAfter }
        }
    }
    $result.reboot_required = ($result.marker.Count -gt 0) -or $result.windows_pending
    $result
}

$spec = @{
    options = @{
        include_windows_pending = @{ type = 'bool'; default = $false }
        clear_sources = @{ type = 'list'; elements = 'str'; default = @() }
        boot_time_before = @{ type = 'str' }
    }
    supports_check_mode = $true
}
$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

try {
    $state = Get-RebootState -IncludeWindowsPending $module.Params.include_windows_pending `
        -ClearSources @($module.Params.clear_sources) -BootTimeBefore $module.Params.boot_time_before `
        -CheckMode $module.CheckMode
}
catch [System.ArgumentException] {
    $module.FailJson($_.Exception.Message)
}
catch {
    $module.FailJson("reading the reboot state failed: $($_.Exception.Message)", $_)
}

foreach ($key in $state.Keys) {
    if ($key -eq 'diff') { continue }
    $module.Result.$key = $state.$key
}
$module.Diff.before = $state.diff.before
$module.Diff.after = $state.diff.after
$module.ExitJson()
