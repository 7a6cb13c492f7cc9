# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# _ScheduledTaskRunner.psm1. The scheduled-task cmdlets and the ACL call are mocked; the
# encoded command is real: "starting the task" runs it with this pwsh, so the inline
# transport, the parameters, the output envelope and the cleanup are all exercised.

BeforeAll {
    $utils = Join-Path $PSScriptRoot '..' '..' 'plugins' 'module_utils'
    Import-Module (Join-Path $utils '_UserProfile.psm1') -Force
    Import-Module (Join-Path $utils '_ScheduledTaskRunner.psm1') -Force
    & (Get-Module _ScheduledTaskRunner) { $script:PollMilliseconds = 20 }
    . (Join-Path $PSScriptRoot 'TaskCommandLine.ps1')
    $script:UserSid = 'S-1-5-21-1004336348-1177238915-682003330-1104'

    Function Set-TaskMocks {
        param([string]$Root)
        $script:Registered = @{}
        $script:ExitCode = $null
        Mock -ModuleName _ScheduledTaskRunner Get-M365RunRoot { $Root }.GetNewClosure()
        Mock -ModuleName _ScheduledTaskRunner Set-M365PathSddl { }
        Mock -ModuleName _ScheduledTaskRunner Get-M365PowerShellPath { 'C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe' }
        Mock -ModuleName _ScheduledTaskRunner Register-M365Task {
            $script:Registered = @{ TaskName = $TaskName; Argument = $Argument; UserId = $UserId; LogonType = $LogonType; Execute = $Execute }
        }
        Mock -ModuleName _ScheduledTaskRunner Start-M365Task { $script:ExitCode = Invoke-TaskArgument -Argument $script:Registered.Argument }
        Mock -ModuleName _ScheduledTaskRunner Get-M365TaskState { [pscustomobject]@{ State = 'Ready'; LastTaskResult = $script:ExitCode } }
        Mock -ModuleName _ScheduledTaskRunner Stop-M365Task { }
        Mock -ModuleName _ScheduledTaskRunner Unregister-M365Task { }
        Mock -ModuleName _ScheduledTaskRunner Get-M365InteractiveSid { $script:UserSid }
    }
}

Describe 'ConvertTo-M365TaskCommand' {
    It 'builds a hidden, profile-less powershell command with the script inline' {
        $arg = ConvertTo-M365TaskCommand -ScriptBlock { 'x' } -OutputFile 'C:\Windows\Temp\m365ops-1\output.json'
        $arg | Should -Match ('^-NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -WindowStyle Hidden -Command ' +
            [regex]::Escape('&([ScriptBlock]::Create([Text.Encoding]::UTF8.GetString([Convert]::FromBase64String(') +
            "'[A-Za-z0-9+/=]+'\)\)\)\) '[A-Za-z0-9+/=]+'$")
        # Nothing that Task Scheduler (%variables%) or the Windows argument splitting (quotes,
        # backslashes, blanks) would change.
        $arg | Should -Not -Match '["%\\]|  '
        $bootstrap = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String(($arg -split "'")[1]))
        $bootstrap | Should -Match ([regex]::Escape("'C:\Windows\Temp\m365ops-1\output.json'"))
        $bootstrap | Should -Not -Match '\.ps1'
    }

    It 'sends the script without its comments and still runs it' {
        $out = Join-Path $TestDrive 'out-comments.json'
        Set-Content -LiteralPath $out -Value ''
        $arg = ConvertTo-M365TaskCommand -OutputFile $out -ScriptBlock {
            # a line comment that must not travel
            <# a block
               comment that must not travel #>
            $here = @'
# inside a here-string: data, kept
'@
            "$here|#not a comment either"
        }
        $packed = [Convert]::FromBase64String(($arg -split "'")[3])
        $gz = [IO.Compression.GZipStream]::new([IO.MemoryStream]::new($packed), [IO.Compression.CompressionMode]::Decompress)
        $script = ([IO.StreamReader]::new($gz).ReadToEnd() | ConvertFrom-Json).script
        $script | Should -Not -Match 'must not travel'
        Invoke-TaskArgument -Argument $arg | Should -Be 0
        (Read-M365TaskOutput -Path $out).output | Should -Be '# inside a here-string: data, kept|#not a comment either'
    }

    It 'round-trips parameters and the returned object through the output file' {
        $out = Join-Path $TestDrive 'out1.json'
        Set-Content -LiteralPath $out -Value ''
        $arg = ConvertTo-M365TaskCommand -OutputFile $out -Parameters @{ Name = "o'brien"; Count = 2; Items = @('a', 'b') } -ScriptBlock {
            param([string]$Name, [int]$Count, [string[]]$Items)
            [pscustomobject]@{ name = $Name; next = $Count + 1; items = $Items; nested = @{ k = 'v' } }
        }
        Invoke-TaskArgument -Argument $arg | Should -Be 0
        $env = Read-M365TaskOutput -Path $out
        $env.ok | Should -BeTrue
        $env.output.name | Should -Be "o'brien"
        $env.output.next | Should -Be 3
        $env.output.items | Should -Be @('a', 'b')
        $env.output.nested.k | Should -Be 'v'
    }

    It 'reports a script error in the envelope with exit code 1' {
        $out = Join-Path $TestDrive 'out2.json'
        Set-Content -LiteralPath $out -Value ''
        $arg = ConvertTo-M365TaskCommand -OutputFile $out -ScriptBlock { throw 'dsregcmd exploded' }
        Invoke-TaskArgument -Argument $arg | Should -Be 1
        $env = Read-M365TaskOutput -Path $out
        $env.ok | Should -BeFalse
        $env.error | Should -Match 'dsregcmd exploded'
    }

    It 'exits 2 and creates nothing when the output file was not pre-created' {
        $out = Join-Path $TestDrive 'never-created.json'
        $arg = ConvertTo-M365TaskCommand -OutputFile $out -ScriptBlock { 1 }
        Invoke-TaskArgument -Argument $arg | Should -Be 2
        Test-Path -LiteralPath $out | Should -BeFalse
    }

    It 'refuses a script too large for a command line, naming ScriptBlock' {
        $rng = [Random]::new(7)
        $noise = -join (1..40000 | ForEach-Object { [char]$rng.Next(33, 126) })
        $sb = [ScriptBlock]::Create("'$($noise.Replace("'", "''"))'")
        { ConvertTo-M365TaskCommand -ScriptBlock $sb -OutputFile 'x' } | Should -Throw -ExceptionType ([System.ArgumentException]) -ExpectedMessage 'ScriptBlock is too large*'
    }
}

