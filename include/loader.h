/*
 * loader.h — the playbook DSL (`playbook`, `step`, `attach`), loading a
 * playbook file (and its attach files) into a sandbox state, validating it
 * into the OUTLINE of proto.h, and the {{template}} renderer. Prefix pb_.
 * Depends on: Lua 5.4, jansson, sandbox.h, luajson.h, util.h.
 *
 * The step functions (run, when, rollback, drill) stay in the state's
 * registry after a successful load; pb_push_step_fn fetches them for the
 * later prepare/run requests.
 */
#ifndef IRP_LOADER_H
#define IRP_LOADER_H

#include "sandbox.h"

#include <jansson.h>
#include <lua.h>
#include <stdint.h>

#define PB_LOAD_TIMEOUT_MS 5000

typedef struct pb_request {
    const char *file;       /* the playbook */
    const json_t *vars;     /* {NAME: string} from -v, may be NULL */
    const json_t *attach;   /* [PATH...] or NULL */
    const json_t *plugins;  /* [DIR...] or NULL (reserved for require) */
    int check;              /* missing required inputs are not errors */
    int64_t timeout_ms;     /* top-level code deadline; <= 0: PB_LOAD_TIMEOUT_MS */
    /* Called before a file's top-level code runs (each gets timeout_ms):
     * kind is "playbook" or "attach file". May be NULL. */
    void (*on_file)(void *ud, const char *path, const char *kind);
    void *on_file_ud;
} pb_request;

/* Registers the DSL functions in the globals. [-0, +0, m] */
void pb_dsl_open(lua_State *L);

/* Loads req->file into the fresh state sb (globals prepared by sb_new,
 * cx_open and pb_dsl_open). Returns 0 with *outline (new reference), or -1
 * with *errors: [{"file":F,"line":N,"msg":M}...] listing every problem
 * found, sorted by file and line. Never raises. */
int pb_load(sb_state *sb, const pb_request *req, json_t **outline, json_t **errors);

/* Pushes field `which` ("run", "when", "rollback", "drill") of the loaded
 * step id, or nil. [-0, +1, -] */
void pb_push_step_fn(lua_State *L, const char *step_id, const char *which);

/* Renders {{name}} templates: input names from vars, steps.ID.status and
 * steps.ID.result[.FIELD...] from states ({ID: {"status","result"}}).
 * Values not known yet render as "(unknown)". Returns malloc'd text. */
char *pb_render(const char *text, const json_t *vars, const json_t *states);

/* ---- shared by the loader's files (not for other parts) ---- */

/* Appends {"file","line","msg"} to problems. */
void pb_problem(json_t *problems, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Checks the templates of text (a field `what` of step `step_id`): every
 * name must be an input or steps.ID.status / steps.ID.result[...] with a
 * known ID. inputs: object of declared inputs; step_ids: NULL-terminated.
 * step_id NULL: the playbook's title, where only inputs may be named. */
void pb_check_templates(json_t *problems, const char *file, int line, const char *text,
                        const char *what, const char *step_id, const json_t *inputs,
                        const char *const *step_ids);

/* Validates the playbook object at idx (attach blocks at attach_idx: a
 * list of {file=, block=} or nil), filling problems; stores the step
 * functions in the registry; returns the outline (even when problems were
 * found, for completeness) or NULL. [-0, +0, m] */
json_t *pb_validate(lua_State *L, int idx, int attach_idx, const pb_request *req,
                    json_t *problems);

/* Registry keys shared between loader.c and loader_validate.c. */
extern const char pb_key_step_mt, pb_key_playbook_mt, pb_key_attach_mt, pb_key_fns,
    pb_key_problems;

#endif
