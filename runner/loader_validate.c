/*
 * loader_validate.c — checks the playbook object a file returned (fields,
 * inputs, objectives, escalation, the step list, the -v vars) and builds the
 * OUTLINE of proto.h. Steps themselves are checked in loader_steps.c.
 * Depends on: Lua 5.4, jansson, loader_internal.h, util.h.
 */
#include "loader_internal.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const playbook_fields[] = {
    "id", "title", "version", "severity", "description", "references", "source", "tags",
    "phases", "inputs", "objectives", "escalation", "steps", NULL};
static const char *const severities[] = {"info", "low", "medium", "high", "critical", NULL};
static const char *const input_fields[] = {"required", "doc", "default", NULL};
static const char *const tier_fields[] = {"after", "notify", NULL};

/* [A-Za-z0-9][A-Za-z0-9_.-]{0,63} */
static int valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
            return 0;
    }
    return 1;
}

static json_t *jstr_or_null(const char *s)
{
    if (!s)
        return json_null();
    char *clean = ut_utf8_sanitize(s, strlen(s), NULL);
    json_t *j = json_string(clean);
    free(clean);
    return j;
}

/* inputs = { name = { required = bool, doc = "...", default = "x" | 3 } } */
static json_t *check_inputs(pb_site *s, int t)
{
    lua_State *L = s->L;
    json_t *out = json_object();
    if (pb_field_push(L, t, "inputs") == LUA_TNIL) {
        lua_pop(L, 1);
        return out;
    }
    int in = lua_gettop(L);
    pb_site ins = pb_site_sub(s, "inputs", "inputs");
    if (!lua_istable(L, in)) {
        pb_problem(s->problems, s->file, pb_site_line(s, "inputs"),
                   "field 'inputs' of playbook must be a table (inputs = { host = { required = true "
                   "} }), not %s",
                   pb_type_phrase(L, in));
        lua_pop(L, 1);
        return out;
    }
    lua_pushnil(L);
    while (lua_next(L, in)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            pb_problem(s->problems, s->file, pb_site_line(s, "inputs"),
                       "field 'inputs' of playbook must map input names to tables, found a key that is %s",
                       pb_type_phrase(L, -2));
            lua_pop(L, 1);
            continue;
        }
        const char *name = lua_tostring(L, -2);
        char owner[128];
        snprintf(owner, sizeof owner, "input '%.64s'", name);
        if (!lua_istable(L, -1)) {
            pb_problem(s->problems, s->file, pb_site_line(&ins, name),
                       "input '%.64s' must be a table ({ required = true, doc = \"...\" }), not %s",
                       name, pb_type_phrase(L, -1));
            lua_pop(L, 1);
            continue;
        }
        pb_site is = pb_site_sub(&ins, name, owner);
        int spec = lua_gettop(L);
        pb_check_unknown(&is, spec, input_fields);
        int required = 0;
        const char *doc = NULL;
        pb_field_bool(&is, spec, "required", &required);
        pb_field_string(&is, spec, "doc", &doc);
        json_t *def = json_null();
        int dt = pb_field_push(L, spec, "default");
        if (dt == LUA_TSTRING) {
            def = jstr_or_null(lua_tostring(L, -1));
        } else if (dt == LUA_TNUMBER) {
            char num[64];
            if (lua_isinteger(L, -1))
                snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, -1));
            else
                snprintf(num, sizeof num, "%.14g", (double)lua_tonumber(L, -1));
            def = json_string(num);
        } else if (dt != LUA_TNIL) {
            pb_problem(s->problems, s->file, pb_site_line(&is, "default"),
                       "field 'default' of input '%.64s' must be a string or a number, not %s", name,
                       pb_type_phrase(L, -1));
        }
        lua_pop(L, 1);
        json_object_set_new(out, name,
                            json_pack("{s:b,s:o,s:o}", "required", required, "doc",
                                      jstr_or_null(doc), "default", def));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return out;
}

