# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# The quarantine works on real files in a temporary folder: profiles live under TestDrive,
# paths are resolved by the real Join-M365ProfilePath, files are really moved, hashed and
# restored. Only the profile list, the broker process and the reboot marker are mocked.

BeforeAll {
    . (Join-Path $PSScriptRoot 'RungModuleHarness.ps1')
    Initialize-RungHarness

    $script:AadRel = 'AppData/Local/Packages/Microsoft.AAD.BrokerPlugin_cw5n1h2txyewy/AC/TokenBroker/Accounts'
    $script:CxhRel = 'AppData/Local/Packages/Microsoft.Windows.CloudExperienceHost_cw5n1h2txyewy/AC/TokenBroker/Accounts'

    Function New-CacheFile([string]$ProfilePath, [string]$Rel, [string]$Name, [int]$Size = 512) {
        $dir = Join-Path $ProfilePath $Rel
        $null = New-Item -ItemType Directory -Path $dir -Force
        $bytes = [byte[]]::new($Size)
        [System.Random]::new($Name.GetHashCode()).NextBytes($bytes)
        $path = Join-Path $dir $Name
        [System.IO.File]::WriteAllBytes($path, $bytes)
        $path
    }
    Function Get-Sha([string]$Path) { (Get-FileHash -LiteralPath $Path -Algorithm SHA256).Hash.ToLowerInvariant() }
}

