/*
 * scorecard.c — the end of every drill: time per phase on the drill clock
 * against the playbook's objectives, decisions taken (and expected),
 * escalation tiers fired (and those expected that did not fire, and
 * those the playbook's own rules say were due and did not fire:
 * scorecard_due.c), steps
 * skipped or failed, injects shown (and those never reached, with why),
 * total simulated time. Printed, journaled as drill.scorecard, and,
 * when the scenario has `expect`, turned into the exit code: 0 only when
 * every expectation held, else 1 with each mismatch printed. That is the
 * playbook test a CI job runs.
 * Depends on: jansson, engine.h, scenario_internal.h, term.h, util.h.
 */
#include "engine.h"
#include "scenario.h"
#include "scenario_internal.h"
#include "term.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Answer words as the scorecard compares them. */
static const char *canonical(const char *w)
{
    static const char *const map[][2] = {{"approved", "approve"}, {"grant", "approve"}, {"granted", "approve"},
                                         {"a", "approve"},        {"denied", "deny"},   {"reject", "deny"},
                                         {"d", "done"},           {"ok", "done"},       {"fail", "failed"},
                                         {"f", "failed"},         {"s", "skip"},        {"skipped", "skip"},
                                         {NULL, NULL}};
    for (size_t i = 0; map[i][0]; i++)
        if (!strcasecmp(w, map[i][0]))
            return map[i][1];
    return w;
}

static json_t *steps_with_status(eng_run *r, const char *status)
{
    json_t *out = json_array();
    size_t i;
    json_t *def;
    json_array_foreach(r->steps, i, def)
    {
        json_t *st = json_object_get(r->state, pr_str(def, "id"));
        if (st && pr_str(st, "status") && !strcmp(pr_str(st, "status"), status))
            json_array_append_new(out, json_string(pr_str(def, "id")));
    }
    return out;
}

/* Distinct values, sorted (tiers). */
static json_t *distinct_tiers(json_t *list)
{
    int seen[64] = {0};
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) if (json_integer_value(v) > 0 && json_integer_value(v) < 64) seen[json_integer_value(v)] = 1;
    json_t *out = json_array();
    for (int t = 1; t < 64; t++)
        if (seen[t])
            json_array_append_new(out, json_integer(t));
    return out;
}

static int has_string(json_t *list, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), s)) return 1;
    return 0;
}

static char *join(json_t *list)
{
    ut_buf b = {0};
    ut_buf_puts(&b, "");
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (i)
            ut_buf_puts(&b, ", ");
        if (json_is_integer(v))
            ut_buf_printf(&b, "%lld", (long long)json_integer_value(v));
        else
            ut_buf_puts(&b, json_string_value(v) ? json_string_value(v) : "?");
    }
    if (!json_array_size(list))
        ut_buf_puts(&b, "none");
    return b.data;
}

static void mismatch(json_t *mm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mismatch(json_t *mm, const char *fmt, ...)
{
    ut_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    ut_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    json_array_append_new(mm, json_string(b.data));
    ut_buf_free(&b);
}

static void compare_sets(json_t *mm, const char *what, json_t *expected, json_t *actual)
{
    if (!expected)
        return;
    size_t i;
    json_t *v;
    json_array_foreach(expected, i, v) if (!has_string(actual, json_string_value(v)))
        mismatch(mm, "expected step \"%s\" %s, but it was not", json_string_value(v), what);
    json_array_foreach(actual, i, v) if (!has_string(expected, json_string_value(v)))
        mismatch(mm, "step \"%s\" was %s, which the scenario did not expect", json_string_value(v), what);
}

/* The injects the drill never reached, each with its trigger and why. */
static json_t *injects_not_shown(eng_run *r, dr_state *d, int64_t total)
{
    json_t *out = json_array();
    size_t i;
    json_t *inj;
    json_array_foreach(d->sc ? d->sc->injects : NULL, i, inj)
    {
        if (json_is_true(json_array_get(d->fired, i)))
            continue;
        const char *on = pr_str(inj, "on"), *step = pr_str(inj, "step");
        char *trigger, *why;
        if (on) {
            trigger = ut_xasprintf("%s of %s", !strcmp(on, "step_start") ? "start" : "end", step);
            json_t *st = json_object_get(r->state, step);
            const char *status = st ? pr_str(st, "status") : NULL;
            why = ut_xasprintf("step \"%s\" %s", step,
                               !st ? "never ran"
                               : status && !strcmp(status, "skipped") ? "was skipped"
                                                                     : "did not get there (the drill stopped)");
        } else {
            char t[32];
            ut_format_duration(total, t, sizeof t);
            trigger = ut_xstrdup(pr_str(inj, "at") ? pr_str(inj, "at") : "?");
            why = ut_xasprintf("the drill ended at T+%s", t);
        }
        json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:I}", "trigger", trigger, "text", pr_str(inj, "text"),
                                             "why", why, "line", (json_int_t)pr_int(inj, "line", 0)));
        free(trigger);
        free(why);
    }
    return out;
}

