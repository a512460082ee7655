/*
 * scenario_run.c — the drill runtime behind fx_drill's hooks: scripted
 * answers and simulated outcomes from the scenario, injects (on the drill
 * clock, or when a step starts or ends) shown in a frame and journaled as
 * inject.shown, data.sim_ms on every record of a drill, and what the
 * scorecard needs (decisions, escalations, phase times) gathered from the
 * records as they are written. The engine only calls the hooks.
 * Depends on: libuv, jansson, engine.h, scenario.h, term.h, util.h.
 */
#include "engine.h"
#include "scenario.h"
#include "scenario_internal.h"
#include "term.h"
#include "util.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLOCK_TICK_MS 50

int64_t dr_sim_ms(eng_run *r)
{
    return eng_clock_ms(r);
}

static const sc_scenario *scen(eng_run *r)
{
    return r->drill ? r->drill->sc : NULL;
}

/* Next element of list for counter[step] (the last one repeats). */
static json_t *next_of(json_t *counter, const char *step, json_t *list)
{
    size_t n = json_array_size(list);
    if (!n)
        return NULL;
    long long used = pr_int(counter, step, 0);
    json_object_set_new(counter, step, json_integer(used + 1));
    return json_array_get(list, (size_t)used < n ? (size_t)used : n - 1);
}

json_t *dr_next_outcome(eng_run *r, const char *step)
{
    const sc_scenario *sc = scen(r);
    if (!sc || !step)
        return NULL;
    return next_of(r->drill->calls, step, json_object_get(sc->outcomes, step));
}

/* The players' thinking time (answers[step].after) passes on the drill
 * clock before a scripted answer: timers, injects and escalation run.
 * A manual or approval prompt that was already open when the drill
 * stopped (its step.started / approval.requested carries the sim_ms it
 * opened at, and no answer followed) has had part of that time: a resume
 * waits only the rest. ctx.ask / ctx.confirm leave no record when they
 * ask, so their wait starts again (as does their step: it runs again). */
static void think(eng_run *r, json_t *a, const char *step, const char *kind)
{
    int64_t ms = pr_int(a, "after_ms", 0);
    if (ms <= 0)
        return;
    char d[32], key[256];
    ut_format_duration(ms, d, sizeof d);
    snprintf(key, sizeof key, "%s:%s", kind, step);
    json_t *opened = json_object_get(r->drill->open_prompts, key);
    if (json_is_integer(opened)) {
        int64_t before = r->drill->replayed_sim_ms - json_integer_value(opened);
        json_object_del(r->drill->open_prompts, key); /* once: a prompt asked again later waits in full */
        if (before > 0) {
            char b[32];
            ut_format_duration(before < ms ? before : ms, b, sizeof b);
            tm_line(TM_DIM, "      (the players take %s; %s of it passed before the drill stopped)", d, b);
            if (before >= ms)
                return;
            eng_wait_ms(r, ms - before);
            return;
        }
    }
    tm_line(TM_DIM, "      (the players take %s)", d);
    eng_wait_ms(r, ms);
}

char *dr_scripted(eng_run *r, const char *step, const char *kind)
{
    const sc_scenario *sc = scen(r);
    json_t *a = sc && step ? json_object_get(sc->answers, step) : NULL;
    if (!a)
        return NULL;
    char *answer = NULL;
    if (!strcmp(kind, "manual") || !strcmp(kind, "approval"))
        answer = pr_str(a, kind) ? ut_xstrdup(pr_str(a, kind)) : NULL;
    else {
        json_t *list = json_object_get(a, kind);
        if (!list && !strcmp(kind, "confirm"))
            list = json_object_get(a, "ask"); /* ask = "yes" answers a confirm too */
        json_t *v = next_of(r->drill->asks, step, list);
        answer = json_is_string(v) ? ut_xstrdup(json_string_value(v)) : NULL;
    }
    if (answer)
        think(r, a, step, kind);
    if (answer && r->interrupted) {
        free(answer); /* stopped while the players thought: no answer, the run is interrupted */
        answer = NULL;
    }
    return answer;
}

/* ------------------------------------------------------------ injects */

