# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within this collection and may not remain
# stable to outside uses. Changes may be made in ANY release, even a bugfix release.

# Rung 2 (remove_extra_work_accounts). The only supported per-account removal Windows
# offers a script is the Web Account Manager API (Windows 10 1803 / build 17134 and later):
# WebAuthenticationCoreManager.FindAllAccountsAsync lists the work/school accounts an app
# (Office's client id) can use, WebAccount.SignOutAsync signs one out - the mechanism of
# Microsoft's own signoutofwamaccounts.ps1. `dsregcmd /cleanupaccounts` deletes *all* WAM
# accounts and Settings > Access work or school is interactive, so neither is used here.
#
# A Workplace Join (Microsoft Entra registered) account outlives a sign-out: Windows keeps
# its registration under HKCU\...\WorkplaceJoin\JoinInfo\<certificate thumbprint> (with
# TenantInfo\<tenant id>) and its device certificate (issuer MS-Organization-Access) in the
# user's personal store. Windows has no public call that removes a registration
# (`dsregcmd /leave` acts on the device join only), so Settings' Disconnect is done in
# parts, in the user's session, after the account's WAM sign-out: certificate, then the
# registration (the record Windows reads last, so an interrupted run is finished by the
# next one). A registration in the tenant the device itself is joined to is never touched.
# On builds without the WAM API nothing is removed and the registrations are listed for
# Settings (docs/rungs/win_work_accounts.md).

#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._UserProfile
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._ScheduledTaskRunner
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._RebootMarker
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._Dsreg
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._UserRung
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._UserSession

Set-StrictMode -Version 2.0

Function Get-M365WorkAccountOption {
    # The rung's own options: its module and win_activation_repair validate them.
    @{
        accounts = @{ type = 'list'; elements = 'str' }
        primary_upn = @{ type = 'str' }
        client_id = @{ type = 'str'; default = 'd3590ed6-52b3-4102-aeff-aad2292ab01c' }
        disconnect_workplace_join = @{ type = 'bool'; default = $true }
    }
}

$MinimumBuild = 17134
$UpnPattern = '^[^@\s\\/\*\?]+@[^@\s\\/\*\?]+\.[^@\s\\/\*\?]+$'
# Where each disconnected registration is recorded (value <SID>_<thumbprint>, JSON).
$RecordKey = 'HKLM:\SOFTWARE\m365ops\activation\WorkplaceJoinDisconnected'
$WayBack = 'Settings > Accounts > Access work or school > Connect'

