#!powershell

# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._RebootMarker
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._RestartRequest
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._RungContext
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._UserRung
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._CredentialPurge
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._WorkAccounts
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._TokenBrokerReset
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._BrokerPlugin
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._HybridJoin

# The repair ladder in one module execution: each rung the plan selected runs through the
# same util function its own module calls, in the order given (the action plugin puts them
# in ladder order), and the ladder stops at the first rung that fails. A host round trip is
# the cost that matters (docs/remediate.md), so when a rung needs a restart and reboot
# allows it, this execution also records the boot time and schedules the restart itself -
# shutdown.exe /r as ansible.windows.win_reboot does - and the controller's next execution
# on the host is the verification diagnose.

$script:RungFunctions = [ordered]@{
    purge_office_credentials = 'Invoke-M365CredentialPurge'
    remove_extra_work_accounts = 'Invoke-M365WorkAccountRemoval'
    reset_token_broker = 'Invoke-M365TokenBrokerReset'
    reregister_broker_plugin = 'Invoke-M365BrokerPluginRegistration'
    rejoin_hybrid = 'Invoke-M365HybridJoin'
}
# What each rung does here: the remediate workflow's one direction for rungs that also undo
# (a TokenBroker restore, a plain leave) - those stay with the rung's own module.
$script:FixedOptions = @{
    reset_token_broker = @{ state = 'absent'; quarantine_id = $null }
    rejoin_hybrid = @{ state = 'rejoined' }
}
# shutdown.exe /c accepts at most 512 characters.
$script:MaxRebootMessage = 500
$script:ModuleName = 'win_activation_repair'

Function Get-M365RepairRungSpec {
    # Each rung's options as a sub-dict, validated by Ansible.Basic like the rung's own module.
    $user = Get-M365UserRungOption
    $rungs = @{
        purge_office_credentials = Merge-M365RungOption -Fragment $user -Options (Get-M365CredentialPurgeOption)
        remove_extra_work_accounts = Merge-M365RungOption -Fragment $user -Options (Get-M365WorkAccountOption)
        reset_token_broker = Get-M365TokenBrokerOption
        reregister_broker_plugin = Merge-M365RungOption -Fragment $user -Options (Get-M365BrokerPluginOption)
        rejoin_hybrid = Get-M365HybridJoinOption
    }
    $options = @{}
    foreach ($rung in $rungs.Keys) {
        $own = $rungs[$rung]
        $fixed = $script:FixedOptions[$rung]
        if ($null -ne $fixed) { foreach ($name in @($fixed.Keys)) { $own.Remove($name) } }
        # no_log: a rung's name (reset_token_broker) is not a secret, nor are its options.
        $options[$rung] = @{ type = 'dict'; apply_defaults = $true; no_log = $false; options = $own }
    }
    $options
}

Function ConvertTo-M365BootTimeUtcText {
    param([DateTime]$Time)
    $Time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
}

