# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# Logic shared by the repair-rung modules (win_credential_purge, win_work_accounts,
# win_token_broker_cache, win_aad_broker_plugin, win_dsreg_join):
#   * user selection on top of UserProfile.psm1,
#   * the user-context rung flow (select, one task per user, per-user entries, diff,
#     failure) and the per-user outcome shape (docs/development.md, Rung module results),
#   * credential pattern safety,
#   * the TokenBroker quarantine (move with manifest, restore with SHA-256 check, prune),
#   * a small `dsregcmd /status` reader for the join guard rails,
#   * thin adapters around Windows-only commands, so Pester can mock them and the
#     logic runs under pwsh on Linux.

#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils.UserProfile
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils.ScheduledTaskRunner
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils.RebootMarker

Set-StrictMode -Version 2.0

$script:QuarantineIdPattern = '^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$'

# ---------------------------------------------------------------------------------------
# User selection
# ---------------------------------------------------------------------------------------

Function Get-M365RungUser {
    <#
    .SYNOPSIS
    Resolves the `users` option of a rung module to UserProfile objects.
    .DESCRIPTION
    With no identities, returns every profile (the caller narrows it: logged-on users,
    users with cached accounts). Each identity goes through Resolve-M365User, so names with
    wildcards or path characters are refused there; the error is re-thrown naming the
    module option so the task output says which parameter was wrong. All identities are
    resolved before anything is returned: one bad name fails the whole call and nothing
    is changed.
    #>
    [CmdletBinding()]
    param (
        [AllowNull()][AllowEmptyCollection()][string[]]$Identity,
        [string]$ParameterName = 'users'
    )

    if ($null -eq $Identity -or $Identity.Count -eq 0) {
        return , @(Get-M365UserProfile)
    }

    $resolved = [System.Collections.Generic.List[object]]::new()
    $seen = @{}
    foreach ($id in $Identity) {
        try {
            $userProfile = Resolve-M365User -Identity $id
        }
        catch [System.ArgumentException] {
            throw [System.ArgumentException]::new("${ParameterName}: $($_.Exception.Message)")
        }
        # The same user named twice (name and SID) is processed once.
        if (-not $seen.ContainsKey($userProfile.Sid)) {
            $seen[$userProfile.Sid] = $true
            $resolved.Add($userProfile)
        }
    }
    return , $resolved.ToArray()
}

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

Function Get-M365RungFailure {
    <#
    .SYNOPSIS
    The failure message for a user-context rung's per-user results, or $null when none
    failed (users who were not logged on fail the task only with RequireLoggedOn).
    #>
    [CmdletBinding()]
    param (
        [AllowEmptyCollection()][object[]]$Result,
        [bool]$RequireLoggedOn = $false,
        [Parameter(Mandatory)][string]$Action
    )
    $skipped = @($Result | Where-Object { $_.status -eq 'not_logged_on' })
    if ($RequireLoggedOn -and $skipped.Count -gt 0) {
        return "require_logged_on: $($skipped.Count) user(s) were not logged on when their task ran"
    }
    $failed = @($Result | Where-Object { $_.status -eq 'failed' })
    if ($failed.Count -gt 0) {
        $who = ($failed | ForEach-Object { Get-M365UserLabel $_ }) -join ', '
        return "$Action failed for ${who}: $(($failed | ForEach-Object { $_.message }) -join ' | ')"
    }
    $null
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

Function Get-M365UserLabel {
    <#
    .SYNOPSIS
    How a user is named in diff keys and messages: DOMAIN\name, or the SID when the SID
    does not translate. Takes a UserProfile object (UserName, Sid) or a per-user result
    entry (user, sid).
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param ([AllowNull()][object]$User)
    foreach ($name in 'UserName', 'user', 'Sid') {
        $value = Get-M365OutputProperty $User $name
        if ($value) { return [string]$value }
    }
    ''
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
    $fragment = @{
        options = @{
            users = @{ type = 'list'; elements = 'str' }
            require_logged_on = @{ type = 'bool'; default = $false }
            timeout = @{ type = 'int'; default = 120 }
        }
    }
    $module = [Ansible.Basic.AnsibleModule]::Create([string[]]$Arguments, $Spec, @($fragment))
    $module.Result.changed = $false
    $module.Result.reboot_required = $false
    $module.Result.users = @()
    $module
}

Function Invoke-M365StaleSweep {
    <#
    .SYNOPSIS
    Sweeps the task runner's leftovers (Clear-M365StaleTaskRun) for a module about to use
    the runner: Result.stale_cleanup = @{ removed; failed }, and one warning per item, so
    the operator sees what an earlier, interrupted run left and what could not be removed.
    Housekeeping: it does not make the module report changed. In check mode it only lists.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][object]$Module)
    $sweep = Clear-M365StaleTaskRun -CheckMode:$Module.CheckMode
    $Module.Result.stale_cleanup = $sweep
    $verb = if ($Module.CheckMode) { 'would remove' } else { 'removed' }
    foreach ($item in @($sweep.removed)) { $Module.Warn("leftover of an interrupted run ${verb}: $item") }
    foreach ($f in @($sweep.failed)) { $Module.Warn("leftover of an interrupted run not removed: $($f.item): $($f.message)") }
}

Function Add-M365RunnerWarning {
    # The runner's own cleanup failures, as warnings the operator sees.
    [CmdletBinding()]
    param ([Parameter(Mandatory)][object]$Module)
    foreach ($w in @(Get-M365TaskRunnerWarning)) { if ($w) { $Module.Warn($w) } }
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

Function Get-M365OutputProperty {
    <#
    .SYNOPSIS
    Reads a property from a task Output that went through JSON (PSCustomObject or hashtable).
    #>
    [CmdletBinding()]
    param (
        [AllowNull()][object]$InputObject,
        [Parameter(Mandatory)][string]$Name,
        [AllowNull()][object]$Default = $null
    )
    if ($null -eq $InputObject) { return $Default }
    if ($InputObject -is [System.Collections.IDictionary]) {
        if ($InputObject.Contains($Name)) { return $InputObject[$Name] }
        return $Default
    }
    $prop = $InputObject.PSObject.Properties[$Name]
    if ($null -eq $prop) { return $Default }
    $prop.Value
}

# ---------------------------------------------------------------------------------------
# Credential target patterns
# ---------------------------------------------------------------------------------------

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

Function Test-M365TargetMatch {
    <#
    .SYNOPSIS
    Whether a credential target name matches any of the regexes Assert-M365CredentialPattern
    returned. Diagnose and purge both use it, so what the report lists is what a purge removes.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param ([AllowNull()][AllowEmptyString()][string]$Target, [AllowEmptyCollection()][string[]]$Regex)
    if (-not $Target) { return $false }
    foreach ($r in $Regex) { if ($Target -match $r) { return $true } }
    $false
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

# ---------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------

Function Test-M365PathInside {
    <#
    .SYNOPSIS
    True when Path, once normalised, is Root itself or below it.
    .DESCRIPTION
    The comparison is on full paths with a trailing separator, so C:\Users\al does not
    count as inside C:\Users\alice, and '..' segments are resolved before comparing.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)][string]$Path,
        [Parameter(Mandatory)][string]$Root
    )
    $sep = [System.IO.Path]::DirectorySeparatorChar
    $full = [System.IO.Path]::GetFullPath($Path).TrimEnd($sep, '/')
    $rootFull = [System.IO.Path]::GetFullPath($Root).TrimEnd($sep, '/')
    if ($full.Equals($rootFull, [StringComparison]::OrdinalIgnoreCase)) { return $true }
    return $full.StartsWith($rootFull + $sep, [StringComparison]::OrdinalIgnoreCase)
}