static void show_inject(eng_run *r, size_t index)
{
    json_t *inj = json_array_get(r->drill->sc->injects, index);
    json_array_set_new(r->drill->fired, index, json_true());
    int64_t sim = dr_sim_ms(r);
    char when[32];
    ut_format_duration(sim, when, sizeof when);
    const char *on = pr_str(inj, "on"), *step = pr_str(inj, "step");
    char *trigger = on ? ut_xasprintf("%s of %s", !strcmp(on, "step_start") ? "start" : "end", step)
                       : ut_xasprintf("%s", pr_str(inj, "at"));
    tm_line(TM_MAGENTA, "  +==[INJECT]== %s == drill clock T+%s =====================", trigger, when);
    const char *text = pr_str(inj, "text");
    const char *p = text;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        tm_line(TM_MAGENTA, "  | %.*s", len, p);
        p = nl ? nl + 1 : NULL;
    }
    tm_line(TM_MAGENTA, "  +=================================================================");
    json_t *data = json_pack("{s:s, s:I, s:s}", "text", text, "at_ms", (json_int_t)sim, "trigger", trigger);
    if (pr_str(inj, "at"))
        json_object_set_new(data, "at", json_string(pr_str(inj, "at")));
    eng_record(r, "inject.shown", on ? step : NULL, NULL, data);
    free(trigger);
}

static void clock_tick(uv_timer_t *t)
{
    eng_run *r = t->data;
    if (!r->jr)
        return;
    int64_t sim = dr_sim_ms(r);
    size_t i;
    json_t *inj;
    json_array_foreach(r->drill->sc->injects, i, inj)
    {
        if (json_is_true(json_array_get(r->drill->fired, i)) || !json_object_get(inj, "at_ms"))
            continue;
        if (pr_int(inj, "at_ms", 0) <= sim)
            show_inject(r, i);
    }
}

void dr_step_event(eng_run *r, const char *event, const char *step)
{
    const sc_scenario *sc = scen(r);
    if (!sc)
        return;
    if (r->drill->clock_init)
        clock_tick(&r->drill->clock); /* timed injects now due come first */
    size_t i;
    json_t *inj;
    json_array_foreach(sc->injects, i, inj)
    {
        const char *on = pr_str(inj, "on"), *s = pr_str(inj, "step");
        /* A step run again (retried through on_failure) shows its inject once. */
        if (on && s && !strcmp(on, event) && !strcmp(s, step) && !json_is_true(json_array_get(r->drill->fired, i)))
            show_inject(r, i);
    }
}

/* ------------------------------------------------------------ records */

static void phase_mark(eng_run *r, const char *step, int is_start, int64_t sim)
{
    json_t *def = step ? eng_step_def(r, step) : NULL;
    const char *phase = def ? pr_str(def, "phase") : NULL;
    if (!phase)
        phase = "(no phase)";
    json_t *p = json_object_get(r->drill->phases, phase);
    if (!p) {
        p = json_pack("{s:I}", "start_ms", (json_int_t)sim);
        json_object_set_new(r->drill->phases, phase, p);
    }
    if (!is_start)
        json_object_set_new(p, "end_ms", json_integer(sim));
}

static void add_decision(eng_run *r, const char *step, const char *kind, json_t *answer, json_t *data)
{
    const char *via = pr_str(data, "via");
    json_t *dec = json_pack("{s:s, s:s, s:O, s:s}", "step", step ? step : "", "kind", kind, "answer", answer, "via",
                            via ? via : "operator");
    if (pr_str(data, "note")) /* who decided and why, as the players said it */
        json_object_set_new(dec, "note", json_string(pr_str(data, "note")));
    json_array_append_new(r->drill->decisions, dec);
}

/* An inject.shown record (replayed on resume): that inject has fired. */
static void mark_fired(eng_run *r, json_t *data)
{
    const sc_scenario *sc = scen(r);
    size_t i;
    json_t *inj;
    json_array_foreach(sc ? sc->injects : NULL, i, inj)
    {
        const char *text = pr_str(inj, "text"), *shown = pr_str(data, "text");
        if (text && shown && !strcmp(text, shown))
            json_array_set_new(r->drill->fired, i, json_true());
    }
}

