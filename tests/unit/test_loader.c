/*
 * test_loader.c — the playbook DSL and its validation: every rule of the
 * brief with the exact "file:line: message", the outline, vars and
 * defaults, attach blocks, and the {{template}} renderer.
 * Depends on: cmocka, loader.h, sandbox.h, ctx.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ctx.h"
#include "loader.h"
#include "loader_internal.h"
#include "sandbox.h"
#include "util.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static int make_dir(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/irp-test-loader-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    char *cmd = ut_xasprintf("rm -rf '%s'", dir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

static char *write_file(const char *name, const char *text)
{
    char *path = ut_xasprintf("%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    return path;
}

static int open_all(lua_State *L)
{
    cx_open(L);
    pb_dsl_open(L);
    return 0;
}

typedef struct {
    json_t *outline;
    char *errors; /* "file:line: msg\n"... with the temp dir replaced by "D" */
} loaded;

/* Loads text (as NAME) with optional vars JSON and attach files. */
static const json_t *plugin_dirs; /* the next loads' req.plugins (NULL: none) */

static loaded load_ex(const char *name, const char *text, const char *vars_json, int check,
                      const char *const *attach_names, const char *const *attach_texts,
                      sb_state **keep)
{
    char *path = write_file(name, text);
    const char *err;
    sb_state *s = sb_new((size_t)32 << 20, &err);
    assert_non_null(s);
    lua_pushcfunction(s->L, open_all);
    assert_int_equal(lua_pcall(s->L, 0, 0, 0), LUA_OK);
    json_t *attach = json_array();
    for (size_t i = 0; attach_names && attach_names[i]; i++) {
        char *p = write_file(attach_names[i], attach_texts[i]);
        json_array_append_new(attach, json_string(p));
        free(p);
    }
    json_error_t jerr;
    json_t *vars = vars_json ? json_loads(vars_json, 0, &jerr) : NULL;
    pb_request req = {.file = path, .vars = vars, .attach = attach, .plugins = plugin_dirs,
                      .check = check, .timeout_ms = 300};
    loaded r = {NULL, NULL};
    json_t *errors = NULL;
    pb_load(s, &req, &r.outline, &errors);
    assert_int_equal(lua_gettop(s->L), 0);
    ut_buf b = {0};
    ut_buf_append(&b, "", 0);
    size_t i;
    json_t *e;
    size_t dlen = strlen(dir);
    json_array_foreach(errors, i, e) {
        const char *f = json_string_value(json_object_get(e, "file"));
        if (strncmp(f, dir, dlen) == 0)
            ut_buf_printf(&b, "D%s", f + dlen);
        else
            ut_buf_puts(&b, f);
        ut_buf_printf(&b, ":%lld: %s\n", (long long)json_integer_value(json_object_get(e, "line")),
                      json_string_value(json_object_get(e, "msg")));
    }
    r.errors = b.data;
    json_decref(errors);
    json_decref(vars);
    json_decref(attach);
    free(path);
    if (keep)
        *keep = s;
    else
        sb_free(s);
    return r;
}

static loaded load(const char *text, const char *vars_json)
{
    return load_ex("pb.lua", text, vars_json, 0, NULL, NULL, NULL);
}

static void loaded_free(loaded *r)
{
    json_decref(r->outline);
    free(r->errors);
}

/* The load must fail and its errors contain each expected line. */
static void expect_errors(const char *text, const char *vars_json, const char *const *want)
{
    loaded r = load(text, vars_json);
    assert_null(r.outline);
    for (size_t i = 0; want[i]; i++) {
        if (!strstr(r.errors, want[i]))
            fail_msg("missing error: %s\ngot:\n%s", want[i], r.errors);
    }
    loaded_free(&r);
}

#define ONE_STEP "steps = { step \"a\" { run = function() end } }"

