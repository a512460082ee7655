/*
 * loader_fields.c — typed readers for playbook/step fields that report
 * problems in one wording: "field 'retries' of step "isolate" must be a
 * non-negative integer, not a string". Raw access only, so validation never
 * runs playbook code.
 * Depends on: Lua 5.4, jansson, loader_internal.h, util.h.
 */
#include "loader_internal.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *pb_type_phrase(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return "nil";
    case LUA_TNUMBER: return "a number";
    case LUA_TBOOLEAN: return "a boolean";
    case LUA_TSTRING: return "a string";
    case LUA_TTABLE: return "a table";
    case LUA_TFUNCTION: return "a function";
    case LUA_TTHREAD: return "a coroutine";
    default: return "a userdata";
    }
}

void pb_suggest(char *out, size_t size, const char *word, const char *const *candidates, char q)
{
    /* a short word is "close" to anything short: scale the distance */
    size_t len = word ? strlen(word) : 0;
    size_t max = len <= 3 ? 1 : len <= 5 ? 2 : 3;
    const char *best = word ? ut_closest(word, candidates, max) : NULL;
    if (best)
        snprintf(out, size, " (did you mean %c%s%c?)", q, best, q);
    else if (size)
        out[0] = '\0';
}

int pb_field_push(lua_State *L, int t, const char *name)
{
    lua_pushstring(L, name);
    return lua_rawget(L, t);
}

void pb_check_unknown(pb_site *s, int t, const char *const *allowed)
{
    lua_State *L = s->L;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            char item[32];
            snprintf(item, sizeof item, "#%lld", (long long)lua_tointeger(L, -1));
            if (lua_type(L, -1) == LUA_TNUMBER)
                pb_problem(s->problems, s->file, pb_site_line(s, item),
                           "%s has a list item [%s] where only named fields are allowed (a missing "
                           "'name =' or a stray comma?)",
                           s->owner, lua_isinteger(L, -1) ? "number" : "float");
            else
                pb_problem(s->problems, s->file, pb_site_line(s, NULL), "%s has a key that is %s, not a field name",
                           s->owner, pb_type_phrase(L, -1));
            continue;
        }
        const char *k = lua_tostring(L, -1);
        int known = 0;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(k, allowed[i]) == 0)
                known = 1;
        if (!known) {
            char hint[128];
            pb_suggest(hint, sizeof hint, k, allowed, '\'');
            pb_problem(s->problems, s->file, pb_site_line(s, k), "unknown field '%.64s' in %s%s", k, s->owner,
                       hint);
        }
    }
}

static void wrong(pb_site *s, const char *name, const char *want, int idx)
{
    pb_problem(s->problems, s->file, pb_site_line(s, name), "field '%s' of %s must be %s, not %s", name, s->owner,
               want, pb_type_phrase(s->L, idx));
}

int pb_field_string(pb_site *s, int t, const char *name, const char **out)
{
    int type = pb_field_push(s->L, t, name);
    int r = 0;
    if (type == LUA_TSTRING) {
        *out = lua_tostring(s->L, -1); /* kept alive by the table at t */
        r = 1;
    } else if (type != LUA_TNIL) {
        wrong(s, name, "a string", -1);
        r = -1;
    }
    lua_pop(s->L, 1);
    return r;
}

int pb_field_bool(pb_site *s, int t, const char *name, int *out)
{
    int type = pb_field_push(s->L, t, name);
    int r = 0;
    if (type == LUA_TBOOLEAN) {
        *out = lua_toboolean(s->L, -1);
        r = 1;
    } else if (type != LUA_TNIL) {
        wrong(s, name, "a boolean (true or false)", -1);
        r = -1;
    }
    lua_pop(s->L, 1);
    return r;
}

int pb_duration_at(lua_State *L, int idx, int64_t *ms)
{
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_Number n = lua_tonumber(L, idx);
        if (!(n >= 0) || n > 1e12 || isinf(n))
            return -1;
        *ms = (int64_t)llround(n * 1000.0);
        return 0;
    }
    if (lua_type(L, idx) == LUA_TSTRING)
        return ut_parse_duration(lua_tostring(L, idx), ms);
    return -1;
}

