# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# plugins/modules/win_activation_repair.ps1 run in-process the way the exec wrapper runs it
# (RungModuleHarness.ps1). Some tests stand in for a rung function to pin the ladder's
# rules (order, stop at the first failure, the restart); others run the real rung utils
# through the rung context, with only Windows' own calls mocked.

BeforeAll {
    . (Join-Path $PSScriptRoot 'RungModuleHarness.ps1')
    Initialize-RungHarness

    Function New-RungStandIn {
        # A rung that records its call and returns what its module would.
        param ([string]$Rung, [hashtable]$Result = @{}, [string]$FailWith)
        {
            param($Module)
            $global:RepairCalls.Add("rung $Rung")
            $global:RepairParams[$Rung] = $Module.Params
            foreach ($k in $Result.Keys) { $Module.Result[$k] = $Result[$k] }
            $Module.Warn("$Rung warned")
            if ($FailWith) { $Module.FailJson($FailWith) }
            $Module.ExitJson()
        }.GetNewClosure()
    }

    Function Set-RungStandInMock {
        # Rung 1 changes a user; rung 3 moves files and asks for a restart.
        Mock Invoke-M365CredentialPurge (New-RungStandIn -Rung 'purge_office_credentials' -Result @{
                changed = $true; removed_count = 1; users = @(@{ user = 'CONTOSO\alice'; sid = 'S-1-5-21-1'; status = 'changed'; message = ''; removed = @('MicrosoftOffice16_Data:x') }) })
        Mock Invoke-M365TokenBrokerReset (New-RungStandIn -Rung 'reset_token_broker' -Result @{
                changed = $true; reboot_required = $true; quarantine_id = 'q1'; users = @(@{ user = 'CONTOSO\alice'; sid = 'S-1-5-21-1'; status = 'moved'; message = '' }) })
    }
}

