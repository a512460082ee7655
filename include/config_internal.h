/*
 * config_internal.h — shared by config.c (the Lua state) and
 * config_fields.c (checking notifier tables) and config_attach.c (the
 * attach section): the load in progress.
 * Depends on: Lua 5.4, config.h.
 */
#ifndef IRP_CONFIG_INTERNAL_H
#define IRP_CONFIG_INTERNAL_H

#include "config.h"

#include <lua.h>

typedef struct cf_job {
    const char *src;       /* the file's text, for line numbers */
    size_t src_len;
    const char *chunkname; /* "@path" */
    const char *display;   /* path as shown in messages */
    char *err;
    size_t err_size;
    int failed;
    cf_config *out;
} cf_job;

/* Records the first error as "display:line: message" (line 0: no line). */
void cf_fail(cf_job *job, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* First line at or after from_line that assigns `name` (or, with
 * bracketed_key, has ["name"]); 0 when not found. */
int cf_find_line(const cf_job *job, int from_line, const char *name, int bracketed_key);
/* 1 when the value at idx is a `secret "NAME"` marker. [-0, +0, -] */
int cf_is_secret(lua_State *L, int idx);
/* Checks the notifiers table at idx (nil: none) into job->out.
 * [-0, +0, e] */
void cf_read_notifiers(lua_State *L, cf_job *job, int idx);
/* Checks the attach section at idx (nil: none) into job->out
 * (config_attach.c). [-0, +0, e] */
void cf_read_attach(lua_State *L, cf_job *job, int idx);

#endif
