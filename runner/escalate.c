/*
 * escalate.c — escalation tiers and the run's clock.
 * Tier 1 fires at run start; tiers with `after` fire when that much run
 * time (the drill clock, in drills) has passed and the run is still open;
 * a step failing with on_failure = "escalate", ctx.escalate, a prompt
 * waiting past its step's timeout and a breached objective climb the
 * tiers. Every notification goes through the notify service (notify.h):
 * journaled as notify.queued before it is sent.
 */
#include "engine.h"
#include "notify.h"
#include "term.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tier_count(eng_run *r)
{
    return (int)json_array_size(json_object_get(r->outline, "escalation"));
}

/* One notification through the notify service: written to the outbox
 * (notify.queued, made durable by eng_on_notify_event) and sent from the
 * loop, concurrently, with retries. */
static void notify_one(eng_run *r, const char *event, const char *target, const char *text, json_t *fields,
                       const char *step, int tier)
{
    json_t *def = step && *step ? eng_step_def(r, step) : NULL;
    json_t *st = step && *step ? json_object_get(r->state, step) : NULL;
    nt_message m;
    memset(&m, 0, sizeof m);
    m.target = target;
    m.event = event;
    m.text = text;
    m.run_id = r->run_id;
    m.playbook = pr_str(r->outline, "id");
    m.title = pr_str(r->outline, "title");
    m.step = step && *step ? step : NULL;
    m.phase = def ? pr_str(def, "phase") : NULL;
    m.severity = pr_str(r->outline, "severity") ? pr_str(r->outline, "severity") : "medium";
    m.status = st ? pr_str(st, "status") : (step && *step ? "running" : "open");
    m.operator_name = r->operator_name;
    m.tier = tier;
    m.drill = r->opt->drill;
    m.fields = fields;
    char err[512];
    if (nt_submit(r->notify, &m, err, sizeof err) < 0) {
        /* Not even queued: the disk under the state directory failed. */
        eng_record(r, "notify.failed", m.step, NULL,
                   json_pack("{s:s, s:s, s:b}", "target", target, "reason", err, "retry", 0));
        tm_error("cannot queue the notification to %s: %s", target, err);
    }
    r->acknowledged = 0; /* a service paged now is acknowledged by the next answer */
}

void eng_notify(eng_run *r, const char *target, const char *msg, json_t *fields, const char *step)
{
    notify_one(r, "notify", target, msg, fields, step, 0);
}

/* Every delivery event of the notify service goes into the journal;
 * notify.queued is made durable at once: the attempt follows from the loop. */
void eng_on_notify_event(void *ctx, const char *type, const char *run_id, const char *step, json_t *data)
{
    eng_run *r = ctx;
    if (!r->jr) {
        json_decref(data);
        return;
    }
    if (run_id && strcmp(run_id, r->run_id) != 0)
        json_object_set_new(data, "queued_by_run", json_string(run_id)); /* an earlier run's, sent now */
    if (!strcmp(type, "notify.failed") && !json_is_true(json_object_get(data, "retry")))
        tm_warn("notification to %s not delivered: %s", pr_str(data, "target") ? pr_str(data, "target") : "?",
                pr_str(data, "reason") ? pr_str(data, "reason") : "?");
    eng_record(r, type, step && *step ? step : NULL, NULL, data);
    if (!strcmp(type, "notify.queued"))
        eng_barrier(r);
}

/* eng_escalate, naming the objective whose breach it is for (or NULL). */
static int escalate_for(eng_run *r, const char *reason, const char *step, int tier, const char *objective)
{
    int n = tier_count(r);
    if (n == 0) {
        eng_record(r, "escalation.triggered", step, r->operator_name,
                   json_pack("{s:i, s:[], s:s, s:s}", "tier", 0, "targets", "reason", reason, "note",
                             "the playbook has no escalation tiers"));
        tm_line(TM_YELLOW, "  !! escalation requested (%s) but the playbook has no escalation tiers", reason);
        return 0;
    }
    if (tier <= 0)
        tier = r->escalation_tier + 1;
    if (tier > n)
        tier = n; /* at the top already: page the top tier again */
    if (tier > r->escalation_tier)
        r->escalation_tier = tier;
    json_t *def = json_array_get(json_object_get(r->outline, "escalation"), (size_t)tier - 1);
    json_t *targets = json_object_get(def, "notify");
    eng_record(r, "escalation.triggered", step, r->operator_name,
               json_pack("{s:i, s:O, s:s, s:s?}", "tier", tier, "targets", targets ? targets : json_array(),
                         "reason", reason, "objective", objective));
    tm_line(TM_YELLOW, "  !! escalation tier %d: %s", tier, reason);
    const char *title = pr_str(r->outline, "title");
    char *msg = ut_xasprintf("%s[tier %d] %s: %s (run %s%s%s)", r->opt->drill ? "[DRILL] " : "", tier,
                             title ? title : "incident", reason, r->run_id, step ? ", step " : "",
                             step ? step : "");
    json_t *fields = json_pack("{s:s, s:s, s:s, s:i}", "run", r->run_id, "playbook",
                               pr_str(r->outline, "id") ? pr_str(r->outline, "id") : "", "severity",
                               pr_str(r->outline, "severity") ? pr_str(r->outline, "severity") : "medium",
                               "tier", tier);
    size_t i;
    json_t *t;
    json_array_foreach(targets, i, t) if (json_is_string(t)) notify_one(r, "escalation", json_string_value(t), msg, fields, step, tier);
    json_decref(fields);
    free(msg);
    return tier;
}