Describe 'win_activation_repair' {
    BeforeEach {
        $global:RepairCalls = [System.Collections.Generic.List[string]]::new()
        $global:RepairParams = @{}
        $global:Shutdown = [System.Collections.Generic.List[object]]::new()
        $global:ShutdownRc = @(0)
        Mock Get-M365LastBootUpTime { [DateTime]::new(2026, 12, 4, 9, 15, 2, [DateTimeKind]::Utc).ToLocalTime() }
        Mock Set-M365RebootMarker { $global:RepairCalls.Add("marker $Source $Reason") }
        Mock -ModuleName _RestartRequest Invoke-M365ShutdownCommand {
            $global:Shutdown.Add(@($ArgumentList))
            $global:RepairCalls.Add("shutdown $($ArgumentList -join ' ')")
            $rc = if ($global:ShutdownRc.Count -ge $global:Shutdown.Count) { $global:ShutdownRc[$global:Shutdown.Count - 1] } else { 0 }
            @{ rc = $rc; output = '' }
        }
    }

    Context 'the ladder in one execution' {
    BeforeEach { Set-RungStandInMock }

        It 'runs each rung once, in the order given, each result in its module''s shape' {
            $r = Invoke-RungModule -Name win_activation_repair -Params @{ rungs = @('purge_office_credentials', 'reset_token_broker'); reboot = $false }
            $r.failed | Should -BeNullOrEmpty
            $r.run | Should -Be @('purge_office_credentials', 'reset_token_broker')
            @($global:RepairCalls | Where-Object { $_ -like 'rung *' }) | Should -Be @('rung purge_office_credentials', 'rung reset_token_broker')
            $r.rungs.purge_office_credentials.users[0].status | Should -Be 'changed'
            $r.rungs.purge_office_credentials.removed_count | Should -Be 1
            $r.rungs.purge_office_credentials.reboot_required | Should -BeFalse
            $r.rungs.purge_office_credentials.warnings | Should -Be @('purge_office_credentials warned')
            $r.rungs.reset_token_broker.quarantine_id | Should -Be 'q1'
            $r.changed | Should -BeTrue
        }

        It 'gives each rung its options with their defaults, and the fixed state of the rungs that also undo' {
            $null = Invoke-RungModule -Name win_activation_repair -Params @{
                rungs = @('purge_office_credentials', 'reset_token_broker'); reboot = $false
                reset_token_broker = @{ users = @('alice') }
            }
            $purge = $global:RepairParams['purge_office_credentials']
            $purge.patterns | Should -Be @('MicrosoftOffice1*')
            $purge.timeout | Should -Be 120
            $purge.require_logged_on | Should -BeFalse
            $reset = $global:RepairParams['reset_token_broker']
            $reset.users | Should -Be @('alice')
            $reset.state | Should -Be 'absent'
            $reset.quarantine_retention_days | Should -Be 30
        }

        It 'refuses a rung option its module refuses, naming it, before any rung runs' {
            $r = Invoke-RungModule -Name win_activation_repair -Params @{ rungs = @('reset_token_broker'); reset_token_broker = @{ state = 'restored' } }
            $r.failed | Should -BeTrue
            $r.msg | Should -Match 'state'
            $global:RepairCalls | Should -BeNullOrEmpty
        }

        It 'refuses an unknown or repeated rung naming rungs' {
            $r = Invoke-RungModule -Name win_activation_repair -Params @{ rungs = @('purge_office_credentials', 'format_disk') }
            $r.failed | Should -BeTrue
            $r.msg | Should -BeLike "rungs: unknown rung 'format_disk'*"
            $r = Invoke-RungModule -Name win_activation_repair -Params @{ rungs = @('purge_office_credentials', 'purge_office_credentials') }
            $r.msg | Should -BeLike 'rungs: each rung runs once*'
            $global:RepairCalls | Should -BeNullOrEmpty
        }

        It 'stops at the first rung that fails, and fails naming it' {
            Mock Invoke-M365CredentialPurge (New-RungStandIn -Rung 'purge_office_credentials' -Result @{ users = @() } -FailWith 'patterns: refused')
            $r = Invoke-RungModule -Name win_activation_repair -Params @{ rungs = @('purge_office_credentials', 'reset_token_broker') }
            $r.failed | Should -BeTrue
            $r.failed_rung | Should -Be 'purge_office_credentials'
            $r.msg | Should -Be 'purge_office_credentials: patterns: refused'
            $r.run | Should -Be @('purge_office_credentials')
            $r.rungs.purge_office_credentials.failed | Should -BeTrue
            $r.rungs.purge_office_credentials.msg | Should -Be 'patterns: refused'
            Should -Invoke Invoke-M365TokenBrokerReset -Times 0 -Exactly
            $global:Shutdown | Should -BeNullOrEmpty
        }

        It 'turns an error a rung did not handle into that rung''s failure' {
            Mock Invoke-M365CredentialPurge { throw 'the vault exploded' }
            $r = Invoke-RungModule -Name win_activation_repair -Params @{ rungs = @('purge_office_credentials', 'reset_token_broker') }
            $r.failed_rung | Should -Be 'purge_office_credentials'
            $r.rungs.purge_office_credentials.msg | Should -Be 'unhandled error: the vault exploded'
            Should -Invoke Invoke-M365TokenBrokerReset -Times 0 -Exactly
        }
    }

    Context 'the restart' {
    BeforeEach { Set-RungStandInMock }

        It 'records the boot time and the marker, then schedules the restart as win_reboot does' {
            $r = Invoke-RungModule -Name win_activation_repair -Params @{ rungs = @('purge_office_credentials', 'reset_token_broker') }
            $r.failed | Should -BeNullOrEmpty
            $global:Shutdown.Count | Should -Be 1
            $argv = @($global:Shutdown[0])
            $argv[0..2] | Should -Be @('/r', '/t', '10')
            $argv[3] | Should -Be '/c'
            $argv[4] | Should -Be 'Restart by m365ops.activation: reset_token_broker: returned reboot_required'
            $r.restart.scheduled | Should -BeTrue
            $r.restart.reboot_required | Should -BeTrue
            $r.restart.rebooted | Should -BeFalse
            # As text, the format of win_activation_facts' last_boot (ConvertFrom-Json would make it a DateTime).
            $global:RungHarnessOutput | Should -Match '"boot_time_before":"2026-12-04T09:15:02Z"'
            # The marker is down before the restart is asked for: a controller that dies
            # after the shutdown still leaves the next run what it needs.
            $marker = $global:RepairCalls.FindIndex([Predicate[string]] { param($c) $c -like 'marker win_activation_repair *' })
            $shutdown = $global:RepairCalls.FindIndex([Predicate[string]] { param($c) $c -like 'shutdown *' })
            $marker | Should -BeGreaterOrEqual 0
            $marker | Should -BeLessThan $shutdown
            $global:RepairCalls[$marker] | Should -BeLike '*from boot 2026-12-04T09:15:02Z*reset_token_broker*'
        }

        It 'uses the delay and message given, the message cut to what shutdown /c takes' {
            $null = Invoke-RungModule -Name win_activation_repair -Params @{ rungs = @('reset_token_broker'); pre_reboot_delay = 30; msg = ('x' * 600) }
            $argv = @($global:Shutdown[0])
            $argv[2] | Should -Be '30'
            $argv[4].Length | Should -Be 500
        }

        It 'replaces a restart someone else scheduled (1190), as win_reboot does' {
            $global:ShutdownRc = @(1190, 0, 0)
            $r = Invoke-RungModule -Name win_activation_repair -Params @{ rungs = @('reset_token_broker') }
            @($global:Shutdown | ForEach-Object { $_[0] }) | Should -Be @('/r', '/a', '/r')
            $r.restart.scheduled | Should -BeTrue
        }

        It 'says so, keeping the marker, when shutdown.exe refuses' {
            $global:ShutdownRc = @(5)
            $r = Invoke-RungModule -Name win_activation_repair -Params @{ rungs = @('reset_token_broker') }
            $r.restart.scheduled | Should -BeFalse
            $r.restart.msg | Should -BeLike 'scheduling the restart failed (shutdown.exe rc 5*the next run restarts the host'
            Should -Invoke Set-M365RebootMarker -Times 1 -Exactly -ParameterFilter { $Source -eq 'win_activation_repair' }
        }

        It 'restarts for the rungs before a failed one' {
            Mock Invoke-M365BrokerPluginRegistration (New-RungStandIn -Rung 'reregister_broker_plugin' -FailWith 'users: nobody')
            $r = Invoke-RungModule -Name win_activation_repair -Params @{ rungs = @('reset_token_broker', 'reregister_broker_plugin') }
            $r.failed_rung | Should -Be 'reregister_broker_plugin'
            $r.restart.scheduled | Should -BeTrue
        }

        It 'only reports the restart with reboot false, in check mode, or when no rung asked' {
            $r = Invoke-RungModule -Name win_activation_repair -Params @{ rungs = @('reset_token_broker'); reboot = $false }
            $r.restart.reboot_required | Should -BeTrue
            $r.restart.msg | Should -BeLike 'reboot needed but not allowed (reboot: false)*'
            $r = Invoke-RungModule -Name win_activation_repair -Params @{ rungs = @('reset_token_broker') } -CheckMode
            $r.restart.msg | Should -BeLike 'would restart: *'
            $r = Invoke-RungModule -Name win_activation_repair -Params @{ rungs = @('purge_office_credentials') }
            $r.restart.reboot_required | Should -BeFalse
            $r.restart.msg | Should -Be 'no reboot needed'
            $global:Shutdown | Should -BeNullOrEmpty
            Should -Invoke Set-M365RebootMarker -Times 0 -Exactly
        }
    }

    Context 'the real rung utils through the rung context' {
        BeforeEach {
            Set-RungUser
            Set-RungUserMock
        }

        It 'fails a rung the way its own module fails, and stops there' {
            Mock Invoke-M365TokenBrokerReset (New-RungStandIn -Rung 'reset_token_broker')
            $r = Invoke-RungModule -Name win_activation_repair -Params @{
                rungs = @('purge_office_credentials', 'reset_token_broker'); purge_office_credentials = @{ patterns = @('**') }
            }
            $own = Invoke-RungModule -Name win_credential_purge -Params @{ patterns = @('**') }
            $r.failed_rung | Should -Be 'purge_office_credentials'
            $r.rungs.purge_office_credentials.msg | Should -Be $own.msg
            $r.rungs.purge_office_credentials.users | Should -Be $own.users
            Should -Invoke Invoke-M365TokenBrokerReset -Times 0 -Exactly
        }

        It 'passes TokenBroker users on: without any, the rung refuses as its module does' {
            $r = Invoke-RungModule -Name win_activation_repair -Params @{ rungs = @('reset_token_broker'); reset_token_broker = @{ quarantine_path = (Join-Path $TestDrive 'q') } }
            $r.failed_rung | Should -Be 'reset_token_broker'
            $r.rungs.reset_token_broker.msg | Should -BeLike 'users: name the users whose TokenBroker caches to reset*'
            Test-Path -LiteralPath (Join-Path $TestDrive 'q') | Should -BeFalse
        }
    }
}
