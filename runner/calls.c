/*
 * calls.c — the supervisor's answers to the worker's calls while a step
 * runs: log, notify, escalate, ask, confirm, sleep, artifact, and exec/http
 * through the live-or-drill effects table. Every effect is journaled; a
 * call arriving after its step ended is refused (the reply would reach a
 * worker that no longer waits for it).
 */
#include "engine.h"
#include "secrets.h"
#include "state.h"
#include "term.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_MAX_PRINTED 2000

void fx_call_free(fx_call *call)
{
    free(call->step);
    free(call);
}

void fx_answer_ok(fx_call *call, json_t *value)
{
    sw_reply_ok(&call->run->worker, call->generation, call->id, value);
    fx_call_free(call);
}

void fx_answer_error(fx_call *call, const char *error)
{
    char *safe = sec_redact(error, strlen(error), NULL);
    sw_reply_error(&call->run->worker, call->generation, call->id, safe);
    free(safe);
    fx_call_free(call);
}

json_t *eng_step_def(eng_run *r, const char *step_id)
{
    size_t i;
    json_t *def;
    json_array_foreach(r->steps, i, def)
    {
        const char *id = pr_str(def, "id");
        if (id && step_id && strcmp(id, step_id) == 0)
            return def;
    }
    return NULL;
}

static void call_log(fx_call *c, json_t *args)
{
    const char *msg = pr_str(args, "msg");
    if (!msg)
        msg = "";
    size_t n = strlen(msg);
    if (n > LOG_MAX_PRINTED)
        tm_line(TM_DIM, "      | %.*s ... (%zu bytes)", LOG_MAX_PRINTED, msg, n);
    else
        tm_block(6, TM_DIM, msg);
    json_t *data = json_pack("{s:s}", "msg", msg);
    json_t *fields = json_object_get(args, "fields");
    if (fields && !json_is_null(fields))
        json_object_set(data, "fields", fields);
    if (pr_bool(args, "truncated", 0))
        json_object_set_new(data, "truncated", json_true());
    eng_record(c->run, "step.log", c->step, NULL, data);
    fx_answer_ok(c, NULL);
}

static void call_notify(fx_call *c, json_t *args)
{
    const char *target = pr_str(args, "target");
    const char *msg = pr_str(args, "msg");
    if (!target || !msg) {
        fx_answer_error(c, "ctx.notify(target, message): both must be strings");
        return;
    }
    json_t *fields = json_object_get(args, "fields");
    eng_notify(c->run, target, msg, json_is_object(fields) ? fields : NULL, c->step);
    fx_answer_ok(c, NULL);
}

static void call_escalate(fx_call *c, json_t *args)
{
    const char *reason = pr_str(args, "reason");
    int tier = eng_escalate(c->run, reason ? reason : "escalated by the step", c->step, 0);
    fx_answer_ok(c, json_pack("{s:i}", "tier", tier));
}

static void call_sleep(fx_call *c, json_t *args);

static int has_choice(json_t *choices, const char *word)
{
    size_t i;
    json_t *v;
    json_array_foreach(choices, i, v) if (json_is_string(v) && !strcasecmp(json_string_value(v), word)) return 1;
    return 0;
}

