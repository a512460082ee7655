/*
 * journal_verify.c — reading a journal back and checking it: a streaming
 * line reader, the record walk shared by `irp verify` (jr_verify_file) and
 * resume (jr_open_append refuses damage before a torn tail), and the
 * SHA-256 of a line that links the hash chain.
 * Depends on: jansson, OpenSSL libcrypto (EVP SHA-256), util.h,
 * journal_walk.h.
 */
#include "journal.h"
#include "journal_walk.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Read size: big enough that a journal of small records costs few reads. */
#define LINES_CHUNK ((size_t)256 << 10)

int jr_sha256_hex(const void *data, size_t n, char out[JR_HASH_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!EVP_Digest(data, n, md, &md_len, EVP_sha256(), NULL) || md_len != 32) {
        out[0] = '\0';
        return -1;
    }
    ut_hex(md, md_len, out);
    return 0;
}

/* ---- line reader ------------------------------------------------------ */

void jr_lines_init(jr_lines *lr, int fd)
{
    memset(lr, 0, sizeof *lr);
    lr->fd = fd;
    /* Allocated up front so buf + start is never arithmetic on NULL. */
    lr->cap = LINES_CHUNK;
    lr->buf = ut_xmalloc(lr->cap);
}

void jr_lines_free(jr_lines *lr)
{
    free(lr->buf);
    lr->buf = NULL;
    lr->cap = lr->len = lr->start = 0;
}

/* Moves the unconsumed bytes to the front, makes room for a chunk and reads
 * once. 1: bytes added, 0: end of file, -1: read error (lr->err). */
static int lines_fill(jr_lines *lr)
{
    if (lr->start > 0) {
        memmove(lr->buf, lr->buf + lr->start, lr->len);
        lr->start = 0;
    }
    if (lr->cap - lr->len < LINES_CHUNK) {
        size_t cap = lr->cap;
        while (cap - lr->len < LINES_CHUNK)
            cap *= 2;
        lr->buf = ut_xrealloc(lr->buf, cap);
        lr->cap = cap;
    }
    ssize_t got;
    do
        got = pread(lr->fd, lr->buf + lr->len, lr->cap - lr->len, lr->off);
    while (got < 0 && errno == EINTR);
    if (got < 0) {
        lr->err = errno;
        return -1;
    }
    if (got == 0) {
        lr->eof = 1;
        return 0;
    }
    lr->len += (size_t)got;
    lr->off += got;
    return 1;
}

/* Hands out the first n unconsumed bytes as the next line; skip more bytes
 * (its '\n') are consumed with it. */
static void lines_take(jr_lines *lr, size_t n, size_t skip, const char **line, size_t *len)
{
    *line = lr->buf + lr->start;
    *len = n;
    lr->line_no++;
    lr->line_off = lr->next_off;
    lr->next_off += (off_t)(n + skip);
    lr->start += n + skip;
    lr->len -= n + skip;
    lr->scanned = 0;
}

int jr_lines_next(jr_lines *lr, const char **line, size_t *len, int *has_nl)
{
    for (;;) {
        char *p = lr->buf + lr->start;
        char *nl = lr->len > lr->scanned ? memchr(p + lr->scanned, '\n', lr->len - lr->scanned)
                                         : NULL;
        if (nl) {
            size_t n = (size_t)(nl - p);
            if (n > JR_MAX_LINE)
                break;
            lines_take(lr, n, 1, line, len);
            *has_nl = 1;
            return 1;
        }
        lr->scanned = lr->len;
        if (lr->len > JR_MAX_LINE)
            break;
        if (lr->eof) {
            if (lr->len == 0)
                return 0;
            lines_take(lr, lr->len, 0, line, len);
            *has_nl = 0;
            return 1;
        }
        if (lines_fill(lr) < 0)
            return -1;
    }
    lr->too_long = 1;
    lr->line_no++;
    return -1;
}

int jr_lines_more(jr_lines *lr)
{
    while (lr->len == 0 && !lr->eof)
        if (lines_fill(lr) < 0)
            return -1;
    return lr->len > 0;
}

/* ---- the walk ----------------------------------------------------------- */

static void walk_bad(jr_walk *w, long long line_no, long long seq, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void walk_bad(jr_walk *w, long long line_no, long long seq, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->res.what, sizeof w->res.what, fmt, ap);
    va_end(ap);
    w->res.intact = 0;
    w->res.bad_line = line_no;
    w->res.bad_seq = seq;
}