Describe 'Get-M365RunFolderSddl' {
    It 'gives a SYSTEM run only SYSTEM and Administrators, inheritance off' {
        $s = Get-M365RunFolderSddl
        $s.Folder | Should -Be 'D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)'
        $s.File | Should -Be 'D:P(A;;FA;;;SY)(A;;FA;;;BA)'
    }

    It 'gives the user traverse on the folder and write (never delete or re-ACL) on the output file' {
        # ACL classes are Windows-only in .NET, so the SDDL is read by hand: D:P = protected
        # DACL (no inheritance from %SystemRoot%\Temp), ACE = (type;flags;rights;;;sid).
        Function Get-Ace([string]$Sddl) {
            [regex]::Matches($Sddl, '\((A|D);([A-Z]*);([^;]*);;;([^)]+)\)') | ForEach-Object {
                $rights = $_.Groups[3].Value
                [pscustomobject]@{
                    Type = $_.Groups[1].Value; Flags = $_.Groups[2].Value; Sid = $_.Groups[4].Value
                    Mask = if ($rights -eq 'FA') { 0x1F01FF } else { [Convert]::ToInt32($rights, 16) }
                }
            }
        }
        $s = Get-M365RunFolderSddl -UserSid $script:UserSid
        foreach ($sddl in $s.Folder, $s.File) {
            $sddl | Should -BeLike 'D:P(*'
            $aces = @(Get-Ace $sddl)
            ($aces | Where-Object Type -NE 'A') | Should -BeNullOrEmpty
            @($aces | Where-Object { $_.Sid -notin @('SY', 'BA', $script:UserSid) }).Count | Should -Be 0
            $user = @($aces | Where-Object Sid -EQ $script:UserSid)
            $user.Count | Should -Be 1
            $user[0].Flags | Should -Be ''  # not inherited by anything created later
            # DELETE 0x10000, WRITE_DAC 0x40000, WRITE_OWNER 0x80000, FILE_DELETE_CHILD 0x40
            foreach ($bit in 0x10000, 0x40000, 0x80000, 0x40) { ($user[0].Mask -band $bit) | Should -Be 0 }
        }
        $folderUser = @(Get-Ace $s.Folder | Where-Object Sid -EQ $script:UserSid)[0]
        ($folderUser.Mask -band 0x6) | Should -Be 0     # FILE_ADD_FILE, FILE_ADD_SUBDIRECTORY
        ($folderUser.Mask -band 0x20) | Should -Be 0x20 # traverse
        $fileUser = @(Get-Ace $s.File | Where-Object Sid -EQ $script:UserSid)[0]
        ($fileUser.Mask -band 0x2) | Should -Be 0x2     # FILE_WRITE_DATA: may write the output
    }
}

