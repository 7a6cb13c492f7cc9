# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Windows shim of the loopback lab: a lab host's state folder and its environment.

``seed_host(state_dir, scenario)`` lays a host out from a scenario (tests/lab/scenarios/);
``host_environment(state_dir, pwsh)`` is the clean environment every process of that host
gets. What lives where is documented in tests/lab/shim/README.md.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .. import toolchain
from .sandbox import inherited_clock, with_clock

SHIM_DIR = Path(__file__).resolve().parent
REPO_ROOT = SHIM_DIR.parents[2]
SCENARIO_DIR = SHIM_DIR.parent / 'scenarios'
MODULES_SRC = SHIM_DIR / 'Modules'
PROGRAMS_SRC = SHIM_DIR / 'programs'
NATIVE_SRC = SHIM_DIR / 'native'


def cache_root() -> Path:
    """Where compiled stand-ins are kept between labs: per checkout (build/lab-cache, or
    $M365OPS_LAB_CACHE), every entry named by the hash of what it was built from and put in
    place with one rename, so labs of two clones or two workers never rebuild each other's."""
    return Path(os.environ.get('M365OPS_LAB_CACHE') or REPO_ROOT / 'build' / 'lab-cache')


# Names .NET probes on Linux for [DllImport("advapi32.dll")].
ADVAPI_NAMES = ('advapi32.dll', 'advapi32.dll.so', 'libadvapi32.dll.so', 'libadvapi32.so', 'advapi32.so')
# The Win32 libraries the shim provides (native/<name>.c), each under the names .NET probes for
# the spellings callers use: ansible-core's and ansible.windows' process helpers import
# "kernel32.dll", win_powershell and Ansible.Basic "Kernel32.dll" (Linux file names are case-sensitive).
NATIVE_LIBRARIES = {
    'advapi32': ADVAPI_NAMES,
    'kernel32': tuple(n % base for base in ('kernel32', 'Kernel32')
                      for n in ('%s.dll', '%s.dll.so', 'lib%s.dll.so', 'lib%s.so', '%s.so')),
    'shell32': ('shell32.dll', 'shell32.dll.so', 'libshell32.dll.so', 'libshell32.so', 'shell32.so'),
}

ADMIN_USER = 'labadmin'
ADMIN_SID = 'S-1-5-21-1004336348-1177238915-682003330-500'
BROKER = 'Microsoft.AAD.BrokerPlugin'
BROKER_PUBLISHER_ID = 'cw5n1h2txyewy'
TOKEN_BROKER_DIRS = {
    'aad_broker_plugin': 'AppData/Local/Packages/Microsoft.AAD.BrokerPlugin_cw5n1h2txyewy/AC/TokenBroker/Accounts',
    'cloud_experience_host': 'AppData/Local/Packages/Microsoft.Windows.CloudExperienceHost_cw5n1h2txyewy/AC/TokenBroker/Accounts',
}
# Click-to-Run CDN folder ids (the inverse of the map win_activation_facts reads).
OFFICE_CHANNELS = {
    'Current': '492350f6-3a01-4f97-b9c0-c7c6ddf67d60',
    'CurrentPreview': '64256afe-f5d9-4f86-8936-8840a6a4f5be',
    'MonthlyEnterprise': '55336b82-a18d-4dd6-b5f6-9e5095c314a6',
    'SemiAnnual': '7ffbc6bf-bc32-4f92-8982-f9dd17fd3114',
}
AAD_CHANNEL = 'Microsoft-Windows-AAD/Operational'
LEVELS = {'critical': 1, 'error': 2, 'warning': 3, 'information': 4, 'verbose': 5}
# Programs the shim puts in the host's bin folder, each also under its .exe name because
# pwsh on Linux has no PATHEXT (docs/lab.md, "Programs").
PROGRAMS = ('dsregcmd', 'nltest', 'netsh', 'shutdown', 'cmdkey')
# A user's Workplace Join registrations, under their hive (HKU\<sid>\...).
WPJ_KEY = 'Software\\Microsoft\\Windows NT\\CurrentVersion\\WorkplaceJoin'
# Where .NET on Linux keeps X509Store("My", CurrentUser) below HOME: one PKCS#12 file per
# certificate, named <THUMBPRINT>.pfx. The modules' own X509Store calls read and change it.
DOTNET_MY_STORE = '.dotnet/corefx/cryptography/x509stores/my'
DSREG_TIME = re.compile(r'(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(\.\d{3} UTC)')


class ScenarioError(ValueError):
    """A scenario file that cannot be seeded; the message names the file and the field."""


# --------------------------------------------------------------------------------------
# environment
# --------------------------------------------------------------------------------------
def host_environment(state_dir: Path, pwsh: str) -> dict[str, str]:
    """The whole environment of any process of the host (nothing of the caller's leaks in)."""
    state = Path(state_dir).resolve()
    profile = state / 'Users' / ADMIN_USER
    local = profile / 'AppData' / 'Local'
    temp = local / 'Temp'
    meta = _read_json(state / 'machine.json', {})
    name = str(meta.get('hostname') or state.name).upper()
    env = {
        'COMPUTERNAME': name,
        'USERNAME': ADMIN_USER,
        'USERDOMAIN': name,
        'USERPROFILE': str(profile),
        'HOME': str(profile),
        'LOCALAPPDATA': str(local),
        'APPDATA': str(profile / 'AppData' / 'Roaming'),
        'TEMP': str(temp),
        'TMP': str(temp),
        'TMPDIR': str(temp),
        'ProgramData': str(state / 'ProgramData'),
        'ALLUSERSPROFILE': str(state / 'ProgramData'),
        'ProgramFiles': str(state / 'Program Files'),
        'SystemRoot': str(state / 'Windows'),
        'windir': str(state / 'Windows'),
        'SystemDrive': str(state),
        'PSModulePath': str(state / 'shim' / 'Modules'),
        'PATH': '%s:/usr/bin:/bin' % (state / 'bin'),
        # Where .NET finds the lab's advapi32 (credential vault) for P/Invoke.
        'LD_LIBRARY_PATH': str(state / 'shim' / 'native'),
        'LANG': 'C.UTF-8',
        'POWERSHELL_TELEMETRY_OPTOUT': '1',
        'POWERSHELL_UPDATECHECK': 'Off',
        'DOTNET_CLI_TELEMETRY_OPTOUT': '1',
        # Tiered PGO instruments every method a short-lived pwsh JITs, and a module execution
        # ends before the profile pays off: ~10% less CPU per execution, same behaviour.
        'DOTNET_TieredPGO': '0',
        'M365OPS_LAB_HOST': state.name,
        'M365OPS_LAB_STATE': str(state),
        # The scheduled-task stand-in starts powershell.exe actions with this pwsh.
        'M365OPS_LAB_PWSH': str(pwsh),
    }
    # The lab's moved clock (serve --clock-offset), if any, reaches every process of the host.
    return with_clock(env, inherited_clock())


