/*
 * report_events.c — the event half of the report model: one timeline
 * entry per journal record (time, seq, type, step, who and one line saying
 * what happened), and the tables the incident commander asks for:
 * approvals and decisions (who, answer, note), escalations (tier,
 * targets, reason), notifications (target, queued / sent / failed) and
 * evidence (artifact.stored: name, path, SHA-256, size: the chain of
 * custody). Only what the journal holds.
 * Depends on: jansson, report.h, proto.h, util.h.
 */
#include "report.h"
#include "proto.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *data_of(json_t *rec)
{
    return json_object_get(rec, "data");
}

static const char *dstr(json_t *rec, const char *key)
{
    return pr_str(data_of(rec), key);
}

/* The strings of a list joined with ", " (targets). */
static void put_list(ut_buf *b, json_t *list)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (i)
            ut_buf_puts(b, ", ");
        ut_buf_puts(b, json_is_string(v) ? json_string_value(v) : "?");
    }
}

/* " (note)" style tail: ": note" when note is there. */
static void put_note(ut_buf *b, const char *note)
{
    if (note && *note)
        ut_buf_printf(b, ": %s", note);
}

static void put_via(ut_buf *b, const char *via)
{
    if (via && strcmp(via, "operator") != 0)
        ut_buf_printf(b, " (via %s)", via);
}

