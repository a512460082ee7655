/*
 * test_luajson.c — Lua <-> JSON conversion: arrays vs objects, sorted keys,
 * what cannot be recorded (functions, coroutines, userdata, cycles, NaN,
 * bad keys, deep nesting, more than 1 MiB) with the path in the message,
 * secret handles, invalid UTF-8, and JSON -> Lua.
 * Depends on: cmocka, luajson.h, sandbox.h, ctx.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ctx.h"
#include "luajson.h"
#include "sandbox.h"
#include "util.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

static int open_ctx(lua_State *L)
{
    cx_open(L);
    return 0;
}

static int setup(void **state)
{
    const char *err;
    sb_state *s = sb_new(0, &err);
    if (!s)
        return -1;
    lua_pushcfunction(s->L, open_ctx);
    if (lua_pcall(s->L, 0, 0, 0) != LUA_OK)
        return -1;
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    sb_free(*state);
    return 0;
}

/* Evaluates expr, converts the result; returns compact JSON or the error. */
static char *convert(sb_state *s, const char *expr, int flags, int *ok)
{
    char *code = ut_xasprintf("return %s", expr);
    lua_State *L = s->L;
    if (luaL_loadbufferx(L, code, strlen(code), "=t", "t") != LUA_OK)
        fail_msg("%s", lua_tostring(L, -1));
    free(code);
    sb_failure f;
    if (sb_pcall(s, 0, 1, &f) != SB_OK)
        fail_msg("%s", f.msg);
    char *err = NULL;
    json_t *j = lj_from_lua(L, -1, "result", flags, 0, &err);
    lua_pop(L, 1);
    assert_int_equal(lua_gettop(L), 0);
    if (!j) {
        *ok = 0;
        return err;
    }
    *ok = 1;
    char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    return text;
}

static void expect_json(sb_state *s, const char *expr, const char *want)
{
    int ok;
    char *got = convert(s, expr, LJ_RESULT, &ok);
    if (!ok || strcmp(got, want) != 0)
        fail_msg("%s -> %s (%s), want %s", expr, got, ok ? "ok" : "error", want);
    free(got);
}

static void expect_error(sb_state *s, const char *expr, const char *want)
{
    int ok;
    char *got = convert(s, expr, LJ_RESULT, &ok);
    if (ok || strcmp(got, want) != 0)
        fail_msg("%s -> %s (%s), want error %s", expr, got, ok ? "ok" : "error", want);
    free(got);
}

static void test_values(void **state)
{
    sb_state *s = *state;
    expect_json(s, "nil", "null");
    expect_json(s, "true", "true");
    expect_json(s, "42", "42");
    expect_json(s, "1.5", "1.5");
    expect_json(s, "'hi'", "\"hi\"");
    expect_json(s, "{}", "{}");
    expect_json(s, "{ 1, 2, 'x' }", "[1,2,\"x\"]");
    expect_json(s, "{ b = 1, a = { 2, 3 }, c = { d = false } }",
                "{\"a\":[2,3],\"b\":1,\"c\":{\"d\":false}}");
    expect_json(s, "{ [1] = 'a', [3] = 'c' }", "{\"1\":\"a\",\"3\":\"c\"}");
    expect_json(s, "{ 1, 2, x = 1 }", "{\"1\":1,\"2\":2,\"x\":1}");
    expect_json(s, "{ [-1] = 0 }", "{\"-1\":0}");
    /* a table used twice (not a cycle) is fine */
    expect_json(s, "(function() local t = { 1 } return { a = t, b = t } end)()",
                "{\"a\":[1],\"b\":[1]}");
    /* invalid UTF-8 is replaced */
    expect_json(s, "'a\\255b'", "\"a\xEF\xBF\xBD" "b\"");
    /* metamethods are not run */
    expect_json(s, "setmetatable({}, { __index = function() error('ran') end, __pairs = error })", "{}");
}

