/*
 * test_exec.c — unit tests for child processes (exec.c) on a real libuv
 * loop with real programs: exit codes and signals, stdout/stderr capture
 * and its bound, concurrent jobs, stdin (given, big, absent, empty, not
 * read), programs that cannot start (done still runs once, from the loop),
 * env and cwd. Timeouts, process groups and cancellation are in
 * test_exec_group.c; the shared harness is exec_harness.h.
 * Depends on: cmocka, libuv, exec.h.
 */
#include "exec_harness.h"

/* ---- plain runs --------------------------------------------------------- */

static void test_echo(void **state)
{
    uv_loop_t *loop = *state;
    char *argv[] = {(char *)"echo", (char *)"hi", NULL};
    ex_spec spec = spec_for(argv);
    outcome o = {0};
    ex_job *job = start(loop, &spec, &o);
    assert_non_null(job);
    assert_int_equal(o.calls, 0); /* never from inside ex_start */
    assert_int_equal(ex_running(), 1);
    assert_int_equal(run_loop(loop, 10000), 0);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.from_start, 0);
    assert_int_equal(o.running_in_done, 0);
    assert_int_equal(ex_running(), 0);
    assert_int_equal(o.r.spawned, 1);
    assert_int_equal(o.r.code, 0);
    assert_int_equal(o.r.term_signal, 0);
    assert_int_equal(o.r.timed_out, 0);
    assert_int_equal(o.r.cancelled, 0);
    assert_string_equal(o.out, "hi\n");
    assert_int_equal(o.r.out_len, 3);
    assert_int_equal(o.r.out_total, 3);
    assert_string_equal(o.err, "");
    assert_int_equal(o.r.err_len, 0);
    assert_int_equal(o.r.err_total, 0);
    assert_true(o.terminated);
    assert_true(o.r.duration_ms >= 0 && o.r.duration_ms < 5000);
    outcome_free(&o);
}

static void test_exit_code_and_stderr(void **state)
{
    uv_loop_t *loop = *state;
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)"echo out; echo err >&2; exit 3", NULL};
    ex_spec spec = spec_for(argv);
    outcome o = {0};
    start(loop, &spec, &o);
    assert_int_equal(run_loop(loop, 10000), 0);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.r.spawned, 1);
    assert_int_equal(o.r.code, 3);
    assert_int_equal(o.r.term_signal, 0);
    assert_string_equal(o.out, "out\n");
    assert_string_equal(o.err, "err\n");
    assert_int_equal(o.r.err_total, 4);
    outcome_free(&o);
}

static void test_killed_by_signal(void **state)
{
    uv_loop_t *loop = *state;
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)"kill -USR1 $$", NULL};
    ex_spec spec = spec_for(argv);
    outcome o = {0};
    start(loop, &spec, &o);
    assert_int_equal(run_loop(loop, 10000), 0);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.r.code, -1);
    assert_int_equal(o.r.term_signal, SIGUSR1);
    assert_int_equal(o.r.timed_out, 0);
    assert_int_equal(o.r.cancelled, 0);
    outcome_free(&o);
}

static void test_duration(void **state)
{
    uv_loop_t *loop = *state;
    char *argv[] = {(char *)"sleep", (char *)"0.3", NULL};
    ex_spec spec = spec_for(argv);
    spec.timeout_ms = 5000; /* a timeout that does not fire changes nothing */
    outcome o = {0};
    start(loop, &spec, &o);
    assert_int_equal(run_loop(loop, 10000), 0);
    assert_int_equal(o.r.code, 0);
    assert_int_equal(o.r.timed_out, 0);
    assert_true(o.r.duration_ms >= 290);
    assert_true(o.r.duration_ms < 3000);
    outcome_free(&o);
}

static void test_concurrent_jobs(void **state)
{
    uv_loop_t *loop = *state;
    enum { N = 6 };
    outcome o[N];
    char text[N][16];
    memset(o, 0, sizeof o);
    for (int i = 0; i < N; i++) {
        snprintf(text[i], sizeof text[i], "job-%d", i);
        char *argv[] = {(char *)"sh", (char *)"-c", (char *)"sleep 0.1; printf %s \"$0\"", text[i], NULL};
        ex_spec spec = spec_for(argv);
        start(loop, &spec, &o[i]); /* argv is used by the spawn only */
    }
    assert_int_equal(ex_running(), N);
    assert_int_equal(run_loop(loop, 10000), 0);
    assert_int_equal(ex_running(), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].r.code, 0);
        assert_string_equal(o[i].out, text[i]);
        outcome_free(&o[i]);
    }
}

