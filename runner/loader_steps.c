/*
 * loader_steps.c — the steps of a playbook: merging --attach blocks into the
 * order, checking every step's fields, the rules across steps (unique ids,
 * on_failure targets, phases in order, templates), building the outline's
 * "steps" and keeping run/when/rollback/drill in the registry.
 * Depends on: Lua 5.4, jansson, loader_internal.h, luajson.h, util.h.
 */
#include "loader_internal.h"
#include "luajson.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const step_fields[] = {
    "title", "phase", "doc", "run", "manual", "approval", "when", "timeout", "backoff",
    "retries", "on_failure", "idempotent", "rollback", "notify", "drill", "owner", "tags", NULL};
static const char *const notify_keys[] = {"on_start", "on_success", "on_failure", NULL};
static const char *const attach_keys[] = {"after", "before", "at_end_of", NULL};

#define DEFAULT_BACKOFF_MS 1000

/* Field of the step object for entry i. [-0, +1, -] */
static void push_obj_field(lua_State *L, const pb_list *l, size_t i, const char *field)
{
    lua_rawgeti(L, l->objs, l->v[i].handle);
    lua_getfield(L, -1, field);
    lua_remove(L, -2);
}

/* The id of entry i (kept alive by the step object). */
static const char *entry_id(lua_State *L, const pb_list *l, size_t i)
{
    push_obj_field(L, l, i, "id");
    const char *id = lua_tostring(L, -1);
    lua_pop(L, 1);
    return id ? id : "?";
}

/* The phase entry i declares (NULL when it inherits). */
static const char *entry_phase(lua_State *L, const pb_list *l, size_t i)
{
    int top = lua_gettop(L);
    push_obj_field(L, l, i, "spec");
    const char *p = NULL;
    if (lua_istable(L, -1) && pb_field_push(L, top + 1, "phase") == LUA_TSTRING)
        p = lua_tostring(L, -1); /* kept alive by the spec table */
    lua_settop(L, top);
    return p;
}

static long find_entry(lua_State *L, const pb_list *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(entry_id(L, l, i), id) == 0)
            return (long)i;
    return -1;
}

static const char **all_ids(lua_State *L, const pb_list *l)
{
    const char **ids = ut_xcalloc(l->n + 1, sizeof *ids);
    for (size_t i = 0; i < l->n; i++)
        ids[i] = entry_id(L, l, i);
    return ids;
}

static long phase_index(const json_t *phases, const char *p)
{
    size_t i;
    json_t *v;
    json_array_foreach(phases, i, v) {
        if (strcmp(json_string_value(v), p) == 0)
            return (long)i;
    }
    return -1;
}

static const char **phase_names(const json_t *phases)
{
    const char **names = ut_xcalloc(json_array_size(phases) + 1, sizeof *names);
    size_t i;
    json_t *v;
    json_array_foreach(phases, i, v) names[i] = json_string_value(v);
    return names;
}

/* Where an attach block's steps go; -1 when the anchor is bad (reported). */
static long attach_position(lua_State *L, pb_list *l, pb_site *s, const char *kind,
                            const char *target, const json_t *phases, char *anchor, size_t asz)
{
    if (strcmp(kind, "at_end_of") != 0) {
        long at = find_entry(L, l, target);
        if (at < 0) {
            const char **ids = all_ids(L, l);
            char hint[128];
            pb_suggest(hint, sizeof hint, target, ids, '"');
            free(ids);
            pb_problem(s->problems, s->file, pb_site_line(s, kind), "attach block: %s = \"%.64s\" names no step of the playbook%s",
                       kind, target, hint);
            return -1;
        }
        if (strcmp(kind, "before") == 0)
            return at;
        snprintf(anchor, asz, "after:%s", target);
        long pos = at + 1;
        while ((size_t)pos < l->n && l->v[pos].anchor && strcmp(l->v[pos].anchor, anchor) == 0)
            pos++;
        return pos;
    }
    snprintf(anchor, asz, "end:%s", target);
    long last = -1, first_later = -1;
    long target_idx = phases ? phase_index(phases, target) : -1;
    const char *eff = NULL;
    for (size_t i = 0; i < l->n; i++) {
        const char *p = entry_phase(L, l, i);
        if (p)
            eff = p;
        if (eff && strcmp(eff, target) == 0)
            last = (long)i;
        else if (eff && target_idx >= 0 && first_later < 0 && phase_index(phases, eff) > target_idx)
            first_later = (long)i;
    }
    if (last >= 0)
        return last + 1;
    if (target_idx >= 0)
        return first_later >= 0 ? first_later : (long)l->n;
    char hint[128] = "";
    if (phases) {
        const char **names = phase_names(phases);
        pb_suggest(hint, sizeof hint, target, names, '\'');
        free(names);
    }
    pb_problem(s->problems, s->file, pb_site_line(s, "at_end_of"), "attach block: at_end_of = '%.64s' is not a phase of the playbook%s",
               target, hint);
    return -1;
}

