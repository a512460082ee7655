/*
 * test_notify_payload.c — unit tests for what each notifier kind sends
 * (notify_payload.c, notify_request.c, notify_sign.c): the documented
 * field names of Standard Webhooks, Slack incoming webhooks (text +
 * blocks), the Teams Workflows Adaptive Card envelope, PagerDuty Events
 * API v2 (trigger / acknowledge / resolve with one dedup_key per run) and
 * Opsgenie's Alert API (create, acknowledge and close by alias); the DRILL
 * mark; Slack escaping and limits; the Standard Webhooks signature against
 * the specification's known vector; and that no error message carries a
 * secret's value.
 * Depends on: cmocka, notify_internal.h, config.h, secrets.h.
 */
#include "config.h"
#include "notify_internal.h"
#include "secrets.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#define CANARY "canary-7f3a9c01b2d4e5f6"

static json_t *entry(const char *event, int drill, const char *action)
{
    json_t *msg = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:b, s:{s:s, s:i}}", "event",
                            event, "text", "Ransomware outbreak: isolate failed (run r1, step isolate)", "run_id", "r1",
                            "playbook", "ransomware", "title", "Ransomware <outbreak> & co", "step", "isolate",
                            "phase", "containment", "severity", "critical", "status", "failed", "operator", "alice",
                            "tier", 2, "drill", drill, "fields", "host", "web-07", "hosts", 3);
    json_t *e = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s?, s:i, s:I, s:n, s:o}", "v", 1, "id",
                          "msg_1764062024123_7f3a9c01b2d4", "target", "t", "kind", "x", "run", "r1", "step", "isolate",
                          "created_ms", (json_int_t)1764062024123LL, "created", "2025-11-25T09:13:44.123Z", "action",
                          action, "attempts", 0, "next_attempt_ms", (json_int_t)0, "last_error", "message", msg);
    return e;
}

static const char *s(const json_t *o, const char *path)
{
    /* "a.b.c" walk through objects */
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = json_object_get(cur, tok);
    return json_string_value(cur);
}

static void test_webhook_payload(void **state)
{
    (void)state;
    json_t *e = entry("escalation", 0, NULL);
    json_t *b = nt_payload_webhook(e);
    assert_string_equal(s(b, "type"), "irp.escalation");
    assert_string_equal(s(b, "timestamp"), "2025-11-25T09:13:44.123Z");
    json_t *d = json_object_get(b, "data");
    assert_string_equal(s(d, "run_id"), "r1");
    assert_string_equal(s(d, "playbook"), "ransomware");
    assert_string_equal(s(d, "step"), "isolate");
    assert_string_equal(s(d, "phase"), "containment");
    assert_string_equal(s(d, "severity"), "critical");
    assert_string_equal(s(d, "status"), "failed");
    assert_string_equal(s(d, "operator"), "alice");
    assert_int_equal(json_integer_value(json_object_get(d, "tier")), 2);
    assert_true(json_is_false(json_object_get(d, "drill")));
    assert_string_equal(s(d, "fields.host"), "web-07");
    json_decref(b);
    json_decref(e);
}