static void test_valid_outline(void **state)
{
    loaded r = load(
        "-- a playbook\n"
        "return playbook {\n"
        "  id = \"ransomware\", title = \"Ransomware\", version = \"1.2\", severity = \"critical\",\n"
        "  description = \"d\", references = { \"https://x\" }, tags = { \"t\" },\n"
        "  phases = { \"detection\", \"containment\" },\n"
        "  inputs = { host = { required = true, doc = \"Infected host\" }, n = { default = 3 },\n"
        "             opt = { doc = \"optional\" } },\n"
        "  objectives = { contain_within = \"30m\", ack = 90 },\n"
        "  escalation = { { notify = { \"slack-ir\" } }, { after = \"15m\", notify = { \"pd\" } } },\n"
        "  steps = {\n"
        "    step \"confirm\" { phase = \"detection\", title = \"Confirm on {{host}}\", manual = \"Look\", timeout = \"10m\" },\n"
        "    step \"isolate\" { phase = \"containment\", approval = \"ic\", retries = 3, backoff = \"5s\",\n"
        "      timeout = 120, on_failure = \"escalate\", idempotent = true, when = function() return true end,\n"
        "      rollback = function() end, notify = { on_failure = { \"pd\" } }, owner = \"soc\",\n"
        "      run = function(ctx) end, drill = { stdout = \"job 42\", code = 0 } },\n"
        "    step \"after\" { title = \"Check {{steps.isolate.result.job}}\", run = function() end,\n"
        "      drill = function() end, on_failure = \"confirm\" },\n"
        "  },\n"
        "}\n",
        "{\"host\":\"web-07\"}");
    if (!r.outline)
        fail_msg("%s", r.errors);
    json_t *o = r.outline;
    assert_string_equal(json_string_value(json_object_get(o, "id")), "ransomware");
    assert_string_equal(json_string_value(json_object_get(o, "severity")), "critical");
    assert_int_equal(json_integer_value(json_object_get(o, "line")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "objectives"), "contain_within")),
                     1800000);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "objectives"), "ack")), 90000);
    json_t *vars = json_object_get(o, "vars");
    assert_string_equal(json_string_value(json_object_get(vars, "host")), "web-07");
    assert_string_equal(json_string_value(json_object_get(vars, "n")), "3");
    assert_null(json_object_get(vars, "opt"));
    json_t *esc = json_object_get(o, "escalation");
    assert_int_equal(json_array_size(esc), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(esc, 1), "tier")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(esc, 1), "after_ms")), 900000);
    json_t *steps = json_object_get(o, "steps");
    assert_int_equal(json_array_size(steps), 3);
    json_t *c = json_array_get(steps, 0), *i = json_array_get(steps, 1), *a = json_array_get(steps, 2);
    assert_string_equal(json_string_value(json_object_get(c, "kind")), "manual");
    assert_int_equal(json_integer_value(json_object_get(c, "timeout_ms")), 600000);
    assert_int_equal(json_integer_value(json_object_get(c, "line")), 11);
    assert_string_equal(json_string_value(json_object_get(i, "kind")), "run");
    assert_int_equal(json_integer_value(json_object_get(i, "timeout_ms")), 120000);
    assert_int_equal(json_integer_value(json_object_get(i, "retries")), 3);
    assert_int_equal(json_integer_value(json_object_get(i, "backoff_ms")), 5000);
    assert_true(json_is_true(json_object_get(i, "has_when")));
    assert_true(json_is_true(json_object_get(i, "has_rollback")));
    assert_true(json_is_true(json_object_get(i, "idempotent")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(i, "drill"), "stdout")), "job 42");
    assert_string_equal(json_string_value(json_object_get(i, "source")), "playbook");
    /* inherits the previous step's phase */
    assert_string_equal(json_string_value(json_object_get(a, "phase")), "containment");
    assert_true(json_is_true(json_object_get(json_object_get(a, "drill"), "function")));
    assert_true(json_is_null(json_object_get(a, "timeout_ms")));
    loaded_free(&r);
}

static void test_chunk_errors(void **state)
{
    expect_errors("return playbook {\n  id = 'x'\n  title = 'y' }", NULL,
                  (const char *const[]){"D/pb.lua:3: '}' expected (to close '{' at line 1) near 'title'", NULL});
    expect_errors("local x = nil\nlocal y = x.field\n", NULL,
                  (const char *const[]){"D/pb.lua:2: attempt to index a nil value (local 'x')", NULL});
    expect_errors("local p = playbook { id = 'x', title = 'T', " ONE_STEP " }\n", NULL,
                  (const char *const[]){"D/pb.lua:1: the file does not return a playbook (end it with: "
                                        "return playbook { ... })",
                                        NULL});
    expect_errors("local n = 0\nwhile true do\n  n = n + 1\nend\n", NULL,
                  (const char *const[]){"D/pb.lua:3: the playbook's top-level code ran longer than 300ms", NULL});
    /* doubling a string: the cap comes in 25 large copies, long before the
     * 300 ms deadline even under ASan on a loaded machine (a small table a
     * turn once did not, and string.rep of one byte is slow under ASan) */
    expect_errors("local s = 'x'\nfor i = 1, 60 do s = s .. s end\n", NULL,
                  (const char *const[]){"D/pb.lua:1: memory limit of 32 MiB reached", NULL});
    expect_errors("print('x')\nreturn playbook { id = 'x', title = 'T', " ONE_STEP " }", NULL,
                  (const char *const[]){"D/pb.lua:1: print is only available inside steps", NULL});
    expect_errors("return 42", NULL, (const char *const[]){"the file does not return a playbook", NULL});
}

