# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within this collection and may not remain
# stable to outside uses. Changes may be made in ANY release, even a bugfix release.

#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._UserProfile

# Run a script block as SYSTEM or inside a logged-on user's session through a temporary
# scheduled task (docs/diagnose.md, "The task runner").
#
# Why a task: WinRM gives us a network logon, which cannot reach the user's credential
# vault, WAM accounts or PRT, and cannot do what `dsregcmd /join` needs SYSTEM for.
#
# Security design:
# - The script travels inline, on the task's command line: the bootstrap that unpacks it
#   base64-encoded inside -Command, the script and its parameters gzip + base64 as the
#   bootstrap's argument. Nothing the task executes is ever read from disk, so there is no
#   file a user could swap.
# - Output comes back through a per-run folder under %SystemRoot%\Temp (users can create
#   but not list there) with a random name and a protected DACL: SYSTEM and
#   Administrators full control, inheritance off. For a SYSTEM run that is all. For a
#   user run the user additionally gets traverse on the folder and write on the one
#   output file we pre-create: no create, delete, rename or re-ACL, so the user cannot
#   plant anything else there, and what a user task writes is only ever data about
#   that same user.
# - The task is unregistered and the folder removed in `finally`: success, failure,
#   timeout or an exception of our own. What a `finally` cannot cover (the WinRM
#   connection dropped and the host process was killed, the host crashed) is swept by the
#   next module that uses the runner: each run's name carries its start time and the id
#   of the process that owns it, so a leftover is known by its age or its dead owner.
#   Cleanup failures are kept for the module to report as warnings (Write-Warning never
#   reaches the operator through Ansible).

Set-StrictMode -Version 2.0

$script:TaskPath = '\m365ops\'
$script:PollMilliseconds = 500
# CreateProcess' command line limit is 32767 characters; keep room for the executable.
$script:MaxArgumentLength = 32000
$script:SidPattern = '^S-1-[0-9]+(-[0-9]+){1,14}$'
# Task Scheduler result codes that mean "has not finished yet".
$script:PendingResults = @(
    0x00041301  # SCHED_S_TASK_RUNNING
    0x00041303  # SCHED_S_TASK_HAS_NOT_RUN
    0x00041325  # SCHED_S_TASK_QUEUED
)
$script:AccessDeniedHResult = -2147024891  # 0x80070005 E_ACCESSDENIED
$script:MaxTimeoutSeconds = 3600
# A run is stale once it is older than the longest run can be: the maximum timeout, the
# task's own execution limit (timeout + 60 s) and a margin for a slow cleanup.
$script:StaleAfterSeconds = $script:MaxTimeoutSeconds + 60 + 60
$script:RunNamePattern = '^m365ops-(?<time>[0-9]{8}T[0-9]{6}Z)-(?<pid>[0-9]{1,10})-[0-9a-f]{8}$'
# Names of runs from before the name carried time and owner.
$script:LegacyRunNamePattern = '^m365ops-[0-9a-f]{32}$'
$script:RunnerWarnings = [System.Collections.Generic.List[string]]::new()

# The bootstrap the task runs. $Packed is the gzip+base64 JSON {script, parameters};
# OUTFILE the pre-created output file. It must run under Windows PowerShell 5.1, and it
# opens the output with FileMode.Open because a user task may write it but not create it.
$script:Bootstrap = @'
param([string]$Packed)
$ErrorActionPreference = 'Stop'
$code = 0
try {
    $raw = [Convert]::FromBase64String($Packed)
    $ms = New-Object -TypeName IO.MemoryStream -ArgumentList @(, $raw)
    $gz = New-Object -TypeName IO.Compression.GZipStream -ArgumentList $ms, ([IO.Compression.CompressionMode]::Decompress)
    $sr = New-Object -TypeName IO.StreamReader -ArgumentList $gz, ([Text.Encoding]::UTF8)
    $payload = $sr.ReadToEnd() | ConvertFrom-Json
    $sr.Dispose()
    $splat = @{}
    if ($payload.parameters) {
        foreach ($p in $payload.parameters.PSObject.Properties) { $splat[$p.Name] = $p.Value }
    }
    $sb = [ScriptBlock]::Create($payload.script)
    $out = & $sb @splat
    $envelope = @{ ok = $true; output = $out }
}
catch {
    $code = 1
    $envelope = @{ ok = $false; error = ('{0}: {1}' -f $_.Exception.GetType().FullName, $_.Exception.Message) }
}
$json = ConvertTo-Json -InputObject $envelope -Depth 12 -Compress
$bytes = [Text.Encoding]::UTF8.GetBytes($json)
try {
    $fs = [IO.File]::Open('OUTFILE', [IO.FileMode]::Open, [IO.FileAccess]::Write, [IO.FileShare]::None)
    try { $fs.SetLength(0); $fs.Write($bytes, 0, $bytes.Length) } finally { $fs.Dispose() }
}
catch { $code = 2 }
exit $code
'@

