/*
 * test_sandbox.c — the worker's sandbox: escapes that must not exist, the
 * soft deadline against every way a script tries to outrun it (pcall,
 * xpcall with a looping handler, coroutines), the memory cap, stack
 * overflow and odd error objects.
 * Depends on: cmocka, sandbox.h, ctx.h, loader.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ctx.h"
#include "loader.h"
#include "sandbox.h"
#include "util.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int open_all(lua_State *L)
{
    cx_open(L);
    pb_dsl_open(L);
    return 0;
}

static sb_state *new_state(size_t limit)
{
    const char *err = NULL;
    sb_state *s = sb_new(limit, &err);
    assert_non_null(s);
    lua_pushcfunction(s->L, open_all);
    assert_int_equal(lua_pcall(s->L, 0, 0, 0), LUA_OK);
    return s;
}

/* Runs code as a chunk named "=test" under a deadline; leaves one result
 * on the stack on success. Returns the kind and fills f. */
static int run(sb_state *s, const char *code, int64_t timeout_ms, sb_failure *f)
{
    assert_int_equal(luaL_loadbufferx(s->L, code, strlen(code), "=test", "t"), LUA_OK);
    sb_deadline_arm(s, timeout_ms, "step timed out after 200ms", 0);
    int kind = sb_pcall(s, 0, 1, f);
    sb_deadline_disarm(s);
    return kind;
}

static void expect_nil(sb_state *s, const char *code)
{
    sb_failure f;
    int kind = run(s, code, 0, &f);
    if (kind != SB_OK)
        fail_msg("%s: %s", code, f.msg);
    if (!lua_isnil(s->L, -1))
        fail_msg("%s returned a %s, expected nil", code, luaL_typename(s->L, -1));
    lua_pop(s->L, 1);
}

static void test_escapes_absent(void **state)
{
    sb_state *s = new_state(0);
    const char *const absent[] = {
        "return os.exit", "return io", "return os.execute", "return os.getenv",
        "return os.remove", "return os.rename", "return os.tmpname", "return require",
        "return package", "return collectgarbage", "return debug", "return ('').dump",
        "return string.dump", "return dofile", "return loadfile", "return warn", "return _G",
        "return getmetatable('').__index.dump", NULL};
    for (size_t i = 0; absent[i]; i++)
        expect_nil(s, absent[i]);
    sb_free(s);
}

static void test_allowed_present(void **state)
{
    sb_state *s = new_state(0);
    sb_failure f;
    const char *code =
        "assert(string.format and table.concat and math.floor and utf8.char and os.time and "
        "os.clock and os.date and os.difftime and coroutine.create and coroutine.wrap and "
        "pcall and xpcall and select and rawget and setmetatable and tonumber and _VERSION)\n"
        "return load('return 1 + 1')()";
    assert_int_equal(run(s, code, 0, &f), SB_OK);
    assert_int_equal(lua_tointeger(s->L, -1), 2);
    lua_pop(s->L, 1);
    sb_free(s);
}

static void test_binary_load_refused(void **state)
{
    sb_state *s = new_state(0);
    sb_failure f;
    assert_int_equal(run(s, "local f, err = load('\\27Lua whatever') assert(f == nil) return err", 0, &f),
                     SB_OK);
    assert_string_equal(lua_tostring(s->L, -1), "load: binary chunks are not allowed in playbooks");
    lua_pop(s->L, 1);
    /* a reader function returning bytecode is refused by mode "t" */
    assert_int_equal(run(s, "local done = false\n"
                            "local fn, err = load(function() if done then return nil end done = true "
                            "return '\\27Lua' end)\nreturn err",
                         0, &f),
                     SB_OK);
    assert_non_null(strstr(lua_tostring(s->L, -1), "binary"));
    lua_pop(s->L, 1);
    sb_free(s);
}

static void test_print_at_load_and_gc(void **state)
{
    sb_state *s = new_state(0);
    sb_failure f;
    assert_int_equal(run(s, "print('x')", 0, &f), SB_ERROR);
    assert_non_null(strstr(f.msg, "print is only available inside steps"));
    sb_failure_free(&f);
    assert_int_equal(run(s, "setmetatable({}, { __gc = function() end })", 0, &f), SB_ERROR);
    assert_non_null(strstr(f.msg, "__gc"));
    sb_failure_free(&f);
    sb_free(s);
}

