/*
 * engine_step.c — one step of a run: `when` and templates (asked of the
 * worker), the approval gate, a manual step's prompt, or an automated
 * step's attempts with deadlines, retries and jittered exponential backoff.
 * Journals every transition; the run loop (engine.c) decides what follows.
 */
#include "engine.h"
#include "check_drill.h"
#include "exec.h"
#include "term.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DRILL_MIN_DEADLINE_MS 2000 /* real time a drilled step always gets (its timeout if shorter) */
#define HARD_GRACE_MS 500           /* hard deadline = step timeout + this */
#define WHEN_SOFT_MS 5000           /* the worker's deadline for `when` (worker.c WHEN_TIMEOUT_MS) */
#define PREPARE_HARD_MS (WHEN_SOFT_MS + HARD_GRACE_MS) /* `when` and templates */
#define DEFAULT_STEP_TIMEOUT_MS (5 * 60 * 1000)

static void timer_noop(uv_timer_t *t)
{
    (void)t;
}

void eng_wait_ms(eng_run *r, int64_t ms)
{
    if (r->opt->drill && r->opt->speed > 1)
        ms = (int64_t)((double)ms / r->opt->speed);
    if (r->opt->probe)
        ms = 0; /* irp check --drill does not wait */
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
    char *what = ut_xasprintf("approval by %s", role);
    void *waiting = eng_wait_escalation_start(r, id, what);
    int g = eng_ask_approval(r, id, role, &note);
    if (g >= 0)
        eng_acknowledge(r);
    eng_wait_escalation_stop(waiting);
    free(what);
    if (g < 0)
        return g == -2 ? -OUT_STOPPED : -OUT_NO_ANSWER;
    json_t *data = json_pack("{s:s, s:s}", "role", role, "via", r->answer_via ? r->answer_via : "operator");
    if (note)
        json_object_set_new(data, "note", json_string(note));
    eng_mark_cut(data, r->answer_cut);
    eng_record(r, g ? "approval.granted" : "approval.denied", id, r->operator_name, data);
    free(note);
    return g;
}

/* Adds where the step was defined (file:line, and the attach file for a
 * step attached to the playbook) to a step.started record's data. */
static json_t *with_origin(eng_run *r, json_t *def, json_t *data)
{
    /* The title as the operator saw it, so a report can name the step. */
    if (r->step_title)
        json_object_set_new(data, "title", json_string(r->step_title));
    const char *file = pr_str(def, "file");
    if (file)
        json_object_set_new(data, "defined_at", json_sprintf("%s:%lld", file, pr_int(def, "line", 0)));
    const char *source = pr_str(def, "source");
    if (source && strcmp(source, "playbook") != 0)
        json_object_set_new(data, "attached_from", json_string(source));
    return data;
}

static enum eng_outcome manual_step(eng_run *r, const char *id, json_t *def, const char *text, char **reason)
{
    if (text && *text)
        tm_block(6, TM_PLAIN, text);
    eng_record(r, "step.started", id, r->operator_name,
               with_origin(r, def, json_pack("{s:s, s:i}", "kind", "manual", "attempt", 1)));
    if (eng_barrier(r) < 0)
        return OUT_FATAL;
    int64_t t0 = ut_mono_ms();
    char *note = NULL;
    void *waiting = eng_wait_escalation_start(r, id, "the operator's answer");
    eng_answer a = eng_ask_manual(r, id, &note);
    if (a != ANSWER_EOF && a != ANSWER_STOPPED)
        eng_acknowledge(r);
    eng_wait_escalation_stop(waiting);
    if (a == ANSWER_EOF || a == ANSWER_STOPPED) {
        free(note);
        return a == ANSWER_EOF ? OUT_NO_ANSWER : OUT_STOPPED;
    }
    const char *word = a == ANSWER_DONE ? "done" : a == ANSWER_FAILED ? "failed" : "skip";
    json_t *data = json_pack("{s:s, s:s}", "answer", word, "via", r->answer_via ? r->answer_via : "operator");
    if (note)
        json_object_set_new(data, "note", json_string(note));
    eng_mark_cut(data, r->answer_cut);
    eng_record(r, "manual.answered", id, r->operator_name, data);
    int64_t ms = ut_mono_ms() - t0;
    json_t *result = json_pack("{s:s}", "answer", word);
    if (note)
        json_object_set_new(result, "note", json_string(note));
    enum eng_outcome out;
    if (a == ANSWER_DONE) {
        eng_record(r, "step.succeeded", id, r->operator_name,
                   json_pack("{s:O, s:I}", "result", result, "duration_ms", (json_int_t)ms));
        eng_set_state(r, id, "succeeded", result);
        print_step_end(TM_GREEN, "done", ms, note);
        out = OUT_SUCCEEDED;
    } else if (a == ANSWER_FAILED) {
        *reason = ut_xasprintf("the operator answered failed%s%s", note ? ": " : "", note ? note : "");
        eng_record(r, "step.failed", id, r->operator_name,
                   json_pack("{s:s, s:s, s:I}", "reason", *reason, "kind", "manual", "duration_ms", (json_int_t)ms));
        eng_set_state(r, id, "failed", result);
        print_step_end(TM_RED, "FAILED", ms, note);
        out = OUT_FAILED;
    } else {
        eng_record(r, "step.skipped", id, r->operator_name,
                   json_pack("{s:s}", "reason", note ? note : "skipped by the operator"));
        eng_set_state(r, id, "skipped", result);
        print_step_end(TM_YELLOW, "skipped", ms, note);
        out = OUT_SKIPPED;
    }
    (void)def;
    free(note);
    return out;
}

