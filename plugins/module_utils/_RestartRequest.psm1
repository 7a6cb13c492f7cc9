# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within this collection and may not remain
# stable to outside uses. Changes may be made in ANY release, even a bugfix release.

# A restart scheduled from inside a module's execution (win_activation_repair), the way
# ansible.windows.win_reboot schedules its own: shutdown.exe /r /t <delay> /c <message>.
# Apart from _RebootMarker.psm1 so the modules that only read or write the marker do not
# carry it.

Set-StrictMode -Version 2.0

Function Invoke-M365ShutdownCommand {
    <#
    .SYNOPSIS
    Runs %SystemRoot%\System32\shutdown.exe (by absolute path, never through PATH) and
    returns @{ rc; output }. One call so Pester mocks it.
    #>
    param([string[]]$ArgumentList)
    $exe = [IO.Path]::Combine($env:SystemRoot, 'System32', 'shutdown.exe')
    $output = & $exe @ArgumentList 2>&1 | Out-String
    @{ rc = $LASTEXITCODE; output = $output.Trim() }
}

Function Request-M365Restart {
    <#
    .SYNOPSIS
    Schedules the restart as win_reboot does: shutdown /r /t <delay> /c <message>. A
    restart someone else already scheduled (1190) is aborted and this one scheduled in its
    place, again as win_reboot does. Returns @{ scheduled; rc; output; command }.
    #>
    param([int]$Delay, [string]$Message)
    $arguments = @('/r', '/t', [string]$Delay, '/c', $Message)
    $run = Invoke-M365ShutdownCommand -ArgumentList $arguments
    if ($run.rc -eq 1190) {
        $null = Invoke-M365ShutdownCommand -ArgumentList @('/a')
        $run = Invoke-M365ShutdownCommand -ArgumentList $arguments
    }
    @{ scheduled = ($run.rc -eq 0); rc = $run.rc; output = $run.output; command = "shutdown.exe $($arguments -join ' ')" }
}

Export-ModuleMember -Function Invoke-M365ShutdownCommand, Request-M365Restart
