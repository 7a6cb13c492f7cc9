# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within this collection and may not remain
# stable to outside uses. Changes may be made in ANY release, even a bugfix release.

#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._ScheduledTaskRunner

# The network-path probe of win_activation_facts.
#
# Manual step 3 of Microsoft's 0xCAA50021 procedure is "make sure AV / proxy / firewall let
# the BrokerPlugin reach Entra". This probe answers *what* stops it, for each endpoint the
# broker needs: the name does not resolve (DNS), no TCP connection on 443 (a firewall), the
# proxy refuses the tunnel or asks for authentication (407), or the TLS chain does not end
# at a root Microsoft uses (TLS inspection re-signing the connection).
#
# It runs in the facts module's own process (the WinRM administrator, with the WinHTTP
# proxy SYSTEM uses) and inside each logged-on user's task (the user's WinINET proxy or
# PAC). Get-M365NetworkProbeScript hands the functions below to that task as text, so they
# use nothing but .NET and each other (no module state, no other util), and run on Windows
# PowerShell 5.1 and pwsh 7 alike. Every wait is bounded by one deadline per context.

Set-StrictMode -Version 2.0

# The functions the user-context task needs, in the order they are defined there.
$script:ShippedFunctions = @(
    'ConvertFrom-M365ProxySettingBlob'
    'Split-M365ProbeEndpoint'
    'Get-M365ProxyForHost'
    'Get-M365ProbeError'
    'Start-M365ProbeLookup'
    'Invoke-M365ProbeConnect'
    'Invoke-M365ProbeTls'
    'Invoke-M365NetworkProbe'
    'Get-M365UserProxySetting'
    'Read-M365UserInternetSetting'
    'Invoke-M365UserNetworkProbe'
)

Function ConvertFrom-M365ProxySettingBlob {
    <#
    .SYNOPSIS
    Decode a WinHTTP/WinINET proxy blob: WinHttpSettings (what `netsh winhttp set proxy`
    writes) and a user's DefaultConnectionSettings share one layout.
    .DESCRIPTION
    Little-endian DWORDs: size, counter, flags (0x1 direct, 0x2 named proxy, 0x4 PAC URL,
    0x8 auto-detect), then length-prefixed ASCII strings: proxy, bypass list, PAC URL.
    Returns @{ flags; proxy; bypass; autoconfig_url }; strings absent or cut short are $null.
    #>
    param([byte[]]$Blob)
    $out = @{ flags = 0; proxy = $null; bypass = $null; autoconfig_url = $null }
    if ($null -eq $Blob -or $Blob.Length -lt 12) { return $out }
    $out.flags = [BitConverter]::ToInt32($Blob, 8)
    $at = 12
    foreach ($name in @('proxy', 'bypass', 'autoconfig_url')) {
        if ($at + 4 -gt $Blob.Length) { break }
        $length = [BitConverter]::ToInt32($Blob, $at)
        $at += 4
        if ($length -lt 0 -or $at + $length -gt $Blob.Length) { break }
        if ($length -gt 0) { $out[$name] = [System.Text.Encoding]::ASCII.GetString($Blob, $at, $length) }
        $at += $length
    }
    $out
}

Function Split-M365ProbeEndpoint {
    <#
    .SYNOPSIS
    'host', 'host:port', 'a.b.c.d:port' or '[v6]:port' -> @{ host; port } (port 443 when
    none is given). Anything else is an ArgumentException naming the value.
    #>
    param([string]$Endpoint)
    $text = "$Endpoint".Trim()
    $hostName = $null
    $port = $null
    if ($text -match '^\[(?<h>[0-9A-Fa-f:.]+)\](:(?<p>[0-9]{1,5}))?$') {
        $hostName = $Matches['h']
        $port = $Matches['p']
    }
    elseif ($text -match '^(?<h>[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)(:(?<p>[0-9]{1,5}))?$' -and $text -notmatch '\.\.') {
        $hostName = $Matches['h']
        $port = $Matches['p']
    }
    if (-not $hostName) {
        throw [System.ArgumentException]::new("'$Endpoint' is not a host name or address with an optional :port")
    }
    $number = if ($port) { [int]$port } else { 443 }
    if ($number -lt 1 -or $number -gt 65535) {
        throw [System.ArgumentException]::new("'$Endpoint': port $number is not between 1 and 65535")
    }
    @{ host = $hostName; port = $number }
}

