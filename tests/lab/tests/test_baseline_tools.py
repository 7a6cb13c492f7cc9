# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The modules an admin's own playbook uses (benchmarks/baseline/manual_fix.yml) run in the lab:
ansible.windows.win_command, win_shell and win_powershell starting the shim's dsregcmd and
cmdkey. They start processes through kernel32/shell32 P/Invoke (ansible-core's Ansible.Process,
ansible.windows' Process util, win_powershell's std-handle swap), which the shim provides as
native libraries (tests/lab/shim/native/kernel32.c, shell32.c).

The first tests call those libraries directly with ctypes (milliseconds, no pwsh): the Win32
contract the C# callers rely on. The last one runs the three modules through ansible-core's
winrm connection on one seeded lab host.
"""

from __future__ import annotations

import ctypes
import os

import pytest

from ansible_collections.m365ops.activation.tests.lab.shim import native_library
from ..process import running_lab
from .test_ansible import PLAYBOOK_BIN, host_results, run_json
from ..endpoint.winrs import split_command_line

HANDLE = ctypes.c_void_p
STARTF_USESTDHANDLES = 0x100
CREATE_SUSPENDED = 0x4
CREATE_UNICODE_ENVIRONMENT = 0x400
HANDLE_FLAG_INHERIT = 1
INFINITE = 0xFFFFFFFF
STD_OUTPUT_HANDLE = 0xFFFFFFF5  # (DWORD)-11


class SecurityAttributes(ctypes.Structure):
    _fields_ = [("nLength", ctypes.c_uint32), ("lpSecurityDescriptor", ctypes.c_void_p), ("bInheritHandle", ctypes.c_int)]


class StartupInfo(ctypes.Structure):
    # STARTUPINFOW followed by STARTUPINFOEX's attribute list, the layout both C# helpers pass.
    _fields_ = ([("cb", ctypes.c_uint32), ("lpReserved", ctypes.c_void_p), ("lpDesktop", ctypes.c_void_p),
                 ("lpTitle", ctypes.c_void_p)]
                + [(n, ctypes.c_uint32) for n in ("dwX", "dwY", "dwXSize", "dwYSize", "dwXCountChars",
                                                  "dwYCountChars", "dwFillAttribute", "dwFlags")]
                + [("wShowWindow", ctypes.c_uint16), ("cbReserved2", ctypes.c_uint16), ("lpReserved2", ctypes.c_void_p),
                   ("hStdInput", HANDLE), ("hStdOutput", HANDLE), ("hStdError", HANDLE), ("lpAttributeList", ctypes.c_void_p)])


class ProcessInformation(ctypes.Structure):
    _fields_ = [("hProcess", HANDLE), ("hThread", HANDLE), ("dwProcessId", ctypes.c_uint32), ("dwThreadId", ctypes.c_uint32)]


def wide(text: str | None):
    """A NUL-terminated UTF-16 buffer: what .NET passes for CharSet.Unicode on Linux (ctypes'
    c_wchar is 32-bit there, so it cannot be used)."""
    if text is None:
        return None
    data = (text + "\0").encode("utf-16-le")
    return ctypes.create_string_buffer(data, len(data))


def read_wide(address: int) -> str:
    units = []
    while True:
        unit = ctypes.c_uint16.from_address(address + 2 * len(units)).value
        if not unit:
            return b"".join(u.to_bytes(2, "little") for u in units).decode("utf-16-le")
        units.append(unit)


def load(name: str) -> ctypes.CDLL:
    lib = native_library(name=name)
    if lib is None:
        pytest.skip("no C compiler: the shim's native %s cannot be built" % name)
    return ctypes.CDLL(str(lib), use_errno=True)


@pytest.fixture(scope="module")
def shell32():
    lib = load("shell32")
    lib.CommandLineToArgvW.restype = ctypes.POINTER(ctypes.c_void_p)
    lib.CommandLineToArgvW.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    return lib


@pytest.fixture(scope="module")
def kernel32():
    lib = load("kernel32")
    lib.CreatePipe.argtypes = [ctypes.POINTER(HANDLE), ctypes.POINTER(HANDLE), ctypes.POINTER(SecurityAttributes),
                               ctypes.c_uint32]
    lib.SetHandleInformation.argtypes = [HANDLE, ctypes.c_uint32, ctypes.c_uint32]
    lib.CreateProcessW.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                                   ctypes.c_uint32, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(StartupInfo),
                                   ctypes.POINTER(ProcessInformation)]
    lib.ResumeThread.argtypes = [HANDLE]
    lib.ResumeThread.restype = ctypes.c_uint32
    lib.WaitForSingleObject.argtypes = [HANDLE, ctypes.c_uint32]
    lib.WaitForSingleObject.restype = ctypes.c_uint32
    lib.GetExitCodeProcess.argtypes = [HANDLE, ctypes.POINTER(ctypes.c_uint32)]
    lib.CloseHandle.argtypes = [HANDLE]
    lib.SearchPathW.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p,
                                ctypes.POINTER(ctypes.c_void_p)]
    lib.SearchPathW.restype = ctypes.c_uint32
    lib.GetStdHandle.argtypes = [ctypes.c_uint32]
    lib.GetStdHandle.restype = HANDLE
    lib.SetStdHandle.argtypes = [ctypes.c_uint32, HANDLE]
    return lib


def split(shell32, line: str) -> list[str]:
    count = ctypes.c_int()
    block = shell32.CommandLineToArgvW(wide(line), ctypes.byref(count))
    assert block, "CommandLineToArgvW failed, error %d" % ctypes.get_errno()
    try:
        return [read_wide(block[i]) for i in range(count.value)]
    finally:
        ctypes.CDLL(None).free(block)  # LocalFree / Marshal.FreeHGlobal are free() on Linux


@pytest.mark.parametrize("args", [
    '"a b c" d e', '"ab\\"c" "\\\\" d', 'a\\\\\\b d"e f"g h', 'a\\\\\\"b c d', 'a\\\\\\\\"b c" d e',
    '  x  ""  y ', 'é😀 "ü x"',
])
def test_command_line_to_argv_agrees_with_the_lab_winrs_on_microsofts_examples(shell32, args):
    # Microsoft's "Parsing C command-line arguments" examples, after a program name, split by
    # the native stand-in and by the WinRS command-line splitter test_units checks them with.
    line = "prog.exe " + args
    assert split(shell32, line) == split_command_line(line)


def test_command_line_to_argv_takes_the_program_name_verbatim(shell32):
    # argv[0] is a path: up to the closing quote or the first blank, backslashes untouched.
    assert split(shell32, '"C:\\Program Files\\x\\" /s') == ["C:\\Program Files\\x\\", "/s"]
    assert split(shell32, 'dsregcmd /status') == ["dsregcmd", "/status"]
    # An empty command line is the calling program itself.
    assert split(shell32, "") == [os.path.realpath("/proc/self/exe")]


def pipe(kernel32) -> tuple[int, int]:
    read_end, write_end = HANDLE(), HANDLE()
    attrs = SecurityAttributes(ctypes.sizeof(SecurityAttributes), None, 1)
    assert kernel32.CreatePipe(ctypes.byref(read_end), ctypes.byref(write_end), ctypes.byref(attrs), 0)
    return read_end.value, write_end.value


def read_all(fd: int) -> bytes:
    out = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return out
        out += chunk


def start(kernel32, app, line, flags, *, environment=None, cwd=None, stdin=b""):
    """CreateProcessW the way both C# helpers call it: three inheritable pipes whose parent ends
    are made non-inheritable, STARTF_USESTDHANDLES, handles inherited. -> (pi, out, err, code)."""
    out_r, out_w = pipe(kernel32)
    err_r, err_w = pipe(kernel32)
    in_r, in_w = pipe(kernel32)
    for parent_end in (out_r, err_r, in_w):
        assert kernel32.SetHandleInformation(parent_end, HANDLE_FLAG_INHERIT, 0)
    si = StartupInfo(cb=ctypes.sizeof(StartupInfo), dwFlags=STARTF_USESTDHANDLES, hStdInput=in_r, hStdOutput=out_w,
                     hStdError=err_w)
    pi = ProcessInformation()
    env = None
    if environment is not None:
        data = "".join("%s=%s\0" % kv for kv in environment.items()).encode("utf-16-le") + b"\0\0"
        env = ctypes.create_string_buffer(data, len(data))
    ok = kernel32.CreateProcessW(wide(app), wide(line), None, None, 1, flags, env, wide(cwd), ctypes.byref(si),
                                 ctypes.byref(pi))
    error = ctypes.get_errno()
    if not ok:
        for fd in (out_r, out_w, err_r, err_w, in_r, in_w):
            os.close(fd)
        return None, error
    if flags & CREATE_SUSPENDED:
        # Nothing runs before ResumeThread: the child has not written anything yet.
        assert kernel32.WaitForSingleObject(pi.hProcess, 100) == 0x102  # WAIT_TIMEOUT
        assert kernel32.ResumeThread(pi.hThread) == 1
    for child_end in (out_w, err_w, in_r):
        os.close(child_end)
    os.write(in_w, stdin)
    os.close(in_w)
    out, err = read_all(out_r), read_all(err_r)
    os.close(out_r)
    os.close(err_r)
    assert kernel32.WaitForSingleObject(pi.hProcess, INFINITE) == 0
    code = ctypes.c_uint32()
    assert kernel32.GetExitCodeProcess(pi.hProcess, ctypes.byref(code))
    assert kernel32.CloseHandle(pi.hProcess) and kernel32.CloseHandle(pi.hThread)
    return pi, (out, err, code.value)


def test_create_process_runs_suspended_until_resumed_with_pipes_environment_and_directory(kernel32, tmp_path):
    script = 'echo "$GREETING from $(pwd)"; cat; echo oops >&2; exit 7'
    pi, (out, err, code) = start(kernel32, "/bin/sh", 'sh -c "%s"' % script.replace('"', '\\"'),
                                 CREATE_SUSPENDED | CREATE_UNICODE_ENVIRONMENT,
                                 environment={"GREETING": "hällo", "PATH": "/usr/bin:/bin"}, cwd=str(tmp_path),
                                 stdin=b"from stdin\n")
    assert pi.dwProcessId > 0
    assert out.decode() == "hällo from %s\nfrom stdin\n" % tmp_path
    assert (err, code) == (b"oops\n", 7)


def test_create_process_finds_a_program_by_name_with_exe_and_reports_windows_errors(kernel32, tmp_path, monkeypatch):
    # Without lpApplicationName the first word of the command line is searched for on PATH,
    # with ".exe" added, as Windows does; the shim installs each stand-in under both names.
    tool = tmp_path / "tool.exe"
    tool.write_text('#!/bin/sh\nprintf "%s|" "$@"\n')
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:/usr/bin:/bin" % tmp_path)
    pi, (out, err, code) = start(kernel32, None, 'tool "a b" c\\"d', CREATE_UNICODE_ENVIRONMENT)
    assert (out, err, code) == (b'a b|c"d|', b"", 0)
    # ERROR_FILE_NOT_FOUND, ERROR_DIRECTORY (missing working folder), ERROR_ACCESS_DENIED (a folder)
    assert start(kernel32, None, "no-such-tool /x", 0) == (None, 2)
    assert start(kernel32, str(tool), "tool", 0, cwd=str(tmp_path / "missing")) == (None, 267)
    assert start(kernel32, str(tmp_path), "x", 0) == (None, 5)


def test_search_path_answers_the_size_first_then_the_path(kernel32, tmp_path, monkeypatch):
    (tmp_path / "dsregcmd.exe").write_text("")
    monkeypatch.setenv("PATH", "/usr/bin:%s" % tmp_path)
    want = str(tmp_path / "dsregcmd.exe")
    # Ansible.Process.SearchPath: a call with no room returns the length with the terminator ...
    assert kernel32.SearchPathW(None, wide("dsregcmd.exe"), None, 0, None, None) == len(want) + 1
    buf = ctypes.create_string_buffer(2 * (len(want) + 1))
    part = ctypes.c_void_p()
    # ... then the path itself, its length without it, and where the file name starts.
    assert kernel32.SearchPathW(None, wide("dsregcmd"), wide(".exe"), len(want) + 1, buf, ctypes.byref(part)) == len(want)
    assert read_wide(ctypes.addressof(buf)) == want
    assert read_wide(part.value) == "dsregcmd.exe"
    assert kernel32.SearchPathW(None, wide("nothing.exe"), None, 0, None, None) == 0
    assert ctypes.get_errno() == 2


def test_set_std_handle_sends_inheriting_children_to_the_pipe_and_get_std_handle_restores(kernel32, tmp_path):
    # win_powershell: GetStdHandle (kept), SetStdHandle to its pipe, children that inherit the
    # std streams write there, then SetStdHandle with the kept handle puts the original back.
    original = kernel32.GetStdHandle(STD_OUTPUT_HANDLE)
    assert original and original > 2
    read_end, write_end = pipe(kernel32)
    saved = os.dup(1)
    try:
        assert kernel32.SetStdHandle(STD_OUTPUT_HANDLE, write_end)
        si = StartupInfo(cb=ctypes.sizeof(StartupInfo))  # no STARTF_USESTDHANDLES: inherit
        pi = ProcessInformation()
        assert kernel32.CreateProcessW(wide("/bin/echo"), wide("echo to the pipe"), None, None, 1, 0, None, None,
                                       ctypes.byref(si), ctypes.byref(pi))
        assert kernel32.WaitForSingleObject(pi.hProcess, INFINITE) == 0
        assert kernel32.SetStdHandle(STD_OUTPUT_HANDLE, original)
        os.close(write_end)
        assert read_all(read_end) == b"to the pipe\n"
        assert os.path.samestat(os.fstat(1), os.fstat(saved))
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(read_end)


PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: win_command
      ansible.windows.win_command: dsregcmd /status
    - name: win_command with argv (escaped by the module, split by CommandLineToArgvW)
      ansible.windows.win_command:
        argv: [cmdkey, "/delete:no such target"]
      ignore_errors: true
    - name: win_shell
      ansible.windows.win_shell: "(& dsregcmd /status) -match 'DomainJoined'; $env:COMPUTERNAME"
    - name: win_powershell
      ansible.windows.win_powershell:
        script: |
          & dsregcmd /status
          Start-Process -FilePath cmdkey -ArgumentList /list -NoNewWindow -Wait
"""


