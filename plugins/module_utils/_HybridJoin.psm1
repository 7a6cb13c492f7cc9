# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within this collection and may not remain
# stable to outside uses. Changes may be made in ANY release, even a bugfix release.

# Rung 5 (rejoin_hybrid, opt-in). `dsregcmd /join` and `/leave` act on hybrid join: the
# join schedules the Automatic-Device-Join task, and must run as SYSTEM - done through a
# temporary SYSTEM task with the command inline (no PsExec, no script file on disk).
# Guard rails, in order of importance:
#   * a cloud-only Entra joined device is never left unless allow_cloud_only_leave: /join
#     cannot bring it back and users can be locked out; the recovery there is
#     `dsregcmd /forcerecovery` with the user present;
#   * before any leave, the rejoin is preflighted (a DC answers, the SCP is found, the
#     Automatic-Device-Join task is ready) and the leave refused if any check fails;
#   * the join completes asynchronously (Entra Connect must sync the device's
#     userCertificate, 30 min by default), so after a bounded wait the module returns
#     join_result=pending instead of blocking; a later diagnose confirms it.

#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._ScheduledTaskRunner
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._RebootMarker
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._Dsreg
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._DsregJoin

Set-StrictMode -Version 2.0

Function Get-M365HybridJoinOption {
    # The rung's own options: its module and win_activation_repair validate them.
    @{
        state = @{ type = 'str'; required = $true; choices = @('joined', 'left', 'rejoined') }
        allow_cloud_only_leave = @{ type = 'bool'; default = $false }
        join_wait = @{ type = 'int'; default = 60 }
        poll_interval = @{ type = 'int'; default = 10 }
        timeout = @{ type = 'int'; default = 300 }
        pending_expiry = @{ type = 'int'; default = 24 }
    }
}

$ModuleName = 'win_dsreg_join'
# The submitted join is remembered here, not in the reboot marker: the reboot step clears
# the marker after the restart, while Entra Connect may need another 30 minutes (plus the
# join task's hourly retries) to complete the join. Without this record the next run
# would /join again, or leave and rejoin a device that is about to finish.
$HybridJoinKey = 'HKLM:\SOFTWARE\m365ops\activation\HybridJoin'
$IsoFormat = 'yyyy-MM-ddTHH:mm:ssZ'
$ExpectedPendingCodes = @('0x801c03f2')  # DirectoryError: device object not synced yet (sync-join)

# Runs as SYSTEM in the temporary task: one dsregcmd invocation, its text and exit code.
# By absolute path: SYSTEM must never run whatever dsregcmd.exe PATH finds first.
$dsregScript = {
    param([string[]]$Arguments)
    $exe = [IO.Path]::Combine($env:SystemRoot, 'System32', 'dsregcmd.exe')
    $text = & $exe @Arguments 2>&1 | Out-String
    @{ output = $text; exit_code = $LASTEXITCODE }
}

Function Get-M365DeviceStatus {
    $raw = Invoke-M365Dsregcmd -ArgumentList '/status'
    $parsed = ConvertFrom-M365DsregStatus -Text $raw.Output
    [pscustomobject]@{
        Raw = $raw.Output
        Parsed = $parsed
        JoinType = Get-M365JoinType -Status $parsed
    }
}

Function Get-M365DeviceSummary {
    param ($Status)
    $s = [ordered]@{ join_type = $Status.JoinType }
    foreach ($k in 'AzureAdJoined', 'EnterpriseJoined', 'DomainJoined', 'DomainName', 'DeviceId', 'TenantName', 'TenantId') {
        $s[$k] = Get-M365DsregValue -Status $Status.Parsed -Key $k
    }
    $s
}

Function Get-M365DiagnosticData {
    param ($Status)
    if ($Status.Parsed.Contains('Diagnostic Data')) { $Status.Parsed['Diagnostic Data'] } else { $null }
}

