#!powershell

# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._UserProfile
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._ScheduledTaskRunner
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._RebootMarker
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._Dsreg
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._CredentialPattern
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._UserSession
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._NetworkProbe

# Everything the triage rules need from one host in one module execution: device-context
# sources read here, per-user sources in one user-context task per user. Read-only, so it
# runs the same in check mode. Each source is collected on its own: one that fails (or
# does not exist, as under pwsh on Linux) is listed in collection_errors and the rest is
# still returned, because a partial picture is still worth triaging.

$script:AadChannel = 'Microsoft-Windows-AAD/Operational'
$script:AadEventIds = @(1098, 1097, 1104, 1081)
$script:BrokerPackage = 'Microsoft.AAD.BrokerPlugin'
$script:TokenBrokerDirs = [ordered]@{
    aad_broker_plugin = 'AppData\Local\Packages\Microsoft.AAD.BrokerPlugin_cw5n1h2txyewy\AC\TokenBroker\Accounts'
    cloud_experience_host = 'AppData\Local\Packages\Microsoft.Windows.CloudExperienceHost_cw5n1h2txyewy\AC\TokenBroker\Accounts'
}
$script:IdentityValues = @('EnableADAL', 'DisableAADWAM', 'DisableADALatopWAMOverride')
# Click-to-Run CDN folder ids of the update channels (CDNBaseUrl / UpdateChannel).
$script:OfficeChannels = @{
    '492350f6-3a01-4f97-b9c0-c7c6ddf67d60' = 'Current'
    '64256afe-f5d9-4f86-8936-8840a6a4f5be' = 'CurrentPreview'
    '55336b82-a18d-4dd6-b5f6-9e5095c314a6' = 'MonthlyEnterprise'
    '7ffbc6bf-bc32-4f92-8982-f9dd17fd3114' = 'SemiAnnual'
    'b8f9b850-328d-4355-9145-c59439a0c4cf' = 'SemiAnnualPreview'
    '5440fd1f-7ecb-4221-8110-145efaa6372f' = 'BetaChannel'
}
# LicensingNext per-product values, as Microsoft's vNextDiag.ps1 reads them.
$script:LicensingModes = @{ 2 = 'vNext'; 3 = 'Device' }
$script:EventLevels = @{ 1 = 'Critical'; 2 = 'Error'; 3 = 'Warning'; 4 = 'Information'; 5 = 'Verbose' }
# Where win_dsreg_join records a submitted hybrid join (docs/rungs/win_dsreg_join.md).
$script:HybridJoinKey = 'HKLM:\SOFTWARE\m365ops\activation\HybridJoin'
# The Entra endpoints the AAD BrokerPlugin and device registration need, per cloud
# instance (Microsoft's hybrid join and national cloud documentation). The public list is
# the default of network_probe.endpoints; a device whose tenant lives in a national cloud
# (its dsregcmd Tenant Details URLs) is probed with that cloud's names instead.
$script:ProbeClouds = [ordered]@{
    public = @('login.microsoftonline.com', 'device.login.microsoftonline.com', 'enterpriseregistration.windows.net')
    usgov = @('login.microsoftonline.us', 'device.login.microsoftonline.us', 'enterpriseregistration.microsoftonline.us', 'enterpriseregistration.windows.net')
    china = @('login.partner.microsoftonline.cn', 'login.chinacloudapi.cn', 'enterpriseregistration.partner.microsoftonline.cn')
}
# SHA-1 thumbprints of the roots Azure and Entra endpoints chain to (Microsoft's "Azure
# Certificate Authority details"): DigiCert Global Root CA, G2 and G3, Baltimore CyberTrust
# Root, Microsoft RSA and ECC Root Certificate Authority 2017, DigiCert TLS RSA 4096 and
# ECC P384 Root G5 (21Vianet), Entrust Root Certification Authority G2 (US Government).
$script:ProbeTrustedRoots = @(
    'A8985D3A65E5E5C4B2D7D66D40C6DD2FB19C5436', 'DF3C24F9BFD666761B268073FE06D1CC8D4F82A4',
    '7E04DE896A3E666D00E687D33FFAD93BE83D349E', 'D4DE20D05E66FC53FE1A50882C78DB2852CAE474',
    '73A5E64A3BFF8316FF0EDCCC618A906E4EAE4D74', '999A64C37FF47D9FAB95F14769891460EEC4C3C5',
    'A78849DC5D7C758C8CDE399856B3AAD0B2A57135', '17F3DE5E9F0F19E98EF61F32266E20C407AE30EE',
    '8CF427FD790C3AD166068DE81E57EFBB932272D4'
)

# ---------------------------------------------------------------------------------------
# Windows adapters: one Windows call each, so Pester mocks them and the logic below runs
# under pwsh anywhere.
# ---------------------------------------------------------------------------------------
Function Assert-M365Registry {
    if (-not (Get-PSProvider -PSProvider Registry -ErrorAction SilentlyContinue)) {
        throw [System.PlatformNotSupportedException]::new('the Windows registry is not available on this host')
    }
}

Function Get-M365AadEvent {
    param([int]$Days, [int]$MaxEvents)
    $filter = @{ LogName = $script:AadChannel; Id = $script:AadEventIds; StartTime = (Get-Date).AddDays(-$Days) }
    try {
        Get-WinEvent -FilterHashtable $filter -MaxEvents $MaxEvents -ErrorAction Stop
    }
    catch {
        # "No events were found that match the specified selection criteria" is an
        # answer, not a failure; its id is stable where the message is localised.
        if ($_.FullyQualifiedErrorId -like 'NoMatchingEventsFound*') { return }
        throw
    }
}

Function Get-M365RegistryValue {
    <# .SYNOPSIS Values of one registry key as a hashtable; $null when the key does not exist. #>
    param([Parameter(Mandatory)][string]$Path)
    Assert-M365Registry
    if (-not (Test-Path -LiteralPath $Path)) { return $null }
    $key = Get-Item -LiteralPath $Path -ErrorAction Stop
    $values = @{}
    foreach ($name in $key.GetValueNames()) {
        if ($name -ne '') { $values[$name] = $key.GetValue($name) }
    }
    $values
}

Function Get-M365BrokerPackage {
    Get-AppxPackage -AllUsers -Name $script:BrokerPackage -ErrorAction Stop
}

