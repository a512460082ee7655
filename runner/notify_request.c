/*
 * notify_request.c — turns a stored outbox entry into an HTTP request for
 * its notifier: the URL (webhook, slack, teams: `url`; pagerduty: `url` or
 * the Events API v2 endpoint; opsgenie: api_url + /v2/alerts[/<alias>/
 * acknowledge|close?identifierType=alias]), the headers (Standard Webhooks'
 * webhook-id / webhook-timestamp / webhook-signature; Opsgenie's
 * Authorization: GenieKey) and the body. Secrets are resolved here, at the
 * last moment, with sec_get; errors name the secret, never its value.
 * Depends on: jansson, config.h, secrets.h (through cf_resolve), util.h.
 */
#include "notify_internal.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *nt_url_escape(const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    ut_buf b = {0};
    ut_buf_append(&b, "", 0);
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '.' || *p == '_' || *p == '~') {
            ut_buf_append(&b, p, 1);
        } else {
            char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            ut_buf_append(&b, enc, 3);
        }
    }
    return b.data;
}

static void add_header(nt_request *req, char *line)
{
    if (req->nheaders < NT_MAX_HEADERS)
        req->headers[req->nheaders++] = line;
    else
        free(line);
}

/* The value of a configured field, or -1 with "notifier 'x': url: secret
 * SLACK_URL is not set: ...". */
static const char *need(const cf_notifier *n, const cf_value *v, const char *field, char *err, size_t err_size)
{
    char why[256];
    const char *value = cf_resolve(v, why, sizeof why);
    if (!value)
        snprintf(err, err_size, "notifier '%s': %s: %s", n->name, field, why);
    return value;
}

static char *opsgenie_url(const cf_notifier *n, const json_t *entry)
{
    const char *base = n->api_url ? n->api_url : CF_DEFAULT_OPSGENIE_URL;
    size_t len = strlen(base);
    while (len > 0 && base[len - 1] == '/')
        len--;
    const char *action = json_string_value(json_object_get(entry, "action"));
    if (!action || !strcmp(action, "trigger"))
        return ut_xasprintf("%.*s/v2/alerts", (int)len, base);
    char *alias = nt_dedup_key(entry);
    char *esc = nt_url_escape(alias);
    char *url = ut_xasprintf("%.*s/v2/alerts/%s/%s?identifierType=alias", (int)len, base, esc,
                             !strcmp(action, "resolve") ? "close" : "acknowledge");
    free(alias);
    free(esc);
    return url;
}

int nt_build_request(const cf_notifier *n, const json_t *entry, int64_t now_ms, nt_request *req, char *err,
                     size_t err_size)
{
    memset(req, 0, sizeof *req);
    req->timeout_ms = (long)n->timeout_ms;
    req->connect_timeout_ms = (long)n->connect_timeout_ms;
    if (n->ca_file)
        req->ca_file = ut_xstrdup(n->ca_file);
    json_t *body = NULL;
    const char *url = NULL;
    const char *id = json_string_value(json_object_get(entry, "id"));
    switch (n->kind) {
    case NT_WEBHOOK:
        url = need(n, &n->url, "url", err, err_size);
        body = url ? nt_payload_webhook(entry) : NULL;
        break;
    case NT_SLACK:
        url = need(n, &n->url, "url", err, err_size);
        body = url ? nt_payload_slack(entry) : NULL;
        break;
    case NT_TEAMS:
        url = need(n, &n->url, "url", err, err_size);
        body = url ? nt_payload_teams(entry) : NULL;
        break;
    case NT_PAGERDUTY: {
        url = cf_value_set(&n->url) ? need(n, &n->url, "url", err, err_size) : CF_DEFAULT_PAGERDUTY_URL;
        const char *key = url ? need(n, &n->routing_key, "routing_key", err, err_size) : NULL;
        body = key ? nt_payload_pagerduty(entry, key, n->source) : NULL;
        if (!key)
            url = NULL;
        break;
    }
    case NT_OPSGENIE: {
        const char *key = need(n, &n->api_key, "api_key", err, err_size);
        if (key) {
            req->url = opsgenie_url(n, entry);
            add_header(req, ut_xasprintf("Authorization: GenieKey %s", key));
            body = nt_payload_opsgenie(entry);
        }
        break;
    }
    case NT_STDOUT:
    case NT_FILE:
        snprintf(err, err_size, "notifier '%s' (type %s) does not speak HTTP", n->name, cf_kind_name(n->kind));
        return -1;
    }
    if (!body) {
        nt_request_free(req);
        return -1;
    }
    if (!req->url)
        req->url = ut_xstrdup(url);
    req->body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!req->body) {
        snprintf(err, err_size, "notifier '%s': cannot encode the message as JSON", n->name);
        nt_request_free(req);
        return -1;
    }
    req->body_len = strlen(req->body);
    add_header(req, ut_xstrdup("Content-Type: application/json"));
    add_header(req, ut_xstrdup("Accept: application/json, text/plain, */*"));
    if (n->kind == NT_WEBHOOK) {
        long long ts = (long long)(now_ms / 1000);
        add_header(req, ut_xasprintf("webhook-id: %s", id ? id : ""));
        add_header(req, ut_xasprintf("webhook-timestamp: %lld", ts));
        if (cf_value_set(&n->signing_secret)) {
            const char *secret = need(n, &n->signing_secret, "signing_secret", err, err_size);
            char sig[128], why[256];
            if (!secret) {
                nt_request_free(req);
                return -1;
            }
            if (nt_sign(secret, id ? id : "", ts, req->body, req->body_len, sig, sizeof sig, why, sizeof why) < 0) {
                snprintf(err, err_size, "notifier '%s': signing_secret: %s", n->name, why);
                nt_request_free(req);
                return -1;
            }
            add_header(req, ut_xasprintf("webhook-signature: %s", sig));
        }
    }
    return 0;
}

void nt_request_free(nt_request *req)
{
    if (!req)
        return;
    if (req->url) {
        explicit_bzero(req->url, strlen(req->url));
        free(req->url);
    }
    if (req->body) {
        explicit_bzero(req->body, req->body_len); /* a PagerDuty body holds the routing key */
        free(req->body);
    }
    for (int i = 0; i < req->nheaders; i++) {
        explicit_bzero(req->headers[i], strlen(req->headers[i]));
        free(req->headers[i]);
    }
    free(req->method);
    free(req->ca_file);
    memset(req, 0, sizeof *req);
}
