/*
 * util.c — small helpers shared by the supervisor and the worker: durations,
 * clocks, RFC 3339 time, random bytes, UTF-8 checks, "did you mean" and a
 * growable buffer. See include/util.h.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int ut_parse_duration(const char *text, int64_t *ms_out)
{
    if (!text || !*text)
        return -1;
    const char *p = text;
    int64_t total = 0;
    int any_unit = 0;
    while (*p) {
        if (*p < '0' || *p > '9')
            return -1;
        double value = 0, scale = 0;
        while (*p >= '0' && *p <= '9') {
            value = value * 10 + (*p - '0');
            if (scale)
                scale *= 10;
            p++;
            if (*p == '.' && !scale) {
                scale = 1;
                p++;
            }
        }
        if (scale)
            value /= scale;
        double unit;
        if (strncmp(p, "ms", 2) == 0) { unit = 1; p += 2; }
        else if (*p == 's') { unit = 1000; p++; }
        else if (*p == 'm') { unit = 60e3; p++; }
        else if (*p == 'h') { unit = 3600e3; p++; }
        else if (*p == 'd') { unit = 86400e3; p++; }
        else if (*p == '\0' && !any_unit) { unit = 1000; }  /* bare number: seconds */
        else return -1;
        any_unit = 1;
        double ms = value * unit;
        if (ms > 1e15)  /* ~31,000 years: anything larger is a mistake */
            return -1;
        total += (int64_t)(ms + 0.5);
        if (total > (int64_t)1e15)
            return -1;
    }
    *ms_out = total;
    return 0;
}

void ut_format_duration(int64_t ms, char *out, size_t out_size)
{
    if (ms < 0)
        ms = 0;
    if (ms < 1000)
        snprintf(out, out_size, "%lldms", (long long)ms);
    else if (ms < 60000)
        snprintf(out, out_size, "%lld.%llds", (long long)(ms / 1000), (long long)(ms % 1000 / 100));
    else if (ms < 3600000)
        snprintf(out, out_size, "%lldm%02llds", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
    else
        snprintf(out, out_size, "%lldh%02lldm", (long long)(ms / 3600000), (long long)(ms / 60000 % 60));
}

int64_t ut_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ut_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ut_rfc3339_ms(int64_t epoch_ms, char *out, size_t out_size)
{
    time_t secs = (time_t)(epoch_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, out_size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(epoch_ms % 1000));
}

int ut_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

void ut_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_sequence_length(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t need;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) { need = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { need = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 4; cp = c & 0x07; }
    else return 0;
    if (avail < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return need;
}

size_t ut_utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

int ut_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_sequence_length(p + i, len - i);
        if (!n)
            return 0;
        i += n;
    }
    return 1;
}

char *ut_utf8_sanitize(const char *s, size_t len, size_t *out_len)
{
    const unsigned char *p = (const unsigned char *)s;
    ut_buf b = {0};
    ut_buf_append(&b, "", 0);
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_sequence_length(p + i, len - i);
        if (n) {
            ut_buf_append(&b, p + i, n);
            i += n;
        } else {
            ut_buf_append(&b, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
    if (out_len)
        *out_len = b.len;
    return b.data;
}

char *ut_term_safe(const char *s, size_t len, int keep_newline)
{
    const unsigned char *p = (const unsigned char *)s;
    ut_buf b = {0};
    ut_buf_append(&b, "", 0);
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        size_t n = utf8_sequence_length(p + i, len - i);
        if (c < 0x20 && c != '\t' && !(c == '\n' && keep_newline)) {
            char caret[2] = {'^', (char)(c + 0x40)};
            ut_buf_append(&b, caret, 2);
        } else if (c == 0x7F) {
            ut_buf_puts(&b, "^?");
        } else if (!n) {
            ut_buf_printf(&b, "\\x%02x", c);
            n = 1;
        } else if (c == 0xC2 && p[i + 1] < 0xA0) {
            ut_buf_printf(&b, "\\u%04x", p[i + 1]);
        } else {
            ut_buf_append(&b, p + i, n);
        }
        i += n ? n : 1;
    }
    return b.data;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return (size_t)-1;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *ut_closest(const char *word, const char *const *candidates, size_t max_distance)
{
    const char *best = NULL;
    size_t best_distance = max_distance + 1;
    for (size_t i = 0; candidates[i]; i++) {
        size_t d = edit_distance(word, candidates[i]);
        if (d < best_distance) {
            best_distance = d;
            best = candidates[i];
        }
    }
    return best;
}

static void out_of_memory(void)
{
    static const char msg[] = "irp: out of memory\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(IRP_EXIT_SOFTWARE);
}

void *ut_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory();
    return p;
}

void *ut_xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        out_of_memory();
    return p;
}

void *ut_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        out_of_memory();
    return q;
}

char *ut_xstrdup(const char *s)
{
    char *p = strdup(s ? s : "");
    if (!p)
        out_of_memory();
    return p;
}

char *ut_xasprintf(const char *fmt, ...)
{
    ut_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    ut_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (!b.data)
        return ut_xstrdup("");
    return b.data;
}

static void buf_reserve(ut_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = ut_xrealloc(b->data, cap);
    b->cap = cap;
}

void ut_buf_append(ut_buf *b, const void *data, size_t n)
{
    buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void ut_buf_puts(ut_buf *b, const char *s)
{
    ut_buf_append(b, s, strlen(s));
}

void ut_buf_vprintf(ut_buf *b, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return;
    buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void ut_buf_printf(ut_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ut_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void ut_buf_reset(ut_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void ut_buf_free(ut_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

FILE *ut_open_regular(const char *path, const char **why)
{
    /* O_NONBLOCK: opening a FIFO with no writer would wait for one */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        *why = strerror(errno);
        return NULL;
    }
    struct stat st = {0};
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        *why = S_ISDIR(st.st_mode) ? "is a directory, not a file"
                                   : "is not a regular file (a FIFO, a socket or a device)";
        close(fd);
        return NULL;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        *why = strerror(errno);
        close(fd);
    }
    return f;
}

char *ut_read_regular(const char *path, size_t max, size_t *len, const char **why, int *too_big)
{
    *too_big = 0;
    FILE *f = ut_open_regular(path, why);
    if (!f)
        return NULL;
    ut_buf b = {0};
    char chunk[65536];
    size_t n;
    while (b.len <= max && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        ut_buf_append(&b, chunk, n);
    int bad = ferror(f), saved = errno;
    fclose(f);
    if (bad || b.len > max) {
        ut_buf_free(&b);
        *too_big = !bad;
        *why = bad ? strerror(saved) : "larger than the limit";
        return NULL;
    }
    ut_buf_append(&b, "", 0);
    *len = b.len;
    return b.data;
}

int ut_write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

char *ut_temp_dir(const char *name)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = ut_xasprintf("%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
    if (!mkdtemp(dir)) {
        int e = errno;
        free(dir);
        errno = e;
        return NULL;
    }
    return dir;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0; /* carry on: best effort */
}

void ut_remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