int eng_escalate(eng_run *r, const char *reason, const char *step, int tier)
{
    return escalate_for(r, reason, step, tier, NULL);
}

void eng_escalation_resume(eng_run *r, json_t *records)
{
    if (!r->breached)
        r->breached = json_object();
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec)
    {
        if (strcmp(pr_str(rec, "type") ? pr_str(rec, "type") : "", "escalation.triggered") != 0)
            continue;
        json_t *data = json_object_get(rec, "data");
        const char *key = pr_str(data, "objective");
        if (key) {
            json_object_set_new(r->breached, key, json_integer(0));
            continue;
        }
        /* A journal from before the objective was named: "objective KEY (30m00s) breached: ..." */
        const char *reason = pr_str(data, "reason");
        const char *sp = reason && !strncmp(reason, "objective ", 10) ? strstr(reason + 10, " (") : NULL;
        if (sp && strstr(sp, ") breached")) {
            char *k = ut_xasprintf("%.*s", (int)(sp - (reason + 10)), reason + 10);
            json_object_set_new(r->breached, k, json_integer(0));
            free(k);
        }
    }
}


int64_t eng_clock_ms(eng_run *r)
{
    if (!r->started_mono)
        return 0;
    double speed = r->opt->drill && r->opt->speed > 1 ? r->opt->speed : 1;
    int64_t now = r->paused_since_mono ? r->paused_since_mono : ut_mono_ms();
    int64_t ran = now - r->started_mono - r->paused_total_ms;
    return (int64_t)((double)(ran > 0 ? ran : 0) * speed);
}

static int64_t elapsed_ms(eng_run *r)
{
    return eng_clock_ms(r);
}

/* The phase an objective is about: "contain_within" -> "containment",
 * "detection_within" -> "detection"; NULL for the whole run
 * ("resolve_within", "close_within", or no matching phase). */
json_t *eng_objective_verdict(const char *key, const char *phase, long long limit, long long reached,
                              long long now, int escalated)
{
    const char *verdict = escalated || (reached >= 0 && reached > limit) || (reached < 0 && now > limit) ? "breached"
                          : reached >= 0                                                                 ? "met"
                                                                                                         : "not reached";
    json_t *o = json_pack("{s:s, s:s?, s:I, s:s}", "objective", key, "phase", phase, "limit_ms", (json_int_t)limit,
                          "verdict", verdict);
    json_object_set_new(o, "reached_ms", reached >= 0 ? json_integer(reached) : json_null());
    return o;
}

const char *eng_objective_phase_in(json_t *phases, const char *key)
{
    size_t n = strlen(key);
    if (n <= 7 || strcmp(key + n - 7, "_within") != 0)
        return NULL;
    size_t stem = n - 7;
    size_t i;
    json_t *p;
    json_array_foreach(phases, i, p)
    {
        const char *phase = json_string_value(p);
        if (phase && strlen(phase) >= stem && strncmp(phase, key, stem) == 0)
            return phase;
    }
    return NULL;
}

const char *eng_objective_phase(eng_run *r, const char *key)
{
    return eng_objective_phase_in(json_object_get(r->outline, "phases"), key);
}

/* 1 when every step of phase (every step when phase is NULL) has an outcome. */
static int phase_finished(eng_run *r, const char *phase)
{
    size_t i;
    json_t *def;
    json_array_foreach(r->steps, i, def)
    {
        const char *p = pr_str(def, "phase");
        if (phase && (!p || strcmp(p, phase) != 0))
            continue;
        json_t *st = json_object_get(r->state, pr_str(def, "id"));
        if (!st)
            return 0;
    }
    return 1;
}

/* Escalates once for every objective whose time is up while its phase is
 * still open. */
static void check_objectives(eng_run *r)
{
    json_t *objectives = json_object_get(r->outline, "objectives");
    const char *key;
    json_t *v;
    json_object_foreach(objectives, key, v)
    {
        if (!json_is_integer(v) || json_object_get(r->breached, key))
            continue;
        const char *phase = eng_objective_phase(r, key);
        if (elapsed_ms(r) < json_integer_value(v) || phase_finished(r, phase))
            continue;
        char shown[32];
        ut_format_duration(json_integer_value(v), shown, sizeof shown);
        char *reason = ut_xasprintf("objective %s (%s) breached: %s not finished", key, shown,
                                    phase ? phase : "the run is");
        json_object_set_new(r->breached, key, json_integer(elapsed_ms(r)));
        escalate_for(r, reason, r->current_step, 0, key);
        free(reason);
    }
}

