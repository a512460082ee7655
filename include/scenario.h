/*
 * scenario.h — tabletop exercise scenarios (`irp drill --scenario FILE`)
 * and the drill side of the engine's fx_ops table.
 *
 * A scenario is a Lua file `return scenario { ... }` read by the
 * supervisor in a throw-away sandboxed lua_State (base, string, table,
 * math, utf8; no io/os/load/require; a memory cap and a load deadline),
 * converted to JSON and checked field by field: unknown fields get "did
 * you mean", every error reads "file:line: problem" (exit 65). Nothing of
 * Lua survives the load.
 *
 * The drill runtime (scenario_run.c, prefix dr_) is reached only through
 * fx_drill's hooks: scripted answers, simulated outcomes, injects (on the
 * sped-up drill clock or at step start/end), data.sim_ms on the records
 * of a drill, and the scorecard (scorecard.c) at the end.
 * Prefix sc_ (file), dr_ (runtime). Depends on: Lua 5.4, jansson,
 * luajson.h, util.h, engine.h.
 */
#ifndef IRP_SCENARIO_H
#define IRP_SCENARIO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* A checked scenario. Every json_t is owned by the scenario. */
typedef struct sc_scenario {
    char *path;
    char *title;              /* may be NULL */
    char *narrative;          /* may be NULL */
    char *playbook;           /* the playbook it exercises, relative to the scenario's directory, or NULL */
    json_t *inputs;           /* {name: string}: the drill's -v values (the command line's win) */
    json_t *participants;     /* [{name, role}] */
    double speed;             /* 0: not set (the --speed default) */
    json_t *injects;          /* [{text, at_ms | on + step, line}] in file order */
    json_t *answers;          /* {step: "word: note" | {manual=, approval=, ask=[...]}} normalised */
    json_t *outcomes;         /* {step: [{code, stdout, stderr, status, body}, ...]} */
    json_t *expect;           /* {status?, decisions? {step: word}, escalations? [tier], skipped? [], failed? []} or NULL */
    char *src;                /* the file's text, for line numbers */
    size_t src_len;
} sc_scenario;

/* Loads and checks a scenario file (fields and types; step ids are
 * checked later, against the playbook, by sc_check_steps). NULL with err
 * ("file:line: problem") on any problem. */
sc_scenario *sc_load_file(const char *path, char *err, size_t err_size);
/* The same from text; chunkname names it in messages. For tests. */
sc_scenario *sc_load_text(const char *text, size_t len, const char *chunkname, char *err, size_t err_size);
/* Every step id the scenario names (answers, outcomes, injects, expect)
 * exists in steps (the playbook outline's steps). 0, or -1 with err
 * naming the file, line and the closest step id. */
int sc_check_steps(const sc_scenario *sc, json_t *steps, char *err, size_t err_size);
void sc_free(sc_scenario *sc);
/* The path of the scenario's playbook (relative to the scenario file's
 * directory unless absolute), malloc'd; NULL when it names none. */
char *sc_playbook_path(const sc_scenario *sc);
/* When the scenario names a playbook that is not `playbook` (the one about
 * to be drilled), says so on stderr: its inputs and step ids are the other
 * playbook's, so the errors that may follow make sense. */
void sc_note_playbook(const sc_scenario *sc, const char *playbook);

/* The line of the first `name =` / ["name"] at or after from_line, or 0. */
int sc_find_line(const sc_scenario *sc, int from_line, const char *name);

/* ---- drill runtime hooks (scenario_run.c), called through fx_drill ----- */
struct eng_run;
typedef struct dr_state dr_state;

/* The scripted answer to a prompt of `kind` ("manual", "approval", "ask",
 * "confirm") for step, or NULL (then --yes, else the operator). Returns a
 * malloc'd "word: note" text. */
char *dr_scripted(struct eng_run *r, const char *step, const char *kind);
/* The simulated outcome of the next exec/http call of step (borrowed), or
 * NULL when the scenario has none for it (the step's drill table then). */
json_t *dr_next_outcome(struct eng_run *r, const char *step);
/* The playbook is loaded: checks the scenario's step ids against it.
 * 0, or 65 (the problem printed as file:line). */
int dr_prepare(struct eng_run *r);
/* Start of the drill (the journal exists): shows the briefing, starts
 * the inject clock. 0, or an exit code. */
int dr_begin(struct eng_run *r);
/* Sees every record before it is journaled: adds data.sim_ms and keeps
 * what the scorecard needs (decisions, escalations, phase times). */
void dr_observe(struct eng_run *r, const char *type, const char *step, json_t *data);
/* A step started running ("step_start") or ended ("step_end"). */
void dr_step_event(struct eng_run *r, const char *event, const char *step);
/* End of the drill: prints and journals the scorecard; returns the exit
 * code (the run's, or 0/1 from the scenario's expectations). */
int dr_finish(struct eng_run *r, const char *status, int code);
/* Frees the drill state (safe when none). */
void dr_free(struct eng_run *r);
/* Simulated run time in ms (the drill clock). */
int64_t dr_sim_ms(struct eng_run *r);

#endif
