/*
 * luajson.c — Lua <-> jansson conversion (see include/luajson.h). Tables are
 * walked raw and bounded (depth, bytes, cycles) so a step result can never
 * run playbook code, loop forever or flood the journal.
 * Depends on: Lua 5.4, jansson, ctx.h (cx_secret_name), util.h.
 */
#include "luajson.h"
#include "ctx.h"
#include "util.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    lua_State *L;
    int flags;
    size_t max_bytes;
    size_t bytes;                        /* estimate of the JSON text so far */
    const void *path_tables[LJ_MAX_DEPTH + 1];
    int depth;
    ut_buf path;
    char *err;
} lj_ctx;

json_t *lj_string(const char *s, size_t len)
{
    if (ut_utf8_valid(s, len)) {
        json_t *j = json_stringn(s, len);
        if (j)
            return j;
    }
    size_t n;
    char *clean = ut_utf8_sanitize(s, len, &n);
    json_t *j = json_stringn(clean, n);
    free(clean);
    return j ? j : json_string("");
}

static void fail(lj_ctx *c, const char *what)
{
    if (c->err)
        return;
    const char *verb = (c->flags & LJ_RESULT) ? "cannot be recorded" : "cannot be converted to JSON";
    c->err = ut_xasprintf("%s: %s %s", c->path.data, what, verb);
}

static int is_identifier(const char *s, size_t len)
{
    if (len == 0 || len > 64 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_'))
            return 0;
    }
    return 1;
}

/* Appends the key at the top of the stack to the path. [-0, +0, -] */
static void path_push_key(lj_ctx *c)
{
    lua_State *L = c->L;
    if (lua_type(L, -1) == LUA_TNUMBER && lua_isinteger(L, -1)) {
        ut_buf_printf(&c->path, "[%lld]", (long long)lua_tointeger(L, -1));
    } else if (lua_type(L, -1) == LUA_TSTRING) {
        size_t len;
        const char *k = lua_tolstring(L, -1, &len);
        if (is_identifier(k, len)) {
            ut_buf_append(&c->path, ".", 1);
            ut_buf_append(&c->path, k, len);
        } else {
            json_t *js = lj_string(k, len > 40 ? 40 : len);
            char *q = json_dumps(js, JSON_ENCODE_ANY);
            ut_buf_printf(&c->path, "[%s%s]", q ? q : "\"?\"", len > 40 ? "..." : "");
            free(q);
            json_decref(js);
        }
    } else {
        ut_buf_printf(&c->path, "[%s]", luaL_typename(L, -1));
    }
}

static json_t *convert(lj_ctx *c, int idx);

static int charge(lj_ctx *c, size_t n)
{
    c->bytes += n;
    if (c->bytes > c->max_bytes) {
        if (!c->err) {
            const char *verb = (c->flags & LJ_RESULT) ? "cannot be recorded" : "cannot be converted to JSON";
            size_t cut = c->path.len;
            /* name the root only: the whole value is too big */
            const char *dot = strpbrk(c->path.data, ".[");
            if (dot)
                cut = (size_t)(dot - c->path.data);
            c->err = ut_xasprintf("%.*s: more than %zu KiB of JSON %s", (int)cut, c->path.data,
                                  c->max_bytes >> 10, verb);
        }
        return -1;
    }
    return 0;
}

/* Sort helper for object keys. */
typedef struct {
    char *key;
    size_t len;
    int lua_key_ref; /* index into the key/value staging area */
} key_entry;

static int cmp_keys(const void *a, const void *b)
{
    const key_entry *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int r = memcmp(x->key, y->key, n);
    if (r)
        return r;
    return (x->len > y->len) - (x->len < y->len);
}

