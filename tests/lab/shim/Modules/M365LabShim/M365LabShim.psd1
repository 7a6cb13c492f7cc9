@{
    # The lab's stand-ins for the Windows-only commands product code calls. Listed
    # explicitly so pwsh's command discovery finds them without running the module,
    # which is what makes them autoload inside Ansible's CreateDefault2 runspace.
    RootModule = 'M365LabShim.psm1'
    ModuleVersion = '1.0.0'
    GUID = '5b0b7c36-4c8e-4a52-9d6e-0c7f3e1a9b21'
    Author = 'm365ops maintainers'
    Description = 'Windows shim for the m365ops.activation loopback lab (tests only, never shipped).'
    PowerShellVersion = '7.2'
    FunctionsToExport = @(
        'Get-CimInstance', 'Invoke-CimMethod', 'Get-WinEvent',
        'Get-AppxPackage', 'Add-AppxPackage',
        'New-ScheduledTaskAction', 'New-ScheduledTaskPrincipal', 'New-ScheduledTaskSettingsSet',
        'Register-ScheduledTask', 'Start-ScheduledTask', 'Stop-ScheduledTask', 'Unregister-ScheduledTask',
        'Get-ScheduledTask', 'Get-ScheduledTaskInfo',
        'Get-Acl', 'Set-Acl',
        'Import-M365LabRegistry',
        # win_work_accounts' WAM / GetUserNameEx helpers (WinRT does not exist in pwsh 7).
        'Get-M365SignInUpn', 'Get-M365WamAccount', 'Invoke-M365WamSignOut'
    )
    CmdletsToExport = @()
    AliasesToExport = @()
    VariablesToExport = @()
}
