/*
 * effects.c — the two implementations of side effects behind fx_ops:
 * fx_live runs commands for real (exec.c), fx_drill answers from the
 * scenario's outcomes or the step's `drill` table without starting
 * anything; fx_drill's other hooks are the drill runtime (scenario_run.c). Both answer with the same shape,
 * so a later step never finds a simulated value missing, and both journal
 * what was done (or simulated) as step.exec / step.http.
 */
#include "engine.h"
#include "check_drill.h"
#include "exec.h"
#include "httpcall.h"
#include "scenario.h"
#include "secrets.h"
#include "term.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

#define EXEC_CAPTURE_LIMIT ((size_t)1 << 20)
#define JOURNAL_OUTPUT_EXCERPT 8192

/* argv as people read it: secrets shown by name, never by value. */
static char *display_argv(json_t *argv)
{
    ut_buf b = {0};
    ut_buf_append(&b, "", 0);
    size_t i;
    json_t *a;
    json_array_foreach(argv, i, a)
    {
        if (i)
            ut_buf_puts(&b, " ");
        if (json_is_string(a))
            ut_buf_puts(&b, json_string_value(a));
        else if (json_is_object(a) && pr_str(a, "secret"))
            ut_buf_printf(&b, "<secret %s>", pr_str(a, "secret"));
        else
            ut_buf_puts(&b, "?");
    }
    return b.data;
}

/* The first JOURNAL_OUTPUT_EXCERPT bytes of a stream, cut at the start of a
 * UTF-8 character: a cut inside one would make the record invalid UTF-8,
 * which the journal refuses, losing the record of the command. */
static json_t *excerpt(json_t *stream)
{
    const char *text = json_is_string(stream) ? json_string_value(stream) : "";
    size_t len = json_is_string(stream) ? json_string_length(stream) : 0;
    return json_stringn_nocheck(text, ut_utf8_cut(text, len, JOURNAL_OUTPUT_EXCERPT));
}

static void journal_exec(fx_call *c, json_t *argv, json_t *reply, int simulated)
{
    char *shown = display_argv(argv);
    json_t *data = json_pack("{s:s, s:O, s:O, s:O, s:b}", "command", shown, "code",
                             json_object_get(reply, "code"), "duration_ms",
                             json_object_get(reply, "duration_ms"), "timed_out",
                             json_object_get(reply, "timed_out"), "simulated", simulated);
    /* The exact arguments, for the chain of custody: "command" joins them
     * with spaces, which loses where one ends ("rm" "a b" vs "rm" "a" "b").
     * A secret stays {"secret": NAME}, as the step passed it. */
    json_object_set_new(data, "argv", json_deep_copy(argv));
    json_object_set_new(data, "stdout", excerpt(json_object_get(reply, "stdout")));
    json_object_set_new(data, "stderr", excerpt(json_object_get(reply, "stderr")));
    if (pr_bool(reply, "stdout_truncated", 0))
        json_object_set_new(data, "stdout_truncated", json_true());
    if (pr_bool(reply, "stderr_truncated", 0))
        json_object_set_new(data, "stderr_truncated", json_true());
    eng_record(c->run, "step.exec", c->step, NULL, data);
    tm_line(TM_DIM, "      $ %s%s -> %lld", shown, simulated ? "  (simulated)" : "",
            pr_int(reply, "code", -1));
    free(shown);
}

/* ---- live ---------------------------------------------------------------- */

typedef struct {
    fx_call *call;
    json_t *argv;
    char **cargv;
    char **cenv;
} live_exec;

static void free_strv(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++) {
        explicit_bzero(*p, strlen(*p)); /* may hold a secret's value */
        free(*p);
    }
    free(v);
}

static json_t *output_string(const char *data, size_t len)
{
    size_t n;
    char *safe = sec_redact(data, len, &n);
    char *clean = ut_utf8_sanitize(safe, n, &n);
    json_t *s = json_stringn_nocheck(clean, n);
    free(safe);
    free(clean);
    return s;
}

