/*
 * engine.h — one run of a playbook, driven by the supervisor: the step
 * loop (when, approvals, manual steps, retries with backoff, timeouts,
 * on_failure), the worker's lifecycle (a crashed or killed worker is
 * replaced and handed the results so far), escalation tiers, and the
 * journal records of it all. The engine does not know whether it is
 * drilling: side effects go through an fx_ops table (live or drill).
 * Depends on: libuv, jansson, journal.h, supworker.h, exec.h.
 */
#ifndef IRP_ENGINE_H
#define IRP_ENGINE_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "journal.h"
#include "notify.h"
#include "supworker.h"

typedef struct eng_options {
    const char *playbook;     /* path */
    json_t *vars;             /* {name: string} from -v */
    json_t *attach;           /* [path] from --attach */
    json_t *plugins;          /* [dir] from --plugins */
    const char *run_id;       /* NULL: generate */
    const char *state_dir;
    const char *config;       /* NULL: as cf_load finds it; cf_embedded_default (config.h) */
    const char *config_via;   /* resume: why this configuration ("recorded at run start", "--config") */
    int drill;
    int yes;                  /* answer every manual step done, every approval granted */
    double speed;             /* drill clock speed (>= 1) */
    int live_notify;          /* drill: deliver to real channels (marked [DRILL]) */
    json_t *probe;            /* irp check --drill: a quiet drill whose findings land here (check_drill.h) */
    struct sc_scenario *scenario; /* drill scenario (scenario.h), or NULL */
    int64_t memory;           /* Lua memory cap, bytes */
    /* Resume (filled by rs_load from the journal; NULL/0 for a new run). */
    const char *resume;       /* run id being resumed */
    json_t *resume_state;     /* {step id: {"status","result"}} of finished steps */
    const char *in_flight;    /* step started but without an outcome, or NULL */
    const char *in_flight_answer; /* --in-flight retry|skip|done, or NULL */
    const char *resume_sha256;    /* the playbook's hash when the run started */
    json_t *resume_steps;     /* step ids when the run started */
    json_t *resume_sources;   /* {path: sha256} of its attach files and plugins then, or NULL */
    int resume_tier;          /* escalation tier reached before */
    const char *resume_failed;        /* a step whose failure was recorded but whose on_failure */
    const char *resume_failed_reason; /* had not acted yet when the run stopped (and why it failed) */
    int resume_failed_escalated;      /* ... its on_failure = "escalate" is already on record */
    int64_t resume_elapsed_ms;/* run time before the resume */
    int force;                /* resume even though the playbook changed */
    long long resume_last_seq;/* last seq rs_load read: the journal must not have moved since */
    json_t *resume_records;   /* the journal so far (a drill's scorecard and injects carry on from it) */
} eng_options;

typedef struct eng_run eng_run;

/* One call from the worker in flight. */
typedef struct fx_call {
    eng_run *run;
    int generation;           /* the worker that asked */
    long long id;
    char *step;               /* step id (malloc'd) */
} fx_call;

/* Side effects: live performs them, drill simulates them from the step's
 * drill table (or the scenario). Each answers the call (fx_answer_*)
 * exactly once, now or later, and frees it. The hooks after them are how
 * a drill sees the run without the engine knowing it drills; live leaves
 * them NULL. */
typedef struct fx_ops {
    const char *mode;         /* "live" | "drill" */
    void (*exec)(fx_call *call, json_t *args);
    void (*http)(fx_call *call, json_t *args);
    /* The playbook is loaded, nothing recorded yet: 0 or an exit code. */
    int (*prepare)(eng_run *r);
    /* The journal exists and the header is shown: 0 or an exit code. */
    int (*begin)(eng_run *r);
    /* Every record before it is journaled (may add to data). */
    void (*observe)(eng_run *r, const char *type, const char *step, json_t *data);
    /* "step_start" when a step begins to run, "step_end" when it ended. */
    void (*step_event)(eng_run *r, const char *event, const char *step);
    /* A scripted answer ("word: note", malloc'd) to a prompt of kind
     * manual / approval / ask / confirm, or NULL. */
    char *(*scripted)(eng_run *r, const char *step, const char *kind);
    /* The run ended with status and exit code: returns the exit code. */
    int (*finish)(eng_run *r, const char *status, int code);
    /* Frees what prepare/begin made (always called). */
    void (*release)(eng_run *r);
} fx_ops;