/* objectives = { contain_within = "30m" } -> {"contain_within": 1800000} */
static json_t *check_objectives(pb_site *s, int t)
{
    lua_State *L = s->L;
    json_t *out = json_object();
    if (pb_field_push(L, t, "objectives") == LUA_TNIL) {
        lua_pop(L, 1);
        return out;
    }
    int ob = lua_gettop(L);
    pb_site os = pb_site_sub(s, "objectives", "objectives");
    if (!lua_istable(L, ob)) {
        pb_problem(s->problems, s->file, pb_site_line(s, "objectives"),
                   "field 'objectives' of playbook must be a table (objectives = { contain_within = "
                   "\"30m\" }), not %s",
                   pb_type_phrase(L, ob));
        lua_pop(L, 1);
        return out;
    }
    lua_pushnil(L);
    while (lua_next(L, ob)) {
        int64_t ms;
        if (lua_type(L, -2) != LUA_TSTRING) {
            pb_problem(s->problems, s->file, pb_site_line(s, "objectives"),
                       "field 'objectives' of playbook must map names to durations, found a key that is %s",
                       pb_type_phrase(L, -2));
        } else if (pb_duration_at(L, -1, &ms) != 0) {
            pb_problem(s->problems, s->file, pb_site_line(&os, lua_tostring(L, -2)),
                       "objective '%.64s' must be a duration such as \"30m\" or a number of seconds, not %s",
                       lua_tostring(L, -2), pb_type_phrase(L, -1));
        } else {
            json_object_set_new(out, lua_tostring(L, -2), json_integer(ms));
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return out;
}

/* escalation = { { notify = {...} }, { after = "15m", notify = {...} } } */
static json_t *check_escalation(pb_site *s, int t)
{
    lua_State *L = s->L;
    json_t *out = json_array();
    if (pb_field_push(L, t, "escalation") == LUA_TNIL) {
        lua_pop(L, 1);
        return out;
    }
    int es = lua_gettop(L);
    pb_site ess = pb_site_sub(s, "escalation", "escalation");
    if (!lua_istable(L, es)) {
        pb_problem(s->problems, s->file, pb_site_line(s, "escalation"),
                   "field 'escalation' of playbook must be a list of tiers ({ { notify = { \"slack-ir\" "
                   "} }, ... }), not %s",
                   pb_type_phrase(L, es));
        lua_pop(L, 1);
        return out;
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, es);
    int64_t prev_after = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        char owner[64], item[32];
        snprintf(owner, sizeof owner, "escalation tier %lld", (long long)i);
        snprintf(item, sizeof item, "#%lld", (long long)i);
        pb_site ts = pb_site_sub(&ess, item, owner);
        lua_rawgeti(L, es, i);
        int tier = lua_gettop(L);
        if (!lua_istable(L, tier)) {
            pb_problem(s->problems, s->file, pb_site_line(&ts, NULL),
                       "escalation tier %lld must be a table ({ after = \"15m\", notify = { ... } }), not %s",
                       (long long)i, pb_type_phrase(L, tier));
            lua_pop(L, 1);
            continue;
        }
        pb_check_unknown(&ts, tier, tier_fields);
        int64_t after = 0;
        int r = pb_field_duration(&ts, tier, "after", &after);
        if (r == 0 && i > 1)
            pb_problem(s->problems, s->file, pb_site_line(&ts, NULL),
                       "escalation tier %lld needs 'after' (how long into the incident it starts)",
                       (long long)i);
        if (r == 1 && after < prev_after) {
            char a[32], b[32];
            sb_format_ms(after, a, sizeof a);
            sb_format_ms(prev_after, b, sizeof b);
            pb_problem(s->problems, s->file, pb_site_line(&ts, "after"),
                       "escalation tier %lld starts after %s, earlier than tier %lld (%s)",
                       (long long)i, a, (long long)i - 1, b);
        }
        if (r == 1)
            prev_after = after;
        json_t *notify = NULL;
        int nr = pb_field_string_list(&ts, tier, "notify", 0, &notify);
        if (nr == 0)
            pb_problem(s->problems, s->file, pb_site_line(&ts, NULL),
                       "escalation tier %lld needs 'notify' (a list of notifier names)", (long long)i);
        json_array_append_new(out, json_pack("{s:I,s:I,s:o}", "tier", (json_int_t)i, "after_ms",
                                             (json_int_t)after,
                                             "notify", notify ? notify : json_array()));
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    while (lua_next(L, es)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
            pb_problem(s->problems, s->file, pb_site_line(s, "escalation"),
                       "field 'escalation' of playbook must be a list of tiers, not a table with named keys");
            lua_pop(L, 1);
            break;
        }
    }
    lua_pop(L, 1);
    return out;
}

/* Builds the step list from `steps` (object handles in the table at objs). */
static void collect_steps(pb_site *s, int t, pb_list *l)
{
    lua_State *L = s->L;
    int type = pb_field_push(L, t, "steps");
    if (type == LUA_TNIL) {
        pb_problem(s->problems, s->file, s->line,
                   "field 'steps' of playbook is required (steps = { step \"id\" { ... }, ... })");
        lua_pop(L, 1);
        return;
    }
    if (type != LUA_TTABLE) {
        pb_problem(s->problems, s->file, pb_site_line(s, "steps"), "field 'steps' of playbook must be a list of steps, not %s",
                   pb_type_phrase(L, -1));
        lua_pop(L, 1);
        return;
    }
    int st = lua_gettop(L);
    pb_site sts = pb_site_sub(s, "steps", "steps");
    lua_Integer n = (lua_Integer)lua_rawlen(L, st);
    if (n == 0)
        pb_problem(s->problems, s->file, pb_site_line(s, "steps"), "field 'steps' of playbook must not be empty");
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, st, i);
        int ok = 0;
        if (lua_istable(L, -1) && lua_getmetatable(L, -1)) {
            lua_rawgetp(L, LUA_REGISTRYINDEX, &pb_key_step_mt);
            ok = lua_rawequal(L, -1, -2);
            lua_pop(L, 2);
        }
        if (!ok) {
            char item[32];
            snprintf(item, sizeof item, "#%lld", (long long)i);
            pb_problem(s->problems, s->file, pb_site_line(&sts, item),
                       "item %lld of field 'steps' of playbook is %s, not a step (write: step \"id\" { ... })",
                       (long long)i, lua_type(L, -1) == LUA_TFUNCTION
                                         ? "a function (step \"id\" without its { ... }?)"
                                         : pb_type_phrase(L, -1));
            lua_pop(L, 1);
            continue;
        }
        int handle = (int)lua_rawlen(L, l->objs) + 1;
        lua_rawseti(L, l->objs, handle);
        pb_list_insert(l, l->n, handle, NULL, NULL);
    }
    lua_pushnil(L);
    while (lua_next(L, st)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
            pb_problem(s->problems, s->file, pb_site_line(s, "steps"),
                       "field 'steps' of playbook must be a list of steps, not a table with named keys");
            lua_pop(L, 1);
            break;
        }
    }
    lua_pop(L, 1);
}