static void test_slack_payload(void **state)
{
    (void)state;
    json_t *e = entry("escalation", 1, NULL);
    json_t *b = nt_payload_slack(e);
    const char *text = s(b, "text");
    assert_non_null(text);
    assert_true(!strncmp(text, "[DRILL] Ransomware outbreak", 27));
    json_t *blocks = json_object_get(b, "blocks");
    assert_true(json_array_size(blocks) >= 4);
    json_t *header = json_array_get(blocks, 0);
    assert_string_equal(s(header, "type"), "header");
    assert_string_equal(s(header, "text.type"), "plain_text");
    /* plain_text is not escaped; mrkdwn is */
    assert_string_equal(s(header, "text.text"), "[DRILL] Escalation tier 2: Ransomware <outbreak> & co");
    json_t *fields = json_object_get(json_array_get(blocks, 2), "fields");
    assert_true(json_array_size(fields) >= 7 && json_array_size(fields) <= 10);
    char *all = json_dumps(fields, 0);
    assert_non_null(strstr(all, "*Run*\\nr1"));
    assert_non_null(strstr(all, "*Playbook*\\nransomware"));
    assert_non_null(strstr(all, "*Step*\\nisolate"));
    assert_non_null(strstr(all, "*Phase*\\ncontainment"));
    assert_non_null(strstr(all, "*Severity*\\ncritical"));
    assert_non_null(strstr(all, "*Status*\\nfailed"));
    assert_non_null(strstr(all, "*Operator*\\nalice"));
    free(all);
    char *dump = json_dumps(b, 0);
    assert_non_null(strstr(dump, "DRILL: an exercise"));
    free(dump);
    json_decref(b);
    json_decref(e);

    char *esc = nt_slack_escape("a <b> & c");
    assert_string_equal(esc, "a &lt;b&gt; &amp; c");
    free(esc);
    /* header text is capped at Slack's 150 characters, cut on a UTF-8 boundary */
    char long_title[400];
    memset(long_title, 0, sizeof long_title);
    for (int i = 0; i < 100; i++)
        strcat(long_title, "\xc3\xa9"); /* é, 2 bytes */
    e = entry("notify", 0, NULL);
    json_object_set_new(json_object_get(e, "message"), "title", json_string(long_title));
    b = nt_payload_slack(e);
    const char *h = s(json_array_get(json_object_get(b, "blocks"), 0), "text.text");
    assert_true(strlen(h) <= 150);
    assert_true(ut_utf8_valid(h, strlen(h)));
    json_decref(b);
    json_decref(e);
}

static void test_teams_payload(void **state)
{
    (void)state;
    json_t *e = entry("escalation", 1, NULL);
    json_t *b = nt_payload_teams(e);
    assert_string_equal(s(b, "type"), "message");
    json_t *att = json_array_get(json_object_get(b, "attachments"), 0);
    assert_string_equal(s(att, "contentType"), "application/vnd.microsoft.card.adaptive");
    json_t *card = json_object_get(att, "content");
    assert_string_equal(s(card, "type"), "AdaptiveCard");
    assert_string_equal(s(card, "version"), "1.4");
    assert_non_null(s(card, "$schema"));
    json_t *body = json_object_get(card, "body");
    assert_string_equal(s(json_array_get(body, 0), "text"), "DRILL: an exercise, not a real incident");
    json_t *factset = json_array_get(body, json_array_size(body) - 1);
    assert_string_equal(s(factset, "type"), "FactSet");
    char *facts = json_dumps(json_object_get(factset, "facts"), JSON_COMPACT);
    assert_non_null(strstr(facts, "{\"title\":\"Run\",\"value\":\"r1\"}"));
    assert_non_null(strstr(facts, "{\"title\":\"Operator\",\"value\":\"alice\"}"));
    assert_non_null(strstr(facts, "{\"title\":\"host\",\"value\":\"web-07\"}"));
    assert_non_null(strstr(facts, "{\"title\":\"hosts\",\"value\":\"3\"}"));
    free(facts);
    json_decref(b);
    json_decref(e);
}

static void test_pagerduty_payload(void **state)
{
    (void)state;
    json_t *e = entry("escalation", 0, "trigger");
    json_t *b = nt_payload_pagerduty(e, "R0UTINGKEY0123456789012345678901", "irp-host");
    assert_string_equal(s(b, "routing_key"), "R0UTINGKEY0123456789012345678901");
    assert_string_equal(s(b, "event_action"), "trigger");
    assert_string_equal(s(b, "dedup_key"), "irp-r1");
    assert_string_equal(s(b, "payload.summary"), "Ransomware outbreak: isolate failed (run r1, step isolate)");
    assert_string_equal(s(b, "payload.source"), "irp-host");
    assert_string_equal(s(b, "payload.severity"), "critical");
    assert_string_equal(s(b, "payload.timestamp"), "2025-11-25T09:13:44.123Z");
    assert_string_equal(s(b, "payload.component"), "isolate");
    assert_string_equal(s(b, "payload.group"), "ransomware");
    assert_string_equal(s(b, "payload.class"), "containment");
    assert_string_equal(s(b, "payload.custom_details.run_id"), "r1");
    assert_string_equal(s(b, "payload.custom_details.operator"), "alice");
    json_decref(b);
    json_decref(e);
    /* acknowledge / resolve: the same key, no payload */
    e = entry("resolve", 0, "resolve");
    b = nt_payload_pagerduty(e, "K", NULL);
    assert_string_equal(s(b, "event_action"), "resolve");
    assert_string_equal(s(b, "dedup_key"), "irp-r1");
    assert_null(json_object_get(b, "payload"));
    json_decref(b);
    json_decref(e);
    assert_string_equal(nt_pd_severity("critical"), "critical");
    assert_string_equal(nt_pd_severity("high"), "error");
    assert_string_equal(nt_pd_severity("medium"), "warning");
    assert_string_equal(nt_pd_severity("low"), "info");
    assert_string_equal(nt_pd_severity("info"), "info");
}