Function Invoke-M365JoinPreflight {
    # Can a rejoin succeed after a leave? Each check mirrors a pre-join diagnostic of
    # dsregcmd (AD connectivity, AD configuration/SCP) plus the task that does the join.
    # A check that cannot run counts as failed: the leave is refused on doubt.
    param ($Status)
    $domain = Get-M365DsregValue -Status $Status.Parsed -Key 'DomainName'
    $checks = [ordered]@{}
    try {
        if (-not $domain) { throw 'dsregcmd /status shows no DomainName' }
        $dc = Test-M365DomainController -DomainName $domain
        $checks.domain_controller = @{ ok = [bool]$dc.Ok; detail = "$($dc.Detail)" }
    }
    catch { $checks.domain_controller = @{ ok = $false; detail = $_.Exception.Message } }
    try {
        $scp = Get-M365ServiceConnectionPoint
        $checks.service_connection_point = @{
            ok = [bool]$scp.Found
            detail = if ($scp.Found) { "$($scp.Source): $($scp.TenantName) $($scp.TenantId)".Trim() } else { "$($scp.Detail)" }
        }
    }
    catch { $checks.service_connection_point = @{ ok = $false; detail = $_.Exception.Message } }
    try {
        $task = Get-M365DeviceJoinTask
        $checks.automatic_device_join_task = @{
            ok = [bool]($task.Found -and $task.State -ne 'Disabled')
            detail = if (-not $task.Found) { '\Microsoft\Windows\Workplace Join\Automatic-Device-Join not found' } else { "state $($task.State)" }
        }
    }
    catch { $checks.automatic_device_join_task = @{ ok = $false; detail = $_.Exception.Message } }
    [ordered]@{
        passed = -not @($checks.Values | Where-Object { -not $_.ok })
        checks = $checks
    }
}

Function Invoke-M365SystemDsreg {
    param ([string[]]$Arguments)
    $task = Invoke-M365TaskScript -ScriptBlock $dsregScript -Parameters @{ Arguments = $Arguments } -RunAs System -TimeoutSeconds $module.Params.timeout
    $output = [string](Get-M365OutputProperty $task.Output 'output' '')
    $exit = Get-M365OutputProperty $task.Output 'exit_code'
    [pscustomobject]@{
        Ok = ($task.Status -eq 'ok' -and $exit -eq 0)
        Output = $output.Trim()
        ExitCode = $exit
        Message = if ($task.Status -ne 'ok') { "SYSTEM task $($task.Status): $($task.Message)" } elseif ($exit -ne 0) { "dsregcmd $($Arguments -join ' ') exited with $exit" } else { '' }
    }
}

Function Get-M365SubmittedJoin {
    <#
    The recorded join, with its status against the device now: confirmed (hybrid joined),
    pending (not yet, within pending_expiry) or expired; $null when none is recorded.
    Registry access goes through RebootMarker's value adapters (Pester mocks them).
    #>
    param ([string]$JoinType, [int]$ExpiryHours)
    $values = Get-M365RebootMarkerValue -Path $HybridJoinKey
    # SubmittedAt is written last, so a record without it was never completed.
    if ($null -eq $values -or -not $values.ContainsKey('SubmittedAt')) { return $null }
    $record = [ordered]@{
        submitted_at = $values['SubmittedAt']
        submitted_by = if ($values.ContainsKey('SubmittedBy')) { $values['SubmittedBy'] } else { $null }
        action = if ($values.ContainsKey('Action')) { $values['Action'] } else { $null }
        expires_at = $null
        status = $null
    }
    $at = [datetime]::MinValue
    $parsed = [datetime]::TryParseExact($record.submitted_at, $IsoFormat, [System.Globalization.CultureInfo]::InvariantCulture,
        [System.Globalization.DateTimeStyles]'AssumeUniversal, AdjustToUniversal', [ref]$at)
    if ($parsed) { $record.expires_at = $at.AddHours($ExpiryHours).ToString($IsoFormat, [System.Globalization.CultureInfo]::InvariantCulture) }
    $record.status = if ($JoinType -eq 'hybrid_joined') { 'confirmed' }
    elseif ($parsed -and [datetime]::UtcNow -lt $at.AddHours($ExpiryHours)) { 'pending' }
    else { 'expired' }
    $record
}

Function Set-M365SubmittedJoin {
    param ([string]$Action)
    $by = "$([Environment]::UserDomainName)\$([Environment]::UserName) (win_dsreg_join state=$($module.Params.state))"
    Set-M365RebootMarkerValue -Path $HybridJoinKey -Name 'Action' -Value $Action
    Set-M365RebootMarkerValue -Path $HybridJoinKey -Name 'SubmittedBy' -Value $by
    Set-M365RebootMarkerValue -Path $HybridJoinKey -Name 'SubmittedAt' -Value ([datetime]::UtcNow.ToString($IsoFormat, [System.Globalization.CultureInfo]::InvariantCulture))
}

Function Get-M365TailText {
    # /join /debug is verbose; keep the end, where the outcome is.
    param ([string]$Text, [int]$Lines = 60)
    (($Text -split "`r?`n") | Select-Object -Last $Lines) -join "`n"
}

