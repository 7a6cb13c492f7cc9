/*
 * Copyright (c) 2026 m365ops maintainers
 * GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
 *
 * The lab's kernel32: what ansible's process helpers call through [DllImport("kernel32.dll")]
 * (and "Kernel32.dll"), so ansible.windows.win_command, win_shell and win_powershell run
 * unchanged under pwsh on Linux:
 *   - ansible-core's Ansible.Process (win_shell via Ansible.ModuleUtils.CommandUtil):
 *     SearchPathW, CreatePipe, SetHandleInformation, CreateProcessW, WaitForSingleObject,
 *     GetExitCodeProcess, and the console calls;
 *   - ansible.windows' Process util (win_command): the same with CREATE_SUSPENDED and
 *     ResumeThread, CloseHandle, and job objects for wait_children (not emulated: they fail
 *     with ERROR_NOT_SUPPORTED, which the util ignores unless children must be waited for);
 *   - win_powershell: GetStdHandle / SetStdHandle around the script (it sends the console's
 *     stdout and stderr to its own pipes) and the console calls.
 * Without it every such call fails in pwsh's native-library fallback (see shell32.c), and
 * win_powershell then hangs: its `finally` cannot restore the std handles it never read, so
 * it never closes the pipes its output readers wait on.
 *
 * Handles: a pipe end or std handle is the Linux file descriptor itself (.NET's
 * SafeFileHandle on Linux is a descriptor, so FileStream reads it directly); a process or
 * thread handle is a pointer to a record below. HANDLE_FLAG_INHERIT is the descriptor's
 * close-on-exec flag, so bInheritHandles=TRUE passes inheritable handles on as Windows does.
 * A process is fork()ed at once; with CREATE_SUSPENDED the child waits on a pipe before
 * execve until ResumeThread. Exit codes are WEXITSTATUS (0-255: Linux keeps 8 bits), or
 * 128 + the signal for a killed process. There is never a console window.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wincompat.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char **environ;

typedef struct {
    DWORD nLength;
    void *lpSecurityDescriptor;
    BOOL bInheritHandle;
} SECURITY_ATTRIBUTES;

typedef struct {
    DWORD cb;
    WCHAR *lpReserved, *lpDesktop, *lpTitle;
    DWORD dwX, dwY, dwXSize, dwYSize, dwXCountChars, dwYCountChars, dwFillAttribute, dwFlags;
    uint16_t wShowWindow, cbReserved2;
    uint8_t *lpReserved2;
    HANDLE hStdInput, hStdOutput, hStdError;
} STARTUPINFOW;

typedef struct {
    HANDLE hProcess, hThread;
    DWORD dwProcessId, dwThreadId;
} PROCESS_INFORMATION;

#define STARTF_USESTDHANDLES 0x100
#define CREATE_SUSPENDED 0x4
#define CREATE_UNICODE_ENVIRONMENT 0x400
#define HANDLE_FLAG_INHERIT 1
#define STILL_ACTIVE 259
#define WAIT_OBJECT_0 0
#define WAIT_TIMEOUT 0x102
#define WAIT_FAILED 0xFFFFFFFFu
#define INFINITE 0xFFFFFFFFu
#define PSEUDO_CURRENT_PROCESS ((HANDLE)(intptr_t)-1)
/* Descriptors are small numbers; record pointers never are. */
#define MAX_FD (1 << 20)

typedef struct proc {
    pid_t pid;
    int refs;       /* the process and the thread handle */
    int gate;       /* write end the suspended child waits on; -1 once resumed */
    int errpipe;    /* read end: errno of a failed chdir/execve, EOF once exec'd; -1 once read */
    int exited, status;
    pthread_mutex_t m;
} proc;

typedef struct handle {
    proc *p;
    struct handle *next;
} handle;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static handle *handles;
static intptr_t std_handles[3] = {-1, -1, -1};
static int console_allocated;
static unsigned console_cp = 437, console_output_cp = 437;

