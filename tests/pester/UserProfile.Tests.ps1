# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# _UserProfile.psm1: the ProfileList, hive, session and account lookups are mocked; the
# resolution rules and path confinement run for real.

BeforeAll {
    $utils = Join-Path $PSScriptRoot '..' '..' 'plugins' 'module_utils'
    Import-Module (Join-Path $utils '_UserProfile.psm1') -Force

    $script:AliceSid = 'S-1-5-21-1004336348-1177238915-682003330-1104'
    $script:BobSid = 'S-1-5-21-1004336348-1177238915-682003330-1105'
    $script:AliceFabSid = 'S-1-5-21-2000000000-1177238915-682003330-2201'
    $script:CloudSid = 'S-1-12-1-3915262539-1146214066-2406525833-4194183727'

    Function Set-ProfileMocks {
        Mock -ModuleName _UserProfile Get-M365ProfileListEntry {
            @(
                [pscustomobject]@{ Sid = 'S-1-5-18'; ProfileImagePath = 'C:\Windows\system32\config\systemprofile' }
                [pscustomobject]@{ Sid = 'S-1-5-19'; ProfileImagePath = 'C:\Windows\ServiceProfiles\LocalService' }
                [pscustomobject]@{ Sid = 'S-1-5-20'; ProfileImagePath = 'C:\Windows\ServiceProfiles\NetworkService' }
                [pscustomobject]@{ Sid = $script:AliceSid; ProfileImagePath = 'C:\Users\alice' }
                [pscustomobject]@{ Sid = $script:BobSid; ProfileImagePath = 'C:\Users\bob' }
                [pscustomobject]@{ Sid = $script:AliceFabSid; ProfileImagePath = 'C:\Users\alice.FABRIKAM' }
                [pscustomobject]@{ Sid = $script:CloudSid; ProfileImagePath = 'C:\Users\CarolSmith' }
                [pscustomobject]@{ Sid = "$($script:BobSid).bak"; ProfileImagePath = 'C:\Users\bob.old' }
                [pscustomobject]@{ Sid = 'S-1-5-21-1-2-3-999'; ProfileImagePath = $null }
            )
        }
        Mock -ModuleName _UserProfile ConvertTo-M365AccountName {
            switch ($Sid) {
                $script:AliceSid { 'CONTOSO\alice' }
                $script:BobSid { 'CONTOSO\bob' }
                $script:AliceFabSid { 'FABRIKAM\alice' }
                $script:CloudSid { 'AzureAD\CarolSmith' }
                default { $null }
            }
        }
        Mock -ModuleName _UserProfile Test-M365HiveLoaded { $Sid -in @($script:AliceSid, $script:CloudSid) }
        Mock -ModuleName _UserProfile Get-M365InteractiveSid { $script:AliceSid }
        Mock -ModuleName _UserProfile Get-M365ProfileUpn { if ($Sid -eq $script:CloudSid) { 'carol@contoso.com' } else { $null } }
        Mock -ModuleName _UserProfile ConvertTo-M365Sid { $null }
    }
}

Describe 'Get-M365UserProfile' {
    BeforeEach { Set-ProfileMocks }

    It 'returns one object per real user profile, skipping service SIDs, .bak and empty paths' {
        $profiles = @(Get-M365UserProfile)
        $profiles.Sid | Should -Be @($script:AliceSid, $script:BobSid, $script:AliceFabSid, $script:CloudSid)
    }

    It 'fills UserName, ProfilePath, HiveLoaded and LoggedOn' {
        $alice = Get-M365UserProfile | Where-Object Sid -EQ $script:AliceSid
        $alice.UserName | Should -Be 'CONTOSO\alice'
        $alice.ProfilePath | Should -Be 'C:\Users\alice'
        $alice.HiveLoaded | Should -BeTrue
        $alice.LoggedOn | Should -BeTrue
        $bob = Get-M365UserProfile | Where-Object Sid -EQ $script:BobSid
        $bob.HiveLoaded | Should -BeFalse
        $bob.LoggedOn | Should -BeFalse
        ($alice.PSObject.Properties.Name -join ',') | Should -Be 'Sid,UserName,ProfilePath,HiveLoaded,LoggedOn'
    }

    It 'keeps a profile whose SID no longer translates, with UserName $null' {
        Mock -ModuleName _UserProfile ConvertTo-M365AccountName { $null }
        $profiles = @(Get-M365UserProfile)
        $profiles.Count | Should -Be 4
        $profiles[0].UserName | Should -BeNullOrEmpty
    }

    It 'asks for the interactive sessions once, not per profile' {
        $null = @(Get-M365UserProfile)
        Should -Invoke -ModuleName _UserProfile Get-M365InteractiveSid -Times 1 -Exactly
    }
}

