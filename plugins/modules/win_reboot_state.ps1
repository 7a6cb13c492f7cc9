#!powershell

# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._RebootMarker

# Host side of the reboot step (action m365ops.activation.win_reboot_if_needed): one
# round trip reads the boot time, the collection's marker and, if asked, Windows' own
# pending-reboot signals; after the restart one more round trip reads the new boot time
# and clears the marker sources that asked for it.

Set-StrictMode -Version 2.0

$script:SourcePattern = '^[A-Za-z0-9_.-]{1,128}$'

# The boot time is read in a small function so Pester mocks it and the logic below runs
# under pwsh on Linux; the marker's times and Windows' own signals come from _RebootMarker.psm1.
Function Get-M365BootTime { Get-M365LastBootUpTime }

Function ConvertTo-M365BootTimeText {
    param([DateTime]$Time)
    # CIM gives local time; UTC text compares equal across calls whatever the time zone.
    $Time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
}

Function Get-M365RebootState {
    <#
    .SYNOPSIS
    Read (and optionally clear) the pending-reboot state; returns the module result as a hashtable.
    #>
    param(
        [bool]$IncludeWindowsPending,
        [string[]]$ClearSources = @(),
        [AllowNull()][string]$BootTimeBefore,
        [bool]$ClearSatisfied,
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

    $bootRaw = Get-M365BootTime
    $bootTime = ConvertTo-M365BootTimeText -Time $bootRaw
    $bootUtc = $bootRaw.ToUniversalTime()
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
        $result.windows_reasons = @(Get-M365WindowsPendingReboot)
        $result.windows_pending = $result.windows_reasons.Count -gt 0
    }

    # A source is satisfied when the host has restarted since it asked: either the boot
    # time moved away from the one read before this run's restart (clear_sources), or
    # the source's own timestamp is older than the current boot (clear_satisfied).
    # Anything else is kept, so the next run restarts the host instead of forgetting
    # why it had to.
    $toClear = [System.Collections.Generic.List[string]]::new()
    $kept = [System.Collections.Generic.List[string]]::new()
    if ($ClearSources.Count -gt 0) {
        $result.boot_time_changed = $bootTime -ne $BootTimeBefore
        foreach ($source in @($ClearSources | Where-Object { $markerBefore.ContainsKey($_) } | Sort-Object -Unique)) {
            if ($result.boot_time_changed) { $toClear.Add($source) } else { $kept.Add($source) }
        }
    }
    if ($ClearSatisfied) {
        foreach ($source in @($markerBefore.Keys | Sort-Object)) {
            if ($toClear.Contains($source)) { continue }
            $written = Get-M365MarkerTime -Value $markerBefore[$source]
            if ($null -ne $written -and $written -lt $bootUtc) {
                $null = $kept.Remove($source)
                $toClear.Add($source)
            }
            elseif (-not $kept.Contains($source)) {
                $kept.Add($source)
            }
        }
    }
    $result.kept = @($kept | Sort-Object)
    if ($toClear.Count -gt 0) {
        $markerAfter = @{} + $markerBefore
        foreach ($source in $toClear) {
            if (-not $CheckMode) {
                Clear-M365RebootMarker -Source $source
            }
            $markerAfter.Remove($source)
        }
        $result.cleared = @($toClear | Sort-Object)
        $result.changed = $true
        $result.marker = $markerAfter
        $result.diff.after = @{ marker = $markerAfter }
    }
    # Requests left that the host has already restarted for (written before the current
    # boot): a restart in between, by anyone, satisfied them.
    $result.satisfied = @(Get-M365SatisfiedMarkerSource -Marker $result.marker -BootTime $bootUtc)
    $unsatisfied = @($result.marker.Keys | Where-Object { $result.satisfied -notcontains $_ })
    $result.reboot_required = ($unsatisfied.Count -gt 0) -or $result.windows_pending
    $result
}

$spec = @{
    options = @{
        include_windows_pending = @{ type = 'bool'; default = $false }
        clear_sources = @{ type = 'list'; elements = 'str'; default = @() }
        boot_time_before = @{ type = 'str' }
        clear_satisfied = @{ type = 'bool'; default = $false }
    }
    supports_check_mode = $true
}
$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

try {
    $state = Get-M365RebootState -IncludeWindowsPending $module.Params.include_windows_pending `
        -ClearSources @($module.Params.clear_sources) -BootTimeBefore $module.Params.boot_time_before `
        -ClearSatisfied $module.Params.clear_satisfied -CheckMode $module.CheckMode
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