static int is_hash_hex(const char *s)
{
    if (!s || strlen(s) != 64)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

/* The string at obj[key], or NULL when absent or not a string. */
static const char *get_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static int is_string_or_null(const json_t *v)
{
    return json_is_string(v) || json_is_null(v);
}

/* Checks one parsed record against its predecessors. prev_hash is the hash
 * of the previous line ("" for line 1). Returns 0, or -1 after walk_bad. */
static int check_record(jr_walk *w, const json_t *rec, long long line_no, const char *prev_hash)
{
    const json_t *jseq = json_object_get(rec, "seq");
    long long seq = json_is_integer(jseq) ? (long long)json_integer_value(jseq) : -1;
    char at[80];
    if (json_is_integer(jseq))
        snprintf(at, sizeof at, "line %lld (seq %lld)", line_no, seq);
    else
        snprintf(at, sizeof at, "line %lld", line_no);

    const json_t *v = json_object_get(rec, "v");
    if (!json_is_integer(v) || json_integer_value(v) != 1) {
        walk_bad(w, line_no, seq, "%s: unsupported record: \"v\" must be 1", at);
        return -1;
    }
    if (!json_is_integer(jseq)) {
        walk_bad(w, line_no, -1, "%s: \"seq\" missing or not an integer", at);
        return -1;
    }
    long long expected = w->last_seq + 1;
    if (seq > expected) {
        walk_bad(w, line_no, seq, "%s: seq gap: expected %lld", at, expected);
        return -1;
    }
    if (seq < expected) {
        walk_bad(w, line_no, seq, "%s: seq goes backwards/repeats: expected %lld", at, expected);
        return -1;
    }
    static const char *const strings[] = {"ts", "run", "mode", "type", "prev", NULL};
    for (int i = 0; strings[i]; i++) {
        if (!json_is_string(json_object_get(rec, strings[i]))) {
            walk_bad(w, line_no, seq, "%s: \"%s\" missing or not a string", at, strings[i]);
            return -1;
        }
    }
    if (!is_string_or_null(json_object_get(rec, "step")) ||
        !is_string_or_null(json_object_get(rec, "actor"))) {
        walk_bad(w, line_no, seq, "%s: \"step\" and \"actor\" must be strings or null", at);
        return -1;
    }
    const json_t *data = json_object_get(rec, "data");
    if (!json_is_object(data)) {
        walk_bad(w, line_no, seq, "%s: \"data\" missing or not an object", at);
        return -1;
    }
    const char *run = get_str(rec, "run"), *mode = get_str(rec, "mode");
    const char *type = get_str(rec, "type"), *prev = get_str(rec, "prev");

    if (!w->run) {
        if (strcmp(type, "run.started") != 0) {
            walk_bad(w, line_no, seq, "%s: first record is %s, expected run.started", at, type);
            return -1;
        }
        if (strcmp(mode, "live") != 0 && strcmp(mode, "drill") != 0) {
            walk_bad(w, line_no, seq, "%s: mode \"%s\" is neither live nor drill", at, mode);
            return -1;
        }
        const char *nonce = get_str(data, "nonce");
        if (!is_hash_hex(nonce)) {
            walk_bad(w, line_no, seq, "%s: run.started has no data.nonce of 64 hex digits", at);
            return -1;
        }
        if (strcmp(prev, nonce) != 0) {
            walk_bad(w, line_no, seq, "%s: chain broken: prev does not match data.nonce", at);
            return -1;
        }
        w->run = ut_xstrdup(run);
        w->mode = ut_xstrdup(mode);
        return 0;
    }
    if (strcmp(run, w->run) != 0) {
        walk_bad(w, line_no, seq, "%s: run \"%s\" differs from line 1 (\"%s\")", at, run, w->run);
        return -1;
    }
    if (strcmp(mode, w->mode) != 0) {
        walk_bad(w, line_no, seq, "%s: mode \"%s\" differs from line 1 (\"%s\")", at, mode, w->mode);
        return -1;
    }
    if (strcmp(prev, prev_hash) != 0) {
        /* Either this prev or the previous line was altered; the chain
         * cannot tell which, so both are named. */
        walk_bad(w, line_no, seq,
                 "%s: chain broken: prev does not match the previous line (line %lld)", at,
                 line_no - 1);
        return -1;
    }
    return 0;
}

static int walk_read_error(jr_walk *w, const char *name, int err)
{
    snprintf(w->res.what, sizeof w->res.what, "read %s: %s", name, strerror(err));
    w->res.intact = 0;
    return -1;
}

int jr_walk_fd(int fd, const char *name, jr_walk *w)
{
    memset(w, 0, sizeof *w);
    w->res.bad_seq = -1;
    jr_lines lr;
    jr_lines_init(&lr, fd);
    char prev_hash[JR_HASH_HEX] = "";
    int rc = 0, problem = 0;
    for (;;) {
        const char *line;
        size_t len;
        int has_nl;
        int got = jr_lines_next(&lr, &line, &len, &has_nl);
        if (got == 0)
            break;
        if (got < 0) {
            if (!lr.too_long) {
                rc = walk_read_error(w, name, lr.err);
                break;
            }
            walk_bad(w, lr.line_no, -1, "line %lld: longer than the %zu-byte limit for a record",
                     lr.line_no, JR_MAX_LINE);
            problem = 1;
            break;
        }
        if (!has_nl) {
            walk_bad(w, lr.line_no, -1,
                     "line %lld: torn: last line is incomplete (%zu bytes, no newline; it would be seq %lld)",
                     lr.line_no, len, w->last_seq + 1);
            w->torn = 1;
            w->torn_bytes = (off_t)len;
            problem = 1;
            break;
        }
        char hash[JR_HASH_HEX];
        if (jr_sha256_hex(line, len, hash) < 0) {
            snprintf(w->res.what, sizeof w->res.what, "%s: SHA-256 failed (OpenSSL)", name);
            rc = -1;
            break;
        }
        json_error_t jerr;
        json_t *rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(rec)) {
            char why[200];
            if (rec)
                snprintf(why, sizeof why, "not a JSON object");
            else
                snprintf(why, sizeof why, "not valid JSON: %s (column %d)", jerr.text, jerr.column);
            json_decref(rec);
            int more = jr_lines_more(&lr); /* only the last line may be torn */
            if (more < 0) {
                rc = walk_read_error(w, name, lr.err);
                break;
            }
            if (more == 0) {
                walk_bad(w, lr.line_no, -1, "line %lld: torn: last line is %s (%zu bytes; it would be seq %lld)",
                         lr.line_no, why, len + 1, w->last_seq + 1);
                w->torn = 1;
                w->torn_bytes = (off_t)len + 1;
            } else {
                walk_bad(w, lr.line_no, -1, "line %lld: %s (where seq %lld belongs)", lr.line_no, why,
                         w->last_seq + 1);
            }
            problem = 1;
            break;
        }
        int bad = check_record(w, rec, lr.line_no, prev_hash);
        json_decref(rec);
        if (bad) {
            problem = 1;
            break;
        }
        w->res.records++;
        w->last_seq++;
        memcpy(w->last_hash, hash, sizeof hash);
        memcpy(prev_hash, hash, sizeof hash);
        w->good_end = lr.next_off;
    }
    jr_lines_free(&lr);
    if (rc == 0 && !problem) {
        if (w->res.records == 0) {
            walk_bad(w, 0, -1, "empty journal");
        } else {
            w->res.intact = 1;
            w->res.bad_line = 0;
            snprintf(w->res.what, sizeof w->res.what, "intact: %lld records, chain verified",
                     w->res.records);
        }
    }
    return rc;
}