Function Get-M365File {
    <#
    .SYNOPSIS
    Files under a profile folder, walked without following links (the admin reads what a
    user owns: see Get-M365SafeTreeFile); nothing when the folder does not exist. Every
    link met is added to Refused as @{ path; reason }.
    #>
    param([Parameter(Mandatory)][string]$Path, [Parameter(Mandatory)][string]$Base, [System.Collections.IList]$Refused)
    Get-M365SafeTreeFile -Root $Path -Base $Base -Refused $Refused
}

Function Read-M365LicenseFile {
    param([Parameter(Mandatory)][string]$Path, [Parameter(Mandatory)][string]$Base)
    # Checked again right before the open: the user may have swapped a folder for a link.
    Assert-M365NoLink -Path $Path -Root $Base
    # Office writes its license files as UTF-16 LE JSON.
    [System.IO.File]::ReadAllText($Path, [System.Text.Encoding]::Unicode)
}

Function Add-M365Refused {
    <#
    .SYNOPSIS
    Lists the links a profile read refused as collection errors naming the path, so the
    facts, the triage entry and the reports say what was not read and why.
    #>
    param([System.Collections.IList]$Errors, [string]$Source, [System.Collections.IList]$Refused)
    foreach ($r in @($Refused)) {
        $Errors.Add(@{ source = $Source; message = "$($r.path): $($r.reason)"; path = [string]$r.path; refused = $true }) | Out-Null
    }
}

Function Get-M365UtcNow { [DateTime]::UtcNow }

Function Get-M365HostName {
    if ($env:COMPUTERNAME) { $env:COMPUTERNAME } else { [System.Net.Dns]::GetHostName() }
}

# ---------------------------------------------------------------------------------------
# Gathering logic
# ---------------------------------------------------------------------------------------
Function ConvertTo-M365IsoTime {
    param($Value)
    if ($null -eq $Value -or "$Value" -eq '') { return $null }
    if ($Value -is [DateTime]) {
        $dt = if ($Value.Kind -eq [DateTimeKind]::Unspecified) { [DateTime]::SpecifyKind($Value, [DateTimeKind]::Local) } else { $Value }
    }
    else {
        $styles = [System.Globalization.DateTimeStyles]::AdjustToUniversal -bor [System.Globalization.DateTimeStyles]::AssumeUniversal
        $parsed = [DateTime]::MinValue
        if (-not [DateTime]::TryParse([string]$Value, [System.Globalization.CultureInfo]::InvariantCulture, $styles, [ref]$parsed)) {
            return $null
        }
        $dt = [DateTime]::SpecifyKind($parsed, [DateTimeKind]::Utc)
    }
    $dt.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
}

Function Add-M365Error {
    param([System.Collections.IList]$Errors, [string]$Source, [string]$Message)
    $Errors.Add(@{ source = $Source; message = $Message }) | Out-Null
}

Function Invoke-M365Source {
    <# .SYNOPSIS Run one source; on failure record {source, message} and return $null. #>
    param([string]$Name, [System.Collections.IList]$Errors, [scriptblock]$ScriptBlock)
    try {
        & $ScriptBlock
    }
    catch {
        Add-M365Error -Errors $Errors -Source $Name -Message $_.Exception.Message
        $null
    }
}

Function Test-M365DsregText {
    <# .SYNOPSIS Whether text looks like dsregcmd /status output (it always has a Device State box). #>
    param([string]$Text)
    [bool]($Text -match '(?m)^\s*(AzureAdJoined|DomainJoined|WorkplaceJoined|EnterpriseJoined)\s*:')
}

Function Get-M365DeviceDsreg {
    param([System.Collections.IList]$Errors)
    $r = Invoke-M365Source -Name 'dsregcmd_status' -Errors $Errors -ScriptBlock { Invoke-M365Dsregcmd -ArgumentList '/status' }
    if ($null -eq $r) { return $null }
    $text = [string]$r.Output
    if ([string]::IsNullOrWhiteSpace($text)) {
        Add-M365Error -Errors $Errors -Source 'dsregcmd_status' -Message "dsregcmd /status returned no output (exit code $($r.ExitCode))"
        return $null
    }
    if (-not (Test-M365DsregText -Text $text)) {
        # Returned anyway: the raw text is evidence of what went wrong on the host.
        Add-M365Error -Errors $Errors -Source 'dsregcmd_status' -Message "dsregcmd /status output not recognised (exit code $($r.ExitCode)): no Device State values"
    }
    $text
}

Function ConvertTo-M365EventRecord {
    <# .SYNOPSIS An EventLogRecord -> the export record {Id, LevelDisplayName, TimeCreated, Message}. #>
    param($EventRecord)
    $level = $null
    if ($EventRecord.PSObject.Properties['Level'] -and $null -ne $EventRecord.Level) {
        $level = $script:EventLevels[[int]$EventRecord.Level]
    }
    # LevelDisplayName is localised; the numeric level is not.
    if (-not $level -and $EventRecord.PSObject.Properties['LevelDisplayName']) { $level = [string]$EventRecord.LevelDisplayName }
    $message = if ($EventRecord.PSObject.Properties['Message']) { [string]$EventRecord.Message } else { '' }
    if ([string]::IsNullOrWhiteSpace($message) -and $EventRecord.PSObject.Properties['Properties'] -and $EventRecord.Properties) {
        # Without the provider's message DLL Message is empty; the insertion strings still
        # carry the error code the rules match on.
        $message = (@($EventRecord.Properties | ForEach-Object { [string]$_.Value }) -join '; ')
    }
    [ordered]@{
        Id = [int]$EventRecord.Id
        LevelDisplayName = $level
        TimeCreated = ConvertTo-M365IsoTime -Value $EventRecord.TimeCreated
        Message = $message
    }
}

Function Get-M365AadEvents {
    param([int]$Days, [int]$MaxEvents, [System.Collections.IList]$Errors)
    # The leading comma keeps an empty or one-item answer an array through the pipeline:
    # no events is an answer, only $null means the log could not be read.
    $events = Invoke-M365Source -Name 'aad_events' -Errors $Errors -ScriptBlock { , @(Get-M365AadEvent -Days $Days -MaxEvents $MaxEvents) }
    if ($null -eq $events) { return $null }
    , @($events | ForEach-Object { ConvertTo-M365EventRecord -EventRecord $_ })
}

