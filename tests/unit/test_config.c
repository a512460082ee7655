/*
 * test_config.c — unit tests for the notifier configuration (config.c,
 * config_fields.c): every kind with its fields and defaults, both file
 * shapes (globals and a returned table), and the errors a person makes:
 * unknown type or field (with "did you mean" and the right line), a field
 * of another type, a missing required field, a key written in clear, bad
 * durations and URLs, unknown settings, syntax and runtime errors, an
 * endless loop (deadline), a memory hog (cap), and a sandbox without io,
 * os, load or require. Also cf_load's search order and the embedded
 * default, and the attach section (config_attach.c): paths taken from the
 * configuration's directory, by playbook id, and its errors.
 * Depends on: cmocka, config.h, secrets.h.
 */
#include "config.h"
#include "secrets.h"
#include "util.h"

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

static cf_config *load(const char *text, char *err, size_t n)
{
    return cf_load_text(text, strlen(text), "irp.conf.lua", err, n);
}

static void expect_error(const char *text, const char *want)
{
    char err[512] = "";
    cf_config *c = load(text, err, sizeof err);
    if (c) {
        cf_free(c);
        fail_msg("expected an error containing \"%s\" for:\n%s", want, text);
    }
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
}

static void test_every_kind(void **state)
{
    (void)state;
    char err[512];
    cf_config *c = load("notifiers = {\n"
                        "  [\"slack-ir\"] = { type = \"slack\", url = secret \"SLACK_URL\" },\n"
                        "  teams = { type = \"teams\", url = \"https://example.org/workflows/x\", timeout = \"3s\" },\n"
                        "  pd = { type = \"pagerduty\", routing_key = secret \"PD_KEY\", source = \"irp-host\" },\n"
                        "  og = { type = \"opsgenie\", api_key = secret \"OG_KEY\", max_attempts = 3 },\n"
                        "  soc = { type = \"webhook\", url = \"https://soc.example/hooks/irp\",\n"
                        "          signing_secret = secret \"SOC_SECRET\", connect_timeout = 1.5,\n"
                        "          give_up_after = \"1h\", backoff = \"250ms\" },\n"
                        "  out = { type = \"stdout\" },\n"
                        "  log = { type = \"file\", path = \"n.jsonl\" },\n"
                        "}\n",
                        err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->count, 7);
    assert_false(c->embedded);
    const cf_notifier *n = cf_find(c, "slack-ir");
    assert_non_null(n);
    assert_int_equal(n->kind, NT_SLACK);
    assert_string_equal(n->url.secret, "SLACK_URL");
    assert_null(n->url.literal);
    assert_int_equal(n->line, 2);
    assert_int_equal(n->timeout_ms, CF_DEFAULT_TIMEOUT_MS);
    assert_int_equal(n->connect_timeout_ms, CF_DEFAULT_CONNECT_TIMEOUT_MS);
    assert_int_equal(n->backoff_ms, CF_DEFAULT_BACKOFF_MS);
    assert_int_equal(n->give_up_after_ms, CF_DEFAULT_GIVE_UP_MS);
    n = cf_find(c, "teams");
    assert_int_equal(n->kind, NT_TEAMS);
    assert_string_equal(n->url.literal, "https://example.org/workflows/x");
    assert_int_equal(n->timeout_ms, 3000);
    n = cf_find(c, "pd");
    assert_int_equal(n->kind, NT_PAGERDUTY);
    assert_string_equal(n->routing_key.secret, "PD_KEY");
    assert_string_equal(n->source, "irp-host");
    n = cf_find(c, "og");
    assert_int_equal(n->kind, NT_OPSGENIE);
    assert_string_equal(n->api_url, CF_DEFAULT_OPSGENIE_URL);
    assert_int_equal(n->max_attempts, 3);
    n = cf_find(c, "soc");
    assert_int_equal(n->kind, NT_WEBHOOK);
    assert_string_equal(n->signing_secret.secret, "SOC_SECRET");
    assert_int_equal(n->connect_timeout_ms, 1500);
    assert_int_equal(n->give_up_after_ms, 3600 * 1000);
    assert_int_equal(n->backoff_ms, 250);
    assert_int_equal(n->line, 6);
    assert_int_equal(cf_find(c, "out")->kind, NT_STDOUT);
    assert_string_equal(cf_find(c, "log")->path, "n.jsonl");
    assert_null(cf_find(c, "missing"));
    assert_string_equal(cf_suggest(c, "slack-it"), "slack-ir");
    /* sorted by name: listing is stable */
    assert_string_equal(c->items[0].name, "log");
    cf_free(c);
}

