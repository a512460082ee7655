/*
 * test_secrets.c — unit tests for secrets (secrets.c): resolving NAME from
 * the environment or from the file named by NAME_FILE (trailing newline
 * stripped), the messages for missing, unreadable, too short and too big
 * secrets, name validation, sec_redact (adjacent, overlapping, repeated,
 * longest match, binary text) and sec_redact_json on nested arrays and
 * objects, keys included, sec_holder (which secret a piece of text comes
 * from), and sec_clear.
 * Every test starts and ends with an empty registry (sec_clear) and its own
 * variable names, so no test sees another's values.
 * Depends on: cmocka, jansson, secrets.h.
 */
#include "secrets.h"

#include <errno.h>
#include <fcntl.h>
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

typedef struct {
    char dir[64];
    char path[8][128];
    int npaths;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/irp-test-secrets-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    sec_clear();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sec_clear();
    for (int i = 0; i < f->npaths; i++)
        unlink(f->path[i]);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Writes n bytes to a new file in the fixture's directory; returns its path. */
static const char *secret_file(fixture *f, const char *name, const char *data, size_t n)
{
    assert_true(f->npaths < 8);
    char *path = f->path[f->npaths++];
    char joined[sizeof f->path[0]];
    snprintf(joined, sizeof joined, "%s/%s", f->dir, name);
    memcpy(path, joined, sizeof joined);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
    return path;
}

/* Resolves name, failing the test when it does not resolve. */
static const char *must_get(const char *name)
{
    char err[256] = "";
    const char *v = sec_get(name, err, sizeof err);
    if (!v)
        fail_msg("sec_get(%s) failed: %s", name, err);
    return v;
}

/* Redacts text and compares with want. */
static void expect_redacted(const char *text, const char *want)
{
    size_t n = 0;
    char *got = sec_redact(text, strlen(text), &n);
    int same = strcmp(got, want) == 0 && n == strlen(want);
    char copy[512];
    snprintf(copy, sizeof copy, "%s", got);
    free(got);
    if (!same)
        fail_msg("sec_redact(\"%s\") gave \"%s\", expected \"%s\"", text, copy, want);
}

/* ---- resolving ---------------------------------------------------------- */

static void test_from_env(void **state)
{
    (void)state;
    unsetenv("IRPT_ENV_TOKEN_FILE");
    setenv("IRPT_ENV_TOKEN", "s3cr3t-env-value", 1);
    const char *v = must_get("IRPT_ENV_TOKEN");
    assert_string_equal(v, "s3cr3t-env-value");
    /* remembered: the same pointer, even after the variable changes */
    setenv("IRPT_ENV_TOKEN", "another-value", 1);
    assert_ptr_equal(must_get("IRPT_ENV_TOKEN"), v);
    unsetenv("IRPT_ENV_TOKEN");
}

static void test_from_file(void **state)
{
    fixture *f = *state;
    unsetenv("IRPT_FILE_TOKEN");
    const char *path = secret_file(f, "token", "from-a-file\n", 12);
    setenv("IRPT_FILE_TOKEN_FILE", path, 1);
    assert_string_equal(must_get("IRPT_FILE_TOKEN"), "from-a-file");

    /* CRLF and several trailing newlines go too; inner ones stay */
    path = secret_file(f, "crlf", "line1\nline2\r\n\n", 14);
    setenv("IRPT_CRLF_TOKEN_FILE", path, 1);
    assert_string_equal(must_get("IRPT_CRLF_TOKEN"), "line1\nline2");

    /* no newline at all */
    path = secret_file(f, "bare", "bare-value", 10);
    setenv("IRPT_BARE_TOKEN_FILE", path, 1);
    assert_string_equal(must_get("IRPT_BARE_TOKEN"), "bare-value");

    /* trailing spaces are part of the value */
    path = secret_file(f, "spaces", "spaced  \n", 9);
    setenv("IRPT_SPACE_TOKEN_FILE", path, 1);
    assert_string_equal(must_get("IRPT_SPACE_TOKEN"), "spaced  ");

    unsetenv("IRPT_FILE_TOKEN_FILE");
    unsetenv("IRPT_CRLF_TOKEN_FILE");
    unsetenv("IRPT_BARE_TOKEN_FILE");
    unsetenv("IRPT_SPACE_TOKEN_FILE");
}

static void test_env_wins_over_file(void **state)
{
    fixture *f = *state;
    const char *path = secret_file(f, "both", "value-from-file\n", 16);
    setenv("IRPT_BOTH", "value-from-env", 1);
    setenv("IRPT_BOTH_FILE", path, 1);
    assert_string_equal(must_get("IRPT_BOTH"), "value-from-env");
    unsetenv("IRPT_BOTH");
    unsetenv("IRPT_BOTH_FILE");
}

static void test_missing(void **state)
{
    (void)state;
    unsetenv("IRPT_MISSING");
    unsetenv("IRPT_MISSING_FILE");
    char err[256] = "";
    assert_null(sec_get("IRPT_MISSING", err, sizeof err));
    assert_non_null(strstr(err, "IRPT_MISSING "));      /* the name itself ... */
    assert_non_null(strstr(err, "IRPT_MISSING_FILE")); /* ... and the file variant */
    assert_non_null(strstr(err, "not set"));
    /* nothing was remembered: setting it later works */
    setenv("IRPT_MISSING", "now-it-is-set", 1);
    assert_string_equal(must_get("IRPT_MISSING"), "now-it-is-set");
    unsetenv("IRPT_MISSING");
}

static void test_file_unreadable(void **state)
{
    fixture *f = *state;
    unsetenv("IRPT_NOFILE");
    char path[160];
    snprintf(path, sizeof path, "%s/does-not-exist", f->dir);
    setenv("IRPT_NOFILE_FILE", path, 1);
    char err[512] = "";
    assert_null(sec_get("IRPT_NOFILE", err, sizeof err));
    assert_non_null(strstr(err, "IRPT_NOFILE_FILE"));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, strerror(ENOENT)));

    /* a directory opens but cannot be read */
    setenv("IRPT_NOFILE_FILE", f->dir, 1);
    assert_null(sec_get("IRPT_NOFILE", err, sizeof err));
    assert_non_null(strstr(err, "IRPT_NOFILE_FILE"));
    unsetenv("IRPT_NOFILE_FILE");
}

