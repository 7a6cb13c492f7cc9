# Logic of plugins/modules/win_reboot_state.ps1 under pwsh with the Windows reads mocked.
# The module's functions are loaded from its AST (the module body needs Ansible.Basic);
# _RebootMarker.psm1 is the real one with only its four registry functions mocked, so
# clearing goes through the same code the rung modules use to set the marker.

BeforeAll {
    $root = Resolve-Path (Join-Path $PSScriptRoot '..' '..')
    Import-Module (Join-Path $root 'plugins' 'module_utils' '_RebootMarker.psm1') -Force
    $modulePath = Join-Path $root 'plugins' 'modules' 'win_reboot_state.ps1'
    $tokens = $null; $errors = $null
    $ast = [System.Management.Automation.Language.Parser]::ParseFile($modulePath, [ref]$tokens, [ref]$errors)
    if ($errors.Count) { throw "win_reboot_state.ps1 does not parse: $($errors[0])" }
    foreach ($fn in $ast.FindAll({ param($n) $n -is [System.Management.Automation.Language.FunctionDefinitionAst] }, $false)) {
        . ([scriptblock]::Create($fn.Extent.Text))
    }
    $script:SourcePattern = '^[A-Za-z0-9_.-]{1,128}$'

    $script:boot = [DateTime]::new(2026, 11, 26, 9, 15, 30, [DateTimeKind]::Utc)
    $script:bootText = '2026-11-26T09:15:30.000000Z'
    $script:later = [DateTime]::new(2026, 11, 26, 9, 41, 2, [DateTimeKind]::Utc)
    $script:markerKey = 'HKLM:\SOFTWARE\m365ops\activation\RebootRequired'
}

