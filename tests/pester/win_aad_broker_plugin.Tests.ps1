# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

BeforeAll {
    . (Join-Path $PSScriptRoot 'RungModuleHarness.ps1')
    Initialize-RungHarness

    Set-RungUser

    # Stand-ins for Get-AppxPackage / Add-AppxPackage -Register as the user-context script
    # calls them. The package object carries the AppxPackage properties the script reads.
    Function global:Get-M365BrokerPackage {
        if (-not $global:FakeAppx.Installed) { return $null }
        [pscustomobject]@{
            Name = 'Microsoft.AAD.BrokerPlugin'
            PackageFullName = 'Microsoft.AAD.BrokerPlugin_1000.19580.1000.0_neutral_neutral_cw5n1h2txyewy'
            Version = '1000.19580.1000.0'
            Status = $global:FakeAppx.Status
            InstallLocation = $global:FakeAppx.InstallLocation
        }
    }
    Function global:Register-M365BrokerPackage([string]$ManifestPath) {
        $global:FakeAppx.Registered += $ManifestPath
        if ($global:FakeAppx.RegisterError) { throw $global:FakeAppx.RegisterError }
        $global:FakeAppx.Installed = $true
        $global:FakeAppx.Status = $global:FakeAppx.StatusAfterRegister
    }
    Function global:Get-M365SystemAppsManifest { Join-Path $global:FakeAppx.InstallLocation 'AppxManifest.xml' }
}

AfterAll {
    foreach ($f in 'Get-M365BrokerPackage', 'Register-M365BrokerPackage', 'Get-M365SystemAppsManifest') {
        Remove-Item -Path "Function:\$f" -ErrorAction SilentlyContinue
    }
}

Describe 'win_aad_broker_plugin' {
    BeforeEach {
        Set-RungRepairRecordMock
        $location = Join-Path $TestDrive 'SystemApps' 'Microsoft.AAD.BrokerPlugin_cw5n1h2txyewy'
        $null = New-Item -ItemType Directory -Path $location -Force
        Set-Content -LiteralPath (Join-Path $location 'AppxManifest.xml') -Value '<Package/>'
        $global:FakeAppx = @{
            Installed = $true; Status = 'Ok'; StatusAfterRegister = 'Ok'; InstallLocation = $location
            Registered = @(); RegisterError = $null
        }
        Set-RungUserMock -UserTask
    }

    It 'leaves a healthy package alone' {
        $r = Invoke-RungModule -Name win_aad_broker_plugin -Params @{ users = @('alice') }
        $r.changed | Should -BeFalse
        $r.users[0].status | Should -Be 'unchanged'
        $global:FakeAppx.Registered.Count | Should -Be 0
        # Its own default timeout wins over the shared user-rung spec's 120.
        Should -Invoke Invoke-M365TaskScript -ModuleName _UserRung -Times 1 -Exactly -ParameterFilter { $TimeoutSeconds -eq 300 }
    }

    It 're-registers a package whose status is <status>' -TestCases @(
        @{ status = 'Modified' }, @{ status = 'Tampered' }, @{ status = 'LicenseIssue' }
    ) {
        $global:FakeAppx.Status = $status
        $r = Invoke-RungModule -Name win_aad_broker_plugin -Params @{ users = @('alice') } -DiffMode
        $r.changed | Should -BeTrue
        $r.users[0].reason | Should -Be "status $status"
        $global:FakeAppx.Registered | Should -Be @(Join-Path $global:FakeAppx.InstallLocation 'AppxManifest.xml')
        $r.diff.before.broker_plugin.'CONTOSO\alice'.status | Should -Be $status
        $r.diff.after.broker_plugin.'CONTOSO\alice'.status | Should -Be 'Ok'
    }

    It 'registers from SystemApps when the package is missing for the user' {
        $global:FakeAppx.Installed = $false
        $r = Invoke-RungModule -Name win_aad_broker_plugin -Params @{ users = @('alice') }
        $r.changed | Should -BeTrue
        $r.users[0].reason | Should -Be 'missing'
        $global:FakeAppx.Registered.Count | Should -Be 1
    }

    It 'is idempotent: the second run finds the package healthy' {
        $global:FakeAppx.Status = 'Modified'
        $null = Assert-RungIdempotent -Name win_aad_broker_plugin -Params @{ users = @('alice') }
        $global:FakeAppx.Registered.Count | Should -Be 1
    }

    It 're-registers a healthy package with force' {
        $r = Invoke-RungModule -Name win_aad_broker_plugin -Params @{ users = @('alice'); force = $true }
        $r.changed | Should -BeTrue
        $r.users[0].reason | Should -Be 'force'
    }

    It 'in check mode reports the re-registration without doing it' {
        $global:FakeAppx.Status = 'Modified'
        $r = Invoke-RungModule -Name win_aad_broker_plugin -Params @{ users = @('alice') } -CheckMode
        $r.changed | Should -BeTrue
        $r.users[0].action | Should -Be 'register'
        $global:FakeAppx.Registered.Count | Should -Be 0
    }

    It 'fails when Add-AppxPackage fails, with its message' {
        $global:FakeAppx.Status = 'Modified'
        $global:FakeAppx.RegisterError = 'Deployment failed with HRESULT: 0x80073CF6'
        $r = Invoke-RungModule -Name win_aad_broker_plugin -Params @{ users = @('alice') }
        $r.failed | Should -BeTrue
        $r.msg | Should -Match '0x80073CF6'
    }

    It 'fails when the package is still broken after re-registration' {
        $global:FakeAppx.Status = 'Tampered'
        $global:FakeAppx.StatusAfterRegister = 'Tampered'
        $r = Invoke-RungModule -Name win_aad_broker_plugin -Params @{ users = @('alice') }
        $r.failed | Should -BeTrue
        $r.users[0].message | Should -Match 'status Tampered'
    }

    It 'skips a user who is not logged on; fails up front with require_logged_on' {
        $r = Invoke-RungModule -Name win_aad_broker_plugin -Params @{ users = @('bob') }
        $r.failed | Should -BeNullOrEmpty
        $r.users[0].status | Should -Be 'not_logged_on'
        $r2 = Invoke-RungModule -Name win_aad_broker_plugin -Params @{ users = @('bob'); require_logged_on = $true }
        $r2.failed | Should -BeTrue
        $r2.msg | Should -Match '^require_logged_on: not logged on: CONTOSO\\bob'
    }

    It 'refuses a bad state or user name before any task' -TestCases @(
        @{ params = @{ state = 'absent' }; pattern = 'state' }
        @{ params = @{ users = @('alice/../../x') }; pattern = '^users: ' }
        @{ params = @{ timeout = 99999 }; pattern = '^timeout: ' }
    ) {
        $r = Invoke-RungModule -Name win_aad_broker_plugin -Params $params
        $r.failed | Should -BeTrue
        $r.msg | Should -Match $pattern
        Should -Invoke Invoke-M365TaskScript -ModuleName _UserRung -Times 0 -Exactly
    }
}
