/*
 * supworker.h — the supervisor's handle on the worker process: starts
 * "irp __worker" with a scrubbed environment and the protocol socket on fd 3,
 * sends requests, waits for the answer while the event loop keeps running
 * (timers, child processes, the operator's terminal), hands the worker's
 * "call" messages to a handler, and kills the worker at a hard deadline.
 * Depends on: libuv, jansson, proto.h.
 */
#ifndef IRP_SUPWORKER_H
#define IRP_SUPWORKER_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "proto.h"

typedef struct sw_worker sw_worker;

/* Handles one {"t":"call"} message; must eventually answer with sw_reply
 * (now or from a later callback). args is borrowed. Runs from sw_request's
 * wait loop, never from inside a libuv callback, so it may itself wait
 * (prompt the operator). */
typedef void (*sw_call_fn)(sw_worker *w, long long call_id, const char *fn, json_t *args, void *data);

struct sw_worker {
    uv_loop_t *loop;
    uv_process_t proc;
    uv_pipe_t pipe;
    pr_reader reader;
    int running;           /* process started and not yet reaped */
    int pipe_open;
    int proc_open;         /* process handle not yet closed */
    int generation;        /* bumps at every start: stale replies are dropped */
    json_t *calls;         /* calls received, not yet handled (array) */
    json_t *answer;        /* the reply to the outstanding request */
    int dead;              /* process exited, was killed, or broke the protocol */
    char dead_reason[256];
    int64_t exit_status;
    int term_signal;
    int killed_by_us;
    sw_call_fn on_call;
    void *call_data;
    uv_timer_t deadline;
    int deadline_init;
    uint64_t paused_left_ms;  /* hard deadline left when paused, 0 if not paused */
    int64_t request_hard_ms;  /* the outstanding request's hard deadline (0: none) */
    /* the file whose top-level code a load runs now ("loading" messages);
     * "" when none was announced for the outstanding request */
    char loading_file[1024];
    char loading_kind[16];
};

/* Starts a worker. 0, or -1 with err. */
int sw_start(sw_worker *w, uv_loop_t *loop, sw_call_fn on_call, void *call_data, char *err,
             size_t err_size);

/* Sends req (borrowed) and runs the loop until the answer arrives, the worker
 * dies, *stop becomes non-zero (may be NULL), or hard_deadline_ms (from now; 0 = none)
 * passes, in which case the worker is SIGKILLed. Returns 0 with *answer (new
 * reference), -1 when the worker died (w->dead_reason says how), -2 when
 * *stop interrupted the wait (the worker is killed). */
int sw_request(sw_worker *w, const json_t *req, int64_t hard_deadline_ms, volatile int *stop,
               json_t **answer);

/* Answers a call. value is stolen (NULL = {}). Ignored when generation is
 * not the current one (the worker that asked has died since). */
void sw_reply_ok(sw_worker *w, int generation, long long call_id, json_t *value);
void sw_reply_error(sw_worker *w, int generation, long long call_id, const char *error);

/* Stops the hard-deadline clock while a person is being asked something
 * (the worker pauses its soft deadline too), and restarts it with the time
 * that was left. */
void sw_pause_deadline(sw_worker *w);
void sw_resume_deadline(sw_worker *w);

/* SIGKILLs the worker (no-op when not running). */
void sw_kill(sw_worker *w, const char *reason);
/* Closes the pipe and waits until the process is reaped. */
void sw_stop(sw_worker *w);
/* sw_stop, then releases the handles kept across restarts. */
void sw_destroy(sw_worker *w);

#endif
