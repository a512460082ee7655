/*
 * scenario_fields.c — checking a scenario's fields (types, unknown names
 * with "did you mean", durations, answer words) and putting them in the
 * normalised form the drill runtime reads; then, once the playbook is
 * loaded, checking that every step id the scenario names exists.
 * `outcomes` are checked in scenario_outcomes.c.
 * Depends on: jansson, scenario_internal.h, util.h.
 */
#include "scenario_internal.h"
#include "proto.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const top_fields[] = {"title", "narrative", "playbook", "inputs", "participants", "speed",
                                         "injects", "answers", "outcomes", "expect", NULL};
static const char *const inject_fields[] = {"at", "on", "step", "text", NULL};
static const char *const answer_fields[] = {"manual", "approval", "ask", "confirm", "after", NULL};
static const char *const expect_fields[] = {"status", "decisions", "escalations", "skipped", "failed", NULL};
static const char *const participant_fields[] = {"name", "role", NULL};
static const char *const statuses[] = {"succeeded", "failed", "no-answer", "interrupted", NULL};

static const char *const manual_words[] = {"done", "d", "ok", "failed", "fail", "f", "skip", "s", NULL};
static const char *const approval_words[] = {"approve", "approved", "a", "grant", "deny", "denied",
                                             "reject", NULL};

/* "word: note" -> the lower-cased word, in out. */
static void answer_word(const char *text, char *out, size_t size)
{
    size_t n = 0;
    while (*text == ' ')
        text++;
    for (; *text && *text != ':' && n + 1 < size; text++)
        out[n++] = (char)((*text >= 'A' && *text <= 'Z') ? *text - 'A' + 'a' : *text);
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

static int in_list(const char *w, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (!strcmp(w, list[i]))
            return 1;
    return 0;
}

int sc_known_keys(sc_job *job, json_t *obj, const char *const *known, const char *where, int line)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (in_list(k, known))
            continue;
        const char *hint = ut_closest(k, known, 3);
        int l = sc_find_line(job->sc, line > 0 ? line : 1, k);
        sc_fail(job, l ? l : line, "%s: unknown field '%s'%s%s%s", where, k, hint ? " (did you mean '" : "",
                hint ? hint : "", hint ? "'?)" : "");
        return -1;
    }
    return 0;
}

/* A list: a JSON array, or an empty table (converted as {}). */
static int is_list(json_t *v)
{
    return json_is_array(v) || (json_is_object(v) && json_object_size(v) == 0);
}

static void read_injects(sc_job *job, json_t *list, int base)
{
    size_t i;
    json_t *inj;
    if (json_is_array(list))
        json_array_foreach(list, i, inj)
        {
            int line = sc_find_nth_line(job->sc, base, "text", 0, (int)i + 1);
            if (!line)
                line = base;
            if (!json_is_object(inj)) {
                sc_fail(job, line, "injects[%zu] must be a table { at = \"T+20m\", text = \"...\" }", i + 1);
                return;
            }
            if (sc_known_keys(job, inj, inject_fields, "inject", line) < 0)
                return;
            const char *text = pr_str(inj, "text"), *at = pr_str(inj, "at"), *on = pr_str(inj, "on");
            if (!text || !*text) {
                sc_fail(job, line, "injects[%zu] needs text = \"what the players learn\"", i + 1);
                return;
            }
            json_t *out = json_pack("{s:s, s:i}", "text", text, "line", line);
            if (at && !on) {
                int64_t ms = 0;
                const char *d = at;
                if ((d[0] == 'T' || d[0] == 't') && d[1] == '+')
                    d += 2;
                if (ut_parse_duration(d, &ms) < 0 || ms < 0) {
                    sc_fail(job, line, "injects[%zu]: at = \"%s\" is not a drill time such as \"T+20m\"", i + 1, at);
                    json_decref(out);
                    return;
                }
                json_object_set_new(out, "at", json_string(at));
                json_object_set_new(out, "at_ms", json_integer(ms));
            } else if (on && !at) {
                if (strcmp(on, "step_start") != 0 && strcmp(on, "step_end") != 0) {
                    sc_fail(job, line, "injects[%zu]: on = \"%s\" must be \"step_start\" or \"step_end\"", i + 1, on);
                    json_decref(out);
                    return;
                }
                if (!pr_str(inj, "step")) {
                    sc_fail(job, line, "injects[%zu]: on = \"%s\" needs step = \"<step id>\"", i + 1, on);
                    json_decref(out);
                    return;
                }
                json_object_set_new(out, "on", json_string(on));
                json_object_set_new(out, "step", json_string(pr_str(inj, "step")));
            } else {
                sc_fail(job, line, "injects[%zu] needs exactly one of at = \"T+20m\" or on = \"step_start\"|\"step_end\"",
                        i + 1);
                json_decref(out);
                return;
            }
            json_array_append_new(job->sc->injects, out);
        }
    else if (!is_list(list))
        sc_fail(job, base, "injects must be a list of { at = ..., text = ... }");
}