# ---------------------------------------------------------------------------------------
# Quarantine
#
# The quarantine runs as an administrator in two kinds of place: the users' profiles
# (hostile: see the link-safe helpers in UserProfile.psm1) and the quarantine tree under
# ProgramData (where standard users may create folders, and so own them, before we do).
# Every folder of the quarantine chain is therefore created by us with a protected DACL
# and the Administrators owner, or refused; a manifest only counts when its SHA-256 is the
# one recorded under HKLM, which standard users cannot write.
# ---------------------------------------------------------------------------------------

# Manifest SHA-256 per quarantine id, written whenever we write a manifest.
$script:QuarantineRecordKey = 'HKLM:\SOFTWARE\m365ops\activation\Quarantines'
# quarantine_path folders this collection created (value root-<hash> = the path).
$script:QuarantineRootKey = 'HKLM:\SOFTWARE\m365ops\activation\QuarantineRoots'
$script:TrustedOwnerSids = @('S-1-5-18', 'S-1-5-32-544')
# Free space kept on the quarantine volume on top of the files moved.
$script:QuarantineSpaceMargin = [int64]64MB

Function Test-M365QuarantineId {
    [CmdletBinding()]
    [OutputType([bool])]
    param ([AllowNull()][AllowEmptyString()][string]$Id)
    return ($null -ne $Id -and $Id -cmatch $script:QuarantineIdPattern)
}

Function New-M365QuarantineId {
    <#
    .SYNOPSIS
    A quarantine id: UTC time plus 8 random hex digits, e.g. 20261126T181500Z-3fa2c9d1.
    .DESCRIPTION
    The time prefix makes ids sort by age and lets retention work without trusting a
    manifest; the format is strict so an id can never carry a path.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param ([datetime]$Now = [datetime]::UtcNow)
    $bytes = [byte[]]::new(4)
    [System.Security.Cryptography.RandomNumberGenerator]::Create().GetBytes($bytes)
    '{0}-{1}' -f $Now.ToUniversalTime().ToString('yyyyMMdd\THHmmss\Z'), (($bytes | ForEach-Object { $_.ToString('x2') }) -join '')
}

Function Get-M365QuarantineDefaultRoot {
    [CmdletBinding()]
    [OutputType([string])]
    param ()
    # The environment first: on Windows both name C:\ProgramData, but .NET on other
    # platforms maps CommonApplicationData to /usr/share, which is the build machine's own
    # folder when the modules run in the loopback lab.
    $programData = $env:ProgramData
    if (-not $programData) { $programData = [Environment]::GetFolderPath([Environment+SpecialFolder]::CommonApplicationData) }
    Join-Path -Path $programData -ChildPath 'm365ops\activation\quarantine'
}

Function Get-M365QuarantinePath {
    <#
    .SYNOPSIS
    The folder of one quarantine; throws [ArgumentException] for a malformed id.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)][string]$Root,
        [AllowNull()][AllowEmptyString()][string]$Id,
        [string]$ParameterName = 'quarantine_id'
    )
    if (-not (Test-M365QuarantineId -Id $Id)) {
        throw [System.ArgumentException]::new(
            "${ParameterName}: '$Id' is not a quarantine id (expected yyyyMMddTHHmmssZ-xxxxxxxx, e.g. 20261126T181500Z-3fa2c9d1)")
    }
    Join-Path -Path $Root -ChildPath $Id
}

Function Get-M365PathOwnerSid {
    <#
    .SYNOPSIS
    The owner SID of a file or folder, or $null where there are no Windows ACLs (pwsh on
    Linux in tests and the lab). One call, so Pester models owners.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][string]$Path)
    if ((Get-Variable -Name IsWindows -ValueOnly -ErrorAction SilentlyContinue) -eq $false) { return $null }
    (Get-Acl -LiteralPath $Path).GetOwner([System.Security.Principal.SecurityIdentifier]).Value
}

Function Set-M365QuarantineAcl {
    <#
    .SYNOPSIS
    Restricts a quarantine folder to SYSTEM and Administrators (full control, inherited),
    owned by Administrators.
    .DESCRIPTION
    The files are the users' token caches; only the accounts that could read them in place
    anyway may read them here. Inheritance from ProgramData (which lets Users create
    folders, and makes the creator the owner) is cut, and the owner is taken back.
    Without Windows ACLs (pwsh on Linux) owner-only POSIX permissions stand in.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][string]$Path)
    $isWindowsVar = Get-Variable -Name IsWindows -ValueOnly -ErrorAction SilentlyContinue
    if ($isWindowsVar -eq $false) {
        [System.IO.File]::SetUnixFileMode($Path, [System.IO.UnixFileMode]'UserRead, UserWrite, UserExecute')
        return
    }

    $acl = [System.Security.AccessControl.DirectorySecurity]::new()
    $acl.SetAccessRuleProtection($true, $false)
    $inherit = [System.Security.AccessControl.InheritanceFlags]'ContainerInherit, ObjectInherit'
    foreach ($sid in $script:TrustedOwnerSids) {
        $rule = [System.Security.AccessControl.FileSystemAccessRule]::new(
            [System.Security.Principal.SecurityIdentifier]::new($sid),
            [System.Security.AccessControl.FileSystemRights]::FullControl,
            $inherit,
            [System.Security.AccessControl.PropagationFlags]::None,
            [System.Security.AccessControl.AccessControlType]::Allow)
        $acl.AddAccessRule($rule)
    }
    $acl.SetOwner([System.Security.Principal.SecurityIdentifier]::new('S-1-5-32-544'))
    try {
        Set-Acl -LiteralPath $Path -AclObject $acl -ErrorAction Stop
    }
    catch {
        # Taking ownership needs a privilege the process may not have enabled. Then set the
        # DACL alone, but an owner can always rewrite a DACL: accept only an owner that is
        # SYSTEM, Administrators or ourselves, else refuse to keep tokens there.
        $daclOnly = [System.Security.AccessControl.DirectorySecurity]::new()
        $daclOnly.SetAccessRuleProtection($true, $false)
        foreach ($r in $acl.GetAccessRules($true, $false, [System.Security.Principal.SecurityIdentifier])) { $daclOnly.AddAccessRule($r) }
        Set-Acl -LiteralPath $Path -AclObject $daclOnly -ErrorAction Stop
        $owner = (Get-Acl -LiteralPath $Path).GetOwner([System.Security.Principal.SecurityIdentifier]).Value
        $me = [System.Security.Principal.WindowsIdentity]::GetCurrent().User.Value
        if ($owner -notin @($script:TrustedOwnerSids + $me)) {
            throw "quarantine folder $Path is owned by $owner, not SYSTEM or Administrators, and ownership could not be taken; refusing to keep token caches there"
        }
    }
}

