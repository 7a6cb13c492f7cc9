# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within this collection and may not remain
# stable to outside uses. Changes may be made in ANY release, even a bugfix release.

# A small `dsregcmd /status` reader on the host (win_dsreg_join, win_work_accounts,
# win_activation_facts): run dsregcmd by absolute path, read its boxes, name the join
# type in the one vocabulary of plugins/plugin_utils/dsreg.py join_type_of.

Set-StrictMode -Version 2.0

Function Get-M365DsregcmdPath {
    <#
    .SYNOPSIS
    %SystemRoot%\System32\dsregcmd.exe: by absolute path, never through PATH, which a
    user-writable folder on it could answer with its own dsregcmd.exe.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param ()
    Join-Path -Path (Join-Path -Path $env:SystemRoot -ChildPath 'System32') -ChildPath 'dsregcmd.exe'
}

Function Invoke-M365Dsregcmd {
    [CmdletBinding()]
    param ([Parameter(Mandatory)][string[]]$ArgumentList)
    $exe = Get-M365DsregcmdPath
    $out = & $exe @ArgumentList 2>&1 | Out-String
    [pscustomobject]@{ Output = $out; ExitCode = $LASTEXITCODE }
}

Function ConvertFrom-M365DsregStatus {
    <#
    .SYNOPSIS
    Reads `dsregcmd /status` text into @{ <section> = @{ <key> = <value> } }.
    .DESCRIPTION
    Sections are the boxed headers ("| Device State |"); keys are the text before the
    first ' : '. A line without that separator continues the previous value (dsregcmd
    wraps long values). Only what the join guard rails need is read here; the full parser
    for diagnosis is plugins/plugin_utils/dsreg.py.
    #>
    [CmdletBinding()]
    param ([AllowEmptyString()][AllowNull()][string]$Text)
    $sections = [ordered]@{}
    if (-not $Text) { return $sections }
    $current = $null
    $lastKey = $null
    foreach ($line in ($Text -split "`r?`n")) {
        if ($line -match '^\s*\+-+\+\s*$') { continue }
        if ($line -match '^\s*\|\s*(.+?)\s*\|\s*$') {
            $name = $Matches[1]
            if (-not $sections.Contains($name)) { $sections[$name] = [ordered]@{} }
            $current = $sections[$name]
            $lastKey = $null
            continue
        }
        if ($null -eq $current -or [string]::IsNullOrWhiteSpace($line)) { continue }
        # The key is the text before the first colon that is followed by a space or the end
        # of the line, so "Client Time : 2019-01-31 09:25:31.000 UTC" keeps its time and a
        # wrapped "https://..." continuation is not mistaken for a key.
        $m = [regex]::Match($line, '^\s*([A-Za-z][A-Za-z0-9 \-\(\)/\.]*?)\s*:(?:\s+|$)(.*)$')
        if ($m.Success) {
            $lastKey = $m.Groups[1].Value.Trim()
            $current[$lastKey] = $m.Groups[2].Value.Trim()
        }
        elseif ($null -ne $lastKey) {
            $current[$lastKey] = $current[$lastKey] + $line.Trim()
        }
    }
    $sections
}

Function Get-M365DsregValue {
    # The first value of Key in any section (keys are unique across dsregcmd's sections
    # for the fields the guard rails read).
    [CmdletBinding()]
    param ([Parameter(Mandatory)][System.Collections.IDictionary]$Status, [Parameter(Mandatory)][string]$Key)
    foreach ($section in $Status.Values) {
        if ($section.Contains($Key)) { return $section[$Key] }
    }
    $null
}

Function Get-M365JoinType {
    <#
    .SYNOPSIS
    The join type of parsed dsregcmd status, in the vocabulary of
    plugins/plugin_utils/dsreg.py join_type_of (docs/triage.md): hybrid_joined,
    entra_joined, domain_joined, entra_registered (the user's Workplace Join) or
    workgroup; $null when the output shows neither AzureAdJoined nor DomainJoined, so a
    caller can refuse to decide on output it could not read.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param ([Parameter(Mandatory)][System.Collections.IDictionary]$Status)
    $aad = Get-M365DsregValue -Status $Status -Key 'AzureAdJoined'
    $domain = Get-M365DsregValue -Status $Status -Key 'DomainJoined'
    if ($null -eq $aad -or $null -eq $domain) { return $null }
    if ($aad -eq 'YES' -and $domain -eq 'YES') { return 'hybrid_joined' }
    if ($aad -eq 'YES') { return 'entra_joined' }
    if ($domain -eq 'YES') { return 'domain_joined' }
    if ((Get-M365DsregValue -Status $Status -Key 'WorkplaceJoined') -eq 'YES') { return 'entra_registered' }
    'workgroup'
}

Export-ModuleMember -Function @(
    'Get-M365DsregcmdPath',
    'Invoke-M365Dsregcmd',
    'ConvertFrom-M365DsregStatus',
    'Get-M365DsregValue',
    'Get-M365JoinType'
)