static void live_exec_done(ex_job *job, const ex_result *res, void *data)
{
    (void)job;
    live_exec *le = data;
    fx_call *c = le->call;
    if (!res->spawned) {
        json_t *reply = json_pack("{s:i, s:n, s:s, s:s, s:b, s:b, s:b, s:I, s:b, s:s}", "code", 127,
                                  "signal", "stdout", "", "stderr", res->error, "stdout_truncated", 0,
                                  "stderr_truncated", 0, "timed_out", 0, "duration_ms", (json_int_t)0,
                                  "simulated", 0, "error", res->error);
        journal_exec(c, le->argv, reply, 0);
        fx_answer_ok(c, reply);
    } else {
        json_t *reply = json_object();
        json_object_set_new(reply, "code", json_integer(res->code));
        json_object_set_new(reply, "signal", res->term_signal ? json_integer(res->term_signal) : json_null());
        json_object_set_new(reply, "stdout", output_string(res->out, res->out_len));
        json_object_set_new(reply, "stderr", output_string(res->err, res->err_len));
        json_object_set_new(reply, "stdout_truncated", json_boolean(res->out_total > res->out_len));
        json_object_set_new(reply, "stderr_truncated", json_boolean(res->err_total > res->err_len));
        json_object_set_new(reply, "timed_out", json_boolean(res->timed_out));
        json_object_set_new(reply, "duration_ms", json_integer(res->duration_ms));
        json_object_set_new(reply, "simulated", json_false());
        journal_exec(c, le->argv, reply, 0);
        fx_answer_ok(c, reply);
    }
    json_decref(le->argv);
    free_strv(le->cargv);
    free_strv(le->cenv);
    free(le);
}

/* Resolves one argv element; NULL with err when a secret cannot be had. */
static char *resolve_arg(json_t *a, char *err, size_t err_size)
{
    if (json_is_string(a))
        return ut_xstrdup(json_string_value(a));
    if (json_is_object(a) && pr_str(a, "secret")) {
        const char *v = sec_get(pr_str(a, "secret"), err, err_size);
        return v ? ut_xstrdup(v) : NULL;
    }
    snprintf(err, err_size, "exec: arguments must be strings or secrets");
    return NULL;
}

static char **build_env(json_t *extra, char *err, size_t err_size)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = ut_xcalloc(n + json_object_size(extra) + 1, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (sec_env_entry_is_secret(environ[i]))
            continue; /* a secret reaches a command only when passed to it */
        const char *eq = strchr(environ[i], '=');
        if (eq && json_is_object(extra)) {
            char *name = strndup(environ[i], (size_t)(eq - environ[i]));
            int overridden = json_object_get(extra, name) != NULL;
            free(name);
            if (overridden)
                continue;
        }
        env[k++] = ut_xstrdup(environ[i]);
    }
    const char *key;
    json_t *v;
    json_object_foreach(extra, key, v)
    {
        char *value = resolve_arg(v, err, err_size);
        if (!value) {
            free_strv(env);
            return NULL;
        }
        env[k++] = ut_xasprintf("%s=%s", key, value);
        explicit_bzero(value, strlen(value));
        free(value);
    }
    env[k] = NULL;
    return env;
}