void pb_merge_attach(lua_State *L, pb_list *l, int attach_idx, const json_t *phases,
                     json_t *problems)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, attach_idx);
    for (lua_Integer k = 1; k <= n; k++) {
        int base = lua_gettop(L);
        lua_rawgeti(L, attach_idx, k);
        lua_getfield(L, -1, "file");      /* base+2: the attach file (kept by the list) */
        lua_getfield(L, -2, "block");
        lua_getfield(L, -1, "line");
        lua_getfield(L, -2, "spec");      /* base+5 */
        int spec = lua_gettop(L);
        const char *source = lua_tostring(L, base + 2);
        pb_site s = {L, problems, source, (int)lua_tointeger(L, base + 4), "attach block", "attach", NULL, {NULL}, 0};
        const char *kind = NULL, *target = NULL;
        int anchors = 0;
        lua_Integer items = (lua_Integer)lua_rawlen(L, spec);
        lua_pushnil(L);
        while (lua_next(L, spec)) {
            lua_pop(L, 1);
            if (lua_type(L, -1) == LUA_TSTRING) {
                const char *key = lua_tostring(L, -1);
                int known = 0;
                for (size_t i = 0; attach_keys[i]; i++)
                    known |= strcmp(key, attach_keys[i]) == 0;
                if (!known) {
                    char hint[128];
                    pb_suggest(hint, sizeof hint, key, attach_keys, '\'');
                    pb_problem(problems, s.file, pb_site_line(&s, key), "unknown field '%.64s' in attach block%s", key, hint);
                }
            } else if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 ||
                       lua_tointeger(L, -1) > items) {
                pb_problem(problems, s.file, pb_site_line(&s, NULL), "attach block has a key that is %s", pb_type_phrase(L, -1));
            }
        }
        for (size_t i = 0; attach_keys[i]; i++) {
            const char *v = NULL;
            if (pb_field_string(&s, spec, attach_keys[i], &v) == 1) {
                anchors++;
                kind = attach_keys[i];
                target = v;
            }
        }
        long pos = -1;
        char anchor[200] = "";
        if (anchors != 1)
            pb_problem(problems, s.file, s.line,
                       "attach block needs exactly one of after = \"step-id\", before = \"step-id\" "
                       "or at_end_of = \"phase\"%s",
                       anchors > 1 ? ", not several" : "");
        else
            pos = attach_position(L, l, &s, kind, target, phases, anchor, sizeof anchor);
        if (items == 0)
            pb_problem(problems, s.file, s.line, "attach block has no steps (add step \"id\" { ... } items)");
        for (lua_Integer i = 1; i <= items; i++) {
            lua_rawgeti(L, spec, i);
            int ok = 0;
            if (lua_istable(L, -1) && lua_getmetatable(L, -1)) {
                lua_rawgetp(L, LUA_REGISTRYINDEX, &pb_key_step_mt);
                ok = lua_rawequal(L, -1, -2);
                lua_pop(L, 2);
            }
            if (!ok) {
                char item[32];
                snprintf(item, sizeof item, "#%lld", (long long)i);
                pb_problem(problems, s.file, pb_site_line(&s, item), "item %lld of attach block is %s, not a step (write: step \"id\" { ... })",
                           (long long)i, pb_type_phrase(L, -1));
                lua_pop(L, 1);
                continue;
            }
            int handle = (int)lua_rawlen(L, l->objs) + 1;
            lua_rawseti(L, l->objs, handle);
            if (pos >= 0)
                pb_list_insert(l, (size_t)pos++, handle, source, anchor[0] ? anchor : NULL);
        }
        lua_settop(L, base);
    }
}