extern const fx_ops fx_live;
extern const fx_ops fx_drill;

struct eng_run {
    uv_loop_t *loop;
    const eng_options *opt;
    const fx_ops *fx;
    sw_worker worker;
    json_t *load_request;     /* sent again to every fresh worker */
    json_t *outline;
    json_t *steps;            /* outline.steps (borrowed) */
    json_t *state;            /* {step id: {"status","result","attempts"}} */
    jr_journal *jr;
    char *run_id;
    char *run_dir;
    int lock_fd;
    const char *operator_name;
    int64_t started_mono;
    int64_t paused_total_ms;  /* drill: wall time the facilitator paused */
    int64_t paused_since_mono;/* drill: paused now (since then), else 0 */
    const char *current_step; /* id of the step running now, or NULL */
    const char *step_title;   /* its title as shown (templates rendered), or NULL */
    json_t *current_def;      /* its outline entry */
    int64_t step_deadline_mono; /* soft deadline of the running step */
    int escalation_tier;      /* highest tier triggered so far */
    json_t *breached;         /* {objective: run ms when breached} */
    int acknowledged;         /* a person has answered since the last notification was queued */
    uv_timer_t escalation_timer;
    int escalation_timer_init;
    nt_service *notify;       /* notifiers and the outbox (notify.h) */
    volatile int interrupted; /* SIGINT/SIGTERM count */
    int interrupt_signal;
    int journal_failed;
    int artifacts;
    const char *answer_via;   /* who gave the last answer: operator, --yes, scenario */
    size_t answer_cut;        /* its line was cut (TM_LINE_MAX): the full length, else 0 */
    struct dr_state *drill;   /* the drill's own state (scenario.h), or NULL */
};

/* Runs (or drills) a playbook to the end. Returns the exit code. */
int eng_run_playbook(const eng_options *opt);

/* Loads a playbook in a fresh worker for check/list/show: returns the
 * worker's answer ({"t":"loaded",...} or {"t":"invalid",...}) or NULL with
 * err when the worker failed. */
json_t *eng_load_outline(const char *path, json_t *vars, json_t *attach, json_t *plugins, int check,
                         int64_t memory, char *err, size_t err_size);

/* Appends a record to the run's journal, redacting secrets in data
 * (stolen). A journal failure is remembered and stops the run. */
void eng_record(eng_run *r, const char *type, const char *step, const char *actor, json_t *data);
/* Makes the journal durable before a side effect; 0 or -1 (run must stop). */
int eng_barrier(eng_run *r);

/* Internal to the engine (engine.c, engine_step.c). */
enum eng_outcome { OUT_SUCCEEDED, OUT_FAILED, OUT_SKIPPED, OUT_STOPPED, OUT_NO_ANSWER, OUT_FATAL };
/* Runs step `index` of `total`; *reason (malloc'd) says why it failed. */
enum eng_outcome eng_run_step(eng_run *r, size_t index, size_t total, const char **last_phase, char **reason);
/* Records a step's outcome in the run state and tells the worker. */
void eng_set_state(eng_run *r, const char *id, const char *status, json_t *result);
/* Opening the record (engine_record.c); each returns 0 or an exit code. */
/* Lower-case hex SHA-256 of a file's content: 0, or -1 (errno). */
int eng_sha256_file(const char *path, char hex[65]);
int eng_create_record(eng_run *r, const char *state_dir, const char *hash, char *err, size_t err_size);
int eng_open_resumed_record(eng_run *r, const char *hash, char *err, size_t err_size);
int eng_decide_in_flight(eng_run *r);
/* Waits ms of run time (a drill's clock may run faster) while the loop
 * runs timers, unless interrupted. */
void eng_wait_ms(eng_run *r, int64_t ms);
/* Replaces a dead worker with a fresh one that knows every recorded result. */
int eng_restart_worker(eng_run *r);