static void test_playbook_fields(void **state)
{
    expect_errors("return playbook {\n serverity = 'high', severity = 'urgent', id = 'bad id!',\n"
                  " tags = 'x', phases = { 'a', 'a' }, " ONE_STEP " }",
                  NULL,
                  (const char *const[]){
                      "D/pb.lua:2: unknown field 'serverity' in playbook (did you mean 'severity'?)",
                      "D/pb.lua:2: field 'severity' of playbook must be one of info, low, medium, high, "
                      "critical, not \"urgent\"",
                      "D/pb.lua:2: field 'id' of playbook must be 1 to 64 letters",
                      "D/pb.lua:1: field 'title' of playbook is required",
                      "D/pb.lua:3: field 'tags' of playbook must be a list of strings, not a string",
                      "D/pb.lua:3: field 'phases' of playbook lists 'a' twice", NULL});
    expect_errors("return playbook { title = 'T', steps = {} }", NULL,
                  (const char *const[]){"D/pb.lua:1: field 'id' of playbook is required",
                                        "D/pb.lua:1: field 'steps' of playbook must not be empty", NULL});
    expect_errors("return playbook { id = 'x', title = 'T', steps = { step 'a' { run = function() end }, 42, step 'b' } }",
                  NULL,
                  (const char *const[]){"item 2 of field 'steps' of playbook is a number, not a step",
                                        "item 3 of field 'steps' of playbook is a function", NULL});
    expect_errors("return playbook { id = 'x', title = 'T', " ONE_STEP ",\n"
                  " escalation = { { notify = { 'a' } }, { notify = { 'b' } }, { after = '5m', notify = { 'c' } },\n"
                  "   { after = '1m', notify = { 'd' } }, { after = '9m' } },\n"
                  " objectives = { x = 'soon' }, inputs = { h = { required = 'yes', dox = 1 } } }",
                  NULL,
                  (const char *const[]){
                      "D/pb.lua:2: escalation tier 2 needs 'after'",
                      "D/pb.lua:3: escalation tier 4 starts after 1m, earlier than tier 3 (5m)",
                      "D/pb.lua:3: escalation tier 5 needs 'notify'",
                      "D/pb.lua:4: objective 'x' must be a duration",
                      "D/pb.lua:4: field 'required' of input 'h' must be a boolean (true or false), not a string",
                      "D/pb.lua:4: unknown field 'dox' in input 'h' (did you mean 'doc'?)", NULL});
}

static void test_step_fields(void **state)
{
    expect_errors(
        "return playbook { id = 'x', title = 'T', steps = {\n"
        "  step 'isolate' { run = function() end, retries = '3', tittle = 'x', timeout = '2 minutes' },\n"
        "  step 'b' { run = function() end, manual = 'both' },\n"
        "  step 'c' { },\n"
        "  step 'd' { run = 'not a function', retries = 101, backoff = -1, idempotent = 'yes',\n"
        "             when = 'x', notify = { on_sucess = { 'a' } }, drill = { f = function() end } },\n"
        "  step 'bad id' { manual = 'x' },\n"
        "  step 'e' { run = function() end, drill = { stdot = 'x', exec = { cod = 1 }, http = { staus = 2 } } },\n"
        "} }",
        NULL,
        (const char *const[]){
            "D/pb.lua:8: unknown field 'stdot' in the drill table of step \"e\" (did you mean 'stdout'?)",
            "D/pb.lua:8: unknown field 'cod' in drill.exec of step \"e\" (did you mean 'code'?)",
            "D/pb.lua:8: unknown field 'staus' in drill.http of step \"e\" (did you mean 'status'?)",
            "D/pb.lua:2: field 'retries' of step \"isolate\" must be a non-negative integer, not a string",
            "D/pb.lua:2: unknown field 'tittle' in step \"isolate\" (did you mean 'title'?)",
            "D/pb.lua:2: field 'timeout' of step \"isolate\" must be a duration such as \"500ms\", \"90s\", "
            "\"15m\" or \"1h30m\", not \"2 minutes\"",
            "D/pb.lua:3: step \"b\" has both 'run' and 'manual'",
            "D/pb.lua:4: step \"c\" needs 'run' (a function) or 'manual' (instructions for a person), it "
            "has neither",
            "D/pb.lua:5: field 'run' of step \"d\" must be a function",
            "D/pb.lua:5: field 'retries' of step \"d\" must be an integer from 0 to 100, not 101",
            "D/pb.lua:5: field 'backoff' of step \"d\" must be a number of seconds from 0 to 1e12, not -1",
            "D/pb.lua:5: field 'idempotent' of step \"d\" must be a boolean",
            "D/pb.lua:6: field 'when' of step \"d\" must be a function(ctx) or a boolean, not a string",
            "D/pb.lua:6: unknown field 'on_sucess' in notify of step \"d\" (did you mean 'on_success'?)",
            "D/pb.lua:6: field 'drill' of step \"d\": drill.f: a function cannot be converted to JSON",
            "D/pb.lua:7: step id \"bad id\" is not valid", NULL});
}

