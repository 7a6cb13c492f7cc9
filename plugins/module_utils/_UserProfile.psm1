# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within this collection and may not remain
# stable to outside uses. Changes may be made in ANY release, even a bugfix release.

# Users -> SID, profile path, hive and session state, and paths confined to a profile.
#
# Over WinRM the module runs as the admin, so %LOCALAPPDATA% and friends are the admin's:
# every per-user path must start from the ProfileList entry of the resolved SID. The
# Windows-only lookups sit in small Get-/ConvertTo- functions so Pester can mock them and
# the resolution and confinement logic runs under pwsh on Linux too.

Set-StrictMode -Version 2.0

$script:ProfileListKey = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList'
# LocalSystem, LocalService, NetworkService have ProfileList entries but are never the
# user whose Office is broken.
$script:ServiceSids = @('S-1-5-18', 'S-1-5-19', 'S-1-5-20')
$script:SidPattern = '^S-1-[0-9]+(-[0-9]+){1,14}$'

Function Get-M365ProfileListEntry {
    <#
    .SYNOPSIS
    Raw ProfileList entries: [pscustomobject]@{ Sid; ProfileImagePath }. Windows only.
    #>
    [CmdletBinding()]
    param()
    foreach ($key in @(Get-ChildItem -LiteralPath $script:ProfileListKey -ErrorAction Stop)) {
        # Get-ItemProperty expands the REG_EXPAND_SZ (%SystemDrive%\Users\x) for us.
        $props = Get-ItemProperty -LiteralPath $key.PSPath -ErrorAction SilentlyContinue
        $imagePath = $null
        if ($props -and $props.PSObject.Properties['ProfileImagePath']) {
            $imagePath = [string]$props.ProfileImagePath
        }
        [pscustomobject]@{ Sid = $key.PSChildName; ProfileImagePath = $imagePath }
    }
}

Function Test-M365HiveLoaded {
    <# .SYNOPSIS Whether HKEY_USERS\<sid> is mounted (user logged on or hive loaded by a service). #>
    [CmdletBinding()]
    [OutputType([bool])]
    param([Parameter(Mandatory)][string]$Sid)
    [bool](Test-Path -LiteralPath "Registry::HKEY_USERS\$Sid")
}

Function Get-M365InteractiveSid {
    <#
    .SYNOPSIS
    SIDs that own an interactive desktop (an explorer.exe), the only users an
    interactive-token scheduled task can run for.
    .DESCRIPTION
    Win32_LogonSession keeps stale interactive sessions after logoff while any process
    holds the token, which would make the task runner wait for a user who is gone;
    explorer.exe ownership is what "someone is at this desktop" means in practice.
    #>
    [CmdletBinding()]
    [OutputType([string[]])]
    param()
    $sids = foreach ($proc in @(Get-CimInstance -ClassName Win32_Process -Filter "Name = 'explorer.exe'" -ErrorAction Stop)) {
        $owner = Invoke-CimMethod -InputObject $proc -MethodName GetOwnerSid -ErrorAction SilentlyContinue
        if ($owner -and $owner.ReturnValue -eq 0 -and $owner.Sid) { [string]$owner.Sid }
    }
    $sids | Sort-Object -Unique
}

Function ConvertTo-M365AccountName {
    <# .SYNOPSIS SID -> DOMAIN\name, or $null when the SID does not translate (deleted account, offline DC). #>
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$Sid)
    try {
        $sidObj = New-Object -TypeName System.Security.Principal.SecurityIdentifier -ArgumentList $Sid
        [string]$sidObj.Translate([System.Security.Principal.NTAccount]).Value
    }
    catch {
        $null
    }
}

Function ConvertTo-M365Sid {
    <# .SYNOPSIS name, DOMAIN\name or UPN -> SID string through LookupAccountName, or $null. #>
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$Name)
    try {
        $account = New-Object -TypeName System.Security.Principal.NTAccount -ArgumentList $Name
        [string]$account.Translate([System.Security.Principal.SecurityIdentifier]).Value
    }
    catch {
        $null
    }
}