Function Get-M365ProxyForHost {
    <#
    .SYNOPSIS
    The proxy ('host:port') an HTTPS request to HostName goes through under a WinHTTP or
    WinINET proxy setting, or $null for direct.
    .DESCRIPTION
    ProxyServer is 'proxy:8080' (every scheme) or per scheme 'http=a:80;https=b:443' (a
    list without https= sends HTTPS direct, as WinINET does). Bypass entries are wildcards
    on the host name; <local> is any name without a dot. A proxy without a port is on 80.
    #>
    param([string]$ProxyServer, [string]$Bypass, [string]$HostName)
    if ([string]::IsNullOrWhiteSpace($ProxyServer)) { return $null }
    foreach ($pattern in @("$Bypass" -split '[;\s,]+' | Where-Object { $_ })) {
        if ($pattern -eq '<local>') {
            if ($HostName -notmatch '\.') { return $null }
            continue
        }
        if ($pattern.StartsWith('<')) { continue }
        if ($HostName -like ($pattern -replace '^[A-Za-z]+://', '')) { return $null }
    }
    $plain = $null
    $https = $null
    foreach ($entry in @($ProxyServer -split '[;\s]+' | Where-Object { $_ })) {
        if ($entry -match '^(?<scheme>[A-Za-z]+)=(?<p>.+)$') {
            if ($Matches['scheme'] -eq 'https') { $https = $Matches['p'] }
        }
        elseif (-not $plain) { $plain = $entry }
    }
    $chosen = if ($https) { $https } else { $plain }
    if (-not $chosen) { return $null }
    $chosen = ($chosen -replace '^[A-Za-z]+://', '') -replace '/+$', ''
    if ($chosen -notmatch ':[0-9]+$') { $chosen += ':80' }
    $chosen
}

Function Get-M365ProbeError {
    <#
    .SYNOPSIS
    An exception (possibly wrapped by PowerShell or a Task) -> @{ code; message }: the
    SocketError name of the innermost SocketException, and the most specific message.
    #>
    param($Exception)
    $code = $null
    $message = $null
    $ex = $Exception
    while ($ex) {
        if ($ex -is [System.Net.Sockets.SocketException] -and -not $code) { $code = [string]$ex.SocketErrorCode }
        if ($ex.Message) { $message = $ex.Message }
        if ($ex -is [System.AggregateException] -and $ex.InnerExceptions.Count -gt 0) { $ex = $ex.InnerExceptions[0] }
        else { $ex = $ex.InnerException }
    }
    @{ code = $code; message = $message }
}

Function Start-M365ProbeLookup {
    <# .SYNOPSIS The name lookup as a Task of IPAddress[] (the system resolver: hosts file, then DNS). #>
    param([string]$Name)
    [System.Net.Dns]::GetHostAddressesAsync($Name)
}

Function Invoke-M365ProbeConnect {
    <#
    .SYNOPSIS
    Ask the proxy on Stream for a tunnel to Target ('host:port') with an HTTP CONNECT and
    read its answer: @{ status = 'ok'|'auth_required'|'refused'|'no_answer'; code;
    status_line; auth (the Proxy-Authenticate schemes); message }.
    .DESCRIPTION
    Done by hand over the socket, because the proxy's own status line is the evidence:
    a 407 and the schemes it offers, or the 403/502 a filtering proxy answers with.
    #>
    param([System.IO.Stream]$Stream, [string]$Target, [int]$TimeoutMs)
    $Stream.ReadTimeout = $TimeoutMs
    $Stream.WriteTimeout = $TimeoutMs
    $request = "CONNECT $Target HTTP/1.1`r`nHost: $Target`r`nUser-Agent: m365ops-network-probe`r`nProxy-Connection: Keep-Alive`r`n`r`n"
    $bytes = [System.Text.Encoding]::ASCII.GetBytes($request)
    $head = New-Object -TypeName System.Text.StringBuilder
    try {
        $Stream.Write($bytes, 0, $bytes.Length)
        $Stream.Flush()
        # One byte at a time up to the blank line: whatever follows belongs to the tunnel.
        $one = New-Object -TypeName byte[] -ArgumentList 1
        while ($head.Length -lt 16384) {
            if ($Stream.Read($one, 0, 1) -le 0) { break }
            $null = $head.Append([char]$one[0])
            if ($head.Length -ge 4 -and $head.ToString($head.Length - 4, 4) -eq "`r`n`r`n") { break }
        }
    }
    catch {
        $e = Get-M365ProbeError -Exception $_.Exception
        return [ordered]@{ status = 'no_answer'; code = $null; status_line = $null; auth = @(); message = $e.message }
    }
    $lines = @($head.ToString() -split "`r`n")
    $statusLine = $lines[0]
    if ($statusLine -notmatch '^HTTP/[0-9.]+\s+(?<code>[0-9]{3})') {
        return [ordered]@{ status = 'no_answer'; code = $null; status_line = $statusLine; auth = @(); message = 'the proxy did not answer the CONNECT with an HTTP status line' }
    }
    $code = [int]$Matches['code']
    $auth = @($lines | Where-Object { $_ -match '^Proxy-Authenticate:\s*(?<scheme>[^\s,]+)' } | ForEach-Object { $Matches['scheme'] })
    $status = if ($code -ge 200 -and $code -lt 300) { 'ok' } elseif ($code -eq 407) { 'auth_required' } else { 'refused' }
    [ordered]@{ status = $status; code = $code; status_line = $statusLine; auth = $auth; message = $null }
}

