#!powershell

# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils.UserProfile
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils.ScheduledTaskRunner
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils.RungCommon

# Rung 2 (remove_extra_work_accounts). The only supported per-account removal Windows
# offers a script is the Web Account Manager API (Windows 10 1803 / build 17134 and later):
# WebAuthenticationCoreManager.FindAllAccountsAsync lists the work/school accounts an app
# (Office's client id) can use, WebAccount.SignOutAsync signs one out - the mechanism of
# Microsoft's own signoutofwamaccounts.ps1. `dsregcmd /cleanupaccounts` deletes *all* WAM
# accounts and Settings > Access work or school is interactive, so neither is used here.
# On older builds the accounts are reported and left alone (docs/rungs/win_work_accounts.md).

$spec = @{
    options = @{
        accounts = @{ type = 'list'; elements = 'str' }
        primary_upn = @{ type = 'str' }
        client_id = @{ type = 'str'; default = 'd3590ed6-52b3-4102-aeff-aad2292ab01c' }
    }
    supports_check_mode = $true
}
# users, require_logged_on and timeout come from the shared user-rung spec.
$module = New-M365UserRungModule -Arguments $args -Spec $spec

$MinimumBuild = 17134
$UpnPattern = '^[^@\s\\/\*\?]+@[^@\s\\/\*\?]+\.[^@\s\\/\*\?]+$'

# Runs in the user's session under Windows PowerShell 5.1. The Windows-facing
# helpers are defined only when absent, so a test can supply stand-ins and still run the
# selection logic below them. Never removes the account Windows signed the user in with.
$workAccountScript = {
    param([string[]]$Remove, [string]$PrimaryUpn, [string]$ClientId, [bool]$Apply, [int]$MinimumBuild)
    $ErrorActionPreference = 'Stop'

    if (-not (Get-Command -Name Get-M365SignInUpn -ErrorAction SilentlyContinue)) {
        function Get-M365SignInUpn {
            if (-not ('M365Ops.SignIn' -as [type])) {
                Add-Type -TypeDefinition @'
using System.Runtime.InteropServices;
using System.Text;
namespace M365Ops {
    public static class SignIn {
        [DllImport("secur32.dll", CharSet = CharSet.Unicode, SetLastError = true)]
        private static extern bool GetUserNameExW(int nameFormat, StringBuilder name, ref uint size);
        public static string Upn() {
            uint size = 1024;
            StringBuilder sb = new StringBuilder((int)size);
            // 8 = NameUserPrincipal; fails for local accounts, which have no UPN.
            return GetUserNameExW(8, sb, ref size) ? sb.ToString() : null;
        }
    }
}
'@
            }
            [M365Ops.SignIn]::Upn()
        }
    }
    if (-not (Get-Command -Name Get-M365WamAccount -ErrorAction SilentlyContinue)) {
        Add-Type -AssemblyName System.Runtime.WindowsRuntime
        $null = [Windows.Security.Authentication.Web.Core.WebAuthenticationCoreManager, Windows.Security.Authentication.Web.Core, ContentType = WindowsRuntime]
        $null = [Windows.Security.Credentials.WebAccountProvider, Windows.Security.Credentials, ContentType = WindowsRuntime]
        $script:AsTaskOp = [System.WindowsRuntimeSystemExtensions].GetMethods() | Where-Object {
            $_.Name -eq 'AsTask' -and $_.GetParameters().Count -eq 1 -and $_.GetParameters()[0].ParameterType.Name -eq 'IAsyncOperation`1' } | Select-Object -First 1
        $script:AsTaskAction = [System.WindowsRuntimeSystemExtensions].GetMethods() | Where-Object {
            $_.Name -eq 'AsTask' -and $_.GetParameters().Count -eq 1 -and $_.GetParameters()[0].ParameterType.Name -eq 'IAsyncAction' } | Select-Object -First 1
        function Wait-M365Op($Operation, [type]$ResultType) {
            $task = $script:AsTaskOp.MakeGenericMethod($ResultType).Invoke($null, @($Operation))
            if (-not $task.Wait(60000)) { throw 'WAM call did not complete within 60 seconds' }
            $task.Result
        }
        function Get-M365WamAccount([string]$ClientId) {
            $provider = Wait-M365Op ([Windows.Security.Authentication.Web.Core.WebAuthenticationCoreManager]::FindAccountProviderAsync(
                    'https://login.microsoft.com', 'organizations')) ([Windows.Security.Credentials.WebAccountProvider])
            $found = Wait-M365Op ([Windows.Security.Authentication.Web.Core.WebAuthenticationCoreManager]::FindAllAccountsAsync(
                    $provider, $ClientId)) ([Windows.Security.Authentication.Web.Core.FindAllAccountsResult])
            if ("$($found.Status)" -ne 'Success') { throw "FindAllAccountsAsync returned $($found.Status)" }
            foreach ($a in $found.Accounts) {
                [pscustomobject]@{ Upn = $a.UserName; Id = $a.Id; State = "$($a.State)"; Account = $a }
            }
        }
        function Invoke-M365WamSignOut($Account, [string]$ClientId) {
            $task = $script:AsTaskAction.Invoke($null, @($Account.Account.SignOutAsync($ClientId)))
            if (-not $task.Wait(60000)) { throw 'SignOutAsync did not complete within 60 seconds' }
        }
    }
    if (-not (Get-Command -Name Get-M365WorkplaceJoined -ErrorAction SilentlyContinue)) {
        function Get-M365WorkplaceJoined {
            [bool](& dsregcmd.exe /status | Select-String -Pattern '^\s*WorkplaceJoined\s*:\s*YES' -Quiet)
        }
    }

    if (-not (Get-Command -Name Get-M365OsBuildNumber -ErrorAction SilentlyContinue)) {
        function Get-M365OsBuildNumber { [Environment]::OSVersion.Version.Build }
    }

    $build = Get-M365OsBuildNumber
    $out = @{ supported = $true; build = $build; primary = $null; accounts = @(); removed = @(); kept = @(); errors = @(); note = ''; workplace_joined = $false }
    try { $out.workplace_joined = Get-M365WorkplaceJoined } catch { $out.note = "dsregcmd: $($_.Exception.Message)" }
    if ($build -lt $MinimumBuild) {
        $out.supported = $false
        return $out
    }
    $primary = if ($PrimaryUpn) { $PrimaryUpn } else { Get-M365SignInUpn }
    $out.primary = $primary
    $accounts = @(Get-M365WamAccount -ClientId $ClientId)
    $out.accounts = @($accounts | ForEach-Object { @{ upn = $_.Upn; id = $_.Id; state = $_.State } })

    $targets = @()
    if ($Remove -and $Remove.Count -gt 0) {
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
    $out.kept = @($accounts | Where-Object { $_.Upn -notin @($targets | ForEach-Object { $_.Upn }) } | ForEach-Object { $_.Upn })

    foreach ($t in $targets) {
        if (-not $Apply) { $out.removed += $t.Upn; continue }
        try {
            Invoke-M365WamSignOut -Account $t -ClientId $ClientId
            $out.removed += $t.Upn
        }
        catch { $out.errors += ('{0}: {1}' -f $t.Upn, $_.Exception.Message) }
    }
    $out
}

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
}

