/*
 * ctx.c — the ctx userdata a step receives: its read-only fields (vars,
 * steps, step, attempt, run_id, drill), ctx.log, ctx.secret handles,
 * ctx.fail error objects, the steps' `print`, and the RPC plumbing the
 * side-effect functions of ctx_calls.c use.
 * Depends on: Lua 5.4, jansson, ctx_internal.h, luajson.h, sandbox.h, util.h.
 */
#include "ctx.h"
#include "probe.h"
#include "ctx_internal.h"
#include "luajson.h"
#include "sandbox.h"
#include "util.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_MSG \
    "a secret cannot be read or concatenated; pass the handle to ctx.exec, ctx.http or ctx.notify"

static const char key_fail_mt = 0;
static const char key_active = 0; /* the ctx of the running step (for print) */

typedef struct {
    cx_env *env; /* NULL once the step ended */
} cx_ud;

/* ------------------------------------------------------------- plumbing */

int cx_raise_owned(lua_State *L, char *msg)
{
    char buf[SB_MSG_MAX + 1];
    snprintf(buf, sizeof buf, "%s", msg ? msg : "error");
    free(msg);
    return luaL_error(L, "%s", buf);
}

static int push_json_protected(lua_State *L)
{
    lj_push(L, lua_touserdata(L, 1));
    return 1;
}

void cx_push_owned(lua_State *L, json_t *v)
{
    lua_pushcfunction(L, push_json_protected);
    lua_pushlightuserdata(L, v);
    int status = lua_pcall(L, 1, 1, 0);
    json_decref(v);
    if (status != LUA_OK)
        lua_error(L);
}

cx_env *cx_env_of(lua_State *L, const char *fname, int side_effect)
{
    cx_ud *u = lua_touserdata(L, lua_upvalueindex(1));
    if (!u || !u->env)
        luaL_error(L, "ctx used after its step ended (ctx.%s)", fname);
    if (lua_gettop(L) >= 1 && lua_rawequal(L, 1, lua_upvalueindex(1)))
        lua_remove(L, 1);
    if (side_effect && !u->env->calls_allowed)
        luaL_error(L, "ctx.%s cannot be used in a when condition (conditions have no side effects)",
                   fname);
    return u->env;
}

json_t *cx_call_json(lua_State *L, cx_env *env, const char *fn, json_t *args)
{
    json_t *value = NULL;
    char *err = NULL;
    if (env->host->call(env->host->ud, fn, args, &value, &err) != 0)
        cx_raise_owned(L, err);
    return value;
}

void cx_call_paused(lua_State *L, cx_env *env, const char *fn, json_t *args)
{
    json_t *value = NULL;
    char *err = NULL;
    int64_t left = sb_deadline_pause();
    int rc = env->host->call(env->host->ud, fn, args, &value, &err);
    sb_deadline_resume(left); /* before raising: the step keeps its deadline */
    if (rc != 0)
        cx_raise_owned(L, err);
    cx_push_owned(L, value);
}

void cx_call(lua_State *L, cx_env *env, const char *fn, json_t *args)
{
    cx_push_owned(L, cx_call_json(L, env, fn, args));
}

int cx_duration(lua_State *L, int idx, int64_t *ms)
{
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_Number n = lua_tonumber(L, idx);
        if (!(n >= 0) || n > 1e12)
            return -1;
        *ms = (int64_t)(n * 1000.0 + 0.5);
        return 0;
    }
    if (lua_type(L, idx) == LUA_TSTRING)
        return ut_parse_duration(lua_tostring(L, idx), ms);
    return -1;
}

/* -------------------------------------------------------------- secrets */

const char *cx_secret_name(lua_State *L, int idx)
{
    return luaL_testudata(L, idx, CX_SECRET_MT);
}

static int secret_misuse(lua_State *L)
{
    return luaL_error(L, SECRET_MSG);
}

static int secret_tostring(lua_State *L)
{
    const char *name = luaL_checkudata(L, 1, CX_SECRET_MT);
    lua_pushfstring(L, "<secret %s>", name);
    return 1;
}

