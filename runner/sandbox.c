/*
 * sandbox.c — the worker's Lua state (see include/sandbox.h): a counting
 * allocator with a cap, the allow-listed globals, safe coroutine.resume/wrap,
 * text-only load, and the protected-call helper with a traceback handler.
 * The soft deadline lives in sandbox_deadline.c.
 * Depends on: Lua 5.4 (lua, lauxlib, lualib), util.h.
 */
#include "sandbox.h"
#include "sandbox_internal.h"
#include "util.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fixed registry keys: the addresses are unique, strings could collide. */
static const char key_traceback = 0;
static const char key_where_src = 0;
static const char key_where_line = 0;

static sb_fail_check_fn fail_check;

void sb_set_fail_check(sb_fail_check_fn cb)
{
    fail_check = cb;
}

/* ---------------------------------------------------------------- memory */

/* lua_Alloc with a cap. Lua retries a failed allocation after an emergency
 * collection, so refusing here is safe; mem_hit lets the error say why. */
static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    sb_state *s = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        s->used -= old;
        return NULL;
    }
    if (nsize > old && (nsize - old > s->limit || s->used + (nsize - old) > s->limit)) {
        s->mem_hit = 1;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (!p) {
        s->mem_hit = 1;
        return NULL;
    }
    s->used = s->used - old + nsize;
    if (s->used > s->peak)
        s->peak = s->used;
    return p;
}

static int sb_panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "irp worker: unprotected Lua error: %s\n", msg ? msg : "(not a string)");
    return 0; /* Lua aborts after this */
}

/* ------------------------------------------------------------ coroutines */

/* Moves narg values to co and resumes it with the deadline's current-thread
 * pointer on co, so the timer's hook lands on the thread actually running.
 * Returns the number of results moved onto L, or -1 with the error on top. */
static int safe_resume(lua_State *L, lua_State *co, int narg)
{
    int nres;
    if (!lua_checkstack(co, narg)) {
        lua_pushliteral(L, "too many arguments to resume");
        return -1;
    }
    if (sb_deadline_expired())
        sb_raise_timeout(L, 1);
    lua_xmove(L, co, narg);
    sb_deadline_enter(co);
    int status = lua_resume(co, L, narg, &nres);
    sb_deadline_leave(L);
    if (sb_deadline_expired()) {
        /* The coroutine died (or yielded) past the deadline: the caller must
         * not go on either, whatever it does with resume's results. */
        lua_settop(co, 0);
        sb_raise_timeout(L, 1);
    }
    if (status == LUA_OK || status == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            lua_pushliteral(L, "too many results to resume");
            return -1;
        }
        lua_xmove(co, L, nres);
        return nres;
    }
    lua_xmove(co, L, 1);
    return -1;
}

/* coroutine.resume(co, ...) [-(n), +(r), e] */
static int sb_co_resume(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "coroutine");
    int r = safe_resume(L, co, lua_gettop(L) - 1);
    if (r < 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -(r + 1));
    return r + 1;
}

/* The function coroutine.wrap returns; upvalue 1 is the coroutine. */
static int sb_co_wrapped(lua_State *L)
{
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    int r = safe_resume(L, co, lua_gettop(L));
    if (r < 0) {
        int stat = lua_status(co);
        if (stat != LUA_OK && stat != LUA_YIELD) {
#if LUA_VERSION_RELEASE_NUM >= 50406
            lua_closethread(co, L);
#else
            lua_resetthread(co);
#endif
            lua_xmove(co, L, 1);
        }
        if (lua_type(L, -1) == LUA_TSTRING) {
            luaL_where(L, 1);
            lua_insert(L, -2);
            lua_concat(L, 2);
        }
        return lua_error(L);
    }
    return r;
}

/* coroutine.wrap(f) [-1, +1, m] */
static int sb_co_wrap(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_pushcclosure(L, sb_co_wrapped, 1);
    return 1;
}

/* ------------------------------------------------------ base replacements */

/* load(chunk [, chunkname [, mode [, env]]]): text only (a binary chunk
 * gives nil and a clear reason); the default env is the sandbox globals.
 * Upvalue 1 is the original load. */