/* ---- stdin -------------------------------------------------------------- */

static void test_stdin_to_cat(void **state)
{
    uv_loop_t *loop = *state;
    static const char data[] = "line one\nline two\0after a NUL";
    char *argv[] = {(char *)"cat", NULL};
    ex_spec spec = spec_for(argv);
    spec.stdin_data = data;
    spec.stdin_len = sizeof data - 1;
    outcome o = {0};
    start(loop, &spec, &o);
    assert_int_equal(run_loop(loop, 10000), 0);
    assert_int_equal(o.r.code, 0);
    assert_int_equal(o.r.out_len, sizeof data - 1);
    assert_memory_equal(o.out, data, sizeof data - 1);
    outcome_free(&o);
}

/* More than a pipe holds: the write and the reads must interleave. */
static void test_big_stdin_to_cat(void **state)
{
    uv_loop_t *loop = *state;
    size_t n = 3 * MiB + 17;
    char *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)('a' + i % 26);
    char *argv[] = {(char *)"cat", NULL};
    ex_spec spec = spec_for(argv);
    spec.stdin_data = data;
    spec.stdin_len = n;
    spec.capture_limit = 4 * MiB;
    outcome o = {0};
    start(loop, &spec, &o);
    free(data); /* ex_start keeps its own copy */
    data = NULL;
    assert_int_equal(run_loop(loop, 20000), 0);
    assert_int_equal(o.r.code, 0);
    assert_int_equal(o.r.out_len, n);
    assert_int_equal(o.r.out_total, n);
    for (size_t i = 0; i < n; i++)
        if (o.out[i] != (char)('a' + i % 26))
            fail_msg("byte %zu of cat's output differs", i);
    outcome_free(&o);
}

static void test_no_stdin_is_dev_null(void **state)
{
    uv_loop_t *loop = *state;
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)"cat; readlink /proc/self/fd/0", NULL};
    ex_spec spec = spec_for(argv);
    spec.timeout_ms = 5000; /* cat would wait forever on an open stdin */
    outcome o = {0};
    start(loop, &spec, &o);
    assert_int_equal(run_loop(loop, 10000), 0);
    assert_int_equal(o.r.timed_out, 0);
    assert_int_equal(o.r.code, 0);
    assert_string_equal(o.out, "/dev/null\n");
    outcome_free(&o);
}

static void test_empty_stdin(void **state)
{
    uv_loop_t *loop = *state;
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)"cat; echo end", NULL};
    ex_spec spec = spec_for(argv);
    spec.stdin_data = "";
    spec.stdin_len = 0;
    spec.timeout_ms = 5000;
    outcome o = {0};
    start(loop, &spec, &o);
    assert_int_equal(run_loop(loop, 10000), 0);
    assert_int_equal(o.r.timed_out, 0);
    assert_string_equal(o.out, "end\n");
    outcome_free(&o);
}

/* A child that exits without reading a big stdin: the write fails (EPIPE)
 * and the job still ends normally. */
static void test_stdin_not_read(void **state)
{
    uv_loop_t *loop = *state;
    size_t n = 4 * MiB;
    char *data = calloc(1, n);
    assert_non_null(data);
    char *argv[] = {(char *)"true", NULL};
    ex_spec spec = spec_for(argv);
    spec.stdin_data = data;
    spec.stdin_len = n;
    outcome o = {0};
    start(loop, &spec, &o);
    free(data);
    assert_int_equal(run_loop(loop, 10000), 0);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.r.code, 0);
    outcome_free(&o);
}

/* ---- capture bound ------------------------------------------------------ */

static void test_capture_bound(void **state)
{
    uv_loop_t *loop = *state;
    char *argv[] = {(char *)"head", (char *)"-c", (char *)"3000000", (char *)"/dev/zero", NULL};
    ex_spec spec = spec_for(argv);
    spec.capture_limit = MiB;
    outcome o = {0};
    start(loop, &spec, &o);
    assert_int_equal(run_loop(loop, 20000), 0);
    assert_int_equal(o.r.code, 0);
    assert_int_equal(o.r.out_len, MiB);
    assert_int_equal(o.r.out_total, 3000000);
    assert_true(o.terminated);
    for (size_t i = 0; i < MiB; i++)
        if (o.out[i] != 0)
            fail_msg("captured byte %zu is not zero", i);
    outcome_free(&o);
}

