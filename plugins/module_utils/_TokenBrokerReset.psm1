# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within this collection and may not remain
# stable to outside uses. Changes may be made in ANY release, even a bugfix release.

# Rung 3 (reset_token_broker). Microsoft's fix deletes the files under the two
# TokenBroker\Accounts folders; here they are moved into a quarantine (ACL SYSTEM +
# Administrators) with a manifest, so `state: restored` can put them back. Runs as the
# connecting administrator: the folders are found through ProfileList (never
# %LOCALAPPDATA%, which is the admin's own) and every path must stay inside the profile.
# The user owns those folders and may plant junctions and symbolic links in them at any
# time: nothing is enumerated, opened, copied, deleted or restored through a link (see
# the link-safe helpers in _UserProfile.psm1); what was refused is reported by path.
# Which users: named ones, or every profile only when all_profiles says so - a shared
# PC's other users must never be signed out by a default.

#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._UserProfile
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._RebootMarker
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._TokenBrokerQuarantine

Set-StrictMode -Version 2.0

Function Get-M365TokenBrokerOption {
    # The rung's own options: its module and win_activation_repair validate them.
    @{
        users = @{ type = 'list'; elements = 'str' }
        state = @{ type = 'str'; choices = @('absent', 'restored'); default = 'absent' }
        quarantine_id = @{ type = 'str' }
        quarantine_path = @{ type = 'path' }
        quarantine_retention_days = @{ type = 'int'; default = 30 }
        stop_broker = @{ type = 'bool'; default = $false }
        all_profiles = @{ type = 'bool'; default = $false }
    }
}

$ModuleName = 'win_token_broker_cache'
$Caches = [ordered]@{
    aad_broker_plugin = 'AppData\Local\Packages\Microsoft.AAD.BrokerPlugin_cw5n1h2txyewy\AC\TokenBroker\Accounts'
    cloud_experience_host = 'AppData\Local\Packages\Microsoft.Windows.CloudExperienceHost_cw5n1h2txyewy\AC\TokenBroker\Accounts'
}

Function Get-M365CacheRoot {
    # Both cache folders of one profile; Join-M365ProfilePath throws when a folder would
    # leave the profile (a junction planted by the user, say). Base is the profile: the
    # chain from it is checked again before each file operation.
    param ([Parameter(Mandatory)][object]$UserProfile)
    foreach ($name in $Caches.Keys) {
        @{ Cache = $name; Root = (Join-M365ProfilePath -UserProfile $UserProfile -ChildPath $Caches[$name]); Base = [string]$UserProfile.ProfilePath }
    }
}

