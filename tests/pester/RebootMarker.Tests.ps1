# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# _RebootMarker.psm1 against an in-memory registry key (pwsh on Linux has no registry).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '..' '..' 'plugins' 'module_utils' '_RebootMarker.psm1') -Force
    $script:Key = 'HKLM:\SOFTWARE\m365ops\activation\RebootRequired'
}

Describe 'RebootMarker' {
    BeforeEach {
        $script:Store = @{}
        $script:KeyExists = $false
        Mock -ModuleName _RebootMarker Get-M365RebootMarkerValue {
            if ($Path -ne $script:Key) { throw "wrong key $Path" }
            $copy = @{}; foreach ($k in $script:Store.Keys) { $copy[$k] = $script:Store[$k] }; $copy
        }
        Mock -ModuleName _RebootMarker Set-M365RebootMarkerValue {
            if ($Path -ne $script:Key) { throw "wrong key $Path" }
            $script:KeyExists = $true; $script:Store[$Name] = $Value
        }
        Mock -ModuleName _RebootMarker Remove-M365RebootMarkerValue { $script:Store.Remove($Name) }
        Mock -ModuleName _RebootMarker Remove-M365RebootMarkerKey { $script:Store.Clear(); $script:KeyExists = $false }
    }

    It 'clears only the sources the boot satisfied (written before it), and says which' {
        $script:Store['win_token_broker_cache'] = '2026-12-04T09:14:50Z TokenBroker caches quarantined in q1'
        $script:Store['win_activation_repair'] = '2026-12-04T09:14:55Z restart scheduled from boot 2026-12-01T07:00:00Z'
        $script:Store['win_dsreg_join'] = '2026-12-04T09:40:00Z dsregcmd /join submitted'
        $script:Store['hand_made'] = 'no time here'
        $boot = [DateTime]::new(2026, 12, 4, 9, 31, 40, [DateTimeKind]::Utc)
        @(Get-M365SatisfiedMarkerSource -Marker $script:Store -BootTime $boot) | Should -Be @('win_activation_repair', 'win_token_broker_cache')
        $cleared = @(Clear-M365SatisfiedRebootMarker -BootTime $boot.ToLocalTime())
        $cleared | Should -Be @('win_activation_repair', 'win_token_broker_cache')
        @($script:Store.Keys | Sort-Object) | Should -Be @('hand_made', 'win_dsreg_join')
        @(Clear-M365SatisfiedRebootMarker -BootTime $boot).Count | Should -Be 0
    }

    It 'is empty when nothing is pending' {
        $m = Get-M365RebootMarker
        $m | Should -BeOfType [hashtable]
        $m.Count | Should -Be 0
    }

    It 'writes the UTC ISO time and the reason under the module name' {
        $before = [DateTime]::UtcNow.AddSeconds(-1)
        Set-M365RebootMarker -Source 'win_token_broker_cache' -Reason 'TokenBroker caches quarantined'
        $m = Get-M365RebootMarker
        $m.Keys | Should -Be @('win_token_broker_cache')
        $stamp, $reason = $m['win_token_broker_cache'] -split ' ', 2
        $stamp | Should -Match '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$'
        [DateTime]::Parse($stamp, [Globalization.CultureInfo]::InvariantCulture, [Globalization.DateTimeStyles]::AdjustToUniversal) | Should -BeGreaterOrEqual $before.AddSeconds(-1)
        $reason | Should -Be 'TokenBroker caches quarantined'
    }

    It 'keeps one marker per source and overwrites the same source' {
        Set-M365RebootMarker -Source 'win_dsreg_join' -Reason 'first'
        Set-M365RebootMarker -Source 'win_token_broker_cache' -Reason 'x'
        Set-M365RebootMarker -Source 'win_dsreg_join' -Reason 'second'
        $m = Get-M365RebootMarker
        $m.Count | Should -Be 2
        $m['win_dsreg_join'] | Should -Match ' second$'
    }

    It 'flattens a multi-line reason to one line' {
        Set-M365RebootMarker -Source 'x' -Reason "line one`r`nline two"
        (Get-M365RebootMarker)['x'] | Should -Match ' line one line two$'
    }

    It 'refuses a bad source <Source> and writes nothing' -ForEach @(
        @{ Source = '' }, @{ Source = 'a\b' }, @{ Source = 'win_*' }, @{ Source = 'has space' }
    ) {
        { Set-M365RebootMarker -Source $Source -Reason 'r' } | Should -Throw -ExceptionType ([System.ArgumentException]) -ExpectedMessage '*Source*'
        Should -Invoke -ModuleName _RebootMarker Set-M365RebootMarkerValue -Times 0 -Exactly
    }

    It 'refuses an empty reason and writes nothing' {
        { Set-M365RebootMarker -Source 'x' -Reason " `n " } | Should -Throw -ExceptionType ([System.ArgumentException]) -ExpectedMessage '*Reason*'
        Should -Invoke -ModuleName _RebootMarker Set-M365RebootMarkerValue -Times 0 -Exactly
    }

    It 'clears one source and leaves the others' {
        Set-M365RebootMarker -Source 'a' -Reason 'r'
        Set-M365RebootMarker -Source 'b' -Reason 'r'
        Clear-M365RebootMarker -Source 'a'
        (Get-M365RebootMarker).Keys | Should -Be @('b')
        Should -Invoke -ModuleName _RebootMarker Remove-M365RebootMarkerKey -Times 0 -Exactly
    }

    It 'clears everything (the key) without -Source' {
        Set-M365RebootMarker -Source 'a' -Reason 'r'
        Clear-M365RebootMarker
        (Get-M365RebootMarker).Count | Should -Be 0
        Should -Invoke -ModuleName _RebootMarker Remove-M365RebootMarkerKey -Times 1 -Exactly -ParameterFilter { $Path -eq $script:Key }
    }
}

