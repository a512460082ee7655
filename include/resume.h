/*
 * resume.h — rebuilding a run's state from its journal for `irp resume`:
 * which steps finished (their recorded results stand and never run again),
 * which one was in flight, the inputs, mode and playbook hash recorded at
 * the start, the escalation tier reached and the run time spent.
 * Depends on: journal.h, engine.h.
 */
#ifndef IRP_RESUME_H
#define IRP_RESUME_H

#include <stddef.h>

#include "engine.h"

/* Reads <state>/runs/<run_id>/journal.jsonl and fills o (o->playbook,
 * o->vars, o->drill, o->speed, o->memory, o->resume_*). Allocations are
 * owned by the returned context; free with rs_free. NULL with err (and
 * *exit_code) when the run cannot be resumed. */
typedef struct rs_context rs_context;
rs_context *rs_load(const char *state_dir, const char *run_id, eng_options *o, int *exit_code, char *err,
                    size_t err_size);
void rs_free(rs_context *c);

/* `irp resume RUN_ID [--in-flight retry|skip|done] [--yes] [--force]`. */
int cli_resume(int argc, char **argv);

#endif
