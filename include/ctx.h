/*
 * ctx.h — the `ctx` object a step sees (DESIGN.md "The ctx API"), secret
 * handles, ctx.fail error objects and the steps' `print`. Prefix cx_.
 * Depends on: Lua 5.4, jansson, luajson.h, sandbox.h (deadline left).
 *
 * A ctx is a full userdata (metatable "irp.ctx") pointing at a cx_env that
 * lives only for one step; cx_close clears the pointer, so a ctx a script
 * kept errors with "ctx used after its step ended". Every side effect is a
 * call through cx_host, which the worker implements as the protocol's
 * "call"/"reply" exchange (tests can plug a stub).
 */
#ifndef IRP_CTX_H
#define IRP_CTX_H

#include <jansson.h>
#include <lua.h>

typedef struct cx_host {
    /* Performs fn with args (stolen) through the supervisor. Returns 0 and
     * *value (new reference) on ok:true; -1 and *err (malloc'd text) on
     * ok:false or when the supervisor is gone. */
    int (*call)(void *ud, const char *fn, json_t *args, json_t **value, char **err);
    void *ud;
} cx_host;

typedef struct cx_env {
    const cx_host *host;
    const json_t *vars;    /* name -> string (defaults applied) */
    const json_t *states;  /* step id -> {"status":S,"result":JSON} */
    const char *run_id;    /* NULL in `irp check` */
    int drill;
    const char *step;      /* current step id */
    long long attempt;
    int calls_allowed;     /* 0 while a `when` condition runs: no side effects */
} cx_env;

#define CX_LOG_MAX ((size_t)64 << 10)

/* Registers the metatables, the ctx.fail check of sb_pcall and the
 * sandbox `print` (into the globals). Run once per state, protected.
 * [-0, +0, m] */
void cx_open(lua_State *L);

/* Creates a ctx for env and makes it the active one (for print). Returns
 * LUA_OK with the ctx on top, or an error status with the error on top.
 * [-0, +1, -] */
int cx_new(lua_State *L, cx_env *env);

/* Ends the ctx at idx: later use raises "ctx used after its step ended".
 * [-0, +0, -] */
void cx_close(lua_State *L, int idx);

/* The secret name of a secret handle at idx, or NULL. [-0, +0, -] */
const char *cx_secret_name(lua_State *L, int idx);

/* A malloc'd reason when the value at idx is a ctx.fail error object, else
 * NULL. [-0, +0, -] */
char *cx_fail_reason(lua_State *L, int idx);

#endif