# Runs in the user's session under Windows PowerShell 5.1. The Windows-facing helpers are
# defined only when absent, so a test can supply stand-ins and still run the selection
# logic below them. Never removes the account Windows signed the user in with, nor a
# registration in the device's own tenant (or that registration's account). Comments that
# explain it live outside the block: it travels inline in the task's command line.
$workAccountScript = {
    param([string[]]$Remove, [string]$PrimaryUpn, [string]$ClientId, [bool]$Apply, [int]$MinimumBuild,
        [bool]$Disconnect, [string]$DeviceTenantId, [string]$DeviceJoinType, [string]$DeviceError, [string]$Session)
    $ErrorActionPreference = 'Stop'
    $wpjRoot = 'HKCU:\Software\Microsoft\Windows NT\CurrentVersion\WorkplaceJoin'

    # The sign-in name and WAM helpers of _UserSession.psm1 (each defined only when absent).
    if ($Session) { . ([scriptblock]::Create($Session)) }
    if (-not (Get-Command -Name Get-M365WorkplaceJoined -ErrorAction SilentlyContinue)) {
        function Get-M365WorkplaceJoined {
            $exe = [IO.Path]::Combine($env:SystemRoot, 'System32', 'dsregcmd.exe')
            [bool](& $exe /status | Select-String -Pattern '^\s*WorkplaceJoined\s*:\s*YES' -Quiet)
        }
    }
    if (-not (Get-Command -Name Get-M365OsBuildNumber -ErrorAction SilentlyContinue)) {
        function Get-M365OsBuildNumber {
            $cv = Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion' -ErrorAction SilentlyContinue
            if ($cv -and $cv.PSObject.Properties['CurrentBuildNumber']) { return [int]$cv.CurrentBuildNumber }
            [Environment]::OSVersion.Version.Build
        }
    }
    if (-not (Get-Command -Name Get-M365WpjRegistration -ErrorAction SilentlyContinue)) {
        function Get-M365WpjRegistration {
            $joinInfo = "$wpjRoot\JoinInfo"
            if (-not (Test-Path -LiteralPath $joinInfo)) { return }
            foreach ($k in @(Get-ChildItem -LiteralPath $joinInfo)) {
                $p = Get-ItemProperty -LiteralPath "$joinInfo\$($k.PSChildName)"
                $r = [ordered]@{ Thumbprint = $k.PSChildName; TenantId = ''; UserEmail = ''; IdpDomain = ''; TenantName = '' }
                foreach ($n in 'TenantId', 'UserEmail', 'IdpDomain') { if ($p.PSObject.Properties[$n]) { $r[$n] = [string]$p.$n } }
                if ($r.TenantId -match '^[0-9A-Fa-f-]{36}$' -and (Test-Path -LiteralPath "$wpjRoot\TenantInfo\$($r.TenantId)")) {
                    $t = Get-ItemProperty -LiteralPath "$wpjRoot\TenantInfo\$($r.TenantId)"
                    if ($t.PSObject.Properties['DisplayName']) { $r.TenantName = [string]$t.DisplayName }
                }
                [pscustomobject]$r
            }
        }
    }
    if (-not (Get-Command -Name Get-M365WpjCertificate -ErrorAction SilentlyContinue)) {
        function Get-M365WpjCertificate([string]$Thumbprint) {
            $store = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Store -ArgumentList 'My', 'CurrentUser'
            $store.Open([System.Security.Cryptography.X509Certificates.OpenFlags]::ReadOnly)
            try {
                foreach ($c in $store.Certificates) {
                    if ($c.Thumbprint -eq $Thumbprint) {
                        return [pscustomobject]@{ Thumbprint = $c.Thumbprint; Subject = $c.Subject; Issuer = $c.Issuer
                            NotBefore = $c.NotBefore.ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ'); NotAfter = $c.NotAfter.ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ') }
                    }
                }
            }
            finally { $store.Close() }
        }
    }
    if (-not (Get-Command -Name Remove-M365WpjCertificate -ErrorAction SilentlyContinue)) {
        function Remove-M365WpjCertificate([string]$Thumbprint, [string]$Issuer) {
            $store = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Store -ArgumentList 'My', 'CurrentUser'
            $store.Open([System.Security.Cryptography.X509Certificates.OpenFlags]::ReadWrite)
            try {
                foreach ($c in @($store.Certificates | Where-Object { $_.Thumbprint -eq $Thumbprint -and $_.Issuer -eq $Issuer })) { $store.Remove($c) }
            }
            finally { $store.Close() }
        }
    }
    if (-not (Get-Command -Name Remove-M365WpjRegistration -ErrorAction SilentlyContinue)) {
        function Remove-M365WpjRegistration([string]$Thumbprint, [string]$TenantId) {
            $joinInfo = "$wpjRoot\JoinInfo"
            Remove-Item -LiteralPath "$joinInfo\$Thumbprint" -Recurse -Force
            $tenantKey = "$wpjRoot\TenantInfo\$TenantId"
            if ($TenantId -notmatch '^[0-9A-Fa-f-]{36}$' -or -not (Test-Path -LiteralPath $tenantKey)) { return }
            $others = @(Get-ChildItem -LiteralPath $joinInfo | Where-Object {
                    $p = Get-ItemProperty -LiteralPath "$joinInfo\$($_.PSChildName)"
                    $p.PSObject.Properties['TenantId'] -and $p.TenantId -eq $TenantId })
            if ($others.Count -eq 0) { Remove-Item -LiteralPath $tenantKey -Recurse -Force }
        }
    }

    $build = Get-M365OsBuildNumber
    $out = @{ supported = $true; build = $build; primary = $null; accounts = @(); removed = @(); kept = @(); errors = @(); note = ''
        workplace_joined = $false; registrations = @(); disconnected = @(); refused = ''
    }
    try { $out.workplace_joined = Get-M365WorkplaceJoined } catch { $out.note = "dsregcmd: $($_.Exception.Message)" }

    $regs = @()
    try {
        $regs = @(Get-M365WpjRegistration | ForEach-Object {
                $cert = Get-M365WpjCertificate -Thumbprint $_.Thumbprint
                $deviceId = if ($cert -and $cert.Subject -match '(?:^|,\s*)CN=([^,]+)') { $Matches[1] } else { '' }
                [ordered]@{ thumbprint = $_.Thumbprint; tenant_id = $_.TenantId; tenant_name = $_.TenantName; user_email = $_.UserEmail
                    idp_domain = $_.IdpDomain; device_id = $deviceId; action = 'kept'; reason = ''
                    certificate = if ($cert) { [ordered]@{ subject = $cert.Subject; issuer = $cert.Issuer; not_before = $cert.NotBefore; not_after = $cert.NotAfter } } else { $null }
                }
            })
    }
    catch {
        $out.errors += "Workplace Join registrations could not be read, nothing was changed: $($_.Exception.Message)"
        return $out
    }
    $out.registrations = $regs
    if ($regs.Count -gt 0) { $out.workplace_joined = $true }
    if ($build -lt $MinimumBuild) {
        $out.supported = $false
        foreach ($r in $regs) { $r.reason = "Windows build $build has no WAM sign-out; disconnect it in Settings" }
        return $out
    }
    $primary = if ($PrimaryUpn) { $PrimaryUpn } else { Get-M365SignInUpn }
    $out.primary = $primary
    $accounts = @(Get-M365WamAccount -ClientId $ClientId)
    $out.accounts = @($accounts | ForEach-Object { @{ upn = $_.Upn; id = $_.Id; state = $_.State } })
    $inDeviceTenant = @($regs | Where-Object { $DeviceTenantId -and $_.tenant_id -eq $DeviceTenantId })
    $protected = @($inDeviceTenant | ForEach-Object { $_.user_email } | Where-Object { $_ })
    $explicit = $Remove -and $Remove.Count -gt 0

    if ($explicit) {
        $refusals = @()
        if ($primary -and $Remove -contains $primary) {
            $refusals += "$primary is this user's primary account (the Windows sign-in, or primary_upn); it is never signed out or disconnected"
        }
        if ($Disconnect) {
            foreach ($r in @($inDeviceTenant | Where-Object { $_.user_email -and $Remove -contains $_.user_email })) {
                $refusals += "$($r.user_email) is registered (Workplace Join) in tenant $($r.tenant_id), the tenant this device is $DeviceJoinType to; that registration and its account are never removed"
            }
        }
        if ($refusals.Count -gt 0) {
            $out.refused = 'accounts: ' + ($refusals -join '; ') + '. Nothing was changed for this user.'
            foreach ($r in $regs) { $r.reason = 'refused request: nothing was changed for this user' }
            $out.kept = @($accounts | ForEach-Object { $_.Upn })
            return $out
        }
    }

    $targets = @()
    if ($explicit) {
        $targets = @($accounts | Where-Object { $_.Upn -and ($Remove -contains $_.Upn) -and $_.Upn -ne $primary })
    }
    elseif (-not $primary) {
        $out.note = 'the sign-in account has no UPN (local or Microsoft account?); cannot tell extra accounts from the primary one, nothing removed'
    }
    elseif (-not @($accounts | Where-Object { $_.Upn -eq $primary })) {
        # The Windows UPN is not among the WAM accounts (alternate login ID, or the user
        # never signed in to Office): "differs from the primary" would match everything.
        $out.note = "the sign-in UPN $primary is not among the work accounts; pass primary_upn to name the primary account, nothing removed"
    }
    else {
        $targets = @($accounts | Where-Object { $_.Upn -ne $primary })
    }
    $targets = @($targets | Where-Object { $protected -notcontains $_.Upn })
    $out.kept = @($accounts | Where-Object { $_.Upn -notin @($targets | ForEach-Object { $_.Upn }) } | ForEach-Object { $_.Upn })

    $known = @($accounts | ForEach-Object { $_.Upn }) + @($regs | ForEach-Object { $_.user_email })
    $toDisconnect = @()
    foreach ($r in $regs) {
        $r.reason = if (-not $Disconnect) { 'disconnect_workplace_join is false' }
        elseif ($DeviceError) { "the device's join state could not be read ($DeviceError)" }
        elseif ($DeviceTenantId -and -not $r.tenant_id) { 'the registration names no tenant, so it cannot be told apart from the device''s own' }
        elseif ($DeviceTenantId -and $r.tenant_id -eq $DeviceTenantId) { "this device is $DeviceJoinType to this tenant; its registration is never disconnected" }
        elseif ($r.thumbprint -notmatch '^[0-9A-Fa-f]{40}$') { 'the registration key is not named by a certificate thumbprint; left alone' }
        elseif ($r.certificate -and $r.certificate.issuer -notmatch '(?:^|,\s*)CN=MS-Organization-Access(?:\s*,|$)') { "certificate $($r.thumbprint) is not issued by MS-Organization-Access; left alone" }
        elseif (-not $r.user_email) { 'the registration names no account' }
        elseif ($primary -and $r.user_email -eq $primary) { "$primary is this user's primary account" }
        elseif ($explicit) { if ($Remove -contains $r.user_email) { '' } else { 'not listed in accounts' } }
        elseif (-not $primary) { 'the sign-in account has no UPN; cannot tell an extra registration from the primary one' }
        elseif ($known -notcontains $primary) { "the sign-in UPN $primary is neither a work account nor registered; pass primary_upn" }
        else { '' }
        if (-not $r.reason) { $toDisconnect += $r }
    }

    $failedUpns = @()
    foreach ($t in $targets) {
        if (-not $Apply) { $out.removed += $t.Upn; continue }
        try {
            Invoke-M365WamSignOut -Account $t -ClientId $ClientId
            $out.removed += $t.Upn
        }
        catch {
            $out.errors += ('{0}: {1}' -f $t.Upn, $_.Exception.Message)
            $failedUpns += $t.Upn
        }
    }
    foreach ($r in $toDisconnect) {
        if ($failedUpns -contains $r.user_email) {
            $r.action = 'failed'; $r.reason = 'not disconnected: the WAM sign-out of its account failed'
            continue
        }
        if (-not $Apply) { $r.action = 'disconnected'; $out.disconnected += $r.user_email; continue }
        try {
            if ($r.certificate) { Remove-M365WpjCertificate -Thumbprint $r.thumbprint -Issuer $r.certificate.issuer }
            Remove-M365WpjRegistration -Thumbprint $r.thumbprint -TenantId $r.tenant_id
            $r.action = 'disconnected'
            $out.disconnected += $r.user_email
        }
        catch {
            $r.action = 'failed'; $r.reason = $_.Exception.Message
            $out.errors += ('{0} (Workplace Join, tenant {1}): {2}' -f $r.user_email, $r.tenant_id, $_.Exception.Message)
        }
    }
    $out
}