static void test_capture_bound_stderr(void **state)
{
    uv_loop_t *loop = *state;
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)"head -c 300000 /dev/zero | tr '\\0' x >&2; echo done", NULL};
    ex_spec spec = spec_for(argv);
    spec.capture_limit = 1000;
    outcome o = {0};
    start(loop, &spec, &o);
    assert_int_equal(run_loop(loop, 20000), 0);
    assert_int_equal(o.r.code, 0);
    assert_int_equal(o.r.err_len, 1000);
    assert_int_equal(o.r.err_total, 300000);
    assert_int_equal(strlen(o.err), 1000);
    assert_string_equal(o.out, "done\n"); /* each stream has its own bound */
    assert_int_equal(o.r.out_total, 5);
    outcome_free(&o);
}

/* ---- programs that cannot start ----------------------------------------- */

static void expect_spawn_failure(uv_loop_t *loop, char **argv, const char *stdin_data,
                                 const char *mentions)
{
    ex_spec spec = spec_for(argv);
    spec.stdin_data = stdin_data;
    spec.stdin_len = stdin_data ? strlen(stdin_data) : 0;
    spec.timeout_ms = 1000;
    outcome o = {0};
    ex_job *job = start(loop, &spec, &o);
    assert_non_null(job);
    assert_int_equal(o.calls, 0); /* not from inside ex_start ... */
    assert_int_equal(run_loop(loop, 10000), 0);
    assert_int_equal(o.calls, 1); /* ... but exactly once, from the loop */
    assert_int_equal(o.from_start, 0);
    assert_int_equal(o.r.spawned, 0);
    assert_int_equal(o.r.code, -1);
    assert_int_equal(o.r.timed_out, 0);
    assert_int_equal(o.r.out_len, 0);
    assert_string_equal(o.out, "");
    assert_string_equal(o.err, "");
    assert_int_equal(ex_running(), 0);
    if (!strstr(o.r.error, mentions))
        fail_msg("error \"%s\" does not mention \"%s\"", o.r.error, mentions);
    outcome_free(&o);
}

static void test_missing_program(void **state)
{
    uv_loop_t *loop = *state;
    char *argv1[] = {(char *)"irp-no-such-program-4711", (char *)"arg", NULL};
    expect_spawn_failure(loop, argv1, NULL, "irp-no-such-program-4711");
    char *argv2[] = {(char *)"/nonexistent/dir/irp-prog", NULL};
    expect_spawn_failure(loop, argv2, "with stdin", "/nonexistent/dir/irp-prog");
}

static void test_not_executable(void **state)
{
    uv_loop_t *loop = *state;
    char dir[] = "/tmp/irp-test-exec-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/script", dir);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "#!/bin/sh\necho no\n", 18), 18);
    close(fd);
    char *argv[] = {path, NULL};
    expect_spawn_failure(loop, argv, NULL, path);
    unlink(path);
    rmdir(dir);
}

/* ---- env and cwd -------------------------------------------------------- */

static void test_env(void **state)
{
    uv_loop_t *loop = *state;
    char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("IRPT_INHERITED", "yes", 1);
    setenv("HOME", "/root-for-test", 1);
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)"echo \"$IRPT_X|${HOME-unset}|${IRPT_INHERITED-unset}\"", NULL};

    /* a given environment replaces the supervisor's */
    char *env[] = {(char *)"IRPT_X=hello world", (char *)"PATH=/usr/bin:/bin", NULL};
    ex_spec spec = spec_for(argv);
    spec.env = env;
    outcome o = {0};
    start(loop, &spec, &o);
    assert_int_equal(run_loop(loop, 10000), 0);
    assert_int_equal(o.r.code, 0);
    assert_string_equal(o.out, "hello world|unset|unset\n");
    outcome_free(&o);

    /* NULL: inherited */
    spec.env = NULL;
    start(loop, &spec, &o);
    assert_int_equal(run_loop(loop, 10000), 0);
    assert_string_equal(o.out, "|/root-for-test|yes\n");
    outcome_free(&o);
    unsetenv("IRPT_INHERITED");
    if (home)
        setenv("HOME", home, 1);
    else
        unsetenv("HOME");
    free(home);
}

