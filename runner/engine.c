/*
 * engine.c — one run of a playbook: load it in a worker (a broken playbook
 * never half-runs), open the journal, then walk the steps in order: `when`,
 * approval gates, manual steps, automated steps with retries, backoff and
 * deadlines, and on_failure. A worker that crashes or is killed at a hard
 * deadline fails only the step it was running; a fresh worker is handed
 * the results so far and the run carries on.
 */
#include "engine.h"
#include "check_drill.h"
#include "exec.h"
#include "httpcall.h"
#include "loader.h"
#include "secrets.h"
#include "state.h"
#include "term.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOAD_TIMEOUT_MS 5000        /* each file's top-level code (soft, in the worker) */
#define LOAD_HARD_MS (LOAD_TIMEOUT_MS + 500) /* ... and the kill if it is stuck in C;
                                              * it starts again for every file */
#define PREPARE_HARD_MS 8000        /* record and restore requests */
#define MAX_VISITS_PER_STEP 20      /* on_failure jumps may loop; this bounds it */


void eng_record(eng_run *r, const char *type, const char *step, const char *actor, json_t *data)
{
    if (!data)
        data = json_object();
    if (!r->jr || r->journal_failed) {
        json_decref(data);
        return;
    }
    if (r->fx && r->fx->observe)
        r->fx->observe(r, type, step, data);
    sec_redact_json(data);
    if (jr_append(r->jr, type, step, actor, data) < 0) {
        if (jr_error(r->jr)) {
            r->journal_failed = 1;
            nt_hold(r->notify); /* no notification leaves without its record */
            tm_error("the journal cannot be written (%s): stopping before any further side effect",
                     jr_error(r->jr));
        } else {
            /* Refused without harm to the file (too large, not encodable):
             * say so loudly and record that something was refused. */
            tm_error("a %s record could not be journaled (%s); recording that it was refused", type,
                     strerror(errno));
            jr_append(r->jr, "operator.note", step, "irp",
                      json_pack("{s:s, s:s}", "note", "a record was refused by the journal", "type", type));
        }
    }
}

int eng_barrier(eng_run *r)
{
    if (!r->jr || r->journal_failed)
        return -1;
    if (jr_sync(r->jr) < 0) {
        r->journal_failed = 1;
        nt_hold(r->notify);
        tm_error("the journal cannot be synced (%s): stopping before any further side effect",
                 jr_error(r->jr));
        return -1;
    }
    return 0;
}

static json_t *load_request(const eng_options *o, const char *run_id, int check)
{
    json_t *req = json_pack("{s:s, s:s, s:O, s:O, s:O, s:b, s:b, s:I, s:i}", "t", "load", "file",
                            o->playbook, "vars", o->vars, "attach", o->attach, "plugins", o->plugins,
                            "drill", o->drill, "check", check, "memory", (json_int_t)o->memory,
                            "timeout_ms", LOAD_TIMEOUT_MS);
    json_object_set_new(req, "run_id", run_id ? json_string(run_id) : json_null());
    if (o->probe)
        json_object_set_new(req, "probe", json_true());
    return req;
}

/* Sends a load request to a started worker: the worker's answer, or NULL. */
static json_t *request_load(sw_worker *w, json_t *req, char *err, size_t err_size)
{
    json_t *answer = NULL;
    int rc = sw_request(w, req, LOAD_HARD_MS, NULL, &answer);
    if (rc < 0) {
        if (!strcmp(w->dead_reason, "hard deadline")) {
            snprintf(err, err_size,
                     "%s:1: the %s's top-level code did not finish within %ds (stuck inside a C function "
                     "such as a pattern match or string.rep)",
                     w->loading_file[0] ? w->loading_file : pr_str(req, "file"),
                     w->loading_kind[0] ? w->loading_kind : "playbook", LOAD_TIMEOUT_MS / 1000);
        }
        else
            snprintf(err, err_size, "%s: the worker failed while loading: %s", pr_str(req, "file"),
                     w->dead_reason);
        return NULL;
    }
    return answer;
}

json_t *eng_load_outline(const char *path, json_t *vars, json_t *attach, json_t *plugins, int check,
                         int64_t memory, char *err, size_t err_size)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    sw_worker w;
    memset(&w, 0, sizeof w);
    eng_options o = {.playbook = path, .vars = vars, .attach = attach, .plugins = plugins, .memory = memory};
    json_t *answer = NULL;
    if (sw_start(&w, &loop, NULL, NULL, err, err_size) == 0) {
        json_t *req = load_request(&o, NULL, check);
        answer = request_load(&w, req, err, err_size);
        json_decref(req);
    }
    sw_destroy(&w);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    return answer;
}

