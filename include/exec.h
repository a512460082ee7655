/*
 * exec.h — runs one child process for ctx.exec without blocking the event
 * loop: argv without a shell (unless asked), optional stdin text, output of
 * each stream captured up to a bound (the rest drained and counted), a
 * timeout that terminates the child's whole process group and every
 * descendant, also one that left the group (SIGTERM, then SIGKILL one second
 * later), and cancellation when a step ends.
 * Depends on: libuv, proctree.h.
 */
#ifndef IRP_EXEC_H
#define IRP_EXEC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct ex_result {
    int spawned;           /* 0: could not start (see error) */
    char error[256];
    int64_t code;          /* exit status, -1 when killed by a signal */
    int term_signal;
    int timed_out;
    int cancelled;
    char *out, *err;       /* captured bytes (NUL-terminated), owned by the job */
    size_t out_len, err_len;
    size_t out_total, err_total; /* bytes the child wrote, captured or not */
    int64_t duration_ms;
} ex_result;

typedef struct ex_job ex_job;
typedef void (*ex_done_fn)(ex_job *job, const ex_result *result, void *data);

typedef struct ex_spec {
    char **argv;           /* argv[0] is looked up in PATH */
    char **env;            /* NULL: inherit the supervisor's environment */
    const char *cwd;       /* NULL: inherit */
    const char *stdin_data;/* NULL: /dev/null */
    size_t stdin_len;
    int64_t timeout_ms;    /* <= 0: none */
    size_t capture_limit;  /* per stream */
} ex_spec;

/* Starts the child; done is always called exactly once, later, from the
 * loop (also when the spawn fails). The job frees itself after done returns. */
ex_job *ex_start(uv_loop_t *loop, const ex_spec *spec, ex_done_fn done, void *data);
/* Terminates the job's process group now (its done still runs, cancelled = 1). */
void ex_cancel(ex_job *job);
/* Cancels every job still running (a step ended, the run is interrupted). */
void ex_cancel_all(void);
/* Number of jobs still running. */
int ex_running(void);

#endif
