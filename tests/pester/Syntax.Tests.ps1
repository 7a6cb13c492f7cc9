# Every PowerShell file in the collection must at least parse under pwsh 7; the behaviour
# tests live beside this one. PSScriptAnalyzer (pslint) is unavailable here, so this is the
# floor that catches a broken file before a Windows host does.
BeforeDiscovery {
    $root = Resolve-Path (Join-Path $PSScriptRoot '../..')
    $script:psFiles = Get-ChildItem -Path (Join-Path $root 'plugins'), (Join-Path $root 'tests') -Recurse -Include '*.ps1', '*.psm1' |
        Where-Object { $_.FullName -notmatch '[\\/]tests[\\/]output[\\/]' } |
        ForEach-Object { @{ Path = $_.FullName; Name = $_.FullName.Substring($root.Path.Length + 1) } }
}

Describe 'PowerShell sources parse' {
    It '<Name> has no parse errors' -ForEach $psFiles {
        $tokens = $null; $errors = $null
        [System.Management.Automation.Language.Parser]::ParseFile($Path, [ref]$tokens, [ref]$errors) | Out-Null
        ($errors | ForEach-Object { "$($_.Extent.StartLineNumber): $($_.Message)" }) -join "`n" | Should -BeNullOrEmpty
    }

    It 'finds the collection PowerShell files at all' {
        $psFiles.Count | Should -BeGreaterThan 0
    }
}
