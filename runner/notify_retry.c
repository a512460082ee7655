/*
 * notify_retry.c — what an answer means and when to try again.
 * Delivered: 2xx (Slack only with the body "ok"; Teams unless the body
 * reports an error it met downstream, which Workflows and connectors do
 * with a 200: "... returned HTTP error 429 ..."). Retried: network errors,
 * 408, 425, 429 and 5xx. Permanent: redirects (never followed), other 4xx,
 * and Slack's error words (invalid_payload, channel_not_found, no_service
 * ...) whatever the status. Gone: 410, which disables the notifier.
 * Retry-After is honoured in both of its forms; otherwise exponential
 * backoff with jitter.
 * Depends on: libcurl (curl_getdate only), util.h.
 */
#include "notify_internal.h"
#include "util.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_CAP_MS (5 * 60 * 1000LL)
#define RETRY_AFTER_CAP_MS (6 * 3600 * 1000LL)

/* Slack incoming-webhook error words: each means the message will never be
 * accepted as sent (rollup_error, Slack's "not your fault", is not here). */
static const char *const slack_errors[] = {
    "invalid_payload", "user_not_found", "action_prohibited", "channel_not_found", "channel_is_archived",
    "no_service", "no_service_id", "no_team", "team_disabled", "invalid_token", "invalid_blocks",
    "invalid_blocks_format", "invalid_attachments", "no_text", "missing_text_or_fallback_or_attachments",
    "too_many_attachments", "posting_to_general_channel_denied", "msg_too_long", "ekm_access_denied",
    "restricted_action", NULL};

/* The body as one short printable line for messages. */
static void snippet(const char *body, size_t len, char *out, size_t size)
{
    size_t j = 0;
    for (size_t i = 0; i < len && j + 4 < size && i < 120; i++) {
        unsigned char c = (unsigned char)body[i];
        out[j++] = c < ' ' || c == 0x7f ? ' ' : (char)c;
    }
    if (len > 120 && j + 4 < size) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
    while (j > 0 && out[j - 1] == ' ')
        out[--j] = '\0';
}

static int body_is(const char *body, size_t len, const char *word)
{
    while (len > 0 && isspace((unsigned char)*body))
        body++, len--;
    while (len > 0 && isspace((unsigned char)body[len - 1]))
        len--;
    return len == strlen(word) && !memcmp(body, word, len);
}

static const char *slack_error_in(const char *body, size_t len)
{
    for (int i = 0; slack_errors[i]; i++)
        if (body_is(body, len, slack_errors[i]))
            return slack_errors[i];
    return NULL;
}

static nt_verdict by_status(long status)
{
    if (status >= 200 && status < 300)
        return NT_DELIVERED;
    if (status == 410)
        return NT_GONE;
    if (status == 408 || status == 425 || status == 429 || (status >= 500 && status < 600))
        return NT_RETRY;
    return NT_PERMANENT;
}

nt_verdict nt_classify(nt_kind kind, const nt_outcome *o, char *why, size_t why_size)
{
    if (!o->transport_ok) {
        snprintf(why, why_size, "%s", o->error && *o->error ? o->error : "network error");
        return o->transport_fatal ? NT_PERMANENT : NT_RETRY;
    }
    char snip[160];
    snippet(o->body ? o->body : "", o->body ? o->body_len : 0, snip, sizeof snip);
    const char *body = o->body ? o->body : "";
    if (kind == NT_SLACK) {
        const char *word = slack_error_in(body, o->body_len);
        if (o->status == 200 && body_is(body, o->body_len, "ok")) {
            snprintf(why, why_size, "HTTP 200 ok");
            return NT_DELIVERED;
        }
        if (word) {
            snprintf(why, why_size, "Slack answered HTTP %ld %s", o->status, word);
            return o->status == 410 ? NT_GONE : NT_PERMANENT;
        }
        if (o->status >= 200 && o->status < 300) {
            snprintf(why, why_size, "Slack answered HTTP %ld '%s' instead of 'ok'", o->status, snip);
            return NT_PERMANENT;
        }
    }
    if (kind == NT_TEAMS && o->status >= 200 && o->status < 300) {
        /* Teams reports trouble it met further on inside a 200. */
        const char *e = strstr(body, "HTTP error ");
        if (e) {
            long inner = strtol(e + strlen("HTTP error "), NULL, 10);
            nt_verdict v = inner >= 200 && inner < 300 ? NT_DELIVERED : by_status(inner);
            if (v != NT_DELIVERED) {
                snprintf(why, why_size, "%s: Teams answered HTTP %ld '%s'",
                         inner == 429 ? "throttled" : "refused", o->status, snip);
                return v == NT_GONE ? NT_PERMANENT : v;
            }
        }
    }
    nt_verdict v = by_status(o->status);
    if (o->status >= 300 && o->status < 400)
        snprintf(why, why_size, "HTTP %ld: redirects are not followed (use the final URL)", o->status);
    else if (v == NT_GONE)
        snprintf(why, why_size, "HTTP 410 Gone%s%s", *snip ? ": " : "", snip);
    else
        snprintf(why, why_size, "HTTP %ld%s%s", o->status, *snip && v != NT_DELIVERED ? ": " : "",
                 v != NT_DELIVERED ? snip : "");
    return v;
}

int64_t nt_retry_after_ms(const char *value, int64_t now_ms)
{
    if (!value)
        return -1;
    while (isspace((unsigned char)*value))
        value++;
    if (!*value)
        return -1;
    int64_t ms;
    if (isdigit((unsigned char)*value)) {
        char *end;
        long long secs = strtoll(value, &end, 10);
        while (isspace((unsigned char)*end))
            end++;
        if (*end || secs < 0)
            return -1;
        ms = secs > RETRY_AFTER_CAP_MS / 1000 ? RETRY_AFTER_CAP_MS : secs * 1000;
    } else {
        time_t when = curl_getdate(value, NULL); /* IMF-fixdate, RFC 850 and asctime forms */
        if (when < 0)
            return -1;
        ms = (int64_t)when * 1000 - now_ms;
        if (ms < 0)
            ms = 0;
    }
    return ms > RETRY_AFTER_CAP_MS ? RETRY_AFTER_CAP_MS : ms;
}

int64_t nt_backoff_ms(int64_t base_ms, int attempt, uint32_t rnd)
{
    if (base_ms <= 0)
        base_ms = 1;
    if (attempt < 1)
        attempt = 1;
    int64_t d = base_ms;
    for (int i = 1; i < attempt && d < BACKOFF_CAP_MS; i++)
        d *= 2;
    if (d > BACKOFF_CAP_MS)
        d = BACKOFF_CAP_MS;
    /* Equal jitter: never less than half the delay, so a crowd of retries
     * spreads out without any of them coming back at once. */
    int64_t half = d / 2;
    return half + (int64_t)(rnd % (uint64_t)(d - half + 1));
}