static int win_error(int e) {
    switch (e) {
    case ENOENT: return ERROR_FILE_NOT_FOUND;
    case ENOTDIR: return ERROR_PATH_NOT_FOUND;
    case EMFILE: case ENFILE: return ERROR_TOO_MANY_OPEN_FILES;
    case EACCES: case EPERM: case EISDIR: return ERROR_ACCESS_DENIED;
    case EBADF: return ERROR_INVALID_HANDLE;
    case ENOMEM: case EAGAIN: return ERROR_NOT_ENOUGH_MEMORY;
    case ENOEXEC: return ERROR_BAD_EXE_FORMAT;
    default: return ERROR_GEN_FAILURE;
    }
}

static BOOL fail(int err) { set_last_error(err); return 0; }

static int fd_of(HANDLE h) {
    intptr_t v = (intptr_t)h;
    return v > 0 && v < MAX_FD ? (int)v : -1;
}

static proc *find(HANDLE h) {
    handle *it;
    proc *p = NULL;
    pthread_mutex_lock(&lock);
    for (it = handles; it; it = it->next)
        if ((HANDLE)it == h) { p = it->p; break; }
    pthread_mutex_unlock(&lock);
    return p;
}

static HANDLE new_handle(proc *p) {
    handle *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->p = p;
    pthread_mutex_lock(&lock);
    h->next = handles;
    handles = h;
    pthread_mutex_unlock(&lock);
    return (HANDLE)h;
}

/* Collect the exit status once; 1 exited, 0 running, -1 not ours to wait for (any more). */
static int reap(proc *p, int block) {
    int st, rc = 1;
    pid_t r;
    pthread_mutex_lock(&p->m);
    if (!p->exited) {
        do r = waitpid(p->pid, &st, block ? 0 : WNOHANG); while (r < 0 && errno == EINTR);
        if (r == p->pid) {
            p->exited = 1;
            p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        } else {
            rc = r == 0 ? 0 : -1;
        }
    }
    pthread_mutex_unlock(&p->m);
    return rc;
}

/* ---- pipes and handles ---------------------------------------------------------------- */
static int above_std(int fd, int cloexec) {
    /* A descriptor 0-2 would be a NULL handle (0) or a std handle: move it up. */
    int moved;
    if (fd > 2) return fd;
    moved = fcntl(fd, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, 3);
    close(fd);
    return moved;
}

BOOL CreatePipe(HANDLE *read_end, HANDLE *write_end, SECURITY_ATTRIBUTES *sa, DWORD size) {
    int fds[2], cloexec = !(sa && sa->bInheritHandle);
    if (!read_end || !write_end) return fail(ERROR_INVALID_PARAMETER);
    if (pipe2(fds, cloexec ? O_CLOEXEC : 0) != 0) return fail(win_error(errno));
    fds[0] = above_std(fds[0], cloexec);
    fds[1] = above_std(fds[1], cloexec);
    if (fds[0] < 0 || fds[1] < 0) return fail(ERROR_TOO_MANY_OPEN_FILES);
    if (size > 0) fcntl(fds[1], F_SETPIPE_SZ, (int)size);  /* a hint on Windows too */
    *read_end = (HANDLE)(intptr_t)fds[0];
    *write_end = (HANDLE)(intptr_t)fds[1];
    return 1;
}

BOOL SetHandleInformation(HANDLE h, DWORD mask, DWORD flags) {
    int fd = fd_of(h), fl;
    if (fd < 0 || (fl = fcntl(fd, F_GETFD)) < 0) return fail(ERROR_INVALID_HANDLE);
    if (mask & HANDLE_FLAG_INHERIT) {
        fl = (flags & HANDLE_FLAG_INHERIT) ? (fl & ~FD_CLOEXEC) : (fl | FD_CLOEXEC);
        if (fcntl(fd, F_SETFD, fl) != 0) return fail(win_error(errno));
    }
    return 1;
}

BOOL CloseHandle(HANDLE h) {
    handle **it, *found = NULL;
    int fd, last = 0;
    if (h == PSEUDO_CURRENT_PROCESS) return 1;
    pthread_mutex_lock(&lock);
    for (it = &handles; *it; it = &(*it)->next)
        if ((HANDLE)*it == h) { found = *it; *it = found->next; last = --found->p->refs == 0; break; }
    pthread_mutex_unlock(&lock);
    if (found) {
        proc *p = found->p;
        free(found);
        if (last) {
            /* Closing the handles of a process leaves it running, as on Windows; a child
             * still suspended reads EOF on its gate and exits. */
            if (p->gate >= 0) close(p->gate);
            if (p->errpipe >= 0) close(p->errpipe);
            pthread_mutex_destroy(&p->m);
            free(p);
        }
        return 1;
    }
    fd = fd_of(h);
    if (fd < 0 || close(fd) != 0) return fail(ERROR_INVALID_HANDLE);
    return 1;
}

