/*
 * loader.c — the load of a playbook file (plus --attach files) into a
 * sandbox state: text-only chunks named "@path", top-level code under a
 * deadline, every problem collected as {"file","line","msg"}. The DSL
 * functions those files call are in loader_dsl.c. Validation of the returned playbook is in
 * loader_validate.c, templates in loader_template.c.
 * Depends on: Lua 5.4, jansson, sandbox.h, util.h.
 */
#include "loader.h"
#include "loader_internal.h"
#include "util.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PB_MAX_FILE ((size_t)16 << 20)

const char pb_key_step_mt = 0;
const char pb_key_playbook_mt = 0;
const char pb_key_attach_mt = 0;
const char pb_key_fns = 0;
const char pb_key_problems = 0;
const char pb_key_sources = 0;

/* Keeps the text of path (taken) for the lines of fields. */
static void keep_source(pb_sources *src, const char *path, char *text, size_t len)
{
    src->v = ut_xrealloc(src->v, (src->n + 1) * sizeof *src->v);
    src->v[src->n].path = ut_xstrdup(path);
    src->v[src->n].text = text;
    src->v[src->n].len = len;
    src->n++;
}

static void free_sources(pb_sources *src)
{
    for (size_t i = 0; i < src->n; i++) {
        free(src->v[i].path);
        free(src->v[i].text);
    }
    free(src->v);
}

void pb_problem(json_t *problems, const char *file, int line, const char *fmt, ...)
{
    ut_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    ut_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    char *clean = ut_utf8_sanitize(b.data ? b.data : "", b.len, NULL);
    char *fclean = ut_utf8_sanitize(file ? file : "?", strlen(file ? file : "?"), NULL);
    json_array_append_new(problems, json_pack("{s:s,s:i,s:s}", "file", fclean, "line", line,
                                              "msg", clean));
    free(clean);
    free(fclean);
    ut_buf_free(&b);
}

/* --------------------------------------------------------------- loading */

/* Matches a leading "CHUNK:LINE:" of a Lua message against the known file
 * paths. CHUNK is Lua's short_src: the path, or "..." and its tail when the
 * path is long. On a match sets *file and *line and returns the rest. */
static const char *split_where(const char *msg, const char *const *paths, const char **file,
                               int *line)
{
    for (const char *colon = strchr(msg, ':'); colon; colon = strchr(colon + 1, ':')) {
        const char *d = colon + 1;
        if (*d < '0' || *d > '9')
            continue;
        long n = 0;
        while (*d >= '0' && *d <= '9' && n < 100000000)
            n = n * 10 + (*d++ - '0');
        if (*d != ':')
            continue;
        size_t plen = (size_t)(colon - msg);
        for (size_t i = 0; paths[i]; i++) {
            const char *p = paths[i];
            size_t len = strlen(p);
            int match = (plen == len && strncmp(msg, p, len) == 0);
            if (!match && plen > 3 && strncmp(msg, "...", 3) == 0 && len >= plen - 3)
                match = strncmp(p + len - (plen - 3), msg + 3, plen - 3) == 0;
            if (match) {
                *file = p;
                *line = (int)n;
                d++;
                while (*d == ' ')
                    d++;
                return d;
            }
        }
    }
    return NULL;
}

/* Turns a failed load/run of a chunk into a problem. */
static void failure_problem(lua_State *L, json_t *problems, const sb_failure *f,
                            const char *const *paths, const char *chunk_path, const char *while_what)
{
    const char *file = NULL;
    int line = 0;
    /* the playbook, the attach files, then every plugin loaded so far */
    size_t n = 0;
    while (paths[n])
        n++;
    const char **all = ut_xcalloc(n + 65, sizeof *all);
    memcpy(all, paths, n * sizeof *all);
    sb_plugin_files(L, all + n, 64);
    paths = all;
    const char *rest = NULL;
    if (f->kind == SB_MEMORY)
        pb_problem(problems, f->file ? f->file : chunk_path, f->line ? f->line : 1, "%s %s",
                   f->msg, while_what);
    else if ((rest = split_where(f->msg, paths, &file, &line)) != NULL)
        pb_problem(problems, file, line, "%s", rest);
    else
        pb_problem(problems, f->file ? f->file : chunk_path, f->line ? f->line : 1, "%s", f->msg);
    free(all);
}