Function Get-M365OsInfo {
    $v = Get-M365RegistryValue -Path 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
    if ($null -eq $v) { throw 'HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion not found' }
    $build = [int]$v['CurrentBuildNumber']
    $major = if ($v.ContainsKey('CurrentMajorVersionNumber')) { [int]$v['CurrentMajorVersionNumber'] } else { 10 }
    $minor = if ($v.ContainsKey('CurrentMinorVersionNumber')) { [int]$v['CurrentMinorVersionNumber'] } else { 0 }
    [ordered]@{
        build = $build
        version = "$major.$minor.$build"
        ubr = if ($v.ContainsKey('UBR')) { [int]$v['UBR'] } else { $null }
        display_version = if ($v.ContainsKey('DisplayVersion')) { [string]$v['DisplayVersion'] } else { $null }
        product_name = if ($v.ContainsKey('ProductName')) { [string]$v['ProductName'] } else { $null }
    }
}

Function Get-M365OfficeChannel {
    param([string]$UpdateChannel, [string]$CdnBaseUrl)
    foreach ($source in @($UpdateChannel, $CdnBaseUrl)) {
        if (-not $source) { continue }
        if ($source -match '([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})') {
            $name = $script:OfficeChannels[$Matches[1].ToLowerInvariant()]
            if ($name) { return $name }
            return "unknown ($($Matches[1].ToLowerInvariant()))"
        }
    }
    $null
}

Function Get-M365OfficeInfo {
    $c = Get-M365RegistryValue -Path 'HKLM:\SOFTWARE\Microsoft\Office\ClickToRun\Configuration'
    if ($null -eq $c -or -not $c['VersionToReport']) {
        return [ordered]@{ installed = $false; version = $null; channel = $null; shared_computer_licensing = $false }
    }
    # SCA can be switched on by the C2R configuration or by policy; either makes it active.
    $policy = Get-M365RegistryValue -Path 'HKLM:\SOFTWARE\Policies\Microsoft\Office\16.0\Common\Licensing'
    $sca = ("$($c['SharedComputerLicensing'])" -eq '1') -or ($policy -and "$($policy['SharedComputerLicensing'])" -eq '1')
    [ordered]@{
        installed = $true
        version = [string]$c['VersionToReport']
        channel = Get-M365OfficeChannel -UpdateChannel ([string]$c['UpdateChannel']) -CdnBaseUrl ([string]$c['CDNBaseUrl'])
        shared_computer_licensing = [bool]$sca
        platform = if ($c['Platform']) { [string]$c['Platform'] } else { $null }
        product_release_ids = if ($c['ProductReleaseIds']) { @(([string]$c['ProductReleaseIds']) -split ',' | Where-Object { $_ }) } else { @() }
    }
}

Function ConvertFrom-M365WinHttpSetting {
    <#
    .SYNOPSIS
    Decode the WinHttpSettings blob (HKLM ...\Internet Settings\Connections) that
    `netsh winhttp set proxy` writes; netsh's own output is localised, the blob is not.
    .DESCRIPTION
    Little-endian DWORDs: version, counter, flags (bit 0x2 = named proxy), proxy length,
    proxy (ASCII), bypass length, bypass. Direct access is 18000000 00000000 01000000 ...
    #>
    param([byte[]]$Blob)
    $direct = [ordered]@{ winhttp_proxy = 'Direct access (no proxy server).'; proxy_server = $null; bypass_list = $null }
    # The layout is shared with the users' WinINET blob: one parser, _NetworkProbe.psm1's.
    $setting = ConvertFrom-M365ProxySettingBlob -Blob $Blob
    if (($setting.flags -band 0x2) -eq 0 -or -not $setting.proxy) { return $direct }
    $proxy = $setting.proxy
    $bypass = $setting.bypass
    $text = "Proxy Server(s) : $proxy"
    if ($bypass) { $text += "; Bypass List : $bypass" }
    [ordered]@{ winhttp_proxy = $text; proxy_server = $proxy; bypass_list = $bypass }
}

Function Get-M365NetworkInfo {
    $v = Get-M365RegistryValue -Path 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections'
    $blob = if ($v -and $v.ContainsKey('WinHttpSettings')) { [byte[]]$v['WinHttpSettings'] } else { $null }
    ConvertFrom-M365WinHttpSetting -Blob $blob
}

Function Get-M365PendingReboot {
    Assert-M365Registry
    $marker = Get-M365RebootMarker
    $windows = @(Get-M365WindowsPendingReboot)
    $reasons = [System.Collections.Generic.List[string]]::new()
    foreach ($source in @($marker.Keys | Sort-Object)) { $reasons.Add("marker $($source): $($marker[$source])") }
    foreach ($r in $windows) { $reasons.Add($r) }
    [ordered]@{ marker = ($marker.Count -gt 0); windows = ($windows.Count -gt 0); reasons = @($reasons) }
}

Function Get-M365Repairs {
    <#
    .SYNOPSIS
    rung -> {at, summary}: the last time each rung changed this host (the Repairs record
    the rung modules keep through RebootMarker), so triage can tell AAD errors logged
    before a repair from errors logged after it.
    #>
    Assert-M365Registry
    $records = Get-M365RepairRecord
    $out = [ordered]@{}
    foreach ($rung in @($records.Keys | Sort-Object)) { $out[$rung] = $records[$rung] }
    $out
}

Function Get-M365LastBoot {
    # A repair that needs a restart is complete only from the next boot on.
    $boot = ConvertTo-M365IsoTime -Value (Get-M365LastBootUpTime)
    if (-not $boot) { throw 'Win32_OperatingSystem returned no LastBootUpTime' }
    $boot
}

