/*
 * exec.c — child processes for ctx.exec, driven by the libuv loop. Each
 * child gets its own session (process group) so a timeout or cancellation
 * stops everything it started, not just the first process.
 * See include/exec.h.
 */
#include "exec.h"
#include "proctree.h"
#include "util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct ex_job {
    uv_loop_t *loop;
    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_timer_t timer;
    uv_write_t write_req;
    ex_spec spec;
    ex_result result;
    ut_buf out_buf, err_buf;
    int open_handles;
    int exited;
    int escalated;      /* SIGKILL already sent */
    int64_t started_ms;
    ex_done_fn done;
    void *data;
    char *stdin_copy;   /* may hold a secret's value: wiped before it is freed */
    size_t stdin_copy_len;
    pt_proc *tree;      /* descendants seen when it was stopped (also outside its group) */
    int tree_n;
    ex_job *next;
};

static ex_job *running_jobs;

static void unlink_job(ex_job *job)
{
    for (ex_job **p = &running_jobs; *p; p = &(*p)->next)
        if (*p == job) {
            *p = job->next;
            return;
        }
}

static void finish_if_done(ex_job *job)
{
    if (job->open_handles > 0)
        return;
    unlink_job(job);
    job->result.out = job->out_buf.data ? job->out_buf.data : (char *)"";
    job->result.err = job->err_buf.data ? job->err_buf.data : (char *)"";
    job->result.out_len = job->out_buf.len;
    job->result.err_len = job->err_buf.len;
    job->result.duration_ms = ut_mono_ms() - job->started_ms;
    job->done(job, &job->result, job->data);
    ut_buf_free(&job->out_buf);
    ut_buf_free(&job->err_buf);
    if (job->stdin_copy)
        explicit_bzero(job->stdin_copy, job->stdin_copy_len);
    free(job->stdin_copy);
    free(job->tree);
    free(job);
}

static void close_handle(ex_job *job, uv_handle_t *h);

/* Once the child has exited and both pipes are done, the timer goes too. */
static void maybe_close_timer(ex_job *job)
{
    if (job->exited && uv_is_closing((uv_handle_t *)&job->out) && uv_is_closing((uv_handle_t *)&job->err))
        close_handle(job, (uv_handle_t *)&job->timer);
}

static void on_handle_closed(uv_handle_t *h)
{
    ex_job *job = h->data;
    job->open_handles--;
    maybe_close_timer(job);
    finish_if_done(job);
}

static void close_handle(ex_job *job, uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_handle_closed);
}

static void signal_group(ex_job *job, int sig)
{
    if (job->exited || job->proc.pid <= 0)
        return;
    /* The child leads its own session: -pid reaches its whole group. */
    if (kill(-job->proc.pid, sig) < 0)
        uv_process_kill(&job->proc, sig);
}

/* Stopping a command reaches its group and every descendant, also one
 * that left the group (setsid, a daemon): found while the command still
 * runs, remembered, and signalled again at the SIGKILL. */
static void signal_tree(ex_job *job, int sig)
{
    if (!job->exited && job->proc.pid > 0)
        pt_add_descendants(job->proc.pid, &job->tree, &job->tree_n);
    signal_group(job, sig);
    for (int i = 0; i < job->tree_n; i++)
        pt_signal(&job->tree[i], sig);
}

static void on_timer(uv_timer_t *t)
{
    ex_job *job = t->data;
    if (job->exited)
        return;
    if (!job->escalated) {
        job->escalated = 1;
        job->result.timed_out = 1;
        signal_tree(job, SIGTERM);
        uv_timer_start(&job->timer, on_timer, 1000, 0);
    } else {
        signal_tree(job, SIGKILL);
    }
}

/* The child has exited but something that left its process group (a
 * daemon, `ssh -f`) still holds its output pipes: stop waiting for them. */
static void close_pipes(ex_job *job)
{
    close_handle(job, (uv_handle_t *)&job->out);
    close_handle(job, (uv_handle_t *)&job->err);
}

static void drain_timeout(uv_timer_t *t)
{
    ex_job *job = t->data;
    close_pipes(job);
    close_handle(job, (uv_handle_t *)t);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
    ex_job *job = p->data;
    job->exited = 1;
    job->result.code = term_signal ? -1 : status;
    job->result.term_signal = term_signal;
    /* Whatever the child left running in its group goes with it; so does
     * what a stopped (timed out, cancelled) command started outside it. */
    if (kill(-p->pid, SIGKILL) < 0) { /* nothing left: fine */ }
    for (int i = 0; i < job->tree_n; i++)
        pt_signal(&job->tree[i], SIGKILL);
    /* Output still in the pipes gets one second to arrive. */
    uv_timer_stop(&job->timer);
    uv_timer_start(&job->timer, drain_timeout, job->result.cancelled ? 0 : 1000, 0);
    close_handle(job, (uv_handle_t *)p);
    maybe_close_timer(job);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = ut_xmalloc(suggested);
    buf->len = suggested;
}

