# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within this collection and may not remain
# stable to outside uses. Changes may be made in ANY release, even a bugfix release.

# Credential target patterns (win_credential_purge, win_activation_facts): the
# literal-prefix safety rule and the conversion to the anchored regexes the user-session
# matcher (Test-M365TargetMatch, _UserSession.psm1) applies, so what diagnose lists is
# what a purge removes.

Set-StrictMode -Version 2.0

$script:MinPatternPrefix = 3

Function Test-M365BroadPattern {
    <#
    .SYNOPSIS
    True when a wildcard pattern could match far more than one product's credentials: it
    has no literal prefix of at least three characters before its first wildcard.
    .DESCRIPTION
    Counting the literal characters anywhere is not enough: '*.*', '*:*' and '*e*' have
    some, yet match nearly every saved credential. A prefix ties the pattern to a family
    of target names ('MicrosoftOffice1*').
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param ([AllowEmptyString()][AllowNull()][string]$Pattern)
    if ($null -eq $Pattern) { return $true }
    $prefix = ($Pattern -split '[\*\?]', 2)[0]
    return $prefix.Trim().Length -lt $script:MinPatternPrefix
}

Function ConvertTo-M365TargetRegex {
    <#
    .SYNOPSIS
    Converts a credential target wildcard (* and ? only) into an anchored regex.
    .DESCRIPTION
    Only * and ? are wildcards: '[' is literal because Office target names can contain
    brackets and -like would treat them as character classes.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param ([Parameter(Mandatory)][string]$Pattern)
    $escaped = [regex]::Escape($Pattern)
    '^' + $escaped.Replace('\*', '.*').Replace('\?', '.') + '$'
}

Function Assert-M365CredentialPattern {
    <#
    .SYNOPSIS
    Validates credential target patterns and returns their regexes; throws naming the option.
    #>
    [CmdletBinding()]
    [OutputType([string[]])]
    param (
        [AllowNull()][AllowEmptyCollection()][string[]]$Pattern,
        [bool]$AllowBroad = $false,
        [string]$ParameterName = 'patterns'
    )
    if ($null -eq $Pattern -or $Pattern.Count -eq 0) {
        throw [System.ArgumentException]::new("${ParameterName}: at least one pattern is required")
    }
    $regexes = foreach ($p in $Pattern) {
        if ($null -ne $p -and $p -match '[\x00-\x1f]') {
            throw [System.ArgumentException]::new("${ParameterName}: pattern '$($p -replace '[\x00-\x1f]', '?')' contains control characters")
        }
        if ($null -ne $p -and $p.Length -gt 512) {
            throw [System.ArgumentException]::new("${ParameterName}: pattern is longer than 512 characters")
        }
        if ((Test-M365BroadPattern -Pattern $p) -and -not $AllowBroad) {
            throw [System.ArgumentException]::new(
                "${ParameterName}: pattern '$p' has no literal prefix of at least $($script:MinPatternPrefix) characters before its first wildcard, so it could match nearly every credential (e.g. use 'MicrosoftOffice1*'); refused unless allow_broad_patterns is true")
        }
        if ([string]::IsNullOrWhiteSpace($p)) { '^.*$' } else { ConvertTo-M365TargetRegex -Pattern $p }
    }
    , @($regexes)
}

Export-ModuleMember -Function @(
    'Test-M365BroadPattern',
    'ConvertTo-M365TargetRegex',
    'Assert-M365CredentialPattern'
)
