# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# RebootMarker.psm1 against an in-memory registry key (pwsh on Linux has no registry).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '..' '..' 'plugins' 'module_utils' 'RebootMarker.psm1') -Force
    $script:Key = 'HKLM:\SOFTWARE\m365ops\activation\RebootRequired'
}

Describe 'RebootMarker' {
    BeforeEach {
        $script:Store = @{}
        $script:KeyExists = $false
        Mock -ModuleName RebootMarker Get-M365RebootMarkerValue {
            if ($Path -ne $script:Key) { throw "wrong key $Path" }
            $copy = @{}; foreach ($k in $script:Store.Keys) { $copy[$k] = $script:Store[$k] }; $copy
        }
        Mock -ModuleName RebootMarker Set-M365RebootMarkerValue {
            if ($Path -ne $script:Key) { throw "wrong key $Path" }
            $script:KeyExists = $true; $script:Store[$Name] = $Value
        }
        Mock -ModuleName RebootMarker Remove-M365RebootMarkerValue { $script:Store.Remove($Name) }
        Mock -ModuleName RebootMarker Remove-M365RebootMarkerKey { $script:Store.Clear(); $script:KeyExists = $false }
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
        Should -Invoke -ModuleName RebootMarker Set-M365RebootMarkerValue -Times 0 -Exactly
    }

    It 'refuses an empty reason and writes nothing' {
        { Set-M365RebootMarker -Source 'x' -Reason " `n " } | Should -Throw -ExceptionType ([System.ArgumentException]) -ExpectedMessage '*Reason*'
        Should -Invoke -ModuleName RebootMarker Set-M365RebootMarkerValue -Times 0 -Exactly
    }

    It 'clears one source and leaves the others' {
        Set-M365RebootMarker -Source 'a' -Reason 'r'
        Set-M365RebootMarker -Source 'b' -Reason 'r'
        Clear-M365RebootMarker -Source 'a'
        (Get-M365RebootMarker).Keys | Should -Be @('b')
        Should -Invoke -ModuleName RebootMarker Remove-M365RebootMarkerKey -Times 0 -Exactly
    }

    It 'clears everything (the key) without -Source' {
        Set-M365RebootMarker -Source 'a' -Reason 'r'
        Clear-M365RebootMarker
        (Get-M365RebootMarker).Count | Should -Be 0
        Should -Invoke -ModuleName RebootMarker Remove-M365RebootMarkerKey -Times 1 -Exactly -ParameterFilter { $Path -eq $script:Key }
    }
}

Describe 'Get-M365WindowsPendingReboot' {
    BeforeEach {
        Mock -ModuleName RebootMarker Test-M365RebootRegistryKey { $false }
        Mock -ModuleName RebootMarker Get-M365RebootRegistryValue { $null }
    }

    It 'is empty when Windows has nothing pending' {
        @(Get-M365WindowsPendingReboot).Count | Should -Be 0
    }

    It 'names each signal Windows raises' {
        Mock -ModuleName RebootMarker Test-M365RebootRegistryKey { $Path -like '*Component Based Servicing\RebootPending' }
        Mock -ModuleName RebootMarker Get-M365RebootRegistryValue { @('\??\C:\Windows\Temp\a.dll', '', '\??\C:\x.tmp', '') }
        $r = @(Get-M365WindowsPendingReboot)
        $r | Should -Be @('Component Based Servicing: RebootPending', 'Session Manager: PendingFileRenameOperations (2 entries)')
    }

    It 'reports Windows Update' {
        Mock -ModuleName RebootMarker Test-M365RebootRegistryKey { $Path -like '*WindowsUpdate\Auto Update\RebootRequired' }
        @(Get-M365WindowsPendingReboot) | Should -Be @('Windows Update: RebootRequired')
    }
}