@pytest.fixture(scope="module")
def hybrid_host(tmp_path_factory):
    with running_lab(tmp_path_factory.mktemp("baseline-tools"), 1, ["--scenario", "PC-HYB-PRT"],
                     startup_timeout=300) as lp:
        yield lp


def test_win_command_win_shell_and_win_powershell_run_the_shim_programs(hybrid_host, tmp_path):
    book = tmp_path / "play.yml"
    book.write_text(PLAYBOOK)
    before = hybrid_host.counts(settle=0.3)
    rc, doc, err = run_json([PLAYBOOK_BIN, "-i", hybrid_host.inventory("ntlm"), str(book)], tmp_path)
    assert rc == 0, (doc, err, hybrid_host.log()[-3000:])
    command, argv, shell, powershell = host_results(doc)["PC-HYB-PRT"]

    assert command["rc"] == 0 and "AzureAdJoined : YES" in command["stdout_lines"][4], command
    # cmdkey got "/delete:no such target" as one argument: its own "not found" answer, exit 1.
    assert argv["rc"] == 1 and argv["cmd"].endswith('cmdkey.exe "/delete:no such target"'), argv
    assert "CMDKEY: Element not found." in argv["stdout"], argv
    # win_shell ran `powershell.exe -EncodedCommand` (the shim's launcher for the host's pwsh).
    assert shell["rc"] == 0 and [ln.strip() for ln in shell["stdout_lines"] if ln.strip()] == [
        "DomainJoined : YES", "PC-HYB-PRT"], shell
    # win_powershell: the native program's output is the script's output; the child started
    # with -NoNewWindow inherited the swapped std handles, so its text is the host output.
    assert not powershell.get("failed") and not powershell["error"], powershell
    assert "AzureAdJoined : YES" in [str(ln).strip() for ln in powershell["output"]], powershell
    assert "Currently stored credentials:" in powershell["host_out"], powershell

    after = hybrid_host.counts()["PC-HYB-PRT"]
    # One WinRS command (module execution) per task, nothing else started over WinRM.
    assert after["processes_started"] - before["PC-HYB-PRT"]["processes_started"] == 4
