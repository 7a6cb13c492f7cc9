# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# Stand-ins for the Windows commands the collection calls, driven by the lab host's state
# folder ($env:M365OPS_LAB_STATE, laid out by tests/lab/shim seed_host) and changing it the
# way Windows would. See tests/lab/shim/README.md for the state layout.
#
# Importing this module also registers the lab's Registry provider (HKLM:, HKCU:,
# Registry::HKEY_USERS\...), because a missing provider never triggers autoload: the first
# shim command a module calls brings the registry with it.

Set-StrictMode -Version 2.0

$script:State = $env:M365OPS_LAB_STATE
if (-not $script:State) {
    throw 'M365LabShim: M365OPS_LAB_STATE is not set; this process was not started with a lab host environment.'
}
$script:LabDir = Join-Path $script:State 'lab'
$script:AdminSid = 'S-1-5-21-1004336348-1177238915-682003330-500'

# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
Function Read-LabJson([string]$Name, $Default = $null) {
    $path = Join-Path $script:State $Name
    if (-not (Test-Path -LiteralPath $path)) { return $Default }
    $text = [IO.File]::ReadAllText($path)
    if ([string]::IsNullOrWhiteSpace($text)) { return $Default }
    ConvertFrom-Json -InputObject $text
}

Function Write-LabJson([string]$Name, $Value) {
    $path = Join-Path $script:State $Name
    $null = New-Item -ItemType Directory -Force -Path (Split-Path -Parent $path)
    $tmp = "$path.tmp$PID"
    [IO.File]::WriteAllText($tmp, (ConvertTo-Json -InputObject $Value -Depth 10))
    [IO.File]::Move($tmp, $path, $true)
}

Function Get-LabCurrentSid {
    # Processes started by a user-context task carry the user's SID; everything else is
    # the administrator's WinRM network logon.
    if ($env:M365OPS_LAB_USER_SID) { $env:M365OPS_LAB_USER_SID } else { $script:AdminSid }
}

Function Get-LabUser {
    param([string]$Sid)
    foreach ($u in @(Read-LabJson 'users.json' @())) { if ($u.sid -eq $Sid) { return $u } }
    $null
}

Function Get-LabSession { @(Read-LabJson 'sessions.json' @()) }

Function Get-LabMachine { Read-LabJson 'machine.json' ([pscustomobject]@{}) }

Function New-LabCimError {
    # What the CIM cmdlets raise for an unknown class: same category and error id as Windows.
    param([string]$Message, [string]$Id, [System.Management.Automation.ErrorCategory]$Category)
    [System.Management.Automation.ErrorRecord]::new([System.InvalidOperationException]::new($Message), $Id, $Category, $null)
}

# ---------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------
Function Import-M365LabRegistry {
    <#
    .SYNOPSIS
    Compile (once per host, cached by source hash) and import the lab Registry provider.
    #>
    [CmdletBinding()]
    param()
    if (Get-PSProvider -PSProvider Registry -ErrorAction SilentlyContinue) { return }
    $source = Join-Path $PSScriptRoot 'LabRegistry.cs'
    $code = [IO.File]::ReadAllText($source)
    $hash = [Convert]::ToHexString([Security.Cryptography.SHA256]::HashData([Text.Encoding]::UTF8.GetBytes($code))).Substring(0, 16)
    $cache = Join-Path $script:State 'shim/cache'
    $dll = Join-Path $cache "M365Lab.Registry.$hash.dll"
    if (-not (Test-Path -LiteralPath $dll)) {
        $null = New-Item -ItemType Directory -Force -Path $cache
        # Two processes of one host may start at once: the first compiles, the other waits.
        $lock = $null
        $deadline = [DateTime]::UtcNow.AddMinutes(3)
        while (-not $lock) {
            try { $lock = [IO.File]::Open((Join-Path $cache 'compile.lock'), 'OpenOrCreate', 'ReadWrite', 'None') }
            catch [System.IO.IOException] {
                if ([DateTime]::UtcNow -gt $deadline) { throw }
                Start-Sleep -Milliseconds 200
            }
        }
        try {
            if (-not (Test-Path -LiteralPath $dll)) {
                $tmp = "$dll.$PID.tmp.dll"
                Add-Type -TypeDefinition $code -OutputAssembly $tmp -OutputType Library -ErrorAction Stop
                [IO.File]::Move($tmp, $dll, $true)
            }
        }
        finally { $lock.Dispose() }
    }
    Import-Module -Name $dll -Global -ErrorAction Stop
}

# ---------------------------------------------------------------------------------------
# CIM
# ---------------------------------------------------------------------------------------
Function Get-LabBootTime {
    # The endpoint writes lab/boot_time when it performs a reboot (docs/lab.md); before
    # any reboot, the scenario's boot time stands.
    $file = Join-Path $script:LabDir 'boot_time'
    $text = if (Test-Path -LiteralPath $file) { [IO.File]::ReadAllText($file).Trim() } else { [string](Get-LabMachine).boot_time }
    if (-not $text) { $text = '2026-01-01T00:00:00Z' }
    $dt = [DateTime]::Parse($text, [Globalization.CultureInfo]::InvariantCulture, [Globalization.DateTimeStyles]::AdjustToUniversal)
    Invoke-LabRebootEffect -BootTimeText $text
    $dt.ToLocalTime()
}

