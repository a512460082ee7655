/*
 * report.c — the model behind `irp report`: reads a run's journal (what can
 * be read of a damaged one), verifies its hash chain (jr_verify_file, the
 * walk `irp verify` uses) and builds one JSON object: header (playbook,
 * run, mode, who, when, status, severity, inputs), integrity, metrics
 * (time to acknowledge / contain / resolve), phases and objectives. The
 * event tables come from report_events.c. Times are on the run's clock:
 * the drill clock (data.sim_ms) in a drill, the wall clock since
 * run.started in a live run.
 * Depends on: jansson, journal.h, engine.h (objective -> phase), proto.h,
 * util.h.
 */
#include "report.h"
#include "engine.h"
#include "journal.h"
#include "proto.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

long long rp_parse_ts(const char *ts)
{
    struct tm tm;
    int ms = 0, n = 0;
    memset(&tm, 0, sizeof tm);
    if (!ts || sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                      &tm.tm_min, &tm.tm_sec, &ms, &n) != 7 || n != 24 || ts[n])
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm) * 1000 + ms;
}

const char *rp_duration(long long ms, char out[32])
{
    if (ms < 0)
        snprintf(out, 32, "-");
    else
        ut_format_duration(ms, out, 32);
    return out;
}

typedef struct {
    int drill;
    long long t0; /* wall ms of the first record */
} run_clock;

/* A record's time in ms since the start of the run, on the run's clock. */
static long long time_of(json_t *rec, void *ctx)
{
    run_clock *c = ctx;
    json_t *sim = json_object_get(json_object_get(rec, "data"), "sim_ms");
    if (c->drill && json_is_integer(sim))
        return json_integer_value(sim);
    long long ts = rp_parse_ts(pr_str(rec, "ts"));
    return ts < 0 || c->t0 < 0 ? -1 : ts - c->t0;
}

static json_t *data_of(json_t *rec)
{
    return json_object_get(rec, "data");
}

static int is_type(json_t *rec, const char *type)
{
    const char *t = pr_str(rec, "type");
    return t && !strcmp(t, type);
}

/* Copies key of from into to when it is there. */
static void copy_key(json_t *to, json_t *from, const char *key)
{
    json_t *v = json_object_get(from, key);
    if (v)
        json_object_set(to, key, v);
}

/* Where the run stands: the last run.* record says it. */
static void run_status(json_t *model, json_t *records, long running)
{
    json_t *last = jr_last_run_record(records);
    const char *status = "open";
    if (is_type(last, "run.finished"))
        status = pr_str(data_of(last), "status") ? pr_str(data_of(last), "status") : "finished";
    else if (is_type(last, "run.interrupted"))
        status = "interrupted";
    json_object_set_new(model, "status", json_string(status));
    json_object_set_new(model, "running", json_boolean(running != 0));
    if (running > 0)
        json_object_set_new(model, "running_pid", json_integer(running));
    /* What a failed or interrupted run stopped at: the last step that failed. */
    if (strcmp(status, "succeeded") != 0) {
        size_t i;
        json_t *rec, *failed = NULL;
        json_array_foreach(records, i, rec) if (is_type(rec, "step.failed")) failed = rec;
        if (failed)
            json_object_set_new(model, "failure", json_pack("{s:s?, s:s?, s:I}", "step", pr_str(failed, "step"),
                                                            "reason", pr_str(data_of(failed), "reason"), "seq",
                                                            (json_int_t)pr_int(failed, "seq", 0)));
    }
    int ended = is_type(last, "run.finished") || is_type(last, "run.interrupted");
    json_object_set_new(model, "ended", ended ? json_string(pr_str(last, "ts")) : json_null());
}