/* Tiers in a but not in b (both distinct, sorted). */
static json_t *tiers_missing(json_t *a, json_t *b)
{
    json_t *out = json_array();
    size_t i, j;
    json_t *v, *w;
    json_array_foreach(a, i, v)
    {
        int found = 0;
        json_array_foreach(b, j, w) found |= json_integer_value(v) == json_integer_value(w);
        if (!found)
            json_array_append_new(out, json_integer(json_integer_value(v)));
    }
    return out;
}

/* Phases in the playbook's order, with their simulated times; objectives. */
static json_t *phase_times(eng_run *r, dr_state *d)
{
    json_t *out = json_array();
    json_t *order = json_deep_copy(json_object_get(r->outline, "phases"));
    if (!order)
        order = json_array();
    json_array_append_new(order, json_string("(no phase)"));
    size_t i;
    json_t *p;
    json_array_foreach(order, i, p)
    {
        json_t *t = json_object_get(d->phases, json_string_value(p));
        if (!t)
            continue;
        long long start = pr_int(t, "start_ms", 0), end = pr_int(t, "end_ms", start);
        json_array_append_new(out, json_pack("{s:s, s:I, s:I, s:I}", "phase", json_string_value(p), "start_ms",
                                             (json_int_t)start, "end_ms", (json_int_t)end, "duration_ms",
                                             (json_int_t)(end - start)));
    }
    json_decref(order);
    return out;
}

static int phase_done(eng_run *r, const char *phase)
{
    size_t i;
    json_t *def;
    json_array_foreach(r->steps, i, def)
    {
        const char *p = pr_str(def, "phase");
        if (phase && (!p || strcmp(p, phase) != 0))
            continue;
        if (!json_object_get(r->state, pr_str(def, "id")))
            return 0;
    }
    return 1;
}

static json_t *objectives(eng_run *r, dr_state *d, const char *status, int64_t total)
{
    json_t *out = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(r->outline, "objectives"), key, v)
    {
        if (!json_is_integer(v))
            continue;
        long long limit = json_integer_value(v);
        const char *phase = eng_objective_phase(r, key);
        long long reached = -1;
        if (phase && phase_done(r, phase))
            reached = pr_int(json_object_get(d->phases, phase), "end_ms", -1);
        else if (!phase && !strcmp(status, "succeeded"))
            reached = total;
        json_array_append_new(out, eng_objective_verdict(key, phase, limit, reached, total,
                                                         json_object_get(r->breached, key) != NULL));
    }
    return out;
}

/* Decisions against the expected ones; mismatches appended to mm. */
static void check_decisions(dr_state *d, json_t *expected, json_t *mm)
{
    const char *step;
    json_t *want;
    json_object_foreach(expected, step, want)
    {
        const char *got = NULL;
        size_t i;
        json_t *dec;
        json_array_foreach(d->decisions, i, dec) if (!strcmp(pr_str(dec, "step"), step))
        {
            json_t *a = json_object_get(dec, "answer");
            got = json_is_string(a) ? json_string_value(a) : "?";
        }
        const char *w = json_string_value(want);
        if (!got)
            mismatch(mm, "decision at \"%s\": expected %s, but nobody was asked", step, w);
        else if (strcasecmp(canonical(got), canonical(w)) != 0)
            mismatch(mm, "decision at \"%s\": expected %s, got %s", step, w, got);
    }
}