static void check_tiers_now(eng_run *r);

static void check_timed_tiers(uv_timer_t *t)
{
    check_tiers_now(t->data);
}

void eng_escalation_catch_up(eng_run *r)
{
    if (r->escalation_timer_init)
        check_tiers_now(r);
}

static void check_tiers_now(eng_run *r)
{
    check_objectives(r);
    json_t *tiers = json_object_get(r->outline, "escalation");
    size_t i;
    json_t *def;
    json_array_foreach(tiers, i, def)
    {
        int tier = (int)i + 1;
        long long after = pr_int(def, "after_ms", 0);
        if (tier > r->escalation_tier && after > 0 && elapsed_ms(r) >= after) {
            char reason[160], shown[32];
            ut_format_duration(after, shown, sizeof shown);
            snprintf(reason, sizeof reason, "the run is still open after %s", shown);
            eng_escalate(r, reason, r->current_step, tier);
        }
    }
}

void eng_escalation_start(eng_run *r)
{
    if (tier_count(r) == 0 && json_object_size(json_object_get(r->outline, "objectives")) == 0)
        return;
    if (!r->breached)
        r->breached = json_object();
    uv_timer_init(r->loop, &r->escalation_timer);
    r->escalation_timer.data = r;
    r->escalation_timer_init = 1;
    /* Every 250 ms of the run's clock (a fast drill clock checks more often), at least every 10 ms. */
    double speed = r->opt->drill && r->opt->speed > 1 ? r->opt->speed : 1;
    uint64_t period = (uint64_t)(250.0 / speed);
    if (period < 10)
        period = 10;
    uv_timer_start(&r->escalation_timer, check_timed_tiers, period, period);
    uv_unref((uv_handle_t *)&r->escalation_timer); /* never keeps the loop alive alone */
}

void eng_escalation_stop(eng_run *r)
{
    if (r->escalation_timer_init) {
        uv_timer_stop(&r->escalation_timer);
        uv_close((uv_handle_t *)&r->escalation_timer, NULL);
        r->escalation_timer_init = 0;
    }
}

#define WAIT_REPEAT_MIN_MS (5 * 60 * 1000) /* run clock */

typedef struct {
    uv_timer_t timer;
    eng_run *run;
    char *step;
    char *what;
    int64_t period_ms;        /* run clock */
    int64_t asked_at;         /* run clock */
    int fired;
} wait_escalation;

/* Checked on a short tick against the run's clock, so a drill's pause
 * holds it and a fast drill clock speeds it up. */
static void wait_fired(uv_timer_t *t)
{
    wait_escalation *w = t->data;
    /* The first escalation comes at the step's timeout; each one after it a
     * timeout later, but never sooner than WAIT_REPEAT_MIN_MS: a "1ms"
     * timeout must not page the top tier a thousand times a second. */
    int64_t repeat = w->period_ms > WAIT_REPEAT_MIN_MS ? w->period_ms : WAIT_REPEAT_MIN_MS;
    int64_t due = w->period_ms + repeat * w->fired;
    int64_t waited = eng_clock_ms(w->run) - w->asked_at;
    if (waited < due)
        return;
    w->fired++;
    char shown[32];
    ut_format_duration(due, shown, sizeof shown);
    char *reason = ut_xasprintf("step \"%s\" has waited %s for %s", w->step, shown, w->what);
    eng_escalate(w->run, reason, w->step, 0);
    free(reason);
}

void *eng_wait_escalation_start(eng_run *r, const char *step, const char *what)
{
    json_t *def = eng_step_def(r, step);
    long long timeout = def ? pr_int(def, "timeout_ms", 0) : 0;
    if (timeout <= 0)
        return NULL;
    wait_escalation *w = ut_xcalloc(1, sizeof *w);
    w->run = r;
    w->step = ut_xstrdup(step);
    w->what = ut_xstrdup(what);
    w->period_ms = timeout;
    w->asked_at = eng_clock_ms(r);
    double speed = r->opt->drill && r->opt->speed > 1 ? r->opt->speed : 1;
    uint64_t tick = (uint64_t)((double)timeout / speed / 4);
    if (tick < 1)
        tick = 1;
    if (tick > 100)
        tick = 100;
    uv_timer_init(r->loop, &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, wait_fired, tick, tick);
    return w;
}

static void wait_closed(uv_handle_t *h)
{
    wait_escalation *w = h->data;
    free(w->step);
    free(w->what);
    free(w);
}

void eng_wait_escalation_stop(void *handle)
{
    wait_escalation *w = handle;
    if (!w)
        return;
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, wait_closed);
}

void eng_acknowledge(eng_run *r)
{
    /* Unattended answers and drills acknowledge nothing on a real pager. */
    if (r->acknowledged || r->escalation_tier == 0 || r->opt->yes || r->opt->drill)
        return;
    r->acknowledged = 1;
    nt_run_event(r->notify, r->run_id, "acknowledge");
}
