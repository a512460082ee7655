/*
 * test_worker.c — the worker over the real protocol: a socketpair, a forked
 * child running wk_main() with its end on fd 3, and this process playing
 * the supervisor (answering "call"s). Covers load/prepare/run/record/
 * restore, ctx calls and their errors, limits seen through "done", and a
 * clean exit on EOF.
 * Depends on: cmocka, worker.h, proto.h, util.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto.h"
#include "util.h"
#include "worker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    pid_t pid;
    int fd;
    pr_reader rd;
    json_t *calls;  /* every call received */
    int exec_code;  /* what exec replies */
    int fail_calls; /* reply ok:false to every call */
    int loading;    /* "loading" messages received */
} sup;

static char dir[64];
static char pb_path[128];

static const char playbook[] =
    "return playbook { id = 'w', title = 'Worker test',\n"
    "  inputs = { host = { required = true } },\n"
    "  steps = {\n"
    "    step 'first' { title = 'First on {{host}}', run = function(ctx)\n"
    "        local r = ctx.exec{ 'edr', 'isolate', ctx.vars.host }\n"
    "        ctx.log('isolated', { host = ctx.vars.host })\n"
    "        print('printed', 2)\n"
    "        KEPT = ctx\n"
    "        return { job = r.stdout, attempt = ctx.attempt, step = ctx.step, run = ctx.run_id, drill = ctx.drill }\n"
    "      end },\n"
    "    step 'second' { title = 'After {{steps.first.result.job}} ({{steps.first.status}})',\n"
    "      when = function(ctx) return ctx.steps.first ~= nil end,\n"
    "      run = function(ctx) return ctx.steps.first.result.job .. '/' .. ctx.steps.first.status end },\n"
    "    step 'manual' { manual = 'Call {{host}}' },\n"
    "    step 'kept' { run = function(ctx) return KEPT.vars.host end },\n"
    "    step 'biglog' { run = function(ctx) ctx.log(string.rep('a', 30 * 1024 * 1024)) return 'ok' end },\n"
    "    step 'fail' { run = function(ctx) ctx.fail('host unreachable') end },\n"
    "    step 'loop' { run = function(ctx) while true do end end },\n"
    "    step 'mem' { run = function(ctx) local t = {} for i = 1, 1e9 do t[i] = { i } end end },\n"
    "    step 'res' { run = function(ctx) return { job = { cb = print } } end },\n"
    "    step 'exec' { run = function(ctx) return ctx.exec{ 'edr', 'isolate', ctx.secret('KEY') } end },\n"
    "    step 'nocheck' { run = function(ctx) return ctx.exec{ 'edr', check = false }.code end },\n"
    "    step 'calls' { run = function(ctx) return { ctx.ask('Q?', { 'a', 'b' }), ctx.confirm('C?'),\n"
    "        ctx.escalate('why'), ctx.artifact('e.txt', 'data').sha256 } end },\n"
    "    step 'badwhen' { when = function(ctx) return ctx.exec{ 'x' } end, run = function() end },\n"
    "    step 'errwhen' { when = function(ctx) error('nope') end, run = function() end },\n"
    "    step 'slowask' { run = function(ctx) return ctx.ask('slow?') end },\n"
    "    step 'askloop' { run = function(ctx) ctx.confirm('slow?') while true do end end },\n"
    "  },\n"
    "}\n";

static int make_dir(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/irp-test-worker-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(pb_path, sizeof pb_path, "%s/pb.lua", dir);
    FILE *fp = fopen(pb_path, "w");
    if (!fp)
        return -1;
    fputs(playbook, fp);
    fclose(fp);
    return 0;
}

static int remove_dir(void **state)
{
    char *cmd = ut_xasprintf("rm -rf '%s'", dir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

static int start(void **state)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(sv[0]);
        if (dup2(sv[1], IRP_WORKER_FD) < 0)
            _exit(99);
        if (sv[1] != IRP_WORKER_FD)
            close(sv[1]);
        exit(wk_main()); /* exit, not _exit: LeakSanitizer checks at exit */
    }
    close(sv[1]);
    sup *s = calloc(1, sizeof *s);
    s->pid = pid;
    s->fd = sv[0];
    pr_reader_init(&s->rd);
    s->calls = json_array();
    *state = s;
    return 0;
}

static int stop(void **state)
{
    sup *s = *state;
    close(s->fd); /* EOF: the worker must exit 0 */
    int status = 0;
    waitpid(s->pid, &status, 0);
    pr_reader_free(&s->rd);
    json_decref(s->calls);
    free(s);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "worker exit status %d\n", status);
        return -1;
    }
    return 0;
}

