/*
 * check_drill.c — `irp check --drill` (see check_drill.h): the playbook is
 * drilled once as a quiet probe in a throw-away state directory, the
 * engine hands this unit what the drill simulated, what the worker read
 * in vain and which steps failed, and this unit turns that into a report
 * a playbook author can act on: FILE:LINE of the read, the step whose
 * simulated result lacks the value, and what to add.
 */
#include "check_drill.h"
#include "engine.h"
#include "scenario.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ engine hooks */

static json_t *probe_of(struct eng_run *r)
{
    return r && r->opt ? r->opt->probe : NULL;
}

static json_t *member(json_t *probe, const char *name, int array)
{
    json_t *v = json_object_get(probe, name);
    if (!v) {
        v = array ? json_array() : json_object();
        json_object_set_new(probe, name, v);
    }
    return v;
}

void cd_reads(struct eng_run *r, const char *reader, json_t *answer)
{
    json_t *probe = probe_of(r);
    json_t *reads = json_object_get(answer, "probe_reads");
    if (!probe || !json_is_array(reads))
        return;
    json_t *all = member(probe, "reads", 1);
    size_t i;
    json_t *n;
    json_array_foreach(reads, i, n)
    {
        if (!json_is_object(n) || json_array_size(all) >= 1000)
            continue;
        json_t *copy = json_deep_copy(n);
        json_object_set_new(copy, "reader", json_string(reader));
        json_array_append_new(all, copy);
    }
}

void cd_effect(struct eng_run *r, const char *step, const char *kind, const char *shown, int had_outcome)
{
    json_t *probe = probe_of(r);
    if (!probe || !step)
        return;
    json_t *effects = member(probe, "effects", 0);
    json_t *list = json_object_get(effects, step);
    if (!list) {
        list = json_array();
        json_object_set_new(effects, step, list);
    }
    if (json_array_size(list) < 50)
        json_array_append_new(list, json_pack("{s:s, s:s, s:b}", "kind", kind, "shown", shown ? shown : "",
                                              "had_outcome", had_outcome));
}

void cd_failed(struct eng_run *r, const char *step, const char *kind, const char *reason)
{
    json_t *probe = probe_of(r);
    if (probe)
        json_array_append_new(member(probe, "failed", 1),
                              json_pack("{s:s, s:s, s:s}", "step", step, "kind", kind, "reason", reason ? reason : ""));
}

void cd_status(struct eng_run *r, const char *step, const char *status)
{
    json_t *probe = probe_of(r);
    if (probe)
        json_object_set_new(member(probe, "status", 0), step, json_string(status));
}

/* ------------------------------------------------------------------ report */

static json_t *step_def(json_t *outline, const char *id)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(outline, "steps"), i, s) if (!strcmp(pr_str(s, "id"), id)) return s;
    return NULL;
}

/* "file:line" where a step is defined (malloc'd). */
static char *defined_at(json_t *outline, const char *playbook, const char *id)
{
    json_t *def = step_def(outline, id);
    const char *file = def && pr_str(def, "file") ? pr_str(def, "file") : playbook;
    return ut_xasprintf("%s:%lld", file, def ? pr_int(def, "line", 0) : 0LL);
}

/* Which effects of a step had no outcome: "ctx.exec" / "ctx.http" /
 * "ctx.exec and ctx.http" (static), or NULL when every one had one. */
static const char *defaulted_kinds(json_t *effects)
{
    int exec = 0, http = 0;
    size_t i;
    json_t *e;
    json_array_foreach(effects, i, e) if (!json_is_true(json_object_get(e, "had_outcome")))
    {
        exec |= !strcmp(pr_str(e, "kind"), "exec");
        http |= !strcmp(pr_str(e, "kind"), "http");
    }
    return exec && http ? "ctx.exec and ctx.http" : exec ? "ctx.exec" : http ? "ctx.http" : NULL;
}

static int already(json_t *seen, const char *key)
{
    if (json_object_get(seen, key))
        return 1;
    json_object_set_new(seen, key, json_true());
    return 0;
}

/* Prints the problems (stderr, FILE:LINE: ...) and notes; returns the
 * number of problems. */