Function Invoke-LabRebootEffect {
    # A reboot clears what Windows clears at boot: the servicing and update pending flags and
    # PendingFileRenameOperations. Applied once per boot time, by whoever first notices it.
    param([string]$BootTimeText)
    $applied = Join-Path $script:LabDir 'boot_applied'
    if ((Test-Path -LiteralPath (Join-Path $script:LabDir 'boot_time')) -and
        -not ((Test-Path -LiteralPath $applied) -and [IO.File]::ReadAllText($applied).Trim() -eq $BootTimeText)) {
        $reg = Join-Path $script:State 'registry/HKEY_LOCAL_MACHINE'
        foreach ($rel in 'SOFTWARE/Microsoft/Windows/CurrentVersion/Component Based Servicing/RebootPending',
            'SOFTWARE/Microsoft/Windows/CurrentVersion/WindowsUpdate/Auto Update/RebootRequired') {
            $p = Join-Path $reg $rel
            if (Test-Path -LiteralPath $p) { Remove-Item -LiteralPath $p -Recurse -Force }
        }
        $sm = Join-Path $reg 'SYSTEM/CurrentControlSet/Control/Session Manager/values.json'
        if (Test-Path -LiteralPath $sm) {
            $v = ConvertFrom-Json -InputObject ([IO.File]::ReadAllText($sm)) -AsHashtable
            if ($v.Remove('PendingFileRenameOperations')) { [IO.File]::WriteAllText($sm, (ConvertTo-Json $v -Depth 5)) }
        }
        $null = New-Item -ItemType Directory -Force -Path $script:LabDir
        [IO.File]::WriteAllText($applied, $BootTimeText)
    }
}

Function New-LabCimObject {
    param([string]$ClassName, [hashtable]$Properties)
    $o = [pscustomobject]$Properties
    $o.PSObject.TypeNames.Insert(0, "Microsoft.Management.Infrastructure.CimInstance#root/cimv2/$ClassName")
    $o | Add-Member -NotePropertyName CimClass -NotePropertyValue "root/cimv2:$ClassName"
    $o
}

Function Test-LabWqlFilter {
    # The WQL the collection sends is "Prop = 'value'" joined by AND; that is all we accept.
    param($Object, [string]$Filter)
    if (-not $Filter) { return $true }
    foreach ($clause in ($Filter -split '\s+AND\s+')) {
        if ($clause -notmatch "^\s*(\w+)\s*=\s*'([^']*)'\s*$") { throw "Get-CimInstance (lab): unsupported -Filter '$Filter'" }
        if ([string]$Object.($Matches[1]) -ne $Matches[2]) { return $false }
    }
    $true
}

Function Get-CimInstance {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, Position = 0)][Alias('Class')][string]$ClassName,
        [string]$Filter,
        [string[]]$Property,
        [string]$Namespace = 'root/cimv2',
        [string]$ComputerName
    )
    $machine = Get-LabMachine
    $objects = switch ($ClassName) {
        'Win32_OperatingSystem' {
            New-LabCimObject $ClassName @{
                Caption = [string]$machine.product_name; Version = [string]$machine.version
                BuildNumber = [string]$machine.build; CSName = [string]$machine.hostname
                LastBootUpTime = Get-LabBootTime
            }
        }
        'Win32_ComputerSystem' {
            $console = @(Get-LabSession | Select-Object -First 1)
            New-LabCimObject $ClassName @{
                Name = [string]$machine.hostname; Domain = [string]$machine.domain
                PartOfDomain = [bool]$machine.part_of_domain
                UserName = if ($console) { "$($console[0].domain)\$($console[0].name)" } else { $null }
            }
        }
        'Win32_Process' {
            # One explorer.exe per interactive desktop: that is what "logged on" means to
            # the collection (_UserProfile.psm1).
            $procId = 4000
            foreach ($s in Get-LabSession) {
                $procId += 4
                New-LabCimObject $ClassName @{ Name = 'explorer.exe'; ProcessId = $procId; OwnerSid = [string]$s.sid; SessionId = 1 }
            }
        }
        'Win32_UserProfile' {
            $loggedOn = @(Get-LabSession | ForEach-Object { $_.sid })
            foreach ($u in @(Read-LabJson 'users.json' @())) {
                New-LabCimObject $ClassName @{
                    SID = [string]$u.sid; LocalPath = [string]$u.profile; Special = $false
                    Loaded = [bool](Test-Path -LiteralPath (Join-Path $script:State "registry/HKEY_USERS/$($u.sid)"))
                    LastUseTime = Get-Date
                }
                $null = $loggedOn
            }
        }
        default {
            $PSCmdlet.WriteError((New-LabCimError "Invalid class $ClassName (lab shim knows Win32_OperatingSystem, Win32_ComputerSystem, Win32_Process, Win32_UserProfile)" 'HRESULT 0x80041010,Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand' 'MetadataError'))
        }
    }
    foreach ($o in @($objects)) { if ($o -and (Test-LabWqlFilter -Object $o -Filter $Filter)) { $o } }
}