Describe 'Set-M365PathSddl off Windows' -Skip:($IsWindows -ne $false) {
    It 'leaves a folder and a file readable and writable by their owner only' {
        $dir = Join-Path $TestDrive 'run'
        $null = New-Item -ItemType Directory -Path $dir
        $file = Join-Path $dir 'output.json'
        Set-Content -LiteralPath $file -Value '{}'
        [System.IO.File]::SetUnixFileMode($dir, [System.IO.UnixFileMode]'UserRead, UserWrite, UserExecute, GroupRead, GroupWrite, OtherWrite, OtherRead')
        $sddl = Get-M365RunFolderSddl
        Set-M365PathSddl -Path $file -Sddl $sddl.File
        Set-M365PathSddl -Path $dir -Sddl $sddl.Folder
        [System.IO.File]::GetUnixFileMode($dir) | Should -Be ([System.IO.UnixFileMode]'UserRead, UserWrite, UserExecute')
        [System.IO.File]::GetUnixFileMode($file) | Should -Be ([System.IO.UnixFileMode]'UserRead, UserWrite')
    }
}

Describe 'New-M365RunFolder' {
    BeforeEach {
        $script:Root = Join-Path $TestDrive ([guid]::NewGuid().ToString('N'))
        $null = New-Item -ItemType Directory -Path $script:Root
        Mock -ModuleName _ScheduledTaskRunner Get-M365RunRoot { $script:Root }
        Mock -ModuleName _ScheduledTaskRunner Set-M365PathSddl { }
    }

    It 'creates the folder and an empty output file and locks both' {
        $f = New-M365RunFolder -RunId 'abc' -UserSid $script:UserSid
        $f.Path | Should -Be (Join-Path $script:Root 'm365ops-abc')
        (Get-Item -LiteralPath $f.OutputFile).Length | Should -Be 0
        Should -Invoke -ModuleName _ScheduledTaskRunner Set-M365PathSddl -Times 1 -Exactly -ParameterFilter { $Path -eq $f.OutputFile -and $Sddl -match [regex]::Escape($script:UserSid) }
        Should -Invoke -ModuleName _ScheduledTaskRunner Set-M365PathSddl -Times 1 -Exactly -ParameterFilter { $Path -eq $f.Path -and $Sddl -like 'D:P*' }
    }

    It 'never reuses a folder that already exists (someone may have planted it)' {
        $null = New-Item -ItemType Directory -Path (Join-Path $script:Root 'm365ops-dup')
        { New-M365RunFolder -RunId 'dup' } | Should -Throw
        Should -Invoke -ModuleName _ScheduledTaskRunner Set-M365PathSddl -Times 0 -Exactly
    }

    It 'removes a half-built folder when the ACL is refused' {
        Mock -ModuleName _ScheduledTaskRunner Set-M365PathSddl { throw [System.UnauthorizedAccessException]::new('denied') }
        { New-M365RunFolder -RunId 'acl' } | Should -Throw -ExceptionType ([System.UnauthorizedAccessException])
        Test-Path -LiteralPath (Join-Path $script:Root 'm365ops-acl') | Should -BeFalse
    }
}

Describe 'Test-M365AccessDenied' {
    It 'recognises <Name>' -ForEach @(
        @{ Name = 'UnauthorizedAccessException'; Ex = [System.UnauthorizedAccessException]::new('x') }
        @{ Name = 'E_ACCESSDENIED HRESULT'; Ex = [System.Runtime.InteropServices.COMException]::new('x', -2147024891) }
        @{ Name = 'a wrapped E_ACCESSDENIED'; Ex = [System.Exception]::new('outer', [System.Runtime.InteropServices.COMException]::new('x', -2147024891)) }
    ) {
        $record = [System.Management.Automation.ErrorRecord]::new($Ex, 'id', 'NotSpecified', $null)
        Test-M365AccessDenied -ErrorRecord $record | Should -BeTrue
    }

    It 'recognises a PermissionDenied record (CIM cmdlets)' {
        $record = [System.Management.Automation.ErrorRecord]::new([System.Exception]::new('x'), 'HRESULT 0x80070005,Register-ScheduledTask', 'PermissionDenied', $null)
        Test-M365AccessDenied -ErrorRecord $record | Should -BeTrue
    }

    It 'does not call other failures access denied' {
        $record = [System.Management.Automation.ErrorRecord]::new([System.IO.IOException]::new('disk full'), 'id', 'WriteError', $null)
        Test-M365AccessDenied -ErrorRecord $record | Should -BeFalse
    }
}