static json_t *answer(sup *s, const char *fn, json_t *args)
{
    if (strcmp(fn, "exec") == 0)
        return json_pack("{s:i,s:n,s:s,s:s,s:b}", "code", s->exec_code, "signal", "stdout", "job 42",
                         "stderr", "warming up\nerror: host not found\n", "timed_out", 0);
    const char *q = json_string_value(json_object_get(args, "question"));
    if (q && strcmp(q, "slow?") == 0)
        usleep(500 * 1000); /* a person thinking longer than the step's timeout */
    if (strcmp(fn, "ask") == 0)
        return json_pack("{s:s}", "answer", "b");
    if (strcmp(fn, "confirm") == 0)
        return json_pack("{s:b}", "answer", 1);
    if (strcmp(fn, "escalate") == 0)
        return json_pack("{s:i}", "tier", 2);
    if (strcmp(fn, "artifact") == 0)
        return json_pack("{s:s,s:s}", "sha256", "abc", "path", "/x");
    return json_object();
}

/* Sends req (stolen), answers calls, returns the final reply. */
static json_t *request(sup *s, json_t *req)
{
    assert_int_equal(pr_send(s->fd, req), 0);
    json_decref(req);
    for (;;) {
        json_t *msg = NULL;
        char err[256];
        int rc = pr_recv_blocking(s->fd, &s->rd, &msg, err, sizeof err);
        if (rc <= 0)
            fail_msg("worker closed or sent garbage: %s", rc < 0 ? err : "EOF");
        if (strcmp(pr_str(msg, "t"), "loading") == 0) { /* a load names each file: no reply */
            s->loading++;
            json_decref(msg);
            continue;
        }
        if (strcmp(pr_str(msg, "t"), "call") != 0)
            return msg;
        json_array_append(s->calls, msg);
        json_t *reply;
        if (s->fail_calls)
            reply = json_pack("{s:s,s:I,s:b,s:s}", "t", "reply", "id", (json_int_t)pr_int(msg, "id", 0),
                              "ok", 0, "error", "the supervisor says no");
        else
            reply = json_pack("{s:s,s:I,s:b,s:o}", "t", "reply", "id", (json_int_t)pr_int(msg, "id", 0),
                              "ok", 1, "value",
                              answer(s, pr_str(msg, "fn"), json_object_get(msg, "args")));
        assert_int_equal(pr_send(s->fd, reply), 0);
        json_decref(reply);
        json_decref(msg);
    }
}

static void load_ok(sup *s, int memory)
{
    int before = s->loading;
    json_t *r = request(s, json_pack("{s:s,s:s,s:{s:s},s:b,s:s,s:i}", "t", "load", "file", pb_path,
                                     "vars", "host", "web-07", "drill", 1, "run_id", "run-1",
                                     "memory", memory));
    if (strcmp(pr_str(r, "t"), "loaded") != 0) {
        char *t = json_dumps(r, 0);
        fail_msg("load: %s", t);
    }
    json_decref(r);
    assert_int_equal(s->loading, before + 1); /* the playbook was announced */
}

static json_t *run_step(sup *s, const char *id, int timeout_ms)
{
    return request(s, json_pack("{s:s,s:s,s:i,s:i}", "t", "run", "step", id, "attempt", 1,
                                "timeout_ms", timeout_ms));
}

