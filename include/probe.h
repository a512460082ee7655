/*
 * probe.h — the worker's half of `irp check --drill`: while a playbook is
 * drilled as a probe, every read of a recorded step's value that is not
 * there (ctx.steps.X.result.FIELD that is nil, a {{steps.X...}} template
 * that renders "(unknown)") is noted with the place in the playbook that
 * read it. The worker hands the notes back with each step's answer; the
 * supervisor (check_drill.c) decides which ones a drill's simulation
 * caused and reports them. Off unless the load request asks for it.
 * Prefix dp_. Depends on: Lua 5.4, jansson.
 */
#ifndef IRP_PROBE_H
#define IRP_PROBE_H

#include <jansson.h>
#include <lua.h>

void dp_enable(int on);
int dp_enabled(void);
/* Marks the table at idx (a step's entry or result, and the tables in
 * it) so that reading an absent string key notes "path.KEY" as read from
 * step source_step. Tables that already have a metatable are left alone.
 * [-0, +0, m] */
void dp_mark(lua_State *L, int idx, const char *path, const char *source_step);
/* Notes a read of path (a value of step source_step) that found nothing,
 * at where ("file:line", may be NULL). Bounded and deduplicated. */
void dp_note(const char *path, const char *source_step, const char *where);
/* The notes since the last call ([{path, step, where}], new reference;
 * an empty array when none). */
json_t *dp_take(void);

#endif
