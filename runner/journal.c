/*
 * journal.c — writing the run's record: create a journal, reopen it to
 * append (setting a torn tail aside first), append hash-chained records
 * with one write() each, make them durable with fdatasync only when
 * something is pending, read a journal back, and the one-runner-per-run lock.
 * Checking a journal (the walk, SHA-256) lives in journal_verify.c.
 * Depends on: jansson, OpenSSL libcrypto (via journal_verify.c), util.h,
 * journal_walk.h.
 */
#include "journal.h"
#include "journal_walk.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define JR_FILE "journal.jsonl"

struct jr_journal {
    int fd;
    char *path;
    char *run, *mode;
    long long seq;            /* seq of the last record written */
    char prev[JR_HASH_HEX];   /* hash of the last line: the next record's "prev" */
    int dirty;                /* records written since the last fdatasync */
    char *error;              /* why the journal failed; NULL while healthy */
};

static void set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
    if (!err || !err_size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* Marks the journal failed for good: once a write or sync failed, nothing
 * after it may claim to be on disk. */
static void jr_fail(jr_journal *j, const char *op, const char *why)
{
    if (!j->error)
        j->error = ut_xasprintf("%s %s: %s", op, j->path, why);
}

static jr_journal *journal_new(int fd, const char *path, const char *run, const char *mode)
{
    jr_journal *j = ut_xcalloc(1, sizeof *j);
    j->fd = fd;
    j->path = ut_xstrdup(path);
    j->run = ut_xstrdup(run);
    j->mode = ut_xstrdup(mode);
    return j;
}

static void journal_free(jr_journal *j)
{
    if (j->fd >= 0)
        close(j->fd);
    free(j->path);
    free(j->run);
    free(j->mode);
    free(j->error);
    free(j);
}

/* A JSON string for text that may not be valid UTF-8 (a step id from a
 * playbook, an operator's name): invalid bytes become U+FFFD rather than
 * losing the record. */
static json_t *text_value(const char *s)
{
    size_t n = strlen(s);
    if (ut_utf8_valid(s, n))
        return json_stringn(s, n);
    size_t clean_len;
    char *clean = ut_utf8_sanitize(s, n, &clean_len);
    json_t *v = json_stringn(clean, clean_len);
    free(clean);
    return v;
}

/* Makes a directory entry durable (a new file, a truncation's companion). */
static int fsync_dir(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    int rc = fsync(dfd);
    int saved = errno;
    close(dfd);
    errno = saved;
    return rc;
}

long long jr_append(jr_journal *j, const char *type, const char *step, const char *actor,
                    json_t *data)
{
    if (!j || !type || !*type || (data && !json_is_object(data))) {
        json_decref(data);
        errno = EINVAL;
        return -1;
    }
    if (j->error) {
        json_decref(data);
        errno = EIO;
        return -1;
    }
    char ts[40];
    ut_rfc3339_ms(ut_now_ms(), ts, sizeof ts);
    /* Keys in the documented order; json_dumps keeps insertion order. */
    json_t *rec = json_object();
    json_object_set_new(rec, "v", json_integer(1));
    json_object_set_new(rec, "seq", json_integer(j->seq + 1));
    json_object_set_new(rec, "ts", json_string(ts));
    json_object_set_new(rec, "run", text_value(j->run));
    json_object_set_new(rec, "mode", text_value(j->mode));
    json_object_set_new(rec, "type", text_value(type));
    json_object_set_new(rec, "step", step ? text_value(step) : json_null());
    json_object_set_new(rec, "actor", actor ? text_value(actor) : json_null());
    json_object_set_new(rec, "data", data ? data : json_object());
    json_object_set_new(rec, "prev", json_string(j->prev));
    char *text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(rec);
    /* Nothing was written in these two cases, so the chain is intact and the
     * journal stays healthy: the caller can record the failure instead. */
    if (!text) {
        errno = ENOMEM;
        return -1;
    }
    size_t n = strlen(text);
    if (n > JR_MAX_LINE) {
        free(text);
        errno = EMSGSIZE;
        return -1;
    }
    char hash[JR_HASH_HEX];
    if (jr_sha256_hex(text, n, hash) < 0) {
        free(text);
        errno = EIO;
        return -1;
    }
    text[n] = '\n'; /* json_dumps' buffer holds n + 1 bytes: reuse the NUL */
    /* One write() per record, so a crash leaves at most one torn line. A
     * short write is not continued: the tail is set aside on the next open. */
    ssize_t w;
    do
        w = write(j->fd, text, n + 1);
    while (w < 0 && errno == EINTR);
    int saved = errno;
    free(text);
    if (w < 0) {
        jr_fail(j, "write", strerror(saved));
        errno = saved;
        return -1;
    }
    if ((size_t)w != n + 1) {
        char why[96];
        snprintf(why, sizeof why, "short write (%zd of %zu bytes; disk full?)", w, n + 1);
        jr_fail(j, "write", why);
        errno = ENOSPC;
        return -1;
    }
    j->seq++;
    memcpy(j->prev, hash, sizeof hash);
    j->dirty = 1;
    return j->seq;
}

int jr_sync(jr_journal *j)
{
    if (!j)
        return -1;
    if (j->error)
        return -1;
    if (!j->dirty)
        return 0;
    /* After a failed fdatasync the kernel may have dropped the dirty pages
     * and cleared the error: a retry could "succeed" without the data. */
    if (fdatasync(j->fd) < 0) {
        jr_fail(j, "fdatasync", strerror(errno));
        return -1;
    }
    j->dirty = 0;
    return 0;
}

long long jr_append_sync(jr_journal *j, const char *type, const char *step, const char *actor,
                         json_t *data)
{
    long long seq = jr_append(j, type, step, actor, data);
    if (seq < 0 || jr_sync(j) < 0)
        return -1;
    return seq;
}

const char *jr_error(const jr_journal *j)
{
    return j ? j->error : NULL;
}

const char *jr_run_id(const jr_journal *j)
{
    return j ? j->run : NULL;
}

const char *jr_mode(const jr_journal *j)
{
    return j ? j->mode : NULL;
}

long long jr_last_seq(const jr_journal *j)
{
    return j ? j->seq : -1;
}

int jr_close(jr_journal *j)
{
    if (!j)
        return 0;
    int rc = jr_sync(j);
    if (close(j->fd) < 0 && rc == 0)
        rc = -1;
    j->fd = -1;
    journal_free(j);
    return rc;
}

jr_journal *jr_create(const char *run_dir, const char *run_id, const char *mode, json_t *data,
                      char *err, size_t err_size)
{
    if (!run_dir || !*run_dir || !run_id || !*run_id) {
        json_decref(data);
        set_err(err, err_size, "journal: run directory and run id are required");
        return NULL;
    }
    if (!mode || (strcmp(mode, "live") != 0 && strcmp(mode, "drill") != 0)) {
        json_decref(data);
        set_err(err, err_size, "journal: mode must be \"live\" or \"drill\", not \"%s\"",
                mode ? mode : "(null)");
        return NULL;
    }
    if (data && !json_is_object(data)) {
        json_decref(data);
        set_err(err, err_size, "journal: run.started data must be a JSON object");
        return NULL;
    }
    unsigned char raw[32];
    char nonce[JR_HASH_HEX];
    if (ut_random_bytes(raw, sizeof raw) < 0) {
        json_decref(data);
        set_err(err, err_size, "journal: no random bytes for the nonce: %s", strerror(errno));
        return NULL;
    }
    ut_hex(raw, sizeof raw, nonce);
    char *path = ut_xasprintf("%s/" JR_FILE, run_dir);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        set_err(err, err_size, "create %s: %s", path, strerror(errno));
        free(path);
        json_decref(data);
        return NULL;
    }
    jr_journal *j = journal_new(fd, path, run_id, mode);
    memcpy(j->prev, nonce, sizeof nonce);
    if (!data)
        data = json_object();
    json_object_set_new(data, "nonce", json_string(nonce));
    if (jr_append_sync(j, "run.started", NULL, NULL, data) < 0) {
        set_err(err, err_size, "%s", j->error ? j->error : "journal: cannot encode run.started");
        goto fail;
    }
    if (fsync_dir(run_dir) < 0) {
        set_err(err, err_size, "fsync %s: %s", run_dir, strerror(errno));
        goto fail;
    }
    free(path);
    return j;
fail:
    /* Nothing has happened in this run yet: leave no half-made journal. */
    unlink(path);
    free(path);
    journal_free(j);
    return NULL;
}