void jr_walk_free(jr_walk *w)
{
    free(w->run);
    free(w->mode);
    w->run = w->mode = NULL;
}

int jr_verify_file(const char *path, jr_verify_result *res)
{
    memset(res, 0, sizeof *res);
    res->bad_seq = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(res->what, sizeof res->what, "open %s: %s", path, strerror(errno));
        return -1;
    }
    jr_walk w;
    int rc = jr_walk_fd(fd, path, &w);
    close(fd);
    *res = w.res;
    res->head_seq = w.last_seq;
    snprintf(res->head, sizeof res->head, "%s", w.last_hash);
    jr_walk_free(&w);
    return rc;
}

json_t *jr_read_salvage(const char *path, long long *unreadable, size_t *torn_bytes, char *err, size_t err_size)
{
    *unreadable = 0;
    *torn_bytes = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_size, "open %s: %s", path, strerror(errno));
        return NULL;
    }
    json_t *records = json_array();
    jr_lines lr;
    jr_lines_init(&lr, fd);
    for (;;) {
        const char *line;
        size_t len;
        int has_nl;
        int got = jr_lines_next(&lr, &line, &len, &has_nl);
        if (got == 0)
            break;
        if (got < 0 && lr.too_long) {
            (*unreadable)++; /* the reader cannot step over it: the rest is lost */
            break;
        }
        if (got < 0) {
            snprintf(err, err_size, "read %s: %s", path, strerror(lr.err));
            json_decref(records);
            records = NULL;
            break;
        }
        json_t *rec = has_nl ? json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
        if (json_is_object(rec)) {
            json_array_append_new(records, rec);
            continue;
        }
        json_decref(rec);
        int more = has_nl ? jr_lines_more(&lr) : 0;
        if (more == 0) {
            *torn_bytes = len + (size_t)has_nl;
            break;
        }
        (*unreadable)++;
    }
    jr_lines_free(&lr);
    close(fd);
    return records;
}
