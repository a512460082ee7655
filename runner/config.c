/*
 * config.c — loading the notifier configuration (see include/config.h).
 * The file runs in a throw-away lua_State of its own: base (without dofile,
 * loadfile, load, print, collectgarbage), string (without dump), table,
 * math and utf8; a counting allocator caps memory and a count hook gives
 * the top-level chunk a deadline. What it leaves behind (a returned table,
 * or the global `notifiers`) is then checked field by field (config_fields.c)
 * and copied into plain C structures, and the state is closed: nothing of
 * Lua survives the load.
 * Depends on: Lua 5.4, secrets.h, util.h.
 */
#include "config.h"
#include "config_internal.h"
#include "secrets.h"
#include "luafile.h"
#include "util.h"

#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CF_MEMORY_LIMIT ((size_t)8 << 20)
#define CF_DEADLINE_MS 2000
#define CF_FILE_MAX ((size_t)1 << 20)

/* Fixed registry keys: unique addresses cannot collide as strings could. */
static const char key_secret_mt = 0;
static const char key_baseline = 0;

/* ---------------------------------------------------------------- errors */

void cf_fail(cf_job *job, int line, const char *fmt, ...)
{
    if (job->failed)
        return; /* the first problem is the one worth reading */
    job->failed = 1;
    int n = line > 0 ? snprintf(job->err, job->err_size, "%s:%d: ", job->display, line)
                     : snprintf(job->err, job->err_size, "%s: ", job->display);
    if (n < 0 || (size_t)n >= job->err_size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(job->err + n, job->err_size - (size_t)n, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------- source lines */

static int is_ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* 1 when line (len bytes) has `word` as a whole identifier followed by
 * optional blanks and a single '=' (an assignment, not '=='). */
static int line_assigns(const char *line, size_t len, const char *word)
{
    size_t wl = strlen(word);
    for (size_t i = 0; i + wl <= len; i++) {
        if (memcmp(line + i, word, wl) != 0 || (i > 0 && is_ident_char(line[i - 1])))
            continue;
        size_t j = i + wl;
        if (j < len && is_ident_char(line[j]))
            continue;
        while (j < len && (line[j] == ' ' || line[j] == '\t'))
            j++;
        if (j < len && line[j] == '=' && (j + 1 >= len || line[j + 1] != '='))
            return 1;
    }
    return 0;
}

/* 1 when line holds ["name"] or ['name'] (a bracketed key). */
static int line_has_key(const char *line, size_t len, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl + 2 <= len; i++) {
        if ((line[i] == '"' || line[i] == '\'') && memcmp(line + i + 1, name, nl) == 0 &&
            line[i + 1 + nl] == line[i]) {
            size_t k = i;
            while (k > 0 && (line[k - 1] == ' ' || line[k - 1] == '\t'))
                k--;
            if (k > 0 && line[k - 1] == '[')
                return 1;
        }
    }
    return 0;
}

/* The tables carry no line numbers, so the source is searched instead:
 * good enough to point at the right line of a hand-written file. */
int cf_find_line(const cf_job *job, int from_line, const char *name, int bracketed_key)
{
    if (!job->src)
        return 0;
    const char *p = job->src, *end = job->src + job->src_len;
    int line = 1;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (line >= from_line && (line_assigns(p, len, name) || (bracketed_key && line_has_key(p, len, name))))
            return line;
        if (!nl)
            break;
        p = nl + 1;
        line++;
    }
    return 0;
}

/* ------------------------------------------------------------ the state */

/* secret "NAME" -> a read-only marker {name=, line=}. [-1, +1, e] */
static int l_secret(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    if (!sec_valid_name(name))
        return luaL_error(L, "secret \"%s\": a secret name is letters, digits and _, not starting with a digit",
                          name);
    sec_declare(name); /* never inherited by a step's commands */
    lua_Debug ar;
    int line = 0;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar))
        line = ar.currentline;
    lua_createtable(L, 0, 2);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "name");
    lua_pushinteger(L, line);
    lua_setfield(L, -2, "line");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_secret_mt);
    lua_setmetatable(L, -2);
    return 1;
}

/* [-2, +0, e] */
static int l_secret_concat(lua_State *L)
{
    return luaL_error(L, "a secret cannot be joined with text: put the whole value (the full URL) in the secret");
}

