/*
 * engine_record.c — opening a run's record: a new run directory, its lock
 * and run.started; or, for `irp resume`, the existing journal (refused when
 * the playbook changed or another irp moved the journal meanwhile), the
 * results recorded so far handed to the worker, and the decision about the
 * step that was in flight when the run stopped.
 */
#include "engine.h"
#include "config.h"
#include "journal.h"
#include "scenario.h"
#include "secrets.h"
#include "state.h"
#include "term.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PREPARE_HARD_MS 8000        /* the restore request */

/* Step ids of the outline, as a JSON array. */
static json_t *outline_step_ids(eng_run *r)
{
    json_t *ids = json_array();
    size_t i;
    json_t *def;
    json_array_foreach(r->steps, i, def) json_array_append_new(ids, json_string(pr_str(def, "id")));
    return ids;
}

/* {step id: phase} of the outline (steps without a phase are left out), so
 * that `irp report` can tell phase times from the journal alone. */
static json_t *outline_step_phases(eng_run *r)
{
    json_t *map = json_object();
    size_t i;
    json_t *def;
    json_array_foreach(r->steps, i, def)
    {
        if (pr_str(def, "id") && pr_str(def, "phase"))
            json_object_set_new(map, pr_str(def, "id"), json_string(pr_str(def, "phase")));
    }
    return map;
}

/* {absolute path: sha256} of the other files the steps came from: the
 * attach files and the plugins the playbook loaded ("unreadable" when a
 * file cannot be read). */
static json_t *source_hashes(eng_run *r)
{
    json_t *out = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(r->outline, "sources"), i, v)
    {
        if (!json_is_string(v))
            continue;
        char *abs = realpath(json_string_value(v), NULL);
        char hex[65];
        if (eng_sha256_file(json_string_value(v), hex) < 0)
            snprintf(hex, sizeof hex, "unreadable");
        json_object_set_new(out, abs ? abs : json_string_value(v), json_string(hex));
        free(abs);
    }
    return out;
}

/* Creates the run directory, takes its lock and writes run.started. 0 or an exit code. */
/* The paths of list made absolute (as given when they cannot be resolved);
 * items of the configuration's attach section only when they are for
 * playbook id. */
static json_t *absolute_paths(json_t *list, const char *id)
{
    json_t *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        /* a path, or {"playbook","path"} from the configuration's attach section */
        const char *p = json_is_string(v) ? json_string_value(v) : json_string_value(json_object_get(v, "path"));
        if (!p || (!json_is_string(v) && (!id || strcmp(id, pr_str(v, "playbook") ? pr_str(v, "playbook") : ""))))
            continue;
        char *abs = realpath(p, NULL);
        json_t *item = json_string(abs ? abs : p);
        if (!json_is_string(v))
            item = json_pack("{s:O, s:o}", "playbook", json_object_get(v, "playbook"), "path", item);
        json_array_append_new(out, item);
        free(abs);
    }
    return out;
}

