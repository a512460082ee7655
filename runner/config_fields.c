/*
 * config_fields.c — checking the `notifiers` table of a configuration and
 * copying it into cf_notifier structures: which fields each type takes,
 * their value types (URL, secret marker, duration, count), defaults, and
 * "did you mean" for unknown types and fields. Keys (routing_key, api_key,
 * signing_secret) must be `secret "NAME"`: a key written into the file
 * would end up in version control.
 * Depends on: Lua 5.4, config_internal.h, util.h.
 */
#include "config.h"
#include "config_internal.h"
#include "util.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define K(k) (1u << (k))
#define HTTP_KINDS (K(NT_WEBHOOK) | K(NT_SLACK) | K(NT_TEAMS) | K(NT_PAGERDUTY) | K(NT_OPSGENIE))
#define RETRY_KINDS (HTTP_KINDS | K(NT_FILE))
#define ALL_KINDS (HTTP_KINDS | K(NT_STDOUT) | K(NT_FILE))

typedef enum {
    F_TYPE, F_URL, F_SIGNING_SECRET, F_ROUTING_KEY, F_SOURCE, F_API_KEY, F_API_URL, F_PATH, F_CA_FILE,
    F_TIMEOUT, F_CONNECT_TIMEOUT, F_MAX_ATTEMPTS, F_GIVE_UP_AFTER, F_BACKOFF, F_COUNT
} field_id;

static const struct {
    const char *name;
    unsigned kinds;
} fields[F_COUNT] = {
    [F_TYPE] = {"type", ALL_KINDS},
    [F_URL] = {"url", K(NT_WEBHOOK) | K(NT_SLACK) | K(NT_TEAMS) | K(NT_PAGERDUTY)},
    [F_SIGNING_SECRET] = {"signing_secret", K(NT_WEBHOOK)},
    [F_ROUTING_KEY] = {"routing_key", K(NT_PAGERDUTY)},
    [F_SOURCE] = {"source", K(NT_PAGERDUTY)},
    [F_API_KEY] = {"api_key", K(NT_OPSGENIE)},
    [F_API_URL] = {"api_url", K(NT_OPSGENIE)},
    [F_PATH] = {"path", K(NT_FILE)},
    [F_CA_FILE] = {"ca_file", HTTP_KINDS},
    [F_TIMEOUT] = {"timeout", HTTP_KINDS},
    [F_CONNECT_TIMEOUT] = {"connect_timeout", HTTP_KINDS},
    [F_MAX_ATTEMPTS] = {"max_attempts", RETRY_KINDS},
    [F_GIVE_UP_AFTER] = {"give_up_after", RETRY_KINDS},
    [F_BACKOFF] = {"backoff", RETRY_KINDS},
};

static const char *const field_names[F_COUNT + 1] = {
    "type", "url", "signing_secret", "routing_key", "source", "api_key", "api_url", "path", "ca_file",
    "timeout", "connect_timeout", "max_attempts", "give_up_after", "backoff", NULL};

static const char *const kind_names[] = {"webhook", "slack", "teams", "pagerduty", "opsgenie", "stdout", "file", NULL};

static int valid_notifier_name(const char *s, size_t len)
{
    if (len == 0 || len > 64)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.'))
            return 0;
    }
    return 1;
}

static int valid_url(const char *u)
{
    const char *host = !strncmp(u, "https://", 8) ? u + 8 : !strncmp(u, "http://", 7) ? u + 7 : NULL;
    if (!host || !*host || *host == '/' || *host == ':')
        return 0;
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}