Function Get-M365RunRoot {
    <# .SYNOPSIS Parent of the per-run folders; a function so tests point it at TestDrive. #>
    [CmdletBinding()]
    param()
    Join-Path -Path $env:SystemRoot -ChildPath 'Temp'
}

Function Get-M365PowerShellPath {
    [CmdletBinding()]
    param()
    Join-Path -Path $env:SystemRoot -ChildPath 'System32\WindowsPowerShell\v1.0\powershell.exe'
}

Function Get-M365RunFolderSddl {
    <#
    .SYNOPSIS
    The protected DACLs of a run folder and its output file, as SDDL.
    .DESCRIPTION
    Kept as data so the ACL design is testable on any platform. Rights used:
    FA full access; 0x100020 traverse + synchronize; 0x120116 FILE_GENERIC_WRITE
    (write data/append/attributes/EA + read control + synchronize), which is what
    opening a file for writing requests; never DELETE, WRITE_DAC or WRITE_OWNER.
    #>
    [CmdletBinding()]
    param([string]$UserSid)
    $folder = 'D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)'
    $file = 'D:P(A;;FA;;;SY)(A;;FA;;;BA)'
    if ($UserSid) {
        $folder += "(A;;0x100020;;;$UserSid)"
        $file += "(A;;0x120116;;;$UserSid)"
    }
    [pscustomobject]@{ Folder = $folder; File = $file }
}

Function Set-M365PathSddl {
    <#
    .SYNOPSIS
    Replace the DACL of a file or folder.
    .DESCRIPTION
    Off Windows (pwsh on Linux, where the tests run) there are no ACLs to set; the nearest
    equivalent of "only SYSTEM and Administrators" is owner-only POSIX permissions, so no
    other account can plant or read what a run leaves in its folder.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$Path, [Parameter(Mandatory)][string]$Sddl)
    $item = Get-Item -LiteralPath $Path -Force -ErrorAction Stop
    if ((Get-Variable -Name IsWindows -ValueOnly -ErrorAction SilentlyContinue) -eq $false) {
        $mode = if ($item.PSIsContainer) { 'UserRead, UserWrite, UserExecute' } else { 'UserRead, UserWrite' }
        [System.IO.File]::SetUnixFileMode($item.FullName, [System.IO.UnixFileMode]$mode)
        return
    }
    if ($item.PSIsContainer) {
        $acl = New-Object -TypeName System.Security.AccessControl.DirectorySecurity
    }
    else {
        $acl = New-Object -TypeName System.Security.AccessControl.FileSecurity
    }
    $acl.SetSecurityDescriptorSddlForm($Sddl, [System.Security.AccessControl.AccessControlSections]::Access)
    # Set-Acl would also try to write the SACL, which needs SeSecurityPrivilege.
    if ($PSVersionTable.PSVersion.Major -lt 6) {
        $item.SetAccessControl($acl)
    }
    elseif ($item.PSIsContainer) {
        [System.IO.FileSystemAclExtensions]::SetAccessControl([System.IO.DirectoryInfo]$item, $acl)
    }
    else {
        [System.IO.FileSystemAclExtensions]::SetAccessControl([System.IO.FileInfo]$item, $acl)
    }
}