/* One line saying what a record says. */
static void describe(ut_buf *b, json_t *rec)
{
    const char *t = pr_str(rec, "type") ? pr_str(rec, "type") : "?";
    const char *actor = pr_str(rec, "actor") ? pr_str(rec, "actor") : "?";
    json_t *d = data_of(rec);
    char dur[32];
    if (!strcmp(t, "run.started")) {
        json_t *pb = json_object_get(d, "playbook");
        ut_buf_printf(b, "%s started by %s on %s: %s", !strcmp(pr_str(rec, "mode") ? pr_str(rec, "mode") : "", "drill")
                                                           ? "drill"
                                                           : "run",
                      dstr(rec, "operator") ? dstr(rec, "operator") : "?", dstr(rec, "host") ? dstr(rec, "host") : "?",
                      pr_str(pb, "title") ? pr_str(pb, "title") : "?");
        if (json_is_true(json_object_get(d, "yes")))
            ut_buf_puts(b, " (--yes: unattended answers)");
    } else if (!strcmp(t, "run.resumed")) {
        ut_buf_printf(b, "run resumed by %s", actor);
        if (json_is_true(json_object_get(d, "force")))
            ut_buf_puts(b, " (--force)");
    } else if (!strcmp(t, "run.interrupted")) {
        ut_buf_puts(b, "run interrupted");
        put_note(b, dstr(rec, "reason"));
    } else if (!strcmp(t, "run.finished")) {
        ut_buf_printf(b, "run %s: %lld succeeded, %lld failed, %lld skipped",
                      dstr(rec, "status") ? dstr(rec, "status") : "finished", pr_int(d, "succeeded", 0),
                      pr_int(d, "failed", 0), pr_int(d, "skipped", 0));
    } else if (!strcmp(t, "step.started")) {
        ut_buf_printf(b, "started: %s", dstr(rec, "title") ? dstr(rec, "title") : pr_str(rec, "step") ? pr_str(rec, "step") : "?");
        if (pr_int(d, "attempt", 1) > 1)
            ut_buf_printf(b, " (attempt %lld of %lld)", pr_int(d, "attempt", 1), pr_int(d, "attempts", 1));
        if (dstr(rec, "kind") && !strcmp(dstr(rec, "kind"), "manual"))
            ut_buf_puts(b, " (manual)");
    } else if (!strcmp(t, "step.succeeded")) {
        ut_buf_printf(b, "succeeded (%s)", rp_duration(pr_int(d, "duration_ms", -1), dur));
    } else if (!strcmp(t, "step.failed")) {
        ut_buf_puts(b, "FAILED");
        put_note(b, dstr(rec, "reason"));
    } else if (!strcmp(t, "step.skipped")) {
        ut_buf_puts(b, "skipped");
        put_note(b, dstr(rec, "reason"));
    } else if (!strcmp(t, "step.retried")) {
        ut_buf_printf(b, "attempt %lld failed, retry in %s", pr_int(d, "attempt", 0),
                      rp_duration(pr_int(d, "delay_ms", -1), dur));
        put_note(b, dstr(rec, "reason"));
    } else if (!strcmp(t, "step.exec")) {
        ut_buf_printf(b, "$ %s -> ", dstr(rec, "command") ? dstr(rec, "command") : "?");
        if (json_is_true(json_object_get(d, "timed_out")))
            ut_buf_puts(b, "timed out");
        else
            ut_buf_printf(b, "exit %lld", pr_int(d, "code", -1));
        ut_buf_printf(b, " (%s%s)", rp_duration(pr_int(d, "duration_ms", -1), dur),
                      json_is_true(json_object_get(d, "simulated")) ? ", simulated" : "");
    } else if (!strcmp(t, "step.http")) {
        ut_buf_printf(b, "%s %s -> ", dstr(rec, "method") ? dstr(rec, "method") : "?",
                      dstr(rec, "url") ? dstr(rec, "url") : "?");
        if (dstr(rec, "error"))
            ut_buf_puts(b, dstr(rec, "error"));
        else
            ut_buf_printf(b, "%lld", pr_int(d, "status", 0));
        if (json_is_true(json_object_get(d, "simulated")))
            ut_buf_puts(b, " (simulated)");
    } else if (!strcmp(t, "step.log")) {
        ut_buf_printf(b, "log: %s", dstr(rec, "msg") ? dstr(rec, "msg") : "");
    } else if (!strcmp(t, "approval.requested")) {
        ut_buf_printf(b, "approval requested from %s", dstr(rec, "role") ? dstr(rec, "role") : "?");
    } else if (!strcmp(t, "approval.granted") || !strcmp(t, "approval.denied")) {
        ut_buf_printf(b, "%s by %s (%s)", !strcmp(t, "approval.granted") ? "APPROVED" : "DENIED", actor,
                      dstr(rec, "role") ? dstr(rec, "role") : "?");
        put_via(b, dstr(rec, "via"));
        put_note(b, dstr(rec, "note"));
    } else if (!strcmp(t, "manual.answered")) {
        ut_buf_printf(b, "answered %s by %s", dstr(rec, "answer") ? dstr(rec, "answer") : "?", actor);
        put_via(b, dstr(rec, "via"));
        put_note(b, dstr(rec, "note"));
    } else if (!strcmp(t, "operator.note")) {
        ut_buf_printf(b, "note by %s", actor);
        put_note(b, dstr(rec, "note"));
    } else if (!strcmp(t, "operator.answered")) {
        ut_buf_printf(b, "asked \"%s\", %s answered ", dstr(rec, "question") ? dstr(rec, "question") : "?", actor);
        json_t *a = json_object_get(d, "answer");
        char *s = a ? json_dumps(a, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
        ut_buf_puts(b, s ? s : "?");
        free(s);
        put_via(b, dstr(rec, "via"));
    } else if (!strcmp(t, "resume.decision")) {
        ut_buf_printf(b, "in-flight step at resume: %s", dstr(rec, "decision") ? dstr(rec, "decision") : "?");
        put_via(b, dstr(rec, "via"));
    } else if (!strcmp(t, "escalation.triggered")) {
        ut_buf_printf(b, "ESCALATION tier %lld to ", pr_int(d, "tier", 0));
        put_list(b, json_object_get(d, "targets"));
        put_note(b, dstr(rec, "reason"));
    } else if (!strcmp(t, "notify.queued") || !strcmp(t, "notify.sent") || !strcmp(t, "notify.failed")) {
        ut_buf_printf(b, "notification to %s %s", dstr(rec, "target") ? dstr(rec, "target") : "?", t + 7);
        if (!strcmp(t, "notify.queued"))
            put_note(b, dstr(rec, "message"));
        else if (!strcmp(t, "notify.failed"))
            put_note(b, dstr(rec, "error"));
        if (json_is_true(json_object_get(d, "simulated")))
            ut_buf_puts(b, " (simulated)");
    } else if (!strcmp(t, "artifact.stored")) {
        ut_buf_printf(b, "evidence %s sha256:%s (%lld bytes)", dstr(rec, "name") ? dstr(rec, "name") : "?",
                      dstr(rec, "sha256") ? dstr(rec, "sha256") : "?", pr_int(d, "bytes", 0));
    } else if (!strcmp(t, "inject.shown")) {
        ut_buf_printf(b, "INJECT: %s", dstr(rec, "text") ? dstr(rec, "text") : "");
    } else if (!strcmp(t, "drill.paused")) {
        ut_buf_puts(b, "drill paused by the facilitator");
    } else if (!strcmp(t, "drill.resumed")) {
        ut_buf_printf(b, "drill resumed after %s", rp_duration(pr_int(d, "paused_ms", -1), dur));
    } else if (!strcmp(t, "drill.scorecard")) {
        ut_buf_printf(b, "scorecard: %s", dstr(rec, "status") ? dstr(rec, "status") : "?");
    } else if (!strcmp(t, "journal.torn")) {
        ut_buf_printf(b, "a torn record (%lld bytes) was set aside as %s", pr_int(d, "bytes", 0),
                      dstr(rec, "saved_as") ? dstr(rec, "saved_as") : "?");
    } else {
        ut_buf_puts(b, t);
    }
}

/* The fields every table row shares. */
static json_t *row(json_t *rec, long long t)
{
    json_t *r = json_pack("{s:I, s:s?, s:I, s:s?, s:s?}", "seq", (json_int_t)pr_int(rec, "seq", 0), "ts",
                          pr_str(rec, "ts"), "t_ms", (json_int_t)t, "step", pr_str(rec, "step"), "actor",
                          pr_str(rec, "actor"));
    return r;
}

static int starts(const char *s, const char *prefix)
{
    return s && !strncmp(s, prefix, strlen(prefix));
}

/* Notifications by id: queued, then sent or failed. */
static void notification(json_t *by_id, json_t *list, json_t *rec, long long t)
{
    const char *type = pr_str(rec, "type"), *id = dstr(rec, "id");
    json_t *n = id ? json_object_get(by_id, id) : NULL;
    if (!n) {
        n = row(rec, t);
        json_object_set_new(n, "id", id ? json_string(id) : json_null());
        json_object_set_new(n, "status", json_string("queued"));
        json_array_append_new(list, n);
        if (id)
            json_object_set(by_id, id, n);
    }
    static const char *const keys[] = {"target", "kind", "event", "message", NULL};
    for (int k = 0; keys[k]; k++)
        if (dstr(rec, keys[k]))
            json_object_set_new(n, keys[k], json_string(dstr(rec, keys[k])));
    json_object_set_new(n, "simulated", json_boolean(json_is_true(json_object_get(data_of(rec), "simulated"))));
    if (strcmp(type, "notify.queued") != 0) {
        json_object_set_new(n, "status", json_string(type + 7));
        json_object_set_new(n, "last_ts", json_string(pr_str(rec, "ts") ? pr_str(rec, "ts") : ""));
        json_object_set_new(n, "attempts", json_integer(pr_int(data_of(rec), "attempt", 0) + 1));
        if (dstr(rec, "error"))
            json_object_set_new(n, "error", json_string(dstr(rec, "error")));
    }
}

void rp_events(json_t *model, json_t *records, long long (*t_of)(json_t *rec, void *ctx), void *ctx)
{
    json_t *timeline = json_array(), *decisions = json_array(), *escalations = json_array();
    json_t *notifications = json_array(), *evidence = json_array(), *by_id = json_object();
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec)
    {
        const char *type = pr_str(rec, "type");
        if (!type)
            continue;
        long long t = t_of(rec, ctx);
        json_t *d = data_of(rec);
        ut_buf b = {0};
        describe(&b, rec);
        json_t *ev = row(rec, t);
        json_object_set_new(ev, "type", json_string(type));
        json_object_set_new(ev, "text", json_string(b.data ? b.data : ""));
        ut_buf_free(&b);
        json_array_append_new(timeline, ev);

        if (starts(type, "approval.") || !strcmp(type, "manual.answered") || !strcmp(type, "operator.note") ||
            !strcmp(type, "operator.answered") || !strcmp(type, "resume.decision")) {
            if (!strcmp(type, "operator.note") && pr_str(rec, "actor") && !strcmp(pr_str(rec, "actor"), "irp"))
                continue; /* irp's own note (the drill's scenario header) */
            json_t *r = row(rec, t);
            json_object_set_new(r, "type", json_string(type));
            const char *answer = !strcmp(type, "approval.granted")   ? "granted"
                                 : !strcmp(type, "approval.denied")  ? "denied"
                                 : !strcmp(type, "approval.requested") ? "requested"
                                 : !strcmp(type, "operator.note")    ? "note"
                                                                     : dstr(rec, "answer") ? dstr(rec, "answer")
                                                                                           : dstr(rec, "decision");
            json_t *a = json_object_get(d, "answer");
            if (!answer && a) {
                char *s = json_dumps(a, JSON_ENCODE_ANY | JSON_COMPACT);
                json_object_set_new(r, "answer", json_string(s ? s : "?"));
                free(s);
            } else {
                json_object_set_new(r, "answer", json_string(answer ? answer : "?"));
            }
            static const char *const keys[] = {"role", "note", "via", "question", NULL};
            for (int k = 0; keys[k]; k++)
                if (dstr(rec, keys[k]))
                    json_object_set_new(r, keys[k], json_string(dstr(rec, keys[k])));
            json_array_append_new(decisions, r);
        } else if (!strcmp(type, "escalation.triggered")) {
            json_t *r = row(rec, t);
            json_object_set_new(r, "tier", json_integer(pr_int(d, "tier", 0)));
            json_t *targets = json_object_get(d, "targets");
            json_object_set_new(r, "targets", json_is_array(targets) ? json_deep_copy(targets) : json_array());
            json_object_set_new(r, "reason", json_string(dstr(rec, "reason") ? dstr(rec, "reason") : ""));
            if (dstr(rec, "objective"))
                json_object_set_new(r, "objective", json_string(dstr(rec, "objective")));
            json_array_append_new(escalations, r);
        } else if (starts(type, "notify.")) {
            notification(by_id, notifications, rec, t);
        } else if (!strcmp(type, "artifact.stored")) {
            json_t *r = row(rec, t);
            static const char *const keys[] = {"name", "path", "sha256", NULL};
            for (int k = 0; keys[k]; k++)
                json_object_set_new(r, keys[k], json_string(dstr(rec, keys[k]) ? dstr(rec, keys[k]) : ""));
            json_object_set_new(r, "bytes", json_integer(pr_int(d, "bytes", 0)));
            json_array_append_new(evidence, r);
        }
    }
    json_decref(by_id);
    json_object_set_new(model, "timeline", timeline);
    json_object_set_new(model, "decisions", decisions);
    json_object_set_new(model, "escalations", escalations);
    json_object_set_new(model, "notifications", notifications);
    json_object_set_new(model, "evidence", evidence);
}
