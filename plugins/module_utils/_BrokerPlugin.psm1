# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within this collection and may not remain
# stable to outside uses. Changes may be made in ANY release, even a bugfix release.

# Rung 4 (reregister_broker_plugin). AppX registration is per user: Get-AppxPackage and
# Add-AppxPackage -Register act on the calling user's registration, so both run in a task
# inside the user's session. Re-registering when the package is healthy only restarts the
# broker under the user (-ForceApplicationShutdown), so it is done only when the package
# is missing or its status is not Ok, or when force is set.

#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._ScheduledTaskRunner
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._UserRung

Set-StrictMode -Version 2.0

Function Get-M365BrokerPluginOption {
    # The rung's own options: its module and win_activation_repair validate them.
    @{
        state = @{ type = 'str'; choices = @('registered'); default = 'registered' }
        force = @{ type = 'bool'; default = $false }
        timeout = @{ type = 'int'; default = 300 }  # overrides the shared 120: AppX registration is slow
    }
}

# Runs in the user's session (Windows PowerShell 5.1). Helpers are defined only when
# absent so tests can stand in for the AppX cmdlets and still run the decision logic.
$brokerScript = {
    param([bool]$Force, [bool]$Apply)
    $ErrorActionPreference = 'Stop'
    $packageName = 'Microsoft.AAD.BrokerPlugin'
    if (-not (Get-Command -Name Get-M365BrokerPackage -ErrorAction SilentlyContinue)) {
        function Get-M365BrokerPackage { Get-AppxPackage -Name 'Microsoft.AAD.BrokerPlugin' | Select-Object -First 1 }
    }
    if (-not (Get-Command -Name Register-M365BrokerPackage -ErrorAction SilentlyContinue)) {
        function Register-M365BrokerPackage([string]$ManifestPath) {
            Add-AppxPackage -Register $ManifestPath -DisableDevelopmentMode -ForceApplicationShutdown
        }
    }
    if (-not (Get-Command -Name Get-M365SystemAppsManifest -ErrorAction SilentlyContinue)) {
        function Get-M365SystemAppsManifest {
            Join-Path -Path $env:windir -ChildPath 'SystemApps\Microsoft.AAD.BrokerPlugin_cw5n1h2txyewy\AppxManifest.xml'
        }
    }

    function Get-M365BrokerState {
        $p = Get-M365BrokerPackage
        if ($null -eq $p) { return @{ installed = $false; status = $null; version = $null; install_location = $null; manifest_present = $false } }
        $manifest = if ($p.InstallLocation) { Join-Path -Path $p.InstallLocation -ChildPath 'AppxManifest.xml' } else { $null }
        @{
            installed = $true
            status = "$($p.Status)"
            version = "$($p.Version)"
            install_location = "$($p.InstallLocation)"
            manifest_present = [bool]($manifest -and (Test-Path -LiteralPath $manifest))
        }
    }

    $before = Get-M365BrokerState
    $healthy = $before.installed -and $before.status -eq 'Ok' -and $before.manifest_present
    $out = @{ before = $before; after = $before; action = 'none'; reason = ''; error = $null }
    if ($healthy -and -not $Force) { return $out }
    $out.reason = if ($Force -and $healthy) { 'force' } elseif (-not $before.installed) { 'missing' } elseif (-not $before.manifest_present) { 'manifest missing' } else { "status $($before.status)" }
    $out.action = 'register'
    $manifestPath = if ($before.manifest_present) { Join-Path -Path $before.install_location -ChildPath 'AppxManifest.xml' } else { Get-M365SystemAppsManifest }
    $out.manifest = $manifestPath
    if (-not $Apply) { return $out }
    try {
        Register-M365BrokerPackage -ManifestPath $manifestPath
    }
    catch {
        $out.error = "Add-AppxPackage -Register $($manifestPath): $($_.Exception.Message)"
        return $out
    }
    $out.after = Get-M365BrokerState
    if (-not ($out.after.installed -and $out.after.status -eq 'Ok')) {
        $out.error = "after re-registration $packageName is $(if ($out.after.installed) { "in status $($out.after.status)" } else { 'still missing' })"
    }
    $out
}

Function Invoke-M365BrokerPluginRegistration {
    <#
    .SYNOPSIS
    Rung 4 (reregister_broker_plugin) for the users of -Module (an AnsibleModule or a rung
    context, _RungContext.psm1); ends with its ExitJson or FailJson.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][object]$Module)

    # --- per user ----------------------------------------------------------------------------
    $results = Invoke-M365UserRung -Module $module -ScriptBlock $brokerScript -DiffKey 'broker_plugin' `
        -Parameters @{ Force = $module.Params.force; Apply = (-not $module.CheckMode) } `
        -Fields ([ordered]@{ action = 'none'; reason = ''; package = $null }) -Complete {
        param($entry, $o)
        $entry.action = [string](Get-M365OutputProperty $o 'action' 'none')
        $entry.reason = [string](Get-M365OutputProperty $o 'reason' '')
        $a = Get-M365OutputProperty $o 'after'
        $entry.package = $a
        $err = Get-M365OutputProperty $o 'error'
        if ($err) {
            $entry.status = 'failed'
            $entry.message = $err
        }
        elseif ($entry.action -eq 'register') {
            $entry.status = 'changed'
            $entry.message = "re-registered ($($entry.reason))"
        }
        else {
            $entry.status = 'unchanged'
        }
        @{
            before = Get-M365OutputProperty $o 'before'
            after = if ($module.CheckMode -and $entry.action -eq 'register') { @{ installed = $true; status = 'Ok' } } else { $a }
        }
    }
    Exit-M365UserRung -Module $module -Result $results -Action 'BrokerPlugin re-registration' -Rung 'reregister_broker_plugin'
}

Export-ModuleMember -Function Get-M365BrokerPluginOption, Invoke-M365BrokerPluginRegistration
