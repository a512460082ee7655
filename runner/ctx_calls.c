/*
 * ctx_calls.c — the side-effecting ctx functions: exec, http, notify,
 * escalate, ask, confirm, sleep, artifact. Each checks its arguments first
 * (raising freely), then builds the call's JSON (no raising while it owns
 * C memory), sends it through the host and turns the reply into Lua.
 * Secret handles travel as {"secret":NAME}; their values never reach here.
 * Depends on: Lua 5.4, jansson, ctx_internal.h, luajson.h, sandbox.h, util.h.
 */
#include "ctx_internal.h"
#include "luajson.h"
#include "sandbox.h"
#include "util.h"

#include <ctype.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Checks the string keys of the options table at t against allowed
 * (integer keys are the argv). Raises on an unknown one. */
static void check_options(lua_State *L, int t, const char *fname, const char *const *allowed)
{
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            continue;
        const char *k = lua_tostring(L, -1);
        int ok = 0;
        for (size_t i = 0; allowed[i]; i++)
            ok |= strcmp(k, allowed[i]) == 0;
        if (!ok) {
            const char *best = ut_closest(k, allowed, 3);
            luaL_error(L, "ctx.%s: unknown option '%s'%s%s%s", fname, k,
                       best ? " (did you mean '" : "", best ? best : "", best ? "'?)" : "");
        }
    }
}

/* Raw option t[name], checked to be nil or of type want. [-0, +1, e] */
static int opt_push(lua_State *L, int t, const char *name, int want, const char *fname,
                    const char *desc)
{
    if (!t) {
        lua_pushnil(L);
        return LUA_TNIL;
    }
    lua_pushstring(L, name);
    int type = lua_rawget(L, t);
    if (type != LUA_TNIL && type != want)
        luaL_error(L, "ctx.%s: option '%s' must be %s, not %s", fname, name, desc,
                   luaL_typename(L, -1));
    return type;
}

/* A timeout option capped by what is left of the step's deadline:
 * -1 when there is neither. [-0, +0, e] */
static int64_t timeout_option(lua_State *L, int t, const char *fname)
{
    int64_t ms = -1;
    if (t) {
        lua_pushliteral(L, "timeout");
        if (lua_rawget(L, t) != LUA_TNIL && cx_duration(L, -1, &ms) != 0)
            luaL_error(L, "ctx.%s: option 'timeout' must be a duration (\"30s\") or a number of seconds",
                       fname);
        lua_pop(L, 1);
    }
    int64_t left = sb_deadline_left();
    if (left >= 0 && (ms < 0 || ms > left))
        ms = left > 0 ? left : 1;
    return ms;
}

static int is_arg(lua_State *L, int idx)
{
    int t = lua_type(L, idx);
    return t == LUA_TSTRING || t == LUA_TNUMBER || cx_secret_name(L, idx);
}

/* A string the kernel would cut at its first NUL byte (argv, environment,
 * paths): the command would run with another argument than the one asked
 * for, and the journal would show the whole one. */
static int has_nul(lua_State *L, int idx)
{
    size_t len;
    if (lua_type(L, idx) != LUA_TSTRING)
        return 0;
    const char *s = lua_tolstring(L, idx, &len);
    return memchr(s, '\0', len) != NULL;
}

/* JSON of a string/number/secret argument (checked by is_arg). */
static json_t *arg_json(lua_State *L, int idx)
{
    const char *secret = cx_secret_name(L, idx);
    if (secret)
        return json_pack("{s:s}", "secret", secret);
    size_t len;
    lua_pushvalue(L, idx); /* tolstring converts numbers in place */
    const char *s = lua_tolstring(L, -1, &len);
    json_t *j = lj_string(s, len);
    lua_pop(L, 1);
    return j;
}

/* Appends the argument as shown in messages: secrets as <secret NAME>. */
static void show_arg(lua_State *L, int idx, char *shown, size_t size)
{
    size_t used = strlen(shown);
    if (used + 4 >= size)
        return;
    const char *secret = cx_secret_name(L, idx);
    lua_pushvalue(L, idx);
    const char *s = secret ? NULL : lua_tostring(L, -1);
    snprintf(shown + used, size - used, "%s%s%s%s", used ? " " : "", secret ? "<secret " : "",
             secret ? secret : s, secret ? ">" : "");
    lua_pop(L, 1);
    if (strlen(shown) + 1 >= size && size > 4)
        memcpy(shown + size - 4, "...", 4);
}

