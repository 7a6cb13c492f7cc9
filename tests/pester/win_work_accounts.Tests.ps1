# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

BeforeAll {
    . (Join-Path $PSScriptRoot 'RungModuleHarness.ps1')
    Initialize-RungHarness

    Set-RungUser

    # Stand-ins for the Windows-facing helpers of the user-context script (WAM WinRT
    # calls, GetUserNameEx, dsregcmd, the OS build). The script defines its own only when
    # these are absent, so its selection and sign-out logic runs against this state.
    Function global:Get-M365SignInUpn { $global:FakeWam.SignInUpn }
    Function global:Get-M365OsBuildNumber { $global:FakeWam.Build }
    Function global:Get-M365WorkplaceJoined { $global:FakeWam.Wpj }
    Function global:Get-M365WamAccount([string]$ClientId) {
        $global:FakeWam.ClientIds += $ClientId
        foreach ($upn in $global:FakeWam.Accounts) { [pscustomobject]@{ Upn = $upn; Id = "id-$upn"; State = 'Connected'; Account = $null } }
    }
    Function global:Invoke-M365WamSignOut($Account, [string]$ClientId) {
        if ($global:FakeWam.FailSignOut -contains $Account.Upn) { throw 'The operation failed (0x80070520)' }
        $global:FakeWam.Accounts.Remove($Account.Upn) | Out-Null
    }
}

AfterAll {
    foreach ($f in 'Get-M365SignInUpn', 'Get-M365OsBuildNumber', 'Get-M365WorkplaceJoined', 'Get-M365WamAccount', 'Invoke-M365WamSignOut') {
        Remove-Item -Path "Function:\$f" -ErrorAction SilentlyContinue
    }
}

Describe 'win_work_accounts' {
    BeforeEach {
        Set-RungRepairRecordMock
        $global:FakeWam = @{
            SignInUpn = 'alice@contoso.com'
            Build = 22631
            Wpj = $false
            Accounts = [System.Collections.Generic.List[string]]@('alice@contoso.com', 'alice@fabrikam.com', 'ext.alice@northwind.example')
            FailSignOut = @()
            ClientIds = @()
        }
        Set-RungUserMock -UserTask
    }

    It 'signs out every account that differs from the Windows sign-in account' {
        $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice') } -DiffMode
        $r.changed | Should -BeTrue
        $r.users[0].primary | Should -Be 'alice@contoso.com'
        $r.users[0].removed | Should -Be @('alice@fabrikam.com', 'ext.alice@northwind.example')
        $global:FakeWam.Accounts | Should -Be @('alice@contoso.com')
        $r.diff.before.work_accounts.'CONTOSO\alice'.Count | Should -Be 3
        $r.diff.after.work_accounts.'CONTOSO\alice' | Should -Be @('alice@contoso.com')
        $global:FakeWam.ClientIds | Should -Be @('d3590ed6-52b3-4102-aeff-aad2292ab01c')
    }

    It 'is idempotent: a second run changes nothing' {
        $r = Assert-RungIdempotent -Name win_work_accounts -Params @{ users = @('alice') }
        $r.users[0].accounts | Should -Be @('alice@contoso.com')
    }

    It 'in check mode reports what would be removed and signs nothing out' {
        $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice') } -CheckMode
        $r.changed | Should -BeTrue
        $r.users[0].removed.Count | Should -Be 2
        $global:FakeWam.Accounts.Count | Should -Be 3
    }

    It 'removes only the listed accounts, case-insensitively, and never the primary one' {
        $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice'); accounts = @('ALICE@fabrikam.com', 'alice@contoso.com') }
        $r.users[0].removed | Should -Be @('alice@fabrikam.com')
        $global:FakeWam.Accounts | Should -Contain 'alice@contoso.com'
        $global:FakeWam.Accounts | Should -Contain 'ext.alice@northwind.example'
    }

    It 'leaves everything alone when the sign-in UPN is not among the accounts (alternate login ID)' {
        $global:FakeWam.SignInUpn = 'alice@corp.contoso.local'
        $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice') }
        $r.changed | Should -BeFalse
        $r.users[0].message | Should -Match 'pass primary_upn'
        $global:FakeWam.Accounts.Count | Should -Be 3
    }

    It 'uses primary_upn when given' {
        $global:FakeWam.SignInUpn = 'alice@corp.contoso.local'
        $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice'); primary_upn = 'alice@fabrikam.com' }
        $r.users[0].removed | Should -Be @('alice@contoso.com', 'ext.alice@northwind.example')
    }

    It 'leaves everything alone when the user has no UPN (local account)' {
        $global:FakeWam.SignInUpn = $null
        $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice') }
        $r.changed | Should -BeFalse
        $r.users[0].message | Should -Match 'no UPN'
    }

    It 'reports and leaves accounts alone on builds before 1803 (17134)' {
        $global:FakeWam.Build = 16299
        $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice') }
        $r.failed | Should -BeNullOrEmpty
        $r.changed | Should -BeFalse
        $r.users[0].status | Should -Be 'unsupported'
        $r.users[0].message | Should -Match 'Access work or school'
        $global:FakeWam.Accounts.Count | Should -Be 3
    }

    It 'points to Settings for a Workplace Join account' {
        $global:FakeWam.Wpj = $true
        $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice') }
        $r.users[0].workplace_joined | Should -BeTrue
        $r.users[0].message | Should -Match 'Workplace Join'
    }

    It 'fails naming the account whose sign-out failed' {
        $global:FakeWam.FailSignOut = @('ext.alice@northwind.example')
        $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice') }
        $r.failed | Should -BeTrue
        $r.msg | Should -Match 'ext.alice@northwind.example'
        $r.users[0].removed | Should -Be @('alice@fabrikam.com')
        $r.changed | Should -BeTrue -Because 'one account was signed out before the other failed'
    }

    It 'skips a user who is not logged on' {
        $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('bob') }
        $r.failed | Should -BeNullOrEmpty
        $r.users[0].status | Should -Be 'not_logged_on'
    }

    It 'fails before any task with require_logged_on and an absent user' {
        $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice', 'bob'); require_logged_on = $true }
        $r.failed | Should -BeTrue
        $r.msg | Should -Match '^require_logged_on: '
        Should -Invoke Invoke-M365TaskScript -ModuleName RungCommon -Times 0 -Exactly
    }

    It 'refuses <name> naming the option, before any task' -TestCases @(
        @{ name = 'a wildcard account'; params = @{ accounts = @('*@contoso.com') }; option = 'accounts' }
        @{ name = 'a non-UPN account'; params = @{ accounts = @('CONTOSO\alice') }; option = 'accounts' }
        @{ name = 'a malformed client id'; params = @{ client_id = 'office' }; option = 'client_id' }
        @{ name = 'primary_upn without one user'; params = @{ primary_upn = 'alice@contoso.com' }; option = 'primary_upn' }
        @{ name = 'a traversal user name'; params = @{ users = @('..\Administrator') }; option = 'users' }
    ) {
        $r = Invoke-RungModule -Name win_work_accounts -Params $params
        $r.failed | Should -BeTrue
        $r.msg | Should -Match "^$($option): "
        Should -Invoke Invoke-M365TaskScript -ModuleName RungCommon -Times 0 -Exactly
    }
}