/* A string or a list of strings as a list; NULL when neither. */
static json_t *string_list(json_t *v)
{
    if (json_is_string(v))
        return json_pack("[O]", v);
    if (!json_is_array(v) || json_array_size(v) == 0)
        return NULL;
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s) if (!json_is_string(s)) return NULL;
    return json_incref(v);
}

/* Checks a "word: note" answer for a manual step or an approval. */
static int check_word(sc_job *job, int line, const char *step, const char *kind, const char *text)
{
    char w[32];
    answer_word(text, w, sizeof w);
    const char *const *words = !strcmp(kind, "manual") ? manual_words : approval_words;
    if (in_list(w, words))
        return 0;
    const char *hint = ut_closest(w, words, 2);
    sc_fail(job, line, "answers[\"%s\"]: '%s' is not a %s answer (%s)%s%s%s", step, w, kind,
            !strcmp(kind, "manual") ? "done, failed or skip" : "approve or deny", hint ? "; did you mean '" : "",
            hint ? hint : "", hint ? "'?" : "");
    return -1;
}

static void read_answers(sc_job *job, json_t *obj, int base)
{
    if (!json_is_object(obj)) {
        sc_fail(job, base, "answers must be a table { [\"step-id\"] = \"done: note\", ... }");
        return;
    }
    const char *step;
    json_t *v;
    json_object_foreach(obj, step, v)
    {
        int line = sc_find_line(job->sc, base, step);
        if (!line)
            line = base;
        json_t *out = json_pack("{s:i}", "line", line);
        if (json_is_string(v)) {
            /* Shorthand: the word says which prompt it answers. */
            char w[32];
            answer_word(json_string_value(v), w, sizeof w);
            const char *kind = in_list(w, approval_words) ? "approval" : in_list(w, manual_words) ? "manual" : "ask";
            json_object_set_new(out, kind, !strcmp(kind, "ask") ? json_pack("[O]", v) : json_incref(v));
            json_object_set_new(out, "shorthand", json_true());
        } else if (json_is_object(v)) {
            if (sc_known_keys(job, v, answer_fields, "answer", line) < 0) {
                json_decref(out);
                return;
            }
            const char *after = pr_str(v, "after");
            int64_t after_ms = 0;
            if (json_object_get(v, "after") && (!after || ut_parse_duration(after, &after_ms) < 0 || after_ms < 0)) {
                sc_fail(job, line, "answers[\"%s\"].after must be a duration such as \"12m\" (how long the players take)",
                        step);
                json_decref(out);
                return;
            }
            if (after_ms > 0)
                json_object_set_new(out, "after_ms", json_integer(after_ms));
            for (int k = 0; answer_fields[k] && strcmp(answer_fields[k], "after") != 0; k++) {
                json_t *a = json_object_get(v, answer_fields[k]);
                if (!a)
                    continue;
                int multi = k >= 2; /* ask, confirm: one answer per question, in order */
                json_t *norm = multi ? string_list(a) : (json_is_string(a) ? json_incref(a) : NULL);
                if (!norm) {
                    sc_fail(job, line, "answers[\"%s\"].%s must be %s", step, answer_fields[k],
                            multi ? "a string or a list of strings" : "a string");
                    json_decref(out);
                    return;
                }
                json_object_set_new(out, answer_fields[k], norm);
            }
        } else {
            sc_fail(job, line, "answers[\"%s\"] must be a string such as \"done: note\" or a table { ask = ... }", step);
            json_decref(out);
            return;
        }
        const char *m = pr_str(out, "manual"), *a = pr_str(out, "approval");
        if ((m && check_word(job, line, step, "manual", m) < 0) || (a && check_word(job, line, step, "approval", a) < 0)) {
            json_decref(out);
            return;
        }
        json_object_set_new(job->sc->answers, step, out);
    }
}

