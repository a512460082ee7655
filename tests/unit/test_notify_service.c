/*
 * test_notify_service.c — unit tests for the notification service
 * (notify.c, notify_deliver.c) on a real libuv loop, without a network:
 * drills are simulated (journaled queued + sent with simulated=true,
 * nothing in the outbox) unless live channels are asked for; stdout is
 * printed at once; an unknown target is reported, with a suggestion; the
 * file notifier delivers through the outbox and nt_drain returns as soon
 * as nothing is pending; notify.queued is reported only once the entry is
 * on disk; PagerDuty acknowledge/resolve are queued once per run and in
 * order; entries left in the outbox are picked up by the next service,
 * and counted unsendable when their notifier is not configured.
 * Depends on: cmocka, notify.h, notify_service.h, outbox.h.
 */
#include "notify.h"
#include "notify_service.h"
#include "outbox.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[64];
static char conf[128];
static char state[128];
static char cwd[4096];

typedef struct {
    json_t *events; /* [[type, run, data], ...] */
} sink;

static void on_event(void *ctx, const char *type, const char *run_id, const char *step, json_t *data)
{
    sink *k = ctx;
    if (!strcmp(type, "notify.queued") && !json_is_true(json_object_get(data, "simulated")) &&
        strcmp(json_string_value(json_object_get(data, "kind")), "stdout") != 0) {
        /* the promise: on disk before it is reported queued */
        char *path = ut_xasprintf("%s/outbox/%s.json", state, json_string_value(json_object_get(data, "id")));
        struct stat st;
        if (stat(path, &st) != 0)
            fail_msg("notify.queued reported before %s was written", path);
        free(path);
    }
    json_array_append_new(k->events, json_pack("[s, s?, o]", type, run_id, data));
}

static const char *ev_type(sink *k, size_t i)
{
    return json_string_value(json_array_get(json_array_get(k->events, i), 0));
}

static json_t *ev_data(sink *k, size_t i)
{
    return json_array_get(json_array_get(k->events, i), 2);
}