static void test_too_short(void **state)
{
    fixture *f = *state;
    char err[256] = "";
    setenv("IRPT_SHORT", "abc", 1);
    assert_null(sec_get("IRPT_SHORT", err, sizeof err));
    assert_non_null(strstr(err, "IRPT_SHORT"));
    assert_non_null(strstr(err, "shorter than 4"));

    setenv("IRPT_SHORT", "", 1); /* set but empty */
    err[0] = '\0';
    assert_null(sec_get("IRPT_SHORT", err, sizeof err));
    assert_non_null(strstr(err, "shorter"));
    unsetenv("IRPT_SHORT");

    /* from a file, the newline does not count */
    const char *path = secret_file(f, "short", "abc\n", 4);
    setenv("IRPT_SHORTF_FILE", path, 1);
    err[0] = '\0';
    assert_null(sec_get("IRPT_SHORTF", err, sizeof err));
    assert_non_null(strstr(err, "shorter"));
    unsetenv("IRPT_SHORTF_FILE");

    /* four characters is enough */
    setenv("IRPT_FOUR", "abcd", 1);
    assert_string_equal(must_get("IRPT_FOUR"), "abcd");
    unsetenv("IRPT_FOUR");

    /* a short value is not remembered, so it is never used for redaction */
    expect_redacted("abc abcd", "abc [secret IRPT_FOUR]");
}

static void test_file_too_big(void **state)
{
    fixture *f = *state;
    size_t n = 64 * 1024 + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'k', n);
    const char *path = secret_file(f, "big", big, n);
    setenv("IRPT_BIG_FILE", path, 1);
    char err[256] = "";
    assert_null(sec_get("IRPT_BIG", err, sizeof err));
    assert_non_null(strstr(err, "IRPT_BIG_FILE"));
    assert_non_null(strstr(err, "64 KiB"));

    /* exactly 64 KiB is accepted */
    path = secret_file(f, "big2", big, n - 1);
    setenv("IRPT_BIG2_FILE", path, 1);
    const char *v = must_get("IRPT_BIG2");
    assert_int_equal(strlen(v), n - 1);
    free(big);
    unsetenv("IRPT_BIG_FILE");
    unsetenv("IRPT_BIG2_FILE");
}

