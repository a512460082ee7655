/*
 * resume.c — `irp resume`: reads the journal of an unfinished run and
 * rebuilds what the engine needs to carry on. The journal is the only
 * source of truth: the last outcome recorded for a step is its state; a
 * step.started with no outcome after it is the step in flight.
 */
#include "resume.h"
#include "cli.h"
#include "config.h"
#include "journal.h"
#include "proto.h"
#include "scenario.h"
#include "state.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct rs_context {
    json_t *records;
    json_t *vars, *state, *steps, *sources, *attach, *plugins;
    char *playbook, *sha256, *in_flight;
    char *failed, *failed_reason; /* a step.failed whose on_failure had not yet acted */
    int failed_escalated;         /* ... and its escalation (on_failure = "escalate") is on record */
};

void rs_free(rs_context *c)
{
    if (!c)
        return;
    json_decref(c->records);
    json_decref(c->vars);
    json_decref(c->state);
    json_decref(c->steps);
    json_decref(c->sources);
    json_decref(c->attach);
    json_decref(c->plugins);
    free(c->playbook);
    free(c->sha256);
    free(c->in_flight);
    free(c->failed);
    free(c->failed_reason);
    free(c);
}

/* Position of step id in the step list recorded at run.started, or -1. */
static long recorded_index(const rs_context *c, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(c->steps, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), id)) return (long)i;
    return -1;
}

/* An on_failure jump back to an earlier step forgets the outcomes from
 * there on (engine.c walk_steps); the record shows it as a step record at
 * a position before a step that already has an outcome, or a new start of
 * a finished step. Replay forgets the same outcomes. */
static void forget_on_jump_back(rs_context *c, const char *step, const char *type)
{
    long p = recorded_index(c, step);
    if (p < 0)
        return;
    json_t *mine = json_object_get(c->state, step);
    int back = mine && strcmp(pr_str(mine, "status") ? pr_str(mine, "status") : "", "started") != 0 &&
               (!strcmp(type, "step.started") || !strcmp(type, "step.skipped"));
    size_t i;
    json_t *v;
    json_array_foreach(c->steps, i, v) if ((long)i > p && json_is_string(v) &&
                                           json_object_get(c->state, json_string_value(v))) back = 1;
    if (!back)
        return;
    json_array_foreach(c->steps, i, v) if ((long)i >= p && json_is_string(v))
        json_object_del(c->state, json_string_value(v));
}

