# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

BeforeAll {
    . (Join-Path $PSScriptRoot 'RungModuleHarness.ps1')
    Initialize-RungHarness

    Set-RungUser

    # Stand-ins for the Windows-facing helpers of the user-context script (WAM WinRT
    # calls, GetUserNameEx, dsregcmd, the OS build, the user's WorkplaceJoin registry keys
    # and personal certificate store). The script defines its own only when these are
    # absent, so its selection, refusal and removal logic runs against this state.
    Function global:Get-M365SignInUpn { $global:FakeWam.SignInUpn }
    Function global:Get-M365OsBuildNumber { $global:FakeWam.Build }
    Function global:Get-M365WorkplaceJoined { $global:FakeWpj.Registrations.Count -gt 0 }
    Function global:Get-M365WamAccount([string]$ClientId) {
        $global:FakeWam.ClientIds += $ClientId
        foreach ($upn in $global:FakeWam.Accounts) { [pscustomobject]@{ Upn = $upn; Id = "id-$upn"; State = 'Connected'; Account = $null } }
    }
    Function global:Invoke-M365WamSignOut($Account, [string]$ClientId) {
        if ($global:FakeWam.FailSignOut -contains $Account.Upn) { throw 'The operation failed (0x80070520)' }
        $global:FakeWam.Accounts.Remove($Account.Upn) | Out-Null
    }
    # JoinInfo\<thumbprint> values (TenantId, UserEmail, IdpDomain) with TenantInfo's DisplayName.
    Function global:Get-M365WpjRegistration {
        foreach ($r in $global:FakeWpj.Registrations) {
            [pscustomobject]@{ Thumbprint = $r.Thumbprint; TenantId = $r.TenantId; UserEmail = $r.UserEmail; IdpDomain = 'login.windows.net'; TenantName = $r.TenantName }
        }
    }
    Function global:Get-M365WpjCertificate([string]$Thumbprint) {
        if ($global:FakeWpj.Certificates.Contains($Thumbprint)) { $global:FakeWpj.Certificates[$Thumbprint] }
    }
    Function global:Remove-M365WpjCertificate([string]$Thumbprint, [string]$Issuer) {
        $global:FakeWpj.Calls.Add("certificate $Thumbprint $Issuer")
        if ($global:FakeWpj.FailCertificate -contains $Thumbprint) { throw 'Access is denied. (0x80070005)' }
        $global:FakeWpj.Certificates.Remove($Thumbprint)
    }
    Function global:Remove-M365WpjRegistration([string]$Thumbprint, [string]$TenantId) {
        $global:FakeWpj.Calls.Add("registration $Thumbprint $TenantId")
        $global:FakeWpj.Registrations = [System.Collections.Generic.List[object]]@($global:FakeWpj.Registrations | Where-Object { $_.Thumbprint -ne $Thumbprint })
    }

    $script:Contoso = '4d1c6a4e-2f8b-4b1e-9a53-7c0f2e9d1b64'
    $script:Fabrikam = 'a7e3b9d2-61c4-4f0e-8d2a-39b5c7e1f480'
    $script:ContosoThumb = '44C1A9E07B2D3F5A6C8E9D0B1A2C3E4F5061728A'
    $script:FabrikamThumb = 'B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5'
    $script:AdminThumb = '0DD5553E61DDFCC9E3A76F0165BFEBAB26D531CF'

    # `dsregcmd /status` as the administrator's network logon prints it (docs/triage.md).
    $script:WorkgroupStatus = @'

+----------------------------------------------------------------------+
| Device State                                                         |
+----------------------------------------------------------------------+

             AzureAdJoined : NO
          EnterpriseJoined : NO
              DomainJoined : NO
           Virtual Desktop : NOT SET

+----------------------------------------------------------------------+
| User State                                                           |
+----------------------------------------------------------------------+

                    NgcSet : NO
           WorkplaceJoined : NO
             WamDefaultSet : ERROR (0x80070520)

'@
    $script:HybridStatus = @'

+----------------------------------------------------------------------+
| Device State                                                         |
+----------------------------------------------------------------------+

             AzureAdJoined : YES
          EnterpriseJoined : NO
              DomainJoined : YES
                DomainName : CONTOSO
               Device Name : PC042.contoso.com

+----------------------------------------------------------------------+
| Device Details                                                       |
+----------------------------------------------------------------------+

                  DeviceId : c63c6ee8-d0b6-42de-b450-7358de61304f
                Thumbprint : 0DD5553E61DDFCC9E3A76F0165BFEBAB26D531CF
 DeviceCertificateValidity : [ 2025-04-18 02:14:17.000 UTC -- 2035-04-18 02:44:17.000 UTC ]
            KeyContainerId : 78e79402-0abc-40f7-8f9e-e84876890bce
               KeyProvider : Microsoft Platform Crypto Provider
              TpmProtected : YES
          DeviceAuthStatus : SUCCESS

+----------------------------------------------------------------------+
| Tenant Details                                                       |
+----------------------------------------------------------------------+

                TenantName : Contoso
                  TenantId : 4d1c6a4e-2f8b-4b1e-9a53-7c0f2e9d1b64
               AuthCodeUrl : https://login.microsoftonline.com/4d1c6a4e-2f8b-4b1e-9a53-7c0f2e9d1b64/oauth2/authorize

'@

    Function New-FakeRegistration([string]$Thumbprint, [string]$TenantId, [string]$TenantName, [string]$UserEmail, [string]$DeviceId,
        [string]$Issuer = 'CN=MS-Organization-Access', [switch]$NoCertificate) {
        $global:FakeWpj.Registrations.Add([pscustomobject]@{ Thumbprint = $Thumbprint; TenantId = $TenantId; TenantName = $TenantName; UserEmail = $UserEmail })
        if (-not $NoCertificate) {
            $global:FakeWpj.Certificates[$Thumbprint] = [pscustomobject]@{ Thumbprint = $Thumbprint; Subject = "CN=$DeviceId"; Issuer = $Issuer
                NotBefore = '2026-02-14T09:30:00Z'; NotAfter = '2036-02-14T10:00:00Z' }
        }
    }
}