Function Get-M365ProfileUpn {
    <#
    .SYNOPSIS
    The sign-in UPN Windows cached for a profile SID, or $null.
    .DESCRIPTION
    Entra-joined users (AzureAD\AliceSmith) do not translate from their UPN through
    LookupAccountName; the IdentityStore cache is where Windows keeps that mapping.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$Sid)
    $key = "HKLM:\SOFTWARE\Microsoft\IdentityStore\Cache\$Sid\IdentityCache\$Sid"
    try {
        $props = Get-ItemProperty -LiteralPath $key -ErrorAction Stop
        if ($props.PSObject.Properties['UserName'] -and $props.UserName) { [string]$props.UserName } else { $null }
    }
    catch {
        $null
    }
}

Function Get-M365UserProfile {
    <#
    .SYNOPSIS
    One object per user profile on the host:
    [pscustomobject]@{ Sid; UserName; ProfilePath; HiveLoaded; LoggedOn }
    Service accounts and entries without ProfileImagePath are skipped.
    #>
    [CmdletBinding()]
    param()
    $interactive = @(Get-M365InteractiveSid)
    foreach ($entry in @(Get-M365ProfileListEntry)) {
        if ($script:ServiceSids -contains $entry.Sid) { continue }
        if ([string]::IsNullOrWhiteSpace($entry.ProfileImagePath)) { continue }
        # ProfileList also holds "<sid>.bak" leftovers of corrupted profiles: not a user.
        if ($entry.Sid -notmatch $script:SidPattern) { continue }
        [pscustomobject]@{
            Sid = $entry.Sid
            UserName = ConvertTo-M365AccountName -Sid $entry.Sid
            ProfilePath = $entry.ProfileImagePath
            HiveLoaded = [bool](Test-M365HiveLoaded -Sid $entry.Sid)
            LoggedOn = [bool]($interactive -contains $entry.Sid)
        }
    }
}

Function Assert-M365IdentityFormat {
    # Refuses what cannot be an account name before any lookup, so a wildcard or a path
    # never reaches LookupAccountName or a -like comparison.
    param([AllowNull()][AllowEmptyString()][string]$Identity)
    if ([string]::IsNullOrWhiteSpace($Identity)) {
        throw [System.ArgumentException]::new("Identity '$Identity' is empty: give a user name, DOMAIN\name, UPN or SID.")
    }
    if ($Identity -match '[\*\?\[\]]') {
        throw [System.ArgumentException]::new("Identity '$Identity' contains a wildcard character (* ? [ ]); name exactly one user.")
    }
    if ($Identity -match '[/:<>|"\x00-\x1f]' -or $Identity -match '\\.*\\' -or $Identity -match '^\\|\\$' -or $Identity -match '(^|\\)\.\.?($|\\)') {
        throw [System.ArgumentException]::new("Identity '$Identity' contains path characters; expected name, DOMAIN\name, UPN or SID.")
    }
    if ($Identity -match '@' -and $Identity -notmatch '^[^@\\\s]+@[^@\\\s]+\.[^@\\\s]+$') {
        throw [System.ArgumentException]::new("Identity '$Identity' is not a valid UPN (name@domain.tld).")
    }
    if ($Identity -match '^S-1-' -and $Identity -notmatch $script:SidPattern) {
        throw [System.ArgumentException]::new("Identity '$Identity' is not a well-formed SID.")
    }
}

Function Resolve-M365User {
    <#
    .SYNOPSIS
    Resolve a name, DOMAIN\name, UPN or SID to exactly one profile object (see
    Get-M365UserProfile). Throws [System.ArgumentException] naming the identity when it
    is malformed, unknown, has no profile here, or matches more than one profile.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory)][AllowEmptyString()][string]$Identity)

    Assert-M365IdentityFormat -Identity $Identity
    $id = $Identity.Trim()
    $profiles = @(Get-M365UserProfile)

    if ($id -match $script:SidPattern) {
        $bySid = @($profiles | Where-Object { $_.Sid -eq $id })
        if ($bySid.Count -eq 0) {
            throw [System.ArgumentException]::new("Identity '$Identity': no user profile with this SID on this host.")
        }
        return $bySid[0]
    }

    $matched = @()
    if ($id.Contains('\')) {
        $matched = @($profiles | Where-Object { $_.UserName -and $_.UserName -eq $id })
    }
    elseif ($id.Contains('@')) {
        $matched = @($profiles | Where-Object { (Get-M365ProfileUpn -Sid $_.Sid) -eq $id })
    }
    else {
        $matched = @($profiles | Where-Object { $_.UserName -and ($_.UserName -split '\\', 2)[-1] -eq $id })
    }

    if ($matched.Count -gt 1) {
        $names = ($matched | ForEach-Object { "$($_.UserName) ($($_.Sid))" }) -join ', '
        throw [System.ArgumentException]::new("Identity '$Identity' is ambiguous: it matches $names; use DOMAIN\name or the SID.")
    }
    if ($matched.Count -eq 1) {
        return $matched[0]
    }

    # Not found by the names the profiles translate to (a DC may be unreachable, or the
    # UPN is not cached): ask LookupAccountName, which knows domain UPNs.
    $sid = ConvertTo-M365Sid -Name $id
    if ($sid) {
        $bySid = @($profiles | Where-Object { $_.Sid -eq $sid })
        if ($bySid.Count -eq 1) {
            return $bySid[0]
        }
        throw [System.ArgumentException]::new("Identity '$Identity' resolves to $sid, which has no user profile on this host.")
    }
    throw [System.ArgumentException]::new("Identity '$Identity' is unknown: no account or user profile on this host matches it.")
}

