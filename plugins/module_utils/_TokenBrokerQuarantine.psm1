# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within this collection and may not remain
# stable to outside uses. Changes may be made in ANY release, even a bugfix release.

# The TokenBroker quarantine of win_token_broker_cache: move a user's cache files with a
# manifest, restore them with a SHA-256 check, prune old quarantines, and the AAD broker
# processes that hold the files open.

#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._UserProfile
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._RebootMarker

Set-StrictMode -Version 2.0

$script:QuarantineIdPattern = '^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$'

# Quarantine
#
# The quarantine runs as an administrator in two kinds of place: the users' profiles
# (hostile: see the link-safe helpers in _UserProfile.psm1) and the quarantine tree under
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
    if ($null -eq $manifest -or -not $manifest.PSObject.Properties['schema'] -or $manifest.schema -ne 1) {
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
    'Test-M365PathInside',
    'Test-M365QuarantineId',
    'New-M365QuarantineId',
    'Get-M365QuarantineDefaultRoot',
    'Get-M365QuarantinePath',
    'Get-M365PathOwnerSid',
    'Set-M365QuarantineAcl',
    'Test-M365QuarantineRootMark',
    'Get-M365QuarantineChain',
    'Assert-M365QuarantineRoot',
    'Initialize-M365QuarantineRoot',
    'Get-M365FileSha256',
    'Test-M365FileLocked',
    'Copy-M365CheckedFile',
    'New-M365CheckedDirectory',
    'Read-M365QuarantineManifest',
    'Write-M365QuarantineManifest',
    'Get-M365CacheFile',
    'Get-M365FreeSpace',
    'Assert-M365QuarantineSpace',
    'Invoke-M365QuarantineMove',
    'Remove-M365CacheFile',
    'New-M365Quarantine',
    'Restore-M365Quarantine',
    'Remove-M365ExpiredQuarantine',
    'Get-M365BrokerProcess',
    'Stop-M365BrokerProcess'
)
