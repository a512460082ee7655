/*
 * util.h — small helpers shared by the supervisor and the worker: exit codes,
 * durations, clocks and RFC 3339 time, random bytes and hex, UTF-8 checks,
 * "did you mean" suggestions, and a growable byte buffer.
 * Depends on: libc only.
 */
#ifndef IRP_UTIL_H
#define IRP_UTIL_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdarg.h>

#define IRP_VERSION "0.1.0"

/* Exit codes: the contract of DESIGN.md's command-line section. */
enum {
    IRP_EXIT_OK = 0,
    IRP_EXIT_FAILED = 1,       /* the run failed */
    IRP_EXIT_USAGE = 64,       /* bad command line */
    IRP_EXIT_DATAERR = 65,     /* bad playbook or input; journal fails verification */
    IRP_EXIT_UNAVAILABLE = 69, /* a needed service is unavailable */
    IRP_EXIT_SOFTWARE = 70,    /* internal error */
    IRP_EXIT_IOERR = 74,       /* I/O error on the record */
    IRP_EXIT_TEMPFAIL = 75,    /* interrupted, resumable */
    IRP_EXIT_SIGINT = 130      /* stopped by SIGINT */
};

/* Parses "500ms", "90s", "15m", "1h30m", "2d" or a plain number of seconds.
 * Returns 0 and stores milliseconds, or -1 when the text is not a duration. */
int ut_parse_duration(const char *text, int64_t *ms_out);
/* Formats milliseconds for people: "850ms", "12.3s", "4m05s", "2h03m". */
void ut_format_duration(int64_t ms, char *out, size_t out_size);

int64_t ut_now_ms(void);   /* wall clock, ms since the epoch */
int64_t ut_mono_ms(void);  /* monotonic clock, ms */
/* "2026-11-25T09:13:44.123Z" into out (at least 32 bytes). */
void ut_rfc3339_ms(int64_t epoch_ms, char *out, size_t out_size);

/* Fills buf with n bytes from the kernel's CSPRNG; returns 0 or -1. */
int ut_random_bytes(void *buf, size_t n);
/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void ut_hex(const unsigned char *in, size_t n, char *out);

/* 1 when s[0..len) is valid UTF-8 (no overlongs, no surrogates). */
int ut_utf8_valid(const char *s, size_t len);
/* Where to cut s[0..len) to keep at most max bytes without splitting a
 * UTF-8 character: len when it fits, else the start of the character at
 * max (a cut inside one leaves invalid UTF-8, which JSON refuses). */
size_t ut_utf8_cut(const char *s, size_t len, size_t max);
/* A malloc'd, NUL-terminated copy with every invalid byte replaced by U+FFFD.
 * *out_len (may be NULL) receives the length. */
char *ut_utf8_sanitize(const char *s, size_t len, size_t *out_len);

/* A malloc'd, NUL-terminated rendering of s[0..len) that is safe to print on
 * a terminal: text from outside irp (command output, -v values, log
 * messages, journal fields) must not move the cursor, clear the screen,
 * retitle the window or ring the bell. C0 controls (but tab, and newline
 * when keep_newline) and DEL are shown in caret notation ("^[" for ESC,
 * "^G" for BEL, "^?" for DEL), C1 controls (U+0080..U+009F) as "\u009b",
 * and bytes that are not valid UTF-8 as "\xff"; valid UTF-8 is copied
 * unchanged. Redact secrets before, not after (the rendering changes the
 * bytes). irp's own colour codes are added around the result, never passed
 * through it. */
char *ut_term_safe(const char *s, size_t len, int keep_newline);

/* The candidate closest to word by edit distance when it is at most
 * max_distance away, else NULL. candidates ends with NULL. */
const char *ut_closest(const char *word, const char *const *candidates, size_t max_distance);

/* Allocation that cannot fail (the supervisor has nothing useful to do
 * without memory: it prints and exits 70). */
void *ut_xmalloc(size_t n);
void *ut_xcalloc(size_t count, size_t n);
void *ut_xrealloc(void *p, size_t n);
char *ut_xstrdup(const char *s);
char *ut_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer, always NUL-terminated after len. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} ut_buf;

void ut_buf_append(ut_buf *b, const void *data, size_t n);
void ut_buf_puts(ut_buf *b, const char *s);
void ut_buf_printf(ut_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ut_buf_vprintf(ut_buf *b, const char *fmt, va_list ap);
void ut_buf_reset(ut_buf *b);
void ut_buf_free(ut_buf *b);

/* Opens a file irp reads (playbook, plugin, configuration, scenario) for
 * reading; NULL and *why (static text) when it cannot be opened or is not a
 * regular file. A FIFO would block the read forever, a device never end. */
FILE *ut_open_regular(const char *path, const char **why);
/* The whole of a regular file of at most max bytes, malloc'd and
 * NUL-terminated (*len without the NUL). NULL and *why (static text) when it
 * cannot be opened or read or is not a regular file; NULL with *too_big set
 * (and *why "larger than the limit") when it has more than max bytes. */
char *ut_read_regular(const char *path, size_t max, size_t *len, const char **why, int *too_big);
/* write() until done, retrying on EINTR; 0 or -1 with errno. */
int ut_write_all(int fd, const void *data, size_t n);
/* A new private directory $TMPDIR/NAME-XXXXXX (else /tmp), malloc'd, or
 * NULL with errno set. */
char *ut_temp_dir(const char *name);
/* Removes a directory tree (best effort, symlinks not followed). */
void ut_remove_tree(const char *dir);

#endif
