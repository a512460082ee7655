/*
 * notify_internal.h — the parts behind notify.h, each in its own file:
 *   notify_payload.c  the JSON bodies of each kind (pure functions of a
 *                     stored outbox entry)
 *   notify_request.c  a ready-to-send request: URL, headers, body, secrets
 *                     resolved at the last moment
 *   notify_sign.c     Standard Webhooks signatures (OpenSSL HMAC-SHA256)
 *   notify_retry.c    what an answer means (delivered, retry, permanent,
 *                     gone), Retry-After, backoff with jitter
 *   notify_http.c     libcurl's multi interface driven by libuv
 *   notify_local.c    the stdout and file notifiers
 * An outbox entry (one JSON object) looks like:
 *   {"v":1,"id":"msg_...","target":"slack-ir","kind":"slack","run":"r1",
 *    "step":"isolate"|null,"created_ms":N,"created":"RFC 3339",
 *    "action":"trigger"|"acknowledge"|"resolve"|null,"attempts":N,
 *    "next_attempt_ms":N,"last_error":"..."|null,
 *    "message":{"event","text","run_id","playbook","title","step","phase",
 *               "severity","status","operator","tier","drill","fields"}}
 * Depends on: jansson, libuv, libcurl (notify_http.c only), config.h.
 */
#ifndef IRP_NOTIFY_INTERNAL_H
#define IRP_NOTIFY_INTERNAL_H

#include "config.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* ------------------------------------------------------------ payloads */

/* "[DRILL] text" (one mark, however many the text already had). malloc'd. */
char *nt_summary(const json_t *msg);
/* A title line: "Escalation tier 2: Ransomware outbreak". malloc'd. */
char *nt_headline(const json_t *msg);
/* [[label, value], ...] of the message's run facts, for cards and fields. */
json_t *nt_facts(const json_t *msg);
/* The dedup key / alias of a run: "irp-<run id>". malloc'd. */
char *nt_dedup_key(const json_t *entry);

json_t *nt_payload_webhook(const json_t *entry);
json_t *nt_payload_slack(const json_t *entry);
json_t *nt_payload_teams(const json_t *entry);
/* routing_key is put into the body (PagerDuty wants it there); source
 * NULL means the host name. */
json_t *nt_payload_pagerduty(const json_t *entry, const char *routing_key, const char *source);
json_t *nt_payload_opsgenie(const json_t *entry);
/* PagerDuty's severity (critical|error|warning|info) and Opsgenie's
 * priority (P1..P5) for irp's severity words. */
const char *nt_pd_severity(const char *severity);
const char *nt_og_priority(const char *severity);
/* Slack mrkdwn escaping of &, < and >. malloc'd. */
char *nt_slack_escape(const char *text);
/* A copy of at most max bytes that does not cut a UTF-8 sequence. */
char *nt_truncate_utf8(const char *text, size_t max);

/* -------------------------------------------------------------- request */

#define NT_MAX_HEADERS 8

typedef struct nt_request {
    char *url;                       /* may hold a secret: never printed */
    char *body;
    size_t body_len;
    char *headers[NT_MAX_HEADERS];   /* "Name: value"; may hold secrets */
    int nheaders;
    long timeout_ms;
    long connect_timeout_ms;
    char *ca_file;
    char *method;                    /* NULL: POST (notifications); ctx.http sets it */
    size_t answer_max;               /* bytes of the answer kept; 0: 64 KiB */
} nt_request;

/* Builds the request for entry to notifier n at now_ms (the Standard
 * Webhooks timestamp). 0, or -1 with err (a missing secret, a bad signing
 * secret): the error never contains a secret's value. */
int nt_build_request(const cf_notifier *n, const json_t *entry, int64_t now_ms, nt_request *req, char *err,
                     size_t err_size);
void nt_request_free(nt_request *req);
/* Percent-encodes everything but RFC 3986 unreserved characters. malloc'd. */
char *nt_url_escape(const char *text);

/* ------------------------------------------------------------- signing */

/* "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>" where key is the
 * base64 after "whsec_" in secret. 0, or -1 with err (never the secret). */
int nt_sign(const char *secret, const char *id, long long timestamp, const char *body, size_t body_len, char *out,
            size_t out_size, char *err, size_t err_size);

/* -------------------------------------------------------------- retries */

typedef enum {
    NT_DELIVERED,
    NT_RETRY,     /* try again later (408, 425, 429, 5xx, network) */
    NT_PERMANENT, /* never going to work (other 4xx, 3xx, Slack errors) */
    NT_GONE       /* 410: the endpoint is gone; disable the notifier */
} nt_verdict;

typedef struct nt_outcome {
    int transport_ok;     /* an HTTP answer arrived */
    int transport_fatal;  /* the request itself is unusable (bad URL ...) */
    long status;
    const char *body;
    size_t body_len;
    const char *error;    /* transport error text (already redacted) */
} nt_outcome;

/* What an answer means; why gets a one-line reason ("HTTP 503", "Slack
 * answered channel_not_found", "throttled: Teams ... HTTP error 429"). */
nt_verdict nt_classify(nt_kind kind, const nt_outcome *o, char *why, size_t why_size);
/* Retry-After as a delay from now: "120" or an HTTP date. -1 if absent
 * or unreadable. Capped at six hours. */
int64_t nt_retry_after_ms(const char *value, int64_t now_ms);
/* Delay before attempt `attempt + 1` after `attempt` failures (>= 1):
 * base * 2^(attempt-1), capped at five minutes, then "equal jitter"
 * (half fixed, half random from rnd). */
int64_t nt_backoff_ms(int64_t base_ms, int attempt, uint32_t rnd);

/* ----------------------------------------------------------------- http */

typedef struct nh_multi nh_multi;

typedef struct nh_result {
    int transport_ok;
    int transport_fatal;
    int curl_code;
    long status;
    char *body;               /* up to answer_max (64 KiB) of the answer, NUL-terminated */
    size_t body_len;
    int body_truncated;       /* the answer was longer than what was kept */
    char *content_type;       /* Content-Type of the answer, or NULL */
    char retry_after[64];
    char error[256];          /* redacted transport error, "" if none */
    int64_t elapsed_ms;
} nh_result;

typedef void (*nh_done_fn)(void *data, const nh_result *res);

/* A transport error of a request to url, safe to show and record: known
 * secret values redacted, and so are the parts of url (host, user name,
 * password, path, query) that come from a secret, since libcurl quotes the
 * host on its own ("Could not resolve host: <host>"). malloc'd. */
char *nh_safe_error(const char *text, const char *url);

/* A multi handle attached to loop (calls curl_global_init: only created
 * when an HTTP notification is actually sent). NULL with err. */
nh_multi *nh_new(uv_loop_t *loop, char *err, size_t err_size);
/* Starts a POST; req is stolen. done is called once from the loop, unless
 * the transfer is cancelled. Returns a handle for nh_cancel, or NULL with
 * err (done is then not called). */
void *nh_send(nh_multi *m, nt_request *req, nh_done_fn done, void *data, char *err, size_t err_size);
void nh_cancel(nh_multi *m, void *transfer);
size_t nh_active(const nh_multi *m);
/* Cancels everything (no callbacks) and closes the handles. */
void nh_free(nh_multi *m);

/* ---------------------------------------------------------------- local */

/* Prints "  >> notify NAME [DRILL]: text" (through the terminal, redacted). */
void nt_local_stdout(const char *name, const json_t *msg);
/* Appends one JSON line {id, target, created, message...} to path and
 * syncs it. 0, or -1 with err. */
int nt_local_file(const char *path, const json_t *entry, char *err, size_t err_size);

#endif