Function Get-M365QuarantineRootMarkName {
    # Registry value names stay short and free of path characters: a hash of the path.
    param ([Parameter(Mandatory)][string]$Root)
    $full = [System.IO.Path]::GetFullPath($Root).TrimEnd('\', '/').ToLowerInvariant()
    $sha = [System.Security.Cryptography.SHA256]::Create()
    try { $hash = $sha.ComputeHash([System.Text.Encoding]::UTF8.GetBytes($full)) } finally { $sha.Dispose() }
    'root-' + ([System.BitConverter]::ToString($hash, 0, 8)).Replace('-', '').ToLowerInvariant()
}

Function Test-M365QuarantineRootMark {
    [CmdletBinding()]
    [OutputType([bool])]
    param ([Parameter(Mandatory)][string]$Root)
    $values = Get-M365RebootMarkerValue -Path $script:QuarantineRootKey
    $name = Get-M365QuarantineRootMarkName -Root $Root
    [bool]($values -and $values.ContainsKey($name) -and
        [string]::Equals([string]$values[$name], [System.IO.Path]::GetFullPath($Root).TrimEnd('\', '/'), [System.StringComparison]::OrdinalIgnoreCase))
}

Function Get-M365QuarantineChain {
    <#
    .SYNOPSIS
    The folders a quarantine root hangs from: @{ Path; Own } from the top down. Own
    folders are ours to create and lock down; the others (the volume, ProgramData, the
    parent of a custom quarantine_path) are only checked for links.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][string]$Root, [bool]$IsDefault = $false)
    $full = [System.IO.Path]::GetFullPath($Root).TrimEnd('\', '/')
    $ownCount = if ($IsDefault) { 3 } else { 1 }  # m365ops\activation\quarantine, or the folder itself
    $paths = [System.Collections.Generic.List[string]]::new()
    $p = $full
    while ($p) {
        $paths.Insert(0, $p)
        $parent = [System.IO.Path]::GetDirectoryName($p)
        if (-not $parent -or $parent -eq $p) { break }
        $p = $parent
    }
    for ($i = 0; $i -lt $paths.Count; $i++) {
        [pscustomobject]@{ Path = $paths[$i]; Own = ($i -ge $paths.Count - $ownCount) }
    }
}

Function Assert-M365QuarantineRoot {
    <#
    .SYNOPSIS
    Checks, without changing anything, that a quarantine root may be used: no folder of its
    chain is a junction or symbolic link; the folders we own do not have another owner;
    a quarantine_path given by the operator is either new (its parent exists) or one this
    collection created and marked. Throws [ArgumentException] naming the parameter.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)][string]$Root,
        [bool]$IsDefault = $false,
        [string]$ParameterName = 'quarantine_path'
    )
    $chain = @(Get-M365QuarantineChain -Root $Root -IsDefault $IsDefault)
    foreach ($c in $chain) {
        $attr = Get-M365PathAttribute -Path $c.Path
        if ($null -eq $attr) { continue }
        if ($attr -band [System.IO.FileAttributes]::ReparsePoint) {
            throw [System.ArgumentException]::new("${ParameterName}: '$($c.Path)' is a junction or symbolic link; refusing to keep token caches below it. Nothing was changed.")
        }
        if (-not ($attr -band [System.IO.FileAttributes]::Directory)) {
            throw [System.ArgumentException]::new("${ParameterName}: '$($c.Path)' is a file, not a folder. Nothing was changed.")
        }
        if ($c.Own) {
            $owner = Get-M365PathOwnerSid -Path $c.Path
            if ($null -ne $owner -and $owner -notin $script:TrustedOwnerSids) {
                throw [System.ArgumentException]::new("${ParameterName}: '$($c.Path)' is owned by $owner, not SYSTEM or Administrators (someone created it before this collection did); remove it or choose another quarantine_path. Nothing was changed.")
            }
        }
    }
    if (-not $IsDefault) {
        $full = $chain[-1].Path
        if ($chain.Count -lt 2) {
            throw [System.ArgumentException]::new("${ParameterName}: '$Root' is a volume root; give a new folder for the quarantine. Nothing was changed.")
        }
        if ($null -ne (Get-M365PathAttribute -Path $full)) {
            if (-not (Test-M365QuarantineRootMark -Root $full)) {
                throw [System.ArgumentException]::new("${ParameterName}: '$full' already exists and was not created by this collection; give a new folder (it is created with a SYSTEM + Administrators only ACL) or one an earlier run created. Nothing was changed.")
            }
        }
        elseif ($null -eq (Get-M365PathAttribute -Path $chain[-2].Path)) {
            throw [System.ArgumentException]::new("${ParameterName}: the parent folder '$($chain[-2].Path)' does not exist. Nothing was changed.")
        }
    }
}

Function Initialize-M365QuarantineRoot {
    <#
    .SYNOPSIS
    Creates (or re-locks) the folders of a quarantine root after Assert-M365QuarantineRoot
    passed: each own folder is created without -Force, checked again for a link, given the
    protected DACL and the Administrators owner. A new custom root is marked under HKLM.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][string]$Root, [bool]$IsDefault = $false)
    Assert-M365QuarantineRoot -Root $Root -IsDefault $IsDefault
    $created = $false
    foreach ($c in @(Get-M365QuarantineChain -Root $Root -IsDefault $IsDefault | Where-Object { $_.Own })) {
        if ($null -eq (Get-M365PathAttribute -Path $c.Path)) {
            # Fails when someone creates the name between the check and here.
            $null = New-Item -ItemType Directory -Path $c.Path -ErrorAction Stop
            $created = $true
        }
        $attr = Get-M365PathAttribute -Path $c.Path
        if ($null -eq $attr -or ($attr -band [System.IO.FileAttributes]::ReparsePoint)) {
            throw [System.Security.SecurityException]::new("'$($c.Path)' was replaced by a junction or symbolic link while the quarantine was prepared")
        }
        # Every run, not only on creation: the default chain may predate this version.
        Set-M365QuarantineAcl -Path $c.Path
    }
    if ($created -and -not $IsDefault) {
        $full = [System.IO.Path]::GetFullPath($Root).TrimEnd('\', '/')
        Set-M365RebootMarkerValue -Path $script:QuarantineRootKey -Name (Get-M365QuarantineRootMarkName -Root $full) -Value $full
    }
}

Function Get-M365FileSha256 {
    [CmdletBinding()]
    [OutputType([string])]
    param ([Parameter(Mandatory)][string]$Path)
    $stream = [System.IO.File]::Open($Path, 'Open', 'Read', 'Read')
    try {
        $sha = [System.Security.Cryptography.SHA256]::Create()
        try {
            ([System.BitConverter]::ToString($sha.ComputeHash($stream))).Replace('-', '').ToLowerInvariant()
        }
        finally { $sha.Dispose() }
    }
    finally { $stream.Dispose() }
}