/* The names save_torn gives the tear of record seq: journal.torn.<seq>,
 * then .1, .2 ... when taken. */
static void torn_name(char *name, size_t name_size, long long seq, int attempt)
{
    if (attempt == 0)
        snprintf(name, name_size, "journal.torn.%lld", seq);
    else
        snprintf(name, name_size, "journal.torn.%lld.%d", seq, attempt);
}

/* Copies the torn tail [at, at + n) of fd into a new file in run_dir and
 * makes it durable. Returns 0 with the file's name in name, or -1. */
static int save_torn(int fd, off_t at, off_t n, const char *run_dir, long long seq, char *name,
                     size_t name_size, char *err, size_t err_size)
{
    int out = -1;
    char *path = NULL;
    /* A crash during an earlier recovery may have left this name taken. */
    for (int attempt = 0; attempt < 100 && out < 0; attempt++) {
        torn_name(name, name_size, seq, attempt);
        free(path);
        path = ut_xasprintf("%s/%s", run_dir, name);
        out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (out < 0 && errno != EEXIST)
            break;
    }
    if (out < 0) {
        set_err(err, err_size, "create %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    char buf[64 << 10];
    while (n > 0) {
        size_t want = n < (off_t)sizeof buf ? (size_t)n : sizeof buf;
        ssize_t got = pread(fd, buf, want, at);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            set_err(err, err_size, "read torn tail: %s", got < 0 ? strerror(errno) : "file shrank");
            goto fail;
        }
        if (ut_write_all(out, buf, (size_t)got) < 0) {
            set_err(err, err_size, "write %s: %s", path, strerror(errno));
            goto fail;
        }
        at += got;
        n -= got;
    }
    if (fsync(out) < 0 || fsync_dir(run_dir) < 0) {
        set_err(err, err_size, "fsync %s: %s", path, strerror(errno));
        goto fail;
    }
    if (close(out) < 0) {
        out = -1;
        set_err(err, err_size, "close %s: %s", path, strerror(errno));
        goto fail;
    }
    free(path);
    return 0;
fail:
    if (out >= 0)
        close(out);
    free(path);
    return -1;
}

/* A side file named for record seq whose journal.torn record is missing:
 * an earlier open set a tear aside and stopped (crash, disk full) before
 * recording it. Records each such file (but skip, just recorded), so
 * every side file is on the record. 0 or -1 with err. */
static int record_orphans(jr_journal *j, const char *run_dir, long long seq, const char *skip, char *err,
                          size_t err_size)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        char name[64];
        torn_name(name, sizeof name, seq, attempt);
        if (skip && !strcmp(name, skip))
            continue;
        char *path = ut_xasprintf("%s/%s", run_dir, name);
        struct stat st;
        int found = stat(path, &st) == 0 && S_ISREG(st.st_mode);
        free(path);
        if (!found)
            break; /* the names are taken in order */
        json_t *data = json_object();
        json_object_set_new(data, "bytes", json_integer((json_int_t)st.st_size));
        json_object_set_new(data, "saved_as", json_string(name));
        json_object_set_new(data, "note", json_string("set aside by an earlier open that stopped before "
                                                      "recording it"));
        if (jr_append_sync(j, "journal.torn", NULL, NULL, data) < 0) {
            set_err(err, err_size, "%s", j->error ? j->error : "journal: cannot record journal.torn");
            return -1;
        }
    }
    return 0;
}