AfterAll {
    foreach ($f in 'Get-M365SignInUpn', 'Get-M365OsBuildNumber', 'Get-M365WorkplaceJoined', 'Get-M365WamAccount', 'Invoke-M365WamSignOut',
        'Get-M365WpjRegistration', 'Get-M365WpjCertificate', 'Remove-M365WpjCertificate', 'Remove-M365WpjRegistration') {
        Remove-Item -Path "Function:\$f" -ErrorAction SilentlyContinue
    }
}

Describe 'win_work_accounts' {
    BeforeEach {
        Set-RungRepairRecordMock
        $global:FakeWam = @{
            SignInUpn = 'alice@contoso.com'
            Build = 22631
            Accounts = [System.Collections.Generic.List[string]]@('alice@contoso.com', 'alice@fabrikam.com', 'ext.alice@northwind.example')
            FailSignOut = @()
            ClientIds = @()
        }
        $global:FakeWpj = @{
            Registrations = [System.Collections.Generic.List[object]]::new()
            Certificates = [ordered]@{}
            FailCertificate = @()
            Calls = [System.Collections.Generic.List[string]]::new()
        }
        $global:FakeDevice = @{ Status = $script:WorkgroupStatus; Fail = $null }
        Mock -ModuleName _WorkAccounts Invoke-M365Dsregcmd {
            if ($global:FakeDevice.Fail) { throw $global:FakeDevice.Fail }
            [pscustomobject]@{ Output = $global:FakeDevice.Status; ExitCode = 0 }
        }
        $global:WpjRecords = [System.Collections.Generic.List[hashtable]]::new()
        Mock -ModuleName _WorkAccounts Set-M365RebootMarkerValue { $global:WpjRecords.Add(@{ Path = $Path; Name = $Name; Value = $Value }) }
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
        $r.users[0].workplace_join | Should -BeNullOrEmpty
        $r.device.join_type | Should -Be 'workgroup'
    }

    It 'is idempotent: a second run changes nothing' {
        New-FakeRegistration $script:FabrikamThumb $script:Fabrikam 'Fabrikam' 'alice@fabrikam.com' '9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d'
        $r = Assert-RungIdempotent -Name win_work_accounts -Params @{ users = @('alice') }
        $r.users[0].accounts | Should -Be @('alice@contoso.com')
        $r.users[0].workplace_join | Should -BeNullOrEmpty
    }

    It 'in check mode reports what would be removed and signs nothing out' {
        $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice') } -CheckMode
        $r.changed | Should -BeTrue
        $r.users[0].removed.Count | Should -Be 2
        $global:FakeWam.Accounts.Count | Should -Be 3
    }

    It 'removes only the listed accounts, case-insensitively' {
        $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice'); accounts = @('ALICE@fabrikam.com') }
        $r.users[0].removed | Should -Be @('alice@fabrikam.com')
        $global:FakeWam.Accounts | Should -Contain 'alice@contoso.com'
        $global:FakeWam.Accounts | Should -Contain 'ext.alice@northwind.example'
    }

    It 'refuses, naming accounts, to remove the Windows sign-in account and changes nothing for that user' {
        New-FakeRegistration $script:FabrikamThumb $script:Fabrikam 'Fabrikam' 'alice@fabrikam.com' '9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d'
        $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice'); accounts = @('alice@fabrikam.com', 'Alice@Contoso.com') }
        $r.failed | Should -BeTrue
        $r.changed | Should -BeFalse
        $r.users[0].status | Should -Be 'failed'
        $r.users[0].message | Should -Match '^accounts: alice@contoso.com is this user''s primary account'
        $r.users[0].message | Should -Match 'Nothing was changed for this user\.$'
        $r.msg | Should -Match 'accounts: alice@contoso.com is this user'
        $global:FakeWam.Accounts.Count | Should -Be 3
        $global:FakeWpj.Calls | Should -BeNullOrEmpty
        $global:FakeWpj.Registrations.Count | Should -Be 1
    }

    It 'leaves everything alone when the sign-in UPN is not among the accounts (alternate login ID)' {
        $global:FakeWam.SignInUpn = 'alice@corp.contoso.local'
        New-FakeRegistration $script:FabrikamThumb $script:Fabrikam 'Fabrikam' 'alice@fabrikam.com' '9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d'
        $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice') }
        $r.changed | Should -BeFalse
        $r.users[0].message | Should -Match 'pass primary_upn'
        $global:FakeWam.Accounts.Count | Should -Be 3
        $r.users[0].workplace_join[0].action | Should -Be 'kept'
        $r.users[0].workplace_join[0].reason | Should -Match 'pass primary_upn'
        $global:FakeWpj.Calls | Should -BeNullOrEmpty
    }

    It 'uses primary_upn when given' {
        $global:FakeWam.SignInUpn = 'alice@corp.contoso.local'
        $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice'); primary_upn = 'alice@fabrikam.com' }
        $r.users[0].removed | Should -Be @('alice@contoso.com', 'ext.alice@northwind.example')
    }

    It 'leaves everything alone when the user has no UPN (local account)' {
        $global:FakeWam.SignInUpn = $null
        New-FakeRegistration $script:FabrikamThumb $script:Fabrikam 'Fabrikam' 'alice@fabrikam.com' '9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d'
        $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice') }
        $r.changed | Should -BeFalse
        $r.users[0].message | Should -Match 'no UPN'
        $r.users[0].workplace_join[0].reason | Should -Match 'no UPN'
        $global:FakeWpj.Calls | Should -BeNullOrEmpty
    }

    It 'reports and leaves accounts and registrations alone on builds before 1803 (17134)' {
        $global:FakeWam.Build = 16299
        New-FakeRegistration $script:FabrikamThumb $script:Fabrikam 'Fabrikam' 'alice@fabrikam.com' '9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d'
        $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice') }
        $r.failed | Should -BeNullOrEmpty
        $r.changed | Should -BeFalse
        $r.users[0].status | Should -Be 'unsupported'
        $r.users[0].message | Should -Match 'Access work or school \(Workplace Join: alice@fabrikam.com in Fabrikam \(a7e3b9d2-61c4-4f0e-8d2a-39b5c7e1f480\), certificate B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5\)\. Nothing was removed\.$'
        $r.users[0].workplace_join[0].action | Should -Be 'kept'
        $global:FakeWam.Accounts.Count | Should -Be 3
        $global:FakeWpj.Calls | Should -BeNullOrEmpty
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
        Should -Invoke -ModuleName _UserRung Invoke-M365TaskScript -Times 0 -Exactly
    }

    It 'refuses <name> naming the option, before any task' -TestCases @(
        @{ name = 'a wildcard account'; params = @{ accounts = @('*@contoso.com') }; option = 'accounts' }
        @{ name = 'a non-UPN account'; params = @{ accounts = @('CONTOSO\alice') }; option = 'accounts' }
        @{ name = 'a malformed client id'; params = @{ client_id = 'office' }; option = 'client_id' }
        @{ name = 'primary_upn without one user'; params = @{ primary_upn = 'alice@contoso.com' }; option = 'primary_upn' }
        @{ name = 'the primary_upn among accounts'; params = @{ users = @('alice'); primary_upn = 'alice@contoso.com'; accounts = @('ALICE@contoso.com') }; option = 'accounts' }
        @{ name = 'a traversal user name'; params = @{ users = @('..\Administrator') }; option = 'users' }
    ) {
        $r = Invoke-RungModule -Name win_work_accounts -Params $params
        $r.failed | Should -BeTrue
        $r.msg | Should -Match "^$($option): "
        Should -Invoke -ModuleName _UserRung Invoke-M365TaskScript -Times 0 -Exactly
        $global:WpjRecords | Should -BeNullOrEmpty
    }

    Context 'Workplace Join (Entra registered) accounts' {
        BeforeEach {
            $global:FakeWam.Accounts = [System.Collections.Generic.List[string]]@('alice@contoso.com', 'alice@fabrikam.com')
            New-FakeRegistration $script:ContosoThumb $script:Contoso 'Contoso' 'alice@contoso.com' '6e2d9b1c-3a4f-4c8e-b5d7-0f1a2b3c4d5e'
            New-FakeRegistration $script:FabrikamThumb $script:Fabrikam 'Fabrikam' 'alice@fabrikam.com' '9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d'
        }

        It 'disconnects the registration of the extra account - sign-out, certificate, then registration - and keeps the sign-in one' {
            $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice') } -DiffMode
            $r.failed | Should -BeNullOrEmpty
            $r.changed | Should -BeTrue
            $u = $r.users[0]
            $u.status | Should -Be 'changed'
            $u.removed | Should -Be @('alice@fabrikam.com')
            $u.disconnected | Should -Be @('alice@fabrikam.com')
            $global:FakeWpj.Calls | Should -Be @(
                "certificate $($script:FabrikamThumb) CN=MS-Organization-Access",
                "registration $($script:FabrikamThumb) $($script:Fabrikam)")
            @($global:FakeWpj.Registrations | ForEach-Object { $_.UserEmail }) | Should -Be @('alice@contoso.com')
            $global:FakeWpj.Certificates.Keys | Should -Be @($script:ContosoThumb)

            $fab = $u.workplace_join | Where-Object { $_.tenant_id -eq $script:Fabrikam }
            $fab.action | Should -Be 'disconnected'
            $fab.device_id | Should -Be '9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d'
            $fab.certificate.issuer | Should -Be 'CN=MS-Organization-Access'
            $fab.way_back | Should -Be 'Settings > Accounts > Access work or school > Connect, sign in as alice@fabrikam.com'
            $con = $u.workplace_join | Where-Object { $_.tenant_id -eq $script:Contoso }
            $con.action | Should -Be 'kept'
            $con.reason | Should -Be 'alice@contoso.com is this user''s primary account'
            $u.message | Should -Match 'disconnected Workplace Join: alice@fabrikam.com in Fabrikam .*; the way back is Settings > Accounts > Access work or school > Connect$'

            $label = 'alice@fabrikam.com in Fabrikam (a7e3b9d2-61c4-4f0e-8d2a-39b5c7e1f480), certificate B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5'
            $r.diff.before.workplace_join.'CONTOSO\alice' | Should -Contain $label
            $r.diff.before.workplace_join.'CONTOSO\alice'.Count | Should -Be 2
            $r.diff.after.workplace_join.'CONTOSO\alice' | Should -Not -Contain $label
            $r.diff.after.workplace_join.'CONTOSO\alice'.Count | Should -Be 1

            # The record of what was disconnected, for the administrator who reconnects it.
            $global:WpjRecords.Count | Should -Be 1
            $global:WpjRecords[0].Path | Should -Be 'HKLM:\SOFTWARE\m365ops\activation\WorkplaceJoinDisconnected'
            $global:WpjRecords[0].Name | Should -Be "$($global:RungAlice.Sid)_$($script:FabrikamThumb)"
            $record = ConvertFrom-Json $global:WpjRecords[0].Value
            $record.user_email | Should -Be 'alice@fabrikam.com'
            $record.tenant_id | Should -Be $script:Fabrikam
            $record.user | Should -Be 'CONTOSO\alice'
            $record.way_back | Should -Match '^Settings > Accounts > Access work or school > Connect'
            $global:RungRepairs[0].Rung | Should -Be 'remove_extra_work_accounts'
        }

        It 'in check mode names the registration it would disconnect and changes and records nothing' {
            $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice') } -CheckMode -DiffMode
            $r.changed | Should -BeTrue
            $r.users[0].disconnected | Should -Be @('alice@fabrikam.com')
            $r.users[0].message | Should -Match 'would disconnect Workplace Join: alice@fabrikam.com'
            $r.diff.after.workplace_join.'CONTOSO\alice'.Count | Should -Be 1
            $global:FakeWpj.Calls | Should -BeNullOrEmpty
            $global:FakeWpj.Registrations.Count | Should -Be 2
            $global:FakeWam.Accounts.Count | Should -Be 2
            $global:WpjRecords | Should -BeNullOrEmpty
            $global:RungRepairs | Should -BeNullOrEmpty
        }

        It 'never touches a registration in the tenant the device is hybrid joined to, nor its account' {
            $global:FakeDevice.Status = $script:HybridStatus
            $global:FakeWam.Accounts.Add('alice.admin@contoso.com')
            $global:FakeWpj.Registrations.Clear(); $global:FakeWpj.Certificates.Clear()
            New-FakeRegistration $script:ContosoThumb $script:Contoso 'Contoso' 'alice.admin@contoso.com' '6e2d9b1c-3a4f-4c8e-b5d7-0f1a2b3c4d5e'
            New-FakeRegistration $script:FabrikamThumb $script:Fabrikam 'Fabrikam' 'alice@fabrikam.com' '9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d'
            $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice') }
            $r.failed | Should -BeNullOrEmpty
            $r.device.join_type | Should -Be 'hybrid_joined'
            $r.device.tenant_id | Should -Be $script:Contoso
            $r.users[0].removed | Should -Be @('alice@fabrikam.com')
            $global:FakeWam.Accounts | Should -Contain 'alice.admin@contoso.com'
            $own = $r.users[0].workplace_join | Where-Object { $_.tenant_id -eq $script:Contoso }
            $own.action | Should -Be 'kept'
            $own.reason | Should -Be 'this device is hybrid_joined to this tenant; its registration is never disconnected'
            $global:FakeWpj.Calls | Should -Not -Match $script:ContosoThumb
            @($global:FakeWpj.Registrations | ForEach-Object { $_.TenantId }) | Should -Be @($script:Contoso)
        }

        It 'refuses, naming accounts, a request to remove a registration in the device''s tenant, and changes nothing for that user' {
            $global:FakeDevice.Status = $script:HybridStatus
            $global:FakeWpj.Registrations.Clear(); $global:FakeWpj.Certificates.Clear()
            $global:FakeWam.Accounts.Add('alice.admin@contoso.com')
            New-FakeRegistration $script:ContosoThumb $script:Contoso 'Contoso' 'alice.admin@contoso.com' '6e2d9b1c-3a4f-4c8e-b5d7-0f1a2b3c4d5e'
            New-FakeRegistration $script:FabrikamThumb $script:Fabrikam 'Fabrikam' 'alice@fabrikam.com' '9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d'
            $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice'); accounts = @('alice@fabrikam.com', 'alice.admin@contoso.com') }
            $r.failed | Should -BeTrue
            $r.changed | Should -BeFalse
            $r.users[0].message | Should -Be "accounts: alice.admin@contoso.com is registered (Workplace Join) in tenant $($script:Contoso), the tenant this device is hybrid_joined to; that registration and its account are never removed. Nothing was changed for this user."
            $global:FakeWpj.Calls | Should -BeNullOrEmpty
            $global:FakeWam.Accounts.Count | Should -Be 3
            $global:WpjRecords | Should -BeNullOrEmpty
        }

        It 'disconnects only the listed account''s registration' {
            $global:FakeWam.Accounts.Add('ext.alice@northwind.example')
            New-FakeRegistration 'C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F6' 'f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b' 'Northwind' 'ext.alice@northwind.example' '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d'
            $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice'); accounts = @('ext.alice@northwind.example') }
            $r.users[0].disconnected | Should -Be @('ext.alice@northwind.example')
            ($r.users[0].workplace_join | Where-Object { $_.user_email -eq 'alice@fabrikam.com' }).reason | Should -Be 'not listed in accounts'
            $global:FakeWpj.Registrations.Count | Should -Be 2
        }

        It 'disconnects no registration when the device''s join state cannot be read, and says why' {
            $global:FakeDevice.Fail = 'The system cannot find the file specified'
            $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice') }
            $r.failed | Should -BeNullOrEmpty
            $r.device.error | Should -Match '^dsregcmd /status failed: The system cannot find the file specified'
            ($r.users[0].workplace_join | Where-Object { $_.user_email -eq 'alice@fabrikam.com' }).reason | Should -Match '^the device''s join state could not be read \(dsregcmd /status failed'
            $global:FakeWpj.Calls | Should -BeNullOrEmpty
            $r.users[0].removed | Should -Be @('alice@fabrikam.com') -Because 'the WAM sign-out does not depend on the device join'
        }

        It 'leaves registrations alone with disconnect_workplace_join false' {
            $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice'); disconnect_workplace_join = $false }
            $r.users[0].removed | Should -Be @('alice@fabrikam.com')
            $r.users[0].disconnected | Should -BeNullOrEmpty
            ($r.users[0].workplace_join | Where-Object { $_.user_email -eq 'alice@fabrikam.com' }).reason | Should -Be 'disconnect_workplace_join is false'
            $global:FakeWpj.Calls | Should -BeNullOrEmpty
        }

        It 'leaves a certificate alone that MS-Organization-Access did not issue' {
            $global:FakeWpj.Certificates[$script:FabrikamThumb].Issuer = 'CN=Fabrikam Issuing CA, DC=fabrikam, DC=com'
            $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice') }
            ($r.users[0].workplace_join | Where-Object { $_.user_email -eq 'alice@fabrikam.com' }).reason | Should -Match 'is not issued by MS-Organization-Access; left alone$'
            $global:FakeWpj.Calls | Should -BeNullOrEmpty
        }

        It 'keeps the registration and fails when its certificate cannot be removed' {
            $global:FakeWpj.FailCertificate = @($script:FabrikamThumb)
            $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice') }
            $r.failed | Should -BeTrue
            $r.msg | Should -Match 'alice@fabrikam.com \(Workplace Join, tenant a7e3b9d2-61c4-4f0e-8d2a-39b5c7e1f480\): Access is denied'
            $global:FakeWpj.Registrations.Count | Should -Be 2
            ($r.users[0].workplace_join | Where-Object { $_.user_email -eq 'alice@fabrikam.com' }).action | Should -Be 'failed'
            $global:WpjRecords | Should -BeNullOrEmpty
        }

        It 'does not disconnect a registration whose account could not be signed out' {
            $global:FakeWam.FailSignOut = @('alice@fabrikam.com')
            $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice') }
            $r.failed | Should -BeTrue
            ($r.users[0].workplace_join | Where-Object { $_.user_email -eq 'alice@fabrikam.com' }).reason | Should -Be 'not disconnected: the WAM sign-out of its account failed'
            $global:FakeWpj.Calls | Should -BeNullOrEmpty
        }

        It 'finishes a registration whose certificate an interrupted run already removed' {
            $global:FakeWpj.Certificates.Remove($script:FabrikamThumb)
            $global:FakeWam.Accounts.Remove('alice@fabrikam.com') | Out-Null
            $r = Invoke-RungModule -Name win_work_accounts -Params @{ users = @('alice') }
            $r.failed | Should -BeNullOrEmpty
            $r.users[0].status | Should -Be 'changed'
            $global:FakeWpj.Calls | Should -Be @("registration $($script:FabrikamThumb) $($script:Fabrikam)")
        }
    }
}