static void header(json_t *model, json_t *records, run_clock *clock)
{
    json_t *first = json_array_get(records, 0);
    json_t *d = is_type(first, "run.started") ? data_of(first) : NULL;
    json_t *pb = json_object_get(d, "playbook");
    json_object_set_new(model, "report", json_integer(1));
    copy_key(model, first, "run");
    copy_key(model, first, "mode");
    json_object_set_new(model, "drill", json_boolean(clock->drill));
    json_t *p = json_object();
    static const char *const pb_keys[] = {"id", "title", "version", "file", "path", "sha256", "severity", NULL};
    for (int i = 0; pb_keys[i]; i++)
        copy_key(p, pb, pb_keys[i]);
    json_object_set_new(model, "playbook", p);
    json_object_set_new(model, "started", json_string(pr_str(first, "ts") ? pr_str(first, "ts") : ""));
    copy_key(model, d, "operator");
    copy_key(model, d, "host");
    json_t *inputs = json_object_get(d, "inputs");
    json_object_set_new(model, "inputs", json_is_object(inputs) ? json_deep_copy(inputs) : json_object());
    copy_key(model, d, "yes");
    if (clock->drill) {
        copy_key(model, d, "speed");
        copy_key(model, d, "scenario");
    }
    json_object_set_new(model, "clock", json_string(clock->drill ? "drill" : "wall"));
    /* The drill scenario's title and participants (operator.note by irp). */
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec)
    {
        json_t *rd = data_of(rec);
        if (clock->drill && is_type(rec, "operator.note") && pr_str(rec, "actor") &&
            !strcmp(pr_str(rec, "actor"), "irp") && json_object_get(rd, "participants")) {
            copy_key(model, rd, "participants");
            if (pr_str(rd, "title"))
                json_object_set_new(model, "scenario_title", json_string(pr_str(rd, "title")));
            break;
        }
    }
}

/* Steps that reached an outcome, counted by their last one. */
static void step_counts(json_t *model, json_t *records)
{
    json_t *last = json_object();
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec)
    {
        const char *t = pr_str(rec, "type"), *step = pr_str(rec, "step");
        if (step && t && (!strcmp(t, "step.succeeded") || !strcmp(t, "step.failed") || !strcmp(t, "step.skipped")))
            json_object_set_new(last, step, json_string(t + 5));
    }
    long long n[3] = {0, 0, 0};
    const char *k;
    json_t *v;
    json_object_foreach(last, k, v)
    {
        const char *s = json_string_value(v);
        n[!strcmp(s, "succeeded") ? 0 : !strcmp(s, "failed") ? 1 : 2]++;
    }
    json_t *steps = json_object_get(json_object_get(data_of(json_array_get(records, 0)), "playbook"), "steps");
    json_object_set_new(model, "steps", json_pack("{s:I, s:I, s:I, s:I}", "total", (json_int_t)json_array_size(steps),
                                                  "succeeded", (json_int_t)n[0], "failed", (json_int_t)n[1],
                                                  "skipped", (json_int_t)n[2]));
    json_decref(last);
}

/* Phase times from the step records: a phase starts with the first
 * step.started, approval.requested (waiting for an approval is the phase's
 * time, as the drill scorecard counts it) or step.skipped of one of its
 * steps and ends with the last outcome of one; it is complete when every
 * step of it has an outcome. */
static json_t *phases_from_steps(json_t *records, json_t *pb, run_clock *clock)
{
    json_t *order = json_object_get(pb, "phases"), *of = json_object_get(pb, "step_phases");
    json_t *out = json_array();
    size_t i, j;
    json_t *p, *rec;
    json_array_foreach(order, i, p)
    {
        const char *phase = json_string_value(p);
        if (!phase)
            continue;
        long long start = -1, end = -1;
        json_t *done = json_object();
        json_array_foreach(records, j, rec)
        {
            const char *step = pr_str(rec, "step"), *t = pr_str(rec, "type");
            const char *sp = step ? pr_str(of, step) : NULL;
            if (!sp || strcmp(sp, phase) != 0 || !t)
                continue;
            long long at = time_of(rec, clock);
            if ((!strcmp(t, "step.started") || !strcmp(t, "step.skipped") || !strcmp(t, "approval.requested")) &&
                start < 0)
                start = at;
            if (!strcmp(t, "step.succeeded") || !strcmp(t, "step.failed") || !strcmp(t, "step.skipped")) {
                end = at;
                json_object_set_new(done, step, json_true());
            } else if (!strcmp(t, "step.started") || !strcmp(t, "step.retried")) {
                json_object_del(done, step);
            }
        }
        size_t in_phase = 0;
        const char *k;
        json_t *v;
        json_object_foreach(of, k, v) if (json_is_string(v) && !strcmp(json_string_value(v), phase)) in_phase++;
        int complete = in_phase > 0 && json_object_size(done) == in_phase;
        json_decref(done);
        if (start < 0)
            continue; /* never reached */
        json_t *ph = json_pack("{s:s, s:I}", "phase", phase, "start_ms", (json_int_t)start);
        json_object_set_new(ph, "end_ms", complete ? json_integer(end) : json_null());
        json_object_set_new(ph, "duration_ms", complete ? json_integer(end - start) : json_null());
        json_object_set_new(ph, "complete", json_boolean(complete));
        json_array_append_new(out, ph);
    }
    return out;
}