static void call_ask(fx_call *c, json_t *args, int is_confirm)
{
    eng_run *r = c->run;
    const char *question = pr_str(args, "question");
    if (!question)
        question = "?";
    json_t *choices = json_object_get(args, "choices");
    size_t nchoices = json_is_array(choices) ? json_array_size(choices) : 0;
    json_t *answer = NULL;
    size_t cut = 0; /* a free-text answer cut at TM_LINE_MAX: its full length */
    const char *via = "operator";
    /* A scripted answer may take the players time: not the step's. */
    int64_t scripted_at = ut_mono_ms();
    sw_pause_deadline(&r->worker);
    char *scripted = r->fx->scripted ? r->fx->scripted(r, c->step, is_confirm ? "confirm" : "ask") : NULL;
    if (r->step_deadline_mono)
        r->step_deadline_mono += ut_mono_ms() - scripted_at;
    sw_resume_deadline(&r->worker);
    if (!scripted && r->interrupted) {
        fx_answer_error(c, "interrupted while waiting for an answer");
        return;
    }
    if (scripted) {
        /* A scripted answer that fits no choice is refused like a typed one would be. */
        if (is_confirm) {
            if (!strcasecmp(scripted, "y") || !strcasecmp(scripted, "yes"))
                answer = json_true();
            else if (!strcasecmp(scripted, "n") || !strcasecmp(scripted, "no"))
                answer = json_false();
        } else if (nchoices) {
            for (size_t i = 0; i < nchoices && !answer; i++)
                if (!strcasecmp(scripted, json_string_value(json_array_get(choices, i))))
                    answer = json_incref(json_array_get(choices, i));
        } else
            answer = json_string(scripted);
        if (answer) {
            via = "scenario";
            tm_line(TM_CYAN, "      ? %s -> %s (scripted)", question, scripted);
        } else
            tm_warn("the scenario's answer '%s' to \"%s\" is not one of the choices: asking", scripted, question);
        free(scripted);
    }
    if (answer) {
        /* answered by the scenario */
    } else if (r->opt->yes) {
        via = "--yes";
        if (is_confirm)
            answer = json_true();
        else if (nchoices)
            answer = json_incref(json_array_get(choices, 0));
        else
            answer = json_string("");
        tm_line(TM_CYAN, "      ? %s -> %s (--yes)", question,
                is_confirm ? "yes" : json_string_value(answer));
    } else {
        /* The person's thinking time is not the step's: both deadlines wait. */
        int64_t asked_at = ut_mono_ms();
        sw_pause_deadline(&r->worker);
        ut_buf prompt = {0};
        ut_buf_printf(&prompt, "      ? %s", question);
        if (is_confirm)
            ut_buf_puts(&prompt, " [yes/no] >");
        else if (nchoices) {
            ut_buf_puts(&prompt, " [");
            for (size_t i = 0; i < nchoices; i++)
                ut_buf_printf(&prompt, "%s%s", i ? " / " : "", json_string_value(json_array_get(choices, i)));
            ut_buf_puts(&prompt, "] >");
        } else
            ut_buf_puts(&prompt, " >");
        for (;;) {
            char *line = NULL;
            int rc = tm_prompt(r->loop, prompt.data, &line, &r->interrupted);
            if (rc == 0 && r->opt->drill && !strcasecmp(line, "pause") && !(nchoices && has_choice(choices, line))) {
                free(line);
                rc = eng_pause(r, c->step); /* the facilitator's pause, then ask again */
                if (rc == 0)
                    continue;
            }
            if (rc < 0) {
                sw_resume_deadline(&r->worker);
                ut_buf_free(&prompt);
                fx_answer_error(c, rc == -1 ? "no answer: the operator's input ended"
                                            : "interrupted while waiting for an answer");
                return;
            }
            if (strncmp(line, "note:", 5) == 0) {
                json_t *data = json_pack("{s:s}", "note", line + 5 + strspn(line + 5, " "));
                eng_mark_cut(data, tm_last_cut());
                eng_record(r, "operator.note", c->step, r->operator_name, data);
                free(line);
                continue;
            }
            if (is_confirm) {
                if (!strcasecmp(line, "y") || !strcasecmp(line, "yes"))
                    answer = json_true();
                else if (!strcasecmp(line, "n") || !strcasecmp(line, "no"))
                    answer = json_false();
            } else if (nchoices) {
                for (size_t i = 0; i < nchoices && !answer; i++)
                    if (!strcasecmp(line, json_string_value(json_array_get(choices, i))))
                        answer = json_incref(json_array_get(choices, i));
            } else {
                answer = json_string(line);
                cut = tm_last_cut();
            }
            free(line);
            if (answer)
                break;
            tm_line(TM_YELLOW, "      please answer one of the choices shown");
        }
        ut_buf_free(&prompt);
        if (r->step_deadline_mono)
            r->step_deadline_mono += ut_mono_ms() - asked_at;
        sw_resume_deadline(&r->worker);
    }
    json_t *data = json_pack("{s:s, s:O, s:s}", "question", question, "answer", answer, "via", via);
    eng_mark_cut(data, cut);
    eng_record(r, "operator.answered", c->step, r->operator_name, data);
    fx_answer_ok(c, json_pack("{s:o}", "answer", answer));
}

typedef struct sleep_job {
    uv_timer_t timer;
    fx_call *call;
    struct sleep_job *prev, *next;
} sleep_job;

/* The sleeps still waiting: an interrupted run cancels them, or its final
 * turn of the loop would wait out an hour's ctx.sleep. */
static sleep_job *sleeping;

static void sleep_closed(uv_handle_t *h)
{
    free(h->data);
}

static void sleep_end(sleep_job *job)
{
    if (job->prev)
        job->prev->next = job->next;
    else
        sleeping = job->next;
    if (job->next)
        job->next->prev = job->prev;
    uv_timer_stop(&job->timer);
    uv_close((uv_handle_t *)&job->timer, sleep_closed);
}

static void sleep_done(uv_timer_t *t)
{
    sleep_job *job = t->data;
    fx_answer_ok(job->call, NULL);
    sleep_end(job);
}

void fx_cancel_sleeps(void)
{
    while (sleeping) {
        fx_call_free(sleeping->call);
        sleep_end(sleeping);
    }
}

