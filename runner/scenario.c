/*
 * scenario.c — reading a drill scenario file (see include/scenario.h).
 * The file runs in its own small lua_State, as the notifier configuration
 * does (config.c): base without dofile/loadfile/load/print, string without
 * dump, table, math, utf8; a counting allocator caps memory and a count
 * hook gives the top-level chunk a deadline. `scenario { ... }` only hands
 * its table back; the result is converted to JSON (luajson.c) and the
 * state closed, then every field is checked here (scenario_fields.c).
 * Depends on: Lua 5.4, jansson, luajson.h, util.h.
 */
#include "scenario.h"
#include "scenario_internal.h"
#include "luajson.h"
#include "luafile.h"
#include "util.h"

#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SC_MEMORY_LIMIT ((size_t)16 << 20)
#define SC_DEADLINE_MS 2000
#define SC_FILE_MAX ((size_t)1 << 20)

/* ---------------------------------------------------------------- errors */

void sc_fail(sc_job *job, int line, const char *fmt, ...)
{
    if (job->failed)
        return; /* the first problem is the one worth reading */
    job->failed = 1;
    int n = line > 0 ? snprintf(job->err, job->err_size, "%s:%d: ", job->sc->path, line)
                     : snprintf(job->err, job->err_size, "%s: ", job->sc->path);
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

/* 1 when the line assigns `name` (name = ..., ["name"] = ...) or, with
 * quoted, holds "name" as a string. */
static int line_has(const char *p, size_t len, const char *name, int quoted)
{
    size_t wl = strlen(name);
    for (size_t i = 0; i + wl <= len; i++) {
        if (memcmp(p + i, name, wl) != 0)
            continue;
        int q = i > 0 && (p[i - 1] == '"' || p[i - 1] == '\'');
        if (q && i + wl < len && p[i + wl] == p[i - 1]) {
            if (quoted)
                return 1;
            size_t k = i - 1;
            while (k > 0 && (p[k - 1] == ' ' || p[k - 1] == '\t'))
                k--;
            if (k > 0 && p[k - 1] == '[')
                return 1;
            continue;
        }
        if (quoted || (i > 0 && is_ident_char(p[i - 1])))
            continue;
        size_t j = i + wl;
        if (j < len && is_ident_char(p[j]))
            continue;
        while (j < len && (p[j] == ' ' || p[j] == '\t'))
            j++;
        if (j < len && p[j] == '=' && (j + 1 >= len || p[j + 1] != '='))
            return 1;
    }
    return 0;
}

/* The tables carry no line numbers, so the source is searched instead:
 * good enough to point at the right line of a hand-written file. The
 * nth (1-based) match at or after from_line. */
int sc_find_nth_line(const sc_scenario *sc, int from_line, const char *name, int quoted, int nth)
{
    if (!sc->src || !name)
        return 0;
    const char *p = sc->src, *end = sc->src + sc->src_len;
    int line = 1;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (line >= from_line && line_has(p, len, name, quoted) && --nth <= 0)
            return line;
        if (!nl)
            break;
        p = nl + 1;
        line++;
    }
    return 0;
}

int sc_find_line(const sc_scenario *sc, int from_line, const char *name)
{
    return sc_find_nth_line(sc, from_line, name, 0, 1);
}

/* ------------------------------------------------------------ the state */

/* scenario { ... } -> the same table, checked to be one. [-1, +1, e] */
static int l_scenario(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    return 1;
}

/* [-0, +0, e] */
static void sc_sandbox(lua_State *L)
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
    lua_register(L, "scenario", l_scenario);
}

/* The whole load, protected: even a memory error becomes a message.
 * [-1, +0, -] (the job as light userdata) */
static int sc_pmain(lua_State *L)
{
    sc_job *job = lua_touserdata(L, 1);
    lua_settop(L, 0);
    sc_sandbox(L);
    char *chunk = ut_xasprintf("@%s", job->sc->path);
    int lrc = luaL_loadbufferx(L, job->sc->src, job->sc->src_len, chunk, "t");
    free(chunk);
    if (lrc != LUA_OK) {
        job->failed = 1;
        snprintf(job->err, job->err_size, "%s", lua_tostring(L, -1));
        return 0;
    }
    lf_arm_deadline(L);
    int rc = lua_pcall(L, 0, 1, 0);
    lf_disarm_deadline(L);
    if (rc != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        job->failed = 1;
        snprintf(job->err, job->err_size, "%s", msg ? msg : "the scenario raised an error that is not a message");
        return 0;
    }
    if (!lua_istable(L, -1)) {
        sc_fail(job, 0, "the file returns %s; it should end with `return scenario { title = ..., ... }`",
                lua_isnil(L, -1) ? "nothing" : luaL_typename(L, -1));
        return 0;
    }
    char *cerr = NULL;
    job->root = lj_from_lua(L, -1, "scenario", LJ_NO_SECRETS, 0, &cerr);
    if (!job->root) {
        sc_fail(job, 0, "%s", cerr ? cerr : "cannot be read");
        free(cerr);
    }
    return 0;
}