# --------------------------------------------------------------------------------------
# scenario loading
# --------------------------------------------------------------------------------------
def load_scenario(scenario) -> tuple[dict, Path]:
    """A scenario dict and the folder its relative paths start from."""
    if isinstance(scenario, dict):
        return dict(scenario), SCENARIO_DIR
    path = Path(scenario)
    if not path.is_absolute() and not path.exists():
        path = SCENARIO_DIR / path
    if path.is_dir():
        path = path / 'scenario.yml'
    if not path.is_file():
        raise ScenarioError('scenario %s: no such file' % path)
    text = path.read_text(encoding='utf-8')
    if path.suffix == '.json':
        data = json.loads(text)
    else:
        import yaml  # ansible-core depends on PyYAML, so it is there wherever the lab runs
        data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ScenarioError('scenario %s: top level must be a mapping' % path)
    return data, path.parent


def _read_json(path: Path, default):
    try:
        return json.loads(Path(path).read_text(encoding='utf-8-sig'))
    except FileNotFoundError:
        return default


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(str(value).replace('Z', '+00:00')).astimezone(timezone.utc)


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def _load_evidence(data: dict, base: Path, where: str) -> dict:
    """The evidence bundle a scenario mirrors: dsregcmd text, events, host facts."""
    ev = data.get('evidence')
    if not ev:
        return {'dsreg': data.get('dsregcmd_status', ''), 'events': [], 'facts': {}}
    # A folder next to the scenario, else one of the collection's example bundles.
    folder = base / ev
    if not (folder / 'dsregcmd_status.txt').is_file():
        folder = REPO_ROOT / 'examples' / 'evidence' / ev
    if not (folder / 'dsregcmd_status.txt').is_file():
        raise ScenarioError('%s: evidence: %s is not an evidence folder (no dsregcmd_status.txt)' % (where, ev))
    # Windows writes these as UTF-16 or UTF-8, with or without BOM: one decoder for all.
    from ansible_collections.m365ops.activation.plugins.plugin_utils.evidence import decode_text
    dsreg = decode_text((folder / 'dsregcmd_status.txt').read_bytes(), 'dsregcmd_status.txt')
    events = []
    if (folder / 'aad_events.json').is_file():
        text = decode_text((folder / 'aad_events.json').read_bytes(), 'aad_events.json').strip()
        if text:
            parsed = json.loads(text)
            events = parsed if isinstance(parsed, list) else [parsed]
    facts = _read_json(folder / 'host_facts.json', {})
    return {'dsreg': dsreg, 'events': events, 'facts': facts}


def _event_time(value) -> datetime:
    text = str(value)
    m = re.match(r'^/Date\((-?\d+)\)/$', text.replace('\\/', '/'))
    if m:  # Windows PowerShell 5.1 ConvertTo-Json
        return datetime.fromtimestamp(int(m.group(1)) / 1000, tz=timezone.utc)
    text = re.sub(r'(\.\d{6})\d+', r'\1', text)  # .NET's 7 fraction digits
    return _parse_time(text)


def strip_console(text: str) -> str:
    """A by-hand paste without prompt lines and common indentation: what the program printed."""
    lines = [ln for ln in text.replace('\r\n', '\n').split('\n')
             if not re.match(r'^\s*(PS )?[A-Za-z]:\\.*>', ln)]
    indents = [len(ln) - len(ln.lstrip(' ')) for ln in lines if ln.strip()]
    cut = min(indents) if indents else 0
    return '\n'.join(ln[cut:] for ln in lines).strip('\n') + '\n'


def admin_view(user_text: str, hostname: str) -> str:
    """dsregcmd /status as the administrator's WinRM network logon sees the same device.

    No WAM default account and no PRT: the network logon has neither (docs/triage.md).
    """
    out = []
    box = None
    skip_box = False
    for line in strip_console(user_text).split('\n'):
        title = re.match(r'^\|\s*(.*?)\s*\|$', line)
        if title:
            box = title.group(1)
            skip_box = False
        m = re.match(r'^(\s*)([^:]+?) : ?(.*)$', line)
        if m and box == 'User State':
            key = m.group(2).strip()
            if key.startswith('WamDefault') and key != 'WamDefaultSet':
                continue
            if key == 'WamDefaultSet':
                line = '%s%s : ERROR (0x80070520)' % (m.group(1), m.group(2))
            if key == 'NgcSet':
                line = '%s%s : NO' % (m.group(1), m.group(2))
        elif m and box == 'SSO State':
            key = m.group(2).strip()
            if key == 'AzureAdPrt':
                line = '%s%s : NO' % (m.group(1), m.group(2))
            elif key not in ('AzureAdPrtAuthority', 'EnterprisePrt', 'EnterprisePrtAuthority'):
                skip_box = True
                continue
        elif m and box == 'Diagnostic Data' and m.group(2).strip() == 'Executing Account Name':
            line = '%s%s : %s\\%s' % (m.group(1), m.group(2), hostname.upper(), ADMIN_USER)
        elif skip_box and not line.strip().startswith('+') and not title and line.strip() and ':' not in line:
            continue  # continuation line of a dropped value
        out.append(line)
    return '\n'.join(out)


