/*
 * test_scenario.c — unit tests for drill scenario files (scenario.c,
 * scenario_fields.c): a complete scenario in its normalised form (injects
 * with drill times, answer shorthands, outcome lists), the errors a
 * facilitator makes (unknown fields with "did you mean" and the right
 * line, bad times, bad answer words, wrong types, syntax errors), the
 * sandbox (no io/os/load, a load deadline), and the check of step ids
 * against a playbook outline; the scorecard's escalations due by the
 * playbook's own rules that did not fire (scorecard_due.c).
 * Depends on: cmocka, scenario.h.
 */
#include "scenario.h"
#include "scenario_internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static sc_scenario *load(const char *text, char *err, size_t n)
{
    return sc_load_text(text, strlen(text), "scn.lua", err, n);
}

static void expect_error(const char *text, const char *want)
{
    char err[1024] = "";
    sc_scenario *sc = load(text, err, sizeof err);
    if (sc) {
        sc_free(sc);
        fail_msg("expected an error containing \"%s\" for:\n%s", want, text);
    }
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
}

static void test_complete_scenario(void **state)
{
    (void)state;
    const char *text = "return scenario {\n"
                       "  title = \"Friday\", narrative = \"late\",\n"
                       "  participants = { { name = \"Sam\", role = \"operator\" } },\n"
                       "  speed = 60,\n"
                       "  injects = {\n"
                       "    { at = \"T+20m\", text = \"CEO calls\" },\n"
                       "    { on = \"step_end\", step = \"isolate\", text = \"done?\" },\n"
                       "  },\n"
                       "  answers = { confirm = \"done: seen\", isolate = \"deny: no\", q = { ask = { \"a\", \"b\" } }, w = \"west\" },\n"
                       "  outcomes = { isolate = { { code = 1, stderr = \"EDR timeout\" }, { stdout = \"ok\" } }, one = { code = 2 } },\n"
                       "  expect = { status = \"succeeded\", escalations = { 1 }, skipped = {}, decisions = { isolate = \"deny\" } },\n"
                       "}\n";
    char err[512] = "";
    sc_scenario *sc = load(text, err, sizeof err);
    assert_non_null(sc);
    assert_string_equal(sc->title, "Friday");
    assert_true(sc->speed == 60);
    assert_int_equal(json_array_size(sc->participants), 1);
    assert_int_equal(json_array_size(sc->injects), 2);
    json_t *inj = json_array_get(sc->injects, 0);
    assert_int_equal(json_integer_value(json_object_get(inj, "at_ms")), 20 * 60 * 1000);
    assert_int_equal(json_integer_value(json_object_get(inj, "line")), 6);
    inj = json_array_get(sc->injects, 1);
    assert_string_equal(json_string_value(json_object_get(inj, "on")), "step_end");
    assert_int_equal(json_integer_value(json_object_get(inj, "line")), 7);
    json_t *a = json_object_get(sc->answers, "confirm");
    assert_string_equal(json_string_value(json_object_get(a, "manual")), "done: seen");
    a = json_object_get(sc->answers, "isolate");
    assert_string_equal(json_string_value(json_object_get(a, "approval")), "deny: no");
    a = json_object_get(sc->answers, "q");
    assert_int_equal(json_array_size(json_object_get(a, "ask")), 2);
    a = json_object_get(sc->answers, "w");
    assert_string_equal(json_string_value(json_array_get(json_object_get(a, "ask"), 0)), "west");
    assert_int_equal(json_array_size(json_object_get(sc->outcomes, "isolate")), 2);
    assert_int_equal(json_array_size(json_object_get(sc->outcomes, "one")), 1); /* one outcome, wrapped */
    assert_true(json_is_array(json_object_get(sc->expect, "skipped")));
    sc_free(sc);
}