/* [-1, +0, e] */
static int l_secret_newindex(lua_State *L)
{
    return luaL_error(L, "a secret is read-only");
}

/* [-1, +1, -] */
static int l_secret_tostring(lua_State *L)
{
    lua_getfield(L, 1, "name");
    lua_pushfstring(L, "secret \"%s\"", lua_tostring(L, -1));
    return 1;
}

int cf_is_secret(lua_State *L, int idx)
{
    if (!lua_istable(L, idx) || !lua_getmetatable(L, idx))
        return 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_secret_mt);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

/* Opens the allowed libraries and removes what a configuration has no
 * business with. [-0, +0, e] */
static void cf_sandbox(lua_State *L)
{
    static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},     {LUA_STRLIBNAME, luaopen_string},
                                    {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
                                    {LUA_UTF8LIBNAME, luaopen_utf8}, {NULL, NULL}};
    for (const luaL_Reg *l = libs; l->func; l++) {
        luaL_requiref(L, l->name, l->func, 1);
        lua_pop(L, 1);
    }
    static const char *const removed[] = {"dofile", "loadfile", "load", "print", "collectgarbage", "warn", NULL};
    for (int i = 0; removed[i]; i++) {
        lua_pushnil(L);
        lua_setglobal(L, removed[i]);
    }
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);

    lua_createtable(L, 0, 5);
    lua_pushliteral(L, "irp secret");
    lua_setfield(L, -2, "__name");
    lua_pushcfunction(L, l_secret_concat);
    lua_setfield(L, -2, "__concat");
    lua_pushcfunction(L, l_secret_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, l_secret_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_secret_mt);
    lua_register(L, "secret", l_secret);

    /* What the globals look like before the file runs: anything else it
     * leaves there is a setting, checked against the known ones. */
    lua_newtable(L);
    lua_pushglobaltable(L);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -5);
    }
    lua_pop(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_baseline);
}

/* Adds "(did you mean 'secret'?)" to "attempt to call a nil value (global
 * 'secrt')", the likeliest slip in a configuration. */
static void cf_runtime_error(cf_job *job, const char *msg)
{
    job->failed = 1;
    const char *g = strstr(msg, "(global '");
    static const char *const names[] = {"secret", "notifiers", NULL};
    const char *hint = NULL;
    if (g) {
        char word[64];
        const char *s = g + 9, *q = strchr(s, '\'');
        if (q && (size_t)(q - s) < sizeof word) {
            memcpy(word, s, (size_t)(q - s));
            word[q - s] = '\0';
            hint = ut_closest(word, names, 2);
            if (hint && !strcmp(hint, word))
                hint = NULL;
        }
    }
    if (hint)
        snprintf(job->err, job->err_size, "%s (did you mean '%s'?)", msg, hint);
    else
        snprintf(job->err, job->err_size, "%s", msg);
}

/* The settings table the file produced: its return value if it is a
 * table, else the globals it set. Unknown settings are errors. [-0, +1, e] */
static int cf_settings(lua_State *L, cf_job *job, int returned)
{
    static const char *const known[] = {"notifiers", "attach", NULL};
    if (lua_istable(L, returned)) {
        lua_pushvalue(L, returned);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
            if (!k) {
                cf_fail(job, 0, "the returned table has a key that is not a name (%s)", luaL_typename(L, -1));
                lua_pop(L, 1);
                return 0;
            }
            if (strcmp(k, "notifiers") != 0 && strcmp(k, "attach") != 0) {
                const char *hint = ut_closest(k, known, 3);
                cf_fail(job, cf_find_line(job, 1, k, 1), "unknown setting '%s'%s%s%s", k,
                        hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
                lua_pop(L, 1);
                return 0;
            }
        }
        return 1;
    }
    if (!lua_isnil(L, returned)) {
        cf_fail(job, 0, "the file returns a %s; return a table such as { notifiers = { ... } } or set notifiers = { ... }",
                luaL_typename(L, returned));
        return 0;
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_baseline);
    int base = lua_gettop(L);
    lua_newtable(L);
    lua_pushglobaltable(L);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        /* stack: base, result, _G, key, value */
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        lua_pushvalue(L, -2);
        lua_rawget(L, base);
        int unchanged = lua_rawequal(L, -1, -2);
        lua_pop(L, 1);
        if (!unchanged) {
            if (k && (!strcmp(k, "notifiers") || !strcmp(k, "attach"))) {
                lua_setfield(L, base + 1, k);
                continue;
            }
            const char *hint = k ? ut_closest(k, known, 3) : NULL;
            cf_fail(job, k ? cf_find_line(job, 1, k, 0) : 0,
                    "unknown setting '%s'%s%s%s (write `local %s = ...` for a helper variable)", k ? k : "?",
                    hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "", k ? k : "x");
            lua_pop(L, 4);
            lua_remove(L, base);
            return 0;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);         /* _G */
    lua_remove(L, base);   /* baseline */
    return 1;
}

