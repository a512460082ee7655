/*
 * test_resume.c — rebuilding a run from its journal (resume.c rs_load) on
 * journals written with the real journal API into <tmp>/runs/<id>/:
 * finished runs refused, the step in flight, the last outcome winning after
 * a jump back, the escalation tier reached, the inputs and hash recorded by
 * run.started, and runs that never started.
 * Depends on: cmocka, resume.h, journal.h, util.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "journal.h"
#include "proto.h"
#include "resume.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char state_dir[64];

static int setup(void **state)
{
    snprintf(state_dir, sizeof state_dir, "/tmp/irp-test-resume-XXXXXX");
    if (!mkdtemp(state_dir))
        return -1;
    char *runs = ut_xasprintf("%s/runs", state_dir);
    int rc = mkdir(runs, 0700);
    free(runs);
    return rc;
}

static int teardown(void **state)
{
    char *cmd = ut_xasprintf("rm -rf '%s'", state_dir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* run.started data as the engine writes it (engine_record.c). */
static json_t *started_data(void)
{
    return json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:[s,s,s]}, s:{s:s, s:s}, s:s, s:s, s:i, s:b, s:I,"
                     " s:[s], s:[s,s]}",
                     "playbook", "id", "pb", "title", "PB", "version", "1", "file", "pb.lua", "path",
                     "/abs/pb.lua", "sha256", SHA, "steps", "a", "b", "c", "inputs", "host", "web-1", "ticket",
                     "INC-9", "operator", "tester", "host", "box", "pid", 1, "yes", 0, "memory",
                     (json_int_t)(32 << 20), "attach", "/abs/extra.lua", "plugins", "/p/one", "/p/two");
}

/* Creates <state>/runs/<id>/ and its journal with run.started. */
static jr_journal *new_run(const char *id, const char *mode, json_t *data)
{
    char *run_dir = ut_xasprintf("%s/runs/%s", state_dir, id);
    assert_int_equal(mkdir(run_dir, 0700), 0);
    char err[256] = "";
    jr_journal *j = jr_create(run_dir, id, mode, data ? data : started_data(), err, sizeof err);
    if (!j)
        fprintf(stderr, "jr_create: %s\n", err);
    assert_non_null(j);
    free(run_dir);
    return j;
}

static void add(jr_journal *j, const char *type, const char *step, json_t *data)
{
    assert_true(jr_append(j, type, step, "tester", data) > 0);
}

static rs_context *load(const char *id, eng_options *o, int *code, char *err, size_t err_size)
{
    memset(o, 0, sizeof *o);
    *code = -12345;
    err[0] = '\0';
    return rs_load(state_dir, id, o, code, err, err_size);
}

static const char *status_of(const eng_options *o, const char *step)
{
    return pr_str(json_object_get(o->resume_state, step), "status");
}

static void test_finished_refused(void **state)
{
    jr_journal *j = new_run("finished", "live", NULL);
    add(j, "step.started", "a", json_pack("{s:i}", "attempt", 1));
    add(j, "step.succeeded", "a", json_pack("{s:i}", "result", 1));
    add(j, "run.finished", NULL, json_pack("{s:s}", "status", "succeeded"));
    assert_int_equal(jr_close(j), 0);
    eng_options o;
    int code;
    char err[512];
    rs_context *c = load("finished", &o, &code, err, sizeof err);
    assert_null(c);
    assert_int_equal(code, 64);
    assert_int_equal(code, IRP_EXIT_USAGE);
    assert_non_null(strstr(err, "finished"));
    assert_non_null(strstr(err, "already finished (succeeded)"));
    assert_non_null(strstr(err, "nothing to resume"));
}