void *LocalFree(void *mem) {
    free(mem);
    return NULL;
}

HANDLE GetCurrentProcess(void) { return PSEUDO_CURRENT_PROCESS; }

DWORD GetCurrentProcessId(void) { return (DWORD)getpid(); }

/* ---- std handles and the console ------------------------------------------------------ */
static int std_index(DWORD n) {
    int32_t v = (int32_t)n;  /* STD_INPUT_HANDLE -10, STD_OUTPUT_HANDLE -11, STD_ERROR_HANDLE -12 */
    return v <= -10 && v >= -12 ? -10 - v : -1;
}

/* The handle of std stream i as the process has it: a close-on-exec duplicate of descriptor
 * i made on first use, so it keeps naming the original after SetStdHandle replaced i. */
static intptr_t current_std(int i) {
    if (std_handles[i] < 0) {
        int fd = fcntl(i, F_DUPFD_CLOEXEC, 3);
        std_handles[i] = fd < 0 ? 0 : fd;  /* no such stream: a NULL handle, as on Windows */
    }
    return std_handles[i];
}

HANDLE GetStdHandle(DWORD n) {
    int i = std_index(n);
    intptr_t h;
    if (i < 0) {
        set_last_error(ERROR_INVALID_HANDLE);
        return (HANDLE)(intptr_t)-1;
    }
    pthread_mutex_lock(&lock);
    h = current_std(i);
    pthread_mutex_unlock(&lock);
    return (HANDLE)h;
}

/* Descriptor i becomes h, so child processes that inherit the std streams (no
 * STARTF_USESTDHANDLES) write where the caller asked, as Windows children would. */
BOOL SetStdHandle(DWORD n, HANDLE h) {
    int i = std_index(n), fd = fd_of(h);
    if (i < 0 || fd < 0) return fail(ERROR_INVALID_HANDLE);
    pthread_mutex_lock(&lock);
    current_std(i);
    if (dup2(fd, i) < 0) {
        pthread_mutex_unlock(&lock);
        return fail(ERROR_INVALID_HANDLE);
    }
    std_handles[i] = fd;
    pthread_mutex_unlock(&lock);
    return 1;
}

HANDLE GetConsoleWindow(void) { return NULL; }

BOOL AllocConsole(void) {
    if (console_allocated) return fail(ERROR_ACCESS_DENIED);  /* one console per process */
    console_allocated = 1;
    return 1;
}

BOOL FreeConsole(void) {
    console_allocated = 0;
    return 1;
}

BOOL SetConsoleCP(unsigned cp) { console_cp = cp; return 1; }
BOOL SetConsoleOutputCP(unsigned cp) { console_output_cp = cp; return 1; }
unsigned GetConsoleCP(void) { return console_cp; }
unsigned GetConsoleOutputCP(void) { return console_output_cp; }