static void test_returned_table_and_locals(void **state)
{
    (void)state;
    char err[512];
    cf_config *c = load("local base = \"https://hooks.example/\"\n"
                        "local function hook(path) return { type = \"webhook\", url = base .. path } end\n"
                        "return { notifiers = { a = hook(\"a\"), b = hook(\"b\") } }\n",
                        err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->count, 2);
    assert_string_equal(cf_find(c, "b")->url.literal, "https://hooks.example/b");
    cf_free(c);
    c = load("-- nothing configured\n", err, sizeof err);
    assert_non_null(c);
    assert_int_equal(c->count, 0);
    cf_free(c);
}

static void test_unknown_type_suggests_and_names_line(void **state)
{
    (void)state;
    expect_error("notifiers = {\n"
                 "  ok = { type = \"slack\", url = secret \"S\" },\n"
                 "  pd = {\n"
                 "    type = \"pagerdutty\",\n"
                 "    routing_key = secret \"K\" },\n"
                 "}\n",
                 "irp.conf.lua:4: notifier 'pd' has unknown type 'pagerdutty' (did you mean 'pagerduty'?)");
    expect_error("notifiers = { x = { type = \"carrier-pigeon\" } }\n",
                 "irp.conf.lua:1: notifier 'x' has unknown type 'carrier-pigeon' (it must be one of webhook");
    expect_error("notifiers = { x = { url = \"https://a.example\" } }\n", "notifier 'x' has no type");
}

static void test_unknown_and_misplaced_fields(void **state)
{
    (void)state;
    expect_error("notifiers = {\n  s = { type = \"slack\",\n    url = secret \"S\",\n    tiemout = \"5s\" } }\n",
                 "irp.conf.lua:4: notifier 's' has unknown field 'tiemout' (did you mean 'timeout'?)");
    expect_error("notifiers = { s = { type = \"slack\", url = secret \"S\", colour = \"red\" } }\n",
                 "notifier 's' has unknown field 'colour' (type 'slack' takes url, ca_file");
    expect_error("notifiers = {\n  s = { type = \"slack\", url = secret \"S\",\n    routing_key = secret \"K\" } }\n",
                 "irp.conf.lua:3: notifier 's': field 'routing_key' is not used by type 'slack'");
    expect_error("notifiers = { o = { type = \"stdout\", timeout = \"1s\" } }\n",
                 "field 'timeout' is not used by type 'stdout' (it takes no other field)");
}