static void test_unrecordable(void **state)
{
    sb_state *s = *state;
    expect_error(s, "{ job = { cb = function() end } }", "result.job.cb: a function cannot be recorded");
    expect_error(s, "(function() local t = {} t.self = t return t end)()",
                 "result.self: a table that contains itself (a cycle) cannot be recorded");
    expect_error(s, "{ v = 0/0 }", "result.v: NaN (not a number) cannot be recorded");
    expect_error(s, "{ 1, math.huge }", "result[2]: an infinite number cannot be recorded");
    expect_error(s, "{ co = coroutine.create(print) }", "result.co: a coroutine cannot be recorded");
    expect_error(s, "{ [true] = 1 }",
                 "result: a table key of type boolean (keys must be strings or integers) cannot be recorded");
    expect_error(s, "{ [1.5] = 1 }",
                 "result: a table key of type float (keys must be strings or integers) cannot be recorded");
    expect_error(s, "{ ['odd key'] = { print } }", "result[\"odd key\"][1]: a function cannot be recorded");
    expect_error(s, "(function() local t = {} local c = t for i = 1, 100 do c.x = {} c = c.x end return t end)()",
                 "result.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x"
                 ".x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x: nesting deeper than 64 levels cannot be recorded");
    expect_error(s, "string.rep('z', 2 * 1024 * 1024)", "result: more than 1024 KiB of JSON cannot be recorded");
    /* many references to one big string: the estimate stops it early */
    expect_error(s, "(function() local b = string.rep('q', 100000) local t = {} for i = 1, 100 do t[i] = b end return t end)()",
                 "result: more than 1024 KiB of JSON cannot be recorded");
    /* escapes count: 300 KiB of control characters is > 1 MiB of JSON */
    expect_error(s, "string.rep('\\1', 300 * 1024)", "result: more than 1024 KiB of JSON cannot be recorded");
    int ok;
    char *e = convert(s, "{ f = print }", 0, &ok);
    assert_false(ok);
    assert_string_equal(e, "result.f: a function cannot be converted to JSON");
    free(e);
}

static void test_secrets(void **state)
{
    sb_state *s = *state;
    lua_State *L = s->L;
    /* a secret handle is only made by ctx.secret; build one via the
     * metatable directly, as ctx.c does */
    char *p = lua_newuserdatauv(L, 6, 0);
    memcpy(p, "TOKEN", 6);
    luaL_setmetatable(L, "irp.secret");
    char *err = NULL;
    json_t *j = lj_from_lua(L, -1, "x", 0, 0, &err);
    assert_string_equal(json_string_value(j), "<secret TOKEN>");
    json_decref(j);
    j = lj_from_lua(L, -1, "x", LJ_SECRET_OBJECT, 0, &err);
    assert_string_equal(json_string_value(json_object_get(j, "secret")), "TOKEN");
    json_decref(j);
    j = lj_from_lua(L, -1, "json", LJ_NO_SECRETS, 0, &err);
    assert_null(j);
    assert_non_null(strstr(err, "json: a secret"));
    free(err);
    lua_pop(L, 1);
    lua_newuserdatauv(L, 8, 0); /* some other userdata */
    j = lj_from_lua(L, -1, "result", LJ_RESULT, 0, &err);
    assert_null(j);
    assert_string_equal(err, "result: a userdata value cannot be recorded");
    free(err);
    lua_pop(L, 1);
}

static void test_push(void **state)
{
    sb_state *s = *state;
    lua_State *L = s->L;
    json_error_t jerr;
    json_t *j = json_loads("{\"a\":[1,2.5,\"x\",true,null,{\"b\":false}],\"n\":-3}", 0, &jerr);
    lj_push(L, j);
    json_decref(j);
    lua_setglobal(L, "T");
    const char *code = "assert(T.n == -3 and math.type(T.n) == 'integer')\n"
                       "assert(T.a[1] == 1 and T.a[2] == 2.5 and T.a[3] == 'x' and T.a[4] == true)\n"
                       "assert(T.a[5] == nil and T.a[6].b == false)\n"
                       "return true";
    assert_int_equal(luaL_loadbufferx(L, code, strlen(code), "=t", "t"), LUA_OK);
    sb_failure f;
    if (sb_pcall(s, 0, 1, &f) != SB_OK)
        fail_msg("%s", f.msg);
    lua_pop(L, 1);
    /* round trip */
    char *err = NULL;
    lua_getglobal(L, "T");
    json_t *back = lj_from_lua(L, -1, "T", 0, 0, &err);
    lua_pop(L, 1);
    char *text = json_dumps(back, JSON_COMPACT);
    assert_string_equal(text, "{\"a\":{\"1\":1,\"2\":2.5,\"3\":\"x\",\"4\":true,\"6\":{\"b\":false}},\"n\":-3}");
    free(text);
    json_decref(back);
}

static void test_lj_string(void **state)
{
    json_t *j = lj_string("ok\xff", 3);
    assert_string_equal(json_string_value(j), "ok\xEF\xBF\xBD");
    json_decref(j);
    j = lj_string("a\0b", 3);
    assert_int_equal(json_string_length(j), 3);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unrecordable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push, setup, teardown),
        cmocka_unit_test(test_lj_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