static void test_in_flight(void **state)
{
    jr_journal *j = new_run("inflight", "live", NULL);
    add(j, "step.started", "a", json_pack("{s:i}", "attempt", 1));
    add(j, "step.log", "a", json_pack("{s:s}", "msg", "hello"));
    add(j, "step.succeeded", "a", json_pack("{s:{s:s}}", "result", "job", "j-1"));
    add(j, "step.started", "b", json_pack("{s:i}", "attempt", 1));
    add(j, "step.exec", "b", json_pack("{s:i}", "code", 0));
    long long last = jr_last_seq(j);
    assert_int_equal(jr_close(j), 0);
    eng_options o;
    int code;
    char err[512];
    rs_context *c = load("inflight", &o, &code, err, sizeof err);
    if (!c)
        fprintf(stderr, "rs_load: %s\n", err);
    assert_non_null(c);
    assert_non_null(o.in_flight);
    assert_string_equal(o.in_flight, "b");
    assert_string_equal(status_of(&o, "a"), "succeeded");
    assert_string_equal(pr_str(json_object_get(json_object_get(o.resume_state, "a"), "result"), "job"), "j-1");
    assert_null(json_object_get(o.resume_state, "b")); /* in flight: not a finished step */
    assert_null(json_object_get(o.resume_state, "c"));
    assert_int_equal(json_object_size(o.resume_state), 1);
    assert_int_equal(o.resume_last_seq, last);
    assert_int_equal(o.resume_tier, 0);
    assert_true(o.resume_elapsed_ms >= 0);
    assert_string_equal(o.resume, "inflight");
    assert_string_equal(o.run_id, "inflight");
    assert_int_equal(o.drill, 0);
    rs_free(c);
}

static void test_no_in_flight(void **state)
{
    jr_journal *j = new_run("between", "live", NULL);
    add(j, "step.started", "a", NULL);
    add(j, "step.failed", "a", json_pack("{s:s}", "error", "boom"));
    add(j, "step.skipped", "b", json_pack("{s:s}", "reason", "when false"));
    assert_int_equal(jr_close(j), 0);
    eng_options o;
    int code;
    char err[512];
    rs_context *c = load("between", &o, &code, err, sizeof err);
    assert_non_null(c);
    assert_null(o.in_flight);
    assert_string_equal(status_of(&o, "a"), "failed");
    assert_true(json_is_null(json_object_get(json_object_get(o.resume_state, "a"), "result")));
    assert_string_equal(status_of(&o, "b"), "skipped");
    rs_free(c);
}

static void test_last_outcome_wins(void **state)
{
    /* a succeeds, b fails and jumps back to a (on_failure = "a"), which
     * fails this time; then b runs again and succeeds; c starts. */
    jr_journal *j = new_run("jumpback", "live", NULL);
    add(j, "step.started", "a", NULL);
    add(j, "step.succeeded", "a", json_pack("{s:i}", "result", 1));
    add(j, "step.started", "b", NULL);
    add(j, "step.failed", "b", json_pack("{s:s}", "error", "x"));
    add(j, "step.started", "a", NULL);
    add(j, "step.failed", "a", json_pack("{s:s}", "error", "second time"));
    add(j, "step.started", "b", NULL);
    add(j, "step.succeeded", "b", json_pack("{s:s}", "result", "fine"));
    add(j, "step.started", "c", NULL);
    assert_int_equal(jr_close(j), 0);
    eng_options o;
    int code;
    char err[512];
    rs_context *c = load("jumpback", &o, &code, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(status_of(&o, "a"), "failed");
    assert_true(json_is_null(json_object_get(json_object_get(o.resume_state, "a"), "result")));
    assert_string_equal(status_of(&o, "b"), "succeeded");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o.resume_state, "b"), "result")),
                        "fine");
    assert_string_equal(o.in_flight, "c");
    rs_free(c);
}