static int valid_secret_name(const char *s, size_t len)
{
    if (len == 0 || len > 128)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

/* ctx.secret(name) -> handle [-1, +1, e] */
static int cx_fn_secret(lua_State *L)
{
    cx_env_of(L, "secret", 0);
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    if (!valid_secret_name(name, len))
        return luaL_error(L, "ctx.secret: \"%s\" is not a secret name (letters, digits, '_', '-', '.')",
                          name);
    char *p = lua_newuserdatauv(L, len + 1, 0);
    memcpy(p, name, len + 1);
    luaL_setmetatable(L, CX_SECRET_MT);
    return 1;
}

/* ----------------------------------------------------------------- fail */

char *cx_fail_reason(lua_State *L, int idx)
{
    if (!lua_istable(L, idx) || !lua_getmetatable(L, idx))
        return NULL;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_fail_mt);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (!same)
        return NULL;
    lua_pushliteral(L, "reason");
    lua_rawget(L, idx < 0 ? idx - 1 : idx);
    size_t len = 0;
    const char *r = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : "failed";
    if (!len)
        r = "failed";
    char *out = sb_bounded_text(r, len ? len : strlen(r), SB_MSG_MAX, NULL);
    lua_pop(L, 1);
    return out;
}

static int fail_tostring(lua_State *L)
{
    lua_pushliteral(L, "reason");
    lua_rawget(L, 1);
    return 1;
}

/* ctx.fail(reason): raises an object sb_pcall reports as kind "fail". */
static int cx_fn_fail(lua_State *L)
{
    cx_env_of(L, "fail", 0);
    if (lua_isnoneornil(L, 1))
        lua_pushliteral(L, "failed");
    else
        luaL_tolstring(L, 1, NULL);
    lua_createtable(L, 0, 1);
    lua_insert(L, -2);
    lua_setfield(L, -2, "reason");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_fail_mt);
    lua_setmetatable(L, -2);
    return lua_error(L);
}

/* ------------------------------------------------------------------ log */

/* Sends a log line; msg is at idx (converted with tostring), fields at
 * fields_idx (0 = none). [-0, +0, e] */
static void send_log(lua_State *L, cx_env *env, const char *text, size_t len, int fields_idx)
{
    int truncated = 0;
    json_t *fields = json_null();
    if (fields_idx && !lua_isnoneornil(L, fields_idx)) {
        char *err = NULL;
        json_decref(fields);
        fields = lj_from_lua(L, fields_idx, "fields", 0, 0, &err);
        if (!fields) {
            char *m = ut_xasprintf("ctx.log: %s", err);
            free(err);
            cx_raise_owned(L, m);
        }
    }
    char *msg = sb_bounded_text(text, len, CX_LOG_MAX, &truncated);
    json_t *args = json_pack("{s:s,s:o,s:b}", "msg", msg, "fields", fields, "truncated", truncated);
    free(msg);
    json_decref(cx_call_json(L, env, "log", args));
}

/* ctx.log(msg [, fields]) */
static int cx_fn_log(lua_State *L)
{
    cx_env *env = cx_env_of(L, "log", 1);
    lua_settop(L, 2);
    size_t len;
    const char *text = luaL_tolstring(L, 1, &len); /* at 3 */
    send_log(L, env, text, len, 2);
    return 0;
}

/* print(...) inside a step: one ctx.log line, values tab-separated. */
static int cx_print(lua_State *L)
{
    int n = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_active);
    cx_ud *u = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!u || !u->env || !u->env->calls_allowed)
        return luaL_error(L, "print is only available inside steps (use ctx.log)");
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        luaL_tolstring(L, i, NULL);
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    send_log(L, u->env, text, len, 0);
    return 0;
}

/* ------------------------------------------------------ the ctx object */

static int readonly_error(lua_State *L)
{
    return luaL_error(L, "%s is read-only", lua_tostring(L, lua_upvalueindex(1)));
}

/* next() that a script cannot replace (pairs over the proxies). */
static int raw_next(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    if (lua_next(L, 1))
        return 2;
    lua_pushnil(L);
    return 1;
}

/* __pairs of a proxy whose data table is upvalue 1. */
static int proxy_pairs(lua_State *L)
{
    lua_pushcfunction(L, raw_next);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushnil(L);
    return 3;
}

static int proxy_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, lua_upvalueindex(1)));
    return 1;
}

