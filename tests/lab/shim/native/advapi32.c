/*
 * Copyright (c) 2026 m365ops maintainers
 * GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
 *
 * The lab's advapi32 credential functions, so the collection's own P/Invoke code
 * (CredEnumerateW / CredDeleteW / CredFree) runs unchanged under pwsh on Linux.
 * .NET resolves [DllImport("advapi32.dll")] through LD_LIBRARY_PATH, which the lab points
 * at <state>/shim/native. The vault is <state>/credentials/<sid>.tsv ("type<TAB>target
 * <TAB>user" lines) of the caller M365OPS_LAB_USER_SID; the administrator's WinRM
 * network logon has no vault (ERROR_NO_SUCH_LOGON_SESSION), as on Windows.
 * Strings are UTF-16 (WCHAR), which is what .NET marshals for CharSet.Unicode.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint16_t WCHAR;
typedef int BOOL;

#define ERROR_NOT_FOUND 1168
#define ERROR_NO_SUCH_LOGON_SESSION 1312
#define ERROR_INVALID_PARAMETER 87
#define ERROR_INVALID_FLAGS 1004
#define ERROR_NOT_ENOUGH_MEMORY 8

typedef struct { uint32_t lo, hi; } FILETIME;

typedef struct {
    uint32_t Flags;
    uint32_t Type;
    WCHAR *TargetName;
    WCHAR *Comment;
    FILETIME LastWritten;
    uint32_t CredentialBlobSize;
    uint8_t *CredentialBlob;
    uint32_t Persist;
    uint32_t AttributeCount;
    void *Attributes;
    WCHAR *TargetAlias;
    WCHAR *UserName;
} CREDENTIALW;

typedef struct { uint32_t type; char target[1024]; char user[512]; } entry;

/* .NET reads the error of a SetLastError=true import from errno on Unix. */
static BOOL fail(int err) { errno = err; return 0; }

static int vault_path(char *buf, size_t len) {
    const char *state = getenv("M365OPS_LAB_STATE");
    const char *sid = getenv("M365OPS_LAB_USER_SID");
    if (!state || !sid || !*sid || strcmp(sid, "S-1-5-18") == 0) return 0;
    snprintf(buf, len, "%s/credentials/%s.tsv", state, sid);
    return 1;
}

static int load(const char *path, entry **out) {
    FILE *f = fopen(path, "r");
    int n = 0, cap = 16;
    char line[2048];
    *out = calloc(cap, sizeof(entry));
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) {
        char *t1 = strchr(line, '\t'), *t2, *nl;
        if (!t1) continue;
        *t1++ = 0;
        t2 = strchr(t1, '\t');
        if (t2) *t2++ = 0; else t2 = "";
        if ((nl = strpbrk(t2, "\r\n"))) *nl = 0;
        if ((nl = strpbrk(t1, "\r\n"))) *nl = 0;
        if (n == cap) { cap *= 2; *out = realloc(*out, cap * sizeof(entry)); }
        (*out)[n].type = (uint32_t)atoi(line);
        snprintf((*out)[n].target, sizeof (*out)[n].target, "%s", t1);
        snprintf((*out)[n].user, sizeof (*out)[n].user, "%s", t2);
        n++;
    }
    fclose(f);
    return n;
}

/* UTF-8 <-> UTF-16 for the BMP and surrogate pairs; target names are ASCII in practice. */
static WCHAR *to_utf16(const char *s, WCHAR *dst) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t c = *p++;
        if (c >= 0xF0) { c = ((c & 7) << 18) | ((p[0] & 63) << 12) | ((p[1] & 63) << 6) | (p[2] & 63); p += 3; }
        else if (c >= 0xE0) { c = ((c & 15) << 12) | ((p[0] & 63) << 6) | (p[1] & 63); p += 2; }
        else if (c >= 0xC0) { c = ((c & 31) << 6) | (p[0] & 63); p += 1; }
        if (c >= 0x10000) { c -= 0x10000; *dst++ = 0xD800 | (c >> 10); *dst++ = 0xDC00 | (c & 0x3FF); }
        else *dst++ = (WCHAR)c;
    }
    *dst++ = 0;
    return dst;
}

