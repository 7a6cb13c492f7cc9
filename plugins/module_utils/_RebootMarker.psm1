# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within this collection and may not remain
# stable to outside uses. Changes may be made in ANY release, even a bugfix release.

# The collection's own pending-reboot marker (docs/development.md): one REG_SZ value per
# requesting module under HKLM, data "<UTC ISO time> <reason>". A rung writes it before
# returning reboot_required, so a run that dies before the reboot step still leaves the
# request behind for the next run. Callers skip Set-M365RebootMarker in check mode.

Set-StrictMode -Version 2.0

$script:RebootMarkerKey = 'HKLM:\SOFTWARE\m365ops\activation\RebootRequired'
# The last time each rung changed this host, one REG_SZ value per rung name, data
# "<UTC ISO time> <summary>" like the marker. Unlike the marker it outlives the reboot:
# triage reads it to stop counting AAD errors the repair has already dealt with.
$script:RepairRecordKey = 'HKLM:\SOFTWARE\m365ops\activation\Repairs'

# Registry access is isolated here so Pester (pwsh on Linux has no registry provider)
# mocks these four and the value handling above them stays real.
Function Get-M365RebootMarkerValue {
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$Path)
    $values = @{}
    if (-not (Test-Path -LiteralPath $Path)) { return $values }
    $key = Get-Item -LiteralPath $Path -ErrorAction Stop
    foreach ($name in $key.GetValueNames()) {
        if ($name -eq '') { continue }  # the key's (Default) value is not a marker
        $values[$name] = [string]$key.GetValue($name)
    }
    $values
}

Function Set-M365RebootMarkerValue {
    [CmdletBinding(SupportsShouldProcess = $false)]
    param([Parameter(Mandatory)][string]$Path, [Parameter(Mandatory)][string]$Name, [Parameter(Mandatory)][string]$Value)
    if (-not (Test-Path -LiteralPath $Path)) {
        $null = New-Item -Path $Path -Force -ErrorAction Stop
    }
    $null = New-ItemProperty -LiteralPath $Path -Name $Name -Value $Value -PropertyType String -Force -ErrorAction Stop
}

Function Remove-M365RebootMarkerValue {
    [CmdletBinding(SupportsShouldProcess = $false)]
    param([Parameter(Mandatory)][string]$Path, [Parameter(Mandatory)][string]$Name)
    if (Test-Path -LiteralPath $Path) {
        Remove-ItemProperty -LiteralPath $Path -Name $Name -ErrorAction SilentlyContinue
    }
}

Function Remove-M365RebootMarkerKey {
    [CmdletBinding(SupportsShouldProcess = $false)]
    param([Parameter(Mandatory)][string]$Path)
    if (Test-Path -LiteralPath $Path) {
        Remove-Item -LiteralPath $Path -Recurse -Force -ErrorAction Stop
    }
}

Function Assert-M365MarkerSource {
    param([AllowNull()][AllowEmptyString()][string]$Source)
    # The value name is the module name; anything else (a path, a wildcard, an empty
    # name that would hit the key's default value) is a caller bug.
    if ([string]::IsNullOrWhiteSpace($Source) -or $Source -notmatch '^[A-Za-z0-9_.-]{1,128}$') {
        throw [System.ArgumentException]::new("Source '$Source' is not a module name (letters, digits, _ . - only).")
    }
}

Function Set-M365StampedValue {
    # Marker and repair record share one value format, "<UTC ISO time> <one line of text>":
    # readers split time from text at the first space.
    param([string]$Path, [string]$Name, [string]$Text, [string]$EmptyMessage)
    Assert-M365MarkerSource -Source $Name
    $oneLine = ($Text -replace '[\r\n]+', ' ').Trim()
    if ($oneLine -eq '') { throw [System.ArgumentException]::new($EmptyMessage) }
    $stamp = [DateTime]::UtcNow.ToString('yyyy-MM-ddTHH:mm:ssZ', [System.Globalization.CultureInfo]::InvariantCulture)
    Set-M365RebootMarkerValue -Path $Path -Name $Name -Value "$stamp $oneLine"
}

