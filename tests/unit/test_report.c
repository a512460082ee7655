/*
 * test_report.c — the model behind `irp report` (report.c, report_events.c)
 * built from journals written with the real journal API: metrics on the
 * drill clock (acknowledge skips irp's own notes and --yes answers, contain
 * is the end of the containment phase, resolve is run.finished), phases
 * and objectives from the steps, the event tables, a run still open, a
 * tampered journal (verified_through, unverified entries, an unreadable
 * line) and the renderers' escaping.
 * Depends on: cmocka, report.h, journal.h, proto.h, util.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "journal.h"
#include "proto.h"
#include "report.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/irp-test-report-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char *cmd = ut_xasprintf("rm -rf '%s'", dir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* run.started data as the engine writes it (engine_record.c). */
static json_t *started_data(const char *title)
{
    return json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[s,s,s,s], s:[s,s,s], s:{s:s, s:s, s:s, s:s},"
                     " s:{s:i, s:i}}, s:{s:s}, s:s, s:s, s:b}",
                     "playbook", "id", "pb", "title", title, "version", "1", "file", "pb.lua", "path", "/abs/pb.lua",
                     "sha256", SHA, "severity", "high", "steps", "a", "b", "c", "d", "phases", "detection",
                     "containment", "recovery", "step_phases", "a", "detection", "b", "containment", "c",
                     "containment", "d", "recovery", "objectives", "contain_within", 600000, "recover_within", 1000,
                     "inputs", "host", "web-1", "operator", "tester", "host", "box", "yes", 0);
}

static jr_journal *new_run(const char *id, const char *mode, const char *title)
{
    char *run_dir = ut_xasprintf("%s/%s", dir, id);
    assert_int_equal(mkdir(run_dir, 0700), 0);
    char err[256] = "";
    jr_journal *j = jr_create(run_dir, id, mode, started_data(title), err, sizeof err);
    assert_non_null(j);
    free(run_dir);
    return j;
}

/* Appends type with data, at drill time sim (ms). */
static void add(jr_journal *j, const char *type, const char *step, const char *actor, long long sim, json_t *data)
{
    if (!data)
        data = json_object();
    json_object_set_new(data, "sim_ms", json_integer(sim));
    assert_true(jr_append(j, type, step, actor, data) > 0);
}

/* The drill of four steps the tests below read. */
static void write_drill(const char *id, const char *title)
{
    jr_journal *j = new_run(id, "drill", title);
    add(j, "operator.note", NULL, "irp", 0, json_pack("{s:s, s:s, s:[{s:s}]}", "note", "drill scenario", "title", "Scn", "participants", "name", "Sam"));
    add(j, "step.started", "a", "tester", 1000, json_pack("{s:s, s:s}", "kind", "manual", "title", title));
    add(j, "manual.answered", "a", "tester", 2000, json_pack("{s:s, s:s}", "answer", "done", "via", "--yes"));
    add(j, "step.succeeded", "a", "tester", 2000, json_pack("{s:i}", "duration_ms", 1000));
    add(j, "approval.requested", "b", "tester", 3000, json_pack("{s:s}", "role", "ic"));
    add(j, "approval.granted", "b", "tester", 5000,
        json_pack("{s:s, s:s, s:s}", "role", "ic", "via", "operator", "note", "alice | on the\nbridge"));
    add(j, "step.started", "b", "tester", 5000, NULL);
    add(j, "step.exec", "b", NULL, 5500,
        json_pack("{s:s, s:i, s:i, s:b}", "command", "edr isolate web-1", "code", 0, "duration_ms", 3, "simulated", 1));
    add(j, "artifact.stored", "b", "tester", 6000,
        json_pack("{s:s, s:s, s:s, s:i}", "name", "e.txt", "path", "/x/e.txt", "sha256", SHA, "bytes", 5));
    add(j, "step.succeeded", "b", "tester", 7000, NULL);
    add(j, "step.skipped", "c", "tester", 8000, json_pack("{s:s}", "reason", "its when condition returned false"));
    add(j, "escalation.triggered", NULL, "tester", 9000,
        json_pack("{s:i, s:[s], s:s, s:s}", "tier", 2, "targets", "pager", "reason", "objective breached",
                  "objective", "recover_within"));
    add(j, "notify.queued", NULL, NULL, 9000, json_pack("{s:s, s:s, s:s}", "target", "pager", "id", "m1", "message", "hi"));
    add(j, "notify.failed", NULL, NULL, 9100,
        json_pack("{s:s, s:s, s:s, s:i}", "target", "pager", "id", "m1", "error", "HTTP 500", "attempt", 2));
    add(j, "step.started", "d", "tester", 9500, NULL);
    add(j, "step.succeeded", "d", "tester", 10000, NULL);
    add(j, "run.finished", NULL, "tester", 10000, json_pack("{s:s}", "status", "succeeded"));
    assert_int_equal(jr_close(j), 0);
}