Function New-M365RunFolder {
    <#
    .SYNOPSIS
    Create the per-run folder and its pre-created output file with their DACLs.
    Returns [pscustomobject]@{ Path; OutputFile }.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$RunId, [string]$UserSid)
    $path = Join-Path -Path (Get-M365RunRoot) -ChildPath "m365ops-$RunId"
    # New-Item without -Force fails when the name exists: a folder someone planted is
    # never reused (its owner could rewrite the DACL we set).
    $null = New-Item -Path $path -ItemType Directory -ErrorAction Stop
    try {
        $outFile = Join-Path -Path $path -ChildPath 'output.json'
        $null = New-Item -Path $outFile -ItemType File -ErrorAction Stop
        $sddl = Get-M365RunFolderSddl -UserSid $UserSid
        Set-M365PathSddl -Path $outFile -Sddl $sddl.File
        Set-M365PathSddl -Path $path -Sddl $sddl.Folder
    }
    catch {
        # Half-built (e.g. the DACL was refused): the caller never sees it, so remove it here.
        Remove-Item -LiteralPath $path -Recurse -Force -ErrorAction SilentlyContinue
        throw
    }
    [pscustomobject]@{ Path = $path; OutputFile = $outFile }
}

Function Remove-M365RunFolder {
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$Path, [int]$Attempts = 5)
    # A task stopped on timeout can hold output.json open for a moment after Stop.
    for ($i = 1; $i -le $Attempts; $i++) {
        if (-not (Test-Path -LiteralPath $Path)) { return }
        try {
            Remove-Item -LiteralPath $Path -Recurse -Force -ErrorAction Stop
            return
        }
        catch {
            if ($i -eq $Attempts) { throw }
            Start-Sleep -Milliseconds $script:PollMilliseconds
        }
    }
}

Function Register-M365Task {
    <# .SYNOPSIS Register the hidden on-demand task (Windows only). #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][string]$TaskName,
        [Parameter(Mandatory)][string]$Execute,
        [Parameter(Mandatory)][string]$Argument,
        [Parameter(Mandatory)][string]$UserId,
        [Parameter(Mandatory)][ValidateSet('ServiceAccount', 'Interactive')][string]$LogonType,
        [Parameter(Mandatory)][int]$TimeoutSeconds
    )
    $action = New-ScheduledTaskAction -Execute $Execute -Argument $Argument
    if ($LogonType -eq 'ServiceAccount') {
        $principal = New-ScheduledTaskPrincipal -UserId $UserId -LogonType ServiceAccount -RunLevel Highest
    }
    else {
        # Limited: the user's own token, never elevated; the user's data is all we need.
        $principal = New-ScheduledTaskPrincipal -UserId $UserId -LogonType Interactive -RunLevel Limited
    }
    # The execution limit is a backstop in case our own cleanup never runs.
    $settings = New-ScheduledTaskSettingsSet -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries -Hidden `
        -MultipleInstances IgnoreNew -ExecutionTimeLimit ([TimeSpan]::FromSeconds($TimeoutSeconds + 60))
    $null = Register-ScheduledTask -TaskName $TaskName -TaskPath $script:TaskPath -Action $action `
        -Principal $principal -Settings $settings -ErrorAction Stop
}

Function Start-M365Task {
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$TaskName)
    Start-ScheduledTask -TaskName $TaskName -TaskPath $script:TaskPath -ErrorAction Stop
}

Function Get-M365TaskState {
    <# .SYNOPSIS [pscustomobject]@{ State = 'Ready'|'Running'|'Queued'|'Disabled'|'Unknown'; LastTaskResult = <int> } #>
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$TaskName)
    $task = Get-ScheduledTask -TaskName $TaskName -TaskPath $script:TaskPath -ErrorAction Stop
    $info = Get-ScheduledTaskInfo -TaskName $TaskName -TaskPath $script:TaskPath -ErrorAction Stop
    [pscustomobject]@{ State = [string]$task.State; LastTaskResult = [int]$info.LastTaskResult }
}

Function Stop-M365Task {
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$TaskName)
    Stop-ScheduledTask -TaskName $TaskName -TaskPath $script:TaskPath -ErrorAction SilentlyContinue
}

Function Unregister-M365Task {
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$TaskName)
    Unregister-ScheduledTask -TaskName $TaskName -TaskPath $script:TaskPath -Confirm:$false -ErrorAction Stop
}

