# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

BeforeAll {
    . (Join-Path $PSScriptRoot 'RungModuleHarness.ps1')
    Initialize-RungHarness

    # Stand-in for the vault class (M365Ops.CredVault) the user-session helpers compile.
    . (Join-Path $PSScriptRoot 'CredVaultStandIn.ps1')

    Set-RungUser

    # Target names as Office writes them (Generic credentials in the user's vault).
    $script:Vault = @(
        'MicrosoftOffice16_Data:SSPI:alice@contoso.com'
        'MicrosoftOffice16_Data:ADAL:4b1f0a3e-6a4c-4b5e-9a55-9a1f8e0f3c21'
        'MicrosoftOffice15_Data:orgid:alice@contoso.com'
        'msteams_adalsso/adal_context_0'
        'OneDrive Cached Credential Business - Business1'
        'virtualapp/didlogical'
        'Microsoft_OC1:uri=alice@contoso.com:specific:OAUTH:1'
    )
}

Describe 'win_credential_purge' {
    BeforeEach {
        Set-RungRepairRecordMock
        [M365Ops.CredVault]::Store.Clear()
        [M365Ops.CredVault]::Locked.Clear()
        foreach ($t in $script:Vault) { [M365Ops.CredVault]::Store.Add($t) }
        Set-RungUserMock -UserTask
    }

    Context 'pattern safety' {
        It 'refuses <pattern> without allow_broad_patterns and touches nobody' -TestCases @(
            @{ pattern = '*' }, @{ pattern = '**' }, @{ pattern = '' }, @{ pattern = '?*' }, @{ pattern = ' * ' }
        ) {
            $r = Invoke-RungModule -Name win_credential_purge -Params @{ patterns = @('MicrosoftOffice1*', $pattern) }
            $r.failed | Should -BeTrue
            $r.msg | Should -Match '^patterns: .*allow_broad_patterns is true$'
            Should -Invoke Invoke-M365TaskScript -ModuleName _UserRung -Times 0 -Exactly
            [M365Ops.CredVault]::Store.Count | Should -Be $script:Vault.Count
        }

        It 'accepts a broad pattern when allow_broad_patterns is true' {
            $r = Invoke-RungModule -Name win_credential_purge -Params @{ patterns = @('*'); allow_broad_patterns = $true }
            $r.failed | Should -BeNullOrEmpty
            $r.users[0].removed.Count | Should -Be $script:Vault.Count
        }

        It 'treats [ as a literal character, not a wildcard class' {
            $rx = ConvertTo-M365TargetRegex -Pattern 'App[1]*'
            'App[1]x' | Should -Match $rx
            'App1x' | Should -Not -Match $rx
        }
    }

    Context 'user validation' {
        It 'refuses a user name with path characters (<user>) before any task runs' -TestCases @(
            @{ user = '..\..\Windows' }, @{ user = 'C:\Users\alice' }, @{ user = 'ali*' }, @{ user = '' }
        ) {
            $r = Invoke-RungModule -Name win_credential_purge -Params @{ users = @('alice', $user) }
            $r.failed | Should -BeTrue
            $r.msg | Should -Match '^users: '
            Should -Invoke Invoke-M365TaskScript -ModuleName _UserRung -Times 0 -Exactly
        }

        It 'refuses an unknown user naming it' {
            $r = Invoke-RungModule -Name win_credential_purge -Params @{ users = @('mallory') }
            $r.failed | Should -BeTrue
            $r.msg | Should -Match "users: Identity 'mallory' is unknown"
        }

        It 'refuses a timeout out of range' {
            $r = Invoke-RungModule -Name win_credential_purge -Params @{ timeout = 0 }
            $r.failed | Should -BeTrue
            $r.msg | Should -Match '^timeout: '
        }
    }

    Context 'purge' {
        It 'removes only the Office credentials by default and reports target names, never secrets' {
            $r = Invoke-RungModule -Name win_credential_purge -Params @{ users = @('alice') } -DiffMode
            $r.changed | Should -BeTrue
            $r.reboot_required | Should -BeFalse
            $r.users[0].status | Should -Be 'changed'
            $r.users[0].removed | Should -Be @(
                'MicrosoftOffice16_Data:SSPI:alice@contoso.com'
                'MicrosoftOffice16_Data:ADAL:4b1f0a3e-6a4c-4b5e-9a55-9a1f8e0f3c21'
                'MicrosoftOffice15_Data:orgid:alice@contoso.com')
            $r.removed_count | Should -Be 3
            [M365Ops.CredVault]::Store | Should -Contain 'msteams_adalsso/adal_context_0'
            [M365Ops.CredVault]::Store | Should -Not -Contain 'MicrosoftOffice16_Data:SSPI:alice@contoso.com'
            $r.diff.before.credential_targets.'CONTOSO\alice'.Count | Should -Be 3
            $r.diff.after.credential_targets.'CONTOSO\alice'.Count | Should -Be 0
            Should -Invoke Invoke-M365TaskScript -ModuleName _UserRung -Times 1 -Exactly -ParameterFilter { $RunAs -eq 'User' -and $UserSid -eq $global:RungAlice.Sid -and $TimeoutSeconds -eq 120 }
            # The repair is recorded so the next diagnosis stops counting the errors it answered.
            $global:RungRepairs | Should -HaveCount 1
            $global:RungRepairs[0].Rung | Should -Be 'purge_office_credentials'
            $global:RungRepairs[0].Summary | Should -Be 'credential purge for CONTOSO\alice'
        }

        It 'records the SID of a user whose SID does not translate (no empty name after "for")' {
            # A profile whose account was deleted or whose domain cannot be reached: no user name.
            $orphan = New-TestProfile -Sid 'S-1-5-21-1004336348-1177238915-682003330-1107' -UserName '' -ProfilePath 'C:\Users\TEMP.1107'
            $global:RungUsers = @($orphan)
            try {
                $r = Invoke-RungModule -Name win_credential_purge
                $r.changed | Should -BeTrue
                $r.users[0].sid | Should -Be $orphan.Sid
                $global:RungRepairs | Should -HaveCount 1
                $global:RungRepairs[0].Summary | Should -Be "credential purge for $($orphan.Sid)"
            }
            finally {
                Set-RungUser
            }
        }

        It 'is idempotent: a second run changes nothing' {
            $r = Assert-RungIdempotent -Name win_credential_purge -Params @{ users = @('alice') }
            $r.users[0].removed | Should -BeNullOrEmpty
            $global:RungRepairs | Should -HaveCount 1 -Because 'the run that removed nothing records no repair'
        }

        It 'honours extra patterns' {
            $r = Invoke-RungModule -Name win_credential_purge -Params @{ users = @('alice'); patterns = @('MicrosoftOffice1*', 'msteams*', 'OneDrive Cached Credential*', 'Microsoft_OC*') }
            $r.removed_count | Should -Be 6
            [M365Ops.CredVault]::Store | Should -Be @('virtualapp/didlogical')
        }

        It 'in check mode reports what would go and deletes nothing' {
            $r = Invoke-RungModule -Name win_credential_purge -Params @{ users = @('alice') } -CheckMode
            $r.changed | Should -BeTrue
            $r.users[0].removed.Count | Should -Be 3
            [M365Ops.CredVault]::Store.Count | Should -Be $script:Vault.Count
            Should -Invoke Invoke-M365TaskScript -ModuleName _UserRung -ParameterFilter { $Parameters.Delete -eq $false }
            $global:RungRepairs | Should -HaveCount 0
        }

        It 'fails naming the target when a delete is refused, keeping the others removed' {
            [M365Ops.CredVault]::Locked.Add('MicrosoftOffice15_Data:orgid:alice@contoso.com')
            $r = Invoke-RungModule -Name win_credential_purge -Params @{ users = @('alice') }
            $r.failed | Should -BeTrue
            $r.msg | Should -Match 'MicrosoftOffice15_Data:orgid'
            $r.users[0].status | Should -Be 'failed'
            $r.users[0].removed.Count | Should -Be 2
            $r.changed | Should -BeTrue -Because 'two credentials were deleted before the locked one failed'
            $global:RungRepairs | Should -HaveCount 0 -Because 'the failed user is not repaired; the next run tries again'
        }
    }

    Context 'sessions' {
        It 'defaults to the logged-on users only' {
            $r = Invoke-RungModule -Name win_credential_purge
            $r.users.Count | Should -Be 1
            $r.users[0].user | Should -Be 'CONTOSO\alice'
        }

        It 'reports a named user who is not logged on as skipped, without failing' {
            $r = Invoke-RungModule -Name win_credential_purge -Params @{ users = @('alice', 'bob') }
            $r.failed | Should -BeNullOrEmpty
            ($r.users | Where-Object { $_.user -eq 'CONTOSO\bob' }).status | Should -Be 'not_logged_on'
            ($r.users | Where-Object { $_.user -eq 'CONTOSO\alice' }).status | Should -Be 'changed'
        }

        It 'fails before changing anything when require_logged_on is set and a user is absent' {
            $r = Invoke-RungModule -Name win_credential_purge -Params @{ users = @('alice', 'bob'); require_logged_on = $true }
            $r.failed | Should -BeTrue
            $r.msg | Should -Match '^require_logged_on: not logged on: CONTOSO\\bob'
            Should -Invoke Invoke-M365TaskScript -ModuleName _UserRung -Times 0 -Exactly
            [M365Ops.CredVault]::Store.Count | Should -Be $script:Vault.Count
        }

        It 'fails when the user-context task times out' {
            Mock -ModuleName _UserRung Invoke-M365TaskScript { New-TaskResult -Status 'timeout' -Message 'The User task did not finish within 120 seconds and was stopped.' }
            $r = Invoke-RungModule -Name win_credential_purge -Params @{ users = @('alice') }
            $r.failed | Should -BeTrue
            $r.users[0].status | Should -Be 'failed'
            $r.users[0].message | Should -Match 'timeout'
            $r.changed | Should -BeFalse
        }
    }
}