/* Table of string keys -> string/number/secret values as JSON; raises
 * (before allocating) when a value has another type. [-0, +0, e] */
static void check_string_map(lua_State *L, int t, const char *fname, const char *opt)
{
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "ctx.%s: option '%s' must map names to values, found a key that is %s",
                       fname, opt, luaL_typename(L, -2));
        if (!is_arg(L, -1))
            luaL_error(L, "ctx.%s: %s.%s must be a string, a number or a secret, not %s", fname, opt,
                       lua_tostring(L, -2), luaL_typename(L, -1));
        if (has_nul(L, -2) || has_nul(L, -1))
            luaL_error(L, "ctx.%s: %s entry '%s' contains a NUL byte", fname, opt, lua_tostring(L, -2));
        /* "A=B" as a name would set A, not the variable asked for */
        if (!strcmp(opt, "env") && (!lua_rawlen(L, -2) || strchr(lua_tostring(L, -2), '=')))
            luaL_error(L, "ctx.%s: env name '%s' is not a variable name (empty, or contains '=')", fname,
                       lua_tostring(L, -2));
        lua_pop(L, 1);
    }
}

static json_t *string_map_json(lua_State *L, int t)
{
    json_t *o = json_object();
    lua_pushnil(L);
    while (lua_next(L, t)) {
        json_object_set_new(o, lua_tostring(L, -2), arg_json(L, lua_gettop(L)));
        lua_pop(L, 1);
    }
    return o;
}

/* The last non-empty line of text, at most 300 bytes. */
static void last_line(const char *text, size_t len, char *out, size_t size)
{
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    size_t start = len;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    size_t n = len - start;
    if (n > 300)
        n = 300;
    snprintf(out, size, "%.*s", (int)n, text + start);
}

#define CX_EXEC_MAX_ARGS 4096

/* ctx.exec{ argv..., stdin=, timeout=, env=, cwd=, shell=, check= } or
 * ctx.exec("cmd", "arg", ...) -> {code, stdout, stderr, ...} */