def _shift_dsreg(text: str, delta: timedelta) -> str:
    def repl(m):
        t = datetime.strptime(m.group(1), '%Y-%m-%d %H:%M:%S').replace(tzinfo=timezone.utc) + delta
        return t.strftime('%Y-%m-%d %H:%M:%S') + m.group(2)
    return DSREG_TIME.sub(repl, text)


# --------------------------------------------------------------------------------------
# registry (the layout LabRegistry.cs reads)
# --------------------------------------------------------------------------------------
def _reg_key(state: Path, key: str) -> Path:
    parts = [p for p in re.split(r'[\\/]', key) if p]
    hive = {'HKLM': 'HKEY_LOCAL_MACHINE', 'HKU': 'HKEY_USERS', 'HKCU': 'HKEY_CURRENT_USER'}.get(
        parts[0].rstrip(':').upper(), parts[0].rstrip(':').upper())
    path = state / 'registry' / hive
    for seg in parts[1:]:
        path = path / seg.replace('%', '%25').replace('/', '%2F')
    path.mkdir(parents=True, exist_ok=True)
    return path


def set_reg(state: Path, key: str, values: dict | None = None) -> None:
    """Create a key and set values: {name: (type, value)}, type REG_SZ, REG_DWORD, ..."""
    path = _reg_key(Path(state), key)
    if not values:
        return
    vfile = path / 'values.json'
    current = _read_json(vfile, {})
    for name, (kind, value) in values.items():
        if kind == 'REG_BINARY':
            value = bytes(value).hex().upper()
        current[name] = {'type': kind, 'value': value}
    vfile.write_text(json.dumps(current, indent=2), encoding='utf-8')


def winhttp_blob(proxy: str | None, bypass: str | None = None) -> bytes:
    """WinHttpSettings as `netsh winhttp set proxy` stores it (little-endian DWORDs)."""
    if not proxy:
        return struct.pack('<IIII', 0x18, 0, 1, 0) + struct.pack('<I', 0)
    p = proxy.encode('ascii')
    b = (bypass or '').encode('ascii')
    return struct.pack('<IIII', 0x18, 0, 3, len(p)) + p + struct.pack('<I', len(b)) + b


# --------------------------------------------------------------------------------------
# seeding
# --------------------------------------------------------------------------------------
def _install_shim(state: Path) -> None:
    modules = state / 'shim' / 'Modules'
    modules.mkdir(parents=True, exist_ok=True)
    for src in MODULES_SRC.iterdir():
        dest = modules / src.name
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(src, dest)
    # Each program is a small sh launcher in bin (the file WinRS and pwsh resolve) running
    # its Python implementation from shim/lib with the system's Python 3 (standard library only).
    lib = state / 'shim' / 'lib'
    if lib.exists():
        shutil.rmtree(lib)
    shutil.copytree(PROGRAMS_SRC, lib, ignore=shutil.ignore_patterns('__pycache__'))
    python = shutil.which('python3', path='/usr/bin:/bin') or sys.executable
    bindir = state / 'bin'
    bindir.mkdir(parents=True, exist_ok=True)
    for prog in PROGRAMS:
        for name in (prog, prog + '.exe'):
            dest = bindir / name
            if dest.exists() or dest.is_symlink():
                dest.unlink()
            dest.write_text('#!/bin/sh\nexec "%s" "%s" "$@"\n' % (python, lib / (prog + '.py')))
            dest.chmod(0o755)
    # Where Windows keeps them: the modules run dsregcmd and shutdown by absolute path
    # (%SystemRoot%\System32\<name>.exe), never through PATH; a restart win_activation_repair
    # schedules from inside its execution reaches the endpoint like win_reboot's.
    system32 = state / 'Windows' / 'System32'
    system32.mkdir(parents=True, exist_ok=True)
    for name in ('dsregcmd.exe', 'shutdown.exe'):
        dest = system32 / name
        if dest.exists() or dest.is_symlink():
            dest.unlink()
        dest.symlink_to(bindir / name)
    # Windows PowerShell, where Windows has it on PATH: programs started through the lab's
    # kernel32 (win_shell runs `powershell.exe -EncodedCommand ...`) find the host's pwsh.
    for name in ('powershell', 'powershell.exe'):
        dest = bindir / name
        if dest.exists() or dest.is_symlink():
            dest.unlink()
        dest.write_text('#!/bin/sh\nexec "${M365OPS_LAB_PWSH:?not a lab host process}" "$@"\n')
        dest.chmod(0o755)


def native_library(cache_dir: Path | None = None, name: str = 'advapi32') -> Path | None:
    """Build (once per source hash) the lab's `name` (advapi32, kernel32, shell32) from native/<name>.c; None without gcc."""
    import hashlib
    src = NATIVE_SRC / ('%s.c' % name)
    # The shared header is part of every library's source.
    digest = hashlib.sha256(src.read_bytes() + (NATIVE_SRC / 'wincompat.h').read_bytes()).hexdigest()[:16]
    cache = Path(cache_dir or cache_root())
    lib = cache / ('lib%s-%s.so' % (name, digest))
    if lib.is_file():
        return lib
    gcc = shutil.which('gcc') or shutil.which('cc')
    if not gcc:
        return None
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / ('.%s.%d.so' % (digest, os.getpid()))
    subprocess.run([gcc, '-shared', '-fPIC', '-O2', '-Wall', '-o', str(tmp), str(src)], check=True,
                   capture_output=True)
    os.replace(tmp, lib)
    return lib