/* Sets a torn tail aside, cuts the journal back to its last whole record
 * and records what was done. The bytes are saved (and durable) before the
 * journal is cut, so a crash in between loses nothing. */
static int recover_torn(jr_journal *j, const char *run_dir, const jr_walk *w, char *err,
                        size_t err_size)
{
    struct stat st;
    if (fstat(j->fd, &st) < 0) {
        set_err(err, err_size, "stat %s: %s", j->path, strerror(errno));
        return -1;
    }
    if (st.st_size != w->good_end + w->torn_bytes) {
        set_err(err, err_size, "%s changed while it was being read (is another irp writing it?)",
                j->path);
        return -1;
    }
    char name[64];
    long long seq = j->seq + 1;
    if (save_torn(j->fd, w->good_end, w->torn_bytes, run_dir, seq, name, sizeof name, err, err_size) < 0)
        return -1;
    if (ftruncate(j->fd, w->good_end) < 0 || fsync(j->fd) < 0) {
        set_err(err, err_size, "truncate %s after its torn tail: %s", j->path, strerror(errno));
        return -1;
    }
    json_t *data = json_object();
    json_object_set_new(data, "bytes", json_integer((json_int_t)w->torn_bytes));
    json_object_set_new(data, "saved_as", json_string(name));
    if (jr_append_sync(j, "journal.torn", NULL, NULL, data) < 0) {
        set_err(err, err_size, "%s", j->error ? j->error : "journal: cannot record journal.torn");
        return -1;
    }
    return record_orphans(j, run_dir, seq, name, err, err_size);
}

