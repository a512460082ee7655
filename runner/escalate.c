/*
 * escalate.c — escalation tiers and notification delivery for a run.
 * Tier 1 fires at run start; tiers with `after` fire when that much
 * (simulated, in drills) time has passed and the run is still open; a step
 * failing with on_failure = "escalate" or calling ctx.escalate climbs one
 * tier. Delivery here is the embedded stdout notifier: every notification
 * is journaled (notify.queued, then notify.sent) and printed.
 */
#include "engine.h"
#include "term.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

static int tier_count(eng_run *r)
{
    return (int)json_array_size(json_object_get(r->outline, "escalation"));
}

void eng_notify(eng_run *r, const char *target, const char *msg, json_t *fields, const char *step)
{
    json_t *data = json_pack("{s:s, s:s, s:s}", "target", target, "message", msg, "via", "stdout");
    if (fields)
        json_object_set(data, "fields", fields);
    eng_record(r, "notify.queued", step, NULL, json_incref(data));
    tm_line(TM_CYAN, "  >> notify %s%s: %s", target, r->opt->drill ? " [DRILL]" : "", msg);
    eng_record(r, "notify.sent", step, NULL, data);
}

int eng_escalate(eng_run *r, const char *reason, const char *step, int tier)
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
               json_pack("{s:i, s:O, s:s}", "tier", tier, "targets", targets ? targets : json_array(),
                         "reason", reason));
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
    json_array_foreach(targets, i, t) if (json_is_string(t)) eng_notify(r, json_string_value(t), msg, fields, step);
    json_decref(fields);
    free(msg);
    return tier;
}

/* Elapsed run time in the run's clock (a drill's clock may run faster). */
static int64_t elapsed_ms(eng_run *r)
{
    double speed = r->opt->drill && r->opt->speed > 1 ? r->opt->speed : 1;
    return (int64_t)((double)(ut_mono_ms() - r->started_mono) * speed);
}

static void check_timed_tiers(uv_timer_t *t)
{
    eng_run *r = t->data;
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
    if (tier_count(r) == 0)
        return;
    uv_timer_init(r->loop, &r->escalation_timer);
    r->escalation_timer.data = r;
    r->escalation_timer_init = 1;
    uv_timer_start(&r->escalation_timer, check_timed_tiers, 250, 250);
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