static void test_names(void **state)
{
    (void)state;
    assert_true(sec_valid_name("SLACK_URL"));
    assert_true(sec_valid_name("_X"));
    assert_true(sec_valid_name("a1"));
    assert_true(sec_valid_name("A"));
    char name[130];
    memset(name, 'N', 128);
    name[128] = '\0';
    assert_true(sec_valid_name(name)); /* 128 characters */
    name[128] = 'N';
    name[129] = '\0';
    assert_false(sec_valid_name(name)); /* 129 */

    assert_false(sec_valid_name(NULL));
    assert_false(sec_valid_name(""));
    assert_false(sec_valid_name("1ABC"));
    assert_false(sec_valid_name("A-B"));
    assert_false(sec_valid_name("A B"));
    assert_false(sec_valid_name("A.B"));
    assert_false(sec_valid_name("A=B"));
    assert_false(sec_valid_name("PATH/X"));
    assert_false(sec_valid_name("\xC3\xA9T\xC3\xA9"));
    assert_false(sec_valid_name("X\n"));

    /* sec_get refuses them with a message naming the problem */
    char err[256] = "";
    assert_null(sec_get("A-B", err, sizeof err));
    assert_non_null(strstr(err, "'A-B' is not a valid secret name"));
    assert_null(sec_get(NULL, err, sizeof err));
    assert_non_null(strstr(err, "not a valid secret name"));
    assert_null(sec_get(name, err, sizeof err)); /* 129 characters */
}

/* ---- redaction ---------------------------------------------------------- */

static void test_redact_basic(void **state)
{
    (void)state;
    /* nothing known: an unchanged copy */
    expect_redacted("nothing to hide", "nothing to hide");
    size_t n = 99;
    char *r = sec_redact("", 0, &n);
    assert_non_null(r);
    assert_int_equal(n, 0);
    assert_string_equal(r, "");
    free(r);

    setenv("IRPT_TOK", "hunter22", 1);
    must_get("IRPT_TOK");
    expect_redacted("password=hunter22", "password=[secret IRPT_TOK]");
    expect_redacted("hunter22", "[secret IRPT_TOK]");
    expect_redacted("hunter22hunter22 and hunter22.", "[secret IRPT_TOK][secret IRPT_TOK] and [secret IRPT_TOK].");
    expect_redacted("hunter2 hunter2", "hunter2 hunter2"); /* a prefix is not the value */
    expect_redacted("HUNTER22", "HUNTER22");             /* exact bytes only */
    unsetenv("IRPT_TOK");

    /* out_len may be NULL; binary text with NUL bytes is handled by length */
    r = sec_redact("a\0hunter22\0b", 12, &n);
    assert_int_equal(n, 2 + strlen("[secret IRPT_TOK]") + 2);
    assert_memory_equal(r, "a\0[secret IRPT_TOK]\0b", n + 1);
    free(r);
    r = sec_redact("xhunter22", 9, NULL);
    assert_string_equal(r, "x[secret IRPT_TOK]");
    free(r);
    /* a value cut by len is not matched */
    r = sec_redact("hunter22", 7, NULL);
    assert_string_equal(r, "hunter2");
    free(r);
}

static void test_redact_adjacent(void **state)
{
    (void)state;
    setenv("IRPT_A", "AAAA1111", 1);
    setenv("IRPT_B", "BBBB2222", 1);
    must_get("IRPT_A");
    must_get("IRPT_B");
    expect_redacted("AAAA1111BBBB2222", "[secret IRPT_A][secret IRPT_B]");
    expect_redacted("BBBB2222AAAA1111", "[secret IRPT_B][secret IRPT_A]");
    expect_redacted("<AAAA1111|BBBB2222>", "<[secret IRPT_A]|[secret IRPT_B]>");
    unsetenv("IRPT_A");
    unsetenv("IRPT_B");
}

static void test_redact_longest_match(void **state)
{
    (void)state;
    /* one value is a prefix of the other: whichever order they were
     * resolved in, the longer one wins where both match */
    setenv("IRPT_SHORTER", "abcdef", 1);
    setenv("IRPT_LONGER", "abcdefghij", 1);
    must_get("IRPT_SHORTER");
    must_get("IRPT_LONGER");
    expect_redacted("x abcdefghij y", "x [secret IRPT_LONGER] y");
    expect_redacted("x abcdefghi y", "x [secret IRPT_SHORTER]ghi y");
    sec_clear();
    must_get("IRPT_LONGER");
    must_get("IRPT_SHORTER");
    expect_redacted("x abcdefghij y", "x [secret IRPT_LONGER] y");
    unsetenv("IRPT_SHORTER");
    unsetenv("IRPT_LONGER");

    /* one value is a suffix of the other */
    setenv("IRPT_TAIL", "ghijkl", 1);
    setenv("IRPT_WHOLE", "abcdefghijkl", 1);
    must_get("IRPT_TAIL");
    must_get("IRPT_WHOLE");
    expect_redacted("abcdefghijkl", "[secret IRPT_WHOLE]");
    expect_redacted("defghijkl", "def[secret IRPT_TAIL]");
    unsetenv("IRPT_TAIL");
    unsetenv("IRPT_WHOLE");
}