/* Prints a load failure: every problem as file:line: message. */
static void print_invalid(json_t *answer)
{
    json_t *errors = json_object_get(answer, "errors");
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        const char *file = pr_str(e, "file");
        long long line = pr_int(e, "line", 0);
        if (line > 0)
            fprintf(stderr, "%s:%lld: %s\n", file ? file : "?", line, pr_str(e, "msg") ? pr_str(e, "msg") : "?");
        else
            fprintf(stderr, "%s: %s\n", file ? file : "?", pr_str(e, "msg") ? pr_str(e, "msg") : "?");
    }
}

/* The playbook's title with its {{input}} templates rendered, on one line:
 * what the run header, run.started and notifications show. The title as
 * written stays in "title_template". */
static void render_title(json_t *outline)
{
    const char *raw = pr_str(outline, "title");
    if (!raw || !strstr(raw, "{{"))
        return;
    json_t *none = json_object();
    char *title = pb_render(raw, json_object_get(outline, "vars"), none);
    json_decref(none);
    for (char *p = title; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    json_object_set_new(outline, "title_template", json_string(raw));
    json_object_set_new(outline, "title", json_string(title));
    free(title);
}

static int start_worker(eng_run *r)
{
    char err[512];
    if (sw_start(&r->worker, r->loop, eng_on_call, r, err, sizeof err) < 0) {
        tm_error("%s", err);
        return -2;
    }
    json_t *answer = request_load(&r->worker, r->load_request, err, sizeof err);
    if (!answer) {
        tm_error("%s", err);
        return -1;
    }
    const char *t = pr_str(answer, "t");
    if (!t || strcmp(t, "loaded") != 0) {
        if (t && !strcmp(t, "invalid"))
            print_invalid(answer);
        else
            tm_error("the worker answered the load with '%s'", t ? t : "?");
        json_decref(answer);
        return -1;
    }
    if (!r->outline) {
        r->outline = json_incref(json_object_get(answer, "outline"));
        r->steps = json_object_get(r->outline, "steps");
        render_title(r->outline);
    }
    json_decref(answer);
    return 0;
}

/* Replaces a dead worker with a fresh one that knows every recorded result. */
int eng_restart_worker(eng_run *r)
{
    if (r->interrupted)
        return -1;
    sw_stop(&r->worker);
    if (start_worker(r) < 0)
        return -1;
    json_t *req = json_pack("{s:s, s:O}", "t", "restore", "steps", r->state);
    json_t *answer = NULL;
    int rc = sw_request(&r->worker, req, PREPARE_HARD_MS, NULL, &answer);
    json_decref(req);
    json_decref(answer);
    return rc == 0 ? 0 : -1;
}

void eng_set_state(eng_run *r, const char *id, const char *status, json_t *result)
{
    cd_status(r, id, status);
    json_object_set_new(r->state, id, json_pack("{s:s, s:o}", "status", status,
                                                "result", result ? result : json_null()));
    /* Tell the worker, so ctx.steps[id] agrees with the record. */
    json_t *req = json_pack("{s:s, s:s, s:s, s:O}", "t", "record", "step", id, "status", status, "result",
                            json_object_get(json_object_get(r->state, id), "result"));
    json_t *answer = NULL;
    if (sw_request(&r->worker, req, PREPARE_HARD_MS, NULL, &answer) < 0)
        eng_restart_worker(r);
    json_decref(req);
    json_decref(answer);
}

static long step_index(eng_run *r, const char *id)
{
    size_t i;
    json_t *def;
    json_array_foreach(r->steps, i, def) if (id && pr_str(def, "id") && !strcmp(pr_str(def, "id"), id)) return (long)i;
    return -1;
}

static const char *operator_name(void)
{
    const char *n = getenv("IRP_OPERATOR");
    if (n && *n)
        return n;
    struct passwd *pw = getpwuid(getuid());
    if (pw && pw->pw_name)
        return pw->pw_name;
    n = getenv("USER");
    return n && *n ? n : "operator";
}

int eng_sha256_file(const char *path, char hex[65])
{
    const char *why;
    FILE *f = ut_open_regular(path, &why);
    if (!f)
        return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(ctx, buf, n);
    unsigned char md[32];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return -1;
    ut_hex(md, 32, hex);
    return 0;
}

static void on_signal(uv_signal_t *h, int signum)
{
    eng_run *r = h->data;
    r->interrupted++;
    r->interrupt_signal = signum;
    nt_interrupt(r->notify); /* a final drain ends at once: the outbox keeps the rest */
    if (r->interrupted == 1) {
        ex_cancel_all(); /* the wait loops see the flag and stop the worker */
        return;
    }
    /* A second signal: leave at once. The record is synced, and what is
     * not is a torn tail that the next open sets aside. */
    ex_cancel_all();
    if (r->jr)
        jr_sync(r->jr);
    _exit(signum == SIGINT ? IRP_EXIT_SIGINT : IRP_EXIT_TEMPFAIL);
}

/* After the uv signal handles are closed (the end of eng_run_playbook,
 * and until the process exits): async-signal-safe. */
static volatile sig_atomic_t teardown_code = IRP_EXIT_SOFTWARE;

static void on_signal_in_teardown(int signum)
{
    (void)signum;
    _exit(teardown_code);
}

/* An escalation tier naming a notifier the configuration does not define
 * would page nobody: reported as FILE:LINE before anything runs. Returns
 * the number of unknown names. */
static int unknown_notifiers(eng_run *r)
{
    int bad = 0;
    size_t i, j;
    json_t *tier, *name;
    json_array_foreach(json_object_get(r->outline, "escalation"), i, tier)
    {
        json_array_foreach(json_object_get(tier, "notify"), j, name)
        {
            char why[512];
            if (!json_is_string(name) || !nt_unknown(r->notify, json_string_value(name), why, sizeof why))
                continue;
            tm_error("%s:%lld: escalation tier %zu notifies '%s', which would page nobody: %s",
                     pr_str(r->outline, "file") ? pr_str(r->outline, "file") : r->opt->playbook,
                     pr_int(r->outline, "line", 0), i + 1, json_string_value(name), why);
            bad++;
        }
    }
    return bad;
}

static void print_header(eng_run *r)
{
    json_t *o = r->outline;
    const char *version = pr_str(o, "version") ? pr_str(o, "version") : "";
    tm_line(TM_BOLD, "== %s%s (%s%s%s) - severity %s", r->opt->drill ? "DRILL: " : "",
            pr_str(o, "title") ? pr_str(o, "title") : "?", pr_str(o, "id") ? pr_str(o, "id") : "?",
            *version ? " " : "", version, pr_str(o, "severity") ? pr_str(o, "severity") : "medium");
    tm_line(TM_DIM, "   run %s - journal %s/journal.jsonl", r->run_id, r->run_dir);
    json_t *vars = json_object_get(o, "vars");
    if (json_object_size(vars)) {
        ut_buf b = {0};
        const char *k;
        json_t *v;
        json_object_foreach(vars, k, v) ut_buf_printf(&b, " %s=%s", k, json_string_value(v) ? json_string_value(v) : "");
        tm_line(TM_DIM, "   inputs:%s", b.data);
        ut_buf_free(&b);
    }
    if (r->opt->yes)
        tm_line(TM_YELLOW, "   --yes: every manual step is answered done and every approval granted");
}

static int count_status(eng_run *r, const char *status)
{
    int n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(r->state, k, v) if (pr_str(v, "status") && !strcmp(pr_str(v, "status"), status)) n++;
    return n;
}

/* Runs the steps; returns the run's status word and sets *exit_code. */
static const char *walk_steps(eng_run *r, int *exit_code, char **failed_step)
{
    size_t total = json_array_size(r->steps);
    int *visits = ut_xcalloc(total ? total : 1, sizeof *visits);
    const char *last_phase = "\x01";
    size_t i = 0;
    const char *status = "succeeded";
    *exit_code = IRP_EXIT_OK;
    /* A failure recorded just before the run stopped, whose on_failure had
     * not acted yet (resume.c): it acts now, and the step is not run again. */
    const char *pending = r->opt->resume_failed;
    int escalated = r->opt->resume_failed_escalated;
    /* Outcomes forgotten by a jump back, until the step runs again: a loop
     * stopped below puts them back, so the summary counts what the journal
     * shows last for each step (not "0 failed"). */
    json_t *forgotten = json_object();
    const char *jumped_from = NULL; /* the step whose on_failure jumped last */
    while (i < total) {
        json_t *def = json_array_get(r->steps, i);
        const char *id = pr_str(def, "id");
        json_t *st = json_object_get(r->state, id);
        char *reason = NULL;
        enum eng_outcome out;
        if (pending && id && !strcmp(pending, id) && st && !strcmp(pr_str(st, "status") ? pr_str(st, "status") : "", "failed")) {
            pending = NULL;
            reason = ut_xstrdup(r->opt->resume_failed_reason ? r->opt->resume_failed_reason : "?");
            tm_line(TM_YELLOW, "   step \"%s\" failed before the run stopped (%s): its on_failure (%s) applies now", id,
                    reason, pr_str(def, "on_failure") ? pr_str(def, "on_failure") : "abort");
            out = OUT_FAILED;
            if (escalated && pr_str(def, "on_failure") && !strcmp(pr_str(def, "on_failure"), "escalate")) {
                free(reason);
                i++; /* its escalation is on record already */
                continue;
            }
        } else if (st && pr_str(st, "status") && strcmp(pr_str(st, "status"), "started") != 0) {
            i++; /* finished before (resume): its result stands */
            continue;
        } else {
            if (++visits[i] > MAX_VISITS_PER_STEP) {
                tm_error("step \"%s\" was reached %d times through on_failure jumps (last from \"%s\"): "
                         "stopping the loop", id, MAX_VISITS_PER_STEP, jumped_from ? jumped_from : "?");
                const char *k;
                json_t *v;
                json_object_foreach(forgotten, k, v) if (!json_object_get(r->state, k))
                    json_object_set(r->state, k, v);
                *failed_step = ut_xstrdup(jumped_from ? jumped_from : id); /* the step that keeps failing */
                status = "failed";
                *exit_code = IRP_EXIT_FAILED;
                break;
            }
            out = eng_run_step(r, i, total, &last_phase, &reason);
        }
        if (r->journal_failed || out == OUT_FATAL) {
            free(reason);
            status = "fatal";
            *exit_code = r->journal_failed ? IRP_EXIT_IOERR : IRP_EXIT_SOFTWARE;
            break;
        }
        if (out == OUT_STOPPED || out == OUT_NO_ANSWER) {
            free(reason);
            status = out == OUT_STOPPED ? "interrupted" : "no-answer";
            *exit_code = out == OUT_STOPPED && r->interrupt_signal == SIGINT ? IRP_EXIT_SIGINT : IRP_EXIT_TEMPFAIL;
            *failed_step = ut_xstrdup(id);
            break;
        }
        if (out != OUT_FAILED) {
            i++;
            continue;
        }
        const char *on_failure = pr_str(def, "on_failure");
        if (!on_failure)
            on_failure = "abort";
        if (!strcmp(on_failure, "continue")) {
            i++;
        } else if (!strcmp(on_failure, "escalate")) {
            char *why = ut_xasprintf("step \"%s\" failed: %s", id, reason ? reason : "?");
            eng_escalate(r, why, id, 0);
            free(why);
            i++;
        } else if (!strcmp(on_failure, "abort")) {
            *failed_step = ut_xstrdup(id);
            status = "failed";
            *exit_code = IRP_EXIT_FAILED;
            free(reason);
            break;
        } else {
            long target = step_index(r, on_failure);
            jumped_from = id;
            tm_line(TM_YELLOW, "      on_failure: going to step \"%s\"", on_failure);
            if (target > (long)i) {
                /* Jumping forward: the steps in between are skipped, on the record. */
                for (size_t k = i + 1; k < (size_t)target; k++) {
                    const char *skipped = pr_str(json_array_get(r->steps, k), "id");
                    if (json_object_get(r->state, skipped))
                        continue; /* recorded before the run stopped and was resumed */
                    char *why = ut_xasprintf("jumped over by on_failure of \"%s\"", id);
                    eng_record(r, "step.skipped", skipped, r->operator_name,
                               json_pack("{s:s, s:s}", "reason", why, "jumped_from", id));
                    eng_set_state(r, skipped, "skipped", NULL);
                    free(why);
                }
            }
            i = target >= 0 ? (size_t)target : total;
            /* A step jumped back to runs again: forget its earlier outcome. */
            if (target >= 0)
                for (size_t k = (size_t)target; k < total; k++) {
                    const char *again = pr_str(json_array_get(r->steps, k), "id");
                    json_t *was = json_object_get(r->state, again);
                    if (was)
                        json_object_set(forgotten, again, was);
                    json_object_del(r->state, again);
                }
        }
        free(reason);
    }
    json_decref(forgotten);
    free(visits);
    return status;
}

int eng_run_playbook(const eng_options *opt)
{
    eng_run run;
    eng_run *r = &run;
    memset(r, 0, sizeof *r);
    r->opt = opt;
    r->fx = opt->drill ? &fx_drill : &fx_live;
    r->lock_fd = -1;
    r->state = json_object();
    r->operator_name = operator_name();
    tm_init(opt->drill);
    tm_quiet(opt->probe != NULL);
    signal(SIGPIPE, SIG_IGN);

    uv_loop_t loop;
    uv_loop_init(&loop);
    r->loop = &loop;
    uv_signal_t sigint, sigterm;
    uv_signal_init(&loop, &sigint);
    uv_signal_init(&loop, &sigterm);
    sigint.data = sigterm.data = r;
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_unref((uv_handle_t *)&sigint);
    uv_unref((uv_handle_t *)&sigterm);

    int code = IRP_EXIT_SOFTWARE;
    char *failed_step = NULL;
    r->run_id = opt->run_id ? ut_xstrdup(opt->run_id) : st_new_run_id();
    const char *state_dir = st_state_dir(opt->state_dir);
    r->run_dir = st_run_dir(state_dir, r->run_id);
    r->load_request = load_request(opt, r->run_id, 0);

    /* 0. Notifiers: a bad configuration stops the run before anything happens. */
    {
        char nerr[1024];
        int ncode = 0;
        r->notify = nt_open(&loop, opt->config, state_dir, opt->live_notify, eng_on_notify_event, r, &ncode, nerr, sizeof nerr);
        if (!r->notify) {
            tm_error("%s", nerr);
            code = ncode;
            goto out;
        }
    }

    /* 1. The whole playbook is loaded and validated before anything runs. */
    int loaded = start_worker(r);
    if (loaded < 0) {
        code = loaded == -2 ? IRP_EXIT_SOFTWARE : IRP_EXIT_DATAERR;
        goto out;
    }
    if (unknown_notifiers(r) > 0) {
        code = IRP_EXIT_DATAERR;
        goto out;
    }
    char hash[65] = "";
    if (eng_sha256_file(opt->playbook, hash) < 0) {
        tm_error("%s: cannot read: %s", opt->playbook, strerror(errno));
        code = IRP_EXIT_DATAERR;
        goto out;
    }
    if (r->fx->prepare && (code = r->fx->prepare(r)) != 0)
        goto out;

    /* 2. The record: a new journal, or the one of the run being resumed. */
    char err[512];
    int rc = opt->resume ? eng_open_resumed_record(r, hash, err, sizeof err) : eng_create_record(r, state_dir, hash, err, sizeof err);
    if (rc != 0) {
        code = rc;
        goto out;
    }
    print_header(r);
    if (r->fx->begin && (code = r->fx->begin(r)) != 0)
        goto out;
    nt_start(r->notify); /* the journal exists: deliveries (and their records) may begin */
    /* 3. Escalation starts with the run (its timers run while a resume asks
     * about the step in flight); then the steps. */
    json_t *tiers = json_object_get(r->outline, "escalation");
    if (!opt->resume && json_array_size(tiers) && pr_int(json_array_get(tiers, 0), "after_ms", 0) == 0)
        eng_escalate(r, "run started", NULL, 1);
    eng_escalation_start(r);
    if (opt->resume && (code = eng_decide_in_flight(r)) != 0) {
        eng_escalation_stop(r);
        goto out;
    }
    const char *status = walk_steps(r, &code, &failed_step);
    if (opt->probe)
        json_object_set_new(opt->probe, "ended", json_string(status));
    /* A drill's fast clock may have passed a tier's time since the last
     * tick: it fires now, before the end is recorded (a live run's tick is
     * 250 ms: nobody is paged in the second the incident is resolved). */
    if (opt->drill && !opt->probe && (!strcmp(status, "succeeded") || !strcmp(status, "failed")))
        eng_escalation_catch_up(r);
    eng_escalation_stop(r);

    int64_t ms = ut_mono_ms() - r->started_mono;
    char d[32];
    ut_format_duration(ms, d, sizeof d);
    if (!strcmp(status, "interrupted") || !strcmp(status, "no-answer")) {
        eng_record(r, "run.interrupted", failed_step, r->operator_name,
                   json_pack("{s:s, s:s?}", "reason",
                             !strcmp(status, "no-answer") ? "no answer: the operator's input ended"
                             : r->interrupt_signal == SIGINT ? "SIGINT"
                                                             : "SIGTERM",
                             "step", failed_step));
        if (!strcmp(status, "no-answer"))
            tm_line(TM_YELLOW, "== no answer at step \"%s\" (the input ended)", failed_step ? failed_step : "?");
        tm_line(TM_YELLOW, "== run %s interrupted after %s; continue it with: irp resume %s", r->run_id, d, r->run_id);
    } else if (strcmp(status, "fatal") != 0) {
        json_t *data = json_pack("{s:s, s:I, s:i, s:i, s:i}", "status", status, "duration_ms", (json_int_t)ms,
                                 "succeeded", count_status(r, "succeeded"), "failed", count_status(r, "failed"),
                                 "skipped", count_status(r, "skipped"));
        if (failed_step)
            json_object_set_new(data, "failed_step", json_string(failed_step));
        eng_record(r, "run.finished", NULL, r->operator_name, data);
        if (eng_barrier(r) < 0)
            code = IRP_EXIT_IOERR;
        tm_line(!strcmp(status, "succeeded") ? TM_GREEN : TM_RED,
                "== run %s %s in %s: %d succeeded, %d failed, %d skipped%s%s", r->run_id, status, d,
                count_status(r, "succeeded"), count_status(r, "failed"), count_status(r, "skipped"),
                failed_step ? "; stopped at " : "", failed_step ? failed_step : "");
    }
    if (r->fx->finish && strcmp(status, "fatal") != 0 && !r->journal_failed)
        code = r->fx->finish(r, status, code);
    /* A live incident is resolved when its run succeeds; an exercise's
     * [DRILL] pages (--live-notify) when the drill finishes, failed or not
     * (an interrupted one is resolved when its resume finishes). */
    if (!strcmp(status, "succeeded") || (r->opt->drill && !strcmp(status, "failed")))
        nt_run_event(r->notify, r->run_id, "resolve");
    if (r->journal_failed && nt_pending(r->notify)) {
        tm_warn("%zu notification%s not sent: the journal cannot be written; kept in the outbox for "
                "`irp outbox flush` once the disk is fixed", nt_pending(r->notify),
                nt_pending(r->notify) == 1 ? "" : "s");
    } else if (nt_pending(r->notify)) {
        /* Up to 10 s in all; said out loud after the first, so a silent
         * terminal never looks like a hung run. */
        size_t left = nt_drain(r->notify, 1000);
        if (left && !r->interrupted) {
            tm_line(TM_DIM, "   waiting up to 9s more for %zu notification%s (Ctrl-C leaves %s in the outbox)", left,
                    left == 1 ? "" : "s", left == 1 ? "it" : "them");
            left = nt_drain(r->notify, 9000);
        }
        if (left)
            tm_warn("%zu notification%s not delivered yet: kept in the outbox for the next run or `irp outbox flush`",
                    left, left == 1 ? "" : "s");
    }
    if (r->journal_failed)
        code = IRP_EXIT_IOERR;
out:
    ex_cancel_all();
    fx_cancel_sleeps();
    while (ex_running())
        uv_run(&loop, UV_RUN_ONCE);
    sw_destroy(&r->worker);
    if (r->jr && jr_close(r->jr) < 0 && code == IRP_EXIT_OK)
        code = IRP_EXIT_IOERR;
    if (r->lock_fd >= 0)
        close(r->lock_fd);
    if (r->fx->release)
        r->fx->release(r);
    tm_shutdown();
    hc_shutdown();
    nt_close(r->notify);
    /* Closing the uv handles puts SIGINT and SIGTERM back to their default
     * action, which would kill irp by the signal: from here on a signal
     * ends irp at once with the exit code the run has (the record is
     * closed; nothing left to do matters). Blocked meanwhile, so none is
     * lost in between. */
    sigset_t stop_signals, saved_mask;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop_signals, &saved_mask);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
    teardown_code = code;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal_in_teardown;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigprocmask(SIG_SETMASK, &saved_mask, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    json_decref(r->outline);
    json_decref(r->state);
    json_decref(r->breached);
    json_decref(r->load_request);
    free(r->run_id);
    free(r->run_dir);
    free(failed_step);
    sec_clear();
    return code;
}