int eng_create_record(eng_run *r, const char *state_dir, const char *hash, char *err, size_t err_size)
{
    const eng_options *opt = r->opt;
    char *runs_dir = ut_xasprintf("%s/runs", state_dir);
    int made = st_mkdirs(runs_dir);
    free(runs_dir);
    if (made < 0) {
        tm_error("cannot create the state directory %s/runs: %s", state_dir, strerror(errno));
        return IRP_EXIT_IOERR;
    }
    if (mkdir(r->run_dir, 0700) < 0) {
        int e = errno;
        if (e == EEXIST)
            tm_error("run %s already exists in %s (irp resume %s continues it)", r->run_id, state_dir, r->run_id);
        else
            tm_error("cannot create %s: %s", r->run_dir, strerror(e));
        return e == EEXIST ? IRP_EXIT_USAGE : IRP_EXIT_IOERR;
    }
    long holder = 0;
    r->lock_fd = jr_lock_run(r->run_dir, &holder, err, err_size);
    if (r->lock_fd < 0) {
        tm_error("%s", err);
        return IRP_EXIT_TEMPFAIL;
    }
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    char *abs = realpath(opt->playbook, NULL);
    json_t *started = json_pack("{s:{s:s?, s:s?, s:s?, s:s, s:s, s:s, s:o}, s:O, s:s, s:s, s:i, s:b, s:I}",
                                "playbook", "id", pr_str(r->outline, "id"), "title", pr_str(r->outline, "title"),
                                "version", pr_str(r->outline, "version"), "file", opt->playbook, "path",
                                abs ? abs : opt->playbook, "sha256", hash, "steps", outline_step_ids(r), "inputs",
                                json_object_get(r->outline, "vars"), "operator", r->operator_name, "host", host,
                                "pid", (int)getpid(), "yes", opt->yes, "memory", (json_int_t)opt->memory);
    /* What a resume must load again to get the same steps, found from
     * wherever the resume is started. */
    json_t *pb = json_object_get(started, "playbook");
    json_object_set_new(pb, "sources", source_hashes(r));
    /* What a report measures the run against: severity, phases in order,
     * each step's phase and the objectives (ms). */
    json_object_set_new(pb, "severity", json_string(pr_str(r->outline, "severity") ? pr_str(r->outline, "severity")
                                                                                    : "medium"));
    json_t *phases = json_object_get(r->outline, "phases");
    json_object_set_new(pb, "phases", json_is_array(phases) ? json_deep_copy(phases) : json_array());
    json_object_set_new(pb, "step_phases", outline_step_phases(r));
    json_t *objectives = json_object_get(r->outline, "objectives");
    json_object_set_new(pb, "objectives", json_is_object(objectives) ? json_deep_copy(objectives) : json_object());
    json_object_set_new(started, "attach", absolute_paths(opt->attach, pr_str(r->outline, "id")));
    json_object_set_new(started, "plugins", absolute_paths(opt->plugins, NULL));
    /* The notifier configuration, so that a resume from anywhere pages the
     * same people: its absolute path only (null: the embedded default). */
    char *config = cf_chosen_path(opt->config);
    json_object_set_new(started, "config", config ? json_string(config) : json_null());
    free(config);
    free(abs);
    if (opt->drill) {
        json_object_set_new(started, "speed", json_real(opt->speed));
        json_object_set_new(started, "live_notify", json_boolean(opt->live_notify));
        if (opt->scenario && opt->scenario->path) {
            char *abs_sc = realpath(opt->scenario->path, NULL);
            json_object_set_new(started, "scenario", json_string(abs_sc ? abs_sc : opt->scenario->path));
            free(abs_sc);
        }
    }
    sec_redact_json(started);
    r->jr = jr_create(r->run_dir, r->run_id, opt->drill ? "drill" : "live", started, err, err_size);
    if (!r->jr) {
        tm_error("%s", err);
        return IRP_EXIT_IOERR;
    }
    r->started_mono = ut_mono_ms();
    return 0;
}

/* Says what differs between the playbook (its attach files and plugins,
 * its steps) now and when the run started; NULL when nothing does. */
static char *describe_change(eng_run *r, const char *hash, json_t *sources)
{
    ut_buf b = {0};
    if (strcmp(hash, r->opt->resume_sha256 ? r->opt->resume_sha256 : "") != 0)
        ut_buf_printf(&b, "%s changed since the run started (sha256 %.12s... now %.12s...)", r->opt->playbook,
                      r->opt->resume_sha256, hash);
    json_t *then_src = r->opt->resume_sources;
    const char *path;
    json_t *h;
    if (then_src) {
        json_object_foreach(then_src, path, h)
        {
            json_t *now_h = json_object_get(sources, path);
            if (!now_h)
                ut_buf_printf(&b, "%s%s is no longer loaded", b.len ? "; " : "", path);
            else if (!json_equal(h, now_h))
                ut_buf_printf(&b, "%s%s changed since the run started", b.len ? "; " : "", path);
        }
        json_object_foreach(sources, path, h) if (!json_object_get(then_src, path))
            ut_buf_printf(&b, "%s%s is loaded now but was not when the run started", b.len ? "; " : "", path);
    }
    json_t *now = outline_step_ids(r);
    json_t *then = r->opt->resume_steps;
    const char *labels[2] = {"steps added: ", "steps removed: "};
    json_t *lists[2][2] = {{now, then}, {then, now}};
    for (int k = 0; k < 2; k++) {
        int first = 1;
        size_t i, j;
        json_t *a, *bb;
        json_array_foreach(lists[k][0], i, a)
        {
            int found = 0;
            json_array_foreach(lists[k][1], j, bb) if (json_equal(a, bb)) found = 1;
            if (!found) {
                ut_buf_printf(&b, "%s%s", first ? (b.len ? "; " : "") : ", ", first ? labels[k] : "");
                ut_buf_puts(&b, json_string_value(a) ? json_string_value(a) : "?");
                first = 0;
            }
        }
    }
    json_decref(now);
    return b.data; /* NULL when nothing was printed */
}