static void test_redact_overlapping(void **state)
{
    (void)state;
    setenv("IRPT_LEFT", "abcd1234", 1);
    setenv("IRPT_RIGHT", "1234wxyz", 1);
    must_get("IRPT_LEFT");
    must_get("IRPT_RIGHT");
    /* "abcd1234wxyz": the values share "1234". The leftmost match is
     * replaced; what remains of the other is not a whole value. */
    size_t n;
    char *r = sec_redact("abcd1234wxyz", 12, &n);
    assert_string_equal(r, "[secret IRPT_LEFT]wxyz");
    assert_null(strstr(r, "abcd1234"));
    assert_null(strstr(r, "1234wxyz"));
    free(r);
    /* each on its own is found */
    expect_redacted("..1234wxyz..", "..[secret IRPT_RIGHT]..");
    /* a value that overlaps itself: "aaaa" in "aaaaaa" */
    setenv("IRPT_RUN", "aaaa", 1);
    must_get("IRPT_RUN");
    expect_redacted("aaaaaa", "[secret IRPT_RUN]aa");
    expect_redacted("aaaaaaaa", "[secret IRPT_RUN][secret IRPT_RUN]");
    unsetenv("IRPT_LEFT");
    unsetenv("IRPT_RIGHT");
    unsetenv("IRPT_RUN");
}

static void test_redact_json(void **state)
{
    (void)state;
    /* no secrets known: nothing changes (and NULL is fine) */
    json_t *plain = json_pack("{s:s}", "k", "pa55word-x");
    sec_redact_json(plain);
    assert_string_equal(json_string_value(json_object_get(plain, "k")), "pa55word-x");
    json_decref(plain);
    sec_redact_json(NULL);

    setenv("IRPT_JSON_PW", "pa55word-x", 1);
    setenv("IRPT_JSON_KEY", "key-material", 1);
    must_get("IRPT_JSON_PW");
    must_get("IRPT_JSON_KEY");
    sec_redact_json(NULL);

    json_error_t e;
    json_t *v = json_loads(
        "{\"cmd\":\"login --pw pa55word-x\","
        " \"n\":42, \"ok\":true, \"nothing\":null, \"pi\":3.5,"
        " \"list\":[\"pa55word-x\", 1, [\"deep key-material\", {\"x\":\"pa55word-xkey-material\"}]],"
        " \"pa55word-x\":\"value under a secret key\","
        " \"header key-material\":{\"inner pa55word-x\":[\"pa55word-x\"]},"
        " \"clean\":\"left alone\"}",
        0, &e);
    assert_non_null(v);
    sec_redact_json(v);

    json_t *want = json_loads(
        "{\"cmd\":\"login --pw [secret IRPT_JSON_PW]\","
        " \"n\":42, \"ok\":true, \"nothing\":null, \"pi\":3.5,"
        " \"list\":[\"[secret IRPT_JSON_PW]\", 1, [\"deep [secret IRPT_JSON_KEY]\","
        "           {\"x\":\"[secret IRPT_JSON_PW][secret IRPT_JSON_KEY]\"}]],"
        " \"[secret IRPT_JSON_PW]\":\"value under a secret key\","
        " \"header [secret IRPT_JSON_KEY]\":{\"inner [secret IRPT_JSON_PW]\":[\"[secret IRPT_JSON_PW]\"]},"
        " \"clean\":\"left alone\"}",
        0, &e);
    assert_non_null(want);
    int same = json_equal(v, want);
    char *got = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(want);
    json_decref(v);
    /* and no value survives anywhere in the text */
    int leaked = got && (strstr(got, "pa55word-x") || strstr(got, "key-material"));
    if (!same || leaked) {
        char copy[1024];
        snprintf(copy, sizeof copy, "%s", got ? got : "?");
        free(got);
        fail_msg("sec_redact_json gave %s", copy);
    }
    free(got);

    /* a top-level string, and a string with NUL inside */
    json_t *s = json_stringn("x\0pa55word-x", 12);
    sec_redact_json(s);
    assert_int_equal(json_string_length(s), 2 + strlen("[secret IRPT_JSON_PW]"));
    assert_memory_equal(json_string_value(s), "x\0[secret IRPT_JSON_PW]", json_string_length(s));
    json_decref(s);

    /* many secret keys in one object: every key is renamed, none lost */
    json_t *o = json_object();
    char key[64];
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "k%02d-pa55word-x", i);
        json_object_set_new(o, key, json_integer(i));
    }
    sec_redact_json(o);
    assert_int_equal(json_object_size(o), 50);
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "k%02d-[secret IRPT_JSON_PW]", i);
        json_t *x = json_object_get(o, key);
        if (!json_is_integer(x) || json_integer_value(x) != i)
            fail_msg("key %s missing or wrong after redaction", key);
    }
    json_decref(o);
    unsetenv("IRPT_JSON_PW");
    unsetenv("IRPT_JSON_KEY");
}