/* [A-Za-z0-9][A-Za-z0-9_.-]{0,63} */
static int valid_step_id(const char *s)
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

static json_t *jstr(const char *s)
{
    return s ? lj_string(s, strlen(s)) : json_null();
}

typedef struct {
    const char *id, *file, *phase, *explicit_phase, *on_failure, *title, *manual;
    int line, dup;
} step_info;

/* notify = { on_start = {...}, on_success = {...}, on_failure = {...} } */
static json_t *check_notify(pb_site *s, int spec)
{
    lua_State *L = s->L;
    int type = pb_field_push(L, spec, "notify");
    json_t *out = NULL;
    if (type == LUA_TTABLE) {
        char owner[128];
        snprintf(owner, sizeof owner, "notify of %s", s->owner);
        pb_site ns = pb_site_sub(s, "notify", owner);
        int t = lua_gettop(L);
        pb_check_unknown(&ns, t, notify_keys);
        out = json_object();
        for (size_t i = 0; notify_keys[i]; i++) {
            json_t *list = NULL;
            if (pb_field_string_list(&ns, t, notify_keys[i], 0, &list) == 1)
                json_object_set_new(out, notify_keys[i], list);
        }
    } else if (type != LUA_TNIL) {
        pb_problem(s->problems, s->file, pb_site_line(s, "notify"),
                   "field 'notify' of %s must be a table ({ on_failure = { \"slack-ir\" } }), not %s",
                   s->owner, pb_type_phrase(L, -1));
    }
    lua_pop(L, 1);
    return out ? out : json_null();
}

/* The fields of a drill table (a typo would simulate an empty output). */
static void check_drill_fields(pb_site *s, int t)
{
    static const char *const fields[] = {"code", "stdout", "stderr", "status", "headers", "body", "json",
                                         "exec", "http", NULL};
    static const char *const exec_fields[] = {"code", "stdout", "stderr", NULL};
    static const char *const http_fields[] = {"status", "headers", "body", "json", NULL};
    char owner[192];
    snprintf(owner, sizeof owner, "the drill table of %s", s->owner);
    pb_site ds = *s;
    ds.owner = owner;
    pb_check_unknown(&ds, t, fields);
    for (int k = 0; k < 2; k++) {
        const char *name = k ? "http" : "exec";
        if (lua_getfield(s->L, t, name) == LUA_TTABLE) {
            char sub[224];
            snprintf(sub, sizeof sub, "drill.%s of %s", name, s->owner);
            ds.owner = sub;
            pb_check_unknown(&ds, lua_absindex(s->L, -1), k ? http_fields : exec_fields);
        }
        lua_pop(s->L, 1);
    }
}

static json_t *check_drill(pb_site *s, int spec)
{
    lua_State *L = s->L;
    int type = pb_field_push(L, spec, "drill");
    json_t *out = json_null();
    if (type == LUA_TFUNCTION) {
        out = json_pack("{s:b}", "function", 1);
    } else if (type == LUA_TTABLE) {
        check_drill_fields(s, lua_absindex(L, -1));
        char *err = NULL;
        json_t *j = lj_from_lua(L, -1, "drill", 0, 0, &err);
        if (j) {
            json_decref(out);
            out = j;
        } else {
            pb_problem(s->problems, s->file, pb_site_line(s, "drill"), "field 'drill' of %s: %s", s->owner, err);
            free(err);
        }
    } else if (type != LUA_TNIL) {
        pb_problem(s->problems, s->file, pb_site_line(s, "drill"),
                   "field 'drill' of %s must be a table (the simulated outcome) or a function, not %s",
                   s->owner, pb_type_phrase(L, -1));
    }
    lua_pop(L, 1);
    return out;
}

/* Checks one step; fills info and returns its outline entry. The spec is
 * at the top of the stack. */
