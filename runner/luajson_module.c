/*
 * luajson_module.c — the built-in `json` module plugins and playbooks get
 * with require "json": json.decode(text) and json.encode(value), on top of
 * jansson and the converters of luajson.c (no hand-written JSON).
 * Depends on: Lua 5.4, jansson, luajson.h.
 */
#include "luajson.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

/* [-1, +1, m]: pushes the json_t the light userdata points at. */
static int push_protected(lua_State *L)
{
    const json_t *v = lua_touserdata(L, 1);
    lj_push(L, v);
    return 1;
}

/* json.decode(text) -> value | nil, "json.decode: line L column C: why".
 * null becomes nil, arrays are 1-based. [-1, +(1|2), m] */
static int lj_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    json_error_t e;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
    if (!v) {
        lua_pushnil(L);
        lua_pushfstring(L, "json.decode: line %d column %d: %s", e.line, e.column, e.text);
        return 2;
    }
    /* Convert under a protected call so v is released even when the
     * conversion runs out of memory; the error is then raised again. */
    lua_pushcfunction(L, push_protected);
    lua_pushlightuserdata(L, v);
    int rc = lua_pcall(L, 1, 1, 0);
    json_decref(v);
    if (rc != LUA_OK)
        return lua_error(L);
    return 1;
}

/* json.encode(value) -> compact text with sorted keys; raises with the
 * path of a value that has no JSON form. Secret handles are refused. */
static int lj_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    char *err = NULL;
    json_t *v = lj_from_lua(L, 1, "value", LJ_NO_SECRETS, 0, &err);
    if (!v) {
        lua_pushfstring(L, "json.encode: %s", err ? err : "cannot convert");
        free(err);
        return lua_error(L);
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(v);
    if (!s)
        return luaL_error(L, "json.encode: out of memory");
    lua_pushstring(L, s);
    free(s);
    return 1;
}

int lj_open_module(lua_State *L)
{
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, lj_decode);
    lua_setfield(L, -2, "decode");
    lua_pushcfunction(L, lj_encode);
    lua_setfield(L, -2, "encode");
    return 1;
}
