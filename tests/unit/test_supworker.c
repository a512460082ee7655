/*
 * test_supworker.c — the supervisor's handle on the worker (supworker.c)
 * with a real libuv loop and a real worker process. sw_start executes
 * /proc/self/exe "__worker", which is this test binary, so main() serves as
 * the worker when called that way. Covers load answers (loaded, invalid),
 * calls and their replies, the hard deadline killing a worker stuck in C
 * code, kill + restart (generation), stale replies dropped, and a loop that
 * closes cleanly after sw_destroy.
 * Depends on: cmocka, libuv, supworker.h, worker.h, proto.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto.h"
#include "supworker.h"
#include "util.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

static char dir[64];
static char good_path[128], bad_path[128], stuck_path[128], ask_path[128];

static const char good_pb[] =
    "return playbook { id = 'tiny', title = 'Tiny',\n"
    "  steps = {\n"
    "    step 'one' { title = 'One', run = function(ctx) return 42 end },\n"
    "  },\n"
    "}\n";
/* Line 3 has a syntax error. */
static const char bad_pb[] =
    "return playbook { id = 'bad', title = 'Bad',\n"
    "  steps = {\n"
    "    step 'one' { run = function(ctx) return = 1 end },\n"
    "  },\n"
    "}\n";
/* Backtracking inside one C call: no Lua hook runs, only SIGKILL stops it. */
static const char stuck_pb[] = "string.find(string.rep('a', 40000), '.-.-.-.-.-b')\n"
                               "return playbook { id = 'stuck', title = 'Stuck', steps = {} }\n";
static const char ask_pb[] =
    "return playbook { id = 'ask', title = 'Ask',\n"
    "  steps = {\n"
    "    step 'c' { run = function(ctx) return ctx.confirm('go?') end },\n"
    "  },\n"
    "}\n";

static int write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (!fp)
        return -1;
    fputs(text, fp);
    return fclose(fp);
}

static int setup_dir(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/irp-test-supworker-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(good_path, sizeof good_path, "%s/good.lua", dir);
    snprintf(bad_path, sizeof bad_path, "%s/bad.lua", dir);
    snprintf(stuck_path, sizeof stuck_path, "%s/stuck.lua", dir);
    snprintf(ask_path, sizeof ask_path, "%s/ask.lua", dir);
    if (write_file(good_path, good_pb) || write_file(bad_path, bad_pb) || write_file(stuck_path, stuck_pb) ||
        write_file(ask_path, ask_pb))
        return -1;
    return 0;
}

static int teardown_dir(void **state)
{
    unlink(good_path);
    unlink(bad_path);
    unlink(stuck_path);
    unlink(ask_path);
    rmdir(dir);
    return 0;
}