/* The fields a kind takes, for messages: "url, ca_file, timeout, ...". */
static void kind_fields(nt_kind kind, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (int f = 1; f < F_COUNT; f++) {
        if (!(fields[f].kinds & K(kind)))
            continue;
        int n = snprintf(out + used, size - used, "%s%s", used ? ", " : "", fields[f].name);
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
    if (!used)
        snprintf(out, size, "no other field");
}

typedef struct {
    cf_job *job;
    lua_State *L;
    cf_notifier *n;
    int vidx;  /* the field's value */
    int line;  /* where the field is */
} field_ctx;

static int field_line(cf_job *job, const cf_notifier *n, const char *field)
{
    int l = cf_find_line(job, n->line > 0 ? n->line : 1, field, 0);
    return l ? l : n->line;
}

/* A literal string (when allowed) or a secret marker. [-0, +0, m] */
static int read_value(field_ctx *fc, const char *field, cf_value *out, int secret_only)
{
    lua_State *L = fc->L;
    if (cf_is_secret(L, fc->vidx)) {
        lua_getfield(L, fc->vidx, "name");
        out->secret = ut_xstrdup(lua_tostring(L, -1));
        lua_getfield(L, fc->vidx, "line");
        int line = (int)lua_tointeger(L, -1);
        if (line > 0)
            fc->line = line;
        lua_pop(L, 2);
        return 1;
    }
    if (!secret_only && lua_type(L, fc->vidx) == LUA_TSTRING) {
        out->literal = ut_xstrdup(lua_tostring(L, fc->vidx));
        return 1;
    }
    if (secret_only)
        cf_fail(fc->job, fc->line, "notifier '%s': %s must be secret \"NAME\" (keys are never written into the configuration; got %s)",
                fc->n->name, field, luaL_typename(L, fc->vidx));
    else
        cf_fail(fc->job, fc->line, "notifier '%s': %s must be a string or secret \"NAME\" (got %s)", fc->n->name, field,
                luaL_typename(L, fc->vidx));
    return 0;
}

/* [-0, +0, m] */
static int read_string(field_ctx *fc, const char *field, char **out)
{
    if (lua_type(fc->L, fc->vidx) != LUA_TSTRING || lua_rawlen(fc->L, fc->vidx) == 0) {
        cf_fail(fc->job, fc->line, "notifier '%s': %s must be a non-empty string (got %s)", fc->n->name, field,
                luaL_typename(fc->L, fc->vidx));
        return 0;
    }
    *out = ut_xstrdup(lua_tostring(fc->L, fc->vidx));
    return 1;
}

/* A number of seconds or a duration string. [-0, +0, m] */
static int read_duration(field_ctx *fc, const char *field, int64_t *out)
{
    lua_State *L = fc->L;
    int64_t ms = -1;
    if (lua_type(L, fc->vidx) == LUA_TNUMBER) {
        double s = lua_tonumber(L, fc->vidx);
        if (s > 0 && s < 1e9)
            ms = (int64_t)llround(s * 1000);
    } else if (lua_type(L, fc->vidx) == LUA_TSTRING) {
        if (ut_parse_duration(lua_tostring(L, fc->vidx), &ms) < 0)
            ms = -1;
    }
    if (ms <= 0) {
        cf_fail(fc->job, fc->line, "notifier '%s': %s must be a duration such as \"10s\", \"500ms\" or \"2m\" (got %s%s%s)",
                fc->n->name, field, lua_type(L, fc->vidx) == LUA_TSTRING ? "\"" : "",
                lua_type(L, fc->vidx) == LUA_TSTRING || lua_type(L, fc->vidx) == LUA_TNUMBER ? lua_tostring(L, fc->vidx)
                                                                                         : luaL_typename(L, fc->vidx),
                lua_type(L, fc->vidx) == LUA_TSTRING ? "\"" : "");
        return 0;
    }
    *out = ms;
    return 1;
}

/* The value at fc->vidx into field f of the notifier. [-0, +0, m] */
static int read_field(field_ctx *fc, field_id f)
{
    cf_notifier *n = fc->n;
    const char *name = fields[f].name;
    switch (f) {
    case F_TYPE:
        return 1; /* read first, before the others */
    case F_URL:
        if (!read_value(fc, name, &n->url, 0))
            return 0;
        if (n->url.literal && !valid_url(n->url.literal)) {
            cf_fail(fc->job, fc->line, "notifier '%s': url '%s' is not an http:// or https:// URL", n->name, n->url.literal);
            return 0;
        }
        return 1;
    case F_SIGNING_SECRET: return read_value(fc, name, &n->signing_secret, 1);
    case F_ROUTING_KEY: return read_value(fc, name, &n->routing_key, 1);
    case F_API_KEY: return read_value(fc, name, &n->api_key, 1);
    case F_SOURCE: return read_string(fc, name, &n->source);
    case F_PATH: return read_string(fc, name, &n->path);
    case F_API_URL:
        if (!read_string(fc, name, &n->api_url))
            return 0;
        if (!valid_url(n->api_url)) {
            cf_fail(fc->job, fc->line, "notifier '%s': api_url '%s' is not an http:// or https:// URL", n->name, n->api_url);
            return 0;
        }
        return 1;
    case F_CA_FILE:
        if (!read_string(fc, name, &n->ca_file))
            return 0;
        if (access(n->ca_file, R_OK) < 0) {
            cf_fail(fc->job, fc->line, "notifier '%s': ca_file '%s' cannot be read", n->name, n->ca_file);
            return 0;
        }
        return 1;
    case F_TIMEOUT: return read_duration(fc, name, &n->timeout_ms);
    case F_CONNECT_TIMEOUT: return read_duration(fc, name, &n->connect_timeout_ms);
    case F_GIVE_UP_AFTER: return read_duration(fc, name, &n->give_up_after_ms);
    case F_BACKOFF: return read_duration(fc, name, &n->backoff_ms);
    case F_MAX_ATTEMPTS: {
        int isnum = 0;
        lua_Integer v = lua_tointegerx(fc->L, fc->vidx, &isnum);
        if (!isnum || v < 1 || v > 1000000) {
            cf_fail(fc->job, fc->line, "notifier '%s': max_attempts must be a whole number from 1 up", n->name);
            return 0;
        }
        n->max_attempts = (int)v;
        return 1;
    }
    case F_COUNT: break;
    }
    return 0;
}

/* The type comes first: it decides which other fields are allowed.
 * [-0, +0, m] */
static int read_type(lua_State *L, cf_job *job, cf_notifier *n, int idx)
{
    static const char kinds_list[] = "webhook, slack, teams, pagerduty, opsgenie, stdout or file";
    lua_getfield(L, idx, "type");
    int line = field_line(job, n, "type");
    if (lua_type(L, -1) != LUA_TSTRING) {
        cf_fail(job, lua_isnil(L, -1) ? n->line : line, "notifier '%s' has %s type (it must be one of %s)", n->name,
                lua_isnil(L, -1) ? "no" : "a non-string", kinds_list);
        lua_pop(L, 1);
        return 0;
    }
    const char *t = lua_tostring(L, -1);
    for (int k = 0; kind_names[k]; k++)
        if (!strcmp(t, kind_names[k])) {
            n->kind = (nt_kind)k;
            lua_pop(L, 1);
            return 1;
        }
    const char *hint = ut_closest(t, kind_names, 3);
    if (hint)
        cf_fail(job, line, "notifier '%s' has unknown type '%s' (did you mean '%s'?)", n->name, t, hint);
    else
        cf_fail(job, line, "notifier '%s' has unknown type '%s' (it must be one of %s)", n->name, t, kinds_list);
    lua_pop(L, 1);
    return 0;
}

static int check_required(cf_job *job, cf_notifier *n)
{
    const char *missing = NULL, *how = NULL;
    switch (n->kind) {
    case NT_WEBHOOK:
    case NT_SLACK:
    case NT_TEAMS:
        if (!cf_value_set(&n->url))
            missing = "url", how = "url = secret \"NAME\" (or a URL in quotes)";
        break;
    case NT_PAGERDUTY:
        if (!cf_value_set(&n->routing_key))
            missing = "routing_key", how = "routing_key = secret \"NAME\"";
        break;
    case NT_OPSGENIE:
        if (!cf_value_set(&n->api_key))
            missing = "api_key", how = "api_key = secret \"NAME\"";
        break;
    case NT_FILE:
        if (!n->path)
            missing = "path", how = "path = \"notifications.jsonl\"";
        break;
    case NT_STDOUT: break;
    }
    if (missing) {
        cf_fail(job, n->line, "notifier '%s' (type '%s') needs %s: add %s", n->name, cf_kind_name(n->kind), missing, how);
        return 0;
    }
    return 1;
}

static void set_defaults(cf_notifier *n)
{
    if (!n->timeout_ms)
        n->timeout_ms = CF_DEFAULT_TIMEOUT_MS;
    if (!n->connect_timeout_ms)
        n->connect_timeout_ms = CF_DEFAULT_CONNECT_TIMEOUT_MS;
    if (n->connect_timeout_ms > n->timeout_ms)
        n->connect_timeout_ms = n->timeout_ms;
    if (!n->give_up_after_ms)
        n->give_up_after_ms = CF_DEFAULT_GIVE_UP_MS;
    if (!n->backoff_ms)
        n->backoff_ms = CF_DEFAULT_BACKOFF_MS;
    if (n->kind == NT_OPSGENIE && !n->api_url)
        n->api_url = ut_xstrdup(CF_DEFAULT_OPSGENIE_URL);
}

/* Reads the notifier table at idx into n. [-0, +0, e] */
static int read_notifier(lua_State *L, cf_job *job, cf_notifier *n, int idx)
{
    n->line = cf_find_line(job, 1, n->name, 1);
    if (!lua_istable(L, idx)) {
        cf_fail(job, n->line, "notifier '%s' must be a table such as { type = \"slack\", url = secret \"SLACK_URL\" } (got %s)",
                n->name, luaL_typename(L, idx));
        return 0;
    }
    if (!read_type(L, job, n, idx))
        return 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        field_ctx fc = {job, L, n, lua_gettop(L), 0};
        if (lua_type(L, -2) != LUA_TSTRING) {
            cf_fail(job, n->line, "notifier '%s' has a field that is not a name (%s): write name = value", n->name,
                    luaL_typename(L, -2));
            lua_pop(L, 2);
            return 0;
        }
        const char *key = lua_tostring(L, -2);
        fc.line = field_line(job, n, key);
        int f = 0;
        while (f < F_COUNT && strcmp(fields[f].name, key) != 0)
            f++;
        if (f == F_COUNT) {
            const char *hint = ut_closest(key, field_names, 3);
            char list[256];
            kind_fields(n->kind, list, sizeof list);
            if (hint)
                cf_fail(job, fc.line, "notifier '%s' has unknown field '%s' (did you mean '%s'?)", n->name, key, hint);
            else
                cf_fail(job, fc.line, "notifier '%s' has unknown field '%s' (type '%s' takes %s)", n->name, key,
                        cf_kind_name(n->kind), list);
            lua_pop(L, 2);
            return 0;
        }
        if (!(fields[f].kinds & K(n->kind))) {
            char list[256];
            kind_fields(n->kind, list, sizeof list);
            cf_fail(job, fc.line, "notifier '%s': field '%s' is not used by type '%s' (it takes %s)", n->name, key,
                    cf_kind_name(n->kind), list);
            lua_pop(L, 2);
            return 0;
        }
        if (!read_field(&fc, (field_id)f)) {
            lua_pop(L, 2);
            return 0;
        }
        lua_pop(L, 1);
    }
    if (!check_required(job, n))
        return 0;
    set_defaults(n);
    return 1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const cf_notifier *)a)->name, ((const cf_notifier *)b)->name);
}

