/*
 * sandbox_internal.h — what sandbox.c and sandbox_deadline.c share; not for
 * other parts. Depends on: Lua 5.4.
 */
#ifndef IRP_SANDBOX_INTERNAL_H
#define IRP_SANDBOX_INTERNAL_H

#include <lua.h>

/* Raises the deadline's message in L, positioned at stack level `level`
 * when the deadline was armed with where != 0. Does not return. */
int sb_raise_timeout(lua_State *L, int level);
/* Makes co the thread the timer's hook is set on (hooking it at once when
 * the deadline already passed). NULL forgets the state. */
void sb_deadline_enter(lua_State *co);
/* Back in L after a resume returned. */
void sb_deadline_leave(lua_State *L);
/* The timeout message for the error object at idx (malloc'd). [-0,+0,-] */
char *sb_deadline_message(lua_State *L, int idx);

#endif
