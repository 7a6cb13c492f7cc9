/*
 * Copyright (c) 2026 m365ops maintainers
 * GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
 *
 * The lab's shell32: CommandLineToArgvW, which ansible-core's Ansible.Process
 * (ParseCommandLine: win_shell, win_reboot's helpers) and ansible.windows' Process util
 * (CommandLineToArgv: win_command, win_powershell) call through [DllImport("shell32.dll")].
 * Without a library of that name pwsh on Linux fails the call with "Value cannot be null
 * (Parameter 'path1')": its native-library fallback (PowerShellAssemblyLoadContext's
 * NativeDllHandler) combines the directory of the calling assembly, and an assembly
 * compiled in memory by Add-Type has none.
 */
#include <unistd.h>

#include "wincompat.h"

/* One block: argc pointers, then the strings. The caller frees it with LocalFree (or
 * Marshal.FreeHGlobal, which is free() on Linux). */
WCHAR **CommandLineToArgvW(const WCHAR *cmd, int *num_args) {
    WCHAR *scratch, **block;
    size_t n;
    int argc;

    if (!num_args) {
        set_last_error(ERROR_INVALID_PARAMETER);
        return NULL;
    }
    if (!cmd || !*cmd) {
        /* An empty command line gives the program's own path, unsplit, as on Windows. */
        char path[4096];
        ssize_t len = readlink("/proc/self/exe", path, sizeof path - 1);
        path[len > 0 ? len : 0] = 0;
        n = to_utf16(path, NULL, 0);
        block = malloc(2 * sizeof(WCHAR *) + (n + 1) * sizeof(WCHAR));
        if (!block) {
            set_last_error(ERROR_NOT_ENOUGH_MEMORY);
            return NULL;
        }
        block[0] = (WCHAR *)(block + 2);
        block[1] = NULL;
        to_utf16(path, block[0], n + 1);
        *num_args = 1;
        return block;
    }
    n = wlen(cmd);
    scratch = malloc((2 * n + 4) * sizeof(WCHAR));
    if (!scratch) {
        set_last_error(ERROR_NOT_ENOUGH_MEMORY);
        return NULL;
    }
    argc = count_args(cmd, scratch);
    free(scratch);
    block = malloc((argc + 1) * sizeof(WCHAR *) + (2 * n + 4) * sizeof(WCHAR));
    if (!block) {
        set_last_error(ERROR_NOT_ENOUGH_MEMORY);
        return NULL;
    }
    split_cmdline(cmd, block, (WCHAR *)(block + argc + 1));
    block[argc] = NULL;
    *num_args = argc;
    return block;
}