void cf_read_notifiers(lua_State *L, cf_job *job, int idx)
{
    if (lua_isnil(L, idx))
        return; /* a configuration without notifiers is allowed (and useless) */
    if (!lua_istable(L, idx)) {
        cf_fail(job, cf_find_line(job, 1, "notifiers", 0), "notifiers must be a table of named notifiers (got %s)",
                luaL_typename(L, idx));
        return;
    }
    size_t cap = 0;
    cf_config *out = job->out;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t len = 0;
        const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
        if (!name || !valid_notifier_name(name, len)) {
            cf_fail(job, name ? cf_find_line(job, 1, name, 1) : cf_find_line(job, 1, "notifiers", 0),
                    "notifier name %s%s%s is not valid: use 1-64 letters, digits, '-', '_' or '.' (e.g. [\"slack-ir\"] = { ... })",
                    name ? "'" : "", name ? name : luaL_typename(L, -2), name ? "'" : "");
            lua_pop(L, 2);
            return;
        }
        if (out->count == cap) {
            cap = cap ? cap * 2 : 8;
            out->items = ut_xrealloc(out->items, cap * sizeof *out->items);
        }
        cf_notifier *n = &out->items[out->count++];
        memset(n, 0, sizeof *n);
        n->name = ut_xstrdup(name);
        if (!read_notifier(L, job, n, lua_gettop(L))) {
            lua_pop(L, 2);
            return;
        }
        lua_pop(L, 1);
    }
    if (out->count > 1)
        qsort(out->items, out->count, sizeof *out->items, by_name);
}