static void test_opsgenie_payload(void **state)
{
    (void)state;
    json_t *e = entry("escalation", 1, "trigger");
    json_t *b = nt_payload_opsgenie(e);
    const char *message = s(b, "message");
    assert_true(strlen(message) <= 130);
    assert_true(!strncmp(message, "[DRILL] ", 8));
    assert_string_equal(s(b, "alias"), "irp-r1");
    assert_string_equal(s(b, "priority"), "P1");
    assert_string_equal(s(b, "source"), "irp");
    assert_string_equal(s(b, "entity"), "ransomware");
    assert_string_equal(s(b, "details.Run"), "r1");
    assert_string_equal(s(b, "details.host"), "web-07");
    char *tags = json_dumps(json_object_get(b, "tags"), JSON_COMPACT);
    assert_string_equal(tags, "[\"irp\",\"severity:critical\",\"drill\"]");
    free(tags);
    assert_non_null(strstr(s(b, "description"), "Operator: alice"));
    json_decref(b);
    json_decref(e);
    e = entry("resolve", 0, "resolve");
    b = nt_payload_opsgenie(e);
    assert_string_equal(s(b, "source"), "irp");
    assert_string_equal(s(b, "user"), "alice");
    assert_null(json_object_get(b, "alias"));
    json_decref(b);
    json_decref(e);
    assert_string_equal(nt_og_priority("high"), "P2");
    assert_string_equal(nt_og_priority("info"), "P5");
}

static cf_notifier notifier(nt_kind kind)
{
    cf_notifier n;
    memset(&n, 0, sizeof n);
    n.name = (char *)"t";
    n.kind = kind;
    n.timeout_ms = 1000;
    n.connect_timeout_ms = 500;
    return n;
}

static const char *header(const nt_request *r, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < r->nheaders; i++)
        if (!strncasecmp(r->headers[i], name, n) && r->headers[i][n] == ':')
            return r->headers[i] + n + 2;
    return NULL;
}