Function Set-M365RebootMarker {
    <#
    .SYNOPSIS
    Record that <Source> needs a reboot. Overwrites an older request from the same source.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][AllowEmptyString()][string]$Source,
        [Parameter(Mandatory)][AllowEmptyString()][string]$Reason
    )
    Set-M365StampedValue -Path $script:RebootMarkerKey -Name $Source -Text $Reason `
        -EmptyMessage "Reason is empty: say why $Source needs a reboot."
}

Function Get-M365RebootMarker {
    <#
    .SYNOPSIS
    Hashtable Source -> "<UTC ISO time> <reason>"; empty when nothing is pending.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param()
    $values = Get-M365RebootMarkerValue -Path $script:RebootMarkerKey
    if ($null -eq $values) { $values = @{} }
    $values
}

Function Clear-M365RebootMarker {
    <#
    .SYNOPSIS
    Remove the marker of one source, or every marker (and the key) when -Source is omitted.
    #>
    [CmdletBinding()]
    param([string]$Source)
    if ($PSBoundParameters.ContainsKey('Source')) {
        Assert-M365MarkerSource -Source $Source
        Remove-M365RebootMarkerValue -Path $script:RebootMarkerKey -Name $Source
    }
    else {
        Remove-M365RebootMarkerKey -Path $script:RebootMarkerKey
    }
}

Function Set-M365RepairRecord {
    <#
    .SYNOPSIS
    Record that the rung <Rung> changed this host now. Callers skip it in check mode and
    when nothing changed: a record means "state before this time was replaced".
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][AllowEmptyString()][string]$Rung,
        [Parameter(Mandatory)][AllowEmptyString()][string]$Summary
    )
    # Rung names are the ladder's (purge_office_credentials ...): the same rule as a
    # marker source keeps paths and wildcards out of the value name.
    Set-M365StampedValue -Path $script:RepairRecordKey -Name $Rung -Text $Summary `
        -EmptyMessage "Summary is empty: say what $Rung changed."
}

Function Clear-M365RepairRecord {
    <#
    .SYNOPSIS
    Forget the repair of one rung: its undo (a quarantine restored) brought the old state back.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory)][AllowEmptyString()][string]$Rung)
    Assert-M365MarkerSource -Source $Rung
    Remove-M365RebootMarkerValue -Path $script:RepairRecordKey -Name $Rung
}

Function Get-M365RepairRecord {
    <#
    .SYNOPSIS
    Hashtable rung -> @{ at = '<UTC ISO time>' or $null; summary }; empty when no rung ever
    changed this host.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param()
    $records = @{}
    $values = Get-M365RebootMarkerValue -Path $script:RepairRecordKey
    if ($null -eq $values) { return $records }
    foreach ($rung in @($values.Keys)) {
        $text = [string]$values[$rung]
        $at, $summary = $text -split ' ', 2
        # A value someone edited by hand keeps its text but gets no time: triage then
        # ignores it instead of trusting a date it cannot read.
        if ($at -notmatch '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$') { $at, $summary = $null, $text }
        $records[$rung] = [ordered]@{ at = $at; summary = $summary }
    }
    $records
}

Function Get-M365LastBootUpTime {
    <#
    .SYNOPSIS
    When Windows last booted (CIM gives local time). One call so Pester mocks it.
    #>
    [CmdletBinding()]
    [OutputType([DateTime])]
    param()
    (Get-CimInstance -ClassName Win32_OperatingSystem -Property LastBootUpTime -ErrorAction Stop).LastBootUpTime
}

