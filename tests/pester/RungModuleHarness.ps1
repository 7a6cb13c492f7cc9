# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# Dot-sourced by the rung module tests (win_credential_purge, win_work_accounts,
# win_token_broker_cache, win_aad_broker_plugin, win_dsreg_join). It runs a module's
# .ps1 in this process the way ansible-core's exec wrapper does - Ansible.Basic compiled
# from ansible-core's own source, module_utils imported as modules - with Exit and
# WriteLine redirected so the test gets the result back instead of the process exiting.
# Windows-only commands are mocked by the tests; the module logic itself runs for real.

$script:RepoRoot = (Resolve-Path -LiteralPath (Join-Path $PSScriptRoot '..' '..')).Path
$script:ModuleUtils = Join-Path $script:RepoRoot 'plugins' 'module_utils'
$script:ModulesDir = Join-Path $script:RepoRoot 'plugins' 'modules'

Function Find-AnsibleBasicSource {
    $candidates = @()
    if ($env:ANSIBLE_BASIC_CS) { $candidates += $env:ANSIBLE_BASIC_CS }
    $candidates += Get-ChildItem -Path (Join-Path $script:RepoRoot '.venv' 'lib') -Filter 'Ansible.Basic.cs' -Recurse -ErrorAction SilentlyContinue |
        Select-Object -ExpandProperty FullName
    foreach ($python in 'python3', 'python') {
        $cmd = Get-Command $python -ErrorAction SilentlyContinue
        if ($cmd) {
            $dir = & $cmd.Source -c 'import ansible, os; print(os.path.dirname(ansible.__file__))' 2>$null
            if ($LASTEXITCODE -eq 0 -and $dir) { $candidates += Join-Path $dir 'module_utils' 'csharp' 'Ansible.Basic.cs' }
        }
    }
    foreach ($c in $candidates) { if ($c -and (Test-Path -LiteralPath $c)) { return $c } }
    throw 'Ansible.Basic.cs not found: set ANSIBLE_BASIC_CS or install ansible-core into .venv'
}

Function Initialize-RungHarness {
    if (-not ('Ansible.Basic.AnsibleModule' -as [type])) {
        $cs = Find-AnsibleBasicSource
        $addType = Join-Path (Split-Path (Split-Path $cs -Parent) -Parent) 'powershell' 'Ansible.ModuleUtils.AddType.psm1'
        Import-Module -Name $addType -Force
        Add-CSharpType -References (Get-Content -LiteralPath $cs -Raw)
    }
    foreach ($name in '_UserProfile', '_ScheduledTaskRunner', '_RebootMarker', '_UserRung', '_CredentialPattern', '_UserSession', '_TokenBrokerQuarantine', '_Dsreg', '_DsregJoin',
        '_RungContext', '_RestartRequest', '_CredentialPurge', '_WorkAccounts', '_BrokerPlugin', '_TokenBrokerReset', '_HybridJoin') {
        Import-Module -Name (Join-Path $script:ModuleUtils "$name.psm1") -Force -Global
    }
}

Function Invoke-RungModule {
    <#
    .SYNOPSIS
    Runs plugins/modules/<Name>.ps1 with the given options; returns the result hashtable.
    #>
    param (
        [Parameter(Mandatory)][string]$Name,
        [hashtable]$Params = @{},
        [switch]$CheckMode,
        [switch]$DiffMode
    )
    $moduleArgs = @{}
    foreach ($k in $Params.Keys) { $moduleArgs[$k] = $Params[$k] }
    $moduleArgs['_ansible_check_mode'] = [bool]$CheckMode
    $moduleArgs['_ansible_diff'] = [bool]$DiffMode
    $moduleArgs['_ansible_module_name'] = $Name
    $global:complex_args = $moduleArgs

    $global:RungHarnessOutput = $null
    [Ansible.Basic.AnsibleModule]::WriteLine = [Ansible.Basic.AnsibleModule+WriteLineHandler] { param($line) $global:RungHarnessOutput = $line }
    [Ansible.Basic.AnsibleModule]::Exit = [Ansible.Basic.AnsibleModule+ExitHandler] { param($rc) throw "RUNG-HARNESS-EXIT $rc" }
    try {
        $null = & (Join-Path $script:ModulesDir "$Name.ps1")
    }
    catch {
        if ("$_" -notmatch 'RUNG-HARNESS-EXIT') { throw }
    }
    finally {
        Remove-Variable -Name complex_args -Scope Global -ErrorAction SilentlyContinue
    }
    if ($null -eq $global:RungHarnessOutput) { throw "module $Name returned without calling ExitJson/FailJson" }
    ConvertFrom-Json -InputObject $global:RungHarnessOutput -AsHashtable
}

Function New-TestProfile {
    <#
    .SYNOPSIS
    A UserProfile-shaped object (see _UserProfile.psm1 Get-M365UserProfile).
    #>
    param (
        [string]$Sid = 'S-1-5-21-1004336348-1177238915-682003330-1104',
        [string]$UserName = 'CONTOSO\alice',
        [string]$ProfilePath = 'C:\Users\alice',
        [bool]$LoggedOn = $true
    )
    [pscustomobject]@{ Sid = $Sid; UserName = $UserName; ProfilePath = $ProfilePath; HiveLoaded = $LoggedOn; LoggedOn = $LoggedOn }
}

