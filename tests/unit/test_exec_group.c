/*
 * test_exec_group.c — unit tests for how exec.c ends what it started: the
 * timeout that terminates the child's whole process group (SIGTERM, then
 * SIGKILL a second later), background processes left by a command that
 * exited, ex_cancel and ex_cancel_all, and a process that escaped the group
 * (it holds the pipes; it is stopped with a timed-out command). Groups are checked in /proc: afterwards no live
 * (non-zombie) process may remain in the child's group.
 * Depends on: cmocka, libuv, exec.h, exec_harness.h.
 */
#include "exec_harness.h"

/* ---- timeouts and process groups ---------------------------------------- */

static void test_timeout_kills_whole_group(void **state)
{
    uv_loop_t *loop = *state;
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)"echo started; sleep 100 & sleep 100", NULL};
    ex_spec spec = spec_for(argv);
    spec.timeout_ms = 400;
    outcome o = {0};
    probe_result p = {0};
    later l;
    start(loop, &spec, &o);
    call_later(loop, &l, 200, probe, &p);
    assert_int_equal(run_loop(loop, 10000), 0);

    /* while it ran, the child led its own group holding both sleeps */
    assert_true(p.child_pgrp > 0);
    assert_true(p.leader);
    assert_int_equal(p.sleeps, 2);

    assert_int_equal(o.calls, 1);
    assert_int_equal(o.r.spawned, 1);
    assert_int_equal(o.r.timed_out, 1);
    assert_int_equal(o.r.cancelled, 0);
    assert_int_equal(o.r.code, -1);
    assert_int_equal(o.r.term_signal, SIGTERM);
    assert_string_equal(o.out, "started\n"); /* output before the timeout is kept */
    assert_true(o.r.duration_ms >= 380);
    assert_true(o.r.duration_ms < 1300); /* SIGTERM sufficed: no SIGKILL round */

    /* afterwards nothing of the group is left */
    int left = wait_group_empty(p.child_pgrp, 2000);
    if (left)
        fail_msg("%d process(es) of group %d still alive after the timeout", left, p.child_pgrp);
    outcome_free(&o);
}

static void test_timeout_escalates_to_sigkill(void **state)
{
    uv_loop_t *loop = *state;
    /* SIGTERM ignored by the shell and, inherited, by its sleeps */
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)"trap '' TERM; sleep 100 & sleep 100", NULL};
    ex_spec spec = spec_for(argv);
    spec.timeout_ms = 200;
    outcome o = {0};
    probe_result p = {0};
    later l;
    start(loop, &spec, &o);
    call_later(loop, &l, 100, probe, &p);
    assert_int_equal(run_loop(loop, 10000), 0);
    assert_int_equal(p.sleeps, 2);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.r.timed_out, 1);
    assert_int_equal(o.r.code, -1);
    assert_int_equal(o.r.term_signal, SIGKILL);
    assert_true(o.r.duration_ms >= 1150); /* SIGTERM, then SIGKILL a second later */
    assert_true(o.r.duration_ms < 4000);
    int left = wait_group_empty(p.child_pgrp, 2000);
    if (left)
        fail_msg("%d process(es) of group %d still alive after SIGKILL", left, p.child_pgrp);
    outcome_free(&o);
}

/* A command that exits normally but leaves a background process holding
 * stdout: the job still ends, and the process goes with it. */
static void test_background_process_is_killed(void **state)
{
    uv_loop_t *loop = *state;
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)"sleep 100 & echo $!", NULL};
    ex_spec spec = spec_for(argv);
    outcome o = {0};
    start(loop, &spec, &o);
    assert_int_equal(run_loop(loop, 10000), 0);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.r.code, 0);
    assert_int_equal(o.r.timed_out, 0);
    assert_true(o.r.duration_ms < 3000);
    int bg = atoi(o.out);
    assert_true(bg > 0);
    for (int waited = 0; pid_alive(bg) && waited < 2000; waited += 20)
        usleep(20000);
    if (pid_alive(bg))
        fail_msg("background sleep %d survived its command", bg);
    outcome_free(&o);
}

/* ---- cancellation ------------------------------------------------------- */

typedef struct {
    ex_job *job;
    int running_before;
} cancel_ctx;