static void print_card(eng_run *r, dr_state *d, json_t *card)
{
    char t[32];
    ut_format_duration(pr_int(card, "total_sim_ms", 0), t, sizeof t);
    tm_line(TM_BOLD, "== DRILL SCORECARD%s%s", d->sc && d->sc->title ? ": " : "", d->sc && d->sc->title ? d->sc->title : "");
    tm_line(TM_PLAIN, "   status %s; total simulated time %s (clock %gx)", pr_str(card, "status"), t,
            r->opt->speed > 1 ? r->opt->speed : 1);
    if (pr_int(card, "paused_ms", 0) > 0) {
        ut_format_duration(pr_int(card, "paused_ms", 0), t, sizeof t);
        tm_line(TM_PLAIN, "   paused by the facilitator for %s (not on the drill clock)", t);
    }
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(card, "phases"), i, v)
    {
        ut_format_duration(pr_int(v, "duration_ms", 0), t, sizeof t);
        char end[32];
        ut_format_duration(pr_int(v, "end_ms", 0), end, sizeof end);
        tm_line(TM_PLAIN, "   phase %-16s %8s  (done at T+%s)", pr_str(v, "phase"), t, end);
    }
    json_array_foreach(json_object_get(card, "objectives"), i, v)
    {
        ut_format_duration(pr_int(v, "limit_ms", 0), t, sizeof t);
        const char *verdict = pr_str(v, "verdict");
        tm_line(!strcmp(verdict, "met") ? TM_GREEN : TM_RED, "   objective %s (%s): %s", pr_str(v, "objective"), t,
                verdict);
    }
    json_t *decisions = json_object_get(card, "decisions");
    json_t *want = json_object_get(json_object_get(card, "expected"), "decisions");
    json_array_foreach(decisions, i, v)
    {
        json_t *a = json_object_get(v, "answer");
        const char *got = json_is_string(a) ? json_string_value(a) : "?";
        /* The step's last decision is the one held against the expected one. */
        int last = 1;
        for (size_t k = i + 1; k < json_array_size(decisions); k++)
            last &= strcmp(pr_str(json_array_get(decisions, k), "step"), pr_str(v, "step")) != 0;
        const char *w = last ? pr_str(want, pr_str(v, "step")) : NULL;
        int as_expected = w && !strcasecmp(canonical(got), canonical(w));
        const char *note = pr_str(v, "note");
        tm_line(!w ? TM_PLAIN : as_expected ? TM_GREEN : TM_RED, "   decision %s %s: %s (%s)%s%s%s%s%s",
                pr_str(v, "step"), pr_str(v, "kind"), got, pr_str(v, "via"), note ? " - " : "", note ? note : "",
                w ? (as_expected ? "  [expected " : "  [NOT AS EXPECTED: ") : "", w ? w : "", w ? "]" : "");
    }
    char *fired = join(json_object_get(card, "escalations"));
    json_t *missed = json_object_get(card, "escalations_missed");
    json_t *extra = json_object_get(card, "escalations_unexpected");
    char *skipped = join(json_object_get(card, "skipped"));
    char *failed = join(json_object_get(card, "failed"));
    tm_line(TM_PLAIN, "   escalation tiers fired: %s", fired);
    if (json_array_size(missed)) {
        char *m = join(missed);
        tm_line(TM_RED, "   escalation tiers that should have fired and did not: %s", m);
        free(m);
    }
    json_array_foreach(json_object_get(card, "escalations_due_not_fired"), i, v)
    {
        ut_format_duration(pr_int(v, "due_ms", 0), t, sizeof t);
        tm_line(TM_RED, "   escalation that should have fired and did not: tier %lld at T+%s (%s)", pr_int(v, "tier", 0),
                t, pr_str(v, "why"));
    }
    if (json_array_size(extra)) {
        char *m = join(extra);
        tm_line(TM_YELLOW, "   escalation tiers fired that the scenario did not expect: %s", m);
        free(m);
    }
    tm_line(TM_PLAIN, "   skipped: %s", skipped);
    tm_line(TM_PLAIN, "   failed: %s", failed);
    free(fired);
    free(skipped);
    free(failed);
    json_t *inj = json_object_get(card, "injects");
    if (pr_int(inj, "total", 0))
        tm_line(TM_PLAIN, "   injects shown: %lld of %lld", pr_int(inj, "shown", 0), pr_int(inj, "total", 0));
    json_array_foreach(json_object_get(inj, "not_shown"), i, v)
    {
        const char *text = pr_str(v, "text");
        size_t len = strcspn(text ? text : "", "\n");
        tm_line(TM_YELLOW, "   inject not shown (%s; %s): %.*s%s", pr_str(v, "trigger"), pr_str(v, "why"),
                (int)(len > 60 ? 60 : len), text ? text : "", len > 60 || (text && text[len]) ? "..." : "");
    }
    const char *verdict = pr_str(card, "verdict");
    json_t *mm = json_object_get(card, "mismatches");
    if (!strcmp(verdict, "passed"))
        tm_line(TM_GREEN, "   verdict: PASSED (every expectation of the scenario held)");
    else if (!strcmp(verdict, "failed")) {
        tm_line(TM_RED, "   verdict: FAILED (%zu expectation%s not met)", json_array_size(mm),
                json_array_size(mm) == 1 ? "" : "s");
        json_array_foreach(mm, i, v) tm_line(TM_RED, "     - %s", json_string_value(v));
    } else
        tm_line(TM_DIM, "   verdict: none (the scenario has no `expect`)");
}

