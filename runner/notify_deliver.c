/*
 * notify_deliver.c — the delivery scheduler of an nt_service. A pass (run
 * from a loop timer, never re-entered) walks the entries in queue order
 * and starts every one that is due, within the limits: 64 in flight in
 * all; per notifier 16 while its endpoint is healthy, one probe while it
 * is not (unknown or failing), nothing while it backs off as a whole
 * after a failure or a Retry-After; entries of one PagerDuty/Opsgenie
 * incident strictly in order (a resolve never overtakes its trigger).
 * Starting an entry claims it in the outbox (flock), re-reads it (another
 * process may have tried it since), builds the request and hands it to
 * curl. The answer decides: delivered (removed, notify.sent), retried
 * (attempts and next attempt written back, notify.failed retry=true),
 * permanent or given up (removed, notify.failed retry=false), 410 (the
 * notifier is disabled for this process, loudly).
 * Depends on: notify_service.h, outbox.h, secrets.h, term.h, util.h.
 */
#include "notify.h"
#include "notify_service.h"
#include "secrets.h"
#include "term.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void pass(nt_service *s);

static void on_timer(uv_timer_t *t)
{
    pass(t->data);
}

void nt_kick(nt_service *s)
{
    if (s->started && !s->held)
        uv_timer_start(s->timer, on_timer, 0, 0);
}

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static json_t *event_data(const nt_entry *e, const nt_target *t, int attempt)
{
    return json_pack("{s:s, s:s, s:s, s:i}", "target", e->target, "id", e->id, "kind",
                     t ? cf_kind_name(t->conf->kind) : "?", "attempt", attempt);
}

static int attempts_of(const nt_entry *e)
{
    return (int)json_integer_value(json_object_get(e->doc, "attempts"));
}

static void drop_create_lock(nt_service *s, nt_entry *e)
{
    if (e->lock_from_create) {
        e->lock_from_create = 0;
        s->held_locks--;
    }
}

/* Removes the entry from the outbox; warns when that fails (the entry may
 * then be sent again by a later run: better twice than never). */
static void remove_entry(nt_service *s, nt_entry *e)
{
    char err[512];
    drop_create_lock(s, e);
    if (ob_remove(s->ob, e->id, &e->lock, err, sizeof err) < 0)
        tm_warn("%s: notification %s may be sent again", err, e->id);
    e->state = NE_DONE;
}

/* This process cannot build the request (a secret is missing ...): the
 * entry stays in the outbox for a later run or flush that can. */
static void set_stuck(nt_service *s, nt_entry *e, nt_target *t)
{
    drop_create_lock(s, e);
    ob_release(&e->lock);
    e->state = NE_STUCK;
    json_t *data = event_data(e, t, attempts_of(e));
    json_object_set_new(data, "reason", json_string(t->broken ? t->broken : "cannot be sent"));
    json_object_set_new(data, "retry", json_false());
    json_object_set_new(data, "kept", json_true());
    nt_emit(s, "notify.failed", e, data);
}