static void read_expect(sc_job *job, json_t *obj, int base)
{
    if (!json_is_object(obj)) {
        sc_fail(job, base, "expect must be a table { status = \"succeeded\", ... }");
        return;
    }
    if (sc_known_keys(job, obj, expect_fields, "expect", base) < 0)
        return;
    json_t *v = json_object_get(obj, "status");
    if (v && (!json_is_string(v) || !in_list(json_string_value(v), statuses))) {
        sc_fail(job, sc_find_line(job->sc, base, "status"), "expect.status must be one of succeeded, failed, no-answer, interrupted");
        return;
    }
    v = json_object_get(obj, "decisions");
    const char *k;
    json_t *d;
    if (v && !json_is_object(v)) {
        sc_fail(job, sc_find_line(job->sc, base, "decisions"), "expect.decisions must be a table { [\"step-id\"] = \"approve\" }");
        return;
    }
    json_object_foreach(v, k, d) if (!json_is_string(d))
    {
        sc_fail(job, sc_find_line(job->sc, base, k), "expect.decisions[\"%s\"] must be a string (approve, deny, done ...)", k);
        return;
    }
    v = json_object_get(obj, "escalations");
    size_t i;
    if (v) {
        if (!is_list(v)) {
            sc_fail(job, sc_find_line(job->sc, base, "escalations"), "expect.escalations must be a list of tiers, e.g. { 1, 2 }");
            return;
        }
        json_array_foreach(v, i, d) if (!json_is_integer(d) || json_integer_value(d) < 1)
        {
            sc_fail(job, sc_find_line(job->sc, base, "escalations"), "expect.escalations must be a list of tiers (1, 2 ...)");
            return;
        }
    }
    for (int f = 0; f < 2; f++) {
        const char *name = f ? "failed" : "skipped";
        v = json_object_get(obj, name);
        if (!v)
            continue;
        int bad = !is_list(v);
        if (json_is_array(v))
            json_array_foreach(v, i, d) bad |= !json_is_string(d);
        if (bad) {
            sc_fail(job, sc_find_line(job->sc, base, name), "expect.%s must be a list of step ids", name);
            return;
        }
    }
    job->sc->expect = json_deep_copy(obj);
    /* {} converts as an object: make the lists lists. */
    for (int f = 0; f < 3; f++) {
        const char *name = f == 0 ? "failed" : f == 1 ? "skipped" : "escalations";
        if (json_is_object(json_object_get(job->sc->expect, name)))
            json_object_set_new(job->sc->expect, name, json_array());
    }
}