Describe 'credential patterns: one rule for diagnose and purge' {
    BeforeAll {
        . (Join-Path $PSScriptRoot 'RungModuleHarness.ps1')
        Initialize-RungHarness
    }

    It 'refuses <Pattern>: no literal prefix of three characters' -ForEach @(
        @{ Pattern = '*.*' }, @{ Pattern = '*:*' }, @{ Pattern = '*e*' }, @{ Pattern = 'Mi*' }, @{ Pattern = '?icrosoftOffice*' }, @{ Pattern = ' *' }
    ) {
        { Assert-M365CredentialPattern -Pattern @($Pattern) -ParameterName 'patterns' } |
            Should -Throw -ExceptionType ([System.ArgumentException]) -ExpectedMessage "patterns: pattern '$Pattern' has no literal prefix*"
    }

    It 'accepts an Office prefix, and a broad pattern only with allow_broad_patterns' {
        Assert-M365CredentialPattern -Pattern @('MicrosoftOffice1*') | Should -Be @('^MicrosoftOffice1.*$')
        Assert-M365CredentialPattern -Pattern @('*.*') -AllowBroad $true | Should -Be @('^.*\..*$')
    }

    It 'matches brackets literally, where -like would read a character class' {
        $regex = Assert-M365CredentialPattern -Pattern @('MicrosoftOffice16_Data:[SSPI]*')
        Test-M365TargetMatch -Target 'MicrosoftOffice16_Data:[SSPI]:alice@contoso.com' -Regex $regex | Should -BeTrue
        Test-M365TargetMatch -Target 'MicrosoftOffice16_Data:S:alice@contoso.com' -Regex $regex | Should -BeFalse
        ('MicrosoftOffice16_Data:S:alice@contoso.com' -like 'MicrosoftOffice16_Data:[SSPI]*') | Should -BeTrue -Because 'this is the disagreement the shared matcher removes'
    }
}