Function Get-M365BytesSha256 {
    param ([Parameter(Mandatory)][byte[]]$Bytes)
    $sha = [System.Security.Cryptography.SHA256]::Create()
    try { ([System.BitConverter]::ToString($sha.ComputeHash($Bytes))).Replace('-', '').ToLowerInvariant() }
    finally { $sha.Dispose() }
}

Function Test-M365FileLocked {
    <#
    .SYNOPSIS
    True when another process holds the file so it cannot be opened for exclusive use.
    .DESCRIPTION
    The broker keeps its account files open while it runs; checking every file first lets
    the module skip that user entirely instead of quarantining half of the cache. With
    Root, the file and its chain from Root are checked for links before it is opened.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param ([Parameter(Mandatory)][string]$Path, [string]$Root)
    if ($Root) { Assert-M365NoLink -Path $Path -Root $Root }
    try {
        $stream = [System.IO.File]::Open($Path, 'Open', 'ReadWrite', 'None')
        $stream.Dispose()
        return $false
    }
    catch [System.IO.IOException] {
        return $true
    }
}

Function Copy-M365CheckedFile {
    <#
    .SYNOPSIS
    Copies one file between two trees without going through a link; returns the SHA-256 of
    the bytes copied.
    .DESCRIPTION
    The source and the destination chains are checked for junctions and symbolic links
    before the files are opened and again once they are open (what is open then is what
    was checked). The destination must not exist (FileMode.CreateNew): nothing is ever
    overwritten. Throws [System.Security.SecurityException] for a link.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)][string]$Source,
        [Parameter(Mandatory)][string]$SourceRoot,
        [Parameter(Mandatory)][string]$Destination,
        [Parameter(Mandatory)][string]$DestinationRoot
    )
    Assert-M365NoLink -Path $Source -Root $SourceRoot
    Assert-M365NoLink -Path $Destination -Root $DestinationRoot
    $in = [System.IO.File]::Open($Source, 'Open', 'Read', 'Read')
    try {
        Assert-M365NoLink -Path $Source -Root $SourceRoot
        $out = New-Object -TypeName System.IO.FileStream -ArgumentList $Destination, ([System.IO.FileMode]::CreateNew), ([System.IO.FileAccess]::Write), ([System.IO.FileShare]::None)
        try {
            Assert-M365NoLink -Path $Destination -Root $DestinationRoot
            $sha = [System.Security.Cryptography.SHA256]::Create()
            try {
                $buffer = [byte[]]::new(65536)
                while (($n = $in.Read($buffer, 0, $buffer.Length)) -gt 0) {
                    $null = $sha.TransformBlock($buffer, 0, $n, $null, 0)
                    $out.Write($buffer, 0, $n)
                }
                $null = $sha.TransformFinalBlock([byte[]]::new(0), 0, 0)
                ([System.BitConverter]::ToString($sha.Hash)).Replace('-', '').ToLowerInvariant()
            }
            finally { $sha.Dispose() }
        }
        finally { $out.Dispose() }
    }
    finally { $in.Dispose() }
}

Function New-M365CheckedDirectory {
    <#
    .SYNOPSIS
    Creates the missing folders from Root down to Path one at a time, checking each for a
    link right after it exists, so a restore never creates a folder through a junction.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][string]$Path, [Parameter(Mandatory)][string]$Root)
    foreach ($item in (Split-M365ChainPath -Path $Path -Root $Root)) {
        $attr = Get-M365PathAttribute -Path $item
        if ($null -eq $attr) {
            $null = [System.IO.Directory]::CreateDirectory($item)
            $attr = Get-M365PathAttribute -Path $item
        }
        if ($null -eq $attr -or ($attr -band [System.IO.FileAttributes]::ReparsePoint)) {
            throw [System.Security.SecurityException]::new("'$item' is a junction or symbolic link; refused, not followed")
        }
    }
}

Function Read-M365QuarantineManifest {
    <#
    .SYNOPSIS
    Reads manifest.json and, unless -NoVerify, refuses it unless its SHA-256 is the one
    this collection recorded under HKLM when it wrote it: only an administrator can write
    that record, so a manifest a user forged or edited is never trusted.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][string]$QuarantinePath, [switch]$NoVerify)
    $manifestPath = Join-Path -Path $QuarantinePath -ChildPath 'manifest.json'
    $attr = Get-M365PathAttribute -Path $manifestPath
    if ($null -eq $attr) {
        throw [System.IO.FileNotFoundException]::new("quarantine manifest not found: $manifestPath", $manifestPath)
    }
    if ($attr -band [System.IO.FileAttributes]::ReparsePoint) {
        throw [System.Security.SecurityException]::new("quarantine manifest $manifestPath is a link; refused")
    }
    $bytes = [System.IO.File]::ReadAllBytes($manifestPath)
    if (-not $NoVerify) {
        $id = [System.IO.Path]::GetFileName($QuarantinePath.TrimEnd([char]92, [char]47))
        $record = Get-M365RebootMarkerValue -Path $script:QuarantineRecordKey
        $expected = if ($record -and $record.ContainsKey($id)) { [string]$record[$id] } else { $null }
        if (-not $expected) {
            throw [System.Security.SecurityException]::new("quarantine $id has no manifest record under $($script:QuarantineRecordKey): this collection did not write it (or its record was removed); refusing to trust it")
        }
        if ((Get-M365BytesSha256 -Bytes $bytes) -ne $expected) {
            throw [System.Security.SecurityException]::new("the manifest of quarantine $id does not match the SHA-256 recorded when it was written: it was changed; refusing to trust it")
        }
    }
    $raw = [System.Text.Encoding]::UTF8.GetString($bytes).TrimStart([char]0xFEFF)
    $manifest = ConvertFrom-Json -InputObject $raw
    if ((Get-M365OutputProperty $manifest 'schema') -ne 1) {
        throw "quarantine manifest $manifestPath has an unknown schema"
    }
    $manifest
}

Function Write-M365QuarantineManifest {
    <#
    .SYNOPSIS
    Writes manifest.json atomically (temp file then rename) so a crash never leaves a
    half-written manifest next to quarantined files, and records its SHA-256 under HKLM.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)][string]$QuarantinePath,
        [Parameter(Mandatory)][object]$Manifest
    )
    $manifestPath = Join-Path -Path $QuarantinePath -ChildPath 'manifest.json'
    $tmp = "$manifestPath.tmp"
    $json = ConvertTo-Json -InputObject $Manifest -Depth 10
    $bytes = [System.Text.UTF8Encoding]::new($false).GetBytes($json)
    [System.IO.File]::WriteAllBytes($tmp, $bytes)
    # The record first: a crash between the two leaves a manifest that does not verify
    # (refused, safe), never a verified manifest that differs from what is on disk.
    $id = [System.IO.Path]::GetFileName($QuarantinePath.TrimEnd([char]92, [char]47))
    Set-M365RebootMarkerValue -Path $script:QuarantineRecordKey -Name $id -Value (Get-M365BytesSha256 -Bytes $bytes)
    # File.Replace swaps atomically on NTFS; Move-Item -Force is not reliably an
    # overwrite on Windows PowerShell 5.1.
    if (Test-Path -LiteralPath $manifestPath -PathType Leaf) {
        [System.IO.File]::Replace($tmp, $manifestPath, [System.Management.Automation.Language.NullString]::Value)
    }
    else {
        [System.IO.File]::Move($tmp, $manifestPath)
    }
}

