/*
 * sandbox_deadline.c — the soft deadline of the worker's Lua code. A one-shot
 * ITIMER_REAL timer; its SIGALRM handler only sets a flag and installs a hook
 * on the thread that is running (async-signal-safe, the pattern lua.c uses
 * for Ctrl-C), so code costs nothing until the deadline passes. From then on
 * the hook raises on every instruction, so a pcall/xpcall in the script
 * cannot swallow the timeout; coroutine.resume (sandbox.c) moves the hook
 * to the coroutine it runs and re-raises in the caller.
 * Depends on: Lua 5.4, util.h, sandbox.h.
 */
#include "sandbox.h"
#include "sandbox_internal.h"
#include "util.h"

#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#define HOOK_MASK (LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT)

static volatile sig_atomic_t g_expired;
static lua_State *volatile g_current; /* the thread running Lua code now */
static int g_armed;
static int g_where;
static int64_t g_deadline_mono;
static char g_msg[256];
static const char *g_top_whose; /* a top-level deadline: the kind of file, else NULL */
static int64_t g_top_ms;

static void deadline_hook(lua_State *L, lua_Debug *ar)
{
    if (!g_expired) {
        /* a hook left on a coroutine by an earlier deadline: retire it,
         * unless the timer fired meanwhile and wants it back */
        lua_sethook(L, NULL, 0, 0);
        if (g_expired)
            lua_sethook(L, deadline_hook, HOOK_MASK, 1);
        return;
    }
    /* Call/return events also reach C functions (our message handler among
     * them); raising there would turn every timeout into "error in error
     * handling". Lua code always produces count/line events. */
    if (ar->event == LUA_HOOKCOUNT || ar->event == LUA_HOOKLINE)
        sb_raise_timeout(L, 0);
}

static void on_alarm(int sig)
{
    (void)sig;
    g_expired = 1;
    lua_State *L = g_current;
    if (L)
        lua_sethook(L, deadline_hook, HOOK_MASK, 1);
}

int sb_raise_timeout(lua_State *L, int level)
{
    if (g_where) {
        luaL_where(L, level);
        lua_pushstring(L, g_msg);
        lua_concat(L, 2);
    } else {
        lua_pushstring(L, g_msg);
    }
    return lua_error(L);
}

void sb_deadline_enter(lua_State *co)
{
    g_current = co;
    if (co && g_expired)
        lua_sethook(co, deadline_hook, HOOK_MASK, 1);
}

void sb_deadline_leave(lua_State *L)
{
    sb_deadline_enter(L);
}

char *sb_deadline_message(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t len;
        const char *m = lua_tolstring(L, idx, &len);
        if (len < sizeof g_msg + 4096 && strstr(m, g_msg))
            return sb_bounded_text(m, len, SB_MSG_MAX, NULL);
    }
    return ut_xstrdup(g_msg);
}

static void install_handler(void)
{
    static int installed;
    if (installed)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* blocking protocol reads just go on */
    sigaction(SIGALRM, &sa, NULL);
    installed = 1;
}

static void set_timer(int64_t ms)
{
    struct itimerval it;
    memset(&it, 0, sizeof it);
    it.it_value.tv_sec = (time_t)(ms / 1000);
    it.it_value.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    setitimer(ITIMER_REAL, &it, NULL);
}

void sb_deadline_arm(sb_state *s, int64_t ms, const char *msg, int where)
{
    sb_deadline_disarm(s);
    g_top_whose = NULL;
    if (ms <= 0)
        return;
    install_handler();
    snprintf(g_msg, sizeof g_msg, "%s", msg);
    g_where = where;
    g_current = s->L;
    g_deadline_mono = ut_mono_ms() + ms;
    g_armed = 1;
    set_timer(ms);
}

static void top_level_message(const char *whose, int64_t ms)
{
    char limit[32];
    sb_format_ms(ms, limit, sizeof limit);
    snprintf(g_msg, sizeof g_msg, "the %s's top-level code ran longer than %s", whose, limit);
}

void sb_deadline_arm_top_level(sb_state *s, int64_t ms, const char *whose)
{
    top_level_message(whose, ms);
    char msg[sizeof g_msg];
    memcpy(msg, g_msg, sizeof msg);
    sb_deadline_arm(s, ms, msg, 1);
    if (ms > 0) {
        g_top_whose = whose;
        g_top_ms = ms;
    }
}

const char *sb_deadline_top_level(const char *whose)
{
    if (!g_armed || !g_top_whose || !whose)
        return NULL;
    const char *prev = g_top_whose;
    g_top_whose = whose;
    top_level_message(whose, g_top_ms);
    return prev;
}

void sb_deadline_disarm(sb_state *s)
{
    if (g_armed)
        set_timer(0);
    g_armed = 0;
    g_expired = 0;
    if (s) {
        lua_sethook(s->L, NULL, 0, 0);
        g_current = s->L;
    }
}

int64_t sb_deadline_left(void)
{
    if (!g_armed)
        return -1;
    int64_t left = g_deadline_mono - ut_mono_ms();
    return left > 0 ? left : 0;
}

int64_t sb_deadline_pause(void)
{
    if (!g_armed || g_expired)
        return -1;
    set_timer(0);
    int64_t left = g_deadline_mono - ut_mono_ms();
    return left > 0 ? left : 1;
}

void sb_deadline_resume(int64_t left_ms)
{
    if (left_ms < 0 || !g_armed || g_expired)
        return;
    g_deadline_mono = ut_mono_ms() + left_ms;
    set_timer(left_ms);
}

int sb_deadline_expired(void)
{
    return g_expired != 0;
}

void sb_format_ms(int64_t ms, char *out, size_t out_size)
{
    if (ms < 0)
        ms = 0;
    if (ms < 1000)
        snprintf(out, out_size, "%lldms", (long long)ms);
    else if (ms < 60000 && ms % 1000 == 0)
        snprintf(out, out_size, "%llds", (long long)(ms / 1000));
    else if (ms < 60000)
        snprintf(out, out_size, "%.1fs", (double)ms / 1000.0);
    else if (ms < 3600000 && ms % 60000 == 0)
        snprintf(out, out_size, "%lldm", (long long)(ms / 60000));
    else if (ms < 3600000 && ms % 1000 == 0)
        snprintf(out, out_size, "%lldm%02llds", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
    else if (ms % 3600000 == 0)
        snprintf(out, out_size, "%lldh", (long long)(ms / 3600000));
    else
        ut_format_duration(ms, out, out_size);
}