int pb_field_duration(pb_site *s, int t, const char *name, int64_t *ms)
{
    lua_State *L = s->L;
    int type = pb_field_push(L, t, name);
    int r = 0;
    if (type == LUA_TNIL) {
        r = 0;
    } else if (pb_duration_at(L, -1, ms) == 0) {
        r = 1;
    } else if (type == LUA_TSTRING) {
        pb_problem(s->problems, s->file, pb_site_line(s, name),
                   "field '%s' of %s must be a duration such as \"500ms\", \"90s\", \"15m\" or "
                   "\"1h30m\", not \"%.40s\"",
                   name, s->owner, lua_tostring(L, -1));
        r = -1;
    } else if (type == LUA_TNUMBER) {
        pb_problem(s->problems, s->file, pb_site_line(s, name),
                   "field '%s' of %s must be a number of seconds from 0 to 1e12, not %g", name,
                   s->owner, (double)lua_tonumber(L, -1));
        r = -1;
    } else {
        wrong(s, name, "a duration (\"90s\", \"15m\" or a number of seconds)", -1);
        r = -1;
    }
    lua_pop(L, 1);
    return r;
}

int pb_field_int(pb_site *s, int t, const char *name, long long lo, long long hi, long long *out)
{
    lua_State *L = s->L;
    int type = pb_field_push(L, t, name);
    int r = 0;
    if (type == LUA_TNIL) {
        r = 0;
    } else if (type == LUA_TNUMBER) {
        lua_Number n = lua_tonumber(L, -1);
        if (n != floor(n) || isinf(n)) {
            pb_problem(s->problems, s->file, pb_site_line(s, name),
                       "field '%s' of %s must be a non-negative integer, not %g", name, s->owner,
                       (double)n);
            r = -1;
        } else if (n < (lua_Number)lo || n > (lua_Number)hi) {
            pb_problem(s->problems, s->file, pb_site_line(s, name),
                       "field '%s' of %s must be an integer from %lld to %lld, not %.0f", name,
                       s->owner, lo, hi, (double)n);
            r = -1;
        } else {
            *out = (long long)n;
            r = 1;
        }
    } else {
        wrong(s, name, lo >= 0 ? "a non-negative integer" : "an integer", -1);
        r = -1;
    }
    lua_pop(L, 1);
    return r;
}

int pb_field_string_list(pb_site *s, int t, const char *name, int unique, json_t **out)
{
    lua_State *L = s->L;
    int type = pb_field_push(L, t, name);
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (type != LUA_TTABLE) {
        if (type == LUA_TSTRING)
            pb_problem(s->problems, s->file, pb_site_line(s, name),
                       "field '%s' of %s must be a list of strings, not a string (write { \"%.40s\" })",
                       name, s->owner, lua_tostring(L, -1));
        else
            wrong(s, name, "a list of strings", -1);
        lua_pop(L, 1);
        return -1;
    }
    int list = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, list)) {
        lua_pop(L, 1);
        count++;
    }
    if (count != n) {
        pb_problem(s->problems, s->file, pb_site_line(s, name),
                   "field '%s' of %s must be a list of strings ({ \"a\", \"b\" }), not a table with "
                   "named keys",
                   name, s->owner);
        lua_pop(L, 1);
        return -1;
    }
    json_t *arr = json_array();
    int bad = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, list, i);
        if (lua_type(L, -1) != LUA_TSTRING) {
            pb_problem(s->problems, s->file, pb_site_line(s, name), "field '%s' of %s: item %lld must be a string, not %s",
                       name, s->owner, (long long)i, pb_type_phrase(L, -1));
            bad = 1;
        } else {
            size_t len;
            const char *v = lua_tolstring(L, -1, &len);
            int dup = 0;
            if (unique) {
                size_t k;
                json_t *e;
                json_array_foreach(arr, k, e) {
                    if (strcmp(json_string_value(e), v) == 0)
                        dup = 1;
                }
            }
            if (dup) {
                /* reported, but the list stays usable for later checks */
                pb_problem(s->problems, s->file, pb_site_line(s, name), "field '%s' of %s lists '%.64s' twice",
                           name, s->owner, v);
            } else {
                char *clean = ut_utf8_sanitize(v, len, NULL);
                json_array_append_new(arr, json_string(clean));
                free(clean);
            }
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (bad) {
        json_decref(arr);
        return -1;
    }
    *out = arr;
    return 1;
}

void pb_list_insert(pb_list *l, size_t pos, int handle, const char *source, const char *anchor)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = ut_xrealloc(l->v, l->cap * sizeof *l->v);
    }
    if (pos > l->n)
        pos = l->n;
    memmove(l->v + pos + 1, l->v + pos, (l->n - pos) * sizeof *l->v);
    l->v[pos].handle = handle;
    l->v[pos].source = source;
    l->v[pos].anchor = anchor ? ut_xstrdup(anchor) : NULL;
    l->n++;
}

void pb_list_free(pb_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].anchor);
    free(l->v);
    memset(l, 0, sizeof *l);
}
