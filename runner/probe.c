/*
 * probe.c — the worker's half of `irp check --drill` (see probe.h): a
 * metatable whose __index notes the read of an absent field, put on the
 * tables a step reads through ctx.steps, and the list of notes handed
 * back with the step's answer. A plain table keeps its contents, so
 * pairs, next, # and the JSON encoder see exactly what they would in a
 * drill; only a read that finds nothing reaches __index.
 */
#include "probe.h"
#include "util.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_MAX_NOTES 200
#define PROBE_MAX_DEPTH 8
#define PROBE_MAX_TABLES 2000 /* per marking: a huge result is only marked this far */

static int enabled;
static json_t *notes;

void dp_enable(int on)
{
    enabled = on;
}

int dp_enabled(void)
{
    return enabled;
}

void dp_note(const char *path, const char *source_step, const char *where)
{
    if (!enabled)
        return;
    if (!notes)
        notes = json_array();
    if (json_array_size(notes) >= PROBE_MAX_NOTES)
        return;
    size_t i;
    json_t *n;
    json_array_foreach(notes, i, n)
    {
        const char *w = json_string_value(json_object_get(n, "where"));
        if (!strcmp(json_string_value(json_object_get(n, "path")), path) &&
            !strcmp(w ? w : "", where ? where : ""))
            return;
    }
    json_array_append_new(notes, json_pack("{s:s, s:s, s:s?}", "path", path, "step", source_step ? source_step : "",
                                           "where", where));
}

json_t *dp_take(void)
{
    json_t *out = notes ? notes : json_array();
    notes = NULL;
    return out;
}

/* __index of a marked table: upvalue 1 its path, upvalue 2 the step whose
 * value it is. Integer keys are ipairs reaching the end: not a read. */
static int probe_index(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING)
        return 0;
    char where[512] = "";
    lua_Debug ar;
    /* Level 1 is the function that did the indexing (skipping C helpers). */
    for (int level = 1; level < 6 && lua_getstack(L, level, &ar); level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            const char *src = ar.source && ar.source[0] == '@' ? ar.source + 1 : ar.short_src;
            snprintf(where, sizeof where, "%s:%d", src, ar.currentline);
            break;
        }
    }
    char *path = ut_xasprintf("%s.%s", lua_tostring(L, lua_upvalueindex(1)), lua_tostring(L, 2));
    dp_note(path, lua_tostring(L, lua_upvalueindex(2)), where[0] ? where : NULL);
    free(path);
    return 0;
}

static void mark(lua_State *L, int idx, const char *path, const char *source, int depth, int *budget)
{
    if (!lua_istable(L, idx) || depth > PROBE_MAX_DEPTH || *budget <= 0)
        return;
    if (lua_getmetatable(L, idx)) {
        lua_pop(L, 1);
        return;
    }
    --*budget;
    luaL_checkstack(L, 6, "probe");
    lua_createtable(L, 0, 1);
    lua_pushstring(L, path);
    lua_pushstring(L, source);
    lua_pushcclosure(L, probe_index, 2);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1)) {
            char *child = ut_xasprintf("%s.%s", path, lua_tostring(L, -2));
            mark(L, lua_gettop(L), child, source, depth + 1, budget);
            free(child);
        }
        lua_pop(L, 1);
    }
}

void dp_mark(lua_State *L, int idx, const char *path, const char *source_step)
{
    if (!enabled)
        return;
    int budget = PROBE_MAX_TABLES;
    mark(L, lua_absindex(L, idx), path, source_step, 0, &budget);
}