static void test_cross_step_rules(void **state)
{
    expect_errors(
        "return playbook { id = 'x', title = 'T', phases = { 'detection', 'containment' }, steps = {\n"
        "  step 'isolate' { phase = 'containment', run = function() end },\n"
        "  step 'isolate' { manual = 'again' },\n"
        "  step 'e' { run = function() end, on_failure = 'isolat' },\n"
        "  step 'f' { run = function() end, on_failure = 'f' },\n"
        "  step 'g' { phase = 'contianment', manual = 'x', on_failure = 'abrt' },\n"
        "  step 'h' { phase = 'detection', manual = 'x' },\n"
        "} }",
        NULL,
        (const char *const[]){
            "D/pb.lua:3: duplicate step id \"isolate\" (first defined at line 2)",
            "D/pb.lua:4: on_failure of step \"e\" is \"isolat\": not abort, continue, escalate or the id "
            "of a step (did you mean \"isolate\"?)",
            "D/pb.lua:5: on_failure of step \"f\" names the step itself",
            "D/pb.lua:6: phase 'contianment' of step \"g\" is not one of the playbook's phases (did you "
            "mean 'containment'?)",
            "(did you mean \"abort\"?)",
            "D/pb.lua:7: step \"h\" is in phase 'detection', which comes before phase 'containment' of "
            "the earlier step \"f\" (phases must not go backwards)",
            NULL});
}

static void test_templates(void **state)
{
    expect_errors(
        "return playbook { id = 'x', title = 'T', inputs = { host = { required = true } }, steps = {\n"
        "  step 'isolate' { title = 'Isolate {{hots}}', run = function() end },\n"
        "  step 'b' { manual = 'Job {{steps.isolat.result.job}} {{ steps.isolate.status }} {{steps.isolate.foo}}' },\n"
        "  step 'c' { manual = 'unclosed {{host' },\n"
        "} }",
        "{\"host\":\"h\"}",
        (const char *const[]){
            "D/pb.lua:2: unknown template {{hots}} in title of step \"isolate\": not an input of the "
            "playbook (did you mean {{host}}?)",
            "D/pb.lua:3: template {{steps.isolat.result.job}} in manual of step \"b\" names no step "
            "\"isolat\" (did you mean \"isolate\"?)",
            "D/pb.lua:3: template {{steps.isolate.foo}} in manual of step \"b\": use steps.isolate.status "
            "or steps.isolate.result.FIELD",
            "D/pb.lua:4: manual of step \"c\" has a '{{' without its closing '}}'", NULL});
}

static void test_inputs_and_vars(void **state)
{
    const char *pb = "return playbook { id = 'x', title = 'T',\n"
                     " inputs = { host = { required = true }, region = { default = 'eu' } },\n"
                     " " ONE_STEP " }";
    expect_errors(pb, "{\"hots\":\"web\"}",
                  (const char *const[]){"D/pb.lua:1: input 'host' is required (pass -v host=...)",
                                        "D/pb.lua:1: -v hots=...: the playbook has no input 'hots' (did "
                                        "you mean 'host'?)",
                                        NULL});
    /* check mode: a missing required input is fine */
    loaded r = load_ex("pb.lua", pb, NULL, 1, NULL, NULL, NULL);
    if (!r.outline)
        fail_msg("%s", r.errors);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r.outline, "vars"), "region")), "eu");
    loaded_free(&r);
    r = load(pb, "{\"host\":\"web\",\"region\":\"us\"}");
    assert_non_null(r.outline);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r.outline, "vars"), "region")), "us");
    loaded_free(&r);
}

static void test_dsl_misuse(void **state)
{
    expect_errors("return playbook { id = 'x', title = 'T', steps = {\n"
                  "  step(42) { run = function() end },\n"
                  "  step { run = function() end },\n"
                  "  step 'z' (5),\n"
                  "} }",
                  NULL,
                  (const char *const[]){"D/pb.lua:2: a step id must be a string, not a number",
                                        "D/pb.lua:3: a step needs an id: write step \"id\" { ... }",
                                        "D/pb.lua:4: step \"z\" must be followed by a table of fields", NULL});
}