Describe 'win_token_broker_cache' {
    BeforeEach {
        Set-RungRepairRecordMock
        # TestDrive lives for the whole Describe: give each test its own tree.
        $script:Case = Join-Path $TestDrive ([guid]::NewGuid().ToString('N'))
        # The default quarantine root follows %ProgramData%: a TestDrive folder plays it.
        $script:SavedProgramData = $env:ProgramData
        $env:ProgramData = Join-Path $script:Case 'ProgramData'
        $null = New-Item -ItemType Directory -Path $env:ProgramData -Force
        $global:RungQRoot = Join-Path $env:ProgramData 'm365ops' 'activation' 'quarantine'
        $users = Join-Path $script:Case 'Users'
        Set-RungUser -ProfileRoot $users -Carol
        $null = New-Item -ItemType Directory -Path $global:RungCarol.ProfilePath -Force

        $script:AliceFiles = @(
            New-CacheFile $global:RungAlice.ProfilePath $script:AadRel 'a1b2c3d4e5f6.tbacct' 1800
            New-CacheFile $global:RungAlice.ProfilePath $script:AadRel '0f9e8d7c6b5a.tbacct' 2400
            New-CacheFile $global:RungAlice.ProfilePath $script:CxhRel '77aa88bb99cc.tbacct' 700
        )
        $script:BobFiles = @(New-CacheFile $global:RungBob.ProfilePath $script:AadRel 'b0b0b0b0.tbacct' 900)
        $script:Hashes = @{}
        foreach ($f in $script:AliceFiles + $script:BobFiles) { $script:Hashes[$f] = Get-Sha $f }

        Set-RungUserMock
        # The restore path reads the profile list from the module itself.
        Mock -ModuleName _TokenBrokerReset Get-M365UserProfile { $global:RungUsers }
        Mock -ModuleName _TokenBrokerQuarantine Set-M365QuarantineAcl { }
        # HKLM (manifest records, marked quarantine roots) in memory.
        $global:RungReg = @{}
        Mock -ModuleName _TokenBrokerQuarantine Get-M365RebootMarkerValue { $v = $global:RungReg[$Path]; if ($v) { $v.Clone() } else { @{} } }
        Mock -ModuleName _TokenBrokerQuarantine Set-M365RebootMarkerValue { if (-not $global:RungReg[$Path]) { $global:RungReg[$Path] = @{} }; $global:RungReg[$Path][$Name] = $Value }
        Mock -ModuleName _TokenBrokerQuarantine Remove-M365RebootMarkerValue { if ($global:RungReg[$Path]) { $global:RungReg[$Path].Remove($Name) } }
        Mock -ModuleName _TokenBrokerReset Remove-M365RebootMarkerValue { if ($global:RungReg[$Path]) { $global:RungReg[$Path].Remove($Name) } }
        Mock -ModuleName _TokenBrokerReset Set-M365RebootMarker { }
        Mock -ModuleName _TokenBrokerReset Get-M365BrokerProcess { @() }
        Mock -ModuleName _TokenBrokerReset Stop-M365BrokerProcess { }
        Mock -ModuleName _TokenBrokerReset Start-Sleep { }
        # Every profile only when asked for; named users otherwise.
        $script:Base = @{ all_profiles = $true }
        $script:Named = @{}
    }

    AfterEach {
        $env:ProgramData = $script:SavedProgramData
        if ($global:RungHeld) { $global:RungHeld | ForEach-Object { $_.Dispose() }; $global:RungHeld = $null }
    }

    Context 'state: absent' {
        It 'moves every cache file of the users that have some into a new quarantine with a manifest' {
            $r = Invoke-RungModule -Name win_token_broker_cache -Params $script:Base -DiffMode
            $r.failed | Should -BeNullOrEmpty
            $r.changed | Should -BeTrue
            $r.reboot_required | Should -BeTrue
            $r.quarantine_id | Should -Match '^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$'
            $r.users.Count | Should -Be 2 -Because 'carol has no cached accounts and is not selected by default'
            $r.moved_count | Should -Be 4
            foreach ($f in $script:AliceFiles + $script:BobFiles) { Test-Path -LiteralPath $f | Should -BeFalse }

            $manifest = Get-Content -Raw (Join-Path $r.quarantine_path 'manifest.json') | ConvertFrom-Json
            $manifest.schema | Should -Be 1
            $manifest.id | Should -Be $r.quarantine_id
            $manifest.entries.Count | Should -Be 4
            foreach ($e in $manifest.entries) {
                $e.sha256 | Should -Be $script:Hashes[$e.original_path]
                $e.size | Should -Be (Get-Item (Join-Path $r.quarantine_path $e.stored_path)).Length
                $e.user_sid | Should -BeIn @($global:RungAlice.Sid, $global:RungBob.Sid)
                $e.quarantined_at | Should -Not -BeNullOrEmpty
                Get-Sha (Join-Path $r.quarantine_path $e.stored_path) | Should -Be $e.sha256
            }
            $r.diff.before.token_broker_files.'CONTOSO\alice'.aad_broker_plugin | Should -Be 2
            $r.diff.after.token_broker_files.'CONTOSO\alice'.aad_broker_plugin | Should -Be 0
            Should -Invoke -ModuleName _TokenBrokerQuarantine Set-M365QuarantineAcl -ParameterFilter { $Path -eq $r.quarantine_path }
            Should -Invoke -ModuleName _TokenBrokerQuarantine Set-M365QuarantineAcl -ParameterFilter { $Path -eq $global:RungQRoot }
            Should -Invoke -ModuleName _TokenBrokerReset Set-M365RebootMarker -Times 1 -Exactly -ParameterFilter { $Source -eq 'win_token_broker_cache' }
            $global:RungRepairs | Should -HaveCount 1
            $global:RungRepairs[0].Rung | Should -Be 'reset_token_broker'
            $global:RungRepairs[0].Summary | Should -Be "TokenBroker caches quarantined in $($r.quarantine_id)"
        }

        It 'is idempotent: a second run moves nothing, creates no quarantine and asks for no reboot' {
            $first = Invoke-RungModule -Name win_token_broker_cache -Params $script:Base
            $r = Invoke-RungModule -Name win_token_broker_cache -Params $script:Base
            $r.changed | Should -BeFalse
            $r.reboot_required | Should -BeFalse
            $r.quarantine_id | Should -BeNullOrEmpty
            @(Get-ChildItem $global:RungQRoot -Directory).Name | Should -Be @($first.quarantine_id)
        }

        It 'in check mode lists the files and changes nothing' {
            $r = Invoke-RungModule -Name win_token_broker_cache -Params $script:Base -CheckMode
            $r.changed | Should -BeTrue
            $r.reboot_required | Should -BeTrue
            $r.users[0].files.Count | Should -BeGreaterThan 0
            foreach ($f in $script:AliceFiles) { Test-Path -LiteralPath $f | Should -BeTrue }
            Test-Path -LiteralPath $global:RungQRoot | Should -BeFalse
            Should -Invoke -ModuleName _TokenBrokerReset Set-M365RebootMarker -Times 0 -Exactly
            $global:RungRepairs | Should -HaveCount 0
        }

        It 'only touches the named users' {
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ users = @('bob') })
            $r.users.Count | Should -Be 1
            Test-Path -LiteralPath $script:BobFiles[0] | Should -BeFalse
            foreach ($f in $script:AliceFiles) { Test-Path -LiteralPath $f | Should -BeTrue }
        }

        It 'reports locked files and leaves that user whole, moving the others' {
            $global:RungHeld = @([System.IO.File]::Open($script:AliceFiles[1], 'Open', 'Read', 'None'))
            $r = Invoke-RungModule -Name win_token_broker_cache -Params $script:Base
            $r.failed | Should -BeNullOrEmpty
            $alice = $r.users | Where-Object { $_.user -eq 'CONTOSO\alice' }
            $alice.status | Should -Be 'locked'
            $alice.locked | Should -Be @($script:AliceFiles[1])
            foreach ($f in $script:AliceFiles) { Test-Path -LiteralPath $f | Should -BeTrue }
            Test-Path -LiteralPath $script:BobFiles[0] | Should -BeFalse
            $r.warnings | Should -Match 'in use'
        }

        It 'stops the user''s broker first with stop_broker, then moves the files' {
            $global:RungHeld = @([System.IO.File]::Open($script:AliceFiles[0], 'Open', 'Read', 'None'))
            Mock -ModuleName _TokenBrokerReset Get-M365BrokerProcess { @([pscustomobject]@{ Id = 4242; Name = 'Microsoft.AAD.BrokerPlugin'; UserName = 'CONTOSO\alice' }) } -ParameterFilter { $UserName -eq 'CONTOSO\alice' }
            Mock -ModuleName _TokenBrokerReset Stop-M365BrokerProcess { $global:RungHeld | ForEach-Object { $_.Dispose() }; $global:RungHeld = $null }
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ users = @('alice'); stop_broker = $true })
            $r.users[0].broker_stopped | Should -BeTrue
            $r.users[0].status | Should -Be 'moved'
            Should -Invoke -ModuleName _TokenBrokerReset Stop-M365BrokerProcess -Times 1 -Exactly -ParameterFilter { $Process[0].Id -eq 4242 }
        }

        It 'puts files back and quarantines nothing for a user when a delete fails half-way' {
            $script:Deletes = 0
            Mock -ModuleName _TokenBrokerQuarantine Remove-M365CacheFile {
                $script:Deletes++
                if ($script:Deletes -eq 2) { throw [System.UnauthorizedAccessException]::new('Access to the path is denied.') }
                [System.IO.File]::Delete($Path)
            }
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ users = @('alice') })
            $r.failed | Should -BeTrue
            $r.msg | Should -Match 'put back'
            foreach ($f in $script:AliceFiles) {
                Test-Path -LiteralPath $f | Should -BeTrue
                Get-Sha $f | Should -Be $script:Hashes[$f]
            }
            $r.quarantine_id | Should -BeNullOrEmpty
        }

        It 'refuses a cache folder that is a link out of the profile, before moving anything' {
            $outside = Join-Path $TestDrive 'outside'
            $null = New-Item -ItemType Directory -Path $outside -Force
            $packages = Join-Path $global:RungCarol.ProfilePath 'AppData' 'Local' 'Packages'
            $null = New-Item -ItemType Directory -Path $packages -Force
            $null = New-Item -ItemType SymbolicLink -Path (Join-Path $packages 'Microsoft.AAD.BrokerPlugin_cw5n1h2txyewy') -Target $outside
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ users = @('alice', 'carol') })
            $r.failed | Should -BeTrue
            $r.msg | Should -Match '^users: CONTOSO\\carol: .*junction or symbolic link'
            foreach ($f in $script:AliceFiles) { Test-Path -LiteralPath $f | Should -BeTrue }
        }

        It 'fails naming the folder when a cache cannot be listed, moving nothing' {
            Mock -ModuleName _TokenBrokerReset Get-M365CacheFile { throw [System.UnauthorizedAccessException]::new("Access to the path '$Root' is denied.") } -ParameterFilter { $Root -like '*bob*' }
            $r = Invoke-RungModule -Name win_token_broker_cache -Params $script:Base
            $r.failed | Should -BeTrue
            $r.msg | Should -Match '^users: CONTOSO\\bob: cannot list .*is denied'
            foreach ($f in $script:AliceFiles) { Test-Path -LiteralPath $f | Should -BeTrue }
        }

        It 'moves nothing when the quarantine cannot be locked down' {
            Mock -ModuleName _TokenBrokerQuarantine Set-M365QuarantineAcl { throw "quarantine folder $Path is owned by S-1-5-21-1-2-3-1105, not SYSTEM or Administrators" }
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Base + @{ stop_broker = $true })
            $r.failed | Should -BeTrue
            $r.msg | Should -Match '^quarantine_path: cannot prepare a quarantine .*owned by'
            foreach ($f in $script:AliceFiles + $script:BobFiles) { Test-Path -LiteralPath $f | Should -BeTrue }
            Should -Invoke -ModuleName _TokenBrokerReset Get-M365BrokerProcess -Times 0 -Exactly
        }

        It 'refuses <name>' -TestCases @(
            @{ name = 'a traversal user name'; params = @{ all_profiles = $null; users = @('..\..\Windows') }; pattern = '^users: ' }
            @{ name = 'an empty users list'; params = @{ all_profiles = $null; users = @() }; pattern = '^users: the list is empty' }
            @{ name = 'no users and no all_profiles'; params = @{ all_profiles = $null }; pattern = '^users: name the users' }
            @{ name = 'users together with all_profiles'; params = @{ users = @('alice') }; pattern = '^users: give either' }
            @{ name = 'an existing folder this collection did not create'; params = @{ quarantine_path = '<existing>' }; pattern = '^quarantine_path: .*already exists and was not created by this collection' }
            @{ name = 'a new folder whose parent does not exist'; params = @{ quarantine_path = '<orphan>' }; pattern = '^quarantine_path: the parent folder .* does not exist' }
            @{ name = 'a relative quarantine_path'; params = @{ quarantine_path = 'quarantine' }; pattern = '^quarantine_path: ' }
            @{ name = 'a quarantine_path with ..'; params = @{ quarantine_path = '/tmp/../etc' }; pattern = '^quarantine_path: ' }
            @{ name = 'negative retention'; params = @{ quarantine_retention_days = -1 }; pattern = '^quarantine_retention_days: ' }
            @{ name = 'quarantine_id with absent'; params = @{ quarantine_id = '20261126T181500Z-3fa2c9d1' }; pattern = '^quarantine_id: ' }
        ) {
            $p = $script:Base.Clone()
            foreach ($k in $params.Keys) { if ($null -eq $params[$k]) { $p.Remove($k) } else { $p[$k] = $params[$k] } }
            # An admin's typo such as C:\ProgramData: an existing folder full of other data.
            $existing = Join-Path $script:Case 'Data'
            $null = New-Item -ItemType Directory -Path $existing -Force
            [System.IO.File]::WriteAllText((Join-Path $existing 'other.txt'), 'not ours')
            if ($p['quarantine_path'] -eq '<existing>') { $p.quarantine_path = $existing }
            if ($p['quarantine_path'] -eq '<orphan>') { $p.quarantine_path = Join-Path $script:Case 'no' 'such' 'q' }
            foreach ($mode in $false, $true) {
                $r = Invoke-RungModule -Name win_token_broker_cache -Params $p -CheckMode:$mode
                $r.failed | Should -BeTrue
                $r.msg | Should -Match $pattern
            }
            foreach ($f in $script:AliceFiles + $script:BobFiles) { Test-Path -LiteralPath $f | Should -BeTrue }
            Test-Path -LiteralPath $global:RungQRoot | Should -BeFalse
            Should -Invoke -ModuleName _TokenBrokerQuarantine Set-M365QuarantineAcl -Times 0 -Exactly
            @(Get-ChildItem -LiteralPath $existing).Name | Should -Be @('other.txt')
        }
    }

    Context 'state: restored' {
        It 'round trip: absent then restored puts every file back with the same SHA-256' {
            $q = Invoke-RungModule -Name win_token_broker_cache -Params $script:Base
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ state = 'restored'; quarantine_id = $q.quarantine_id }) -DiffMode
            $r.failed | Should -BeNullOrEmpty
            $r.changed | Should -BeTrue
            $r.restored_count | Should -Be 4
            $r.reboot_required | Should -BeTrue
            foreach ($f in $script:AliceFiles + $script:BobFiles) {
                Test-Path -LiteralPath $f | Should -BeTrue
                Get-Sha $f | Should -Be $script:Hashes[$f]
            }
            $manifest = Get-Content -Raw (Join-Path $q.quarantine_path 'manifest.json') | ConvertFrom-Json
            @($manifest.entries | Where-Object { -not $_.restored_at }).Count | Should -Be 0
            # The old caches are back, so the errors from before the reset count again.
            @($global:RungRepairs | ForEach-Object { "$($_.Rung) $([bool]$_['Cleared'])" }) | Should -Be @('reset_token_broker False', 'reset_token_broker True')
        }

        It 'is idempotent: restoring twice changes nothing the second time' {
            $q = Invoke-RungModule -Name win_token_broker_cache -Params $script:Base
            $null = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ state = 'restored'; quarantine_id = $q.quarantine_id })
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ state = 'restored'; quarantine_id = $q.quarantine_id })
            $r.changed | Should -BeFalse
            $r.reboot_required | Should -BeFalse
            @($r.files | Where-Object { $_.status -eq 'already_present' }).Count | Should -Be 4
        }

        It 'in check mode restores nothing' {
            $q = Invoke-RungModule -Name win_token_broker_cache -Params $script:Base
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ state = 'restored'; quarantine_id = $q.quarantine_id }) -CheckMode
            $r.changed | Should -BeTrue
            foreach ($f in $script:AliceFiles) { Test-Path -LiteralPath $f | Should -BeFalse }
        }

        It 'refuses a quarantined file whose SHA-256 changed, restoring the rest' {
            $q = Invoke-RungModule -Name win_token_broker_cache -Params $script:Base
            $manifest = Get-Content -Raw (Join-Path $q.quarantine_path 'manifest.json') | ConvertFrom-Json
            $victim = $manifest.entries[0]
            [System.IO.File]::WriteAllText((Join-Path $q.quarantine_path $victim.stored_path), 'tampered')
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ state = 'restored'; quarantine_id = $q.quarantine_id })
            $r.failed | Should -BeTrue
            $r.msg | Should -Match 'SHA-256'
            Test-Path -LiteralPath $victim.original_path | Should -BeFalse
            $r.restored_count | Should -Be 3
        }

        It 'refuses a manifest entry pointing outside the user''s cache folders' {
            $q = Invoke-RungModule -Name win_token_broker_cache -Params $script:Base
            $manifestPath = Join-Path $q.quarantine_path 'manifest.json'
            $manifest = Get-Content -Raw $manifestPath | ConvertFrom-Json
            $evil = Join-Path $TestDrive 'Windows' 'System32' 'evil.dll'
            $manifest.entries[0].original_path = $evil
            $manifest.entries[1].stored_path = '../../outside.bin'
            # Written through the module's own writer, so its HKLM record matches: the
            # entry checks must hold even for a manifest that verifies.
            & (Get-Module _TokenBrokerQuarantine) { param($q, $m) Write-M365QuarantineManifest -QuarantinePath $q -Manifest $m } $q.quarantine_path $manifest
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ state = 'restored'; quarantine_id = $q.quarantine_id })
            $r.failed | Should -BeTrue
            @($r.files | Where-Object { $_.status -eq 'refused' }).Count | Should -Be 2
            Test-Path -LiteralPath $evil | Should -BeFalse
        }

        It 'leaves a newer file at the original path alone (conflict) and warns' {
            $q = Invoke-RungModule -Name win_token_broker_cache -Params $script:Base
            [System.IO.File]::WriteAllText($script:AliceFiles[0], 'signed in again since')
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ state = 'restored'; quarantine_id = $q.quarantine_id })
            $r.failed | Should -BeNullOrEmpty
            ($r.files | Where-Object { $_.original_path -eq $script:AliceFiles[0] }).status | Should -Be 'conflict'
            Get-Content -Raw $script:AliceFiles[0] | Should -Be 'signed in again since'
            $r.warnings | Should -Match 'different file'
        }

        It 'refuses quarantine id <id> naming the option' -TestCases @(
            @{ id = '../../Windows' }, @{ id = '20261126T181500Z-3fa2c9d1/../x' }, @{ id = '..' }, @{ id = 'C:\ProgramData' }, @{ id = '20261126T181500Z-3FA2C9D1' }
        ) {
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ state = 'restored'; quarantine_id = $id })
            $r.failed | Should -BeTrue
            $r.msg | Should -Match '^quarantine_id: .*is not a quarantine id'
        }

        It 'fails for an unknown but well-formed quarantine id' {
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ state = 'restored'; quarantine_id = '20261126T181500Z-3fa2c9d1' })
            $r.failed | Should -BeTrue
            $r.msg | Should -Match "^quarantine_id: no quarantine"
        }

        It 'requires quarantine_id with state restored' {
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ state = 'restored' })
            $r.failed | Should -BeTrue
            $r.msg | Should -Match 'quarantine_id'
        }
    }

    Context 'links planted by the user' {
        BeforeEach {
            # A folder outside every profile that a standard user must not be able to touch.
            $script:Canary = Join-Path $script:Case 'Windows' 'System32' 'canary'
            $null = New-Item -ItemType Directory -Path $script:Canary -Force
            [System.IO.File]::WriteAllText((Join-Path $script:Canary 'config.dat'), 'protected bytes')
            $script:CanaryHash = Get-Sha (Join-Path $script:Canary 'config.dat')
            $script:AliceAccounts = Join-Path $global:RungAlice.ProfilePath $script:AadRel
        }

        It 'never follows a folder link inside Accounts: the target stays byte-identical and the link is reported' {
            $link = Join-Path $script:AliceAccounts 'x'
            $null = New-Item -ItemType SymbolicLink -Path $link -Target $script:Canary
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ users = @('alice') })
            $r.failed | Should -BeNullOrEmpty
            $r.users[0].status | Should -Be 'moved'
            $r.moved_count | Should -Be 3 -Because 'the real cache files still move'
            Get-Sha (Join-Path $script:Canary 'config.dat') | Should -Be $script:CanaryHash
            @($r.refused | ForEach-Object { $_.path }) | Should -Be @($link)
            $r.refused[0].reason | Should -Match 'junction or symbolic link'
            $r.warnings | Should -Match ([regex]::Escape("refused $link"))
            $manifest = Get-Content -Raw (Join-Path $r.quarantine_path 'manifest.json') | ConvertFrom-Json
            @($manifest.entries | Where-Object { $_.original_path -like "$link*" }) | Should -HaveCount 0
        }

        It 'never opens or deletes through a file link inside Accounts' {
            $link = Join-Path $script:AliceAccounts 'zz.tbacct'
            $null = New-Item -ItemType SymbolicLink -Path $link -Target (Join-Path $script:Canary 'config.dat')
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ users = @('alice') })
            $r.failed | Should -BeNullOrEmpty
            Test-Path -LiteralPath (Join-Path $script:Canary 'config.dat') | Should -BeTrue
            Get-Sha (Join-Path $script:Canary 'config.dat') | Should -Be $script:CanaryHash
            @($r.refused | ForEach-Object { $_.path }) | Should -Be @($link)
        }

        It 'refuses a file whose folder became a link after the walk (the race), moving the rest' {
            $sub = Join-Path $script:AliceAccounts 'sub'
            $null = New-Item -ItemType Directory -Path $sub
            [System.IO.File]::WriteAllText((Join-Path $sub 'config.dat'), 'cache')
            # Right after the walk (the lock check is the first open), the user swaps the
            # folder for a link to the canary, whose file has the same name.
            $global:RungSwap = @{ Done = $false; Sub = $sub; Canary = $script:Canary }
            Mock -ModuleName _TokenBrokerQuarantine Test-M365FileLocked {
                if (-not $global:RungSwap.Done) {
                    $global:RungSwap.Done = $true
                    [System.IO.Directory]::Delete($global:RungSwap.Sub, $true)
                    $null = New-Item -ItemType SymbolicLink -Path $global:RungSwap.Sub -Target $global:RungSwap.Canary
                }
                $false
            }
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ users = @('alice') })
            $r.failed | Should -BeNullOrEmpty
            Get-Sha (Join-Path $script:Canary 'config.dat') | Should -Be $script:CanaryHash
            @($r.refused | ForEach-Object { $_.path }) | Should -Contain (Join-Path $sub 'config.dat')
            $r.refused[0].reason | Should -Match 'junction or symbolic link'
            foreach ($f in $script:AliceFiles) { Test-Path -LiteralPath $f | Should -BeFalse }
        }

        It 'restores nothing through a link planted where the files came from' {
            $q = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ users = @('alice') })
            $q.moved_count | Should -Be 3
            # The user replaces the emptied Accounts folder by a link to the canary.
            [System.IO.Directory]::Delete($script:AliceAccounts, $true)
            $null = New-Item -ItemType SymbolicLink -Path $script:AliceAccounts -Target $script:Canary
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ state = 'restored'; quarantine_id = $q.quarantine_id })
            $r.failed | Should -BeTrue
            @(Get-ChildItem -LiteralPath $script:Canary).Name | Should -Be @('config.dat')
            # The profile's cache folders no longer resolve inside it, so none of alice's
            # files go back (the other cache folder waits for a sound profile too).
            $refused = @($r.files | Where-Object { $_.status -eq 'refused' })
            $refused.Count | Should -Be 3
            $refused | ForEach-Object { $_.message | Should -Match 'junction or symbolic link' }
            @($r.refused | ForEach-Object { $_.path }) | Should -Contain $script:AliceFiles[0]
            $r.restored_count | Should -Be 0
            Test-Path -LiteralPath $script:AliceFiles[2] | Should -BeFalse
        }

        It 'refuses a link anywhere in the quarantine chain, moving nothing' {
            $null = New-Item -ItemType SymbolicLink -Path (Join-Path $env:ProgramData 'm365ops') -Target $script:Canary
            $r = Invoke-RungModule -Name win_token_broker_cache -Params $script:Base
            $r.failed | Should -BeTrue
            $r.msg | Should -Match '^quarantine_path: .*m365ops.* is a junction or symbolic link'
            foreach ($f in $script:AliceFiles + $script:BobFiles) { Test-Path -LiteralPath $f | Should -BeTrue }
            @(Get-ChildItem -LiteralPath $script:Canary).Name | Should -Be @('config.dat')
        }

        It 'refuses a quarantine folder a standard user created in advance, moving nothing' {
            $pre = Join-Path $env:ProgramData 'm365ops' 'activation'
            $null = New-Item -ItemType Directory -Path $pre -Force
            Mock -ModuleName _TokenBrokerQuarantine Get-M365PathOwnerSid { if ($Path -eq $pre) { 'S-1-5-21-1004336348-1177238915-682003330-1105' } else { 'S-1-5-32-544' } }
            $r = Invoke-RungModule -Name win_token_broker_cache -Params $script:Base
            $r.failed | Should -BeTrue
            $r.msg | Should -Match "^quarantine_path: .*activation' is owned by S-1-5-21-1004336348-1177238915-682003330-1105"
            foreach ($f in $script:AliceFiles + $script:BobFiles) { Test-Path -LiteralPath $f | Should -BeTrue }
            Should -Invoke -ModuleName _TokenBrokerQuarantine Set-M365QuarantineAcl -Times 0 -Exactly
        }

        It 'locks down every folder of the default chain it owns' {
            $r = Invoke-RungModule -Name win_token_broker_cache -Params $script:Base
            $r.failed | Should -BeNullOrEmpty
            foreach ($d in (Join-Path $env:ProgramData 'm365ops'), (Join-Path $env:ProgramData 'm365ops' 'activation'), $global:RungQRoot, $r.quarantine_path) {
                Should -Invoke -ModuleName _TokenBrokerQuarantine Set-M365QuarantineAcl -ParameterFilter { $Path -eq $d }
            }
            Should -Invoke -ModuleName _TokenBrokerQuarantine Set-M365QuarantineAcl -Times 0 -Exactly -ParameterFilter { $Path -eq $env:ProgramData }
        }
    }

    Context 'quarantine_path and the manifest record' {
        It 'creates a new quarantine_path, marks it, and accepts it again on the next run' {
            $custom = Join-Path $script:Case 'Q'
            $first = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ users = @('alice'); quarantine_path = $custom })
            $first.failed | Should -BeNullOrEmpty
            $first.quarantine_path | Should -BeLike "$custom*"
            $global:RungReg['HKLM:\SOFTWARE\m365ops\activation\QuarantineRoots'].Values | Should -Be @($custom)
            $second = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ users = @('bob'); quarantine_path = $custom })
            $second.failed | Should -BeNullOrEmpty
            $second.moved_count | Should -Be 1
        }

        It 'refuses to restore a quarantine whose manifest was changed after it was written' {
            $q = Invoke-RungModule -Name win_token_broker_cache -Params $script:Base
            $manifestPath = Join-Path $q.quarantine_path 'manifest.json'
            $manifest = Get-Content -Raw $manifestPath | ConvertFrom-Json
            # A consistent forgery: new bytes and a matching SHA-256 inside the manifest.
            $evil = Join-Path $script:Case 'Users' 'alice' 'evil.tbacct'
            $manifest.entries[0].original_path = $evil
            $manifest | ConvertTo-Json -Depth 10 | Set-Content -LiteralPath $manifestPath
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ state = 'restored'; quarantine_id = $q.quarantine_id })
            $r.failed | Should -BeTrue
            $r.msg | Should -Match '^quarantine_id: the manifest of quarantine .* does not match the SHA-256 recorded'
            $r.msg | Should -Match 'Nothing was restored'
            foreach ($f in $script:AliceFiles) { Test-Path -LiteralPath $f | Should -BeFalse }
        }

        It 'refuses to restore a quarantine it has no record of' {
            $q = Invoke-RungModule -Name win_token_broker_cache -Params $script:Base
            $global:RungReg['HKLM:\SOFTWARE\m365ops\activation\Quarantines'].Remove($q.quarantine_id)
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ state = 'restored'; quarantine_id = $q.quarantine_id })
            $r.failed | Should -BeTrue
            $r.msg | Should -Match 'has no manifest record'
            $r.restored_count | Should -BeNullOrEmpty
        }

        It 'moves nothing when the quarantine volume lacks the space' {
            Mock -ModuleName _TokenBrokerQuarantine Get-M365FreeSpace { [int64]1024 }
            $r = Invoke-RungModule -Name win_token_broker_cache -Params $script:Base
            $r.failed | Should -BeTrue
            $r.msg | Should -Match '^quarantine_path: cannot prepare a quarantine .*not enough free space'
            foreach ($f in $script:AliceFiles + $script:BobFiles) { Test-Path -LiteralPath $f | Should -BeTrue }
        }

        It 'fails cleanly, naming where each file is, when putting files back fails' {
            $script:Deletes = 0
            Mock -ModuleName _TokenBrokerQuarantine Remove-M365CacheFile {
                $script:Deletes++
                if ($script:Deletes -eq 2) { throw [System.UnauthorizedAccessException]::new('Access to the path is denied.') }
                [System.IO.File]::Delete($Path)
            }
            # The copy back of the one deleted file fails too (the user re-created the name).
            Mock -ModuleName _TokenBrokerQuarantine Copy-M365CheckedFile { throw [System.IO.IOException]::new("The file '$Destination' already exists.") } -ParameterFilter { $Destination -like '*Users*' }
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Named + @{ users = @('alice') })
            $r.failed | Should -BeTrue
            $r.msg | Should -Match 'putting the files back failed for 1'
            $gone = @($script:AliceFiles | Where-Object { -not (Test-Path -LiteralPath $_) })
            $gone | Should -HaveCount 1
            $r.msg | Should -Match ([regex]::Escape("$($gone[0]) is at "))
            $r.quarantine_id | Should -Not -BeNullOrEmpty -Because 'the stranded copy stays in its quarantine'
            $manifest = Get-Content -Raw (Join-Path $r.quarantine_path 'manifest.json') | ConvertFrom-Json
            @($manifest.entries.original_path) | Should -Be @($gone[0])
            Get-Sha (Join-Path $r.quarantine_path $manifest.entries[0].stored_path) | Should -Be $script:Hashes[$gone[0]]
        }
    }

    Context 'retention' {
        It 'prunes quarantines older than quarantine_retention_days and nothing else' {
            $old = Join-Path $global:RungQRoot '20200101T000000Z-00000001'
            $recent = Join-Path $global:RungQRoot ((Get-Date).ToUniversalTime().AddDays(-2).ToString('yyyyMMdd\THHmmss\Z') + '-00000002')
            $other = Join-Path $global:RungQRoot 'not-a-quarantine'
            foreach ($d in $old, $recent, $other) { $null = New-Item -ItemType Directory -Path $d -Force }
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Base + @{ quarantine_retention_days = 30 })
            $r.pruned | Should -Be @('20200101T000000Z-00000001')
            Test-Path $old | Should -BeFalse
            Test-Path $recent | Should -BeTrue
            Test-Path $other | Should -BeTrue
        }

        It 'keeps everything with quarantine_retention_days 0' {
            $old = Join-Path $global:RungQRoot '20200101T000000Z-00000001'
            $null = New-Item -ItemType Directory -Path $old -Force
            $r = Invoke-RungModule -Name win_token_broker_cache -Params ($script:Base + @{ quarantine_retention_days = 0 })
            $r.pruned.Count | Should -Be 0
            Test-Path $old | Should -BeTrue
        }
    }
}