int cx_fn_exec(lua_State *L)
{
    static const char *const options[] = {"stdin", "timeout", "env", "cwd", "shell", "check", NULL};
    cx_env *env = cx_env_of(L, "exec", 1);
    int t = lua_type(L, 1) == LUA_TTABLE ? 1 : 0;
    int n = t ? (int)lua_rawlen(L, 1) : lua_gettop(L);
    if (n == 0)
        return luaL_error(L, "ctx.exec needs a command: ctx.exec{ \"cmd\", \"arg\", ... }");
    if (t)
        check_options(L, t, "exec", options);
    if (n > CX_EXEC_MAX_ARGS)
        return luaL_error(L, "ctx.exec: %d arguments; at most %d", n, CX_EXEC_MAX_ARGS);
    /* each argument is pushed, then the options: a C function is only
     * promised LUA_MINSTACK (20) free slots */
    luaL_checkstack(L, n + 16, "ctx.exec: too many arguments");
    int base = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        if (t)
            lua_rawgeti(L, t, i);
        else
            lua_pushvalue(L, i);
        if (!is_arg(L, -1))
            return luaL_error(L, "ctx.exec: argument %d must be a string, a number or a secret, not %s",
                              i, luaL_typename(L, -1));
        if (has_nul(L, -1))
            return luaL_error(L, "ctx.exec: argument %d contains a NUL byte", i);
    }
    int argv0 = base + 1;
    int stdin_t = LUA_TNIL; /* a string, or a secret handle */
    if (t) {
        lua_pushliteral(L, "stdin");
        stdin_t = lua_rawget(L, t);
    } else {
        lua_pushnil(L);
    }
    if (stdin_t != LUA_TNIL && stdin_t != LUA_TSTRING && !cx_secret_name(L, -1))
        return luaL_error(L, "ctx.exec: option 'stdin' must be a string or a secret, not %s",
                          luaL_typename(L, -1));
    int env_t = opt_push(L, t, "env", LUA_TTABLE, "exec", "a table");
    if (env_t == LUA_TTABLE)
        check_string_map(L, lua_gettop(L), "exec", "env");
    int cwd_t = opt_push(L, t, "cwd", LUA_TSTRING, "exec", "a string");
    if (has_nul(L, -1))
        return luaL_error(L, "ctx.exec: option 'cwd' contains a NUL byte");
    int shell_t = opt_push(L, t, "shell", LUA_TBOOLEAN, "exec", "a boolean");
    int check_t = opt_push(L, t, "check", LUA_TBOOLEAN, "exec", "a boolean");
    int opt0 = argv0 + n; /* stdin, env, cwd, shell, check */
    int64_t timeout = timeout_option(L, t, "exec");
    int check = check_t == LUA_TNIL || lua_toboolean(L, opt0 + 4);

    /* from here on nothing raises until the reply is checked */
    char shown[200] = "";
    json_t *argv = json_array();
    for (int i = 0; i < n; i++) {
        json_array_append_new(argv, arg_json(L, argv0 + i));
        show_arg(L, argv0 + i, shown, sizeof shown);
    }
    json_t *args = json_object();
    json_object_set_new(args, "argv", argv);
    if (stdin_t == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, opt0, &len);
        json_object_set_new(args, "stdin", lj_string(s, len));
    } else if (stdin_t != LUA_TNIL) { /* a secret: the supervisor writes its value */
        json_object_set_new(args, "stdin", arg_json(L, opt0));
    } else {
        json_object_set_new(args, "stdin", json_null());
    }
    json_object_set_new(args, "timeout_ms", timeout >= 0 ? json_integer(timeout) : json_null());
    json_object_set_new(args, "env", env_t == LUA_TTABLE ? string_map_json(L, opt0 + 1) : json_null());
    json_object_set_new(args, "cwd",
                        cwd_t == LUA_TSTRING ? lj_string(lua_tostring(L, opt0 + 2),
                                                         strlen(lua_tostring(L, opt0 + 2)))
                                             : json_null());
    json_object_set_new(args, "shell", json_boolean(shell_t == LUA_TBOOLEAN && lua_toboolean(L, opt0 + 3)));

    json_t *value = cx_call_json(L, env, "exec", args);
    if (check && json_is_object(value)) {
        char msg[700] = "";
        json_t *code = json_object_get(value, "code");
        json_t *sig = json_object_get(value, "signal");
        if (json_is_true(json_object_get(value, "timed_out"))) {
            char d[32] = "its timeout";
            if (timeout >= 0)
                sb_format_ms(timeout, d, sizeof d);
            snprintf(msg, sizeof msg, "exec '%s' timed out after %s", shown, d);
        } else if (json_is_integer(sig) && json_integer_value(sig) != 0) {
            snprintf(msg, sizeof msg, "exec '%s' was killed by signal %lld", shown,
                     (long long)json_integer_value(sig));
        } else if (json_is_integer(code) && json_integer_value(code) != 0) {
            json_t *err = json_object_get(value, "stderr");
            char line[320] = "";
            if (json_is_string(err))
                last_line(json_string_value(err), json_string_length(err), line, sizeof line);
            snprintf(msg, sizeof msg, "exec '%s' exited with code %lld%s%s", shown,
                     (long long)json_integer_value(code), line[0] ? ": " : "", line);
        }
        if (msg[0]) {
            json_decref(value);
            return luaL_error(L, "%s", msg);
        }
    }
    cx_push_owned(L, value);
    return 1;
}