static void test_flow(void **state)
{
    sup *s = *state;
    json_t *r = request(s, json_pack("{s:s,s:s}", "t", "prepare", "step", "first"));
    assert_string_equal(pr_str(r, "t"), "error"); /* nothing loaded yet */
    json_decref(r);
    load_ok(s, 32 << 20);

    r = request(s, json_pack("{s:s,s:s}", "t", "prepare", "step", "second"));
    assert_string_equal(pr_str(r, "t"), "prepared");
    assert_true(pr_bool(r, "skip", 0));
    json_decref(r);

    r = run_step(s, "first", 5000);
    assert_string_equal(pr_str(r, "t"), "done");
    assert_true(pr_bool(r, "ok", 0));
    json_t *res = json_object_get(r, "result");
    assert_string_equal(pr_str(res, "job"), "job 42");
    assert_string_equal(pr_str(res, "step"), "first");
    assert_string_equal(pr_str(res, "run"), "run-1");
    assert_true(pr_bool(res, "drill", 0));
    assert_int_equal(pr_int(res, "attempt", 0), 1);
    json_decref(r);
    assert_int_equal(json_array_size(s->calls), 3);
    json_t *exec = json_object_get(json_array_get(s->calls, 0), "args");
    assert_string_equal(json_string_value(json_array_get(json_object_get(exec, "argv"), 2)), "web-07");
    assert_int_equal(pr_int(exec, "timeout_ms", 0) > 4000, 1);
    json_t *print = json_object_get(json_array_get(s->calls, 2), "args");
    assert_string_equal(pr_str(print, "msg"), "printed\t2");

    r = request(s, json_pack("{s:s,s:s,s:s,s:{s:s}}", "t", "record", "step", "first", "status",
                             "succeeded", "result", "job", "job 42"));
    assert_string_equal(pr_str(r, "t"), "ok");
    json_decref(r);
    r = request(s, json_pack("{s:s,s:s}", "t", "prepare", "step", "second"));
    assert_false(pr_bool(r, "skip", 1));
    assert_string_equal(pr_str(r, "title"), "After job 42 (succeeded)");
    assert_true(json_is_null(json_object_get(r, "manual")));
    json_decref(r);
    r = run_step(s, "second", 0);
    assert_string_equal(pr_str(r, "result"), "job 42/succeeded");
    json_decref(r);

    r = request(s, json_pack("{s:s,s:s}", "t", "prepare", "step", "manual"));
    assert_string_equal(pr_str(r, "manual"), "Call web-07");
    json_decref(r);
    r = run_step(s, "manual", 0);
    assert_string_equal(pr_str(r, "t"), "error");
    json_decref(r);

    /* restore replaces what ctx.steps shows */
    r = request(s, json_pack("{s:s,s:{s:{s:s,s:s}}}", "t", "restore", "steps", "first", "status",
                             "failed", "result", "other"));
    assert_string_equal(pr_str(r, "t"), "ok");
    json_decref(r);
    r = run_step(s, "second", 0);
    assert_true(pr_bool(r, "ok", 0) == 0); /* result is a string now: indexing .job fails */
    assert_string_equal(pr_str(r, "kind"), "error");
    json_decref(r);

    r = request(s, json_pack("{s:s}", "t", "bogus"));
    assert_string_equal(pr_str(r, "t"), "error");
    assert_string_equal(pr_str(r, "error"), "unknown request \"bogus\"");
    json_decref(r);
    /* a line that is not JSON gets an error and the worker goes on */
    assert_int_equal(ut_write_all(s->fd, "not json\n", 9), 0);
    json_t *msg = NULL;
    char err[128];
    assert_int_equal(pr_recv_blocking(s->fd, &s->rd, &msg, err, sizeof err), 1);
    assert_string_equal(pr_str(msg, "t"), "error");
    json_decref(msg);
}

static void expect_done_failure(sup *s, const char *id, int timeout, const char *kind, const char *error)
{
    json_t *r = run_step(s, id, timeout);
    assert_string_equal(pr_str(r, "t"), "done");
    assert_false(pr_bool(r, "ok", 1));
    assert_string_equal(pr_str(r, "kind"), kind);
    if (!strstr(pr_str(r, "error"), error))
        fail_msg("%s: error \"%s\" lacks \"%s\"", id, pr_str(r, "error"), error);
    json_decref(r);
}

static void test_failures(void **state)
{
    sup *s = *state;
    load_ok(s, 32 << 20);
    json_decref(run_step(s, "first", 0));
    expect_done_failure(s, "kept", 0, "error", "ctx used after its step ended");
    expect_done_failure(s, "fail", 0, "fail", "host unreachable");
    int64_t t0 = ut_mono_ms();
    expect_done_failure(s, "loop", 200, "timeout", "step timed out after 200ms");
    assert_true(ut_mono_ms() - t0 < 400);
    expect_done_failure(s, "mem", 0, "memory", "memory limit of 32 MiB reached");
    expect_done_failure(s, "res", 0, "result", "result.job.cb: a function cannot be recorded");
    s->exec_code = 3;
    expect_done_failure(s, "exec", 0, "error",
                        "exec 'edr isolate <secret KEY>' exited with code 3: error: host not found");
    json_t *r = run_step(s, "nocheck", 0);
    assert_int_equal(json_integer_value(json_object_get(r, "result")), 3);
    json_decref(r);
    s->exec_code = 0;
    /* the state still works after a timeout and a memory error */
    r = run_step(s, "calls", 0);
    assert_true(pr_bool(r, "ok", 0));
    json_t *res = json_object_get(r, "result");
    assert_string_equal(json_string_value(json_array_get(res, 0)), "b");
    assert_true(json_is_true(json_array_get(res, 1)));
    assert_int_equal(json_integer_value(json_array_get(res, 2)), 2);
    assert_string_equal(json_string_value(json_array_get(res, 3)), "abc");
    json_decref(r);
    s->fail_calls = 1;
    expect_done_failure(s, "calls", 0, "error", "the supervisor says no");
    s->fail_calls = 0;
    /* when conditions */
    r = request(s, json_pack("{s:s,s:s}", "t", "prepare", "step", "badwhen"));
    assert_string_equal(pr_str(r, "t"), "error");
    assert_non_null(strstr(pr_str(r, "error"), "ctx.exec cannot be used in a when condition"));
    json_decref(r);
    /* the soft deadline does not run while a person answers */
    r = run_step(s, "slowask", 300);
    assert_true(pr_bool(r, "ok", 0));
    assert_string_equal(pr_str(r, "result"), "b");
    json_decref(r);
    t0 = ut_mono_ms();
    expect_done_failure(s, "askloop", 300, "timeout", "step timed out after 300ms");
    assert_true(ut_mono_ms() - t0 < 1000);
    r = request(s, json_pack("{s:s,s:s}", "t", "prepare", "step", "errwhen"));
    assert_string_equal(pr_str(r, "t"), "error");
    assert_non_null(strstr(pr_str(r, "error"), "pb.lua:26: nope"));
    json_decref(r);
}

