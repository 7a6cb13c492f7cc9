#!powershell

# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._UserRung
#AnsibleRequires -PowerShell ansible_collections.m365ops.activation.plugins.module_utils._BrokerPlugin

# Rung 4 (reregister_broker_plugin); the logic is Invoke-M365BrokerPluginRegistration's
# (_BrokerPlugin.psm1), shared with win_activation_repair.

$spec = @{ options = Get-M365BrokerPluginOption; supports_check_mode = $true }
# users, require_logged_on and timeout come from the shared user-rung spec.
$module = New-M365UserRungModule -Arguments $args -Spec $spec
Invoke-M365BrokerPluginRegistration -Module $module
