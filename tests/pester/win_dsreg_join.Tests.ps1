# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# `dsregcmd /status` fixtures follow the documented layout (Microsoft Learn, "Troubleshoot
# devices by using the dsregcmd command"): boxed section headers, right-aligned keys,
# " : " separators, YES/NO values, the pre-join "Diagnostic Data" section on a
# domain-joined device that has not completed hybrid join. Identifiers are made up.

BeforeAll {
    . (Join-Path $PSScriptRoot 'RungModuleHarness.ps1')
    Initialize-RungHarness

    Function New-DsregStatus {
        param ([string]$AzureAdJoined, [string]$DomainJoined, [string]$Diagnostic = '', [string]$DomainName = 'CONTOSO')
        $domainLine = if ($DomainJoined -eq 'YES') { "                DomainName : $DomainName`n" } else { '' }
        $details = if ($AzureAdJoined -eq 'YES') {
            @'
+----------------------------------------------------------------------+
| Device Details                                                       |
+----------------------------------------------------------------------+

                  DeviceId : 6f1c2a9e-3b7d-4e52-9c1a-2d8e4f6a0b13
                Thumbprint : 3C9E1A7B5D2F4E6081A9C7B3D5E2F4A6B8C0D1E2
 DeviceCertificateValidity : [ 2026-03-02 09:14:07.000 UTC -- 2036-03-02 09:44:07.000 UTC ]
            KeyContainerId : 0d4b7e21-8a3c-4f69-b2e5-7c1d9a6f3e84
               KeyProvider : Microsoft Platform Crypto Provider
              TpmProtected : YES
          DeviceAuthStatus : SUCCESS
+----------------------------------------------------------------------+

+----------------------------------------------------------------------+
| Tenant Details                                                       |
+----------------------------------------------------------------------+

                TenantName : Contoso
                  TenantId : 8d2b6c41-5e7a-4f93-a1c8-3b9e0d7f2a56
                       Idp : login.windows.net
               AuthCodeUrl : https://login.microsoftonline.com/8d2b6c41-5e7a-4f93-a1c8-3b9e0d7f2a56/oauth2/authorize
+----------------------------------------------------------------------+
'@
        }
        else { '' }
        @"
+----------------------------------------------------------------------+
| Device State                                                         |
+----------------------------------------------------------------------+

             AzureAdJoined : $AzureAdJoined
          EnterpriseJoined : NO
              DomainJoined : $DomainJoined
$domainLine               Device Name : PC042.contoso.com

+----------------------------------------------------------------------+

$details
$Diagnostic
"@
    }

    $script:SyncPending = @'
+----------------------------------------------------------------------+
| Diagnostic Data                                                       |
+----------------------------------------------------------------------+

     Diagnostics Reference : www.microsoft.com/aadjerrors
              User Context : SYSTEM
               Client Time : 2026-11-26 18:05:12.000 UTC
      AD Connectivity Test : PASS
     AD Configuration Test : PASS
        DRS Discovery Test : PASS
     DRS Connectivity Test : PASS
    Token acquisition Test : PASS
     Fallback to Sync-Join : ENABLED

     Previous Registration : 2026-11-26 18:05:03.000 UTC
         Registration Type : sync
               Error Phase : join
          Client ErrorCode : 0x801c03f2
          Server ErrorCode : DirectoryError
            Server Message : The device object by the given id (6f1c2a9e-3b7d-4e52-9c1a-2d8e4f6a0b13) isn't found.
              Https Status : 400
                Request Id : 1b7e4c2a-9d35-4f80-a6e1-5c3b8d2f7a94

+----------------------------------------------------------------------+
'@
    $script:DiscoveryFail = @'
+----------------------------------------------------------------------+
| Diagnostic Data                                                       |
+----------------------------------------------------------------------+

     Diagnostics Reference : www.microsoft.com/aadjerrors
              User Context : SYSTEM
               Client Time : 2026-11-26 18:05:12.000 UTC
      AD Connectivity Test : PASS
     AD Configuration Test : PASS
        DRS Discovery Test : FAIL [0x801c0021/0x801c000c]
     DRS Connectivity Test : SKIPPED
    Token acquisition Test : SKIPPED
     Fallback to Sync-Join : ENABLED

     Previous Registration : 2026-11-26 18:05:03.000 UTC
               Error Phase : discover
          Client ErrorCode : 0x801c0021

+----------------------------------------------------------------------+
'@
    $script:Hybrid = New-DsregStatus -AzureAdJoined YES -DomainJoined YES
    $script:DomainOnly = New-DsregStatus -AzureAdJoined NO -DomainJoined YES
    $script:DomainPending = New-DsregStatus -AzureAdJoined NO -DomainJoined YES -Diagnostic $script:SyncPending
    $script:DomainDiscoveryFail = New-DsregStatus -AzureAdJoined NO -DomainJoined YES -Diagnostic $script:DiscoveryFail
    $script:CloudOnly = New-DsregStatus -AzureAdJoined YES -DomainJoined NO
    $script:Workgroup = New-DsregStatus -AzureAdJoined NO -DomainJoined NO

    # A scripted host: dsregcmd /status answers from a queue (last answer repeats), and
    # the SYSTEM task's /leave and /join change what it answers next.
    Function Set-Device([string[]]$Statuses) { $global:DsregQueue = [System.Collections.Generic.Queue[string]]::new([string[]]$Statuses) }
}