static void expect_timeout(const char *code)
{
    sb_state *s = new_state(0);
    sb_failure f;
    int64_t t0 = ut_mono_ms();
    int kind = run(s, code, 200, &f);
    int64_t took = ut_mono_ms() - t0;
    if (kind != SB_TIMEOUT)
        fail_msg("%s: kind %d (%s), expected a timeout", code, kind, f.msg ? f.msg : "ok");
    assert_string_equal(f.msg, "step timed out after 200ms");
    if (took < 190 || took > 300)
        fail_msg("%s: stopped after %lld ms, expected ~200", code, (long long)took);
    sb_failure_free(&f);
    /* the state is still usable, and no deadline lingers */
    assert_int_equal(run(s, "local x = 0 for i = 1, 1000 do x = x + i end return x", 0, &f), SB_OK);
    assert_int_equal(lua_tointeger(s->L, -1), 500500);
    lua_pop(s->L, 1);
    sb_free(s);
}

static void test_timeout_loop(void **state)
{
    expect_timeout("while true do end");
}

static void test_timeout_in_pcall(void **state)
{
    expect_timeout("while true do pcall(function() while true do end end) end");
}

static void test_timeout_xpcall_looping_handler(void **state)
{
    expect_timeout("xpcall(function() while true do end end, function(e) while true do end end)\n"
                   "return 'escaped'");
}

static void test_timeout_xpcall_handler_started_before(void **state)
{
    /* the handler itself starts looping before the deadline */
    expect_timeout("xpcall(function() error('x') end, function(e) while true do end end)\n"
                   "return 'escaped'");
}

static void test_timeout_in_coroutine_resume(void **state)
{
    expect_timeout("local co = coroutine.create(function() while true do end end)\n"
                   "local ok, e = coroutine.resume(co) return 'escaped ' .. tostring(e)");
}

static void test_timeout_resume_in_pcall_loop(void **state)
{
    expect_timeout("while true do\n"
                   "  local co = coroutine.create(function() while true do end end)\n"
                   "  pcall(coroutine.resume, co)\n"
                   "end");
}

static void test_timeout_in_wrap(void **state)
{
    expect_timeout("local f = coroutine.wrap(function() while true do end end)\n"
                   "while true do pcall(f) end");
}

static void test_timeout_coroutine_created_before(void **state)
{
    expect_timeout("local co = coroutine.create(function() while true do coroutine.yield() end end)\n"
                   "local t0 = os.clock() while os.clock() - t0 < 0.25 do end\n"
                   "while true do pcall(coroutine.resume, co) end");
}

static void test_timeout_nested_coroutines(void **state)
{
    expect_timeout("local inner = coroutine.wrap(function() while true do end end)\n"
                   "local outer = coroutine.create(function() pcall(inner) while true do end end)\n"
                   "while true do pcall(coroutine.resume, outer) end");
}

static void test_timeout_with_position(void **state)
{
    sb_state *s = new_state(0);
    const char *code = "local x = 0\nwhile true do\n  x = x + 1\nend";
    assert_int_equal(luaL_loadbufferx(s->L, code, strlen(code), "@/tmp/pb.lua", "t"), LUA_OK);
    sb_deadline_arm(s, 100, "the playbook's top-level code ran longer than 100ms", 1);
    sb_failure f;
    assert_int_equal(sb_pcall(s, 0, 1, &f), SB_TIMEOUT);
    sb_deadline_disarm(s);
    assert_true(strncmp(f.msg, "/tmp/pb.lua:", 12) == 0);
    assert_non_null(strstr(f.msg, "ran longer than 100ms"));
    sb_failure_free(&f);
    sb_free(s);
}

static void test_memory_table_growth(void **state)
{
    sb_state *s = new_state((size_t)32 << 20);
    sb_failure f;
    assert_int_equal(run(s, "local t = {} for i = 1, 1e9 do t[i] = { i } end", 0, &f), SB_MEMORY);
    assert_string_equal(f.msg, "memory limit of 32 MiB reached");
    sb_failure_free(&f);
    assert_int_equal(run(s, "return #string.rep('y', 1000)", 0, &f), SB_OK);
    assert_int_equal(lua_tointeger(s->L, -1), 1000);
    lua_pop(s->L, 1);
    sb_free(s);
}

