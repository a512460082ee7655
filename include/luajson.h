/*
 * luajson.h — conversion between Lua values and jansson values for the
 * worker: step results, ctx.log fields, exec/http arguments, replies.
 * Prefix lj_. Depends on: Lua 5.4, jansson, ctx.h (to recognise secret
 * handles).
 *
 * Lua -> JSON reads tables raw (no metamethods run, so no playbook code
 * runs during a conversion). Tables whose keys are exactly 1..n become
 * arrays, other tables objects (integer keys as decimal strings, keys
 * sorted); an empty table is {}. Strings are made valid UTF-8 (U+FFFD).
 */
#ifndef IRP_LUAJSON_H
#define IRP_LUAJSON_H

#include <jansson.h>
#include <lua.h>
#include <stddef.h>

#define LJ_MAX_DEPTH 64
#define LJ_MAX_BYTES ((size_t)1 << 20)

enum {
    LJ_RESULT = 1,        /* wording "cannot be recorded" (else "cannot be converted to JSON") */
    LJ_SECRET_OBJECT = 2, /* secret handles become {"secret":NAME} (else "<secret NAME>") */
    LJ_NO_SECRETS = 4,    /* a secret handle is an error (text that leaves as is) */
};

/* Converts the value at idx. root names it in errors ("result",
 * "fields"). Returns a new reference, or NULL with *err (malloc'd) such as
 * "result.job.cb: a function cannot be recorded". max_bytes bounds the
 * compact JSON text (0 = LJ_MAX_BYTES). [-0, +0, -] */
json_t *lj_from_lua(lua_State *L, int idx, const char *root, int flags, size_t max_bytes,
                    char **err);

/* Pushes v converted to Lua (null -> nil, arrays 1-based). [-0, +1, m] */
void lj_push(lua_State *L, const json_t *v);

/* A JSON string from arbitrary bytes (invalid UTF-8 replaced); never NULL. */
json_t *lj_string(const char *s, size_t len);

/* The built-in module `require "json"` (luajson_module.c): pushes a new
 * table { decode = fn(text) -> value | nil, why; encode = fn(value) -> text }.
 * [-0, +1, m] */
int lj_open_module(lua_State *L);

#endif