/* Why a worker that died during a step is gone, in words for the record. */
static char *death_reason(eng_run *r, int64_t timeout_ms, int exec_in_flight)
{
    if (!strcmp(r->worker.dead_reason, "hard deadline")) {
        char d[32];
        ut_format_duration(timeout_ms, d, sizeof d);
        if (exec_in_flight) /* the worker was waiting, not stuck: say what held it */
            return ut_xasprintf("step timed out after %s while a command it ran (ctx.exec) was still running "
                                "or holding its output (it did not stop at SIGTERM): the command and the "
                                "worker were killed",
                                d);
        return ut_xasprintf("step timed out after %s and did not stop at its deadline (stuck inside a "
                            "C function such as a pattern match): its worker was killed",
                            d);
    }
    return ut_xasprintf("%s while running the step", r->worker.dead_reason);
}

/* A step's timeout in real time. A drill's clock runs `speed` times
 * faster, and so do its timeouts (a 10-minute timeout at --speed 60 is
 * 10 real seconds, against simulated sleeps and waits), but Lua does not
 * compute faster in a drill: a step always has its timeout or
 * DRILL_MIN_DEADLINE_MS of real time, whichever is shorter. */
static int64_t drill_deadline_ms(eng_run *r, int64_t timeout)
{
    /* irp check --drill waits for nothing: a step still computing after
     * CD_STEP_DEADLINE_MS of real time is reported as timing out. */
    if (r->opt->probe)
        return timeout < CD_STEP_DEADLINE_MS ? timeout : CD_STEP_DEADLINE_MS;
    if (!r->opt->drill || r->opt->speed <= 1)
        return timeout;
    int64_t scaled = (int64_t)((double)timeout / r->opt->speed);
    int64_t floor = timeout < DRILL_MIN_DEADLINE_MS ? timeout : DRILL_MIN_DEADLINE_MS;
    return scaled > floor ? scaled : floor;
}

static enum eng_outcome automated_step(eng_run *r, const char *id, json_t *def, char **reason)
{
    long long timeout = pr_int(def, "timeout_ms", 0);
    if (timeout <= 0)
        timeout = DEFAULT_STEP_TIMEOUT_MS;
    int attempts = (int)pr_int(def, "retries", 0) + 1;
    long long backoff = pr_int(def, "backoff_ms", 1000);
    for (int attempt = 1; attempt <= attempts; attempt++) {
        eng_record(r, "step.started", id, r->operator_name,
                   with_origin(r, def, json_pack("{s:s, s:i, s:i, s:I}", "kind", "run", "attempt", attempt, "attempts",
                                              attempts, "timeout_ms", (json_int_t)timeout)));
        if (eng_barrier(r) < 0)
            return OUT_FATAL;
        int64_t t0 = ut_mono_ms();
        r->current_step = id;
        r->current_def = def;
        int64_t real_timeout = drill_deadline_ms(r, timeout);
        r->step_deadline_mono = t0 + real_timeout;
        json_t *req = json_pack("{s:s, s:s, s:i, s:I, s:I}", "t", "run", "step", id, "attempt", attempt,
                                "timeout_ms", (json_int_t)real_timeout, "shown_timeout_ms",
                                (json_int_t)(r->opt->probe ? real_timeout : timeout));
        json_t *answer = NULL;
        int rc = sw_request(&r->worker, req, real_timeout + HARD_GRACE_MS, &r->interrupted, &answer);
        json_decref(req);
        if (rc >= 0)
            cd_reads(r, id, answer);
        r->current_step = NULL;
        r->current_def = NULL;
        r->step_deadline_mono = 0;
        int exec_in_flight = rc < 0 && ex_running() > 0;
        ex_cancel_all(); /* nothing a step started outlives it */
        while (ex_running())  /* ... and its last records precede the step's outcome */
            uv_run(r->loop, UV_RUN_ONCE);
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
            why = death_reason(r, timeout, exec_in_flight);
            kind = !strcmp(r->worker.dead_reason, "hard deadline") ? "timeout" : "crash";
            if (eng_restart_worker(r) < 0) {
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
            eng_set_state(r, id, "succeeded", result);
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
            eng_wait_ms(r, delay);
            if (r->interrupted)
                return OUT_STOPPED;
            continue;
        }
        json_t *data = json_pack("{s:s, s:s, s:i, s:I}", "reason", why, "kind", kind_copy, "attempts", attempts,
                                 "duration_ms", (json_int_t)ms);
        if (json_is_string(traceback))
            json_object_set(data, "traceback", traceback);
        eng_record(r, "step.failed", id, r->operator_name, data);
        eng_set_state(r, id, "failed", NULL);
        cd_failed(r, id, kind_copy, why);
        print_step_end(TM_RED, "FAILED", ms, why);
        json_decref(traceback);
        free(kind_copy);
        *reason = why;
        return OUT_FAILED;
    }
    return OUT_FAILED;
}