/* The drill scorecard's phases (the engine's own numbers), complete when they ended. */
static json_t *phases_from_scorecard(json_t *card)
{
    json_t *out = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(card, "phases"), i, p)
    {
        json_t *ph = json_deep_copy(p);
        json_object_set_new(ph, "complete", json_true());
        json_array_append_new(out, ph);
    }
    return out;
}

static json_t *find_phase(json_t *phases, const char *name)
{
    size_t i;
    json_t *p;
    json_array_foreach(phases, i, p) if (name && pr_str(p, "phase") && !strcmp(pr_str(p, "phase"), name)) return p;
    return NULL;
}

/* The playbook's objectives against the run, by the scorecard's rule
 * (scorecard.c): met when the objective's phase (the whole run for a key
 * that names none) was complete within the limit; breached when it was
 * late, when the engine escalated the breach (escalation.triggered with
 * data.objective), or when the time is up and it is still open; else
 * "not reached". A drill's scorecard verdicts are used as they are. */
static json_t *objectives(json_t *model, json_t *records, json_t *pb, json_t *phases, long long now)
{
    json_t *out = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(pb, "objectives"), key, v)
    {
        if (!json_is_integer(v))
            continue;
        long long limit = json_integer_value(v);
        const char *phase = eng_objective_phase_in(json_object_get(pb, "phases"), key);
        long long reached = -1;
        json_t *ph = find_phase(phases, phase);
        if (phase && ph && json_is_true(json_object_get(ph, "complete")))
            reached = pr_int(ph, "end_ms", -1);
        else if (!phase && !strcmp(pr_str(model, "status"), "succeeded"))
            reached = now;
        int escalated = 0;
        size_t i;
        json_t *rec;
        json_array_foreach(records, i, rec) if (is_type(rec, "escalation.triggered") &&
                                                pr_str(data_of(rec), "objective") &&
                                                !strcmp(pr_str(data_of(rec), "objective"), key)) escalated = 1;
        json_array_append_new(out, eng_objective_verdict(key, phase, limit, reached, now, escalated));
    }
    return out;
}

/* The first operator action: a manual answer, an approval granted or
 * denied, an operator note or an answer to ctx.ask/confirm, by a person
 * (not irp itself, not --yes; a drill's scripted answers stand for the
 * team and count). */
static json_t *first_ack(json_t *records, run_clock *clock)
{
    static const char *const types[] = {"manual.answered", "approval.granted", "approval.denied", "operator.note",
                                        "operator.answered", NULL};
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec)
    {
        const char *t = pr_str(rec, "type"), *actor = pr_str(rec, "actor"), *via = pr_str(data_of(rec), "via");
        int match = 0;
        for (int k = 0; types[k] && t; k++)
            match |= !strcmp(t, types[k]);
        if (!match || (actor && !strcmp(actor, "irp")) || (via && !strcmp(via, "--yes")))
            continue;
        return json_pack("{s:I, s:s?, s:s?, s:s?, s:s?, s:I}", "ms", (json_int_t)time_of(rec, clock), "at",
                         pr_str(rec, "ts"), "by", actor, "event", t, "step", pr_str(rec, "step"), "seq",
                         (json_int_t)pr_int(rec, "seq", 0));
    }
    return json_null();
}

static void metrics(json_t *model, json_t *records, json_t *phases, run_clock *clock)
{
    json_t *m = json_object();
    json_object_set_new(m, "acknowledge", first_ack(records, clock));
    json_t *c = find_phase(phases, "containment");
    if (c && json_is_true(json_object_get(c, "complete")))
        json_object_set_new(m, "contain", json_pack("{s:I, s:s}", "ms", (json_int_t)pr_int(c, "end_ms", 0),
                                                    "phase", "containment"));
    else
        json_object_set_new(m, "contain", json_null());
    json_t *fin = jr_last_run_record(records);
    if (is_type(fin, "run.finished"))
        json_object_set_new(m, "resolve", json_pack("{s:I, s:s?, s:s?}", "ms", (json_int_t)time_of(fin, clock),
                                                    "at", pr_str(fin, "ts"), "status",
                                                    pr_str(data_of(fin), "status")));
    else
        json_object_set_new(m, "resolve", json_null());
    json_object_set_new(model, "metrics", m);
}

