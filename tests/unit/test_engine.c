/*
 * test_engine.c — cmocka tests of the engine (engine.c, engine_step.c,
 * engine_record.c, calls.c, effects.c, escalate.c, prompt.c) driven
 * in-process through eng_run_playbook. The engine starts its worker as
 * /proc/self/exe __worker, which is this test binary: main() serves that
 * role first. Real worker processes, real child processes, real files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "journal.h"
#include "resume.h"
#include "util.h"
#include "worker.h"

typedef struct {
    char dir[64];
    char state[128];
    char playbook[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/irp-engine-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->state, sizeof f->state, "%s/state", f->dir);
    snprintf(f->playbook, sizeof f->playbook, "%s/pb.lua", f->dir);
    setenv("NO_COLOR", "1", 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* Runs the playbook text; returns the exit code. stdin is /dev/null. */
static int run(fixture *f, const char *text, int drill, int yes, const char *run_id)
{
    write_file(f->playbook, text);
    int saved = dup(0), devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    close(devnull);
    json_t *vars = json_object(), *none = json_array();
    eng_options o = {.playbook = f->playbook, .vars = vars, .attach = none, .plugins = none, .run_id = run_id,
                     .state_dir = f->state, .drill = drill, .yes = yes, .speed = 1, .memory = 64 << 20};
    fflush(stdout);
    int code = eng_run_playbook(&o);
    json_decref(vars);
    json_decref(none);
    dup2(saved, 0);
    close(saved);
    return code;
}

static json_t *journal(fixture *f, const char *run_id)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/runs/%s/journal.jsonl", f->state, run_id);
    json_t *records = jr_read(path, NULL, err, sizeof err);
    assert_non_null(records);
    jr_verify_result v;
    assert_int_equal(jr_verify_file(path, &v), 0);
    assert_true(v.intact);
    return records;
}

/* The data of the first record of type (and step), or NULL. */
static json_t *find(json_t *records, const char *type, const char *step)
{
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r)
    {
        const char *t = json_string_value(json_object_get(r, "type"));
        const char *s = json_string_value(json_object_get(r, "step"));
        if (t && !strcmp(t, type) && (!step || (s && !strcmp(s, step))))
            return json_object_get(r, "data");
    }
    return NULL;
}

static void test_steps_results_and_finish(void **state)
{
    fixture *f = *state;
    int code = run(f,
                   "return playbook { id = 't', title = 'T', steps = {\n"
                   "  step 'a' { run = function(ctx) return { out = ctx.exec{ 'echo', 'hi' }.stdout } end },\n"
                   "  step 'b' { run = function(ctx) return ctx.steps.a.result.out .. '!' end },\n"
                   "} }\n",
                   0, 0, "r1");
    assert_int_equal(code, 0);
    json_t *j = journal(f, "r1");
    assert_string_equal(json_string_value(json_object_get(find(j, "step.succeeded", "b"), "result")), "hi\n!");
    assert_string_equal(json_string_value(json_object_get(find(j, "run.finished", NULL), "status")), "succeeded");
    json_decref(j);
}

static void test_failure_aborts_with_exit_1(void **state)
{
    fixture *f = *state;
    int code = run(f,
                   "return playbook { id = 't', title = 'T', steps = {\n"
                   "  step 'a' { retries = 1, backoff = '10ms', run = function(ctx) ctx.fail('nope') end },\n"
                   "  step 'b' { run = function(ctx) return 1 end },\n"
                   "} }\n",
                   0, 0, "r1");
    assert_int_equal(code, IRP_EXIT_FAILED);
    json_t *j = journal(f, "r1");
    assert_non_null(find(j, "step.retried", "a"));
    assert_string_equal(json_string_value(json_object_get(find(j, "step.failed", "a"), "kind")), "fail");
    assert_null(find(j, "step.started", "b"));
    json_decref(j);
}

static void test_bad_playbook_runs_nothing(void **state)
{
    fixture *f = *state;
    int code = run(f, "return playbook { id = 't', title = 'T', stepz = {} }\n", 0, 0, "r1");
    assert_int_equal(code, IRP_EXIT_DATAERR);
    char path[256];
    snprintf(path, sizeof path, "%s/runs/r1", f->state);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_drill_simulates_and_yes_answers(void **state)
{
    fixture *f = *state;
    char text[512];
    snprintf(text, sizeof text,
             "return playbook { id = 't', title = 'T', steps = {\n"
             "  step 'm' { manual = 'do it', approval = 'ic' },\n"
             "  step 'x' { run = function(ctx) return ctx.exec{ 'touch', '%s/made' }.stdout end,\n"
             "             drill = { stdout = 'sim' } },\n"
             "} }\n",
             f->dir);
    assert_int_equal(run(f, text, 1, 1, "d1"), 0);
    char made[192];
    snprintf(made, sizeof made, "%s/made", f->dir);
    assert_int_equal(access(made, F_OK), -1); /* nothing ran */
    json_t *j = journal(f, "d1");
    assert_string_equal(json_string_value(json_object_get(find(j, "step.succeeded", "x"), "result")), "sim");
    assert_string_equal(json_string_value(json_object_get(find(j, "approval.granted", "m"), "via")), "--yes");
    json_decref(j);
}

static void test_no_answer_then_resume(void **state)
{
    fixture *f = *state;
    const char *text = "return playbook { id = 't', title = 'T', steps = {\n"
                       "  step 'a' { run = function(ctx) return 1 end },\n"
                       "  step 'm' { manual = 'wait' },\n"
                       "} }\n";
    assert_int_equal(run(f, text, 0, 0, "r2"), IRP_EXIT_TEMPFAIL);
    eng_options o;
    memset(&o, 0, sizeof o);
    int code = 0;
    char err[256];
    rs_context *c = rs_load(f->state, "r2", &o, &code, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(o.in_flight, "m");
    o.state_dir = f->state;
    o.yes = 1;
    assert_int_equal(eng_run_playbook(&o), 0);
    rs_free(c);
    json_t *j = journal(f, "r2");
    size_t i, starts_a = 0;
    json_t *r;
    json_array_foreach(j, i, r) if (!strcmp(json_string_value(json_object_get(r, "type")), "step.started") &&
                                    !strcmp(json_string_value(json_object_get(r, "step")), "a")) starts_a++;
    assert_int_equal(starts_a, 1); /* a finished step never runs again */
    assert_non_null(find(j, "run.resumed", NULL));
    json_decref(j);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "__worker") == 0)
        return wk_main();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_steps_results_and_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_aborts_with_exit_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_playbook_runs_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drill_simulates_and_yes_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_answer_then_resume, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