/* Handles the worker's calls (calls.c). */
void eng_on_call(sw_worker *w, long long call_id, const char *fn, json_t *args, void *data);
/* Answers a call and frees it. */
void fx_answer_ok(fx_call *call, json_t *value);
void fx_answer_error(fx_call *call, const char *error);
void fx_call_free(fx_call *call);
/* Drops every ctx.sleep still waiting, unanswered (the run is stopping). */
void fx_cancel_sleeps(void);
/* The outline entry of a step id, or NULL. */
json_t *eng_step_def(eng_run *r, const char *step_id);

/* Escalation (escalate.c): climbs one tier (or to tier `tier` when > 0),
 * journals escalation.triggered and notifies its targets. Returns the tier
 * reached (0 when the playbook has no tier left). */
int eng_escalate(eng_run *r, const char *reason, const char *step, int tier);
/* On resume: the objectives whose breach the journal already escalated, so
 * they do not page again. */
void eng_escalation_resume(eng_run *r, json_t *records);
/* One more look at the timed tiers and objectives, now: a fast drill clock
 * can pass a tier's time between two ticks of the check as the run ends. */
void eng_escalation_catch_up(eng_run *r);
/* Starts the timers of tiers with "after". */
void eng_escalation_start(eng_run *r);
void eng_escalation_stop(eng_run *r);
/* A person answered after an escalation: incident-tracking notifiers
 * (PagerDuty, Opsgenie) paged since the last acknowledge are told it is
 * acknowledged (each once: a service paged later is acknowledged by the
 * next answer after its page). */
void eng_acknowledge(eng_run *r);
/* While an operator is asked about a step whose `timeout` is set: every
 * time that much (run) time passes without an answer, escalate one tier.
 * Returns a handle for eng_wait_escalation_stop (NULL when no timeout). */
/* The run's clock in ms since it started: in a drill, sped up and stopped
 * while the facilitator pauses. Objectives, timed tiers, injects and the
 * scorecard all read this clock. */
int64_t eng_clock_ms(eng_run *r);
/* The facilitator's pause ("pause" typed at any prompt of a drill): the
 * drill clock stops, drill.paused is journaled, and notes are taken until
 * "resume" (drill.resumed). 0 when resumed, -1 at end of input, -2 when
 * interrupted. In a live run it only explains why there is no pause. */
int eng_pause(eng_run *r, const char *step);
/* The phase an objective ("contain_within") is about, or NULL (the whole run). */
const char *eng_objective_phase(eng_run *r, const char *key);
/* The same for a list of phase names (run.started's data.playbook.phases,
 * read back by `irp report`); borrowed from phases. */
const char *eng_objective_phase_in(json_t *phases, const char *key);
/* An objective's verdict as the scorecard and the report give it:
 * {objective, phase, limit_ms, verdict, reached_ms}. reached: when its
 * phase (or, without one, the succeeded run) ended, -1 if it has not; now:
 * the run time so far; escalated: a breach of it is on record. "breached"
 * when escalated, reached late, or not reached past the limit; else "met"
 * or "not reached". */
json_t *eng_objective_verdict(const char *key, const char *phase, long long limit, long long reached,
                              long long now, int escalated);
void *eng_wait_escalation_start(eng_run *r, const char *step, const char *what);
void eng_wait_escalation_stop(void *handle);
/* Delivers one notification (journaled notify.queued / notify.sent). */
void eng_notify(eng_run *r, const char *target, const char *msg, json_t *fields, const char *step);
/* The notify service's event callback (escalate.c): journals every event. */
void eng_on_notify_event(void *ctx, const char *type, const char *run_id, const char *step, json_t *data);

/* Operator prompts (prompt.c). Each journals its answer. */
typedef enum { ANSWER_DONE, ANSWER_FAILED, ANSWER_SKIP, ANSWER_EOF, ANSWER_STOPPED } eng_answer;
eng_answer eng_ask_manual(eng_run *r, const char *step, char **note);
/* 1 granted, 0 denied, -1 no answer (end of input), -2 interrupted. */
int eng_ask_approval(eng_run *r, const char *step, const char *role, char **note);
/* Marks the data of a record of what the operator typed as cut when the
 * line was full_len (> 0) bytes long: "truncated": true, "original_bytes". */
void eng_mark_cut(json_t *data, size_t full_len);

#endif