/* Checks -v vars against the inputs; returns the final vars (defaults
 * applied). */
static json_t *check_vars(pb_site *s, const json_t *inputs, const pb_request *req)
{
    json_t *vars = json_object();
    const char **names = ut_xcalloc(json_object_size(inputs) + 1, sizeof *names);
    size_t k = 0;
    const char *name;
    json_t *spec;
    json_object_foreach((json_t *)inputs, name, spec) names[k++] = name;
    json_t *val;
    json_object_foreach((json_t *)req->vars, name, val) {
        if (!json_object_get(inputs, name)) {
            char hint[128];
            pb_suggest(hint, sizeof hint, name, names, '\'');
            pb_problem(s->problems, s->file, s->line, "-v %.64s=...: the playbook has no input '%.64s'%s",
                       name, name, hint);
        } else if (json_is_string(val)) {
            json_object_set(vars, name, val);
        }
    }
    json_object_foreach((json_t *)inputs, name, spec) {
        if (json_object_get(vars, name))
            continue;
        json_t *def = json_object_get(spec, "default");
        if (json_is_string(def))
            json_object_set(vars, name, def);
        else if (json_is_true(json_object_get(spec, "required")) && !req->check)
            pb_problem(s->problems, s->file, s->line, "input '%s' is required (pass -v %s=...)", name,
                       name);
    }
    free(names);
    return vars;
}

