/*
 * notify.h — notification delivery that never loses a message and never
 * blocks the incident. A notification is written to the state directory's
 * on-disk outbox before it is sent; sending is concurrent (curl multi driven
 * by the run's libuv loop), retried with exponential backoff and jitter,
 * honouring Retry-After; what is undelivered at exit stays in the outbox for
 * the next run or `irp outbox flush`. Notifier kinds: webhook (Standard
 * Webhooks signature), slack, teams, pagerduty (Events API v2), opsgenie,
 * stdout, file. Configuration: a Lua file (`--config`, $IRP_CONFIG,
 * ./irp.conf.lua, else the embedded default: one stdout notifier).
 * Depends on: libuv, libcurl, jansson, OpenSSL (HMAC), Lua (config only),
 * secrets.h.
 */
#ifndef IRP_NOTIFY_H
#define IRP_NOTIFY_H

#include <jansson.h>
#include <stddef.h>
#include <uv.h>

typedef struct nt_service nt_service;

/* What the engine wants said. Strings are borrowed for the call. */
typedef struct nt_message {
    const char *target;      /* notifier name from the playbook ("slack-ir") */
    const char *event;       /* "escalation" | "notify" | "test" */
    const char *text;        /* one line for people */
    const char *run_id;
    const char *playbook;    /* id */
    const char *title;       /* playbook title */
    const char *step;        /* may be NULL */
    const char *phase;       /* may be NULL */
    const char *severity;    /* info | low | medium | high | critical */
    const char *status;      /* run/step status words, may be NULL */
    const char *operator_name;
    int tier;                /* escalation tier, 0 if none */
    int drill;               /* marked [DRILL]; journaled only unless live_in_drill */
    json_t *fields;          /* extra details (borrowed), may be NULL */
} nt_message;

/* Called for every delivery event so the engine can journal it:
 * type = "notify.queued" | "notify.sent" | "notify.failed"; data has at
 * least target, notification id, attempt, and for failures reason and
 * whether it will be retried. data is stolen. run_id is the run that
 * queued the notification (a flush may deliver an earlier run's).
 * data: target, id, kind, attempt; queued: event, message (the text),
 * action (pagerduty/opsgenie); sent: status (HTTP), ms, simulated (drill);
 * failed: reason, retry (bool), next_attempt (RFC 3339, when retried),
 * status, disabled (410), kept (not retried by this process but left in
 * the outbox, e.g. a secret that is not set).
 * notify.queued is reported from inside nt_submit, before any attempt:
 * make it durable there (the attempt starts later, from the loop), so the
 * journal's rule "on disk before the side effect" holds. */
typedef void (*nt_event_fn)(void *ctx, const char *type, const char *run_id, const char *step, json_t *data);

/* Loads the configuration (config_path NULL: $IRP_CONFIG, ./irp.conf.lua,
 * else the embedded default), opens <state_dir>/outbox, and attaches to
 * loop. NULL with err ("irp.conf.lua:7: notifier 'pd' has unknown type
 * 'pagerdutty' (did you mean 'pagerduty'?)"); *exit_code 65 for a bad
 * config, 74 for an outbox that cannot be created. */
nt_service *nt_open(uv_loop_t *loop, const char *config_path, const char *state_dir, int live_in_drill,
                    nt_event_fn on_event, void *event_ctx, int *exit_code, char *err, size_t err_size);

/* Deliveries (also of entries earlier runs left in the outbox) begin at
 * the first nt_start, nt_submit, nt_drain or nt_flush; until then the
 * service reports no event. So a run may nt_open (checking configuration
 * and notifier names, exit 65) before its journal exists, and nt_start
 * once it does. */
void nt_start(nt_service *s);

/* From now on no delivery starts (the run's journal failed: nothing may
 * leave the process without its record); what is queued, or queued later,
 * stays in the outbox for the next run or `irp outbox flush`. */
void nt_hold(nt_service *s);

/* Makes a running nt_drain / nt_flush return at once (for SIGINT);
 * what is left stays in the outbox. Safe from a uv_signal callback. */
void nt_interrupt(nt_service *s);

/* nt_open, choosing whether entries already in the outbox (left by
 * earlier runs) are picked up: `irp notify test` sends only its own. */
nt_service *nt_open_ex(uv_loop_t *loop, const char *config_path, const char *state_dir, int live_in_drill,
                       int load_existing, nt_event_fn on_event, void *event_ctx, int *exit_code, char *err,
                       size_t err_size);

/* 1 when name is a configured notifier (the embedded stdout notifier
 * answers to any name when no configuration file is in use). */
int nt_known(nt_service *s, const char *name);

/* 0 when name is a configured notifier; otherwise 1 with why: "no notifier
 * named 'slak' in irp.conf.lua (did you mean 'slack'?)". */
int nt_unknown(nt_service *s, const char *name, char *why, size_t why_size);

/* Queues one notification: written to the outbox (and reported as
 * notify.queued) before this returns; sent later from the loop. Returns 0,
 * or -1 with err when it could not even be queued (disk): the caller
 * treats that as a journal-grade failure. */
int nt_submit(nt_service *s, const nt_message *m, char *err, size_t err_size);

/* Run lifecycle for kinds that track incidents (PagerDuty acknowledge and
 * resolve with the run's dedup_key; Opsgenie close): "acknowledge" when a
 * person takes a step after an escalation, "resolve" when the run succeeds. */
void nt_run_event(nt_service *s, const char *run_id, const char *action);

/* Number of notifications not yet delivered or given up. */
size_t nt_pending(nt_service *s);

/* Runs the loop until nothing is pending or timeout_ms passes; what is left
 * stays in the outbox. Returns the number still pending. */
size_t nt_drain(nt_service *s, long timeout_ms);

/* `irp outbox flush`: every entry is due now (next_attempt ignored once),
 * then drains as nt_drain does. Returns the number still pending. */
size_t nt_flush(nt_service *s, long timeout_ms);

/* Entries in the outbox this process cannot send (their notifier is not
 * configured, or a secret it needs is missing). */
size_t nt_unsendable(nt_service *s);

/* Must not be called from inside an nt_event_fn. Whatever is in flight is
 * abandoned and stays in the outbox. */
void nt_close(nt_service *s);

/* `irp outbox [list|flush]` and `irp notify test NAME`. */
int cli_outbox(int argc, char **argv);
int cli_notify(int argc, char **argv);

#endif
