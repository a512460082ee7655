/*
 * notify_service.h — the state of an nt_service, shared by notify.c
 * (opening, queuing, run lifecycle, closing) and notify_deliver.c (the
 * scheduler: which entry is attempted when, and what each answer does).
 * Per notifier ("target") the service remembers how its endpoint behaves
 * in this process: while it is not known to be healthy only one request
 * at a time probes it, so a dead endpoint costs one failed request per
 * backoff period instead of one per queued message; a 410 disables it.
 * Depends on: config.h, outbox.h, notify.h, notify_internal.h.
 */
#ifndef IRP_NOTIFY_SERVICE_H
#define IRP_NOTIFY_SERVICE_H

#include "config.h"
#include "notify.h"
#include "notify_internal.h"
#include "outbox.h"

#include <stdint.h>

#define NT_MAX_IN_FLIGHT 64      /* whole service */
#define NT_MAX_PER_TARGET 16     /* one healthy endpoint */
#define NT_MAX_HELD_LOCKS 256    /* claims kept from creation to first attempt */
#define NT_ELSEWHERE_RECHECK_MS 1000

typedef struct nt_target {
    const cf_notifier *conf;
    int healthy;            /* its last answer was a delivery */
    int disabled;           /* answered 410: nothing more is sent to it */
    char *broken;           /* a request cannot be built (missing secret ...) */
    int64_t blocked_until;  /* wall ms: backing off as a whole */
    int in_flight;
} nt_target;

typedef enum {
    NE_WAITING,    /* due at next_attempt_ms */
    NE_IN_FLIGHT,
    NE_ELSEWHERE,  /* another process holds it; look again later */
    NE_STUCK,      /* this process cannot send it (not configured, broken) */
    NE_DONE        /* delivered, given up, or gone from the outbox */
} nt_entry_state;

typedef struct nt_entry {
    struct nt_service *svc;
    char *id;
    char *target;
    char *run_id;
    char *step;
    nt_entry_state state;
    int64_t next_attempt_ms;
    int force;              /* flush: due now whatever next_attempt says */
    ob_lock lock;
    int lock_from_create;   /* counted in held_locks until the first attempt */
    json_t *doc;            /* the entry as last read or written */
    void *transfer;         /* nh transfer while in flight */
    struct nt_entry *next;
} nt_entry;

struct nt_service {
    uv_loop_t *loop;
    cf_config *cfg;
    ob_outbox *ob;
    int live_in_drill;
    nt_event_fn on_event;
    void *event_ctx;
    nt_target *targets;     /* one per configured notifier */
    size_t ntargets;
    nt_entry *entries, *tail;
    size_t held_locks;
    size_t in_flight;
    uv_timer_t *timer;      /* the next scheduling pass */
    nh_multi *http;         /* created on the first HTTP attempt */
    int in_pass;
    int draining;           /* nt_drain waits: stop the loop when nothing is left */
    int started;            /* nt_start (or a submit/drain) happened: passes may run */
    int held;               /* nt_hold: no pass starts any more */
    int interrupted;        /* nt_interrupt during a drain */
};

/* notify.c */
nt_target *nt_target_of(nt_service *s, const char *name);
/* Reports a delivery event (data stolen). */
void nt_emit(nt_service *s, const char *type, const nt_entry *e, json_t *data);

/* notify_deliver.c */
/* Asks for a scheduling pass from the loop (never re-entrant). */
void nt_kick(nt_service *s);
/* Cancels whatever is in flight; the entries stay in the outbox as they were. */
void nt_cancel_all(nt_service *s);
/* Frees entries that are done. */
void nt_reap(nt_service *s);
void nt_entry_free(nt_entry *e);

#endif