static int sb_load(lua_State *L)
{
    int n = lua_gettop(L);
    if (lua_type(L, 1) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, 1, &len);
        if (len > 0 && s[0] == LUA_SIGNATURE[0]) {
            /* like any load failure: nil and the reason, not a raise */
            lua_pushnil(L);
            lua_pushliteral(L, "load: binary chunks are not allowed in playbooks");
            return 2;
        }
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    if (n >= 2)
        lua_pushvalue(L, 2);
    else
        lua_pushnil(L);
    lua_pushliteral(L, "t");
    if (n >= 4) {
        lua_pushvalue(L, 4);
        lua_call(L, 4, LUA_MULTRET);
    } else {
        lua_call(L, 3, LUA_MULTRET);
    }
    return lua_gettop(L) - n;
}

/* string.rep that fails like an allocation when the result cannot fit in
 * what is left of the memory cap: Lua's own check only stops results past
 * INT_MAX ("resulting string too large"). Upvalue 1: the original. */
static int sb_str_rep(lua_State *L)
{
    size_t l, lsep = 0;
    luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    void *ud = NULL;
    lua_getallocf(L, &ud);
    sb_state *s = ud;
    if (n > 0 && l + lsep == 0) {
        /* Lua would loop n times copying nothing, out of the hook's reach */
        lua_pushliteral(L, "");
        return 1;
    }
    if (n > 0 && s && (double)(l + lsep) * (double)n > (double)(s->limit - s->used)) {
        s->mem_hit = 1;
        lua_pushliteral(L, "not enough memory");
        return lua_error(L);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* setmetatable without __gc: a finalizer would run playbook code at a
 * moment no deadline covers (between requests). Upvalue 1: the original. */
static int sb_setmetatable(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: __gc metamethods are not allowed in playbooks");
        lua_pop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* The message handler xpcall really installs (upvalue 1: the script's).
 * Once the deadline has passed the script's handler is skipped: the
 * timeout may have been raised from inside the hook, where Lua runs
 * handlers with hooks off, so a looping handler would never be stopped. */
static int sb_xpcall_handler(lua_State *L)
{
    if (sb_deadline_expired())
        return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int sb_finish_pcall(lua_State *L, int status, lua_KContext extra)
{
    if (status != LUA_OK && status != LUA_YIELD) {
        lua_pushboolean(L, 0);
        lua_pushvalue(L, -2);
        return 2;
    }
    return lua_gettop(L) - (int)extra;
}

/* xpcall(f, handler, ...) as lbaselib's, with the handler wrapped. */
static int sb_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, sb_xpcall_handler, 1);
    lua_replace(L, 2);
    lua_pushboolean(L, 1);
    lua_pushvalue(L, 1);
    lua_rotate(L, 3, 2);
    int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, sb_finish_pcall);
    return sb_finish_pcall(L, status, 2);
}

static const char *const base_allowed[] = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget", "rawlen",
    "rawset", "select", "getmetatable", "tonumber", "tostring", "type", "_VERSION",
    NULL};

/* Copies the named fields of the table at from into the table at to. */
static void copy_fields(lua_State *L, int from, int to, const char *const *names)
{
    for (size_t i = 0; names[i]; i++) {
        lua_getfield(L, from, names[i]);
        lua_setfield(L, to, names[i]);
    }
}

/* Builds the sandbox globals (runs under lua_pcall, so a memory error while
 * preparing is a message, not an abort). [-0, +0, m] */
static int sb_setup(lua_State *L)
{
    luaL_requiref(L, LUA_GNAME, luaopen_base, 0);      /* 1: full base */
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 0); /* 2 */
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 0);  /* 3 */
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 0);  /* 4 */
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 0);  /* 5 */
    luaL_requiref(L, LUA_COLIBNAME, luaopen_coroutine, 0); /* 6 */
    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);      /* 7 */

    /* string.dump leaks bytecode (and ("").dump reaches the real table). */
    lua_pushnil(L);
    lua_setfield(L, 2, "dump");
    lua_getfield(L, 2, "rep");
    lua_pushcclosure(L, sb_str_rep, 1);
    lua_setfield(L, 2, "rep");

    lua_newtable(L); /* 8: the sandbox globals */
    copy_fields(L, 1, 8, base_allowed);
    lua_getfield(L, 1, "load");
    lua_pushcclosure(L, sb_load, 1);
    lua_setfield(L, 8, "load");
    lua_pushcfunction(L, sb_xpcall);
    lua_setfield(L, 8, "xpcall");
    lua_getfield(L, 1, "setmetatable");
    lua_pushcclosure(L, sb_setmetatable, 1);
    lua_setfield(L, 8, "setmetatable");
    lua_pushvalue(L, 2);
    lua_setfield(L, 8, "string");
    lua_pushvalue(L, 3);
    lua_setfield(L, 8, "table");
    lua_pushvalue(L, 4);
    lua_setfield(L, 8, "math");
    lua_pushvalue(L, 5);
    lua_setfield(L, 8, "utf8");

    static const char *const co_allowed[] = {"create", "close", "isyieldable", "running",
                                             "status", "yield", NULL};
    lua_newtable(L);
    copy_fields(L, 6, lua_gettop(L), co_allowed);
    lua_pushcfunction(L, sb_co_resume);
    lua_setfield(L, -2, "resume");
    lua_pushcfunction(L, sb_co_wrap);
    lua_setfield(L, -2, "wrap");
    lua_setfield(L, 8, "coroutine");

    static const char *const os_allowed[] = {"time", "clock", "date", "difftime", NULL};
    lua_newtable(L);
    copy_fields(L, 7, lua_gettop(L), os_allowed);
    lua_setfield(L, 8, "os");

    /* `require` is added by sb_require_open (sandbox_require.c) once the
     * load request's plugin directories are known. Deliberately no package
     * library: it would expose loadlib and the C searchers. */

    lua_pushvalue(L, 8);
    lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    return 0;
}

