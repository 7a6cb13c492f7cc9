# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# Dot-sourced by the tests that start a task runner's command line for real
# (_ScheduledTaskRunner, win_activation_facts): the arguments go to this pwsh as ONE string,
# split by the Windows rules (.NET applies them on Linux too), as Task Scheduler hands an
# action's Arguments to CreateProcess. pwsh on Linux refuses -WindowStyle, which only hides
# the window anyway.

$script:TaskPwsh = if ($env:PWSH) { $env:PWSH } else { Join-Path $PSHOME 'pwsh' }
if (-not (Test-Path -LiteralPath $script:TaskPwsh)) { $script:TaskPwsh = (Get-Command pwsh -ErrorAction Stop).Source }

Function Invoke-TaskArgument {
    param([string]$Argument)
    $psi = [System.Diagnostics.ProcessStartInfo]::new($script:TaskPwsh, $Argument.Replace(' -WindowStyle Hidden ', ' '))
    $psi.UseShellExecute = $false
    $psi.RedirectStandardOutput = $true
    $process = [System.Diagnostics.Process]::Start($psi)
    $null = $process.StandardOutput.ReadToEnd()
    $process.WaitForExit()
    $process.ExitCode
}