int scd_report(eng_run *r, dr_state *d, const char *status, int code)
{
    int64_t total = dr_sim_ms(r);
    json_t *expect = d->sc ? d->sc->expect : NULL;
    json_t *mm = json_array();
    json_t *skipped = steps_with_status(r, "skipped"), *failed = steps_with_status(r, "failed");
    json_t *tiers = distinct_tiers(d->escalations);
    json_t *missed = json_array(), *unexpected = json_array();
    if (expect) {
        const char *want = pr_str(expect, "status");
        if (want && strcmp(want, status) != 0)
            mismatch(mm, "expected the drill to end %s, it ended %s", want, status);
        check_decisions(d, json_object_get(expect, "decisions"), mm);
        json_t *want_tiers = json_object_get(expect, "escalations");
        if (want_tiers) {
            json_t *w = distinct_tiers(want_tiers);
            json_decref(missed);
            json_decref(unexpected);
            missed = tiers_missing(w, tiers);
            unexpected = tiers_missing(tiers, w);
            if (!json_equal(w, tiers)) {
                char *a = join(w), *b = join(tiers);
                mismatch(mm, "expected escalation tiers %s, fired %s", a, b);
                free(a);
                free(b);
            }
            json_decref(w);
        }
        compare_sets(mm, "skipped", json_object_get(expect, "skipped"), skipped);
        compare_sets(mm, "failed", json_object_get(expect, "failed"), failed);
    }
    size_t shown = 0;
    size_t i;
    json_t *v;
    json_array_foreach(d->fired, i, v) shown += json_is_true(v);
    const char *verdict = !expect ? "none" : json_array_size(mm) ? "failed" : "passed";
    json_t *objs = objectives(r, d, status, total);
    json_t *due = scd_due_not_fired(json_object_get(r->outline, "escalation"), objs, d->esc_log,
                                    d->walk_end_ms >= 0 ? d->walk_end_ms : total);
    json_t *card = json_pack("{s:s, s:I, s:f, s:o, s:o, s:O, s:o, s:o, s:o, s:o, s:o, s:{s:I, s:I, s:o}, s:s, s:o}",
                             "status", status, "total_sim_ms", (json_int_t)total, "speed",
                             r->opt->speed > 1 ? r->opt->speed : 1, "phases", phase_times(r, d), "objectives",
                             objs, "decisions", d->decisions, "escalations", tiers,
                             "escalations_missed", missed, "escalations_unexpected", unexpected, "skipped", skipped,
                             "failed", failed, "injects", "shown", (json_int_t)shown, "total",
                             (json_int_t)json_array_size(d->fired), "not_shown", injects_not_shown(r, d, total),
                             "verdict", verdict, "mismatches", mm);
    json_object_set_new(card, "paused_ms", json_integer(r->paused_total_ms + d->paused_before_ms));
    json_object_set_new(card, "escalations_due_not_fired", due);
    if (d->sc) {
        json_object_set_new(card, "scenario", json_string(d->sc->path));
        if (expect)
            json_object_set(card, "expected", expect);
    }
    print_card(r, d, card);
    eng_record(r, "drill.scorecard", NULL, "irp", card);
    if (eng_barrier(r) < 0)
        return IRP_EXIT_IOERR;
    if (!expect)
        return code;
    /* A drill that stopped for lack of an answer stays resumable (75),
     * unless the scenario expected exactly that. */
    if ((!strcmp(status, "no-answer") || !strcmp(status, "interrupted")) &&
        strcmp(pr_str(expect, "status") ? pr_str(expect, "status") : "", status) != 0)
        return code;
    return strcmp(verdict, "passed") == 0 ? IRP_EXIT_OK : IRP_EXIT_FAILED;
}
