/*
 * loader_template.c — {{name}} templates in step titles and manual text,
 * and in the playbook's title (inputs only: no step has run when it is
 * shown): the load-time check (every name is an input or steps.ID.status /
 * steps.ID.result[.FIELD...] of a known step) and the renderer.
 * Depends on: jansson, loader.h, util.h.
 */
#include "loader.h"
#include "loader_internal.h"
#include "probe.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RENDER_MAX ((size_t)64 << 10)

typedef void (*name_fn)(const char *name, size_t len, void *ud);
typedef void (*text_fn)(const char *text, size_t len, void *ud);

/* Walks text calling on_text for literal runs and on_name for each trimmed
 * {{name}}. Returns 0, or -1 at an unclosed "{{" (the rest is literal). */
static int scan(const char *text, text_fn on_text, name_fn on_name, void *ud)
{
    const char *p = text;
    for (;;) {
        const char *open = strstr(p, "{{");
        if (!open) {
            if (on_text)
                on_text(p, strlen(p), ud);
            return 0;
        }
        const char *close = strstr(open + 2, "}}");
        if (!close) {
            if (on_text)
                on_text(p, strlen(p), ud);
            return -1;
        }
        if (on_text)
            on_text(p, (size_t)(open - p), ud);
        const char *a = open + 2, *b = close;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        on_name(a, (size_t)(b - a), ud);
        p = close + 2;
    }
}

/* For "steps.ID.rest": the longest known step id that is followed by '.'
 * (ids may contain dots). Returns the id's length or 0. */
static size_t match_step_id(const char *s, size_t len, const char *const *ids)
{
    size_t best = 0;
    for (size_t i = 0; ids && ids[i]; i++) {
        size_t n = strlen(ids[i]);
        if (n < len && s[n] == '.' && strncmp(s, ids[i], n) == 0 && n > best)
            best = n;
    }
    return best;
}

typedef struct {
    json_t *problems;
    const char *file;
    int line;
    const char *what, *step_id; /* step_id NULL: the playbook's title */
    const char *owner;          /* "step \"isolate\"" or "playbook" */
    const json_t *inputs;
    const char *const *step_ids;
} check_ud;

static void check_name(const char *name, size_t len, void *ud)
{
    check_ud *c = ud;
    char buf[160];
    snprintf(buf, sizeof buf, "%.*s", (int)(len < 150 ? len : 150), name);
    if (strncmp(buf, "steps.", 6) == 0 && !c->step_id) {
        pb_problem(c->problems, c->file, c->line,
                   "template {{%s}} in title of playbook: only inputs can be used there (no step has "
                   "run when the title is shown)",
                   buf);
        return;
    }
    if (strncmp(buf, "steps.", 6) == 0) {
        const char *rest = buf + 6;
        size_t n = match_step_id(rest, strlen(rest), c->step_ids);
        if (!n) {
            /* guess the id: everything before ".status" / ".result" */
            char guess[160];
            snprintf(guess, sizeof guess, "%s", rest);
            char *cut = strstr(guess, ".status");
            if (!cut)
                cut = strstr(guess, ".result");
            if (cut)
                *cut = '\0';
            char hint[128];
            pb_suggest(hint, sizeof hint, guess, c->step_ids, '"');
            pb_problem(c->problems, c->file, c->line,
                       "template {{%s}} in %s of step \"%s\" names no step \"%s\"%s", buf, c->what,
                       c->step_id, guess, hint);
            return;
        }
        const char *tail = rest + n + 1;
        if (strcmp(tail, "status") != 0 && strcmp(tail, "result") != 0 &&
            strncmp(tail, "result.", 7) != 0)
            pb_problem(c->problems, c->file, c->line,
                       "template {{%s}} in %s of step \"%s\": use steps.%.*s.status or "
                       "steps.%.*s.result.FIELD",
                       buf, c->what, c->step_id, (int)n, rest, (int)n, rest);
        return;
    }
    if (json_object_get(c->inputs, buf))
        return;
    size_t ninputs = json_object_size(c->inputs);
    const char **names = ut_xcalloc(ninputs + 1, sizeof *names);
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)c->inputs, key, v) names[k++] = key;
    const char *best = ut_closest(buf, names, 3);
    char hint[200] = "";
    if (best)
        snprintf(hint, sizeof hint, " (did you mean {{%s}}?)", best);
    pb_problem(c->problems, c->file, c->line,
               "unknown template {{%s}} in %s of %s: not an input of the playbook%s", buf, c->what,
               c->owner, hint);
    free(names);
}