def registry_assembly(pwsh: str, cache_dir: Path | None = None) -> Path:
    """Compile the lab Registry provider once per source hash (the name the shim module looks for)."""
    import hashlib
    src = MODULES_SRC / 'M365LabShim' / 'LabRegistry.cs'
    # Same name as Import-M365LabRegistry computes: SHA-256 of the UTF-8 text, 16 hex digits.
    digest = hashlib.sha256(src.read_text(encoding='utf-8').encode('utf-8')).hexdigest()[:16].upper()
    cache = Path(cache_dir or cache_root())
    dll = cache / ('M365Lab.Registry.%s.dll' % digest)
    if dll.is_file():
        return dll
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / ('.%s.%d.dll' % (digest, os.getpid()))
    script = ("Add-Type -TypeDefinition ([IO.File]::ReadAllText('%s')) -OutputAssembly '%s' -OutputType Library -ErrorAction Stop"
              % (str(src).replace("'", "''"), str(tmp).replace("'", "''")))
    proc = subprocess.run([pwsh, '-NoProfile', '-NonInteractive', '-Command', script], capture_output=True, text=True,
                          check=False, timeout=300, env={'PATH': '/usr/bin:/bin', 'HOME': str(cache), 'LANG': 'C.UTF-8'})
    if proc.returncode != 0 or not tmp.is_file():
        raise ScenarioError('compiling %s failed: %s%s' % (src, proc.stdout, proc.stderr))
    os.replace(tmp, dll)
    return dll


# Bumped when the overlay's layout changes, so a cached overlay of the old layout is rebuilt.
OVERLAY_LAYOUT = 2


def lab_pwsh(pwsh: str, dest: Path | None = None) -> str:
    """A pwsh whose Microsoft.PowerShell.Management also loads the lab Registry provider.

    pwsh loads its engine modules from $PSHOME only, and a missing provider never triggers
    autoload, so a registry path used before any shim command would find no HKLM: drive.
    Windows keeps the Registry provider in Microsoft.PowerShell.Management; this overlay of
    $PSHOME (symlinks, plus real copies of pwsh.dll and its json so $PSHOME resolves here)
    does the same with the lab provider. Returns the launcher to give the lab and
    host_environment as its pwsh: ``powershell/pwsh`` inside the overlay, so that its folder
    is the $PSHOME it runs with. ansible-core's exec wrapper starts the module in a second
    process whenever the interpreter's folder differs from $PSHOME; on Windows it never
    does, and in the lab that second pwsh cost ~1.5 s of CPU per module execution.
    """
    pshome, process = toolchain.pwsh_home(pwsh)
    pshome_p = Path(pshome)
    loader = SHIM_DIR / 'pwsh' / 'M365LabRegistryLoader.psm1'
    import hashlib
    key = hashlib.sha256(('%s|%s|%s|' % (OVERLAY_LAYOUT, pshome, process)).encode() + loader.read_bytes()).hexdigest()[:16]
    final = Path(dest) if dest else cache_root() / ('pwsh-%s' % key)
    final_launcher = final / 'powershell' / 'pwsh'
    if (final / 'stamp').is_file() and (final / 'stamp').read_text() == key:
        return str(final_launcher)
    # Built beside its final name and renamed into place: a lab that finds it finds all of it.
    dest = final.parent / ('.%s.%d.tmp' % (final.name, os.getpid()))
    home = dest / 'powershell'
    if dest.exists():
        shutil.rmtree(dest)
    home.mkdir(parents=True)
    final_home = final / 'powershell'
    copies = {'pwsh.dll', 'pwsh.deps.json', 'pwsh.runtimeconfig.json', 'pwsh'}
    for item in pshome_p.iterdir():
        if item.name == 'Modules':
            continue
        if item.name in copies and item.is_file():
            shutil.copy2(item, home / item.name)
        else:
            (home / item.name).symlink_to(item)
    (home / 'Modules').mkdir()
    for mod in (pshome_p / 'Modules').iterdir():
        if mod.name != 'Microsoft.PowerShell.Management':
            (home / 'Modules' / mod.name).symlink_to(mod)
    mgmt_src = pshome_p / 'Modules' / 'Microsoft.PowerShell.Management'
    mgmt = home / 'Modules' / 'Microsoft.PowerShell.Management'
    mgmt.mkdir()
    for item in mgmt_src.iterdir():
        if item.suffix != '.psd1':
            (mgmt / item.name).symlink_to(item)
    manifest = (mgmt_src / 'Microsoft.PowerShell.Management.psd1').read_text(encoding='utf-8-sig')
    manifest = manifest.split('# SIG # Begin signature block')[0]
    manifest, n = re.subn(r'NestedModules\s*=\s*"Microsoft.PowerShell.Commands.Management.dll"',
                          'NestedModules=@("Microsoft.PowerShell.Commands.Management.dll", "M365LabRegistryLoader.psm1")', manifest)
    if n != 1:
        raise ScenarioError('%s: unexpected Microsoft.PowerShell.Management manifest' % mgmt_src)
    (mgmt / 'Microsoft.PowerShell.Management.psd1').write_text(manifest, encoding='utf-8')
    shutil.copyfile(loader, mgmt / loader.name)
    if Path(process).name == 'dotnet':
        # Framework-dependent (the bundle's "dotnet pwsh.dll"): the same host, our pwsh.dll,
        # started by a script in place of the apphost copy.
        launcher = home / 'pwsh'
        launcher.unlink(missing_ok=True)
        launcher.write_text('#!/bin/sh\nexport DOTNET_ROOT="%s"\nexport DOTNET_MULTILEVEL_LOOKUP=0\n'
                            'exec "%s" "%s" "$@"\n' % (Path(process).parent, process, final_home / 'pwsh.dll'))
        launcher.chmod(0o755)
    # else: the apphost copy in powershell/ finds pwsh.dll beside itself.
    (dest / 'stamp').write_text(key)
    if final.exists() and (final / 'stamp').is_file() and (final / 'stamp').read_text() == key:
        shutil.rmtree(dest)  # another lab built the same overlay first
    else:
        if final.exists():
            shutil.rmtree(final)
        os.rename(dest, final)
    return str(final_launcher)


