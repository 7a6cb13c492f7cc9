# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within this collection and may not remain
# stable to outside uses. Changes may be made in ANY release, even a bugfix release.

# win_dsreg_join's Windows adapters: the machine-wide lock and the pre-join checks
# (domain controller, service connection point, Automatic-Device-Join task), one Windows
# call each so Pester mocks them.

Set-StrictMode -Version 2.0

Function Enter-M365HostLock {
    <#
    .SYNOPSIS
    Takes a machine-wide named lock without waiting; returns the held mutex, or $null when
    another process holds it. A lock whose holder died (connection dropped, process
    killed) is abandoned and taken over: nothing stays locked after a crash.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][ValidatePattern('^[A-Za-z0-9_.-]{1,100}$')][string]$Name)
    $mutex = New-Object -TypeName System.Threading.Mutex -ArgumentList $false, "Global\m365ops-$Name"
    $held = $false
    try { $held = $mutex.WaitOne(0) }
    catch [System.Threading.AbandonedMutexException] { $held = $true }
    if ($held) { return $mutex }
    $mutex.Dispose()
    $null
}

Function Exit-M365HostLock {
    [CmdletBinding()]
    param ([AllowNull()][object]$Lock)
    if ($null -eq $Lock) { return }
    try { $Lock.ReleaseMutex() } catch [System.ApplicationException] { }
    $Lock.Dispose()
}

Function Test-M365DomainController {
    <#
    .SYNOPSIS
    Locates a domain controller of the device's domain (nltest /dsgetdc), as the join
    task's own AD connectivity pre-check needs.
    #>
    [CmdletBinding()]
    param ([Parameter(Mandatory)][string]$DomainName)
    $out = & nltest.exe "/dsgetdc:$DomainName" 2>&1 | Out-String
    [pscustomobject]@{ Ok = ($LASTEXITCODE -eq 0); Detail = $out.Trim() }
}

Function Get-M365ServiceConnectionPoint {
    <#
    .SYNOPSIS
    Finds the device registration SCP: the client-side override (HKLM\...\CDJ\AAD,
    targeted deployments) or the AD object under the configuration naming context.
    #>
    [CmdletBinding()]
    param ()
    $reg = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\CDJ\AAD'
    if (Test-Path -LiteralPath $reg) {
        $p = Get-ItemProperty -LiteralPath $reg
        $tenantId = if ($p.PSObject.Properties['TenantId']) { $p.TenantId } else { $null }
        if ($tenantId) {
            $tenantName = if ($p.PSObject.Properties['TenantName']) { $p.TenantName } else { $null }
            return [pscustomobject]@{ Found = $true; Source = 'registry'; TenantId = $tenantId; TenantName = $tenantName; Detail = $reg }
        }
    }
    try {
        $configNc = ([adsi]'LDAP://RootDSE').configurationNamingContext
        $path = "LDAP://CN=62a0ff2e-97b9-4513-943f-0d221bd30080,CN=Device Registration Configuration,CN=Services,$configNc"
        $keywords = @(([adsi]$path).Keywords)
        $id = $keywords | Where-Object { $_ -like 'azureADId:*' } | Select-Object -First 1
        $name = $keywords | Where-Object { $_ -like 'azureADName:*' } | Select-Object -First 1
        if ($id) {
            return [pscustomobject]@{ Found = $true; Source = 'ad'; TenantId = ($id -replace '^azureADId:', ''); TenantName = ($name -replace '^azureADName:', ''); Detail = $path }
        }
        return [pscustomobject]@{ Found = $false; Source = 'ad'; TenantId = $null; TenantName = $null; Detail = "no azureADId keyword on $path" }
    }
    catch {
        return [pscustomobject]@{ Found = $false; Source = 'ad'; TenantId = $null; TenantName = $null; Detail = "SCP lookup failed: $($_.Exception.Message)" }
    }
}

Function Get-M365DeviceJoinTask {
    <#
    .SYNOPSIS
    State of the \Microsoft\Windows\Workplace Join\Automatic-Device-Join task.
    #>
    [CmdletBinding()]
    param ()
    $task = Get-ScheduledTask -TaskPath '\Microsoft\Windows\Workplace Join\' -TaskName 'Automatic-Device-Join' -ErrorAction SilentlyContinue
    if ($null -eq $task) { return [pscustomobject]@{ Found = $false; State = $null } }
    [pscustomobject]@{ Found = $true; State = [string]$task.State }
}

Export-ModuleMember -Function @(
    'Enter-M365HostLock',
    'Exit-M365HostLock',
    'Test-M365DomainController',
    'Get-M365ServiceConnectionPoint',
    'Get-M365DeviceJoinTask'
)
