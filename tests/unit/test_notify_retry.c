/*
 * test_notify_retry.c — unit tests for what an answer means and when the
 * next attempt comes (notify_retry.c): the status matrix (2xx delivered;
 * 408, 425, 429, 5xx and network errors retried; 3xx and other 4xx
 * permanent; 410 gone), Slack's "ok" and its error words, Teams reporting
 * throttling inside a 200, Retry-After in seconds and in all three HTTP
 * date forms, and exponential backoff with bounded jitter.
 * Depends on: cmocka, notify_internal.h.
 */
#include "notify_internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static nt_verdict classify(nt_kind kind, long status, const char *body, char *why, size_t n)
{
    nt_outcome o = {1, 0, status, body, body ? strlen(body) : 0, NULL};
    return nt_classify(kind, &o, why, n);
}

static void test_status_matrix(void **state)
{
    (void)state;
    char why[256];
    static const long delivered[] = {200, 201, 202, 204};
    static const long retried[] = {408, 425, 429, 500, 502, 503, 504, 599};
    static const long permanent[] = {301, 302, 307, 308, 400, 401, 403, 404, 405, 413, 422};
    for (size_t i = 0; i < sizeof delivered / sizeof *delivered; i++)
        assert_int_equal(classify(NT_WEBHOOK, delivered[i], "", why, sizeof why), NT_DELIVERED);
    for (size_t i = 0; i < sizeof retried / sizeof *retried; i++)
        assert_int_equal(classify(NT_PAGERDUTY, retried[i], "{}", why, sizeof why), NT_RETRY);
    for (size_t i = 0; i < sizeof permanent / sizeof *permanent; i++)
        assert_int_equal(classify(NT_OPSGENIE, permanent[i], "", why, sizeof why), NT_PERMANENT);
    assert_int_equal(classify(NT_WEBHOOK, 410, "gone", why, sizeof why), NT_GONE);
    assert_string_equal(why, "HTTP 410 Gone: gone");
    assert_int_equal(classify(NT_WEBHOOK, 302, "", why, sizeof why), NT_PERMANENT);
    assert_non_null(strstr(why, "redirects are not followed"));
    assert_int_equal(classify(NT_WEBHOOK, 503, "down\nfor maintenance", why, sizeof why), NT_RETRY);
    assert_string_equal(why, "HTTP 503: down for maintenance");

    nt_outcome net = {0, 0, 0, NULL, 0, "Failed to connect to 127.0.0.1 port 9: Connection refused"};
    assert_int_equal(nt_classify(NT_SLACK, &net, why, sizeof why), NT_RETRY);
    assert_string_equal(why, "Failed to connect to 127.0.0.1 port 9: Connection refused");
    nt_outcome fatal = {0, 1, 0, NULL, 0, "URL using bad/illegal format or missing URL"};
    assert_int_equal(nt_classify(NT_WEBHOOK, &fatal, why, sizeof why), NT_PERMANENT);
}

static void test_slack_bodies(void **state)
{
    (void)state;
    char why[256];
    assert_int_equal(classify(NT_SLACK, 200, "ok", why, sizeof why), NT_DELIVERED);
    assert_int_equal(classify(NT_SLACK, 200, "ok\n", why, sizeof why), NT_DELIVERED);
    assert_int_equal(classify(NT_SLACK, 400, "invalid_payload", why, sizeof why), NT_PERMANENT);
    assert_string_equal(why, "Slack answered HTTP 400 invalid_payload");
    assert_int_equal(classify(NT_SLACK, 404, "channel_not_found", why, sizeof why), NT_PERMANENT);
    assert_int_equal(classify(NT_SLACK, 404, "no_service", why, sizeof why), NT_PERMANENT);
    assert_int_equal(classify(NT_SLACK, 403, "action_prohibited", why, sizeof why), NT_PERMANENT);
    assert_int_equal(classify(NT_SLACK, 410, "channel_is_archived", why, sizeof why), NT_GONE);
    /* an error word is permanent whatever the status says */
    assert_int_equal(classify(NT_SLACK, 500, "invalid_token", why, sizeof why), NT_PERMANENT);
    /* rollup_error is Slack's "not your fault": retried */
    assert_int_equal(classify(NT_SLACK, 500, "rollup_error", why, sizeof why), NT_RETRY);
    assert_int_equal(classify(NT_SLACK, 429, "rate_limited", why, sizeof why), NT_RETRY);
    /* a 200 that is not "ok" did not post the message */
    assert_int_equal(classify(NT_SLACK, 200, "<html>proxy</html>", why, sizeof why), NT_PERMANENT);
    assert_non_null(strstr(why, "instead of 'ok'"));
}