static void call_sleep(fx_call *c, json_t *args)
{
    eng_run *r = c->run;
    long long ms = pr_int(args, "ms", 0);
    if (ms < 0)
        ms = 0;
    /* Never sleep past the step's deadline: the worker's own timer then
     * ends the step with a clear timeout. */
    if (r->opt->drill && r->opt->speed > 1)
        ms = (long long)((double)ms / r->opt->speed); /* real time from here */
    if (r->opt->probe)
        ms = 0; /* irp check --drill does not wait */
    int64_t left = r->step_deadline_mono - ut_mono_ms() + 50;
    if (r->step_deadline_mono && ms > left)
        ms = left > 0 ? left : 0;
    sleep_job *job = ut_xcalloc(1, sizeof *job);
    job->call = c;
    uv_timer_init(r->loop, &job->timer);
    job->timer.data = job;
    job->next = sleeping;
    if (sleeping)
        sleeping->prev = job;
    sleeping = job;
    uv_timer_start(&job->timer, sleep_done, (uint64_t)ms, 0);
}

/* Keeps a name usable as one file name inside artifacts/. */
static char *artifact_file_name(const char *name)
{
    ut_buf b = {0};
    for (const char *p = name; *p && b.len < 100; p++) {
        char ch = *p;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '-' || ch == '_' || (ch == '.' && b.len > 0);
        ut_buf_append(&b, ok ? &ch : "_", 1);
    }
    if (!b.len)
        ut_buf_puts(&b, "artifact");
    return b.data;
}

static void call_artifact(fx_call *c, json_t *args)
{
    eng_run *r = c->run;
    const char *name = pr_str(args, "name");
    json_t *jdata = json_object_get(args, "data");
    if (!name || !json_is_string(jdata)) {
        fx_answer_error(c, "ctx.artifact(name, data): name and data must be strings");
        return;
    }
    const char *data = json_string_value(jdata);
    size_t len = json_string_length(jdata);
    char *dir = ut_xasprintf("%s/artifacts", r->run_dir);
    char *base = artifact_file_name(name);
    char *path = NULL;
    int fd = -1;
    if (st_mkdirs(dir) == 0) {
        for (int n = 0; n < 1000 && fd < 0; n++) {
            free(path);
            path = n ? ut_xasprintf("%s/%03d-%s.%d", dir, ++r->artifacts, base, n)
                     : ut_xasprintf("%s/%03d-%s", dir, ++r->artifacts, base);
            fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd < 0 && errno != EEXIST)
                break;
        }
    }
    if (fd < 0 || ut_write_all(fd, data, len) < 0 || fdatasync(fd) < 0) {
        char err[512];
        snprintf(err, sizeof err, "ctx.artifact: cannot store %s: %s", path ? path : dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        free(dir);
        free(base);
        free(path);
        fx_answer_error(c, err);
        return;
    }
    close(fd);
    unsigned char digest[32];
    unsigned int dlen = 0;
    EVP_Digest(data, len, digest, &dlen, EVP_sha256(), NULL);
    char hex[65];
    ut_hex(digest, 32, hex);
    eng_record(r, "artifact.stored", c->step, r->operator_name,
               json_pack("{s:s, s:s, s:s, s:I}", "name", name, "path", path, "sha256", hex, "bytes",
                         (json_int_t)len));
    tm_line(TM_DIM, "      + evidence %s sha256:%.16s... (%zu bytes)", name, hex, len);
    fx_answer_ok(c, json_pack("{s:s, s:s}", "sha256", hex, "path", path));
    free(dir);
    free(base);
    free(path);
}

void eng_on_call(sw_worker *w, long long call_id, const char *fn, json_t *args, void *data)
{
    eng_run *r = data;
    fx_call *c = ut_xcalloc(1, sizeof *c);
    c->run = r;
    c->generation = w->generation;
    c->id = call_id;
    c->step = ut_xstrdup(r->current_step ? r->current_step : "");
    if (!fn) {
        fx_answer_error(c, "a call without a function name");
        return;
    }
    if (!r->current_step) {
        fx_answer_error(c, "side effects are only allowed while a step runs");
        return;
    }
    if (!strcmp(fn, "log"))
        call_log(c, args);
    else if (!strcmp(fn, "notify"))
        call_notify(c, args);
    else if (!strcmp(fn, "escalate"))
        call_escalate(c, args);
    else if (!strcmp(fn, "ask"))
        call_ask(c, args, 0);
    else if (!strcmp(fn, "confirm"))
        call_ask(c, args, 1);
    else if (!strcmp(fn, "sleep"))
        call_sleep(c, args);
    else if (!strcmp(fn, "artifact"))
        call_artifact(c, args);
    else if (!strcmp(fn, "exec") || !strcmp(fn, "http")) {
        /* The step's start is on disk before its first effect leaves. */
        if (eng_barrier(r) < 0) {
            fx_answer_error(c, "the journal cannot be written: no side effect is allowed");
            return;
        }
        if (!strcmp(fn, "exec"))
            r->fx->exec(c, args);
        else
            r->fx->http(c, args);
    } else {
        char err[200];
        snprintf(err, sizeof err, "unknown call '%.100s'", fn);
        fx_answer_error(c, err);
    }
}