json_t *rp_build(json_t *records, json_t *integrity, long running)
{
    json_t *model = json_object();
    json_t *first = json_array_get(records, 0);
    run_clock clock = {pr_str(first, "mode") && !strcmp(pr_str(first, "mode"), "drill"),
                       rp_parse_ts(pr_str(first, "ts"))};
    header(model, records, &clock);
    json_object_set_new(model, "integrity", integrity ? integrity : json_null());
    run_status(model, records, running);
    step_counts(model, records);
    json_t *card = NULL, *rec;
    size_t i;
    json_array_foreach(records, i, rec) if (is_type(rec, "drill.scorecard")) card = data_of(rec);
    json_t *pb = json_object_get(data_of(first), "playbook");
    json_t *phases = card ? phases_from_scorecard(card) : phases_from_steps(records, pb, &clock);
    json_t *fin = jr_last_run_record(records);
    long long now = time_of(is_type(fin, "run.finished") ? fin : json_array_get(records, json_array_size(records) - 1),
                            &clock);
    json_object_set_new(model, "phases", phases);
    json_object_set_new(model, "objectives", card && json_object_get(card, "objectives")
                                                 ? json_deep_copy(json_object_get(card, "objectives"))
                                                 : objectives(model, records, pb, phases, now));
    json_object_set_new(model, "elapsed_ms", json_integer(now));
    metrics(model, records, phases, &clock);
    json_object_set_new(model, "scorecard", card ? json_deep_copy(card) : json_null());
    rp_events(model, records, time_of, &clock);
    return model;
}

/* The integrity section: the chain verification of path, and what could
 * not be read. */
static json_t *integrity_of(const char *path, long long unreadable, size_t torn, size_t records)
{
    jr_verify_result vr;
    int rc = jr_verify_file(path, &vr);
    /* A torn last line is what a crash (or a run still writing) leaves:
     * resume sets it aside; it is not tampering (as irp status says). */
    int torn_only = rc == 0 && !vr.intact && torn && !unreadable && vr.bad_line == (long long)records + 1;
    json_t *in = json_pack("{s:s, s:b, s:I, s:I, s:s}", "journal", path, "intact", rc == 0 && (vr.intact || torn_only),
                           "records", (json_int_t)vr.records, "head_seq", (json_int_t)vr.head_seq, "head", vr.head);
    json_object_set_new(in, "torn_bytes", json_integer((json_int_t)torn));
    json_object_set_new(in, "unreadable_lines", json_integer(unreadable));
    /* The chain vouches for a record through the next one's prev: when it
     * breaks, the last record that passed may be the changed one. */
    long long through = rc == 0 && (vr.intact || torn_only) ? vr.head_seq : vr.head_seq > 0 ? vr.head_seq - 1 : 0;
    json_object_set_new(in, "verified_through", json_integer(through));
    if (rc != 0 || (!vr.intact && !torn_only)) {
        json_object_set_new(in, "problem", json_string(vr.what));
        json_object_set_new(in, "bad_line", json_integer(vr.bad_line));
        json_object_set_new(in, "bad_seq", vr.bad_seq > 0 ? json_integer(vr.bad_seq) : json_null());
    }
    return in;
}

json_t *rp_load(const char *path, long running, char *err, size_t err_size)
{
    long long unreadable = 0;
    size_t torn = 0;
    json_t *records = jr_read_salvage(path, &unreadable, &torn, err, err_size);
    if (!records)
        return NULL;
    if (json_array_size(records) == 0) {
        snprintf(err, err_size, "%s: no whole record in the journal (nothing to report)", path);
        json_decref(records);
        return NULL;
    }
    json_t *integrity = integrity_of(path, unreadable, torn, json_array_size(records));
    json_t *model = rp_build(records, integrity, running);
    /* Mark what follows the first bad record: it is shown, not vouched for. */
    long long good = json_is_true(json_object_get(integrity, "intact")) ? -1 : pr_int(integrity, "verified_through", 0);
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(model, "timeline"), i, ev) if (good >= 0 && pr_int(ev, "seq", 0) > good)
        json_object_set_new(ev, "unverified", json_true());
    json_decref(records);
    return model;
}