Function Invoke-M365ProbeTls {
    <#
    .SYNOPSIS
    A TLS handshake with HostName over Stream, recording the certificate chain the host
    builds: @{ status = 'ok'|'failed'; protocol; root; chain; policy_errors; message }.
    Whether the root is one Microsoft uses is judged afterwards (Complete-M365NetworkProbe).
    .DESCRIPTION
    The validation callback records the chain and accepts it, so the handshake also
    completes through an inspecting device and the chain is the evidence; nothing is sent
    over the connection afterwards. The callback runs on this thread inside the synchronous
    handshake (what a script block needs), bounded by the stream's timeouts.
    #>
    param([System.IO.Stream]$Stream, [string]$HostName, [int]$TimeoutMs)
    $seen = @{ chain = @(); errors = $null }
    $callback = {
        param($sender, $certificate, $chain, $policyErrors)
        $seen.errors = [string]$policyErrors
        $elements = @()
        if ($null -ne $chain -and $chain.ChainElements.Count -gt 0) {
            foreach ($element in $chain.ChainElements) { $elements += , $element.Certificate }
        }
        elseif ($null -ne $certificate) {
            $elements += , (New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Certificate2 -ArgumentList $certificate)
        }
        $seen.chain = @(foreach ($c in $elements) {
                [ordered]@{ subject = [string]$c.Subject; issuer = [string]$c.Issuer; thumbprint = ([string]$c.Thumbprint).ToUpperInvariant() } })
        $true
    }.GetNewClosure()
    $Stream.ReadTimeout = $TimeoutMs
    $Stream.WriteTimeout = $TimeoutMs
    $ssl = New-Object -TypeName System.Net.Security.SslStream -ArgumentList $Stream, $true, ([System.Net.Security.RemoteCertificateValidationCallback]$callback)
    $protocol = $null
    $failure = $null
    try {
        if ($PSVersionTable.PSVersion.Major -lt 6) {
            # .NET Framework's default would offer SSL 3 / TLS 1.0 only; Entra needs TLS 1.2.
            $ssl.AuthenticateAsClient($HostName, $null, [System.Security.Authentication.SslProtocols]::Tls12, $false)
        }
        else {
            $ssl.AuthenticateAsClient($HostName)
        }
        $protocol = [string]$ssl.SslProtocol
    }
    catch {
        $failure = (Get-M365ProbeError -Exception $_.Exception).message
    }
    finally {
        $ssl.Dispose()
    }
    $chainOut = @($seen.chain)
    $root = if ($chainOut.Count -gt 0) { $chainOut[$chainOut.Count - 1] } else { $null }
    $status = if ($failure) { 'failed' } else { 'ok' }
    [ordered]@{ status = $status; protocol = $protocol; root = $root; chain = $chainOut; policy_errors = $seen.errors; message = $failure }
}

