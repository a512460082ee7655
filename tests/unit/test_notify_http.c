/*
 * test_notify_http.c — unit tests for what notify_http.c lets out of a
 * transport error: nh_safe_error redacts known secret values and the parts
 * of a secret URL that libcurl quotes on their own (the host name in
 * "Could not resolve host: ..." or "Failed to connect to ..."), while an
 * error about a URL written in clear in the configuration keeps its host.
 * Depends on: cmocka, libcurl, notify_internal.h, secrets.h.
 */
#include "notify_internal.h"
#include "secrets.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void expect_safe(const char *text, const char *url, const char *want)
{
    char *got = nh_safe_error(text, url);
    assert_string_equal(got, want);
    free(got);
}

static void test_host_of_a_secret_url(void **state)
{
    (void)state;
    char err[256];
    setenv("IRPT_HOOK_URL", "http://tok-s3cr3t.localhost:9/p/XYZ", 1);
    const char *url = sec_get("IRPT_HOOK_URL", err, sizeof err);
    assert_non_null(url);
    expect_safe("Failed to connect to tok-s3cr3t.localhost port 9 after 0 ms: Couldn't connect to server", url,
                "Failed to connect to [secret IRPT_HOOK_URL] port 9 after 0 ms: Couldn't connect to server");
    expect_safe("Could not resolve host: tok-s3cr3t.localhost", url, "Could not resolve host: [secret IRPT_HOOK_URL]");
    /* the whole value is redacted as before */
    expect_safe("bad URL http://tok-s3cr3t.localhost:9/p/XYZ here", url, "bad URL [secret IRPT_HOOK_URL] here");
    /* user name and password of a secret URL too */
    setenv("IRPT_AUTH_URL", "https://bob:pa55word@127.0.0.1:8443/x", 1);
    const char *auth = sec_get("IRPT_AUTH_URL", err, sizeof err);
    assert_non_null(auth);
    expect_safe("Login denied for pa55word", auth, "Login denied for [secret IRPT_AUTH_URL]");
    sec_clear();
    unsetenv("IRPT_HOOK_URL");
    unsetenv("IRPT_AUTH_URL");
}

static void test_clear_url_keeps_its_host(void **state)
{
    (void)state;
    expect_safe("Could not resolve host: soc.example.net", "https://soc.example.net/hooks/irp",
                "Could not resolve host: soc.example.net");
    expect_safe("Timeout was reached", NULL, "Timeout was reached");
    expect_safe("URL using bad/illegal format or missing URL", "http://[::1:9/x",
                "URL using bad/illegal format or missing URL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_of_a_secret_url),
        cmocka_unit_test(test_clear_url_keeps_its_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