Function Get-M365WorkAccountDevice {
    <#
    .SYNOPSIS
    The device's own join, from the administrator's `dsregcmd /status`: @{ join_type;
    tenant_id; error }. A registration in tenant_id is never disconnected; when the state
    cannot be read (error), no registration is.
    #>
    $device = [ordered]@{ join_type = $null; tenant_id = $null; error = $null }
    try {
        $raw = Invoke-M365Dsregcmd -ArgumentList '/status'
        $parsed = ConvertFrom-M365DsregStatus -Text $raw.Output
        $device.join_type = Get-M365JoinType -Status $parsed
        if ($null -eq $device.join_type) {
            $device.error = "dsregcmd /status showed no device state (exit code $($raw.ExitCode))"
        }
        elseif ($device.join_type -in @('entra_joined', 'hybrid_joined')) {
            $tenant = [string](Get-M365DsregValue -Status $parsed -Key 'TenantId')
            $guid = [guid]::Empty
            if ([guid]::TryParse($tenant, [ref]$guid)) { $device.tenant_id = $guid.ToString() }
            else { $device.error = "dsregcmd /status shows the device $($device.join_type) but no tenant id ('$tenant')" }
        }
    }
    catch { $device.error = "dsregcmd /status failed: $($_.Exception.Message)" }
    $device
}

