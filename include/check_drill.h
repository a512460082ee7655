/*
 * check_drill.h — `irp check --drill`: before a drill, drill the playbook
 * once as a quiet probe (every side effect simulated, every prompt
 * answered by the scenario or as --yes would, sleeps instant, in a
 * throw-away state directory) and report, as FILE:LINE: problem, the
 * steps that read a value the drill's simulation does not provide: a
 * field of an earlier step's result that is nil because that step's
 * ctx.exec / ctx.http had no simulated outcome (no `drill` table, nothing
 * in the scenario) or an outcome without it; a step that fails with a
 * Lua error in the drill. Steps that call ctx.exec / ctx.http with no
 * simulated outcome are listed as notes.
 * The engine feeds the findings through the cd_ hooks below (no-ops
 * unless opt->probe is set). Prefix cd_. Depends on: engine.h, jansson.
 */
#ifndef IRP_CHECK_DRILL_H
#define IRP_CHECK_DRILL_H

#include <jansson.h>

struct eng_run;

/* Real time a step gets in the probe: a drilled step has nothing to wait for. */
#define CD_STEP_DEADLINE_MS 5000

/* Probes one playbook (already loaded without problems: outline) and
 * prints its report. 0 when the drill has nothing to fix, 65 when it
 * has, or the probe run's own exit code when it could not run. */
int cd_check(const char *playbook, json_t *vars, json_t *attach, json_t *plugins, const char *scenario_path,
             const char *config, json_t *outline);

/* Engine hooks. A step's answer (prepared / done) with its probe_reads. */
void cd_reads(struct eng_run *r, const char *reader, json_t *answer);
/* A simulated exec or http call of step; sim is the outcome used, or NULL. */
void cd_effect(struct eng_run *r, const char *step, const char *kind, const char *shown, int had_outcome);
/* A step failed for good (kind: error, fail, timeout, memory, crash, when). */
void cd_failed(struct eng_run *r, const char *step, const char *kind, const char *reason);
/* A step's final status. */
void cd_status(struct eng_run *r, const char *step, const char *status);

#endif