static void test_field_errors(void **state)
{
    (void)state;
    expect_error("return scenario {\n  title = 'x',\n  injets = {},\n}\n",
                 "scn.lua:3: scenario: unknown field 'injets' (did you mean 'injects'?)");
    expect_error("return scenario {\n  expect = {\n    statsu = 'failed' },\n}\n",
                 "scn.lua:3: expect: unknown field 'statsu' (did you mean 'status'?)");
    expect_error("return scenario {\n  injects = {\n    { at = 'tomorrow', text = 't' } },\n}\n",
                 "scn.lua:3: injects[1]: at = \"tomorrow\" is not a drill time");
    expect_error("return scenario { injects = { { text = 't' } } }\n", "needs exactly one of at");
    expect_error("return scenario { injects = { { on = 'step_begin', step = 'a', text = 't' } } }\n",
                 "must be \"step_start\" or \"step_end\"");
    expect_error("return scenario { injects = { { on = 'step_start', text = 't' } } }\n", "needs step =");
    expect_error("return scenario { answers = { a = { approval = 'aprove' } } }\n",
                 "'aprove' is not a approval answer (approve or deny); did you mean 'approve'?");
    expect_error("return scenario { answers = { a = { manul = 'done' } } }\n",
                 "answer: unknown field 'manul' (did you mean 'manual'?)");
    expect_error("return scenario { outcomes = { a = { { cdoe = 1 } } } }\n",
                 "outcome: unknown field 'cdoe' (did you mean 'code'?)");
    expect_error("return scenario { outcomes = { a = 'fail' } }\n", "outcomes[\"a\"] must be a list of outcomes");
    expect_error("return scenario { speed = 'fast' }\n", "speed must be a number from 1 to 100000");
    expect_error("return scenario { expect = { status = 'won' } }\n", "expect.status must be one of");
    expect_error("return scenario { expect = { escalations = { 'two' } } }\n", "expect.escalations must be a list of tiers");
    expect_error("return 42\n", "scn.lua: the file returns number");
    expect_error("return scenario {\n  title = 'x'\n  speed = 2 }\n", "scn.lua:3:");
    expect_error("return scenario {\n  title = nope.x }\n", "scn.lua:2:");
}

static void test_playbook_and_inputs(void **state)
{
    (void)state;
    char err[512] = "";
    const char *text = "return scenario { playbook = \"../pb.lua\", inputs = { host = \"web-07\", port = 5432 } }\n";
    sc_scenario *sc = sc_load_text(text, strlen(text), "dir/scenarios/s.lua", err, sizeof err);
    assert_non_null(sc);
    char *path = sc_playbook_path(sc);
    assert_string_equal(path, "dir/scenarios/../pb.lua");
    free(path);
    assert_string_equal(json_string_value(json_object_get(sc->inputs, "host")), "web-07");
    assert_string_equal(json_string_value(json_object_get(sc->inputs, "port")), "5432");
    sc_free(sc);
    sc = load("return scenario { playbook = \"/abs/pb.lua\" }\n", err, sizeof err);
    assert_non_null(sc);
    path = sc_playbook_path(sc);
    assert_string_equal(path, "/abs/pb.lua");
    free(path);
    sc_free(sc);
    sc = load("return scenario { title = \"none\" }\n", err, sizeof err);
    assert_null(sc_playbook_path(sc));
    sc_free(sc);
    expect_error("return scenario {\n  inputs = { host = { 1 } },\n}\n", "scn.lua:2: inputs must map");
    expect_error("return scenario {\n  playbook = 3,\n}\n", "scn.lua:2: playbook must be");
}

static void test_answer_thinking_time(void **state)
{
    (void)state;
    char err[512] = "";
    sc_scenario *sc = load("return scenario { answers = { a = { manual = \"done\", after = \"12m\" }, b = \"done\" } }\n",
                           err, sizeof err);
    assert_non_null(sc);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(sc->answers, "a"), "after_ms")), 12 * 60000);
    assert_null(json_object_get(json_object_get(sc->answers, "b"), "after_ms"));
    sc_free(sc);
    expect_error("return scenario {\n answers = { a = { manual = \"done\", after = 5 } },\n}\n",
                 "scn.lua:2: answers[\"a\"].after must be a duration");
    expect_error("return scenario {\n answers = { a = { manual = \"done\", aftr = \"5m\" } },\n}\n", "after");
}

/* An outcome takes the place of a drill table: the same fields (json,
 * exec = { ... }, http = { ... }), checked with file:line errors. */
