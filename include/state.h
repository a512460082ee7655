/*
 * state.h — where runs live on disk: the state directory (--state-dir,
 * $IRP_STATE_DIR, ./.irp), run ids, and each run's directory
 * <state>/runs/<run id>/ holding journal.jsonl, lock and artifacts/.
 * Depends on: libc.
 */
#ifndef IRP_STATE_H
#define IRP_STATE_H

#include <stddef.h>

/* --state-dir if given, else $IRP_STATE_DIR, else "./.irp". */
const char *st_state_dir(const char *option);
/* mkdir -p with mode 0700 for every component created. 0 or -1 (errno). */
int st_mkdirs(const char *path);
/* A new run id: "20261125-091344-7f3a" (UTC time + 4 random hex). malloc'd. */
char *st_new_run_id(void);
/* 1 when id is usable as a directory name: [A-Za-z0-9._-], 1..64, no leading '.'. */
int st_valid_run_id(const char *id);
/* "<state>/runs/<id>" (malloc'd). */
char *st_run_dir(const char *state_dir, const char *run_id);

#endif