Describe 'win_reboot_state' {
    BeforeEach {
        # The registry under the marker, as the real module util would read it.
        $script:store = @{}
        Mock -ModuleName _RebootMarker Get-M365RebootMarkerValue { @{} + $script:store }
        Mock -ModuleName _RebootMarker Remove-M365RebootMarkerValue { param($Path, $Name) $script:store.Remove($Name) }
        Mock -ModuleName _RebootMarker Remove-M365RebootMarkerKey { $script:store.Clear() }
        Mock Get-M365BootTime { $script:boot }
        Mock -ModuleName _RebootMarker Test-M365RebootRegistryKey { $false }
        Mock -ModuleName _RebootMarker Get-M365RebootRegistryValue { $null }
    }

    Context 'reading' {
        It 'reports no reboot when there is no marker' {
            $r = Get-M365RebootState -IncludeWindowsPending $false
            $r.reboot_required | Should -BeFalse
            $r.marker.Count | Should -Be 0
            $r.changed | Should -BeFalse
            $r.boot_time | Should -Be $script:bootText
            $r.boot_time_changed | Should -BeNullOrEmpty
        }

        It 'reports the marker of each source' {
            $script:store['win_token_broker_cache'] = '2026-11-26T09:20:00Z quarantined TokenBroker caches of S-1-5-21-1-2-3-1104'
            $r = Get-M365RebootState -IncludeWindowsPending $false
            $r.reboot_required | Should -BeTrue
            $r.marker['win_token_broker_cache'] | Should -BeLike '2026-11-26T09:20:00Z quarantined*'
            $r.changed | Should -BeFalse
        }

        It 'ignores Windows signals unless asked' {
            Mock -ModuleName _RebootMarker Test-M365RebootRegistryKey { $true }
            $r = Get-M365RebootState -IncludeWindowsPending $false
            $r.reboot_required | Should -BeFalse
            $r.windows_reasons.Count | Should -Be 0
            Should -Invoke -ModuleName _RebootMarker Test-M365RebootRegistryKey -Times 0
        }

        It 'reads the servicing, update and rename signals when asked' {
            Mock -ModuleName _RebootMarker Test-M365RebootRegistryKey { $Path -like '*Component Based Servicing\RebootPending' }
            Mock -ModuleName _RebootMarker Get-M365RebootRegistryValue {
                if ($Name -eq 'PendingFileRenameOperations') {
                    # REG_MULTI_SZ as Get-ItemProperty returns it: source, destination pairs.
                    @('\??\C:\Windows\Temp\old.dll', '', '\??\C:\Windows\Temp\a.tmp', '\??\C:\Windows\System32\a.dll')
                }
            }
            $r = Get-M365RebootState -IncludeWindowsPending $true
            $r.windows_pending | Should -BeTrue
            $r.reboot_required | Should -BeTrue
            $r.windows_reasons | Should -Contain 'Component Based Servicing: RebootPending'
            $r.windows_reasons | Should -Contain 'Session Manager: PendingFileRenameOperations (3 entries)'
            $r.windows_reasons | Should -Not -Contain 'Windows Update: RebootRequired'
        }

        It 'gives the boot time in UTC whatever kind CIM returns' {
            Mock Get-M365BootTime { $script:boot.ToLocalTime() }
            (Get-M365RebootState -IncludeWindowsPending $false).boot_time | Should -Be $script:bootText
        }
    }

    Context 'clearing after the restart' {
        BeforeEach {
            $script:store['win_token_broker_cache'] = '2026-11-26T09:20:00Z quarantined caches'
            $script:store['win_dsreg_join'] = '2026-11-26T09:21:00Z rejoined'
        }

        It 'clears the named sources once the boot time moved' {
            Mock Get-M365BootTime { $script:later }
            $r = Get-M365RebootState -ClearSources @('win_token_broker_cache', 'win_dsreg_join') -BootTimeBefore $script:bootText
            $r.changed | Should -BeTrue
            $r.boot_time_changed | Should -BeTrue
            $r.cleared | Should -Be @('win_dsreg_join', 'win_token_broker_cache')
            $r.marker.Count | Should -Be 0
            $r.reboot_required | Should -BeFalse
            $script:store.Count | Should -Be 0
            $r.diff.before.marker.Count | Should -Be 2
            $r.diff.after.marker.Count | Should -Be 0
        }

        It 'clears only the listed sources unless asked to clear what is satisfied' {
            Mock Get-M365BootTime { $script:later }
            $r = Get-M365RebootState -ClearSources @('win_token_broker_cache') -BootTimeBefore $script:bootText
            $r.cleared | Should -Be @('win_token_broker_cache')
            $script:store.Keys | Should -Be @('win_dsreg_join')
            # written at 09:21, before the 09:41 boot: satisfied, so no restart is needed
            $r.satisfied | Should -Be @('win_dsreg_join')
            $r.reboot_required | Should -BeFalse
        }

        It 'keeps every marker when the boot time did not move' {
            $r = Get-M365RebootState -ClearSources @('win_token_broker_cache') -BootTimeBefore $script:bootText
            $r.boot_time_changed | Should -BeFalse
            $r.changed | Should -BeFalse
            $r.cleared.Count | Should -Be 0
            $r.kept | Should -Be @('win_token_broker_cache')
            $script:store.Count | Should -Be 2
            Should -Invoke -ModuleName _RebootMarker Remove-M365RebootMarkerValue -Times 0
        }

        It 'changes nothing in check mode but reports what it would clear' {
            Mock Get-M365BootTime { $script:later }
            $r = Get-M365RebootState -ClearSources @('win_token_broker_cache') -BootTimeBefore $script:bootText -CheckMode $true
            $r.changed | Should -BeTrue
            $r.cleared | Should -Be @('win_token_broker_cache')
            $script:store.Count | Should -Be 2
            Should -Invoke -ModuleName _RebootMarker Remove-M365RebootMarkerValue -Times 0
        }

        It 'is idempotent: a second clear finds nothing to do' {
            Mock Get-M365BootTime { $script:later }
            $null = Get-M365RebootState -ClearSources @('win_token_broker_cache', 'win_dsreg_join') -BootTimeBefore $script:bootText
            $r = Get-M365RebootState -ClearSources @('win_token_broker_cache', 'win_dsreg_join') -BootTimeBefore $script:bootText
            $r.changed | Should -BeFalse
            $r.cleared.Count | Should -Be 0
        }
    }

    Context 'clearing what a restart satisfied (clear_satisfied)' {
        BeforeEach {
            # boot: 09:15:30. One request from before that boot, one from after it.
            $script:store['win_token_broker_cache'] = '2026-11-26T09:10:00Z quarantined caches'
            $script:store['win_dsreg_join'] = '2026-11-26T09:21:00Z rejoined'
        }

        It 'reports, without clearing, the requests a restart already satisfied' {
            $r = Get-M365RebootState
            $r.satisfied | Should -Be @('win_token_broker_cache')
            $r.changed | Should -BeFalse
            $script:store.Count | Should -Be 2
            $r.reboot_required | Should -BeTrue
        }

        It 'needs no restart when every request is older than the boot' {
            $script:store.Remove('win_dsreg_join')
            $r = Get-M365RebootState
            $r.reboot_required | Should -BeFalse
            $r.marker.Count | Should -Be 1
        }

        It 'clears the sources written before the current boot and keeps the newer ones' {
            $r = Get-M365RebootState -ClearSatisfied $true
            $r.cleared | Should -Be @('win_token_broker_cache')
            $r.kept | Should -Be @('win_dsreg_join')
            $script:store.Keys | Should -Be @('win_dsreg_join')
            $r.reboot_required | Should -BeTrue
            $r.changed | Should -BeTrue
        }

        It 'clears everything once the host booted after the last request' {
            Mock Get-M365BootTime { $script:later }
            $r = Get-M365RebootState -ClearSatisfied $true
            $r.cleared | Should -Be @('win_dsreg_join', 'win_token_broker_cache')
            $r.kept.Count | Should -Be 0
            $script:store.Count | Should -Be 0
        }

        It 'keeps a value without a readable timestamp rather than guess' {
            $script:store['hand_written'] = 'please restart'
            Mock Get-M365BootTime { $script:later }
            $r = Get-M365RebootState -ClearSatisfied $true
            $r.kept | Should -Be @('hand_written')
            $script:store.Keys | Should -Be @('hand_written')
        }

        It 'a listed source is cleared by a moved boot time even without a timestamp' {
            $script:store['hand_written'] = 'please restart'
            Mock Get-M365BootTime { $script:later }
            $r = Get-M365RebootState -ClearSources @('hand_written') -BootTimeBefore $script:bootText -ClearSatisfied $true
            $r.cleared | Should -Be @('hand_written', 'win_dsreg_join', 'win_token_broker_cache')
            $script:store.Count | Should -Be 0
        }

        It 'reads marker times in UTC: <value>' -ForEach @(
            @{ value = '2026-11-26T09:10:00Z x'; expected = '2026-11-26T09:10:00' }
            @{ value = '26/11/2026 09:10 x'; expected = $null }
            @{ value = '2026-11-26T09:10:00Z'; expected = $null }
        ) {
            $t = Get-M365MarkerTime -Value $value
            if ($null -eq $expected) { $t | Should -BeNullOrEmpty }
            else {
                $t.Kind | Should -Be ([DateTimeKind]::Utc)
                $t.ToString('s') | Should -Be $expected
            }
        }
    }

    Context 'bad input changes nothing' {
        BeforeEach { $script:store['win_token_broker_cache'] = '2026-11-26T09:20:00Z x' }

        It 'refuses a source name that is not a module name: <source>' -ForEach @(
            @{ source = '*' }, @{ source = '..\Run' }, @{ source = '' }, @{ source = 'a b' }
        ) {
            Mock Get-M365BootTime { $script:later }
            { Get-M365RebootState -ClearSources @($source) -BootTimeBefore $script:bootText } |
                Should -Throw -ExceptionType ([System.ArgumentException]) -ExpectedMessage 'clear_sources:*'
            $script:store.Count | Should -Be 1
        }

        It 'refuses to clear without the boot time from before the restart' {
            { Get-M365RebootState -ClearSources @('win_token_broker_cache') -BootTimeBefore '' } |
                Should -Throw -ExpectedMessage 'boot_time_before is required*'
            $script:store.Count | Should -Be 1
            Should -Invoke Get-M365BootTime -Times 0
        }
    }
}