Function Test-M365AccessDenied {
    <#
    .SYNOPSIS
    Whether an error is "access denied", judged by type and HRESULT (messages are
    localised). The ScheduledTasks cmdlets raise CimException; file ACL code raises
    UnauthorizedAccessException.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param([Parameter(Mandatory)][object]$ErrorRecord)
    $ex = if ($ErrorRecord -is [System.Management.Automation.ErrorRecord]) { $ErrorRecord.Exception } else { $ErrorRecord }
    if ($ErrorRecord -is [System.Management.Automation.ErrorRecord]) {
        if ([string]$ErrorRecord.CategoryInfo.Category -eq 'PermissionDenied') { return $true }
        if ([string]$ErrorRecord.FullyQualifiedErrorId -match 'HRESULT 0x80070005') { return $true }
    }
    while ($ex) {
        if ($ex -is [System.UnauthorizedAccessException]) { return $true }
        if ($ex.HResult -eq $script:AccessDeniedHResult) { return $true }
        if ($ex.PSObject.Properties['NativeErrorCode'] -and [string]$ex.NativeErrorCode -eq 'AccessDenied') { return $true }
        $ex = $ex.InnerException
    }
    $false
}

Function ConvertTo-M365TaskCommand {
    <#
    .SYNOPSIS
    Build the powershell.exe arguments that run ScriptBlock with Parameters and write the
    result envelope to OutputFile. Throws [System.ArgumentException] when the command
    would not fit on a command line.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [Parameter(Mandatory)][scriptblock]$ScriptBlock,
        [hashtable]$Parameters = @{},
        [Parameter(Mandatory)][string]$OutputFile
    )
    $code = ConvertTo-M365CompactScript -Text $ScriptBlock.ToString()
    $payloadJson = ConvertTo-Json -InputObject @{ script = $code; parameters = $Parameters } -Depth 10 -Compress
    $plain = [System.Text.Encoding]::UTF8.GetBytes($payloadJson)
    $ms = New-Object -TypeName System.IO.MemoryStream
    $gz = New-Object -TypeName System.IO.Compression.GZipStream -ArgumentList $ms, ([System.IO.Compression.CompressionMode]::Compress)
    $gz.Write($plain, 0, $plain.Length)
    $gz.Dispose()
    $payload = [Convert]::ToBase64String($ms.ToArray())

    # The output path is ours (GUID under the run root), but quote it as a PowerShell
    # literal anyway so no path can break out of the string.
    $bootstrap = $script:Bootstrap.Replace('OUTFILE', $OutputFile.Replace("'", "''"))
    $unpack = [Convert]::ToBase64String([System.Text.Encoding]::UTF8.GetBytes($bootstrap))
    # Not -EncodedCommand: it wants UTF-16 and base64 again, which makes the payload 2.7
    # times longer. This line has no double quote, backslash, percent sign or repeated
    # blank, so Task Scheduler's %variable% expansion and the command-line splitting that
    # powershell.exe rejoins with single blanks leave it as it is.
    $argument = "-NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -WindowStyle Hidden -Command " +
        "&([ScriptBlock]::Create([Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('$unpack')))) '$payload'"
    if ($argument.Length -gt $script:MaxArgumentLength) {
        throw [System.ArgumentException]::new("ScriptBlock is too large to pass inline to a scheduled task ($($argument.Length) characters on the command line, limit $($script:MaxArgumentLength)).")
    }
    $argument
}

Function New-M365RunId {
    <#
    .SYNOPSIS
    <UTC time>-<process id>-<8 hex>: enough for a later run to tell, without any state
    file, whether this run's task and folder are leftovers (too old, or their owner gone).
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param([datetime]$Now = [datetime]::UtcNow, [int]$ProcessId = $PID)
    $bytes = [byte[]]::new(4)
    [System.Security.Cryptography.RandomNumberGenerator]::Create().GetBytes($bytes)
    '{0}-{1}-{2}' -f $Now.ToUniversalTime().ToString('yyyyMMdd\THHmmss\Z', [System.Globalization.CultureInfo]::InvariantCulture),
        $ProcessId, (($bytes | ForEach-Object { $_.ToString('x2') }) -join '')
}