static json_t *check_step(lua_State *L, int spec, step_info *in, const char *source,
                          json_t *problems)
{
    char owner[128];
    snprintf(owner, sizeof owner, "step \"%.64s\"", in->id);
    pb_site s = {L, problems, in->file, in->line, owner, "step", in->id, {NULL}, 0};
    pb_check_unknown(&s, spec, step_fields);

    const char *title = NULL, *doc = NULL, *manual = NULL, *approval = NULL, *on_failure = NULL,
               *owner_role = NULL;
    pb_field_string(&s, spec, "title", &title);
    pb_field_string(&s, spec, "phase", &in->explicit_phase);
    pb_field_string(&s, spec, "doc", &doc);
    int has_manual = pb_field_string(&s, spec, "manual", &manual);
    pb_field_string(&s, spec, "approval", &approval);
    pb_field_string(&s, spec, "owner", &owner_role);

    int rt = pb_field_push(L, spec, "run");
    if (rt != LUA_TNIL && rt != LUA_TFUNCTION)
        pb_problem(problems, s.file, pb_site_line(&s, "run"), "field 'run' of %s must be a function (run = function(ctx) ... end), not %s",
                   owner, pb_type_phrase(L, -1));
    lua_pop(L, 1);
    if (rt == LUA_TNIL && has_manual == 0)
        pb_problem(problems, s.file, s.line,
                   "%s needs 'run' (a function) or 'manual' (instructions for a person), it has neither",
                   owner);
    else if (rt != LUA_TNIL && has_manual != 0)
        pb_problem(problems, s.file, s.line,
                   "%s has both 'run' and 'manual': a step is either automated or manual", owner);

    int wt = pb_field_push(L, spec, "when");
    if (wt != LUA_TNIL && wt != LUA_TFUNCTION && wt != LUA_TBOOLEAN)
        pb_problem(problems, s.file, pb_site_line(&s, "when"), "field 'when' of %s must be a function(ctx) or a boolean, not %s",
                   owner, pb_type_phrase(L, -1));
    lua_pop(L, 1);
    int rb = pb_field_push(L, spec, "rollback");
    if (rb != LUA_TNIL && rb != LUA_TFUNCTION)
        pb_problem(problems, s.file, pb_site_line(&s, "rollback"), "field 'rollback' of %s must be a function(ctx), not %s",
                   owner, pb_type_phrase(L, -1));
    lua_pop(L, 1);

    int64_t timeout = 0, backoff = DEFAULT_BACKOFF_MS;
    int has_timeout = pb_field_duration(&s, spec, "timeout", &timeout) == 1;
    pb_field_duration(&s, spec, "backoff", &backoff);
    long long retries = 0;
    pb_field_int(&s, spec, "retries", 0, 100, &retries);
    if (pb_field_string(&s, spec, "on_failure", &on_failure) != 1)
        on_failure = "abort";
    int idempotent = 0;
    pb_field_bool(&s, spec, "idempotent", &idempotent);
    json_t *tags = NULL;
    pb_field_string_list(&s, spec, "tags", 0, &tags);
    json_t *notify = check_notify(&s, spec);
    json_t *drill = check_drill(&s, spec);

    in->title = title ? title : in->id;
    in->manual = manual;
    in->on_failure = on_failure;

    json_t *j = json_object();
    json_object_set_new(j, "id", jstr(in->id));
    json_object_set_new(j, "phase", json_null()); /* set once inheritance is known */
    json_object_set_new(j, "title", jstr(in->title));
    json_object_set_new(j, "doc", jstr(doc));
    json_object_set_new(j, "kind", json_string(rt == LUA_TFUNCTION || !manual ? "run" : "manual"));
    json_object_set_new(j, "manual", jstr(manual));
    json_object_set_new(j, "approval", jstr(approval));
    json_object_set_new(j, "has_when", json_boolean(wt == LUA_TFUNCTION || wt == LUA_TBOOLEAN));
    json_object_set_new(j, "timeout_ms", has_timeout ? json_integer(timeout) : json_null());
    json_object_set_new(j, "retries", json_integer(retries));
    json_object_set_new(j, "backoff_ms", json_integer(backoff));
    json_object_set_new(j, "on_failure", jstr(on_failure));
    json_object_set_new(j, "idempotent", json_boolean(idempotent));
    json_object_set_new(j, "has_rollback", json_boolean(rb == LUA_TFUNCTION));
    json_object_set_new(j, "notify", notify);
    json_object_set_new(j, "drill", drill);
    json_object_set_new(j, "owner", jstr(owner_role));
    json_object_set_new(j, "tags", tags ? tags : json_array());
    json_object_set_new(j, "file", jstr(in->file));
    json_object_set_new(j, "line", json_integer(in->line));
    json_object_set_new(j, "source", jstr(source ? source : "playbook"));
    return j;
}