Function Invoke-M365HybridJoin {
    <#
    .SYNOPSIS
    Rung 5 (rejoin_hybrid): state joined, left or rejoined for -Module (an AnsibleModule or
    a rung context, _RungContext.psm1); ends with its ExitJson or FailJson.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][object]$Module)
    $module.Result.changed = $false
    $module.Result.reboot_required = $false
    # Device-wide: no per-user entries, but the same result shape as the per-user rungs.
    $module.Result.users = @()
    $module.Result.action = 'none'
    $module.Result.join_result = $null
    $module.Result.pending = $false
    $module.Result.preflight = $null
    $module.Result.diagnostic_data = $null
    $module.Result.submitted_join = $null

    # --- validation -------------------------------------------------------------------------
    $state = $module.Params.state
    foreach ($opt in @(@('join_wait', 0, 3600, 'seconds'), @('poll_interval', 1, 300, 'seconds'), @('timeout', 1, 3600, 'seconds'), @('pending_expiry', 1, 720, 'hours'))) {
        $v = $module.Params[$opt[0]]
        if ($v -lt $opt[1] -or $v -gt $opt[2]) {
            $module.FailJson("$($opt[0]): must be between $($opt[1]) and $($opt[2]) $($opt[3]), got $v")
        }
    }

    $before = Get-M365DeviceStatus
    $module.Result.device_before = Get-M365DeviceSummary $before
    $joinType = $before.JoinType
    if ($null -eq $joinType) {
        $module.FailJson("dsregcmd /status did not report AzureAdJoined/DomainJoined; cannot decide safely. Output: $(Get-M365TailText $before.Raw 20)")
    }

    # A run that died between /leave and /join recorded no join, so the next run still joins.
    $submitted = Get-M365SubmittedJoin -JoinType $joinType -ExpiryHours $module.Params.pending_expiry
    $module.Result.submitted_join = $submitted
    $pendingJoin = $null -ne $submitted -and $submitted.status -eq 'pending'
    if ($submitted -and $submitted.status -eq 'expired' -and $state -ne 'left') {
        $module.Warn("the hybrid join submitted at $($submitted.submitted_at) by $($submitted.submitted_by) did not complete within pending_expiry ($($module.Params.pending_expiry) h); it may be submitted again")
    }
    if ($submitted -and $submitted.status -eq 'confirmed' -and -not $module.CheckMode) {
        # Confirmed by dsregcmd: housekeeping, not a change to the device.
        Remove-M365RebootMarkerKey -Path $HybridJoinKey
    }

    # --- decide -----------------------------------------------------------------------------
    $action = 'none'
    $needsPreflight = $false
    switch ($state) {
        'joined' {
            switch ($joinType) {
                { $_ -in 'hybrid_joined', 'entra_joined' } { $module.Result.join_result = 'joined' }
                'domain_joined' {
                    if ($pendingJoin) { $module.Result.join_result = 'pending' } else { $action = 'join' }
                }
                default {
                    $module.FailJson("state=joined: dsregcmd /join performs hybrid join, which needs an Active Directory domain-joined device; this device is $joinType")
                }
            }
        }
        'left' {
            switch ($joinType) {
                { $_ -in 'domain_joined', 'workgroup', 'entra_registered' } {
                    $module.Result.join_result = 'left'
                    if ($pendingJoin) {
                        $module.Warn("a hybrid join submitted at $($submitted.submitted_at) is still pending; the Automatic-Device-Join task may still complete it")
                    }
                }
                'hybrid_joined' { $action = 'leave'; $needsPreflight = $true }
                'entra_joined' {
                    if (-not $module.Params.allow_cloud_only_leave) {
                        $module.FailJson('allow_cloud_only_leave: refusing dsregcmd /leave on a cloud-only Microsoft Entra joined device (AzureAdJoined YES, DomainJoined NO): dsregcmd /join cannot rejoin it and users may be locked out. To repair its registration use dsregcmd /forcerecovery with the user present; set allow_cloud_only_leave: true only to unjoin it for good.')
                    }
                    $action = 'leave'
                    $module.Warn('leaving a cloud-only Entra joined device (allow_cloud_only_leave: true); it will not be rejoined by this module')
                }
                default {
                    $module.FailJson("state=left: this device is $joinType; only hybrid (and, with allow_cloud_only_leave, cloud-only Entra) joins are left by this module")
                }
            }
        }
        'rejoined' {
            switch ($joinType) {
                'hybrid_joined' {
                    # The rejoin a recorded join belongs to has completed: it is not repeated
                    # (once); a later run may rejoin again if the diagnosis still asks for it.
                    if ($submitted -and $submitted.status -eq 'confirmed') { $module.Result.join_result = 'joined' }
                    else { $action = 'rejoin'; $needsPreflight = $true }
                }
                'domain_joined' {
                    if ($pendingJoin) { $module.Result.join_result = 'pending' } else { $action = 'join' }
                }
                'entra_joined' {
                    $module.FailJson('state=rejoined: this is a cloud-only Microsoft Entra joined device; dsregcmd /join only performs hybrid join and cannot rejoin it. Use dsregcmd /forcerecovery with the user present.')
                }
                default {
                    $module.FailJson("state=rejoined: hybrid rejoin needs an Active Directory domain-joined device; this device is $joinType")
                }
            }
        }
    }

    if ($needsPreflight) {
        $pre = Invoke-M365JoinPreflight $before
        $module.Result.preflight = $pre
        if (-not $pre.passed) {
            $failedChecks = ($pre.checks.GetEnumerator() | Where-Object { -not $_.Value.ok } | ForEach-Object { "$($_.Key) ($($_.Value.detail))" }) -join '; '
            $module.FailJson("state=$($state): refusing dsregcmd /leave because a rejoin could not succeed: $failedChecks. Nothing was changed.")
        }
    }

    $module.Result.action = $action
    $expectedAfter = switch ($action) { 'leave' { if ($joinType -eq 'entra_joined') { 'workgroup' } else { 'domain_joined' } } 'none' { $joinType } default { 'hybrid_joined' } }
    $module.Diff.before = @{ join_type = $joinType }
    $module.Diff.after = @{ join_type = $expectedAfter }

    if ($action -eq 'none') {
        $module.Result.device_after = $module.Result.device_before
        if ($module.Result.join_result -eq 'pending') {
            $module.Result.msg = "the hybrid join submitted at $($submitted.submitted_at) is still awaiting reboot, sign-in or the Entra Connect sync; not repeated before $($submitted.expires_at) (pending_expiry)"
            $module.Result.pending = $true
        }
        $module.ExitJson()
    }

    $module.Result.changed = $true
    $module.Result.reboot_required = $true
    if ($module.CheckMode) {
        $module.Result.join_result = if ($action -eq 'leave') { 'left' } else { 'pending' }
        $module.Result.pending = $module.Result.join_result -eq 'pending'
        $module.ExitJson()
    }

    # Two runs leaving and joining at once (two controllers, an operator beside the role)
    # would interleave /leave and /join. The lock is released when this process ends, however
    # it ends; a holder that died leaves it abandoned, and the next run takes it over.
    $hostLock = Enter-M365HostLock -Name $ModuleName
    if ($null -eq $hostLock) {
        $module.Result.changed = $false
        $module.Result.reboot_required = $false
        $module.FailJson("another win_dsreg_join run is leaving or joining this device now; run again once it has finished. Nothing was changed.")
    }
    # Leftovers of an interrupted run (a SYSTEM task it could not unregister) go first.
    Invoke-M365StaleSweep -Module $module

    # --- act --------------------------------------------------------------------------------
    if ($action -in 'leave', 'rejoin') {
        $leave = Invoke-M365SystemDsreg -Arguments @('/leave')
        $module.Result.leave_output = Get-M365TailText $leave.Output
        if (-not $leave.Ok) {
            $now = Get-M365DeviceStatus
            $module.Result.device_after = Get-M365DeviceSummary $now
            Add-M365RunnerWarning -Module $module
            if ($now.JoinType -eq $joinType) {
                $module.Result.changed = $false
                $module.Result.reboot_required = $false
                $module.FailJson("dsregcmd /leave failed: $($leave.Message)")
            }
            # dsregcmd reported failure but the device did leave: the restart a leave needs is
            # owed all the same, and the next run must know it.
            Set-M365RebootMarker -Source $ModuleName -Reason 'dsregcmd /leave reported failure but the device left its join'
            if ($submitted -and $submitted.status -ne 'confirmed') { Remove-M365RebootMarkerKey -Path $HybridJoinKey }
            $module.Result.join_result = 'left'
            $module.FailJson("dsregcmd /leave reported failure ($($leave.Message)) but the device is now $($now.JoinType): it left its join; a restart is owed (marker written)$(if ($action -eq 'rejoin') { ' and the join was not attempted; rerun with state=joined' })")
        }
        # Recorded at once: if the run dies here, the next run still knows a reboot is owed.
        Set-M365RebootMarker -Source $ModuleName -Reason $(if ($action -eq 'rejoin') { 'dsregcmd /leave done; hybrid join to follow' } else { 'dsregcmd /leave' })
        # Whatever join was recorded before is void once the device has left.
        if ($submitted -and $submitted.status -ne 'confirmed') { Remove-M365RebootMarkerKey -Path $HybridJoinKey }
    }

    if ($action -in 'join', 'rejoin') {
        $join = Invoke-M365SystemDsreg -Arguments @('/join', '/debug')
        $module.Result.join_output = Get-M365TailText $join.Output
        if (-not $join.Ok) {
            $now = Get-M365DeviceStatus
            $module.Result.device_after = Get-M365DeviceSummary $now
            $module.Result.diagnostic_data = Get-M365DiagnosticData $now
            $module.Result.join_result = 'failed'
            Add-M365RunnerWarning -Module $module
            $module.FailJson("dsregcmd /join failed: $($join.Message)$(if ($action -eq 'rejoin') { '. The device has LEFT its hybrid join; the Automatic-Device-Join task retries at sign-in and hourly, or rerun with state=joined.' })")
        }
        $what = if ($action -eq 'rejoin') { 'dsregcmd /leave + /join submitted' } else { 'dsregcmd /join submitted' }
        Set-M365RebootMarker -Source $ModuleName -Reason $what
        Set-M365RepairRecord -Rung 'rejoin_hybrid' -Summary $what
        # Kept even when the wait below sees the join complete: the next run confirms and
        # clears it, so a run before the restart does not rejoin a device just rejoined.
        Set-M365SubmittedJoin -Action $action
        $module.Result.submitted_join = Get-M365SubmittedJoin -JoinType $joinType -ExpiryHours $module.Params.pending_expiry
        $module.Result.submitted_join.status = 'submitted'
    }

    # --- wait (bounded) and report -----------------------------------------------------------
    $after = Get-M365DeviceStatus
    if ($action -in 'join', 'rejoin') {
        $attempts = [math]::Floor($module.Params.join_wait / $module.Params.poll_interval)
        for ($i = 0; $i -lt $attempts -and $after.JoinType -ne 'hybrid_joined'; $i++) {
            Start-Sleep -Seconds $module.Params.poll_interval
            $after = Get-M365DeviceStatus
        }
        if ($after.JoinType -eq 'hybrid_joined') {
            $module.Result.join_result = 'joined'
        }
        else {
            $diag = Get-M365DiagnosticData $after
            $module.Result.diagnostic_data = $diag
            $failedTests = @()
            $clientError = $null
            if ($diag) {
                $failedTests = @($diag.GetEnumerator() | Where-Object { $_.Key -match 'Test$' -and "$($_.Value)" -match '^FAIL' } | ForEach-Object { "$($_.Key) = $($_.Value)" })
                $clientError = $diag['Client ErrorCode']
            }
            if ($failedTests.Count -gt 0 -or ($clientError -and $clientError -notin $ExpectedPendingCodes)) {
                $module.Result.join_result = 'failed'
                $module.Result.device_after = Get-M365DeviceSummary $after
                $module.FailJson("hybrid join did not complete and dsregcmd reports errors: $((@($failedTests) + @(if ($clientError) { "Client ErrorCode = $clientError" })) -join '; '). See diagnostic_data and https://www.microsoft.com/aadjerrors")
            }
            $module.Result.join_result = 'pending'
            $module.Result.msg = "hybrid join submitted; not complete after $($module.Params.join_wait)s. Waiting for Entra Connect to sync the device (userCertificate; default cycle 30 minutes) and the Automatic-Device-Join task (runs at sign-in and hourly). Reboot, then re-run the diagnosis to confirm."
        }
    }
    else {
        $module.Result.join_result = if ($after.JoinType -in 'domain_joined', 'workgroup', 'entra_registered') { 'left' } else { 'pending' }
    }
    $module.Result.device_after = Get-M365DeviceSummary $after
    $module.Result.pending = $module.Result.join_result -eq 'pending'
    Add-M365RunnerWarning -Module $module
    Exit-M365HostLock -Lock $hostLock
    $module.ExitJson()
}

Export-ModuleMember -Function Get-M365HybridJoinOption, Invoke-M365HybridJoin