jr_journal *jr_open_append(const char *run_dir, char *err, size_t err_size)
{
    if (!run_dir || !*run_dir) {
        set_err(err, err_size, "journal: run directory is required");
        return NULL;
    }
    char *path = ut_xasprintf("%s/" JR_FILE, run_dir);
    int fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, err_size, "open %s: %s", path, strerror(errno));
        free(path);
        return NULL;
    }
    jr_walk w;
    jr_journal *j = NULL;
    int damaged = 0; /* the content is wrong, rather than the disk */
    if (jr_walk_fd(fd, path, &w) < 0) {
        set_err(err, err_size, "%s", w.res.what);
        goto fail;
    }
    if (!w.res.intact && !w.torn) {
        set_err(err, err_size, "%s: %s; refusing to append to a damaged journal (see irp verify)",
                path, w.res.what);
        damaged = 1;
        goto fail;
    }
    if (w.res.records == 0) {
        set_err(err, err_size, "%s: %s; no whole record to resume from", path, w.res.what);
        damaged = 1;
        goto fail;
    }
    j = journal_new(fd, path, w.run, w.mode);
    fd = -1;
    j->seq = w.last_seq;
    memcpy(j->prev, w.last_hash, sizeof j->prev);
    if (w.torn ? recover_torn(j, run_dir, &w, err, err_size) < 0
               : record_orphans(j, run_dir, j->seq + 1, NULL, err, err_size) < 0)
        goto fail;
    jr_walk_free(&w);
    free(path);
    return j;
fail:
    {
        int saved = damaged ? EBADMSG : (errno && errno != EBADMSG ? errno : EIO);
        jr_walk_free(&w);
        if (j)
            journal_free(j);
        if (fd >= 0)
            close(fd);
        free(path);
        errno = saved;
    }
    return NULL;
}

