#!powershell

# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic

# Test-only module (never shipped; tests/lab is in galaxy.yml build_ignore): makes a
# connection carry the three shapes of module result that stress it - a failure, warnings,
# and a large value - so a test can check they come back exactly as the module wrote them.
# The host computes the large value's SHA-256 and length itself, which lets the controller
# tell a value damaged in transit from one the module never produced.

Set-StrictMode -Version 2.0

$spec = @{
    options = @{
        fail_msg = @{ type = 'str' }
        warnings = @{ type = 'list'; elements = 'str'; default = @() }
        pattern = @{ type = 'str'; default = '' }
        length = @{ type = 'int'; default = 0 }
    }
    supports_check_mode = $true
}
$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

foreach ($warning in $module.Params.warnings) {
    $module.Warn($warning)
}

if ($module.Params.length -gt 0 -and $module.Params.pattern -eq '') {
    $module.FailJson("pattern must not be empty when length is set")  # else the loop below never ends
}

# The pattern repeated and cut to exactly `length` characters (UTF-16 code units, as .NET
# and Python count a BMP-only string alike).
$builder = [System.Text.StringBuilder]::new($module.Params.length)
while ($builder.Length -lt $module.Params.length) {
    [void]$builder.Append($module.Params.pattern)
}
$value = $builder.ToString().Substring(0, $module.Params.length)

$sha = [System.Security.Cryptography.SHA256]::Create()
try {
    $digest = $sha.ComputeHash([System.Text.Encoding]::UTF8.GetBytes($value))
}
finally {
    $sha.Dispose()
}
$module.Result.value = $value
$module.Result.length = $value.Length
$module.Result.sha256 = [System.BitConverter]::ToString($digest).Replace('-', '').ToLowerInvariant()

if ($null -ne $module.Params.fail_msg) {
    # After the warnings, so a failed result still carries them.
    $module.FailJson($module.Params.fail_msg)
}
$module.ExitJson()
