# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# Gathering logic of plugins/modules/win_activation_facts.ps1 under pwsh. The module's
# functions and constants are loaded from the part of the file before the module body
# (which needs Ansible.Basic); Windows-only commands are mocked. The module_utils are the
# real ones.

BeforeAll {
    $root = Resolve-Path (Join-Path $PSScriptRoot '..' '..')
    $utils = Join-Path $root 'plugins' 'module_utils'
    foreach ($name in '_UserProfile', '_ScheduledTaskRunner', '_RebootMarker', '_UserRung', '_CredentialPattern', '_UserSession', '_TokenBrokerQuarantine', '_Dsreg', '_DsregJoin', '_NetworkProbe') {
        Import-Module (Join-Path $utils "$name.psm1") -Force
    }
    $modulePath = Join-Path $root 'plugins' 'modules' 'win_activation_facts.ps1'
    $text = Get-Content -LiteralPath $modulePath -Raw
    $errors = $null
    $null = [System.Management.Automation.Language.Parser]::ParseInput($text, [ref]$null, [ref]$errors)
    if ($errors.Count) { throw "win_activation_facts.ps1 does not parse: $($errors[0])" }
    $cut = $text.IndexOf('$spec = @{')
    if ($cut -lt 0) { throw 'module body marker not found' }
    . ([scriptblock]::Create($text.Substring(0, $cut)))

    # Windows cmdlets that do not exist under pwsh on Linux, so Pester has something to mock.
    # Same parameters as the real ones, so mocks bind them and filters can check them.
    $script:Stubs = @()
    if (-not (Get-Command Get-WinEvent -ErrorAction SilentlyContinue)) {
        Function global:Get-WinEvent { param([hashtable[]]$FilterHashtable, [long]$MaxEvents) throw 'Get-WinEvent is Windows-only' }
        $script:Stubs += 'Get-WinEvent'
    }
    if (-not (Get-Command Get-AppxPackage -ErrorAction SilentlyContinue)) {
        Function global:Get-AppxPackage { param([string]$Name, [switch]$AllUsers) throw 'Get-AppxPackage is Windows-only' }
        $script:Stubs += 'Get-AppxPackage'
    }

    $script:Fixtures = Join-Path $PSScriptRoot '..' 'unit' 'plugins' 'action' 'fixtures' 'win_activation_facts'
    $script:DeviceDsreg = Get-Content -LiteralPath (Join-Path $script:Fixtures 'device_hybrid_no_prt.txt') -Raw
    $script:AliceDsreg = Get-Content -LiteralPath (Join-Path $script:Fixtures 'user_alice_no_prt.txt') -Raw
    $script:Now = [DateTime]::new(2026, 11, 26, 9, 0, 0, [DateTimeKind]::Utc)

    Function New-LicenseText {
        # A vNext license file as Office writes it: JSON whose License is base64 of the
        # license JSON (fields as Microsoft's vNextDiag.ps1 reads them).
        param([string]$Product = 'O365ProPlusRetail', [string]$NotAfter = '2026-12-20T00:00:00Z')
        $inner = @{
            LicenseId = '0b5c1a2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d'; ProductReleaseId = $Product; LicenseType = 'User'
            Status = 'Ok'; ExpiresOn = '2027-01-31T00:00:00Z'; Acid = '8f8d2a17-3b4c-4d5e-9f6a-7b8c9d0e1f2a'
            MetaData = @{ NotBefore = '2026-11-20T00:00:00Z'; NotAfter = $NotAfter; RenewAfter = '2026-11-27T00:00:00Z'
                TenantId = '4d1c6a4e-2f8b-4b1e-9a53-7c0f2e9d1b64'; UserId = '1003BFFD9A6C2F51' }
        } | ConvertTo-Json -Compress
        @{ Version = 1; License = [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($inner)) } | ConvertTo-Json -Compress
    }

    Function New-Profile {
        param([string]$Sid, [string]$Name, [string]$Path, [bool]$LoggedOn = $true, [bool]$HiveLoaded = $true)
        [pscustomobject]@{ Sid = $Sid; UserName = "CONTOSO\$Name"; ProfilePath = $Path; HiveLoaded = $HiveLoaded; LoggedOn = $LoggedOn }
    }
}

AfterAll {
    # Other test files share this process under Invoke-PesterSuite.ps1.
    foreach ($name in $script:Stubs) { Remove-Item "function:global:$name" -ErrorAction SilentlyContinue }
}

