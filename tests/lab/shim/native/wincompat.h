/*
 * Copyright (c) 2026 m365ops maintainers
 * GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
 *
 * What the lab's kernel32 and shell32 stand-ins share: Windows' basic types, UTF-16 <-> UTF-8
 * (.NET marshals CharSet.Unicode strings as UTF-16 on Linux too) and shell32's command-line
 * splitting, which CommandLineToArgvW returns and CreateProcessW needs to build a Linux argv.
 * Header-only (static inline functions) so each library is one self-contained .so.
 */
#ifndef M365OPS_LAB_WINCOMPAT_H
#define M365OPS_LAB_WINCOMPAT_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef uint16_t WCHAR;
typedef int BOOL;
typedef uint32_t DWORD;
typedef void *HANDLE;

#define ERROR_FILE_NOT_FOUND 2
#define ERROR_PATH_NOT_FOUND 3
#define ERROR_TOO_MANY_OPEN_FILES 4
#define ERROR_ACCESS_DENIED 5
#define ERROR_INVALID_HANDLE 6
#define ERROR_NOT_ENOUGH_MEMORY 8
#define ERROR_GEN_FAILURE 31
#define ERROR_NOT_SUPPORTED 50
#define ERROR_INVALID_PARAMETER 87
#define ERROR_BAD_EXE_FORMAT 193
#define ERROR_DIRECTORY 267

/* .NET reads the error of a SetLastError=true import from errno on Unix. */
static inline void set_last_error(int err) { errno = err; }

static inline size_t wlen(const WCHAR *s) {
    size_t n = 0;
    while (s && s[n]) n++;
    return n;
}

/* UTF-16 (n units, or up to NUL when n == (size_t)-1) to a malloc'd UTF-8 string. */
static inline char *to_utf8(const WCHAR *s, size_t n) {
    size_t i, o = 0;
    char *out;
    if (!s) return NULL;
    if (n == (size_t)-1) n = wlen(s);
    out = malloc(n * 3 + 1);
    if (!out) return NULL;
    for (i = 0; i < n; i++) {
        uint32_t c = s[i];
        if (c >= 0xD800 && c < 0xDC00 && i + 1 < n && s[i + 1] >= 0xDC00 && s[i + 1] < 0xE000) {
            c = 0x10000 + ((c - 0xD800) << 10) + (s[i + 1] - 0xDC00);
            i++;
        }
        if (c < 0x80) {
            out[o++] = (char)c;
        } else if (c < 0x800) {
            out[o++] = (char)(0xC0 | (c >> 6));
            out[o++] = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            out[o++] = (char)(0xE0 | (c >> 12));
            out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (c & 0x3F));
        } else {
            out[o++] = (char)(0xF0 | (c >> 18));
            out[o++] = (char)(0x80 | ((c >> 12) & 0x3F));
            out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (c & 0x3F));
        }
    }
    out[o] = 0;
    return out;
}

/* UTF-8 to UTF-16 into out (capacity in units, NUL included); returns the units needed without NUL. */
static inline size_t to_utf16(const char *s, WCHAR *out, size_t cap) {
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    while (*p) {
        uint32_t c = *p++;
        int more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
        if (more) c &= 0x3F >> more;
        while (more-- > 0 && (*p & 0xC0) == 0x80) c = (c << 6) | (*p++ & 0x3F);
        if (c >= 0x10000) {
            if (o + 1 < cap) out[o] = (WCHAR)(0xD800 + ((c - 0x10000) >> 10));
            o++;
            c = 0xDC00 + ((c - 0x10000) & 0x3FF);
        }
        if (o + 1 < cap) out[o] = (WCHAR)c;
        o++;
    }
    if (cap) out[o < cap ? o : cap - 1] = 0;
    return o;
}

/*
 * Split a command line with shell32's CommandLineToArgvW rules (the same as Wine documents):
 * argv[0] (the program) ends at the first blank, or is the text between a leading quote and
 * the next one, with no backslash processing. In the other arguments 2n backslashes before a
 * quote give n backslashes and a quote that toggles quoting, 2n+1 give n backslashes and a
 * literal quote, other backslashes are literal; inside quotes, each third quote of a run is
 * a literal one. Returns argc; argv[i] point into buf (wlen(cmd) + argc units).
 */
static inline int split_cmdline(const WCHAR *cmd, WCHAR **argv, WCHAR *buf) {
    const WCHAR *s = cmd;
    WCHAR *d = buf;
    int argc = 0, qcount = 0, bcount = 0;

    if (argv) argv[argc] = d;
    argc++;
    if (*s == '"') {
        s++;
        while (*s && *s != '"') *d++ = *s++;
        if (*s) s++;
    } else {
        while (*s && *s != ' ' && *s != '\t') *d++ = *s++;
    }
    *d++ = 0;
    while (*s == ' ' || *s == '\t') s++;
    if (!*s) return argc;

    if (argv) argv[argc] = d;
    argc++;
    while (*s) {
        if ((*s == ' ' || *s == '\t') && qcount == 0) {
            *d++ = 0;
            bcount = 0;
            while (*s == ' ' || *s == '\t') s++;
            if (!*s) break;
            if (argv) argv[argc] = d;
            argc++;
        } else if (*s == '\\') {
            *d++ = *s++;
            bcount++;
        } else if (*s == '"') {
            if ((bcount & 1) == 0) {
                d -= bcount / 2;
                qcount++;
            } else {
                d -= bcount / 2 + 1;
                *d++ = '"';
            }
            s++;
            bcount = 0;
            while (*s == '"') {
                if (++qcount == 3) {
                    *d++ = '"';
                    qcount = 0;
                }
                s++;
            }
            if (qcount == 2) qcount = 0;
        } else {
            *d++ = *s++;
            bcount = 0;
        }
    }
    *d = 0;
    return argc;
}

/* The number of arguments split_cmdline will find (a dry run into scratch memory). */
static inline int count_args(const WCHAR *cmd, WCHAR *scratch) {
    return split_cmdline(cmd, NULL, scratch);
}

#endif