/* ---- searching and starting programs -------------------------------------------------- */
static int has_extension(const char *path) {
    const char *base = strrchr(path, '/');
    return strchr(base ? base + 1 : path, '.') != NULL;
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* dir + '/' + name, malloc'd; dir NULL or "" is the current directory. */
static char *join(const char *dir, size_t dlen, const char *name) {
    char cwd[4096];
    char *out;
    if (!dir || !dlen) {
        if (!getcwd(cwd, sizeof cwd)) return NULL;
        dir = cwd;
        dlen = strlen(cwd);
    }
    out = malloc(dlen + strlen(name) + 2);
    if (out) sprintf(out, "%.*s/%s", (int)dlen, dir, name);
    return out;
}

/* The first existing file `name` in the `sep`-separated list `dirs` (after the current
 * directory when cwd_first), or NULL. */
static char *search(const char *name, const char *dirs, char sep, int cwd_first) {
    const char *d = dirs;
    char *full;
    if (cwd_first) {
        full = join(NULL, 0, name);
        if (full && is_file(full)) return full;
        free(full);
    }
    while (d && *d) {
        const char *end = strchr(d, sep);
        size_t len = end ? (size_t)(end - d) : strlen(d);
        if (len) {
            full = join(d, len, name);
            if (full && is_file(full)) return full;
            free(full);
        }
        d = end ? end + 1 : NULL;
    }
    return NULL;
}

DWORD SearchPathW(const WCHAR *path, const WCHAR *file, const WCHAR *ext, DWORD size, WCHAR *buffer,
                  WCHAR **file_part) {
    char *name = to_utf8(file, (size_t)-1), *dirs = to_utf8(path, (size_t)-1), *e = to_utf8(ext, (size_t)-1);
    char *full = NULL, *slash;
    size_t units, dir_units;
    if (!name || !*name) {
        free(name), free(dirs), free(e);
        set_last_error(ERROR_INVALID_PARAMETER);
        return 0;
    }
    if (e && *e && !has_extension(name)) {
        char *with = malloc(strlen(name) + strlen(e) + 1);
        sprintf(with, "%s%s", name, e);
        free(name);
        name = with;
    }
    if (strchr(name, '/')) {
        full = name[0] == '/' ? strdup(name) : join(NULL, 0, name);
        if (full && !is_file(full)) { free(full); full = NULL; }
    } else if (dirs) {
        full = search(name, dirs, ';', 0);  /* lpPath is a Windows list */
    } else {
        full = search(name, getenv("PATH"), ':', 1);  /* current directory, then PATH */
    }
    free(name), free(dirs), free(e);
    if (!full) {
        set_last_error(ERROR_FILE_NOT_FOUND);
        return 0;
    }
    units = to_utf16(full, NULL, 0);
    if (!buffer || size < units + 1) {
        free(full);
        return (DWORD)(units + 1);  /* the size needed, terminator included */
    }
    to_utf16(full, buffer, size);
    if (file_part) {
        slash = strrchr(full, '/');
        *slash = 0;
        dir_units = to_utf16(full, NULL, 0);
        *file_part = buffer + dir_units + 1;
    }
    free(full);
    return (DWORD)units;
}

/* What CreateProcessW runs: lpApplicationName as given (relative to our current directory,
 * no extension added), else the command line's program: a path, or a name looked up in the
 * current directory and PATH, with ".exe" added when it has no extension. */
static char *resolve_program(const WCHAR *app, const char *arg0, int *err) {
    char *name, *full;
    *err = ERROR_FILE_NOT_FOUND;
    if (app) {
        name = to_utf8(app, (size_t)-1);
    } else {
        name = malloc(strlen(arg0) + 5);
        sprintf(name, has_extension(arg0) ? "%s" : "%s.exe", arg0);
    }
    if (!name) return NULL;
    if (app || strchr(name, '/')) {
        full = name[0] == '/' ? strdup(name) : join(NULL, 0, name);
        if (full && !is_file(full)) {
            struct stat st;
            *err = stat(full, &st) == 0 ? ERROR_ACCESS_DENIED : ERROR_FILE_NOT_FOUND;
            free(full);
            full = NULL;
        }
    } else {
        full = search(name, getenv("PATH"), ':', 1);
    }
    free(name);
    if (full && access(full, X_OK) != 0) {
        *err = ERROR_ACCESS_DENIED;
        free(full);
        full = NULL;
    }
    return full;
}

/* An environment block ("k=v\0...\0\0", UTF-16 or ANSI) as a NULL-terminated array. */
static char **env_array(const void *block, int unicode) {
    size_t count = 0, i = 0;
    char **out;
    if (unicode) {
        const WCHAR *w;
        for (w = block; *w; w += wlen(w) + 1) count++;
        out = calloc(count + 1, sizeof *out);
        for (w = block; out && *w; w += wlen(w) + 1) out[i++] = to_utf8(w, (size_t)-1);
    } else {
        const char *c;
        for (c = block; *c; c += strlen(c) + 1) count++;
        out = calloc(count + 1, sizeof *out);
        for (c = block; out && *c; c += strlen(c) + 1) out[i++] = strdup(c);
    }
    return out;
}

static void free_array(char **a) {
    size_t i;
    for (i = 0; a && a[i]; i++) free(a[i]);
    free(a);
}

/* In the child between fork and execve: async-signal-safe calls only. */
static void child(int gate, int errw, const int std[3], int use_std, int inherit, const char *cwd,
                  const char *path, char **argv, char **envp) {
    int i, err, moved[3];
    struct sigaction dfl;
    sigset_t none;
    if (gate >= 0) {
        char c;
        ssize_t r;
        do r = read(gate, &c, 1); while (r < 0 && errno == EINTR);
        if (r != 1) _exit(1);  /* every handle closed while suspended */
    }
    /* A Windows process starts with default signal handling, not pwsh's. */
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (i = 1; i < NSIG; i++) sigaction(i, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (use_std) {
        /* Move all three above 2 first, so placing one cannot overwrite another. */
        for (i = 0; i < 3; i++) {
            int src = std[i] >= 0 ? std[i] : open("/dev/null", i ? O_WRONLY : O_RDONLY);
            moved[i] = fcntl(src, F_DUPFD, 10);
        }
        for (i = 0; i < 3; i++) {
            dup2(moved[i], i);
            close(moved[i]);
        }
    }
    if (!inherit) syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
    if (cwd && chdir(cwd) != 0) {
        err = errno;
        if (write(errw, &err, sizeof err) < 0) _exit(127);
        _exit(127);
    }
    execve(path, argv, envp);
    err = errno;
    if (write(errw, &err, sizeof err) < 0) _exit(127);
    _exit(127);
}

/* The errno the child reported before execve, or 0 once it exec'd. */
static int exec_error(int errpipe) {
    int err = 0;
    ssize_t r;
    do r = read(errpipe, &err, sizeof err); while (r < 0 && errno == EINTR);
    return r == (ssize_t)sizeof err ? err : 0;
}

BOOL CreateProcessW(const WCHAR *app, WCHAR *cmdline, void *process_attrs, void *thread_attrs, BOOL inherit,
                    DWORD flags, void *environment, const WCHAR *current_dir, STARTUPINFOW *si,
                    PROCESS_INFORMATION *pi) {
    const WCHAR *line = cmdline && *cmdline ? cmdline : app;
    WCHAR **wargv = NULL, *wbuf = NULL;
    char **argv = NULL, **envp = NULL, *path = NULL, *cwd = NULL;
    int argc, i, err = 0, std[3] = {-1, -1, -1}, gate[2] = {-1, -1}, errp[2] = {-1, -1};
    int use_std = si && (si->dwFlags & STARTF_USESTDHANDLES);
    int suspended = (flags & CREATE_SUSPENDED) != 0;
    proc *p = NULL;
    pid_t pid;
    struct stat st;
    (void)process_attrs, (void)thread_attrs;

    if (!si || !pi || !line) return fail(ERROR_INVALID_PARAMETER);
    wbuf = malloc((2 * wlen(line) + 4) * sizeof(WCHAR));
    argc = wbuf ? count_args(line, wbuf) : 0;
    wargv = calloc(argc + 1, sizeof *wargv);
    argv = calloc(argc + 1, sizeof *argv);
    if (!wbuf || !wargv || !argv) { err = ERROR_NOT_ENOUGH_MEMORY; goto out; }
    split_cmdline(line, wargv, wbuf);
    for (i = 0; i < argc; i++) argv[i] = to_utf8(wargv[i], (size_t)-1);

    path = resolve_program(app, argv[0], &err);
    if (!path) goto out;
    err = 0;
    if (current_dir) {
        cwd = to_utf8(current_dir, (size_t)-1);
        if (stat(cwd, &st) != 0 || !S_ISDIR(st.st_mode)) { err = ERROR_DIRECTORY; goto out; }
    }
    envp = environment ? env_array(environment, (flags & CREATE_UNICODE_ENVIRONMENT) != 0) : NULL;
    if (use_std) {
        std[0] = fd_of(si->hStdInput);
        std[1] = fd_of(si->hStdOutput);
        std[2] = fd_of(si->hStdError);
    }
    if ((suspended && pipe2(gate, O_CLOEXEC) != 0) || pipe2(errp, O_CLOEXEC) != 0) { err = win_error(errno); goto out; }
    p = calloc(1, sizeof *p);
    if (!p) { err = ERROR_NOT_ENOUGH_MEMORY; goto out; }

    pid = fork();
    if (pid < 0) { err = win_error(errno); goto out; }
    if (pid == 0) child(gate[0], errp[1], std, use_std, inherit, cwd, path, argv, envp ? envp : environ);

    close(errp[1]);
    errp[1] = -1;
    if (gate[0] >= 0) close(gate[0]);
    gate[0] = -1;
    pthread_mutex_init(&p->m, NULL);
    p->pid = pid;
    p->gate = gate[1];
    p->errpipe = errp[0];
    gate[1] = errp[0] = -1;
    if (!suspended) {
        int child_err = exec_error(p->errpipe);
        close(p->errpipe);
        p->errpipe = -1;
        if (child_err) {
            reap(p, 1);
            pthread_mutex_destroy(&p->m);
            free(p);
            p = NULL;
            err = win_error(child_err);
            goto out;
        }
    }
    p->refs = 2;
    pi->hProcess = new_handle(p);
    pi->hThread = new_handle(p);
    pi->dwProcessId = (DWORD)pid;
    pi->dwThreadId = (DWORD)pid;
    p = NULL;

out:
    for (i = 0; i < 2; i++) {
        if (gate[i] >= 0) close(gate[i]);
        if (errp[i] >= 0) close(errp[i]);
    }
    free(p);
    free(wbuf);
    free(wargv);
    free_array(argv);
    free_array(envp);
    free(path);
    free(cwd);
    return err ? fail(err) : 1;
}

DWORD ResumeThread(HANDLE thread) {
    proc *p = find(thread);
    int err;
    if (!p) {
        set_last_error(ERROR_INVALID_HANDLE);
        return (DWORD)-1;
    }
    if (p->gate < 0) return 0;  /* not suspended */
    if (write(p->gate, "r", 1) != 1) {
        set_last_error(win_error(errno));
        return (DWORD)-1;
    }
    close(p->gate);
    p->gate = -1;
    err = exec_error(p->errpipe);
    close(p->errpipe);
    p->errpipe = -1;
    if (err) {
        reap(p, 1);
        set_last_error(win_error(err));
        return (DWORD)-1;
    }
    return 1;  /* the previous suspend count */
}

DWORD WaitForSingleObject(HANDLE h, DWORD ms) {
    proc *p = find(h);
    struct timespec tick = {0, 10 * 1000 * 1000};
    DWORD waited = 0;
    int r;
    if (!p) {
        set_last_error(ERROR_INVALID_HANDLE);
        return WAIT_FAILED;
    }
    if (ms == INFINITE) return reap(p, 1) == 1 ? WAIT_OBJECT_0 : WAIT_FAILED;
    for (;;) {
        r = reap(p, 0);
        if (r != 0) return r == 1 ? WAIT_OBJECT_0 : WAIT_FAILED;
        if (waited >= ms) return WAIT_TIMEOUT;
        nanosleep(&tick, NULL);
        waited += 10;
    }
}

BOOL GetExitCodeProcess(HANDLE h, DWORD *code) {
    proc *p = find(h);
    int r;
    if (!p || !code) return fail(ERROR_INVALID_HANDLE);
    r = reap(p, 0);
    if (r < 0) return fail(ERROR_INVALID_HANDLE);
    *code = r == 1 ? (DWORD)p->status : STILL_ACTIVE;
    return 1;
}

/* Job objects and completion ports are not emulated: callers that can do without them
 * (ansible.windows' Process util unless wait_children) ignore the failure. */
HANDLE CreateJobObjectW(void *attrs, const WCHAR *name) {
    (void)attrs, (void)name;
    set_last_error(ERROR_NOT_SUPPORTED);
    return NULL;
}

HANDLE CreateIoCompletionPort(HANDLE file, HANDLE port, uintptr_t key, DWORD threads) {
    (void)file, (void)port, (void)key, (void)threads;
    set_last_error(ERROR_NOT_SUPPORTED);
    return NULL;
}