Function Get-M365CacheFile {
    <#
    .SYNOPSIS
    Lists the files under a cache root without following links, with their path relative
    to the root. Links met are added to Refused (@{ path; reason }); Base is the profile
    the root belongs to, so the chain above the root is checked as well.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)][string]$Root,
        [string]$Base,
        [AllowNull()][System.Collections.IList]$Refused
    )
    Get-M365SafeTreeFile -Root $Root -Base $Base -Refused $Refused
}

Function Get-M365FreeSpace {
    <#
    .SYNOPSIS
    Bytes free to the caller on the volume holding Path (the longest matching drive root),
    or $null when no volume matches.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][string]$Path)
    $full = [System.IO.Path]::GetFullPath($Path)
    $drive = [System.IO.DriveInfo]::GetDrives() | Where-Object {
        $_.IsReady -and $full.StartsWith($_.RootDirectory.FullName, [System.StringComparison]::OrdinalIgnoreCase)
    } | Sort-Object -Property { $_.RootDirectory.FullName.Length } -Descending | Select-Object -First 1
    if ($null -eq $drive) { return $null }
    [int64]$drive.AvailableFreeSpace
}

Function Assert-M365QuarantineSpace {
    <#
    .SYNOPSIS
    Throws when the quarantine volume cannot take Bytes plus a margin: a copy that runs out
    of space half-way leaves users' caches split between two places.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][string]$Root, [Parameter(Mandatory)][int64]$Bytes)
    $probe = $Root
    while ($probe -and $null -eq (Get-M365PathAttribute -Path $probe)) { $probe = [System.IO.Path]::GetDirectoryName($probe) }
    if (-not $probe) { return }
    $free = Get-M365FreeSpace -Path $probe
    if ($null -ne $free -and $free -lt $Bytes + $script:QuarantineSpaceMargin) {
        throw [System.IO.IOException]::new(("not enough free space for the quarantine: {0:N0} bytes to move plus a {1:N0} byte margin, {2:N0} free on the volume of {3}" -f $Bytes, $script:QuarantineSpaceMargin, $free, $Root))
    }
}

Function Invoke-M365QuarantineMove {
    <#
    .SYNOPSIS
    Moves one user's cache files into a quarantine folder and records them in its manifest.
    .DESCRIPTION
    Each Source is @{ Cache = <name>; Root = <folder>; Base = <profile folder> }. Files are
    found without following links; every link met is skipped and returned in `refused`.
    All files are checked for locks first; if any is locked nothing is moved and the
    locked files are returned. A file is copied through Copy-M365CheckedFile (links
    re-checked around the open), its copy hashed, the manifest written, and only then the
    original deleted after one more check. If a delete fails the user's files moved so far
    are put back, so a user's cache is never left half quarantined; what cannot be put
    back stays in the quarantine and the message says where.
    Returns @{ status = moved|unchanged|locked|failed; files; locked; refused; message }.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)][string]$QuarantinePath,
        [Parameter(Mandatory)][string]$QuarantineId,
        [Parameter(Mandatory)][string]$UserSid,
        [AllowNull()][string]$UserName,
        [Parameter(Mandatory)][object[]]$Source,
        [switch]$CheckMode
    )

    $refused = [System.Collections.Generic.List[object]]::new()
    $found = foreach ($src in $Source) {
        $base = if ($src.Contains('Base') -and $src.Base) { $src.Base } else { $src.Root }
        foreach ($f in @(Get-M365CacheFile -Root $src.Root -Base $base -Refused $refused)) {
            [pscustomobject]@{ Cache = $src.Cache; File = $f; Base = $base }
        }
    }
    $found = @($found)
    $result = [ordered]@{ status = 'unchanged'; files = @(); locked = @(); refused = @(); message = '' }
    $result.refused = @($refused)
    if ($found.Count -eq 0) { return $result }

    $locked = [System.Collections.Generic.List[string]]::new()
    $usable = [System.Collections.Generic.List[object]]::new()
    foreach ($item in $found) {
        try {
            if (Test-M365FileLocked -Path $item.File.FullName -Root $item.Base) { $locked.Add($item.File.FullName) } else { $usable.Add($item) }
        }
        catch [System.Security.SecurityException] {
            $refused.Add([ordered]@{ path = $item.File.FullName; reason = $_.Exception.Message })
        }
    }
    $result.refused = @($refused)
    if ($locked.Count -gt 0) {
        $result.status = 'locked'
        $result.locked = @($locked)
        $result.message = "$($locked.Count) file(s) are in use (the broker is running in the user's session); nothing was moved for this user. Use stop_broker: true or run after sign-out."
        return $result
    }
    if ($usable.Count -eq 0) { return $result }

    $entries = foreach ($item in $usable) {
        $stored = Join-Path -Path (Join-Path -Path (Join-Path -Path 'files' -ChildPath $UserSid) -ChildPath $item.Cache) -ChildPath $item.File.Relative
        [ordered]@{
            user_sid = $UserSid
            user = $UserName
            cache = $item.Cache
            original_path = $item.File.FullName
            stored_path = $stored
            size = [int64]$item.File.Length
            sha256 = $null
            last_write_time = $item.File.LastWriteTimeUtc.ToString('o')
            quarantined_at = $null
            restored_at = $null
            base = $item.Base
        }
    }
    $entries = @($entries)
    if ($CheckMode) {
        foreach ($e in $entries) { $e.Remove('base') }
        $result.status = 'moved'
        $result.files = $entries
        return $result
    }

    $manifest = Read-M365QuarantineManifest -QuarantinePath $QuarantinePath
    $allEntries = [System.Collections.Generic.List[object]]::new()
    foreach ($e in @($manifest.entries)) { $allEntries.Add($e) }

    $copied = [System.Collections.Generic.List[object]]::new()
    try {
        foreach ($e in $entries) {
            $dest = Join-Path -Path $QuarantinePath -ChildPath $e.stored_path
            New-M365CheckedDirectory -Path (Split-Path -Path $dest -Parent) -Root $QuarantinePath
            try {
                $e.sha256 = Copy-M365CheckedFile -Source $e.original_path -SourceRoot $e.base -Destination $dest -DestinationRoot $QuarantinePath
            }
            catch [System.Security.SecurityException] {
                # A link appeared since the walk: this file is not taken, the others are.
                $refused.Add([ordered]@{ path = $e.original_path; reason = $_.Exception.Message })
                continue
            }
            $copied.Add($e)
            if ((Get-M365FileSha256 -Path $dest) -ne $e.sha256) {
                throw "copy of $($e.original_path) does not match its SHA-256"
            }
            $e.quarantined_at = [datetime]::UtcNow.ToString('o')
        }
        foreach ($e in $copied) {
            $plain = [ordered]@{}
            foreach ($k in $e.Keys) { if ($k -ne 'base') { $plain[$k] = $e[$k] } }
            $allEntries.Add([pscustomobject]$plain)
        }
        $manifest.entries = $allEntries.ToArray()
        if ($copied.Count -gt 0) { Write-M365QuarantineManifest -QuarantinePath $QuarantinePath -Manifest $manifest }
    }
    catch {
        # Nothing was deleted yet: dropping the copies leaves the user's cache as it was.
        foreach ($e in $copied) {
            Remove-Item -LiteralPath (Join-Path -Path $QuarantinePath -ChildPath $e.stored_path) -Force -ErrorAction SilentlyContinue
        }
        $result.refused = @($refused)
        $result.status = 'failed'
        $result.message = "copy into quarantine failed, nothing moved for this user: $($_.Exception.Message)"
        return $result
    }
    $result.refused = @($refused)
    if ($copied.Count -eq 0) { return $result }

    $deleted = [System.Collections.Generic.List[object]]::new()
    try {
        foreach ($e in $copied) {
            Remove-M365CacheFile -Path $e.original_path -Root $e.base -Sha256 $e.sha256
            $deleted.Add($e)
        }
    }
    catch {
        $deleteError = $_.Exception.Message
        # Put back what was already removed so the user's cache stays whole. What cannot go
        # back stays in the quarantine, recorded in the manifest, and the message says where.
        $stranded = [System.Collections.Generic.List[object]]::new()
        foreach ($e in $deleted) {
            $stored = Join-Path -Path $QuarantinePath -ChildPath $e.stored_path
            try {
                $null = Copy-M365CheckedFile -Source $stored -SourceRoot $QuarantinePath -Destination $e.original_path -DestinationRoot $e.base
            }
            catch {
                $stranded.Add([pscustomobject]@{ Entry = $e; Stored = $stored; Why = $_.Exception.Message })
            }
        }
        $strandedPaths = @($stranded | ForEach-Object { $_.Entry.original_path })
        foreach ($e in $copied) {
            if ($e.original_path -in $strandedPaths) { continue }
            Remove-Item -LiteralPath (Join-Path -Path $QuarantinePath -ChildPath $e.stored_path) -Force -ErrorAction SilentlyContinue
        }
        $copiedPaths = @($copied | ForEach-Object { $_.original_path })
        $keep = @($allEntries | Where-Object { $_.user_sid -ne $UserSid -or $_.original_path -notin $copiedPaths -or $_.original_path -in $strandedPaths })
        $manifest.entries = $keep
        try { Write-M365QuarantineManifest -QuarantinePath $QuarantinePath -Manifest $manifest }
        catch { $stranded.Add([pscustomobject]@{ Entry = $null; Stored = (Join-Path $QuarantinePath 'manifest.json'); Why = "manifest not updated: $($_.Exception.Message)" }) }
        $result.status = 'failed'
        if ($stranded.Count -eq 0) {
            $result.message = "a cache file could not be removed ($deleteError); the files were put back and nothing is quarantined for this user"
        }
        else {
            $where = ($stranded | ForEach-Object { if ($_.Entry) { "$($_.Entry.original_path) is at $($_.Stored) ($($_.Why))" } else { $_.Why } }) -join '; '
            $result.message = "a cache file could not be removed ($deleteError); putting the files back failed for $($stranded.Count): $where. Restore them with state=restored quarantine_id=$QuarantineId"
            $result.files = @($stranded | Where-Object { $_.Entry } | ForEach-Object { $_.Entry })
        }
        return $result
    }

    foreach ($e in $copied) { $e.Remove('base') }
    $result.status = 'moved'
    $result.files = @($copied)
    $result
}