Function Get-M365ProcessStartTime {
    <# .SYNOPSIS UTC start time of a running process, $null when no process has that id. #>
    [CmdletBinding()]
    param([Parameter(Mandatory)][int]$Id)
    $p = Get-Process -Id $Id -ErrorAction SilentlyContinue
    if ($null -eq $p) { return $null }
    try { $p.StartTime.ToUniversalTime() } catch { [datetime]::MinValue }
}

Function Get-M365RunnerTaskName {
    <# .SYNOPSIS Names of the tasks registered under \m365ops\ (Windows only). #>
    [CmdletBinding()]
    param()
    @(Get-ScheduledTask -TaskPath $script:TaskPath -ErrorAction SilentlyContinue | ForEach-Object { [string]$_.TaskName })
}

Function Test-M365RunStale {
    <#
    .SYNOPSIS
    Whether a task or run folder named Name is a leftover: older than the longest run, or
    its owning process is gone (or is a newer process that reused the id). Names that are
    not the runner's are never stale. Legacy names (no time, no owner) are judged by
    LegacyTime (a folder's creation time) or, for tasks, by not running.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param(
        [Parameter(Mandatory)][string]$Name,
        [datetime]$Now = [datetime]::UtcNow,
        [Nullable[datetime]]$LegacyTime,
        [string]$LegacyState
    )
    if ($Name -match $script:RunNamePattern) {
        $started = [datetime]::ParseExact($Matches['time'], 'yyyyMMdd\THHmmss\Z', [System.Globalization.CultureInfo]::InvariantCulture,
            [System.Globalization.DateTimeStyles]'AssumeUniversal, AdjustToUniversal')
        if (($Now.ToUniversalTime() - $started).TotalSeconds -gt $script:StaleAfterSeconds) { return $true }
        $ownerStart = Get-M365ProcessStartTime -Id ([int]$Matches['pid'])
        if ($null -eq $ownerStart) { return $true }
        # The name's time is truncated to the second; its owner started before it.
        return ($ownerStart -gt $started.AddSeconds(1))
    }
    if ($Name -match $script:LegacyRunNamePattern) {
        if ($null -ne $LegacyTime) { return (($Now.ToUniversalTime() - ([datetime]$LegacyTime).ToUniversalTime()).TotalSeconds -gt $script:StaleAfterSeconds) }
        if ($LegacyState) { return ($LegacyState -ne 'Running' -and $LegacyState -ne 'Queued') }
    }
    $false
}

Function Clear-M365StaleTaskRun {
    <#
    .SYNOPSIS
    Removes the runner's leftovers: \m365ops\m365ops-* tasks and %SystemRoot%\Temp\m365ops-*
    folders whose run is stale (Test-M365RunStale). Returns @{ removed = [...];
    failed = [@{ item; message }] }; in check mode lists what it would remove.
    .DESCRIPTION
    Every module that uses the runner calls this first, so a connection dropped or a host
    crash mid-run leaves nothing behind for longer than the next run. Folders are deleted
    without following links: Temp is writable by users.
    #>
    [CmdletBinding()]
    param([switch]$CheckMode, [datetime]$Now = [datetime]::UtcNow)
    $removed = [System.Collections.Generic.List[string]]::new()
    $failed = [System.Collections.Generic.List[object]]::new()
    $taskNames = @()
    try { $taskNames = @(Get-M365RunnerTaskName) }
    catch { $failed.Add([ordered]@{ item = "task folder $($script:TaskPath)"; message = "could not list: $($_.Exception.Message)" }) }
    foreach ($name in $taskNames) {
        $state = $null
        if ($name -match $script:LegacyRunNamePattern) {
            try { $state = (Get-M365TaskState -TaskName $name).State } catch { $state = 'Unknown' }
        }
        if (-not (Test-M365RunStale -Name $name -Now $Now -LegacyState $state)) { continue }
        $item = "task $($script:TaskPath)$name"
        if ($CheckMode) { $removed.Add($item); continue }
        try {
            Stop-M365Task -TaskName $name
            Unregister-M365Task -TaskName $name
            $removed.Add($item)
        }
        catch { $failed.Add([ordered]@{ item = $item; message = $_.Exception.Message }) }
    }
    $runRoot = $null
    $entries = @()
    try {
        $runRoot = Get-M365RunRoot
        $entries = @(Get-M365DirectoryEntry -Path $runRoot | Where-Object { $_.Name -like 'm365ops-*' })
    }
    catch { $failed.Add([ordered]@{ item = "run folders in $runRoot"; message = "could not list: $($_.Exception.Message)" }) }
    foreach ($entry in $entries) {
        if (-not (Test-M365RunStale -Name $entry.Name -Now $Now -LegacyTime $entry.CreationTimeUtc)) { continue }
        $item = "folder $($entry.FullName)"
        if ($CheckMode) { $removed.Add($item); continue }
        try {
            if (($entry.Attributes -band [System.IO.FileAttributes]::ReparsePoint) -or -not ($entry.Attributes -band [System.IO.FileAttributes]::Directory)) {
                $entry.Delete()
            }
            else {
                Remove-M365TreeNoFollow -Path $entry.FullName
            }
            $removed.Add($item)
        }
        catch { $failed.Add([ordered]@{ item = $item; message = $_.Exception.Message }) }
    }
    [ordered]@{ removed = @($removed); failed = @($failed) }
}