void dr_observe(eng_run *r, const char *type, const char *step, json_t *data)
{
    if (!r->drill)
        return;
    /* A record replayed on resume has its own drill time. */
    json_t *recorded = json_object_get(data, "sim_ms");
    int64_t sim = json_is_integer(recorded) ? json_integer_value(recorded) : dr_sim_ms(r);
    if (!recorded)
        json_object_set_new(data, "sim_ms", json_integer(sim));
    if (!strcmp(type, "step.started") || !strcmp(type, "approval.requested")) /* waiting for approval is the phase's time */
        phase_mark(r, step, 1, sim);
    else if (!strcmp(type, "step.succeeded") || !strcmp(type, "step.failed") || !strcmp(type, "step.skipped"))
        phase_mark(r, step, 0, sim);
    else if (!strcmp(type, "approval.granted") || !strcmp(type, "approval.denied")) {
        json_t *w = json_string(!strcmp(type, "approval.granted") ? "approve" : "deny");
        add_decision(r, step, "approval", w, data);
        json_decref(w);
    } else if (!strcmp(type, "manual.answered"))
        add_decision(r, step, "manual", json_object_get(data, "answer"), data);
    else if (!strcmp(type, "operator.answered")) {
        json_t *a = json_object_get(data, "answer");
        json_t *w = json_is_boolean(a) ? json_string(json_is_true(a) ? "yes" : "no") : json_incref(a);
        add_decision(r, step, "ask", w ? w : json_null(), data);
        json_decref(w);
    } else if (!strcmp(type, "escalation.triggered")) {
        if (pr_int(data, "tier", 0) > 0)
            json_array_append_new(r->drill->escalations, json_integer(pr_int(data, "tier", 0)));
        json_array_append_new(r->drill->esc_log,
                              json_pack("{s:I, s:I, s:s, s:s?}", "tier", (json_int_t)pr_int(data, "tier", 0), "sim_ms",
                                        (json_int_t)sim, "reason", pr_str(data, "reason") ? pr_str(data, "reason") : "",
                                        "step", step));
    } else if (!strcmp(type, "run.finished") || !strcmp(type, "run.interrupted"))
        r->drill->walk_end_ms = sim;
    else if (!strcmp(type, "inject.shown"))
        mark_fired(r, data);
}

/* Replayed records: which manual/approval prompts were open (shown, not
 * answered) when the drill stopped, and where its clock stopped. */
static void note_prompt(dr_state *d, const char *type, const char *step, json_t *data)
{
    json_t *sim = json_object_get(data, "sim_ms");
    if (json_is_integer(sim) && json_integer_value(sim) > d->replayed_sim_ms)
        d->replayed_sim_ms = json_integer_value(sim);
    if (!step)
        return;
    char manual[256], approval[256];
    snprintf(manual, sizeof manual, "manual:%s", step);
    snprintf(approval, sizeof approval, "approval:%s", step);
    if (!strcmp(type, "approval.requested") && json_is_integer(sim))
        json_object_set(d->open_prompts, approval, sim);
    else if (!strcmp(type, "step.started") && json_is_integer(sim) && pr_str(data, "kind") &&
             !strcmp(pr_str(data, "kind"), "manual"))
        json_object_set(d->open_prompts, manual, sim);
    else if (!strcmp(type, "approval.granted") || !strcmp(type, "approval.denied"))
        json_object_del(d->open_prompts, approval);
    else if (!strcmp(type, "manual.answered") || !strcmp(type, "step.succeeded") || !strcmp(type, "step.failed") ||
             !strcmp(type, "step.skipped")) {
        json_object_del(d->open_prompts, manual);
        json_object_del(d->open_prompts, approval);
    }
}

/* On resume: what the drill did before (decisions, escalations, phase
 * times, injects shown, outcomes and answers used) is read back from the
 * journal, so the scorecard covers the whole exercise and nothing is
 * shown or consumed twice. */
static void replay(eng_run *r, json_t *records)
{
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec)
    {
        const char *type = pr_str(rec, "type"), *step = pr_str(rec, "step");
        json_t *data = json_object_get(rec, "data");
        if (!type || !json_is_object(data) || !strcmp(type, "run.started"))
            continue;
        dr_observe(r, type, step, data);
        if (step && (!strcmp(type, "step.exec") || !strcmp(type, "step.http")))
            json_object_set_new(r->drill->calls, step, json_integer(pr_int(r->drill->calls, step, 0) + 1));
        else if (step && !strcmp(type, "operator.answered") && pr_str(data, "via") &&
                 !strcmp(pr_str(data, "via"), "scenario"))
            json_object_set_new(r->drill->asks, step, json_integer(pr_int(r->drill->asks, step, 0) + 1));
        else if (!strcmp(type, "drill.resumed"))
            r->drill->paused_before_ms += pr_int(data, "paused_ms", 0);
        note_prompt(r->drill, type, step, data);
    }
}

