/*
 * engine.c — one run of a playbook: load it in a worker (a broken playbook
 * never half-runs), open the journal, then walk the steps in order: `when`,
 * approval gates, manual steps, automated steps with retries, backoff and
 * deadlines, and on_failure. A worker that crashes or is killed at a hard
 * deadline fails only the step it was running; a fresh worker is handed
 * the results so far and the run carries on.
 */
#include "engine.h"
#include "exec.h"
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

#define LOAD_TIMEOUT_MS 5000        /* the playbook's top-level code (soft) */
#define LOAD_HARD_MS 8000           /* ... and the kill if it is stuck in C */
#define PREPARE_HARD_MS 8000        /* `when` and templates */
#define HARD_GRACE_MS 500           /* hard deadline = step timeout + this */
#define DEFAULT_STEP_TIMEOUT_MS (5 * 60 * 1000)
#define MAX_VISITS_PER_STEP 20      /* on_failure jumps may loop; this bounds it */

enum outcome { OUT_SUCCEEDED, OUT_FAILED, OUT_SKIPPED, OUT_STOPPED, OUT_NO_ANSWER, OUT_FATAL };

void eng_record(eng_run *r, const char *type, const char *step, const char *actor, json_t *data)
{
    if (!data)
        data = json_object();
    if (!r->jr || r->journal_failed) {
        json_decref(data);
        return;
    }
    sec_redact_json(data);
    if (jr_append(r->jr, type, step, actor, data) < 0) {
        r->journal_failed = 1;
        tm_error("the journal cannot be written (%s): stopping before any further side effect",
                 jr_error(r->jr));
    }
}

