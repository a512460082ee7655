/*
 * proto.c — framing for the supervisor/worker protocol: one compact JSON
 * object per line. See include/proto.h for the message catalogue.
 */
#include "proto.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pr_send(int fd, const json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!text) {
        errno = EINVAL;
        return -1;
    }
    size_t n = strlen(text);
    if (n + 1 > PR_MAX_FRAME) {
        free(text);
        errno = EMSGSIZE;
        return -1;
    }
    text[n] = '\n'; /* overwrite NUL: json_dumps' buffer holds n+1 bytes */
    int rc = ut_write_all(fd, text, n + 1);
    int saved = errno;
    free(text);
    errno = saved;
    return rc;
}

void pr_reader_init(pr_reader *r)
{
    memset(r, 0, sizeof *r);
}

void pr_reader_free(pr_reader *r)
{
    free(r->buf);
    memset(r, 0, sizeof *r);
}

int pr_reader_feed(pr_reader *r, const char *data, size_t n)
{
    if (r->len + n > PR_MAX_FRAME + 1) {
        /* Only an error when no newline ends a frame inside the limit. */
        const char *nl = memchr(r->buf ? r->buf : "", '\n', r->len);
        if (!nl && !memchr(data, '\n', n))
            return -1;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        r->buf = ut_xrealloc(r->buf, cap);
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, n);
    r->len += n;
    return 0;
}

int pr_reader_next(pr_reader *r, json_t **out, char *err, size_t err_size)
{
    *out = NULL;
    char *nl = r->len > r->scanned ? memchr(r->buf + r->scanned, '\n', r->len - r->scanned) : NULL;
    if (!nl) {
        r->scanned = r->len;
        if (r->len > PR_MAX_FRAME) {
            snprintf(err, err_size, "message larger than %zu bytes", PR_MAX_FRAME);
            return -1;
        }
        return 0;
    }
    size_t line_len = (size_t)(nl - r->buf);
    json_error_t jerr;
    json_t *msg = json_loadb(r->buf, line_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    memmove(r->buf, nl + 1, r->len - line_len - 1);
    r->len -= line_len + 1;
    r->scanned = 0;
    if (!msg) {
        snprintf(err, err_size, "bad message: %s", jerr.text);
        return -1;
    }
    if (!json_is_object(msg)) {
        json_decref(msg);
        snprintf(err, err_size, "bad message: not a JSON object");
        return -1;
    }
    *out = msg;
    return 1;
}

int pr_recv_blocking(int fd, pr_reader *r, json_t **out, char *err, size_t err_size)
{
    for (;;) {
        int rc = pr_reader_next(r, out, err, err_size);
        if (rc != 0)
            return rc;
        char chunk[65536];
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, err_size, "read: %s", strerror(errno));
            return -1;
        }
        if (got == 0)
            return 0;
        if (pr_reader_feed(r, chunk, (size_t)got) < 0) {
            snprintf(err, err_size, "message larger than %zu bytes", PR_MAX_FRAME);
            return -1;
        }
    }
}

const char *pr_str(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

long long pr_int(const json_t *obj, const char *key, long long fallback)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d > -9.2e18 && d < 9.2e18)) /* NaN or out of range: casting is undefined */
            return fallback;
        return (long long)d;
    }
    return fallback;
}

int pr_bool(const json_t *obj, const char *key, int fallback)
{
    json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_is_true(v) : fallback;
}