Function Invoke-M365NetworkProbe {
    <#
    .SYNOPSIS
    Probe each endpoint ('host[:port]') the way a client with Proxy would reach it, within
    TimeoutSeconds in all. Returns the context's entry of host_facts.network_probe.contexts
    (docs/development.md) with what each layer answered: @{ context; account; proxy;
    timeout_seconds; elapsed_ms; complete; results = @({ endpoint; host; port; route; proxy;
    dns; tcp; connect; tls; blocked; detail }) }. blocked, detail and complete are filled in
    by Complete-M365NetworkProbe, in the module's process: the user's task only gathers.
    .DESCRIPTION
    Proxy: @{ source ('winhttp'|'wininet'|'pac'|'auto_detect'|'none'|'unknown'); server;
    bypass; pac_url; auto_detect; note }. With a PAC URL or auto-detect PacResolver
    (host, port -> 'proxy:port' or $null for direct) chooses the route per endpoint.
    Name lookups run in parallel, then the TCP connects in parallel, each phase capped at a
    third of the budget; the proxy's CONNECT and the TLS handshake follow per endpoint with
    what is left. A layer the budget did not reach stays $null.
    #>
    param(
        [Parameter(Mandatory)][string[]]$Endpoints,
        [int]$TimeoutSeconds = 4,
        [hashtable]$Proxy = @{},
        [scriptblock]$PacResolver,
        [string]$Context = 'system',
        [string]$Account
    )
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    $budget = [Math]::Max(1, $TimeoutSeconds) * 1000
    $phaseCap = [Math]::Max(1000, [int]($budget / 3))
    $proxyOut = [ordered]@{ source = 'none'; server = $null; bypass = $null; pac_url = $null; auto_detect = $false; note = $null }
    foreach ($k in @($Proxy.Keys)) { $proxyOut[$k] = $Proxy[$k] }
    $usePac = [bool]($proxyOut.pac_url -or $proxyOut.auto_detect)

    $work = [System.Collections.Generic.List[object]]::new()
    foreach ($endpoint in $Endpoints) {
        $target = Split-M365ProbeEndpoint -Endpoint $endpoint
        $r = [ordered]@{ endpoint = $endpoint; host = $target.host; port = $target.port; route = 'direct'; proxy = $null
            dns = $null; tcp = $null; connect = $null; tls = $null; blocked = $null; detail = $null }
        $via = $null
        if ($usePac) {
            if ($PacResolver) {
                try { $via = & $PacResolver $target.host $target.port }
                catch { $r.pac = "the system proxy could not be asked ($($_.Exception.Message)); probed direct" }
            }
        }
        else {
            $via = Get-M365ProxyForHost -ProxyServer $proxyOut.server -Bypass $proxyOut.bypass -HostName $target.host
        }
        $name = $target.host
        $port = $target.port
        if ($via) {
            $r.route = 'proxy'
            $r.proxy = [string]$via
            $p = Split-M365ProbeEndpoint -Endpoint $via
            $name = $p.host
            $port = $p.port
        }
        $work.Add(@{ r = $r; name = $name; port = $port; address = $null; client = $null; pending = $null })
    }

    $remaining = { [Math]::Max(0, $budget - [int]$watch.ElapsedMilliseconds) }
    try {
        # Names, all at once. An address literal needs no lookup.
        $lookupsBegan = [int]$watch.ElapsedMilliseconds
        $lookups = @{}
        foreach ($w in $work) {
            if ($lookups.ContainsKey($w.name)) { continue }
            $ip = $null
            if ([System.Net.IPAddress]::TryParse($w.name, [ref]$ip)) {
                $lookups[$w.name] = @{ status = 'literal'; addresses = @($ip); message = $null }
            }
            else {
                $lookups[$w.name] = @{ task = Start-M365ProbeLookup -Name $w.name }
            }
        }
        $phaseEnd = [Math]::Min($budget, [int]$watch.ElapsedMilliseconds + $phaseCap)
        foreach ($name in @($lookups.Keys)) {
            $l = $lookups[$name]
            if (-not $l.ContainsKey('task')) { continue }
            $wait = [Math]::Max(0, $phaseEnd - [int]$watch.ElapsedMilliseconds)
            try {
                if ($l.task.Wait($wait)) {
                    $addresses = @($l.task.Result)
                    $lookups[$name] = if ($addresses.Count -gt 0) { @{ status = 'ok'; addresses = $addresses; message = $null } }
                    else { @{ status = 'failed'; addresses = @(); message = 'the name has no address' } }
                }
                else {
                    # All lookups began together: each waited the whole phase, not the last wait alone.
                    $lookups[$name] = @{ status = 'timeout'; addresses = @(); message = "no answer within $([int]$watch.ElapsedMilliseconds - $lookupsBegan) ms" }
                }
            }
            catch {
                $e = Get-M365ProbeError -Exception $_.Exception
                $lookups[$name] = @{ status = 'failed'; addresses = @(); message = $e.message }
            }
        }
        foreach ($w in $work) {
            $l = $lookups[$w.name]
            $w.r.dns = [ordered]@{ name = $w.name; status = $l.status; addresses = @($l.addresses | ForEach-Object { [string]$_ }); message = $l.message }
            if ($l.status -eq 'ok' -or $l.status -eq 'literal') {
                # IPv4 first: what most clients connect to first too.
                $v4 = @($l.addresses | Where-Object { $_.AddressFamily -eq [System.Net.Sockets.AddressFamily]::InterNetwork })
                $w.address = if ($v4.Count -gt 0) { $v4[0] } else { @($l.addresses)[0] }
            }
        }

        # TCP, all at once.
        $connectsBegan = [int]$watch.ElapsedMilliseconds
        foreach ($w in $work) {
            if ($null -eq $w.address) { continue }
            $w.client = New-Object -TypeName System.Net.Sockets.TcpClient -ArgumentList $w.address.AddressFamily
            try { $w.pending = $w.client.BeginConnect($w.address, $w.port, $null, $null) }
            catch {
                $e = Get-M365ProbeError -Exception $_.Exception
                $w.r.tcp = [ordered]@{ address = "$($w.address):$($w.port)"; status = 'failed'; message = $e.message }
            }
        }
        $phaseEnd = [Math]::Min($budget, [int]$watch.ElapsedMilliseconds + $phaseCap)
        foreach ($w in $work) {
            if ($null -eq $w.pending) { continue }
            $endpointText = if ($w.address.AddressFamily -eq [System.Net.Sockets.AddressFamily]::InterNetworkV6) { "[$($w.address)]:$($w.port)" } else { "$($w.address):$($w.port)" }
            $wait = [Math]::Max(0, $phaseEnd - [int]$watch.ElapsedMilliseconds)
            if ($w.pending.AsyncWaitHandle.WaitOne($wait)) {
                try {
                    $w.client.EndConnect($w.pending)
                    $w.r.tcp = [ordered]@{ address = $endpointText; status = 'ok'; message = $null }
                }
                catch {
                    $e = Get-M365ProbeError -Exception $_.Exception
                    $status = switch ($e.code) {
                        'ConnectionRefused' { 'refused' }
                        'TimedOut' { 'timeout' }
                        'AccessDenied' { 'denied' }
                        { $_ -in @('HostUnreachable', 'NetworkUnreachable', 'HostDown', 'NetworkDown') } { 'unreachable' }
                        default { 'failed' }
                    }
                    $w.r.tcp = [ordered]@{ address = $endpointText; status = $status; message = $e.message }
                }
            }
            else {
                $w.r.tcp = [ordered]@{ address = $endpointText; status = 'timeout'; message = "no answer within $([int]$watch.ElapsedMilliseconds - $connectsBegan) ms" }
            }
        }

        # Per endpoint: the proxy's tunnel, then TLS, with what the budget has left.
        foreach ($w in $work) {
            if ($null -eq $w.r.tcp -or $w.r.tcp.status -ne 'ok') { continue }
            $stream = $w.client.GetStream()
            if ($w.r.route -eq 'proxy') {
                $ms = [Math]::Min($phaseCap, (& $remaining))
                # Less than this is no fair chance: leave the layer unprobed, not failed.
                if ($ms -lt 100) { continue }
                $w.r.connect = Invoke-M365ProbeConnect -Stream $stream -Target "$($w.r.host):$($w.r.port)" -TimeoutMs $ms
                if ($w.r.connect.status -ne 'ok') { continue }
            }
            $ms = [Math]::Min($phaseCap, (& $remaining))
            if ($ms -lt 100) { continue }
            $w.r.tls = Invoke-M365ProbeTls -Stream $stream -HostName $w.r.host -TimeoutMs $ms
        }
    }
    finally {
        foreach ($w in $work) { if ($w.client) { try { $w.client.Close() } catch { $null = $_ } } }
    }

    [ordered]@{
        context = $Context
        account = $Account
        proxy = $proxyOut
        timeout_seconds = $TimeoutSeconds
        elapsed_ms = [int]$watch.ElapsedMilliseconds
        complete = $null
        results = @(foreach ($w in $work) { $w.r })
    }
}

