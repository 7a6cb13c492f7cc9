# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within this collection and may not remain
# stable to outside uses. Changes may be made in ANY release, even a bugfix release.

# The user-context rung flow (win_credential_purge, win_work_accounts,
# win_aad_broker_plugin): the shared options, user selection, one task per user in that
# user's session, the per-user entries, the diff, the repair record and the failure
# (docs/development.md, "Rung module results").

#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._UserProfile
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._ScheduledTaskRunner
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._RebootMarker

Set-StrictMode -Version 2.0

Function Select-M365RungUser {
    <#
    .SYNOPSIS
    The users a user-context rung works on: the named ones, or by default everyone
    logged on now. With RequireLoggedOn, any selected user without a session (or nobody
    at all) is an error before anything runs. Throws [ArgumentException] naming the option.
    #>
    [CmdletBinding()]
    param (
        [AllowNull()][AllowEmptyCollection()][string[]]$Identity,
        [bool]$RequireLoggedOn = $false
    )
    $selected = Get-M365RungUser -Identity $Identity -ParameterName 'users'
    if ($null -eq $Identity -or $Identity.Count -eq 0) {
        # Nobody to ask when no one is signed in: the default is whoever is logged on.
        $selected = @($selected | Where-Object { $_.LoggedOn })
    }
    if ($RequireLoggedOn) {
        $absent = @($selected | Where-Object { -not $_.LoggedOn })
        if ($absent.Count -gt 0 -or $selected.Count -eq 0) {
            $names = ($absent | ForEach-Object { Get-M365UserLabel $_ }) -join ', '
            if (-not $names) { $names = 'nobody is logged on' }
            throw [System.ArgumentException]::new("require_logged_on: not logged on: $names; nothing was changed")
        }
    }
    , $selected
}

Function Assert-M365Timeout {
    [CmdletBinding()]
    param ([int]$Timeout, [string]$ParameterName = 'timeout')
    if ($Timeout -lt 1 -or $Timeout -gt 3600) {
        throw [System.ArgumentException]::new("${ParameterName}: must be between 1 and 3600 seconds, got $Timeout")
    }
}

Function ConvertTo-M365UserOutcome {
    <#
    .SYNOPSIS
    Turns an Invoke-M365TaskScript result into the per-user entry the rung modules return.
    .DESCRIPTION
    Status 'ok' becomes $null here (the caller fills in the module-specific outcome);
    'not_logged_on' stays (the user is skipped; the remediate role reads this status to
    classify the host as needing the user); everything else becomes 'failed' with the runner's
    message, so a user the task could not reach is never reported as repaired.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)][object]$UserProfile,
        [Parameter(Mandatory)][object]$TaskResult
    )

    $entry = [ordered]@{
        user = $UserProfile.UserName
        sid = $UserProfile.Sid
        status = $null
        message = ''
    }
    switch ($TaskResult.Status) {
        'ok' { }
        'not_logged_on' {
            $entry.status = 'not_logged_on'
            $entry.message = 'skipped: the user is not logged on; per-user work needs an interactive session'
        }
        default {
            $entry.status = 'failed'
            $entry.message = "user-context task $($TaskResult.Status): $($TaskResult.Message)"
        }
    }
    $entry
}

Function Get-M365UserRungOption {
    <#
    .SYNOPSIS
    The options every user-context rung shares (users, require_logged_on, timeout;
    documented once in the m365ops.activation.rung_users doc fragment).
    #>
    [CmdletBinding()]
    param ()
    @{
        users = @{ type = 'list'; elements = 'str' }
        require_logged_on = @{ type = 'bool'; default = $false }
        timeout = @{ type = 'int'; default = 120 }
    }
}

Function New-M365UserRungModule {
    <#
    .SYNOPSIS
    Creates the AnsibleModule of a user-context rung: its own spec plus the options every
    such rung shares (users, require_logged_on, timeout; documented once in the
    m365ops.activation.rung_users doc fragment), merged by Ansible.Basic as a spec
    fragment - the module's own entries win, so a rung may change a default.
    .DESCRIPTION
    The result starts with the common keys, so even a validation failure returns them.
    #>
    [CmdletBinding()]
    param (
        [AllowEmptyCollection()][object[]]$Arguments = @(),
        [Parameter(Mandatory)][System.Collections.IDictionary]$Spec
    )
    $fragment = @{ options = Get-M365UserRungOption }
    $module = [Ansible.Basic.AnsibleModule]::Create([string[]]$Arguments, $Spec, @($fragment))
    $module.Result.changed = $false
    $module.Result.reboot_required = $false
    $module.Result.users = @()
    $module
}