/* Reopens a run's journal to continue it. 0 or an exit code. */
int eng_open_resumed_record(eng_run *r, const char *hash, char *err, size_t err_size)
{
    const eng_options *opt = r->opt;
    /* --force takes an edited playbook, never another one: the journal is
     * the record of one playbook's run. */
    json_t *started = json_array_get(opt->resume_records, 0);
    const char *was = pr_str(json_object_get(json_object_get(started, "data"), "playbook"), "id");
    const char *is = pr_str(r->outline, "id");
    if (was && is && strcmp(was, is) != 0) {
        tm_error("run %s is a run of playbook '%s'; %s is playbook '%s' (not even --force resumes a run "
                 "with another playbook)",
                 r->run_id, was, opt->playbook ? opt->playbook : "the file given", is);
        return IRP_EXIT_DATAERR;
    }
    json_t *sources = source_hashes(r);
    char *what = describe_change(r, hash, sources);
    int changed = what != NULL;
    if (changed && !opt->force) {
        tm_error("%s; a run is resumed only with the playbook it started with (irp resume %s --force "
                 "continues anyway, and journals that it did)",
                 what, r->run_id);
        free(what);
        json_decref(sources);
        return IRP_EXIT_DATAERR;
    }
    long holder = 0;
    r->lock_fd = jr_lock_run(r->run_dir, &holder, err, err_size);
    if (r->lock_fd < 0) {
        tm_error("%s", err);
        free(what);
        json_decref(sources);
        return IRP_EXIT_TEMPFAIL;
    }
    r->jr = jr_open_append(r->run_dir, err, err_size);
    if (!r->jr) {
        int bad = errno == EBADMSG; /* damage, rather than a failing disk */
        tm_error("%s", err);
        free(what);
        json_decref(sources);
        return bad ? IRP_EXIT_DATAERR : IRP_EXIT_IOERR;
    }
    /* Another irp may have resumed (even finished) the run between our
     * reading its journal and taking its lock: what we read is stale. A
     * torn tail set aside just now adds one record, which is fine. */
    long long seen = opt->resume_last_seq, now = jr_last_seq(r->jr);
    if (now != seen && now != seen + 1) {
        tm_error("run %s changed while this resume was starting (another irp continued it): "
                 "irp status %s shows where it stands",
                 r->run_id, r->run_id);
        free(what);
        json_decref(sources);
        return IRP_EXIT_TEMPFAIL;
    }
    json_decref(r->state);
    r->state = json_deep_copy(opt->resume_state);
    r->escalation_tier = opt->resume_tier;
    eng_escalation_resume(r, opt->resume_records);
    r->started_mono = ut_mono_ms() - opt->resume_elapsed_ms;
    json_t *data = json_pack("{s:I, s:s, s:i, s:s?, s:b}", "from_seq", (json_int_t)jr_last_seq(r->jr), "operator",
                             r->operator_name, "pid", (int)getpid(), "in_flight", opt->in_flight, "forced",
                             changed && opt->force);
    char *config = cf_chosen_path(opt->config);
    json_object_set_new(data, "config", config ? json_string(config) : json_null());
    if (changed) {
        json_object_set_new(data, "playbook_sha256", json_string(hash));
        json_object_set_new(data, "sources", json_incref(sources));
        json_object_set_new(data, "changed", json_string(what));
    }
    free(what);
    json_decref(sources);
    eng_record(r, "run.resumed", NULL, r->operator_name, data);
    tm_line(TM_BOLD, "== resuming run %s: %zu step%s already finished", r->run_id, json_object_size(r->state),
            json_object_size(r->state) == 1 ? "" : "s");
    if (config)
        tm_line(TM_DIM, "   configuration %s (%s)", config,
                opt->config_via ? opt->config_via : "the run's journal names none: found as a new run would");
    else
        tm_line(TM_DIM, "   configuration: the embedded default, stdout (%s)",
                opt->config_via ? opt->config_via : "the run's journal names none");
    free(config);
    if (changed)
        tm_warn("the playbook changed since the run started; continuing because of --force");
    /* The worker learns the recorded results before any step runs. */
    json_t *req = json_pack("{s:s, s:O}", "t", "restore", "steps", r->state);
    json_t *answer = NULL;
    int rc = sw_request(&r->worker, req, PREPARE_HARD_MS, NULL, &answer);
    json_decref(req);
    json_decref(answer);
    if (rc < 0) {
        tm_error("the worker failed while restoring the run's results: %s", r->worker.dead_reason);
        return IRP_EXIT_SOFTWARE;
    }
    return 0;
}