sb_state *sb_new(size_t limit, const char **err)
{
    sb_state *s = calloc(1, sizeof *s);
    if (!s) {
        *err = "out of memory creating the Lua state";
        return NULL;
    }
    s->limit = limit ? limit : SB_DEFAULT_MEMORY;
    s->L = lua_newstate(sb_alloc, s);
    if (!s->L) {
        free(s);
        *err = "cannot create the Lua state (memory limit too small?)";
        return NULL;
    }
    lua_atpanic(s->L, sb_panic);
    lua_pushcfunction(s->L, sb_setup);
    if (lua_pcall(s->L, 0, 0, 0) != LUA_OK) {
        lua_close(s->L);
        free(s);
        *err = "cannot set up the Lua sandbox (memory limit too small?)";
        return NULL;
    }
    sb_deadline_enter(s->L);
    return s;
}

void sb_free(sb_state *s)
{
    if (!s)
        return;
    sb_deadline_disarm(s);
    sb_deadline_enter(NULL);
    lua_close(s->L);
    free(s);
}

/* ----------------------------------------------------- errors and pcall */

void sb_failure_free(sb_failure *f)
{
    free(f->msg);
    free(f->traceback);
    free(f->file);
    memset(f, 0, sizeof *f);
}

char *sb_bounded_text(const char *s, size_t len, size_t max, int *truncated)
{
    int cut = 0;
    if (len > max) {
        len = ut_utf8_cut(s, len, max);
        cut = 1;
    }
    if (truncated)
        *truncated = cut;
    return ut_utf8_sanitize(s, len, NULL);
}

/* Appends a visible mark to text cut by sb_bounded_text. */
static char *bounded_with_mark(const char *s, size_t len, size_t max)
{
    int cut;
    char *t = sb_bounded_text(s, len, max - 16, &cut);
    if (!cut)
        return t;
    char *r = ut_xasprintf("%s... (truncated)", t);
    free(t);
    return r;
}

/* Calls __tostring of its argument. [-1, +1, e] */
static int tostring_meta(lua_State *L)
{
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
        return 1;
    return luaL_error(L, "'__tostring' must return a string");
}