void sc_read_fields(sc_job *job)
{
    sc_scenario *sc = job->sc;
    json_t *root = job->root;
    sc->injects = json_array();
    sc->answers = json_object();
    sc->outcomes = json_object();
    sc->participants = json_array();
    if (sc_known_keys(job, root, top_fields, "scenario", 1) < 0)
        return;
    json_t *v = json_object_get(root, "title");
    if (v && !json_is_string(v))
        { sc_fail(job, sc_find_line(sc, 1, "title"), "title must be a string"); return; }
    sc->title = v ? ut_xstrdup(json_string_value(v)) : NULL;
    v = json_object_get(root, "narrative");
    if (v && !json_is_string(v))
        { sc_fail(job, sc_find_line(sc, 1, "narrative"), "narrative must be a string"); return; }
    sc->narrative = v ? ut_xstrdup(json_string_value(v)) : NULL;
    v = json_object_get(root, "playbook");
    if (v && (!json_is_string(v) || !*json_string_value(v)))
        { sc_fail(job, sc_find_line(sc, 1, "playbook"), "playbook must be the playbook's file name, relative to the scenario (playbook = \"../ransomware.lua\")"); return; }
    sc->playbook = v ? ut_xstrdup(json_string_value(v)) : NULL;
    v = json_object_get(root, "inputs");
    sc->inputs = json_object();
    if (v) {
        const char *k;
        json_t *x;
        int ok = json_is_object(v) || (json_is_array(v) && json_array_size(v) == 0);
        if (json_is_object(v))
            json_object_foreach(v, k, x)
            {
                if (json_is_string(x))
                    json_object_set(sc->inputs, k, x);
                else if (json_is_integer(x))
                    json_object_set_new(sc->inputs, k, json_sprintf("%lld", (long long)json_integer_value(x)));
                else
                    ok = 0;
            }
        if (!ok)
            { sc_fail(job, sc_find_line(sc, 1, "inputs"), "inputs must map the playbook's input names to strings (inputs = { host = \"web-07\" })"); return; }
    }
    v = json_object_get(root, "speed");
    if (v) {
        double s = json_is_number(v) ? json_number_value(v) : 0;
        if (s < 1 || s > 100000)
            { sc_fail(job, sc_find_line(sc, 1, "speed"), "speed must be a number from 1 to 100000 (drill clock: N times real time)"); return; }
        sc->speed = s;
    }
    v = json_object_get(root, "participants");
    int line = sc_find_line(sc, 1, "participants");
    if (v && !is_list(v))
        { sc_fail(job, line, "participants must be a list of { name = \"...\", role = \"...\" }"); return; }
    size_t i;
    json_t *p;
    if (json_is_array(v))
        json_array_foreach(v, i, p)
        {
            if (!json_is_object(p) || !pr_str(p, "name") || (json_object_get(p, "role") && !pr_str(p, "role")))
                { sc_fail(job, line, "participants[%zu] must be { name = \"...\", role = \"...\" }", i + 1); return; }
            if (sc_known_keys(job, p, participant_fields, "participant", line) < 0)
                return;
            json_array_append(sc->participants, p);
        }
    if ((v = json_object_get(root, "injects")))
        read_injects(job, v, sc_find_line(sc, 1, "injects"));
    if (!job->failed && (v = json_object_get(root, "answers")))
        read_answers(job, v, sc_find_line(sc, 1, "answers"));
    if (!job->failed && (v = json_object_get(root, "outcomes")))
        sc_read_outcomes(job, v, sc_find_line(sc, 1, "outcomes"));
    if (!job->failed && (v = json_object_get(root, "expect")))
        read_expect(job, v, sc_find_line(sc, 1, "expect"));
}

/* ------------------------------------------------ against the playbook */

static int step_exists(json_t *steps, const char *id, const char **ids)
{
    size_t i;
    json_t *def;
    json_array_foreach(steps, i, def)
    {
        ids[i] = pr_str(def, "id");
        if (ids[i] && !strcmp(ids[i], id))
            return 1;
    }
    return 0;
}

static int check_one(const sc_scenario *sc, json_t *steps, const char *id, const char *where, int line, char *err,
                     size_t err_size)
{
    const char **ids = ut_xcalloc(json_array_size(steps) + 1, sizeof *ids);
    int ok = step_exists(steps, id, ids);
    if (!ok) {
        const char *hint = ut_closest(id, ids, 3);
        if (!line)
            line = sc_find_nth_line(sc, 1, id, 1, 1);
        if (line)
            snprintf(err, err_size, "%s:%d: %s names step \"%s\", which the playbook does not have%s%s%s", sc->path,
                     line, where, id, hint ? " (did you mean \"" : "", hint ? hint : "", hint ? "\"?)" : "");
        else
            snprintf(err, err_size, "%s: %s names step \"%s\", which the playbook does not have%s%s%s", sc->path,
                     where, id, hint ? " (did you mean \"" : "", hint ? hint : "", hint ? "\"?)" : "");
    }
    free(ids);
    return ok ? 0 : -1;
}

