/*
 * notify.c — the notification service of a run (see include/notify.h):
 * opening it (configuration, outbox, the entries earlier runs left
 * behind), queuing a message (into the outbox, durably, before anything is
 * sent; drills are simulated unless live channels were asked for; stdout
 * is printed at once), incident lifecycle for PagerDuty and Opsgenie
 * (acknowledge, resolve: remembered per run in outbox/incidents/ so a
 * resumed run still knows which services it paged), and closing.
 * Delivery itself is notify_deliver.c.
 * Depends on: config.h, outbox.h, notify_service.h, secrets.h, term.h, util.h.
 */
#include "notify.h"
#include "notify_service.h"
#include "secrets.h"
#include "term.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INCIDENTS_DIR "incidents"

nt_target *nt_target_of(nt_service *s, const char *name)
{
    const cf_notifier *n = cf_find(s->cfg, name);
    if (!n)
        return NULL;
    for (size_t i = 0; i < s->ntargets; i++)
        if (s->targets[i].conf == n)
            return &s->targets[i];
    return NULL;
}

void nt_emit(nt_service *s, const char *type, const nt_entry *e, json_t *data)
{
    if (!s->on_event) {
        json_decref(data);
        return;
    }
    sec_redact_json(data); /* a second line of defence: nothing here should hold a secret */
    s->on_event(s->event_ctx, type, e ? e->run_id : NULL, e ? e->step : NULL, data);
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* A JSON string from text that may not be valid UTF-8 (or null). */
static json_t *text_value(const char *s)
{
    if (!s)
        return json_null();
    json_t *v = json_string(s);
    if (v)
        return v;
    char *fixed = ut_utf8_sanitize(s, strlen(s), NULL);
    v = json_string(fixed);
    free(fixed);
    return v ? v : json_null();
}

static nt_entry *entry_new(nt_service *s, const json_t *doc)
{
    nt_entry *e = ut_xcalloc(1, sizeof *e);
    e->svc = s;
    e->id = ut_xstrdup(jstr(doc, "id"));
    e->target = ut_xstrdup(jstr(doc, "target") ? jstr(doc, "target") : "");
    e->run_id = jstr(doc, "run") ? ut_xstrdup(jstr(doc, "run")) : NULL;
    e->step = jstr(doc, "step") ? ut_xstrdup(jstr(doc, "step")) : NULL;
    e->next_attempt_ms = json_integer_value(json_object_get(doc, "next_attempt_ms"));
    e->lock.fd = -1;
    e->doc = json_deep_copy(doc);
    e->state = NE_WAITING;
    if (s->tail)
        s->tail->next = e;
    else
        s->entries = e;
    s->tail = e;
    return e;
}

/* Entries earlier runs (or other processes) left: sent by this one too,
 * when their notifier is configured here. */
static void load_outbox(nt_service *s)
{
    size_t n = 0;
    char **ids = ob_list(s->ob, &n);
    for (size_t i = 0; i < n; i++) {
        char err[256];
        json_t *doc = ob_read(s->ob, ids[i], err, sizeof err);
        if (!doc || !jstr(doc, "id") || strcmp(jstr(doc, "id"), ids[i]) != 0) {
            if (doc)
                tm_warn("outbox entry %s has a mismatched id; left alone", ids[i]);
            json_decref(doc);
            continue; /* vanished (sent by another process) or unreadable: `irp outbox list` shows it */
        }
        nt_entry *e = entry_new(s, doc);
        json_decref(doc);
        nt_target *t = nt_target_of(s, e->target);
        /* Never to stdout: under the embedded default every name means
         * stdout, and printing a Slack message nobody configured here would
         * be losing it. */
        if (!t || t->conf->kind == NT_STDOUT)
            e->state = NE_STUCK;
    }
    ob_free_ids(ids, n);
}

nt_service *nt_open(uv_loop_t *loop, const char *config_path, const char *state_dir, int live_in_drill,
                    nt_event_fn on_event, void *event_ctx, int *exit_code, char *err, size_t err_size)
{
    return nt_open_ex(loop, config_path, state_dir, live_in_drill, 1, on_event, event_ctx, exit_code, err, err_size);
}

nt_service *nt_open_ex(uv_loop_t *loop, const char *config_path, const char *state_dir, int live_in_drill,
                       int load_existing, nt_event_fn on_event, void *event_ctx, int *exit_code, char *err,
                       size_t err_size)
{
    cf_config *cfg = cf_load(config_path, err, err_size);
    if (!cfg) {
        *exit_code = IRP_EXIT_DATAERR;
        return NULL;
    }
    ob_outbox *ob = ob_open(state_dir, err, err_size);
    if (!ob) {
        cf_free(cfg);
        *exit_code = IRP_EXIT_IOERR;
        return NULL;
    }
    nt_service *s = ut_xcalloc(1, sizeof *s);
    s->loop = loop;
    s->cfg = cfg;
    s->ob = ob;
    s->live_in_drill = live_in_drill;
    s->on_event = on_event;
    s->event_ctx = event_ctx;
    s->ntargets = cfg->count;
    s->targets = ut_xcalloc(cfg->count ? cfg->count : 1, sizeof *s->targets);
    for (size_t i = 0; i < cfg->count; i++)
        s->targets[i].conf = &cfg->items[i];
    s->timer = ut_xcalloc(1, sizeof *s->timer);
    uv_timer_init(loop, s->timer);
    s->timer->data = s;
    uv_unref((uv_handle_t *)s->timer); /* waiting retries never keep the loop alive by themselves */
    if (load_existing)
        load_outbox(s); /* attempted from nt_start on */
    *exit_code = 0;
    return s;
}

void nt_start(nt_service *s)
{
    if (s && !s->started) {
        s->started = 1;
        nt_kick(s);
    }
}

void nt_hold(nt_service *s)
{
    if (s) {
        s->held = 1;
        uv_timer_stop(s->timer);
    }
}

void nt_interrupt(nt_service *s)
{
    if (s && s->draining) {
        s->interrupted = 1;
        uv_stop(s->loop);
    }
}

int nt_known(nt_service *s, const char *name)
{
    return s && cf_find(s->cfg, name) != NULL;
}

int nt_unknown(nt_service *s, const char *name, char *why, size_t why_size)
{
    if (nt_known(s, name))
        return 0;
    const char *hint = s ? cf_suggest(s->cfg, name) : NULL;
    snprintf(why, why_size, "no notifier named '%s' in %s%s%s%s", name ? name : "",
             s && s->cfg->path ? s->cfg->path : "the configuration", hint ? " (did you mean '" : "", hint ? hint : "",
             hint ? "'?)" : "");
    return 1;
}

static json_t *message_json(const nt_message *m)
{
    json_t *msg = json_object();
    json_object_set_new(msg, "event", text_value(m->event ? m->event : "notify"));
    json_object_set_new(msg, "text", text_value(m->text ? m->text : ""));
    json_object_set_new(msg, "run_id", text_value(m->run_id));
    json_object_set_new(msg, "playbook", text_value(m->playbook));
    json_object_set_new(msg, "title", text_value(m->title));
    json_object_set_new(msg, "step", text_value(m->step));
    json_object_set_new(msg, "phase", text_value(m->phase));
    json_object_set_new(msg, "severity", text_value(m->severity));
    json_object_set_new(msg, "status", text_value(m->status));
    json_object_set_new(msg, "operator", text_value(m->operator_name));
    json_object_set_new(msg, "tier", json_integer(m->tier));
    json_object_set_new(msg, "drill", json_boolean(m->drill));
    json_object_set_new(msg, "fields", json_is_object(m->fields) ? json_deep_copy(m->fields) : json_object());
    sec_redact_json(msg); /* the outbox is a file: no secret value goes into it */
    return msg;
}

static json_t *entry_json(const char *id, const char *target, const cf_notifier *n, json_t *msg, const char *action)
{
    int64_t now = ut_now_ms();
    char created[40];
    ut_rfc3339_ms(now, created, sizeof created);
    json_t *doc = json_pack("{s:i, s:s, s:s, s:s, s:O, s:O, s:I, s:s, s:s?, s:i, s:I, s:n, s:O}", "v", 1, "id", id,
                            "target", target, "kind", cf_kind_name(n->kind), "run", json_object_get(msg, "run_id"),
                            "step", json_object_get(msg, "step"), "created_ms", (json_int_t)now, "created", created,
                            "action", action, "attempts", 0, "next_attempt_ms", (json_int_t)now, "last_error",
                            "message", msg);
    return doc;
}

static json_t *event_data(const nt_entry *e, const cf_notifier *n)
{
    return json_pack("{s:s, s:s?, s:s}", "target", e && e->target ? e->target : "", "id", e ? e->id : NULL, "kind",
                     n ? cf_kind_name(n->kind) : "?");
}

/* Writes the entry to the outbox (the durable promise) and reports it
 * queued. -1 with err when the disk refuses. */
static int queue_entry(nt_service *s, const cf_notifier *n, const char *target, json_t *msg, const char *action,
                       char *err, size_t err_size)
{
    char *id = ob_new_id();
    json_t *doc = entry_json(id, target, n, msg, action);
    ob_lock lock = OB_LOCK_NONE;
    int keep = s->held_locks < NT_MAX_HELD_LOCKS;
    if (ob_create(s->ob, id, doc, keep ? &lock : NULL, err, err_size) < 0) {
        json_decref(doc);
        free(id);
        return -1;
    }
    nt_entry *e = entry_new(s, doc);
    e->lock = lock;
    if (lock.fd >= 0) {
        s->held_locks++;
        e->lock_from_create = 1;
    }
    json_t *data = event_data(e, n);
    json_object_set(data, "event", json_object_get(msg, "event"));
    json_object_set(data, "message", json_object_get(msg, "text"));
    if (action)
        json_object_set_new(data, "action", json_string(action));
    nt_emit(s, "notify.queued", e, data);
    json_decref(doc);
    free(id);
    nt_kick(s);
    return 0;
}

/* Remembers that target was paged for this run (for acknowledge/resolve). */
static void note_incident(nt_service *s, const char *run_id, const char *target, json_t *msg)
{
    if (!run_id || !*run_id)
        return;
    char err[256], *name = ut_xasprintf("%s.json", run_id);
    int missing;
    json_t *doc = ob_get(s->ob, INCIDENTS_DIR, name, &missing, err, sizeof err);
    if (!doc)
        doc = json_pack("{s:s, s:{}}", "run", run_id, "targets");
    json_t *targets = json_object_get(doc, "targets");
    if (!json_is_object(targets)) {
        targets = json_object();
        json_object_set_new(doc, "targets", targets);
    }
    json_object_set_new(targets, target, json_string("triggered"));
    json_t *keep = json_deep_copy(msg);
    json_object_del(keep, "text");
    json_object_del(keep, "fields");
    json_object_set_new(doc, "message", keep);
    if (ob_put(s->ob, INCIDENTS_DIR, name, doc, err, sizeof err) < 0)
        tm_warn("%s (acknowledge/resolve may not reach %s)", err, target);
    json_decref(doc);
    free(name);
}

int nt_submit(nt_service *s, const nt_message *m, char *err, size_t err_size)
{
    nt_start(s);
    const cf_notifier *n = cf_find(s->cfg, m->target);
    nt_entry fake = {0};
    fake.target = (char *)(m->target ? m->target : "");
    fake.run_id = (char *)m->run_id;
    fake.step = (char *)m->step;
    if (!n) {
        json_t *data = event_data(&fake, NULL);
        char why[512];
        nt_unknown(s, fake.target, why, sizeof why);
        json_object_set_new(data, "reason", json_string(why));
        json_object_set_new(data, "retry", json_false());
        json_object_set_new(data, "attempt", json_integer(0));
        nt_emit(s, "notify.failed", &fake, data);
        return 0;
    }
    json_t *msg = message_json(m);
    int simulated = m->drill && !s->live_in_drill;
    if (simulated || n->kind == NT_STDOUT) {
        /* Nothing leaves the machine: no outbox needed, nothing to retry. */
        char *id = ob_new_id();
        fake.id = id;
        json_t *data = event_data(&fake, n);
        json_object_set(data, "event", json_object_get(msg, "event"));
        json_object_set(data, "message", json_object_get(msg, "text"));
        if (simulated)
            json_object_set_new(data, "simulated", json_true());
        nt_emit(s, "notify.queued", &fake, data);
        if (n->kind == NT_STDOUT)
            nt_local_stdout(fake.target, msg);
        data = event_data(&fake, n);
        json_object_set_new(data, "attempt", json_integer(simulated ? 0 : 1));
        if (simulated)
            json_object_set_new(data, "simulated", json_true());
        nt_emit(s, "notify.sent", &fake, data);
        free(id);
        json_decref(msg);
        return 0;
    }
    nt_target *t = nt_target_of(s, fake.target);
    if (t && t->disabled) {
        json_t *data = event_data(&fake, n);
        json_object_set_new(data, "reason", json_string("this notifier was disabled for the run: its endpoint answered 410 Gone"));
        json_object_set_new(data, "retry", json_false());
        json_object_set_new(data, "attempt", json_integer(0));
        nt_emit(s, "notify.failed", &fake, data);
        json_decref(msg);
        return 0;
    }
    const char *event = jstr(msg, "event");
    int tracks = cf_kind_tracks(n->kind);
    int rc = queue_entry(s, n, fake.target, msg, tracks ? "trigger" : NULL, err, err_size);
    if (rc == 0 && tracks && event && !strcmp(event, "test")) {
        /* A test must not leave an incident open: resolve it right after
         * (entries of one incident are sent in order). */
        json_t *resolve = json_deep_copy(msg);
        json_object_set_new(resolve, "event", json_string("resolve"));
        rc = queue_entry(s, n, fake.target, resolve, "resolve", err, err_size);
        json_decref(resolve);
    } else if (rc == 0 && tracks) {
        note_incident(s, m->run_id, fake.target, msg);
    }
    json_decref(msg);
    return rc;
}

void nt_run_event(nt_service *s, const char *run_id, const char *action)
{
    if (!s || !run_id || !action)
        return;
    nt_start(s);
    int resolve = !strcmp(action, "resolve");
    if (!resolve && strcmp(action, "acknowledge") != 0) {
        tm_warn("nt_run_event: unknown action '%s' (acknowledge or resolve)", action);
        return;
    }
    char err[256], *name = ut_xasprintf("%s.json", run_id);
    int missing;
    json_t *doc = ob_get(s->ob, INCIDENTS_DIR, name, &missing, err, sizeof err);
    if (!doc) {
        if (!missing)
            tm_warn("%s", err);
        free(name);
        return; /* nothing was paged for this run */
    }
    json_t *targets = json_object_get(doc, "targets");
    const char *target;
    json_t *state;
    int changed = 0;
    json_object_foreach(targets, target, state)
    {
        const cf_notifier *n = cf_find(s->cfg, target);
        if (!n || !cf_kind_tracks(n->kind))
            continue;
        if (!resolve && json_string_value(state) && !strcmp(json_string_value(state), "acknowledged"))
            continue;
        json_t *msg = json_deep_copy(json_object_get(doc, "message"));
        if (!json_is_object(msg))
            msg = json_object();
        json_object_set_new(msg, "event", json_string(action));
        json_object_set_new(msg, "run_id", json_string(run_id));
        json_object_set_new(msg, "step", json_null()); /* about the run, not a step */
        json_object_set_new(msg, "phase", json_null());
        json_object_set_new(msg, "status", json_string(resolve ? "resolved" : "acknowledged"));
        char *text = ut_xasprintf("run %s %s", run_id, resolve ? "succeeded: incident resolved" : "acknowledged by the operator");
        json_object_set_new(msg, "text", json_string(text));
        free(text);
        if (!json_object_get(msg, "fields"))
            json_object_set_new(msg, "fields", json_object());
        if (queue_entry(s, n, target, msg, action, err, sizeof err) < 0)
            tm_warn("cannot queue %s for %s: %s", action, target, err);
        json_decref(msg);
        json_object_set_new(targets, target, json_string(resolve ? "resolved" : "acknowledged"));
        changed = 1;
    }
    if (resolve)
        ob_delete(s->ob, INCIDENTS_DIR, name);
    else if (changed && ob_put(s->ob, INCIDENTS_DIR, name, doc, err, sizeof err) < 0)
        tm_warn("%s", err);
    json_decref(doc);
    free(name);
}

size_t nt_pending(nt_service *s)
{
    size_t n = 0;
    if (!s)
        return 0;
    for (nt_entry *e = s->entries; e; e = e->next)
        if (e->state == NE_WAITING || e->state == NE_IN_FLIGHT || e->state == NE_ELSEWHERE)
            n++;
    return n;
}

size_t nt_unsendable(nt_service *s)
{
    size_t n = 0;
    for (nt_entry *e = s ? s->entries : NULL; e; e = e->next)
        if (e->state == NE_STUCK)
            n++;
    return n;
}

static void drain_expired(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static void free_timer(uv_handle_t *h)
{
    free(h);
}

size_t nt_drain(nt_service *s, long timeout_ms)
{
    if (!s)
        return 0;
    nt_start(s);
    if (nt_pending(s) == 0)
        return 0;
    int expired = 0;
    uv_timer_t *deadline = ut_xcalloc(1, sizeof *deadline);
    uv_timer_init(s->loop, deadline);
    deadline->data = &expired;
    /* This referenced timer keeps the loop running while we wait. */
    uv_timer_start(deadline, drain_expired, timeout_ms > 0 ? (uint64_t)timeout_ms : 0, 0);
    s->draining = 1;
    s->interrupted = 0;
    nt_kick(s);
    while (!expired && !s->interrupted && nt_pending(s) > 0)
        uv_run(s->loop, UV_RUN_ONCE);
    s->draining = 0;
    uv_timer_stop(deadline);
    uv_close((uv_handle_t *)deadline, free_timer);
    nt_reap(s);
    return nt_pending(s);
}

size_t nt_flush(nt_service *s, long timeout_ms)
{
    if (!s)
        return 0;
    nt_start(s);
    for (nt_entry *e = s->entries; e; e = e->next)
        if (e->state == NE_WAITING || e->state == NE_ELSEWHERE)
            e->force = 1;
    for (size_t i = 0; i < s->ntargets; i++)
        s->targets[i].blocked_until = 0;
    return nt_drain(s, timeout_ms);
}

void nt_close(nt_service *s)
{
    if (!s)
        return;
    nt_cancel_all(s);
    while (s->entries) {
        nt_entry *e = s->entries;
        s->entries = e->next;
        nt_entry_free(e);
    }
    nh_free(s->http);
    uv_timer_stop(s->timer);
    uv_close((uv_handle_t *)s->timer, free_timer);
    for (size_t i = 0; i < s->ntargets; i++)
        free(s->targets[i].broken);
    free(s->targets);
    cf_free(s->cfg);
    ob_close(s->ob);
    free(s);
}