Describe 'ConvertFrom-M365WinHttpSetting' {
    It 'reads the direct-access blob Windows writes after netsh winhttp reset proxy' {
        $blob = [byte[]](0x18, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        $r = ConvertFrom-M365WinHttpSetting -Blob $blob
        $r.winhttp_proxy | Should -Be 'Direct access (no proxy server).'
        $r.proxy_server | Should -BeNullOrEmpty
    }

    It 'reads a named proxy and its bypass list' {
        $proxy = [Text.Encoding]::ASCII.GetBytes('proxy.contoso.com:8080')
        $bypass = [Text.Encoding]::ASCII.GetBytes('<local>;*.contoso.com')
        $blob = [byte[]](@(0x28, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0) + [BitConverter]::GetBytes([int]$proxy.Length) + $proxy +
            [BitConverter]::GetBytes([int]$bypass.Length) + $bypass)
        $r = ConvertFrom-M365WinHttpSetting -Blob $blob
        $r.proxy_server | Should -Be 'proxy.contoso.com:8080'
        $r.bypass_list | Should -Be '<local>;*.contoso.com'
        $r.winhttp_proxy | Should -Be 'Proxy Server(s) : proxy.contoso.com:8080; Bypass List : <local>;*.contoso.com'
    }

    It 'treats a missing or truncated value as direct access' {
        (ConvertFrom-M365WinHttpSetting -Blob $null).proxy_server | Should -BeNullOrEmpty
        (ConvertFrom-M365WinHttpSetting -Blob ([byte[]](0x28, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 50, 0, 0, 0, 65))).proxy_server | Should -BeNullOrEmpty
    }
}

Describe 'Registry adapter' {
    It 'says the registry is not available where there is none, instead of "key not found"' -Skip:([bool](Get-PSProvider -PSProvider Registry -ErrorAction SilentlyContinue)) {
        { Get-M365RegistryValue -Path 'HKLM:\SOFTWARE\Microsoft\Office\ClickToRun\Configuration' } | Should -Throw -ExceptionType ([System.PlatformNotSupportedException]) -ExpectedMessage '*registry is not available*'
    }
}

Describe 'Office Click-to-Run' {
    It 'names channel <Expected> from <Url>' -ForEach @(
        @{ Url = 'http://officecdn.microsoft.com/pr/492350f6-3a01-4f97-b9c0-c7c6ddf67d60'; Expected = 'Current' }
        @{ Url = 'http://officecdn.microsoft.com/pr/55336B82-A18D-4DD6-B5F6-9E5095C314A6'; Expected = 'MonthlyEnterprise' }
        @{ Url = 'http://officecdn.microsoft.com/pr/7ffbc6bf-bc32-4f92-8982-f9dd17fd3114'; Expected = 'SemiAnnual' }
        @{ Url = 'http://officecdn.microsoft.com/pr/01234567-89ab-4cde-8f01-23456789abcd'; Expected = 'unknown (01234567-89ab-4cde-8f01-23456789abcd)' }
    ) {
        Get-M365OfficeChannel -CdnBaseUrl $Url | Should -Be $Expected
    }

    It 'lets UpdateChannel (policy) win over CDNBaseUrl' {
        Get-M365OfficeChannel -UpdateChannel 'http://officecdn.microsoft.com/pr/55336b82-a18d-4dd6-b5f6-9e5095c314a6' `
            -CdnBaseUrl 'http://officecdn.microsoft.com/pr/492350f6-3a01-4f97-b9c0-c7c6ddf67d60' | Should -Be 'MonthlyEnterprise'
    }

    It 'reads version, channel and shared computer licensing' {
        Mock Get-M365RegistryValue {
            if ($Path -like '*ClickToRun\Configuration') {
                @{ VersionToReport = '16.0.17928.20114'; CDNBaseUrl = 'http://officecdn.microsoft.com/pr/492350f6-3a01-4f97-b9c0-c7c6ddf67d60'
                    Platform = 'x64'; ProductReleaseIds = 'O365ProPlusRetail,VisioProRetail'; SharedComputerLicensing = '0' }
            }
            elseif ($Path -like '*Policies*Licensing') { @{ SharedComputerLicensing = 1 } }
        }
        $o = Get-M365OfficeInfo
        $o.installed | Should -BeTrue
        $o.version | Should -Be '16.0.17928.20114'
        $o.channel | Should -Be 'Current'
        $o.shared_computer_licensing | Should -BeTrue
        $o.product_release_ids | Should -Be @('O365ProPlusRetail', 'VisioProRetail')
    }

    It 'reports installed = false without Click-to-Run' {
        Mock Get-M365RegistryValue { $null }
        $o = Get-M365OfficeInfo
        $o.installed | Should -BeFalse
        $o.shared_computer_licensing | Should -BeFalse
    }
}

Describe 'vNext licenses' {
    It 'reads product, NotAfter and tenant and sees no RFM before NotAfter' {
        $l = ConvertFrom-M365LicenseFile -Text (New-LicenseText) -File 'a.json' -Now $script:Now
        $l.product | Should -Be 'O365ProPlusRetail'
        $l.not_after | Should -Be '2026-12-20T00:00:00Z'
        $l.expires_on | Should -Be '2027-01-31T00:00:00Z'
        $l.tenant_id | Should -Be '4d1c6a4e-2f8b-4b1e-9a53-7c0f2e9d1b64'
        $l.reduced_functionality | Should -BeFalse
    }

    It 'detects Reduced Functionality Mode once now is past NotAfter' {
        (ConvertFrom-M365LicenseFile -Text (New-LicenseText -NotAfter '2026-11-25T23:59:59Z') -File 'a.json' -Now $script:Now).reduced_functionality | Should -BeTrue
    }

    It 'refuses a file that is not a license' {
        { ConvertFrom-M365LicenseFile -Text '{"Version":1}' -File 'x.json' -Now $script:Now } | Should -Throw '*License*'
        { ConvertFrom-M365LicenseFile -Text 'garbage' -File 'x.json' -Now $script:Now } | Should -Throw
    }

    It 'reads the license files of a profile from disk (UTF-16) and the LicensingNext mode' {
        $profilePath = Join-Path $TestDrive 'alice'
        $dir = Join-Path $profilePath 'AppData' 'Local' 'Microsoft' 'Office' 'Licenses' '5'
        $null = New-Item -ItemType Directory -Path $dir
        [IO.File]::WriteAllText((Join-Path $dir 'good.json'), (New-LicenseText), [Text.Encoding]::Unicode)
        [IO.File]::WriteAllText((Join-Path $dir 'bad.json'), 'not json', [Text.Encoding]::Unicode)
        Mock Get-M365RegistryValue { @{ o365proplusretail = 2; visioproretail = 3; LastUpdate = 'x' } }
        $errors = [Collections.ArrayList]::new()
        $p = New-Profile -Sid 'S-1-5-21-1-2-3-1104' -Name alice -Path $profilePath
        $lic = Get-M365ProfileLicensing -UserProfile $p -Now $script:Now -Errors $errors
        $lic.modes['o365proplusretail'] | Should -Be 'vNext'
        $lic.modes['visioproretail'] | Should -Be 'Device'
        $lic.modes.Contains('LastUpdate') | Should -BeFalse
        $lic.mode | Should -Be 'Mixed'
        @($lic.licenses).Count | Should -Be 1
        $lic.licenses[0].product | Should -Be 'O365ProPlusRetail'
        $errors.Count | Should -Be 1
        $errors[0].source | Should -Be 'licensing:S-1-5-21-1-2-3-1104'
        $errors[0].message | Should -Match 'bad\.json'
        Should -Invoke Get-M365RegistryValue -Times 1 -Exactly -ParameterFilter { $Path -eq 'Registry::HKEY_USERS\S-1-5-21-1-2-3-1104\Software\Microsoft\Office\16.0\Common\Licensing\LicensingNext' }
    }

    It 'does not read LicensingNext from an unloaded hive' {
        Mock Get-M365RegistryValue { throw 'must not be called' }
        $p = New-Profile -Sid 'S-1-5-21-1-2-3-1105' -Name bob -Path (Join-Path $TestDrive 'bob') -HiveLoaded $false
        $lic = Get-M365ProfileLicensing -UserProfile $p -Now $script:Now -Errors ([Collections.ArrayList]::new())
        $lic.mode | Should -BeNullOrEmpty
        @($lic.licenses).Count | Should -Be 0
    }
}

Describe 'Get-M365IdentityPolicy' {
    It 'is $null (unknown) when the hive is not loaded' {
        Get-M365IdentityPolicy -UserProfile (New-Profile -Sid 'S-1-5-21-1-2-3-1' -Name a -Path 'C:\Users\a' -HiveLoaded $false) | Should -BeNullOrEmpty
    }

    It 'reports the unsupported values, the policy key winning' {
        Mock Get-M365RegistryValue {
            if ($Path -like '*\Policies\*') { @{ DisableAADWAM = 1 } } else { @{ EnableADAL = 0; DisableAADWAM = 0 } }
        }
        $r = Get-M365IdentityPolicy -UserProfile (New-Profile -Sid 'S-1-5-21-1-2-3-1' -Name a -Path 'C:\Users\a')
        $r.EnableADAL | Should -Be 0
        $r.DisableAADWAM | Should -Be 1
        $r.DisableADALatopWAMOverride | Should -BeNullOrEmpty
        @($r.Keys) | Should -Be @('EnableADAL', 'DisableAADWAM', 'DisableADALatopWAMOverride')
    }
}

Describe 'Get-M365TokenBrokerStat' {
    It 'counts files, bytes and the newest write time of both Accounts folders' {
        $profilePath = Join-Path $TestDrive 'carol'
        $aad = Join-Path $profilePath 'AppData' 'Local' 'Packages' 'Microsoft.AAD.BrokerPlugin_cw5n1h2txyewy' 'AC' 'TokenBroker' 'Accounts'
        $null = New-Item -ItemType Directory -Path $aad
        Set-Content -LiteralPath (Join-Path $aad 'a.tbacct') -Value ('x' * 99) -NoNewline
        Set-Content -LiteralPath (Join-Path $aad 'b.tbacct') -Value ('y' * 1) -NoNewline
        (Get-Item (Join-Path $aad 'a.tbacct')).LastWriteTimeUtc = [DateTime]::new(2026, 11, 19, 17, 2, 11, [DateTimeKind]::Utc)
        (Get-Item (Join-Path $aad 'b.tbacct')).LastWriteTimeUtc = [DateTime]::new(2026, 10, 2, 8, 0, 0, [DateTimeKind]::Utc)
        # The Linux test host is case-sensitive; Windows paths are not, and the module
        # builds them from the same relative names either way.
        $r = Get-M365TokenBrokerStat -UserProfile (New-Profile -Sid 'S-1-5-21-1-2-3-1106' -Name carol -Path $profilePath)
        $r.aad_broker_plugin.files | Should -Be 2
        $r.aad_broker_plugin.bytes | Should -Be 100
        $r.aad_broker_plugin.newest | Should -Be '2026-11-19T17:02:11Z'
        $r.cloud_experience_host.files | Should -Be 0
        $r.cloud_experience_host.newest | Should -BeNullOrEmpty
    }
}

Describe 'Profile reads never follow a user''s links' {
    It 'skips and reports a link inside Accounts and a license file link; the targets stay unread' {
        $profilePath = Join-Path $TestDrive 'dave'
        $aad = Join-Path $profilePath 'AppData' 'Local' 'Packages' 'Microsoft.AAD.BrokerPlugin_cw5n1h2txyewy' 'AC' 'TokenBroker' 'Accounts'
        $lic = Join-Path $profilePath 'AppData' 'Local' 'Microsoft' 'Office' 'Licenses'
        $canary = Join-Path $TestDrive 'canary'
        foreach ($d in $aad, $lic, $canary) { $null = New-Item -ItemType Directory -Path $d -Force }
        Set-Content -LiteralPath (Join-Path $aad 'a.tbacct') -Value 'x' -NoNewline
        [IO.File]::WriteAllText((Join-Path $canary 'lic.json'), (New-LicenseText), [Text.Encoding]::Unicode)
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $aad 'x') -Target $canary
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $lic 'l.json') -Target (Join-Path $canary 'lic.json')
        $errors = [Collections.ArrayList]::new()
        $p = New-Profile -Sid 'S-1-5-21-1-2-3-1109' -Name dave -Path $profilePath -HiveLoaded $false
        $tb = Get-M365TokenBrokerStat -UserProfile $p -Errors $errors
        $tb.aad_broker_plugin.files | Should -Be 1 -Because 'the canary''s file behind the link is not counted'
        $licensing = Get-M365ProfileLicensing -UserProfile $p -Now $script:Now -Errors $errors
        @($licensing.licenses) | Should -HaveCount 0
        @($errors | ForEach-Object { $_.path }) | Should -Be @((Join-Path $aad 'x'), (Join-Path $lic 'l.json'))
        $errors[0].source | Should -Be 'token_broker:S-1-5-21-1-2-3-1109'
        $errors[0].message | Should -Match 'junction or symbolic link: not followed'
        $errors[1].source | Should -Be 'licensing:S-1-5-21-1-2-3-1109'
    }
}

Describe 'AAD events' {
    It 'exports records with English levels and ISO UTC times' {
        $ev = [pscustomobject]@{ Id = 1098; Level = 2; LevelDisplayName = 'Fehler'; TimeCreated = [DateTime]::new(2026, 11, 20, 8, 14, 3, [DateTimeKind]::Utc)
            Message = "Error: 0xCAA50021 Number of redirects exceeded the maximum." }
        $r = ConvertTo-M365EventRecord -EventRecord $ev
        $r.Id | Should -Be 1098
        $r.LevelDisplayName | Should -Be 'Error'
        $r.TimeCreated | Should -Be '2026-11-20T08:14:03Z'
        $r.Message | Should -Match '0xCAA50021'
        @($r.Keys) | Should -Be @('Id', 'LevelDisplayName', 'TimeCreated', 'Message')
    }

    It 'keeps the error code from the insertion strings when the message cannot be rendered' {
        $ev = [pscustomobject]@{ Id = 1098; Level = 2; TimeCreated = $script:Now; Message = $null
            Properties = @([pscustomobject]@{ Value = '0xCAA50021' }, [pscustomobject]@{ Value = 'Number of redirects exceeded the maximum.' }) }
        (ConvertTo-M365EventRecord -EventRecord $ev).Message | Should -Be '0xCAA50021; Number of redirects exceeded the maximum.'
    }

    It 'asks for the four ids of the AAD channel within the window, bounded' {
        Mock Get-WinEvent { }
        $errors = [Collections.ArrayList]::new()
        $r = Get-M365AadEvents -Days 3 -MaxEvents 50 -Errors $errors
        @($r).Count | Should -Be 0
        $errors.Count | Should -Be 0
        Should -Invoke Get-WinEvent -Times 1 -Exactly -ParameterFilter {
            $FilterHashtable.LogName -eq 'Microsoft-Windows-AAD/Operational' -and (@($FilterHashtable.Id) -join ',') -eq '1098,1097,1104,1081' -and
            $MaxEvents -eq 50 -and $FilterHashtable.StartTime -lt (Get-Date).AddDays(-2.9) -and $FilterHashtable.StartTime -gt (Get-Date).AddDays(-3.1)
        }
    }

    It 'treats "no events found" as an empty answer, not an error' {
        Mock Get-WinEvent {
            $ex = [System.Exception]::new('No events were found that match the specified selection criteria.')
            throw [System.Management.Automation.ErrorRecord]::new($ex, 'NoMatchingEventsFound,Microsoft.PowerShell.Commands.GetWinEventCommand', 'ObjectNotFound', $null)
        }
        $errors = [Collections.ArrayList]::new()
        $r = Get-M365AadEvents -Days 14 -MaxEvents 200 -Errors $errors
        , $r | Should -BeOfType [object[]]
        @($r).Count | Should -Be 0
        $errors.Count | Should -Be 0
    }

    It 'reports a missing channel as a collection error' {
        Mock Get-WinEvent { throw [System.Exception]::new('The specified channel could not be found.') }
        $errors = [Collections.ArrayList]::new()
        Get-M365AadEvents -Days 14 -MaxEvents 200 -Errors $errors | Should -BeNullOrEmpty
        $errors[0].source | Should -Be 'aad_events'
        $errors[0].message | Should -Match 'channel could not be found'
    }
}

Describe 'Get-M365DeviceDsreg' {
    It 'returns the raw output' {
        Mock Invoke-M365Dsregcmd { [pscustomobject]@{ Output = $script:DeviceDsreg; ExitCode = 0 } }
        $errors = [Collections.ArrayList]::new()
        Get-M365DeviceDsreg -Errors $errors | Should -Be $script:DeviceDsreg
        $errors.Count | Should -Be 0
    }

    It 'keeps malformed output as evidence and says it was not recognised' {
        Mock Invoke-M365Dsregcmd { [pscustomobject]@{ Output = "The request is not supported.`r`n"; ExitCode = 50 } }
        $errors = [Collections.ArrayList]::new()
        Get-M365DeviceDsreg -Errors $errors | Should -Match 'not supported'
        $errors[0].source | Should -Be 'dsregcmd_status'
        $errors[0].message | Should -Match 'not recognised \(exit code 50\)'
    }

    It 'reports empty output and a missing dsregcmd' {
        Mock Invoke-M365Dsregcmd { [pscustomobject]@{ Output = ''; ExitCode = 1 } }
        $errors = [Collections.ArrayList]::new()
        Get-M365DeviceDsreg -Errors $errors | Should -BeNullOrEmpty
        $errors[0].message | Should -Match 'no output'
        Mock Invoke-M365Dsregcmd { throw "The term 'dsregcmd.exe' is not recognized" }
        Get-M365DeviceDsreg -Errors $errors | Should -BeNullOrEmpty
        $errors[1].message | Should -Match 'dsregcmd.exe'
    }
}

Describe 'Pending reboot and BrokerPlugin' {
    It 'combines the collection marker and Windows signals' {
        Mock Assert-M365Registry { }
        Mock -ModuleName _RebootMarker Get-M365RebootMarkerValue { @{ win_token_broker_cache = '2026-11-26T08:00:00Z TokenBroker caches quarantined' } }
        Mock -ModuleName _RebootMarker Test-M365RebootRegistryKey { $Path -like '*WindowsUpdate*' }
        Mock -ModuleName _RebootMarker Get-M365RebootRegistryValue { $null }
        $r = Get-M365PendingReboot
        $r.marker | Should -BeTrue
        $r.windows | Should -BeTrue
        $r.reasons | Should -Be @('marker win_token_broker_cache: 2026-11-26T08:00:00Z TokenBroker caches quarantined', 'Windows Update: RebootRequired')
    }

    It 'reads the newest BrokerPlugin package and who has it installed' {
        Mock Get-M365BrokerPackage {
            [pscustomobject]@{ Name = 'Microsoft.AAD.BrokerPlugin'; Version = '1000.19580.1000.0'; Status = 'Ok'
                PackageUserInformation = @(
                    [pscustomobject]@{ UserSecurityId = [pscustomobject]@{ Sid = 'S-1-5-21-1-2-3-1104' }; InstallState = 'Installed' }
                    [pscustomobject]@{ UserSecurityId = [pscustomobject]@{ Sid = 'S-1-5-21-1-2-3-1105' }; InstallState = 'Staged' }) }
            [pscustomobject]@{ Name = 'Microsoft.AAD.BrokerPlugin'; Version = '1000.19041.1000.0'; Status = 'Ok'; PackageUserInformation = @() }
        }
        $r = Get-M365BrokerPluginInfo
        $r.installed | Should -BeTrue
        $r.version | Should -Be '1000.19580.1000.0'
        $r.status | Should -Be 'Ok'
        $r.registered_sids | Should -Be @('S-1-5-21-1-2-3-1104')
    }

    It 'reports a missing BrokerPlugin' {
        Mock Get-M365BrokerPackage { }
        (Get-M365BrokerPluginInfo).installed | Should -BeFalse
    }
}

Describe 'Hybrid join record of win_dsreg_join' {
    BeforeEach { Mock Assert-M365Registry { } }

    It 'reports the submitted join read from the HybridJoin key' {
        Mock Get-M365RebootMarkerValue {
            @{ Action = 'rejoin'; SubmittedBy = 'CONTOSO\svc-m365ops (win_dsreg_join state=rejoined)'; SubmittedAt = '2026-11-26T08:12:40Z' }
        }
        $r = Get-M365HybridJoin
        $r.action | Should -Be 'rejoin'
        $r.submitted_at | Should -Be '2026-11-26T08:12:40Z'
        $r.submitted_by | Should -Be 'CONTOSO\svc-m365ops (win_dsreg_join state=rejoined)'
        @($r.Keys) | Should -Be @('action', 'submitted_at', 'submitted_by')
        Should -Invoke Get-M365RebootMarkerValue -Times 1 -Exactly -ParameterFilter { $Path -eq 'HKLM:\SOFTWARE\m365ops\activation\HybridJoin' }
    }

    It 'is $null when no join is recorded or the record was never completed (no SubmittedAt)' -ForEach @(
        @{ Values = @{} }
        @{ Values = @{ Action = 'join'; SubmittedBy = 'CONTOSO\svc-m365ops (win_dsreg_join state=joined)' } }
    ) {
        Mock Get-M365RebootMarkerValue { $Values }
        Get-M365HybridJoin | Should -BeNullOrEmpty
    }

    It 'gives null for a value that is missing or empty rather than an empty string' {
        Mock Get-M365RebootMarkerValue { @{ SubmittedAt = '2026-11-26T08:12:40Z'; SubmittedBy = '' } }
        $r = Get-M365HybridJoin
        $r.submitted_at | Should -Be '2026-11-26T08:12:40Z'
        $null -eq $r.action | Should -BeTrue
        $null -eq $r.submitted_by | Should -BeTrue
    }

    It 'says the registry is unavailable instead of reporting "no join"' {
        Mock Assert-M365Registry { throw [System.PlatformNotSupportedException]::new('the Windows registry is not available on this host') }
        Mock Get-M365RebootMarkerValue { @{} }
        { Get-M365HybridJoin } | Should -Throw '*registry is not available*'
        Should -Invoke Get-M365RebootMarkerValue -Times 0 -Exactly
    }
}

Describe 'User-context script' {
    BeforeAll {
        # Stand-ins for the Windows calls the script would otherwise define itself.
        Function global:Get-M365UserDsreg { $script:AliceDsreg }
        # Select-M365CredentialTarget (_UserSession.psm1) reads the vault through its own module.
        Mock -ModuleName _UserSession Get-M365CredentialTarget { @('MicrosoftOffice16_Data:SSPI:alice@contoso.com', 'LegacyGeneric:target=git:https://github.com', 'MicrosoftOffice16_Data:ADAL:alice@contoso.com', 'WindowsLive:target=virtualapp/didlogical') }
        Function global:Get-M365SignInUpn { $null }
        Function global:Get-M365WamAccount([string]$ClientId) { @{ upn = 'alice@contoso.com'; provider = 'AzureAD'; state = 'Connected' }; @{ upn = 'alice@fabrikam.com'; provider = 'AzureAD'; state = 'Connected' } }
        Function global:Test-M365BrokerRegistered { throw 'Get-AppxPackage: access denied' }
    }
    AfterAll {
        foreach ($f in 'Get-M365UserDsreg', 'Get-M365SignInUpn', 'Get-M365WamAccount', 'Test-M365BrokerRegistered') { Remove-Item "function:global:$f" }
    }

    It 'returns only Office credential target names, the UPN, WAM accounts, and what failed' {
        $o = & $script:UserContextScript -Regexes @('^MicrosoftOffice1.*$') -ClientId 'd3590ed6-52b3-4102-aeff-aad2292ab01c'
        $o.credential_targets | Should -Be @('MicrosoftOffice16_Data:ADAL:alice@contoso.com', 'MicrosoftOffice16_Data:SSPI:alice@contoso.com')
        # GetUserNameEx gave nothing: the UPN comes from this session's dsregcmd.
        $o.sign_in_upn | Should -Be 'alice@contoso.com'
        $o.dsregcmd_status | Should -Match 'AzureAdPrt : NO'
        @($o.wam_accounts).Count | Should -Be 2
        $o.broker_plugin_registered | Should -BeNullOrEmpty
        $o.errors | Should -Be @('BrokerPlugin: Get-AppxPackage: access denied')
    }
}

Describe 'ConvertTo-M365UserEntry' {
    BeforeAll { $script:P = New-Profile -Sid 'S-1-5-21-1-2-3-1104' -Name alice -Path 'C:\Users\alice' }

    It 'maps runner status <Status> to <Expected> with no data' -ForEach @(
        @{ Status = 'not_logged_on'; Expected = 'not_logged_on' }
        @{ Status = 'timeout'; Expected = 'timeout' }
        @{ Status = 'access_denied'; Expected = 'access_denied' }
        @{ Status = 'failed'; Expected = 'error' }
    ) {
        $e = ConvertTo-M365UserEntry -UserProfile $script:P -TaskResult ([pscustomobject]@{ Status = $Status; Output = $null; Message = 'why'; ExitCode = $null })
        $e.status | Should -Be $Expected
        $e.message | Should -Be 'why'
        $e.Contains('credential_targets') | Should -BeFalse
    }

    It 'copies the data of an ok run (as it comes back through JSON)' {
        $json = '{"sign_in_upn":"alice@contoso.com","dsregcmd_status":"x","credential_targets":["MicrosoftOffice16_Data:SSPI:alice@contoso.com"],"wam_accounts":[{"upn":"alice@contoso.com","provider":"AzureAD","state":"Connected"}],"broker_plugin_registered":true,"errors":["WAM accounts: boom"]}'
        $e = ConvertTo-M365UserEntry -UserProfile $script:P -TaskResult ([pscustomobject]@{ Status = 'ok'; Output = ($json | ConvertFrom-Json); Message = ''; ExitCode = 0 })
        $e.status | Should -Be 'ok'
        $e.user | Should -Be 'CONTOSO\alice'
        $e.credential_targets | Should -Be @('MicrosoftOffice16_Data:SSPI:alice@contoso.com')
        $e.wam_accounts[0].upn | Should -Be 'alice@contoso.com'
        $e.broker_plugin_registered | Should -BeTrue
        $e.message | Should -Be 'WAM accounts: boom'
    }
}

Describe 'Get-M365ActivationFact' {
    BeforeEach {
        $script:Profiles = @(
            New-Profile -Sid 'S-1-5-21-1-2-3-1104' -Name alice -Path (Join-Path $TestDrive 'alice')
            New-Profile -Sid 'S-1-5-21-1-2-3-1105' -Name bob -Path (Join-Path $TestDrive 'bob')
            New-Profile -Sid 'S-1-5-21-1-2-3-1106' -Name carol -Path (Join-Path $TestDrive 'carol')
            New-Profile -Sid 'S-1-5-21-1-2-3-1107' -Name dave -Path (Join-Path $TestDrive 'dave') -LoggedOn $false -HiveLoaded $false
        )
        Mock Get-M365UserProfile { $script:Profiles }
        Mock -ModuleName _UserProfile Get-M365UserProfile { $script:Profiles }
        Mock Invoke-M365Dsregcmd { [pscustomobject]@{ Output = $script:DeviceDsreg; ExitCode = 0 } }
        Mock Get-WinEvent { }
        Mock Get-M365RegistryValue {
            if ($Path -like '*Windows NT\CurrentVersion') { @{ CurrentBuildNumber = '22631'; CurrentMajorVersionNumber = 10; CurrentMinorVersionNumber = 0; UBR = 4460; DisplayVersion = '23H2' } }
        }
        Mock Get-M365BrokerPackage { }
        Mock Assert-M365Registry { }
        Mock Get-M365LastBootUpTime { [datetime]::new(2026, 11, 26, 7, 58, 0, [DateTimeKind]::Utc) }
        Mock -ModuleName _RebootMarker Get-M365RebootMarkerValue { @{} }
        Mock Get-M365RebootMarkerValue { @{} }
        Mock -ModuleName _RebootMarker Test-M365RebootRegistryKey { $false }
        Mock -ModuleName _RebootMarker Get-M365RebootRegistryValue { $null }
        Mock Get-M365UtcNow { $script:Now }
        Mock Invoke-M365TaskScript {
            [pscustomobject]@{ Status = 'ok'; Output = [pscustomobject]@{ sign_in_upn = "u$UserSid"; dsregcmd_status = 'x'; credential_targets = @(); wam_accounts = @(); broker_plugin_registered = $true; errors = @() }; Message = ''; ExitCode = 0 }
        }
    }

    It 'runs one user-context task per logged-on user and none for others' {
        $r = Get-M365ActivationFact
        Should -Invoke Invoke-M365TaskScript -Times 3 -Exactly
        Should -Invoke Invoke-M365TaskScript -Times 0 -ParameterFilter { $UserSid -eq 'S-1-5-21-1-2-3-1107' }
        Should -Invoke Invoke-M365TaskScript -Times 3 -ParameterFilter { $RunAs -eq 'User' -and $Parameters.Regexes -contains '^MicrosoftOffice1.*$' }
        $r.host_facts.users.sid | Should -Be @('S-1-5-21-1-2-3-1104', 'S-1-5-21-1-2-3-1105', 'S-1-5-21-1-2-3-1106')
        $r.host_facts.profiles.Count | Should -Be 4
        $r.dsregcmd_status | Should -Be $script:DeviceDsreg
        $r.collection_errors.Count | Should -Be 0
        $r.host_facts.schema | Should -Be 1
        $r.host_facts.collector | Should -Be 'win_activation_facts'
        $r.host_facts.user_context | Should -BeTrue
        $r.host_facts.collected_at | Should -Be '2026-11-26T09:00:00Z'
        $r.host_facts.office.installed | Should -BeFalse
        $r.host_facts.network.winhttp_proxy | Should -Be 'Direct access (no proxy server).'
        $r.host_facts.os.build | Should -Be 22631
        $r.host_facts.os.version | Should -Be '10.0.22631'
        , $r.aad_events | Should -BeOfType [object[]]
        # No join recorded is an answer: the key is there, null.
        $r.host_facts.Contains('hybrid_join') | Should -BeTrue
        $null -eq $r.host_facts.hybrid_join | Should -BeTrue
        $r.host_facts.last_boot | Should -Be '2026-11-26T07:58:00Z'
        # No rung ever ran: an empty record, which the rules read as "no cut-off".
        $r.host_facts.repairs.Count | Should -Be 0
        $r.host_facts.Contains('repairs') | Should -BeTrue
    }

    It 'reports the repairs the rungs recorded, with their times, sorted by rung' {
        Mock -ModuleName _RebootMarker Get-M365RebootMarkerValue {
            @{ reset_token_broker = '2026-11-26T08:41:00Z TokenBroker caches quarantined in 20261126T084100Z-3fa2c9d1'
                purge_office_credentials = '2026-11-26T08:40:12Z credential purge for CONTOSO\alice'
                rejoin_hybrid = 'edited by hand' }
        } -ParameterFilter { $Path -like '*\Repairs' }
        $r = Get-M365ActivationFact
        @($r.host_facts.repairs.Keys) | Should -Be @('purge_office_credentials', 'rejoin_hybrid', 'reset_token_broker')
        $r.host_facts.repairs.reset_token_broker.at | Should -Be '2026-11-26T08:41:00Z'
        $r.host_facts.repairs.reset_token_broker.summary | Should -Be 'TokenBroker caches quarantined in 20261126T084100Z-3fa2c9d1'
        $r.host_facts.repairs.purge_office_credentials.summary | Should -Be 'credential purge for CONTOSO\alice'
        # A value with no readable time keeps its text and gets no time.
        $null -eq $r.host_facts.repairs.rejoin_hybrid.at | Should -BeTrue
        $r.host_facts.repairs.rejoin_hybrid.summary | Should -Be 'edited by hand'
        $r.collection_errors.Count | Should -Be 0
    }

    It 'reports the pending hybrid join next to the reboot marker in the same execution' {
        Mock Get-M365RebootMarkerValue { @{ Action = 'join'; SubmittedBy = 'CONTOSO\svc-m365ops (win_dsreg_join state=joined)'; SubmittedAt = '2026-11-26T08:30:00Z' } } -ParameterFilter { $Path -like '*\HybridJoin' }
        Mock -ModuleName _RebootMarker Get-M365RebootMarkerValue { @{ win_dsreg_join = '2026-11-26T08:30:00Z dsregcmd /join submitted' } }
        $r = Get-M365ActivationFact
        $r.host_facts.hybrid_join.action | Should -Be 'join'
        $r.host_facts.hybrid_join.submitted_at | Should -Be '2026-11-26T08:30:00Z'
        $r.host_facts.pending_reboot.marker | Should -BeTrue
        $r.collection_errors.Count | Should -Be 0
        # It survives the trip to the controller as the plain object host_facts.json holds.
        ($r.host_facts | ConvertTo-Json -Depth 8 | ConvertFrom-Json).hybrid_join.submitted_by | Should -Be 'CONTOSO\svc-m365ops (win_dsreg_join state=joined)'
    }

    It 'clears the marker the current boot satisfied when asked (the verification after a restart)' {
        $script:MarkerStore = @{ win_token_broker_cache = '2026-11-26T07:50:00Z TokenBroker caches quarantined in q1'
            win_dsreg_join = '2026-11-26T08:30:00Z dsregcmd /join submitted' }
        Mock -ModuleName _RebootMarker Get-M365RebootMarkerValue { @{} + $script:MarkerStore } -ParameterFilter { $Path -like '*\RebootRequired' }
        Mock -ModuleName _RebootMarker Remove-M365RebootMarkerValue { $script:MarkerStore.Remove($Name) }
        $kept = Get-M365ActivationFact
        $kept.host_facts.pending_reboot.Contains('cleared') | Should -BeFalse
        $script:MarkerStore.Count | Should -Be 2
        $r = Get-M365ActivationFact -ClearSatisfiedMarker $true
        # Booted 07:58: the 07:50 request is satisfied, the 08:30 one is still owed.
        $r.host_facts.pending_reboot.cleared | Should -Be @('win_token_broker_cache')
        $r.host_facts.pending_reboot.marker | Should -BeTrue
        @($r.host_facts.pending_reboot.reasons) | Should -Be @('marker win_dsreg_join: 2026-11-26T08:30:00Z dsregcmd /join submitted')
        @($script:MarkerStore.Keys) | Should -Be @('win_dsreg_join')
        $r.collection_errors.Count | Should -Be 0
    }

    It 'runs tasks only for the named users, reporting one who is not logged on' {
        Mock Invoke-M365TaskScript { [pscustomobject]@{ Status = 'not_logged_on'; Output = $null; Message = 'no session'; ExitCode = $null } } -ParameterFilter { $UserSid -eq 'S-1-5-21-1-2-3-1107' }
        $r = Get-M365ActivationFact -Users @('CONTOSO\dave', 'S-1-5-21-1-2-3-1104', 'alice')
        Should -Invoke Invoke-M365TaskScript -Times 2 -Exactly
        $r.host_facts.users.status | Should -Be @('not_logged_on', 'ok')
    }

    It 'refuses an unknown user, naming the users option, before any task runs' {
        { Get-M365ActivationFact -Users @('mallory') } | Should -Throw -ExceptionType ([System.ArgumentException]) -ExpectedMessage "users: Identity 'mallory' is unknown*"
        Should -Invoke Invoke-M365TaskScript -Times 0 -Exactly
        Should -Invoke Invoke-M365Dsregcmd -Times 0 -Exactly
    }

    It 'refuses named users when the profiles cannot be read, saying why' {
        Mock Get-M365UserProfile { throw 'Access denied reading ProfileList' }
        { Get-M365ActivationFact -Users @('CONTOSO\alice') } | Should -Throw -ExceptionType ([System.ArgumentException]) -ExpectedMessage 'users: cannot resolve CONTOSO\alice because the user profiles could not be read (Access denied reading ProfileList).'
        Should -Invoke Invoke-M365TaskScript -Times 0 -Exactly
    }

    It 'runs no task with UserContext off' {
        $r = Get-M365ActivationFact -UserContext $false
        Should -Invoke Invoke-M365TaskScript -Times 0 -Exactly
        $r.host_facts.users.Count | Should -Be 0
    }

    It 'turns a runner exception into an error entry for that user only' {
        Mock Invoke-M365TaskScript { throw 'Task Scheduler service is not running' } -ParameterFilter { $UserSid -eq 'S-1-5-21-1-2-3-1105' }
        $r = Get-M365ActivationFact
        $r.host_facts.users.status | Should -Be @('ok', 'error', 'ok')
        $r.host_facts.users[1].message | Should -Match 'not running'
    }

    It 'still returns what it could when every Windows source fails (pwsh on Linux)' {
        Mock Get-M365UserProfile { throw "The term 'Get-CimInstance' is not recognized" }
        Mock Invoke-M365Dsregcmd { throw "The term 'dsregcmd.exe' is not recognized" }
        Mock Get-WinEvent { throw "The term 'Get-WinEvent' is not recognized" }
        Mock Get-M365RegistryValue { throw 'the Windows registry is not available on this host' }
        Mock Assert-M365Registry { throw 'the Windows registry is not available on this host' }
        Mock Get-M365BrokerPackage { throw "The term 'Get-AppxPackage' is not recognized" }
        Mock Get-M365LastBootUpTime { throw "The term 'Get-CimInstance' is not recognized" }
        $r = Get-M365ActivationFact
        @($r.collection_errors.source) | Should -Be @('profiles', 'dsregcmd_status', 'aad_events', 'os', 'office', 'network', 'pending_reboot', 'last_boot', 'repairs', 'hybrid_join', 'broker_plugin')
        $r.dsregcmd_status | Should -BeNullOrEmpty
        $r.aad_events | Should -BeNullOrEmpty
        # Unknown facts are left out, never reported as false.
        @($r.host_facts.Keys) | Should -Be @('schema', 'collected_at', 'hostname', 'collector', 'user_context', 'profiles', 'users')
        Should -Invoke Invoke-M365TaskScript -Times 0 -Exactly
    }
}

Describe 'User-context script through the real task runner' {
    It 'travels inline, runs in a separate PowerShell and comes back as a user entry' {
        $script:RunRoot = Join-Path $TestDrive 'runs'
        $null = New-Item -ItemType Directory -Path $script:RunRoot
        . (Join-Path $PSScriptRoot 'TaskCommandLine.ps1')
        $script:Registered = $null
        $script:Exit = $null
        Mock -ModuleName _ScheduledTaskRunner Get-M365InteractiveSid { 'S-1-5-21-1-2-3-1104' }
        Mock -ModuleName _ScheduledTaskRunner Get-M365RunRoot { $script:RunRoot }
        Mock -ModuleName _ScheduledTaskRunner Set-M365PathSddl { }
        Mock -ModuleName _ScheduledTaskRunner Get-M365PowerShellPath { 'C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe' }
        Mock -ModuleName _ScheduledTaskRunner Register-M365Task { $script:Registered = $Argument }
        Mock -ModuleName _ScheduledTaskRunner Start-M365Task {
            $script:Exit = Invoke-TaskArgument -Argument $script:Registered
        }
        Mock -ModuleName _ScheduledTaskRunner Get-M365TaskState { [pscustomobject]@{ State = 'Ready'; LastTaskResult = $script:Exit } }
        Mock -ModuleName _ScheduledTaskRunner Unregister-M365Task { }
        # The probe travels too (its code is a parameter), pointed at a port that refuses.
        $closed = [System.Net.Sockets.Socket]::new([System.Net.Sockets.AddressFamily]::InterNetwork, [System.Net.Sockets.SocketType]::Stream, [System.Net.Sockets.ProtocolType]::Tcp)
        $closed.Bind([System.Net.IPEndPoint]::new([System.Net.IPAddress]::Loopback, 0))
        try {
            $run = Invoke-M365TaskScript -ScriptBlock $script:UserContextScript -RunAs User -UserSid 'S-1-5-21-1-2-3-1104' `
                -Parameters @{ Regexes = @('^MicrosoftOffice1.*$'); ClientId = 'd3590ed6-52b3-4102-aeff-aad2292ab01c'; Session = Get-M365UserSessionScript
                Probe = @{ Code = Get-M365NetworkProbeScript; Endpoints = @("127.0.0.1:$($closed.LocalEndPoint.Port)"); TimeoutSeconds = 3 } }
        }
        finally { $closed.Close() }
        $run.Message | Should -BeNullOrEmpty
        $run.Status | Should -Be 'ok'
        $alice = New-Profile -Sid 'S-1-5-21-1-2-3-1104' -Name alice -Path 'C:\Users\alice'
        $probe = ConvertTo-M365UserProbe -UserProfile $alice -TaskResult $run -TrustedRoots @('DF3C24F9BFD666761B268073FE06D1CC8D4F82A4')
        $probe.context | Should -Be 'user'
        $probe.sid | Should -Be 'S-1-5-21-1-2-3-1104'
        $probe.results[0].blocked | Should -Be 'tcp'
        $e = ConvertTo-M365UserEntry -UserProfile $alice -TaskResult $run
        $e.status | Should -Be 'ok'
        # No Windows here: every part fails on its own and says so; none is faked.
        $e.message | Should -Match 'dsregcmd'
        $e.message | Should -Match 'WAM accounts'
        @($e.credential_targets).Count | Should -Be 0
        @(Get-ChildItem -LiteralPath $script:RunRoot -Force).Count | Should -Be 0
    }
}