/* Wraps the table on top in a read-only proxy named name. [-1, +1, m] */
static void make_proxy(lua_State *L, const char *name)
{
    int data = lua_gettop(L);
    lua_newtable(L); /* proxy */
    lua_createtable(L, 0, 5);
    lua_pushvalue(L, data);
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, name);
    lua_pushcclosure(L, readonly_error, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, data);
    lua_pushcclosure(L, proxy_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushvalue(L, data);
    lua_pushcclosure(L, proxy_len, 1);
    lua_setfield(L, -2, "__len");
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_replace(L, data);
}

/* Pushes {status=, result=} for a recorded step. [-0, +1, m] */
static void push_step_entry(lua_State *L, const char *id, const json_t *st)
{
    lua_createtable(L, 0, 2);
    json_t *status = json_object_get(st, "status");
    if (json_is_string(status)) {
        lua_pushstring(L, json_string_value(status));
        lua_setfield(L, -2, "status");
    }
    lj_push(L, json_object_get(st, "result"));
    lua_setfield(L, -2, "result");
    if (dp_enabled()) { /* irp check --drill: note reads of what is not there */
        char *path = ut_xasprintf("steps.%s", id);
        dp_mark(L, -1, path, id);
        free(path);
    }
}

/* ctx.steps[id]: upvalue 1 the ctx, upvalue 2 a per-step cache, so each
 * step sees its own copies (a step cannot change what the next one sees). */
static int steps_index(lua_State *L)
{
    cx_ud *u = lua_touserdata(L, lua_upvalueindex(1));
    if (!u || !u->env)
        return luaL_error(L, "ctx used after its step ended (ctx.steps)");
    if (lua_type(L, 2) != LUA_TSTRING)
        return 0;
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TNIL)
        return 1;
    const json_t *st = json_object_get(u->env->states, lua_tostring(L, 2));
    if (!st) {
        if (dp_enabled()) {
            char *path = ut_xasprintf("steps.%s", lua_tostring(L, 2));
            lua_Debug ar;
            char where[512] = "";
            if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0)
                snprintf(where, sizeof where, "%s:%d", ar.source[0] == '@' ? ar.source + 1 : ar.short_src,
                         ar.currentline);
            dp_note(path, lua_tostring(L, 2), where[0] ? where : NULL);
            free(path);
        }
        return 0;
    }
    push_step_entry(L, lua_tostring(L, 2), st);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, lua_upvalueindex(2));
    return 1;
}

static int steps_pairs(lua_State *L)
{
    cx_ud *u = lua_touserdata(L, lua_upvalueindex(1));
    if (!u || !u->env)
        return luaL_error(L, "ctx used after its step ended (ctx.steps)");
    lua_pushcfunction(L, raw_next);
    lua_newtable(L);
    const char *id;
    json_t *st;
    json_object_foreach((json_t *)u->env->states, id, st) {
        push_step_entry(L, id, st);
        lua_setfield(L, -2, id);
    }
    lua_pushnil(L);
    return 3;
}

static int ctx_index(lua_State *L)
{
    cx_ud *u = luaL_checkudata(L, 1, CX_CTX_MT);
    if (!u->env)
        return luaL_error(L, "ctx used after its step ended");
    const char *k = lua_tostring(L, 2);
    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "ctx has no field of type %s", luaL_typename(L, 2));
    if (strcmp(k, "step") == 0) {
        lua_pushstring(L, u->env->step);
    } else if (strcmp(k, "attempt") == 0) {
        lua_pushinteger(L, (lua_Integer)u->env->attempt);
    } else if (strcmp(k, "run_id") == 0) {
        lua_pushstring(L, u->env->run_id); /* nil when NULL */
    } else if (strcmp(k, "drill") == 0) {
        lua_pushboolean(L, u->env->drill);
    } else {
        lua_getiuservalue(L, 1, 1);
        lua_pushvalue(L, 2);
        if (lua_rawget(L, -2) == LUA_TNIL) {
            static const char *const names[] = {
                "vars", "steps", "step", "attempt", "run_id", "drill", "log", "exec", "http",
                "notify", "escalate", "ask", "confirm", "sleep", "artifact", "secret", "fail", NULL};
            const char *best = ut_closest(k, names, 3);
            return luaL_error(L, "ctx has no field '%s'%s%s%s", k, best ? " (did you mean '" : "",
                              best ? best : "", best ? "'?)" : "");
        }
    }
    return 1;
}

