# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# plugins/module_utils/_UserSession.psm1: the helpers a user-context task runs in the
# user's session for diagnose and the rungs. The P/Invoke vault class is replaced by a
# stand-in type of the same name (the helpers skip Add-Type when it exists) and WAM by
# mocks; the matching, the shipping as script text and its "define only when absent"
# rule run for real.

BeforeAll {
    $utils = Join-Path (Resolve-Path (Join-Path $PSScriptRoot '..' '..')) 'plugins' 'module_utils'
    foreach ($name in '_UserProfile', '_ScheduledTaskRunner', '_CredentialPattern', '_UserSession') {
        Import-Module (Join-Path $utils "$name.psm1") -Force
    }
    . (Join-Path $PSScriptRoot 'CredVaultStandIn.ps1')
    # Generic credential target names as Office, Teams and Windows write them.
    $script:Vault = @(
        'MicrosoftOffice16_Data:SSPI:alice@contoso.com'
        'MicrosoftOffice16_Data:[SSPI]:alice@contoso.com'
        'msteams_adalsso/adal_context_0'
        'virtualapp/didlogical'
    )
}

Describe 'Credential Manager helpers' {
    BeforeEach {
        [M365Ops.CredVault]::Store.Clear()
        [M365Ops.CredVault]::Locked.Clear()
        foreach ($t in $script:Vault) { [M365Ops.CredVault]::Store.Add($t) }
    }

    It 'selects the targets the purge regexes match, brackets literal' {
        $regex = Assert-M365CredentialPattern -Pattern @('MicrosoftOffice16_Data:[SSPI]*')
        @(Select-M365CredentialTarget -Regex $regex) | Should -Be @('MicrosoftOffice16_Data:[SSPI]:alice@contoso.com')
        $office = Assert-M365CredentialPattern -Pattern @('MicrosoftOffice1*')
        @(Select-M365CredentialTarget -Regex $office) | Should -Be @('MicrosoftOffice16_Data:SSPI:alice@contoso.com', 'MicrosoftOffice16_Data:[SSPI]:alice@contoso.com')
    }

    It 'selects nothing from an empty vault or without regexes' {
        [M365Ops.CredVault]::Store.Clear()
        @(Select-M365CredentialTarget -Regex @('^MicrosoftOffice1.*$')).Count | Should -Be 0
        [M365Ops.CredVault]::Store.Add('MicrosoftOffice16_Data:SSPI:alice@contoso.com')
        @(Select-M365CredentialTarget -Regex @()).Count | Should -Be 0
    }

    It 'deletes one target and reports a refusal as an error' {
        Remove-M365CredentialTarget -Target 'msteams_adalsso/adal_context_0'
        [M365Ops.CredVault]::Store | Should -Not -Contain 'msteams_adalsso/adal_context_0'
        [M365Ops.CredVault]::Locked.Add('virtualapp/didlogical')
        { Remove-M365CredentialTarget -Target 'virtualapp/didlogical' } | Should -Throw '*DeleteGeneric*'
        [M365Ops.CredVault]::Store | Should -Contain 'virtualapp/didlogical'
    }
}

Describe 'WAM helpers' {
    It 'signs an account out through WebAccount.SignOutAsync with the client id' {
        Mock -ModuleName _UserSession Wait-M365WamOperation { $global:WamWaited = $Operation }
        $account = [pscustomobject]@{ Upn = 'bob@fabrikam.com'; Id = 'id-bob'; State = 'Connected'
            Account = [pscustomobject]@{ } | Add-Member -MemberType ScriptMethod -Name SignOutAsync -Value { param($c) "signout:$c" } -PassThru }
        Invoke-M365WamSignOut -Account $account -ClientId 'd3590ed6-52b3-4102-aeff-aad2292ab01c'
        $global:WamWaited | Should -Be 'signout:d3590ed6-52b3-4102-aeff-aad2292ab01c'
        Should -Invoke -ModuleName _UserSession Wait-M365WamOperation -Times 1 -Exactly -ParameterFilter { $null -eq $ResultType }
    }

    It 'fails clearly where the WinRT WAM API does not exist' {
        # pwsh on Linux has no Windows.Security.Authentication.Web.Core: the diagnose task
        # records this message under WAM accounts instead of inventing an empty list.
        { Get-M365WamAccount -ClientId 'd3590ed6-52b3-4102-aeff-aad2292ab01c' } | Should -Throw
    }
}

Describe 'Get-M365UserSessionScript' {
    It 'is the helpers as text a fresh runspace defines, without comments' {
        $code = Get-M365UserSessionScript
        $code | Should -Not -Match '(?m)^\s*#'
        $code | Should -Not -Match '<#'
        $ps = [PowerShell]::Create()
        try {
            $null = $ps.AddScript($code + "`n" + @'
$names = 'Get-M365CredentialTarget', 'Select-M365CredentialTarget', 'Remove-M365CredentialTarget', 'Test-M365TargetMatch',
    'Get-M365SignInUpn', 'Get-M365WamAccount', 'Invoke-M365WamSignOut', 'Wait-M365WamOperation', 'Initialize-M365CredVault'
@($names | Where-Object { -not (Get-Command -Name $_ -CommandType Function -ErrorAction SilentlyContinue) })
Test-M365TargetMatch -Target 'MicrosoftOffice16_Data:SSPI:a@b.c' -Regex @('^MicrosoftOffice1.*$')
'@)
            $out = @($ps.Invoke())
            $ps.Streams.Error | Should -BeNullOrEmpty
            $out | Should -Be @($true)
        }
        finally { $ps.Dispose() }
    }

    It 'leaves a command that already exists alone, so a stand-in wins' {
        $code = Get-M365UserSessionScript
        $ps = [PowerShell]::Create()
        try {
            $null = $ps.AddScript("function Get-M365CredentialTarget { 'MicrosoftOffice16_Data:stand-in' }`n" + $code + "`nSelect-M365CredentialTarget -Regex @('^MicrosoftOffice1.*$')")
            $out = @($ps.Invoke())
            $ps.Streams.Error | Should -BeNullOrEmpty
            $out | Should -Be @('MicrosoftOffice16_Data:stand-in')
        }
        finally { $ps.Dispose() }
    }
}