Function Get-M365HybridJoin {
    <#
    .SYNOPSIS
    The hybrid join win_dsreg_join submitted and has not seen complete yet:
    {action, submitted_at, submitted_by}, or $null when none is recorded.
    .DESCRIPTION
    win_dsreg_join keeps this record (not the reboot marker, which the reboot step clears)
    until dsregcmd shows the device hybrid joined. The rules read it so a join still
    awaiting the Entra Connect sync is not planned again. Read through RebootMarker's value
    adapter, as win_dsreg_join writes it.
    #>
    Assert-M365Registry
    $values = Get-M365RebootMarkerValue -Path $script:HybridJoinKey
    # win_dsreg_join writes SubmittedAt last: a record without it was never completed.
    if ($null -eq $values -or -not $values.ContainsKey('SubmittedAt')) { return $null }
    $get = { param($n) if ($values.ContainsKey($n) -and "$($values[$n])" -ne '') { [string]$values[$n] } else { $null } }
    [ordered]@{
        action = & $get 'Action'
        submitted_at = & $get 'SubmittedAt'
        submitted_by = & $get 'SubmittedBy'
    }
}

Function Get-M365BrokerPluginInfo {
    $packages = @(Get-M365BrokerPackage)
    if ($packages.Count -eq 0) {
        return [ordered]@{ installed = $false; version = $null; status = $null; registered_sids = @() }
    }
    $pkg = $packages | Sort-Object -Property { [version]"$($_.Version)" } -Descending | Select-Object -First 1
    $sids = @()
    if ($pkg.PSObject.Properties['PackageUserInformation'] -and $pkg.PackageUserInformation) {
        # -AllUsers lists who has the package staged or installed; only Installed counts.
        $sids = @($pkg.PackageUserInformation | Where-Object { "$($_.InstallState)" -eq 'Installed' } |
                ForEach-Object { if ($_.UserSecurityId.PSObject.Properties['Sid']) { [string]$_.UserSecurityId.Sid } else { [string]$_.UserSecurityId } })
    }
    [ordered]@{
        installed = $true
        version = [string]$pkg.Version
        status = [string]$pkg.Status
        registered_sids = $sids
    }
}