Function Get-M365RegistrationLabel {
    # How a registration reads in the diff and in messages.
    param ($Registration)
    $tenant = if ($Registration.tenant_name) { "$($Registration.tenant_name) ($($Registration.tenant_id))" } else { [string]$Registration.tenant_id }
    '{0} in {1}, certificate {2}' -f $Registration.user_email, $tenant, $Registration.thumbprint
}

Function Invoke-M365WorkAccountRemoval {
    <#
    .SYNOPSIS
    Rung 2 (remove_extra_work_accounts) for the users of -Module (an AnsibleModule or a rung
    context, _RungContext.psm1); ends with its ExitJson or FailJson.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][object]$Module)
    $module.Result.device = $null

    # --- validation -------------------------------------------------------------------------
    $clientId = $module.Params.client_id
    $guid = [guid]::Empty
    if (-not [guid]::TryParseExact($clientId, 'D', [ref]$guid)) {
        $module.FailJson("client_id: '$clientId' is not a GUID (e.g. d3590ed6-52b3-4102-aeff-aad2292ab01c)")
    }
    $remove = @()
    if ($module.Params.accounts) {
        foreach ($a in $module.Params.accounts) {
            if ($a -notmatch $UpnPattern) {
                $module.FailJson("accounts: '$a' is not a UPN (name@domain.tld; no wildcards)")
            }
        }
        $remove = @($module.Params.accounts)
    }
    $primaryUpn = $module.Params.primary_upn
    if ($primaryUpn) {
        if ($primaryUpn -notmatch $UpnPattern) {
            $module.FailJson("primary_upn: '$primaryUpn' is not a UPN (name@domain.tld)")
        }
        if (-not $module.Params.users -or $module.Params.users.Count -ne 1) {
            $module.FailJson('primary_upn: names one user''s primary account, so users must list exactly one user')
        }
        if ($remove -contains $primaryUpn) {
            $module.FailJson("accounts: '$primaryUpn' is primary_upn, the user's primary account; it is never signed out or disconnected. Nothing was changed.")
        }
    }

    # --- the device's own join (read only) ----------------------------------------------------
    $device = Get-M365WorkAccountDevice
    $module.Result.device = $device

    # --- per user ----------------------------------------------------------------------------
    $wpjBefore = [ordered]@{}
    $wpjAfter = [ordered]@{}
    $disconnectedBy = [System.Collections.Generic.List[object]]::new()
    $results = Invoke-M365UserRung -Module $module -ScriptBlock $workAccountScript -DiffKey 'work_accounts' -Parameters @{
        Remove = $remove; PrimaryUpn = $primaryUpn; ClientId = $clientId; Apply = (-not $module.CheckMode); MinimumBuild = $MinimumBuild
        Disconnect = [bool]$module.Params.disconnect_workplace_join; DeviceTenantId = [string]$device.tenant_id
        DeviceJoinType = [string]$device.join_type; Session = Get-M365UserSessionScript; DeviceError = [string]$device.error
    } -Fields ([ordered]@{ primary = $null; accounts = @(); removed = @(); workplace_joined = $false; workplace_join = @(); disconnected = @() }) -Complete {
        param($entry, $o)
        $entry.primary = Get-M365OutputProperty $o 'primary'
        $entry.accounts = @(Get-M365OutputProperty $o 'accounts' @() | ForEach-Object { Get-M365OutputProperty $_ 'upn' })
        $entry.removed = @(Get-M365OutputProperty $o 'removed' @())
        $entry.workplace_joined = [bool](Get-M365OutputProperty $o 'workplace_joined' $false)
        $entry.disconnected = @(Get-M365OutputProperty $o 'disconnected' @())
        $entry.workplace_join = @(Get-M365OutputProperty $o 'registrations' @() | ForEach-Object {
                $r = [ordered]@{}
                foreach ($k in 'thumbprint', 'tenant_id', 'tenant_name', 'user_email', 'device_id', 'certificate', 'action', 'reason') {
                    $r[$k] = Get-M365OutputProperty $_ $k
                }
                if ($r.action -eq 'disconnected') { $r.way_back = "$WayBack, sign in as $($r.user_email)" }
                $r
            })
        $errors = @(Get-M365OutputProperty $o 'errors' @())
        $note = [string](Get-M365OutputProperty $o 'note' '')
        $refused = [string](Get-M365OutputProperty $o 'refused' '')
        $gone = @($entry.workplace_join | Where-Object { $_.action -eq 'disconnected' })
        if (-not (Get-M365OutputProperty $o 'supported' $true)) {
            $entry.status = 'unsupported'
            $manual = @($entry.workplace_join | ForEach-Object { Get-M365RegistrationLabel $_ })
            $entry.message = "Windows build $(Get-M365OutputProperty $o 'build') has no supported per-account removal (needs $MinimumBuild, Windows 10 1803); disconnect accounts in Settings > Accounts > Access work or school$(if ($manual) { ' (Workplace Join: ' + ($manual -join '; ') + ')' }). Nothing was removed."
        }
        elseif ($refused) {
            $entry.status = 'failed'
            $entry.message = $refused
        }
        elseif ($errors.Count -gt 0) {
            $entry.status = 'failed'
            $entry.message = $errors -join '; '
        }
        else {
            $entry.status = if ($entry.removed.Count -gt 0 -or $gone.Count -gt 0) { 'changed' } else { 'unchanged' }
            $entry.message = $note
        }
        if ($gone.Count -gt 0) {
            $verb = if ($module.CheckMode) { 'would disconnect' } else { 'disconnected' }
            $done = "$verb Workplace Join: $(($gone | ForEach-Object { Get-M365RegistrationLabel $_ }) -join '; '); the way back is $WayBack"
            $entry.message = (@($entry.message, $done) | Where-Object { $_ }) -join '; '
        }
        $label = Get-M365UserLabel $entry
        $wpjBefore[$label] = @($entry.workplace_join | ForEach-Object { Get-M365RegistrationLabel $_ })
        $wpjAfter[$label] = @($entry.workplace_join | Where-Object { $_.action -ne 'disconnected' } | ForEach-Object { Get-M365RegistrationLabel $_ })
        foreach ($r in $gone) { $disconnectedBy.Add([pscustomobject]@{ Entry = $entry; Registration = $r }) }
        @{ before = $entry.accounts; after = @($entry.accounts | Where-Object { $_ -notin $entry.removed }); changed = ($entry.removed.Count + $gone.Count) -gt 0 }
    }
    $module.Diff.before.workplace_join = $wpjBefore
    $module.Diff.after.workplace_join = $wpjAfter

    # The registration is gone from the user's hive; this is what tells an administrator later
    # which account to reconnect (the way back is the user signing in again from Settings).
    if (-not $module.CheckMode) {
        foreach ($d in $disconnectedBy) {
            $r = $d.Registration
            $record = [ordered]@{
                at = [datetime]::UtcNow.ToString('yyyy-MM-ddTHH:mm:ssZ'); user = $d.Entry.user; sid = $d.Entry.sid
                user_email = $r.user_email; tenant_id = $r.tenant_id; tenant_name = $r.tenant_name; device_id = $r.device_id
                thumbprint = $r.thumbprint; certificate = $r.certificate; way_back = $r.way_back
            }
            try {
                Set-M365RebootMarkerValue -Path $RecordKey -Name "$($d.Entry.sid)_$($r.thumbprint)" -Value (ConvertTo-Json -InputObject $record -Depth 4 -Compress)
            }
            catch { $module.Warn("the record of the disconnected registration $($r.thumbprint) could not be written under ${RecordKey}: $($_.Exception.Message)") }
        }
    }
    Exit-M365UserRung -Module $module -Result $results -Action 'work account removal' -Rung 'remove_extra_work_accounts'
}

Export-ModuleMember -Function Get-M365WorkAccountOption, Invoke-M365WorkAccountRemoval