static void test_big_log(void **state)
{
    sup *s = *state;
    load_ok(s, 256 << 20);
    json_t *r = run_step(s, "biglog", 0);
    assert_true(pr_bool(r, "ok", 0));
    json_decref(r);
    json_t *args = json_object_get(json_array_get(s->calls, json_array_size(s->calls) - 1), "args");
    assert_int_equal(strlen(pr_str(args, "msg")), 64 * 1024);
    assert_true(pr_bool(args, "truncated", 0));
}

static void test_invalid_load(void **state)
{
    sup *s = *state;
    json_t *r = request(s, json_pack("{s:s,s:s}", "t", "load", "file", pb_path)); /* no host */
    assert_string_equal(pr_str(r, "t"), "invalid");
    json_t *e = json_array_get(json_object_get(r, "errors"), 0);
    assert_string_equal(pr_str(e, "msg"), "input 'host' is required (pass -v host=...)");
    assert_string_equal(pr_str(e, "file"), pb_path);
    assert_int_equal(pr_int(e, "line", 0), 1);
    json_decref(r);
    r = request(s, json_pack("{s:s,s:s}", "t", "run", "step", "first"));
    assert_string_equal(pr_str(r, "t"), "error");
    json_decref(r);
    r = request(s, json_pack("{s:s,s:s,s:b}", "t", "load", "file", pb_path, "check", 1));
    assert_string_equal(pr_str(r, "t"), "loaded");
    json_decref(r);
}

/* A load message's "plugins" dirs reach require; each load is a fresh
 * state, so a plugin's top-level code runs again after a reload. */
static void test_plugins(void **state)
{
    sup *s = *state;
    char *pdir = ut_xasprintf("%s/plug", dir), *plug = ut_xasprintf("%s/plug/wp.lua", dir),
         *pb = ut_xasprintf("%s/pp.lua", dir);
    mkdir(pdir, 0755);
    FILE *fp = fopen(plug, "w");
    fputs("LOADS = (LOADS or 0) + 1\n"
          "return { isolate = function(o) return step(o.id) { drill = { stdout = 'x' },\n"
          "  run = function(ctx) return { out = ctx.exec{ 'edr', o.host }.stdout, loads = LOADS } end } end }\n",
          fp);
    fclose(fp);
    fp = fopen(pb, "w");
    fputs("local wp = require 'wp'\nlocal again = require 'wp'\n"
          "return playbook { id = 'p', title = 'P', steps = { wp.isolate { id = 'iso', host = 'web-07' } } }\n",
          fp);
    fclose(fp);
    for (int round = 0; round < 2; round++) {
        json_t *r = request(s, json_pack("{s:s,s:s,s:[s],s:b}", "t", "load", "file", pb, "plugins", pdir,
                                         "drill", 1));
        assert_string_equal(pr_str(r, "t"), "loaded");
        json_t *st = json_array_get(json_object_get(json_object_get(r, "outline"), "steps"), 0);
        assert_string_equal(pr_str(st, "file"), pb);
        assert_int_equal(pr_int(st, "line", 0), 3);
        json_decref(r);
        r = run_step(s, "iso", 2000);
        assert_true(pr_bool(r, "ok", 0));
        json_t *res = json_object_get(r, "result");
        assert_string_equal(pr_str(res, "out"), "job 42");
        assert_int_equal(pr_int(res, "loads", 0), 1);
        json_decref(r);
    }
    /* without the dir, the plugin is not found: an error at the require line */
    json_t *r = request(s, json_pack("{s:s,s:s}", "t", "load", "file", pb));
    assert_string_equal(pr_str(r, "t"), "invalid");
    json_t *e = json_array_get(json_object_get(r, "errors"), 0);
    assert_int_equal(pr_int(e, "line", 0), 1);
    assert_non_null(strstr(pr_str(e, "msg"), "require: plugin 'wp' not found"));
    json_decref(r);
    free(pdir);
    free(plug);
    free(pb);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flow, start, stop),
        cmocka_unit_test_setup_teardown(test_failures, start, stop),
        cmocka_unit_test_setup_teardown(test_big_log, start, stop),
        cmocka_unit_test_setup_teardown(test_invalid_load, start, stop),
        cmocka_unit_test_setup_teardown(test_plugins, start, stop),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
