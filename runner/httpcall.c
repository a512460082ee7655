/*
 * httpcall.c — ctx.http for real runs. See include/httpcall.h. The HTTP
 * engine (and libcurl's start-up cost) is created only when the first
 * request is made, so runs that never call ctx.http never pay for it.
 */
#include "httpcall.h"
#include "notify_internal.h"
#include "proto.h"
#include "secrets.h"
#include "term.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_ANSWER_MAX ((size_t)1 << 20)
#define HTTP_DEFAULT_TIMEOUT_MS 30000

static nh_multi *engine;

typedef struct {
    fx_call *call;
    char *method;
    char *shown_url;   /* the URL as journaled: a secret URL by name only */
} pending_http;

/* A string argument or a secret's value (malloc'd); NULL with err. */
static char *resolve(json_t *v, char *err, size_t err_size)
{
    if (json_is_string(v))
        return ut_xstrdup(json_string_value(v));
    if (json_is_object(v) && pr_str(v, "secret")) {
        const char *value = sec_get(pr_str(v, "secret"), err, err_size);
        return value ? ut_xstrdup(value) : NULL;
    }
    snprintf(err, err_size, "must be a string or a secret");
    return NULL;
}

static json_t *answer_text(const char *data, size_t len)
{
    size_t n;
    char *safe = sec_redact(data, len, &n);
    char *clean = ut_utf8_sanitize(safe, n, &n);
    json_t *s = json_stringn_nocheck(clean, n);
    free(safe);
    free(clean);
    return s;
}

static void done_cb(void *data, const nh_result *res)
{
    pending_http *p = data;
    fx_call *c = p->call;
    json_t *rec = json_pack("{s:s, s:s, s:I, s:b}", "method", p->method, "url", p->shown_url, "duration_ms",
                            (json_int_t)res->elapsed_ms, "simulated", 0);
    if (!res->transport_ok) {
        json_object_set_new(rec, "error", json_string(res->error));
        eng_record(c->run, "step.http", c->step, NULL, rec);
        tm_line(TM_DIM, "      %s %s -> %s", p->method, p->shown_url, res->error);
        char *msg = ut_xasprintf("http %s %s: %s", p->method, p->shown_url, res->error);
        fx_answer_error(c, msg);
        free(msg);
    } else {
        json_object_set_new(rec, "status", json_integer(res->status));
        eng_record(c->run, "step.http", c->step, NULL, rec);
        tm_line(TM_DIM, "      %s %s -> %ld", p->method, p->shown_url, res->status);
        json_t *headers = json_object();
        if (res->content_type)
            json_object_set_new(headers, "content-type", json_string(res->content_type));
        json_t *reply = json_pack("{s:I, s:o, s:o, s:b, s:b, s:I}", "status", (json_int_t)res->status, "headers",
                                  headers, "body", answer_text(res->body, res->body_len), "body_truncated",
                                  res->body_truncated, "simulated", 0, "duration_ms", (json_int_t)res->elapsed_ms);
        fx_answer_ok(c, reply);
    }
    free(p->method);
    free(p->shown_url);
    free(p);
}