Function Invoke-CimMethod {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, ValueFromPipeline)][object]$InputObject,
        [Parameter(Mandatory)][string]$MethodName,
        [System.Collections.IDictionary]$Arguments
    )
    process {
        if ($MethodName -eq 'GetOwnerSid' -and $InputObject.PSObject.Properties['OwnerSid']) {
            return [pscustomobject]@{ ReturnValue = [uint32]0; Sid = [string]$InputObject.OwnerSid }
        }
        if ($MethodName -eq 'GetOwner' -and $InputObject.PSObject.Properties['OwnerSid']) {
            $u = Get-LabUser -Sid $InputObject.OwnerSid
            return [pscustomobject]@{ ReturnValue = [uint32]0; Domain = [string]$u.domain; User = [string]$u.name }
        }
        $PSCmdlet.WriteError((New-LabCimError "Method $MethodName is not implemented by the lab shim" 'HRESULT 0x8004102e' 'NotImplemented'))
    }
}

# ---------------------------------------------------------------------------------------
# Event log
# ---------------------------------------------------------------------------------------
Function Get-WinEvent {
    [CmdletBinding(DefaultParameterSetName = 'LogName')]
    param(
        [Parameter(ParameterSetName = 'LogName', Position = 0)][string[]]$LogName,
        [Parameter(ParameterSetName = 'Hash', Mandatory)][hashtable[]]$FilterHashtable,
        [int64]$MaxEvents = [int64]::MaxValue,
        [switch]$Oldest
    )
    $filters = if ($PSCmdlet.ParameterSetName -eq 'Hash') { $FilterHashtable } else { @(@{ LogName = $LogName }) }
    $all = @(Read-LabJson 'events.json' @())
    $found = foreach ($f in $filters) {
        $logs = @($f['LogName'])
        $ids = if ($f.ContainsKey('Id')) { @($f['Id'] | ForEach-Object { [int]$_ }) } else { $null }
        $levels = if ($f.ContainsKey('Level')) { @($f['Level'] | ForEach-Object { [int]$_ }) } else { $null }
        foreach ($e in $all) {
            if ($logs -and $logs -notcontains $e.LogName) { continue }
            if ($ids -and $ids -notcontains [int]$e.Id) { continue }
            if ($levels -and $levels -notcontains [int]$e.Level) { continue }
            $t = [DateTime]::Parse($e.TimeCreated, [Globalization.CultureInfo]::InvariantCulture, [Globalization.DateTimeStyles]::AdjustToUniversal)
            if ($f.ContainsKey('StartTime') -and $t -lt ([DateTime]$f['StartTime']).ToUniversalTime()) { continue }
            if ($f.ContainsKey('EndTime') -and $t -gt ([DateTime]$f['EndTime']).ToUniversalTime()) { continue }
            $level = [int]$e.Level
            $record = [pscustomobject]@{
                Id = [int]$e.Id; Level = [byte]$level
                LevelDisplayName = @{ 1 = 'Critical'; 2 = 'Error'; 3 = 'Warning'; 4 = 'Information'; 5 = 'Verbose' }[$level]
                TimeCreated = $t.ToLocalTime(); Message = [string]$e.Message
                LogName = [string]$e.LogName; ProviderName = [string]$e.ProviderName
                Properties = @()
            }
            $record.PSObject.TypeNames.Insert(0, 'System.Diagnostics.Eventing.Reader.EventLogRecord')
            $record
        }
    }
    # Windows returns newest first unless -Oldest.
    $sorted = @($found | Sort-Object -Property TimeCreated -Descending:(-not $Oldest))
    if ($sorted.Count -eq 0) {
        $err = [System.Management.Automation.ErrorRecord]::new(
            [System.Exception]::new('No events were found that match the specified selection criteria.'),
            'NoMatchingEventsFound', 'ObjectNotFound', $null)
        $PSCmdlet.WriteError($err)
        return
    }
    $sorted | Select-Object -First ([int][Math]::Min($MaxEvents, [int]::MaxValue))
}

# ---------------------------------------------------------------------------------------
# AppX
# ---------------------------------------------------------------------------------------
Function ConvertTo-LabPackage {
    param([string]$Name, $Package, [bool]$AllUsers)
    $family = "$($Name)_$($Package.publisher_id)"
    $o = [pscustomobject]@{
        Name = $Name; Publisher = 'CN=Microsoft Windows, O=Microsoft Corporation, L=Redmond, S=Washington, C=US'
        Architecture = 'Neutral'; ResourceId = 'neutral'; Version = [string]$Package.version
        PackageFullName = "$($Name)_$($Package.version)_neutral_neutral_$($Package.publisher_id)"
        InstallLocation = [string]$Package.install_location; IsFramework = $false
        PackageFamilyName = $family; PublisherId = [string]$Package.publisher_id
        Status = [string]$Package.status; SignatureKind = 'System'; NonRemovable = $true
    }
    if ($AllUsers) {
        $info = foreach ($sid in @($Package.users)) {
            $u = Get-LabUser -Sid $sid
            [pscustomobject]@{ UserSecurityId = [pscustomobject]@{ Sid = [string]$sid; Username = if ($u) { "$($u.domain)\$($u.name)" } else { $null } }; InstallState = 'Installed' }
        }
        $o | Add-Member -NotePropertyName PackageUserInformation -NotePropertyValue @($info)
    }
    $o
}

