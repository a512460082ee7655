/*
 * test_probe.c — the worker's half of `irp check --drill` (probe.c): a
 * marked table notes the read of an absent string key with its path and
 * the file:line that read it, nested tables get nested paths, contents
 * stay plain (pairs, #, rawget, next see them), ipairs ending is not a
 * read, tables with a metatable are left alone, notes are deduplicated
 * and bounded, and nothing happens while the probe is off.
 * Depends on: cmocka, probe.h, Lua 5.4.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "probe.h"

#include <lauxlib.h>
#include <lualib.h>
#include <string.h>

/* A state with `r` = {host = "web-07", list = {1, 2}, nested = {a = {b = 1}}}, marked as steps.scan. */
static lua_State *with_result(int enabled)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    dp_enable(enabled);
    json_decref(dp_take());
    assert_int_equal(luaL_dostring(L, "return { host = 'web-07', list = { 1, 2 }, nested = { a = { b = 1 } } }"),
                     LUA_OK);
    dp_mark(L, -1, "steps.scan.result", "scan");
    lua_setglobal(L, "r");
    return L;
}

static void run(lua_State *L, const char *code)
{
    /* chunkname "@pb.lua": the notes say pb.lua:LINE */
    assert_int_equal(luaL_loadbuffer(L, code, strlen(code), "@pb.lua"), LUA_OK);
    assert_int_equal(lua_pcall(L, 0, 0, 0), LUA_OK);
}

static void test_absent_field_noted_with_place(void **state)
{
    (void)state;
    lua_State *L = with_result(1);
    run(L, "local x = r.host\nlocal y = r.fqdn\n");
    json_t *notes = dp_take();
    assert_int_equal(json_array_size(notes), 1);
    json_t *n = json_array_get(notes, 0);
    assert_string_equal(json_string_value(json_object_get(n, "path")), "steps.scan.result.fqdn");
    assert_string_equal(json_string_value(json_object_get(n, "step")), "scan");
    assert_string_equal(json_string_value(json_object_get(n, "where")), "pb.lua:2");
    json_decref(notes);
    lua_close(L);
}

static void test_nested_paths_and_plain_contents(void **state)
{
    (void)state;
    lua_State *L = with_result(1);
    run(L, "assert(r.nested.a.b == 1)\nlocal z = r.nested.a.c\n"
           "local n = 0 for k in pairs(r) do n = n + 1 end assert(n == 3)\n"
           "assert(#r.list == 2 and rawget(r, 'host') == 'web-07' and next(r) ~= nil)\n"
           "for i, v in ipairs(r.list) do end\n");
    json_t *notes = dp_take();
    assert_int_equal(json_array_size(notes), 1); /* ipairs reaching r.list[3] is not a read */
    assert_string_equal(json_string_value(json_object_get(json_array_get(notes, 0), "path")),
                        "steps.scan.result.nested.a.c");
    json_decref(notes);
    lua_close(L);
}

static void test_dedup_and_bound(void **state)
{
    (void)state;
    lua_State *L = with_result(1);
    run(L, "for i = 1, 10 do local x = r.same end\nfor i = 1, 500 do local x = r['k' .. i] end\n");
    json_t *notes = dp_take();
    assert_int_equal(json_array_size(notes), 200); /* one for r.same, then bounded */
    assert_string_equal(json_string_value(json_object_get(json_array_get(notes, 0), "path")),
                        "steps.scan.result.same");
    json_decref(notes);
    lua_close(L);
}

static void test_existing_metatable_left_alone(void **state)
{
    (void)state;
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    dp_enable(1);
    json_decref(dp_take());
    assert_int_equal(luaL_dostring(L, "return setmetatable({}, { __index = function() return 'dflt' end })"), LUA_OK);
    dp_mark(L, -1, "steps.x.result", "x");
    lua_setglobal(L, "r");
    run(L, "assert(r.anything == 'dflt')\n");
    json_t *notes = dp_take();
    assert_int_equal(json_array_size(notes), 0);
    json_decref(notes);
    lua_close(L);
}

static void test_off_means_nothing(void **state)
{
    (void)state;
    lua_State *L = with_result(0);
    run(L, "local y = r.fqdn\nassert(getmetatable(r) == nil)\n");
    dp_note("steps.a.result.b", "a", NULL);
    json_t *notes = dp_take();
    assert_int_equal(json_array_size(notes), 0);
    json_decref(notes);
    lua_close(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_absent_field_noted_with_place),
        cmocka_unit_test(test_nested_paths_and_plain_contents),
        cmocka_unit_test(test_dedup_and_bound),
        cmocka_unit_test(test_existing_metatable_left_alone),
        cmocka_unit_test(test_off_means_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