static void test_outcome_drill_table_fields(void **state)
{
    (void)state;
    char err[512] = "";
    sc_scenario *sc = load("return scenario { outcomes = {\n"
                           "  api = { { status = 201, headers = { ['Content-Type'] = 'application/json' }, json = { ok = true, n = 2 } } },\n"
                           "  both = { { exec = { stdout = 'x' }, http = { status = 404, body = 'gone' } } },\n"
                           "} }\n",
                           err, sizeof err);
    if (!sc)
        fail_msg("%s", err);
    json_t *o = json_array_get(json_object_get(sc->outcomes, "api"), 0);
    assert_true(json_is_true(json_object_get(json_object_get(o, "json"), "ok")));
    o = json_array_get(json_object_get(sc->outcomes, "both"), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "http"), "status")), 404);
    sc_free(sc);
    expect_error("return scenario { outcomes = {\n  a = { { jsno = {} } } } }\n",
                 "scn.lua:2: outcome: unknown field 'jsno' (did you mean 'json'?)");
    expect_error("return scenario { outcomes = {\n  a = { {\n    http = { stauts = 200 } } } } }\n",
                 "scn.lua:3: outcome.http: unknown field 'stauts' (did you mean 'status'?)");
    expect_error("return scenario { outcomes = {\n  a = { { exec = { json = {} } } } } }\n",
                 "scn.lua:2: outcome.exec: unknown field 'json'");
    expect_error("return scenario { outcomes = {\n  a = { { http = { status = '200' } } } } }\n",
                 "scn.lua:2: outcomes[\"a\"][1].http: code and status are integers");
    expect_error("return scenario { outcomes = {\n  a = { { body = { 1 } } } } }\n",
                 "scn.lua:2: outcomes[\"a\"][1]: code and status are integers, stdout, stderr and body strings");
    expect_error("return scenario { outcomes = {\n  a = { { headers = { x = 1 } } } } }\n",
                 "scn.lua:2: outcomes[\"a\"][1].headers must be a table of strings");
    expect_error("return scenario { outcomes = {\n  a = { { http = 'ok' } } } }\n",
                 "scn.lua:2: outcomes[\"a\"][1].http must be a table");
}

/* escalate.c's rules replayed on the drill clock (scorecard_due.c). */
static void test_escalations_due_not_fired(void **state)
{
    (void)state;
    json_t *tiers = json_pack("[{s:i, s:i}, {s:i, s:i}, {s:i, s:i}]", "tier", 1, "after_ms", 0, "tier", 2, "after_ms",
                              900000, "tier", 3, "after_ms", 2700000);
    json_t *none = json_array();
    json_t *start = json_pack("[{s:i, s:i, s:s}]", "tier", 1, "sim_ms", 0, "reason", "run started");
    /* Tier 2's after passed with the run open and it never fired; tier 3's time never came. */
    json_t *due = scd_due_not_fired(tiers, none, start, 1200000);
    assert_int_equal(json_array_size(due), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(due, 0), "tier")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(due, 0), "due_ms")), 900000);
    assert_string_equal(json_string_value(json_object_get(json_array_get(due, 0), "rule")), "after");
    json_decref(due);
    /* Tier 2 reached earlier by on_failure = "escalate": its after has nothing left to fire. */
    json_t *climbed = json_pack("[{s:i, s:i, s:s}, {s:i, s:i, s:s}]", "tier", 1, "sim_ms", 0, "reason", "run started",
                                "tier", 2, "sim_ms", 60000, "reason", "step \"x\" failed: boom");
    due = scd_due_not_fired(tiers, none, climbed, 1200000);
    assert_int_equal(json_array_size(due), 0);
    json_decref(due);
    /* Tier 1 never fired at start: due at 0. The run ended before 15m: nothing else. */
    due = scd_due_not_fired(tiers, none, none, 600000);
    assert_int_equal(json_array_size(due), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(due, 0), "due_ms")), 0);
    json_decref(due);
    /* A breached objective: with its escalation on record nothing is due; without, the next
     * tier above the highest fired then, and a tier due at the same time is that one. */
    json_t *objs = json_pack("[{s:s, s:i, s:s}, {s:s, s:i, s:s}]", "objective", "contain_within", "limit_ms", 900000,
                             "verdict", "breached", "objective", "detect_within", "limit_ms", 60000, "verdict", "met");
    json_t *esc = json_pack("[{s:i, s:i, s:s}, {s:i, s:i, s:s}]", "tier", 1, "sim_ms", 0, "reason", "run started",
                            "tier", 2, "sim_ms", 900100, "reason",
                            "objective contain_within (15m) breached: containment not finished");
    due = scd_due_not_fired(tiers, objs, esc, 1200000);
    assert_int_equal(json_array_size(due), 0);
    json_decref(due);
    due = scd_due_not_fired(tiers, objs, start, 1200000);
    assert_int_equal(json_array_size(due), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(due, 0), "rule")), "objective");
    assert_string_equal(json_string_value(json_object_get(json_array_get(due, 0), "objective")), "contain_within");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(due, 0), "tier")), 2);
    json_decref(due);
    /* At the top, a breach pages the top tier again. */
    json_t *top = json_pack("[{s:i, s:i, s:s}, {s:i, s:i, s:s}, {s:i, s:i, s:s}]", "tier", 1, "sim_ms", 0, "reason", "a",
                            "tier", 2, "sim_ms", 1000, "reason", "b", "tier", 3, "sim_ms", 2000, "reason", "c");
    due = scd_due_not_fired(tiers, objs, top, 1200000);
    assert_int_equal(json_array_size(due), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(due, 0), "tier")), 3);
    json_decref(due);
    /* A playbook without tiers: nothing can fire. */
    due = scd_due_not_fired(none, objs, none, 1200000);
    assert_int_equal(json_array_size(due), 0);
    json_decref(due);
    json_decref(top);
    json_decref(esc);
    json_decref(objs);
    json_decref(climbed);
    json_decref(start);
    json_decref(none);
    json_decref(tiers);
}

