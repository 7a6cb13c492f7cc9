# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within this collection and may not remain
# stable to outside uses. Changes may be made in ANY release, even a bugfix release.

# What a user-context task reads in the user's own session, written once for diagnose
# (win_activation_facts) and the rungs (win_credential_purge, win_work_accounts): the
# Credential Manager vault (CredEnumerate/CredDelete: cmdkey output is localised, and the
# secret is never read), the WAM work/school accounts an app can use, and the name the user
# signed in with. These functions run in the task's fresh Windows PowerShell 5.1, which has
# no utils: Get-M365UserSessionScript gives their text, which the task dot-sources.

#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._ScheduledTaskRunner

Set-StrictMode -Version 2.0

$script:SessionFunctions = @(
    'Initialize-M365CredVault'
    'Get-M365CredentialTarget'
    'Remove-M365CredentialTarget'
    'Test-M365TargetMatch'
    'Select-M365CredentialTarget'
    'Get-M365SignInUpn'
    'Wait-M365WamOperation'
    'Get-M365WamAccount'
    'Invoke-M365WamSignOut'
)

Function Initialize-M365CredVault {
    <# .SYNOPSIS Compiles M365Ops.CredVault once per process (tests supply a stand-in type). #>
    [CmdletBinding()]
    param()
    if ('M365Ops.CredVault' -as [type]) { return }
    Add-Type -TypeDefinition @'
using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.Runtime.InteropServices;
namespace M365Ops {
    public static class CredVault {
        [StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)]
        private struct CREDENTIAL {
            public UInt32 Flags; public UInt32 Type; public IntPtr TargetName; public IntPtr Comment;
            public System.Runtime.InteropServices.ComTypes.FILETIME LastWritten;
            public UInt32 CredentialBlobSize; public IntPtr CredentialBlob; public UInt32 Persist;
            public UInt32 AttributeCount; public IntPtr Attributes; public IntPtr TargetAlias; public IntPtr UserName;
        }
        [DllImport("advapi32.dll", CharSet = CharSet.Unicode, SetLastError = true)]
        private static extern bool CredEnumerateW(string filter, UInt32 flags, out UInt32 count, out IntPtr credentials);
        [DllImport("advapi32.dll", CharSet = CharSet.Unicode, SetLastError = true)]
        private static extern bool CredDeleteW(string target, UInt32 type, UInt32 flags);
        [DllImport("advapi32.dll")]
        private static extern void CredFree(IntPtr buffer);
        private const UInt32 CRED_TYPE_GENERIC = 1;
        private const int ERROR_NOT_FOUND = 1168;

        public static List<string> ListGenericTargets() {
            List<string> targets = new List<string>();
            UInt32 count;
            IntPtr creds;
            if (!CredEnumerateW(null, 0, out count, out creds)) {
                int err = Marshal.GetLastWin32Error();
                if (err == ERROR_NOT_FOUND) return targets;
                throw new Win32Exception(err);
            }
            try {
                for (int i = 0; i < count; i++) {
                    IntPtr p = Marshal.ReadIntPtr(creds, i * IntPtr.Size);
                    CREDENTIAL c = (CREDENTIAL)Marshal.PtrToStructure(p, typeof(CREDENTIAL));
                    if (c.Type == CRED_TYPE_GENERIC) targets.Add(Marshal.PtrToStringUni(c.TargetName));
                }
            }
            finally { CredFree(creds); }
            return targets;
        }

        public static void DeleteGeneric(string target) {
            if (!CredDeleteW(target, CRED_TYPE_GENERIC, 0)) {
                int err = Marshal.GetLastWin32Error();
                if (err == ERROR_NOT_FOUND) return;
                throw new Win32Exception(err);
            }
        }
    }
}
'@
}

Function Get-M365CredentialTarget {
    <#
    .SYNOPSIS
    Target names of the generic credentials in this session's vault (the kind Office,
    Teams and OneDrive save); the secrets are never read.
    #>
    [CmdletBinding()]
    [OutputType([string[]])]
    param()
    Initialize-M365CredVault
    [M365Ops.CredVault]::ListGenericTargets()
}

Function Remove-M365CredentialTarget {
    <# .SYNOPSIS Deletes one generic credential of this session's vault; gone already is fine. #>
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$Target)
    Initialize-M365CredVault
    [M365Ops.CredVault]::DeleteGeneric($Target)
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