static void test_required_fields_and_values(void **state)
{
    (void)state;
    expect_error("notifiers = { s = { type = \"slack\" } }\n", "notifier 's' (type 'slack') needs url");
    expect_error("notifiers = { p = { type = \"pagerduty\" } }\n", "needs routing_key: add routing_key = secret");
    expect_error("notifiers = { o = { type = \"opsgenie\" } }\n", "needs api_key");
    expect_error("notifiers = { f = { type = \"file\" } }\n", "needs path");
    expect_error("notifiers = {\n p = { type = \"pagerduty\",\n routing_key = \"R0123456789\" } }\n",
                 "irp.conf.lua:3: notifier 'p': routing_key must be secret \"NAME\" (keys are never written");
    expect_error("notifiers = { w = { type = \"webhook\", url = \"ftp://x.example/\" } }\n",
                 "url 'ftp://x.example/' is not an http:// or https:// URL");
    expect_error("notifiers = { w = { type = \"webhook\", url = 42 } }\n", "url must be a string or secret");
    expect_error("notifiers = { w = { type = \"webhook\", url = \"https://x.example\", timeout = \"soon\" } }\n",
                 "timeout must be a duration such as \"10s\"");
    expect_error("notifiers = { w = { type = \"webhook\", url = \"https://x.example\", timeout = -1 } }\n",
                 "timeout must be a duration");
    expect_error("notifiers = { w = { type = \"webhook\", url = \"https://x.example\", max_attempts = 0 } }\n",
                 "max_attempts must be a whole number");
    expect_error("notifiers = { w = { type = \"webhook\", url = \"https://x.example\", ca_file = \"/nonexistent/ca.pem\" } }\n",
                 "ca_file '/nonexistent/ca.pem' cannot be read");
    expect_error("notifiers = { [\"bad name\"] = { type = \"stdout\" } }\n", "notifier name 'bad name' is not valid");
    expect_error("notifiers = { \"x\" }\n", "notifier name number is not valid");
    expect_error("notifiers = { s = \"slack\" }\n", "notifier 's' must be a table");
    expect_error("notifiers = 5\n", "notifiers must be a table");
}

static void test_settings_and_lua_errors(void **state)
{
    (void)state;
    expect_error("notifier = { }\n", "irp.conf.lua:1: unknown setting 'notifier' (did you mean 'notifiers'?)");
    expect_error("x = 1\nnotifiers = {}\n", "unknown setting 'x' (write `local x = ...`");
    expect_error("type = \"slack\"\n", "unknown setting 'type'");
    expect_error("return { notifers = {} }\n", "unknown setting 'notifers' (did you mean 'notifiers'?)");
    expect_error("return 42\n", "the file returns a number");
    expect_error("notifiers = {\n  s = { type = \"slack\" url = 1 },\n}\n", "irp.conf.lua:2:");
    expect_error("notifiers = { s = { type = \"slack\", url = secrt \"X\" } }\n",
                 "irp.conf.lua:1: attempt to call a nil value (global 'secrt') (did you mean 'secret'?)");
    expect_error("local x = secret \"A\" .. \"/path\"\n", "a secret cannot be joined with text");
    expect_error("local x = secret \"1BAD\"\n", "a secret name is letters, digits and _");
    expect_error("error('boom')\n", "irp.conf.lua:1: boom");
}

static void test_sandbox(void **state)
{
    (void)state;
    expect_error("io.write('x')\n", "global 'io'");
    expect_error("os.execute('true')\n", "global 'os'");
    expect_error("require('os')\n", "global 'require'");
    expect_error("load('return 1')()\n", "global 'load'");
    expect_error("dofile('/etc/passwd')\n", "global 'dofile'");
    expect_error("print('hello')\n", "global 'print'");
    expect_error("local f = string.dump(function() end)\n", "field 'dump'");
    expect_error("while true do end\n", "took longer than");
    expect_error("local x = 1\nwhile true do x = x + 1 end\n", "irp.conf.lua:2: the configuration took longer than");
    expect_error("local ok = pcall(function() while true do end end) while true do end\n", "took longer than");
    expect_error("local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(100) .. i end\n", "memory");
}