/* The step that was in flight when the run stopped: run it again only when
 * that is safe (idempotent, or a manual step, which only asks again), else
 * as --in-flight or the operator says. 0 or an exit code. */
int eng_decide_in_flight(eng_run *r)
{
    const char *id = r->opt->in_flight;
    if (!id)
        return 0;
    json_t *def = eng_step_def(r, id);
    if (!def) {
        tm_warn("step \"%s\" was in flight but is not in the playbook any more", id);
        return 0;
    }
    const char *kind = pr_str(def, "kind");
    const char *decision = NULL, *via = NULL;
    if (kind && !strcmp(kind, "manual")) {
        decision = "retry";
        via = "manual step: asked again";
    } else if (pr_bool(def, "idempotent", 0)) {
        decision = "retry";
        via = "idempotent";
    } else if (r->opt->in_flight_answer) {
        decision = r->opt->in_flight_answer;
        via = "--in-flight";
    } else {
        tm_line(TM_YELLOW, "   step \"%s\" was running when the run stopped; it may or may not have acted.", id);
        for (;;) {
            char *line = NULL;
            int rc = tm_prompt(r->loop, "   retry it, mark it done, or skip it? retry / done / skip >", &line,
                               &r->interrupted);
            if (rc < 0) {
                /* Stopped here like at any other prompt: on the record, resumable. */
                int sigint = rc == -2 && r->interrupt_signal == SIGINT;
                tm_error("no decision for the in-flight step \"%s\" (use --in-flight retry|done|skip)", id);
                eng_record(r, "run.interrupted", id, r->operator_name,
                           json_pack("{s:s, s:s}", "reason",
                                     rc == -1 ? "no answer: the operator's input ended" : sigint ? "SIGINT" : "SIGTERM",
                                     "step", id));
                if (eng_barrier(r) < 0)
                    return IRP_EXIT_IOERR;
                tm_line(TM_YELLOW, "== run %s interrupted; continue it with: irp resume %s", r->run_id, r->run_id);
                return sigint ? IRP_EXIT_SIGINT : IRP_EXIT_TEMPFAIL;
            }
            if (!strcmp(line, "retry") || !strcmp(line, "done") || !strcmp(line, "skip")) {
                decision = !strcmp(line, "retry") ? "retry" : !strcmp(line, "done") ? "done" : "skip";
                free(line);
                break;
            }
            free(line);
        }
        via = "operator";
    }
    eng_record(r, "resume.decision", id, r->operator_name,
               json_pack("{s:s, s:s}", "decision", decision, "via", via));
    tm_line(TM_YELLOW, "   in-flight step \"%s\": %s (%s)", id, decision, via);
    if (!strcmp(decision, "done")) {
        eng_record(r, "step.succeeded", id, r->operator_name,
                   json_pack("{s:n, s:s}", "result", "note", "marked done at resume"));
        eng_set_state(r, id, "succeeded", NULL);
    } else if (!strcmp(decision, "skip")) {
        eng_record(r, "step.skipped", id, r->operator_name, json_pack("{s:s}", "reason", "skipped at resume"));
        eng_set_state(r, id, "skipped", NULL);
    }
    return eng_barrier(r) < 0 ? IRP_EXIT_IOERR : 0;
}