/* The line of field key of the step in (its step line when not found). */
static int field_line(lua_State *L, const step_info *in, const char *key)
{
    pb_site s = {L, NULL, in->file, in->line, NULL, "step", in->id, {NULL}, 0};
    return pb_site_line(&s, key);
}

/* Moves the problems added since index `before` to the line of field key
 * (the text is read only when there is something to report). */
static void move_since(json_t *problems, size_t before, lua_State *L, const step_info *in,
                       const char *key)
{
    if (json_array_size(problems) <= before)
        return;
    int line = field_line(L, in, key);
    for (size_t i = before; i < json_array_size(problems); i++)
        json_object_set_new(json_array_get(problems, i), "line", json_integer(line));
}

/* fns[id] = { run =, when =, rollback =, drill = } [-0, +0, m] */
static void store_fns(lua_State *L, int fns, int spec, const char *id)
{
    static const char *const names[] = {"run", "when", "rollback", "drill", NULL};
    lua_createtable(L, 0, 4);
    for (size_t i = 0; names[i]; i++) {
        pb_field_push(L, spec, names[i]);
        lua_setfield(L, -2, names[i]);
    }
    lua_setfield(L, fns, id);
}

json_t *pb_validate_steps(lua_State *L, pb_list *l, json_t *phases, int phases_declared,
                          const json_t *inputs, const char *pb_file, json_t *problems)
{
    json_t *steps = json_array();
    step_info *info = ut_xcalloc(l->n + 1, sizeof *info);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &pb_key_fns);
    int fns = lua_gettop(L);
    const char **phase_list = phases_declared ? phase_names(phases) : NULL;

    for (size_t i = 0; i < l->n; i++) {
        step_info *in = &info[i];
        lua_rawgeti(L, l->objs, l->v[i].handle);
        int obj = lua_gettop(L);
        lua_getfield(L, obj, "id");
        lua_getfield(L, obj, "file");
        lua_getfield(L, obj, "line");
        lua_getfield(L, obj, "spec");
        int spec = lua_gettop(L);
        in->id = lua_tostring(L, obj + 1) ? lua_tostring(L, obj + 1) : "?";
        in->file = lua_tostring(L, obj + 2) ? lua_tostring(L, obj + 2) : pb_file;
        in->line = (int)lua_tointeger(L, obj + 3);
        if (strcmp(in->id, "?") != 0 && !valid_step_id(in->id))
            pb_problem(problems, in->file, in->line,
                       "step id \"%.64s\" is not valid: use 1 to 64 letters, digits, '_', '.' or '-', "
                       "starting with a letter or digit",
                       in->id);
        for (size_t k = 0; k < i; k++) {
            if (strcmp(info[k].id, in->id) == 0 && !info[k].dup) {
                in->dup = 1;
                if (strcmp(info[k].file, in->file) == 0)
                    pb_problem(problems, in->file, in->line,
                               "duplicate step id \"%.64s\" (first defined at line %d)", in->id,
                               info[k].line);
                else if (l->v[k].source && !l->v[i].source)
                    /* an attached step placed before the playbook's own:
                     * the attach file is what needs the new id */
                    pb_problem(problems, info[k].file, info[k].line,
                               "attached step \"%.64s\" collides with the step of the same id at "
                               "%s:%d (give the attached step another id)",
                               in->id, in->file, in->line);
                else if (l->v[i].source && !l->v[k].source)
                    pb_problem(problems, in->file, in->line,
                               "attached step \"%.64s\" collides with the step of the same id at "
                               "%s:%d (give the attached step another id)",
                               in->id, info[k].file, info[k].line);
                else
                    pb_problem(problems, in->file, in->line,
                               "duplicate step id \"%.64s\" (first defined at %s:%d)", in->id,
                               info[k].file, info[k].line);
                break;
            }
        }
        json_t *j = check_step(L, spec, in, l->v[i].source, problems);
        json_array_append_new(steps, j);
        if (!in->dup)
            store_fns(L, fns, spec, in->id);
        lua_settop(L, fns);
    }

    /* phases: declared ones must contain every step's phase; steps may
     * inherit; the order must not go backwards */
    const char *eff = NULL;
    long prev_idx = -1;
    const char *prev_step = NULL;
    size_t prev_i = 0;
    for (size_t i = 0; i < l->n; i++) {
        step_info *in = &info[i];
        if (in->explicit_phase) {
            if (phases_declared && phase_index(phases, in->explicit_phase) < 0) {
                char hint[128];
                pb_suggest(hint, sizeof hint, in->explicit_phase, phase_list, '\'');
                pb_problem(problems, in->file, field_line(L, in, "phase"),
                           "phase '%.64s' of step \"%s\" is not one of the playbook's phases%s",
                           in->explicit_phase, in->id, hint);
                continue;
            }
            if (!phases_declared && phase_index(phases, in->explicit_phase) < 0)
                json_array_append_new(phases, jstr(in->explicit_phase));
            eff = in->explicit_phase;
        }
        in->phase = eff;
        json_object_set_new(json_array_get(steps, i), "phase", jstr(eff));
        if (!eff)
            continue;
        long idx = phase_index(phases, eff);
        if (idx < prev_idx && l->v[prev_i].source && !l->v[i].source) {
            /* an attached step in a later phase than where it was put: the
             * attach file is what is wrong, not the playbook's next step */
            pb_problem(problems, info[prev_i].file, field_line(L, &info[prev_i], "phase"),
                       "attached step \"%s\" is in phase '%s', but the playbook's step \"%s\" after it "
                       "(%s:%d) is in the earlier phase '%s' (phases must not go backwards: leave out "
                       "`phase` to take the phase where it is attached, or attach it in phase '%s')",
                       prev_step, json_string_value(json_array_get(phases, (size_t)prev_idx)), in->id,
                       in->file, in->line, eff, json_string_value(json_array_get(phases, (size_t)prev_idx)));
            prev_idx = idx;
            prev_step = in->id;
            prev_i = i;
        } else if (idx < prev_idx)
            pb_problem(problems, in->file, field_line(L, in, "phase"),
                       "step \"%s\" is in phase '%s', which comes before phase '%s' of the earlier "
                       "step \"%s\" (phases must not go backwards)",
                       in->id, eff, json_string_value(json_array_get(phases, (size_t)prev_idx)),
                       prev_step);
        else {
            prev_idx = idx;
            prev_step = in->id;
            prev_i = i;
        }
    }

    const char **ids = ut_xcalloc(l->n + 1, sizeof *ids);
    for (size_t i = 0; i < l->n; i++)
        ids[i] = info[i].id;
    for (size_t i = 0; i < l->n; i++) {
        step_info *in = &info[i];
        const char *of = in->on_failure;
        if (strcmp(of, "abort") != 0 && strcmp(of, "continue") != 0 && strcmp(of, "escalate") != 0) {
            if (strcmp(of, in->id) == 0) {
                pb_problem(problems, in->file, field_line(L, in, "on_failure"),
                           "on_failure of step \"%s\" names the step itself (use retries to repeat it)",
                           in->id);
            } else {
                int found = 0;
                for (size_t k = 0; k < l->n; k++)
                    found |= strcmp(ids[k], of) == 0;
                if (!found) {
                    static const char *const kw[] = {"abort", "continue", "escalate", NULL};
                    const char *best = ut_closest(of, kw, 2);
                    if (!best)
                        best = ut_closest(of, ids, 3);
                    char hint[128] = "";
                    if (best)
                        snprintf(hint, sizeof hint, " (did you mean \"%s\"?)", best);
                    pb_problem(problems, in->file, field_line(L, in, "on_failure"),
                               "on_failure of step \"%s\" is \"%.64s\": not abort, continue, escalate "
                               "or the id of a step%s",
                               in->id, of, hint);
                }
            }
        }
        size_t before = json_array_size(problems);
        pb_check_templates(problems, in->file, in->line, in->title, "title", in->id, inputs, ids);
        move_since(problems, before, L, in, "title");
        if (in->manual) {
            before = json_array_size(problems);
            pb_check_templates(problems, in->file, in->line, in->manual, "manual", in->id, inputs, ids);
            move_since(problems, before, L, in, "manual");
        }
    }
    free(ids);
    free(phase_list);
    free(info);
    lua_pop(L, 1); /* fns */
    return steps;
}