Function ConvertFrom-M365LicenseFile {
    <#
    .SYNOPSIS
    One vNext license file -> {file, product, license_type, status, not_after, expires_on,
    tenant_id, reduced_functionality}.
    .DESCRIPTION
    The file is JSON whose "License" is base64 of a JSON license: ProductReleaseId,
    LicenseType, Status, ExpiresOn and MetaData {NotBefore, NotAfter, RenewAfter,
    TenantId}. Office enters Reduced Functionality Mode once now > MetaData.NotAfter (the
    rule Microsoft's vNextDiag.ps1 applies).
    #>
    param([string]$Text, [string]$File, [DateTime]$Now)
    $outer = $Text.TrimStart([char]0xFEFF) | ConvertFrom-Json -ErrorAction Stop
    if (-not $outer.PSObject.Properties['License'] -or -not $outer.License) { throw "no License field" }
    $inner = [System.Text.Encoding]::UTF8.GetString([Convert]::FromBase64String([string]$outer.License)) | ConvertFrom-Json -ErrorAction Stop
    $meta = $null
    foreach ($name in 'MetaData', 'Metadata') {
        if ($inner.PSObject.Properties[$name]) { $meta = $inner.$name; break }
    }
    $notAfter = if ($meta -and $meta.PSObject.Properties['NotAfter']) { ConvertTo-M365IsoTime -Value $meta.NotAfter } else { $null }
    $rfm = $false
    if ($notAfter) {
        $rfm = $Now.ToUniversalTime() -gt [DateTime]::Parse($notAfter, [System.Globalization.CultureInfo]::InvariantCulture, [System.Globalization.DateTimeStyles]::AdjustToUniversal)
    }
    $prop = { param($o, $n) if ($o -and $o.PSObject.Properties[$n]) { $o.$n } else { $null } }
    [ordered]@{
        file = $File
        product = [string](& $prop $inner 'ProductReleaseId')
        license_type = [string](& $prop $inner 'LicenseType')
        status = [string](& $prop $inner 'Status')
        not_after = $notAfter
        expires_on = ConvertTo-M365IsoTime -Value (& $prop $inner 'ExpiresOn')
        tenant_id = [string](& $prop $meta 'TenantId')
        reduced_functionality = [bool]$rfm
    }
}

Function Get-M365ProfileLicensing {
    param($UserProfile, [DateTime]$Now, [System.Collections.IList]$Errors)
    $modes = [ordered]@{}
    if ($UserProfile.HiveLoaded) {
        $next = Get-M365RegistryValue -Path "Registry::HKEY_USERS\$($UserProfile.Sid)\Software\Microsoft\Office\16.0\Common\Licensing\LicensingNext"
        if ($next) {
            foreach ($name in @($next.Keys | Sort-Object)) {
                # Product ids end in retail/volume; other values (e.g. timestamps) are not modes.
                if ($name -notmatch '(retail|volume)$') { continue }
                $value = 0
                $mode = if ([int]::TryParse("$($next[$name])", [ref]$value) -and $script:LicensingModes.ContainsKey($value)) { $script:LicensingModes[$value] } else { 'Legacy' }
                $modes[$name] = $mode
            }
        }
    }
    $licenses = [System.Collections.Generic.List[object]]::new()
    $dir = Join-M365ProfilePath -UserProfile $UserProfile -ChildPath 'AppData\Local\Microsoft\Office\Licenses'
    $refused = [System.Collections.Generic.List[object]]::new()
    $files = @(Get-M365File -Path $dir -Base $UserProfile.ProfilePath -Refused $refused)
    foreach ($f in $files) {
        try {
            $licenses.Add((ConvertFrom-M365LicenseFile -Text (Read-M365LicenseFile -Path $f.FullName -Base $UserProfile.ProfilePath) -File $f.FullName -Now $Now))
        }
        catch [System.Security.SecurityException] {
            $refused.Add([ordered]@{ path = $f.FullName; reason = $_.Exception.Message })
        }
        catch {
            Add-M365Error -Errors $Errors -Source "licensing:$($UserProfile.Sid)" -Message "$($f.FullName): not a readable vNext license ($($_.Exception.Message))"
        }
    }
    Add-M365Refused -Errors $Errors -Source "licensing:$($UserProfile.Sid)" -Refused $refused
    $distinct = @($modes.Values | Select-Object -Unique)
    $mode = if ($distinct.Count -eq 1) { $distinct[0] } elseif ($distinct.Count -gt 1) { 'Mixed' } elseif ($licenses.Count -gt 0) { 'vNext' } else { $null }
    [ordered]@{ mode = $mode; modes = $modes; licenses = @($licenses) }
}

Function Get-M365IdentityPolicy {
    <#
    .SYNOPSIS
    EnableADAL / DisableAADWAM / DisableADALatopWAMOverride of a loaded hive, policy key
    first (it wins when both are set); $null where unset. $null overall when the hive is
    not loaded: unknown, not "unset".
    #>
    param($UserProfile)
    if (-not $UserProfile.HiveLoaded) { return $null }
    $root = "Registry::HKEY_USERS\$($UserProfile.Sid)\Software"
    $policy = Get-M365RegistryValue -Path "$root\Policies\Microsoft\Office\16.0\Common\Identity"
    $plain = Get-M365RegistryValue -Path "$root\Microsoft\Office\16.0\Common\Identity"
    $result = [ordered]@{}
    foreach ($name in $script:IdentityValues) {
        $value = $null
        foreach ($set in @($policy, $plain)) {
            if ($set -and $set.ContainsKey($name)) { $value = [int]$set[$name]; break }
        }
        $result[$name] = $value
    }
    $result
}

Function Get-M365TokenBrokerStat {
    param($UserProfile, [System.Collections.IList]$Errors)
    $result = [ordered]@{}
    $refused = [System.Collections.Generic.List[object]]::new()
    foreach ($key in $script:TokenBrokerDirs.Keys) {
        $dir = Join-M365ProfilePath -UserProfile $UserProfile -ChildPath $script:TokenBrokerDirs[$key]
        $files = @(Get-M365File -Path $dir -Base $UserProfile.ProfilePath -Refused $refused)
        $newest = $null
        $bytes = [long]0
        foreach ($f in $files) {
            $bytes += [long]$f.Length
            if ($null -eq $newest -or $f.LastWriteTimeUtc -gt $newest) { $newest = $f.LastWriteTimeUtc }
        }
        $result[$key] = [ordered]@{
            files = $files.Count
            bytes = $bytes
            newest = if ($newest) { ConvertTo-M365IsoTime -Value ([DateTime]::SpecifyKind($newest, [DateTimeKind]::Utc)) } else { $null }
        }
    }
    if ($null -ne $Errors) { Add-M365Refused -Errors $Errors -Source "token_broker:$($UserProfile.Sid)" -Refused $refused }
    $result
}

Function Get-M365ProfileFact {
    param($UserProfile, [DateTime]$Now, [System.Collections.IList]$Errors)
    $sid = $UserProfile.Sid
    $entry = [ordered]@{
        sid = $sid
        user = $UserProfile.UserName
        path = $UserProfile.ProfilePath
        hive_loaded = [bool]$UserProfile.HiveLoaded
        logged_on = [bool]$UserProfile.LoggedOn
    }
    $entry.licensing = Invoke-M365Source -Name "licensing:$sid" -Errors $Errors -ScriptBlock { Get-M365ProfileLicensing -UserProfile $UserProfile -Now $Now -Errors $Errors }
    $entry.identity_policy = Invoke-M365Source -Name "identity_policy:$sid" -Errors $Errors -ScriptBlock { Get-M365IdentityPolicy -UserProfile $UserProfile }
    $entry.token_broker = Invoke-M365Source -Name "token_broker:$sid" -Errors $Errors -ScriptBlock { Get-M365TokenBrokerStat -UserProfile $UserProfile -Errors $Errors }
    $entry
}

Function Get-M365ProbeAccount {
    # The system-context probe runs as the WinRM administrator; name it in the result.
    try { [System.Security.Principal.WindowsIdentity]::GetCurrent().Name }
    catch { if ($env:USERDOMAIN) { "$env:USERDOMAIN\$env:USERNAME" } else { [string]$env:USERNAME } }
}

Function Get-M365ProbeCloud {
    <#
    .SYNOPSIS
    The cloud instance of the device's tenant, from the hosts of its dsregcmd Tenant Details
    URLs: 'usgov', 'china', else 'public'.
    #>
    param([string]$DsregText)
    $pattern = '(?m)^\s*(?:AuthCodeUrl|AccessTokenUrl|JoinSrvUrl|KeySrvUrl)\s*:\s*https://(?<host>[^/\s:]+)'
    foreach ($m in [regex]::Matches("$DsregText", $pattern)) {
        $name = $m.Groups['host'].Value.ToLowerInvariant()
        if ($name.EndsWith('.microsoftonline.us')) { return 'usgov' }
        if ($name.EndsWith('.microsoftonline.cn') -or $name.EndsWith('.chinacloudapi.cn')) { return 'china' }
    }
    'public'
}

Function Resolve-M365ProbeEndpoint {
    <#
    .SYNOPSIS
    network_probe.endpoints -> @{ endpoints; cloud }. The default (the public Entra names)
    becomes the names of the tenant's own cloud; a list the operator gave is probed as
    given, with cloud $null.
    #>
    param([string[]]$Endpoints, [string]$DsregText)
    $given = @($Endpoints | ForEach-Object { "$_".Trim().ToLowerInvariant() } | Sort-Object) -join ' '
    $default = @($script:ProbeClouds['public'] | Sort-Object) -join ' '
    if ($given -ne $default) { return @{ endpoints = @($Endpoints); cloud = $null } }
    $cloud = Get-M365ProbeCloud -DsregText $DsregText
    @{ endpoints = @($script:ProbeClouds[$cloud]); cloud = $cloud }
}

Function Get-M365SystemProbe {
    <#
    .SYNOPSIS
    The probe in this process (the WinRM administrator) through the WinHTTP proxy, which is
    what SYSTEM (device registration, the Automatic-Device-Join task) goes through.
    #>
    param([hashtable]$Probe, [string[]]$Endpoints, $Network)
    $proxy = if ($null -eq $Network) {
        @{ source = 'unknown'; note = 'the WinHTTP proxy could not be read (see collection_errors); probed direct' }
    }
    elseif ($Network.proxy_server) { @{ source = 'winhttp'; server = $Network.proxy_server; bypass = $Network.bypass_list } }
    else { @{ source = 'none' } }
    $result = Invoke-M365NetworkProbe -Endpoints $Endpoints -TimeoutSeconds $Probe.timeout -Proxy $proxy -Context 'system' -Account (Get-M365ProbeAccount)
    Complete-M365NetworkProbe -Probe $result -TrustedRoots $Probe.trusted_roots
}

Function ConvertTo-M365UserProbe {
    <#
    .SYNOPSIS
    The probe a user's task ran -> its host_facts.network_probe.contexts entry, named by
    user and SID and judged here (the task only gathers); $null when the task did not run
    or did not probe.
    #>
    param($UserProfile, $TaskResult, [string[]]$TrustedRoots)
    if ([string]$TaskResult.Status -ne 'ok' -or $null -eq $TaskResult.Output) { return $null }
    $o = $TaskResult.Output
    if (-not $o.PSObject.Properties['network_probe'] -or $null -eq $o.network_probe) { return $null }
    $probe = $o.network_probe
    if ($probe.PSObject.Properties['results']) { $probe = Complete-M365NetworkProbe -Probe $probe -TrustedRoots $TrustedRoots }
    $entry = [ordered]@{ context = 'user'; user = $UserProfile.UserName; sid = $UserProfile.Sid }
    foreach ($prop in $probe.PSObject.Properties) {
        if ($prop.Name -ne 'context') { $entry[$prop.Name] = $prop.Value }
    }
    $entry
}

# Runs inside the user's session (Windows PowerShell 5.1, through the task runner). It
# only reads: user-context dsregcmd (this user's PRT), Credential Manager target names,
# WAM accounts Office can use, the sign-in UPN and whether the broker app is registered for the user.
# Windows helpers are defined only when absent so tests can supply stand-ins.
$script:UserContextScript = {
    param([string[]]$Regexes, [string]$ClientId, $Probe, [string]$Session)
    $ErrorActionPreference = 'Stop'
    # The vault, WAM and sign-in helpers of _UserSession.psm1, the ones the rungs use.
    if ($Session) { . ([scriptblock]::Create($Session)) }
    $out = @{ sign_in_upn = $null; dsregcmd_status = $null; credential_targets = @(); wam_accounts = @(); broker_plugin_registered = $null; errors = @() }

    if (-not (Get-Command -Name Get-M365UserDsreg -ErrorAction SilentlyContinue)) {
        # By absolute path: the user's own PATH may lead anywhere.
        function Get-M365UserDsreg { & ([IO.Path]::Combine($env:SystemRoot, 'System32', 'dsregcmd.exe')) /status 2>&1 | Out-String }
    }
    if (-not (Get-Command -Name Test-M365BrokerRegistered -ErrorAction SilentlyContinue)) {
        function Test-M365BrokerRegistered { [bool](Get-AppxPackage -Name 'Microsoft.AAD.BrokerPlugin') }
    }

    try { $out.dsregcmd_status = [string](Get-M365UserDsreg) } catch { $out.errors += "dsregcmd: $($_.Exception.Message)" }
    try {
        # The regexes of Assert-M365CredentialPattern matched by win_credential_purge's own
        # code: what diagnose lists is what a purge would remove.
        $out.credential_targets = @(Select-M365CredentialTarget -Regex $Regexes | Sort-Object -Unique)
    }
    catch { $out.errors += "credentials: $($_.Exception.Message)" }
    try { $out.sign_in_upn = Get-M365SignInUpn } catch { $out.errors += "sign-in UPN: $($_.Exception.Message)" }
    if (-not $out.sign_in_upn -and $out.dsregcmd_status -match '(?m)^\s*Executing Account Name\s*:\s*[^,\r\n]*,\s*(\S+@\S+)\s*$') {
        $out.sign_in_upn = $Matches[1]
    }
    try {
        $out.wam_accounts = @(Get-M365WamAccount -ClientId $ClientId | ForEach-Object { @{ upn = [string]$_.Upn; provider = 'AzureAD'; state = [string]$_.State } })
    }
    catch { $out.errors += "WAM accounts: $($_.Exception.Message)" }
    try { $out.broker_plugin_registered = Test-M365BrokerRegistered } catch { $out.errors += "BrokerPlugin: $($_.Exception.Message)" }
    if ($Probe) {
        # The network probe as this user, through the user's own proxy settings. Its code
        # comes with the parameters (_NetworkProbe.psm1): this powershell.exe has no utils.
        try {
            . ([scriptblock]::Create([string]$Probe.Code))
            $out.network_probe = Invoke-M365UserNetworkProbe -Endpoints @($Probe.Endpoints) -TimeoutSeconds ([int]$Probe.TimeoutSeconds)
        }
        catch {
            $out.network_probe = @{ error = $_.Exception.Message }
            $out.errors += "network probe: $($_.Exception.Message)"
        }
    }
    $out
}

Function ConvertTo-M365UserEntry {
    <# .SYNOPSIS A task runner result -> the users[] entry of host_facts (docs/development.md). #>
    param($UserProfile, $TaskResult)
    $status = switch ([string]$TaskResult.Status) {
        'ok' { 'ok' }
        'not_logged_on' { 'not_logged_on' }
        'timeout' { 'timeout' }
        'access_denied' { 'access_denied' }
        default { 'error' }
    }
    $entry = [ordered]@{ sid = $UserProfile.Sid; user = $UserProfile.UserName; status = $status; message = [string]$TaskResult.Message }
    if ($status -ne 'ok') { return $entry }
    $o = $TaskResult.Output
    $get = { param($n) if ($o -and $o.PSObject.Properties[$n]) { $o.$n } else { $null } }
    $entry.sign_in_upn = & $get 'sign_in_upn'
    $entry.dsregcmd_status = & $get 'dsregcmd_status'
    $entry.credential_targets = @(& $get 'credential_targets' | Where-Object { $_ } | ForEach-Object { [string]$_ })
    $entry.wam_accounts = @(& $get 'wam_accounts' | Where-Object { $_ } | ForEach-Object {
            [ordered]@{ upn = [string]$_.upn; provider = [string]$_.provider; state = if ($_.PSObject.Properties['state']) { [string]$_.state } else { $null } } })
    $entry.broker_plugin_registered = & $get 'broker_plugin_registered'
    $errors = @(& $get 'errors' | Where-Object { $_ } | ForEach-Object { [string]$_ })
    if ($errors.Count -gt 0) { $entry.message = ($errors -join '; ') }
    $entry
}

Function Select-M365UserProfile {
    <#
    .SYNOPSIS
    Profiles that get a user-context task: the named users (each resolved, so a bad name
    fails with an ArgumentException naming it) or every logged-on profile.
    #>
    param([object[]]$Profiles, [string[]]$Users)
    if ($Users -and $Users.Count -gt 0) {
        $selected = [System.Collections.Generic.List[object]]::new()
        foreach ($u in $Users) {
            $p = Resolve-M365User -Identity $u
            if (-not @($selected | Where-Object { $_.Sid -eq $p.Sid })) { $selected.Add($p) }
        }
        return , @($selected)
    }
    , @($Profiles | Where-Object { $_.LoggedOn })
}

Function Get-M365ActivationFact {
    <#
    .SYNOPSIS
    The whole gathering: @{ dsregcmd_status; aad_events; host_facts; collection_errors }.
    #>
    param(
        [int]$EventsDays = 14,
        [int]$MaxEvents = 200,
        [string[]]$Users,
        [bool]$UserContext = $true,
        [int]$Timeout = 120,
        [string[]]$CredentialPatterns = @('MicrosoftOffice1*'),
        [string]$ClientId = 'd3590ed6-52b3-4102-aeff-aad2292ab01c',
        # @{ endpoints; trusted_roots; timeout } (network_probe); $null probes nothing.
        [hashtable]$NetworkProbe,
        # The verification after a restart: clear the marker sources that boot satisfied.
        [bool]$ClearSatisfiedMarker = $false
    )
    $errors = [System.Collections.ArrayList]::new()
    $now = Get-M365UtcNow

    # Named users are resolved first: a name that does not resolve is bad input and stops
    # the run before any task is created.
    $profiles = Invoke-M365Source -Name 'profiles' -Errors $errors -ScriptBlock { , @(Get-M365UserProfile) }
    $targets = @()
    if ($UserContext) {
        if ($Users -and $Users.Count -gt 0 -and $null -eq $profiles) {
            throw [System.ArgumentException]::new("users: cannot resolve $($Users -join ', ') because the user profiles could not be read ($(@($errors | Where-Object { $_.source -eq 'profiles' })[0].message)).")
        }
        if ($null -ne $profiles) {
            try {
                $targets = Select-M365UserProfile -Profiles $profiles -Users $Users
            }
            catch [System.ArgumentException] {
                throw [System.ArgumentException]::new("users: $($_.Exception.Message)")
            }
        }
    }

    # collector/user_context tell the rules that dsregcmd_status ran over WinRM (the
    # admin's network logon), so its SSO State says nothing about any user's PRT.
    $facts = [ordered]@{
        schema = 1; collected_at = ConvertTo-M365IsoTime -Value $now; hostname = Get-M365HostName
        collector = 'win_activation_facts'; user_context = [bool]$UserContext
    }
    $dsreg = Get-M365DeviceDsreg -Errors $errors
    $events = Get-M365AadEvents -Days $EventsDays -MaxEvents $MaxEvents -Errors $errors
    $facts.os = Invoke-M365Source -Name 'os' -Errors $errors -ScriptBlock { Get-M365OsInfo }
    $facts.office = Invoke-M365Source -Name 'office' -Errors $errors -ScriptBlock { Get-M365OfficeInfo }
    $facts.network = Invoke-M365Source -Name 'network' -Errors $errors -ScriptBlock { Get-M365NetworkInfo }
    # Before the marker is read, so pending_reboot says what is still owed after this boot.
    $cleared = $null
    if ($ClearSatisfiedMarker) {
        $cleared = Invoke-M365Source -Name 'pending_reboot' -Errors $errors -ScriptBlock {
            , @(Clear-M365SatisfiedRebootMarker -BootTime (Get-M365LastBootUpTime)) }
    }
    $facts.pending_reboot = Invoke-M365Source -Name 'pending_reboot' -Errors $errors -ScriptBlock { Get-M365PendingReboot }
    if ($null -ne $cleared -and $null -ne $facts.pending_reboot) { $facts.pending_reboot.cleared = @($cleared) }
    $facts.last_boot = Invoke-M365Source -Name 'last_boot' -Errors $errors -ScriptBlock { Get-M365LastBoot }
    $facts.repairs = Invoke-M365Source -Name 'repairs' -Errors $errors -ScriptBlock { Get-M365Repairs }
    # Wrapped: $null is an answer here (no join recorded), unlike the sources around it.
    $hybridJoin = Invoke-M365Source -Name 'hybrid_join' -Errors $errors -ScriptBlock { @{ value = Get-M365HybridJoin } }
    $facts.broker_plugin = Invoke-M365Source -Name 'broker_plugin' -Errors $errors -ScriptBlock { Get-M365BrokerPluginInfo }
    $facts.profiles = @(foreach ($p in @($profiles)) { if ($p) { Get-M365ProfileFact -UserProfile $p -Now $now -Errors $errors } })

    $probeContexts = [System.Collections.Generic.List[object]]::new()
    $probeEndpoints = $null
    $userParameters = @{}
    if ($NetworkProbe) {
        $probeEndpoints = Resolve-M365ProbeEndpoint -Endpoints $NetworkProbe.endpoints -DsregText $dsreg
        $system = Invoke-M365Source -Name 'network_probe' -Errors $errors -ScriptBlock {
            Get-M365SystemProbe -Probe $NetworkProbe -Endpoints $probeEndpoints.endpoints -Network $facts.network }
        if ($null -ne $system) { $probeContexts.Add($system) }
        $userParameters.Probe = @{ Code = Get-M365NetworkProbeScript; Endpoints = @($probeEndpoints.endpoints); TimeoutSeconds = [int]$NetworkProbe.timeout }
    }

    $userEntries = [System.Collections.Generic.List[object]]::new()
    $regexes = Assert-M365CredentialPattern -Pattern $CredentialPatterns -ParameterName 'credential_patterns'
    # Once for every user: the helpers' text is the same for each task.
    $session = Get-M365UserSessionScript
    foreach ($p in $targets) {
        $run = $null
        try {
            $run = Invoke-M365TaskScript -ScriptBlock $script:UserContextScript -RunAs User -UserSid $p.Sid -TimeoutSeconds $Timeout `
                -Parameters (@{ Regexes = $regexes; ClientId = $ClientId; Session = $session } + $userParameters)
        }
        catch {
            $run = [pscustomobject]@{ Status = 'failed'; Output = $null; Message = $_.Exception.Message; ExitCode = $null }
        }
        $userEntries.Add((ConvertTo-M365UserEntry -UserProfile $p -TaskResult $run))
        $userProbe = ConvertTo-M365UserProbe -UserProfile $p -TaskResult $run -TrustedRoots $NetworkProbe.trusted_roots
        if ($null -ne $userProbe) { $probeContexts.Add($userProbe) }
    }
    $facts.users = @($userEntries)
    if ($NetworkProbe) {
        $facts.network_probe = [ordered]@{
            endpoints = @($probeEndpoints.endpoints); cloud = $probeEndpoints.cloud
            timeout_seconds = [int]$NetworkProbe.timeout; contexts = @($probeContexts)
        }
    }

    # Facts that could not be read are left out rather than sent as null, so the
    # triage rules see "unknown", not "false".
    foreach ($k in @($facts.Keys)) { if ($null -eq $facts[$k]) { $facts.Remove($k) } }
    # hybrid_join: null means "none recorded"; the key is left out only when unreadable.
    if ($null -ne $hybridJoin) { $facts.hybrid_join = $hybridJoin.value }
    @{
        dsregcmd_status = $dsreg
        aad_events = $events
        host_facts = $facts
        collection_errors = @($errors)
    }
}

# ---------------------------------------------------------------------------------------
# Module body (skipped when Pester loads the functions above from the AST)
# ---------------------------------------------------------------------------------------
$spec = @{
    options = @{
        events_days = @{ type = 'int'; default = 14 }
        max_events = @{ type = 'int'; default = 200 }
        users = @{ type = 'list'; elements = 'str' }
        user_context = @{ type = 'bool'; default = $true }
        timeout = @{ type = 'int'; default = 120 }
        credential_patterns = @{ type = 'list'; elements = 'str'; default = @('MicrosoftOffice1*') }
        network_probe = @{
            type = 'dict'
            apply_defaults = $true
            options = @{
                enabled = @{ type = 'bool'; default = $true }
                endpoints = @{ type = 'list'; elements = 'str'; default = $script:ProbeClouds['public'] }
                trusted_roots = @{ type = 'list'; elements = 'str'; default = $script:ProbeTrustedRoots }
                timeout = @{ type = 'int'; default = 4 }
            }
        }
        # Used by the action plugin on the controller; accepted here so the argument spec
        # matches the documentation when the module is run without it.
        evidence_dir = @{ type = 'str' }
        clear_satisfied_marker = @{ type = 'bool'; default = $false }
    }
    supports_check_mode = $true
}
$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)
$module.Result.changed = $false

$p = $module.Params
if ($p.events_days -lt 1 -or $p.events_days -gt 365) {
    $module.FailJson("events_days must be between 1 and 365, got $($p.events_days).")
}
if ($p.max_events -lt 1 -or $p.max_events -gt 5000) {
    $module.FailJson("max_events must be between 1 and 5000, got $($p.max_events).")
}
if ($p.timeout -lt 10 -or $p.timeout -gt 3600) {
    $module.FailJson("timeout must be between 10 and 3600 seconds, got $($p.timeout).")
}
# Reading target names is harmless, but a broad pattern would report every saved
# credential of the user: the same literal-prefix rule as win_credential_purge.
try { $null = Assert-M365CredentialPattern -Pattern @($p.credential_patterns) -ParameterName 'credential_patterns' }
catch [System.ArgumentException] { $module.FailJson($_.Exception.Message) }

$probe = $null
if ($p.network_probe.enabled) {
    $np = $p.network_probe
    if ($np.timeout -lt 1 -or $np.timeout -gt 30) {
        $module.FailJson("network_probe.timeout must be between 1 and 30 seconds, got $($np.timeout).")
    }
    $endpoints = @($np.endpoints | Where-Object { "$_".Trim() })
    # At most 10: each one costs time within the budget, and the list travels on the user
    # task's command line (ScheduledTaskRunner's 32000-character limit).
    if ($endpoints.Count -lt 1 -or $endpoints.Count -gt 10) {
        $module.FailJson("network_probe.endpoints must name 1 to 10 endpoints, got $($endpoints.Count).")
    }
    foreach ($e in $endpoints) {
        try { $null = Split-M365ProbeEndpoint -Endpoint $e }
        catch [System.ArgumentException] { $module.FailJson("network_probe.endpoints: $($_.Exception.Message).") }
    }
    $roots = @($np.trusted_roots | Where-Object { "$_".Trim() })
    if ($roots.Count -lt 1) {
        $module.FailJson('network_probe.trusted_roots must list at least one root certificate thumbprint.')
    }
    foreach ($r in $roots) {
        if (($r -replace '[\s:]', '') -notmatch '^[0-9A-Fa-f]{40}$') {
            $module.FailJson("network_probe.trusted_roots: '$r' is not a SHA-1 thumbprint (40 hex digits).")
        }
    }
    $probe = @{ endpoints = $endpoints; trusted_roots = @($roots | ForEach-Object { ($_ -replace '[\s:]', '').ToUpperInvariant() }); timeout = $np.timeout }
}

# Leftovers of interrupted runs first: this module runs the user-context tasks too.
if ($p.user_context) { Invoke-M365StaleSweep -Module $module }

try {
    $gathered = Get-M365ActivationFact -EventsDays $p.events_days -MaxEvents $p.max_events -Users @($p.users | Where-Object { $null -ne $_ }) `
        -UserContext $p.user_context -Timeout $p.timeout -CredentialPatterns @($p.credential_patterns) -NetworkProbe $probe `
        -ClearSatisfiedMarker ($p.clear_satisfied_marker -and -not $module.CheckMode)
}
catch [System.ArgumentException] {
    $module.FailJson($_.Exception.Message)
}
$module.Result.dsregcmd_status = $gathered.dsregcmd_status
$module.Result.aad_events = $gathered.aad_events
$module.Result.host_facts = $gathered.host_facts
$pending = $gathered.host_facts.pending_reboot
if ($null -ne $pending -and $pending.Contains('cleared') -and @($pending.cleared).Count -gt 0) { $module.Result.changed = $true }
$module.Result.collection_errors = $gathered.collection_errors
Add-M365RunnerWarning -Module $module
$module.ExitJson()