/* ctx.http{ method=, url=, headers=, body= | json=, timeout= } */
int cx_fn_http(lua_State *L)
{
    static const char *const options[] = {"method", "url", "headers", "body", "json", "timeout", NULL};
    cx_env *env = cx_env_of(L, "http", 1);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    check_options(L, 1, "http", options);
    int method_t = opt_push(L, 1, "method", LUA_TSTRING, "http", "a string");   /* 2 */
    lua_pushliteral(L, "url");                                                 /* 3 */
    lua_rawget(L, 1);
    if (!(lua_type(L, 3) == LUA_TSTRING || cx_secret_name(L, 3)))
        return luaL_error(L, "ctx.http: option 'url' must be a string or a secret, not %s",
                          luaL_typename(L, 3));
    int headers_t = opt_push(L, 1, "headers", LUA_TTABLE, "http", "a table");  /* 4 */
    if (headers_t == LUA_TTABLE)
        check_string_map(L, 4, "http", "headers");
    int body_t = opt_push(L, 1, "body", LUA_TSTRING, "http", "a string");       /* 5 */
    lua_pushliteral(L, "json");                                                 /* 6 */
    int json_t_ = lua_rawget(L, 1);
    if (body_t != LUA_TNIL && json_t_ != LUA_TNIL)
        return luaL_error(L, "ctx.http: give either 'body' or 'json', not both");
    int64_t timeout = timeout_option(L, 1, "http");
    json_t *body = json_null();
    int has_ct = 0;
    if (json_t_ != LUA_TNIL) {
        char *err = NULL;
        json_t *j = lj_from_lua(L, 6, "json", LJ_NO_SECRETS, 0, &err);
        if (!j) {
            char msg[600];
            snprintf(msg, sizeof msg, "ctx.http: %s", err);
            free(err);
            return luaL_error(L, "%s", msg);
        }
        char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(j);
        body = json_string(text ? text : "null");
        free(text);
    } else if (body_t == LUA_TSTRING) {
        size_t len;
        const char *b = lua_tolstring(L, 5, &len);
        body = lj_string(b, len);
    }
    /* nothing raises from here until the call */
    char method[16] = "GET";
    if (method_t == LUA_TSTRING) {
        snprintf(method, sizeof method, "%s", lua_tostring(L, 2));
        for (char *p = method; *p; p++)
            *p = (char)toupper((unsigned char)*p);
    } else if (!json_is_null(body)) {
        snprintf(method, sizeof method, "POST");
    }
    json_t *headers = headers_t == LUA_TTABLE ? string_map_json(L, 4) : json_object();
    const char *hk;
    json_t *hv;
    json_object_foreach(headers, hk, hv) has_ct |= strcasecmp(hk, "content-type") == 0;
    if (json_t_ != LUA_TNIL && !has_ct)
        json_object_set_new(headers, "Content-Type", json_string("application/json"));
    json_t *args = json_object();
    json_object_set_new(args, "method", json_string(method));
    json_object_set_new(args, "url", arg_json(L, 3));
    json_object_set_new(args, "headers", headers);
    json_object_set_new(args, "body", body);
    json_object_set_new(args, "timeout_ms", timeout >= 0 ? json_integer(timeout) : json_null());
    cx_call(L, env, "http", args);
    return 1;
}

/* ctx.notify(target, msg [, fields]) */
int cx_fn_notify(lua_State *L)
{
    cx_env *env = cx_env_of(L, "notify", 1);
    lua_settop(L, 3);
    const char *target = luaL_checkstring(L, 1);
    if (lua_isnil(L, 2))
        return luaL_error(L, "ctx.notify needs a message: ctx.notify(\"slack-ir\", \"text\")");
    size_t len;
    const char *msg = luaL_tolstring(L, 2, &len); /* at 4 */
    json_t *fields = json_null();
    if (!lua_isnil(L, 3)) {
        char *err = NULL;
        fields = lj_from_lua(L, 3, "fields", 0, 0, &err);
        if (!fields) {
            char m[600];
            snprintf(m, sizeof m, "ctx.notify: %s", err);
            free(err);
            return luaL_error(L, "%s", m);
        }
    }
    char *text = sb_bounded_text(msg, len, CX_LOG_MAX, NULL);
    json_t *args = json_pack("{s:o,s:s,s:o}", "target", lj_string(target, strlen(target)), "msg",
                             text, "fields", fields);
    free(text);
    json_decref(cx_call_json(L, env, "notify", args));
    return 0;
}

/* Pushes field key of the reply value on top (replacing it). */
static void pick(lua_State *L, const char *key)
{
    if (lua_istable(L, -1)) {
        lua_pushstring(L, key);
        lua_rawget(L, -2);
        lua_remove(L, -2);
    }
}

/* ctx.escalate(reason) -> tier number */
int cx_fn_escalate(lua_State *L)
{
    cx_env *env = cx_env_of(L, "escalate", 1);
    lua_settop(L, 1);
    size_t len = 0;
    const char *reason = lua_isnil(L, 1) ? "" : luaL_tolstring(L, 1, &len);
    char *text = sb_bounded_text(reason, len, CX_LOG_MAX, NULL);
    json_t *args = json_pack("{s:s}", "reason", text);
    free(text);
    cx_call(L, env, "escalate", args);
    pick(L, "tier");
    return 1;
}

