/*
 * faultshim.c — an LD_PRELOAD shim for irp's end-to-end tests (test_record.py):
 * makes write() or fdatasync()/fsync() on a run's journal descriptor fail,
 * as a full or failing disk would, after a number of successful calls.
 * Descriptors are tracked by interposing open/openat (and close): any path
 * ending in "journal.jsonl" opened for writing. Other files are untouched.
 *
 * Settings (environment):
 *   FAULT_OP     "write" or "sync" (fdatasync and fsync): which call fails
 *   FAULT_AFTER  how many such calls succeed first (default 0)
 *   FAULT_ERRNO  "ENOSPC" (default) or "EIO"
 *   FAULT_SHORT  "1": the failing write() writes half its bytes and returns
 *                that short count (disk full in the middle of a record);
 *                the calls after it fail
 *   FAULT_LOG    a file that gets one line per call on a tracked descriptor:
 *                "write ok|FAIL|SHORT <bytes> <type> <step>" or "sync ok|FAIL"
 * Once a call has failed, every later call of that kind fails too.
 * Depends on: glibc (dlsym RTLD_NEXT). Built by the test with cc -shared.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_FD 4096

static char tracked[MAX_FD];
static long calls_ok;
static int failed;
static int log_fd = -2;

static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_close)(int);

static void init_real(void)
{
    if (!real_write)
        real_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    if (!real_close)
        real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
}

static const char *setting(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static int fault_errno(void)
{
    return strcmp(setting("FAULT_ERRNO", "ENOSPC"), "EIO") == 0 ? EIO : ENOSPC;
}

/* Copies the JSON string value of "key" found in buf into out ("-" if absent). */
static void field(const char *buf, size_t n, const char *key, char *out, size_t out_size)
{
    snprintf(out, out_size, "-");
    char pat[32];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    size_t pl = strlen(pat);
    for (size_t i = 0; i + pl <= n; i++) {
        if (memcmp(buf + i, pat, pl) == 0) {
            size_t j = i + pl, k = 0;
            while (j < n && buf[j] != '"' && k + 1 < out_size)
                out[k++] = buf[j++];
            out[k] = '\0';
            return;
        }
    }
}

static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void log_line(const char *fmt, ...)
{
    init_real();
    if (log_fd == -2) {
        const char *path = getenv("FAULT_LOG");
        int (*ro)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
        log_fd = path && *path ? ro(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
    }
    if (log_fd < 0)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    real_write(log_fd, line, (size_t)n);
}

static void track(int fd, const char *path, int flags)
{
    if (fd < 0 || fd >= MAX_FD || !path)
        return;
    size_t n = strlen(path);
    const char *suffix = "journal.jsonl";
    size_t sn = strlen(suffix);
    tracked[fd] = (flags & O_ACCMODE) != O_RDONLY && n >= sn && strcmp(path + n - sn, suffix) == 0;
}

static int is_tracked(int fd)
{
    return fd >= 0 && fd < MAX_FD && tracked[fd];
}

#define OPEN_WRAPPER(name)                                                                     \
    int name(const char *path, int flags, ...);                                                \
    int name(const char *path, int flags, ...)                                                 \
    {                                                                                          \
        static int (*real)(const char *, int, ...);                                            \
        if (!real)                                                                             \
            real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, #name);                   \
        mode_t mode = 0;                                                                       \
        if (flags & (O_CREAT | O_TMPFILE)) {                                                   \
            va_list ap;                                                                        \
            va_start(ap, flags);                                                               \
            mode = (mode_t)va_arg(ap, int);                                                    \
            va_end(ap);                                                                        \
        }                                                                                      \
        int fd = real(path, flags, mode);                                                      \
        track(fd, path, flags);                                                                \
        return fd;                                                                             \
    }

#define OPENAT_WRAPPER(name)                                                                   \
    int name(int dirfd, const char *path, int flags, ...);                                     \
    int name(int dirfd, const char *path, int flags, ...)                                      \
    {                                                                                          \
        static int (*real)(int, const char *, int, ...);                                       \
        if (!real)                                                                             \
            real = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, #name);              \
        mode_t mode = 0;                                                                       \
        if (flags & (O_CREAT | O_TMPFILE)) {                                                   \
            va_list ap;                                                                        \
            va_start(ap, flags);                                                               \
            mode = (mode_t)va_arg(ap, int);                                                    \
            va_end(ap);                                                                        \
        }                                                                                      \
        int fd = real(dirfd, path, flags, mode);                                               \
        track(fd, path, flags);                                                                \
        return fd;                                                                             \
    }

OPEN_WRAPPER(open)
OPEN_WRAPPER(open64)
OPENAT_WRAPPER(openat)
OPENAT_WRAPPER(openat64)

int close(int fd)
{
    init_real();
    if (fd >= 0 && fd < MAX_FD)
        tracked[fd] = 0;
    return real_close(fd);
}

static int should_fail(const char *op)
{
    if (strcmp(setting("FAULT_OP", "write"), op) != 0)
        return 0;
    if (failed)
        return 1;
    if (calls_ok >= atol(setting("FAULT_AFTER", "0")))
        return failed = 1;
    calls_ok++;
    return 0;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    init_real();
    if (!is_tracked(fd))
        return real_write(fd, buf, n);
    char type[64], step[64];
    field(buf, n, "type", type, sizeof type);
    field(buf, n, "step", step, sizeof step);
    int was_failed = failed;
    if (should_fail("write")) {
        if (!was_failed && strcmp(setting("FAULT_SHORT", "0"), "1") == 0 && n > 1) {
            ssize_t w = real_write(fd, buf, n / 2);
            log_line("write SHORT %zu %s %s", n, type, step);
            return w;
        }
        log_line("write FAIL %zu %s %s", n, type, step);
        errno = fault_errno();
        return -1;
    }
    ssize_t w = real_write(fd, buf, n);
    log_line("write ok %zu %s %s", n, type, step);
    return w;
}

static int sync_call(const char *name, int fd)
{
    static int (*real_fdatasync)(int), (*real_fsync)(int);
    if (!real_fdatasync)
        real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    if (!real_fsync)
        real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    int (*real)(int) = !strcmp(name, "fsync") ? real_fsync : real_fdatasync;
    if (!is_tracked(fd))
        return real(fd);
    if (should_fail("sync")) {
        log_line("sync FAIL %s", name);
        errno = fault_errno();
        return -1;
    }
    int rc = real(fd);
    log_line("sync ok %s", name);
    return rc;
}

int fdatasync(int fd)
{
    return sync_call("fdatasync", fd);
}

int fsync(int fd)
{
    return sync_call("fsync", fd);
}