char *sb_error_text(sb_state *s, int idx)
{
    lua_State *L = s->L;
    idx = lua_absindex(L, idx);
    if (!lua_checkstack(L, 4))
        return ut_xstrdup("(error object could not be converted: Lua stack full)");
    int t = lua_type(L, idx);
    if (t == LUA_TSTRING || t == LUA_TNUMBER) {
        size_t len;
        lua_pushvalue(L, idx); /* a copy: tolstring converts numbers in place */
        const char *m = lua_tolstring(L, -1, &len);
        char *r = bounded_with_mark(m, len, SB_MSG_MAX);
        lua_pop(L, 1);
        return r;
    }
    const char *tname = luaL_typename(L, idx);
    if (luaL_getmetafield(L, idx, "__tostring") == LUA_TNIL)
        return ut_xasprintf("(error object is a %s value)", tname);
    lua_pop(L, 1);
    lua_pushcfunction(L, tostring_meta);
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
        size_t len;
        const char *m = lua_tolstring(L, -1, &len);
        char *r = bounded_with_mark(m, len, SB_MSG_MAX);
        lua_pop(L, 1);
        return r;
    }
    char *inner;
    if (lua_type(L, -1) == LUA_TSTRING) {
        size_t len;
        const char *m = lua_tolstring(L, -1, &len);
        inner = bounded_with_mark(m, len, SB_MSG_MAX / 2);
    } else {
        inner = ut_xasprintf("(a %s value)", luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    char *r = ut_xasprintf("(error object is a %s value; its __tostring failed: %s)", tname, inner);
    free(inner);
    return r;
}

/* Message handler: records a traceback and the innermost Lua position in
 * the registry and returns the error object unchanged, so the caller can
 * still recognise ctx.fail objects. No playbook code runs here.
 * [-1, +1, m] */
static int sb_msghandler(lua_State *L)
{
    luaL_traceback(L, L, NULL, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_traceback);
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sl", &ar))
            break;
        if (ar.currentline > 0) {
            lua_pushstring(L, ar.source);
            lua_rawsetp(L, LUA_REGISTRYINDEX, &key_where_src);
            lua_pushinteger(L, ar.currentline);
            lua_rawsetp(L, LUA_REGISTRYINDEX, &key_where_line);
            break;
        }
    }
    lua_settop(L, 1);
    return 1;
}

static void clear_slots(lua_State *L)
{
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_traceback);
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_where_src);
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_where_line);
}

/* Fills traceback/file/line from the handler's registry slots. [-0,+0,-] */
static void take_slots(lua_State *L, sb_failure *f)
{
    size_t len;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key_traceback) == LUA_TSTRING) {
        const char *tb = lua_tolstring(L, -1, &len);
        f->traceback = bounded_with_mark(tb, len, SB_MSG_MAX);
    }
    lua_pop(L, 1);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key_where_src) == LUA_TSTRING) {
        const char *src = lua_tolstring(L, -1, &len);
        if (src[0] == '@')
            f->file = ut_xstrdup(src + 1);
    }
    lua_pop(L, 1);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key_where_line) == LUA_TNUMBER)
        f->line = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
}

static char *memory_message(const sb_state *s)
{
    size_t mib = s->limit >> 20;
    if (mib << 20 == s->limit)
        return ut_xasprintf("memory limit of %zu MiB reached", mib);
    return ut_xasprintf("memory limit of %zu bytes reached", s->limit);
}

int sb_pcall(sb_state *s, int nargs, int nresults, sb_failure *f)
{
    lua_State *L = s->L;
    memset(f, 0, sizeof *f);
    int base = lua_gettop(L) - nargs; /* the function's index */
    lua_pushcfunction(L, sb_msghandler);
    lua_insert(L, base);
    clear_slots(L);
    s->mem_hit = 0;
    int status = lua_pcall(L, nargs, nresults, base);
    if (status == LUA_OK) {
        lua_remove(L, base);
        return SB_OK;
    }
    /* error object at the top, handler below it */
    int is_memmsg = 0;
    if (lua_type(L, -1) == LUA_TSTRING) {
        const char *m = lua_tostring(L, -1);
        is_memmsg = strcmp(m, "not enough memory") == 0 ||
                    strcmp(m, "error in error handling") == 0;
    }
    if (status == LUA_ERRMEM || (s->mem_hit && is_memmsg)) {
        f->kind = SB_MEMORY;
        lua_settop(L, base - 1);
        /* Free what the failed code built before anything else allocates. */
        lua_gc(L, LUA_GCCOLLECT);
        take_slots(L, f);
        clear_slots(L);
        f->msg = memory_message(s);
        s->mem_hit = 0;
        return SB_MEMORY;
    }
    take_slots(L, f);
    char *reason = NULL;
    if (sb_deadline_expired()) {
        f->kind = SB_TIMEOUT;
        f->msg = sb_deadline_message(L, -1);
    } else if (fail_check && (reason = fail_check(L, -1)) != NULL) {
        f->kind = SB_FAIL;
        f->msg = reason;
    } else {
        f->kind = SB_ERROR;
        f->msg = sb_error_text(s, -1);
        /* error(nil) or error({...}): Lua adds no position to a value that
         * is not a string, so the message says where it was raised. */
        int t = lua_type(L, -1);
        if (t != LUA_TSTRING && t != LUA_TNUMBER && f->file && f->line > 0) {
            char *where = ut_xasprintf("%s:%d: %s", f->file, f->line, f->msg);
            free(f->msg);
            f->msg = where;
        }
    }
    lua_settop(L, base - 1);
    clear_slots(L);
    return f->kind;
}
