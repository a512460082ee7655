/*
 * test_journal.c — unit tests for the journal's writing side (journal.c):
 * create/append/sync/close, reopening to append, torn tails cut at every
 * byte of the last three records, write and fdatasync failures (/dev/full,
 * a pipe), jr_read, and the run lock within a process and across a fork.
 * Depends on: cmocka, jansson, journal.h, journal_walk.h.
 */
#include "journal.h"
#include "journal_walk.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- helpers ------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup_dir(void **state)
{
    char *dir = strdup("/tmp/irp-test-journal-XXXXXX");
    if (!dir || !mkdtemp(dir))
        return -1;
    *state = dir;
    return 0;
}

static int teardown_dir(void **state)
{
    rm_rf(*state);
    free(*state);
    return 0;
}

static char *path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Whole file into a malloc'd buffer (NUL-terminated); *len its size. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* A journal in dir with n records in all (run.started first). */
static void make_journal(const char *dir, int n)
{
    char err[256];
    json_t *start = json_pack("{s:s, s:{s:s}}", "playbook", "ransomware.lua", "vars", "host",
                              "web-07");
    jr_journal *j = jr_create(dir, "run-1", "drill", start, err, sizeof err);
    assert_non_null(j);
    for (int i = 2; i <= n; i++) {
        json_t *d = json_pack("{s:i, s:s}", "i", i, "note", i % 3 ? "plain" : "ünïcödé \"q\"\n");
        assert_int_equal(jr_append(j, i % 2 ? "step.succeeded" : "step.started", "isolate",
                                   i % 4 ? NULL : "alice", d),
                         i);
    }
    assert_int_equal(jr_close(j), 0);
}

static void assert_intact(const char *path, long long records)
{
    jr_verify_result res;
    assert_int_equal(jr_verify_file(path, &res), 0);
    if (!res.intact)
        fail_msg("%s not intact: %s", path, res.what);
    assert_int_equal(res.records, records);
}

/* The lowest descriptor number that is free now (the next open gets it). */
static int next_fd(void)
{
    int fd = dup(0);
    assert_true(fd >= 0);
    close(fd);
    return fd;
}

/* ---- create, append, reopen -------------------------------------------- */

static void test_create_append_verify(void **state)
{
    const char *dir = *state;
    char err[256];
    jr_journal *j = jr_create(dir, "run-1", "live", json_pack("{s:s}", "playbook", "p.lua"), err,
                              sizeof err);
    assert_non_null(j);
    assert_null(jr_error(j));
    assert_string_equal(jr_run_id(j), "run-1");
    assert_string_equal(jr_mode(j), "live");
    assert_int_equal(jr_last_seq(j), 1);
    assert_int_equal(jr_append(j, "step.started", "confirm", NULL, NULL), 2);
    assert_int_equal(jr_append_sync(j, "manual.answered", "confirm", "bob",
                                    json_pack("{s:s}", "answer", "done")), 3);
    assert_int_equal(jr_sync(j), 0);
    assert_int_equal(jr_append(j, "run.finished", NULL, NULL,
                               json_pack("{s:s}", "status", "succeeded")), 4);
    assert_int_equal(jr_close(j), 0);

    char *path = path_in(dir, "journal.jsonl");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_intact(path, 4);

    size_t len;
    char *text = slurp(path, &len);
    /* Keys in the documented order, compact, nonce = first prev. */
    assert_memory_equal(text, "{\"v\":1,\"seq\":1,\"ts\":\"", 21);
    const char *keys[] = {"\"v\":", "\"seq\":", "\"ts\":", "\"run\":", "\"mode\":", "\"type\":",
                          "\"step\":", "\"actor\":", "\"data\":", "\"prev\":"};
    const char *at = text;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *k = strstr(at, keys[i]);
        assert_non_null(k);
        at = k;
    }
    assert_non_null(strstr(text, "\"step\":\"confirm\",\"actor\":\"bob\""));

    size_t torn = 99;
    json_t *recs = jr_read(path, &torn, err, sizeof err);
    assert_non_null(recs);
    assert_int_equal(torn, 0);
    assert_int_equal(json_array_size(recs), 4);
    json_t *first = json_array_get(recs, 0);
    const char *nonce = json_string_value(json_object_get(json_object_get(first, "data"), "nonce"));
    assert_non_null(nonce);
    assert_int_equal(strlen(nonce), 64);
    assert_string_equal(nonce, json_string_value(json_object_get(first, "prev")));
    assert_string_equal(json_string_value(json_object_get(first, "type")), "run.started");
    assert_true(json_is_null(json_object_get(first, "step")));
    /* prev of record 2 is the hash of line 1. */
    char hash[JR_HASH_HEX];
    const char *nl = strchr(text, '\n');
    jr_sha256_hex(text, (size_t)(nl - text), hash);
    assert_string_equal(hash, json_string_value(json_object_get(json_array_get(recs, 1), "prev")));
    json_decref(recs);
    free(text);
    free(path);
}