static void test_memory_string_rep(void **state)
{
    sb_state *s = new_state((size_t)32 << 20);
    sb_failure f;
    assert_int_equal(run(s, "return string.rep('x', 1 << 40)", 0, &f), SB_MEMORY);
    assert_string_equal(f.msg, "memory limit of 32 MiB reached");
    sb_failure_free(&f);
    assert_int_equal(run(s, "return ('x'):rep(1 << 28)", 0, &f), SB_MEMORY); /* 256 MiB */
    sb_failure_free(&f);
    assert_int_equal(run(s, "local parts = {} for i = 1, 100 do parts[i] = ('z'):rep(1 << 20) end "
                            "return #table.concat(parts)",
                         0, &f),
                     SB_MEMORY);
    sb_failure_free(&f);
    assert_int_equal(run(s, "return ('ab'):rep(3, ',')", 0, &f), SB_OK);
    assert_string_equal(lua_tostring(s->L, -1), "ab,ab,ab");
    lua_pop(s->L, 1);
    sb_free(s);
}

static void test_stack_overflow(void **state)
{
    sb_state *s = new_state(0);
    sb_failure f;
    assert_int_equal(run(s, "local function f(n) return 1 + f(n + 1) end return f(1)", 0, &f), SB_ERROR);
    assert_non_null(strstr(f.msg, "stack overflow"));
    assert_non_null(f.traceback);
    assert_true(strlen(f.traceback) <= SB_MSG_MAX);
    sb_failure_free(&f);
    assert_int_equal(run(s, "local function f() return coroutine.wrap(f)() end return f()", 0, &f),
                     SB_ERROR);
    assert_non_null(strstr(f.msg, "overflow"));
    sb_failure_free(&f);
    sb_free(s);
}

static void test_error_objects(void **state)
{
    sb_state *s = new_state(0);
    sb_failure f;
    assert_int_equal(run(s, "error({ code = 1 })", 0, &f), SB_ERROR);
    assert_string_equal(f.msg, "(error object is a table value)");
    assert_non_null(f.traceback);
    sb_failure_free(&f);
    assert_int_equal(run(s, "error(nil)", 0, &f), SB_ERROR);
    assert_string_equal(f.msg, "(error object is a nil value)");
    sb_failure_free(&f);
    /* from a file: the message says where, as Lua does for a string */
    const char *nil_error = "local x = 1\nerror(nil)";
    assert_int_equal(luaL_loadbufferx(s->L, nil_error, strlen(nil_error), "@pb.lua", "t"), LUA_OK);
    assert_int_equal(sb_pcall(s, 0, 1, &f), SB_ERROR);
    assert_string_equal(f.msg, "pb.lua:2: (error object is a nil value)");
    sb_failure_free(&f);
    assert_int_equal(run(s, "error(setmetatable({}, { __tostring = function() error('boom', 0) end }))",
                         0, &f),
                     SB_ERROR);
    assert_string_equal(f.msg, "(error object is a table value; its __tostring failed: boom)");
    sb_failure_free(&f);
    assert_int_equal(run(s, "error(setmetatable({}, { __tostring = function() return 'custom' end }))",
                         0, &f),
                     SB_ERROR);
    assert_string_equal(f.msg, "custom");
    sb_failure_free(&f);
    assert_int_equal(run(s, "error(setmetatable({}, { __tostring = function() return {} end }))", 0, &f),
                     SB_ERROR);
    assert_non_null(strstr(f.msg, "__tostring failed"));
    sb_failure_free(&f);
    assert_int_equal(run(s, "error(42)", 0, &f), SB_ERROR);
    assert_string_equal(f.msg, "42");
    sb_failure_free(&f);
    assert_int_equal(run(s, "local x = nil; return x.y", 0, &f), SB_ERROR);
    assert_string_equal(f.msg, "test:1: attempt to index a nil value (local 'x')");
    assert_int_equal(f.line, 1);
    sb_failure_free(&f);
    sb_free(s);
}

static void test_error_bounded(void **state)
{
    sb_state *s = new_state(0);
    sb_failure f;
    assert_int_equal(run(s, "error(string.rep('e', 30 * 1024 * 1024))", 0, &f), SB_ERROR);
    assert_true(strlen(f.msg) <= SB_MSG_MAX);
    assert_non_null(strstr(f.msg, "(truncated)"));
    sb_failure_free(&f);
    /* invalid UTF-8 in a message becomes U+FFFD */
    assert_int_equal(run(s, "error('bad \\255 byte', 0)", 0, &f), SB_ERROR);
    assert_true(ut_utf8_valid(f.msg, strlen(f.msg)));
    sb_failure_free(&f);
    sb_free(s);
}

static void test_stack_balanced(void **state)
{
    sb_state *s = new_state(0);
    sb_failure f;
    int top = lua_gettop(s->L);
    assert_int_equal(run(s, "error('x')", 0, &f), SB_ERROR);
    sb_failure_free(&f);
    assert_int_equal(lua_gettop(s->L), top);
    assert_int_equal(run(s, "while true do end", 50, &f), SB_TIMEOUT);
    sb_failure_free(&f);
    assert_int_equal(lua_gettop(s->L), top);
    sb_free(s);
}