/* The whole load, protected: even a memory error becomes a message.
 * [-1, +0, -] (the job as light userdata) */
static int cf_pmain(lua_State *L)
{
    cf_job *job = lua_touserdata(L, 1);
    lua_settop(L, 0);
    cf_sandbox(L);
    if (luaL_loadbufferx(L, job->src, job->src_len, job->chunkname, "t") != LUA_OK) {
        cf_runtime_error(job, lua_tostring(L, -1));
        return 0;
    }
    lf_arm_deadline(L);
    int rc = lua_pcall(L, 0, 1, 0);
    lf_disarm_deadline(L);
    if (rc != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        cf_runtime_error(job, msg ? msg : "the configuration raised an error that is not a message");
        return 0;
    }
    if (!cf_settings(L, job, 1))
        return 0;
    int settings = lua_gettop(L);
    lua_getfield(L, settings, "attach");
    int has_attach = !lua_isnil(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, settings, "notifiers");
    if (lua_isnil(L, -1) && has_attach) {
        /* a file with only an attach section keeps the default stdout notifier */
        cf_config *d = cf_default();
        job->out->embedded = 1;
        job->out->items = d->items;
        job->out->count = d->count;
        d->items = NULL;
        d->count = 0;
        cf_free(d);
    }
    cf_read_notifiers(L, job, lua_gettop(L));
    lua_getfield(L, settings, "attach");
    cf_read_attach(L, job, lua_gettop(L));
    return 0;
}

cf_config *cf_load_text(const char *text, size_t len, const char *chunkname, char *err, size_t err_size)
{
    cf_job job;
    memset(&job, 0, sizeof job);
    job.src = text;
    job.src_len = len;
    char *at = ut_xasprintf("@%s", chunkname);
    job.chunkname = at;
    job.display = chunkname;
    job.err = err;
    job.err_size = err_size;
    job.out = ut_xcalloc(1, sizeof *job.out);
    job.out->path = ut_xstrdup(chunkname);
    err[0] = '\0';

    lf_limits ls = {.limit = CF_MEMORY_LIMIT, .deadline_ms = CF_DEADLINE_MS, .what = "configuration"};
    lua_State *L = lf_newstate(&ls);
    if (!L) {
        snprintf(err, err_size, "%s: cannot create a Lua state (out of memory)", chunkname);
        cf_free(job.out);
        free(at);
        return NULL;
    }
    lua_pushcfunction(L, cf_pmain);
    lua_pushlightuserdata(L, &job);
    int rc = lua_pcall(L, 1, 0, 0);
    if (rc != LUA_OK && !job.failed) {
        const char *msg = lua_tostring(L, -1);
        if (ls.mem_hit)
            snprintf(err, err_size, "%s: the configuration uses more than %zu MiB of memory", chunkname,
                     CF_MEMORY_LIMIT >> 20);
        else
            snprintf(err, err_size, "%s: %s", chunkname, msg ? msg : "error while loading");
        job.failed = 1;
    }
    lua_close(L);
    free(at);
    if (job.failed) {
        if (ls.mem_hit && !strstr(err, "memory"))
            snprintf(err, err_size, "%s: the configuration uses more than %zu MiB of memory", chunkname,
                     CF_MEMORY_LIMIT >> 20);
        cf_free(job.out);
        return NULL;
    }
    return job.out;
}

cf_config *cf_load_file(const char *path, char *err, size_t err_size)
{
    const char *why;
    int too_big;
    size_t len;
    char *text = ut_read_regular(path, CF_FILE_MAX, &len, &why, &too_big);
    if (!text) {
        snprintf(err, err_size, too_big ? "%s: larger than 1 MiB: not a configuration"
                                        : "%s: cannot read the configuration: %s", path, why);
        return NULL;
    }
    cf_config *c = cf_load_text(text, len, path, err, err_size);
    free(text);
    return c;
}