Function Invoke-M365TokenBrokerReset {
    <#
    .SYNOPSIS
    Rung 3 (reset_token_broker): state=absent quarantines the selected users' TokenBroker
    caches, state=restored puts a quarantine back, for -Module (an AnsibleModule or a rung
    context, _RungContext.psm1); ends with its ExitJson or FailJson.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][object]$Module)
    $module.Result.changed = $false
    $module.Result.reboot_required = $false
    $module.Result.users = @()
    $module.Result.pruned = @()
    $module.Result.refused = @()

    # --- validation -------------------------------------------------------------------------
    $state = $module.Params.state
    $retention = $module.Params.quarantine_retention_days
    if ($retention -lt 0 -or $retention -gt 3650) {
        $module.FailJson("quarantine_retention_days: must be between 0 (keep forever) and 3650, got $retention")
    }
    $root = $module.Params.quarantine_path
    $defaultRoot = Get-M365QuarantineDefaultRoot
    $isDefaultRoot = $true
    if ($root) {
        if (-not [System.IO.Path]::IsPathRooted($root) -or @($root -split '[\\/]') -contains '..') {
            $module.FailJson("quarantine_path: '$root' must be an absolute path without '..'")
        }
        $isDefaultRoot = [string]::Equals([System.IO.Path]::GetFullPath($root).TrimEnd('\', '/'),
            [System.IO.Path]::GetFullPath($defaultRoot).TrimEnd('\', '/'), [System.StringComparison]::OrdinalIgnoreCase)
    }
    else {
        $root = $defaultRoot
    }
    $module.Result.quarantine_root = $root
    # Before anything else, in check mode too: the quarantine_path must be a new folder or one
    # this collection created, and no folder of its chain a link or someone else's.
    try {
        Assert-M365QuarantineRoot -Root $root -IsDefault $isDefaultRoot -ParameterName 'quarantine_path'
    }
    catch [System.ArgumentException] {
        $module.FailJson($_.Exception.Message)
    }

    if ($state -eq 'restored') {
        if ($null -ne $module.Params.users -or $module.Params.all_profiles) {
            $module.FailJson('users: not used with state=restored (nor all_profiles); a quarantine is restored as a whole')
        }
        try {
            $qPath = Get-M365QuarantinePath -Root $root -Id $module.Params.quarantine_id -ParameterName 'quarantine_id'
        }
        catch [System.ArgumentException] {
            $module.FailJson($_.Exception.Message)
        }
        if (-not (Test-Path -LiteralPath (Join-Path -Path $qPath -ChildPath 'manifest.json') -PathType Leaf)) {
            $module.FailJson("quarantine_id: no quarantine '$($module.Params.quarantine_id)' under $root")
        }
        $module.Result.quarantine_id = $module.Params.quarantine_id
        $module.Result.quarantine_path = $qPath

        $profilesBySid = @{}
        # A manifest entry may only go back into the cache folders of the profile it names,
        # resolved now - not wherever the manifest says. Profiles are read on first need.
        $allowedRoot = {
            param($sid)
            if ($profilesBySid.Count -eq 0) {
                foreach ($p in @(Get-M365UserProfile)) { $profilesBySid[$p.Sid] = $p }
            }
            if (-not $profilesBySid.ContainsKey($sid)) { throw "no user profile with SID $sid on this host" }
            Get-M365CacheRoot -UserProfile $profilesBySid[$sid] | ForEach-Object { [pscustomobject]@{ Root = $_.Root; Base = $_.Base } }
        }
        try {
            $restore = Restore-M365Quarantine -QuarantinePath $qPath -AllowedRoot $allowedRoot -CheckMode:$module.CheckMode
        }
        catch [System.Security.SecurityException] {
            $module.FailJson("quarantine_id: $($_.Exception.Message). Nothing was restored.")
        }
        $module.Result.files = $restore
        $restored = @($restore | Where-Object { $_.status -eq 'restored' })
        $module.Result.restored_count = $restored.Count
        $module.Result.changed = $restored.Count -gt 0
        $module.Diff.before = @{ restored = @() }
        $module.Diff.after = @{ restored = @($restored | ForEach-Object { $_.original_path }) }
        if ($restored.Count -gt 0) {
            # The broker has cached state in memory; it reads the restored files on restart.
            $module.Result.reboot_required = $true
            if (-not $module.CheckMode) {
                Set-M365RebootMarker -Source $ModuleName -Reason "TokenBroker caches restored from quarantine $($module.Params.quarantine_id)"
                # The caches the reset replaced are back: AAD errors from before it count again.
                Clear-M365RepairRecord -Rung 'reset_token_broker'
            }
        }
        $module.Result.refused = @($restore | Where-Object { $_.status -eq 'refused' } | ForEach-Object { [ordered]@{ path = $_.original_path; reason = $_.message } })
        $bad = @($restore | Where-Object { $_.status -in @('refused', 'hash_mismatch') })
        if ($bad.Count -gt 0) {
            $module.FailJson("quarantine_id: $($bad.Count) file(s) were not restored: $(($bad | ForEach-Object { "$($_.original_path): $($_.message)" }) -join '; ')")
        }
        foreach ($w in @($restore | Where-Object { $_.status -in @('conflict', 'missing') })) {
            $module.Warn("$($w.original_path): $($w.message)")
        }
        $module.ExitJson()
    }

    # --- state: absent ---------------------------------------------------------------------
    if ($module.Params.quarantine_id) {
        $module.FailJson('quarantine_id: only used with state=restored; state=absent creates a new quarantine')
    }
    $users = $module.Params.users
    if ($module.Params.all_profiles -and $null -ne $users) {
        $module.FailJson('users: give either users or all_profiles: true, not both')
    }
    if ($null -ne $users -and @($users).Count -eq 0) {
        # An empty list used to mean "everyone"; an empty selection must never widen.
        $module.FailJson('users: the list is empty; name the users whose TokenBroker caches to reset, or set all_profiles: true to reset every profile. Nothing was changed.')
    }
    if ($null -eq $users -and -not $module.Params.all_profiles) {
        $module.FailJson('users: name the users whose TokenBroker caches to reset (the remediate role passes the users its diagnosis found affected), or set all_profiles: true to reset every profile with cached accounts. Nothing was changed.')
    }
    try {
        $selected = Get-M365RungUser -Identity $users -ParameterName 'users'
    }
    catch [System.ArgumentException] {
        $module.FailJson($_.Exception.Message)
    }

    # Plan every user first: a path that leaves a profile fails the run before any file moves.
    $plan = foreach ($userProfile in $selected) {
        try {
            $roots = @(Get-M365CacheRoot -UserProfile $userProfile)
        }
        catch [System.ArgumentException] {
            $module.FailJson("users: $(Get-M365UserLabel $userProfile): $($_.Exception.Message); nothing was moved")
        }
        $counts = [ordered]@{}
        $bytes = [int64]0
        foreach ($r in $roots) {
            try {
                # Links met here are reported by the move below, which walks again.
                $files = @(Get-M365CacheFile -Root $r.Root -Base $r.Base -Refused ([System.Collections.Generic.List[object]]::new()))
                $counts[$r.Cache] = $files.Count
                foreach ($f in $files) { $bytes += [int64]$f.Length }
            }
            catch { $module.FailJson("users: $(Get-M365UserLabel $userProfile): cannot list $($r.Root): $($_.Exception.Message); nothing was moved") }
        }
        [pscustomobject]@{ Profile = $userProfile; Roots = $roots; Counts = $counts; Total = ($counts.Values | Measure-Object -Sum).Sum; Bytes = $bytes }
    }
    $plan = @($plan)
    if ($module.Params.all_profiles) {
        # Every profile that has something cached; the others have nothing to reset.
        $plan = @($plan | Where-Object { $_.Total -gt 0 })
    }

    $quarantineId = $null
    $qPath = $null
    if (-not $module.CheckMode -and @($plan | Where-Object { $_.Total -gt 0 }).Count -gt 0) {
        # Before any broker is stopped or file touched: a quarantine we cannot lock down is
        # no place for token caches.
        try {
            Assert-M365QuarantineSpace -Root $root -Bytes ([int64](($plan | ForEach-Object { $_.Bytes } | Measure-Object -Sum).Sum))
            $quarantineId = New-M365QuarantineId
            $qPath = New-M365Quarantine -Root $root -Id $quarantineId -IsDefault $isDefaultRoot
        }
        catch {
            $module.FailJson("quarantine_path: cannot prepare a quarantine under $($root): $($_.Exception.Message); nothing was moved")
        }
    }
    $before = [ordered]@{}
    $after = [ordered]@{}
    $results = foreach ($item in $plan) {
        $userProfile = $item.Profile
        $key = Get-M365UserLabel $userProfile
        $before[$key] = $item.Counts
        $entry = [ordered]@{ user = $userProfile.UserName; sid = $userProfile.Sid; status = 'unchanged'; files = @(); locked = @(); refused = @(); broker_stopped = $false; message = '' }
        if ($item.Total -eq 0) {
            $after[$key] = $item.Counts
            $entry
            continue
        }

        if ($module.Params.stop_broker) {
            $procs = @()
            if ($userProfile.UserName) { $procs = @(Get-M365BrokerProcess -UserName $userProfile.UserName) }
            if ($procs.Count -gt 0) {
                $entry.broker_stopped = $true
                if (-not $module.CheckMode) {
                    try { Stop-M365BrokerProcess -Process $procs }
                    catch { $entry.message = "could not stop the broker: $($_.Exception.Message)" }
                    # The broker releases its files as it exits; give it a moment.
                    Start-Sleep -Seconds 2
                }
            }
        }

        $move = Invoke-M365QuarantineMove -QuarantinePath $(if ($qPath) { $qPath } else { Join-Path $root 'check-mode' }) `
            -QuarantineId $(if ($quarantineId) { $quarantineId } else { 'check-mode' }) -UserSid $userProfile.Sid -UserName $userProfile.UserName `
            -Source $item.Roots -CheckMode:$module.CheckMode
        $entry.status = $move.status
        $entry.files = @($move.files | ForEach-Object {
                [ordered]@{ cache = $_.cache; original_path = $_.original_path; size = $_.size; sha256 = $_.sha256 }
            })
        $entry.locked = @($move.locked)
        $entry.refused = @($move.refused)
        if ($move.message) { $entry.message = (@($entry.message, $move.message) | Where-Object { $_ }) -join '; ' }
        if ($move.status -eq 'moved') {
            $zero = [ordered]@{}
            foreach ($c in $item.Counts.Keys) { $zero[$c] = 0 }
            $after[$key] = $zero
        }
        else {
            $after[$key] = $item.Counts
        }
        $entry
    }
    $results = @($results)

    $moved = @($results | Where-Object { $_.status -eq 'moved' })
    if ($qPath -and $moved.Count -eq 0 -and @($results | Where-Object { $_.status -eq 'failed' -and $_.files.Count -gt 0 }).Count -eq 0) {
        # Nothing went in (all locked or failed): no empty quarantine left behind. A failed
        # user with files listed has copies stranded there: that quarantine stays.
        Remove-M365TreeNoFollow -Path $qPath
        Remove-M365RebootMarkerValue -Path 'HKLM:\SOFTWARE\m365ops\activation\Quarantines' -Name $quarantineId
        $quarantineId = $null
        $qPath = $null
    }
    $module.Result.refused = @($results | ForEach-Object { $_.refused } | Where-Object { $_ })
    $module.Result.users = $results
    $module.Result.quarantine_id = $quarantineId
    $module.Result.quarantine_path = $qPath
    $module.Result.moved_count = [int](($moved | ForEach-Object { $_.files.Count } | Measure-Object -Sum).Sum)
    $module.Diff.before = @{ token_broker_files = $before }
    $module.Diff.after = @{ token_broker_files = $after }

    if ($moved.Count -gt 0) {
        $module.Result.changed = $true
        $module.Result.reboot_required = $true
        if (-not $module.CheckMode) {
            $what = "TokenBroker caches quarantined in $quarantineId"
            Set-M365RebootMarker -Source $ModuleName -Reason $what
            Set-M365RepairRecord -Rung 'reset_token_broker' -Summary $what
        }
    }

    $keep = @(if ($quarantineId) { $quarantineId })
    $module.Result.pruned = Remove-M365ExpiredQuarantine -Root $root -RetentionDays $retention -Keep $keep -CheckMode:$module.CheckMode
    if ($module.Result.pruned.Count -gt 0) { $module.Result.changed = $true }

    foreach ($l in @($results | Where-Object { $_.status -eq 'locked' })) {
        $module.Warn("$(Get-M365UserLabel $l): $($l.message)")
    }
    foreach ($r in @($module.Result.refused)) {
        $module.Warn("refused $($r.path): $($r.reason)")
    }
    $failure = Get-M365RungFailure -Result $results -Action 'TokenBroker quarantine'
    if ($failure) { $module.FailJson($failure) }
    if ($results.Count -eq 0) {
        $module.Result.msg = 'no TokenBroker account files found in any selected profile'
    }
    $module.ExitJson()
}

Export-ModuleMember -Function Get-M365TokenBrokerOption, Invoke-M365TokenBrokerReset