int hc_check(json_t *args, char *err, size_t err_size)
{
    const char *method = pr_str(args, "method") ? pr_str(args, "method") : "GET";
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", NULL};
    int known = 0;
    for (int i = 0; methods[i]; i++)
        known |= !strcasecmp(method, methods[i]);
    if (!known) {
        snprintf(err, err_size, "ctx.http: method must be GET, POST, PUT, PATCH, DELETE or HEAD");
        return -1;
    }
    const char *url = pr_str(args, "url");
    if (url && strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
        snprintf(err, err_size, "ctx.http: the url must start with http:// or https://");
        return -1;
    }
    json_t *headers = json_object_get(args, "headers");
    if (json_object_size(headers) > NT_MAX_HEADERS - 1) {
        snprintf(err, err_size, "ctx.http: too many headers (at most %d)", NT_MAX_HEADERS - 1);
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(headers, key, v)
    {
        if (strpbrk(key, "\r\n:") || (json_is_string(v) && strpbrk(json_string_value(v), "\r\n"))) {
            snprintf(err, err_size, "ctx.http: header '%.100s' must not contain line breaks or ':'", key);
            return -1;
        }
    }
    return 0;
}

void hc_request(fx_call *c, json_t *args)
{
    eng_run *r = c->run;
    char err[512] = "";
    const char *method = pr_str(args, "method") ? pr_str(args, "method") : "GET";
    if (hc_check(args, err, sizeof err) < 0) {
        fx_answer_error(c, err);
        return;
    }
    err[0] = '\0';
    nt_request req;
    memset(&req, 0, sizeof req);
    json_t *url = json_object_get(args, "url");
    req.url = resolve(url, err, sizeof err);
    if (!req.url) {
        char *msg = ut_xasprintf("ctx.http: url %s", err);
        fx_answer_error(c, msg);
        free(msg);
        return;
    }
    if (strncmp(req.url, "http://", 7) && strncmp(req.url, "https://", 8)) {
        nt_request_free(&req);
        fx_answer_error(c, "ctx.http: the url must start with http:// or https://");
        return;
    }
    req.method = ut_xstrdup(method);
    for (char *m = req.method; *m; m++)
        if (*m >= 'a' && *m <= 'z')
            *m = (char)(*m - 'a' + 'A');
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(args, "headers"), key, v)
    {
        if (req.nheaders == NT_MAX_HEADERS - 1) {
            nt_request_free(&req);
            fx_answer_error(c, "ctx.http: too many headers (at most 7)");
            return;
        }
        char *value = resolve(v, err, sizeof err);
        if (!value || strpbrk(key, "\r\n:") || strpbrk(value, "\r\n")) {
            free(value);
            nt_request_free(&req);
            char *msg = ut_xasprintf("ctx.http: header '%.100s' %s", key,
                                     err[0] ? err : "must not contain line breaks or ':'");
            fx_answer_error(c, msg);
            free(msg);
            return;
        }
        req.headers[req.nheaders++] = ut_xasprintf("%s: %s", key, value);
        explicit_bzero(value, strlen(value));
        free(value);
    }
    json_t *body = json_object_get(args, "body");
    if (json_is_string(body)) {
        req.body_len = json_string_length(body);
        req.body = ut_xmalloc(req.body_len + 1);
        memcpy(req.body, json_string_value(body), req.body_len + 1);
    }
    long long timeout = pr_int(args, "timeout_ms", 0);
    if (timeout <= 0)
        timeout = HTTP_DEFAULT_TIMEOUT_MS;
    int64_t left = r->step_deadline_mono ? r->step_deadline_mono - ut_mono_ms() : 0;
    if (r->step_deadline_mono && timeout > left)
        timeout = left > 1 ? left : 1; /* a request never outlives its step */
    req.timeout_ms = (long)timeout;
    req.connect_timeout_ms = (long)(timeout < 10000 ? timeout : 10000);
    req.answer_max = HTTP_ANSWER_MAX;

    pending_http *p = ut_xcalloc(1, sizeof *p);
    p->call = c;
    p->method = ut_xstrdup(req.method);
    p->shown_url = json_is_string(url) ? sec_redact(req.url, strlen(req.url), NULL)
                                       : ut_xasprintf("<secret %s>", pr_str(url, "secret"));
    if (!engine && !(engine = nh_new(r->loop, err, sizeof err))) {
        nt_request_free(&req);
        free(p->method);
        free(p->shown_url);
        free(p);
        char *msg = ut_xasprintf("ctx.http: %s", err);
        fx_answer_error(c, msg);
        free(msg);
        return;
    }
    if (!nh_send(engine, &req, done_cb, p, err, sizeof err)) {
        nt_request_free(&req);
        free(p->method);
        free(p->shown_url);
        free(p);
        char *msg = ut_xasprintf("ctx.http: %s", err);
        fx_answer_error(c, msg);
        free(msg);
    }
}

void hc_shutdown(void)
{
    if (engine) {
        nh_free(engine);
        engine = NULL;
    }
}