static int report(const char *playbook, json_t *outline, json_t *probe)
{
    int problems = 0;
    fflush(stdout); /* the notes so far come first on a shared terminal */
    json_t *effects = json_object_get(probe, "effects");
    json_t *status = json_object_get(probe, "status");
    json_t *seen = json_object();
    json_t *blamed = json_object(); /* steps whose failure a read already explains */
    json_t *optional = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(probe, "reads"), i, n)
    {
        const char *reader = pr_str(n, "reader"), *path = pr_str(n, "path"), *src = pr_str(n, "step");
        json_t *fx = json_object_get(effects, src);
        /* Only a field inside a result is the simulation's to provide: a
         * whole result that is nil, or a step that did not run (skipped,
         * not yet), is the playbook's own shape, the same live. */
        char *prefix = ut_xasprintf("steps.%s.result.", src);
        int in_result = !strncmp(path, prefix, strlen(prefix));
        free(prefix);
        if (!in_result || !json_array_size(fx))
            continue;
        char *key = ut_xasprintf("%s|%s", reader, path);
        int dup = already(seen, key);
        free(key);
        if (dup)
            continue;
        char *where = pr_str(n, "where") ? ut_xstrdup(pr_str(n, "where")) : defined_at(outline, playbook, reader);
        char *src_at = defined_at(outline, playbook, src);
        const char *kinds = defaulted_kinds(fx);
        if (kinds)
            fprintf(stderr,
                    "%s: step \"%s\" reads %s, which a drill does not provide: step \"%s\" (%s) has no "
                    "simulated outcome for its %s; give it drill = { stdout = ... } (http: drill = { "
                    "json = ... }) or an outcome in the scenario\n",
                    where, reader, path, src, src_at, kinds);
        else /* perhaps an optional field: worth a look, not an error */
            json_array_append_new(optional, json_sprintf("note: %s: step \"%s\" reads %s, which is nil in this drill: "
                                                         "the simulated outcome of step \"%s\" (%s) does not "
                                                         "provide it (fine if the field is optional)",
                                                         where, reader, path, src, src_at));
        if (kinds) {
            problems++;
            json_object_set_new(blamed, reader, json_true());
        }
        free(where);
        free(src_at);
    }
    json_array_foreach(json_object_get(probe, "failed"), i, n)
    {
        const char *step = pr_str(n, "step"), *kind = pr_str(n, "kind");
        if (json_object_get(blamed, step) || !strcmp(kind, "fail"))
            continue; /* explained above, or a deliberate ctx.fail */
        char *at = defined_at(outline, playbook, step);
        const char *own = defaulted_kinds(json_object_get(effects, step));
        fprintf(stderr, "%s: step \"%s\" fails in a drill (%s): %s%s%s%s%s\n", at, step, kind, pr_str(n, "reason"),
                own ? " (its " : "", own ? own : "",
                own ? " has no simulated outcome: give it a `drill` table or an outcome in the scenario)" : "",
                !strcmp(kind, "timeout") ? " (a drilled step has nothing to wait for: check --drill gives it "
                                           "a few seconds)" : "");
        free(at);
        problems++;
    }
    fflush(stderr);
    json_array_foreach(optional, i, n) printf("%s\n", json_string_value(n));
    json_decref(optional);
    const char *step;
    json_t *fx;
    json_object_foreach(effects, step, fx)
    {
        const char *kinds = defaulted_kinds(fx);
        if (!kinds)
            continue;
        char *at = defined_at(outline, playbook, step);
        printf("note: %s: step \"%s\": %s has no simulated outcome; a drill answers %s\n", at, step, kinds,
               !strcmp(kinds, "ctx.http") ? "200 with an empty body" : "code 0 with empty output");
        free(at);
    }
    json_t *def;
    int unreached = 0;
    json_array_foreach(json_object_get(outline, "steps"), i, def) unreached += !json_object_get(status, pr_str(def, "id"));
    if (unreached) {
        json_t *failed = json_object_get(probe, "failed");
        json_t *last = json_array_get(failed, json_array_size(failed) ? json_array_size(failed) - 1 : 0);
        char *at = last ? defined_at(outline, playbook, pr_str(last, "step")) : ut_xstrdup(playbook);
        printf("note: %s: the drill %s%s%s%s%s%s; %d step%s after it %s not checked (give the inputs with -v, or a "
               "--scenario whose answers and outcomes go further)\n",
               at, last ? "stopped at step \"" : "ended ", last ? pr_str(last, "step") : pr_str(probe, "ended"),
               last ? "\" (" : "", last ? pr_str(last, "kind") : "", last ? "): " : "", last ? pr_str(last, "reason") : "",
               unreached, unreached == 1 ? "" : "s", unreached == 1 ? "was" : "were");
        free(at);
    }
    json_object_set_new(probe, "unreached", json_integer(unreached));
    json_decref(seen);
    json_decref(blamed);
    return problems;
}