static void test_attach(void **state)
{
    const char *pb = "return playbook { id = 'x', title = 'T', phases = { 'p1', 'p2', 'p3' }, steps = {\n"
                     "  step 'a' { phase = 'p1', run = function() end },\n"
                     "  step 'b' { phase = 'p2', run = function() end },\n"
                     "  step 'c' { phase = 'p3', run = function() end },\n"
                     "} }";
    const char *names[] = {"one.lua", "two.lua", NULL};
    const char *texts[] = {
        "return attach { after = 'a', step 'a1' { manual = 'x' }, step 'a2' { manual = 'y' } }",
        "return { attach { before = 'c', step 'c0' { phase = 'p3', manual = 'z' } },\n"
        "         attach { at_end_of = 'p2', step 'b9' { run = function() return 9 end } },\n"
        "         attach { after = 'a', step 'a3' { manual = 'w' } } }",
        NULL};
    sb_state *s = NULL;
    loaded r = load_ex("pb.lua", pb, NULL, 0, names, texts, &s);
    if (!r.outline)
        fail_msg("%s", r.errors);
    json_t *steps = json_object_get(r.outline, "steps");
    const char *order[] = {"a", "a1", "a2", "a3", "b", "b9", "c0", "c"};
    assert_int_equal(json_array_size(steps), 8);
    for (size_t i = 0; i < 8; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(steps, i), "id")), order[i]);
    json_t *a1 = json_array_get(steps, 1);
    assert_non_null(strstr(json_string_value(json_object_get(a1, "source")), "one.lua"));
    assert_string_equal(json_string_value(json_object_get(a1, "phase")), "p1");
    pb_push_step_fn(s->L, "b9", "run");
    assert_true(lua_isfunction(s->L, -1));
    lua_pop(s->L, 1);
    pb_push_step_fn(s->L, "nope", "run");
    assert_true(lua_isnil(s->L, -1));
    lua_pop(s->L, 1);
    sb_free(s);
    loaded_free(&r);

    const char *bad[] = {"return attach { after = 'zz', step 'q' { manual = 'x' } }\n", NULL};
    const char *bad_names[] = {"bad.lua", NULL};
    r = load_ex("pb.lua", pb, NULL, 0, bad_names, bad, NULL);
    assert_null(r.outline);
    assert_non_null(strstr(r.errors, "D/bad.lua:1: attach block: after = \"zz\" names no step"));
    loaded_free(&r);
    const char *bad2[] = {"return 1", NULL};
    r = load_ex("pb.lua", pb, NULL, 0, bad_names, bad2, NULL);
    assert_non_null(strstr(r.errors, "D/bad.lua:1: the file does not return an attach block"));
    loaded_free(&r);
    const char *bad3[] = {"return attach { at_end_of = 'p9', before = 'a', step 'a' { manual = 'x' } }", NULL};
    r = load_ex("pb.lua", pb, NULL, 0, bad_names, bad3, NULL);
    assert_non_null(strstr(r.errors, "D/bad.lua:1: attach block needs exactly one of"));
    loaded_free(&r);
    /* an attach file that loops is named as one, not as the playbook */
    const char *bad4[] = {"local n = 0\nwhile true do n = n + 1 end\n", NULL};
    r = load_ex("pb.lua", pb, NULL, 0, bad_names, bad4, NULL);
    if (!strstr(r.errors, "D/bad.lua:2: the attach file's top-level code ran longer than 300ms"))
        fail_msg("got %s", r.errors);
    loaded_free(&r);
}

static void test_long_path(void **state)
{
    char name[200];
    snprintf(name, sizeof name, "%s", "a-very-long-file-name-that-lua-would-shorten-in-its-messages-x.lua");
    loaded r = load_ex(name, "local t = {}\nreturn t.a.b\n", NULL, 0, NULL, NULL, NULL);
    char want[300];
    snprintf(want, sizeof want, "D/%s:2: attempt to index a nil value (field 'a')", name);
    if (!strstr(r.errors, want))
        fail_msg("got %s", r.errors);
    loaded_free(&r);
}

static void test_render(void **state)
{
    json_error_t e;
    json_t *vars = json_loads("{\"host\":\"web-07\"}", 0, &e);
    json_t *states = json_loads("{\"isolate\":{\"status\":\"succeeded\",\"result\":{\"job\":42,"
                                "\"list\":[\"a\",\"b\"],\"o\":{\"k\":true}}},\"a.b\":{\"status\":\"failed\","
                                "\"result\":\"text\"}}",
                                0, &e);
    char *t = pb_render("Isolate {{host}} ({{ steps.isolate.status }}) job {{steps.isolate.result.job}} "
                        "{{steps.isolate.result.list.2}} {{steps.isolate.result.o}} {{steps.a.b.result}} "
                        "{{steps.nope.status}} {{missing}} {{unclosed",
                        vars, states);
    assert_string_equal(t, "Isolate web-07 (succeeded) job 42 b {\"k\":true} text (unknown) (unknown) {{unclosed");
    free(t);
    json_decref(vars);
    json_decref(states);
}


/* A problem with a field is reported at the field's line, not at the line
 * of `return playbook {` or `step "id" {`: comments, strings, function
 * bodies and other tables that mention the same name are not the field. */
