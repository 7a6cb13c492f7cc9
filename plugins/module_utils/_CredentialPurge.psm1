# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within this collection and may not remain
# stable to outside uses. Changes may be made in ANY release, even a bugfix release.

# Rung 1 (purge_office_credentials): delete the Office generic credentials from each
# selected user's Credential Manager vault. The vault belongs to the user's logon session,
# which a WinRM network logon cannot reach, so the enumeration and deletion run in a
# temporary task inside that session.

#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._ScheduledTaskRunner
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._UserRung
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._CredentialPattern
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._UserSession

Set-StrictMode -Version 2.0

Function Get-M365CredentialPurgeOption {
    # The rung's own options; its module and win_activation_repair validate them.
    @{
        patterns = @{ type = 'list'; elements = 'str'; default = @('MicrosoftOffice1*') }
        allow_broad_patterns = @{ type = 'bool'; default = $false }
    }
}

Function Invoke-M365CredentialPurge {
    <#
    .SYNOPSIS
    Rung 1 (purge_office_credentials) for the users of -Module (an AnsibleModule or a rung
    context, _RungContext.psm1); ends with its ExitJson or FailJson.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][object]$Module)

    # Runs in the user's session under Windows PowerShell 5.1 (the task runner's host), with
    # the vault helpers of _UserSession.psm1 dot-sourced from Session. Returns target names
    # only: the credential blob is never read.
    $credentialScript = {
        param([string[]]$Regexes, [bool]$Delete, [string]$Session)
        $ErrorActionPreference = 'Stop'
        if ($Session) { . ([scriptblock]::Create($Session)) }
        $matched = @(Select-M365CredentialTarget -Regex $Regexes)
        $removed = @()
        $errors = @()
        if ($Delete) {
            foreach ($t in $matched) {
                try { Remove-M365CredentialTarget -Target $t; $removed += $t }
                catch { $errors += ('{0}: {1}' -f $t, $_.Exception.Message) }
            }
        }
        @{ matched = $matched; removed = $removed; errors = $errors }
    }

    # --- validation: everything is checked before any user is touched ---------------------
    try {
        $regexes = Assert-M365CredentialPattern -Pattern $module.Params.patterns -AllowBroad $module.Params.allow_broad_patterns -ParameterName 'patterns'
    }
    catch [System.ArgumentException] {
        $module.FailJson($_.Exception.Message)
    }

    # --- per user ----------------------------------------------------------------------------
    $results = Invoke-M365UserRung -Module $module -ScriptBlock $credentialScript -DiffKey 'credential_targets' `
        -Parameters @{ Regexes = $regexes; Delete = (-not $module.CheckMode); Session = Get-M365UserSessionScript } -Fields @{ removed = @() } -Complete {
        param($entry, $output)
        $matched = @(Get-M365OutputProperty $output 'matched' @())
        $removed = @(if ($module.CheckMode) { $matched } else { Get-M365OutputProperty $output 'removed' @() })
        $errors = @(Get-M365OutputProperty $output 'errors' @())
        $entry.removed = @($removed)
        if ($errors.Count -gt 0) {
            $entry.status = 'failed'
            $entry.message = "could not delete: $($errors -join '; ')"
        }
        else {
            $entry.status = if ($removed.Count -gt 0) { 'changed' } else { 'unchanged' }
        }
        # A user whose vault refused some deletions still lost the others.
        @{ before = @($matched); after = @($matched | Where-Object { $_ -notin $removed }); changed = $removed.Count -gt 0 }
    }
    $module.Result.removed_count = [int](($results | ForEach-Object { $_.removed.Count } | Measure-Object -Sum).Sum)
    Exit-M365UserRung -Module $module -Result $results -Action 'credential purge' -Rung 'purge_office_credentials'
}

Export-ModuleMember -Function Get-M365CredentialPurgeOption, Invoke-M365CredentialPurge