json_t *pb_validate(lua_State *L, int idx, int attach_idx, const pb_request *req, json_t *problems)
{
    idx = lua_absindex(L, idx);
    attach_idx = lua_absindex(L, attach_idx);
    lua_getfield(L, idx, "file");
    lua_getfield(L, idx, "line");
    lua_getfield(L, idx, "spec");
    int t = lua_gettop(L);
    const char *file = lua_tostring(L, t - 2);
    int line = (int)lua_tointeger(L, t - 1);
    pb_site s = {L, problems, file ? file : req->file, line, "playbook", "playbook", NULL, {NULL}, 0};

    pb_check_unknown(&s, t, playbook_fields);
    const char *id = NULL, *title = NULL, *version = NULL, *severity = NULL, *description = NULL,
               *source = NULL;
    if (pb_field_string(&s, t, "id", &id) == 0)
        pb_problem(problems, s.file, line, "field 'id' of playbook is required (id = \"ransomware\")");
    else if (id && !valid_id(id))
        pb_problem(problems, s.file, pb_site_line(&s, "id"),
                   "field 'id' of playbook must be 1 to 64 letters, digits, '_', '.' or '-' starting "
                   "with a letter or digit, not \"%.64s\"",
                   id);
    if (pb_field_string(&s, t, "title", &title) == 0)
        pb_problem(problems, s.file, line, "field 'title' of playbook is required");
    pb_field_string(&s, t, "version", &version);
    if (pb_field_string(&s, t, "severity", &severity) == 1) {
        int ok = 0;
        for (size_t i = 0; severities[i]; i++)
            ok |= strcmp(severity, severities[i]) == 0;
        if (!ok) {
            char hint[64];
            pb_suggest(hint, sizeof hint, severity, severities, '"');
            pb_problem(problems, s.file, pb_site_line(&s, "severity"),
                       "field 'severity' of playbook must be one of info, low, medium, high, "
                       "critical, not \"%.32s\"%s",
                       severity, hint);
            severity = NULL;
        }
    }
    pb_field_string(&s, t, "description", &description);
    pb_field_string(&s, t, "source", &source);
    json_t *references = NULL, *tags = NULL, *phases = NULL;
    pb_field_string_list(&s, t, "references", 0, &references);
    pb_field_string_list(&s, t, "tags", 0, &tags);
    int phases_declared = pb_field_string_list(&s, t, "phases", 1, &phases) == 1;
    if (!phases)
        phases = json_array();

    json_t *inputs = check_inputs(&s, t);
    json_t *objectives = check_objectives(&s, t);
    json_t *escalation = check_escalation(&s, t);

    pb_list l;
    memset(&l, 0, sizeof l);
    lua_newtable(L);
    l.objs = lua_gettop(L);
    collect_steps(&s, t, &l);
    pb_merge_attach(L, &l, attach_idx, phases_declared ? phases : NULL, problems);
    json_t *steps = pb_validate_steps(L, &l, phases, phases_declared, inputs, s.file, problems);
    pb_list_free(&l);
    lua_pop(L, 1);

    json_t *vars = check_vars(&s, inputs, req);
    if (title && strstr(title, "{{")) {
        size_t before = json_array_size(problems);
        pb_check_templates(problems, s.file, line, title, "title", NULL, inputs, NULL);
        if (json_array_size(problems) > before) {
            int at = pb_site_line(&s, "title");
            for (size_t i = before; i < json_array_size(problems); i++)
                json_object_set_new(json_array_get(problems, i), "line", json_integer(at));
        }
    }

    json_t *outline = json_object();
    json_object_set_new(outline, "id", jstr_or_null(id ? id : ""));
    json_object_set_new(outline, "title", jstr_or_null(title ? title : ""));
    json_object_set_new(outline, "version", jstr_or_null(version ? version : ""));
    json_object_set_new(outline, "severity", json_string(severity ? severity : "medium"));
    json_object_set_new(outline, "file", jstr_or_null(s.file));
    json_object_set_new(outline, "line", json_integer(line));
    json_object_set_new(outline, "description", jstr_or_null(description));
    json_object_set_new(outline, "references", references ? references : json_array());
    json_object_set_new(outline, "source", jstr_or_null(source));
    json_object_set_new(outline, "tags", tags ? tags : json_array());
    json_object_set_new(outline, "phases", phases);
    json_object_set_new(outline, "inputs", inputs);
    json_object_set_new(outline, "vars", vars);
    json_object_set_new(outline, "objectives", objectives);
    json_object_set_new(outline, "escalation", escalation);
    json_object_set_new(outline, "steps", steps);
    lua_settop(L, t - 3);
    return outline;
}
