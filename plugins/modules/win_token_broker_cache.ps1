#!powershell

# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._TokenBrokerReset

# Rung 3 (reset_token_broker); the logic and its safety rules are
# Invoke-M365TokenBrokerReset's (_TokenBrokerReset.psm1), shared with win_activation_repair.

$spec = @{
    options = Get-M365TokenBrokerOption
    required_if = @(, @('state', 'restored', @('quarantine_id')))
    supports_check_mode = $true
}
$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)
Invoke-M365TokenBrokerReset -Module $module
