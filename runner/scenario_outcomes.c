/*
 * scenario_outcomes.c — checking a scenario's `outcomes`: per step, a list
 * of simulated answers to its exec/http calls. An outcome takes the place
 * of the step's `drill` table, so it accepts exactly the fields a drill
 * table accepts (loader_steps.c check_drill_fields): code, stdout, stderr
 * (exec); status, headers, body, json (http); and exec = { ... } /
 * http = { ... } for a step that does both. Unknown fields get "did you
 * mean", wrong types an error; every error is "file:line: problem".
 * Depends on: jansson, scenario_internal.h, util.h.
 */
#include "scenario_internal.h"
#include "util.h"

#include <stdio.h>

static const char *const outcome_fields[] = {"code", "stdout", "stderr", "status", "headers", "body", "json",
                                             "exec", "http", NULL};
static const char *const exec_fields[] = {"code", "stdout", "stderr", NULL};
static const char *const http_fields[] = {"status", "headers", "body", "json", NULL};

/* The types of one (sub)table's fields; where names it in messages
 * ("outcomes["x"][1]" or "outcomes["x"][1].http"). 0 or -1. */
static int check_types(sc_job *job, json_t *o, const char *where, int line)
{
    json_t *code = json_object_get(o, "code"), *status = json_object_get(o, "status");
    json_t *out = json_object_get(o, "stdout"), *err = json_object_get(o, "stderr");
    json_t *body = json_object_get(o, "body"), *hdrs = json_object_get(o, "headers");
    if ((code && !json_is_integer(code)) || (status && !json_is_integer(status)) || (out && !json_is_string(out)) ||
        (err && !json_is_string(err)) || (body && !json_is_string(body))) {
        sc_fail(job, line, "%s: code and status are integers, stdout, stderr and body strings", where);
        return -1;
    }
    int bad = hdrs && !json_is_object(hdrs);
    const char *k;
    json_t *v;
    json_object_foreach(json_is_object(hdrs) ? hdrs : NULL, k, v) bad |= !json_is_string(v);
    if (bad) {
        int l = sc_find_line(job->sc, line, "headers");
        sc_fail(job, l ? l : line, "%s.headers must be a table of strings ({ [\"content-type\"] = \"text/plain\" })",
                where);
        return -1;
    }
    return 0;
}

/* One outcome: its fields, then its exec/http tables. 0 or -1. */
static int check_outcome(sc_job *job, json_t *o, const char *step, size_t index, int line)
{
    char where[192];
    snprintf(where, sizeof where, "outcomes[\"%s\"][%zu]", step, index + 1);
    if (!json_is_object(o)) {
        sc_fail(job, line, "%s must be a table such as { code = 1, stderr = \"...\" }", where);
        return -1;
    }
    if (sc_known_keys(job, o, outcome_fields, "outcome", line) < 0 || check_types(job, o, where, line) < 0)
        return -1;
    for (int k = 0; k < 2; k++) {
        const char *name = k ? "http" : "exec";
        json_t *sub = json_object_get(o, name);
        if (!sub)
            continue;
        char subwhere[224];
        snprintf(subwhere, sizeof subwhere, "%s.%s", where, name);
        int l = sc_find_line(job->sc, line, name);
        if (!l)
            l = line;
        if (!json_is_object(sub)) {
            sc_fail(job, l, "%s must be a table such as %s", subwhere,
                    k ? "{ status = 201, json = { ok = true } }" : "{ stdout = \"ok\" }");
            return -1;
        }
        char owner[32];
        snprintf(owner, sizeof owner, "outcome.%s", name);
        if (sc_known_keys(job, sub, k ? http_fields : exec_fields, owner, l) < 0 ||
            check_types(job, sub, subwhere, l) < 0)
            return -1;
    }
    return 0;
}

void sc_read_outcomes(sc_job *job, json_t *obj, int base)
{
    if (!json_is_object(obj)) {
        sc_fail(job, base, "outcomes must be a table { [\"step-id\"] = { {code = 1, stderr = \"...\"}, {stdout = \"ok\"} } }");
        return;
    }
    const char *step;
    json_t *v;
    json_object_foreach(obj, step, v)
    {
        int line = sc_find_line(job->sc, base, step);
        if (!line)
            line = base;
        json_t *list = json_is_array(v) ? json_incref(v) : json_is_object(v) ? json_pack("[O]", v) : NULL;
        if (!list || json_array_size(list) == 0) {
            sc_fail(job, line, "outcomes[\"%s\"] must be a list of outcomes, one per exec call: { {code = 1}, {stdout = \"ok\"} }",
                    step);
            json_decref(list);
            return;
        }
        size_t i;
        json_t *o;
        json_array_foreach(list, i, o) if (check_outcome(job, o, step, i, line) < 0)
        {
            json_decref(list);
            return;
        }
        json_object_set_new(job->sc->outcomes, step, list);
    }
}
