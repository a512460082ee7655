/*
 * luafile.h — a small Lua state for the files the supervisor itself reads
 * (the notifier configuration, drill scenarios): a counting allocator with a
 * cap, and a deadline for the file's top-level code that a pcall inside the
 * file cannot swallow. Playbooks never run here: they run in the worker.
 * Depends on: Lua 5.4.
 */
#ifndef IRP_LUAFILE_H
#define IRP_LUAFILE_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lf_limits {
    size_t used, limit;    /* bytes in use, and the cap */
    int mem_hit;           /* an allocation was refused at the cap */
    int64_t deadline;      /* monotonic ms; set by lf_arm_deadline */
    int deadline_ms;       /* how long the top-level code may run */
    const char *what;      /* "configuration", "scenario": for the message */
} lf_limits;

/* A new state whose allocations count against lim (which must outlive it).
 * NULL when even the state cannot be made. */
lua_State *lf_newstate(lf_limits *lim);
/* Starts the deadline: from now on, code running longer than
 * lim->deadline_ms raises "the <what> took longer than N ms to load (an
 * endless loop?)", again and again until it reaches the caller. */
void lf_arm_deadline(lua_State *L);
/* Stops it. */
void lf_disarm_deadline(lua_State *L);

#endif