Describe 'Repair record' {
    BeforeEach {
        # One in-memory store per key: the record must never land in the reboot marker.
        $script:Keys = @{}
        Mock -ModuleName _RebootMarker Get-M365RebootMarkerValue {
            $copy = @{}; if ($script:Keys.ContainsKey($Path)) { foreach ($k in $script:Keys[$Path].Keys) { $copy[$k] = $script:Keys[$Path][$k] } }; $copy
        }
        Mock -ModuleName _RebootMarker Set-M365RebootMarkerValue {
            if (-not $script:Keys.ContainsKey($Path)) { $script:Keys[$Path] = @{} }
            $script:Keys[$Path][$Name] = $Value
        }
        Mock -ModuleName _RebootMarker Remove-M365RebootMarkerValue { if ($script:Keys.ContainsKey($Path)) { $script:Keys[$Path].Remove($Name) } }
    }

    It 'writes the UTC time and summary under the rung name, in its own key' {
        Set-M365RepairRecord -Rung 'reset_token_broker' -Summary "TokenBroker caches quarantined`r`nin 20261126T084100Z-3fa2c9d1"
        @($script:Keys.Keys) | Should -Be @('HKLM:\SOFTWARE\m365ops\activation\Repairs')
        $r = Get-M365RepairRecord
        @($r.Keys) | Should -Be @('reset_token_broker')
        $r.reset_token_broker.at | Should -Match '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$'
        $r.reset_token_broker.summary | Should -Be 'TokenBroker caches quarantined in 20261126T084100Z-3fa2c9d1'
        # A reboot clears the marker, never the record.
        Clear-M365RebootMarker
        (Get-M365RepairRecord).Count | Should -Be 1
    }

    It 'gives a hand-edited value no time' {
        $script:Keys['HKLM:\SOFTWARE\m365ops\activation\Repairs'] = @{ purge_office_credentials = 'yesterday, by hand' }
        $r = Get-M365RepairRecord
        $null -eq $r.purge_office_credentials.at | Should -BeTrue
        $r.purge_office_credentials.summary | Should -Be 'yesterday, by hand'
    }

    It 'forgets one rung on Clear and keeps the others' {
        Set-M365RepairRecord -Rung 'reset_token_broker' -Summary 'quarantined'
        Set-M365RepairRecord -Rung 'purge_office_credentials' -Summary 'purged'
        Clear-M365RepairRecord -Rung 'reset_token_broker'
        @((Get-M365RepairRecord).Keys) | Should -Be @('purge_office_credentials')
    }

    It 'refuses a rung name <Rung> that is not a plain name, and an empty summary, writing nothing' -ForEach @(
        @{ Rung = '' }, @{ Rung = 'a\b' }, @{ Rung = '*' }
    ) {
        { Set-M365RepairRecord -Rung $Rung -Summary 'x' } | Should -Throw -ExceptionType ([System.ArgumentException])
        { Set-M365RepairRecord -Rung 'reset_token_broker' -Summary " `n " } | Should -Throw -ExpectedMessage '*say what reset_token_broker changed*'
        $script:Keys.Count | Should -Be 0
    }
}

Describe 'Get-M365WindowsPendingReboot' {
    BeforeEach {
        Mock -ModuleName _RebootMarker Test-M365RebootRegistryKey { $false }
        Mock -ModuleName _RebootMarker Get-M365RebootRegistryValue { $null }
    }

    It 'is empty when Windows has nothing pending' {
        @(Get-M365WindowsPendingReboot).Count | Should -Be 0
    }

    It 'names each signal Windows raises' {
        Mock -ModuleName _RebootMarker Test-M365RebootRegistryKey { $Path -like '*Component Based Servicing\RebootPending' }
        Mock -ModuleName _RebootMarker Get-M365RebootRegistryValue { @('\??\C:\Windows\Temp\a.dll', '', '\??\C:\x.tmp', '') }
        $r = @(Get-M365WindowsPendingReboot)
        $r | Should -Be @('Component Based Servicing: RebootPending', 'Session Manager: PendingFileRenameOperations (2 entries)')
    }

    It 'reports Windows Update' {
        Mock -ModuleName _RebootMarker Test-M365RebootRegistryKey { $Path -like '*WindowsUpdate\Auto Update\RebootRequired' }
        @(Get-M365WindowsPendingReboot) | Should -Be @('Windows Update: RebootRequired')
    }
}