static void test_field_lines(void **state)
{
    expect_errors(
        "-- severity = 3 in a comment\n"                                     /* 1 */
        "local doc = [[\n extra = 1 ]]\n"                                    /* 2-3 */
        "return playbook {\n"                                                /* 4 */
        "  id = 'x', title = 'T', --[[ extra = 2\n"                          /* 5 */
        "  ]] inputs = { host = { doc = 'severity = 1',\n"                   /* 6 */
        "      required = 'yes' }, ['my-in'] = { dox = 1 } },\n"             /* 7 */
        "  extra = 1,\n"                                                     /* 8 */
        "  severity = 3,\n"                                                  /* 9 */
        "  escalation = { { notify = { 'a' } },\n"                           /* 10 */
        "    { after = '1m',\n"                                              /* 11 */
        "      notfy = {} } },\n"                                            /* 12 */
        "  steps = {\n"                                                      /* 13 */
        "    step 'a' { run = function(ctx) local t = { retries = 1 }, 2\n"  /* 14 */
        "        retries = 4 end, title = 'retries = 1',\n"                  /* 15 */
        "      retries = 'x' }, step 'b' { manual = 'm',\n"                  /* 16 */
        "      tittle = 'b' },\n"                                            /* 17 */
        "  },\n"                                                             /* 18 */
        "}\n",
        NULL,
        (const char *const[]){
            "D/pb.lua:7: field 'required' of input 'host' must be a boolean",
            "D/pb.lua:7: unknown field 'dox' in input 'my-in'",
            "D/pb.lua:8: unknown field 'extra' in playbook",
            "D/pb.lua:9: field 'severity' of playbook must be a string, not a number",
            "D/pb.lua:11: escalation tier 2 needs 'notify'",
            "D/pb.lua:12: unknown field 'notfy' in escalation tier 2",
            "D/pb.lua:16: field 'retries' of step \"a\" must be a non-negative integer, not a string",
            "D/pb.lua:17: unknown field 'tittle' in step \"b\"", NULL});
    /* a field that is not in the constructor (set from a variable, say)
     * stays at the object's line */
    expect_errors("local spec = { run = function() end, retries = 'x' }\n"
                  "return playbook { id = 'x', title = 'T', steps = {\n"
                  "  step 'a' (spec) } }\n",
                  NULL,
                  (const char *const[]){"D/pb.lua:3: field 'retries' of step \"a\" must be", NULL});
    /* attach files too */
    const char *pb = "return playbook { id = 'x', title = 'T', steps = { step 'a' { manual = 'x' } } }";
    const char *files[] = {"return attach {\n  after = 'a',\n  step 'n' { manual = 'x',\n"
                           "    idempotent = 1 },\n  bogus = 1,\n}\n", NULL};
    const char *names[] = {"att.lua", NULL};
    loaded r = load_ex("pb.lua", pb, NULL, 0, names, files, NULL);
    assert_null(r.outline);
    if (!strstr(r.errors, "D/att.lua:4: field 'idempotent' of step \"n\" must be a boolean") ||
        !strstr(r.errors, "D/att.lua:5: unknown field 'bogus' in attach block"))
        fail_msg("got %s", r.errors);
    loaded_free(&r);
}

/* The search itself: long brackets, CRLF line ends, [ "key" ] fields and
 * list items. */
static void test_source_line(void **state)
{
    const char *t = "x = 1\r\nreturn playbook {\r\n  a = [==[\r\n ]] b = 1 ]==],\r\n"
                    "  [\"b-c\"] = 2, { 1 }, { k = 3,\r\n  k2 = 4 },\r\n}\r\n";
    size_t n = strlen(t);
    assert_int_equal(pb_source_line(t, n, 2, "playbook", NULL, (const char *const[]){"b-c"}, 1), 5);
    assert_int_equal(pb_source_line(t, n, 2, "playbook", NULL, (const char *const[]){"b"}, 1), 2);
    assert_int_equal(pb_source_line(t, n, 2, "playbook", NULL, (const char *const[]){"#2", "k2"}, 2), 6);
    assert_int_equal(pb_source_line(t, n, 2, "playbook", NULL, (const char *const[]){"a"}, 1), 3);
    assert_int_equal(pb_source_line(t, n, 1, "playbook", NULL, (const char *const[]){"a"}, 1), 1);
    assert_int_equal(pb_source_line(t, n, 2, "step", "a", (const char *const[]){"a"}, 1), 2);
}

/* ------------------------------------------------------------- plugins */

static void mkdir_in(const char *name)
{
    char *p = ut_xasprintf("%s/%s", dir, name);
    mkdir(p, 0755);
    free(p);
}

static void put(const char *name, const char *text)
{
    free(write_file(name, text));
}

