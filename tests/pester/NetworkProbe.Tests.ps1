# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# plugins/module_utils/_NetworkProbe.psm1 against real loopback sockets: a port with nothing
# listening, proxies that answer 407 / 403 / nothing / a working tunnel, and TLS servers
# with certificates made here. Only names that resolve from the hosts file (localhost) and
# addresses in 127.0.0.0/8 are used; a failing DNS lookup is the one thing stood in for
# (Start-M365ProbeLookup), because a real one would ask this machine's DNS server.

BeforeAll {
    $root = Resolve-Path (Join-Path $PSScriptRoot '..' '..')
    # _NetworkProbe requires these (#AnsibleRequires): the runner ships its code to the user task.
    foreach ($name in '_UserProfile', '_ScheduledTaskRunner', '_NetworkProbe') {
        Import-Module (Join-Path $root 'plugins' 'module_utils' "$name.psm1") -Force
    }

    if (-not ('M365Test.StandIn' -as [type])) {
        Add-Type -TypeDefinition @'
using System;
using System.IO;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading;
namespace M365Test {
    // One loopback service per instance, answered on threads of its own so the probe under
    // test (synchronous, on the test's thread) has someone to talk to.
    public class StandIn : IDisposable {
        private TcpListener listener;
        private Socket bound;
        private volatile bool stopping;
        public int Port;
        public int Connections;

        public static StandIn Refused() {
            StandIn s = new StandIn();
            s.bound = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.bound.Bind(new IPEndPoint(IPAddress.Loopback, 0));  // bound, never listening
            s.Port = ((IPEndPoint)s.bound.LocalEndPoint).Port;
            return s;
        }
        public static StandIn Proxy(string response) {
            return Serve(c => { Stream st = c.GetStream(); ReadHead(st); Write(st, response); });
        }
        public static StandIn Silent() {
            return Serve(c => { Thread.Sleep(10000); });
        }
        public static StandIn Tls(X509Certificate2 certificate) {
            return Serve(c => {
                using (SslStream ssl = new SslStream(c.GetStream(), false)) {
                    ssl.AuthenticateAsServer(certificate);
                    ssl.ReadByte();
                }
            });
        }
        public static StandIn Tunnel(int targetPort) {
            return Serve(c => {
                Stream st = c.GetStream();
                ReadHead(st);
                using (TcpClient target = new TcpClient()) {
                    target.Connect(IPAddress.Loopback, targetPort);
                    Write(st, "HTTP/1.1 200 Connection established\r\n\r\n");
                    Stream other = target.GetStream();
                    Thread back = new Thread(() => { try { other.CopyTo(st); } catch (Exception) { } });
                    back.Start();
                    try { st.CopyTo(other); } catch (Exception) { }
                    target.Close();
                    back.Join(5000);
                }
            });
        }
        private static StandIn Serve(Action<TcpClient> answer) {
            StandIn s = new StandIn();
            s.listener = new TcpListener(IPAddress.Loopback, 0);
            s.listener.Start();
            s.Port = ((IPEndPoint)s.listener.LocalEndpoint).Port;
            Thread accept = new Thread(() => {
                while (!s.stopping) {
                    TcpClient c;
                    try { c = s.listener.AcceptTcpClient(); } catch (Exception) { return; }
                    Interlocked.Increment(ref s.Connections);
                    Thread t = new Thread(() => { try { answer(c); } catch (Exception) { } finally { c.Close(); } });
                    t.IsBackground = true;
                    t.Start();
                }
            });
            accept.IsBackground = true;
            accept.Start();
            return s;
        }
        private static void ReadHead(Stream st) {
            StringBuilder head = new StringBuilder();
            while (!head.ToString().EndsWith("\r\n\r\n")) {
                int b = st.ReadByte();
                if (b < 0) return;
                head.Append((char)b);
            }
        }
        private static void Write(Stream st, string text) {
            byte[] bytes = Encoding.ASCII.GetBytes(text);
            st.Write(bytes, 0, bytes.Length);
            st.Flush();
        }
        public void Dispose() {
            stopping = true;
            if (listener != null) listener.Stop();
            if (bound != null) bound.Close();
        }
    }
}
'@
    }

    Function New-TestCertificate {
        # A certificate for localhost / 127.0.0.1 with its key, self-signed or issued by Issuer.
        param([string]$Subject, $Issuer, [switch]$Ca)
        $key = [System.Security.Cryptography.ECDsa]::Create([System.Security.Cryptography.ECCurve+NamedCurves]::nistP256)
        $req = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new($Subject, $key, [System.Security.Cryptography.HashAlgorithmName]::SHA256)
        $req.CertificateExtensions.Add([System.Security.Cryptography.X509Certificates.X509BasicConstraintsExtension]::new([bool]$Ca, $false, 0, $true))
        $san = [System.Security.Cryptography.X509Certificates.SubjectAlternativeNameBuilder]::new()
        $san.AddDnsName('localhost')
        $san.AddIpAddress([System.Net.IPAddress]::Loopback)
        $req.CertificateExtensions.Add($san.Build())
        $from = [DateTimeOffset]::UtcNow.AddMinutes(-5)
        $to = [DateTimeOffset]::UtcNow.AddDays(1)
        if ($Issuer) {
            # A leaf may not outlive its issuer; two UtcNow reads a second apart would say it does.
            if ($to -gt $Issuer.NotAfter) { $to = [DateTimeOffset]$Issuer.NotAfter.ToUniversalTime() }
            $cert = $req.Create($Issuer, $from, $to, [byte[]](1, 2, 3, 4, 5, 6, 7, 8))
            $cert = [System.Security.Cryptography.X509Certificates.ECDsaCertificateExtensions]::CopyWithPrivateKey($cert, $key)
        }
        else {
            $cert = $req.CreateSelfSigned($from, $to)
        }
        # Through PFX, so the key is one SslStream can use on every platform.
        [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($cert.Export('Pfx'))
    }

    Function Invoke-Judged {
        param([string[]]$Endpoints, [string[]]$TrustedRoots = @('DF3C24F9BFD666761B268073FE06D1CC8D4F82A4'), [hashtable]$Proxy = @{},
            [int]$TimeoutSeconds = 4, [scriptblock]$PacResolver)
        $raw = Invoke-M365NetworkProbe -Endpoints $Endpoints -TimeoutSeconds $TimeoutSeconds -Proxy $Proxy -PacResolver $PacResolver
        Complete-M365NetworkProbe -Probe $raw -TrustedRoots $TrustedRoots
    }

    $script:Refused = [M365Test.StandIn]::Refused()
    $script:SelfSigned = New-TestCertificate -Subject 'CN=Contoso TLS Inspection CA'
    $script:TlsSelf = [M365Test.StandIn]::Tls($script:SelfSigned)
    $script:Ca = New-TestCertificate -Subject 'CN=Fabrikam Proxy Root' -Ca
    $script:Leaf = New-TestCertificate -Subject 'CN=localhost' -Issuer $script:Ca
    $script:TlsIssued = [M365Test.StandIn]::Tls($script:Leaf)
    $script:Proxy407 = [M365Test.StandIn]::Proxy("HTTP/1.1 407 Proxy Authentication Required`r`nProxy-Authenticate: Negotiate`r`nProxy-Authenticate: NTLM`r`nContent-Length: 0`r`n`r`n")
    $script:Proxy403 = [M365Test.StandIn]::Proxy("HTTP/1.1 403 Forbidden`r`nContent-Length: 0`r`n`r`n")
    $script:Tunnel = [M365Test.StandIn]::Tunnel($script:TlsSelf.Port)
    $script:Silent = [M365Test.StandIn]::Silent()
}

AfterAll {
    foreach ($s in @($script:Refused, $script:TlsSelf, $script:TlsIssued, $script:Proxy407, $script:Proxy403, $script:Tunnel, $script:Silent)) {
        if ($s) { $s.Dispose() }
    }
}

Describe 'ConvertFrom-M365ProxySettingBlob' {
    It 'reads the proxy, bypass list and flags of a WinHttpSettings blob' {
        $proxy = [Text.Encoding]::ASCII.GetBytes('proxy.contoso.com:8080')
        $bypass = [Text.Encoding]::ASCII.GetBytes('<local>;*.contoso.com')
        $blob = [byte[]](@(0x28, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0) + [BitConverter]::GetBytes([int]$proxy.Length) + $proxy +
            [BitConverter]::GetBytes([int]$bypass.Length) + $bypass)
        $s = ConvertFrom-M365ProxySettingBlob -Blob $blob
        $s.flags | Should -Be 3
        $s.proxy | Should -Be 'proxy.contoso.com:8080'
        $s.bypass | Should -Be '<local>;*.contoso.com'
        $s.autoconfig_url | Should -BeNullOrEmpty
    }

    It 'reads the auto-detect flag and PAC URL of a DefaultConnectionSettings blob' {
        $pac = [Text.Encoding]::ASCII.GetBytes('http://wpad.contoso.com/proxy.pac')
        # flags 0x0D: direct, PAC URL, auto-detect; no proxy, no bypass.
        $blob = [byte[]](@(0x46, 0, 0, 0, 2, 0, 0, 0, 0x0D, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) + [BitConverter]::GetBytes([int]$pac.Length) + $pac)
        $s = ConvertFrom-M365ProxySettingBlob -Blob $blob
        $s.flags -band 0x8 | Should -Be 8
        $s.autoconfig_url | Should -Be 'http://wpad.contoso.com/proxy.pac'
        $s.proxy | Should -BeNullOrEmpty
    }

    It 'keeps what a cut-short blob holds and nothing past its end' {
        $blob = [byte[]](0x18, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0x40, 0, 0, 0, 0x41)
        $s = ConvertFrom-M365ProxySettingBlob -Blob $blob
        $s.flags | Should -Be 3
        $s.proxy | Should -BeNullOrEmpty
        (ConvertFrom-M365ProxySettingBlob -Blob $null).flags | Should -Be 0
    }
}

Describe 'Split-M365ProbeEndpoint' {
    It 'splits <Endpoint>' -ForEach @(
        @{ Endpoint = 'login.microsoftonline.com'; HostName = 'login.microsoftonline.com'; Port = 443 }
        @{ Endpoint = 'login.lab.test:8443'; HostName = 'login.lab.test'; Port = 8443 }
        @{ Endpoint = '127.0.0.1:9'; HostName = '127.0.0.1'; Port = 9 }
        @{ Endpoint = '[::1]:4443'; HostName = '::1'; Port = 4443 }
        @{ Endpoint = ' enterpriseregistration.windows.net '; HostName = 'enterpriseregistration.windows.net'; Port = 443 }
    ) {
        $t = Split-M365ProbeEndpoint -Endpoint $Endpoint
        $t.host | Should -Be $HostName
        $t.port | Should -Be $Port
    }

    It 'refuses <Endpoint>, naming it' -ForEach @(
        @{ Endpoint = 'login microsoftonline.com' }
        @{ Endpoint = 'https://login.microsoftonline.com' }
        @{ Endpoint = 'login..microsoftonline.com' }
        @{ Endpoint = 'login.microsoftonline.com:0' }
        @{ Endpoint = 'login.microsoftonline.com:70000' }
        @{ Endpoint = '' }
    ) {
        { Split-M365ProbeEndpoint -Endpoint $Endpoint } | Should -Throw -ExceptionType ([System.ArgumentException]) -ExpectedMessage "*'$Endpoint'*"
    }
}

Describe 'Get-M365ProxyForHost' {
    It 'sends <HostName> through <Expected> under "<Server>" bypassing "<Bypass>"' -ForEach @(
        @{ Server = 'proxy.contoso.com:8080'; Bypass = $null; HostName = 'login.microsoftonline.com'; Expected = 'proxy.contoso.com:8080' }
        @{ Server = 'proxy.contoso.com'; Bypass = $null; HostName = 'login.microsoftonline.com'; Expected = 'proxy.contoso.com:80' }
        @{ Server = 'http://proxy.contoso.com:3128/'; Bypass = $null; HostName = 'login.microsoftonline.com'; Expected = 'proxy.contoso.com:3128' }
        @{ Server = 'http=web:80;https=secure:8443'; Bypass = $null; HostName = 'login.microsoftonline.com'; Expected = 'secure:8443' }
        @{ Server = 'http=web:80;ftp=files:21'; Bypass = $null; HostName = 'login.microsoftonline.com'; Expected = $null }
        @{ Server = 'proxy:8080'; Bypass = '*.microsoftonline.com;<local>'; HostName = 'login.microsoftonline.com'; Expected = $null }
        @{ Server = 'proxy:8080'; Bypass = '<local>'; HostName = 'intranet'; Expected = $null }
        @{ Server = 'proxy:8080'; Bypass = '<local>'; HostName = 'login.microsoftonline.com'; Expected = 'proxy:8080' }
        @{ Server = ''; Bypass = $null; HostName = 'login.microsoftonline.com'; Expected = $null }
    ) {
        Get-M365ProxyForHost -ProxyServer $Server -Bypass $Bypass -HostName $HostName | Should -Be $Expected
    }
}

Describe 'Get-M365UserProxySetting' {
    It 'reads an enabled WinINET proxy with its bypass list' {
        $p = Get-M365UserProxySetting -Values @{ ProxyEnable = 1; ProxyServer = 'proxy.contoso.com:8080'; ProxyOverride = '<local>' }
        $p.source | Should -Be 'wininet'
        $p.server | Should -Be 'proxy.contoso.com:8080'
        $p.bypass | Should -Be '<local>'
        $p.note | Should -BeNullOrEmpty
    }

    It 'ignores a proxy that is switched off' {
        $p = Get-M365UserProxySetting -Values @{ ProxyEnable = 0; ProxyServer = 'proxy.contoso.com:8080' }
        $p.source | Should -Be 'none'
        $p.server | Should -BeNullOrEmpty
    }

    It 'says honestly that a PAC is evaluated by the system and may not have been' {
        $p = Get-M365UserProxySetting -Values @{ AutoConfigURL = 'http://wpad.contoso.com/proxy.pac'; ProxyEnable = 1; ProxyServer = 'fallback:80' }
        $p.source | Should -Be 'pac'
        $p.pac_url | Should -Be 'http://wpad.contoso.com/proxy.pac'
        $p.note | Should -Match 'could not be evaluated'
    }

    It 'takes auto-detect from the connection blob' {
        $blob = [byte[]](0x46, 0, 0, 0, 2, 0, 0, 0, 0x09, 0, 0, 0, 0, 0, 0, 0)
        (Get-M365UserProxySetting -Values @{} -ConnectionBlob $blob).source | Should -Be 'auto_detect'
    }
}

Describe 'Invoke-M365NetworkProbe and Complete-M365NetworkProbe on loopback' {
    It 'reaches a TLS server whose chain ends at a trusted root' {
        $r = Invoke-Judged -Endpoints @("localhost:$($script:TlsSelf.Port)") -TrustedRoots @($script:SelfSigned.Thumbprint)
        $r.complete | Should -BeTrue
        $e = $r.results[0]
        $e.dns.status | Should -Be 'ok'
        $e.dns.addresses | Should -Contain '127.0.0.1'
        $e.tcp.status | Should -Be 'ok'
        $e.route | Should -Be 'direct'
        $e.tls.status | Should -Be 'ok'
        $e.tls.root.thumbprint | Should -Be $script:SelfSigned.Thumbprint
        $e.blocked | Should -BeNullOrEmpty
        $e.detail | Should -Match "^reached localhost:$($script:TlsSelf.Port) \(Tls"
    }

    It 'names TLS inspection when the chain ends at a root not in the list, by thumbprint' {
        $r = Invoke-Judged -Endpoints @("127.0.0.1:$($script:TlsSelf.Port)")
        $e = $r.results[0]
        $e.dns.status | Should -Be 'literal'
        $e.tls.status | Should -Be 'untrusted_root'
        $e.blocked | Should -Be 'tls_inspection'
        $e.detail | Should -BeLike "the certificate chain ends at the root CN=Contoso TLS Inspection CA ``[$($script:SelfSigned.Thumbprint)``]*TLS-inspecting device"
    }

    It 'says where a chain ends whose root this host does not have' {
        $r = Invoke-Judged -Endpoints @("localhost:$($script:TlsIssued.Port)")
        $e = $r.results[0]
        $e.blocked | Should -Be 'tls_inspection'
        $e.tls.root.subject | Should -Be 'CN=localhost'
        $e.detail | Should -BeLike "*CN=localhost, issued by CN=Fabrikam Proxy Root (not in this host's store)*"
    }

    It 'names TCP when nothing listens' {
        $r = Invoke-Judged -Endpoints @("127.0.0.1:$($script:Refused.Port)")
        $e = $r.results[0]
        $e.tcp.status | Should -Be 'refused'
        $e.blocked | Should -Be 'tcp'
        $e.tls | Should -BeNullOrEmpty
        $e.detail | Should -BeLike "no TCP connection to 127.0.0.1:$($script:Refused.Port) (refused: *"
    }

    It 'names proxy authentication with the schemes a 407 offers' {
        $r = Invoke-Judged -Endpoints @('login.microsoftonline.com') -Proxy @{ source = 'winhttp'; server = "127.0.0.1:$($script:Proxy407.Port)" }
        $e = $r.results[0]
        # Through a proxy the client never looks the endpoint up: only the proxy's name.
        $e.route | Should -Be 'proxy'
        $e.dns.name | Should -Be '127.0.0.1'
        $e.connect.code | Should -Be 407
        @($e.connect.auth) | Should -Be @('Negotiate', 'NTLM')
        $e.blocked | Should -Be 'proxy_auth'
        $e.detail | Should -Be "the proxy 127.0.0.1:$($script:Proxy407.Port) asks for authentication: HTTP/1.1 407 Proxy Authentication Required (offers Negotiate, NTLM)"
        $r.proxy.source | Should -Be 'winhttp'
    }

    It 'names the proxy when it refuses the tunnel' {
        $r = Invoke-Judged -Endpoints @('login.microsoftonline.com:443') -Proxy @{ source = 'wininet'; server = "127.0.0.1:$($script:Proxy403.Port)" }
        $r.results[0].blocked | Should -Be 'proxy'
        $r.results[0].detail | Should -BeLike '*refused the tunnel to login.microsoftonline.com:443: HTTP/1.1 403 Forbidden'
    }

    It 'goes through a working tunnel to the TLS server behind it' {
        $r = Invoke-Judged -Endpoints @('localhost') -Proxy @{ source = 'winhttp'; server = "127.0.0.1:$($script:Tunnel.Port)" } -TrustedRoots @($script:SelfSigned.Thumbprint)
        $e = $r.results[0]
        $e.connect.code | Should -Be 200
        $e.tls.status | Should -Be 'ok'
        $e.blocked | Should -BeNullOrEmpty
    }

    It 'goes direct to an endpoint the bypass list names' {
        $r = Invoke-Judged -Endpoints @("127.0.0.1:$($script:Refused.Port)") -Proxy @{ source = 'winhttp'; server = "127.0.0.1:$($script:Proxy407.Port)"; bypass = '127.0.0.*' }
        $r.results[0].route | Should -Be 'direct'
        $r.results[0].blocked | Should -Be 'tcp'
    }

    It 'follows the PAC resolver, and probes direct saying so when it fails' {
        $resolver = { param($HostName, $Port) if ($HostName -eq 'login.microsoftonline.com') { "127.0.0.1:$($script:Proxy407.Port)" } else { throw 'the PAC script failed' } }
        $r = Invoke-Judged -Endpoints @('login.microsoftonline.com', "127.0.0.1:$($script:Refused.Port)") -Proxy @{ source = 'pac'; pac_url = 'http://wpad/proxy.pac' } -PacResolver $resolver
        $r.results[0].route | Should -Be 'proxy'
        $r.results[0].blocked | Should -Be 'proxy_auth'
        $r.results[1].route | Should -Be 'direct'
        $r.results[1].pac | Should -BeLike '*could not be asked (the PAC script failed); probed direct'
    }

    It 'names DNS for a name without an answer, the endpoint or the proxy' {
        Mock -ModuleName _NetworkProbe Start-M365ProbeLookup {
            $tcs = [System.Threading.Tasks.TaskCompletionSource[System.Net.IPAddress[]]]::new()
            $tcs.SetException([System.Net.Sockets.SocketException]::new(11001))
            $tcs.Task
        }
        $r = Invoke-Judged -Endpoints @('login.microsoftonline.com')
        $r.results[0].dns.status | Should -Be 'failed'
        $r.results[0].blocked | Should -Be 'dns'
        $r.results[0].detail | Should -BeLike 'login.microsoftonline.com does not resolve (*'
        $r.results[0].tcp | Should -BeNullOrEmpty
        $p = Invoke-Judged -Endpoints @('login.microsoftonline.com') -Proxy @{ source = 'winhttp'; server = 'proxy.contoso.local:8080' }
        $p.results[0].blocked | Should -Be 'dns'
        $p.results[0].detail | Should -BeLike 'the name of the proxy proxy.contoso.local:8080 does not resolve (*'
        Should -Invoke -ModuleName _NetworkProbe Start-M365ProbeLookup -ParameterFilter { $Name -eq 'proxy.contoso.local' } -Times 1 -Exactly
    }

    It 'looks each name up once, all at once, and stays within its time budget' {
        Mock -ModuleName _NetworkProbe Start-M365ProbeLookup {
            # A DNS server that never answers.
            [System.Threading.Tasks.TaskCompletionSource[System.Net.IPAddress[]]]::new().Task
        }
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $r = Invoke-Judged -Endpoints @('a.contoso.com', 'b.contoso.com', 'a.contoso.com:8443') -TimeoutSeconds 3
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 2.5
        @($r.results.blocked) | Should -Be @('dns', 'dns', 'dns')
        @($r.results.dns.status) | Should -Be @('timeout', 'timeout', 'timeout')
        # Both lookups were pending for the whole phase (a third of the budget), the second
        # too, though its own wait began when the first had used it up.
        foreach ($message in @($r.results.dns.message)) {
            [int]($message -replace '^no answer within (\d+) ms$', '$1') | Should -BeGreaterOrEqual 900
        }
        Should -Invoke -ModuleName _NetworkProbe Start-M365ProbeLookup -Times 2 -Exactly
    }

    It 'reports what the budget did not reach as not probed, never as blocked' {
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        # The silent server takes the TCP connection and never starts TLS: the first
        # endpoint's handshake waits out what is left of the one-second budget.
        $r = Invoke-Judged -Endpoints @("127.0.0.1:$($script:Silent.Port)", "localhost:$($script:TlsSelf.Port)") -TimeoutSeconds 1
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 2.5
        $r.elapsed_ms | Should -BeLessThan 1600
        $r.results[0].blocked | Should -Be 'tls'
        $r.results[1].blocked | Should -BeNullOrEmpty
        $r.results[1].detail | Should -Be 'not probed: the time budget ran out'
        $r.complete | Should -BeFalse
    }

    It 'judges a result that came back through JSON from a user task the same way' {
        $raw = Invoke-M365NetworkProbe -Endpoints @("127.0.0.1:$($script:TlsSelf.Port)") -Context user -Account 'CONTOSO\alice'
        $back = $raw | ConvertTo-Json -Depth 12 | ConvertFrom-Json
        $judged = Complete-M365NetworkProbe -Probe $back -TrustedRoots @('DF3C24F9BFD666761B268073FE06D1CC8D4F82A4')
        $judged.context | Should -Be 'user'
        $judged.results[0].blocked | Should -Be 'tls_inspection'
        $judged.complete | Should -BeTrue
    }
}

Describe 'Get-M365NetworkProbeScript' {
    It 'is the probe without comments, complete in a runspace that has no module' {
        $code = Get-M365NetworkProbeScript
        $code | Should -Not -Match '(?m)^#'
        $code | Should -Not -Match 'Internal collection use only'
        $code | Should -Not -Match 'Complete-M365NetworkProbe'
        $ps = [PowerShell]::Create()
        try {
            $null = $ps.AddScript(". ([scriptblock]::Create(`$args[0])); Invoke-M365UserNetworkProbe -Endpoints @(`$args[1]) -TimeoutSeconds 3").
            AddArgument($code).AddArgument("127.0.0.1:$($script:Refused.Port)")
            $out = @($ps.Invoke())
            $ps.Streams.Error | Should -BeNullOrEmpty
        }
        finally { $ps.Dispose() }
        $out.Count | Should -Be 1
        $out[0].context | Should -Be 'user'
        # Nothing here has a WinINET proxy (no HKCU): direct.
        $out[0].proxy.source | Should -Be 'none'
        $out[0].results[0].tcp.status | Should -Be 'refused'
    }
}
