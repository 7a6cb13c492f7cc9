#!powershell

# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._HybridJoin

# Rung 5 (rejoin_hybrid, opt-in); the logic and its guard rails are Invoke-M365HybridJoin's
# (_HybridJoin.psm1), shared with win_activation_repair.

$spec = @{ options = Get-M365HybridJoinOption; supports_check_mode = $true }
$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)
Invoke-M365HybridJoin -Module $module