Function New-TaskResult {
    # The shape Invoke-M365TaskScript returns; Output goes through JSON like the real one.
    param ([string]$Status = 'ok', $Output = $null, [string]$Message = '')
    $out = if ($null -ne $Output) { ConvertFrom-Json -InputObject (ConvertTo-Json -InputObject $Output -Depth 10) } else { $null }
    [pscustomobject]@{ Status = $Status; Output = $out; Message = $Message; ExitCode = if ($Status -eq 'ok') { 0 } else { $null } }
}

Function Set-RungUser {
    <#
    .SYNOPSIS
    The test users: alice (logged on), bob (not logged on) and, with -Carol, carol (not
    logged on), as $global:RungAlice/RungBob/RungCarol and together as $global:RungUsers.
    #>
    param ([string]$ProfileRoot = 'C:\Users', [switch]$Carol)
    # Join-Path would look for a C: drive, which pwsh on Linux does not have; a Windows-style
    # root is only data here, while a real folder (TestDrive) must be joined for this OS.
    $sep = if ($ProfileRoot -match '^[A-Za-z]:\\') { '\' } else { [System.IO.Path]::DirectorySeparatorChar }
    $global:RungAlice = New-TestProfile -ProfilePath "$ProfileRoot${sep}alice"
    $global:RungBob = New-TestProfile -Sid 'S-1-5-21-1004336348-1177238915-682003330-1105' -UserName 'CONTOSO\bob' -ProfilePath "$ProfileRoot${sep}bob" -LoggedOn $false
    $global:RungUsers = @($global:RungAlice, $global:RungBob)
    $global:RungCarol = $null
    if ($Carol) {
        $global:RungCarol = New-TestProfile -Sid 'S-1-5-21-1004336348-1177238915-682003330-1106' -UserName 'CONTOSO\carol' -ProfilePath "$ProfileRoot${sep}carol" -LoggedOn $false
        $global:RungUsers += $global:RungCarol
    }
}

Function Set-RungUserMock {
    <#
    .SYNOPSIS
    Mocks the profile list and name resolution Get-M365RungUser (_UserProfile.psm1) selects users from (short names
    resolve to $global:RungUsers; names with wildcards or path characters reach the real
    Resolve-M365User, which refuses them). With -UserTask, the user-context task runs the
    module's own script block in-process, as the task would in the user's session, and
    any user who is not logged on gets the runner's not_logged_on result.
    Call it from BeforeEach (or an It), after Set-RungUser.
    #>
    param ([switch]$UserTask)
    Mock -ModuleName _UserProfile Get-M365UserProfile { $global:RungUsers }
    # No task scheduler here: the sweep of leftovers has its own tests (ScheduledTaskRunner).
    Mock -ModuleName _ScheduledTaskRunner Clear-M365StaleTaskRun { [ordered]@{ removed = @(); failed = @() } }
    Mock -ModuleName _UserProfile Resolve-M365User {
        $found = @($global:RungUsers | Where-Object { $_.UserName -eq "CONTOSO\$Identity" })
        if ($found.Count -eq 0) { throw [System.ArgumentException]::new("Identity '$Identity' is unknown: no account or user profile on this host matches it.") }
        $found[0]
    } -ParameterFilter { $Identity -notmatch '[\\/\*\?]' }
    if ($UserTask) {
        Mock -ModuleName _UserRung Invoke-M365TaskScript {
            $target = @($global:RungUsers | Where-Object { $_.Sid -eq $UserSid })
            if ($target.Count -gt 0 -and -not $target[0].LoggedOn) { return New-TaskResult -Status 'not_logged_on' -Message 'User has no interactive session' }
            New-TaskResult -Output (& $ScriptBlock @Parameters)
        }
    }
}

Function Set-RungRepairRecordMock {
    <#
    .SYNOPSIS
    Keeps the Repairs record (HKLM, _RebootMarker.psm1) in $global:RungRepairs, in call
    order, so a test can check what a rung recorded: @{ Rung; Summary } per
    Set-M365RepairRecord, @{ Rung; Cleared = $true } per Clear-M365RepairRecord.
    The per-user rungs record through Exit-M365UserRung (_UserRung's scope), the others
    from their rung util (_TokenBrokerReset, _HybridJoin). Call it from BeforeEach.
    #>
    $global:RungRepairs = [System.Collections.Generic.List[hashtable]]::new()
    $record = { $global:RungRepairs.Add(@{ Rung = $Rung; Summary = $Summary }) }
    Mock -ModuleName _UserRung Set-M365RepairRecord $record
    foreach ($util in '_TokenBrokerReset', '_HybridJoin') {
        Mock -ModuleName $util Set-M365RepairRecord $record
        Mock -ModuleName $util Clear-M365RepairRecord { $global:RungRepairs.Add(@{ Rung = $Rung; Cleared = $true }) }
    }
}

Function Assert-RungIdempotent {
    <#
    .SYNOPSIS
    Runs a rung module twice with the same options: the first run must change something,
    the second nothing, every user 'unchanged'. Returns the second result.
    #>
    param ([Parameter(Mandatory)][string]$Name, [hashtable]$Params = @{})
    $first = Invoke-RungModule -Name $Name -Params $Params
    $first.changed | Should -BeTrue -Because 'the first run has something to repair'
    $r = Invoke-RungModule -Name $Name -Params $Params
    $r.failed | Should -BeNullOrEmpty
    $r.changed | Should -BeFalse
    @($r.users | ForEach-Object { $_.status }) | Should -Not -BeNullOrEmpty
    @($r.users | Where-Object { $_.status -ne 'unchanged' }) | Should -BeNullOrEmpty
    $r
}