static void test_cwd(void **state)
{
    uv_loop_t *loop = *state;
    char dir[] = "/tmp/irp-test-exec-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char real[PATH_MAX], want[PATH_MAX + 2], here[PATH_MAX];
    assert_non_null(realpath(dir, real));
    snprintf(want, sizeof want, "%s\n", real);
    assert_non_null(getcwd(here, sizeof here));

    char *argv[] = {(char *)"pwd", (char *)"-P", NULL};
    ex_spec spec = spec_for(argv);
    spec.cwd = dir;
    outcome o = {0};
    start(loop, &spec, &o);
    assert_int_equal(run_loop(loop, 10000), 0);
    assert_int_equal(o.r.code, 0);
    assert_string_equal(o.out, want);
    outcome_free(&o);

    /* NULL: the supervisor's own */
    char herenl[PATH_MAX + 2], herereal[PATH_MAX];
    assert_non_null(realpath(here, herereal));
    snprintf(herenl, sizeof herenl, "%s\n", herereal);
    spec.cwd = NULL;
    start(loop, &spec, &o);
    assert_int_equal(run_loop(loop, 10000), 0);
    assert_string_equal(o.out, herenl);
    outcome_free(&o);
    rmdir(dir);
}

/* BUG (exec.c, ex_start, error message): when the cwd does not exist,
 * uv_spawn fails with ENOENT and the message blames the program:
 * "cannot run 'pwd': no such file or directory", although pwd exists and
 * the directory is what is missing. A playbook author with a typo in
 * ctx.exec{..., cwd = "/srv/ap"} is sent looking for the wrong thing.
 * Expected: spawned = 0 and an error naming the directory (e.g. "cannot
 * run 'pwd' in /nonexistent/irp-cwd: no such file or directory"); actual:
 * the directory is not mentioned. */
static void test_bad_cwd_named_in_error(void **state)
{
    uv_loop_t *loop = *state;
    char *argv[] = {(char *)"pwd", NULL};
    ex_spec spec = spec_for(argv);
    spec.cwd = "/nonexistent/irp-cwd";
    outcome o = {0};
    start(loop, &spec, &o);
    assert_int_equal(run_loop(loop, 10000), 0);
    assert_int_equal(o.calls, 1);
    int spawned = o.r.spawned;
    char error[sizeof o.r.error];
    memcpy(error, o.r.error, sizeof error);
    outcome_free(&o);
    assert_int_equal(spawned, 0);
    if (!strstr(error, "/nonexistent/irp-cwd"))
        fail_msg("error \"%s\" does not name the missing directory", error);
}

/* BUG (exec.c, on_exit_cb / finish_if_done): the timeout timer is stopped
 * when the direct child exits, and done then waits for EOF on stdout and
 * stderr with no bound. A process that left the group (setsid, as daemons
 * and e.g. `ssh -f` do) but still holds the pipes keeps the job open until
 * it exits: ex_cancel does nothing (the job counts as exited), the step's
 * exec never answers, and the supervisor's loop stays alive. Here the
 * escaped process lives 3 s against a 300 ms timeout. Expected: done within
 * about timeout + the 1 s SIGKILL grace (we allow 2.5 s), with timed_out
 * set or the pipes closed; actual: done after ~3 s, when the escaped
 * process exits on its own (with `sleep 100`, 100 s). */

int main(void)
{
    harness_init();
#define T(f) cmocka_unit_test_setup_teardown(f, setup_loop, teardown_loop)
    const struct CMUnitTest tests[] = {
        T(test_echo),
        T(test_exit_code_and_stderr),
        T(test_killed_by_signal),
        T(test_duration),
        T(test_concurrent_jobs),
        T(test_stdin_to_cat),
        T(test_big_stdin_to_cat),
        T(test_no_stdin_is_dev_null),
        T(test_empty_stdin),
        T(test_stdin_not_read),
        T(test_capture_bound),
        T(test_capture_bound_stderr),
        T(test_missing_program),
        T(test_not_executable),
        T(test_env),
        T(test_cwd),
        T(test_bad_cwd_named_in_error),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