static void test_format_ms(void **state)
{
    char b[32];
    sb_format_ms(200, b, sizeof b);
    assert_string_equal(b, "200ms");
    sb_format_ms(2000, b, sizeof b);
    assert_string_equal(b, "2s");
    sb_format_ms(1500, b, sizeof b);
    assert_string_equal(b, "1.5s");
    sb_format_ms(120000, b, sizeof b);
    assert_string_equal(b, "2m");
    sb_format_ms(3600000, b, sizeof b);
    assert_string_equal(b, "1h");
}

/* require under the step's deadline and the state's memory cap; the
 * registry of plugin sources; an empty search path. */
static void test_require_limits(void **state)
{
    char tmp[] = "/tmp/irp-test-sb-XXXXXX";
    assert_non_null(mkdtemp(tmp));
    char *slow = ut_xasprintf("%s/slow.lua", tmp), *fat = ut_xasprintf("%s/fat.lua", tmp),
         *ok = ut_xasprintf("%s/ok.lua", tmp);
    FILE *fp = fopen(slow, "w");
    fputs("while true do end\n", fp);
    fclose(fp);
    fp = fopen(fat, "w");
    fputs("local t = {}\nfor i = 1, 1e9 do t[i] = i end\n", fp);
    fclose(fp);
    fp = fopen(ok, "w");
    fputs("return { v = 1 }\n", fp);
    fclose(fp);

    sb_state *s = new_state((size_t)8 << 20);
    const char *dirs[] = {tmp, NULL};
    assert_int_equal(sb_require_open(s, dirs, 0), 0);
    sb_failure f;
    assert_int_equal(run(s, "return require 'slow'", 200, &f), SB_TIMEOUT);
    sb_failure_free(&f);
    assert_int_equal(run(s, "return require 'fat'", 0, &f), SB_MEMORY);
    sb_failure_free(&f);
    assert_int_equal(run(s, "return require('ok').v", 0, &f), SB_OK);
    assert_int_equal(lua_tointeger(s->L, -1), 1);
    lua_pop(s->L, 1);
    char *src = ut_xasprintf("@%s", ok);
    assert_true(sb_is_plugin_source(s->L, src));
    assert_false(sb_is_plugin_source(s->L, "=test"));
    const char *files[8];
    size_t n = sb_plugin_files(s->L, files, 8);
    assert_int_equal(n, 3);
    assert_string_equal(files[2], ok);
    assert_int_equal(lua_gettop(s->L), 0);
    sb_free(s);

    s = new_state(0);
    assert_int_equal(sb_require_open(s, NULL, 0), 0);
    assert_int_equal(run(s, "return require 'ok'", 0, &f), SB_ERROR);
    assert_non_null(strstr(f.msg, "test:1: require: plugin 'ok' not found; searched:\n\t(the plugin search path is empty)"));
    sb_failure_free(&f);
    sb_free(s);

    remove(slow);
    remove(fat);
    remove(ok);
    rmdir(tmp);
    free(slow);
    free(fat);
    free(ok);
    free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes_absent),
        cmocka_unit_test(test_allowed_present),
        cmocka_unit_test(test_binary_load_refused),
        cmocka_unit_test(test_print_at_load_and_gc),
        cmocka_unit_test(test_timeout_loop),
        cmocka_unit_test(test_timeout_in_pcall),
        cmocka_unit_test(test_timeout_xpcall_looping_handler),
        cmocka_unit_test(test_timeout_xpcall_handler_started_before),
        cmocka_unit_test(test_timeout_in_coroutine_resume),
        cmocka_unit_test(test_timeout_resume_in_pcall_loop),
        cmocka_unit_test(test_timeout_in_wrap),
        cmocka_unit_test(test_timeout_coroutine_created_before),
        cmocka_unit_test(test_timeout_nested_coroutines),
        cmocka_unit_test(test_timeout_with_position),
        cmocka_unit_test(test_memory_table_growth),
        cmocka_unit_test(test_memory_string_rep),
        cmocka_unit_test(test_stack_overflow),
        cmocka_unit_test(test_error_objects),
        cmocka_unit_test(test_error_bounded),
        cmocka_unit_test(test_stack_balanced),
        cmocka_unit_test(test_format_ms),
        cmocka_unit_test(test_require_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