Function Invoke-M365Repair {
    <#
    .SYNOPSIS
    Runs the rungs (in the order given) and, when one asked for it and Reboot allows it,
    schedules the restart. Returns @{ rungs; run; failed_rung; msg; changed; restart }.
    #>
    param(
        [Parameter(Mandatory)][AllowEmptyCollection()][string[]]$Rungs,
        [Parameter(Mandatory)][System.Collections.IDictionary]$RungParams,
        [bool]$CheckMode,
        [bool]$DiffMode,
        [bool]$Reboot,
        [int]$PreRebootDelay = 10,
        [string]$Message,
        [bool]$IncludeWindowsPending
    )
    $results = [ordered]@{}
    $failedRung = $null
    $changed = $false
    foreach ($rung in $Rungs) {
        $params = @{}
        $given = $RungParams[$rung]
        if ($null -ne $given) { foreach ($k in @($given.Keys)) { $params[$k] = $given[$k] } }
        $fixed = $script:FixedOptions[$rung]
        if ($null -ne $fixed) { foreach ($k in @($fixed.Keys)) { $params[$k] = $fixed[$k] } }
        $context = New-M365RungContext -Params $params -CheckMode $CheckMode
        $function = $script:RungFunctions[$rung]
        $result = Invoke-M365RungContext -Context $context -DiffMode $DiffMode -ScriptBlock { param($m) & $function -Module $m }
        $results[$rung] = $result
        if ($result.changed) { $changed = $true }
        # The rungs after a failed one would work on a state nobody has looked at.
        if ($result.Contains('failed') -and $result.failed) { $failedRung = $rung; break }
    }

    $reasons = [System.Collections.Generic.List[string]]::new()
    foreach ($rung in $results.Keys) {
        if ($results[$rung].reboot_required) { $reasons.Add("${rung}: returned reboot_required") }
    }
    if ($IncludeWindowsPending) {
        foreach ($reason in @(Get-M365WindowsPendingReboot)) { $reasons.Add("Windows: $reason") }
    }
    $restart = [ordered]@{
        reboot_required = $reasons.Count -gt 0
        reasons = @($reasons)
        scheduled = $false
        rebooted = $false
        boot_time_before = $null
        pre_reboot_delay = $PreRebootDelay
        msg = $null
    }
    if ($reasons.Count -gt 0 -and $Reboot -and -not $CheckMode) {
        $text = if ($Message) { $Message } else { 'Restart by m365ops.activation: ' + ($reasons -join '; ') }
        if ($text.Length -gt $script:MaxRebootMessage) { $text = $text.Substring(0, $script:MaxRebootMessage) }
        # The boot time and the marker are written before the restart is asked for: a
        # controller that dies from here on leaves the next run what it needs to finish
        # (restart first if this boot is still current, else just clear the marker).
        $restart.boot_time_before = ConvertTo-M365BootTimeUtcText -Time (Get-M365LastBootUpTime)
        Set-M365RebootMarker -Source $script:ModuleName -Reason "restart scheduled from boot $($restart.boot_time_before): $($reasons -join '; ')"
        $request = Request-M365Restart -Delay $PreRebootDelay -Message $text
        $restart.scheduled = $request.scheduled
        $restart.command = $request.command
        $restart.rc = $request.rc
        $restart.output = $request.output
        $restart.msg = if ($request.scheduled) { "restart scheduled in $PreRebootDelay s: $($reasons -join '; ')" }
        else { "scheduling the restart failed (shutdown.exe rc $($request.rc): $($request.output)); the marker is kept, the next run restarts the host" }
        if ($request.scheduled) { $changed = $true }
    }
    elseif ($reasons.Count -gt 0 -and $CheckMode) {
        $restart.msg = 'would restart: ' + ($reasons -join '; ')
    }
    elseif ($reasons.Count -gt 0) {
        $restart.msg = 'reboot needed but not allowed (reboot: false): ' + ($reasons -join '; ')
    }
    else {
        $restart.msg = 'no reboot needed'
    }
    [ordered]@{
        rungs = $results
        run = @($results.Keys)
        failed_rung = $failedRung
        msg = if ($failedRung) { "${failedRung}: $($results[$failedRung].msg)" } else { $null }
        changed = $changed
        restart = $restart
    }
}

$spec = @{
    options = @{
        rungs = @{ type = 'list'; elements = 'str'; required = $true }
        reboot = @{ type = 'bool'; default = $true }
        pre_reboot_delay = @{ type = 'int'; default = 10 }
        msg = @{ type = 'str' }
        include_windows_pending = @{ type = 'bool'; default = $false }
        # Used by the action plugin on the controller (waiting for the restart, the
        # verification diagnose); accepted here so the spec matches the documentation.
        reboot_timeout = @{ type = 'int'; default = 600 }
        post_reboot_delay = @{ type = 'int'; default = 0 }
        connect_timeout = @{ type = 'int'; default = 5 }
        verify = @{ type = 'dict' }
    }
    supports_check_mode = $true
}
$rungSpec = Get-M365RepairRungSpec
foreach ($rung in $rungSpec.Keys) { $spec.options[$rung] = $rungSpec[$rung] }
$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

$rungs = @($module.Params.rungs)
foreach ($rung in $rungs) {
    if (-not $script:RungFunctions.Contains($rung)) {
        $module.FailJson("rungs: unknown rung '$rung'; expected any of $($script:RungFunctions.Keys -join ', ')")
    }
}
if (@($rungs | Select-Object -Unique).Count -ne $rungs.Count) {
    $module.FailJson("rungs: each rung runs once; got $($rungs -join ', ')")
}
$delay = $module.Params.pre_reboot_delay
if ($delay -lt 0 -or $delay -gt 600) {
    $module.FailJson("pre_reboot_delay: must be between 0 and 600 seconds, got $delay")
}

$rungParams = @{}
foreach ($rung in $script:RungFunctions.Keys) { $rungParams[$rung] = $module.Params[$rung] }
$repair = Invoke-M365Repair -Rungs $rungs -RungParams $rungParams -CheckMode $module.CheckMode -DiffMode $module.DiffMode `
    -Reboot $module.Params.reboot -PreRebootDelay $delay -Message $module.Params.msg -IncludeWindowsPending $module.Params.include_windows_pending

foreach ($key in $repair.Keys) { $module.Result.$key = $repair.$key }
if ($repair.failed_rung) { $module.FailJson($repair.msg) }
$module.ExitJson()
