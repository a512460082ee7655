/*
 * loader_dsl.c — the functions a playbook file calls while it loads:
 * playbook { ... }, step "id" { ... } and attach { ... }. Each tags its
 * table with a locked metatable and records the file and line it was called
 * from; problems go to the list at registry key pb_key_problems. Also
 * pb_push_step_fn, which fetches a step's run/when/rollback function kept
 * at load. The load itself is in loader.c.
 * Depends on: Lua 5.4, jansson, loader_internal.h, util.h.
 */
#include "loader.h"
#include "loader_internal.h"
#include "util.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where the DSL function was called from: the file (full path, from the
 * chunk name, never the truncated short_src) and line. */
static void caller_where(lua_State *L, const char **file, int *line)
{
    lua_Debug ar;
    *file = "?";
    *line = 0;
    /* A step made by a plugin's constructor belongs where the playbook
     * called the constructor: skip the plugins' frames (and C frames
     * between them); without a playbook frame, keep the first one. */
    for (int level = 1; lua_getstack(L, level, &ar) && lua_getinfo(L, "Sl", &ar); level++) {
        int skip = ar.source[0] == '=' || sb_is_plugin_source(L, ar.source);
        if (level == 1 || !skip) {
            *file = ar.source[0] == '@' || ar.source[0] == '=' ? ar.source + 1 : ar.source;
            *line = ar.currentline > 0 ? ar.currentline : ar.linedefined;
        }
        if (!skip)
            break;
    }
}

/* Records a DSL problem in the registry list. [-0, +0, m] */
static void dsl_problem(lua_State *L, const char *file, int line, const char *msg)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &pb_key_problems);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    lua_createtable(L, 0, 3);
    lua_pushstring(L, file);
    lua_setfield(L, -2, "file");
    lua_pushinteger(L, line);
    lua_setfield(L, -2, "line");
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "msg");
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 1);
}

/* Builds {spec=..., file=..., line=...(, id=...)} with the metatable at
 * registry key mt_key. spec is the value at spec_idx (a table, or a fresh
 * empty one). [-0, +1, m] */
static void dsl_object(lua_State *L, const void *mt_key, int spec_idx, const char *file, int line)
{
    lua_createtable(L, 0, 4);
    if (lua_istable(L, spec_idx))
        lua_pushvalue(L, spec_idx);
    else
        lua_newtable(L);
    lua_setfield(L, -2, "spec");
    lua_pushstring(L, file);
    lua_setfield(L, -2, "file");
    lua_pushinteger(L, line);
    lua_setfield(L, -2, "line");
    lua_rawgetp(L, LUA_REGISTRYINDEX, mt_key);
    lua_setmetatable(L, -2);
}

/* step "id" { fields }: the second half. Upvalues: id, file, line.
 * [-1, +1, m] */
static int dsl_step_def(lua_State *L)
{
    const char *id = lua_tostring(L, lua_upvalueindex(1));
    const char *file = lua_tostring(L, lua_upvalueindex(2));
    int line = (int)lua_tointeger(L, lua_upvalueindex(3));
    if (!lua_istable(L, 1)) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "step \"%.64s\" must be followed by a table of fields (step \"%.64s\" { ... }), not %s",
                 id, id, pb_type_phrase(L, 1));
        dsl_problem(L, file, line, msg);
    }
    dsl_object(L, &pb_key_step_mt, 1, file, line);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_setfield(L, -2, "id");
    return 1;
}

/* step "id": returns the function that takes the fields. [-1, +1, m] */
static int dsl_step(lua_State *L)
{
    const char *file;
    int line;
    caller_where(L, &file, &line);
    if (lua_type(L, 1) != LUA_TSTRING) {
        char msg[256];
        if (lua_istable(L, 1))
            snprintf(msg, sizeof msg, "a step needs an id: write step \"id\" { ... }");
        else
            snprintf(msg, sizeof msg, "a step id must be a string, not %s", pb_type_phrase(L, 1));
        dsl_problem(L, file, line, msg);
        lua_pushliteral(L, "?");
    } else {
        lua_pushvalue(L, 1);
    }
    lua_pushstring(L, file);
    lua_pushinteger(L, line);
    lua_pushcclosure(L, dsl_step_def, 3);
    return 1;
}

/* playbook { fields } [-1, +1, m] */
static int dsl_playbook(lua_State *L)
{
    const char *file;
    int line;
    caller_where(L, &file, &line);
    if (!lua_istable(L, 1)) {
        char msg[200];
        snprintf(msg, sizeof msg, "playbook must be called with a table (playbook { ... }), not %s",
                 pb_type_phrase(L, 1));
        dsl_problem(L, file, line, msg);
    }
    dsl_object(L, &pb_key_playbook_mt, 1, file, line);
    return 1;
}

/* attach { after = "id" | before = "id" | at_end_of = "phase", step ... }
 * [-1, +1, m] */
static int dsl_attach(lua_State *L)
{
    const char *file;
    int line;
    caller_where(L, &file, &line);
    if (!lua_istable(L, 1)) {
        char msg[200];
        snprintf(msg, sizeof msg, "attach must be called with a table (attach { ... }), not %s",
                 pb_type_phrase(L, 1));
        dsl_problem(L, file, line, msg);
    }
    dsl_object(L, &pb_key_attach_mt, 1, file, line);
    return 1;
}

/* A metatable that hides itself from getmetatable/setmetatable. */
static void new_locked_mt(lua_State *L, const void *key, const char *name)
{
    lua_createtable(L, 0, 2);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__metatable");
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__name");
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

void pb_dsl_open(lua_State *L)
{
    new_locked_mt(L, &pb_key_step_mt, "irp.step");
    new_locked_mt(L, &pb_key_playbook_mt, "irp.playbook");
    new_locked_mt(L, &pb_key_attach_mt, "irp.attach");
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &pb_key_problems);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &pb_key_fns);
    lua_pushglobaltable(L);
    lua_pushcfunction(L, dsl_playbook);
    lua_setfield(L, -2, "playbook");
    lua_pushcfunction(L, dsl_step);
    lua_setfield(L, -2, "step");
    lua_pushcfunction(L, dsl_attach);
    lua_setfield(L, -2, "attach");
    lua_pop(L, 1);
}

void pb_push_step_fn(lua_State *L, const char *step_id, const char *which)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &pb_key_fns) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_pushnil(L);
        return;
    }
    lua_pushstring(L, step_id);
    if (lua_rawget(L, -2) != LUA_TTABLE) {
        lua_pop(L, 2);
        lua_pushnil(L);
        return;
    }
    lua_pushstring(L, which);
    lua_rawget(L, -2);
    lua_replace(L, -3);
    lua_pop(L, 1);
}