static void test_holder(void **state)
{
    (void)state;
    setenv("IRPT_HOLD_URL", "https://tok-abcdef.example.net/hooks/xyz", 1);
    must_get("IRPT_HOLD_URL");
    const char *host = "tok-abcdef.example.net";
    assert_string_equal(sec_holder(host, strlen(host)), "IRPT_HOLD_URL");
    assert_string_equal(sec_holder("/hooks/xyz", 10), "IRPT_HOLD_URL");
    assert_null(sec_holder("tok", 3));            /* too short to say */
    assert_null(sec_holder("other.example", 13)); /* not part of a secret */
    assert_null(sec_holder(NULL, 0));
    unsetenv("IRPT_HOLD_URL");
}

static void test_clear(void **state)
{
    (void)state;
    setenv("IRPT_CLEAR", "forget-me-now", 1);
    const char *v = must_get("IRPT_CLEAR");
    assert_string_equal(v, "forget-me-now");
    expect_redacted("forget-me-now", "[secret IRPT_CLEAR]");
    sec_clear();
    expect_redacted("forget-me-now", "forget-me-now"); /* forgotten */
    sec_clear();                                         /* twice is fine */

    /* after clearing, a name is resolved afresh */
    setenv("IRPT_CLEAR", "a-new-value", 1);
    assert_string_equal(must_get("IRPT_CLEAR"), "a-new-value");
    expect_redacted("forget-me-now a-new-value", "forget-me-now [secret IRPT_CLEAR]");
    unsetenv("IRPT_CLEAR");
}

/* The environment entries a child process must not inherit. */
static void test_env_entry_is_secret(void **state)
{
    (void)state;
    sec_declare("IRPT_HOOK");
    sec_declare("not a name"); /* ignored */
    setenv("IRPT_USED", "used-secret-value", 1);
    must_get("IRPT_USED"); /* resolving declares it too */
    assert_true(sec_env_entry_is_secret("IRPT_HOOK=x"));
    assert_true(sec_env_entry_is_secret("IRPT_HOOK_FILE=/run/s"));
    assert_true(sec_env_entry_is_secret("IRPT_USED=used-secret-value"));
    assert_true(sec_env_entry_is_secret("IRPT_HOOK"));
    assert_false(sec_env_entry_is_secret("IRPT_HOOKS=x"));
    assert_false(sec_env_entry_is_secret("IRPT_HOOK_FILES=x"));
    assert_false(sec_env_entry_is_secret("IRPT_HOO=x"));
    assert_false(sec_env_entry_is_secret("PATH=/usr/bin"));
    unsetenv("IRPT_USED");
    sec_clear();
    assert_false(sec_env_entry_is_secret("IRPT_HOOK=x")); /* forgotten with the values */
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_from_env),
        T(test_from_file),
        T(test_env_wins_over_file),
        T(test_missing),
        T(test_file_unreadable),
        T(test_too_short),
        T(test_file_too_big),
        T(test_names),
        T(test_redact_basic),
        T(test_redact_adjacent),
        T(test_redact_longest_match),
        T(test_redact_overlapping),
        T(test_redact_json),
        T(test_holder),
        T(test_clear),
        T(test_env_entry_is_secret),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