static json_t *load(const char *id, long running)
{
    char *path = ut_xasprintf("%s/%s/journal.jsonl", dir, id);
    char err[256] = "";
    json_t *m = rp_load(path, running, err, sizeof err);
    free(path);
    return m;
}

static json_t *at(json_t *m, const char *list, size_t i)
{
    return json_array_get(json_object_get(m, list), i);
}

static void test_drill_metrics_and_tables(void **state)
{
    write_drill("d1", "Isolate");
    json_t *m = load("d1", 0);
    assert_non_null(m);
    assert_string_equal(pr_str(m, "run"), "d1");
    assert_true(json_is_true(json_object_get(m, "drill")));
    assert_string_equal(pr_str(m, "clock"), "drill");
    assert_string_equal(pr_str(m, "status"), "succeeded");
    assert_string_equal(pr_str(json_object_get(m, "playbook"), "severity"), "high");
    assert_string_equal(pr_str(m, "scenario_title"), "Scn");
    json_t *in = json_object_get(m, "integrity");
    assert_true(json_is_true(json_object_get(in, "intact")));
    assert_int_equal(pr_int(in, "records", 0), 18);
    assert_int_equal(pr_int(in, "verified_through", 0), 18);

    json_t *mt = json_object_get(m, "metrics");
    /* irp's own note and the --yes answer are no acknowledgement: the approval is. */
    json_t *ack = json_object_get(mt, "acknowledge");
    assert_int_equal(pr_int(ack, "ms", -1), 5000);
    assert_string_equal(pr_str(ack, "event"), "approval.granted");
    assert_string_equal(pr_str(ack, "by"), "tester");
    assert_int_equal(pr_int(json_object_get(mt, "contain"), "ms", -1), 8000);
    assert_int_equal(pr_int(json_object_get(mt, "resolve"), "ms", -1), 10000);

    json_t *ph = json_object_get(m, "phases");
    assert_int_equal(json_array_size(ph), 3);
    assert_string_equal(pr_str(at(m, "phases", 1), "phase"), "containment");
    assert_int_equal(pr_int(at(m, "phases", 1), "start_ms", -1), 3000);
    assert_int_equal(pr_int(at(m, "phases", 1), "end_ms", -1), 8000);
    assert_int_equal(pr_int(at(m, "phases", 1), "duration_ms", -1), 5000);
    json_t *o0 = at(m, "objectives", 0), *o1 = at(m, "objectives", 1);
    assert_string_equal(pr_str(o0, "objective"), "contain_within");
    assert_string_equal(pr_str(o0, "verdict"), "met");
    assert_int_equal(pr_int(o0, "reached_ms", -1), 8000);
    assert_string_equal(pr_str(o1, "phase"), "recovery");
    assert_string_equal(pr_str(o1, "verdict"), "breached");

    assert_int_equal(json_array_size(json_object_get(m, "timeline")), 18);
    assert_int_equal(json_array_size(json_object_get(m, "decisions")), 3); /* irp's note left out */
    json_t *g = at(m, "decisions", 2);
    assert_string_equal(pr_str(g, "type"), "approval.granted");
    assert_string_equal(pr_str(g, "answer"), "granted");
    assert_string_equal(pr_str(g, "note"), "alice | on the\nbridge");
    assert_int_equal(pr_int(at(m, "escalations", 0), "tier", 0), 2);
    json_t *n = at(m, "notifications", 0);
    assert_int_equal(json_array_size(json_object_get(m, "notifications")), 1);
    assert_string_equal(pr_str(n, "status"), "failed");
    assert_string_equal(pr_str(n, "error"), "HTTP 500");
    assert_int_equal(pr_int(n, "attempts", 0), 3);
    json_t *e = at(m, "evidence", 0);
    assert_string_equal(pr_str(e, "sha256"), SHA);
    assert_int_equal(pr_int(e, "bytes", 0), 5);
    assert_string_equal(pr_str(at(m, "timeline", 8), "text"), "$ edr isolate web-1 -> exit 0 (3ms, simulated)");
    json_decref(m);
}