static json_t *convert_table(lj_ctx *c, int idx)
{
    lua_State *L = c->L;
    const void *p = lua_topointer(L, idx);
    for (int i = 0; i < c->depth; i++) {
        if (c->path_tables[i] == p) {
            fail(c, "a table that contains itself (a cycle)");
            return NULL;
        }
    }
    if (c->depth >= LJ_MAX_DEPTH) {
        fail(c, "nesting deeper than 64 levels");
        return NULL;
    }
    if (!lua_checkstack(L, 6)) {
        fail(c, "a value nested too deeply for the Lua stack");
        return NULL;
    }
    c->path_tables[c->depth++] = p;

    /* First pass: is it a sequence 1..n, and are the keys acceptable? */
    lua_Integer count = 0;
    int sequence = 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        count++;
        int kt = lua_type(L, -1);
        if (kt == LUA_TNUMBER && lua_isinteger(L, -1)) {
            lua_Integer k = lua_tointeger(L, -1);
            if (k < 1)
                sequence = 0;
        } else if (kt == LUA_TSTRING) {
            sequence = 0;
        } else {
            char what[96];
            snprintf(what, sizeof what, "a table key of type %s (keys must be strings or integers)",
                     kt == LUA_TNUMBER ? "float" : luaL_typename(L, -1));
            fail(c, what);
            lua_pop(L, 1);
            c->depth--;
            return NULL;
        }
    }
    json_t *out;
    size_t saved_len = c->path.len;
    if (sequence && count > 0) {
        /* integer keys >= 1, count of them: exactly 1..count iff max <= count */
        for (lua_Integer i = 1; i <= count; i++) {
            if (lua_rawgeti(L, idx, i) == LUA_TNIL) {
                sequence = 0;
                lua_pop(L, 1);
                break;
            }
            lua_pop(L, 1);
        }
    }
    /* every entry costs at least a separator: refuse huge tables early */
    if (charge(c, (size_t)count + 2) < 0) {
        c->depth--;
        return NULL;
    }
    if (sequence && count > 0) {
        out = json_array();
        for (lua_Integer i = 1; i <= count && !c->err; i++) {
            lua_rawgeti(L, idx, i);
            ut_buf_printf(&c->path, "[%lld]", (long long)i);
            json_t *v = convert(c, lua_gettop(L));
            c->path.len = saved_len;
            c->path.data[saved_len] = '\0';
            lua_pop(L, 1);
            if (!v)
                break;
            json_array_append_new(out, v);
        }
    } else {
        out = json_object();
        /* Collect keys as text, sort them (stable output), then convert. */
        key_entry *keys = count ? calloc((size_t)count, sizeof *keys) : NULL;
        size_t nkeys = 0;
        lua_newtable(L); /* staging: i -> original key */
        int staging = lua_gettop(L);
        lua_pushnil(L);
        while (keys && lua_next(L, idx)) {
            lua_pop(L, 1);
            size_t len;
            if (lua_type(L, -1) == LUA_TSTRING) {
                const char *k = lua_tolstring(L, -1, &len);
                keys[nkeys].key = ut_utf8_sanitize(k, len, &keys[nkeys].len);
            } else {
                keys[nkeys].key = ut_xasprintf("%lld", (long long)lua_tointeger(L, -1));
                keys[nkeys].len = strlen(keys[nkeys].key);
            }
            lua_pushvalue(L, -1);
            lua_rawseti(L, staging, (lua_Integer)nkeys + 1);
            keys[nkeys].lua_key_ref = (int)nkeys + 1;
            nkeys++;
        }
        if (count && !keys)
            fail(c, "a table too large to list");
        if (nkeys)
            qsort(keys, nkeys, sizeof *keys, cmp_keys);
        for (size_t i = 0; i < nkeys; i++) {
            if (c->err)
                break;
            lua_rawgeti(L, staging, keys[i].lua_key_ref); /* key */
            path_push_key(c);
            lua_pushvalue(L, -1);
            lua_rawget(L, idx);                            /* key value */
            if (charge(c, keys[i].len + 3) == 0) {
                json_t *v = convert(c, lua_gettop(L));
                if (v)
                    json_object_setn_new_nocheck(out, keys[i].key, keys[i].len, v);
            }
            c->path.len = saved_len;
            c->path.data[saved_len] = '\0';
            lua_pop(L, 2);
        }
        for (size_t i = 0; i < nkeys; i++)
            free(keys[i].key);
        free(keys);
        lua_pop(L, 1); /* staging */
    }
    c->depth--;
    if (c->err) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static json_t *convert(lj_ctx *c, int idx)
{
    lua_State *L = c->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        charge(c, 4);
        return json_null();
    case LUA_TBOOLEAN:
        charge(c, 5);
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (charge(c, 24) < 0)
            return NULL;
        if (lua_isinteger(L, idx))
            return json_integer((json_int_t)lua_tointeger(L, idx));
        else {
            lua_Number n = lua_tonumber(L, idx);
            if (isnan(n)) {
                fail(c, "NaN (not a number)");
                return NULL;
            }
            if (isinf(n)) {
                fail(c, "an infinite number");
                return NULL;
            }
            return json_real(n);
        }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (charge(c, len + 2) < 0)
            return NULL;
        return lj_string(s, len);
    }
    case LUA_TTABLE:
        return convert_table(c, idx);
    case LUA_TUSERDATA: {
        const char *name = cx_secret_name(L, idx);
        if (name && (c->flags & LJ_NO_SECRETS)) {
            fail(c, "a secret (pass secrets as exec arguments, http headers or the url)");
            return NULL;
        }
        if (name) {
            charge(c, strlen(name) + 16);
            if (c->flags & LJ_SECRET_OBJECT)
                return json_pack("{s:s}", "secret", name);
            char *t = ut_xasprintf("<secret %s>", name);
            json_t *j = lj_string(t, strlen(t));
            free(t);
            return j;
        }
        fail(c, "a userdata value");
        return NULL;
    }
    case LUA_TFUNCTION:
        fail(c, "a function");
        return NULL;
    case LUA_TTHREAD:
        fail(c, "a coroutine");
        return NULL;
    default:
        fail(c, "a light userdata");
        return NULL;
    }
}

json_t *lj_from_lua(lua_State *L, int idx, const char *root, int flags, size_t max_bytes,
                    char **err)
{
    lj_ctx c;
    memset(&c, 0, sizeof c);
    c.L = L;
    c.flags = flags;
    c.max_bytes = max_bytes ? max_bytes : LJ_MAX_BYTES;
    ut_buf_puts(&c.path, root);
    int top = lua_gettop(L);
    json_t *v = convert(&c, lua_absindex(L, idx));
    lua_settop(L, top);
    if (v && !c.err) {
        /* the estimate ignores escapes: check the real size once */
        size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
        if (n > c.max_bytes) {
            c.bytes = c.max_bytes + 1;
            c.path.len = strlen(root);
            c.path.data[c.path.len] = '\0';
            charge(&c, 1);
        }
    }
    if (c.err) {
        json_decref(v);
        v = NULL;
        *err = c.err;
    } else if (!v) {
        *err = ut_xasprintf("%s: cannot be converted to JSON", root);
    }
    ut_buf_free(&c.path);
    return v;
}

void lj_push(lua_State *L, const json_t *v)
{
    luaL_checkstack(L, 3, "JSON value nested too deeply");
    if (!v) {
        lua_pushnil(L);
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        lua_createtable(L, 0, (int)json_object_size(v));
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val) {
            lj_push(L, val);
            lua_setfield(L, -2, key);
        }
        break;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            lj_push(L, json_array_get(v, i));
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(v));
        break;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(v));
        break;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        break;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        break;
    default:
        lua_pushnil(L);
        break;
    }
}