Function Select-M365CredentialTarget {
    <#
    .SYNOPSIS
    The vault's generic credential targets matching any of the regexes of
    Assert-M365CredentialPattern (_CredentialPattern.psm1): what diagnose lists and what a
    purge deletes, read and matched by the same code.
    #>
    [CmdletBinding()]
    [OutputType([string[]])]
    param([AllowEmptyCollection()][string[]]$Regex)
    @(Get-M365CredentialTarget) | Where-Object { Test-M365TargetMatch -Target $_ -Regex $Regex }
}

Function Get-M365SignInUpn {
    <#
    .SYNOPSIS
    The user principal name this session signed in with (GetUserNameEx NameUserPrincipal);
    $null for a local account, which has none.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param()
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
            // 8 = NameUserPrincipal
            return GetUserNameExW(8, sb, ref size) ? sb.ToString() : null;
        }
    }
}
'@
    }
    [M365Ops.SignIn]::Upn()
}

Function Wait-M365WamOperation {
    <#
    .SYNOPSIS
    Waits for a WinRT async call of the Web Account Manager (at most 60 seconds); with
    ResultType for an IAsyncOperation (its result is returned), without for an IAsyncAction.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory)][object]$Operation, [type]$ResultType)
    $parameterType = if ($ResultType) { 'IAsyncOperation`1' } else { 'IAsyncAction' }
    $asTask = [System.WindowsRuntimeSystemExtensions].GetMethods() | Where-Object {
        $_.Name -eq 'AsTask' -and $_.GetParameters().Count -eq 1 -and $_.GetParameters()[0].ParameterType.Name -eq $parameterType } |
        Select-Object -First 1
    if ($ResultType) { $asTask = $asTask.MakeGenericMethod($ResultType) }
    $task = $asTask.Invoke($null, @($Operation))
    if (-not $task.Wait(60000)) { throw 'WAM did not answer within 60 seconds' }
    if ($ResultType) { $task.Result }
}

Function Get-M365WamAccount {
    <#
    .SYNOPSIS
    The work/school accounts the Web Account Manager offers an app (Office's client id):
    the list Office's account picker shows (Windows 10 1803 / build 17134 and later).
    [pscustomobject]@{ Upn; Id; State; Account } with State the WebAccountState name.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$ClientId)
    Add-Type -AssemblyName System.Runtime.WindowsRuntime
    $manager = [Windows.Security.Authentication.Web.Core.WebAuthenticationCoreManager, Windows.Security.Authentication.Web.Core, ContentType = WindowsRuntime]
    $null = [Windows.Security.Credentials.WebAccountProvider, Windows.Security.Credentials, ContentType = WindowsRuntime]
    $provider = Wait-M365WamOperation -Operation ($manager::FindAccountProviderAsync('https://login.microsoft.com', 'organizations')) `
        -ResultType ([Windows.Security.Credentials.WebAccountProvider])
    $found = Wait-M365WamOperation -Operation ($manager::FindAllAccountsAsync($provider, $ClientId)) `
        -ResultType ([Windows.Security.Authentication.Web.Core.FindAllAccountsResult])
    if ("$($found.Status)" -ne 'Success') { throw "FindAllAccountsAsync returned $($found.Status)" }
    foreach ($a in $found.Accounts) {
        [pscustomobject]@{ Upn = [string]$a.UserName; Id = $a.Id; State = "$($a.State)"; Account = $a }
    }
}

Function Invoke-M365WamSignOut {
    <# .SYNOPSIS Signs one account of Get-M365WamAccount out of the app (WebAccount.SignOutAsync). #>
    [CmdletBinding()]
    param([Parameter(Mandatory)][object]$Account, [Parameter(Mandatory)][string]$ClientId)
    Wait-M365WamOperation -Operation ($Account.Account.SignOutAsync($ClientId))
}

Function Get-M365UserSessionScript {
    <#
    .SYNOPSIS
    The functions above as one script text, for a user-context task to dot-source. Each is
    defined only when no command of its name exists, so tests can supply stand-ins.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param()
    ConvertTo-M365TaskFunctionScript -IfAbsent -Function @(foreach ($name in $script:SessionFunctions) { Get-Item -LiteralPath "function:$name" })
}

Export-ModuleMember -Function @(
    'Initialize-M365CredVault', 'Get-M365CredentialTarget', 'Remove-M365CredentialTarget', 'Test-M365TargetMatch',
    'Select-M365CredentialTarget', 'Get-M365SignInUpn', 'Wait-M365WamOperation', 'Get-M365WamAccount',
    'Invoke-M365WamSignOut', 'Get-M365UserSessionScript'
)
