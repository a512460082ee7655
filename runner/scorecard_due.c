/*
 * scorecard_due.c — the escalations a drill's own record says should have
 * fired and did not, from the playbook and the run (the scenario's
 * `expect.escalations` is compared in scorecard.c). escalate.c's policy,
 * replayed on the drill clock against the escalation.triggered records:
 *
 * - Tier 1 without `after` fires when a run starts (engine.c); a tier
 *   with `after` fires, on the escalation timer's tick, once that much
 *   run time has passed, unless a tier as high has fired already
 *   (tier > r->escalation_tier). Tiers climb by time in order (the loader
 *   refuses an `after` earlier than the tier before).
 * - An objective whose time is up with its phase (or the run) still open
 *   escalates once: the next tier above the highest fired, or the top
 *   tier again; its reason starts "objective KEY (".
 * - on_failure = "escalate" and ctx.escalate are not checked here: the
 *   engine escalates at once, in the same turn that records the failure
 *   (walk_steps) or answers the call, and a resume escalates a recorded
 *   failure whose escalation is not on record yet (resume.c). The engine
 *   cannot miss those on its own, so no check would ever find one.
 *
 * Where the engine does miss: the timer checks tiers and objectives every
 * 250 ms of run time (no more often than every 10 ms of real time), and only while
 * the steps are walked. A run that ends or stops after a due time but
 * before the next tick, and a resumed run's time before its first tick
 * (the question about a step that was in flight is asked before the timer
 * starts), can leave a due tier or a breached objective without its
 * escalation. The prompt-wait escalation (a step waiting past its
 * timeout) restarts with every prompt, as documented, and is not checked.
 *
 * Depends on: jansson, proto.h, scenario_internal.h, util.h.
 */
#include "proto.h"
#include "scenario_internal.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t at;          /* drill ms the engine's rule is due */
    int is_tier;         /* 0: objective (checked first in a tick), 1: tier */
    int order;           /* tier number, or the objective's position */
    const char *key;     /* the objective */
    int64_t limit;
} due_point;

static int by_time(const void *a, const void *b)
{
    const due_point *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    if (x->is_tier != y->is_tier)
        return x->is_tier - y->is_tier;
    return x->order - y->order;
}

static int fired_tier(json_t *log, int tier)
{
    size_t i;
    json_t *e;
    json_array_foreach(log, i, e) if (pr_int(e, "tier", 0) == tier) return 1;
    return 0;
}

static int escalated_for(json_t *log, const char *key)
{
    size_t n = strlen(key);
    size_t i;
    json_t *e;
    json_array_foreach(log, i, e)
    {
        const char *why = pr_str(e, "reason");
        if (why && !strncmp(why, "objective ", 10) && !strncmp(why + 10, key, n) && !strncmp(why + 10 + n, " (", 2))
            return 1;
    }
    return 0;
}

json_t *scd_due_not_fired(json_t *tiers, json_t *objectives, json_t *esc_log, int64_t open_until_ms)
{
    json_t *out = json_array();
    int n = (int)json_array_size(tiers);
    if (n == 0)
        return out; /* no tier: nothing can fire (the engine journals tier 0) */
    size_t cap = (size_t)n + json_array_size(objectives), count = 0;
    due_point *pts = ut_xcalloc(cap ? cap : 1, sizeof *pts);
    size_t i;
    json_t *v;
    json_array_foreach(tiers, i, v)
    {
        int64_t after = pr_int(v, "after_ms", 0);
        if (after <= 0 && i > 0)
            continue; /* the loader requires `after` past tier 1 */
        if (after >= open_until_ms)
            continue; /* the run was not open any more when it came due */
        pts[count++] = (due_point){after, 1, (int)i + 1, NULL, 0};
    }
    json_array_foreach(objectives, i, v)
    {
        const char *verdict = pr_str(v, "verdict"), *key = pr_str(v, "objective");
        if (!key || !verdict || strcmp(verdict, "breached") != 0 || escalated_for(esc_log, key))
            continue;
        int64_t limit = pr_int(v, "limit_ms", 0);
        pts[count++] = (due_point){limit, 0, (int)i, key, limit};
    }
    qsort(pts, count, sizeof *pts, by_time);
    int level = 0;   /* the engine's escalation_tier at that drill time */
    size_t next = 0; /* the escalations on record, in order */
    for (size_t k = 0; k < count; k++) {
        due_point *p = &pts[k];
        for (; next < json_array_size(esc_log); next++) {
            json_t *e = json_array_get(esc_log, next);
            if (pr_int(e, "sim_ms", 0) > p->at)
                break;
            if (pr_int(e, "tier", 0) > level)
                level = (int)pr_int(e, "tier", 0);
        }
        char d[32], why[256];
        ut_format_duration(p->at, d, sizeof d);
        if (p->is_tier) {
            if (p->order <= level || fired_tier(esc_log, p->order))
                continue;
            level = p->order;
            if (p->at == 0)
                snprintf(why, sizeof why, "tier 1 fires when the run starts");
            else
                snprintf(why, sizeof why, "its after = %s passed on the drill clock with the run still open", d);
            json_array_append_new(out, json_pack("{s:i, s:I, s:s, s:s}", "tier", p->order, "due_ms",
                                                 (json_int_t)p->at, "rule", "after", "why", why));
        } else {
            int tier = level < n ? level + 1 : n;
            level = tier;
            snprintf(why, sizeof why, "objective %s (%s) breached with no escalation following", p->key, d);
            json_array_append_new(out, json_pack("{s:i, s:I, s:s, s:s, s:s}", "tier", tier, "due_ms",
                                                 (json_int_t)p->at, "rule", "objective", "objective", p->key,
                                                 "why", why));
        }
    }
    free(pts);
    return out;
}