static void test_open_live_run(void **state)
{
    jr_journal *j = new_run("l1", "live", "Live");
    add(j, "step.started", "a", "tester", 0, NULL);
    assert_int_equal(jr_close(j), 0);
    json_t *m = load("l1", 4242);
    assert_non_null(m);
    assert_string_equal(pr_str(m, "status"), "open");
    assert_true(json_is_true(json_object_get(m, "running")));
    assert_int_equal(pr_int(m, "running_pid", 0), 4242);
    assert_true(json_is_null(json_object_get(m, "ended")));
    json_t *mt = json_object_get(m, "metrics");
    assert_true(json_is_null(json_object_get(mt, "acknowledge")));
    assert_true(json_is_null(json_object_get(mt, "contain")));
    assert_true(json_is_null(json_object_get(mt, "resolve")));
    /* the detection phase started and is open; the objectives are not reached yet */
    assert_int_equal(json_array_size(json_object_get(m, "phases")), 1);
    assert_true(json_is_null(json_object_get(at(m, "phases", 0), "end_ms")));
    assert_string_equal(pr_str(at(m, "objectives", 0), "verdict"), "not reached");
    char *md = rp_render_md(m);
    assert_non_null(strstr(md, "| Ended (UTC) | still open |"));
    assert_non_null(strstr(md, "| Time to resolve | - | the run has not finished |"));
    free(md);
    json_decref(m);
}

static void test_failed_run_names_the_step(void **state)
{
    jr_journal *j = new_run("f1", "live", "Fails");
    add(j, "step.started", "a", "tester", 0, NULL);
    add(j, "step.failed", "a", "tester", 0, json_pack("{s:s}", "reason", "exec 'false' exited with code 1"));
    add(j, "run.finished", NULL, "tester", 0, json_pack("{s:s}", "status", "failed"));
    assert_int_equal(jr_close(j), 0);
    json_t *m = load("f1", 0);
    assert_non_null(m);
    assert_string_equal(pr_str(m, "status"), "failed");
    assert_string_equal(pr_str(json_object_get(m, "failure"), "step"), "a");
    assert_int_equal(pr_int(json_object_get(m, "steps"), "failed", 0), 1);
    assert_string_equal(pr_str(json_object_get(json_object_get(m, "metrics"), "resolve"), "status"), "failed");
    char *md = rp_render_md(m);
    assert_non_null(strstr(md, "| Failed at | step a: exec 'false' exited with code 1 |"));
    free(md);
    json_decref(m);
}

/* Replaces the first from in the journal of id by to (same length or not). */
static void edit_journal(const char *id, const char *from, const char *to)
{
    char *path = ut_xasprintf("%s/%s/journal.jsonl", dir, id);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strstr(buf, from);
    assert_non_null(p);
    f = fopen(path, "wb");
    fwrite(buf, 1, (size_t)(p - buf), f);
    fputs(to, f);
    fputs(p + strlen(from), f);
    fclose(f);
    free(path);
}