Function Get-M365TaskRunnerWarning {
    <#
    .SYNOPSIS
    The cleanup failures of the runs so far (task not unregistered, folder not removed),
    cleared as they are read: the module turns them into Ansible warnings.
    #>
    [CmdletBinding()]
    [OutputType([string[]])]
    param()
    $out = $script:RunnerWarnings.ToArray()
    $script:RunnerWarnings.Clear()
    foreach ($w in $out) { $w }
}

Function New-M365TaskResult {
    param([string]$Status, $Output = $null, [string]$Message = '', $ExitCode = $null)
    [pscustomobject]@{ Status = $Status; Output = $Output; Message = $Message; ExitCode = $ExitCode }
}

Function Read-M365TaskOutput {
    <# .SYNOPSIS Parse the envelope the bootstrap wrote; $null when the file is empty. #>
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$Path)
    if (-not (Test-Path -LiteralPath $Path)) { return $null }
    $text = [System.IO.File]::ReadAllText($Path, [System.Text.Encoding]::UTF8)
    if ([string]::IsNullOrWhiteSpace($text)) { return $null }
    ConvertFrom-Json -InputObject $text
}

Function Invoke-M365TaskScript {
    <#
    .SYNOPSIS
    Run a script block in a temporary scheduled task as SYSTEM or as a logged-on user.
    .OUTPUTS
    [pscustomobject]@{ Status = 'ok'|'not_logged_on'|'timeout'|'failed'|'access_denied';
                       Output; Message; ExitCode }
    Output is what the script block returned, round-tripped through JSON (so objects
    come back as PSCustomObject; return strings for dates). Parameters travel as JSON too.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][scriptblock]$ScriptBlock,
        [hashtable]$Parameters = @{},
        [Parameter(Mandatory)][ValidateSet('System', 'User')][string]$RunAs,
        [string]$UserSid,
        [int]$TimeoutSeconds = 120
    )
    if ($TimeoutSeconds -lt 1 -or $TimeoutSeconds -gt 3600) {
        throw [System.ArgumentException]::new("TimeoutSeconds must be between 1 and 3600, got $TimeoutSeconds.")
    }
    if ($RunAs -eq 'User') {
        if (-not $UserSid) {
            throw [System.ArgumentException]::new('UserSid is required with -RunAs User.')
        }
        if ($UserSid -notmatch $script:SidPattern) {
            throw [System.ArgumentException]::new("UserSid '$UserSid' is not a well-formed SID.")
        }
        # An interactive-token task for a user without a session never starts; Task
        # Scheduler would leave us polling until the timeout.
        if (@(Get-M365InteractiveSid) -notcontains $UserSid) {
            return New-M365TaskResult -Status 'not_logged_on' -Message "User $UserSid has no interactive session on this host; the user-context task was not run."
        }
        $userId = $UserSid
        $logonType = 'Interactive'
        $folderUser = $UserSid
    }
    else {
        $userId = 'S-1-5-18'
        $logonType = 'ServiceAccount'
        $folderUser = $null
    }

    $runId = New-M365RunId
    $taskName = "m365ops-$runId"
    $folder = $null
    $registered = $false
    try {
        try {
            $folder = New-M365RunFolder -RunId $runId -UserSid $folderUser
            $argument = ConvertTo-M365TaskCommand -ScriptBlock $ScriptBlock -Parameters $Parameters -OutputFile $folder.OutputFile
            Register-M365Task -TaskName $taskName -Execute (Get-M365PowerShellPath) -Argument $argument `
                -UserId $userId -LogonType $logonType -TimeoutSeconds $TimeoutSeconds
            $registered = $true
            Start-M365Task -TaskName $taskName
        }
        catch [System.ArgumentException] {
            throw
        }
        catch {
            if (Test-M365AccessDenied -ErrorRecord $_) {
                return New-M365TaskResult -Status 'access_denied' -Message "Access denied setting up the $RunAs task: $($_.Exception.Message)"
            }
            return New-M365TaskResult -Status 'failed' -Message "Could not start the $RunAs task: $($_.Exception.Message)"
        }

        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $state = $null
        while ($true) {
            try {
                $state = Get-M365TaskState -TaskName $taskName
            }
            catch {
                # Callers get a status, never an exception, once the task exists.
                Stop-M365Task -TaskName $taskName
                $status = if (Test-M365AccessDenied -ErrorRecord $_) { 'access_denied' } else { 'failed' }
                return New-M365TaskResult -Status $status -Message "Could not read the state of the $RunAs task: $($_.Exception.Message)"
            }
            if ($state.State -ne 'Running' -and $state.State -ne 'Queued' -and $script:PendingResults -notcontains $state.LastTaskResult) {
                break
            }
            if ($watch.Elapsed.TotalSeconds -ge $TimeoutSeconds) {
                Stop-M365Task -TaskName $taskName
                return New-M365TaskResult -Status 'timeout' -Message "The $RunAs task did not finish within $TimeoutSeconds seconds and was stopped."
            }
            Start-Sleep -Milliseconds $script:PollMilliseconds
        }

        $exitCode = [int]$state.LastTaskResult
        if ($exitCode -eq $script:AccessDeniedHResult) {
            return New-M365TaskResult -Status 'access_denied' -ExitCode $exitCode -Message 'Task Scheduler could not start the task: access denied (0x80070005).'
        }
        $envelope = $null
        try {
            $envelope = Read-M365TaskOutput -Path $folder.OutputFile
        }
        catch {
            return New-M365TaskResult -Status 'failed' -ExitCode $exitCode -Message "The $RunAs task wrote unreadable output: $($_.Exception.Message)"
        }
        if ($null -eq $envelope) {
            return New-M365TaskResult -Status 'failed' -ExitCode $exitCode -Message ("The $RunAs task ended (result 0x{0:X8}) without writing output." -f $exitCode)
        }
        if (-not $envelope.ok) {
            return New-M365TaskResult -Status 'failed' -ExitCode $exitCode -Message "The script failed in the $RunAs task: $($envelope.error)"
        }
        $output = if ($envelope.PSObject.Properties['output']) { $envelope.output } else { $null }
        New-M365TaskResult -Status 'ok' -Output $output -ExitCode $exitCode
    }
    finally {
        # Each step on its own: a failed unregister must not leave the folder behind.
        if ($registered) {
            try { Unregister-M365Task -TaskName $taskName } catch { $script:RunnerWarnings.Add("Could not unregister task $($script:TaskPath)$($taskName) (the next run removes it): $($_.Exception.Message)") }
        }
        if ($folder) {
            try { Remove-M365RunFolder -Path $folder.Path } catch { $script:RunnerWarnings.Add("Could not remove run folder $($folder.Path) (the next run removes it): $($_.Exception.Message)") }
        }
    }
}

Function Invoke-M365StaleSweep {
    <#
    .SYNOPSIS
    Sweeps the task runner's leftovers (Clear-M365StaleTaskRun) for a module about to use
    the runner: Result.stale_cleanup = @{ removed; failed }, and one warning per item, so
    the operator sees what an earlier, interrupted run left and what could not be removed.
    Housekeeping: it does not make the module report changed. In check mode it only lists.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][object]$Module)
    $sweep = Clear-M365StaleTaskRun -CheckMode:$Module.CheckMode
    $Module.Result.stale_cleanup = $sweep
    $verb = if ($Module.CheckMode) { 'would remove' } else { 'removed' }
    foreach ($item in @($sweep.removed)) { $Module.Warn("leftover of an interrupted run ${verb}: $item") }
    foreach ($f in @($sweep.failed)) { $Module.Warn("leftover of an interrupted run not removed: $($f.item): $($f.message)") }
}

Function Add-M365RunnerWarning {
    # The runner's own cleanup failures, as warnings the operator sees.
    [CmdletBinding()]
    param ([Parameter(Mandatory)][object]$Module)
    foreach ($w in @(Get-M365TaskRunnerWarning)) { if ($w) { $Module.Warn($w) } }
}

Function Get-M365OutputProperty {
    <#
    .SYNOPSIS
    Reads a property from a task Output that went through JSON (PSCustomObject or hashtable).
    #>
    [CmdletBinding()]
    param (
        [AllowNull()][object]$InputObject,
        [Parameter(Mandatory)][string]$Name,
        [AllowNull()][object]$Default = $null
    )
    if ($null -eq $InputObject) { return $Default }
    if ($InputObject -is [System.Collections.IDictionary]) {
        if ($InputObject.Contains($Name)) { return $InputObject[$Name] }
        return $Default
    }
    $prop = $InputObject.PSObject.Properties[$Name]
    if ($null -eq $prop) { return $Default }
    $prop.Value
}

Function ConvertTo-M365TaskFunctionScript {
    <#
    .SYNOPSIS
    Functions as one script text for a task to dot-source (a Parameters value): the task
    runs a fresh powershell.exe that has none of this collection's utils.
    .DESCRIPTION
    With IfAbsent each definition is skipped when a command of that name exists, so a
    test can supply stand-ins for the Windows calls and still run the script around them.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [Parameter(Mandatory)][System.Management.Automation.FunctionInfo[]]$Function,
        [switch]$IfAbsent
    )
    $parts = foreach ($f in $Function) {
        $definition = 'function {0} {{{1}}}' -f $f.Name, $f.ScriptBlock.ToString()
        if ($IfAbsent) { "if (-not (Get-Command -Name '{0}' -ErrorAction SilentlyContinue)) {{`n{1}`n}}" -f $f.Name, $definition }
        else { $definition }
    }
    ConvertTo-M365CompactScript -Text ($parts -join "`n")
}

Function ConvertTo-M365CompactScript {
    <#
    .SYNOPSIS
    Script text without comments, indentation or blank lines: the task's whole command line
    (the bootstrap, and the script with its parameters gzipped) must stay under
    CreateProcess' 32767 characters. Leading blanks carry no meaning in it: a here-string's
    closing '@ starts its line anyway.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param([Parameter(Mandatory)][AllowEmptyString()][string]$Text)
    $code = New-Object -TypeName System.Text.StringBuilder
    $at = 0
    foreach ($token in [System.Management.Automation.PSParser]::Tokenize($Text, [ref]$null)) {
        if ($token.Type -ne 'Comment') { continue }
        $null = $code.Append($Text, $at, $token.Start - $at)
        $at = $token.Start + $token.Length
    }
    $null = $code.Append($Text, $at, $Text.Length - $at)
    (@($code.ToString() -split "`r?`n" | ForEach-Object { $_.Trim() } | Where-Object { $_ }) -join "`n")
}

Export-ModuleMember -Function Invoke-M365TaskScript, ConvertTo-M365TaskCommand, Get-M365RunFolderSddl, `
    New-M365RunFolder, Remove-M365RunFolder, Set-M365PathSddl, Get-M365RunRoot, Get-M365PowerShellPath, `
    Register-M365Task, Start-M365Task, Get-M365TaskState, Stop-M365Task, Unregister-M365Task, `
    Test-M365AccessDenied, Read-M365TaskOutput, New-M365RunId, Get-M365ProcessStartTime, Get-M365RunnerTaskName, `
    Test-M365RunStale, Clear-M365StaleTaskRun, Get-M365TaskRunnerWarning, `
    Invoke-M365StaleSweep, Add-M365RunnerWarning, Get-M365OutputProperty, ConvertTo-M365TaskFunctionScript