static void test_jump_back_in_flight(void **state)
{
    /* a succeeded earlier, then was started again (b's on_failure jumped back
     * to it) and never finished: it is in flight (its old result does not
     * stand), and b's earlier outcome is forgotten too, as walk_steps does:
     * b runs again after a. */
    jr_journal *j = new_run("againflight", "live", NULL);
    add(j, "step.started", "a", NULL);
    add(j, "step.succeeded", "a", json_pack("{s:i}", "result", 1));
    add(j, "step.started", "b", NULL);
    add(j, "step.failed", "b", NULL);
    add(j, "step.started", "a", NULL);
    assert_int_equal(jr_close(j), 0);
    eng_options o;
    int code;
    char err[512];
    rs_context *c = load("againflight", &o, &code, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(o.in_flight, "a");
    assert_null(json_object_get(o.resume_state, "a"));
    assert_null(json_object_get(o.resume_state, "b"));
    assert_null(o.resume_failed);
    rs_free(c);
}

static void test_failure_pending_on_failure(void **state)
{
    /* b failed and nothing followed: its on_failure has yet to act. */
    jr_journal *j = new_run("pending", "live", NULL);
    add(j, "step.started", "a", NULL);
    add(j, "step.succeeded", "a", json_pack("{s:i}", "result", 1));
    add(j, "step.started", "b", NULL);
    add(j, "step.failed", "b", json_pack("{s:s}", "reason", "boom"));
    add(j, "escalation.triggered", "b", json_pack("{s:i, s:[], s:s}", "tier", 1, "targets", "reason", "b"));
    add(j, "run.resumed", NULL, NULL);
    assert_int_equal(jr_close(j), 0);
    eng_options o;
    int code;
    char err[512];
    rs_context *c = load("pending", &o, &code, err, sizeof err);
    assert_non_null(c);
    assert_null(o.in_flight);
    assert_string_equal(status_of(&o, "b"), "failed");
    assert_string_equal(o.resume_failed, "b");
    assert_string_equal(o.resume_failed_reason, "boom");
    assert_int_equal(o.resume_failed_escalated, 1);
    rs_free(c);

    /* A forward jump cut short is still pending; the next step's start ends it. */
    j = new_run("jumping", "live", NULL);
    add(j, "step.started", "a", NULL);
    add(j, "step.failed", "a", json_pack("{s:s}", "reason", "x"));
    add(j, "step.skipped", "b", json_pack("{s:s, s:s}", "reason", "jumped", "jumped_from", "a"));
    assert_int_equal(jr_close(j), 0);
    c = load("jumping", &o, &code, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(o.resume_failed, "a");
    assert_int_equal(o.resume_failed_escalated, 0);
    rs_free(c);
    char *run_dir = ut_xasprintf("%s/runs/jumping", state_dir);
    j = jr_open_append(run_dir, err, sizeof err);
    free(run_dir);
    assert_non_null(j);
    add(j, "step.started", "c", NULL);
    assert_int_equal(jr_close(j), 0);
    c = load("jumping", &o, &code, err, sizeof err);
    assert_non_null(c);
    assert_null(o.resume_failed);
    assert_string_equal(o.in_flight, "c");
    rs_free(c);
}

static void test_escalation_tier_max(void **state)
{
    jr_journal *j = new_run("escalated", "live", NULL);
    add(j, "escalation.triggered", NULL, json_pack("{s:i, s:[], s:s}", "tier", 1, "targets", "reason", "slow"));
    add(j, "step.started", "a", NULL);
    add(j, "escalation.triggered", "a", json_pack("{s:i, s:[], s:s}", "tier", 3, "targets", "reason", "worse"));
    add(j, "escalation.triggered", "a", json_pack("{s:i, s:[], s:s}", "tier", 2, "targets", "reason", "manual"));
    add(j, "escalation.triggered", NULL, json_pack("{s:i, s:[], s:s}", "tier", 0, "targets", "reason", "none"));
    assert_int_equal(jr_close(j), 0);
    eng_options o;
    int code;
    char err[512];
    rs_context *c = load("escalated", &o, &code, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(o.resume_tier, 3);
    assert_string_equal(o.in_flight, "a");
    rs_free(c);
}

static void test_started_fields(void **state)
{
    json_t *data = started_data();
    json_object_set_new(data, "speed", json_real(60.0));
    jr_journal *j = new_run("fields", "drill", data);
    assert_int_equal(jr_close(j), 0);
    eng_options o;
    int code;
    char err[512];
    rs_context *c = load("fields", &o, &code, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(o.playbook, "/abs/pb.lua"); /* the absolute path wins over "file" */
    assert_string_equal(o.resume_sha256, SHA);
    assert_int_equal(json_object_size(o.vars), 2);
    assert_string_equal(pr_str(o.vars, "host"), "web-1");
    assert_string_equal(pr_str(o.vars, "ticket"), "INC-9");
    assert_int_equal(json_array_size(o.attach), 1);
    assert_string_equal(json_string_value(json_array_get(o.attach, 0)), "/abs/extra.lua");
    assert_int_equal(json_array_size(o.plugins), 2);
    assert_string_equal(json_string_value(json_array_get(o.plugins, 1)), "/p/two");
    assert_int_equal(json_array_size(o.resume_steps), 3);
    assert_string_equal(json_string_value(json_array_get(o.resume_steps, 2)), "c");
    assert_int_equal(o.memory, 32 << 20);
    assert_int_equal(o.drill, 1);
    assert_true(o.speed > 59.9 && o.speed < 60.1);
    assert_null(o.in_flight);
    assert_int_equal(json_object_size(o.resume_state), 0);
    assert_int_equal(o.resume_last_seq, 1);
    rs_free(c);
}

static void test_started_minimal(void **state)
{
    /* An older run.started without attach/plugins/inputs/memory: defaults. */
    json_t *data = json_pack("{s:{s:s, s:s}}", "playbook", "file", "rel/pb.lua", "sha256", SHA);
    jr_journal *j = new_run("minimal", "live", data);
    assert_int_equal(jr_close(j), 0);
    eng_options o;
    int code;
    char err[512];
    rs_context *c = load("minimal", &o, &code, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(o.playbook, "rel/pb.lua");
    assert_true(json_is_object(o.vars));
    assert_int_equal(json_object_size(o.vars), 0);
    assert_true(json_is_array(o.attach));
    assert_int_equal(json_array_size(o.attach), 0);
    assert_true(json_is_array(o.plugins));
    assert_int_equal(o.memory, 256LL << 20);
    assert_true(o.speed == 1);
    assert_int_equal(o.drill, 0);
    rs_free(c);
}

static void test_never_started(void **state)
{
    eng_options o;
    int code;
    char err[512];
    rs_context *c = load("nosuchrun", &o, &code, err, sizeof err);
    assert_null(c);
    assert_int_equal(code, IRP_EXIT_DATAERR);
    assert_non_null(strstr(err, "no run nosuchrun in "));
    assert_null(strstr(err, "journal.jsonl")); /* names no file that does not exist */

    /* A run directory without a journal. */
    char *bare = ut_xasprintf("%s/runs/bare", state_dir);
    assert_int_equal(mkdir(bare, 0700), 0);
    c = load("bare", &o, &code, err, sizeof err);
    assert_null(c);
    assert_int_equal(code, IRP_EXIT_DATAERR);
    assert_non_null(strstr(err, "never started"));
    assert_non_null(strstr(err, bare));
    free(bare);

    /* A run directory with an empty journal (crash before run.started). */
    char *run_dir = ut_xasprintf("%s/runs/empty", state_dir);
    assert_int_equal(mkdir(run_dir, 0700), 0);
    char *path = ut_xasprintf("%s/journal.jsonl", run_dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    c = load("empty", &o, &code, err, sizeof err);
    assert_null(c);
    assert_int_equal(code, IRP_EXIT_DATAERR);
    assert_non_null(strstr(err, "never started"));
    free(path);
    free(run_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finished_refused),
        cmocka_unit_test(test_in_flight),
        cmocka_unit_test(test_no_in_flight),
        cmocka_unit_test(test_last_outcome_wins),
        cmocka_unit_test(test_jump_back_in_flight),
        cmocka_unit_test(test_failure_pending_on_failure),
        cmocka_unit_test(test_escalation_tier_max),
        cmocka_unit_test(test_started_fields),
        cmocka_unit_test(test_started_minimal),
        cmocka_unit_test(test_never_started),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