static void finish(nt_service *s, nt_entry *e, nt_target *t, nt_verdict verdict, const char *why,
                   const char *retry_after, long status, int64_t ms)
{
    int attempt = attempts_of(e) + 1;
    int64_t now = ut_now_ms();
    size_t n;
    char *safe = sec_redact(why, strlen(why), &n);
    json_t *data = event_data(e, t, attempt);
    if (status)
        json_object_set_new(data, "status", json_integer(status));
    switch (verdict) {
    case NT_DELIVERED:
        t->healthy = 1;
        t->blocked_until = 0;
        remove_entry(s, e);
        json_object_set_new(data, "ms", json_integer(ms));
        nt_emit(s, "notify.sent", e, data);
        break;
    case NT_GONE:
    case NT_PERMANENT:
        remove_entry(s, e);
        if (verdict == NT_GONE && !t->disabled) {
            t->disabled = 1;
            t->healthy = 0;
            tm_warn("notifier '%s' answered 410 Gone: its endpoint no longer exists; it is disabled for the rest "
                    "of this run (fix it in %s)",
                    e->target, s->cfg->path ? s->cfg->path : "the configuration");
        }
        json_object_set_new(data, "reason", json_string(safe));
        json_object_set_new(data, "retry", json_false());
        if (verdict == NT_GONE)
            json_object_set_new(data, "disabled", json_true());
        nt_emit(s, "notify.failed", e, data);
        break;
    case NT_RETRY: {
        const cf_notifier *c = t->conf;
        int64_t delay = nt_retry_after_ms(retry_after, now);
        if (delay < 0) {
            uint32_t rnd = 0;
            (void)ut_random_bytes(&rnd, sizeof rnd);
            delay = nt_backoff_ms(c->backoff_ms, attempt, rnd);
        } else {
            json_object_set_new(data, "retry_after_ms", json_integer(delay));
        }
        int64_t created = json_integer_value(json_object_get(e->doc, "created_ms"));
        if (created <= 0 || created > now) {
            created = now; /* a hand-made entry without a usable time: its clock starts now */
            json_object_set_new(e->doc, "created_ms", json_integer(now));
        }
        if ((c->max_attempts > 0 && attempt >= c->max_attempts) || now + delay > created + c->give_up_after_ms) {
            char span[32];
            ut_format_duration(now - created, span, sizeof span);
            char *reason = ut_xasprintf("gave up after %d attempt%s over %s: %s", attempt, attempt == 1 ? "" : "s",
                                        span, safe);
            remove_entry(s, e);
            json_object_set_new(data, "reason", json_string(reason));
            json_object_set_new(data, "retry", json_false());
            free(reason);
            nt_emit(s, "notify.failed", e, data);
            break;
        }
        char err[512], when[40];
        json_object_set_new(e->doc, "attempts", json_integer(attempt));
        json_object_set_new(e->doc, "next_attempt_ms", json_integer(now + delay));
        json_object_set_new(e->doc, "last_error", json_string(safe));
        drop_create_lock(s, e);
        if (ob_update(s->ob, e->id, &e->lock, e->doc, err, sizeof err) < 0)
            tm_warn("%s (the attempt count of %s is not saved)", err, e->id);
        ob_release(&e->lock);
        e->state = NE_WAITING;
        e->next_attempt_ms = now + delay;
        e->force = 0;
        t->healthy = 0;
        if (t->blocked_until < now + delay)
            t->blocked_until = now + delay;
        ut_rfc3339_ms(now + delay, when, sizeof when);
        json_object_set_new(data, "reason", json_string(safe));
        json_object_set_new(data, "retry", json_true());
        json_object_set_new(data, "next_attempt", json_string(when));
        nt_emit(s, "notify.failed", e, data);
        break;
    }
    }
    free(safe);
    nt_kick(s);
}

static void on_http_done(void *data, const nh_result *res)
{
    nt_entry *e = data;
    nt_service *s = e->svc;
    nt_target *t = nt_target_of(s, e->target);
    e->transfer = NULL;
    s->in_flight--;
    t->in_flight--;
    nt_outcome o = {res->transport_ok, res->transport_fatal, res->status, res->body, res->body_len, res->error};
    char why[512];
    nt_verdict v = nt_classify(t->conf->kind, &o, why, sizeof why);
    finish(s, e, t, v, why, res->retry_after, res->transport_ok ? res->status : 0, res->elapsed_ms);
}

/* Claims (if not held yet) and starts one attempt. */
static void start_attempt(nt_service *s, nt_entry *e, nt_target *t, int64_t now)
{
    char err[512];
    if (e->lock.fd < 0) {
        json_t *doc = NULL;
        int gone = 0;
        int rc = ob_claim(s->ob, e->id, &e->lock, &doc, &gone, err, sizeof err);
        if (rc == 0 && gone) {
            e->state = NE_DONE; /* delivered or given up by another process */
            return;
        }
        if (rc == 0) {
            e->state = NE_ELSEWHERE;
            e->next_attempt_ms = now + NT_ELSEWHERE_RECHECK_MS;
            return;
        }
        if (rc < 0) {
            tm_warn("%s: left in the outbox", err);
            e->state = NE_STUCK;
            return;
        }
        json_decref(e->doc);
        e->doc = doc;
        int64_t next = json_integer_value(json_object_get(doc, "next_attempt_ms"));
        if (!e->force && next > now) { /* another process tried it meanwhile */
            ob_release(&e->lock);
            e->state = NE_WAITING;
            e->next_attempt_ms = next;
            return;
        }
    }
    drop_create_lock(s, e);
    e->state = NE_IN_FLIGHT;
    if (t->conf->kind == NT_FILE) {
        int rc = nt_local_file(t->conf->path, e->doc, err, sizeof err);
        finish(s, e, t, rc == 0 ? NT_DELIVERED : NT_RETRY, rc == 0 ? "written" : err, NULL, 0, 0);
        return;
    }
    if (!s->http && !(s->http = nh_new(s->loop, err, sizeof err))) {
        t->broken = ut_xstrdup(err);
        set_stuck(s, e, t);
        return;
    }
    nt_request req;
    if (nt_build_request(t->conf, e->doc, ut_now_ms(), &req, err, sizeof err) < 0) {
        free(t->broken);
        t->broken = ut_xstrdup(err);
        set_stuck(s, e, t);
        return;
    }
    s->in_flight++;
    t->in_flight++;
    e->transfer = nh_send(s->http, &req, on_http_done, e, err, sizeof err);
    if (!e->transfer) {
        s->in_flight--;
        t->in_flight--;
        finish(s, e, t, NT_RETRY, err, NULL, 0, 0);
    }
}