Describe 'win_dsreg_join' {
    BeforeEach {
        Set-RungRepairRecordMock
        $global:DsregCalls = [System.Collections.Generic.List[string]]::new()
        $global:Markers = @{}
        $global:AfterLeave = $script:DomainOnly
        $global:AfterJoin = @($script:Hybrid)
        $global:LeaveExit = 0
        $global:JoinExit = 0
        Mock -ModuleName _HybridJoin Invoke-M365Dsregcmd {
            $text = if ($global:DsregQueue.Count -gt 1) { $global:DsregQueue.Dequeue() } else { $global:DsregQueue.Peek() }
            [pscustomobject]@{ Output = $text; ExitCode = 0 }
        }
        Mock -ModuleName _HybridJoin Invoke-M365TaskScript {
            $global:DsregCalls.Add(($Parameters.Arguments -join ' '))
            if ($Parameters.Arguments[0] -eq '/leave') {
                if ($global:LeaveExit -eq 0) { Set-Device @($global:AfterLeave) }
                return New-TaskResult -Output @{ output = 'DSREGCMD_END_STATUS'; exit_code = $global:LeaveExit }
            }
            if ($global:JoinExit -eq 0) { Set-Device $global:AfterJoin }
            New-TaskResult -Output @{ output = "DsrCLI: logging initialized.`nDsrCLI: join: scheduled Automatic-Device-Join"; exit_code = $global:JoinExit }
        } -ParameterFilter { $RunAs -eq 'System' }
        Mock -ModuleName _HybridJoin Test-M365DomainController { [pscustomobject]@{ Ok = $true; Detail = 'DC: \\DC01.contoso.com' } }
        Mock -ModuleName _HybridJoin Get-M365ServiceConnectionPoint { [pscustomobject]@{ Found = $true; Source = 'ad'; TenantId = '8d2b6c41-5e7a-4f93-a1c8-3b9e0d7f2a56'; TenantName = 'contoso.onmicrosoft.com'; Detail = '' } }
        Mock -ModuleName _HybridJoin Get-M365DeviceJoinTask { [pscustomobject]@{ Found = $true; State = 'Ready' } }
        Mock -ModuleName _HybridJoin Get-M365RebootMarker { $global:Markers }
        Mock -ModuleName _HybridJoin Set-M365RebootMarker { $global:Markers[$Source] = "2026-11-26T18:05:00Z $Reason" }
        Mock -ModuleName _HybridJoin Start-Sleep { }
        Mock -ModuleName _ScheduledTaskRunner Clear-M365StaleTaskRun { [ordered]@{ removed = @(); failed = @() } }
        # The module's own HybridJoin record, through RebootMarker's registry adapters.
        $global:JoinRecord = @{}
        Mock -ModuleName _HybridJoin Get-M365RebootMarkerValue { $global:JoinRecord.Clone() } -ParameterFilter { $Path -like '*\HybridJoin' }
        Mock -ModuleName _HybridJoin Set-M365RebootMarkerValue { $global:JoinRecord[$Name] = $Value } -ParameterFilter { $Path -like '*\HybridJoin' }
        Mock -ModuleName _HybridJoin Remove-M365RebootMarkerKey { $global:JoinRecord.Clear() } -ParameterFilter { $Path -like '*\HybridJoin' }
    }

    Context 'parsing' {
        It 'reads the join type of <name>' -TestCases @(
            @{ name = 'hybrid'; text = 'Hybrid'; expected = 'hybrid_joined' }
            @{ name = 'domain only'; text = 'DomainOnly'; expected = 'domain_joined' }
            @{ name = 'cloud only'; text = 'CloudOnly'; expected = 'entra_joined' }
            @{ name = 'workgroup'; text = 'Workgroup'; expected = 'workgroup' }
        ) {
            $parsed = ConvertFrom-M365DsregStatus -Text (Get-Variable -Name $text -Scope Script -ValueOnly)
            Get-M365JoinType -Status $parsed | Should -Be $expected
        }

        It 'keeps values with colons and brackets whole' {
            $parsed = ConvertFrom-M365DsregStatus -Text $script:Hybrid
            $parsed['Device Details']['DeviceCertificateValidity'] | Should -Be '[ 2026-03-02 09:14:07.000 UTC -- 2036-03-02 09:44:07.000 UTC ]'
            $parsed['Tenant Details']['AuthCodeUrl'] | Should -Be 'https://login.microsoftonline.com/8d2b6c41-5e7a-4f93-a1c8-3b9e0d7f2a56/oauth2/authorize'
            $d = (ConvertFrom-M365DsregStatus -Text $script:DomainPending)['Diagnostic Data']
            $d['Client Time'] | Should -Be '2026-11-26 18:05:12.000 UTC'
            $d['Client ErrorCode'] | Should -Be '0x801c03f2'
        }

        It 'joins a wrapped value onto its key' {
            $text = "+---+`n| Tenant Details |`n+---+`n               SettingsUrl : eyJVeGxzIjpbImh0dHBzOi8vZXhh`n                             bXBsZS5jb20iXX0=`n"
            (ConvertFrom-M365DsregStatus -Text $text)['Tenant Details']['SettingsUrl'] | Should -Be 'eyJVeGxzIjpbImh0dHBzOi8vZXhhbXBsZS5jb20iXX0='
        }
    }

    Context 'state: joined' {
        It 'joins a domain-joined device as SYSTEM and reports joined when the join completes' {
            Set-Device @($script:DomainOnly)
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'joined' } -DiffMode
            $r.failed | Should -BeNullOrEmpty
            $r.changed | Should -BeTrue
            $r.action | Should -Be 'join'
            $r.join_result | Should -Be 'joined'
            $r.pending | Should -BeFalse
            $r.reboot_required | Should -BeTrue
            @($global:DsregCalls) | Should -Be @('/join /debug')
            $r.diff.before.join_type | Should -Be 'domain_joined'
            $r.diff.after.join_type | Should -Be 'hybrid_joined'
            Should -Invoke -ModuleName _HybridJoin Set-M365RebootMarker -ParameterFilter { $Source -eq 'win_dsreg_join' -and $Reason -match '/join' }
            @($global:RungRepairs | ForEach-Object { "$($_.Rung): $($_.Summary)" }) | Should -Be @('rejoin_hybrid: dsregcmd /join submitted')
        }

        It 'returns pending with the Diagnostic Data instead of blocking while the device awaits sync' {
            Set-Device @($script:DomainOnly)
            $global:AfterJoin = @($script:DomainPending)
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'joined'; join_wait = 30; poll_interval = 10 }
            $r.failed | Should -BeNullOrEmpty
            $r.join_result | Should -Be 'pending'
            $r.pending | Should -BeTrue
            $r.msg | Should -Match 'Entra Connect'
            $r.diagnostic_data.'Client ErrorCode' | Should -Be '0x801c03f2'
            Should -Invoke -ModuleName _HybridJoin Start-Sleep -Times 3 -Exactly
        }

        It 'fails with the Diagnostic Data when dsregcmd reports a failed pre-join test' {
            Set-Device @($script:DomainOnly)
            $global:AfterJoin = @($script:DomainDiscoveryFail)
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'joined'; join_wait = 0 }
            $r.failed | Should -BeTrue
            $r.join_result | Should -Be 'failed'
            $r.msg | Should -Match 'DRS Discovery Test = FAIL \[0x801c0021/0x801c000c\]'
            $r.diagnostic_data.'Error Phase' | Should -Be 'discover'
        }

        It 'is idempotent on a hybrid joined device' {
            Set-Device @($script:Hybrid)
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'joined' }
            $r.changed | Should -BeFalse
            $r.join_result | Should -Be 'joined'
            Should -Invoke -ModuleName _HybridJoin Invoke-M365TaskScript -Times 0 -Exactly
        }

        It 'does not repeat a join that is already pending' {
            Set-Device @($script:DomainOnly)
            $global:AfterJoin = @($script:DomainPending)
            $first = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'joined'; join_wait = 0 }
            $first.submitted_join.status | Should -Be 'submitted'
            $first.submitted_join.action | Should -Be 'join'
            $global:JoinRecord['SubmittedAt'] | Should -Match '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$'
            $global:JoinRecord['SubmittedBy'] | Should -Match 'win_dsreg_join state=joined'
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'joined'; join_wait = 0 }
            $r.changed | Should -BeFalse
            $r.join_result | Should -Be 'pending'
            $r.submitted_join.status | Should -Be 'pending'
            @($global:DsregCalls).Count | Should -Be 1
        }

        It 'in check mode runs nothing and records no join' {
            Set-Device @($script:DomainOnly)
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'joined' } -CheckMode
            $r.changed | Should -BeTrue
            $r.action | Should -Be 'join'
            Should -Invoke -ModuleName _HybridJoin Invoke-M365TaskScript -Times 0 -Exactly
            Should -Invoke -ModuleName _HybridJoin Set-M365RebootMarker -Times 0 -Exactly
            Should -Invoke -ModuleName _HybridJoin Set-M365RebootMarkerValue -Times 0 -Exactly
            $global:JoinRecord.Count | Should -Be 0
            $global:RungRepairs | Should -HaveCount 0
        }

        It 'refuses a workgroup device' {
            Set-Device @($script:Workgroup)
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'joined' }
            $r.failed | Should -BeTrue
            $r.msg | Should -Match 'domain-joined'
        }

        It 'fails when the SYSTEM join task fails' {
            Set-Device @($script:DomainOnly)
            $global:JoinExit = 1
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'joined' }
            $r.failed | Should -BeTrue
            $r.msg | Should -Match 'dsregcmd /join failed: dsregcmd /join /debug exited with 1'
        }
    }

    Context 'state: left - guard rails' {
        It 'refuses to leave a cloud-only Entra joined device and points to /forcerecovery' {
            Set-Device @($script:CloudOnly)
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'left' }
            $r.failed | Should -BeTrue
            $r.msg | Should -Match '^allow_cloud_only_leave: '
            $r.msg | Should -Match 'dsregcmd /forcerecovery'
            Should -Invoke -ModuleName _HybridJoin Invoke-M365TaskScript -Times 0 -Exactly
        }

        It 'leaves a cloud-only device only with allow_cloud_only_leave, warning' {
            Set-Device @($script:CloudOnly)
            $global:AfterLeave = $script:Workgroup
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'left'; allow_cloud_only_leave = $true }
            $r.failed | Should -BeNullOrEmpty
            $r.join_result | Should -Be 'left'
            $r.warnings | Should -Match 'cloud-only'
            @($global:DsregCalls) | Should -Be @('/leave')
        }

        It 'refuses to rejoin a cloud-only device at all' {
            Set-Device @($script:CloudOnly)
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'rejoined'; allow_cloud_only_leave = $true }
            $r.failed | Should -BeTrue
            $r.msg | Should -Match 'forcerecovery'
            Should -Invoke -ModuleName _HybridJoin Invoke-M365TaskScript -Times 0 -Exactly
        }

        It 'refuses to leave a hybrid device when the preflight check <check> fails' -TestCases @(
            @{ check = 'domain_controller' }, @{ check = 'service_connection_point' }, @{ check = 'automatic_device_join_task' }
        ) {
            switch ($check) {
                'domain_controller' { Mock -ModuleName _HybridJoin Test-M365DomainController { [pscustomobject]@{ Ok = $false; Detail = 'Getting DC name failed: Status = 1355 0x54b ERROR_NO_SUCH_DOMAIN' } } }
                'service_connection_point' { Mock -ModuleName _HybridJoin Get-M365ServiceConnectionPoint { [pscustomobject]@{ Found = $false; Source = 'ad'; Detail = 'no azureADId keyword' } } }
                'automatic_device_join_task' { Mock -ModuleName _HybridJoin Get-M365DeviceJoinTask { [pscustomobject]@{ Found = $true; State = 'Disabled' } } }
            }
            Set-Device @($script:Hybrid)
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'left' }
            $r.failed | Should -BeTrue
            $r.msg | Should -Match "refusing dsregcmd /leave because a rejoin could not succeed: $check"
            $r.preflight.checks.$check.ok | Should -BeFalse
            Should -Invoke -ModuleName _HybridJoin Invoke-M365TaskScript -Times 0 -Exactly
        }

        It 'refuses the leave when a preflight check cannot run at all' {
            Mock -ModuleName _HybridJoin Get-M365DeviceJoinTask { throw [System.Management.Automation.CommandNotFoundException]::new("The term 'Get-ScheduledTask' is not recognized") }
            Set-Device @($script:Hybrid)
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'rejoined' }
            $r.failed | Should -BeTrue
            $r.preflight.checks.automatic_device_join_task.detail | Should -Match 'Get-ScheduledTask'
            Should -Invoke -ModuleName _HybridJoin Invoke-M365TaskScript -Times 0 -Exactly
        }

        It 'leaves a hybrid device after a passing preflight' {
            Set-Device @($script:Hybrid)
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'left' }
            $r.failed | Should -BeNullOrEmpty
            $r.preflight.passed | Should -BeTrue
            $r.join_result | Should -Be 'left'
            $r.reboot_required | Should -BeTrue
            Should -Invoke -ModuleName _HybridJoin Test-M365DomainController -ParameterFilter { $DomainName -eq 'CONTOSO' }
        }

        It 'is idempotent on a device that is only domain joined' {
            Set-Device @($script:DomainOnly)
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'left' }
            $r.changed | Should -BeFalse
            $r.join_result | Should -Be 'left'
        }

        It 'runs the preflight in check mode too, and nothing else' {
            Set-Device @($script:Hybrid)
            Mock -ModuleName _HybridJoin Get-M365DeviceJoinTask { [pscustomobject]@{ Found = $false; State = $null } }
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'left' } -CheckMode
            $r.failed | Should -BeTrue
            $r.msg | Should -Match 'automatic_device_join_task'
        }
    }

    Context 'state: rejoined' {
        It 'leaves then joins as SYSTEM, in that order, writing the reboot marker' {
            Set-Device @($script:Hybrid)
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'rejoined' }
            $r.failed | Should -BeNullOrEmpty
            $r.action | Should -Be 'rejoin'
            @($global:DsregCalls) | Should -Be @('/leave', '/join /debug')
            $r.join_result | Should -Be 'joined'
            $global:Markers['win_dsreg_join'] | Should -Match '/join submitted'
        }

        It 'is idempotent: a second run does not rejoin a device it just rejoined' {
            Set-Device @($script:Hybrid)
            $null = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'rejoined' }
            $global:JoinRecord['Action'] | Should -Be 'rejoin'
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'rejoined' }
            $r.changed | Should -BeFalse
            $r.join_result | Should -Be 'joined'
            $r.submitted_join.status | Should -Be 'confirmed'
            @($global:DsregCalls).Count | Should -Be 2
        }

        It 'finishes a rejoin whose run died between the leave and the join' {
            $global:Markers['win_dsreg_join'] = '2026-11-26T18:00:00Z dsregcmd /leave done; hybrid join to follow'
            Set-Device @($script:DomainOnly)
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'rejoined' }
            $r.action | Should -Be 'join'
            @($global:DsregCalls) | Should -Be @('/join /debug')
            $r.join_result | Should -Be 'joined'
        }

        It 'stops after a failed leave and reports nothing changed' {
            Set-Device @($script:Hybrid)
            $global:LeaveExit = 5
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'rejoined' }
            $r.failed | Should -BeTrue
            $r.changed | Should -BeFalse
            $r.msg | Should -Match '/leave failed'
            @($global:DsregCalls) | Should -Be @('/leave')
            Should -Invoke -ModuleName _HybridJoin Set-M365RebootMarker -Times 0 -Exactly
        }

        It 'still owes the restart when /leave reports failure but the device did leave' {
            Set-Device @($script:Hybrid)
            $global:LeaveExit = 5
            # dsregcmd exits non-zero, yet the next /status shows the device domain joined only.
            $global:LeftAnyway = $script:DomainOnly
            Mock -ModuleName _HybridJoin Invoke-M365TaskScript {
                $global:DsregCalls.Add(($Parameters.Arguments -join ' '))
                Set-Device @($global:LeftAnyway)
                New-TaskResult -Output @{ output = 'DSREGCMD_END_STATUS'; exit_code = 5 }
            } -ParameterFilter { $RunAs -eq 'System' }
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'rejoined' }
            $r.failed | Should -BeTrue
            $r.changed | Should -BeTrue
            $r.reboot_required | Should -BeTrue
            $r.join_result | Should -Be 'left'
            $r.msg | Should -Match 'reported failure .* but the device is now domain_joined'
            $global:Markers['win_dsreg_join'] | Should -Match 'reported failure but the device left'
            @($global:DsregCalls) | Should -Be @('/leave') -Because 'no join follows a leave that reported failure'
        }

        It 'refuses to overlap another leave/join run on the same host, changing nothing' {
            Set-Device @($script:Hybrid)
            Mock -ModuleName _HybridJoin Enter-M365HostLock { $null }
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'rejoined' }
            $r.failed | Should -BeTrue
            $r.changed | Should -BeFalse
            $r.msg | Should -Match 'another win_dsreg_join run is leaving or joining'
            @($global:DsregCalls) | Should -HaveCount 0
            Should -Invoke -ModuleName _HybridJoin Set-M365RebootMarker -Times 0 -Exactly
        }

        It 'does not give a held lock to a second holder' {
            $held = Enter-M365HostLock -Name 'pester-lock-test'
            $held | Should -Not -BeNullOrEmpty
            $other = Start-ThreadJob -ScriptBlock { param($m) $x = Enter-M365HostLock -Name 'pester-lock-test'; [bool]$x } -ArgumentList 1 -InitializationScript ([scriptblock]::Create("Import-Module '$((Get-Module _DsregJoin).Path)'"))
            Receive-Job -Job $other -Wait -AutoRemoveJob | Should -BeFalse -Because 'the lock is held'
            Exit-M365HostLock -Lock $held
        }

        It 'says the device has left when the join after the leave fails' {
            Set-Device @($script:Hybrid)
            $global:JoinExit = 1
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'rejoined' }
            $r.failed | Should -BeTrue
            $r.changed | Should -BeTrue
            $r.msg | Should -Match 'LEFT its hybrid join'
            $global:Markers['win_dsreg_join'] | Should -Match '/leave'
        }
    }

    Context 'a submitted join across runs (HybridJoin record)' {
        BeforeAll {
            Function Set-JoinRecord([double]$HoursAgo, [string]$At) {
                if (-not $At) { $At = [datetime]::UtcNow.AddHours(-$HoursAgo).ToString('yyyy-MM-ddTHH:mm:ssZ', [cultureinfo]::InvariantCulture) }
                $global:JoinRecord = @{ Action = 'rejoin'; SubmittedBy = 'CONTOSO\admin (win_dsreg_join state=rejoined)'; SubmittedAt = $At }
            }
        }

        It 'after the reboot step cleared the marker, a join still pending is not submitted again (state=<state>)' -TestCases @(
            @{ state = 'joined' }, @{ state = 'rejoined' }
        ) {
            Set-Device @($script:DomainOnly)
            $global:AfterJoin = @($script:DomainPending)
            $null = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'rejoined'; join_wait = 0 }
            $global:Markers.Clear()   # what win_reboot_if_needed does after the restart
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = $state; join_wait = 0 }
            $r.failed | Should -BeNullOrEmpty
            $r.changed | Should -BeFalse
            $r.action | Should -Be 'none'
            $r.join_result | Should -Be 'pending'
            $r.pending | Should -BeTrue
            $r.reboot_required | Should -BeFalse
            $r.msg | Should -Match 'not repeated before'
            @($global:DsregCalls) | Should -Be @('/join /debug')
            $global:JoinRecord.ContainsKey('SubmittedAt') | Should -BeTrue
        }

        It 'confirms the join once dsregcmd shows it (AzureAdJoined and DomainJoined YES), changing nothing (state=<state>, check mode <check>)' -TestCases @(
            @{ state = 'joined'; check = $false; left = 0 }
            @{ state = 'rejoined'; check = $false; left = 0 }
            @{ state = 'rejoined'; check = $true; left = 3 }   # check mode deletes nothing
        ) {
            Set-JoinRecord -HoursAgo 2
            Set-Device @($script:Hybrid)
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = $state } -CheckMode:$check
            $r.changed | Should -BeFalse
            $r.action | Should -Be 'none'
            $r.join_result | Should -Be 'joined'
            $r.pending | Should -BeFalse
            $r.submitted_join.status | Should -Be 'confirmed'
            $global:JoinRecord.Count | Should -Be $left
            Should -Invoke -ModuleName _HybridJoin Invoke-M365TaskScript -Times 0 -Exactly
        }

        It 'allows the join again once pending_expiry has passed, with a warning, and records the new one' {
            Set-JoinRecord -HoursAgo 30
            $old = $global:JoinRecord['SubmittedAt']
            Set-Device @($script:DomainOnly)
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'rejoined'; pending_expiry = 24 }
            $r.failed | Should -BeNullOrEmpty
            $r.action | Should -Be 'join'
            $r.changed | Should -BeTrue
            $r.warnings | Should -Match 'did not complete within pending_expiry \(24 h\)'
            @($global:DsregCalls) | Should -Be @('/join /debug')
            $global:JoinRecord['SubmittedAt'] | Should -Not -Be $old
            $global:JoinRecord['Action'] | Should -Be 'join'
        }

        It 'keeps waiting within a longer pending_expiry' {
            Set-JoinRecord -HoursAgo 30
            Set-Device @($script:DomainOnly)
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'joined'; pending_expiry = 48 }
            $r.join_result | Should -Be 'pending'
            Should -Invoke -ModuleName _HybridJoin Invoke-M365TaskScript -Times 0 -Exactly
        }

        It 'treats an unreadable SubmittedAt as expired rather than waiting for ever' {
            Set-JoinRecord -At 'yesterday'
            Set-Device @($script:DomainOnly)
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'joined' }
            $r.warnings | Should -Match 'submitted at yesterday .* did not complete within pending_expiry'
            $r.action | Should -Be 'join'
            $r.submitted_join.status | Should -Be 'submitted'
        }

        It 'voids a pending record when the device is left' {
            Set-JoinRecord -HoursAgo 1
            Set-Device @($script:CloudOnly)
            $global:AfterLeave = $script:Workgroup
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'left'; allow_cloud_only_leave = $true }
            $r.join_result | Should -Be 'left'
            $global:JoinRecord.Count | Should -Be 0
        }

        It 'warns on state=left that a pending join may still complete' {
            Set-JoinRecord -HoursAgo 1
            Set-Device @($script:DomainOnly)
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'left' }
            $r.changed | Should -BeFalse
            $r.warnings | Should -Match 'still pending'
        }
    }

    Context 'validation' {
        It 'refuses <name>' -TestCases @(
            @{ name = 'an unknown state'; params = @{ state = 'gone' }; pattern = 'state' }
            @{ name = 'a negative join_wait'; params = @{ state = 'joined'; join_wait = -1 }; pattern = '^join_wait: ' }
            @{ name = 'a zero poll_interval'; params = @{ state = 'joined'; poll_interval = 0 }; pattern = '^poll_interval: ' }
            @{ name = 'a huge timeout'; params = @{ state = 'joined'; timeout = 86400 }; pattern = '^timeout: ' }
            @{ name = 'a zero pending_expiry'; params = @{ state = 'joined'; pending_expiry = 0 }; pattern = '^pending_expiry: .* hours' }
        ) {
            Set-Device @($script:DomainOnly)
            $r = Invoke-RungModule -Name win_dsreg_join -Params $params
            $r.failed | Should -BeTrue
            $r.msg | Should -Match $pattern
            Should -Invoke -ModuleName _HybridJoin Invoke-M365TaskScript -Times 0 -Exactly
        }

        It 'refuses to act when dsregcmd /status cannot be read' {
            Set-Device @('The command is not recognized')
            $r = Invoke-RungModule -Name win_dsreg_join -Params @{ state = 'left' }
            $r.failed | Should -BeTrue
            $r.msg | Should -Match 'cannot decide safely'
        }
    }
}