Function Complete-M365NetworkProbe {
    <#
    .SYNOPSIS
    Judge one context's probe (Invoke-M365NetworkProbe's result, or the same come back from
    a user's task as JSON objects): per endpoint the first layer that failed, in the order a
    connection meets them, as blocked ('dns', 'tcp', 'proxy', 'proxy_auth',
    'tls_inspection', 'tls' or $null) and a detail sentence; complete is false when the
    budget ran out before some endpoint was judged (unknown, never reported as blocked).
    .DESCRIPTION
    A chain that does not end at one of TrustedRoots (SHA-1 thumbprints) is a connection
    re-signed by a TLS-inspecting device: tls.status becomes 'untrusted_root'. Roots are
    compared by thumbprint, never by name: an inspection CA can copy any name.
    #>
    param([Parameter(Mandatory)]$Probe, [string[]]$TrustedRoots = @())
    $trusted = @($TrustedRoots | ForEach-Object { ($_ -replace '[^0-9A-Fa-f]', '').ToUpperInvariant() })
    $complete = $true
    foreach ($r in @($Probe.results)) {
        $via = if ($r.route -eq 'proxy') { "the proxy $($r.proxy)" } else { $null }
        $tls = $r.tls
        if ($null -ne $tls -and $tls.status -eq 'ok' -and $null -ne $tls.root -and $trusted -notcontains ([string]$tls.root.thumbprint).ToUpperInvariant()) {
            $tls.status = 'untrusted_root'
        }
        if ($r.dns.status -ne 'ok' -and $r.dns.status -ne 'literal') {
            $r.blocked = 'dns'
            $r.detail = if ($via) { "the name of $via does not resolve ($($r.dns.message))" } else { "$($r.host) does not resolve ($($r.dns.message))" }
        }
        elseif ($null -eq $r.tcp) {
            $complete = $false
            $r.detail = 'not probed: the time budget ran out'
        }
        elseif ($r.tcp.status -ne 'ok') {
            $r.blocked = 'tcp'
            $what = if ($via) { $via } else { $r.tcp.address }
            $r.detail = "no TCP connection to $what ($($r.tcp.status): $($r.tcp.message))"
        }
        elseif ($r.route -eq 'proxy' -and $null -eq $r.connect) {
            $complete = $false
            $r.detail = 'not probed: the time budget ran out'
        }
        elseif ($r.route -eq 'proxy' -and $r.connect.status -eq 'auth_required') {
            $r.blocked = 'proxy_auth'
            $schemes = if (@($r.connect.auth).Count -gt 0) { " (offers $(@($r.connect.auth) -join ', '))" } else { '' }
            $r.detail = "$via asks for authentication: $($r.connect.status_line)$schemes"
        }
        elseif ($r.route -eq 'proxy' -and $r.connect.status -ne 'ok') {
            $r.blocked = 'proxy'
            $answer = if ($r.connect.status_line) { $r.connect.status_line } else { $r.connect.message }
            $r.detail = "$via refused the tunnel to $($r.host):$($r.port): $answer"
        }
        elseif ($null -eq $tls) {
            $complete = $false
            $r.detail = 'not probed: the time budget ran out'
        }
        elseif ($tls.status -eq 'untrusted_root') {
            $r.blocked = 'tls_inspection'
            $root = $tls.root
            $end = if ($root.subject -eq $root.issuer) { "the root $($root.subject)" } else { "$($root.subject), issued by $($root.issuer) (not in this host's store)" }
            $r.detail = "the certificate chain ends at $end [$($root.thumbprint)], not at a root Microsoft uses: the connection is re-signed by a TLS-inspecting device"
        }
        elseif ($tls.status -ne 'ok') {
            $r.blocked = 'tls'
            $r.detail = "the TLS handshake with $($r.host) failed: $($tls.message)"
        }
        else {
            $end = if ($tls.root) { ", chain ends at $($tls.root.subject)" } else { '' }
            $r.detail = "reached $($r.host):$($r.port) ($($tls.protocol)$end)"
        }
    }
    $Probe.complete = $complete
    $Probe
}