Function Join-M365ProfilePath {
    <#
    .SYNOPSIS
    Join a relative path under a resolved profile; throws [System.ArgumentException]
    when the result would leave the profile (.., rooted or drive paths, alternate data
    streams, an existing junction/symlink on the way).
    .DESCRIPTION
    Profile paths are Windows paths even when the logic runs under pwsh on Linux in
    tests, so the separator follows the profile path, not the platform.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [Parameter(Mandatory)][object]$UserProfile,
        [Parameter(Mandatory)][AllowEmptyString()][string]$ChildPath
    )
    $root = [string]$UserProfile.ProfilePath
    if ([string]::IsNullOrWhiteSpace($root)) {
        throw [System.ArgumentException]::new("UserProfile has no ProfilePath.")
    }
    $isWindowsPath = $root -match '^[A-Za-z]:\\|^\\\\'
    $sep = if ($isWindowsPath) { '\' } else { [string][System.IO.Path]::DirectorySeparatorChar }
    $root = $root.TrimEnd('\', '/')
    if ($root -eq '' -or $root -match '^[A-Za-z]:$') {
        throw [System.ArgumentException]::new("UserProfile ProfilePath '$($UserProfile.ProfilePath)' is a drive root, not a profile.")
    }

    if ([string]::IsNullOrWhiteSpace($ChildPath)) {
        throw [System.ArgumentException]::new("ChildPath is empty: it must name something inside the profile '$root'.")
    }
    if ($ChildPath -match '^[\\/]' -or $ChildPath -match '^[A-Za-z]:' -or $ChildPath.Contains(':')) {
        throw [System.ArgumentException]::new("ChildPath '$ChildPath' is rooted or names a drive or stream; it must be relative to the profile '$root'.")
    }

    $segments = [System.Collections.Generic.List[string]]::new()
    foreach ($seg in ($ChildPath -split '[\\/]')) {
        if ($seg -eq '' -or $seg -eq '.') { continue }
        if ($seg -eq '..') {
            if ($segments.Count -eq 0) {
                throw [System.ArgumentException]::new("ChildPath '$ChildPath' leaves the profile '$root'.")
            }
            $segments.RemoveAt($segments.Count - 1)
            continue
        }
        # Windows strips trailing dots and spaces, so 'x..' or '.. ' could still mean '..'.
        if ($seg.TrimEnd('.', ' ') -eq '' -or $seg -match '[<>"|?*\x00-\x1f]') {
            throw [System.ArgumentException]::new("ChildPath '$ChildPath' has an invalid segment '$seg'.")
        }
        $segments.Add($seg)
    }
    if ($segments.Count -eq 0) {
        throw [System.ArgumentException]::new("ChildPath '$ChildPath' names the profile root itself, not a path inside it.")
    }

    $full = $root
    foreach ($seg in $segments) {
        $full = $full + $sep + $seg
        # A user owns their profile and can plant a junction (AppData\...\Accounts ->
        # C:\Windows\System32) that a SYSTEM/admin caller would then follow.
        if (Test-M365ReparsePoint -Path $full) {
            throw [System.ArgumentException]::new("ChildPath '$ChildPath': '$full' is a junction or symbolic link; refusing to follow it out of the profile '$root'.")
        }
    }
    if (-not $full.StartsWith($root + $sep, [System.StringComparison]::OrdinalIgnoreCase)) {
        throw [System.ArgumentException]::new("ChildPath '$ChildPath' leaves the profile '$root'.")
    }
    $full
}

Function Test-M365ReparsePoint {
    <# .SYNOPSIS Whether an existing path is a junction/symlink; $false when it does not exist. #>
    [CmdletBinding()]
    [OutputType([bool])]
    param([Parameter(Mandatory)][string]$Path)
    $item = Get-Item -LiteralPath $Path -Force -ErrorAction SilentlyContinue
    if (-not $item) { return $false }
    [bool]($item.Attributes -band [System.IO.FileAttributes]::ReparsePoint)
}

# ---------------------------------------------------------------------------------------
# Link-safe file system access under a profile.
#
# A user owns everything below their profile and can turn any folder or file there into a
# junction or symbolic link while the admin (or SYSTEM) code runs. Windows PowerShell 5.1's
# Get-ChildItem -Recurse follows directory junctions, and every open, copy or delete by
# path follows whatever the path names at that moment. So nothing below a profile is
# enumerated with Get-ChildItem -Recurse: the walk below reads one folder at a time and
# never descends into a reparse point, and callers re-check the item and its parent chain
# immediately before they open, copy, delete or restore it.
# ---------------------------------------------------------------------------------------

Function Get-M365PathAttribute {
    <#
    .SYNOPSIS
    The attributes of the item a path names itself (a link is not followed), or $null when
    nothing is there. One .NET call, kept apart so Pester can model Windows' answers.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$Path)
    try {
        [System.IO.File]::GetAttributes($Path)
    }
    catch [System.IO.FileNotFoundException], [System.IO.DirectoryNotFoundException] {
        $null
    }
}

Function Get-M365DirectoryEntry {
    <#
    .SYNOPSIS
    The direct children of one folder as FileSystemInfo objects (no recursion). Available
    on .NET Framework 4 (Windows PowerShell 5.1) and .NET Core alike.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$Path)
    $dir = New-Object -TypeName System.IO.DirectoryInfo -ArgumentList $Path
    foreach ($entry in $dir.EnumerateFileSystemInfos()) { $entry }
}