/* ---------------------------------------------------------- lifecycle */

int dr_prepare(eng_run *r)
{
    r->drill = ut_xcalloc(1, sizeof *r->drill);
    dr_state *d = r->drill;
    d->sc = r->opt->scenario;
    d->calls = json_object();
    d->asks = json_object();
    d->fired = json_array();
    d->decisions = json_array();
    d->escalations = json_array();
    d->phases = json_object();
    d->open_prompts = json_object();
    d->esc_log = json_array();
    d->walk_end_ms = -1;
    if (d->sc) {
        for (size_t i = 0; i < json_array_size(d->sc->injects); i++)
            json_array_append_new(d->fired, json_false());
        char err[1024];
        if (sc_check_steps(d->sc, r->steps, err, sizeof err) < 0) {
            fprintf(stderr, "%s\n", err);
            return IRP_EXIT_DATAERR;
        }
    }
    if (r->opt->resume_records)
        replay(r, r->opt->resume_records);
    return 0;
}

int dr_begin(eng_run *r)
{
    const sc_scenario *sc = scen(r);
    if (!sc)
        return 0;
    tm_line(TM_BOLD, "== scenario: %s (%s)", sc->title ? sc->title : "(untitled)", sc->path);
    if (sc->narrative)
        tm_block(3, TM_PLAIN, sc->narrative);
    size_t i;
    json_t *p;
    json_array_foreach(sc->participants, i, p)
        tm_line(TM_DIM, "   player: %s%s%s", pr_str(p, "name"), pr_str(p, "role") ? " - " : "",
                pr_str(p, "role") ? pr_str(p, "role") : "");
    tm_line(TM_DIM, "   drill clock: %gx (1 minute of the exercise takes %.1f s)", r->opt->speed > 1 ? r->opt->speed : 1,
            60.0 / (r->opt->speed > 1 ? r->opt->speed : 1));
    eng_record(r, "operator.note", NULL, "irp",
               json_pack("{s:s, s:s, s:s?, s:O, s:f}", "note", "drill scenario", "scenario", sc->path, "title",
                         sc->title, "participants", sc->participants, "speed", r->opt->speed));
    uv_timer_init(r->loop, &r->drill->clock);
    r->drill->clock.data = r;
    r->drill->clock_init = 1;
    uv_timer_start(&r->drill->clock, clock_tick, 0, CLOCK_TICK_MS);
    uv_unref((uv_handle_t *)&r->drill->clock); /* never keeps the loop alive alone */
    return 0;
}

/* The state holds the timer, so it is freed only once libuv is done
 * with the handle. */
static void clock_closed(uv_handle_t *h)
{
    dr_state *d = (dr_state *)(void *)((char *)h - offsetof(dr_state, clock));
    d->closing = 0;
    if (d->released)
        free(d);
}

static void stop_clock(eng_run *r)
{
    if (r->drill && r->drill->clock_init) {
        uv_timer_stop(&r->drill->clock);
        r->drill->closing = 1;
        uv_close((uv_handle_t *)&r->drill->clock, clock_closed);
        r->drill->clock_init = 0;
    }
}

int dr_finish(eng_run *r, const char *status, int code)
{
    if (!r->drill)
        return code;
    stop_clock(r);
    return scd_report(r, r->drill, status, code);
}

void dr_free(eng_run *r)
{
    dr_state *d = r->drill;
    if (!d)
        return;
    stop_clock(r);
    json_decref(d->calls);
    json_decref(d->asks);
    json_decref(d->fired);
    json_decref(d->decisions);
    json_decref(d->escalations);
    json_decref(d->phases);
    json_decref(d->open_prompts);
    json_decref(d->esc_log);
    d->released = 1;
    r->drill = NULL;
    if (!d->closing)
        free(d);
}