int eng_barrier(eng_run *r)
{
    if (!r->jr || r->journal_failed)
        return -1;
    if (jr_sync(r->jr) < 0) {
        r->journal_failed = 1;
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
    return req;
}

/* Sends a load request to a started worker: the worker's answer, or NULL. */
static json_t *request_load(sw_worker *w, json_t *req, char *err, size_t err_size)
{
    json_t *answer = NULL;
    int rc = sw_request(w, req, LOAD_HARD_MS, NULL, &answer);
    if (rc < 0) {
        if (!strcmp(w->dead_reason, "hard deadline"))
            snprintf(err, err_size, "%s: loading did not finish within %d s (stuck inside a C function?)",
                     pr_str(req, "file"), LOAD_HARD_MS / 1000);
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
    }
    json_decref(answer);
    return 0;
}

/* Replaces a dead worker with a fresh one that knows every recorded result. */
static int restart_worker(eng_run *r)
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

static void set_state(eng_run *r, const char *id, const char *status, json_t *result)
{
    json_object_set_new(r->state, id, json_pack("{s:s, s:o}", "status", status,
                                                "result", result ? result : json_null()));
    /* Tell the worker, so ctx.steps[id] agrees with the record. */
    json_t *req = json_pack("{s:s, s:s, s:s, s:O}", "t", "record", "step", id, "status", status, "result",
                            json_object_get(json_object_get(r->state, id), "result"));
    json_t *answer = NULL;
    if (sw_request(&r->worker, req, PREPARE_HARD_MS, NULL, &answer) < 0)
        restart_worker(r);
    json_decref(req);
    json_decref(answer);
}

static void timer_noop(uv_timer_t *t)
{
    (void)t;
}

/* Waits ms of run time (a drill's clock may run faster), unless interrupted. */
static void wait_ms(eng_run *r, int64_t ms)
{
    if (r->opt->drill && r->opt->speed > 1)
        ms = (int64_t)((double)ms / r->opt->speed);
    uv_timer_t t;
    uv_timer_init(r->loop, &t);
    int64_t until = ut_mono_ms() + ms;
    while (!r->interrupted && ut_mono_ms() < until) {
        uv_timer_start(&t, timer_noop, (uint64_t)(until - ut_mono_ms()), 0);
        uv_run(r->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&t);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(r->loop, UV_RUN_NOWAIT);
}

static int64_t backoff_delay(int64_t base_ms, int attempt)
{
    if (base_ms <= 0)
        return 0;
    double exp = (double)base_ms * pow(2.0, attempt - 1);
    if (exp > 3600e3)
        exp = 3600e3;
    unsigned char rnd[2] = {0, 0};
    (void)ut_random_bytes(rnd, 2);
    double jitter = 0.5 + (double)((rnd[0] << 8) | rnd[1]) / 65535.0; /* 0.5 .. 1.5 */
    return (int64_t)(exp * jitter);
}

static const char *phase_of(json_t *def)
{
    const char *p = pr_str(def, "phase");
    return p ? p : "";
}

static void print_step_end(tm_style style, const char *word, int64_t ms, const char *detail)
{
    char d[32];
    ut_format_duration(ms, d, sizeof d);
    if (detail && *detail)
        tm_line(style, "      %s (%s): %s", word, d, detail);
    else
        tm_line(style, "      %s (%s)", word, d);
}

/* Runs the approval gate of a step. Returns 1 to go on, 0 when denied
 * (the step is skipped), or OUT_STOPPED / OUT_NO_ANSWER as negative. */
static int approval_gate(eng_run *r, const char *id, const char *role)
{
    eng_record(r, "approval.requested", id, r->operator_name, json_pack("{s:s}", "role", role));
    char *note = NULL;
    int g = eng_ask_approval(r, id, role, &note);
    if (g < 0)
        return g == -2 ? -OUT_STOPPED : -OUT_NO_ANSWER;
    json_t *data = json_pack("{s:s, s:s}", "role", role, "via", r->opt->yes ? "--yes" : "operator");
    if (note)
        json_object_set_new(data, "note", json_string(note));
    eng_record(r, g ? "approval.granted" : "approval.denied", id, r->operator_name, data);
    free(note);
    return g;
}

static enum outcome manual_step(eng_run *r, const char *id, json_t *def, const char *text, char **reason)
{
    if (text && *text)
        tm_block(6, TM_PLAIN, text);
    eng_record(r, "step.started", id, r->operator_name, json_pack("{s:s, s:i}", "kind", "manual", "attempt", 1));
    if (eng_barrier(r) < 0)
        return OUT_FATAL;
    int64_t t0 = ut_mono_ms();
    char *note = NULL;
    eng_answer a = eng_ask_manual(r, id, &note);
    if (a == ANSWER_EOF || a == ANSWER_STOPPED) {
        free(note);
        return a == ANSWER_EOF ? OUT_NO_ANSWER : OUT_STOPPED;
    }
    const char *word = a == ANSWER_DONE ? "done" : a == ANSWER_FAILED ? "failed" : "skip";
    json_t *data = json_pack("{s:s, s:s}", "answer", word, "via", r->opt->yes ? "--yes" : "operator");
    if (note)
        json_object_set_new(data, "note", json_string(note));
    eng_record(r, "manual.answered", id, r->operator_name, data);
    int64_t ms = ut_mono_ms() - t0;
    json_t *result = json_pack("{s:s}", "answer", word);
    if (note)
        json_object_set_new(result, "note", json_string(note));
    enum outcome out;
    if (a == ANSWER_DONE) {
        eng_record(r, "step.succeeded", id, r->operator_name,
                   json_pack("{s:O, s:I}", "result", result, "duration_ms", (json_int_t)ms));
        set_state(r, id, "succeeded", result);
        print_step_end(TM_GREEN, "done", ms, note);
        out = OUT_SUCCEEDED;
    } else if (a == ANSWER_FAILED) {
        *reason = ut_xasprintf("the operator answered failed%s%s", note ? ": " : "", note ? note : "");
        eng_record(r, "step.failed", id, r->operator_name,
                   json_pack("{s:s, s:s, s:I}", "reason", *reason, "kind", "manual", "duration_ms", (json_int_t)ms));
        set_state(r, id, "failed", result);
        print_step_end(TM_RED, "FAILED", ms, note);
        out = OUT_FAILED;
    } else {
        eng_record(r, "step.skipped", id, r->operator_name,
                   json_pack("{s:s}", "reason", note ? note : "skipped by the operator"));
        set_state(r, id, "skipped", result);
        print_step_end(TM_YELLOW, "skipped", ms, note);
        out = OUT_SKIPPED;
    }
    (void)def;
    free(note);
    return out;
}

/* Why a worker that died during a step is gone, in words for the record. */
static char *death_reason(eng_run *r, int64_t timeout_ms)
{
    if (!strcmp(r->worker.dead_reason, "hard deadline")) {
        char d[32];
        ut_format_duration(timeout_ms, d, sizeof d);
        return ut_xasprintf("step timed out after %s and did not stop at its deadline (stuck inside a "
                            "C function such as a pattern match): its worker was killed",
                            d);
    }
    return ut_xasprintf("%s while running the step", r->worker.dead_reason);
}

static enum outcome automated_step(eng_run *r, const char *id, json_t *def, char **reason)
{
    long long timeout = pr_int(def, "timeout_ms", 0);
    if (timeout <= 0)
        timeout = DEFAULT_STEP_TIMEOUT_MS;
    int attempts = (int)pr_int(def, "retries", 0) + 1;
    long long backoff = pr_int(def, "backoff_ms", 1000);
    for (int attempt = 1; attempt <= attempts; attempt++) {
        eng_record(r, "step.started", id, r->operator_name,
                   json_pack("{s:s, s:i, s:i, s:I}", "kind", "run", "attempt", attempt, "attempts", attempts,
                             "timeout_ms", (json_int_t)timeout));
        if (eng_barrier(r) < 0)
            return OUT_FATAL;
        int64_t t0 = ut_mono_ms();
        r->current_step = id;
        r->current_def = def;
        /* In a drill the step's deadline is in run time too. */
        int64_t real_timeout = timeout;
        r->step_deadline_mono = t0 + real_timeout;
        json_t *req = json_pack("{s:s, s:s, s:i, s:I}", "t", "run", "step", id, "attempt", attempt,
                                "timeout_ms", (json_int_t)real_timeout);
        json_t *answer = NULL;
        int rc = sw_request(&r->worker, req, real_timeout + HARD_GRACE_MS, &r->interrupted, &answer);
        json_decref(req);
        r->current_step = NULL;
        r->current_def = NULL;
        r->step_deadline_mono = 0;
        ex_cancel_all(); /* nothing a step started outlives it */
        int64_t ms = ut_mono_ms() - t0;
        if (rc == -2)
            return OUT_STOPPED;
        if (r->journal_failed) {
            json_decref(answer);
            return OUT_FATAL;
        }
        const char *kind = "error";
        char *why = NULL;
        json_t *traceback = NULL;
        if (rc < 0) {
            why = death_reason(r, timeout);
            kind = !strcmp(r->worker.dead_reason, "hard deadline") ? "timeout" : "crash";
            if (restart_worker(r) < 0) {
                free(why);
                return OUT_FATAL;
            }
        } else if (pr_bool(answer, "ok", 0)) {
            json_t *result = json_incref(json_object_get(answer, "result"));
            if (!result)
                result = json_null();
            eng_record(r, "step.succeeded", id, r->operator_name,
                       json_pack("{s:O, s:I, s:i}", "result", result, "duration_ms", (json_int_t)ms, "attempt",
                                 attempt));
            set_state(r, id, "succeeded", result);
            print_step_end(TM_GREEN, "ok", ms, NULL);
            json_decref(answer);
            return OUT_SUCCEEDED;
        } else {
            const char *e = pr_str(answer, "error");
            why = ut_xstrdup(e ? e : "the step failed without a message");
            kind = pr_str(answer, "kind") ? pr_str(answer, "kind") : "error";
            traceback = json_incref(json_object_get(answer, "traceback"));
        }
        char *kind_copy = ut_xstrdup(kind);
        json_decref(answer);
        if (attempt < attempts) {
            int64_t delay = backoff_delay(backoff, attempt);
            eng_record(r, "step.retried", id, r->operator_name,
                       json_pack("{s:i, s:s, s:s, s:I}", "attempt", attempt, "reason", why, "kind", kind_copy,
                                 "delay_ms", (json_int_t)delay));
            char d[32];
            ut_format_duration(delay, d, sizeof d);
            print_step_end(TM_YELLOW, "failed", ms, why);
            tm_line(TM_YELLOW, "      retry %d/%d in %s", attempt + 1, attempts, d);
            json_decref(traceback);
            free(why);
            free(kind_copy);
            wait_ms(r, delay);
            if (r->interrupted)
                return OUT_STOPPED;
            continue;
        }
        json_t *data = json_pack("{s:s, s:s, s:i, s:I}", "reason", why, "kind", kind_copy, "attempts", attempts,
                                 "duration_ms", (json_int_t)ms);
        if (json_is_string(traceback))
            json_object_set(data, "traceback", traceback);
        eng_record(r, "step.failed", id, r->operator_name, data);
        set_state(r, id, "failed", NULL);
        print_step_end(TM_RED, "FAILED", ms, why);
        json_decref(traceback);
        free(kind_copy);
        *reason = why;
        return OUT_FAILED;
    }
    return OUT_FAILED;
}

static enum outcome run_step(eng_run *r, size_t index, size_t total, const char **last_phase, char **reason)
{
    json_t *def = json_array_get(r->steps, index);
    const char *id = pr_str(def, "id");
    const char *phase = phase_of(def);
    if (strcmp(phase, *last_phase) != 0) {
        tm_line(TM_BOLD, "-- %s", *phase ? phase : "(no phase)");
        *last_phase = phase;
    }
    json_t *req = json_pack("{s:s, s:s}", "t", "prepare", "step", id);
    json_t *prep = NULL;
    int rc = sw_request(&r->worker, req, PREPARE_HARD_MS, &r->interrupted, &prep);
    json_decref(req);
    if (rc == -2)
        return OUT_STOPPED;
    const char *title = pr_str(def, "title");
    if (rc < 0 || !strcmp(pr_str(prep, "t") ? pr_str(prep, "t") : "", "error")) {
        char *why = rc < 0 ? ut_xasprintf("`when` or a template of the step: %s", r->worker.dead_reason)
                           : ut_xasprintf("`when` or a template of the step failed: %s",
                                          pr_str(prep, "error") ? pr_str(prep, "error") : "?");
        json_decref(prep);
        if (rc < 0 && restart_worker(r) < 0) {
            free(why);
            return OUT_FATAL;
        }
        tm_line(TM_BOLD, "[%zu/%zu] %s", index + 1, total, title ? title : id);
        eng_record(r, "step.failed", id, r->operator_name, json_pack("{s:s, s:s}", "reason", why, "kind", "when"));
        set_state(r, id, "failed", NULL);
        print_step_end(TM_RED, "FAILED", 0, why);
        *reason = why;
        return OUT_FAILED;
    }
    if (pr_str(prep, "title"))
        title = pr_str(prep, "title");
    char *shown_title = ut_xstrdup(title ? title : id);
    char *manual_text = pr_str(prep, "manual") ? ut_xstrdup(pr_str(prep, "manual")) : NULL;
    int skip = pr_bool(prep, "skip", 0);
    char *skip_reason = ut_xstrdup(pr_str(prep, "reason") ? pr_str(prep, "reason") : "its `when` condition is false");
    json_decref(prep);

    const char *kind = pr_str(def, "kind");
    const char *approval = pr_str(def, "approval");
    tm_line(TM_BOLD, "[%zu/%zu] %s%s%s%s%s", index + 1, total, shown_title,
            kind && !strcmp(kind, "manual") ? "  (manual)" : "", approval ? "  (approval: " : "",
            approval ? approval : "", approval ? ")" : "");
    enum outcome out;
    if (skip) {
        eng_record(r, "step.skipped", id, r->operator_name, json_pack("{s:s}", "reason", skip_reason));
        set_state(r, id, "skipped", NULL);
        print_step_end(TM_DIM, "skipped", 0, skip_reason);
        out = OUT_SKIPPED;
    } else {
        int go = 1;
        if (approval) {
            go = approval_gate(r, id, approval);
            if (go == 0) {
                eng_record(r, "step.skipped", id, r->operator_name,
                           json_pack("{s:s}", "reason", "approval denied"));
                set_state(r, id, "skipped", NULL);
                print_step_end(TM_YELLOW, "skipped", 0, "approval denied");
            }
        }
        if (go < 0)
            out = (enum outcome)(-go);
        else if (go == 0)
            out = OUT_SKIPPED;
        else if (kind && !strcmp(kind, "manual"))
            out = manual_step(r, id, def, manual_text, reason);
        else
            out = automated_step(r, id, def, reason);
    }
    free(shown_title);
    free(manual_text);
    free(skip_reason);
    return out;
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

static int sha256_file(const char *path, char hex[65])
{
    FILE *f = fopen(path, "rb");
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

static void print_header(eng_run *r)
{
    json_t *o = r->outline;
    tm_line(TM_BOLD, "== %s%s (%s %s) - severity %s", r->opt->drill ? "DRILL: " : "",
            pr_str(o, "title") ? pr_str(o, "title") : "?", pr_str(o, "id") ? pr_str(o, "id") : "?",
            pr_str(o, "version") ? pr_str(o, "version") : "", pr_str(o, "severity") ? pr_str(o, "severity") : "medium");
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
    while (i < total) {
        json_t *def = json_array_get(r->steps, i);
        const char *id = pr_str(def, "id");
        json_t *st = json_object_get(r->state, id);
        if (st && pr_str(st, "status") && strcmp(pr_str(st, "status"), "started") != 0) {
            i++; /* finished before (resume): its result stands */
            continue;
        }
        if (++visits[i] > MAX_VISITS_PER_STEP) {
            tm_error("step \"%s\" was reached %d times through on_failure jumps: stopping the loop", id,
                     MAX_VISITS_PER_STEP);
            *failed_step = ut_xstrdup(id);
            status = "failed";
            *exit_code = IRP_EXIT_FAILED;
            break;
        }
        char *reason = NULL;
        enum outcome out = run_step(r, i, total, &last_phase, &reason);
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
            tm_line(TM_YELLOW, "      on_failure: going to step \"%s\"", on_failure);
            i = target >= 0 ? (size_t)target : total;
            /* A step jumped back to runs again: forget its earlier outcome. */
            if (target >= 0)
                for (size_t k = (size_t)target; k < total; k++)
                    json_object_del(r->state, pr_str(json_array_get(r->steps, k), "id"));
        }
        free(reason);
    }
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

    /* 1. The whole playbook is loaded and validated before anything runs. */
    int loaded = start_worker(r);
    if (loaded < 0) {
        code = loaded == -2 ? IRP_EXIT_SOFTWARE : IRP_EXIT_DATAERR;
        goto out;
    }
    char hash[65] = "";
    if (sha256_file(opt->playbook, hash) < 0) {
        tm_error("%s: cannot read: %s", opt->playbook, strerror(errno));
        code = IRP_EXIT_DATAERR;
        goto out;
    }

    /* 2. The record. */
    char runs_dir[4096];
    snprintf(runs_dir, sizeof runs_dir, "%s/runs", state_dir);
    if (st_mkdirs(runs_dir) < 0) {
        tm_error("cannot create the state directory %s: %s", runs_dir, strerror(errno));
        code = IRP_EXIT_IOERR;
        goto out;
    }
    if (mkdir(r->run_dir, 0700) < 0) {
        if (errno == EEXIST)
            tm_error("run %s already exists in %s (irp resume %s continues it)", r->run_id, state_dir, r->run_id);
        else
            tm_error("cannot create %s: %s", r->run_dir, strerror(errno));
        code = errno == EEXIST ? IRP_EXIT_USAGE : IRP_EXIT_IOERR;
        goto out;
    }
    char err[512];
    long holder = 0;
    r->lock_fd = jr_lock_run(r->run_dir, &holder, err, sizeof err);
    if (r->lock_fd < 0) {
        tm_error("%s", err);
        code = IRP_EXIT_TEMPFAIL;
        goto out;
    }
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    json_t *started = json_pack("{s:{s:s?, s:s?, s:s?, s:s, s:s}, s:O, s:s, s:s, s:i, s:b, s:I}", "playbook",
                                "id", pr_str(r->outline, "id"), "title", pr_str(r->outline, "title"), "version",
                                pr_str(r->outline, "version"), "file", opt->playbook, "sha256", hash, "inputs",
                                json_object_get(r->outline, "vars"), "operator", r->operator_name, "host", host,
                                "pid", (int)getpid(), "yes", opt->yes, "memory", (json_int_t)opt->memory);
    if (opt->drill)
        json_object_set_new(started, "speed", json_real(opt->speed));
    sec_redact_json(started);
    r->jr = jr_create(r->run_dir, r->run_id, opt->drill ? "drill" : "live", started, err, sizeof err);
    if (!r->jr) {
        tm_error("%s", err);
        code = IRP_EXIT_IOERR;
        goto out;
    }
    r->started_mono = ut_mono_ms();
    print_header(r);

    /* 3. Escalation starts with the run; then the steps. */
    json_t *tiers = json_object_get(r->outline, "escalation");
    if (json_array_size(tiers) && pr_int(json_array_get(tiers, 0), "after_ms", 0) == 0)
        eng_escalate(r, "run started", NULL, 1);
    eng_escalation_start(r);
    const char *status = walk_steps(r, &code, &failed_step);
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
    if (r->journal_failed)
        code = IRP_EXIT_IOERR;
out:
    ex_cancel_all();
    while (ex_running())
        uv_run(&loop, UV_RUN_ONCE);
    sw_destroy(&r->worker);
    if (r->jr && jr_close(r->jr) < 0 && code == IRP_EXIT_OK)
        code = IRP_EXIT_IOERR;
    if (r->lock_fd >= 0)
        close(r->lock_fd);
    tm_shutdown();
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    json_decref(r->outline);
    json_decref(r->state);
    json_decref(r->load_request);
    free(r->run_id);
    free(r->run_dir);
    free(failed_step);
    sec_clear();
    return code;
}