static void live_exec_start(fx_call *c, json_t *args)
{
    eng_run *r = c->run;
    json_t *argv = json_object_get(args, "argv");
    if (!json_is_array(argv) || json_array_size(argv) == 0) {
        fx_answer_error(c, "ctx.exec needs a command: ctx.exec{ \"program\", \"arg\", ... }");
        return;
    }
    char err[512];
    live_exec *le = ut_xcalloc(1, sizeof *le);
    le->call = c;
    le->argv = json_incref(argv);
    size_t n = json_array_size(argv);
    int shell = pr_bool(args, "shell", 0);
    le->cargv = ut_xcalloc(n + 3, sizeof *le->cargv);
    size_t k = 0;
    if (shell) {
        le->cargv[k++] = ut_xstrdup("/bin/sh");
        le->cargv[k++] = ut_xstrdup("-c");
    }
    for (size_t i = 0; i < n; i++) {
        char *a = resolve_arg(json_array_get(argv, i), err, sizeof err);
        if (!a)
            goto fail;
        le->cargv[k++] = a;
    }
    json_t *extra = json_object_get(args, "env");
    le->cenv = build_env(json_is_object(extra) ? extra : NULL, err, sizeof err);
    if (!le->cenv)
        goto fail;
    int64_t timeout = pr_int(args, "timeout_ms", 0);
    int64_t left = r->step_deadline_mono ? r->step_deadline_mono - ut_mono_ms() : 0;
    if (r->step_deadline_mono && (timeout <= 0 || timeout > left))
        timeout = left > 1 ? left : 1; /* a command never outlives its step */
    json_t *jstdin = json_object_get(args, "stdin");
    const char *stdin_data = json_is_string(jstdin) ? json_string_value(jstdin) : NULL;
    size_t stdin_len = json_is_string(jstdin) ? json_string_length(jstdin) : 0;
    if (json_is_object(jstdin)) { /* a secret handle: its value, resolved only here */
        if (!pr_str(jstdin, "secret")) {
            snprintf(err, sizeof err, "exec: stdin must be a string or a secret");
            goto fail;
        }
        stdin_data = sec_get(pr_str(jstdin, "secret"), err, sizeof err);
        if (!stdin_data)
            goto fail;
        stdin_len = strlen(stdin_data);
    }
    ex_spec spec = {
        .argv = le->cargv,
        .env = le->cenv,
        .cwd = pr_str(args, "cwd"),
        .stdin_data = stdin_data,
        .stdin_len = stdin_len,
        .timeout_ms = timeout,
        .capture_limit = EXEC_CAPTURE_LIMIT,
    };
    ex_start(r->loop, &spec, live_exec_done, le);
    return;
fail:
    json_decref(le->argv);
    free_strv(le->cargv);
    free_strv(le->cenv);
    free(le);
    fx_answer_error(c, err);
}

const fx_ops fx_live = {"live", live_exec_start, hc_request, NULL, NULL, NULL, NULL, NULL, NULL, NULL};

/* ---- drill --------------------------------------------------------------- */

/* One kind of effect's part of a simulated outcome (a drill table or a
 * scenario outcome): sim.<kind> when present, else sim itself. */
static json_t *for_kind(json_t *sim, const char *kind)
{
    if (!json_is_object(sim))
        return NULL;
    json_t *specific = json_object_get(sim, kind);
    return json_is_object(specific) ? specific : sim;
}

/* The step's simulated outcome for one kind of effect: the scenario's
 * next outcome for the step, else its drill table. */
static json_t *simulated(fx_call *c, const char *kind)
{
    json_t *sim = dr_next_outcome(c->run, c->step);
    if (sim)
        return for_kind(sim, kind);
    json_t *def = eng_step_def(c->run, c->step);
    return for_kind(def ? json_object_get(def, "drill") : NULL, kind);
}

static json_t *string_or(json_t *v, const char *fallback)
{
    if (json_is_string(v))
        return json_incref(v);
    if (v && !json_is_null(v)) {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        json_t *s = json_string(text ? text : fallback);
        free(text);
        return s;
    }
    return json_string(fallback);
}

