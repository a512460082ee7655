/*
 * sandbox_require.c — the sandbox's `require`: plugins are Lua text files
 * found by name on a search path (the load message's "plugins" dirs, then
 * $IRP_PLUGIN_PATH, then the shipped plugins/ next to the executable), run
 * once per state with the sandbox globals as their _ENV, and cached. There
 * is no package library: no C modules, no loadlib, no binary chunks.
 * The load deadline or the step deadline that is armed, and the memory cap,
 * cover a plugin's code like any other.
 * Depends on: Lua 5.4, sandbox.h, luajson.h (the built-in "json"), util.h.
 */
#include "luajson.h"
#include "sandbox.h"
#include "util.h"

#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SB_PLUGIN_MAX_FILE ((size_t)4 << 20)
#define SB_PLUGIN_NAME_MAX 64

/* Registry keys (addresses are unique). */
static const char key_loaded = 0;  /* name -> module value (or the sentinel while loading) */
static const char key_sources = 0; /* "@path" -> true, for every plugin chunk */
static const char key_files = 0;   /* list of plugin paths, in load order */
static const char key_loading = 0; /* its address is the "being loaded" sentinel */

int sb_require_valid_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > SB_PLUGIN_NAME_MAX || name[0] == '.' || name[len - 1] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        if (!ok || (c == '.' && name[i + 1] == '.'))
            return 0;
    }
    return 1;
}

/* Pushes registry table at key, creating it. [-0, +1, m] */
static void registry_table(lua_State *L, const void *key)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

int sb_is_plugin_source(lua_State *L, const char *source)
{
    if (!source || lua_rawgetp(L, LUA_REGISTRYINDEX, &key_sources) != LUA_TTABLE) {
        lua_pop(L, 1);
        return 0;
    }
    int yes = lua_getfield(L, -1, source) == LUA_TBOOLEAN;
    lua_pop(L, 2);
    return yes;
}

size_t sb_plugin_files(lua_State *L, const char **out, size_t max)
{
    size_t n = 0;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key_files) == LUA_TTABLE) {
        lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
        for (lua_Integer i = 1; i <= len && n < max; i++) {
            lua_rawgeti(L, -1, i);
            /* the string stays alive in the registry list */
            out[n++] = lua_tostring(L, -1);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    return n;
}

static int regular_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Finds name in the dirs list (upvalue 1): pushes the path and returns 1,
 * or pushes the list of places tried and returns 0. [-0, +1, m] */
static int search(lua_State *L, const char *name)
{
    char rel[SB_PLUGIN_NAME_MAX + 1];
    snprintf(rel, sizeof rel, "%s", name);
    for (char *p = rel; *p; p++)
        if (*p == '.')
            *p = '/';
    ut_buf tried = {0};
    lua_Integer n = (lua_Integer)lua_rawlen(L, lua_upvalueindex(1));
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, lua_upvalueindex(1), i);
        const char *dir = lua_tostring(L, -1);
        lua_pop(L, 1); /* kept alive by the upvalue */
        if (!dir)
            continue;
        for (int f = 0; f < 2; f++) {
            char *path = f == 0 ? ut_xasprintf("%s/%s.lua", dir, rel)
                                : ut_xasprintf("%s/%s/init.lua", dir, rel);
            if (regular_file(path)) {
                ut_buf_free(&tried);
                lua_pushstring(L, path); /* may raise: path is freed first */
                free(path);
                return 1;
            }
            ut_buf_printf(&tried, "\n\t%s", path);
            free(path);
        }
    }
    if (n == 0)
        ut_buf_puts(&tried, "\n\t(the plugin search path is empty)");
    char *text = ut_xstrdup(tried.data ? tried.data : "");
    ut_buf_free(&tried);
    lua_pushstring(L, text); /* a memory error here would leak text: tiny and rare */
    free(text);
    return 0;
}

/* lua_pushlstring of (light userdata, length). [-2, +1, m] */
static int push_text(lua_State *L)
{
    lua_pushlstring(L, lua_touserdata(L, 1), (size_t)lua_tointeger(L, 2));
    return 1;
}

/* Reads path into a Lua string. [-0, +1, e] */
static void push_file(lua_State *L, const char *path)
{
    const char *why;
    int too_big;
    size_t len;
    char *text = ut_read_regular(path, SB_PLUGIN_MAX_FILE, &len, &why, &too_big);
    if (!text) {
        if (too_big)
            luaL_error(L, "require: plugin %s is larger than %d MiB", path, (int)(SB_PLUGIN_MAX_FILE >> 20));
        luaL_error(L, "require: cannot read plugin %s: %s", path, why);
        return;
    }
    /* Copy to the Lua heap (counted by the cap), then free the C copy. The
     * copy runs under a pcall: at the memory cap lua_pushlstring raises, and
     * the C copy must be freed before the error goes on. */
    lua_pushcfunction(L, push_text);
    lua_pushlightuserdata(L, text);
    lua_pushinteger(L, (lua_Integer)len);
    int rc = lua_pcall(L, 2, 1, 0);
    free(text);
    if (rc != LUA_OK)
        lua_error(L);
}