static void do_cancel(void *arg)
{
    cancel_ctx *c = arg;
    c->running_before = ex_running();
    ex_cancel(c->job);
}

static void test_cancel(void **state)
{
    uv_loop_t *loop = *state;
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)"echo before; sleep 100 & sleep 100", NULL};
    ex_spec spec = spec_for(argv);
    outcome o = {0};
    probe_result p = {0};
    later l1, l2;
    cancel_ctx c = {0};
    c.job = start(loop, &spec, &o);
    call_later(loop, &l1, 100, probe, &p);
    call_later(loop, &l2, 200, do_cancel, &c);
    assert_int_equal(run_loop(loop, 10000), 0);
    assert_int_equal(c.running_before, 1);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.r.cancelled, 1);
    assert_int_equal(o.r.timed_out, 0);
    assert_int_equal(o.r.code, -1);
    assert_int_equal(o.r.term_signal, SIGKILL);
    assert_string_equal(o.out, "before\n");
    assert_true(o.r.duration_ms < 3000);
    assert_int_equal(ex_running(), 0);
    assert_int_equal(p.sleeps, 2);
    int left = wait_group_empty(p.child_pgrp, 2000);
    if (left)
        fail_msg("%d process(es) of group %d still alive after ex_cancel", left, p.child_pgrp);
    outcome_free(&o);
}

static void do_cancel_all(void *arg)
{
    *(int *)arg = ex_running();
    ex_cancel_all();
}

static void test_cancel_all(void **state)
{
    uv_loop_t *loop = *state;
    ex_cancel_all(); /* nothing running: harmless */
    enum { N = 3 };
    outcome o[N];
    memset(o, 0, sizeof o);
    char *argv[] = {(char *)"sleep", (char *)"100", NULL};
    ex_spec spec = spec_for(argv);
    for (int i = 0; i < N; i++)
        start(loop, &spec, &o[i]);
    later l;
    int running = -1;
    call_later(loop, &l, 150, do_cancel_all, &running);
    assert_int_equal(run_loop(loop, 10000), 0);
    assert_int_equal(running, N);
    assert_int_equal(ex_running(), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].r.cancelled, 1);
        assert_int_equal(o[i].r.term_signal, SIGKILL);
        outcome_free(&o[i]);
    }
}

static void test_escaped_process_does_not_hold_job(void **state)
{
    uv_loop_t *loop = *state;
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)"setsid sleep 3 & sleep 100", NULL};
    ex_spec spec = spec_for(argv);
    spec.timeout_ms = 300;
    outcome o = {0};
    start(loop, &spec, &o);
    run_loop(loop, 20000);
    assert_int_equal(o.calls, 1);
    int64_t took = o.r.duration_ms;
    int timed_out = o.r.timed_out;
    outcome_free(&o);
    assert_int_equal(timed_out, 1);
    if (took > 2500)
        fail_msg("job ended %lld ms after start; its timeout was 300 ms", (long long)took);
}

/* A process that left the group (its own session) while the command still
 * ran is stopped with it at the timeout: no child of a timed-out step is
 * left behind. */
static void test_timeout_kills_escaped_process(void **state)
{
    uv_loop_t *loop = *state;
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)"setsid sleep 100 & echo $!; sleep 100", NULL};
    ex_spec spec = spec_for(argv);
    spec.timeout_ms = 300;
    outcome o = {0};
    start(loop, &spec, &o);
    run_loop(loop, 20000);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.r.timed_out, 1);
    int escaped = atoi(o.out);
    outcome_free(&o);
    assert_true(escaped > 0);
    for (int waited = 0; pid_alive(escaped) && waited < 2000; waited += 20)
        usleep(20000);
    if (pid_alive(escaped))
        fail_msg("escaped sleep %d survived its command's timeout", escaped);
}

int main(void)
{
    harness_init();
#define T(f) cmocka_unit_test_setup_teardown(f, setup_loop, teardown_loop)
    const struct CMUnitTest tests[] = {
        T(test_timeout_kills_whole_group),
        T(test_timeout_escalates_to_sigkill),
        T(test_background_process_is_killed),
        T(test_cancel),
        T(test_cancel_all),
        T(test_escaped_process_does_not_hold_job),
        T(test_timeout_kills_escaped_process),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