int cd_check(const char *playbook, json_t *vars, json_t *attach, json_t *plugins, const char *scenario_path,
             const char *config, json_t *outline)
{
    sc_scenario *scenario = NULL;
    if (scenario_path) {
        char err[1024];
        scenario = sc_load_file(scenario_path, err, sizeof err);
        if (!scenario) {
            fprintf(stderr, "%s\n", err);
            return IRP_EXIT_DATAERR;
        }
        sc_note_playbook(scenario, playbook);
    }
    /* Required inputs not given get a placeholder: the probe is about shapes. */
    json_t *probe_vars = json_deep_copy(vars);
    const char *name;
    json_t *in;
    json_object_foreach(scenario ? scenario->inputs : NULL, name, in) if (!json_object_get(probe_vars, name))
        json_object_set(probe_vars, name, in);
    json_object_foreach(json_object_get(outline, "inputs"), name, in)
    {
        if (json_object_get(probe_vars, name) || !json_is_true(json_object_get(in, "required")) ||
            json_is_string(json_object_get(in, "default")))
            continue;
        char *value = ut_xasprintf("probe-%s", name);
        printf("note: %s: input %s not given (-v %s=...): probing with \"%s\"\n", playbook, name, name, value);
        json_object_set_new(probe_vars, name, json_string(value));
        free(value);
    }
    char *dir = ut_temp_dir("irp-check-drill");
    if (!dir) {
        fprintf(stderr, "irp check --drill: cannot make a temporary directory: %s\n", strerror(errno));
        json_decref(probe_vars);
        sc_free(scenario);
        return IRP_EXIT_IOERR;
    }
    json_t *probe = json_object();
    eng_options o;
    memset(&o, 0, sizeof o);
    o.playbook = playbook;
    o.vars = probe_vars;
    o.attach = attach;
    o.plugins = plugins;
    o.run_id = "check-drill";
    o.state_dir = dir;
    o.config = config;
    o.drill = 1;
    o.yes = 1;
    o.speed = scenario && scenario->speed > 0 ? scenario->speed : 1;
    o.scenario = scenario;
    o.memory = (int64_t)256 << 20;
    o.probe = probe;
    int code = eng_run_playbook(&o);
    fflush(stdout);
    int rc;
    if (!json_object_get(probe, "status") && code != 0 && code != IRP_EXIT_FAILED) {
        fprintf(stderr, "irp check --drill: %s: the probe drill could not run (exit %d)\n", playbook, code);
        rc = code;
    } else {
        int problems = report(playbook, outline, probe);
        size_t drilled = json_object_size(json_object_get(probe, "status"));
        if (problems)
            printf("BAD %s: drill check: %d problem%s (each above as FILE:LINE)\n", playbook, problems,
                   problems == 1 ? "" : "s");
        else if (pr_int(probe, "unreached", 0))
            printf("ok  %s: drill check: %zu of %zu steps drilled, no problem in those (see the notes)\n", playbook,
                   drilled, json_array_size(json_object_get(outline, "steps")));
        else
            printf("ok  %s: drill check: %zu step%s drilled, every value a step reads is provided\n", playbook,
                   drilled, drilled == 1 ? "" : "s");
        rc = problems ? IRP_EXIT_DATAERR : 0;
    }
    ut_remove_tree(dir);
    free(dir);
    json_decref(probe);
    json_decref(probe_vars);
    sc_free(scenario);
    return rc;
}