static void test_create_refusals(void **state)
{
    const char *dir = *state;
    char err[256];
    jr_journal *j = jr_create(dir, "r", "live", NULL, err, sizeof err);
    assert_non_null(j);
    jr_close(j);
    assert_null(jr_create(dir, "r", "live", NULL, err, sizeof err));
    assert_non_null(strstr(err, "journal.jsonl: File exists"));
    assert_null(jr_create(dir, "r", "tabletop", NULL, err, sizeof err));
    assert_non_null(strstr(err, "mode must be"));
    assert_null(jr_create(dir, "r", "live", json_array(), err, sizeof err));
    assert_null(jr_create("/nonexistent/irp/dir", "r", "live", NULL, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/irp/dir/journal.jsonl: No such file"));
}

static void test_reopen_continues_chain(void **state)
{
    const char *dir = *state;
    char err[256];
    make_journal(dir, 5);
    jr_journal *j = jr_open_append(dir, err, sizeof err);
    if (!j)
        fail_msg("%s", err);
    assert_int_equal(jr_last_seq(j), 5);
    assert_string_equal(jr_run_id(j), "run-1");
    assert_string_equal(jr_mode(j), "drill");
    assert_int_equal(jr_append(j, "run.resumed", NULL, "carol", NULL), 6);
    assert_int_equal(jr_append_sync(j, "step.started", "b", NULL, NULL), 7);
    assert_int_equal(jr_close(j), 0);
    char *path = path_in(dir, "journal.jsonl");
    assert_intact(path, 7);
    /* A second reopen also continues. */
    j = jr_open_append(dir, err, sizeof err);
    assert_non_null(j);
    assert_int_equal(jr_append(j, "run.finished", NULL, NULL, NULL), 8);
    assert_int_equal(jr_close(j), 0);
    assert_intact(path, 8);
    /* No torn file was made for a clean journal. */
    char *torn = path_in(dir, "journal.torn.6");
    assert_int_not_equal(access(torn, F_OK), 0);
    free(torn);
    free(path);
}

static void test_open_append_refusals(void **state)
{
    const char *dir = *state;
    char err[512];
    assert_null(jr_open_append(dir, err, sizeof err));
    assert_non_null(strstr(err, "journal.jsonl: No such file"));

    char *path = path_in(dir, "journal.jsonl");
    spit(path, "", 0);
    errno = 0;
    assert_null(jr_open_append(dir, err, sizeof err));
    assert_int_equal(errno, EBADMSG);
    assert_non_null(strstr(err, "empty journal"));

    /* Only a torn first line: nothing to resume from. */
    spit(path, "{\"v\":1,\"se", 10);
    assert_null(jr_open_append(dir, err, sizeof err));
    assert_non_null(strstr(err, "no whole record"));
    unlink(path);

    /* Damage before the tail is refused, naming the first bad record. */
    make_journal(dir, 6);
    size_t len;
    char *text = slurp(path, &len);
    char *line3 = strchr(strchr(text, '\n') + 1, '\n') + 1;
    line3[0] = 'X';
    spit(path, text, len);
    errno = 0;
    assert_null(jr_open_append(dir, err, sizeof err));
    assert_int_equal(errno, EBADMSG); /* the content, not the disk: exit 65, not 74 */
    assert_non_null(strstr(err, "line 3: not valid JSON"));
    assert_non_null(strstr(err, "refusing to append"));
    /* ... and the journal was not touched. */
    size_t len2;
    char *after = slurp(path, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(after, text, len);
    free(after);
    free(text);
    free(path);
}

/* ---- torn tails ----------------------------------------------------------- */

/* Truncates a copy of the journal at every byte offset inside its last
 * three records; verify, jr_read and jr_open_append must agree. */
static void test_torn_every_offset(void **state)
{
    const char *dir = *state;
    char err[512];
    make_journal(dir, 9);
    char *src = path_in(dir, "journal.jsonl");
    size_t len;
    char *text = slurp(src, &len);
    size_t starts[16];
    int lines = 0;
    starts[lines++] = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\n' && i + 1 < len)
            starts[lines++] = i + 1;
    assert_int_equal(lines, 9);
    char *sub = path_in(dir, "cut");
    char *jpath = path_in(sub, "journal.jsonl");
    int checked = 0;
    for (size_t k = starts[lines - 3]; k <= len; k++) {
        int whole = 0; /* whole lines in the prefix */
        for (int i = 0; i < lines; i++)
            if (starts[i] + 1 <= k && (i + 1 < lines ? starts[i + 1] : len) <= k)
                whole = i + 1;
        size_t tail = k - (whole < lines ? starts[whole] : len);
        rm_rf(sub);
        assert_int_equal(mkdir(sub, 0700), 0);
        spit(jpath, text, k);

        jr_verify_result res;
        assert_int_equal(jr_verify_file(jpath, &res), 0);
        size_t torn_bytes;
        json_t *recs = jr_read(jpath, &torn_bytes, err, sizeof err);
        assert_non_null(recs);
        assert_int_equal(json_array_size(recs), whole);
        assert_int_equal(torn_bytes, tail);
        json_decref(recs);
        if (tail == 0) {
            if (!res.intact)
                fail_msg("cut at %zu: %s", k, res.what);
            assert_int_equal(res.records, whole);
        } else {
            assert_false(res.intact);
            assert_int_equal(res.records, whole);
            assert_int_equal(res.bad_line, whole + 1);
            char want[128];
            snprintf(want, sizeof want,
                     "line %d: torn: last line is incomplete (%zu bytes, no newline; it would be seq %d)",
                     whole + 1, tail, whole + 1);
            assert_string_equal(res.what, want);
        }

        jr_journal *j = jr_open_append(sub, err, sizeof err);
        if (!j)
            fail_msg("cut at %zu: %s", k, err);
        long long expect_seq = whole + (tail ? 1 : 0);
        assert_int_equal(jr_last_seq(j), expect_seq);
        assert_int_equal(jr_append(j, "operator.note", NULL, "dave", NULL), expect_seq + 1);
        assert_int_equal(jr_close(j), 0);
        assert_intact(jpath, expect_seq + 1);
        if (tail) {
            char name[64];
            snprintf(name, sizeof name, "journal.torn.%d", whole + 1);
            char *saved = path_in(sub, name);
            size_t slen;
            char *stext = slurp(saved, &slen);
            assert_int_equal(slen, tail);
            assert_memory_equal(stext, text + starts[whole], tail);
            free(stext);
            free(saved);
            recs = jr_read(jpath, NULL, err, sizeof err);
            json_t *rec = json_array_get(recs, (size_t)whole);
            assert_string_equal(json_string_value(json_object_get(rec, "type")), "journal.torn");
            json_t *data = json_object_get(rec, "data");
            assert_int_equal(json_integer_value(json_object_get(data, "bytes")), tail);
            assert_string_equal(json_string_value(json_object_get(data, "saved_as")), name);
            json_decref(recs);
        }
        checked++;
    }
    assert_true(checked > 100);
    rm_rf(sub);
    free(jpath);
    free(sub);
    free(text);
    free(src);
}

/* A last line that ends in '\n' but is not JSON is torn as well; a second
 * recovery of the same seq does not overwrite the first saved tail, and
 * records it too (the open that saved it stopped before recording it). */
static void test_torn_garbage_line(void **state)
{
    const char *dir = *state;
    char err[512];
    make_journal(dir, 4);
    char *path = path_in(dir, "journal.jsonl");
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "{garbage\n", 9), 9);
    close(fd);
    jr_verify_result res;
    assert_int_equal(jr_verify_file(path, &res), 0);
    assert_false(res.intact);
    assert_int_equal(res.bad_line, 5);
    assert_non_null(strstr(res.what, "line 5: torn: last line is not valid JSON"));
    char *taken = path_in(dir, "journal.torn.5");
    spit(taken, "earlier", 7);
    jr_journal *j = jr_open_append(dir, err, sizeof err);
    if (!j)
        fail_msg("%s", err);
    assert_int_equal(jr_last_seq(j), 6);
    assert_int_equal(jr_close(j), 0);
    assert_intact(path, 6);
    json_t *recs = jr_read(path, NULL, err, sizeof err);
    json_t *data = json_object_get(json_array_get(recs, 4), "data");
    assert_int_equal(json_integer_value(json_object_get(data, "bytes")), 9);
    assert_string_equal(json_string_value(json_object_get(data, "saved_as")), "journal.torn.5.1");
    data = json_object_get(json_array_get(recs, 5), "data");
    assert_int_equal(json_integer_value(json_object_get(data, "bytes")), 7);
    assert_string_equal(json_string_value(json_object_get(data, "saved_as")), "journal.torn.5");
    json_decref(recs);
    /* Reopened with nothing torn: nothing more is recorded. */
    j = jr_open_append(dir, err, sizeof err);
    if (!j)
        fail_msg("%s", err);
    assert_int_equal(jr_last_seq(j), 6);
    assert_int_equal(jr_close(j), 0);
    size_t n;
    char *kept = slurp(taken, &n);
    assert_string_equal(kept, "earlier");
    free(kept);
    free(taken);
    free(path);
}

/* ---- failures ------------------------------------------------------------- */

/* Writes that fail with ENOSPC: the journal's descriptor is replaced by
 * /dev/full (the descriptor number is predictable: the lowest free one). */
static void test_enospc(void **state)
{
    const char *dir = *state;
    char err[256];
    int expect = next_fd();
    jr_journal *j = jr_create(dir, "run-x", "live", NULL, err, sizeof err);
    assert_non_null(j);
    char *path = path_in(dir, "journal.jsonl");
    struct stat a, b;
    assert_int_equal(fstat(expect, &a), 0);
    assert_int_equal(stat(path, &b), 0);
    assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
    int full = open("/dev/full", O_WRONLY);
    assert_true(full >= 0);
    assert_int_equal(dup2(full, expect), expect);
    close(full);

    errno = 0;
    assert_int_equal(jr_append(j, "step.started", "s", NULL, NULL), -1);
    assert_int_equal(errno, ENOSPC);
    assert_non_null(jr_error(j));
    assert_non_null(strstr(jr_error(j), "No space left on device"));
    assert_non_null(strstr(jr_error(j), path));
    assert_int_equal(jr_append(j, "step.started", "s", NULL, NULL), -1);
    assert_int_equal(jr_append_sync(j, "step.started", "s", NULL, json_object()), -1);
    assert_int_equal(jr_sync(j), -1);
    assert_int_equal(jr_last_seq(j), 1);
    assert_int_equal(jr_close(j), -1);
    assert_intact(path, 1);
    free(path);
}

/* fdatasync failing (a pipe gives EINVAL): the journal fails for good and
 * the sync is never retried; with nothing pending jr_sync makes no call. */
static void test_sync_failure_not_retried(void **state)
{
    const char *dir = *state;
    char err[256];
    int expect = next_fd();
    jr_journal *j = jr_create(dir, "run-y", "live", NULL, err, sizeof err);
    assert_non_null(j);
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(dup2(p[1], expect), expect);
    close(p[1]);
    /* run.started was synced by jr_create: nothing pending, no fdatasync. */
    assert_int_equal(jr_sync(j), 0);
    assert_int_equal(jr_sync(j), 0);
    assert_int_equal(jr_append(j, "step.started", "s", NULL, NULL), 2);
    assert_int_equal(jr_sync(j), -1);
    assert_non_null(strstr(jr_error(j), "fdatasync"));
    assert_non_null(strstr(jr_error(j), "Invalid argument"));
    assert_int_equal(jr_sync(j), -1);
    assert_int_equal(jr_append(j, "step.failed", "s", NULL, NULL), -1);
    assert_int_equal(jr_close(j), -1);
    close(p[0]);
}

/* Refusals that write nothing keep the journal healthy. */
static void test_append_refusals_keep_journal(void **state)
{
    const char *dir = *state;
    char err[256];
    jr_journal *j = jr_create(dir, "run-z", "drill", NULL, err, sizeof err);
    assert_non_null(j);
    errno = 0;
    assert_int_equal(jr_append(j, "operator.note", NULL, NULL, json_array()), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(jr_append(j, NULL, NULL, NULL, NULL), -1);
    size_t big = JR_MAX_LINE + 16;
    char *s = malloc(big + 1);
    assert_non_null(s);
    memset(s, 'a', big);
    s[big] = '\0';
    errno = 0;
    assert_int_equal(jr_append(j, "artifact.stored", NULL, NULL, json_pack("{s:s}", "blob", s)), -1);
    assert_int_equal(errno, EMSGSIZE);
    free(s);
    assert_null(jr_error(j));
    /* Invalid UTF-8 in a step id is kept (as U+FFFD), not lost. */
    assert_int_equal(jr_append(j, "step.started", "bad\xff" "id", NULL, NULL), 2);
    assert_int_equal(jr_close(j), 0);
    char *path = path_in(dir, "journal.jsonl");
    assert_intact(path, 2);
    json_t *recs = jr_read(path, NULL, err, sizeof err);
    assert_string_equal(json_string_value(json_object_get(json_array_get(recs, 1), "step")),
                        "bad\xEF\xBF\xBD" "id");
    json_decref(recs);
    free(path);
    assert_int_equal(jr_close(NULL), 0);
    assert_int_equal(jr_append(NULL, "x", NULL, NULL, json_object()), -1);
}

static void test_read_damage(void **state)
{
    const char *dir = *state;
    char err[256];
    assert_null(jr_read("/nonexistent/journal.jsonl", NULL, err, sizeof err));
    assert_non_null(strstr(err, "open /nonexistent/journal.jsonl: No such file"));
    make_journal(dir, 5);
    char *path = path_in(dir, "journal.jsonl");
    size_t len;
    char *text = slurp(path, &len);
    char *line2 = strchr(text, '\n') + 1;
    *strchr(line2, '\n') = ' '; /* joins lines 2 and 3 */
    spit(path, text, len);
    assert_null(jr_read(path, NULL, err, sizeof err));
    assert_non_null(strstr(err, "line 2: not valid JSON"));
    free(text);
    free(path);
}

/* ---- the run lock --------------------------------------------------------- */

static void test_lock_in_process(void **state)
{
    const char *dir = *state;
    char err[256];
    long holder = -5;
    int fd = jr_lock_run(dir, &holder, err, sizeof err);
    assert_true(fd >= 0);
    assert_int_equal(holder, 0);
    /* flock belongs to the open file description: a second open conflicts
     * even in the same process. */
    assert_int_equal(jr_lock_run(dir, &holder, err, sizeof err), -1);
    assert_int_equal(holder, (long)getpid());
    char want[64];
    snprintf(want, sizeof want, "run is in use by pid %ld", (long)getpid());
    assert_non_null(strstr(err, want));
    close(fd);
    fd = jr_lock_run(dir, &holder, err, sizeof err);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(jr_lock_run("/nonexistent/dir", &holder, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/dir/lock"));
}

static void test_lock_dies_with_holder(void **state)
{
    const char *dir = *state;
    char err[256];
    int ready[2], go[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        long h;
        char e[256];
        int fd = jr_lock_run(dir, &h, e, sizeof e);
        char c = fd >= 0 ? 'y' : 'n';
        (void)!write(ready[1], &c, 1);
        (void)!read(go[0], &c, 1); /* hold the lock until told */
        _exit(0);                  /* the lock goes with the process */
    }
    char c = 0;
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(c, 'y');
    long holder = 0;
    assert_int_equal(jr_lock_run(dir, &holder, err, sizeof err), -1);
    assert_int_equal(holder, (long)child);
    (void)!write(go[1], "x", 1);
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    int fd = jr_lock_run(dir, &holder, err, sizeof err);
    assert_true(fd >= 0);
    char *lock = path_in(dir, "lock");
    size_t n;
    char *text = slurp(lock, &n);
    char want[32];
    snprintf(want, sizeof want, "%ld\n", (long)getpid());
    assert_string_equal(text, want);
    free(text);
    free(lock);
    close(fd);
    close(ready[0]); close(ready[1]); close(go[0]); close(go[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_append_verify, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_create_refusals, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_reopen_continues_chain, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_open_append_refusals, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_torn_every_offset, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_torn_garbage_line, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_enospc, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_sync_failure_not_retried, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_append_refusals_keep_journal, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_read_damage, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_lock_in_process, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_lock_dies_with_holder, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