static void test_tampered_journal(void **state)
{
    write_drill("t1", "Isolate");
    edit_journal("t1", "edr isolate web-1", "edr isolate web-2"); /* record 9 */
    json_t *m = load("t1", 0);
    assert_non_null(m);
    json_t *in = json_object_get(m, "integrity");
    assert_false(json_is_true(json_object_get(in, "intact")));
    assert_non_null(strstr(pr_str(in, "problem"), "chain broken"));
    /* the break shows at record 10, whose prev no longer matches: 9 itself is suspect */
    assert_int_equal(pr_int(in, "verified_through", -1), 8);
    assert_false(json_is_true(json_object_get(at(m, "timeline", 7), "unverified")));
    assert_true(json_is_true(json_object_get(at(m, "timeline", 8), "unverified")));
    assert_true(json_is_true(json_object_get(at(m, "timeline", 17), "unverified")));
    char *md = rp_render_md(m);
    assert_non_null(strstr(md, "WARNING: THE JOURNAL FAILS VERIFICATION"));
    assert_null(strstr(md, "journal verified"));
    free(md);
    json_decref(m);
    /* a line that is not JSON any more: skipped and counted, the rest kept */
    edit_journal("t1", "{\"v\":1,\"seq\":9,", "{\"v\":1,\"seq\":9");
    m = load("t1", 0);
    assert_non_null(m);
    in = json_object_get(m, "integrity");
    assert_int_equal(pr_int(in, "unreadable_lines", 0), 1);
    assert_int_equal(json_array_size(json_object_get(m, "timeline")), 17);
    assert_string_equal(pr_str(m, "status"), "succeeded");
    json_decref(m);
}

static void test_missing_and_empty(void **state)
{
    char err[256] = "";
    char *path = ut_xasprintf("%s/none.jsonl", dir);
    assert_null(rp_load(path, 0, err, sizeof err));
    assert_non_null(strstr(err, "No such file"));
    FILE *f = fopen(path, "w");
    fclose(f);
    assert_null(rp_load(path, 0, err, sizeof err));
    assert_non_null(strstr(err, "no whole record"));
    free(path);
}

static void test_renderers_escape(void **state)
{
    const char *hostile = "<script>alert(1)</script> \"q\" & 'x' \x1b[2J";
    write_drill("h1", hostile);
    json_t *m = load("h1", 0);
    assert_non_null(m);
    char *html = rp_render_html(m);
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "\x1b"));
    assert_non_null(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt; &quot;q&quot; &amp; &#39;x&#39; ^[[2J"));
    assert_non_null(strstr(html, "<svg"));
    assert_non_null(strstr(html, "class=\"drill\""));
    free(html);
    char *md = rp_render_md(m);
    assert_null(strstr(md, "\x1b"));
    assert_non_null(strstr(md, "# DRILL REPORT: \\<script>alert(1)\\</script>"));
    /* a | and a newline in a note keep the table's shape */
    assert_non_null(strstr(md, "| alice \\| on the / bridge |"));
    free(md);
    char *js = rp_render_json(m, 1);
    json_t *back = json_loads(js, 0, NULL);
    assert_non_null(back);
    assert_string_equal(pr_str(json_object_get(back, "playbook"), "title"), hostile);
    assert_null(strstr(js, "\x1b"));
    json_decref(back);
    free(js);
    json_decref(m);
}

static void test_parse_ts(void **state)
{
    assert_int_equal(rp_parse_ts("1970-01-01T00:00:01.250Z"), 1250);
    assert_int_equal(rp_parse_ts("2026-11-25T09:13:44.123Z") - rp_parse_ts("2026-11-25T09:13:43.100Z"), 1023);
    assert_int_equal(rp_parse_ts("2026-11-25T09:13:44Z"), -1);
    assert_int_equal(rp_parse_ts("2026-11-25T09:13:44.123Zjunk"), -1);
    assert_int_equal(rp_parse_ts(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drill_metrics_and_tables), cmocka_unit_test(test_open_live_run),
        cmocka_unit_test(test_tampered_journal),         cmocka_unit_test(test_missing_and_empty),
        cmocka_unit_test(test_renderers_escape),         cmocka_unit_test(test_parse_ts),
        cmocka_unit_test(test_failed_run_names_the_step),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