Describe 'Invoke-M365TaskScript' {
    BeforeEach {
        $script:Root = Join-Path $TestDrive ([guid]::NewGuid().ToString('N'))
        $null = New-Item -ItemType Directory -Path $script:Root
        Set-TaskMocks -Root $script:Root
    }

    It 'runs as SYSTEM with a ServiceAccount principal and returns the output' {
        $r = Invoke-M365TaskScript -RunAs System -ScriptBlock { param($X) @{ doubled = $X * 2 } } -Parameters @{ X = 21 }
        $r.Status | Should -Be 'ok'
        $r.Output.doubled | Should -Be 42
        $r.ExitCode | Should -Be 0
        $script:Registered.UserId | Should -Be 'S-1-5-18'
        $script:Registered.LogonType | Should -Be 'ServiceAccount'
        $script:Registered.Execute | Should -Match 'powershell\.exe$'
        ($r.PSObject.Properties.Name -join ',') | Should -Be 'Status,Output,Message,ExitCode'
        Should -Invoke -ModuleName _ScheduledTaskRunner Unregister-M365Task -Times 1 -Exactly -ParameterFilter { $TaskName -eq $script:Registered.TaskName }
        @(Get-ChildItem -LiteralPath $script:Root -Force).Count | Should -Be 0
    }

    It 'runs as the user with an Interactive principal' {
        $r = Invoke-M365TaskScript -RunAs User -UserSid $script:UserSid -ScriptBlock { 'hi' }
        $r.Status | Should -Be 'ok'
        $r.Output | Should -Be 'hi'
        $script:Registered.UserId | Should -Be $script:UserSid
        $script:Registered.LogonType | Should -Be 'Interactive'
        Should -Invoke -ModuleName _ScheduledTaskRunner Set-M365PathSddl -ParameterFilter { $Sddl -match [regex]::Escape($script:UserSid) }
    }

    It 'returns not_logged_on at once for a user without a session, registering nothing' {
        Mock -ModuleName _ScheduledTaskRunner Get-M365InteractiveSid { 'S-1-5-21-1-2-3-9999' }
        $r = Invoke-M365TaskScript -RunAs User -UserSid $script:UserSid -ScriptBlock { 'x' }
        $r.Status | Should -Be 'not_logged_on'
        $r.Message | Should -Match ([regex]::Escape($script:UserSid))
        Should -Invoke -ModuleName _ScheduledTaskRunner Register-M365Task -Times 0 -Exactly
        @(Get-ChildItem -LiteralPath $script:Root -Force).Count | Should -Be 0
    }

    It 'times out: stops and unregisters the task and removes the folder' {
        Mock -ModuleName _ScheduledTaskRunner Start-M365Task { }
        Mock -ModuleName _ScheduledTaskRunner Get-M365TaskState { [pscustomobject]@{ State = 'Running'; LastTaskResult = 0x41301 } }
        $watch = [Diagnostics.Stopwatch]::StartNew()
        $r = Invoke-M365TaskScript -RunAs System -ScriptBlock { Start-Sleep 100 } -TimeoutSeconds 1
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 10
        $r.Status | Should -Be 'timeout'
        $r.Message | Should -Match '1 seconds'
        Should -Invoke -ModuleName _ScheduledTaskRunner Stop-M365Task -Times 1 -Exactly
        Should -Invoke -ModuleName _ScheduledTaskRunner Unregister-M365Task -Times 1 -Exactly
        @(Get-ChildItem -LiteralPath $script:Root -Force).Count | Should -Be 0
    }

    It 'keeps waiting while the task is queued or has not run yet' {
        $script:Polls = 0
        Mock -ModuleName _ScheduledTaskRunner Get-M365TaskState {
            $script:Polls++
            if ($script:Polls -eq 1) { [pscustomobject]@{ State = 'Ready'; LastTaskResult = 0x41303 } }
            elseif ($script:Polls -eq 2) { [pscustomobject]@{ State = 'Queued'; LastTaskResult = 0x41325 } }
            else { [pscustomobject]@{ State = 'Ready'; LastTaskResult = $script:ExitCode } }
        }
        (Invoke-M365TaskScript -RunAs System -ScriptBlock { 5 }).Output | Should -Be 5
        $script:Polls | Should -Be 3
    }

    It 'reports access_denied when registering is refused, and still cleans up' {
        Mock -ModuleName _ScheduledTaskRunner Register-M365Task { throw [System.UnauthorizedAccessException]::new('Access is denied.') }
        $r = Invoke-M365TaskScript -RunAs System -ScriptBlock { 1 }
        $r.Status | Should -Be 'access_denied'
        $r.Message | Should -Match 'Access is denied'
        Should -Invoke -ModuleName _ScheduledTaskRunner Unregister-M365Task -Times 0 -Exactly
        @(Get-ChildItem -LiteralPath $script:Root -Force).Count | Should -Be 0
    }

    It 'reports access_denied when starting is refused and unregisters the task' {
        Mock -ModuleName _ScheduledTaskRunner Start-M365Task { throw [System.Runtime.InteropServices.COMException]::new('denied', -2147024891) }
        $r = Invoke-M365TaskScript -RunAs User -UserSid $script:UserSid -ScriptBlock { 1 }
        $r.Status | Should -Be 'access_denied'
        Should -Invoke -ModuleName _ScheduledTaskRunner Unregister-M365Task -Times 1 -Exactly
    }

    It 'reports access_denied when Task Scheduler ends the task with 0x80070005' {
        Mock -ModuleName _ScheduledTaskRunner Start-M365Task { }
        Mock -ModuleName _ScheduledTaskRunner Get-M365TaskState { [pscustomobject]@{ State = 'Ready'; LastTaskResult = -2147024891 } }
        (Invoke-M365TaskScript -RunAs System -ScriptBlock { 1 }).Status | Should -Be 'access_denied'
    }

    It 'reports <Expected> when the task state cannot be read, and still cleans up' -ForEach @(
        @{ Expected = 'access_denied'; Ex = [System.UnauthorizedAccessException]::new('denied') }
        @{ Expected = 'failed'; Ex = [System.InvalidOperationException]::new('The task has been deleted') }
    ) {
        $script:StateError = $Ex
        Mock -ModuleName _ScheduledTaskRunner Start-M365Task { }
        Mock -ModuleName _ScheduledTaskRunner Get-M365TaskState { throw $script:StateError }
        $r = Invoke-M365TaskScript -RunAs System -ScriptBlock { 1 }
        $r.Status | Should -Be $Expected
        $r.Message | Should -Match 'Could not read the state'
        Should -Invoke -ModuleName _ScheduledTaskRunner Stop-M365Task -Times 1 -Exactly
        Should -Invoke -ModuleName _ScheduledTaskRunner Unregister-M365Task -Times 1 -Exactly
        @(Get-ChildItem -LiteralPath $script:Root -Force).Count | Should -Be 0
    }

    It 'reports failed with the script error when the script throws' {
        $r = Invoke-M365TaskScript -RunAs System -ScriptBlock { throw 'no dsregcmd here' }
        $r.Status | Should -Be 'failed'
        $r.ExitCode | Should -Be 1
        $r.Message | Should -Match 'no dsregcmd here'
    }

    It 'reports failed when the task ends without writing output' {
        Mock -ModuleName _ScheduledTaskRunner Start-M365Task { $script:ExitCode = 0xC000013A }
        $r = Invoke-M365TaskScript -RunAs System -ScriptBlock { 1 }
        $r.Status | Should -Be 'failed'
        $r.Message | Should -Match 'without writing output'
    }

    It 'reports failed for any other setup error' {
        Mock -ModuleName _ScheduledTaskRunner Register-M365Task { throw [System.IO.IOException]::new('The task XML is malformed') }
        $r = Invoke-M365TaskScript -RunAs System -ScriptBlock { 1 }
        $r.Status | Should -Be 'failed'
        $r.Message | Should -Match 'malformed'
    }

    It 'removes the folder even when unregistering fails' {
        Mock -ModuleName _ScheduledTaskRunner Unregister-M365Task { throw 'RPC unavailable' }
        $null = Get-M365TaskRunnerWarning
        $r = Invoke-M365TaskScript -RunAs System -ScriptBlock { 1 }
        $r.Status | Should -Be 'ok'
        # Kept for the module to turn into an Ansible warning, then cleared once read.
        $warn = @(Get-M365TaskRunnerWarning)
        $warn | Should -HaveCount 1
        $warn[0] | Should -Match 'Could not unregister task \\m365ops\\m365ops-.*RPC unavailable'
        @(Get-M365TaskRunnerWarning) | Should -HaveCount 0
        @(Get-ChildItem -LiteralPath $script:Root -Force).Count | Should -Be 0
    }

    It 'refuses <Case> before creating anything' -ForEach @(
        @{ Case = 'User without UserSid'; Splat = @{ RunAs = 'User' }; Message = 'UserSid is required*' }
        @{ Case = 'a malformed UserSid'; Splat = @{ RunAs = 'User'; UserSid = 'alice' }; Message = "UserSid 'alice'*" }
        @{ Case = 'a zero timeout'; Splat = @{ RunAs = 'System'; TimeoutSeconds = 0 }; Message = 'TimeoutSeconds*' }
        @{ Case = 'a huge timeout'; Splat = @{ RunAs = 'System'; TimeoutSeconds = 99999 }; Message = 'TimeoutSeconds*' }
    ) {
        { Invoke-M365TaskScript -ScriptBlock { 1 } @Splat } | Should -Throw -ExceptionType ([System.ArgumentException]) -ExpectedMessage $Message
        Should -Invoke -ModuleName _ScheduledTaskRunner Register-M365Task -Times 0 -Exactly
        @(Get-ChildItem -LiteralPath $script:Root -Force).Count | Should -Be 0
    }
}