static json_t *load_req(const char *path, int check)
{
    return json_pack("{s:s, s:s, s:{}, s:[], s:[], s:b, s:b, s:I, s:I, s:n}", "t", "load", "file", path, "vars",
                     "attach", "plugins", "drill", 0, "check", check, "memory", (json_int_t)67108864,
                     "timeout_ms", (json_int_t)5000, "run_id");
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends a load of path and returns the answer (asserts the request worked). */
static json_t *load(sw_worker *w, const char *path)
{
    json_t *req = load_req(path, 1);
    json_t *answer = NULL;
    int rc = sw_request(w, req, 10000, NULL, &answer);
    json_decref(req);
    if (rc != 0)
        fprintf(stderr, "sw_request: %d (%s)\n", rc, w->dead_reason);
    assert_int_equal(rc, 0);
    assert_non_null(answer);
    return answer;
}

static void start(sw_worker *w, uv_loop_t *loop, sw_call_fn fn, void *data)
{
    char err[256] = "";
    int rc = sw_start(w, loop, fn, data, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "sw_start: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(w->running, 1);
}

static void finish(sw_worker *w, uv_loop_t *loop)
{
    sw_destroy(w);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_load_ok(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    sw_worker w;
    memset(&w, 0, sizeof w);
    start(&w, &loop, NULL, NULL);
    assert_int_equal(w.generation, 1);
    json_t *answer = load(&w, good_path);
    assert_string_equal(pr_str(answer, "t"), "loaded");
    json_t *outline = json_object_get(answer, "outline");
    assert_true(json_is_object(outline));
    assert_string_equal(pr_str(outline, "id"), "tiny");
    assert_string_equal(pr_str(outline, "title"), "Tiny");
    json_t *steps = json_object_get(outline, "steps");
    assert_int_equal(json_array_size(steps), 1);
    assert_string_equal(pr_str(json_array_get(steps, 0), "id"), "one");
    assert_string_equal(pr_str(json_array_get(steps, 0), "kind"), "run");
    json_decref(answer);
    assert_int_equal(w.dead, 0);
    finish(&w, &loop);
}

static void test_load_invalid(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    sw_worker w;
    memset(&w, 0, sizeof w);
    start(&w, &loop, NULL, NULL);
    json_t *answer = load(&w, bad_path);
    assert_string_equal(pr_str(answer, "t"), "invalid");
    json_t *errors = json_object_get(answer, "errors");
    assert_true(json_array_size(errors) >= 1);
    json_t *e0 = json_array_get(errors, 0);
    assert_non_null(pr_str(e0, "file"));
    assert_non_null(strstr(pr_str(e0, "file"), "bad.lua"));
    assert_int_equal(pr_int(e0, "line", -1), 3);
    assert_non_null(pr_str(e0, "msg"));
    assert_true(strlen(pr_str(e0, "msg")) > 0);
    json_decref(answer);
    /* The worker stays usable after an invalid playbook. */
    answer = load(&w, good_path);
    assert_string_equal(pr_str(answer, "t"), "loaded");
    json_decref(answer);
    finish(&w, &loop);
}

static void test_hard_deadline(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    sw_worker w;
    memset(&w, 0, sizeof w);
    start(&w, &loop, NULL, NULL);
    json_t *req = load_req(stuck_path, 1);
    json_t *answer = (json_t *)1;
    int64_t t0 = now_ms();
    int rc = sw_request(&w, req, 300, NULL, &answer);
    int64_t took = now_ms() - t0;
    json_decref(req);
    assert_int_equal(rc, -1);
    assert_null(answer);
    assert_int_equal(w.dead, 1);
    assert_string_equal(w.dead_reason, "hard deadline");
    assert_int_equal(w.killed_by_us, 1);
    assert_true(took >= 290);
    assert_true(took < 2000);
    int gen = w.generation;
    sw_stop(&w);
    assert_int_equal(w.running, 0);
    assert_int_equal(w.term_signal, 9);
    /* A fresh worker after the kill works. */
    start(&w, &loop, NULL, NULL);
    assert_int_equal(w.generation, gen + 1);
    assert_int_equal(w.dead, 0);
    assert_string_equal(w.dead_reason, "");
    answer = load(&w, good_path);
    assert_string_equal(pr_str(answer, "t"), "loaded");
    json_decref(answer);
    finish(&w, &loop);
}

static void test_kill_restart(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    sw_worker w;
    memset(&w, 0, sizeof w);
    start(&w, &loop, NULL, NULL);
    json_t *answer = load(&w, good_path);
    json_decref(answer);
    int gen = w.generation;
    sw_kill(&w, "test kill");
    assert_int_equal(w.dead, 1);
    assert_string_equal(w.dead_reason, "test kill");
    /* A request to a killed worker fails at once. */
    json_t *req = load_req(good_path, 1);
    answer = NULL;
    assert_int_equal(sw_request(&w, req, 1000, NULL, &answer), -1);
    assert_null(answer);
    json_decref(req);
    sw_kill(&w, "second kill"); /* harmless; the first reason stands */
    assert_string_equal(w.dead_reason, "test kill");
    sw_stop(&w);
    assert_int_equal(w.running, 0);
    start(&w, &loop, NULL, NULL);
    assert_int_equal(w.generation, gen + 1);
    answer = load(&w, good_path);
    assert_string_equal(pr_str(answer, "t"), "loaded");
    json_decref(answer);
    /* And a third time. */
    sw_kill(&w, "again");
    sw_stop(&w);
    start(&w, &loop, NULL, NULL);
    assert_int_equal(w.generation, gen + 2);
    answer = load(&w, good_path);
    assert_string_equal(pr_str(answer, "t"), "loaded");
    json_decref(answer);
    finish(&w, &loop);
}

typedef struct {
    int calls;
    char fn[32];
    char question[64];
    int stale;        /* also send a reply with the previous generation first */
} call_log;

static void on_call(sw_worker *w, long long id, const char *fn, json_t *args, void *data)
{
    call_log *log = data;
    log->calls++;
    snprintf(log->fn, sizeof log->fn, "%s", fn);
    snprintf(log->question, sizeof log->question, "%s", pr_str(args, "question") ? pr_str(args, "question") : "");
    if (log->stale) {
        /* Must be dropped: were it sent, the worker would see a reply it
         * never asked for (or take "false" as the answer). */
        sw_reply_ok(w, w->generation - 1, id, json_pack("{s:b}", "answer", 0));
        sw_reply_error(w, w->generation - 1, id, "stale");
    }
    sw_reply_ok(w, w->generation, id, json_pack("{s:b}", "answer", 1));
}

static void run_ask(sw_worker *w, call_log *log)
{
    json_t *answer = load(w, ask_path);
    assert_string_equal(pr_str(answer, "t"), "loaded");
    json_decref(answer);
    json_t *req = json_pack("{s:s, s:s, s:i, s:i}", "t", "run", "step", "c", "attempt", 1, "timeout_ms", 5000);
    answer = NULL;
    int rc = sw_request(w, req, 10000, NULL, &answer);
    json_decref(req);
    assert_int_equal(rc, 0);
    assert_string_equal(pr_str(answer, "t"), "done");
    assert_int_equal(pr_bool(answer, "ok", 0), 1);
    assert_true(json_is_true(json_object_get(answer, "result")));
    json_decref(answer);
    assert_int_equal(log->calls, 1);
    assert_string_equal(log->fn, "confirm");
    assert_string_equal(log->question, "go?");
}

static void test_call_and_stale_reply(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    call_log log;
    memset(&log, 0, sizeof log);
    sw_worker w;
    memset(&w, 0, sizeof w);
    start(&w, &loop, on_call, &log);
    run_ask(&w, &log);
    sw_kill(&w, "restart");
    sw_stop(&w);
    start(&w, &loop, on_call, &log);
    assert_int_equal(w.generation, 2);
    memset(&log, 0, sizeof log);
    log.stale = 1;
    run_ask(&w, &log);
    /* A stale reply outside any call is dropped too (and its value freed). */
    sw_reply_ok(&w, 1, 99, json_string("leak?"));
    sw_reply_error(&w, 1, 99, "stale");
    json_t *answer = load(&w, good_path);
    assert_string_equal(pr_str(answer, "t"), "loaded");
    json_decref(answer);
    assert_int_equal(w.dead, 0);
    finish(&w, &loop);
}

static void kill_worker(uv_timer_t *t)
{
    sw_worker *w = t->data;
    kill(w->proc.pid, SIGKILL); /* not SIGSEGV: ASan would catch it and exit 1 */
}

/* A worker that dies during a request (here: SIGKILL from outside, while it
 * is stuck in C) closes its pipe before its exit is reaped: the reason must
 * still name the signal, not just the closed pipe. */
static void test_crash_reason_names_the_signal(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    sw_worker w;
    memset(&w, 0, sizeof w);
    start(&w, &loop, NULL, NULL);
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    t.data = &w;
    uv_timer_start(&t, kill_worker, 200, 0);
    json_t *req = load_req(stuck_path, 1);
    json_t *answer = NULL;
    int rc = sw_request(&w, req, 5000, NULL, &answer);
    json_decref(req);
    uv_close((uv_handle_t *)&t, NULL);
    assert_int_equal(rc, -1);
    assert_null(answer);
    assert_int_equal(w.killed_by_us, 0);
    if (!strstr(w.dead_reason, "signal 9"))
        fail_msg("reason: %s", w.dead_reason);
    finish(&w, &loop);
}

static void test_stop_flag(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    sw_worker w;
    memset(&w, 0, sizeof w);
    start(&w, &loop, NULL, NULL);
    volatile int stop = 1;
    json_t *req = load_req(stuck_path, 1);
    json_t *answer = NULL;
    int rc = sw_request(&w, req, 0, &stop, &answer);
    json_decref(req);
    assert_int_equal(rc, -2);
    assert_null(answer);
    assert_int_equal(w.dead, 1);
    assert_string_equal(w.dead_reason, "interrupted");
    finish(&w, &loop);
}

static void test_destroy_without_request(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    sw_worker w;
    memset(&w, 0, sizeof w);
    start(&w, &loop, NULL, NULL);
    /* A healthy worker exits by itself when its pipe closes. */
    finish(&w, &loop);
    assert_int_equal(w.running, 0);
    assert_int_equal(w.killed_by_us, 0);
    assert_int_equal(w.term_signal, 0);
    assert_int_equal(w.exit_status, 0);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "__worker") == 0)
        return wk_main();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_ok),
        cmocka_unit_test(test_load_invalid),
        cmocka_unit_test(test_hard_deadline),
        cmocka_unit_test(test_kill_restart),
        cmocka_unit_test(test_call_and_stale_reply),
        cmocka_unit_test(test_crash_reason_names_the_signal),
        cmocka_unit_test(test_stop_flag),
        cmocka_unit_test(test_destroy_without_request),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