Describe 'Network probe endpoints per cloud' {
    It 'probes the tenant''s national cloud when the endpoints are left at the default' -ForEach @(
        @{ Url = 'https://login.microsoftonline.us/4d1c6a4e-2f8b-4b1e-9a53-7c0f2e9d1b64/oauth2/authorize'; Cloud = 'usgov'; First = 'login.microsoftonline.us' }
        @{ Url = 'https://login.partner.microsoftonline.cn/4d1c6a4e-2f8b-4b1e-9a53-7c0f2e9d1b64/oauth2/authorize'; Cloud = 'china'; First = 'login.partner.microsoftonline.cn' }
        @{ Url = 'https://login.microsoftonline.com/4d1c6a4e-2f8b-4b1e-9a53-7c0f2e9d1b64/oauth2/authorize'; Cloud = 'public'; First = 'login.microsoftonline.com' }
    ) {
        $dsreg = $script:DeviceDsreg -replace '(?m)^(\s*AuthCodeUrl\s*:\s*)\S+', "`${1}$Url"
        $dsreg | Should -Match ([regex]::Escape($Url))
        $r = Resolve-M365ProbeEndpoint -Endpoints @('enterpriseregistration.windows.net', 'LOGIN.microsoftonline.com', 'device.login.microsoftonline.com') -DsregText $dsreg
        $r.cloud | Should -Be $Cloud
        $r.endpoints[0] | Should -Be $First
    }

    It 'probes a list the operator gave as given, whatever the tenant' {
        $dsreg = $script:DeviceDsreg -replace 'login\.microsoftonline\.com', 'login.microsoftonline.us'
        $r = Resolve-M365ProbeEndpoint -Endpoints @('login.microsoftonline.com', 'login.lab.test:8443') -DsregText $dsreg
        $r.cloud | Should -BeNullOrEmpty
        $r.endpoints | Should -Be @('login.microsoftonline.com', 'login.lab.test:8443')
    }

    It 'falls back to the public cloud without a readable dsregcmd' {
        Get-M365ProbeCloud -DsregText $null | Should -Be 'public'
    }
}