Describe 'Scheduled task adapters' {
    BeforeAll {
        # The ScheduledTasks module is Windows-only: stand-ins with its parameter names.
        $script:TaskStubs = @()
        $defs = @{
            'New-ScheduledTaskAction' = { param([string]$Execute, [string]$Argument) }
            'New-ScheduledTaskPrincipal' = { param([string]$UserId, [string]$LogonType, [string]$RunLevel) }
            'New-ScheduledTaskSettingsSet' = { param([switch]$AllowStartIfOnBatteries, [switch]$DontStopIfGoingOnBatteries, [switch]$Hidden, [string]$MultipleInstances, [TimeSpan]$ExecutionTimeLimit) }
            'Register-ScheduledTask' = { param([string]$TaskName, [string]$TaskPath, $Action, $Principal, $Settings) }
            'Start-ScheduledTask' = { param([string]$TaskName, [string]$TaskPath) }
            'Stop-ScheduledTask' = { param([string]$TaskName, [string]$TaskPath) }
            'Unregister-ScheduledTask' = { param([string]$TaskName, [string]$TaskPath, [switch]$Confirm) }
            'Get-ScheduledTask' = { param([string]$TaskName, [string]$TaskPath) }
            'Get-ScheduledTaskInfo' = { param([string]$TaskName, [string]$TaskPath) }
        }
        foreach ($name in $defs.Keys) {
            if (-not (Get-Command $name -ErrorAction SilentlyContinue)) {
                Set-Item -Path "function:global:$name" -Value $defs[$name]
                $script:TaskStubs += $name
            }
        }
    }
    AfterAll {
        foreach ($name in $script:TaskStubs) { Remove-Item "function:global:$name" -ErrorAction SilentlyContinue }
    }
    BeforeEach {
        Mock -ModuleName _ScheduledTaskRunner New-ScheduledTaskAction { [pscustomobject]@{ Execute = $Execute; Argument = $Argument } }
        Mock -ModuleName _ScheduledTaskRunner New-ScheduledTaskPrincipal { [pscustomobject]@{ UserId = $UserId; LogonType = $LogonType; RunLevel = $RunLevel } }
        Mock -ModuleName _ScheduledTaskRunner New-ScheduledTaskSettingsSet { [pscustomobject]@{ Limit = $ExecutionTimeLimit; Hidden = [bool]$Hidden } }
        Mock -ModuleName _ScheduledTaskRunner Register-ScheduledTask { }
    }

    It 'registers a SYSTEM task as ServiceAccount with the highest run level under \m365ops\' {
        Register-M365Task -TaskName 'm365ops-1' -Execute 'powershell.exe' -Argument '-EncodedCommand x' -UserId 'S-1-5-18' -LogonType ServiceAccount -TimeoutSeconds 120
        Should -Invoke -ModuleName _ScheduledTaskRunner New-ScheduledTaskPrincipal -Times 1 -Exactly -ParameterFilter { $UserId -eq 'S-1-5-18' -and $LogonType -eq 'ServiceAccount' -and $RunLevel -eq 'Highest' }
        Should -Invoke -ModuleName _ScheduledTaskRunner Register-ScheduledTask -Times 1 -Exactly -ParameterFilter {
            $TaskName -eq 'm365ops-1' -and $TaskPath -eq '\m365ops\' -and $Action.Argument -eq '-EncodedCommand x' -and
            $Settings.Hidden -and $Settings.Limit -eq [TimeSpan]::FromSeconds(180)
        }
    }

    It 'registers a user task with the interactive token, never elevated' {
        Register-M365Task -TaskName 'm365ops-2' -Execute 'powershell.exe' -Argument 'a' -UserId 'S-1-5-21-1-2-3-1104' -LogonType Interactive -TimeoutSeconds 30
        Should -Invoke -ModuleName _ScheduledTaskRunner New-ScheduledTaskPrincipal -Times 1 -Exactly -ParameterFilter { $UserId -eq 'S-1-5-21-1-2-3-1104' -and $LogonType -eq 'Interactive' -and $RunLevel -eq 'Limited' }
    }

    It 'Get-M365TaskState combines the state and the last result' {
        Mock -ModuleName _ScheduledTaskRunner Get-ScheduledTask { [pscustomobject]@{ State = 'Ready' } }
        Mock -ModuleName _ScheduledTaskRunner Get-ScheduledTaskInfo { [pscustomobject]@{ LastTaskResult = 267011 } }
        $s = Get-M365TaskState -TaskName 'm365ops-3'
        $s.State | Should -Be 'Ready'
        $s.LastTaskResult | Should -Be 0x41303
        Should -Invoke -ModuleName _ScheduledTaskRunner Get-ScheduledTaskInfo -ParameterFilter { $TaskPath -eq '\m365ops\' -and $TaskName -eq 'm365ops-3' }
    }

    It 'starts, stops and unregisters by name under \m365ops\ without prompting' {
        Mock -ModuleName _ScheduledTaskRunner Start-ScheduledTask { }
        Mock -ModuleName _ScheduledTaskRunner Stop-ScheduledTask { }
        Mock -ModuleName _ScheduledTaskRunner Unregister-ScheduledTask { }
        Start-M365Task -TaskName 't'
        Stop-M365Task -TaskName 't'
        Unregister-M365Task -TaskName 't'
        Should -Invoke -ModuleName _ScheduledTaskRunner Start-ScheduledTask -Times 1 -Exactly -ParameterFilter { $TaskPath -eq '\m365ops\' -and $TaskName -eq 't' }
        Should -Invoke -ModuleName _ScheduledTaskRunner Stop-ScheduledTask -Times 1 -Exactly -ParameterFilter { $TaskPath -eq '\m365ops\' }
        Should -Invoke -ModuleName _ScheduledTaskRunner Unregister-ScheduledTask -Times 1 -Exactly -ParameterFilter { $TaskPath -eq '\m365ops\' -and $Confirm -eq $false }
    }

    It 'Remove-M365RunFolder removes a folder with its files and ignores one already gone' {
        $dir = Join-Path $TestDrive 'm365ops-rm'
        $null = New-Item -ItemType Directory -Path $dir
        Set-Content -LiteralPath (Join-Path $dir 'output.json') -Value '{}'
        Remove-M365RunFolder -Path $dir
        Test-Path -LiteralPath $dir | Should -BeFalse
        { Remove-M365RunFolder -Path $dir } | Should -Not -Throw
    }

    It 'Remove-M365RunFolder retries while a stopped task still holds the output file' {
        $dir = Join-Path $TestDrive 'm365ops-busy'
        $null = New-Item -ItemType Directory -Path $dir
        $script:Tries = 0
        Mock -ModuleName _ScheduledTaskRunner Remove-Item {
            $script:Tries++
            if ($script:Tries -lt 3) { throw [System.IO.IOException]::new('The process cannot access the file') }
            [System.IO.Directory]::Delete($LiteralPath, $true)
        }
        Remove-M365RunFolder -Path $dir
        $script:Tries | Should -Be 3
        Test-Path -LiteralPath $dir | Should -BeFalse
    }

    It 'Remove-M365RunFolder gives up after the last attempt with the error' {
        $dir = Join-Path $TestDrive 'm365ops-stuck'
        $null = New-Item -ItemType Directory -Path $dir
        Mock -ModuleName _ScheduledTaskRunner Remove-Item { throw [System.IO.IOException]::new('locked') }
        { Remove-M365RunFolder -Path $dir -Attempts 2 } | Should -Throw -ExpectedMessage 'locked'
        Should -Invoke -ModuleName _ScheduledTaskRunner Remove-Item -Times 2 -Exactly
    }

    It 'puts run folders under %SystemRoot%\Temp and uses Windows PowerShell' {
        # Join-Path needs an existing drive, so a TestDrive folder plays %SystemRoot% here.
        $saved = $env:SystemRoot
        try {
            $env:SystemRoot = Join-Path $TestDrive 'Windows'
            Get-M365RunRoot | Should -Be (Join-Path $env:SystemRoot 'Temp')
            Get-M365PowerShellPath | Should -Be (Join-Path $env:SystemRoot 'System32\WindowsPowerShell\v1.0\powershell.exe')
        }
        finally { $env:SystemRoot = $saved }
    }
}

Describe 'Leftovers of interrupted runs' {
    BeforeEach {
        $script:Root = Join-Path $TestDrive ([guid]::NewGuid().ToString('N'))
        $null = New-Item -ItemType Directory -Path $script:Root
        Set-TaskMocks -Root $script:Root
        $script:Now = [datetime]::new(2026, 11, 26, 18, 0, 0, [DateTimeKind]::Utc)
        $script:Tasks = [System.Collections.Generic.List[string]]::new()
        Mock -ModuleName _ScheduledTaskRunner Get-M365RunnerTaskName { $script:Tasks.ToArray() }
        Mock -ModuleName _ScheduledTaskRunner Unregister-M365Task { $null = $script:Tasks.Remove($TaskName) }
        # Process 4242 started at 17:00 and still runs; every other id is gone.
        Mock -ModuleName _ScheduledTaskRunner Get-M365ProcessStartTime {
            if ($Id -eq 4242) { [datetime]::new(2026, 11, 26, 17, 0, 0, [DateTimeKind]::Utc) } else { $null }
        }
    }

    It 'names each run by its UTC start time and owning process' {
        $id = New-M365RunId -Now $script:Now -ProcessId 4242
        $id | Should -Match '^20261126T180000Z-4242-[0-9a-f]{8}$'
        Test-M365RunStale -Name "m365ops-$id" -Now $script:Now.AddMinutes(1) | Should -BeFalse -Because 'its owner still runs and it is young'
    }

    It 'judges <Case>' -ForEach @(
        @{ Case = 'a run whose owner process is gone'; Name = 'm365ops-20261126T175900Z-999-0a1b2c3d'; Stale = $true }
        @{ Case = 'a run older than the longest run, owner alive'; Name = 'm365ops-20261126T165000Z-4242-0a1b2c3d'; Stale = $true }
        @{ Case = 'a young run whose id a newer process reuses'; Name = 'm365ops-20261126T165900Z-4242-0a1b2c3d'; Stale = $true }
        @{ Case = 'a young run of a live owner'; Name = 'm365ops-20261126T175900Z-4242-0a1b2c3d'; Stale = $false }
        @{ Case = 'a name that is not the runner''s'; Name = 'm365ops-notes'; Stale = $false }
        @{ Case = 'something else entirely'; Name = 'GoogleUpdateTaskMachineCore'; Stale = $false }
    ) {
        Test-M365RunStale -Name $Name -Now $script:Now | Should -Be $Stale
    }

    It 'removes stale tasks and folders, keeps live ones, and reports each' {
        $dead = 'm365ops-20261126T175900Z-999-0a1b2c3d'
        $live = 'm365ops-20261126T175900Z-4242-0a1b2c3d'
        foreach ($n in $dead, $live) { $script:Tasks.Add($n); $null = New-Item -ItemType Directory -Path (Join-Path $script:Root $n) }
        $null = New-Item -ItemType File -Path (Join-Path $script:Root $dead 'output.json')
        $null = New-Item -ItemType Directory -Path (Join-Path $script:Root 'unrelated')

        $r = Clear-M365StaleTaskRun -Now $script:Now
        $r.removed | Should -Be @("task \m365ops\$dead", "folder $(Join-Path $script:Root $dead)")
        $r.failed | Should -HaveCount 0
        $script:Tasks | Should -Be @($live)
        Test-Path -LiteralPath (Join-Path $script:Root $dead) | Should -BeFalse
        Test-Path -LiteralPath (Join-Path $script:Root $live) | Should -BeTrue
        Test-Path -LiteralPath (Join-Path $script:Root 'unrelated') | Should -BeTrue
        Should -Invoke -ModuleName _ScheduledTaskRunner Stop-M365Task -Times 1 -Exactly -ParameterFilter { $TaskName -eq $dead }
    }

    It 'in check mode lists what it would remove and removes nothing' {
        $dead = 'm365ops-20261126T175900Z-999-0a1b2c3d'
        $script:Tasks.Add($dead)
        $null = New-Item -ItemType Directory -Path (Join-Path $script:Root $dead)
        $r = Clear-M365StaleTaskRun -Now $script:Now -CheckMode
        $r.removed | Should -HaveCount 2
        $script:Tasks | Should -Be @($dead)
        Test-Path -LiteralPath (Join-Path $script:Root $dead) | Should -BeTrue
        Should -Invoke -ModuleName _ScheduledTaskRunner Unregister-M365Task -Times 0 -Exactly
    }

    It 'reports what it could not remove instead of failing' {
        $dead = 'm365ops-20261126T175900Z-999-0a1b2c3d'
        $script:Tasks.Add($dead)
        Mock -ModuleName _ScheduledTaskRunner Unregister-M365Task { throw 'Access is denied' }
        $r = Clear-M365StaleTaskRun -Now $script:Now
        $r.removed | Should -HaveCount 0
        $r.failed | Should -HaveCount 1
        $r.failed[0].item | Should -Be "task \m365ops\$dead"
        $r.failed[0].message | Should -Match 'Access is denied'
    }

    It 'deletes a leftover folder without following a link planted inside it' {
        $dead = 'm365ops-20261126T175900Z-999-0a1b2c3d'
        $canary = Join-Path $TestDrive ([guid]::NewGuid().ToString('N'))
        $null = New-Item -ItemType Directory -Path $canary
        [System.IO.File]::WriteAllText((Join-Path $canary 'keep.txt'), 'canary')
        $null = New-Item -ItemType Directory -Path (Join-Path $script:Root $dead)
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $script:Root $dead 'x') -Target $canary
        $r = Clear-M365StaleTaskRun -Now $script:Now
        $r.removed | Should -Be @("folder $(Join-Path $script:Root $dead)")
        [System.IO.File]::ReadAllText((Join-Path $canary 'keep.txt')) | Should -Be 'canary'
    }

    It 'times legacy folders (no time in the name) by their creation time' {
        $old = Join-Path $script:Root ('m365ops-' + ('a' * 32))
        $null = New-Item -ItemType Directory -Path $old
        Test-M365RunStale -Name (Split-Path $old -Leaf) -Now ([datetime]::UtcNow) -LegacyTime ([datetime]::UtcNow.AddMinutes(-5)) | Should -BeFalse
        Test-M365RunStale -Name (Split-Path $old -Leaf) -Now ([datetime]::UtcNow) -LegacyTime ([datetime]::UtcNow.AddHours(-2)) | Should -BeTrue
        Test-M365RunStale -Name (Split-Path $old -Leaf) -LegacyState 'Ready' | Should -BeTrue
        Test-M365RunStale -Name (Split-Path $old -Leaf) -LegacyState 'Running' | Should -BeFalse
    }

    It 'names the task and folder of a real run with this process as owner' {
        $r = Invoke-M365TaskScript -RunAs System -ScriptBlock { 1 }
        $r.Status | Should -Be 'ok'
        $script:Registered.TaskName | Should -Match "^m365ops-[0-9]{8}T[0-9]{6}Z-$PID-[0-9a-f]{8}$"
    }
}