Describe 'Resolve-M365User' {
    BeforeEach { Set-ProfileMocks }

    It 'resolves <Identity>' -ForEach @(
        @{ Identity = 'CONTOSO\alice'; Expected = 'S-1-5-21-1004336348-1177238915-682003330-1104' }
        @{ Identity = 'contoso\ALICE'; Expected = 'S-1-5-21-1004336348-1177238915-682003330-1104' }
        @{ Identity = 'bob'; Expected = 'S-1-5-21-1004336348-1177238915-682003330-1105' }
        @{ Identity = 'S-1-5-21-1004336348-1177238915-682003330-1105'; Expected = 'S-1-5-21-1004336348-1177238915-682003330-1105' }
        @{ Identity = 'carol@contoso.com'; Expected = 'S-1-12-1-3915262539-1146214066-2406525833-4194183727' }
        @{ Identity = 'AzureAD\CarolSmith'; Expected = 'S-1-12-1-3915262539-1146214066-2406525833-4194183727' }
    ) {
        (Resolve-M365User -Identity $Identity).Sid | Should -Be $Expected
    }

    It 'falls back to LookupAccountName for a domain UPN that is not cached' {
        Mock -ModuleName _UserProfile ConvertTo-M365Sid { if ($Name -eq 'bob@contoso.com') { $script:BobSid } }
        (Resolve-M365User -Identity 'bob@contoso.com').UserName | Should -Be 'CONTOSO\bob'
    }

    It 'refuses an ambiguous bare name and lists the matches' {
        { Resolve-M365User -Identity 'alice' } | Should -Throw -ExceptionType ([System.ArgumentException]) -ExpectedMessage "*'alice' is ambiguous*CONTOSO\alice*FABRIKAM\alice*"
    }

    It 'names an unknown identity' {
        { Resolve-M365User -Identity 'mallory' } | Should -Throw -ExceptionType ([System.ArgumentException]) -ExpectedMessage "*'mallory' is unknown*"
    }

    It 'says when an existing account has no profile here' {
        Mock -ModuleName _UserProfile ConvertTo-M365Sid { 'S-1-5-21-1-2-3-4242' }
        { Resolve-M365User -Identity 'CONTOSO\dave' } | Should -Throw -ExceptionType ([System.ArgumentException]) -ExpectedMessage '*S-1-5-21-1-2-3-4242, which has no user profile*'
    }

    It 'refuses a SID without a profile' {
        { Resolve-M365User -Identity 'S-1-5-21-9-9-9-9' } | Should -Throw -ExceptionType ([System.ArgumentException]) -ExpectedMessage "*no user profile with this SID*"
    }

    It 'refuses a service account SID' {
        { Resolve-M365User -Identity 'S-1-5-18' } | Should -Throw -ExceptionType ([System.ArgumentException])
    }

    It 'refuses malformed identity <Identity> before any lookup' -ForEach @(
        @{ Identity = ''; Why = 'empty' }
        @{ Identity = '   '; Why = 'empty' }
        @{ Identity = 'a*'; Why = 'wildcard' }
        @{ Identity = 'CONTOSO\?lice'; Why = 'wildcard' }
        @{ Identity = '[ab]ob'; Why = 'wildcard' }
        @{ Identity = '..\..\Windows'; Why = 'path characters' }
        @{ Identity = 'C:\Users\alice'; Why = 'path characters' }
        @{ Identity = 'alice/..'; Why = 'path characters' }
        @{ Identity = 'CONTOSO\alice\x'; Why = 'path characters' }
        @{ Identity = 'alice@'; Why = 'not a valid UPN' }
        @{ Identity = 'S-1-5-21-abc'; Why = 'not a well-formed SID' }
    ) {
        { Resolve-M365User -Identity $Identity } | Should -Throw -ExceptionType ([System.ArgumentException]) -ExpectedMessage "*$Why*"
        Should -Invoke -ModuleName _UserProfile Get-M365ProfileListEntry -Times 0 -Exactly
        Should -Invoke -ModuleName _UserProfile ConvertTo-M365Sid -Times 0 -Exactly
    }
}