Function Split-M365ChainPath {
    # Root and every existing-or-not component from Root down to Path, in order. Profile
    # paths are Windows paths even when the logic runs on Linux in tests, so the separator
    # follows the root. Throws when Path is not below Root.
    param([Parameter(Mandatory)][string]$Path, [Parameter(Mandatory)][string]$Root)
    $sep = if ($Root -match '^[A-Za-z]:\\|^\\\\') { '\' } else { [string][System.IO.Path]::DirectorySeparatorChar }
    $rootTrim = $Root.TrimEnd('\', '/')
    $chain = [System.Collections.Generic.List[string]]::new()
    $chain.Add($rootTrim)
    if ($Path.TrimEnd('\', '/').Equals($rootTrim, [System.StringComparison]::OrdinalIgnoreCase)) { return , $chain.ToArray() }
    if (-not $Path.StartsWith($rootTrim + $sep, [System.StringComparison]::OrdinalIgnoreCase)) {
        throw [System.ArgumentException]::new("'$Path' is not inside '$Root'.")
    }
    $current = $rootTrim
    foreach ($seg in ($Path.Substring($rootTrim.Length + 1) -split '[\\/]')) {
        if ($seg -eq '') { continue }
        if ($seg -eq '.' -or $seg -eq '..') { throw [System.ArgumentException]::new("'$Path' has a '$seg' segment.") }
        $current = $current + $sep + $seg
        $chain.Add($current)
    }
    , $chain.ToArray()
}

Function Find-M365LinkInChain {
    <#
    .SYNOPSIS
    The first item from Root down to Path (both included) that is a junction or symbolic
    link, or $null when there is none. Items that do not exist end the check: nothing
    below a missing folder exists either.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param([Parameter(Mandatory)][string]$Path, [Parameter(Mandatory)][string]$Root)
    foreach ($item in (Split-M365ChainPath -Path $Path -Root $Root)) {
        $attr = Get-M365PathAttribute -Path $item
        if ($null -eq $attr) { return $null }
        if ($attr -band [System.IO.FileAttributes]::ReparsePoint) { return $item }
    }
    $null
}

Function Assert-M365NoLink {
    <#
    .SYNOPSIS
    Throws [System.Security.SecurityException] naming the link when Path or any folder
    between Root and Path is a junction or symbolic link. Call it immediately before each
    open, copy, delete or restore: the user may plant a link at any time.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$Path, [Parameter(Mandatory)][string]$Root)
    $link = Find-M365LinkInChain -Path $Path -Root $Root
    if ($null -ne $link) {
        $what = if ($link -eq $Path.TrimEnd('\', '/')) { 'is' } else { "is below '$link', which is" }
        throw [System.Security.SecurityException]::new("'$Path' $what a junction or symbolic link; refused, not followed")
    }
}

Function Get-M365SafeTreeFile {
    <#
    .SYNOPSIS
    The files below Root, walked one folder at a time without ever following a junction or
    symbolic link: [pscustomobject]@{ FullName; Relative; Length; LastWriteTimeUtc }.
    .DESCRIPTION
    Every link met (a folder or a file) is added to Refused as @{ path; reason } and
    skipped. Root itself and its chain from Base are checked first; a link there refuses
    the whole tree. Nothing is returned when Root does not exist.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][string]$Root,
        [string]$Base,
        [AllowNull()][System.Collections.IList]$Refused
    )
    if ($null -eq $Refused) { $Refused = [System.Collections.Generic.List[object]]::new() }
    if (-not $Base) { $Base = $Root }
    $link = Find-M365LinkInChain -Path $Root -Root $Base
    if ($null -ne $link) {
        $Refused.Add([ordered]@{ path = $link; reason = 'junction or symbolic link: not followed' }) | Out-Null
        return
    }
    $attr = Get-M365PathAttribute -Path $Root
    if ($null -eq $attr -or -not ($attr -band [System.IO.FileAttributes]::Directory)) { return }
    $rootTrim = $Root.TrimEnd('\', '/')
    $pending = [System.Collections.Generic.Stack[string]]::new()
    $pending.Push($rootTrim)
    while ($pending.Count -gt 0) {
        $dir = $pending.Pop()
        foreach ($entry in @(Get-M365DirectoryEntry -Path $dir)) {
            if ($entry.Attributes -band [System.IO.FileAttributes]::ReparsePoint) {
                $Refused.Add([ordered]@{ path = $entry.FullName; reason = 'junction or symbolic link: not followed' }) | Out-Null
                continue
            }
            if ($entry.Attributes -band [System.IO.FileAttributes]::Directory) {
                $pending.Push($entry.FullName)
                continue
            }
            [pscustomobject]@{
                FullName = $entry.FullName
                Relative = $entry.FullName.Substring($rootTrim.Length + 1)
                Length = [int64]$entry.Length
                LastWriteTimeUtc = $entry.LastWriteTimeUtc
            }
        }
    }
}

Function Remove-M365TreeNoFollow {
    <#
    .SYNOPSIS
    Deletes a folder tree without following links: a link inside is removed as a link,
    never descended into (Remove-Item -Recurse on 5.1 would empty a junction's target).
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][string]$Path)
    foreach ($entry in @(Get-M365DirectoryEntry -Path $Path)) {
        if (($entry.Attributes -band [System.IO.FileAttributes]::Directory) -and -not ($entry.Attributes -band [System.IO.FileAttributes]::ReparsePoint)) {
            Remove-M365TreeNoFollow -Path $entry.FullName
        }
        else {
            $entry.Delete()
        }
    }
    [System.IO.Directory]::Delete($Path, $false)
}

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
    if ($null -eq $User) { return '' }
    foreach ($name in 'UserName', 'user', 'Sid') {
        $value = if ($User -is [System.Collections.IDictionary]) { if ($User.Contains($name)) { $User[$name] } }
        elseif ($User.PSObject.Properties[$name]) { $User.$name }
        if ($value) { return [string]$value }
    }
    ''
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

Export-ModuleMember -Function Get-M365ProfileListEntry, Test-M365HiveLoaded, Get-M365InteractiveSid, `
    ConvertTo-M365AccountName, ConvertTo-M365Sid, Get-M365ProfileUpn, Get-M365UserProfile, `
    Resolve-M365User, Join-M365ProfilePath, Test-M365ReparsePoint, `
    Get-M365PathAttribute, Get-M365DirectoryEntry, Split-M365ChainPath, Find-M365LinkInChain, Assert-M365NoLink, Get-M365SafeTreeFile, Remove-M365TreeNoFollow, `
    Get-M365RungUser, Get-M365UserLabel, Get-M365RungFailure