void pb_check_templates(json_t *problems, const char *file, int line, const char *text,
                        const char *what, const char *step_id, const json_t *inputs,
                        const char *const *step_ids)
{
    char owner[96] = "playbook";
    if (step_id)
        snprintf(owner, sizeof owner, "step \"%.64s\"", step_id);
    check_ud c = {problems, file, line, what, step_id, owner, inputs, step_ids};
    if (scan(text, NULL, check_name, &c) < 0)
        pb_problem(problems, file, line, "%s of %s has a '{{' without its closing '}}'", what, owner);
}

/* ---------------------------------------------------------------- render */

typedef struct {
    ut_buf out;
    const json_t *vars, *states;
} render_ud;

static void render_text(const char *text, size_t len, void *ud)
{
    render_ud *r = ud;
    if (r->out.len < RENDER_MAX)
        ut_buf_append(&r->out, text, len);
}

static void render_json(render_ud *r, const json_t *v)
{
    if (!v || json_is_null(v)) {
        ut_buf_puts(&r->out, "(unknown)");
    } else if (json_is_string(v)) {
        ut_buf_append(&r->out, json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v)) {
        ut_buf_printf(&r->out, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        ut_buf_printf(&r->out, "%.14g", json_real_value(v));
    } else if (json_is_boolean(v)) {
        ut_buf_puts(&r->out, json_is_true(v) ? "true" : "false");
    } else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        ut_buf_puts(&r->out, s ? s : "");
        free(s);
    }
}

static void render_name(const char *name, size_t len, void *ud)
{
    render_ud *r = ud;
    if (r->out.len >= RENDER_MAX)
        return;
    char *buf = ut_xasprintf("%.*s", (int)len, name);
    if (strncmp(buf, "steps.", 6) == 0) {
        const char *rest = buf + 6;
        /* ids known at render time: the recorded states */
        size_t best = 0;
        const char *key;
        json_t *st, *found = NULL;
        const char *found_id = NULL;
        json_object_foreach((json_t *)r->states, key, st) {
            size_t n = strlen(key);
            if (n < strlen(rest) && rest[n] == '.' && strncmp(rest, key, n) == 0 && n > best) {
                best = n;
                found = st;
                found_id = key;
            }
        }
        const json_t *v = NULL;
        if (found) {
            const char *path = rest + best + 1;
            if (strcmp(path, "status") == 0) {
                v = json_object_get(found, "status");
            } else if (strncmp(path, "result", 6) == 0 && (path[6] == '\0' || path[6] == '.')) {
                v = json_object_get(found, "result");
                const char *p = path + 6;
                while (v && *p == '.') {
                    p++;
                    const char *e = strchr(p, '.');
                    size_t n = e ? (size_t)(e - p) : strlen(p);
                    char *field = ut_xasprintf("%.*s", (int)n, p);
                    if (json_is_object(v)) {
                        v = json_object_get(v, field);
                    } else if (json_is_array(v)) {
                        char *end;
                        long i = strtol(field, &end, 10);
                        v = (*end == '\0' && i >= 1) ? json_array_get(v, (size_t)i - 1) : NULL;
                    } else {
                        v = NULL;
                    }
                    free(field);
                    p += n;
                }
            }
        }
        if (!v && dp_enabled()) { /* irp check --drill: a template nobody fills */
            size_t n = strcspn(rest, ".");
            char *id = found_id ? ut_xstrdup(found_id) : ut_xasprintf("%.*s", (int)n, rest);
            dp_note(buf, id, NULL);
            free(id);
        }
        render_json(r, v);
    } else {
        render_json(r, json_object_get(r->vars, buf));
    }
    free(buf);
}

char *pb_render(const char *text, const json_t *vars, const json_t *states)
{
    render_ud r;
    memset(&r, 0, sizeof r);
    r.vars = vars;
    r.states = states;
    ut_buf_append(&r.out, "", 0);
    scan(text ? text : "", render_text, render_name, &r);
    char *clean = sb_bounded_text(r.out.data, r.out.len, RENDER_MAX, NULL);
    ut_buf_free(&r.out);
    return clean;
}