static void test_embedded_default_and_search(void **state)
{
    (void)state;
    char err[512];
    cf_config *c = cf_default();
    assert_true(c->embedded);
    const cf_notifier *n = cf_find(c, "anything-at-all");
    assert_non_null(n);
    assert_int_equal(n->kind, NT_STDOUT);
    cf_free(c);

    char dir[] = "/tmp/irp-test-config-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    unsetenv("IRP_CONFIG");
    c = cf_load(NULL, err, sizeof err);
    assert_non_null(c);
    assert_true(c->embedded);
    cf_free(c);
    FILE *f = fopen("irp.conf.lua", "w");
    fputs("notifiers = { here = { type = \"stdout\" } }\n", f);
    fclose(f);
    c = cf_load(NULL, err, sizeof err);
    assert_non_null(c);
    assert_false(c->embedded);
    assert_non_null(cf_find(c, "here"));
    assert_null(cf_find(c, "elsewhere"));
    cf_free(c);
    f = fopen("other.lua", "w");
    fputs("notifiers = { other = { type = \"stdout\" } }\n", f);
    fclose(f);
    setenv("IRP_CONFIG", "other.lua", 1);
    c = cf_load(NULL, err, sizeof err);
    assert_non_null(c);
    assert_non_null(cf_find(c, "other"));
    cf_free(c);
    setenv("IRP_CONFIG", "missing.lua", 1);
    assert_null(cf_load(NULL, err, sizeof err));
    assert_non_null(strstr(err, "IRP_CONFIG=missing.lua: cannot read"));
    unsetenv("IRP_CONFIG");
    c = cf_load("other.lua", err, sizeof err); /* --config wins */
    assert_non_null(cf_find(c, "other"));
    cf_free(c);

    /* The file each choice reads, absolute (recorded in run.started). */
    char *real = realpath(dir, NULL), *want, *got;
    assert_non_null(real);
    want = ut_xasprintf("%s/irp.conf.lua", real);
    got = cf_chosen_path(NULL);
    assert_string_equal(got, want);
    free(got);
    free(want);
    setenv("IRP_CONFIG", "other.lua", 1);
    want = ut_xasprintf("%s/other.lua", real);
    got = cf_chosen_path(NULL);
    assert_string_equal(got, want);
    free(got);
    got = cf_chosen_path("./other.lua");
    assert_string_equal(got, want);
    free(got);
    free(want);
    /* the embedded default, whatever $IRP_CONFIG and ./irp.conf.lua say */
    assert_null(cf_chosen_path(cf_embedded_default));
    c = cf_load(cf_embedded_default, err, sizeof err);
    assert_non_null(c);
    assert_true(c->embedded);
    cf_free(c);
    unsetenv("IRP_CONFIG");
    unlink("irp.conf.lua");
    assert_null(cf_chosen_path(NULL));
    free(real);
    unlink("other.lua");
    assert_int_equal(chdir(cwd), 0);
    rmdir(dir);
}

static void test_resolve_secrets(void **state)
{
    (void)state;
    char err[256];
    cf_value lit = {(char *)"https://x.example", NULL};
    assert_string_equal(cf_resolve(&lit, err, sizeof err), "https://x.example");
    setenv("IRP_TEST_CONFIG_SECRET", "s3cr3t-value", 1);
    cf_value sec = {NULL, (char *)"IRP_TEST_CONFIG_SECRET"};
    assert_string_equal(cf_resolve(&sec, err, sizeof err), "s3cr3t-value");
    cf_value missing = {NULL, (char *)"IRP_TEST_CONFIG_NOT_SET"};
    assert_null(cf_resolve(&missing, err, sizeof err));
    assert_non_null(strstr(err, "IRP_TEST_CONFIG_NOT_SET is not set"));
    sec_clear();
    unsetenv("IRP_TEST_CONFIG_SECRET");
}