Describe 'Get-M365ActivationFact with the network probe' {
    BeforeAll {
        # A bound socket that never listens: every connect is refused, at once.
        $script:Closed = [System.Net.Sockets.Socket]::new([System.Net.Sockets.AddressFamily]::InterNetwork, [System.Net.Sockets.SocketType]::Stream, [System.Net.Sockets.ProtocolType]::Tcp)
        $script:Closed.Bind([System.Net.IPEndPoint]::new([System.Net.IPAddress]::Loopback, 0))
        $script:ClosedPort = $script:Closed.LocalEndPoint.Port
    }
    AfterAll { $script:Closed.Close() }
    BeforeEach {
        $script:Profiles = @(New-Profile -Sid 'S-1-5-21-1-2-3-1104' -Name alice -Path (Join-Path $TestDrive 'alice'))
        Mock Get-M365UserProfile { $script:Profiles }
        Mock Invoke-M365Dsregcmd { [pscustomobject]@{ Output = $script:DeviceDsreg; ExitCode = 0 } }
        Mock Get-WinEvent { }
        Mock Assert-M365Registry { }
        Mock Get-M365BrokerPackage { }
        Mock Get-M365LastBootUpTime { [datetime]::new(2026, 11, 26, 7, 58, 0, [DateTimeKind]::Utc) }
        Mock Get-M365RebootMarkerValue { @{} }
        Mock -ModuleName _RebootMarker Get-M365RebootMarkerValue { @{} }
        Mock -ModuleName _RebootMarker Test-M365RebootRegistryKey { $false }
        Mock -ModuleName _RebootMarker Get-M365RebootRegistryValue { $null }
        Mock Get-M365UtcNow { $script:Now }
        # The WinHTTP proxy is the closed port: the device context is refused at the proxy.
        Mock Get-M365RegistryValue {
            if ($Path -like '*Windows NT\CurrentVersion') { return @{ CurrentBuildNumber = '22631' } }
            if ($Path -like '*Internet Settings\Connections') {
                $proxy = [Text.Encoding]::ASCII.GetBytes("127.0.0.1:$($script:ClosedPort)")
                return @{ WinHttpSettings = [byte[]](@(0x18, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0) + [BitConverter]::GetBytes([int]$proxy.Length) + $proxy + @(0, 0, 0, 0)) }
            }
        }
        # alice's task reports what its probe saw, as it comes back through JSON: a 407.
        $script:UserProbe = '{"context":"user","account":"CONTOSO\\alice","proxy":{"source":"wininet","server":"proxy.contoso.com:8080","bypass":null,"pac_url":null,"auto_detect":false,"note":null},"timeout_seconds":4,"elapsed_ms":40,"complete":null,"results":[{"endpoint":"login.microsoftonline.com","host":"login.microsoftonline.com","port":443,"route":"proxy","proxy":"proxy.contoso.com:8080","dns":{"name":"proxy.contoso.com","status":"ok","addresses":["10.1.2.3"],"message":null},"tcp":{"address":"10.1.2.3:8080","status":"ok","message":null},"connect":{"status":"auth_required","code":407,"status_line":"HTTP/1.1 407 Proxy Authentication Required","auth":["Negotiate"],"message":null},"tls":null,"blocked":null,"detail":null}]}'
        Mock Invoke-M365TaskScript {
            $out = [pscustomobject]@{ sign_in_upn = 'alice@contoso.com'; dsregcmd_status = 'x'; credential_targets = @(); wam_accounts = @(); broker_plugin_registered = $true; errors = @()
                network_probe = ($script:UserProbe | ConvertFrom-Json) }
            [pscustomobject]@{ Status = 'ok'; Output = $out; Message = ''; ExitCode = 0 }
        }
    }

    It 'probes as the administrator through the WinHTTP proxy and hands the user''s task the probe' {
        $probe = @{ endpoints = @('login.microsoftonline.com'); trusted_roots = @('DF3C24F9BFD666761B268073FE06D1CC8D4F82A4'); timeout = 3 }
        $r = Get-M365ActivationFact -NetworkProbe $probe
        Should -Invoke Invoke-M365TaskScript -Times 1 -Exactly -ParameterFilter {
            $Parameters.Probe.Code -match 'function Invoke-M365UserNetworkProbe' -and
            $Parameters.Probe.TimeoutSeconds -eq 3 -and ($Parameters.Probe.Endpoints -join ',') -eq 'login.microsoftonline.com' -and
            -not $Parameters.Probe.ContainsKey('TrustedRoots') }
        $np = $r.host_facts.network_probe
        $np.endpoints | Should -Be @('login.microsoftonline.com')
        $np.cloud | Should -BeNullOrEmpty
        $np.timeout_seconds | Should -Be 3
        @($np.contexts.context) | Should -Be @('system', 'user')
        $system = $np.contexts[0]
        $system.proxy.source | Should -Be 'winhttp'
        $system.proxy.server | Should -Be "127.0.0.1:$($script:ClosedPort)"
        $system.results[0].route | Should -Be 'proxy'
        $system.results[0].blocked | Should -Be 'tcp'
        $system.results[0].detail | Should -BeLike "no TCP connection to the proxy 127.0.0.1:$($script:ClosedPort) (refused*"
        # The user's result is judged here, named by the profile it ran for.
        $user = $np.contexts[1]
        $user.sid | Should -Be 'S-1-5-21-1-2-3-1104'
        $user.user | Should -Be 'CONTOSO\alice'
        $user.results[0].blocked | Should -Be 'proxy_auth'
        $user.complete | Should -BeTrue
        $r.collection_errors.Count | Should -Be 0
        # It survives the trip to the controller as the plain object host_facts.json holds.
        ($r.host_facts | ConvertTo-Json -Depth 12 | ConvertFrom-Json).network_probe.contexts[1].results[0].connect.code | Should -Be 407
    }

    It 'says the proxy is unknown when the WinHTTP settings cannot be read, and probes direct' {
        Mock Get-M365RegistryValue { if ($Path -like '*Windows NT\CurrentVersion') { @{ CurrentBuildNumber = '22631' } } else { throw 'access denied' } }
        $r = Get-M365ActivationFact -UserContext $false -NetworkProbe @{ endpoints = @("127.0.0.1:$($script:ClosedPort)"); trusted_roots = @('DF3C24F9BFD666761B268073FE06D1CC8D4F82A4'); timeout = 2 }
        $system = $r.host_facts.network_probe.contexts[0]
        $system.proxy.source | Should -Be 'unknown'
        $system.proxy.note | Should -Match 'could not be read'
        $system.results[0].route | Should -Be 'direct'
        @($r.collection_errors.source) | Should -Contain 'network'
    }

    It 'keeps a user whose task could not probe, with the reason' {
        Mock Invoke-M365TaskScript {
            $out = [pscustomobject]@{ sign_in_upn = 'alice@contoso.com'; dsregcmd_status = 'x'; credential_targets = @(); wam_accounts = @(); broker_plugin_registered = $true
                errors = @('network probe: boom'); network_probe = [pscustomobject]@{ error = 'boom' } }
            [pscustomobject]@{ Status = 'ok'; Output = $out; Message = ''; ExitCode = 0 }
        }
        $r = Get-M365ActivationFact -NetworkProbe @{ endpoints = @("127.0.0.1:$($script:ClosedPort)"); trusted_roots = @('DF3C24F9BFD666761B268073FE06D1CC8D4F82A4'); timeout = 2 }
        $user = $r.host_facts.network_probe.contexts[1]
        $user.error | Should -Be 'boom'
        $user.sid | Should -Be 'S-1-5-21-1-2-3-1104'
        $r.host_facts.users[0].message | Should -Be 'network probe: boom'
    }

    It 'probes nothing and adds no section without the option' {
        $r = Get-M365ActivationFact
        $r.host_facts.Contains('network_probe') | Should -BeFalse
        Should -Invoke Invoke-M365TaskScript -Times 1 -Exactly -ParameterFilter { -not $Parameters.ContainsKey('Probe') }
    }

    It 'fits the user''s task on one command line with ten long endpoints' {
        $long = @(1..10 | ForEach-Object { "enterpriseregistration-$_.partner.microsoftonline-long-name.example.cn:4443" })
        $parameters = @{ Regexes = @('^MicrosoftOffice1.*$'); ClientId = 'd3590ed6-52b3-4102-aeff-aad2292ab01c'; Session = Get-M365UserSessionScript
            Probe = @{ Code = Get-M365NetworkProbeScript; Endpoints = $long; TimeoutSeconds = 30 } }
        $argument = ConvertTo-M365TaskCommand -ScriptBlock $script:UserContextScript -Parameters $parameters `
            -OutputFile 'C:\Windows\Temp\m365ops-20261126T090000Z-4242-0a1b2c3d\output.json'
        # The runner refuses more than 32000 characters. Half of it: the day this grows
        # near the limit (new helpers, longer probe code) it fails here, not on hosts.
        $argument.Length | Should -BeLessThan 16000
    }
}