static void test_requests(void **state)
{
    (void)state;
    char err[512];
    nt_request r;
    setenv("IRP_T_URL", "https://hooks.example/" CANARY, 1);
    setenv("IRP_T_KEY", "key-" CANARY, 1);
    setenv("IRP_T_WHSEC", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 1);

    cf_notifier w = notifier(NT_WEBHOOK);
    w.url.secret = (char *)"IRP_T_URL";
    w.signing_secret.secret = (char *)"IRP_T_WHSEC";
    json_t *e = entry("escalation", 0, NULL);
    assert_int_equal(nt_build_request(&w, e, 1614265330123LL, &r, err, sizeof err), 0);
    assert_string_equal(r.url, "https://hooks.example/" CANARY);
    assert_string_equal(header(&r, "webhook-id"), "msg_1764062024123_7f3a9c01b2d4");
    assert_string_equal(header(&r, "webhook-timestamp"), "1614265330");
    char want[128];
    assert_int_equal(nt_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_1764062024123_7f3a9c01b2d4", 1614265330,
                             r.body, r.body_len, want, sizeof want, err, sizeof err), 0);
    assert_string_equal(header(&r, "webhook-signature"), want);
    assert_string_equal(header(&r, "Content-Type"), "application/json");
    assert_int_equal(r.timeout_ms, 1000);
    assert_int_equal(r.connect_timeout_ms, 500);
    nt_request_free(&r);

    cf_notifier pd = notifier(NT_PAGERDUTY);
    pd.routing_key.secret = (char *)"IRP_T_KEY";
    assert_int_equal(nt_build_request(&pd, e, 0, &r, err, sizeof err), 0);
    assert_string_equal(r.url, CF_DEFAULT_PAGERDUTY_URL);
    assert_non_null(strstr(r.body, "\"routing_key\":\"key-" CANARY "\""));
    nt_request_free(&r);
    pd.url.literal = (char *)"http://127.0.0.1:9/v2/enqueue";
    assert_int_equal(nt_build_request(&pd, e, 0, &r, err, sizeof err), 0);
    assert_string_equal(r.url, "http://127.0.0.1:9/v2/enqueue");
    nt_request_free(&r);

    cf_notifier og = notifier(NT_OPSGENIE);
    og.api_key.secret = (char *)"IRP_T_KEY";
    og.api_url = (char *)"https://api.eu.opsgenie.com/";
    assert_int_equal(nt_build_request(&og, e, 0, &r, err, sizeof err), 0);
    assert_string_equal(r.url, "https://api.eu.opsgenie.com/v2/alerts");
    assert_string_equal(header(&r, "Authorization"), "GenieKey key-" CANARY);
    nt_request_free(&r);
    json_t *close = entry("resolve", 0, "resolve");
    assert_int_equal(nt_build_request(&og, close, 0, &r, err, sizeof err), 0);
    assert_string_equal(r.url, "https://api.eu.opsgenie.com/v2/alerts/irp-r1/close?identifierType=alias");
    nt_request_free(&r);
    json_object_set_new(close, "action", json_string("acknowledge"));
    json_object_set_new(json_object_get(close, "message"), "run_id", json_string("run/with space"));
    assert_int_equal(nt_build_request(&og, close, 0, &r, err, sizeof err), 0);
    assert_string_equal(r.url,
                        "https://api.eu.opsgenie.com/v2/alerts/irp-run%2Fwith%20space/acknowledge?identifierType=alias");
    nt_request_free(&r);
    json_decref(close);

    /* Missing secrets and bad signing secrets: named, never shown. */
    cf_notifier bad = notifier(NT_SLACK);
    bad.url.secret = (char *)"IRP_T_NOT_SET";
    assert_int_equal(nt_build_request(&bad, e, 0, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "notifier 't': url: secret IRP_T_NOT_SET is not set"));
    setenv("IRP_T_BADSEC", "whsec_!!!" CANARY, 1);
    w.signing_secret.secret = (char *)"IRP_T_BADSEC";
    assert_int_equal(nt_build_request(&w, e, 0, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "signing_secret"));
    assert_null(strstr(err, CANARY));
    json_decref(e);
    sec_clear();
}

static void test_signature_known_vector(void **state)
{
    (void)state;
    /* From the Standard Webhooks reference libraries' tests. */
    char sig[128], err[256];
    const char *body = "{\"test\": 2432232314}";
    assert_int_equal(nt_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                             strlen(body), sig, sizeof sig, err, sizeof err),
                     0);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* without the prefix, and unpadded base64, as the references accept */
    assert_int_equal(nt_sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                             strlen(body), sig, sizeof sig, err, sizeof err),
                     0);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* a different body, id or time changes it */
    assert_int_equal(nt_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body,
                             strlen(body), sig, sizeof sig, err, sizeof err),
                     0);
    assert_string_not_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    assert_int_equal(nt_sign("whsec_", "id", 1, "x", 1, sig, sizeof sig, err, sizeof err), -1);
    assert_int_equal(nt_sign("whsec_***", "id", 1, "x", 1, sig, sizeof sig, err, sizeof err), -1);
    assert_non_null(strstr(err, "not \"whsec_\" followed by base64"));
}

static void test_helpers(void **state)
{
    (void)state;
    char *t = nt_truncate_utf8("hello world", 8);
    assert_string_equal(t, "hello...");
    free(t);
    t = nt_truncate_utf8("short", 8);
    assert_string_equal(t, "short");
    free(t);
    t = nt_url_escape("irp-a.b_c~d/e f?&");
    assert_string_equal(t, "irp-a.b_c~d%2Fe%20f%3F%26");
    free(t);
    json_t *m = json_pack("{s:s, s:b}", "text", "[DRILL] [DRILL] x", "drill", 1);
    t = nt_summary(m);
    assert_string_equal(t, "[DRILL] x");
    free(t);
    json_object_set_new(m, "drill", json_false());
    t = nt_summary(m);
    assert_string_equal(t, "x");
    free(t);
    json_decref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_webhook_payload),  cmocka_unit_test(test_slack_payload),
        cmocka_unit_test(test_teams_payload),    cmocka_unit_test(test_pagerduty_payload),
        cmocka_unit_test(test_opsgenie_payload), cmocka_unit_test(test_requests),
        cmocka_unit_test(test_signature_known_vector), cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