/* Loads a playbook that requires things, with plugin dirs d1, d2 (under the
 * temp dir) as the request's list. */
static loaded load_plugins(const char *text, sb_state **keep)
{
    json_t *dirs = json_array();
    char *d1 = ut_xasprintf("%s/d1", dir), *d2 = ut_xasprintf("%s/d2", dir);
    json_array_append_new(dirs, json_string(d1));
    json_array_append_new(dirs, json_string(d2));
    plugin_dirs = dirs;
    loaded r = load_ex("pb.lua", text, NULL, 0, NULL, NULL, keep);
    plugin_dirs = NULL;
    json_decref(dirs);
    free(d1);
    free(d2);
    return r;
}

static void setup_plugins(void)
{
    mkdir_in("d1");
    mkdir_in("d2");
    mkdir_in("d3");
    mkdir_in("d1/pkg");
    mkdir_in("d2/pkg2");
    put("d1/m.lua", "return { from = 'd1' }");
    put("d2/m.lua", "return { from = 'd2' }");
    put("d2/n.lua", "return { from = 'd2' }");
    put("d3/e.lua", "return { from = 'd3' }");
    put("d3/m.lua", "return { from = 'd3' }");
    put("d1/pkg/sub.lua", "return { from = 'd1/pkg/sub.lua' }");
    put("d2/pkg2/init.lua", "return { from = 'd2/pkg2/init.lua' }");
    put("d1/broken.lua", "local M = {}\nfunction M.x(\nreturn M\n");
    put("d1/raises.lua", "local M = {}\n\nlocal z = nil .. 'x'\nreturn M\n");
    put("d1/loops.lua", "while true do end\n");
    put("d1/big.lua", "local t = {}\nt[1] = ('x'):rep(1 << 26)\n");
    put("d1/binary.lua", "\x1bLuaT fake");
    put("d1/count.lua", "COUNT = (COUNT or 0) + 1\nreturn { n = COUNT }\n");
    put("d1/nothing.lua", "X_LOADED = true\n");
    put("d1/cyc_a.lua", "return require 'cyc_b'\n");
    put("d1/cyc_b.lua", "return require 'cyc_a'\n");
    put("d1/cons.lua",
        "local M = {}\n"
        "function M.make(o)\n"
        "  if type(o.n) ~= 'number' then error('cons.make: n must be a number', 2) end\n"
        "  return step(o.id) { title = 'made ' .. o.n, run = function() return o.n end,\n"
        "                      drill = { stdout = 'x' } }\n"
        "end\n"
        "return M\n");
}

#define PB_WITH(head) head "\nreturn playbook { id = 'x', title = 'T', steps = { step 'a' { run = function() end } } }\n"

/* The value of global G after loading text (a string field 'from'). */
static void expect_from(const char *text, const char *want)
{
    sb_state *s = NULL;
    loaded r = load_plugins(text, &s);
    if (!r.outline)
        fail_msg("%s", r.errors);
    lua_getglobal(s->L, "G");
    lua_getfield(s->L, -1, "from");
    if (!lua_isstring(s->L, -1) || strcmp(lua_tostring(s->L, -1), want) != 0)
        fail_msg("expected %s, got %s", want, lua_tostring(s->L, -1));
    lua_pop(s->L, 2);
    sb_free(s);
    loaded_free(&r);
}

static void expect_plugin_error(const char *text, const char *want)
{
    loaded r = load_plugins(text, NULL);
    assert_null(r.outline);
    if (!strstr(r.errors, want))
        fail_msg("missing error: %s\ngot:\n%s", want, r.errors);
    loaded_free(&r);
}

static void test_require_search_order(void **state)
{
    setup_plugins();
    unsetenv("IRP_PLUGIN_PATH");
    expect_from(PB_WITH("G = require 'm'"), "d1");
    expect_from(PB_WITH("G = require 'n'"), "d2");
    expect_from(PB_WITH("G = require 'pkg.sub'"), "d1/pkg/sub.lua");
    expect_from(PB_WITH("G = require 'pkg2'"), "d2/pkg2/init.lua");
    /* $IRP_PLUGIN_PATH comes after the request's dirs */
    char *d3 = ut_xasprintf("/nonexistent:%s/d3", dir);
    setenv("IRP_PLUGIN_PATH", d3, 1);
    expect_from(PB_WITH("G = require 'e'"), "d3");
    expect_from(PB_WITH("G = require 'm'"), "d1");
    unsetenv("IRP_PLUGIN_PATH");
    free(d3);
    expect_plugin_error(PB_WITH("G = require 'e'"), "D/pb.lua:1: require: plugin 'e' not found; searched:\n\t");
    expect_plugin_error(PB_WITH("G = require 'e'"), "/d1/e.lua\n\t/tmp/irp-test-loader-");
    expect_plugin_error(PB_WITH("G = require 'e'"), "/d2/e/init.lua\n\t");
}