def _install_native(state: Path) -> bool:
    native = state / 'shim' / 'native'
    native.mkdir(parents=True, exist_ok=True)
    for library, names in NATIVE_LIBRARIES.items():
        try:
            lib = native_library(name=library)
        except subprocess.CalledProcessError as exc:
            raise ScenarioError('building tests/lab/shim/native/%s.c failed: %s' % (library, exc.stderr.decode(errors='replace')))
        if lib is None:
            return False
        for name in names:
            shutil.copyfile(lib, native / name)
    return True


def _make_profile(state: Path, name: str) -> Path:
    profile = state / 'Users' / name
    for sub in ('AppData/Local/Temp', 'AppData/Roaming', '.local/share/powershell'):
        (profile / sub).mkdir(parents=True, exist_ok=True)
    # pwsh on Linux puts ~/.local/share/powershell/Modules ahead of $env:PSModulePath;
    # pointing it at the shim keeps the shim first for every user's processes.
    link = profile / '.local' / 'share' / 'powershell' / 'Modules'
    if not link.is_symlink():
        if link.exists():
            shutil.rmtree(link)
        link.symlink_to(state / 'shim' / 'Modules')
    return profile


def _license_file(product: str, not_after: datetime, tenant: str) -> bytes:
    inner = {'ProductReleaseId': product, 'LicenseType': 'User', 'Status': 'Licensed',
             'ExpiresOn': _iso(not_after + timedelta(days=30)),
             'MetaData': {'NotBefore': _iso(not_after - timedelta(days=30)), 'NotAfter': _iso(not_after),
                          'RenewAfter': _iso(not_after - timedelta(days=23)), 'TenantId': tenant}}
    outer = {'Version': 1, 'License': base64.b64encode(json.dumps(inner).encode()).decode()}
    # Office writes license files as UTF-16 LE with a BOM.
    return '\ufeff'.encode('utf-16-le') + json.dumps(outer).encode('utf-16-le')