static void drill_exec(fx_call *c, json_t *args)
{
    json_t *argv = json_object_get(args, "argv");
    json_t *sim = simulated(c, "exec");
    if (!sim)
        tm_line(TM_YELLOW, "      ! no drill outcome for this step: simulating success with empty output");
    {
        char *shown = json_is_array(argv) ? display_argv(argv) : NULL;
        cd_effect(c->run, c->step, "exec", shown, sim != NULL);
        free(shown);
    }
    json_t *reply = json_object();
    json_t *code = sim ? json_object_get(sim, "code") : NULL;
    json_object_set_new(reply, "code", json_integer(json_is_integer(code) ? json_integer_value(code) : 0));
    json_object_set_new(reply, "signal", json_null());
    json_object_set_new(reply, "stdout", string_or(sim ? json_object_get(sim, "stdout") : NULL, ""));
    json_object_set_new(reply, "stderr", string_or(sim ? json_object_get(sim, "stderr") : NULL, ""));
    json_object_set_new(reply, "stdout_truncated", json_false());
    json_object_set_new(reply, "stderr_truncated", json_false());
    json_object_set_new(reply, "timed_out", json_false());
    json_object_set_new(reply, "duration_ms", json_integer(0));
    json_object_set_new(reply, "simulated", json_true());
    json_t *none = json_array();
    journal_exec(c, json_is_array(argv) ? argv : none, reply, 1);
    json_decref(none);
    fx_answer_ok(c, reply);
}

/* The answer's headers as a live answer has them: names in lower case. */
static json_t *lower_headers(json_t *hdrs)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(hdrs, k, v)
    {
        char *low = ut_xstrdup(k);
        for (char *p = low; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        json_object_set(out, low, v);
        free(low);
    }
    return out;
}

static void drill_http(fx_call *c, json_t *args)
{
    char err[512];
    if (hc_check(args, err, sizeof err) < 0) {
        fx_answer_error(c, err); /* refused as a live run would refuse it */
        return;
    }
    json_t *sim = simulated(c, "http");
    json_t *reply = json_object();
    cd_effect(c->run, c->step, "http", NULL, sim != NULL);
    json_t *status = sim ? json_object_get(sim, "status") : NULL;
    json_object_set_new(reply, "status", json_integer(json_is_integer(status) ? json_integer_value(status) : 200));
    json_t *hdrs = sim ? json_object_get(sim, "headers") : NULL;
    json_object_set_new(reply, "headers", json_is_object(hdrs) ? lower_headers(hdrs) : json_object());
    json_t *body = sim ? json_object_get(sim, "body") : NULL;
    json_t *js = sim ? json_object_get(sim, "json") : NULL;
    if (js && !body && !json_object_get(json_object_get(reply, "headers"), "content-type"))
        json_object_set_new(json_object_get(reply, "headers"), "content-type", json_string("application/json"));
    json_object_set_new(reply, "body", string_or(body ? body : js, ""));
    json_object_set_new(reply, "body_truncated", json_false());
    json_object_set_new(reply, "simulated", json_true());
    json_object_set_new(reply, "duration_ms", json_integer(0));
    char upper[16] = "GET";
    if (pr_str(args, "method")) {
        snprintf(upper, sizeof upper, "%s", pr_str(args, "method"));
        for (char *p = upper; *p; p++)
            if (*p >= 'a' && *p <= 'z')
                *p = (char)(*p - 'a' + 'A');
    }
    const char *method = upper;
    json_t *url = json_object_get(args, "url");
    const char *shown = json_is_string(url) ? json_string_value(url) : "<secret url>";
    eng_record(c->run, "step.http", c->step, NULL,
               json_pack("{s:s, s:s, s:O, s:b}", "method", method ? method : "GET", "url", shown,
                         "status", json_object_get(reply, "status"), "simulated", 1));
    tm_line(TM_DIM, "      %s %s -> %lld  (simulated)", method ? method : "GET", shown,
            pr_int(reply, "status", 0));
    fx_answer_ok(c, reply);
}

const fx_ops fx_drill = {"drill",     drill_exec,    drill_http,  dr_prepare, dr_begin,
                         dr_observe,  dr_step_event, dr_scripted, dr_finish,  dr_free};