static void test_attach_section(void **state)
{
    (void)state;
    char err[512];
    char dir[] = "/tmp/irp-test-config-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *sub = NULL, *a = NULL, *b = NULL, *conf = NULL;
    assert_true(asprintf(&sub, "%s/local", dir) > 0 && asprintf(&a, "%s/local/a.lua", dir) > 0 &&
                asprintf(&b, "%s/local/b.lua", dir) > 0 && asprintf(&conf, "%s/irp.conf.lua", dir) > 0);
    assert_int_equal(mkdir(sub, 0700), 0);
    fclose(fopen(a, "w"));
    fclose(fopen(b, "w"));

    /* relative to the configuration's directory, in order; no notifiers:
     * the embedded stdout notifier stays */
    const char *text = "attach = {\n  ransomware = { \"local/a.lua\", \"local/b.lua\" },\n"
                       "  [\"db-failover\"] = \"local/b.lua\",\n}\n";
    cf_config *c = cf_load_text(text, strlen(text), conf, err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->nattach, 3);
    assert_true(c->embedded);
    assert_non_null(cf_find(c, "anyone"));
    int seen_a = 0, seen_b = 0, seen_db = 0;
    for (size_t i = 0; i < c->nattach; i++) {
        if (!strcmp(c->attach[i].playbook, "ransomware") && !strcmp(c->attach[i].path, a)) {
            seen_a = 1;
            assert_int_equal(c->attach[i].line, 2);
            assert_false(seen_b); /* the list keeps its order */
        }
        seen_b |= !strcmp(c->attach[i].playbook, "ransomware") && !strcmp(c->attach[i].path, b);
        if (!strcmp(c->attach[i].playbook, "db-failover")) {
            seen_db = 1;
            assert_string_equal(c->attach[i].path, b);
            assert_int_equal(c->attach[i].line, 3);
        }
    }
    assert_true(seen_a && seen_b && seen_db);
    json_t *list = json_array();
    cf_attach_append(c, list);
    assert_int_equal(json_array_size(list), 3);
    assert_non_null(json_object_get(json_array_get(list, 0), "playbook"));
    json_decref(list);
    cf_free(c);

    /* absolute paths as written; with notifiers, no embedded default */
    char *t2 = NULL;
    assert_true(asprintf(&t2, "return { notifiers = { x = { type = \"stdout\" } }, attach = { t = \"%s\" } }\n", a) > 0);
    c = cf_load_text(t2, strlen(t2), "elsewhere/irp.conf.lua", err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->nattach, 1);
    assert_string_equal(c->attach[0].path, a);
    assert_false(c->embedded);
    cf_free(c);
    free(t2);

    expect_error("attach = {\n  t = { \"nope.lua\" } }\n", "irp.conf.lua:2: attach.t: cannot read attach file 'nope.lua'");
    expect_error("attach = \"x.lua\"\n", "irp.conf.lua:1: attach must be a table of playbook id");
    expect_error("attach = {\n  [\"bad id\"] = \"x.lua\" }\n", "keys are playbook ids");
    expect_error("attach = { \"x.lua\" }\n", "keys are playbook ids");
    expect_error("attach = {\n  t = {} }\n", "irp.conf.lua:2: attach.t must be an attach file's path or a list of them, not an empty table");
    expect_error("attach = {\n  t = { 5 } }\n", "attach.t: every entry must be the path of an attach file (a string), not a number");
    expect_error("attach = {\n  t = { \"\" } }\n", "not an empty string");
    expect_error("atach = {}\n", "unknown setting 'atach' (did you mean 'attach'?)");
    char *t3 = NULL;
    assert_true(asprintf(&t3, "attach = { t = { \"%s\", \"%s\" } }\n", a, a) > 0);
    expect_error(t3, "is listed twice");
    free(t3);

    unlink(a);
    unlink(b);
    rmdir(sub);
    rmdir(dir);
    free(sub);
    free(a);
    free(b);
    free(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind),
        cmocka_unit_test(test_returned_table_and_locals),
        cmocka_unit_test(test_unknown_type_suggests_and_names_line),
        cmocka_unit_test(test_unknown_and_misplaced_fields),
        cmocka_unit_test(test_required_fields_and_values),
        cmocka_unit_test(test_settings_and_lua_errors),
        cmocka_unit_test(test_sandbox),
        cmocka_unit_test(test_embedded_default_and_search),
        cmocka_unit_test(test_resolve_secrets),
        cmocka_unit_test(test_attach_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
