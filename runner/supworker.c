/*
 * supworker.c — the supervisor's side of the worker: spawn, request/answer,
 * calls, hard deadlines. See include/supworker.h. The worker is a fresh exec
 * of this binary, so it holds no copy of the supervisor's memory (secrets,
 * config) and a scrubbed environment.
 */
#include "supworker.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Variables a worker may see: locale and sanitizer settings, nothing that
 * could hold a secret. */
static const char *const worker_env_allow[] = {"LANG", "LC_ALL", "TZ", "IRP_PLUGIN_PATH", "ASAN_OPTIONS",
                                               "UBSAN_OPTIONS", "LSAN_OPTIONS", NULL};

/* What a worker's death looks like from its pipe alone: replaced by how
 * the process ended (a signal, an exit status) once that is known. */
static const char pipe_closed_reason[] = "the worker closed its end of the pipe";
static const char pipe_unread_reason[] = "the worker stopped reading its pipe";

static void mark_dead(sw_worker *w, const char *reason)
{
    if (!w->dead || !strcmp(w->dead_reason, pipe_closed_reason) || !strcmp(w->dead_reason, pipe_unread_reason)) {
        w->dead = 1;
        snprintf(w->dead_reason, sizeof w->dead_reason, "%s", reason);
    }
}

static void on_pipe_closed(uv_handle_t *h)
{
    sw_worker *w = h->data;
    w->pipe_open = 0;
}

static void close_pipe(sw_worker *w)
{
    if (w->pipe_open && !uv_is_closing((uv_handle_t *)&w->pipe))
        uv_close((uv_handle_t *)&w->pipe, on_pipe_closed);
}

static void on_proc_closed(uv_handle_t *h)
{
    sw_worker *w = h->data;
    w->proc_open = 0;
}

static void on_exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
    sw_worker *w = p->data;
    w->exit_status = status;
    w->term_signal = term_signal;
    w->running = 0;
    char reason[200];
    if (term_signal)
        snprintf(reason, sizeof reason, "the worker process was killed by signal %d (%s)", term_signal,
                 strsignal(term_signal));
    else
        snprintf(reason, sizeof reason, "the worker process exited with status %lld",
                 (long long)status);
    mark_dead(w, reason);
    uv_close((uv_handle_t *)p, on_proc_closed);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = ut_xmalloc(suggested);
    buf->len = suggested;
}

static void deadline_cb(uv_timer_t *t);

static void handle_message(sw_worker *w, json_t *msg)
{
    const char *t = pr_str(msg, "t");
    if (t && strcmp(t, "call") == 0) {
        long long id = pr_int(msg, "id", -1);
        const char *fn = pr_str(msg, "fn");
        json_t *args = json_object_get(msg, "args");
        if (!fn || id < 0) {
            sw_kill(w, "the worker broke the protocol (a call without fn or id)");
            return;
        }
        (void)args;
        /* Queued, not handled here: a handler may prompt the operator, which
         * runs the loop, and libuv's loop must not be re-entered from a
         * callback. sw_request handles the queue between loop turns. */
        if (!w->calls)
            w->calls = json_array();
        json_array_append(w->calls, msg);
        return;
    }
    if (t && strcmp(t, "loading") == 0) {
        /* each file of a load has its own time: the deadline starts again */
        snprintf(w->loading_file, sizeof w->loading_file, "%s", pr_str(msg, "file") ? pr_str(msg, "file") : "?");
        snprintf(w->loading_kind, sizeof w->loading_kind, "%s", pr_str(msg, "kind") ? pr_str(msg, "kind") : "file");
        if (w->request_hard_ms > 0 && w->deadline_init && uv_is_active((uv_handle_t *)&w->deadline))
            uv_timer_start(&w->deadline, deadline_cb, (uint64_t)w->request_hard_ms, 0);
        return;
    }
    if (w->answer) {
        sw_kill(w, "the worker broke the protocol (two answers to one request)");
        return;
    }
    w->answer = json_incref(msg);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    sw_worker *w = s->data;
    if (n > 0) {
        if (pr_reader_feed(&w->reader, buf->base, (size_t)n) < 0) {
            sw_kill(w, "the worker sent a message larger than the protocol allows");
        } else {
            json_t *msg;
            char err[200];
            int rc;
            while (!w->dead && (rc = pr_reader_next(&w->reader, &msg, err, sizeof err)) != 0) {
                if (rc < 0) {
                    char reason[256];
                    snprintf(reason, sizeof reason, "the worker broke the protocol (%s)", err);
                    sw_kill(w, reason);
                    break;
                }
                handle_message(w, msg);
                json_decref(msg);
            }
        }
    } else if (n < 0) {
        mark_dead(w, pipe_closed_reason);
        close_pipe(w);
    }
    free(buf->base);
}