const char cf_embedded_default[] = "(the embedded default: stdout)";

char *cf_chosen_path(const char *path)
{
    const char *env = getenv("IRP_CONFIG");
    const char *p = path == cf_embedded_default ? NULL
                    : path && *path         ? path
                    : env && *env           ? env
                    : access("irp.conf.lua", F_OK) == 0 ? "irp.conf.lua"
                                                        : NULL;
    if (!p)
        return NULL;
    char *abs = realpath(p, NULL);
    return abs ? abs : ut_xstrdup(p);
}

cf_config *cf_load(const char *path, char *err, size_t err_size)
{
    if (path == cf_embedded_default)
        return cf_default();
    if (path && *path)
        return cf_load_file(path, err, err_size);
    const char *env = getenv("IRP_CONFIG");
    if (env && *env) {
        if (access(env, R_OK) < 0) {
            snprintf(err, err_size, "IRP_CONFIG=%s: cannot read the configuration: %s", env, strerror(errno));
            return NULL;
        }
        return cf_load_file(env, err, err_size);
    }
    if (access("irp.conf.lua", F_OK) == 0)
        return cf_load_file("irp.conf.lua", err, err_size);
    return cf_default();
}

cf_config *cf_default(void)
{
    cf_config *c = ut_xcalloc(1, sizeof *c);
    c->embedded = 1;
    c->count = 1;
    c->items = ut_xcalloc(1, sizeof *c->items);
    c->items[0].name = ut_xstrdup("stdout");
    c->items[0].kind = NT_STDOUT;
    return c;
}

static void value_free(cf_value *v)
{
    free(v->literal);
    free(v->secret);
}

void cf_free(cf_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->count; i++) {
        cf_notifier *n = &c->items[i];
        free(n->name);
        value_free(&n->url);
        value_free(&n->signing_secret);
        value_free(&n->routing_key);
        value_free(&n->api_key);
        free(n->api_url);
        free(n->path);
        free(n->ca_file);
        free(n->source);
    }
    free(c->items);
    for (size_t i = 0; i < c->nattach; i++) {
        free(c->attach[i].playbook);
        free(c->attach[i].path);
    }
    free(c->attach);
    free(c->path);
    free(c);
}

const cf_notifier *cf_find(const cf_config *c, const char *name)
{
    if (!c || !name)
        return NULL;
    for (size_t i = 0; i < c->count; i++)
        if (!strcmp(c->items[i].name, name))
            return &c->items[i];
    return c->embedded && c->count ? &c->items[0] : NULL;
}

const char *cf_suggest(const cf_config *c, const char *name)
{
    if (!c || !name || c->count == 0)
        return NULL;
    const char **names = ut_xcalloc(c->count + 1, sizeof *names);
    for (size_t i = 0; i < c->count; i++)
        names[i] = c->items[i].name;
    const char *best = ut_closest(name, names, 3);
    free(names);
    return best;
}

const char *cf_kind_name(nt_kind kind)
{
    switch (kind) {
    case NT_WEBHOOK: return "webhook";
    case NT_SLACK: return "slack";
    case NT_TEAMS: return "teams";
    case NT_PAGERDUTY: return "pagerduty";
    case NT_OPSGENIE: return "opsgenie";
    case NT_STDOUT: return "stdout";
    case NT_FILE: return "file";
    }
    return "?";
}

int cf_kind_is_http(nt_kind kind)
{
    return kind == NT_WEBHOOK || kind == NT_SLACK || kind == NT_TEAMS || kind == NT_PAGERDUTY || kind == NT_OPSGENIE;
}

int cf_kind_tracks(nt_kind kind)
{
    return kind == NT_PAGERDUTY || kind == NT_OPSGENIE;
}

int cf_value_set(const cf_value *v)
{
    return v && (v->literal || v->secret);
}

const char *cf_resolve(const cf_value *v, char *err, size_t err_size)
{
    if (v->literal)
        return v->literal;
    if (v->secret)
        return sec_get(v->secret, err, err_size);
    snprintf(err, err_size, "not configured");
    return NULL;
}
