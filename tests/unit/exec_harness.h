/*
 * exec_harness.h — shared by test_exec.c and test_exec_group.c: a real
 * libuv loop per test (teardown fails when a handle was left open), a done
 * callback that copies the result, a guard timer against hangs, one-shot
 * timers, and /proc helpers to inspect process groups. Everything here is
 * static inline: each test binary is one translation unit.
 * A child started with the inherited environment carries MARK_VAR, so a
 * guard or teardown can SIGKILL whatever a broken exec.c left running.
 * Depends on: cmocka, libuv, exec.h.
 */
#ifndef IRP_TEST_EXEC_HARNESS_H
#define IRP_TEST_EXEC_HARNESS_H

#include "exec.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define MiB ((size_t)1 << 20)

/* ---- the outcome of one job --------------------------------------------- */

typedef struct {
    int calls;
    int from_start;       /* done ran while ex_start had not returned */
    int running_in_done;  /* ex_running() seen from inside done */
    int terminated;       /* out and err were NUL-terminated */
    ex_result r;          /* copy; r.out / r.err point into out / err below */
    char *out, *err;
} outcome;

static int inside_start; /* set while ex_start runs */

static inline void on_done(ex_job *job, const ex_result *res, void *data)
{
    (void)job;
    outcome *o = data;
    o->calls++;
    o->from_start |= inside_start;
    o->running_in_done = ex_running();
    free(o->out);
    free(o->err);
    o->r = *res;
    o->terminated = res->out[res->out_len] == '\0' && res->err[res->err_len] == '\0';
    /* The result's buffers belong to the job, which is freed after done. */
    o->out = malloc(res->out_len + 1);
    o->err = malloc(res->err_len + 1);
    memcpy(o->out, res->out, res->out_len + 1);
    memcpy(o->err, res->err, res->err_len + 1);
    o->r.out = o->out;
    o->r.err = o->err;
}

static inline void outcome_free(outcome *o)
{
    free(o->out);
    free(o->err);
    o->out = o->err = NULL;
}

static inline ex_job *start(uv_loop_t *loop, const ex_spec *spec, outcome *o)
{
    inside_start = 1;
    ex_job *job = ex_start(loop, spec, on_done, o);
    inside_start = 0;
    return job;
}

static inline ex_spec spec_for(char **argv)
{
    ex_spec s;
    memset(&s, 0, sizeof s);
    s.argv = argv;
    s.capture_limit = MiB;
    return s;
}

/* ---- the loop ----------------------------------------------------------- */

static inline void kill_marked(void);

static inline int setup_loop(void **state)
{
    uv_loop_t *loop = malloc(sizeof *loop);
    if (!loop || uv_loop_init(loop) != 0)
        return -1;
    *state = loop;
    return 0;
}

static inline void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Fails the test when a handle was left open. */
static inline int teardown_loop(void **state)
{
    uv_loop_t *loop = *state;
    uv_run(loop, UV_RUN_DEFAULT);
    kill_marked(); /* a failed test leaves nothing running for the next */
    int rc = uv_loop_close(loop);
    if (rc != 0) {
        fprintf(stderr, "uv_loop_close: %s (a handle was left open)\n", uv_strerror(rc));
        uv_walk(loop, close_any, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        uv_loop_close(loop);
    }
    free(loop);
    return rc == 0 ? 0 : -1;
}

static inline void guard_fired(uv_timer_t *t)
{
    *(int *)t->data = 1;
    ex_cancel_all();
    kill_marked(); /* in case exec.c failed to end what it started */
}

/* Runs the loop until nothing is left to do, or guard_ms have passed (then
 * every job is cancelled so the test ends). Returns 1 when the guard fired. */
static inline int run_loop(uv_loop_t *loop, uint64_t guard_ms)
{
    int fired = 0;
    uv_timer_t guard;
    uv_timer_init(loop, &guard);
    guard.data = &fired;
    uv_timer_start(&guard, guard_fired, guard_ms, 0);
    uv_unref((uv_handle_t *)&guard); /* does not keep the loop alive */
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    return fired;
}

/* A one-shot timer that calls fn(arg) after ms. */
typedef struct {
    uv_timer_t t;
    void (*fn)(void *);
    void *arg;
} later;

static inline void later_fire(uv_timer_t *t)
{
    later *l = (later *)t;
    l->fn(l->arg);
    uv_close((uv_handle_t *)t, NULL);
}

static inline void call_later(uv_loop_t *loop, later *l, uint64_t ms, void (*fn)(void *), void *arg)
{
    l->fn = fn;
    l->arg = arg;
    uv_timer_init(loop, &l->t);
    uv_timer_start(&l->t, later_fire, ms, 0);
}

/* ---- /proc -------------------------------------------------------------- */

typedef struct {
    int pid, ppid, pgrp;
    char state;
    char comm[64];
} proc_info;

static inline int read_proc(int pid, proc_info *pi)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "pid (comm) S ppid pgrp ...": comm may hold spaces and parentheses */
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    if (!open || !close || close < open)
        return -1;
    size_t clen = (size_t)(close - open - 1);
    if (clen >= sizeof pi->comm)
        clen = sizeof pi->comm - 1;
    memcpy(pi->comm, open + 1, clen);
    pi->comm[clen] = '\0';
    pi->pid = pid;
    if (sscanf(close + 1, " %c %d %d", &pi->state, &pi->ppid, &pi->pgrp) != 3)
        return -1;
    return 0;
}