static int64_t parse_ts_ms(const char *ts)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int ms = 0;
    if (!ts || sscanf(ts, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                      &tm.tm_sec, &ms) < 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

rs_context *rs_load(const char *state_dir, const char *run_id, eng_options *o, int *exit_code, char *err,
                    size_t err_size)
{
    char *run_dir = st_run_dir(st_state_dir(state_dir), run_id);
    char *path = ut_xasprintf("%s/journal.jsonl", run_dir);
    size_t torn = 0;
    json_t *records = access(path, F_OK) == 0 ? jr_read(path, &torn, err, err_size) : NULL;
    if (!records && access(path, F_OK) < 0) {
        if (access(run_dir, F_OK) < 0)
            snprintf(err, err_size, "no run %s in %s (irp status lists the runs there; --state-dir names "
                     "another place)", run_id, st_state_dir(state_dir));
        else
            snprintf(err, err_size, "run %s never started (%s has no journal; nothing ran): remove that "
                     "directory or use another run id", run_id, run_dir);
        *exit_code = IRP_EXIT_DATAERR;
        free(run_dir);
        free(path);
        return NULL;
    }
    free(run_dir);
    if (!records || json_array_size(records) == 0) {
        if (records) {
            snprintf(err, err_size, "run %s never started (its journal is empty; nothing ran)", run_id);
            json_decref(records);
        }
        *exit_code = IRP_EXIT_DATAERR;
        free(path);
        return NULL;
    }
    free(path);
    json_t *first = json_array_get(records, 0);
    const char *t0 = pr_str(first, "type");
    if (!t0 || strcmp(t0, "run.started") != 0) {
        snprintf(err, err_size, "run %s: its journal does not begin with run.started", run_id);
        json_decref(records);
        *exit_code = IRP_EXIT_DATAERR;
        return NULL;
    }
    json_t *last = json_array_get(records, json_array_size(records) - 1);
    json_t *lifecycle = jr_last_run_record(records); /* a drill.scorecard may follow run.finished */
    if (!strcmp(pr_str(lifecycle, "type") ? pr_str(lifecycle, "type") : "", "run.finished")) {
        snprintf(err, err_size, "run %s already finished (%s): there is nothing to resume", run_id,
                 pr_str(json_object_get(lifecycle, "data"), "status") ? pr_str(json_object_get(lifecycle, "data"), "status")
                                                                  : "?");
        json_decref(records);
        *exit_code = IRP_EXIT_USAGE;
        return NULL;
    }
    rs_context *c = ut_xcalloc(1, sizeof *c);
    c->records = records;
    json_t *sd = json_object_get(first, "data");
    json_t *pb = json_object_get(sd, "playbook");
    const char *file = pr_str(pb, "path") ? pr_str(pb, "path") : pr_str(pb, "file");
    c->playbook = ut_xstrdup(file ? file : "");
    c->sha256 = ut_xstrdup(pr_str(pb, "sha256") ? pr_str(pb, "sha256") : "");
    c->steps = json_incref(json_object_get(pb, "steps"));
    c->sources = json_incref(json_object_get(pb, "sources"));
    c->vars = json_deep_copy(json_object_get(sd, "inputs"));
    if (!json_is_object(c->vars)) {
        json_decref(c->vars);
        c->vars = json_object();
    }
    c->attach = json_is_array(json_object_get(sd, "attach")) ? json_deep_copy(json_object_get(sd, "attach"))
                                                              : json_array();
    c->plugins = json_is_array(json_object_get(sd, "plugins")) ? json_deep_copy(json_object_get(sd, "plugins"))
                                                                : json_array();
    c->state = json_object();

    /* Replay: the last word on each step wins. */
    int tier = 0;
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec)
    {
        const char *type = pr_str(rec, "type");
        const char *step = pr_str(rec, "step");
        json_t *data = json_object_get(rec, "data");
        if (!type)
            continue;
        if (!strcmp(type, "escalation.triggered") && pr_int(data, "tier", 0) > tier)
            tier = (int)pr_int(data, "tier", 0);
        if (!step)
            continue;
        if (!strcmp(type, "escalation.triggered") && c->failed && !strcmp(step, c->failed))
            c->failed_escalated = 1;
        if (strncmp(type, "step.", 5) != 0)
            continue;
        /* A step.failed stays pending until any later step record shows that
         * its on_failure was acted upon (the next step, a jump, another try). */
        const char *jumped_from = pr_str(data, "jumped_from"); /* a forward jump under way */
        if (c->failed && (strcmp(step, c->failed) != 0 || !strcmp(type, "step.started")) &&
            !(jumped_from && !strcmp(jumped_from, c->failed) && !strcmp(type, "step.skipped"))) {
            free(c->failed);
            free(c->failed_reason);
            c->failed = c->failed_reason = NULL;
            c->failed_escalated = 0;
        }
        if (!strcmp(type, "step.failed")) {
            free(c->failed);
            free(c->failed_reason);
            c->failed = ut_xstrdup(step);
            c->failed_reason = ut_xstrdup(pr_str(data, "reason") ? pr_str(data, "reason") : "?");
            c->failed_escalated = 0;
        }
        if (!strcmp(type, "step.started") || !strcmp(type, "step.succeeded") || !strcmp(type, "step.failed") ||
            !strcmp(type, "step.skipped"))
            forget_on_jump_back(c, step, type);
        if (!strcmp(type, "step.started"))
            json_object_set_new(c->state, step, json_pack("{s:s, s:n}", "status", "started", "result"));
        else if (!strcmp(type, "step.succeeded"))
            json_object_set_new(c->state, step, json_pack("{s:s, s:O}", "status", "succeeded", "result",
                                                          json_object_get(data, "result") ? json_object_get(data, "result") : json_null()));
        else if (!strcmp(type, "step.failed"))
            json_object_set_new(c->state, step, json_pack("{s:s, s:n}", "status", "failed", "result"));
        else if (!strcmp(type, "step.skipped"))
            json_object_set_new(c->state, step, json_pack("{s:s, s:n}", "status", "skipped", "result"));
    }
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(c->state, tmp, k, v)
    {
        if (!strcmp(pr_str(v, "status"), "started")) {
            free(c->in_flight);
            c->in_flight = ut_xstrdup(k);
            json_object_del(c->state, k);
        }
    }
    o->playbook = c->playbook;
    o->vars = c->vars;
    o->attach = c->attach;
    o->plugins = c->plugins;
    o->drill = !strcmp(pr_str(first, "mode") ? pr_str(first, "mode") : "live", "drill");
    json_t *speed = json_object_get(sd, "speed");
    o->speed = json_is_number(speed) ? json_number_value(speed) : 1;
    o->live_notify = pr_bool(sd, "live_notify", 0);
    o->memory = pr_int(sd, "memory", (long long)256 << 20);
    /* The notifier configuration the run started with (a journal from
     * before it was recorded names none: found as a new run would). */
    json_t *config = json_object_get(sd, "config");
    if (json_is_string(config)) {
        o->config = json_string_value(config);
        o->config_via = "as when the run started";
    } else if (json_is_null(config)) {
        o->config = cf_embedded_default;
        o->config_via = "as when the run started";
    }
    o->run_id = run_id;
    o->resume = run_id;
    o->resume_state = c->state;
    o->in_flight = c->in_flight;
    o->resume_sha256 = c->sha256;
    o->resume_steps = c->steps;
    o->resume_sources = json_is_object(c->sources) ? c->sources : NULL;
    o->resume_tier = tier;
    o->resume_failed = c->failed;
    o->resume_failed_reason = c->failed_reason;
    o->resume_failed_escalated = c->failed_escalated;
    o->resume_last_seq = pr_int(last, "seq", 0);
    o->resume_records = records;
    if (o->drill) {
        /* The drill clock carries on where the record left it (pauses and
         * the time the drill was down are not exercise time). */
        long long sim = -1;
        json_array_foreach(records, i, rec)
        {
            json_t *s = json_object_get(json_object_get(rec, "data"), "sim_ms");
            if (json_is_integer(s))
                sim = json_integer_value(s);
        }
        o->resume_elapsed_ms = sim > 0 ? (int64_t)((double)sim / (o->speed > 1 ? o->speed : 1)) : 0;
    } else {
        /* An incident's clock kept running while irp was down: objectives
         * and timed tiers count from the run's start. */
        int64_t started = parse_ts_ms(pr_str(first, "ts"));
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        o->resume_elapsed_ms = started && now_ms >= started ? now_ms - started : 0;
    }
    return c;
}

