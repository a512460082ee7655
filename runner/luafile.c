/*
 * luafile.c — the capped, deadlined Lua state for supervisor-read files.
 * See include/luafile.h.
 */
#include "luafile.h"
#include "util.h"

#include <lauxlib.h>
#include <stdlib.h>

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    lf_limits *s = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        s->used -= old;
        return NULL;
    }
    if (nsize > old && s->used + (nsize - old) > s->limit) {
        s->mem_hit = 1;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (!p)
        return NULL;
    s->used = s->used - old + nsize;
    return p;
}

static void deadline_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    void *ud;
    lua_getallocf(L, &ud);
    lf_limits *s = ud;
    if (ut_mono_ms() > s->deadline) {
        lua_sethook(L, deadline_hook, LUA_MASKCOUNT, 1); /* fire again at once if an error is caught */
        luaL_where(L, 0); /* in a hook, level 0 is the code that loops: "file:line: " */
        lua_pushfstring(L, "%sthe %s took longer than %d ms to load (an endless loop?)", lua_tostring(L, -1),
                        s->what ? s->what : "file", s->deadline_ms);
        lua_error(L);
    }
}

lua_State *lf_newstate(lf_limits *lim)
{
    lim->used = 0;
    lim->mem_hit = 0;
    return lua_newstate(counting_alloc, lim);
}

void lf_arm_deadline(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    lf_limits *s = ud;
    s->deadline = ut_mono_ms() + s->deadline_ms;
    lua_sethook(L, deadline_hook, LUA_MASKCOUNT, 1000);
}

void lf_disarm_deadline(lua_State *L)
{
    lua_sethook(L, NULL, 0, 0);
}