static void capture(ex_job *job, ut_buf *b, size_t *total, const char *data, size_t n)
{
    *total += n;
    size_t room = b->len < job->spec.capture_limit ? job->spec.capture_limit - b->len : 0;
    ut_buf_append(b, data, n < room ? n : room);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    ex_job *job = s->data;
    if (n > 0) {
        if (s == (uv_stream_t *)&job->out)
            capture(job, &job->out_buf, &job->result.out_total, buf->base, (size_t)n);
        else
            capture(job, &job->err_buf, &job->result.err_total, buf->base, (size_t)n);
    } else if (n < 0) {
        close_handle(job, (uv_handle_t *)s);
    }
    free(buf->base);
}

static void write_cb(uv_write_t *req, int status)
{
    ex_job *job = req->data;
    (void)status; /* a child that does not read its stdin is its own business */
    close_handle(job, (uv_handle_t *)&job->in);
}

static void fail_soon(uv_timer_t *t)
{
    ex_job *job = t->data;
    close_handle(job, (uv_handle_t *)t);
}

ex_job *ex_start(uv_loop_t *loop, const ex_spec *spec, ex_done_fn done, void *data)
{
    ex_job *job = ut_xcalloc(1, sizeof *job);
    job->loop = loop;
    job->spec = *spec;
    job->done = done;
    job->data = data;
    job->started_ms = ut_mono_ms();
    job->next = running_jobs;
    running_jobs = job;
    ut_buf_append(&job->out_buf, "", 0);
    ut_buf_append(&job->err_buf, "", 0);

    uv_timer_init(loop, &job->timer);
    job->timer.data = job;
    job->open_handles++;

    int want_stdin = spec->stdin_data != NULL;
    uv_pipe_init(loop, &job->out, 0);
    uv_pipe_init(loop, &job->err, 0);
    job->out.data = job->err.data = job;
    job->open_handles += 2;
    if (want_stdin) {
        uv_pipe_init(loop, &job->in, 0);
        job->in.data = job;
        job->open_handles++;
    }

    uv_stdio_container_t stdio[3];
    stdio[0].flags = want_stdin ? (UV_CREATE_PIPE | UV_READABLE_PIPE) : UV_IGNORE;
    stdio[0].data.stream = (uv_stream_t *)&job->in;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&job->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&job->err;

    uv_process_options_t opts;
    memset(&opts, 0, sizeof opts);
    opts.file = spec->argv[0];
    opts.args = spec->argv;
    opts.env = spec->env;
    opts.cwd = spec->cwd;
    opts.exit_cb = on_exit_cb;
    opts.stdio = stdio;
    opts.stdio_count = 3;
    opts.flags = UV_PROCESS_DETACHED; /* setsid(): its own process group */
    job->proc.data = job;
    int rc = uv_spawn(loop, &job->proc, &opts);
    if (rc < 0) {
        struct stat st;
        if (spec->cwd && (stat(spec->cwd, &st) < 0 || !S_ISDIR(st.st_mode)))
            snprintf(job->result.error, sizeof job->result.error, "cannot run '%s' in %s: %s", spec->argv[0],
                     spec->cwd, "the directory does not exist");
        else
            snprintf(job->result.error, sizeof job->result.error, "cannot run '%s': %s", spec->argv[0],
                     uv_strerror(rc));
        job->result.code = -1;
        job->exited = 1;
        job->open_handles++; /* the process handle must be closed too */
        close_handle(job, (uv_handle_t *)&job->proc);
        close_handle(job, (uv_handle_t *)&job->out);
        close_handle(job, (uv_handle_t *)&job->err);
        if (want_stdin)
            close_handle(job, (uv_handle_t *)&job->in);
        /* done must run from the loop, never from inside ex_start. */
        uv_timer_start(&job->timer, fail_soon, 0, 0);
        return job;
    }
    job->result.spawned = 1;
    job->open_handles++;
    uv_read_start((uv_stream_t *)&job->out, alloc_cb, read_cb);
    uv_read_start((uv_stream_t *)&job->err, alloc_cb, read_cb);
    if (want_stdin) {
        job->stdin_copy = ut_xmalloc(spec->stdin_len + 1);
        memcpy(job->stdin_copy, spec->stdin_data, spec->stdin_len);
        job->stdin_copy_len = spec->stdin_len;
        uv_buf_t buf = uv_buf_init(job->stdin_copy, (unsigned)spec->stdin_len);
        job->write_req.data = job;
        if (uv_write(&job->write_req, (uv_stream_t *)&job->in, &buf, 1, write_cb) < 0)
            close_handle(job, (uv_handle_t *)&job->in);
    }
    if (spec->timeout_ms > 0)
        uv_timer_start(&job->timer, on_timer, (uint64_t)spec->timeout_ms, 0);
    return job;
}

void ex_cancel(ex_job *job)
{
    if (job->exited) {
        job->result.cancelled = 1;
        close_pipes(job);
        return;
    }
    job->result.cancelled = 1;
    job->escalated = 1;
    signal_tree(job, SIGKILL);
}

void ex_cancel_all(void)
{
    for (ex_job *job = running_jobs; job; job = job->next)
        ex_cancel(job);
}

int ex_running(void)
{
    int n = 0;
    for (ex_job *job = running_jobs; job; job = job->next)
        n++;
    return n;
}
