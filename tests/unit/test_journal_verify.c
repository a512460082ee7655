/*
 * test_journal_verify.c — unit tests for checking a journal
 * (journal_verify.c): deleted, duplicated, swapped and altered records,
 * single-byte flips at every offset of the middle records, each field
 * check with its message, empty and missing files, and streaming of big
 * journals and over-long lines.
 * Depends on: cmocka, jansson, journal.h, journal_walk.h.
 */
#include "journal.h"
#include "journal_walk.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- helpers ------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static int setup_dir(void **state)
{
    char *dir = strdup("/tmp/irp-test-jverify-XXXXXX");
    if (!dir || !mkdtemp(dir))
        return -1;
    *state = dir;
    return 0;
}

static int teardown_dir(void **state)
{
    nftw(*state, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
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

/* A journal of n records made through the real API; returns its path. */
static char *make_journal(const char *dir, int n)
{
    char err[256];
    jr_journal *j = jr_create(dir, "run-v", "live", json_pack("{s:s}", "playbook", "p.lua"), err,
                              sizeof err);
    assert_non_null(j);
    for (int i = 2; i <= n; i++)
        assert_int_equal(jr_append(j, "step.succeeded", "s", NULL,
                                   json_pack("{s:i, s:s}", "i", i, "out", "plain text")),
                         i);
    assert_int_equal(jr_close(j), 0);
    return path_in(dir, "journal.jsonl");
}

/* Byte offsets where each line starts; returns the number of lines. */
static int line_starts(const char *text, size_t len, size_t *starts, int max)
{
    int n = 0;
    if (len)
        starts[n++] = 0;
    for (size_t i = 0; i + 1 < len && n < max; i++)
        if (text[i] == '\n')
            starts[n++] = i + 1;
    return n;
}

static void verify_expect(const char *path, long long bad_line, long long bad_seq,
                          const char *what)
{
    jr_verify_result res;
    assert_int_equal(jr_verify_file(path, &res), 0);
    assert_false(res.intact);
    assert_string_equal(res.what, what);
    assert_int_equal(res.bad_line, bad_line);
    assert_int_equal(res.bad_seq, bad_seq);
    assert_int_equal(res.records, bad_line - 1);
}

/* Writes recs (an array of objects) as a journal whose hash chain is
 * recomputed, so only the deliberate change is wrong. */
static void write_rechained(const char *path, json_t *recs)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    char prev[JR_HASH_HEX] = "";
    for (size_t i = 0; i < json_array_size(recs); i++) {
        json_t *rec = json_array_get(recs, i);
        if (i == 0) {
            const char *nonce =
                json_string_value(json_object_get(json_object_get(rec, "data"), "nonce"));
            snprintf(prev, sizeof prev, "%s", nonce ? nonce : "");
        }
        if (json_is_string(json_object_get(rec, "prev")))
            json_object_set_new(rec, "prev", json_string(prev));
        char *line = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
        assert_non_null(line);
        fprintf(f, "%s\n", line);
        jr_sha256_hex(line, strlen(line), prev);
        free(line);
    }
    fclose(f);
}

/* ---- records deleted, duplicated, moved, altered ------------------------- */

static void test_structural_damage(void **state)
{
    const char *dir = *state;
    char *path = make_journal(dir, 12);
    size_t len;
    char *text = slurp(path, &len);
    size_t st[16];
    assert_int_equal(line_starts(text, len, st, 16), 12);
    char *work = path_in(dir, "copy.jsonl");
    char *buf = malloc(len * 2);
    assert_non_null(buf);
    size_t ln[12];
    for (int i = 0; i < 12; i++)
        ln[i] = (i + 1 < 12 ? st[i + 1] : len) - st[i];

    spit(work, text, len);
    jr_verify_result res;
    assert_int_equal(jr_verify_file(work, &res), 0);
    assert_true(res.intact);
    assert_int_equal(res.records, 12);

    /* Line 9 deleted. */
    memcpy(buf, text, st[8]);
    memcpy(buf + st[8], text + st[9], len - st[9]);
    spit(work, buf, len - ln[8]);
    verify_expect(work, 9, 10, "line 9 (seq 10): seq gap: expected 9");

    /* Line 8 duplicated. */
    memcpy(buf, text, st[8]);
    memcpy(buf + st[8], text + st[7], ln[7]);
    memcpy(buf + st[8] + ln[7], text + st[8], len - st[8]);
    spit(work, buf, len + ln[7]);
    verify_expect(work, 9, 8, "line 9 (seq 8): seq goes backwards/repeats: expected 9");

    /* Lines 6 and 7 swapped. */
    memcpy(buf, text, len);
    memcpy(buf + st[5], text + st[6], ln[6]);
    memcpy(buf + st[5] + ln[6], text + st[5], ln[5]);
    spit(work, buf, len);
    verify_expect(work, 6, 7, "line 6 (seq 7): seq gap: expected 6");

    /* The first record deleted. */
    spit(work, text + st[1], len - st[1]);
    verify_expect(work, 1, 2, "line 1 (seq 2): seq gap: expected 1");

    /* Line 7's text altered in a way that still parses: line 8 finds out. */
    memcpy(buf, text, len);
    char *plain = strstr(buf + st[6], "plain text");
    assert_true(plain && plain < buf + st[7]);
    plain[0] = 'P';
    spit(work, buf, len);
    verify_expect(work, 8, 8,
                  "line 8 (seq 8): chain broken: prev does not match the previous line (line 7)");

    /* Line 7's own prev altered: line 7 is named. */
    memcpy(buf, text, len);
    char *prev = strstr(buf + st[6], "\"prev\":\"");
    assert_true(prev && prev < buf + st[7]);
    prev[8] = prev[8] == '0' ? '1' : '0';
    spit(work, buf, len);
    verify_expect(work, 7, 7,
                  "line 7 (seq 7): chain broken: prev does not match the previous line (line 6)");

    /* A middle line broken as JSON. */
    memcpy(buf, text, len);
    buf[st[4]] = '[';
    spit(work, buf, len);
    jr_verify_result r2;
    assert_int_equal(jr_verify_file(work, &r2), 0);
    assert_false(r2.intact);
    assert_int_equal(r2.bad_line, 5);
    assert_int_equal(r2.bad_seq, -1);
    assert_memory_equal(r2.what, "line 5: not valid JSON: ", 24);
    assert_non_null(strstr(r2.what, "(where seq 5 belongs)")); /* the record is named by seq too */

    /* An empty line in the middle. */
    memcpy(buf, text, st[3]);
    buf[st[3]] = '\n';
    memcpy(buf + st[3] + 1, text + st[3], len - st[3]);
    spit(work, buf, len + 1);
    assert_int_equal(jr_verify_file(work, &r2), 0);
    assert_int_equal(r2.bad_line, 4);
    assert_memory_equal(r2.what, "line 4: not valid JSON: ", 24);

    free(buf);
    free(work);
    free(text);
    free(path);
}

/* Every single-byte flip in the middle records is caught, at the flipped
 * line when it no longer parses or breaks a field check, else at the next
 * line, whose prev no longer matches. */
static void test_byte_flips(void **state)
{
    const char *dir = *state;
    char *path = make_journal(dir, 12);
    size_t len;
    char *text = slurp(path, &len);
    size_t st[16];
    assert_int_equal(line_starts(text, len, st, 16), 12);
    char *buf = malloc(len);
    assert_non_null(buf);
    char *work = path_in(dir, "flip.jsonl");
    static const unsigned char masks[] = {0x01, 0x02, 0x20, 0x80};
    int at_line = 0, at_next = 0;
    for (int r = 4; r <= 9; r++) {
        size_t begin = st[r - 1], end = st[r]; /* line r, its '\n' included */
        for (size_t off = begin; off < end; off++) {
            for (size_t m = 0; m < sizeof masks; m++) {
                memcpy(buf, text, len);
                buf[off] = (char)(buf[off] ^ masks[m]);
                spit(work, buf, len);
                jr_verify_result res;
                assert_int_equal(jr_verify_file(work, &res), 0);
                if (res.intact)
                    fail_msg("flip %#x at %zu (line %d) not detected", masks[m], off, r);
                /* Does the flipped line r still parse as one object? */
                const char *nl = memchr(buf + begin, '\n', len - begin);
                json_t *o = json_loadb(buf + begin, (size_t)(nl - (buf + begin)),
                                       JSON_REJECT_DUPLICATES, NULL);
                int parses = json_is_object(o) && nl == buf + end - 1;
                json_decref(o);
                if (res.bad_line == r + 1) {
                    char want[96];
                    snprintf(want, sizeof want,
                             "chain broken: prev does not match the previous line (line %d)", r);
                    if (!parses || !strstr(res.what, want))
                        fail_msg("flip at %zu: %s", off, res.what);
                    assert_int_equal(res.bad_seq, r + 1);
                    at_next++;
                } else {
                    if (res.bad_line != r)
                        fail_msg("flip %#x at %zu (line %d): reported %s", masks[m], off, r,
                                 res.what);
                    if (!parses)
                        assert_true(strstr(res.what, "not valid JSON") ||
                                    strstr(res.what, "not a JSON object"));
                    at_line++;
                }
            }
        }
    }
    print_message("flips: %d named at the line, %d at the next line\n", at_line, at_next);
    assert_true(at_line > 50);
    assert_true(at_next > 50);
    free(work);
    free(buf);
    free(text);
    free(path);
}

/* ---- field checks ----------------------------------------------------------- */

typedef void (*mutate_fn)(json_t *recs);

static void m_v2(json_t *r) { json_object_set_new(json_array_get(r, 2), "v", json_integer(2)); }
static void m_seq_str(json_t *r) { json_object_set_new(json_array_get(r, 2), "seq", json_string("3")); }
static void m_no_type(json_t *r) { json_object_del(json_array_get(r, 2), "type"); }
static void m_ts_num(json_t *r) { json_object_set_new(json_array_get(r, 2), "ts", json_integer(5)); }
static void m_data_arr(json_t *r) { json_object_set_new(json_array_get(r, 2), "data", json_array()); }
static void m_step_num(json_t *r) { json_object_set_new(json_array_get(r, 2), "step", json_integer(1)); }
static void m_run(json_t *r) { json_object_set_new(json_array_get(r, 2), "run", json_string("other")); }
static void m_mode(json_t *r) { json_object_set_new(json_array_get(r, 2), "mode", json_string("drill")); }
static void m_first_type(json_t *r) { json_object_set_new(json_array_get(r, 0), "type", json_string("step.started")); }
static void m_first_mode(json_t *r)
{
    for (size_t i = 0; i < json_array_size(r); i++)
        json_object_set_new(json_array_get(r, i), "mode", json_string("tabletop"));
}
static void m_nonce(json_t *r)
{
    json_object_set_new(json_object_get(json_array_get(r, 0), "data"), "nonce", json_string("abc"));
}
static void m_first_prev(json_t *r)
{
    /* Line 1's prev made to differ from its nonce; the rest re-chained. */
    json_t *d = json_object_get(json_array_get(r, 0), "data");
    const char *nonce = json_string_value(json_object_get(d, "nonce"));
    char other[JR_HASH_HEX];
    snprintf(other, sizeof other, "%s", nonce);
    other[0] = other[0] == 'a' ? 'b' : 'a';
    json_object_set_new(d, "nonce", json_string(other));
}

static void test_field_checks(void **state)
{
    const char *dir = *state;
    char err[256];
    char *path = make_journal(dir, 5);
    char *work = path_in(dir, "fields.jsonl");
    static const struct {
        mutate_fn fn;
        long long line, seq;
        const char *what;
    } cases[] = {
        {m_v2, 3, 3, "line 3 (seq 3): unsupported record: \"v\" must be 1"},
        {m_seq_str, 3, -1, "line 3: \"seq\" missing or not an integer"},
        {m_no_type, 3, 3, "line 3 (seq 3): \"type\" missing or not a string"},
        {m_ts_num, 3, 3, "line 3 (seq 3): \"ts\" missing or not a string"},
        {m_data_arr, 3, 3, "line 3 (seq 3): \"data\" missing or not an object"},
        {m_step_num, 3, 3, "line 3 (seq 3): \"step\" and \"actor\" must be strings or null"},
        {m_run, 3, 3, "line 3 (seq 3): run \"other\" differs from line 1 (\"run-v\")"},
        {m_mode, 3, 3, "line 3 (seq 3): mode \"drill\" differs from line 1 (\"live\")"},
        {m_first_type, 1, 1, "line 1 (seq 1): first record is step.started, expected run.started"},
        {m_first_mode, 1, 1, "line 1 (seq 1): mode \"tabletop\" is neither live nor drill"},
        {m_nonce, 1, 1, "line 1 (seq 1): run.started has no data.nonce of 64 hex digits"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *recs = jr_read(path, NULL, err, sizeof err);
        assert_non_null(recs);
        cases[i].fn(recs);
        write_rechained(work, recs);
        json_decref(recs);
        verify_expect(work, cases[i].line, cases[i].seq, cases[i].what);
    }

    /* Nonce changed but prev kept: the first link is broken. */
    json_t *recs = jr_read(path, NULL, err, sizeof err);
    const char *old = json_string_value(json_object_get(json_array_get(recs, 0), "prev"));
    char keep[JR_HASH_HEX];
    snprintf(keep, sizeof keep, "%s", old);
    m_first_prev(recs);
    write_rechained(work, recs);           /* sets prev = the new nonce ... */
    json_object_set_new(json_array_get(recs, 0), "prev", json_string(keep));
    char *line = json_dumps(json_array_get(recs, 0), JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t len;
    char *text = slurp(work, &len);
    char *rest = strchr(text, '\n');       /* ... then line 1 gets the old prev */
    FILE *f = fopen(work, "wb");
    fprintf(f, "%s%s", line, rest);
    fclose(f);
    verify_expect(work, 1, 1, "line 1 (seq 1): chain broken: prev does not match data.nonce");
    free(text);
    free(line);
    json_decref(recs);

    /* A duplicated key is refused (the parser would keep only one). */
    text = slurp(path, &len);
    size_t st[8];
    assert_int_equal(line_starts(text, len, st, 8), 5);
    char *buf = malloc(len + 16);
    memcpy(buf, text, st[2] + 1);
    memcpy(buf + st[2] + 1, "\"v\":1,", 6);
    memcpy(buf + st[2] + 7, text + st[2] + 1, len - st[2] - 1);
    spit(work, buf, len + 6);
    jr_verify_result res;
    assert_int_equal(jr_verify_file(work, &res), 0);
    assert_int_equal(res.bad_line, 3);
    assert_non_null(strstr(res.what, "line 3: not valid JSON: duplicate object key"));
    free(buf);
    free(text);
    free(work);
    free(path);
}

/* ---- files that are empty, missing, torn, big ------------------------------ */

static void test_empty_missing_torn(void **state)
{
    const char *dir = *state;
    jr_verify_result res;
    char *work = path_in(dir, "empty.jsonl");
    spit(work, "", 0);
    assert_int_equal(jr_verify_file(work, &res), 0);
    assert_false(res.intact);
    assert_string_equal(res.what, "empty journal");
    assert_int_equal(res.records, 0);
    assert_int_equal(jr_verify_file("/nonexistent/journal.jsonl", &res), -1);
    assert_string_equal(res.what, "open /nonexistent/journal.jsonl: No such file or directory");

    char *path = make_journal(dir, 40);
    size_t len;
    char *text = slurp(path, &len);
    spit(work, text, len - 20);
    assert_int_equal(jr_verify_file(work, &res), 0);
    assert_false(res.intact);
    assert_int_equal(res.records, 39);
    assert_int_equal(res.bad_line, 40);
    assert_int_equal(res.bad_seq, -1);
    size_t st[48];
    assert_int_equal(line_starts(text, len, st, 48), 40);
    char want[128];
    snprintf(want, sizeof want,
             "line 40: torn: last line is incomplete (%zu bytes, no newline; it would be seq 40)",
             len - 20 - st[39]);
    assert_string_equal(res.what, want);
    /* Only the newline missing: still torn. */
    spit(work, text, len - 1);
    assert_int_equal(jr_verify_file(work, &res), 0);
    assert_false(res.intact);
    assert_non_null(strstr(res.what, "torn"));
    free(text);
    free(path);
    free(work);
}

/* A big journal is read through a bounded buffer; a line past the limit is
 * damage, not a tear. */
static void test_big_and_overlong(void **state)
{
    const char *dir = *state;
    char err[512];
    jr_journal *j = jr_create(dir, "run-big", "live", NULL, err, sizeof err);
    assert_non_null(j);
    for (int i = 0; i < 20000; i++)
        assert_true(jr_append(j, "operator.note", NULL, "eve", json_pack("{s:i}", "n", i)) > 0);
    assert_int_equal(jr_close(j), 0);
    char *path = path_in(dir, "journal.jsonl");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);

    /* The reader's buffer holds one line plus a chunk, never the file. */
    int fd = open(path, O_RDONLY);
    jr_lines lr;
    jr_lines_init(&lr, fd);
    const char *line;
    size_t n;
    int has_nl;
    while (jr_lines_next(&lr, &line, &n, &has_nl) == 1)
        assert_true(has_nl);
    assert_int_equal(lr.line_no, 20001);
    assert_true(st.st_size > (off_t)(2 << 20));
    assert_true((off_t)lr.cap < st.st_size / 4);
    jr_lines_free(&lr);
    close(fd);

    /* A 20 MiB record among them. */
    j = jr_open_append(dir, err, sizeof err);
    assert_non_null(j);
    size_t big = (size_t)20 << 20;
    char *s = malloc(big + 1);
    assert_non_null(s);
    memset(s, 'x', big);
    s[big] = '\0';
    assert_int_equal(jr_append(j, "artifact.stored", NULL, NULL, json_pack("{s:s}", "blob", s)),
                     20002);
    free(s);
    assert_int_equal(jr_append(j, "operator.note", NULL, NULL, NULL), 20003);
    assert_int_equal(jr_close(j), 0);
    jr_verify_result res;
    assert_int_equal(jr_verify_file(path, &res), 0);
    if (!res.intact)
        fail_msg("%s", res.what);
    assert_int_equal(res.records, 20003);

    /* A 65 MiB run of NULs with no newline (a sparse tail): too long. */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size + (off_t)(65 << 20)), 0);
    assert_int_equal(jr_verify_file(path, &res), 0);
    assert_false(res.intact);
    assert_int_equal(res.bad_line, 20004);
    assert_non_null(strstr(res.what, "line 20004: longer than the 67108864-byte limit"));
    assert_null(jr_open_append(dir, err, sizeof err));
    assert_non_null(strstr(err, "longer than"));
    assert_null(jr_read(path, NULL, err, sizeof err));
    assert_non_null(strstr(err, "line 20004: longer than"));
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_structural_damage, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_byte_flips, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_field_checks, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_empty_missing_torn, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_big_and_overlong, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