Function Remove-M365CacheFile {
    <#
    .SYNOPSIS
    Deletes one cache file after checking, immediately before, that neither it nor a folder
    between Root and it is a link, and (with Sha256) that it still holds the bytes that
    were quarantined. Separate so a test can make a delete fail half-way.
    .DESCRIPTION
    DeleteFile removes a link itself, never its target, so the check guards the parent
    chain: a folder swapped for a junction would make the same path name another file.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][string]$Path, [string]$Root, [string]$Sha256)
    if ($Root) { Assert-M365NoLink -Path $Path -Root $Root }
    if ($Sha256) {
        if ((Get-M365FileSha256 -Path $Path) -ne $Sha256) {
            throw [System.IO.IOException]::new("'$Path' changed after it was copied into the quarantine; not deleted")
        }
        if ($Root) { Assert-M365NoLink -Path $Path -Root $Root }
    }
    [System.IO.File]::Delete($Path)
}

Function New-M365Quarantine {
    <#
    .SYNOPSIS
    Creates the quarantine folder (ACL: SYSTEM + Administrators, and the same for every
    folder of its chain we own) with an empty, recorded manifest.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)][string]$Root,
        [Parameter(Mandatory)][string]$Id,
        [bool]$IsDefault = $true,
        [string]$ComputerName = [Environment]::MachineName
    )
    $path = Get-M365QuarantinePath -Root $Root -Id $Id
    Initialize-M365QuarantineRoot -Root $Root -IsDefault $IsDefault
    # No -Force: an id folder that already exists was not made by this run.
    $null = New-Item -ItemType Directory -Path $path -ErrorAction Stop
    Set-M365QuarantineAcl -Path $path
    $manifest = [ordered]@{
        schema = 1
        id = $Id
        created = [datetime]::UtcNow.ToString('o')
        computer = $ComputerName
        module = 'win_token_broker_cache'
        entries = @()
    }
    Write-M365QuarantineManifest -QuarantinePath $path -Manifest $manifest
    $path
}