sc_scenario *sc_load_text(const char *text, size_t len, const char *chunkname, char *err, size_t err_size)
{
    sc_scenario *sc = ut_xcalloc(1, sizeof *sc);
    sc->path = ut_xstrdup(chunkname);
    sc->src = ut_xmalloc(len + 1);
    memcpy(sc->src, text, len);
    sc->src[len] = '\0';
    sc->src_len = len;
    sc_job job;
    memset(&job, 0, sizeof job);
    job.sc = sc;
    job.err = err;
    job.err_size = err_size;
    err[0] = '\0';

    lf_limits ls = {.limit = SC_MEMORY_LIMIT, .deadline_ms = SC_DEADLINE_MS, .what = "scenario"};
    lua_State *L = lf_newstate(&ls);
    if (!L) {
        snprintf(err, err_size, "%s: cannot create a Lua state (out of memory)", chunkname);
        sc_free(sc);
        return NULL;
    }
    lua_pushcfunction(L, sc_pmain);
    lua_pushlightuserdata(L, &job);
    int rc = lua_pcall(L, 1, 0, 0);
    if (rc != LUA_OK && !job.failed) {
        const char *msg = lua_tostring(L, -1);
        snprintf(err, err_size, "%s: %s", chunkname, msg ? msg : "error while loading");
        job.failed = 1;
    }
    lua_close(L);
    if (ls.mem_hit && job.failed)
        snprintf(err, err_size, "%s: the scenario uses more than %zu MiB of memory", chunkname,
                 SC_MEMORY_LIMIT >> 20);
    if (!job.failed)
        sc_read_fields(&job);
    json_decref(job.root);
    if (job.failed) {
        sc_free(sc);
        return NULL;
    }
    return sc;
}

sc_scenario *sc_load_file(const char *path, char *err, size_t err_size)
{
    const char *why;
    int too_big;
    size_t len;
    char *text = ut_read_regular(path, SC_FILE_MAX, &len, &why, &too_big);
    if (!text) {
        snprintf(err, err_size, too_big ? "%s: larger than 1 MiB: not a scenario" : "%s: cannot read the scenario: %s",
                 path, why);
        return NULL;
    }
    sc_scenario *sc = sc_load_text(text, len, path, err, err_size);
    free(text);
    return sc;
}

char *sc_playbook_path(const sc_scenario *sc)
{
    if (!sc || !sc->playbook)
        return NULL;
    if (sc->playbook[0] == '/')
        return ut_xstrdup(sc->playbook);
    const char *slash = sc->path ? strrchr(sc->path, '/') : NULL;
    if (!slash)
        return ut_xstrdup(sc->playbook);
    return ut_xasprintf("%.*s/%s", (int)(slash - sc->path), sc->path, sc->playbook);
}

void sc_note_playbook(const sc_scenario *sc, const char *playbook)
{
    char *own = sc_playbook_path(sc);
    if (!own || !playbook) {
        free(own);
        return;
    }
    char *a = realpath(own, NULL), *b = realpath(playbook, NULL);
    if (!a || !b || strcmp(a, b) != 0)
        fprintf(stderr, "note: the scenario %s is written for %s (playbook = \"%s\"), and this drills %s\n", sc->path,
                a ? a : own, sc->playbook, b ? b : playbook);
    free(a);
    free(b);
    free(own);
}

void sc_free(sc_scenario *sc)
{
    if (!sc)
        return;
    free(sc->path);
    free(sc->title);
    free(sc->playbook);
    json_decref(sc->inputs);
    free(sc->narrative);
    json_decref(sc->participants);
    json_decref(sc->injects);
    json_decref(sc->answers);
    json_decref(sc->outcomes);
    json_decref(sc->expect);
    free(sc->src);
    free(sc);
}
