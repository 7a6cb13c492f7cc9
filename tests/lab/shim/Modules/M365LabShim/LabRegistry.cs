// Copyright (c) 2026 m365ops maintainers
// GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
//
// The lab's stand-in for the Windows registry provider. pwsh on Linux has no Registry
// provider, and a missing provider never triggers module autoload, so the shim module
// compiles this once per host and imports it. Keys are folders under
// $M365OPS_LAB_STATE/registry/<HIVE>/..., values live in each key folder's values.json as
// {"name": {"type": "REG_SZ", "value": ...}}. Lookups are case-insensitive like Windows.
using System;
using System.Collections;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Provider;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace M365Lab
{
    public sealed class RegValue
    {
        public string Kind;
        public object Value;
    }

    public static class RegStore
    {
        static readonly string[] Hives = { "HKEY_LOCAL_MACHINE", "HKEY_USERS", "HKEY_CLASSES_ROOT", "HKEY_CURRENT_CONFIG" };
        // The WinRM administrator of every lab host (tests/lab/shim ADMIN_SID).
        const string AdminSid = "S-1-5-21-1004336348-1177238915-682003330-500";

        public static string Root
        {
            get
            {
                string state = Environment.GetEnvironmentVariable("M365OPS_LAB_STATE");
                if (string.IsNullOrEmpty(state)) throw new InvalidOperationException("M365OPS_LAB_STATE is not set: this process is not a lab host's");
                return Path.Combine(state, "registry");
            }
        }

        public static string[] Split(string path)
        {
            if (path == null) return new string[0];
            var parts = path.Split(new[] { '\\', '/' }, StringSplitOptions.RemoveEmptyEntries).ToList();
            if (parts.Count > 0)
            {
                string h = parts[0].ToUpperInvariant();
                if (h == "HKLM") h = "HKEY_LOCAL_MACHINE";
                else if (h == "HKU") h = "HKEY_USERS";
                else if (h == "HKCU") h = "HKEY_CURRENT_USER";
                parts[0] = h;
                if (h == "HKEY_CURRENT_USER")
                {
                    // As on Windows, HKCU is the caller's own hive under HKEY_USERS.
                    string sid = Environment.GetEnvironmentVariable("M365OPS_LAB_USER_SID");
                    if (string.IsNullOrEmpty(sid)) sid = AdminSid;
                    parts[0] = sid;
                    parts.Insert(0, "HKEY_USERS");
                }
            }
            return parts.ToArray();
        }

        public static bool IsHive(string name) { return Hives.Contains(name.ToUpperInvariant()); }

        // Folder of an existing key, matching each segment without regard to case; null if absent.
        public static string Find(string path)
        {
            string[] parts = Split(path);
            if (parts.Length == 0) return null;
            if (!IsHive(parts[0])) return null;
            string dir = Path.Combine(Root, parts[0]);
            if (!Directory.Exists(dir)) return null;
            for (int i = 1; i < parts.Length; i++)
            {
                string seg = Escape(parts[i]);
                string exact = Path.Combine(dir, seg);
                if (Directory.Exists(exact)) { dir = exact; continue; }
                string match = Directory.EnumerateDirectories(dir).FirstOrDefault(d => string.Equals(Path.GetFileName(d), seg, StringComparison.OrdinalIgnoreCase));
                if (match == null) return null;
                dir = match;
            }
            return dir;
        }

        public static string Create(string path)
        {
            string[] parts = Split(path);
            if (parts.Length == 0 || !IsHive(parts[0])) throw new ArgumentException("not a registry path: " + path);
            string dir = Path.Combine(Root, parts[0]);
            Directory.CreateDirectory(dir);
            for (int i = 1; i < parts.Length; i++)
            {
                string seg = Escape(parts[i]);
                string match = Directory.EnumerateDirectories(dir).FirstOrDefault(d => string.Equals(Path.GetFileName(d), seg, StringComparison.OrdinalIgnoreCase));
                dir = match ?? Path.Combine(dir, seg);
                Directory.CreateDirectory(dir);
            }
            return dir;
        }

        // Registry key names may hold '/', which a Linux file name cannot.
        static string Escape(string seg) { return seg.Replace("%", "%25").Replace("/", "%2F"); }
        public static string Unescape(string seg) { return seg.Replace("%2F", "/").Replace("%25", "%"); }

        public static List<string> SubKeys(string dir)
        {
            return Directory.EnumerateDirectories(dir).Select(d => Unescape(Path.GetFileName(d))).OrderBy(n => n, StringComparer.OrdinalIgnoreCase).ToList();
        }

        public static Dictionary<string, RegValue> Read(string dir)
        {
            var result = new Dictionary<string, RegValue>(StringComparer.OrdinalIgnoreCase);
            string file = Path.Combine(dir, "values.json");
            if (!File.Exists(file)) return result;
            var root = JsonNode.Parse(File.ReadAllText(file)) as JsonObject;
            if (root == null) return result;
            foreach (var kv in root)
            {
                var o = kv.Value as JsonObject;
                if (o == null) continue;
                string kind = (string)o["type"] ?? "REG_SZ";
                result[kv.Key] = new RegValue { Kind = kind, Value = FromJson(kind, o["value"]) };
            }
            return result;
        }

        public static void Write(string dir, Dictionary<string, RegValue> values)
        {
            var root = new JsonObject();
            foreach (var kv in values.OrderBy(k => k.Key, StringComparer.OrdinalIgnoreCase))
            {
                root[kv.Key] = new JsonObject { ["type"] = kv.Value.Kind, ["value"] = ToJson(kv.Value.Kind, kv.Value.Value) };
            }
            string file = Path.Combine(dir, "values.json");
            string tmp = file + ".tmp" + Environment.ProcessId;
            File.WriteAllText(tmp, root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            File.Move(tmp, file, true);
        }

        static object FromJson(string kind, JsonNode node)
        {
            switch (kind)
            {
                case "REG_DWORD": return node == null ? 0 : unchecked((int)(long)node);
                case "REG_QWORD": return node == null ? 0L : (long)node;
                case "REG_MULTI_SZ": return node == null ? new string[0] : node.AsArray().Select(n => (string)n).ToArray();
                case "REG_BINARY":
                    string hex = node == null ? "" : (string)node;
                    return Convert.FromHexString(hex.Replace(" ", "").Replace(",", ""));
                default: return node == null ? "" : (string)node;
            }
        }

        static JsonNode ToJson(string kind, object value)
        {
            switch (kind)
            {
                case "REG_DWORD": return JsonValue.Create(Convert.ToInt64(value) & 0xFFFFFFFFL);
                case "REG_QWORD": return JsonValue.Create(Convert.ToInt64(value));
                case "REG_MULTI_SZ":
                    var arr = new JsonArray();
                    foreach (var s in (IEnumerable)value) arr.Add(JsonValue.Create(s == null ? "" : s.ToString()));
                    return arr;
                case "REG_BINARY": return JsonValue.Create(Convert.ToHexString((byte[])value));
                default: return JsonValue.Create(value == null ? "" : value.ToString());
            }
        }

        public static string KindFromTypeName(string typeName, object value)
        {
            switch ((typeName ?? "").ToLowerInvariant())
            {
                case "string": case "reg_sz": return "REG_SZ";
                case "expandstring": case "reg_expand_sz": return "REG_EXPAND_SZ";
                case "dword": case "reg_dword": return "REG_DWORD";
                case "qword": case "reg_qword": return "REG_QWORD";
                case "multistring": case "reg_multi_sz": return "REG_MULTI_SZ";
                case "binary": case "reg_binary": return "REG_BINARY";
                case "": return KindOf(value);
                default: throw new ArgumentException("PropertyType '" + typeName + "' is not a registry value type (String, ExpandString, Binary, DWord, MultiString, QWord)");
            }
        }

        public static string KindOf(object value)
        {
            value = value is PSObject p ? p.BaseObject : value;
            if (value is int || value is uint || value is short || value is byte) return "REG_DWORD";
            if (value is long || value is ulong) return "REG_QWORD";
            if (value is byte[]) return "REG_BINARY";
            if (value is string[] || value is object[]) return "REG_MULTI_SZ";
            return "REG_SZ";
        }

        public static object Convert1(string kind, object value)
        {
            value = value is PSObject p ? p.BaseObject : value;
            switch (kind)
            {
                case "REG_DWORD": return unchecked((int)Convert.ToInt64(value));
                case "REG_QWORD": return Convert.ToInt64(value);
                case "REG_MULTI_SZ":
                    if (value is IEnumerable e && !(value is string)) return e.Cast<object>().Select(o => (o is PSObject q ? q.BaseObject : o)?.ToString() ?? "").ToArray();
                    return new[] { value?.ToString() ?? "" };
                case "REG_BINARY":
                    if (value is byte[] b) return b;
                    if (value is IEnumerable e2) return e2.Cast<object>().Select(o => Convert.ToByte(o is PSObject q ? q.BaseObject : o)).ToArray();
                    return new[] { Convert.ToByte(value) };
                default: return value?.ToString() ?? "";
            }
        }

        public static object Expanded(RegValue v)
        {
            if (v.Kind == "REG_EXPAND_SZ") return Environment.ExpandEnvironmentVariables((string)v.Value);
            if (v.Value is string[] a) return a.Clone();
            if (v.Value is byte[] b) return b.Clone();
            return v.Value;
        }
    }

    // What Get-Item returns for a key: the members product code uses on Microsoft.Win32.RegistryKey.
    public sealed class LabRegistryKey
    {
        readonly string _dir;
        public LabRegistryKey(string name, string dir) { Name = name; _dir = dir; }
        public string Name { get; private set; }
        public string[] GetValueNames() { return RegStore.Read(_dir).Keys.OrderBy(k => k, StringComparer.OrdinalIgnoreCase).ToArray(); }
        public object GetValue(string name)
        {
            RegValue v;
            return RegStore.Read(_dir).TryGetValue(name ?? "", out v) ? RegStore.Expanded(v) : null;
        }
        public object GetValue(string name, object defaultValue) { return GetValue(name) ?? defaultValue; }
        public string GetValueKind(string name)
        {
            RegValue v;
            if (!RegStore.Read(_dir).TryGetValue(name ?? "", out v)) throw new IOException("The specified registry key value does not exist.");
            return v.Kind;
        }
        public string[] GetSubKeyNames() { return RegStore.SubKeys(_dir).ToArray(); }
        public int SubKeyCount { get { return RegStore.SubKeys(_dir).Count; } }
        public int ValueCount { get { return RegStore.Read(_dir).Count; } }
        public string[] Property { get { return GetValueNames(); } }
        public void Close() { }
        public void Dispose() { }
        public override string ToString() { return Name; }
    }

    [CmdletProvider("Registry", ProviderCapabilities.ShouldProcess)]
    public sealed class LabRegistryProvider : NavigationCmdletProvider, IPropertyCmdletProvider, IDynamicPropertyCmdletProvider
    {
        protected override Collection<PSDriveInfo> InitializeDefaultDrives()
        {
            return new Collection<PSDriveInfo> {
                new PSDriveInfo("HKLM", ProviderInfo, "HKEY_LOCAL_MACHINE", "The software settings for the local computer", null),
                new PSDriveInfo("HKCU", ProviderInfo, "HKEY_CURRENT_USER", "The software settings for the current user", null),
            };
        }

        static string Clean(string path)
        {
            return string.Join("\\", RegStore.Split(path));
        }

        protected override bool IsValidPath(string path) { return true; }

        protected override bool ItemExists(string path)
        {
            if (RegStore.Split(path).Length == 0) return true;
            return RegStore.Find(path) != null;
        }

        protected override bool IsItemContainer(string path) { return ItemExists(path); }

        protected override bool HasChildItems(string path)
        {
            string dir = RegStore.Find(path);
            return dir != null && RegStore.SubKeys(dir).Count > 0;
        }

        LabRegistryKey Key(string path, out string dir)
        {
            dir = RegStore.Find(path);
            return dir == null ? null : new LabRegistryKey(Clean(path), dir);
        }

        void NotFound(string path)
        {
            WriteError(new ErrorRecord(new ItemNotFoundException("Cannot find path '" + path + "' because it does not exist."), "PathNotFound", ErrorCategory.ObjectNotFound, path));
        }

        protected override void GetItem(string path)
        {
            string dir;
            var key = Key(path, out dir);
            if (key == null) { NotFound(path); return; }
            WriteItemObject(key, path, true);
        }

        protected override void GetChildItems(string path, bool recurse)
        {
            string dir = RegStore.Find(path);
            if (dir == null) { NotFound(path); return; }
            foreach (string name in RegStore.SubKeys(dir))
            {
                string child = MakePath(path, name);
                WriteItemObject(new LabRegistryKey(Clean(child), Path.Combine(dir, name.Replace("%", "%25").Replace("/", "%2F"))), child, true);
                if (recurse) GetChildItems(child, true);
            }
        }

        protected override void GetChildNames(string path, ReturnContainers returnContainers)
        {
            string dir = RegStore.Find(path);
            if (dir == null) { NotFound(path); return; }
            foreach (string name in RegStore.SubKeys(dir)) WriteItemObject(name, MakePath(path, name), true);
        }

        protected override void NewItem(string path, string itemTypeName, object newItemValue)
        {
            string existing = RegStore.Find(path);
            if (existing != null && !Force)
            {
                WriteError(new ErrorRecord(new IOException("A key at this path already exists."), "System.IO.IOException,Microsoft.PowerShell.Commands.NewItemCommand", ErrorCategory.ResourceExists, path));
                return;
            }
            string[] parts = RegStore.Split(path);
            string parent = string.Join("\\", parts.Take(parts.Length - 1));
            if (!Force && parts.Length > 1 && RegStore.Find(parent) == null) { NotFound(parent); return; }
            if (!ShouldProcess(path, "New Key")) return;
            string dir = RegStore.Create(path);
            if (newItemValue != null)
            {
                var values = RegStore.Read(dir);
                values[""] = new RegValue { Kind = "REG_SZ", Value = newItemValue.ToString() };
                RegStore.Write(dir, values);
            }
            WriteItemObject(new LabRegistryKey(Clean(path), dir), path, true);
        }

        protected override void RemoveItem(string path, bool recurse)
        {
            string dir = RegStore.Find(path);
            if (dir == null) { NotFound(path); return; }
            if (RegStore.Split(path).Length < 2) throw new InvalidOperationException("cannot remove a hive");
            if (!recurse && RegStore.SubKeys(dir).Count > 0)
            {
                WriteError(new ErrorRecord(new IOException("The key has subkeys and -Recurse was not given."), "RemoveItemNotRecursive", ErrorCategory.InvalidOperation, path));
                return;
            }
            if (!ShouldProcess(path, "Remove Key")) return;
            Directory.Delete(dir, true);
        }

        // ---- properties (values) ----
        public void GetProperty(string path, Collection<string> providerSpecificPickList)
        {
            string dir = RegStore.Find(path);
            if (dir == null) { NotFound(path); return; }
            var values = RegStore.Read(dir);
            var obj = new PSObject();
            bool any = false;
            IEnumerable<string> names = (providerSpecificPickList == null || providerSpecificPickList.Count == 0)
                ? values.Keys.OrderBy(k => k, StringComparer.OrdinalIgnoreCase)
                : providerSpecificPickList;
            foreach (string n in names)
            {
                bool wildcard = WildcardPattern.ContainsWildcardCharacters(n);
                var matches = values.Keys.Where(k => wildcard ? new WildcardPattern(n, WildcardOptions.IgnoreCase).IsMatch(k) : string.Equals(k, n, StringComparison.OrdinalIgnoreCase)).ToList();
                if (matches.Count == 0 && !wildcard)
                {
                    WriteError(new ErrorRecord(new PSArgumentException("Property " + n + " does not exist at path " + Clean(path) + "."), "System.Management.Automation.PSArgumentException,Microsoft.PowerShell.Commands.GetItemPropertyCommand", ErrorCategory.InvalidArgument, n));
                    continue;
                }
                foreach (string m in matches)
                {
                    obj.Properties.Add(new PSNoteProperty(m == "" ? "(default)" : m, RegStore.Expanded(values[m])));
                    any = true;
                }
            }
            if (any) WritePropertyObject(obj, path);
        }

        public object GetPropertyDynamicParameters(string path, Collection<string> providerSpecificPickList) { return null; }

        public void SetProperty(string path, PSObject propertyValue)
        {
            string dir = RegStore.Find(path);
            if (dir == null) { NotFound(path); return; }
            var values = RegStore.Read(dir);
            foreach (var p in propertyValue.Properties)
            {
                string name = p.Name == "(default)" ? "" : p.Name;
                RegValue old;
                string kind = values.TryGetValue(name, out old) ? old.Kind : RegStore.KindOf(p.Value);
                if (!ShouldProcess(Clean(path) + " " + name, "Set Property")) continue;
                values[name] = new RegValue { Kind = kind, Value = RegStore.Convert1(kind, p.Value) };
            }
            RegStore.Write(dir, values);
        }

        public object SetPropertyDynamicParameters(string path, PSObject propertyValue) { return null; }

        public void ClearProperty(string path, Collection<string> propertyToClear)
        {
            string dir = RegStore.Find(path);
            if (dir == null) { NotFound(path); return; }
            var values = RegStore.Read(dir);
            foreach (string n in propertyToClear)
            {
                RegValue v;
                if (values.TryGetValue(n, out v)) values[n] = new RegValue { Kind = v.Kind, Value = RegStore.Convert1(v.Kind, v.Kind == "REG_DWORD" || v.Kind == "REG_QWORD" ? (object)0 : "") };
            }
            RegStore.Write(dir, values);
        }

        public object ClearPropertyDynamicParameters(string path, Collection<string> propertyToClear) { return null; }

        public void NewProperty(string path, string propertyName, string propertyTypeName, object value)
        {
            string dir = RegStore.Find(path);
            if (dir == null) { NotFound(path); return; }
            var values = RegStore.Read(dir);
            string name = propertyName == "(default)" ? "" : propertyName;
            if (values.ContainsKey(name) && !Force)
            {
                WriteError(new ErrorRecord(new IOException("The property already exists."), "System.IO.IOException,Microsoft.PowerShell.Commands.NewItemPropertyCommand", ErrorCategory.ResourceExists, propertyName));
                return;
            }
            string kind = RegStore.KindFromTypeName(propertyTypeName, value);
            if (!ShouldProcess(Clean(path) + " " + propertyName, "New Property")) return;
            values[name] = new RegValue { Kind = kind, Value = RegStore.Convert1(kind, value ?? (kind == "REG_DWORD" || kind == "REG_QWORD" ? (object)0 : "")) };
            RegStore.Write(dir, values);
            var obj = new PSObject();
            obj.Properties.Add(new PSNoteProperty(propertyName, RegStore.Expanded(values[name])));
            WritePropertyObject(obj, path);
        }

        public object NewPropertyDynamicParameters(string path, string propertyName, string propertyTypeName, object value) { return null; }

        public void RemoveProperty(string path, string propertyName)
        {
            string dir = RegStore.Find(path);
            if (dir == null) { NotFound(path); return; }
            var values = RegStore.Read(dir);
            var matches = values.Keys.Where(k => new WildcardPattern(propertyName, WildcardOptions.IgnoreCase).IsMatch(k)).ToList();
            if (matches.Count == 0)
            {
                WriteError(new ErrorRecord(new PSArgumentException("Property " + propertyName + " does not exist at path " + Clean(path) + "."), "System.Management.Automation.PSArgumentException,Microsoft.PowerShell.Commands.RemoveItemPropertyCommand", ErrorCategory.InvalidArgument, propertyName));
                return;
            }
            if (!ShouldProcess(Clean(path) + " " + propertyName, "Remove Property")) return;
            foreach (string m in matches) values.Remove(m);
            RegStore.Write(dir, values);
        }

        public object RemovePropertyDynamicParameters(string path, string propertyName) { return null; }

        public void RenameProperty(string path, string sourceProperty, string destinationProperty)
        {
            string dir = RegStore.Find(path);
            if (dir == null) { NotFound(path); return; }
            var values = RegStore.Read(dir);
            RegValue v;
            if (!values.TryGetValue(sourceProperty, out v)) throw new PSArgumentException("Property " + sourceProperty + " does not exist.");
            values.Remove(sourceProperty);
            values[destinationProperty] = v;
            RegStore.Write(dir, values);
        }

        public object RenamePropertyDynamicParameters(string path, string sourceProperty, string destinationProperty) { return null; }
        public void CopyProperty(string sourcePath, string sourceProperty, string destinationPath, string destinationProperty) { throw new NotSupportedException("Copy-ItemProperty is not implemented by the lab registry"); }
        public object CopyPropertyDynamicParameters(string sourcePath, string sourceProperty, string destinationPath, string destinationProperty) { return null; }
        public void MoveProperty(string sourcePath, string sourceProperty, string destinationPath, string destinationProperty) { throw new NotSupportedException("Move-ItemProperty is not implemented by the lab registry"); }
        public object MovePropertyDynamicParameters(string sourcePath, string sourceProperty, string destinationPath, string destinationProperty) { return null; }
    }
}
