# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within this collection and may not remain
# stable to outside uses. Changes may be made in ANY release, even a bugfix release.

# One rung run inside another module's execution (win_activation_repair). Each rung's
# logic is a util function taking -Module: its own module passes its AnsibleModule, the
# repair module passes a rung context from here, which answers the same members the
# rung uses (Params, CheckMode, Result, Diff, Warn, FailJson, ExitJson). FailJson and
# ExitJson end the rung, not the process: they throw a signal that Invoke-M365RungContext
# turns into the rung's result, in the shape its own module would have returned.

Set-StrictMode -Version 2.0

$script:SignalKey = 'M365RungExit'

Function New-M365RungSignal {
    param([string]$Kind, [string]$Message)
    $signal = [System.Management.Automation.RuntimeException]::new($Message)
    $signal.Data[$script:SignalKey] = $Kind
    $signal
}

Function New-M365RungContext {
    <#
    .SYNOPSIS
    A stand-in for the AnsibleModule of one rung: Params are the rung's options (defaults
    applied), Result starts with the keys every rung returns (changed, reboot_required,
    users).
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)][System.Collections.IDictionary]$Params,
        [bool]$CheckMode = $false
    )
    $context = [pscustomobject]@{
        Params = $Params
        CheckMode = $CheckMode
        Result = @{ changed = $false; reboot_required = $false; users = @() }
        Diff = @{}
        Warnings = [System.Collections.Generic.List[string]]::new()
    }
    $context | Add-Member -MemberType ScriptMethod -Name Warn -Value {
        param([string]$Message)
        $this.Warnings.Add($Message)
    }
    $context | Add-Member -MemberType ScriptMethod -Name FailJson -Value {
        param([string]$Message, $ErrorRecord)
        $this.Result.failed = $true
        $this.Result.msg = $Message
        if ($null -ne $ErrorRecord) { $this.Result.exception = ($ErrorRecord | Out-String) }
        throw (New-M365RungSignal -Kind 'failed' -Message $Message)
    }
    $context | Add-Member -MemberType ScriptMethod -Name ExitJson -Value {
        throw (New-M365RungSignal -Kind 'exited' -Message 'rung finished')
    }
    $context
}

Function Get-M365RungSignal {
    # A script method's throw arrives wrapped (MethodInvocationException): look through.
    param([System.Exception]$Exception)
    for ($e = $Exception; $null -ne $e; $e = $e.InnerException) {
        if ($e.Data.Contains($script:SignalKey)) { return [string]$e.Data[$script:SignalKey] }
    }
    $null
}

Function Invoke-M365RungContext {
    <#
    .SYNOPSIS
    Runs one rung against a rung context and returns its result hashtable: what the rung's
    own module returns (failed and msg when it failed, warnings, and diff with DiffMode).
    An error the rung did not turn into FailJson is a failure of that rung with the error's
    message, as the module's own execution would report it.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)][object]$Context,
        [Parameter(Mandatory)][scriptblock]$ScriptBlock,
        [bool]$DiffMode = $false
    )
    try {
        $null = & $ScriptBlock $Context
    }
    catch {
        $kind = Get-M365RungSignal -Exception $_.Exception
        if ($null -eq $kind) {
            $Context.Result.failed = $true
            $Context.Result.msg = "unhandled error: $($_.Exception.Message)"
            $Context.Result.exception = ($_ | Out-String)
        }
    }
    $result = $Context.Result
    if ($Context.Warnings.Count -gt 0) { $result.warnings = @($Context.Warnings) }
    if ($DiffMode -and $Context.Diff.Count -gt 0) { $result.diff = $Context.Diff }
    $result
}

Function Merge-M365RungOption {
    <#
    .SYNOPSIS
    A rung's argument spec options over a shared fragment: the rung's own entries win, as
    Ansible.Basic merges a spec fragment.
    #>
    [CmdletBinding()]
    param (
        [System.Collections.IDictionary]$Fragment = @{},
        [Parameter(Mandatory)][System.Collections.IDictionary]$Options
    )
    $merged = @{}
    foreach ($k in $Fragment.Keys) { $merged[$k] = $Fragment[$k] }
    foreach ($k in $Options.Keys) { $merged[$k] = $Options[$k] }
    $merged
}

Export-ModuleMember -Function New-M365RungContext, Invoke-M365RungContext, Merge-M365RungOption