Function Get-M365UserProxySetting {
    <#
    .SYNOPSIS
    A user's WinINET proxy, from the values of HKCU\...\Internet Settings (ProxyEnable,
    ProxyServer, ProxyOverride, AutoConfigURL) and the auto-detect flag of its
    Connections\DefaultConnectionSettings blob, as Invoke-M365NetworkProbe's Proxy.
    #>
    param([hashtable]$Values = @{}, [byte[]]$ConnectionBlob)
    $get = { param($n) if ($Values.ContainsKey($n) -and "$($Values[$n])" -ne '') { $Values[$n] } else { $null } }
    $enabled = "$(& $get 'ProxyEnable')" -eq '1'
    $server = if ($enabled) { [string](& $get 'ProxyServer') } else { $null }
    $bypass = if ($enabled) { [string](& $get 'ProxyOverride') } else { $null }
    $pac = [string](& $get 'AutoConfigURL')
    $auto = ((ConvertFrom-M365ProxySettingBlob -Blob $ConnectionBlob).flags -band 0x8) -ne 0
    $source = if ($pac) { 'pac' } elseif ($auto) { 'auto_detect' } elseif ($server) { 'wininet' } else { 'none' }
    $note = $null
    if ($pac -or $auto) {
        # .NET asks WinINET's own proxy logic, PAC included; when the script cannot be
        # fetched or run it quietly answers "direct", which cannot be told from a PAC
        # that says DIRECT.
        $note = 'PAC/auto-detect evaluated by the system web proxy; an endpoint it sends direct may also mean the PAC could not be evaluated'
    }
    @{ source = $source; server = if ($server) { $server } else { $null }; bypass = if ($bypass) { $bypass } else { $null }
        pac_url = if ($pac) { $pac } else { $null }; auto_detect = [bool]$auto; note = $note }
}

