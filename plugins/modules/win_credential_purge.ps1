#!powershell

# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils.UserProfile
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils.ScheduledTaskRunner
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils.RungCommon

# Rung 1 (purge_office_credentials): delete the Office generic credentials from each
# selected user's Credential Manager vault. The vault belongs to the user's logon session,
# which a WinRM network logon cannot reach, so the enumeration and deletion run in a
# temporary task inside that session. cmdkey output is localised; CredEnumerate is not.

$spec = @{
    options = @{
        patterns = @{ type = 'list'; elements = 'str'; default = @('MicrosoftOffice1*') }
        allow_broad_patterns = @{ type = 'bool'; default = $false }
    }
    supports_check_mode = $true
}
# users, require_logged_on and timeout come from the shared user-rung spec.
$module = New-M365UserRungModule -Arguments $args -Spec $spec

# Runs in the user's session under Windows PowerShell 5.1 (the task runner's host).
# Returns target names only: the credential blob is never read.
$credentialScript = {
    param([string[]]$Regexes, [bool]$Delete)
    $ErrorActionPreference = 'Stop'
    if (-not ('M365Ops.CredVault' -as [type])) {
        Add-Type -TypeDefinition @'
using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.Runtime.InteropServices;
namespace M365Ops {
    public static class CredVault {
        [StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)]
        private struct CREDENTIAL {
            public UInt32 Flags;
            public UInt32 Type;
            public IntPtr TargetName;
            public IntPtr Comment;
            public System.Runtime.InteropServices.ComTypes.FILETIME LastWritten;
            public UInt32 CredentialBlobSize;
            public IntPtr CredentialBlob;
            public UInt32 Persist;
            public UInt32 AttributeCount;
            public IntPtr Attributes;
            public IntPtr TargetAlias;
            public IntPtr UserName;
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
    $matched = @([M365Ops.CredVault]::ListGenericTargets() | Where-Object {
            $target = $_
            @($Regexes | Where-Object { $target -match $_ }).Count -gt 0
        })
    $removed = @()
    $errors = @()
    if ($Delete) {
        foreach ($t in $matched) {
            try { [M365Ops.CredVault]::DeleteGeneric($t); $removed += $t }
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
    -Parameters @{ Regexes = $regexes; Delete = (-not $module.CheckMode) } -Fields @{ removed = @() } -Complete {
    param($entry, $output)
    $matched = @(Get-M365OutputProperty $output 'matched' @())
    $removed = if ($module.CheckMode) { $matched } else { @(Get-M365OutputProperty $output 'removed' @()) }
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