Function Get-M365MarkerTime {
    <#
    .SYNOPSIS
    The UTC time a marker value was written ("<yyyy-MM-ddTHH:mm:ssZ> <reason>"), or $null.
    #>
    [CmdletBinding()]
    param([AllowNull()][AllowEmptyString()][string]$Value)
    if ($Value -notmatch '^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)\s') { return $null }
    $styles = [System.Globalization.DateTimeStyles]::AdjustToUniversal -bor [System.Globalization.DateTimeStyles]::AssumeUniversal
    $parsed = [DateTime]::MinValue
    if ([DateTime]::TryParseExact($Matches[1], "yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture, $styles, [ref]$parsed)) {
        return $parsed
    }
    $null
}

Function Get-M365SatisfiedMarkerSource {
    <#
    .SYNOPSIS
    The marker sources the host has restarted for since they asked: written before the
    boot time given. A value without a readable time is never satisfied.
    #>
    [CmdletBinding()]
    [OutputType([string[]])]
    param(
        [Parameter(Mandatory)][AllowEmptyCollection()][System.Collections.IDictionary]$Marker,
        [Parameter(Mandatory)][DateTime]$BootTime
    )
    $bootUtc = $BootTime.ToUniversalTime()
    $Marker.Keys | Sort-Object | Where-Object {
        $written = Get-M365MarkerTime -Value $Marker[$_]
        $null -ne $written -and $written -lt $bootUtc
    }
}

Function Clear-M365SatisfiedRebootMarker {
    <#
    .SYNOPSIS
    Clears the marker sources the boot at BootTime satisfied; returns their names. What a
    rung wrote after that boot stays for the next restart.
    #>
    [CmdletBinding()]
    [OutputType([string[]])]
    param([Parameter(Mandatory)][DateTime]$BootTime)
    $satisfied = @(Get-M365SatisfiedMarkerSource -Marker (Get-M365RebootMarker) -BootTime $BootTime)
    foreach ($source in $satisfied) { Clear-M365RebootMarker -Source $source }
    $satisfied
}

# Windows' own pending-restart signals, read through two small registry functions so
# Pester mocks them. The reason strings are stable English: reports and tests match them.
Function Test-M365RebootRegistryKey {
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$Path)
    Test-Path -LiteralPath $Path
}

Function Get-M365RebootRegistryValue {
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$Path, [Parameter(Mandatory)][string]$Name)
    $item = Get-ItemProperty -LiteralPath $Path -Name $Name -ErrorAction SilentlyContinue
    if ($null -eq $item) { return $null }
    $item.$Name
}

Function Get-M365WindowsPendingReboot {
    <#
    .SYNOPSIS
    The reasons Windows itself gives for a pending restart (servicing, Windows Update,
    pending file renames); empty when none.
    #>
    [CmdletBinding()]
    [OutputType([string[]])]
    param()
    $reasons = [System.Collections.Generic.List[string]]::new()
    if (Test-M365RebootRegistryKey -Path 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending') {
        $reasons.Add('Component Based Servicing: RebootPending')
    }
    if (Test-M365RebootRegistryKey -Path 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired') {
        $reasons.Add('Windows Update: RebootRequired')
    }
    $renames = @(Get-M365RebootRegistryValue -Path 'HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager' -Name 'PendingFileRenameOperations' |
        Where-Object { -not [string]::IsNullOrWhiteSpace($_) })
    if ($renames.Count -gt 0) {
        # REG_MULTI_SZ pairs: source, then destination (empty destination = delete).
        $reasons.Add("Session Manager: PendingFileRenameOperations ($($renames.Count) entries)")
    }
    $reasons.ToArray()
}

Export-ModuleMember -Function Set-M365RebootMarker, Get-M365RebootMarker, Clear-M365RebootMarker, `
    Set-M365RepairRecord, Get-M365RepairRecord, Clear-M365RepairRecord, `
    Get-M365RebootMarkerValue, Set-M365RebootMarkerValue, Remove-M365RebootMarkerValue, Remove-M365RebootMarkerKey, `
    Get-M365WindowsPendingReboot, Test-M365RebootRegistryKey, Get-M365RebootRegistryValue, `
    Get-M365LastBootUpTime, Get-M365MarkerTime, Get-M365SatisfiedMarkerSource, Clear-M365SatisfiedRebootMarker