/* require(name) -> the module. Upvalue 1: the list of directories.
 * [-1, +1, e] */
static int sb_require(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TSTRING)
        return luaL_error(L, "require: the plugin name must be a string, not %s", luaL_typename(L, 1));
    const char *name = lua_tostring(L, 1);
    if (!sb_require_valid_name(name))
        return luaL_error(L,
                          "require: '%s' is not a valid plugin name (use a-z, 0-9, '_', '-' and "
                          "'.' between parts; no paths)",
                          name);
    lua_settop(L, 1);
    registry_table(L, &key_loaded); /* 2 */
    lua_pushlightuserdata(L, (void *)&key_loading);
    int sentinel = lua_gettop(L); /* 3 */
    if (lua_getfield(L, 2, name) != LUA_TNIL) {
        if (lua_rawequal(L, -1, sentinel))
            return luaL_error(L, "require: plugin '%s' requires itself (circular require)", name);
        return 1;
    }
    lua_pop(L, 1);
    if (strcmp(name, "json") == 0) { /* built in: cannot be shadowed */
        lj_open_module(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, 2, name);
        return 1;
    }
    if (!search(L, name))
        return luaL_error(L, "require: plugin '%s' not found; searched:%s", name, lua_tostring(L, -1));
    const char *path = lua_tostring(L, -1); /* 4 */
    /* remember the file first, so errors inside it can be placed */
    lua_pushfstring(L, "@%s", path);
    const char *chunkname = lua_tostring(L, -1); /* 5 */
    registry_table(L, &key_sources);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, chunkname);
    lua_pop(L, 1);
    registry_table(L, &key_files);
    lua_pushvalue(L, 4);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 1);

    push_file(L, path); /* 6 */
    size_t len;
    const char *text = lua_tolstring(L, 6, &len);
    if (len > 0 && text[0] == LUA_SIGNATURE[0])
        return luaL_error(L, "require: %s is a binary chunk; plugins must be Lua text", path);
    /* text mode only; the chunk's _ENV is the sandbox globals */
    if (luaL_loadbufferx(L, text, len, chunkname, "t") != LUA_OK)
        return lua_error(L);
    lua_pushvalue(L, sentinel);
    lua_setfield(L, 2, name);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 4);
    /* at load, a plugin's own top-level code is what may run too long */
    const char *whose = sb_deadline_top_level("plugin");
    int rc = lua_pcall(L, 2, 1, 0);
    if (!sb_deadline_expired()) /* expired in the plugin: its message stays */
        sb_deadline_top_level(whose);
    if (rc != LUA_OK) {
        /* forget the half-loaded plugin, then raise the same error */
        lua_pushnil(L);
        lua_setfield(L, 2, name);
        return lua_error(L);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, 2, name);
    return 1;
}

/* Appends s to the list at t. [-0, +0, m] */
static void append(lua_State *L, int t, const char *s)
{
    lua_pushstring(L, s);
    lua_rawseti(L, t, (lua_Integer)lua_rawlen(L, t) + 1);
}

/* The defaults after the explicit dirs: $IRP_PLUGIN_PATH, then plugins/ in
 * the executable's directory and in its parent (./irp or build/irp). */
static void append_defaults(lua_State *L, int t)
{
    const char *env = getenv("IRP_PLUGIN_PATH");
    if (env && *env) {
        char *copy = ut_xstrdup(env);
        char *save = NULL;
        for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save))
            append(L, t, d);
        free(copy);
    }
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0)
        return;
    exe[len] = '\0';
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(exe, '/');
        if (!slash)
            return;
        *slash = '\0';
        char *dir = ut_xasprintf("%s/plugins", exe[0] ? exe : "");
        append(L, t, dir);
        free(dir);
    }
}

typedef struct {
    const char *const *dirs;
    int defaults;
} open_args;

/* [-0, +0, m] */
static int open_protected(lua_State *L)
{
    const open_args *a = lua_touserdata(L, 1);
    lua_newtable(L);
    int t = lua_gettop(L);
    for (size_t i = 0; a->dirs && a->dirs[i]; i++)
        append(L, t, a->dirs[i]);
    if (a->defaults)
        append_defaults(L, t);
    registry_table(L, &key_loaded);
    lua_pop(L, 1);
    lua_pushglobaltable(L);
    lua_pushvalue(L, t);
    lua_pushcclosure(L, sb_require, 1);
    lua_setfield(L, -2, "require");
    lua_pop(L, 1);
    return 0;
}

int sb_require_open(sb_state *s, const char *const *dirs, int defaults)
{
    open_args a = {dirs, defaults};
    lua_pushcfunction(s->L, open_protected);
    lua_pushlightuserdata(s->L, &a);
    if (lua_pcall(s->L, 1, 0, 0) != LUA_OK) {
        lua_pop(s->L, 1);
        return -1;
    }
    return 0;
}