# --- per user ----------------------------------------------------------------------------
$results = Invoke-M365UserRung -Module $module -ScriptBlock $workAccountScript -DiffKey 'work_accounts' -Parameters @{
    Remove = $remove; PrimaryUpn = $primaryUpn; ClientId = $clientId; Apply = (-not $module.CheckMode); MinimumBuild = $MinimumBuild
} -Fields ([ordered]@{ primary = $null; accounts = @(); removed = @(); workplace_joined = $false }) -Complete {
    param($entry, $o)
    $entry.primary = Get-M365OutputProperty $o 'primary'
    $entry.accounts = @(Get-M365OutputProperty $o 'accounts' @() | ForEach-Object { Get-M365OutputProperty $_ 'upn' })
    $entry.removed = @(Get-M365OutputProperty $o 'removed' @())
    $entry.workplace_joined = [bool](Get-M365OutputProperty $o 'workplace_joined' $false)
    $errors = @(Get-M365OutputProperty $o 'errors' @())
    $note = [string](Get-M365OutputProperty $o 'note' '')
    if (-not (Get-M365OutputProperty $o 'supported' $true)) {
        $entry.status = 'unsupported'
        $entry.message = "Windows build $(Get-M365OutputProperty $o 'build') has no supported per-account removal (needs $MinimumBuild, Windows 10 1803); disconnect accounts in Settings > Accounts > Access work or school. Nothing was removed."
    }
    elseif ($errors.Count -gt 0) {
        $entry.status = 'failed'
        $entry.message = "sign-out failed: $($errors -join '; ')"
    }
    else {
        $entry.status = if ($entry.removed.Count -gt 0) { 'changed' } else { 'unchanged' }
        $entry.message = $note
    }
    if ($entry.workplace_joined -and $entry.status -ne 'failed') {
        # SignOutAsync drops the account for Office; a Workplace Join (Entra registered)
        # account stays registered and only Settings or WPJCleanUp disconnects it.
        $entry.message = (@($entry.message, 'the user has a Workplace Join (Entra registered) account: disconnect it in Settings > Accounts > Access work or school if it is the extra one') | Where-Object { $_ }) -join '; '
    }
    @{ before = $entry.accounts; after = @($entry.accounts | Where-Object { $_ -notin $entry.removed }); changed = $entry.removed.Count -gt 0 }
}
Exit-M365UserRung -Module $module -Result $results -Action 'work account removal' -Rung 'remove_extra_work_accounts'