Function Invoke-M365UserRung {
    <#
    .SYNOPSIS
    The per-user part every user-context rung shares: select the users, run the rung's
    script block in each user's session, collect one entry per user.
    .DESCRIPTION
    The timeout and user selection are checked first (users, require_logged_on and timeout
    options of the module): a bad value fails the module before any task runs.
    Each task result becomes an entry through ConvertTo-M365UserOutcome, with Fields added
    so skipped users carry the same keys. For a task that ran, Complete is called with the
    entry and the task output; it sets the entry's status and returns $null or
    @{ before; after; changed }: before/after go into the diff under DiffKey, per user, and
    changed (default: status 'changed') says whether the user's state changed - a user
    can fail after part of the work was done.
    Sets Result.users, Result.changed and the diff, and returns the entries; finish with
    Exit-M365UserRung.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)][object]$Module,
        [Parameter(Mandatory)][scriptblock]$ScriptBlock,
        [hashtable]$Parameters = @{},
        [System.Collections.IDictionary]$Fields = @{},
        [Parameter(Mandatory)][scriptblock]$Complete,
        [Parameter(Mandatory)][string]$DiffKey
    )
    $timeout = $Module.Params.timeout
    try {
        Assert-M365Timeout -Timeout $timeout
        $selected = Select-M365RungUser -Identity $Module.Params.users -RequireLoggedOn $Module.Params.require_logged_on
    }
    catch [System.ArgumentException] {
        $Module.FailJson($_.Exception.Message)
    }
    Invoke-M365StaleSweep -Module $Module

    $before = [ordered]@{}
    $after = [ordered]@{}
    $changed = $false
    $results = foreach ($userProfile in $selected) {
        $task = Invoke-M365TaskScript -ScriptBlock $ScriptBlock -RunAs User -UserSid $userProfile.Sid -TimeoutSeconds $timeout -Parameters $Parameters
        $entry = ConvertTo-M365UserOutcome -UserProfile $userProfile -TaskResult $task
        foreach ($k in $Fields.Keys) { $entry[$k] = $Fields[$k] }
        if ($null -eq $entry.status) {
            $state = & $Complete $entry $task.Output
            if ($null -ne $state) {
                $key = Get-M365UserLabel $userProfile
                $before[$key] = $state.before
                $after[$key] = $state.after
                if ($state.Contains('changed') -and $state.changed) { $changed = $true }
            }
        }
        if ($entry.status -eq 'changed') { $changed = $true }
        $entry
    }
    $results = @($results)
    $Module.Result.users = $results
    $Module.Result.changed = $changed
    $Module.Diff.before = @{ $DiffKey = $before }
    $Module.Diff.after = @{ $DiffKey = $after }
    , $results
}

Function Exit-M365UserRung {
    <#
    .SYNOPSIS
    Ends a user-context rung: records the repair when a user's state changed, fails when
    a user failed (or, with require_logged_on, was not logged on when the task ran), says
    so when nobody was selected, else exits.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)][object]$Module,
        [AllowEmptyCollection()][object[]]$Result,
        [Parameter(Mandatory)][string]$Action,
        [Parameter(Mandatory)][string]$Rung
    )
    # Before the failure check: users whose state changed stay changed when another failed.
    $changedUsers = @($Result | Where-Object { $_ -and $_.status -eq 'changed' })
    if ($changedUsers.Count -gt 0 -and -not $Module.CheckMode) {
        # Get-M365UserLabel: a SID that does not translate has no user name, only the SID.
        Set-M365RepairRecord -Rung $Rung -Summary "$Action for $(@($changedUsers | ForEach-Object { Get-M365UserLabel $_ }) -join ', ')"
    }
    Add-M365RunnerWarning -Module $Module
    $failure = Get-M365RungFailure -Result $Result -RequireLoggedOn $Module.Params.require_logged_on -Action $Action
    if ($failure) { $Module.FailJson($failure) }
    if (@($Result).Count -eq 0) {
        $Module.Result.msg = 'no user selected: nobody is logged on and no users were given'
    }
    $Module.ExitJson()
}

Export-ModuleMember -Function @(
    'Select-M365RungUser',
    'Assert-M365Timeout',
    'ConvertTo-M365UserOutcome',
    'Get-M365UserRungOption',
    'New-M365UserRungModule',
    'Invoke-M365UserRung',
    'Exit-M365UserRung'
)