static void test_teams_bodies(void **state)
{
    (void)state;
    char why[256];
    assert_int_equal(classify(NT_TEAMS, 202, "", why, sizeof why), NT_DELIVERED);
    assert_int_equal(classify(NT_TEAMS, 200, "1", why, sizeof why), NT_DELIVERED);
    assert_int_equal(classify(NT_TEAMS, 200,
                              "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error "
                              "429 with ContextId tcid=0,server=msgapi,cv=x",
                              why, sizeof why),
                     NT_RETRY);
    assert_non_null(strstr(why, "throttled"));
    assert_int_equal(classify(NT_TEAMS, 200, "Microsoft Teams endpoint returned HTTP error 413 with ContextId x", why,
                              sizeof why),
                     NT_PERMANENT);
    assert_int_equal(classify(NT_TEAMS, 200, "Microsoft Teams endpoint returned HTTP error 503", why, sizeof why),
                     NT_RETRY);
    assert_int_equal(classify(NT_TEAMS, 429, "", why, sizeof why), NT_RETRY);
}

static void test_retry_after(void **state)
{
    (void)state;
    int64_t now = 784111777000LL; /* Sun, 06 Nov 1994 08:49:37 GMT */
    assert_int_equal(nt_retry_after_ms("120", now), 120000);
    assert_int_equal(nt_retry_after_ms(" 0 ", now), 0);
    assert_int_equal(nt_retry_after_ms("Sun, 06 Nov 1994 08:49:47 GMT", now), 10000);   /* IMF-fixdate */
    assert_int_equal(nt_retry_after_ms("Sunday, 06-Nov-94 08:50:37 GMT", now), 60000);  /* RFC 850 */
    assert_int_equal(nt_retry_after_ms("Sun Nov  6 08:49:57 1994", now), 20000);        /* asctime */
    assert_int_equal(nt_retry_after_ms("Sun, 06 Nov 1994 08:00:00 GMT", now), 0);       /* in the past: now */
    assert_int_equal(nt_retry_after_ms("99999999", now), 6 * 3600 * 1000LL);           /* capped */
    assert_int_equal(nt_retry_after_ms(NULL, now), -1);
    assert_int_equal(nt_retry_after_ms("", now), -1);
    assert_int_equal(nt_retry_after_ms("soon", now), -1);
    assert_int_equal(nt_retry_after_ms("-5", now), -1);
    assert_int_equal(nt_retry_after_ms("12abc", now), -1);
}

static void test_backoff(void **state)
{
    (void)state;
    /* equal jitter: in [d/2, d] where d = base * 2^(attempt-1), capped at 5 min */
    for (int attempt = 1; attempt <= 20; attempt++) {
        int64_t d = 1000;
        for (int i = 1; i < attempt && d < 300000; i++)
            d *= 2;
        if (d > 300000)
            d = 300000;
        int64_t lo = nt_backoff_ms(1000, attempt, 0), hi = nt_backoff_ms(1000, attempt, UINT32_MAX);
        assert_true(lo >= d / 2 && lo <= d);
        assert_true(hi >= d / 2 && hi <= d);
        for (uint32_t r = 1; r < 5000000; r += 999983) {
            int64_t v = nt_backoff_ms(1000, attempt, r);
            assert_true(v >= d / 2 && v <= d);
        }
    }
    assert_int_equal(nt_backoff_ms(1000, 1, 0), 500);
    assert_int_equal(nt_backoff_ms(1000, 3, 0), 2000);
    /* different random numbers spread the retries */
    assert_int_not_equal(nt_backoff_ms(2000, 4, 12345), nt_backoff_ms(2000, 4, 54321));
    assert_true(nt_backoff_ms(0, 1, 7) >= 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_matrix), cmocka_unit_test(test_slack_bodies), cmocka_unit_test(test_teams_bodies),
        cmocka_unit_test(test_retry_after),   cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