static int setup(void **st)
{
    (void)st;
    snprintf(dir, sizeof dir, "/tmp/irp-test-notify-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(conf, sizeof conf, "%s/irp.conf.lua", dir);
    snprintf(state, sizeof state, "%s/state", dir);
    FILE *f = fopen(conf, "w");
    fprintf(f, "notifiers = {\n"
               "  soc = { type = \"webhook\", url = \"http://127.0.0.1:9/hook\" },\n"
               "  pd = { type = \"pagerduty\", routing_key = secret \"IRP_TEST_PD\", url = \"http://127.0.0.1:9/x\" },\n"
               "  log = { type = \"file\", path = \"%s/notes.jsonl\" },\n"
               "  console = { type = \"stdout\" },\n"
               "}\n",
            dir);
    fclose(f);
    setenv("IRP_TEST_PD", "routing-key-for-tests", 1);
    /* the embedded default is looked up from the working directory */
    unsetenv("IRP_CONFIG");
    char *empty = ut_xasprintf("%s/empty", dir);
    int rc = mkdir(empty, 0700) == 0 && getcwd(cwd, sizeof cwd) && chdir(empty) == 0 ? 0 : -1;
    free(empty);
    return rc;
}

static int teardown(void **st)
{
    (void)st;
    if (chdir(cwd) != 0)
        return -1;
    char *cmd = ut_xasprintf("rm -rf '%s'", dir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

static nt_service *open_service(uv_loop_t *loop, sink *k, int live_in_drill, const char *config)
{
    char err[512];
    int code = -1;
    uv_loop_init(loop);
    k->events = json_array();
    nt_service *s = nt_open(loop, config, state, live_in_drill, on_event, k, &code, err, sizeof err);
    if (!s)
        fail_msg("nt_open: %s", err);
    assert_int_equal(code, 0);
    return s;
}

static void close_service(uv_loop_t *loop, nt_service *s, sink *k)
{
    nt_close(s);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0); /* every handle closed */
    json_decref(k->events);
}

static nt_message message(const char *target, int drill)
{
    nt_message m;
    memset(&m, 0, sizeof m);
    m.target = target;
    m.event = "escalation";
    m.text = "isolate failed";
    m.run_id = "r1";
    m.playbook = "ransomware";
    m.title = "Ransomware";
    m.step = "isolate";
    m.phase = "containment";
    m.severity = "critical";
    m.status = "failed";
    m.operator_name = "alice";
    m.tier = 1;
    m.drill = drill;
    return m;
}

static size_t outbox_size(void)
{
    char err[256];
    ob_outbox *o = ob_open(state, err, sizeof err);
    size_t n = 0;
    char **ids = ob_list(o, &n);
    ob_free_ids(ids, n);
    ob_close(o);
    return n;
}

static void test_drill_is_simulated(void **st)
{
    (void)st;
    uv_loop_t loop;
    sink k;
    nt_service *s = open_service(&loop, &k, 0, conf);
    char err[256];
    nt_message m = message("soc", 1);
    assert_int_equal(nt_submit(s, &m, err, sizeof err), 0);
    assert_int_equal(json_array_size(k.events), 2);
    assert_string_equal(ev_type(&k, 0), "notify.queued");
    assert_string_equal(ev_type(&k, 1), "notify.sent");
    assert_true(json_is_true(json_object_get(ev_data(&k, 1), "simulated")));
    assert_string_equal(json_string_value(json_object_get(ev_data(&k, 0), "target")), "soc");
    assert_int_equal(nt_pending(s), 0);
    assert_int_equal(outbox_size(), 0);
    /* the stdout notifier still prints in a drill, simulated too */
    m = message("console", 1);
    assert_int_equal(nt_submit(s, &m, err, sizeof err), 0);
    assert_int_equal(json_array_size(k.events), 4);
    close_service(&loop, s, &k);

    /* live_in_drill: queued for real, marked drill */
    s = open_service(&loop, &k, 1, conf);
    m = message("soc", 1);
    assert_int_equal(nt_submit(s, &m, err, sizeof err), 0);
    assert_int_equal(json_array_size(k.events), 1);
    assert_null(json_object_get(ev_data(&k, 0), "simulated"));
    assert_int_equal(nt_pending(s), 1);
    assert_int_equal(outbox_size(), 1);
    close_service(&loop, s, &k); /* nothing was attempted: it stays */
    assert_int_equal(outbox_size(), 1);
}

static void test_unknown_target_and_stdout(void **st)
{
    (void)st;
    uv_loop_t loop;
    sink k;
    nt_service *s = open_service(&loop, &k, 0, conf);
    char err[256];
    assert_true(nt_known(s, "soc"));
    assert_false(nt_known(s, "slack-ir"));
    nt_message m = message("sco", 0);
    assert_int_equal(nt_submit(s, &m, err, sizeof err), 0);
    assert_int_equal(json_array_size(k.events), 1);
    assert_string_equal(ev_type(&k, 0), "notify.failed");
    const char *reason = json_string_value(json_object_get(ev_data(&k, 0), "reason"));
    assert_non_null(strstr(reason, "no notifier named 'sco'"));
    assert_non_null(strstr(reason, "did you mean 'soc'?"));
    assert_true(json_is_false(json_object_get(ev_data(&k, 0), "retry")));
    m = message("console", 0);
    assert_int_equal(nt_submit(s, &m, err, sizeof err), 0);
    assert_string_equal(ev_type(&k, 1), "notify.queued");
    assert_string_equal(ev_type(&k, 2), "notify.sent");
    assert_int_equal(outbox_size(), 0);
    close_service(&loop, s, &k);
    /* the embedded default knows every name */
    s = open_service(&loop, &k, 0, NULL);
    assert_true(nt_known(s, "anything"));
    close_service(&loop, s, &k);
}

static void test_file_delivery_and_drain(void **st)
{
    (void)st;
    uv_loop_t loop;
    sink k;
    nt_service *s = open_service(&loop, &k, 0, conf);
    char err[256];
    for (int i = 0; i < 3; i++) {
        nt_message m = message("log", 0);
        assert_int_equal(nt_submit(s, &m, err, sizeof err), 0);
    }
    assert_int_equal(nt_pending(s), 3);
    int64_t t0 = ut_mono_ms();
    assert_int_equal(nt_drain(s, 10000), 0);
    assert_true(ut_mono_ms() - t0 < 2000); /* returns when done, not at the deadline */
    assert_int_equal(outbox_size(), 0);
    size_t sent = 0;
    for (size_t i = 0; i < json_array_size(k.events); i++)
        if (!strcmp(ev_type(&k, i), "notify.sent"))
            sent++;
    assert_int_equal(sent, 3);
    char *path = ut_xasprintf("%s/notes.jsonl", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t je;
        json_t *doc = json_loads(line, 0, &je);
        assert_non_null(doc);
        assert_string_equal(json_string_value(json_object_get(doc, "operator")), "alice");
        json_decref(doc);
        lines++;
    }
    fclose(f);
    free(path);
    assert_int_equal(lines, 3);
    close_service(&loop, s, &k);
}

static const char *entry_action(const char *id)
{
    static char action[32];
    char err[256];
    ob_outbox *o = ob_open(state, err, sizeof err);
    json_t *doc = ob_read(o, id, err, sizeof err);
    snprintf(action, sizeof action, "%s", json_string_value(json_object_get(doc, "action")));
    json_decref(doc);
    ob_close(o);
    return action;
}

static void test_incident_lifecycle_and_pickup(void **st)
{
    (void)st;
    uv_loop_t loop;
    sink k;
    nt_service *s = open_service(&loop, &k, 0, conf);
    char err[256];
    nt_message m = message("pd", 0);
    assert_int_equal(nt_submit(s, &m, err, sizeof err), 0);
    char *incident = ut_xasprintf("%s/outbox/incidents/r1.json", state);
    struct stat sb;
    assert_int_equal(stat(incident, &sb), 0);
    nt_run_event(s, "r1", "acknowledge");
    nt_run_event(s, "r1", "acknowledge"); /* once */
    nt_run_event(s, "other-run", "resolve"); /* nothing paged: nothing sent */
    nt_run_event(s, "r1", "resolve");
    assert_int_not_equal(stat(incident, &sb), 0);
    /* do not let it try the closed port: close before any pass runs */
    close_service(&loop, s, &k);
    char err2[256];
    ob_outbox *o = ob_open(state, err2, sizeof err2);
    size_t n = 0;
    char **ids = ob_list(o, &n);
    ob_close(o);
    assert_int_equal(n, 3);
    assert_string_equal(entry_action(ids[0]), "trigger");
    assert_string_equal(entry_action(ids[1]), "acknowledge");
    assert_string_equal(entry_action(ids[2]), "resolve");
    ob_free_ids(ids, n);

    /* the next service picks them up */
    s = open_service(&loop, &k, 0, conf);
    assert_int_equal(nt_pending(s), 3);
    assert_int_equal(nt_unsendable(s), 0);
    close_service(&loop, s, &k);
    /* ... unless its configuration has no such notifier (never stdout) */
    s = open_service(&loop, &k, 0, NULL);
    assert_int_equal(nt_pending(s), 0);
    assert_int_equal(nt_unsendable(s), 3);
    close_service(&loop, s, &k);
    free(incident);
}

static void test_bad_config_and_state(void **st)
{
    (void)st;
    uv_loop_t loop;
    char err[512];
    int code = 0;
    char *bad = ut_xasprintf("%s/bad.lua", dir);
    FILE *f = fopen(bad, "w");
    fputs("notifiers = { x = { type = \"slak\" } }\n", f);
    fclose(f);
    uv_loop_init(&loop);
    assert_null(nt_open(&loop, bad, state, 0, NULL, NULL, &code, err, sizeof err));
    assert_int_equal(code, 65);
    assert_non_null(strstr(err, "bad.lua:1: notifier 'x' has unknown type 'slak' (did you mean 'slack'?)"));
    assert_null(nt_open(&loop, conf, "/proc/irp-no-such-dir", 0, NULL, NULL, &code, err, sizeof err));
    assert_int_equal(code, 74);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_drill_is_simulated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_target_and_stdout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_delivery_and_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incident_lifecycle_and_pickup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config_and_state, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