int sw_start(sw_worker *w, uv_loop_t *loop, sw_call_fn on_call, void *call_data, char *err,
             size_t err_size)
{
    /* A previous worker's handles must be fully closed before the struct is reused. */
    if (w->loop && (w->running || w->pipe_open || w->proc_open))
        sw_stop(w);
    int generation = w->generation;
    uv_timer_t saved_timer = w->deadline;
    int timer_init = w->deadline_init;
    memset(w, 0, sizeof *w);
    w->deadline = saved_timer;
    w->deadline_init = timer_init;
    w->generation = generation + 1;
    w->loop = loop;
    w->on_call = on_call;
    w->call_data = call_data;
    pr_reader_init(&w->reader);
    if (!w->deadline_init) {
        uv_timer_init(loop, &w->deadline);
        w->deadline.data = w;
        w->deadline_init = 1;
    }

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        snprintf(err, err_size, "cannot create the worker's socket: %s", strerror(errno));
        return -1;
    }
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) {
        snprintf(err, err_size, "cannot find my own executable: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    exe[len] = '\0';

    char *envp[16];
    int ne = 0;
    for (int i = 0; worker_env_allow[i] && ne < 14; i++) {
        const char *v = getenv(worker_env_allow[i]);
        if (v)
            envp[ne++] = ut_xasprintf("%s=%s", worker_env_allow[i], v);
    }
    envp[ne++] = ut_xstrdup("PATH=/usr/bin:/bin");
    envp[ne] = NULL;

    char *args[] = {exe, (char *)"__worker", NULL};
    uv_stdio_container_t stdio[4];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = 2; /* the worker's stdout would garble the terminal UI */
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    stdio[3].flags = UV_INHERIT_FD;
    stdio[3].data.fd = sv[1];

    uv_process_options_t opts;
    memset(&opts, 0, sizeof opts);
    opts.file = exe;
    opts.args = args;
    opts.env = envp;
    opts.exit_cb = on_exit_cb;
    opts.stdio = stdio;
    opts.stdio_count = 4;
    w->proc.data = w;
    int rc = uv_spawn(loop, &w->proc, &opts);
    for (int i = 0; i < ne; i++)
        free(envp[i]);
    close(sv[1]);
    if (rc < 0) {
        snprintf(err, err_size, "cannot start the worker: %s", uv_strerror(rc));
        close(sv[0]);
        w->proc_open = 1;
        uv_close((uv_handle_t *)&w->proc, on_proc_closed);
        return -1;
    }
    w->running = 1;
    w->proc_open = 1;
    uv_pipe_init(loop, &w->pipe, 0);
    w->pipe.data = w;
    uv_pipe_open(&w->pipe, sv[0]);
    w->pipe_open = 1;
    uv_read_start((uv_stream_t *)&w->pipe, alloc_cb, read_cb);
    return 0;
}

typedef struct {
    uv_write_t req;
    char *text;
} write_job;

static void write_cb(uv_write_t *req, int status)
{
    write_job *job = (write_job *)req;
    sw_worker *w = req->data;
    if (status < 0 && w)
        mark_dead(w, pipe_unread_reason);
    free(job->text);
    free(job);
}

/* Queues one message; the loop writes it without ever blocking. */
static int send_message(sw_worker *w, const json_t *msg)
{
    if (w->dead || !w->pipe_open)
        return -1;
    char *text = json_dumps(msg, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!text)
        return -1;
    size_t n = strlen(text);
    if (n + 1 > PR_MAX_FRAME) {
        free(text);
        return -1;
    }
    text = ut_xrealloc(text, n + 2);
    text[n] = '\n';
    text[n + 1] = '\0';
    write_job *job = ut_xcalloc(1, sizeof *job);
    job->text = text;
    job->req.data = w;
    uv_buf_t buf = uv_buf_init(text, (unsigned)(n + 1));
    if (uv_write(&job->req, (uv_stream_t *)&w->pipe, &buf, 1, write_cb) < 0) {
        free(text);
        free(job);
        return -1;
    }
    return 0;
}

static void deadline_cb(uv_timer_t *t)
{
    sw_worker *w = t->data;
    sw_kill(w, "hard deadline");
}

int sw_request(sw_worker *w, const json_t *req, int64_t hard_deadline_ms, volatile int *stop,
               json_t **answer)
{
    *answer = NULL;
    if (w->answer) {
        json_decref(w->answer);
        w->answer = NULL;
    }
    if (send_message(w, req) < 0) {
        mark_dead(w, "the worker is not running");
        return -1;
    }
    w->request_hard_ms = hard_deadline_ms;
    w->loading_file[0] = w->loading_kind[0] = '\0';
    if (hard_deadline_ms > 0)
        uv_timer_start(&w->deadline, deadline_cb, (uint64_t)hard_deadline_ms, 0);
    while (!w->answer && !w->dead && !(stop && *stop)) {
        if (json_array_size(w->calls) > 0) {
            json_t *call = json_incref(json_array_get(w->calls, 0));
            json_array_remove(w->calls, 0);
            json_t *args = json_object_get(call, "args");
            if (!json_is_object(args))
                args = NULL;
            json_t *empty = args ? NULL : json_object();
            if (w->on_call)
                w->on_call(w, pr_int(call, "id", -1), pr_str(call, "fn"), args ? args : empty,
                           w->call_data);
            json_decref(empty);
            json_decref(call);
            continue;
        }
        uv_run(w->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&w->deadline);
    w->paused_left_ms = 0;
    /* The pipe usually closes before the exit is reaped: wait a moment for
     * it, so the reason names the signal that killed the worker. */
    int64_t give_up = ut_mono_ms() + 1000;
    while (w->dead && w->running && !w->killed_by_us && ut_mono_ms() < give_up) {
        uv_run(w->loop, UV_RUN_NOWAIT);
        if (w->running)
            usleep(1000);
    }
    if (w->answer) { /* an answer that arrived just before a crash still counts */
        *answer = w->answer;
        w->answer = NULL;
        return 0;
    }
    if (stop && *stop && !w->dead) {
        sw_kill(w, "interrupted");
        return -2;
    }
    return -1;
}

void sw_reply_ok(sw_worker *w, int generation, long long call_id, json_t *value)
{
    if (generation != w->generation || w->dead) {
        json_decref(value);
        return;
    }
    json_t *msg = json_pack("{s:s, s:I, s:b, s:o}", "t", "reply", "id", (json_int_t)call_id, "ok", 1,
                            "value", value ? value : json_object());
    if (send_message(w, msg) < 0)
        mark_dead(w, "the worker is not reading its pipe");
    json_decref(msg);
}

void sw_reply_error(sw_worker *w, int generation, long long call_id, const char *error)
{
    if (generation != w->generation || w->dead)
        return;
    json_t *msg = json_pack("{s:s, s:I, s:b, s:s}", "t", "reply", "id", (json_int_t)call_id, "ok", 0,
                            "error", error);
    if (send_message(w, msg) < 0)
        mark_dead(w, "the worker is not reading its pipe");
    json_decref(msg);
}

void sw_kill(sw_worker *w, const char *reason)
{
    mark_dead(w, reason);
    if (w->running) {
        w->killed_by_us = 1;
        uv_process_kill(&w->proc, SIGKILL);
    }
    close_pipe(w);
}

void sw_stop(sw_worker *w)
{
    close_pipe(w);
    /* EOF on its pipe makes a healthy worker exit; one that does not within
     * two seconds is killed. */
    int64_t give_up = ut_mono_ms() + 2000;
    while (w->running) {
        if (ut_mono_ms() > give_up && !w->killed_by_us)
            sw_kill(w, "did not exit after its pipe was closed");
        uv_run(w->loop, UV_RUN_NOWAIT);
        if (w->running)
            usleep(1000);
    }
    while (w->pipe_open || w->proc_open)
        uv_run(w->loop, UV_RUN_NOWAIT);
    if (w->answer) {
        json_decref(w->answer);
        w->answer = NULL;
    }
    pr_reader_free(&w->reader);
    json_decref(w->calls);
    w->calls = NULL;
}

void sw_destroy(sw_worker *w)
{
    sw_stop(w);
    if (w->deadline_init) {
        uv_close((uv_handle_t *)&w->deadline, NULL);
        w->deadline_init = 0;
        uv_run(w->loop, UV_RUN_NOWAIT);
    }
}

void sw_pause_deadline(sw_worker *w)
{
    if (!w->deadline_init || !uv_is_active((uv_handle_t *)&w->deadline))
        return;
    w->paused_left_ms = uv_timer_get_due_in(&w->deadline) + 1;
    uv_timer_stop(&w->deadline);
}

void sw_resume_deadline(sw_worker *w)
{
    if (!w->paused_left_ms)
        return;
    uv_timer_start(&w->deadline, deadline_cb, w->paused_left_ms, 0);
    w->paused_left_ms = 0;
}