enum eng_outcome eng_run_step(eng_run *r, size_t index, size_t total, const char **last_phase, char **reason)
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
    int64_t prep_t0 = ut_mono_ms();
    int rc = sw_request(&r->worker, req, PREPARE_HARD_MS, &r->interrupted, &prep);
    int64_t prep_ms = ut_mono_ms() - prep_t0;
    json_decref(req);
    if (rc >= 0)
        cd_reads(r, id, prep);
    if (rc == -2)
        return OUT_STOPPED;
    const char *title = pr_str(def, "title");
    if (rc < 0 || !strcmp(pr_str(prep, "t") ? pr_str(prep, "t") : "", "error")) {
        char *why;
        if (rc < 0 && !strcmp(r->worker.dead_reason, "hard deadline"))
            why = ut_xasprintf("the when condition of step \"%s\" did not finish within %d s (stuck inside a C "
                               "function such as a pattern match): its worker was killed",
                               id, WHEN_SOFT_MS / 1000);
        else if (rc < 0)
            why = ut_xasprintf("`when` or a template of the step: %s", r->worker.dead_reason);
        else
            why = ut_xasprintf("`when` or a template of the step failed: %s",
                               pr_str(prep, "error") ? pr_str(prep, "error") : "?");
        json_decref(prep);
        if (rc < 0 && eng_restart_worker(r) < 0) {
            free(why);
            return OUT_FATAL;
        }
        tm_line(TM_BOLD, "[%zu/%zu] %s", index + 1, total, title ? title : id);
        eng_record(r, "step.failed", id, r->operator_name,
                   json_pack("{s:s, s:s, s:I}", "reason", why, "kind", "when", "duration_ms", (json_int_t)prep_ms));
        eng_set_state(r, id, "failed", NULL);
        cd_failed(r, id, "when", why);
        print_step_end(TM_RED, "FAILED", prep_ms, why);
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
    enum eng_outcome out;
    r->step_title = shown_title;
    if (skip) {
        eng_record(r, "step.skipped", id, r->operator_name,
                   json_pack("{s:s, s:s}", "reason", skip_reason, "title", shown_title));
        eng_set_state(r, id, "skipped", NULL);
        print_step_end(TM_DIM, "skipped", 0, skip_reason);
        out = OUT_SKIPPED;
    } else {
        int go = 1;
        if (r->fx->step_event)
            r->fx->step_event(r, "step_start", id);
        if (approval) {
            go = approval_gate(r, id, approval);
            if (go == 0) {
                eng_record(r, "step.skipped", id, r->operator_name,
                           json_pack("{s:s}", "reason", "approval denied"));
                eng_set_state(r, id, "skipped", NULL);
                print_step_end(TM_YELLOW, "skipped", 0, "approval denied");
            }
        }
        if (go < 0)
            out = (enum eng_outcome)(-go);
        else if (go == 0)
            out = OUT_SKIPPED;
        else if (kind && !strcmp(kind, "manual"))
            out = manual_step(r, id, def, manual_text, reason);
        else
            out = automated_step(r, id, def, reason);
        if (r->fx->step_event && out != OUT_STOPPED && out != OUT_FATAL && out != OUT_NO_ANSWER)
            r->fx->step_event(r, "step_end", id);
    }
    r->step_title = NULL;
    free(shown_title);
    free(manual_text);
    free(skip_reason);
    return out;
}