static char *read_file(const char *path, size_t *len, char **err)
{
    const char *why;
    int too_big;
    char *text = ut_read_regular(path, PB_MAX_FILE, len, &why, &too_big);
    if (!text)
        *err = too_big ? ut_xasprintf("larger than %zu MiB", PB_MAX_FILE >> 20) : ut_xasprintf("cannot read: %s", why);
    return text;
}

/* Loads and runs one chunk (kind: "playbook" or "attach file"); leaves its
 * single result (or nothing) on the stack. Returns 1 when a result was
 * pushed. [-0, +(0|1), -] */
static int run_chunk(sb_state *sb, const char *path, const char *kind, const pb_request *req,
                     const char *const *paths, pb_sources *src, json_t *problems)
{
    lua_State *L = sb->L;
    size_t len = 0;
    char *err = NULL;
    char *text = read_file(path, &len, &err);
    if (!text) {
        pb_problem(problems, path, 0, "%s", err);
        free(err);
        return 0;
    }
    char *chunkname = ut_xasprintf("@%s", path);
    int status = luaL_loadbufferx(L, text, len, chunkname, "t");
    free(chunkname);
    keep_source(src, path, text, len);
    if (status != LUA_OK) {
        sb_failure f;
        memset(&f, 0, sizeof f);
        if (status == LUA_ERRMEM) {
            f.kind = SB_MEMORY;
            f.msg = ut_xasprintf("memory limit of %zu MiB reached", sb->limit >> 20);
        } else {
            f.kind = SB_ERROR;
            f.msg = sb_error_text(sb, -1);
        }
        lua_pop(L, 1);
        failure_problem(L, problems, &f, paths, path, "while compiling the file");
        sb_failure_free(&f);
        return 0;
    }
    int64_t ms = req->timeout_ms > 0 ? req->timeout_ms : PB_LOAD_TIMEOUT_MS;
    if (req->on_file)
        req->on_file(req->on_file_ud, path, kind);
    sb_deadline_arm_top_level(sb, ms, kind);
    sb_failure f;
    int outcome = sb_pcall(sb, 0, 1, &f);
    sb_deadline_disarm(sb);
    if (outcome != SB_OK) {
        char what[64];
        snprintf(what, sizeof what, "while running the %s's top-level code", kind);
        failure_problem(L, problems, &f, paths, path, what);
        sb_failure_free(&f);
        return 0;
    }
    return 1;
}

static int is_object(lua_State *L, int idx, const void *mt_key)
{
    if (!lua_istable(L, idx) || !lua_getmetatable(L, idx))
        return 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, mt_key);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

/* Moves the DSL's problems (registry list) into problems. [-0, +0, -] */
static void take_dsl_problems(lua_State *L, json_t *problems)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &pb_key_problems) == LUA_TTABLE) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, i);
            lua_getfield(L, -1, "file");
            lua_getfield(L, -2, "line");
            lua_getfield(L, -3, "msg");
            pb_problem(problems, lua_tostring(L, -3), (int)lua_tointeger(L, -2), "%s",
                       lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
            lua_pop(L, 4);
        }
    }
    lua_pop(L, 1);
}

typedef struct {
    const pb_request *req;
    json_t *problems;
    json_t *outline;
    pb_sources *sources;
} validate_args;

/* Runs pb_validate under lua_pcall (a memory error becomes a problem),
 * with the files' texts at registry key pb_key_sources. Arguments:
 * playbook object, attach list, lightuserdata args. [-3, +0, m] */
static int validate_protected(lua_State *L)
{
    validate_args *a = lua_touserdata(L, 3);
    lua_pushlightuserdata(L, a->sources);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &pb_key_sources);
    a->outline = pb_validate(L, 1, 2, a->req, a->problems);
    return 0;
}

typedef struct {
    json_t *p;
    size_t group, index;
} sort_item;

