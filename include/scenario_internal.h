/*
 * scenario_internal.h — shared by scenario.c (the Lua state) and
 * scenario_fields.c (checking the fields): the load in progress.
 * Depends on: jansson, scenario.h.
 */
#ifndef IRP_SCENARIO_INTERNAL_H
#define IRP_SCENARIO_INTERNAL_H

#include "scenario.h"

#include <uv.h>

typedef struct sc_job {
    sc_scenario *sc;
    json_t *root;    /* the returned table as JSON */
    char *err;
    size_t err_size;
    int failed;
} sc_job;

/* Records the first error as "path:line: message" (line 0: no line). */
void sc_fail(sc_job *job, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The nth line at or after from_line that assigns name (or, with quoted,
 * holds "name"), or 0. */
int sc_find_nth_line(const sc_scenario *sc, int from_line, const char *name, int quoted, int nth);
/* Unknown keys of obj are errors ("where: unknown field 'x' (did you
 * mean 'y'?)" at the key's line, else line). 0 or -1 (scenario_fields.c). */
int sc_known_keys(sc_job *job, json_t *obj, const char *const *known, const char *where, int line);
/* Checks `outcomes` into job->sc->outcomes (scenario_outcomes.c). */
void sc_read_outcomes(sc_job *job, json_t *obj, int base);
/* Checks job->root field by field and fills job->sc (scenario_fields.c). */
void sc_read_fields(sc_job *job);

/* The drill's own state (scenario_run.c; read by scorecard.c). */
struct dr_state {
    const sc_scenario *sc;    /* NULL: a drill without a scenario */
    json_t *calls;            /* {step: exec/http calls simulated so far} */
    json_t *asks;             /* {step: ctx.ask/confirm answered so far} */
    json_t *fired;            /* [bool] per inject */
    json_t *decisions;        /* [{step, kind, answer, via}] */
    json_t *escalations;      /* [tier] in order */
    json_t *phases;           /* {phase: {start_ms, end_ms}} (drill clock) */
    int64_t paused_before_ms; /* pauses recorded before a resume */
    json_t *open_prompts;     /* resume: {"kind:step": sim_ms} prompts (manual, approval) shown
                               * before the drill stopped and never answered */
    int64_t replayed_sim_ms;  /* resume: the drill clock where the record stopped */
    json_t *esc_log;          /* [{tier, sim_ms, reason, step}] every escalation.triggered, in order */
    int64_t walk_end_ms;      /* drill ms of the last run.finished / run.interrupted (-1: none yet) */
    uv_timer_t clock;         /* fires time-based injects */
    int clock_init;
    int closing;              /* the timer's close is pending */
    int released;             /* dr_free ran: the close callback frees */
};

/* The escalations escalate.c's own rules say should have fired and did
 * not (scorecard_due.c): tiers is the outline's "escalation", objectives
 * the scorecard's [{objective, limit_ms, verdict}], esc_log as above,
 * open_until_ms the drill time the run stopped being walked. Returns
 * [{tier, due_ms, rule: "after" | "objective", objective?, why}]. */
json_t *scd_due_not_fired(json_t *tiers, json_t *objectives, json_t *esc_log, int64_t open_until_ms);
/* Builds, prints and journals the scorecard; returns the exit code
 * (scorecard.c). */
struct eng_run;
int scd_report(struct eng_run *r, struct dr_state *d, const char *status, int code);

#endif
