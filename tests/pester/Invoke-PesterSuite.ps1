# Runs every *.Tests.ps1 under tests/pester and exits non-zero on any failure, so make
# and CI see the result. Prints the closing "N passed, N failed" line CI reads.
param([Parameter(ValueFromRemainingArguments)][string[]]$Path = @($PSScriptRoot))
$ErrorActionPreference = 'Stop'
Import-Module Pester -MinimumVersion 5.5
$config = New-PesterConfiguration
$config.Run.Path = $Path
$config.Run.PassThru = $true
$config.Output.Verbosity = 'Normal'
$result = Invoke-Pester -Configuration $config
"Pester: $($result.PassedCount) passed, $($result.FailedCount) failed, $($result.SkippedCount) skipped"
if ($result.FailedCount -gt 0 -or $result.Result -ne 'Passed') { exit 1 }
if ($result.PassedCount -eq 0) { Write-Error 'Pester ran no test'; exit 1 }
exit 0