Function Restore-M365Quarantine {
    <#
    .SYNOPSIS
    Puts the files of one quarantine back where they came from.
    .DESCRIPTION
    The manifest must verify against its HKLM record (else Read-M365QuarantineManifest
    throws and nothing is restored). AllowedRoot is a script block taking a user SID and
    returning the folders that user's files may be restored into, as @{ Root; Base }
    (the resolved cache folder and its profile) or plain paths. A manifest entry pointing
    anywhere else, a stored path outside the quarantine, a link anywhere on the way, or a
    file whose SHA-256 no longer matches is refused and reported, never restored. An
    existing file with the same hash counts as already restored; one with different
    content is a conflict and is left alone (the user signed in again since).
    Returns a list of @{ original_path; user_sid; status = restored|already_present|conflict|
    hash_mismatch|missing|refused; message }.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)][string]$QuarantinePath,
        [Parameter(Mandatory)][scriptblock]$AllowedRoot,
        [switch]$CheckMode
    )
    $manifest = Read-M365QuarantineManifest -QuarantinePath $QuarantinePath
    $rootsBySid = @{}
    $rootErrors = @{}
    $changedManifest = $false
    $results = foreach ($e in @($manifest.entries)) {
        $r = [ordered]@{ original_path = $e.original_path; user_sid = $e.user_sid; status = $null; message = '' }
        $stored = Join-Path -Path $QuarantinePath -ChildPath $e.stored_path
        if (-not (Test-M365PathInside -Path $stored -Root $QuarantinePath)) {
            $r.status = 'refused'
            $r.message = 'stored path in the manifest leaves the quarantine folder'
            $r
            continue
        }
        if (-not $rootsBySid.ContainsKey($e.user_sid)) {
            try {
                $rootsBySid[$e.user_sid] = @(& $AllowedRoot $e.user_sid | ForEach-Object {
                        if ($_ -is [string]) { [pscustomobject]@{ Root = $_; Base = $_ } } else { [pscustomobject]@{ Root = $_.Root; Base = $_.Base } }
                    })
            }
            catch { $rootsBySid[$e.user_sid] = @(); $rootErrors[$e.user_sid] = $_.Exception.Message }
        }
        if ($rootErrors.ContainsKey($e.user_sid)) { $r.message = $rootErrors[$e.user_sid] }
        $inside = @($rootsBySid[$e.user_sid] | Where-Object { Test-M365PathInside -Path $e.original_path -Root $_.Root })
        if ($inside.Count -eq 0) {
            $r.status = 'refused'
            if (-not $r.message) { $r.message = "original path is not inside the user's TokenBroker cache folders" }
            $r
            continue
        }
        $base = $inside[0].Base
        try {
            Assert-M365NoLink -Path $stored -Root $QuarantinePath
            Assert-M365NoLink -Path $e.original_path -Root $base
            $storedExists = $null -ne (Get-M365PathAttribute -Path $stored)
            $destExists = $null -ne (Get-M365PathAttribute -Path $e.original_path)
            if ($destExists) {
                $destHash = Get-M365FileSha256 -Path $e.original_path
                if ($destHash -eq $e.sha256) {
                    $r.status = 'already_present'
                    if ($storedExists -and -not $CheckMode) {
                        Remove-Item -LiteralPath $stored -Force
                    }
                }
                else {
                    $r.status = 'conflict'
                    $r.message = 'a different file now exists at the original path; left both in place'
                }
                $r
                continue
            }
            if (-not $storedExists) {
                $r.status = 'missing'
                $r.message = 'the quarantined copy is gone and the original path is empty'
                $r
                continue
            }
            if ((Get-M365FileSha256 -Path $stored) -ne $e.sha256) {
                $r.status = 'hash_mismatch'
                $r.message = 'the quarantined copy does not match the SHA-256 in the manifest; not restored'
                $r
                continue
            }
            $r.status = 'restored'
            if (-not $CheckMode) {
                New-M365CheckedDirectory -Path (Split-Path -Path $e.original_path -Parent) -Root $base
                $copyHash = Copy-M365CheckedFile -Source $stored -SourceRoot $QuarantinePath -Destination $e.original_path -DestinationRoot $base
                if ($copyHash -ne $e.sha256) {
                    Remove-M365CacheFile -Path $e.original_path -Root $base
                    $r.status = 'hash_mismatch'
                    $r.message = 'the restored copy did not verify; removed it again'
                    $r
                    continue
                }
                Remove-Item -LiteralPath $stored -Force
                $e.restored_at = [datetime]::UtcNow.ToString('o')
                $changedManifest = $true
            }
        }
        catch [System.Security.SecurityException] {
            $r.status = 'refused'
            $r.message = $_.Exception.Message
        }
        $r
    }
    if ($changedManifest) {
        Write-M365QuarantineManifest -QuarantinePath $QuarantinePath -Manifest $manifest
    }
    , @($results)
}

Function Remove-M365ExpiredQuarantine {
    <#
    .SYNOPSIS
    Deletes quarantines older than RetentionDays; returns the ids removed (or to remove).
    .DESCRIPTION
    Age comes from the id's timestamp, and only folders whose name is a valid id are
    considered, so nothing else under the root is ever touched; a link named like an id
    is removed as a link, never followed.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)][string]$Root,
        [Parameter(Mandatory)][int]$RetentionDays,
        [datetime]$Now = [datetime]::UtcNow,
        [string[]]$Keep = @(),
        [switch]$CheckMode
    )
    $rootAttr = Get-M365PathAttribute -Path $Root
    if ($RetentionDays -le 0 -or $null -eq $rootAttr -or ($rootAttr -band [System.IO.FileAttributes]::ReparsePoint)) { return , @() }
    $cutoff = $Now.ToUniversalTime().AddDays(-$RetentionDays)
    $removed = foreach ($dir in @(Get-M365DirectoryEntry -Path $Root)) {
        if (-not ($dir.Attributes -band [System.IO.FileAttributes]::Directory)) { continue }
        if (-not (Test-M365QuarantineId -Id $dir.Name) -or $dir.Name -in $Keep) { continue }
        $created = [datetime]::ParseExact($dir.Name.Substring(0, 16), 'yyyyMMdd\THHmmss\Z',
            [System.Globalization.CultureInfo]::InvariantCulture,
            [System.Globalization.DateTimeStyles]'AssumeUniversal, AdjustToUniversal')
        if ($created -lt $cutoff) {
            if (-not $CheckMode) {
                if ($dir.Attributes -band [System.IO.FileAttributes]::ReparsePoint) { $dir.Delete() }
                else { Remove-M365TreeNoFollow -Path $dir.FullName }
                Remove-M365RebootMarkerValue -Path $script:QuarantineRecordKey -Name $dir.Name
            }
            $dir.Name
        }
    }
    , @($removed)
}

# ---------------------------------------------------------------------------------------
# dsregcmd /status
# ---------------------------------------------------------------------------------------

Function ConvertFrom-M365DsregStatus {
    <#
    .SYNOPSIS
    Reads `dsregcmd /status` text into @{ <section> = @{ <key> = <value> } }.
    .DESCRIPTION
    Sections are the boxed headers ("| Device State |"); keys are the text before the
    first ' : '. A line without that separator continues the previous value (dsregcmd
    wraps long values). Only what the join guard rails need is read here; the full parser
    for diagnosis is plugins/module_utils/dsreg.py.
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
    Device join type from parsed dsregcmd status: hybrid_joined, entra_joined (cloud only),
    domain_joined, onprem_drs_joined or workgroup; 'unknown' if the fields are missing.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param ([Parameter(Mandatory)][System.Collections.IDictionary]$Status)
    $aad = Get-M365DsregValue -Status $Status -Key 'AzureAdJoined'
    $domain = Get-M365DsregValue -Status $Status -Key 'DomainJoined'
    $ent = Get-M365DsregValue -Status $Status -Key 'EnterpriseJoined'
    if ($null -eq $aad -or $null -eq $domain) { return 'unknown' }
    if ($aad -eq 'YES' -and $domain -eq 'YES') { return 'hybrid_joined' }
    if ($aad -eq 'YES') { return 'entra_joined' }
    if ($ent -eq 'YES') { return 'onprem_drs_joined' }
    if ($domain -eq 'YES') { return 'domain_joined' }
    'workgroup'
}