Function Get-AppxPackage {
    [CmdletBinding()]
    param([Parameter(Position = 0)][string]$Name = '*', [switch]$AllUsers, [string]$User, [string]$Publisher)
    $packages = Read-LabJson 'appx.json' ([pscustomobject]@{})
    $me = Get-LabCurrentSid
    foreach ($p in $packages.PSObject.Properties) {
        if ($p.Name -notlike $Name) { continue }
        # Without -AllUsers Windows lists only the caller's registrations.
        if (-not $AllUsers -and @($p.Value.users) -notcontains $me) { continue }
        ConvertTo-LabPackage -Name $p.Name -Package $p.Value -AllUsers $AllUsers
    }
}

Function Add-AppxPackage {
    [CmdletBinding(SupportsShouldProcess)]
    param(
        [Parameter(Mandatory, Position = 0)][string]$Path,
        [switch]$Register, [switch]$DisableDevelopmentMode, [switch]$ForceApplicationShutdown
    )
    if (-not $Register) { throw 'Add-AppxPackage (lab): only -Register <AppxManifest.xml> is implemented' }
    if (-not (Test-Path -LiteralPath $Path -PathType Leaf)) {
        throw [System.IO.FileNotFoundException]::new("Deployment failed with HRESULT: 0x80073CF0, Package could not be opened. $Path")
    }
    $packages = Read-LabJson 'appx.json' ([pscustomobject]@{})
    $dir = Split-Path -Parent $Path
    $entry = $null
    foreach ($p in $packages.PSObject.Properties) { if ($p.Value.install_location -eq $dir) { $entry = $p.Value } }
    if (-not $entry) { throw "Deployment failed with HRESULT: 0x80073CF6, no lab package is installed from $dir" }
    if (-not $PSCmdlet.ShouldProcess($Path, 'Register')) { return }
    $me = Get-LabCurrentSid
    $entry.users = @(@($entry.users) + $me | Where-Object { $_ } | Sort-Object -Unique)
    $entry.status = 'Ok'
    Write-LabJson 'appx.json' $packages
}

# ---------------------------------------------------------------------------------------
# Scheduled tasks: state in tasks/<id>.json; a started task runs as a child process in the
# principal's environment (USERPROFILE, LOCALAPPDATA, ... of that user).
# ---------------------------------------------------------------------------------------
Function New-ScheduledTaskAction {
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$Execute, [string]$Argument, [string]$WorkingDirectory, [string]$Id)
    [pscustomobject]@{ PSTypeName = 'Microsoft.Management.Infrastructure.CimInstance#Root/Microsoft/Windows/TaskScheduler/MSFT_TaskExecAction'
        Execute = $Execute; Arguments = $Argument; WorkingDirectory = $WorkingDirectory; Id = $Id }
}

Function New-ScheduledTaskPrincipal {
    [CmdletBinding()]
    param(
        [string]$UserId, [string]$GroupId,
        [ValidateSet('None', 'Password', 'S4U', 'Interactive', 'Group', 'ServiceAccount', 'InteractiveOrPassword')][string]$LogonType = 'Interactive',
        [ValidateSet('Limited', 'Highest')][string]$RunLevel = 'Limited', [string]$Id
    )
    if (-not $UserId -and -not $GroupId) { throw 'New-ScheduledTaskPrincipal: give -UserId or -GroupId' }
    [pscustomobject]@{ PSTypeName = 'Microsoft.Management.Infrastructure.CimInstance#Root/Microsoft/Windows/TaskScheduler/MSFT_TaskPrincipal2'
        UserId = $UserId; GroupId = $GroupId; LogonType = $LogonType; RunLevel = $RunLevel; Id = $Id }
}

Function New-ScheduledTaskSettingsSet {
    [CmdletBinding()]
    param(
        [switch]$AllowStartIfOnBatteries, [switch]$DontStopIfGoingOnBatteries, [switch]$Hidden,
        [ValidateSet('Parallel', 'Queue', 'IgnoreNew', 'StopExisting')][string]$MultipleInstances = 'IgnoreNew',
        [TimeSpan]$ExecutionTimeLimit = [TimeSpan]::FromHours(72), [switch]$StartWhenAvailable, [int]$Priority = 7
    )
    [pscustomobject]@{ PSTypeName = 'Microsoft.Management.Infrastructure.CimInstance#Root/Microsoft/Windows/TaskScheduler/MSFT_TaskSettings3'
        Hidden = [bool]$Hidden; MultipleInstances = $MultipleInstances; ExecutionTimeLimit = [System.Xml.XmlConvert]::ToString($ExecutionTimeLimit) }
}