/* An answer must answer a prompt the step has: a manual answer needs a
 * manual step, an approval answer an approval, ask/confirm a `run`
 * function (a manual step runs no Lua). Otherwise the answer would be
 * dropped and the drill would ask, or --yes answer, in its place. */
static int answer_fits_step(const sc_scenario *sc, const char *id, json_t *a, json_t *def, char *err,
                            size_t err_size)
{
    int manual = !strcmp(pr_str(def, "kind"), "manual");
    int approval = pr_str(def, "approval") != NULL;
    const char *has = manual ? (approval ? "a manual step behind an approval" : "a manual step (done, failed or skip)")
                             : (approval ? "an automated step behind an approval (approve or deny)"
                                         : "an automated step with no approval");
    const char *field = NULL, *answers = NULL;
    if (json_object_get(a, "manual") && !manual)
        field = "manual", answers = "a manual step";
    else if (json_object_get(a, "approval") && !approval)
        field = "approval", answers = "an approval";
    else if (manual && json_object_get(a, "confirm"))
        field = "confirm", answers = "ctx.confirm in a run function";
    else if (manual && json_object_get(a, "ask") && !pr_bool(a, "shorthand", 0))
        field = "ask", answers = "ctx.ask in a run function";
    if (!field)
        return 0;
    const char *text = pr_str(a, field);
    if (!text)
        text = json_string_value(json_array_get(json_object_get(a, field), 0));
    char w[32];
    answer_word(text ? text : "", w, sizeof w);
    snprintf(err, err_size, "%s:%lld: answers[\"%s\"]: '%s' answers %s, but step \"%s\" is %s", sc->path,
             pr_int(a, "line", 0), id, w, answers, id, has);
    return -1;
}

int sc_check_steps(const sc_scenario *sc, json_t *steps, char *err, size_t err_size)
{
    const char *k;
    json_t *v;
    size_t i;
    json_object_foreach(sc->answers, k, v)
    {
        if (check_one(sc, steps, k, "answers", (int)pr_int(v, "line", 0), err, err_size) < 0)
            return -1;
        /* "dnoe" for a manual step reads as a ctx.ask answer: a manual step asks nothing else. */
        json_t *def = NULL;
        json_array_foreach(steps, i, def) if (!strcmp(pr_str(def, "id") ? pr_str(def, "id") : "", k)) break;
        const char *kind = pr_str(def, "kind");
        json_t *ask = json_object_get(v, "ask");
        if (kind && !strcmp(kind, "manual") && pr_bool(v, "shorthand", 0) && ask) {
            char w[32];
            answer_word(json_string_value(json_array_get(ask, 0)), w, sizeof w);
            const char *hint = ut_closest(w, manual_words, 2);
            snprintf(err, err_size, "%s:%lld: answers[\"%s\"]: '%s' is not a manual answer (done, failed or skip)%s%s%s",
                     sc->path, pr_int(v, "line", 0), k, w, hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
            return -1;
        }
        if (kind && answer_fits_step(sc, k, v, def, err, err_size) < 0)
            return -1;
    }
    json_object_foreach(sc->outcomes, k, v) if (check_one(sc, steps, k, "outcomes", sc_find_line(sc, sc_find_line(sc, 1, "outcomes"), k), err, err_size) < 0) return -1;
    json_array_foreach(sc->injects, i, v) if (pr_str(v, "step") &&
                                              check_one(sc, steps, pr_str(v, "step"), "an inject",
                                                        (int)pr_int(v, "line", 0), err, err_size) < 0) return -1;
    int base = sc_find_line(sc, 1, "expect");
    json_object_foreach(json_object_get(sc->expect, "decisions"), k, v) if (check_one(sc, steps, k, "expect.decisions", sc_find_line(sc, base, k), err, err_size) < 0) return -1;
    const char *lists[] = {"skipped", "failed"};
    for (int f = 0; f < 2; f++)
        json_array_foreach(json_object_get(sc->expect, lists[f]), i, v) if (check_one(sc, steps, json_string_value(v), lists[f] == lists[0] ? "expect.skipped" : "expect.failed", sc_find_nth_line(sc, base, json_string_value(v), 1, 1), err, err_size) < 0) return -1;
    return 0;
}