static void test_sandbox(void **state)
{
    (void)state;
    expect_error("os.execute('touch /tmp/x') return scenario {}\n", "os");
    expect_error("io.open('/etc/passwd') return scenario {}\n", "io");
    expect_error("load('x=1')() return scenario {}\n", "load");
    expect_error("while true do end\n", "took longer than");
    char err[256];
    sc_scenario *sc = sc_load_file("/nonexistent/scn.lua", err, sizeof err);
    assert_null(sc);
    assert_non_null(strstr(err, "/nonexistent/scn.lua: cannot read the scenario"));
    /* Helpers and locals are fine. */
    sc = load("local function at(m) return 'T+' .. m .. 'm' end\n"
              "return scenario { injects = { { at = at(5), text = 'x' } } }\n",
              err, sizeof err);
    assert_non_null(sc);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(sc->injects, 0), "at_ms")), 300000);
    sc_free(sc);
}

static void test_check_steps(void **state)
{
    (void)state;
    json_t *steps = json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}]", "id", "isolate", "kind",
                              "run", "id", "confirm", "kind", "manual", "id", "gate", "kind", "run", "approval", "ic",
                              "id", "both", "kind", "manual", "approval", "ic");
    char err[512] = "";
    const char *good = "return scenario { answers = { confirm = 'done', gate = 'approve', isolate = 'west',\n"
                       "  both = { approval = 'deny', manual = 'done' } }, outcomes = { isolate = { { code = 0 } } } }\n";
    sc_scenario *sc = load(good, err, sizeof err);
    assert_non_null(sc);
    assert_int_equal(sc_check_steps(sc, steps, err, sizeof err), 0);
    sc_free(sc);

    const char *bad[][2] = {
        {"return scenario {\n  answers = {\n    isolat = 'approve' } }\n",
         "scn.lua:3: answers names step \"isolat\", which the playbook does not have (did you mean \"isolate\"?)"},
        {"return scenario {\n  injects = {\n    { on = 'step_end', step = 'confrim', text = 't' } } }\n",
         "scn.lua:3: an inject names step \"confrim\""},
        {"return scenario {\n  outcomes = {\n    isolte = { { code = 1 } } } }\n", "scn.lua:3: outcomes names step \"isolte\""},
        {"return scenario {\n  expect = {\n    skipped = { 'nope' } } }\n", "scn.lua:3: expect.skipped names step \"nope\""},
        {"return scenario {\n  answers = {\n    confirm = 'dnoe' } }\n",
         "scn.lua:3: answers[\"confirm\"]: 'dnoe' is not a manual answer (done, failed or skip); did you mean 'done'?"},
        /* An answer to a prompt the step does not have would be dropped, and --yes or the keyboard answer instead. */
        {"return scenario {\n  answers = {\n    isolate = 'done' } }\n",
         "scn.lua:3: answers[\"isolate\"]: 'done' answers a manual step, but step \"isolate\" is an automated step with no approval"},
        {"return scenario {\n  answers = {\n    confirm = 'approve: Priya' } }\n",
         "scn.lua:3: answers[\"confirm\"]: 'approve' answers an approval, but step \"confirm\" is a manual step"},
        {"return scenario {\n  answers = {\n    gate = { manual = 'done' } } }\n",
         "scn.lua:3: answers[\"gate\"]: 'done' answers a manual step, but step \"gate\" is an automated step behind an approval"},
        {"return scenario {\n  answers = {\n    both = { confirm = 'yes' } } }\n",
         "scn.lua:3: answers[\"both\"]: 'yes' answers ctx.confirm in a run function, but step \"both\" is a manual step behind an approval"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sc = load(bad[i][0], err, sizeof err);
        assert_non_null(sc);
        assert_int_equal(sc_check_steps(sc, steps, err, sizeof err), -1);
        if (!strstr(err, bad[i][1]))
            fail_msg("error \"%s\" does not contain \"%s\"", err, bad[i][1]);
        sc_free(sc);
    }
    json_decref(steps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_complete_scenario),
        cmocka_unit_test(test_field_errors),
        cmocka_unit_test(test_playbook_and_inputs),
        cmocka_unit_test(test_answer_thinking_time),
        cmocka_unit_test(test_outcome_drill_table_fields),
        cmocka_unit_test(test_escalations_due_not_fired),
        cmocka_unit_test(test_sandbox),
        cmocka_unit_test(test_check_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