json_t *jr_read(const char *path, size_t *torn_bytes, char *err, size_t err_size)
{
    if (torn_bytes)
        *torn_bytes = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, err_size, "open %s: %s", path, strerror(errno));
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
        if (got < 0) {
            if (lr.too_long)
                set_err(err, err_size, "%s: line %lld: longer than the %zu-byte limit", path,
                        lr.line_no, JR_MAX_LINE);
            else
                set_err(err, err_size, "read %s: %s", path, strerror(lr.err));
            goto fail;
        }
        if (!has_nl) {
            if (torn_bytes)
                *torn_bytes = len;
            break;
        }
        json_error_t jerr;
        json_t *rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
        if (json_is_object(rec)) {
            json_array_append_new(records, rec);
            continue;
        }
        json_decref(rec);
        /* Only the last line may be torn; anything earlier is damage. */
        int more = jr_lines_more(&lr);
        if (more == 0) {
            if (torn_bytes)
                *torn_bytes = len + 1;
            break;
        }
        if (more < 0)
            set_err(err, err_size, "read %s: %s", path, strerror(lr.err));
        else if (rec)
            set_err(err, err_size, "%s: line %lld: not a JSON object", path, lr.line_no);
        else
            set_err(err, err_size, "%s: line %lld: not valid JSON: %s (column %d)", path,
                    lr.line_no, jerr.text, jerr.column);
        goto fail;
    }
    jr_lines_free(&lr);
    close(fd);
    return records;
fail:
    jr_lines_free(&lr);
    close(fd);
    json_decref(records);
    return NULL;
}

/* The pid written into a lock file, or 0 when it is unreadable. */
static long read_lock_pid(int fd)
{
    char buf[32];
    ssize_t got = pread(fd, buf, sizeof buf - 1, 0);
    if (got <= 0)
        return 0;
    buf[got] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    return (end != buf && pid > 0 && (*end == '\n' || *end == '\0')) ? pid : 0;
}

int jr_lock_run(const char *run_dir, long *holder_pid, char *err, size_t err_size)
{
    long dummy;
    if (!holder_pid)
        holder_pid = &dummy;
    *holder_pid = 0;
    char *path = ut_xasprintf("%s/lock", run_dir ? run_dir : ".");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        set_err(err, err_size, "open %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    int rc, saved = 0;
    do
        rc = flock(fd, LOCK_EX | LOCK_NB);
    while (rc < 0 && errno == EINTR);
    if (rc < 0 && (saved = errno) == EWOULDBLOCK) {
        /* The holder writes its pid just after it wins: give it a moment,
         * and never name a pid that is not alive (a previous holder's). */
        for (int tries = 0; tries < 20 && rc < 0; tries++) {
            *holder_pid = read_lock_pid(fd);
            if (*holder_pid > 0 && (kill((pid_t)*holder_pid, 0) == 0 || errno == EPERM))
                break;
            *holder_pid = 0;
            usleep(10 * 1000);
            /* No live irp named: perhaps only irp status or irp log looking
             * (they take a shared lock for a moment). Try again. */
            rc = flock(fd, LOCK_EX | LOCK_NB);
        }
    }
    if (rc < 0) {
        if (saved == EWOULDBLOCK) {
            if (*holder_pid)
                set_err(err, err_size, "run is in use by pid %ld (%s)", *holder_pid, path);
            else
                set_err(err, err_size, "run is in use by another irp process (%s)", path);
        } else {
            set_err(err, err_size, "lock %s: %s", path, strerror(saved));
        }
        close(fd);
        free(path);
        errno = saved;
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    /* Write first, then cut: the file never reads as empty to a loser. */
    if (pwrite(fd, pid, (size_t)n, 0) != n || ftruncate(fd, n) < 0) {
        set_err(err, err_size, "write %s: %s", path, strerror(errno));
        close(fd);
        free(path);
        return -1;
    }
    free(path);
    return fd;
}

json_t *jr_last_run_record(json_t *records)
{
    for (size_t i = json_array_size(records); i-- > 0;) {
        json_t *rec = json_array_get(records, i);
        const char *t = json_string_value(json_object_get(rec, "type"));
        if (t && !strncmp(t, "run.", 4))
            return rec;
    }
    return NULL;
}