static void test_require_names(void **state)
{
    static const char *const bad[] = {"../d1/m", "/etc/passwd", "M", "a..b", ".m", "m.", "a/b",
                                      "", "m\\n", "x y", NULL};
    for (size_t i = 0; bad[i]; i++) {
        assert_false(sb_require_valid_name(bad[i]));
        char *pb = ut_xasprintf(PB_WITH("G = require '%s'"), bad[i]);
        expect_plugin_error(pb, "D/pb.lua:1: require: '");
        free(pb);
    }
    assert_true(sb_require_valid_name("a-b_c.d9"));
    expect_plugin_error(PB_WITH("G = require(42)"), "D/pb.lua:1: require: the plugin name must be a string");
}

static void test_require_errors(void **state)
{
    setup_plugins();
    expect_plugin_error(PB_WITH("G = require 'broken'"), "D/d1/broken.lua:3:");
    expect_plugin_error(PB_WITH("G = require 'raises'"), "D/d1/raises.lua:3: attempt to concatenate a nil value");
    expect_plugin_error(PB_WITH("G = require 'loops'"), "the plugin's top-level code ran longer than");
    expect_plugin_error(PB_WITH("G = require 'big'"), "memory limit");
    expect_plugin_error(PB_WITH("G = require 'binary'"), "binary chunk");
    expect_plugin_error(PB_WITH("G = require 'cyc_a'"), "circular require");
    /* a constructor's error(msg, 2) names the playbook's line */
    expect_plugin_error("local c = require 'cons'\n"
                        "return playbook { id = 'x', title = 'T', steps = {\n"
                        "  c.make { id = 'a', n = 'one' },\n"
                        "} }\n",
                        "D/pb.lua:3: cons.make: n must be a number");
}

static void test_require_steps_and_cache(void **state)
{
    setup_plugins();
    sb_state *s = NULL;
    loaded r = load_plugins("local c = require 'cons'\n"
                            "local a, b = require 'count', require 'count'\n"
                            "G = { same = a == b, n = b.n, nothing = require 'nothing' }\n"
                            "return playbook { id = 'x', title = 'T', steps = {\n"
                            "  c.make { id = 'made', n = 7 },\n"
                            "} }\n",
                            &s);
    if (!r.outline)
        fail_msg("%s", r.errors);
    json_t *st = json_array_get(json_object_get(r.outline, "steps"), 0);
    /* the step made inside the plugin is placed at the playbook's call */
    assert_non_null(strstr(json_string_value(json_object_get(st, "file")), "/pb.lua"));
    assert_int_equal(json_integer_value(json_object_get(st, "line")), 5);
    assert_string_equal(json_string_value(json_object_get(st, "source")), "playbook");
    assert_string_equal(json_string_value(json_object_get(st, "title")), "made 7");
    assert_string_equal(json_string_value(json_object_get(json_object_get(st, "drill"), "stdout")), "x");
    const char *check = "local c = require 'count'\n"
                        "return G.same and G.n == 1 and c.n == 1 and G.nothing == true and X_LOADED\n";
    assert_int_equal(luaL_loadstring(s->L, check), LUA_OK);
    assert_int_equal(lua_pcall(s->L, 0, 1, 0), LUA_OK);
    assert_true(lua_toboolean(s->L, -1));
    lua_pop(s->L, 1);
    /* json is built in */
    assert_int_equal(luaL_loadstring(s->L, "local j = require 'json'\n"
                                           "local v, e = j.decode('{\"a\":[1,2,{\"b\":null}]}')\n"
                                           "local bad, why = j.decode('{')\n"
                                           "return v.a[2] == 2 and bad == nil and why:find('json.decode') ~= nil\n"
                                           "  and j.encode({ z = 1, a = { true } }) == '{\"a\":[true],\"z\":1}'"),
                     LUA_OK);
    assert_int_equal(lua_pcall(s->L, 0, 1, 0), LUA_OK);
    assert_true(lua_toboolean(s->L, -1));
    lua_pop(s->L, 1);
    sb_free(s);
    loaded_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_outline),
        cmocka_unit_test(test_chunk_errors),
        cmocka_unit_test(test_playbook_fields),
        cmocka_unit_test(test_step_fields),
        cmocka_unit_test(test_cross_step_rules),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_inputs_and_vars),
        cmocka_unit_test(test_dsl_misuse),
        cmocka_unit_test(test_attach),
        cmocka_unit_test(test_long_path),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_field_lines),
        cmocka_unit_test(test_source_line),
        cmocka_unit_test(test_require_search_order),
        cmocka_unit_test(test_require_names),
        cmocka_unit_test(test_require_errors),
        cmocka_unit_test(test_require_steps_and_cache),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