int cli_resume(int argc, char **argv)
{
    eng_options o;
    memset(&o, 0, sizeof o);
    const char *run_id = NULL, *state_dir = NULL, *answer = NULL, *config = NULL;
    int yes = 0, force = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            cli_help("resume");
            return 0;
        } else if (!strncmp(a, "--in-flight", 11)) {
            answer = a[11] == '=' ? a + 12 : (i + 1 < argc ? argv[++i] : NULL);
            if (!answer || (strcmp(answer, "retry") && strcmp(answer, "skip") && strcmp(answer, "done"))) {
                fprintf(stderr, "irp resume: --in-flight takes retry, skip or done\n");
                return IRP_EXIT_USAGE;
            }
        } else if (!strncmp(a, "--config", 8) && (a[8] == '=' || !a[8])) {
            config = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : NULL);
            if (!config || access(config, R_OK) < 0) {
                fprintf(stderr, "irp resume: --config: cannot read '%s'\n", config ? config : "");
                return IRP_EXIT_USAGE;
            }
        } else if (!strncmp(a, "--state-dir", 11)) {
            state_dir = a[11] == '=' ? a + 12 : (i + 1 < argc ? argv[++i] : NULL);
        } else if (!strcmp(a, "--yes") || !strcmp(a, "-y")) {
            yes = 1;
        } else if (!strcmp(a, "--force")) {
            force = 1;
        } else if (a[0] == '-' || run_id) {
            fprintf(stderr, "irp resume: unexpected '%s' (irp resume --help)\n", a);
            return IRP_EXIT_USAGE;
        } else {
            run_id = a;
        }
    }
    if (!run_id || !st_valid_run_id(run_id)) {
        fprintf(stderr, "irp resume: which run? (irp status lists them; irp resume --help)\n");
        return IRP_EXIT_USAGE;
    }
    char err[512];
    int code = IRP_EXIT_DATAERR;
    rs_context *c = rs_load(state_dir, run_id, &o, &code, err, sizeof err);
    if (!c) {
        fprintf(stderr, "irp resume: %s\n", err);
        return code;
    }
    if (config) {
        o.config = config;
        o.config_via = "--config";
    } else if (o.config && o.config != cf_embedded_default) {
        /* The run's configuration is gone or broken: refuse rather than page
         * nobody (or the stdout notifier) without a word. */
        char cerr[1024];
        cf_config *cfg = cf_load_file(o.config, cerr, sizeof cerr);
        if (!cfg) {
            fprintf(stderr, "irp resume: run %s started with the configuration %s, which cannot be loaded now: "
                    "%s\n(irp resume %s --config FILE resumes with another configuration)\n",
                    run_id, o.config, cerr, run_id);
            rs_free(c);
            return IRP_EXIT_DATAERR;
        }
        cf_free(cfg);
    }
    o.state_dir = state_dir;
    o.yes = yes;
    o.force = force;
    o.in_flight_answer = answer;
    /* A drill carries on with its scenario: answers, outcomes, injects. */
    const char *scenario_path = pr_str(json_object_get(json_array_get(o.resume_records, 0), "data"), "scenario");
    sc_scenario *sc = NULL;
    if (o.drill && scenario_path) {
        char serr[1024];
        sc = sc_load_file(scenario_path, serr, sizeof serr);
        if (!sc) {
            fprintf(stderr, "irp resume: the drill's scenario cannot be played again: %s\n", serr);
            rs_free(c);
            return IRP_EXIT_DATAERR;
        }
        o.scenario = sc;
    }
    code = eng_run_playbook(&o);
    sc_free(sc);
    rs_free(c);
    return code;
}