static int cmp_problems(const void *x, const void *y)
{
    const sort_item *a = x, *b = y;
    if (a->group != b->group)
        return a->group < b->group ? -1 : 1;
    long long la = json_integer_value(json_object_get(a->p, "line"));
    long long lb = json_integer_value(json_object_get(b->p, "line"));
    if (la != lb)
        return la < lb ? -1 : 1;
    return a->index < b->index ? -1 : (a->index > b->index);
}

/* Sorts problems by file (in order of first appearance, the playbook
 * first) and line, keeping discovery order within a line. */
static json_t *sorted_problems(json_t *problems, const char *main_file)
{
    size_t n = json_array_size(problems);
    sort_item *items = ut_xcalloc(n ? n : 1, sizeof *items);
    const char **files = ut_xcalloc(n + 2, sizeof *files);
    size_t nfiles = 0;
    files[nfiles++] = main_file;
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(problems, i);
        const char *f = json_string_value(json_object_get(p, "file"));
        size_t g = 0;
        while (g < nfiles && strcmp(files[g], f ? f : "") != 0)
            g++;
        if (g == nfiles)
            files[nfiles++] = f ? f : "";
        items[i] = (sort_item){p, g, i};
    }
    qsort(items, n, sizeof *items, cmp_problems);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(out, items[i].p);
    free(items);
    free(files);
    return out;
}

/* Gives the state its `require`: the request's plugin dirs first, then
 * the defaults of sb_require_open. */
static void install_require(sb_state *sb, const pb_request *req, json_t *problems)
{
    size_t n = json_array_size(req->plugins);
    const char **dirs = ut_xcalloc(n + 1, sizeof *dirs);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *d = json_string_value(json_array_get(req->plugins, i));
        if (d && *d)
            dirs[k++] = d;
    }
    if (sb_require_open(sb, dirs, 1) < 0)
        pb_problem(problems, req->file, 1, "memory limit reached while preparing require");
    free(dirs);
}

/* An attach list item: a path, or {"playbook": id, "path": p} from the
 * configuration's attach section (config.h). NULL when neither. */
static const char *attach_item_path(const json_t *item)
{
    return json_is_string(item) ? json_string_value(item) : json_string_value(json_object_get(item, "path"));
}

/* The id the playbook object at idx declares, or NULL. The string stays
 * reachable from the object. [-0, +0, -] */