static void to_utf8(const WCHAR *w, char *dst, size_t len) {
    size_t i = 0;
    while (*w && i + 4 < len) {
        uint32_t c = *w++;
        if (c >= 0xD800 && c < 0xDC00 && *w) { c = 0x10000 + ((c - 0xD800) << 10) + (*w++ - 0xDC00); }
        if (c < 0x80) dst[i++] = (char)c;
        else if (c < 0x800) { dst[i++] = 0xC0 | (c >> 6); dst[i++] = 0x80 | (c & 63); }
        else if (c < 0x10000) { dst[i++] = 0xE0 | (c >> 12); dst[i++] = 0x80 | ((c >> 6) & 63); dst[i++] = 0x80 | (c & 63); }
        else { dst[i++] = 0xF0 | (c >> 18); dst[i++] = 0x80 | ((c >> 12) & 63); dst[i++] = 0x80 | ((c >> 6) & 63); dst[i++] = 0x80 | (c & 63); }
    }
    dst[i] = 0;
}

/* CredEnumerate's filter: a prefix followed by '*', or NULL for everything. */
static int matches(const char *filter, const char *target) {
    size_t n;
    if (!filter) return 1;
    n = strlen(filter);
    if (n && filter[n - 1] == '*') return strncasecmp(filter, target, n - 1) == 0;
    return strcasecmp(filter, target) == 0;
}

BOOL CredEnumerateW(const WCHAR *filter, uint32_t flags, uint32_t *count, CREDENTIALW ***credentials) {
    char path[4096], f8[1024];
    entry *e = NULL;
    int n, i, k = 0;
    size_t size;
    char *block;
    CREDENTIALW **list, *creds;
    WCHAR *strings;
    if (!count || !credentials) return fail(ERROR_INVALID_PARAMETER);
    if (flags & ~1u) return fail(ERROR_INVALID_FLAGS);
    if (!vault_path(path, sizeof path)) return fail(ERROR_NO_SUCH_LOGON_SESSION);
    if (filter) to_utf8(filter, f8, sizeof f8);
    n = load(path, &e);
    /* One allocation, so CredFree releases everything, as on Windows. */
    size = (size_t)n * (sizeof(CREDENTIALW *) + sizeof(CREDENTIALW) + sizeof(WCHAR) * (1024 + 512 + 4) * 2);
    block = calloc(1, size + 16);
    if (!block) { free(e); return fail(ERROR_NOT_ENOUGH_MEMORY); }
    list = (CREDENTIALW **)block;
    creds = (CREDENTIALW *)(block + (size_t)n * sizeof(CREDENTIALW *));
    strings = (WCHAR *)(creds + n);
    for (i = 0; i < n; i++) {
        if (!matches(filter ? f8 : NULL, e[i].target)) continue;
        creds[k].Type = e[i].type;
        creds[k].Persist = 2; /* CRED_PERSIST_LOCAL_MACHINE */
        creds[k].TargetName = strings;
        strings = to_utf16(e[i].target, strings);
        creds[k].UserName = strings;
        strings = to_utf16(e[i].user, strings);
        list[k] = &creds[k];
        k++;
    }
    free(e);
    if (k == 0) { free(block); *count = 0; *credentials = NULL; return fail(ERROR_NOT_FOUND); }
    *count = (uint32_t)k;
    *credentials = list;
    return 1;
}

BOOL CredDeleteW(const WCHAR *target, uint32_t type, uint32_t flags) {
    char path[4096], tmp[4200], t8[1024];
    entry *e = NULL;
    int n, i, found = 0;
    FILE *f;
    if (!target) return fail(ERROR_INVALID_PARAMETER);
    if (flags) return fail(ERROR_INVALID_FLAGS);
    if (!vault_path(path, sizeof path)) return fail(ERROR_NO_SUCH_LOGON_SESSION);
    to_utf8(target, t8, sizeof t8);
    n = load(path, &e);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f) { free(e); return fail(5); }
    for (i = 0; i < n; i++) {
        if (!found && e[i].type == type && strcasecmp(e[i].target, t8) == 0) { found = 1; continue; }
        fprintf(f, "%u\t%s\t%s\n", e[i].type, e[i].target, e[i].user);
    }
    fclose(f);
    free(e);
    if (!found) { remove(tmp); return fail(ERROR_NOT_FOUND); }
    rename(tmp, path);
    return 1;
}

void CredFree(void *buffer) { free(buffer); }
