/*
 * ctx_internal.h — what ctx.c and ctx_calls.c share; not for other parts.
 * Depends on: Lua 5.4, jansson, ctx.h.
 */
#ifndef IRP_CTX_INTERNAL_H
#define IRP_CTX_INTERNAL_H

#include "ctx.h"

#include <jansson.h>
#include <lua.h>
#include <stdint.h>

#define CX_CTX_MT "irp.ctx"
#define CX_SECRET_MT "irp.secret"

/* The live env of the ctx that is upvalue 1 of the running ctx function;
 * drops a leading ctx argument (ctx:log(...) works like ctx.log(...)).
 * side_effect != 0 refuses when calls are not allowed. Raises. */
cx_env *cx_env_of(lua_State *L, const char *fname, int side_effect);

/* Performs fn through the host and pushes the reply value converted to
 * Lua; raises the reply's error text. args is stolen. [-0, +1, e] */
void cx_call(lua_State *L, cx_env *env, const char *fn, json_t *args);
/* Same, leaving the reply as JSON for the caller (new reference). */
json_t *cx_call_json(lua_State *L, cx_env *env, const char *fn, json_t *args);

/* cx_call for calls that wait for a person: the soft deadline is paused
 * while the supervisor waits for the answer. [-0, +1, e] */
void cx_call_paused(lua_State *L, cx_env *env, const char *fn, json_t *args);

/* Raises msg (freed first) with the caller's position. [-0, +0, v] */
int cx_raise_owned(lua_State *L, char *msg);
/* Pushes v converted to Lua, then releases v (even on a memory error).
 * [-0, +1, m] */
void cx_push_owned(lua_State *L, json_t *v);

/* A duration argument: a number of seconds or "2m"/"500ms". 0 or -1. */
int cx_duration(lua_State *L, int idx, int64_t *ms);

/* The ctx functions of ctx_calls.c. */
int cx_fn_exec(lua_State *L);
int cx_fn_http(lua_State *L);
int cx_fn_notify(lua_State *L);
int cx_fn_escalate(lua_State *L);
int cx_fn_ask(lua_State *L);
int cx_fn_confirm(lua_State *L);
int cx_fn_sleep(lua_State *L);
int cx_fn_artifact(lua_State *L);

#endif