static int ctx_tostring(lua_State *L)
{
    cx_ud *u = luaL_checkudata(L, 1, CX_CTX_MT);
    if (u->env)
        lua_pushfstring(L, "ctx of step \"%s\"", u->env->step);
    else
        lua_pushliteral(L, "ctx (its step ended)");
    return 1;
}

static int ctx_newindex(lua_State *L)
{
    return luaL_error(L, "ctx is read-only");
}

/* Builds the ctx for the env in arg 1 (lightuserdata). [-1, +1, m] */
static int ctx_create(lua_State *L)
{
    cx_env *env = lua_touserdata(L, 1);
    cx_ud *u = lua_newuserdatauv(L, sizeof *u, 1);
    u->env = env;
    luaL_setmetatable(L, CX_CTX_MT);
    int ud = lua_gettop(L);
    lua_createtable(L, 0, 16);
    int fields = ud + 1;
    static const luaL_Reg fns[] = {
        {"log", cx_fn_log},         {"exec", cx_fn_exec},     {"http", cx_fn_http},
        {"notify", cx_fn_notify},   {"escalate", cx_fn_escalate}, {"ask", cx_fn_ask},
        {"confirm", cx_fn_confirm}, {"sleep", cx_fn_sleep},   {"artifact", cx_fn_artifact},
        {"secret", cx_fn_secret},   {"fail", cx_fn_fail},     {NULL, NULL}};
    for (const luaL_Reg *r = fns; r->name; r++) {
        lua_pushvalue(L, ud);
        lua_pushcclosure(L, r->func, 1);
        lua_setfield(L, fields, r->name);
    }
    /* ctx.vars: strings, read-only */
    lua_newtable(L);
    const char *name;
    json_t *val;
    json_object_foreach((json_t *)env->vars, name, val) {
        if (json_is_string(val)) {
            lua_pushlstring(L, json_string_value(val), json_string_length(val));
            lua_setfield(L, -2, name);
        }
    }
    make_proxy(L, "ctx.vars");
    lua_setfield(L, fields, "vars");
    /* ctx.steps: read-only view of the recorded steps */
    lua_newtable(L);
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, ud);
    lua_newtable(L);
    lua_pushcclosure(L, steps_index, 2);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "ctx.steps");
    lua_pushcclosure(L, readonly_error, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, ud);
    lua_pushcclosure(L, steps_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushliteral(L, "ctx.steps");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_setfield(L, fields, "steps");
    lua_setiuservalue(L, ud, 1);
    lua_pushvalue(L, ud);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_active);
    return 1;
}

int cx_new(lua_State *L, cx_env *env)
{
    lua_pushcfunction(L, ctx_create);
    lua_pushlightuserdata(L, env);
    return lua_pcall(L, 1, 1, 0);
}

void cx_close(lua_State *L, int idx)
{
    cx_ud *u = luaL_testudata(L, idx, CX_CTX_MT);
    if (u)
        u->env = NULL;
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_active);
}

void cx_open(lua_State *L)
{
    static const luaL_Reg ctx_meta[] = {{"__index", ctx_index},
                                        {"__newindex", ctx_newindex},
                                        {"__tostring", ctx_tostring},
                                        {NULL, NULL}};
    luaL_newmetatable(L, CX_CTX_MT);
    luaL_setfuncs(L, ctx_meta, 0);
    lua_pushliteral(L, "ctx");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);

    static const char *const misuse[] = {
        "__index", "__newindex", "__concat", "__len", "__eq", "__lt", "__le", "__call",
        "__add", "__sub", "__mul", "__div", "__mod", "__pow", "__unm", "__idiv",
        "__band", "__bor", "__bxor", "__shl", "__shr", "__bnot", NULL};
    luaL_newmetatable(L, CX_SECRET_MT);
    for (size_t i = 0; misuse[i]; i++) {
        lua_pushcfunction(L, secret_misuse);
        lua_setfield(L, -2, misuse[i]);
    }
    lua_pushcfunction(L, secret_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "secret");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);

    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, fail_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "ctx.fail");
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_fail_mt);

    lua_pushcfunction(L, cx_print);
    lua_setglobal(L, "print");
    sb_set_fail_check(cx_fail_reason);
}