def _write_files(folder: Path, count: int, total: int, newest: datetime) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if count <= 0:
        return
    sizes = [total // count] * count
    sizes[-1] += total - sum(sizes)
    for i, size in enumerate(sizes):
        f = folder / ('%032x.tbacct' % (0xA11CE + i))
        f.write_bytes(os.urandom(max(size, 0)))
        t = (newest - timedelta(hours=i)).timestamp()
        os.utime(f, (t, t))


def _plant_links(state: Path, profile: Path, folder: Path, links: list, now: datetime, where: str) -> None:
    """Links a standard user planted in a cache folder, each to a canary outside their profile.

    Every entry is ``{name, target, files, bytes}``: ``folder/name`` becomes a symbolic link
    (what .NET on Linux reports as a ReparsePoint, like a junction on Windows) to ``target``,
    a path relative to the host's state folder. With ``files`` the target is a folder of
    that many files of random bytes (``bytes`` in all), else one file of ``bytes`` bytes.
    The target must stay inside the state folder and outside the user's profile: a test
    checks it is byte-identical after the collection has worked on the cache.
    """
    for link in links:
        if not isinstance(link, dict) or not link.get('name') or not link.get('target'):
            raise ScenarioError('%s: every link needs a name and a target' % where)
        name = str(link['name'])
        if re.search(r'[\\/]', name) or name in ('.', '..'):
            raise ScenarioError('%s: link name %r must be one path segment' % (where, name))
        target = (state / str(link['target'])).resolve()
        if not target.is_relative_to(state) or target.is_relative_to(profile.resolve()):
            raise ScenarioError('%s: link target %r must be inside the host and outside the profile'
                                % (where, link['target']))
        size = int(link.get('bytes', 4096))
        if 'files' in link:
            _write_files(target, int(link['files']), size, now)
        elif not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(os.urandom(size))
        planted = folder / name
        if planted.is_symlink() or planted.is_file():
            planted.unlink()
        planted.symlink_to(target, target_is_directory=target.is_dir())


def _wpj_certificate(device_id: str, not_before: datetime, not_after: datetime) -> tuple[str, bytes]:
    """A Workplace Join device certificate as Windows stores it: subject CN=<device id>, issuer
    CN=MS-Organization-Access, RSA 2048 with its private key. Returns (thumbprint, PKCS#12)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID

    # The issuer's key only signs here: the lab never validates the chain, Windows never does either
    # for this certificate (the device key is what Entra checks).
    issuer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'MS-Organization-Access')]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .sign(issuer_key, hashes.SHA256()))
    pfx = pkcs12.serialize_key_and_certificates(None, key, cert, None, serialization.NoEncryption())
    return cert.fingerprint(hashes.SHA1()).hex().upper(), pfx


def _seed_workplace_join(state: Path, rec: dict, hive_key: str, profile: Path, text: str, where: str) -> dict[str, str]:
    """The Workplace Join registration behind each Work Account box of a user's dsregcmd view.

    Windows keeps one per tenant: HKU\\<sid>\\...\\WorkplaceJoin\\JoinInfo\\<thumbprint> (TenantId,
    UserEmail, IdpDomain), TenantInfo\\<tenant id> (DisplayName) and the device certificate in the
    user's personal store. dsregcmd does not print the account, so the scenario names it
    (users[].workplace_join[] {tenant_id, user_email}). The certificate is made here, so its
    thumbprint is not the evidence's: returns evidence thumbprint -> seeded thumbprint.
    """
    from ansible_collections.m365ops.activation.plugins.plugin_utils.dsreg import parse_dsreg_status
    boxes = parse_dsreg_status(text).get('work_accounts') or []
    given = {str(e.get('tenant_id', '')).lower(): e for e in rec.get('workplace_join') or []}
    here = '%s: users[] %s: workplace_join' % (where, rec['sid'])
    tenants = {str(b.get('workplace_tenant_id') or '').lower() for b in boxes}
    extra = sorted(set(given) - tenants)
    if extra:
        raise ScenarioError('%s: tenant %r has no Work Account box in the user\'s dsregcmd /status' % (here, extra[0]))
    store = profile / DOTNET_MY_STORE
    mapping = {}
    for box in boxes:
        tenant = str(box.get('workplace_tenant_id') or '')
        entry = given.get(tenant.lower()) or {}
        if not entry.get('user_email'):
            raise ScenarioError('%s: give the user_email of the Work Account in tenant %s (Windows keeps it in '
                                'JoinInfo UserEmail; dsregcmd does not print it)' % (here, tenant or '(none)'))
        m = re.match(r'^\[\s*(.+?) UTC -- (.+?) UTC\s*\]$', str(box.get('device_certificate_validity') or ''))
        if not m:
            raise ScenarioError('%s: the Work Account box of tenant %s has no DeviceCertificateValidity' % (here, tenant))
        validity = [datetime.strptime(t.split('.')[0], '%Y-%m-%d %H:%M:%S').replace(tzinfo=timezone.utc) for t in m.groups()]
        thumbprint, pfx = _wpj_certificate(str(box.get('workplace_device_id')), *validity)
        root = '%s\\%s' % (hive_key, WPJ_KEY)
        set_reg(state, '%s\\JoinInfo\\%s' % (root, thumbprint), {
            'TenantId': ('REG_SZ', tenant), 'UserEmail': ('REG_SZ', entry['user_email']),
            'IdpDomain': ('REG_SZ', box.get('workplace_idp') or 'login.windows.net')})
        set_reg(state, '%s\\TenantInfo\\%s' % (root, tenant), {'DisplayName': ('REG_SZ', box.get('workplace_tenant_name') or '')})
        store.mkdir(parents=True, exist_ok=True)
        (store / ('%s.pfx' % thumbprint)).write_bytes(pfx)
        mapping[str(box.get('workplace_thumbprint'))] = thumbprint
    return mapping


def _merge_users(facts: dict, overrides: list, where: str) -> list[dict]:
    """One record per user: profile facts + user-context facts + scenario overrides."""
    users: dict[str, dict] = {}
    for p in facts.get('profiles') or []:
        users[p['sid']] = {'sid': p['sid'], 'account': p.get('user'), 'profile_facts': p}
    for u in facts.get('users') or []:
        users.setdefault(u['sid'], {'sid': u['sid'], 'account': u.get('user')})['user_facts'] = u
    for o in overrides or []:
        if 'sid' not in o:
            raise ScenarioError('%s: users[]: every user needs a sid' % where)
        users.setdefault(o['sid'], {'sid': o['sid']}).update(o)
    out = []
    for rec in users.values():
        account = rec.get('account') or ''
        domain, _sep, name = account.rpartition('\\')
        rec.setdefault('name', name or rec.get('name'))
        rec.setdefault('domain', domain or 'CONTOSO')
        if not rec.get('name'):
            raise ScenarioError('%s: users[] %s: give a name (or account DOMAIN\\name)' % (where, rec['sid']))
        out.append(rec)
    return out


def seed_host(state_dir: Path, scenario, pwsh: str | None = None) -> None:
    """Lay out a lab host's state folder from a scenario (dict, or a YAML/JSON file or folder).

    With ``pwsh`` the registry provider is compiled now (once per source, shared by all hosts)
    instead of by the host's first PowerShell process, which would spend ~10 s on it.
    """
    data, base = load_scenario(scenario)
    where = 'scenario %s' % data.get('name', base.name)
    state = Path(state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    ev = _load_evidence(data, base, where)
    facts = ev['facts']
    hostname = str(data.get('hostname') or facts.get('hostname') or state.name).upper()

    # Everything happens "now" (the lab's clock, which --clock-offset may move): times in the
    # evidence keep their distance to when it was collected, so rules that judge ages (PRT,
    # events, licenses) see the same picture on any day. A scenario must say when that was:
    # falling back to the wall clock left absolute dates that aged out of the event window.
    now = datetime.now(timezone.utc).replace(microsecond=0)
    if not data.get('reference_time'):
        raise ScenarioError('%s: reference_time is required (when the evidence was collected, '
                            'e.g. its host_facts.collected_at); every time in it is relative to that' % where)
    try:
        reference = _parse_time(data['reference_time'])
    except ValueError:
        raise ScenarioError('%s: reference_time %r is not an ISO 8601 time' % (where, data['reference_time'])) from None
    delta = now - reference

    for sub in ('ProgramData', 'Program Files', 'Windows/Temp', 'Windows/System32/config/systemprofile',
                'lab', 'tasks', 'dsreg/users', 'credentials', 'wam'):
        (state / sub).mkdir(parents=True, exist_ok=True)
    _install_shim(state)
    native = _install_native(state)
    if pwsh:
        (state / 'shim' / 'cache').mkdir(parents=True, exist_ok=True)
        dll = registry_assembly(pwsh)
        shutil.copyfile(dll, state / 'shim' / 'cache' / dll.name)
    _make_profile(state, ADMIN_USER)
    sysprofile = state / 'Windows' / 'System32' / 'config' / 'systemprofile'
    for sub in ('AppData/Local/Temp', '.local/share/powershell'):
        (sysprofile / sub).mkdir(parents=True, exist_ok=True)
    link = sysprofile / '.local' / 'share' / 'powershell' / 'Modules'
    if not link.is_symlink():
        link.symlink_to(state / 'shim' / 'Modules')

    os_facts = dict(facts.get('os') or {})
    os_facts.update(data.get('os') or {})
    build = int(os_facts.get('build', 22631))
    boot = _parse_time(data['boot_time']) + delta if data.get('boot_time') else now - timedelta(hours=6)
    machine = {
        'hostname': hostname, 'domain': data.get('domain', ''), 'part_of_domain': bool(data.get('domain')),
        'build': build, 'version': '10.0.%d' % build,
        'product_name': os_facts.get('product_name', 'Windows 10 Enterprise'),
        'boot_time': _iso(boot), 'seeded_at': _iso(now), 'scenario': data.get('name', base.name),
        'domain_controller': data.get('domain_controller'),
        # False when no C compiler was found: credential P/Invoke (advapi32) and the process
        # helpers of win_command / win_shell / win_powershell (kernel32, shell32) then fail in this host.
        'native_credentials': native,
        'native_processes': native,
    }
    (state / 'machine.json').write_text(json.dumps(machine, indent=2))

    # ---- registry: HKLM ----
    cv = 'HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion'
    set_reg(state, cv, {'CurrentBuildNumber': ('REG_SZ', str(build)), 'CurrentMajorVersionNumber': ('REG_DWORD', 10),
                        'CurrentMinorVersionNumber': ('REG_DWORD', 0), 'UBR': ('REG_DWORD', int(os_facts.get('ubr', 4460))),
                        'DisplayVersion': ('REG_SZ', os_facts.get('display_version', '23H2')),
                        'ProductName': ('REG_SZ', machine['product_name'])})
    office = dict(facts.get('office') or {})
    office.update(data.get('office') or {})
    if office.get('installed', True):
        guid = OFFICE_CHANNELS.get(office.get('channel') or 'Current', OFFICE_CHANNELS['Current'])
        set_reg(state, 'HKLM\\SOFTWARE\\Microsoft\\Office\\ClickToRun\\Configuration', {
            'VersionToReport': ('REG_SZ', office.get('version', '16.0.17928.20114')),
            'CDNBaseUrl': ('REG_SZ', 'http://officecdn.microsoft.com/pr/%s' % guid),
            'Platform': ('REG_SZ', 'x64'), 'ProductReleaseIds': ('REG_SZ', 'O365ProPlusRetail'),
            'SharedComputerLicensing': ('REG_SZ', '1' if office.get('shared_computer_licensing') else '0')})
    network = facts.get('network') or {}
    proxy = data.get('winhttp_proxy', network.get('proxy_server'))
    set_reg(state, 'HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Connections',
            {'WinHttpSettings': ('REG_BINARY', winhttp_blob(proxy, network.get('bypass_list')))})
    set_reg(state, 'HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager')
    pending = facts.get('pending_reboot') or {}
    if pending.get('windows') or data.get('windows_reboot_pending'):
        set_reg(state, 'HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\RebootPending')
    for key, spec in (data.get('registry') or {}).items():
        set_reg(state, key, {n: (v['type'], v['value']) for n, v in (spec or {}).items()})

    # ---- users, profiles, sessions ----
    users = _merge_users(facts, data.get('users'), where)
    profile_list = 'HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\ProfileList'
    set_reg(state, profile_list + '\\S-1-5-18', {'ProfileImagePath': ('REG_EXPAND_SZ', str(sysprofile))})
    records = [{'sid': ADMIN_SID, 'name': ADMIN_USER, 'domain': hostname, 'upn': None,
                'profile': str(state / 'Users' / ADMIN_USER)}]
    # The WinRM administrator's hive is loaded (HKCU: of the administrator's processes).
    set_reg(state, 'HKU\\%s\\Software\\Microsoft' % ADMIN_SID)
    # The administrator's own profile is left out of ProfileList, as in the example
    # evidence, so the profiles the collection reports are the scenario's users only.
    sessions = []
    dsreg_device = ev['dsreg']
    by_hand = data.get('dsregcmd_context', 'admin' if facts.get('users') is not None else 'user') == 'user'
    appx_users = [ADMIN_SID]
    thumbprints: dict[str, str] = {}  # evidence thumbprint -> the seeded certificate's
    for rec in users:
        pf = rec.get('profile_facts') or {}
        uf = rec.get('user_facts') or {}
        logged_on = rec.get('logged_on', pf.get('logged_on', uf.get('status', 'ok') != 'not_logged_on'))
        hive = rec.get('hive_loaded', pf.get('hive_loaded', logged_on))
        profile = _make_profile(state, rec['name'])
        upn = rec.get('upn', uf.get('sign_in_upn'))
        records.append({'sid': rec['sid'], 'name': rec['name'], 'domain': rec['domain'], 'upn': upn, 'profile': str(profile)})
        set_reg(state, '%s\\%s' % (profile_list, rec['sid']), {'ProfileImagePath': ('REG_EXPAND_SZ', str(profile))})
        if upn:
            set_reg(state, 'HKLM\\SOFTWARE\\Microsoft\\IdentityStore\\Cache\\%s\\IdentityCache\\%s' % (rec['sid'], rec['sid']),
                    {'UserName': ('REG_SZ', upn)})
        if logged_on:
            sessions.append({'sid': rec['sid'], 'name': rec['name'], 'domain': rec['domain']})
        # A loaded hive is HKU\<sid>; an unloaded one waits in the profile (NTUSER.DAT).
        hive_key = 'HKU\\%s' % rec['sid']
        set_reg(state, hive_key + '\\Software\\Microsoft\\Office\\16.0\\Common\\Identity')
        for name, value in ((pf.get('identity_policy') or {}) | (rec.get('identity_policy') or {})).items():
            if value is not None:
                set_reg(state, hive_key + '\\Software\\Microsoft\\Office\\16.0\\Common\\Identity', {name: ('REG_DWORD', int(value))})
        licensing = rec.get('licensing', pf.get('licensing')) or {}
        lic_dir = profile / 'AppData' / 'Local' / 'Microsoft' / 'Office' / 'Licenses' / '5'
        for i, lic in enumerate(licensing.get('licenses') or []):
            lic_dir.mkdir(parents=True, exist_ok=True)
            not_after = _parse_time(lic['not_after']) + delta
            (lic_dir / ('%010x.json' % (0xE9A1C2B3D4 + i))).write_bytes(
                _license_file(lic.get('product', 'O365ProPlusRetail'), not_after, data.get('tenant_id', '')))
        if licensing.get('mode') == 'vNext':
            set_reg(state, hive_key + '\\Software\\Microsoft\\Office\\16.0\\Common\\Licensing\\LicensingNext',
                    {'o365proplusretail': ('REG_DWORD', 2)})
        tb = (pf.get('token_broker') or {}) | (rec.get('token_broker') or {})
        for key, rel in TOKEN_BROKER_DIRS.items():
            stat = tb.get(key) or {}
            newest = _parse_time(stat['newest']) + delta if stat.get('newest') else now - timedelta(days=1)
            _write_files(profile / rel, int(stat.get('files', 0)), int(stat.get('bytes', 0)), newest)
            _plant_links(state, profile, profile / rel, stat.get('links') or [], now,
                         '%s: users[] %s: token_broker.%s.links' % (where, rec['sid'], key))
        # user context: dsregcmd output (and the Workplace Join registrations behind its
        # Work Account boxes, in the hive and the user's certificate store), vault, WAM accounts
        text = rec.get('dsregcmd_status') or uf.get('dsregcmd_status')
        if not text and by_hand and rec is users[0]:
            text = ev['dsreg']
        if text:
            text = _shift_dsreg(strip_console(text), delta)
            for old, new in _seed_workplace_join(state, rec, hive_key, profile, text, where).items():
                thumbprints[old] = new
                text = text.replace(old, new)
            (state / 'dsreg' / 'users' / ('%s.txt' % rec['sid'])).write_text(text, encoding='utf-8')
        elif rec.get('workplace_join'):
            raise ScenarioError('%s: users[] %s: workplace_join needs the user\'s dsregcmd /status with its Work Account boxes'
                                % (where, rec['sid']))
        if not hive:
            src = state / 'registry' / 'HKEY_USERS' / rec['sid']
            dest = profile / 'NTUSER.DAT'
            if dest.exists():
                shutil.rmtree(dest)
            shutil.move(str(src), str(dest))
        creds = rec.get('credential_targets', uf.get('credential_targets')) or []
        # One vault line per credential: type (1 = CRED_TYPE_GENERIC), target, user.
        (state / 'credentials' / ('%s.tsv' % rec['sid'])).write_text(
            ''.join('1\t%s\t%s\n' % (t, upn or rec['name']) for t in creds), encoding='utf-8')
        (state / 'wam' / ('%s.json' % rec['sid'])).write_text(json.dumps(
            rec.get('wam_accounts', uf.get('wam_accounts')) or [], indent=2))
        if rec.get('broker_plugin_registered', uf.get('broker_plugin_registered', True)):
            appx_users.append(rec['sid'])
    (state / 'users.json').write_text(json.dumps(records, indent=2))
    (state / 'sessions.json').write_text(json.dumps(sessions, indent=2))
    if by_hand:
        dsreg_device = admin_view(dsreg_device, hostname)
    dsreg_device = _shift_dsreg(strip_console(dsreg_device), delta)
    for old, new in thumbprints.items():
        dsreg_device = dsreg_device.replace(old, new)
    (state / 'dsreg' / 'device.txt').write_text(dsreg_device, encoding='utf-8')

    # ---- AppX ----
    bp = dict(facts.get('broker_plugin') or {'installed': True, 'version': '1000.19580.1000.0', 'status': 'Ok'})
    bp.update(data.get('broker_plugin') or {})
    install = state / 'Windows' / 'SystemApps' / ('%s_%s' % (BROKER, BROKER_PUBLISHER_ID))
    install.mkdir(parents=True, exist_ok=True)
    (install / 'AppxManifest.xml').write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<Package xmlns="http://schemas.microsoft.com/appx/manifest/foundation/windows10">'
        '<Identity Name="%s" Publisher="CN=Microsoft Windows" Version="%s" ProcessorArchitecture="neutral" /></Package>\n'
        % (BROKER, bp.get('version')))
    appx = {}
    if bp.get('installed', True):
        appx[BROKER] = {'version': bp.get('version'), 'status': bp.get('status') or 'Ok',
                        'install_location': str(install), 'publisher_id': BROKER_PUBLISHER_ID,
                        'users': sorted(set(bp.get('users') or appx_users))}
    (state / 'appx.json').write_text(json.dumps(appx, indent=2))

    # ---- events: Microsoft-Windows-AAD/Operational ----
    events = []
    for e in (data.get('events') if 'events' in data else ev['events']) or []:
        level = e.get('Level') or LEVELS.get(str(e.get('LevelDisplayName', 'information')).lower(), 4)
        events.append({'LogName': AAD_CHANNEL, 'ProviderName': 'Microsoft-Windows-AAD', 'Id': int(e['Id']),
                       'Level': int(level), 'TimeCreated': _iso(_event_time(e['TimeCreated']) + delta),
                       'Message': e.get('Message', '')})
    (state / 'events.json').write_text(json.dumps(events, indent=2))
    # The hybrid-join task every domain-joined Windows has.
    if machine['part_of_domain']:
        task = {'name': 'Automatic-Device-Join', 'path': '\\Microsoft\\Windows\\Workplace Join\\', 'enabled': True,
                'actions': [{'execute': '%windir%\\system32\\dsregcmd.exe', 'arguments': '$(Arg0) $(Arg1) $(Arg2)'}],
                'principal': {'user_id': 'S-1-5-18', 'logon_type': 'ServiceAccount', 'run_level': 'Highest'},
                'settings': {}, 'run': None}
        (state / 'tasks' / '_microsoft_windows_workplace_join_automatic-device-join.json').write_text(json.dumps(task, indent=2))