/* ctx.ask(question [, choices]) -> answer */
int cx_fn_ask(lua_State *L)
{
    cx_env *env = cx_env_of(L, "ask", 1);
    lua_settop(L, 2);
    const char *q = luaL_checkstring(L, 1);
    int n = 0;
    if (!lua_isnil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        n = (int)lua_rawlen(L, 2);
        for (int i = 1; i <= n; i++) {
            if (lua_rawgeti(L, 2, i) != LUA_TSTRING && !lua_isnumber(L, -1))
                return luaL_error(L, "ctx.ask: choice %d must be a string, not %s", i,
                                  luaL_typename(L, -1));
            lua_pop(L, 1);
        }
    }
    json_t *choices = json_array();
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);
        json_array_append_new(choices, arg_json(L, lua_gettop(L)));
        lua_pop(L, 1);
    }
    json_t *args = json_pack("{s:o,s:o}", "question", lj_string(q, strlen(q)), "choices", choices);
    cx_call_paused(L, env, "ask", args);
    pick(L, "answer");
    return 1;
}

/* ctx.confirm(question) -> boolean */
int cx_fn_confirm(lua_State *L)
{
    cx_env *env = cx_env_of(L, "confirm", 1);
    const char *q = luaL_checkstring(L, 1);
    cx_call_paused(L, env, "confirm", json_pack("{s:o}", "question", lj_string(q, strlen(q))));
    pick(L, "answer");
    lua_pushboolean(L, lua_toboolean(L, -1));
    return 1;
}

/* ctx.sleep(d): seconds or a duration string */
int cx_fn_sleep(lua_State *L)
{
    cx_env *env = cx_env_of(L, "sleep", 1);
    int64_t ms;
    if (cx_duration(L, 1, &ms) != 0) {
        if (lua_type(L, 1) == LUA_TSTRING)
            return luaL_error(L, "ctx.sleep: \"%s\" is not a duration (such as \"500ms\", \"2s\", \"1h30m\")",
                              lua_tostring(L, 1));
        if (lua_type(L, 1) == LUA_TNUMBER) {
            char n[32]; /* lua_pushfstring has no %g */
            snprintf(n, sizeof n, "%g", (double)lua_tonumber(L, 1));
            return luaL_error(L, "ctx.sleep: %s is not a number of seconds from 0 to 1e12", n);
        }
        return luaL_error(L, "ctx.sleep needs a duration (\"500ms\", \"2s\") or a number of seconds, not %s",
                          luaL_typename(L, 1));
    }
    /* No point sleeping past the deadline: the step ends there. (A drill's
     * sleep is on the faster drill clock: the supervisor caps it.) */
    int64_t left = sb_deadline_left();
    if (!env->drill && left >= 0 && ms > left + 50)
        ms = left + 50;
    json_decref(cx_call_json(L, env, "sleep", json_pack("{s:I}", "ms", (json_int_t)ms)));
    return 0;
}

/* ctx.artifact(name, data) -> {sha256=, path=}; data a string or a table
 * (stored as JSON). */
int cx_fn_artifact(lua_State *L)
{
    cx_env *env = cx_env_of(L, "artifact", 1);
    lua_settop(L, 2);
    const char *name = luaL_checkstring(L, 1);
    json_t *data;
    if (lua_type(L, 2) == LUA_TSTRING) {
        size_t len;
        const char *d = lua_tolstring(L, 2, &len);
        data = lj_string(d, len);
    } else if (lua_type(L, 2) == LUA_TTABLE) {
        char *err = NULL;
        json_t *j = lj_from_lua(L, 2, "data", 0, (size_t)32 << 20, &err);
        if (!j) {
            char m[600];
            snprintf(m, sizeof m, "ctx.artifact: %s", err);
            free(err);
            return luaL_error(L, "%s", m);
        }
        char *text = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
        json_decref(j);
        data = json_string(text ? text : "");
        free(text);
    } else {
        return luaL_error(L, "ctx.artifact: data must be a string or a table, not %s",
                          luaL_typename(L, 2));
    }
    json_t *args = json_pack("{s:o,s:o}", "name", lj_string(name, strlen(name)), "data", data);
    cx_call(L, env, "artifact", args);
    return 1;
}