Describe 'Join-M365ProfilePath' {
    BeforeAll {
        $script:Alice = [pscustomobject]@{ Sid = 'S-1-5-21-1-2-3-1104'; UserName = 'CONTOSO\alice'; ProfilePath = 'C:\Users\alice'; HiveLoaded = $true; LoggedOn = $true }
    }
    BeforeEach { Mock -ModuleName _UserProfile Test-M365ReparsePoint { $false } }

    It 'joins <Child> to <Expected>' -ForEach @(
        @{ Child = 'AppData\Local\Packages'; Expected = 'C:\Users\alice\AppData\Local\Packages' }
        @{ Child = 'AppData/Local/Microsoft/Office/Licenses'; Expected = 'C:\Users\alice\AppData\Local\Microsoft\Office\Licenses' }
        @{ Child = '.\AppData\.\Local'; Expected = 'C:\Users\alice\AppData\Local' }
        @{ Child = 'AppData\Local\x\..\Packages'; Expected = 'C:\Users\alice\AppData\Local\Packages' }
        @{ Child = 'NTUSER.DAT'; Expected = 'C:\Users\alice\NTUSER.DAT' }
    ) {
        Join-M365ProfilePath -UserProfile $script:Alice -ChildPath $Child | Should -Be $Expected
    }

    It 'handles a profile path with a trailing separator' {
        $p = [pscustomobject]@{ ProfilePath = 'C:\Users\alice\' }
        Join-M365ProfilePath -UserProfile $p -ChildPath 'AppData' | Should -Be 'C:\Users\alice\AppData'
    }

    It 'refuses <Child>' -ForEach @(
        @{ Child = '..\bob\AppData'; Why = 'leaves the profile' }
        @{ Child = 'AppData\..\..\alice2'; Why = 'leaves the profile' }
        @{ Child = '..'; Why = 'leaves the profile' }
        @{ Child = '\Windows\System32'; Why = 'rooted' }
        @{ Child = '/etc'; Why = 'rooted' }
        @{ Child = 'C:\Windows'; Why = 'rooted' }
        @{ Child = 'D:x'; Why = 'rooted' }
        @{ Child = 'NTUSER.DAT:stream'; Why = 'stream' }
        @{ Child = ''; Why = 'empty' }
        @{ Child = '.'; Why = 'profile root itself' }
        @{ Child = 'AppData\...'; Why = 'invalid segment' }
        @{ Child = 'AppData\*'; Why = 'invalid segment' }
    ) {
        { Join-M365ProfilePath -UserProfile $script:Alice -ChildPath $Child } | Should -Throw -ExceptionType ([System.ArgumentException]) -ExpectedMessage "*$Why*"
    }

    It 'refuses a drive root as the profile' {
        { Join-M365ProfilePath -UserProfile ([pscustomobject]@{ ProfilePath = 'C:\' }) -ChildPath 'Windows' } | Should -Throw -ExceptionType ([System.ArgumentException]) -ExpectedMessage '*drive root*'
    }

    It 'refuses to walk through a junction the user planted' {
        Mock -ModuleName _UserProfile Test-M365ReparsePoint { $Path -eq 'C:\Users\alice\AppData\Local\Packages' }
        { Join-M365ProfilePath -UserProfile $script:Alice -ChildPath 'AppData\Local\Packages\X\AC' } | Should -Throw -ExceptionType ([System.ArgumentException]) -ExpectedMessage '*junction or symbolic link*'
    }
}

Describe 'Join-M365ProfilePath on a real file system' {
    It 'uses the platform separator for a non-Windows profile path and detects a real symlink' {
        $root = Join-Path $TestDrive 'alice'
        $null = New-Item -ItemType Directory -Path (Join-Path $root 'AppData')
        $p = [pscustomobject]@{ ProfilePath = $root }
        Join-M365ProfilePath -UserProfile $p -ChildPath 'AppData\Local' | Should -Be (Join-Path (Join-Path $root 'AppData') 'Local')
        $outside = Join-Path $TestDrive 'outside'
        $null = New-Item -ItemType Directory -Path $outside
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $root 'Link') -Target $outside
        { Join-M365ProfilePath -UserProfile $p -ChildPath 'Link\file' } | Should -Throw -ExpectedMessage '*junction or symbolic link*'
    }
}

Describe 'Windows adapters of UserProfile' {
    BeforeAll {
        # CIM cmdlets are absent from pwsh on Linux; stand-ins with the real parameters let
        # Pester mock them inside the module.
        $script:CimStubs = @()
        if (-not (Get-Command Get-CimInstance -ErrorAction SilentlyContinue)) {
            Function global:Get-CimInstance { param([string]$ClassName, [string]$Filter) throw 'Windows-only' }
            $script:CimStubs += 'Get-CimInstance'
        }
        if (-not (Get-Command Invoke-CimMethod -ErrorAction SilentlyContinue)) {
            Function global:Invoke-CimMethod { param([object]$InputObject, [string]$MethodName) throw 'Windows-only' }
            $script:CimStubs += 'Invoke-CimMethod'
        }
    }
    AfterAll {
        foreach ($name in $script:CimStubs) { Remove-Item "function:global:$name" -ErrorAction SilentlyContinue }
    }

    It 'Get-M365InteractiveSid returns each explorer.exe owner once, skipping failed lookups' {
        Mock -ModuleName _UserProfile Get-CimInstance { 1..4 | ForEach-Object { [pscustomobject]@{ ProcessId = $_ } } }
        Mock -ModuleName _UserProfile Invoke-CimMethod {
            switch ($InputObject.ProcessId) {
                1 { [pscustomobject]@{ ReturnValue = 0; Sid = 'S-1-5-21-1-2-3-1104' } }
                2 { [pscustomobject]@{ ReturnValue = 0; Sid = 'S-1-5-21-1-2-3-1104' } }
                3 { [pscustomobject]@{ ReturnValue = 2; Sid = $null } }
                4 { [pscustomobject]@{ ReturnValue = 0; Sid = 'S-1-12-1-5-6-7-8' } }
            }
        }
        @(Get-M365InteractiveSid) | Should -Be @('S-1-12-1-5-6-7-8', 'S-1-5-21-1-2-3-1104')
        Should -Invoke -ModuleName _UserProfile Get-CimInstance -Times 1 -Exactly -ParameterFilter { $ClassName -eq 'Win32_Process' -and $Filter -eq "Name = 'explorer.exe'" }
    }

    It 'Get-M365InteractiveSid is empty without a desktop' {
        Mock -ModuleName _UserProfile Get-CimInstance { }
        @(Get-M365InteractiveSid).Count | Should -Be 0
    }

    It 'Get-M365ProfileListEntry reads SID and ProfileImagePath of each ProfileList key' {
        Mock -ModuleName _UserProfile Get-ChildItem {
            [pscustomobject]@{ PSChildName = 'S-1-5-18'; PSPath = 'k18' }
            [pscustomobject]@{ PSChildName = 'S-1-5-21-1-2-3-1104'; PSPath = 'k1104' }
            [pscustomobject]@{ PSChildName = 'S-1-5-21-1-2-3-1199'; PSPath = 'k1199' }
        }
        Mock -ModuleName _UserProfile Get-ItemProperty {
            switch ($LiteralPath) {
                'k18' { [pscustomobject]@{ ProfileImagePath = 'C:\Windows\system32\config\systemprofile' } }
                'k1104' { [pscustomobject]@{ ProfileImagePath = 'C:\Users\alice'; Flags = 0 } }
                'k1199' { [pscustomobject]@{ Flags = 0 } }
            }
        }
        $e = @(Get-M365ProfileListEntry)
        $e.Sid | Should -Be @('S-1-5-18', 'S-1-5-21-1-2-3-1104', 'S-1-5-21-1-2-3-1199')
        $e[1].ProfileImagePath | Should -Be 'C:\Users\alice'
        $e[2].ProfileImagePath | Should -BeNullOrEmpty
        Should -Invoke -ModuleName _UserProfile Get-ChildItem -ParameterFilter { $LiteralPath -eq 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList' }
    }

    It 'Test-M365HiveLoaded looks under HKEY_USERS' {
        Mock -ModuleName _UserProfile Test-Path { $LiteralPath -eq 'Registry::HKEY_USERS\S-1-5-21-1-2-3-1104' }
        Test-M365HiveLoaded -Sid 'S-1-5-21-1-2-3-1104' | Should -BeTrue
        Test-M365HiveLoaded -Sid 'S-1-5-21-1-2-3-1105' | Should -BeFalse
    }

    It 'Get-M365ProfileUpn reads the IdentityStore cache and is $null without it' {
        Mock -ModuleName _UserProfile Get-ItemProperty {
            if ($LiteralPath -eq 'HKLM:\SOFTWARE\Microsoft\IdentityStore\Cache\S-1-12-1-5-6-7-8\IdentityCache\S-1-12-1-5-6-7-8') {
                [pscustomobject]@{ UserName = 'carol@contoso.com'; ProviderName = 'AzureAD' }
            }
            else { throw [System.Management.Automation.ItemNotFoundException]::new('not found') }
        }
        Get-M365ProfileUpn -Sid 'S-1-12-1-5-6-7-8' | Should -Be 'carol@contoso.com'
        Get-M365ProfileUpn -Sid 'S-1-5-21-1-2-3-1104' | Should -BeNullOrEmpty
    }

    It 'ConvertTo-M365AccountName and ConvertTo-M365Sid give $null for what does not translate' {
        # An unknown domain SID / name (and, under pwsh on Linux, no LSA at all).
        ConvertTo-M365AccountName -Sid 'S-1-5-21-4000000000-1-2-999999' | Should -BeNullOrEmpty
        ConvertTo-M365Sid -Name 'NOSUCHDOMAIN-m365ops\nobody' | Should -BeNullOrEmpty
    }

    It 'Test-M365ReparsePoint is $false for a missing path and a plain folder' {
        Test-M365ReparsePoint -Path (Join-Path $TestDrive 'missing') | Should -BeFalse
        Test-M365ReparsePoint -Path $TestDrive | Should -BeFalse
    }
}

Describe 'Link-safe walk and checks' {
    BeforeEach {
        $script:Case = Join-Path $TestDrive ([guid]::NewGuid().ToString('N'))
        $script:Accounts = Join-Path $script:Case 'alice' 'Accounts'
        $null = New-Item -ItemType Directory -Path (Join-Path $script:Accounts 'deep') -Force
        [System.IO.File]::WriteAllText((Join-Path $script:Accounts 'a.tbacct'), 'a')
        [System.IO.File]::WriteAllText((Join-Path $script:Accounts 'deep' 'b.tbacct'), 'b')
        $script:Canary = Join-Path $script:Case 'canary'
        $null = New-Item -ItemType Directory -Path $script:Canary
        [System.IO.File]::WriteAllText((Join-Path $script:Canary 'secret.dat'), 'secret')
    }

    It 'lists files below the root and refuses folder and file links without descending' {
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $script:Accounts 'j') -Target $script:Canary
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $script:Accounts 'deep' 'f.tbacct') -Target (Join-Path $script:Canary 'secret.dat')
        $refused = [System.Collections.Generic.List[object]]::new()
        $files = @(Get-M365SafeTreeFile -Root $script:Accounts -Base (Join-Path $script:Case 'alice') -Refused $refused)
        @($files.Relative | Sort-Object) | Should -Be @('a.tbacct', (Join-Path 'deep' 'b.tbacct'))
        @($refused.path | Sort-Object) | Should -Be @((Join-Path $script:Accounts 'deep' 'f.tbacct'), (Join-Path $script:Accounts 'j'))
    }

    It 'models Windows PowerShell 5.1: a junction enumerates like a folder, yet is never entered' {
        # On 5.1 a junction is a DirectoryInfo with Directory | ReparsePoint, and
        # Get-ChildItem -Recurse would list its target's files as if they were inside.
        $root = 'C:\Users\alice\Accounts'
        Mock -ModuleName _UserProfile Get-M365PathAttribute { [System.IO.FileAttributes]::Directory }
        Mock -ModuleName _UserProfile Get-M365DirectoryEntry {
            switch ($Path) {
                'C:\Users\alice\Accounts' {
                    [pscustomobject]@{ Name = 'a.tbacct'; FullName = "$Path\a.tbacct"; Attributes = [System.IO.FileAttributes]::Archive; Length = 1; LastWriteTimeUtc = [datetime]::UtcNow }
                    [pscustomobject]@{ Name = 'x'; FullName = "$Path\x"; Attributes = [System.IO.FileAttributes]'Directory, ReparsePoint'; Length = 0; LastWriteTimeUtc = [datetime]::UtcNow }
                }
                'C:\Users\alice\Accounts\x' {
                    [pscustomobject]@{ Name = 'SAM'; FullName = 'C:\Windows\System32\config\SAM'; Attributes = [System.IO.FileAttributes]::Archive; Length = 9; LastWriteTimeUtc = [datetime]::UtcNow }
                }
            }
        }
        $refused = [System.Collections.Generic.List[object]]::new()
        $files = @(Get-M365SafeTreeFile -Root $root -Base 'C:\Users\alice' -Refused $refused)
        $files.FullName | Should -Be @('C:\Users\alice\Accounts\a.tbacct')
        $refused.path | Should -Be @('C:\Users\alice\Accounts\x')
        Should -Invoke -ModuleName _UserProfile Get-M365DirectoryEntry -Times 0 -Exactly -ParameterFilter { $Path -eq 'C:\Users\alice\Accounts\x' }
    }

    It 'finds a link in the parent chain, not only at the item' {
        $profile_ = Join-Path $script:Case 'alice'
        Find-M365LinkInChain -Path (Join-Path $script:Accounts 'deep' 'b.tbacct') -Root $profile_ | Should -BeNullOrEmpty
        [System.IO.Directory]::Delete((Join-Path $script:Accounts 'deep'), $true)
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $script:Accounts 'deep') -Target $script:Canary
        Find-M365LinkInChain -Path (Join-Path $script:Accounts 'deep' 'secret.dat') -Root $profile_ | Should -Be (Join-Path $script:Accounts 'deep')
        { Assert-M365NoLink -Path (Join-Path $script:Accounts 'deep' 'secret.dat') -Root $profile_ } |
            Should -Throw -ExceptionType ([System.Security.SecurityException]) -ExpectedMessage '*below*junction or symbolic link*'
    }

    It 'refuses the whole tree when the root itself is a link' {
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $script:Case 'alice' 'Other') -Target $script:Canary
        $refused = [System.Collections.Generic.List[object]]::new()
        @(Get-M365SafeTreeFile -Root (Join-Path $script:Case 'alice' 'Other') -Base (Join-Path $script:Case 'alice') -Refused $refused) | Should -HaveCount 0
        $refused.path | Should -Be @((Join-Path $script:Case 'alice' 'Other'))
    }

    It 'deletes a tree without following a link inside it' {
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $script:Accounts 'j') -Target $script:Canary
        Remove-M365TreeNoFollow -Path (Join-Path $script:Case 'alice')
        Test-Path -LiteralPath (Join-Path $script:Case 'alice') | Should -BeFalse
        [System.IO.File]::ReadAllText((Join-Path $script:Canary 'secret.dat')) | Should -Be 'secret'
    }
}