/* 1 while an older entry of the same incident (notifier and run) is not
 * finished: PagerDuty and Opsgenie must see trigger, acknowledge, resolve
 * in that order. */
static int waits_for_older(nt_service *s, const nt_entry *e, const nt_target *t)
{
    if (!cf_kind_tracks(t->conf->kind))
        return 0;
    for (const nt_entry *o = s->entries; o && o != e; o = o->next)
        if (o->state != NE_DONE && o->state != NE_STUCK && !strcmp(o->target, e->target) && same(o->run_id, e->run_id))
            return 1;
    return 0;
}

/* A disabled notifier (410) gets nothing more: its entries fail at once. */
static void fail_disabled(nt_service *s, nt_entry *e, nt_target *t, int64_t now)
{
    if (e->lock.fd < 0) {
        json_t *doc = NULL;
        int gone = 0;
        char err[512];
        int rc = ob_claim(s->ob, e->id, &e->lock, &doc, &gone, err, sizeof err);
        if (rc <= 0) {
            e->state = gone ? NE_DONE : rc < 0 ? NE_STUCK : NE_ELSEWHERE;
            e->next_attempt_ms = now + NT_ELSEWHERE_RECHECK_MS;
            return;
        }
        json_decref(e->doc);
        e->doc = doc;
    }
    json_t *data = event_data(e, t, attempts_of(e));
    remove_entry(s, e);
    json_object_set_new(data, "reason", json_string("not sent: this notifier was disabled after its endpoint answered 410 Gone"));
    json_object_set_new(data, "retry", json_false());
    json_object_set_new(data, "disabled", json_true());
    nt_emit(s, "notify.failed", e, data);
}

static void pass(nt_service *s)
{
    if (s->in_pass || s->held)
        return;
    s->in_pass = 1;
    int64_t now = ut_now_ms(), wake = -1;
    for (nt_entry *e = s->entries; e; e = e->next) {
        if (e->state != NE_WAITING && e->state != NE_ELSEWHERE)
            continue;
        nt_target *t = nt_target_of(s, e->target);
        if (!t || t->conf->kind == NT_STDOUT) {
            e->state = NE_STUCK;
            continue;
        }
        if (t->disabled) {
            fail_disabled(s, e, t, now);
            continue;
        }
        if (t->broken) {
            set_stuck(s, e, t);
            continue;
        }
        int64_t due = e->force ? now : e->next_attempt_ms;
        if (!e->force && t->blocked_until > due)
            due = t->blocked_until;
        if (due > now) {
            if (wake < 0 || due < wake)
                wake = due;
            continue;
        }
        if (s->in_flight >= NT_MAX_IN_FLIGHT || t->in_flight >= (t->healthy ? NT_MAX_PER_TARGET : 1))
            continue; /* a completion starts the next pass */
        if (waits_for_older(s, e, t))
            continue;
        start_attempt(s, e, t, now);
        if ((e->state == NE_WAITING || e->state == NE_ELSEWHERE) && e->next_attempt_ms > now &&
            (wake < 0 || e->next_attempt_ms < wake))
            wake = e->next_attempt_ms;
    }
    nt_reap(s);
    s->in_pass = 0;
    if (wake >= 0)
        uv_timer_start(s->timer, on_timer, (uint64_t)(wake - now), 0);
    /* Work done in a timer callback leaves uv_run(UV_RUN_ONCE) about to
     * block in poll until nt_drain's deadline: stop it instead. */
    if (s->draining && nt_pending(s) == 0)
        uv_stop(s->loop);
}

void nt_cancel_all(nt_service *s)
{
    for (nt_entry *e = s->entries; e; e = e->next) {
        if (e->transfer) {
            nh_cancel(s->http, e->transfer);
            e->transfer = NULL;
            s->in_flight--;
            nt_target *t = nt_target_of(s, e->target);
            if (t)
                t->in_flight--;
            e->state = NE_WAITING;
        }
        drop_create_lock(s, e);
        ob_release(&e->lock);
    }
}

void nt_entry_free(nt_entry *e)
{
    ob_release(&e->lock);
    json_decref(e->doc);
    free(e->id);
    free(e->target);
    free(e->run_id);
    free(e->step);
    free(e);
}

void nt_reap(nt_service *s)
{
    nt_entry **link = &s->entries, *last = NULL;
    while (*link) {
        nt_entry *e = *link;
        if (e->state == NE_DONE && !e->transfer) {
            *link = e->next;
            nt_entry_free(e);
        } else {
            last = e;
            link = &e->next;
        }
    }
    s->tail = last;
}