Function Read-M365UserInternetSetting {
    <# .SYNOPSIS This user's Internet Settings values and DefaultConnectionSettings blob (HKCU). #>
    $key = 'HKCU:\Software\Microsoft\Windows\CurrentVersion\Internet Settings'
    $values = @{}
    if (Test-Path -LiteralPath $key) {
        $item = Get-Item -LiteralPath $key -ErrorAction Stop
        foreach ($n in @('ProxyEnable', 'ProxyServer', 'ProxyOverride', 'AutoConfigURL')) {
            $v = $item.GetValue($n)
            if ($null -ne $v) { $values[$n] = $v }
        }
    }
    $blob = $null
    $connections = "$key\Connections"
    if (Test-Path -LiteralPath $connections) {
        $value = (Get-Item -LiteralPath $connections -ErrorAction Stop).GetValue('DefaultConnectionSettings')
        if ($value -is [byte[]]) { $blob = $value }
    }
    @{ values = $values; blob = $blob }
}

Function Invoke-M365UserNetworkProbe {
    <# .SYNOPSIS The probe as the user of this session, through the user's WinINET proxy or PAC. #>
    param([string[]]$Endpoints, [int]$TimeoutSeconds = 4)
    $settings = Read-M365UserInternetSetting
    $proxy = Get-M365UserProxySetting -Values $settings.values -ConnectionBlob $settings.blob
    $resolver = {
        param($HostName, $Port)
        $uri = New-Object -TypeName System.Uri -ArgumentList ('https://{0}:{1}/' -f $HostName, $Port)
        $system = [System.Net.WebRequest]::GetSystemWebProxy()
        if ($system.IsBypassed($uri)) { return $null }
        $via = $system.GetProxy($uri)
        if ($null -eq $via -or $via.Authority -eq $uri.Authority) { return $null }
        '{0}:{1}' -f $via.Host, $via.Port
    }
    $account = if ($env:USERDOMAIN) { "$env:USERDOMAIN\$env:USERNAME" } else { $env:USERNAME }
    Invoke-M365NetworkProbe -Endpoints $Endpoints -TimeoutSeconds $TimeoutSeconds -Proxy $proxy -PacResolver $resolver `
        -Context 'user' -Account $account
}

Function Get-M365NetworkProbeScript {
    <#
    .SYNOPSIS
    The probe's functions as one script text, for a user-context task to dot-source.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param()
    ConvertTo-M365TaskFunctionScript -Function @(foreach ($name in $script:ShippedFunctions) { Get-Item -LiteralPath "function:$name" })
}

Export-ModuleMember -Function ConvertFrom-M365ProxySettingBlob, Split-M365ProbeEndpoint, Get-M365ProxyForHost, `
    Get-M365ProbeError, Start-M365ProbeLookup, Invoke-M365ProbeConnect, Invoke-M365ProbeTls, Invoke-M365NetworkProbe, `
    Complete-M365NetworkProbe, Get-M365UserProxySetting, `
    Read-M365UserInternetSetting, Invoke-M365UserNetworkProbe, Get-M365NetworkProbeScript