Function Get-LabTaskFile {
    param([string]$TaskName, [string]$TaskPath = '\')
    if (-not $TaskPath.StartsWith('\') -or -not $TaskPath.EndsWith('\')) {
        throw [System.ArgumentException]::new("TaskPath '$TaskPath' must start and end with a backslash")
    }
    if ($TaskName -match '[\\/:*?"<>|]') { throw [System.ArgumentException]::new("TaskName '$TaskName' has invalid characters") }
    $id = ($TaskPath + $TaskName).ToLowerInvariant() -replace '[^a-z0-9._-]', '_'
    Join-Path $script:State "tasks/$id.json"
}

Function New-LabTaskNotFound {
    param([string]$TaskName, [string]$TaskPath, [string]$Command)
    $ex = [System.IO.FileNotFoundException]::new("No MSFT_ScheduledTask objects found with property 'TaskName' equal to '$TaskName'.")
    [System.Management.Automation.ErrorRecord]::new($ex, "CmdletizationQuery_NotFound_TaskName,$Command", 'ObjectNotFound', $TaskName)
}

Function Read-LabTask {
    param([string]$TaskName, [string]$TaskPath)
    $file = Get-LabTaskFile -TaskName $TaskName -TaskPath $TaskPath
    if (-not (Test-Path -LiteralPath $file)) { return $null }
    $t = ConvertFrom-Json -InputObject ([IO.File]::ReadAllText($file))
    $t | Add-Member -NotePropertyName File -NotePropertyValue $file -Force
    $t
}

Function Get-LabTaskRun {
    # Running while the launcher's process group lives and has not written its exit code.
    param($Task)
    $result = [pscustomobject]@{ State = if ($Task.enabled) { 'Ready' } else { 'Disabled' }; LastTaskResult = 0x41303; LastRunTime = $null }
    if (-not $Task.run) { return $result }
    $result.LastRunTime = [DateTime]::Parse($Task.run.started, [Globalization.CultureInfo]::InvariantCulture, [Globalization.DateTimeStyles]::AdjustToUniversal).ToLocalTime()
    $exitFile = $Task.run.exit_file
    if (Test-Path -LiteralPath $exitFile) {
        $text = [IO.File]::ReadAllText($exitFile).Trim()
        if ($text -ne '') { $result.LastTaskResult = [int]$text; return $result }
    }
    $alive = $false
    try { $alive = -not (Get-Process -Id $Task.run.pid -ErrorAction Stop).HasExited } catch { $alive = $false }
    if ($alive) {
        $result.State = 'Running'; $result.LastTaskResult = 0x41301
    }
    else {
        # Killed without writing an exit code: Task Scheduler reports the termination.
        $result.LastTaskResult = 0x41306  # SCHED_S_TASK_TERMINATED
    }
    $result
}

Function Register-ScheduledTask {
    [CmdletBinding(SupportsShouldProcess)]
    param(
        [Parameter(Mandatory, Position = 0)][string]$TaskName, [string]$TaskPath = '\',
        [Parameter(Mandatory)][object[]]$Action, [object]$Principal, [object]$Settings, [object[]]$Trigger,
        [string]$User, [switch]$Force, [string]$Description
    )
    $file = Get-LabTaskFile -TaskName $TaskName -TaskPath $TaskPath
    if ((Test-Path -LiteralPath $file) -and -not $Force) {
        $ex = [System.IO.IOException]::new('Cannot create a file when that file already exists.')
        $PSCmdlet.ThrowTerminatingError([System.Management.Automation.ErrorRecord]::new($ex, 'HRESULT 0x800700b7,Register-ScheduledTask', 'ResourceExists', $TaskName))
    }
    if (-not $PSCmdlet.ShouldProcess("$TaskPath$TaskName", 'Register')) { return }
    $p = if ($Principal) { $Principal } else { New-ScheduledTaskPrincipal -UserId $(if ($User) { $User } else { Get-LabCurrentSid }) }
    $task = [ordered]@{
        name = $TaskName; path = $TaskPath; enabled = $true
        actions = @($Action | ForEach-Object { @{ execute = $_.Execute; arguments = $_.Arguments; working_directory = $_.WorkingDirectory } })
        principal = @{ user_id = $p.UserId; logon_type = $p.LogonType; run_level = $p.RunLevel }
        settings = if ($Settings) { @{ hidden = $Settings.Hidden; execution_time_limit = $Settings.ExecutionTimeLimit } } else { @{} }
        run = $null
    }
    Write-LabJson ($file.Substring($script:State.Length + 1)) $task
    Get-ScheduledTask -TaskName $TaskName -TaskPath $TaskPath
}

Function ConvertTo-LabTaskObject {
    param($Task)
    $run = Get-LabTaskRun -Task $Task
    $o = [pscustomobject]@{
        TaskName = $Task.name; TaskPath = $Task.path; State = $run.State
        Actions = @($Task.actions | ForEach-Object { [pscustomobject]@{ Execute = $_.execute; Arguments = $_.arguments } })
        Principal = [pscustomobject]@{ UserId = $Task.principal.user_id; LogonType = $Task.principal.logon_type; RunLevel = $Task.principal.run_level }
    }
    $o.PSObject.TypeNames.Insert(0, 'Microsoft.Management.Infrastructure.CimInstance#Root/Microsoft/Windows/TaskScheduler/MSFT_ScheduledTask')
    $o
}

Function Get-ScheduledTask {
    [CmdletBinding()]
    param([Parameter(Position = 0)][string]$TaskName = '*', [string]$TaskPath = '*')
    $dir = Join-Path $script:State 'tasks'
    $found = @(foreach ($f in @(Get-ChildItem -LiteralPath $dir -Filter '*.json' -File -ErrorAction SilentlyContinue)) {
            $t = ConvertFrom-Json -InputObject ([IO.File]::ReadAllText($f.FullName))
            if ($t.name -like $TaskName -and $t.path -like $TaskPath) { ConvertTo-LabTaskObject -Task $t }
        })
    if ($found.Count -eq 0 -and -not [System.Management.Automation.WildcardPattern]::ContainsWildcardCharacters($TaskName)) {
        $PSCmdlet.WriteError((New-LabTaskNotFound -TaskName $TaskName -TaskPath $TaskPath -Command 'Get-ScheduledTask'))
        return
    }
    $found
}

Function Get-ScheduledTaskInfo {
    [CmdletBinding()]
    param([Parameter(Mandatory, Position = 0)][string]$TaskName, [string]$TaskPath = '\')
    $t = Read-LabTask -TaskName $TaskName -TaskPath $TaskPath
    if (-not $t) { $PSCmdlet.WriteError((New-LabTaskNotFound -TaskName $TaskName -TaskPath $TaskPath -Command 'Get-ScheduledTaskInfo')); return }
    $run = Get-LabTaskRun -Task $t
    [pscustomobject]@{ TaskName = $t.name; TaskPath = $t.path; LastTaskResult = $run.LastTaskResult; LastRunTime = $run.LastRunTime; NumberOfMissedRuns = 0 }
}

Function Split-LabCommandLine {
    # CommandLineToArgvW rules: whitespace separates, "..." groups, \" is a quote,
    # backslashes are literal unless they precede a quote.
    param([string]$Line)
    $args_ = [System.Collections.Generic.List[string]]::new()
    $cur = [Text.StringBuilder]::new(); $inQuote = $false; $have = $false; $i = 0
    while ($i -lt $Line.Length) {
        $c = $Line[$i]
        if ($c -eq '\') {
            $n = 0; while ($i -lt $Line.Length -and $Line[$i] -eq '\') { $n++; $i++ }
            if ($i -lt $Line.Length -and $Line[$i] -eq '"') {
                $null = $cur.Append('\' * [int][Math]::Floor($n / 2))
                if ($n % 2 -eq 1) { $null = $cur.Append('"'); $i++ }
            }
            else { $null = $cur.Append('\' * $n) }
            $have = $true; continue
        }
        if ($c -eq '"') { $inQuote = -not $inQuote; $have = $true; $i++; continue }
        if (-not $inQuote -and [char]::IsWhiteSpace($c)) {
            if ($have) { $args_.Add($cur.ToString()); $null = $cur.Clear(); $have = $false }
            $i++; continue
        }
        $null = $cur.Append($c); $have = $true; $i++
    }
    if ($have) { $args_.Add($cur.ToString()) }
    , $args_.ToArray()
}

Function Get-LabPrincipalEnvironment {
    # The environment Windows gives a task of this principal: SYSTEM's profile under
    # Windows\System32\config\systemprofile, a user's from their profile folder.
    param([string]$UserId)
    $envs = [ordered]@{}
    foreach ($k in 'PATH', 'PSModulePath', 'LANG', 'SystemRoot', 'windir', 'ProgramData', 'ALLUSERSPROFILE', 'ProgramFiles',
        'COMPUTERNAME', 'M365OPS_LAB_HOST', 'M365OPS_LAB_STATE', 'M365OPS_LAB_PWSH', 'POWERSHELL_TELEMETRY_OPTOUT', 'POWERSHELL_UPDATECHECK',
        'DOTNET_CLI_TELEMETRY_OPTOUT', 'LD_LIBRARY_PATH',
        # The lab's moved clock (tests/lab/shim/sandbox.py) reaches tasks as it reaches every process of the host.
        'LD_PRELOAD', 'FAKETIME', 'FAKETIME_DONT_FAKE_MONOTONIC', 'FAKETIME_FORCE_MONOTONIC_FIX', 'PYTHONPATH') {
        $v = [Environment]::GetEnvironmentVariable($k)
        if ($null -ne $v) { $envs[$k] = $v }
    }
    $sid = $UserId
    if ($UserId -in @('SYSTEM', 'NT AUTHORITY\SYSTEM', 'S-1-5-18')) {
        $sid = 'S-1-5-18'
        $profile = Join-Path $env:SystemRoot 'System32/config/systemprofile'
        $envs['USERNAME'] = "$($env:COMPUTERNAME)`$"; $envs['USERDOMAIN'] = 'NT AUTHORITY'
    }
    else {
        $u = Get-LabUser -Sid $UserId
        if (-not $u) {
            foreach ($c in @(Read-LabJson 'users.json' @())) { if ("$($c.domain)\$($c.name)" -eq $UserId -or $c.name -eq $UserId) { $u = $c } }
        }
        if (-not $u) { throw [System.ArgumentException]::new("(0x80070534) No mapping between account names and security IDs was done: '$UserId'") }
        $sid = $u.sid; $profile = $u.profile
        $envs['USERNAME'] = $u.name; $envs['USERDOMAIN'] = $u.domain
    }
    $local = Join-Path $profile 'AppData/Local'
    $temp = Join-Path $local 'Temp'
    $null = New-Item -ItemType Directory -Force -Path $temp
    $envs['USERPROFILE'] = $profile; $envs['HOME'] = $profile; $envs['LOCALAPPDATA'] = $local
    $envs['APPDATA'] = Join-Path $profile 'AppData/Roaming'; $envs['TEMP'] = $temp; $envs['TMP'] = $temp; $envs['TMPDIR'] = $temp
    $envs['M365OPS_LAB_USER_SID'] = $sid
    $envs
}

Function Start-ScheduledTask {
    [CmdletBinding()]
    param([Parameter(Mandatory, Position = 0)][string]$TaskName, [string]$TaskPath = '\')
    $t = Read-LabTask -TaskName $TaskName -TaskPath $TaskPath
    if (-not $t) { $PSCmdlet.ThrowTerminatingError((New-LabTaskNotFound -TaskName $TaskName -TaskPath $TaskPath -Command 'Start-ScheduledTask')) }
    if ((Get-LabTaskRun -Task $t).State -eq 'Running') { return }  # MultipleInstances IgnoreNew
    $p = $t.principal
    $sid = if ($p.user_id -in @('SYSTEM', 'NT AUTHORITY\SYSTEM', 'S-1-5-18')) { 'S-1-5-18' } else { $p.user_id }
    if ($p.logon_type -eq 'Interactive' -and $sid -ne 'S-1-5-18' -and @(Get-LabSession | ForEach-Object { $_.sid }) -notcontains $sid) {
        # Task Scheduler starts nothing for an interactive principal without a session.
        return
    }
    $action = @($t.actions)[0]
    $exe = [string]$action.execute
    $leaf = ($exe -split '[\\/]')[-1].ToLowerInvariant()
    [string[]]$argv = Split-LabCommandLine -Line ([string]$action.arguments)
    if ($leaf -in @('powershell.exe', 'powershell', 'pwsh', 'pwsh.exe')) {
        $exe = $env:M365OPS_LAB_PWSH
        # pwsh on Linux refuses -WindowStyle; a hidden window is what it would mean anyway.
        $clean = [System.Collections.Generic.List[string]]::new()
        for ($i = 0; $i -lt $argv.Count; $i++) {
            if ($argv[$i] -match '^-(WindowStyle|w|win|window)$' -and $i + 1 -lt $argv.Count) { $i++; continue }
            $clean.Add($argv[$i])
        }
        $argv = $clean.ToArray()
    }
    else {
        $found = Get-Command -Name $leaf -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
        if (-not $found) { throw "Start-ScheduledTask (lab): '$exe' is not a program of this host" }
        $exe = $found.Source
    }
    $runDir = Join-Path $script:State "tasks/runs/$([guid]::NewGuid().ToString('N'))"
    $null = New-Item -ItemType Directory -Force -Path $runDir
    $exitFile = Join-Path $runDir 'exit'
    $psi = [System.Diagnostics.ProcessStartInfo]::new('/usr/bin/setsid')
    # setsid gives the task its own process group, so Stop-ScheduledTask ends all of it;
    # the shell records the exit code the way Task Scheduler records LastTaskResult.
    $psi.ArgumentList.Add('/bin/sh'); $psi.ArgumentList.Add('-c')
    $psi.ArgumentList.Add('"$0" "$@" >"$M365OPS_LAB_TASK_DIR/stdout" 2>"$M365OPS_LAB_TASK_DIR/stderr" </dev/null; echo $? >"$M365OPS_LAB_TASK_DIR/exit.tmp"; mv "$M365OPS_LAB_TASK_DIR/exit.tmp" "$M365OPS_LAB_TASK_DIR/exit"')
    $psi.ArgumentList.Add($exe)
    foreach ($a in $argv) { $psi.ArgumentList.Add($a) }
    $psi.UseShellExecute = $false
    $psi.Environment.Clear()
    foreach ($kv in (Get-LabPrincipalEnvironment -UserId $p.user_id).GetEnumerator()) { $psi.Environment[$kv.Key] = $kv.Value }
    $psi.Environment['M365OPS_LAB_TASK_DIR'] = $runDir
    $psi.WorkingDirectory = $psi.Environment['USERPROFILE']
    $proc = [System.Diagnostics.Process]::Start($psi)
    $tt = ConvertFrom-Json -InputObject ([IO.File]::ReadAllText($t.File)) -AsHashtable
    $tt.run = @{ pid = $proc.Id; started = [DateTime]::UtcNow.ToString('o'); exit_file = $exitFile; dir = $runDir }
    Write-LabJson ($t.File.Substring($script:State.Length + 1)) $tt
}

Function Stop-ScheduledTask {
    [CmdletBinding()]
    param([Parameter(Mandatory, Position = 0)][string]$TaskName, [string]$TaskPath = '\')
    $t = Read-LabTask -TaskName $TaskName -TaskPath $TaskPath
    if (-not $t) { $PSCmdlet.WriteError((New-LabTaskNotFound -TaskName $TaskName -TaskPath $TaskPath -Command 'Stop-ScheduledTask')); return }
    if ($t.run -and (Get-LabTaskRun -Task $t).State -eq 'Running') {
        & /bin/kill -KILL -- "-$($t.run.pid)" 2>$null
    }
}

Function Unregister-ScheduledTask {
    [CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'High')]
    param([Parameter(Mandatory, Position = 0)][string]$TaskName, [string]$TaskPath = '\')
    $t = Read-LabTask -TaskName $TaskName -TaskPath $TaskPath
    if (-not $t) { $PSCmdlet.ThrowTerminatingError((New-LabTaskNotFound -TaskName $TaskName -TaskPath $TaskPath -Command 'Unregister-ScheduledTask')) }
    if (-not $PSCmdlet.ShouldProcess("$TaskPath$TaskName", 'Unregister')) { return }
    if ($t.run -and (Get-LabTaskRun -Task $t).State -eq 'Running') { & /bin/kill -KILL -- "-$($t.run.pid)" 2>$null }
    if ($t.run -and $t.run.dir) { Remove-Item -LiteralPath $t.run.dir -Recurse -Force -ErrorAction SilentlyContinue }
    Remove-Item -LiteralPath $t.File -Force
}

# ---------------------------------------------------------------------------------------
# ACLs: pwsh on Linux has no Get-Acl/Set-Acl. The lab records the SDDL a caller set so a
# test can check it; the .NET ACL types themselves cannot be built on Linux.
# ---------------------------------------------------------------------------------------
Function Get-Acl {
    [CmdletBinding()]
    param([Parameter(Position = 0)][string]$Path, [string]$LiteralPath)
    $target = if ($LiteralPath) { $LiteralPath } else { $Path }
    if (-not (Test-Path -LiteralPath $target)) { throw [System.Management.Automation.ItemNotFoundException]::new("Cannot find path '$target' because it does not exist.") }
    $acls = Read-LabJson 'acls.json' ([pscustomobject]@{})
    $sddl = if ($acls.PSObject.Properties[$target]) { [string]$acls.$target } else { 'O:BAG:SYD:(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)' }
    $owner = if ($sddl -match '^O:([^G]+)G:') { @{ BA = 'S-1-5-32-544'; SY = 'S-1-5-18' }[$Matches[1]] } else { 'S-1-5-32-544' }
    $o = [pscustomobject]@{ Path = $target; Sddl = $sddl; Owner = $owner }
    $o | Add-Member -MemberType ScriptMethod -Name GetOwner -Value { param($t) [pscustomobject]@{ Value = $this.Owner } }
    $o | Add-Member -MemberType ScriptMethod -Name GetSecurityDescriptorSddlForm -Value { param($s) $this.Sddl }
    $o
}

Function Set-Acl {
    [CmdletBinding(SupportsShouldProcess)]
    param([Parameter(Position = 0)][string]$Path, [string]$LiteralPath, [Parameter(Mandatory)][object]$AclObject)
    $target = if ($LiteralPath) { $LiteralPath } else { $Path }
    if (-not (Test-Path -LiteralPath $target)) { throw [System.Management.Automation.ItemNotFoundException]::new("Cannot find path '$target' because it does not exist.") }
    if (-not $PSCmdlet.ShouldProcess($target, 'Set-Acl')) { return }
    $sddl = if ($AclObject.PSObject.Methods['GetSecurityDescriptorSddlForm']) { $AclObject.GetSecurityDescriptorSddlForm('All') } else { [string]$AclObject }
    $acls = Read-LabJson 'acls.json' ([pscustomobject]@{})
    $acls | Add-Member -NotePropertyName $target -NotePropertyValue $sddl -Force
    Write-LabJson 'acls.json' $acls
}

# ---------------------------------------------------------------------------------------
# Web Account Manager and GetUserNameEx. WAM is a WinRT API: pwsh 7 cannot project WinRT
# types at all, so no stand-in can sit behind the product's own calls. win_work_accounts'
# user-context script defines its Windows helpers only when absent (its Pester tests rely
# on that); these are those helpers, over the user's wam/<sid>.json and users.json. Only
# the WinRT calls themselves are not run in the lab; everything around them is.
# ---------------------------------------------------------------------------------------
Function Get-M365SignInUpn {
    # GetUserNameExW(NameUserPrincipal): none for a local account.
    $u = Get-LabUser -Sid (Get-LabCurrentSid)
    if ($u -and $u.PSObject.Properties['upn']) { $u.upn } else { $null }
}

Function Get-M365WamAccount {
    # FindAllAccountsAsync(https://login.microsoft.com, organizations): the caller's work accounts.
    param([string]$ClientId)
    foreach ($a in @(Read-LabJson "wam/$(Get-LabCurrentSid).json" @())) {
        if ([string]$a.provider -notin @('AzureAD', 'AzureAd')) { continue }
        [pscustomobject]@{ Upn = [string]$a.upn; Id = "lab-$($a.upn)"; State = 'Connected'; Account = $a }
    }
}

Function Invoke-M365WamSignOut {
    # WebAccount.SignOutAsync(client id): the account is no longer listed for the app.
    param($Account, [string]$ClientId)
    $name = "wam/$(Get-LabCurrentSid).json"
    $left = @(@(Read-LabJson $name @()) | Where-Object { [string]$_.upn -ne [string]$Account.Upn })
    Write-LabJson $name $left
}

Import-M365LabRegistry

Export-ModuleMember -Function Get-CimInstance, Invoke-CimMethod, Get-WinEvent, Get-AppxPackage, Add-AppxPackage, `
    New-ScheduledTaskAction, New-ScheduledTaskPrincipal, New-ScheduledTaskSettingsSet, Register-ScheduledTask, `
    Start-ScheduledTask, Stop-ScheduledTask, Unregister-ScheduledTask, Get-ScheduledTask, Get-ScheduledTaskInfo, `
    Get-Acl, Set-Acl, Import-M365LabRegistry, Get-M365SignInUpn, Get-M365WamAccount, Invoke-M365WamSignOut
