/*
 * config_attach.c — the `attach` section of a configuration: a team's local
 * steps attached to the playbooks it runs, by playbook id, without editing
 * them and without anyone having to remember --attach at 3 a.m.:
 *
 *     attach = {
 *       ransomware = { "local/ransomware-legal.lua", "local/backups.lua" },
 *       phishing   = "local/phishing-hr.lua",
 *     }
 *
 * Relative paths are taken from the configuration file's directory; every
 * file must be readable when the configuration is loaded. cf_attach_append
 * hands the entries to a load request as {"playbook": id, "path": p}
 * items, which the worker applies only to the playbook with that id.
 * Depends on: Lua 5.4, jansson, config_internal.h, util.h.
 */
#include "config.h"
#include "config_internal.h"
#include "util.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CF_ATTACH_MAX 256

static int valid_playbook_id(const char *s, size_t len)
{
    if (len == 0 || len > 64)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
            return 0;
    }
    return 1;
}

/* path as written, relative to the configuration's directory. malloc'd. */
static char *resolve(const cf_job *job, const char *path)
{
    const char *slash = strrchr(job->display, '/');
    if (path[0] == '/' || !slash)
        return ut_xstrdup(path);
    return ut_xasprintf("%.*s/%s", (int)(slash - job->display), job->display, path);
}

/* Adds one file for playbook id; 0, or -1 after cf_fail. */
static int add_file(lua_State *L, cf_job *job, const char *id, int line, int idx)
{
    if (lua_type(L, idx) != LUA_TSTRING || !*lua_tostring(L, idx)) {
        cf_fail(job, line, "attach.%s: every entry must be the path of an attach file (a string), not %s%s", id,
                lua_type(L, idx) == LUA_TSTRING ? "an empty string" : "a ",
                lua_type(L, idx) == LUA_TSTRING ? "" : luaL_typename(L, idx));
        return -1;
    }
    cf_config *c = job->out;
    if (c->nattach >= CF_ATTACH_MAX) {
        cf_fail(job, line, "attach: more than %d attach files", CF_ATTACH_MAX);
        return -1;
    }
    char *path = resolve(job, lua_tostring(L, idx));
    if (access(path, R_OK) < 0) {
        cf_fail(job, line, "attach.%s: cannot read attach file '%s': %s", id, path, strerror(errno));
        free(path);
        return -1;
    }
    for (size_t i = 0; i < c->nattach; i++)
        if (!strcmp(c->attach[i].playbook, id) && !strcmp(c->attach[i].path, path)) {
            cf_fail(job, line, "attach.%s: '%s' is listed twice", id, path);
            free(path);
            return -1;
        }
    c->attach = realloc(c->attach, (c->nattach + 1) * sizeof *c->attach);
    if (!c->attach)
        abort();
    c->attach[c->nattach].playbook = ut_xstrdup(id);
    c->attach[c->nattach].path = path;
    c->attach[c->nattach].line = line;
    c->nattach++;
    return 0;
}

void cf_read_attach(lua_State *L, cf_job *job, int idx)
{
    if (lua_isnil(L, idx) || job->failed)
        return;
    int top_line = cf_find_line(job, 1, "attach", 0);
    if (!lua_istable(L, idx)) {
        cf_fail(job, top_line,
                "attach must be a table of playbook id = { \"attach-file.lua\", ... }, not a %s",
                luaL_typename(L, idx));
        return;
    }
    lua_pushnil(L);
    while (!job->failed && lua_next(L, idx)) {
        size_t len = 0;
        const char *id = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
        if (!id || !valid_playbook_id(id, len)) {
            cf_fail(job, top_line,
                    "attach: keys are playbook ids (a letter or digit, then letters, digits, _ . -), not %s%s%s",
                    id ? "'" : luaL_typename(L, -2), id ? id : "", id ? "'" : "");
            lua_pop(L, 2);
            return;
        }
        int line = cf_find_line(job, top_line > 0 ? top_line : 1, id, 1);
        if (!line)
            line = top_line;
        int v = lua_gettop(L);
        if (lua_type(L, v) == LUA_TSTRING) {
            add_file(L, job, id, line, v);
        } else if (lua_istable(L, v) && lua_rawlen(L, v) > 0) {
            lua_Integer n = (lua_Integer)lua_rawlen(L, v);
            for (lua_Integer k = 1; k <= n && !job->failed; k++) {
                lua_rawgeti(L, v, k);
                add_file(L, job, id, line, lua_gettop(L));
                lua_pop(L, 1);
            }
        } else {
            cf_fail(job, line, "attach.%s must be an attach file's path or a list of them, not %s%s", id,
                    lua_istable(L, v) ? "an empty table" : "a ", lua_istable(L, v) ? "" : luaL_typename(L, v));
        }
        lua_pop(L, 1);
    }
    if (job->failed)
        lua_settop(L, idx);
}

void cf_attach_append(const cf_config *c, json_t *list)
{
    for (size_t i = 0; c && i < c->nattach; i++)
        json_array_append_new(list, json_pack("{s:s, s:s}", "playbook", c->attach[i].playbook, "path",
                                              c->attach[i].path));
}