# ---------------------------------------------------------------------------------------
# Windows adapters: one Windows command each, nothing else, so tests mock them.
# ---------------------------------------------------------------------------------------

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

Function Enter-M365HostLock {
    <#
    .SYNOPSIS
    Takes a machine-wide named lock without waiting; returns the held mutex, or $null when
    another process holds it. A lock whose holder died (connection dropped, process
    killed) is abandoned and taken over: nothing stays locked after a crash.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][ValidatePattern('^[A-Za-z0-9_.-]{1,100}$')][string]$Name)
    $mutex = New-Object -TypeName System.Threading.Mutex -ArgumentList $false, "Global\m365ops-$Name"
    $held = $false
    try { $held = $mutex.WaitOne(0) }
    catch [System.Threading.AbandonedMutexException] { $held = $true }
    if ($held) { return $mutex }
    $mutex.Dispose()
    $null
}

Function Exit-M365HostLock {
    [CmdletBinding()]
    param ([AllowNull()][object]$Lock)
    if ($null -eq $Lock) { return }
    try { $Lock.ReleaseMutex() } catch [System.ApplicationException] { }
    $Lock.Dispose()
}

Function Get-M365OsBuild {
    [CmdletBinding()]
    [OutputType([int])]
    param ()
    [Environment]::OSVersion.Version.Build
}

Function Test-M365DomainController {
    <#
    .SYNOPSIS
    Locates a domain controller of the device's domain (nltest /dsgetdc), as the join
    task's own AD connectivity pre-check needs.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][string]$DomainName)
    $out = & nltest.exe "/dsgetdc:$DomainName" 2>&1 | Out-String
    [pscustomobject]@{ Ok = ($LASTEXITCODE -eq 0); Detail = $out.Trim() }
}

Function Get-M365ServiceConnectionPoint {
    <#
    .SYNOPSIS
    Finds the device registration SCP: the client-side override (HKLM\...\CDJ\AAD,
    targeted deployments) or the AD object under the configuration naming context.
    #>
    [CmdletBinding()]
    param ()
    $reg = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\CDJ\AAD'
    if (Test-Path -LiteralPath $reg) {
        $p = Get-ItemProperty -LiteralPath $reg
        $tenantId = Get-M365OutputProperty $p 'TenantId'
        if ($tenantId) {
            return [pscustomobject]@{ Found = $true; Source = 'registry'; TenantId = $tenantId; TenantName = (Get-M365OutputProperty $p 'TenantName'); Detail = $reg }
        }
    }
    try {
        $configNc = ([adsi]'LDAP://RootDSE').configurationNamingContext
        $path = "LDAP://CN=62a0ff2e-97b9-4513-943f-0d221bd30080,CN=Device Registration Configuration,CN=Services,$configNc"
        $keywords = @(([adsi]$path).Keywords)
        $id = $keywords | Where-Object { $_ -like 'azureADId:*' } | Select-Object -First 1
        $name = $keywords | Where-Object { $_ -like 'azureADName:*' } | Select-Object -First 1
        if ($id) {
            return [pscustomobject]@{ Found = $true; Source = 'ad'; TenantId = ($id -replace '^azureADId:', ''); TenantName = ($name -replace '^azureADName:', ''); Detail = $path }
        }
        return [pscustomobject]@{ Found = $false; Source = 'ad'; TenantId = $null; TenantName = $null; Detail = "no azureADId keyword on $path" }
    }
    catch {
        return [pscustomobject]@{ Found = $false; Source = 'ad'; TenantId = $null; TenantName = $null; Detail = "SCP lookup failed: $($_.Exception.Message)" }
    }
}

Function Get-M365DeviceJoinTask {
    <#
    .SYNOPSIS
    State of the \Microsoft\Windows\Workplace Join\Automatic-Device-Join task.
    #>
    [CmdletBinding()]
    param ()
    $task = Get-ScheduledTask -TaskPath '\Microsoft\Windows\Workplace Join\' -TaskName 'Automatic-Device-Join' -ErrorAction SilentlyContinue
    if ($null -eq $task) { return [pscustomobject]@{ Found = $false; State = $null } }
    [pscustomobject]@{ Found = $true; State = [string]$task.State }
}

Function Get-M365BrokerProcess {
    <#
    .SYNOPSIS
    The AAD broker processes (Microsoft.AAD.BrokerPlugin.exe) running as a given user.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][string]$UserName)
    @(Get-Process -Name 'Microsoft.AAD.BrokerPlugin' -IncludeUserName -ErrorAction SilentlyContinue |
            Where-Object { $_.UserName -eq $UserName })
}

Function Stop-M365BrokerProcess {
    [CmdletBinding()]
    param ([Parameter(Mandatory)][object[]]$Process)
    foreach ($p in $Process) {
        Stop-Process -Id $p.Id -Force -ErrorAction Stop
    }
}

Export-ModuleMember -Function @(
    'Get-M365RungUser', 'Select-M365RungUser', 'Assert-M365Timeout', 'Get-M365RungFailure', 'ConvertTo-M365UserOutcome', 'Get-M365OutputProperty',
    'Get-M365UserLabel', 'New-M365UserRungModule', 'Invoke-M365StaleSweep', 'Add-M365RunnerWarning', 'Invoke-M365UserRung', 'Exit-M365UserRung',
    'Test-M365BroadPattern', 'Test-M365TargetMatch', 'ConvertTo-M365TargetRegex', 'Assert-M365CredentialPattern',
    'Test-M365PathInside',
    'Test-M365QuarantineId', 'New-M365QuarantineId', 'Get-M365QuarantineDefaultRoot', 'Get-M365QuarantinePath',
    'Get-M365PathOwnerSid', 'Set-M365QuarantineAcl', 'Test-M365QuarantineRootMark', 'Get-M365QuarantineChain',
    'Assert-M365QuarantineRoot', 'Initialize-M365QuarantineRoot', 'Get-M365FileSha256', 'Test-M365FileLocked',
    'Copy-M365CheckedFile', 'New-M365CheckedDirectory', 'Read-M365QuarantineManifest',
    'Write-M365QuarantineManifest', 'Get-M365CacheFile', 'Get-M365FreeSpace', 'Assert-M365QuarantineSpace',
    'Invoke-M365QuarantineMove', 'Remove-M365CacheFile',
    'New-M365Quarantine', 'Restore-M365Quarantine', 'Remove-M365ExpiredQuarantine',
    'ConvertFrom-M365DsregStatus', 'Get-M365DsregValue', 'Get-M365JoinType',
    'Get-M365DsregcmdPath', 'Invoke-M365Dsregcmd', 'Enter-M365HostLock', 'Exit-M365HostLock', 'Get-M365OsBuild', 'Test-M365DomainController', 'Get-M365ServiceConnectionPoint',
    'Get-M365DeviceJoinTask', 'Get-M365BrokerProcess', 'Stop-M365BrokerProcess'
)