static const char *playbook_id(lua_State *L, int idx)
{
    const char *id = NULL;
    lua_pushliteral(L, "spec");
    lua_rawget(L, idx);
    if (lua_istable(L, -1)) {
        lua_pushliteral(L, "id");
        lua_rawget(L, -2);
        id = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return id;
}

int pb_load(sb_state *sb, const pb_request *req, json_t **outline, json_t **errors)
{
    lua_State *L = sb->L;
    int top = lua_gettop(L);
    json_t *problems = json_array();
    *outline = NULL;
    *errors = NULL;

    install_require(sb, req, problems);

    size_t nattach = json_array_size(req->attach);
    const char **paths = ut_xcalloc(nattach + 2, sizeof *paths);
    paths[0] = req->file;
    for (size_t i = 0; i < nattach; i++) {
        const char *p = attach_item_path(json_array_get(req->attach, i));
        paths[i + 1] = p ? p : "?";
    }

    pb_sources sources = {NULL, 0};
    int have_pb = run_chunk(sb, req->file, "playbook", req, paths, &sources, problems);
    int pb_idx = 0;
    if (have_pb) {
        pb_idx = lua_gettop(L);
        if (!is_object(L, pb_idx, &pb_key_playbook_mt)) {
            pb_problem(problems, req->file, 1,
                       "the file does not return a playbook (end it with: return playbook { ... })");
            have_pb = 0;
        }
    } else {
        lua_pushnil(L);
        pb_idx = lua_gettop(L);
    }

    /* attach files: each returns an attach block or a list of them */
    const char *pb_id = have_pb ? playbook_id(L, pb_idx) : NULL;
    char **loaded = ut_xcalloc(nattach + 1, sizeof *loaded);
    size_t nloaded = 0;
    lua_newtable(L);
    int attach_idx = lua_gettop(L);
    for (size_t i = 0; i < nattach; i++) {
        const char *path = paths[i + 1];
        const char *only_for = json_string_value(json_object_get(json_array_get(req->attach, i), "playbook"));
        if (only_for && (!pb_id || strcmp(only_for, pb_id) != 0))
            continue; /* the configuration's attach section, for another playbook */
        /* the same file twice (--attach and the configuration, say) is loaded once */
        char *real = realpath(path, NULL);
        int seen = 0;
        for (size_t k = 0; real && k < nloaded && !seen; k++)
            seen = !strcmp(loaded[k], real);
        if (seen) {
            free(real);
            continue;
        }
        if (real)
            loaded[nloaded++] = real;
        if (!run_chunk(sb, path, "attach file", req, paths, &sources, problems))
            continue;
        int r = lua_gettop(L);
        int ok = 1;
        if (is_object(L, r, &pb_key_attach_mt)) {
            lua_createtable(L, 1, 0);
            lua_pushvalue(L, r);
            lua_rawseti(L, -2, 1);
            lua_replace(L, r);
        } else if (lua_istable(L, r) && lua_rawlen(L, r) > 0) {
            for (lua_Integer k = 1; k <= (lua_Integer)lua_rawlen(L, r); k++) {
                lua_rawgeti(L, r, k);
                ok = ok && is_object(L, -1, &pb_key_attach_mt);
                lua_pop(L, 1);
            }
        } else {
            ok = 0;
        }
        if (!ok) {
            pb_problem(problems, path, 1,
                       "the file does not return an attach block (end it with: return attach { "
                       "after = \"step-id\", step \"id\" { ... } })");
            lua_pop(L, 1);
            continue;
        }
        for (lua_Integer k = 1; k <= (lua_Integer)lua_rawlen(L, r); k++) {
            lua_createtable(L, 0, 2);
            lua_pushstring(L, path);
            lua_setfield(L, -2, "file");
            lua_rawgeti(L, r, k);
            lua_setfield(L, -2, "block");
            lua_rawseti(L, attach_idx, (lua_Integer)lua_rawlen(L, attach_idx) + 1);
        }
        lua_pop(L, 1);
    }

    /* The other files the steps came from (a resume checks they did not
     * change): the attach files loaded, then the plugins. */
    json_t *source_files = json_array();
    for (size_t k = 0; k < nloaded; k++) {
        json_array_append_new(source_files, json_string(loaded[k]));
        free(loaded[k]);
    }
    free(loaded);

    take_dsl_problems(L, problems);

    if (have_pb) {
        validate_args a = {req, problems, NULL, &sources};
        lua_pushcfunction(L, validate_protected);
        lua_pushvalue(L, pb_idx);
        lua_pushvalue(L, attach_idx);
        lua_pushlightuserdata(L, &a);
        if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
            pb_problem(problems, req->file, 1, "%s while checking the playbook",
                       sb->mem_hit ? "memory limit reached" : "internal error");
            lua_pop(L, 1);
        }
        lua_pushnil(L); /* setting nil never allocates */
        lua_rawsetp(L, LUA_REGISTRYINDEX, &pb_key_sources);
        *outline = a.outline;
    }
    free_sources(&sources);
    lua_settop(L, top);
    free(paths);

    if (json_array_size(problems) > 0 || !*outline) {
        if (json_array_size(problems) == 0)
            pb_problem(problems, req->file, 1, "the playbook could not be loaded");
        json_decref(*outline);
        *outline = NULL;
        *errors = sorted_problems(problems, req->file);
        json_decref(problems);
        json_decref(source_files);
        return -1;
    }
    json_decref(problems);
    const char *plugin_files[256];
    size_t nplugins = sb_plugin_files(L, plugin_files, 256);
    for (size_t i = 0; i < nplugins; i++)
        if (plugin_files[i])
            json_array_append_new(source_files, json_string(plugin_files[i]));
    json_object_set_new(*outline, "sources", source_files);
    return 0;
}