/* Calls fn for every process in /proc. */
static inline void each_proc(void (*fn)(const proc_info *, void *), void *arg)
{
    DIR *d = opendir("/proc");
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        proc_info pi;
        if (read_proc(atoi(e->d_name), &pi) == 0)
            fn(&pi, arg);
    }
    closedir(d);
}

typedef struct {
    int pgrp;
    const char *comm; /* NULL: any */
    int live;
} group_count;

static inline void count_cb(const proc_info *pi, void *arg)
{
    group_count *c = arg;
    if (pi->pgrp == c->pgrp && pi->state != 'Z' && (!c->comm || strcmp(pi->comm, c->comm) == 0))
        c->live++;
}

/* Live (non-zombie) processes in group pgrp, optionally only those named comm. */
static inline int live_in_group(int pgrp, const char *comm)
{
    group_count c = {pgrp, comm, 0};
    each_proc(count_cb, &c);
    return c.live;
}

/* Waits up to ms for the group to empty; returns what is left. */
static inline int wait_group_empty(int pgrp, int ms)
{
    int left = live_in_group(pgrp, NULL);
    for (int waited = 0; left > 0 && waited < ms; waited += 20) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        left = live_in_group(pgrp, NULL);
    }
    return left;
}

static inline int pid_alive(int pid)
{
    proc_info pi;
    return read_proc(pid, &pi) == 0 && pi.state != 'Z';
}

typedef struct {
    int child_pgrp;   /* group of our direct child, 0 if none */
    int child_pid;
    int sleeps;       /* live "sleep" processes in that group */
    int leader;       /* the child leads its group */
} probe_result;

static inline void child_cb(const proc_info *pi, void *arg)
{
    probe_result *p = arg;
    if (pi->ppid == getpid() && pi->state != 'Z') {
        p->child_pid = pi->pid;
        p->child_pgrp = pi->pgrp;
    }
}

/* Runs while the job is alive: finds our child and counts its group. */
static inline void probe(void *arg)
{
    probe_result *p = arg;
    each_proc(child_cb, p);
    if (p->child_pgrp) {
        p->sleeps = live_in_group(p->child_pgrp, "sleep");
        p->leader = p->child_pid == p->child_pgrp;
    }
}

/* Every child started with an inherited environment carries MARK_VAR=<our
 * pid>; kill_marked SIGKILLs each live process holding it, so a regression
 * in exec.c fails a test instead of hanging the binary for 100 s. */
#define MARK_VAR "IRPT_EXEC_TEST_MARK"
static char mark[64];

static inline int has_mark(int pid)
{
    char path[64], buf[16384];
    snprintf(path, sizeof path, "/proc/%d/environ", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    size_t mlen = strlen(mark);
    for (size_t i = 0; i + mlen <= n; i += strlen(buf + i) + 1)
        if (strcmp(buf + i, mark) == 0)
            return 1;
    return 0;
}

static inline void kill_cb(const proc_info *pi, void *arg)
{
    (void)arg;
    if (pi->pid != getpid() && pi->state != 'Z' && has_mark(pi->pid))
        kill(pi->pid, SIGKILL);
}

static inline void kill_marked(void)
{
    each_proc(kill_cb, NULL);
}

/* Call first in main: SIGPIPE ignored as the supervisor does (engine.c),
 * and the mark every child inherits. */
static inline void harness_init(void)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(mark, sizeof mark, MARK_VAR "=%d", (int)getpid());
    setenv(MARK_VAR, mark + sizeof MARK_VAR, 1);
}

#endif
