# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# Dot-sourced by the tests of _UserSession.psm1 and win_credential_purge: a stand-in for the
# P/Invoke class the user-session helpers compile (M365Ops.CredVault), same name and
# methods, backed by a list, so the helpers' own matching and deletion logic runs. The
# helpers skip Add-Type when the type exists.
if (-not ('M365Ops.CredVault' -as [type])) {
    Add-Type -TypeDefinition @'
using System.Collections.Generic;
namespace M365Ops {
    public static class CredVault {
        public static List<string> Store = new List<string>();
        public static List<string> Locked = new List<string>();
        public static List<string> ListGenericTargets() { return new List<string>(Store); }
        public static void DeleteGeneric(string target) {
            if (Locked.Contains(target)) throw new System.ComponentModel.Win32Exception(5);
            Store.Remove(target);
        }
    }
}
'@
}
