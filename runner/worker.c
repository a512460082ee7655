/*
 * worker.c — the worker process (`irp __worker`): serves the supervisor's
 * requests of proto.h on fd 3 — load, restore, prepare, run, record — and
 * is the RPC client behind ctx (a "call" out, block for its "reply").
 * One sandbox state per load, kept for the requests that follow.
 * Depends on: proto.h, sandbox.h, loader.h, ctx.h, luajson.h, util.h,
 * Lua 5.4, jansson.
 */
#include "worker.h"
#include "ctx.h"
#include "loader.h"
#include "luajson.h"
#include "probe.h"
#include "proto.h"
#include "sandbox.h"
#include "util.h"

#include <errno.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static void cap_address_space(long long lua_bytes);

#define WHEN_TIMEOUT_MS 5000

typedef struct {
    int fd;
    pr_reader rd;
    sb_state *sb;
    json_t *outline;   /* of the loaded playbook, or NULL */
    json_t *states;    /* step id -> {"status","result"} */
    char *run_id;
    int drill;
    long long next_call;
    int broken;        /* the supervisor is gone or spoke out of turn */
    cx_host host;
} wk_state;

static int send_msg(wk_state *w, json_t *msg)
{
    /* irp check --drill: a step's answer carries what it read in vain. */
    const char *t = pr_str(msg, "t");
    if (dp_enabled() && t && (!strcmp(t, "prepared") || !strcmp(t, "done")))
        json_object_set_new(msg, "probe_reads", dp_take());
    int rc = pr_send(w->fd, msg);
    if (rc < 0 && errno != EMSGSIZE) {
        fprintf(stderr, "irp worker: cannot send to the supervisor: %s\n", strerror(errno));
        w->broken = 1;
    }
    json_decref(msg);
    return rc;
}

static void reply_error(wk_state *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply_error(wk_state *w, const char *fmt, ...)
{
    ut_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    ut_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    send_msg(w, json_pack("{s:s,s:o}", "t", "error", "error",
                          lj_string(b.data ? b.data : "", b.len)));
    ut_buf_free(&b);
}

static void reply_ok(wk_state *w)
{
    send_msg(w, json_pack("{s:s}", "t", "ok"));
}

/* ------------------------------------------------------------------ RPC */

static int wk_call(void *ud, const char *fn, json_t *args, json_t **value, char **err)
{
    wk_state *w = ud;
    *value = NULL;
    if (w->broken) {
        json_decref(args);
        *err = ut_xstrdup("the supervisor is gone");
        return -1;
    }
    long long id = ++w->next_call;
    json_t *msg = json_pack("{s:s,s:I,s:s,s:o}", "t", "call", "id", (json_int_t)id, "fn", fn,
                            "args", args);
    if (send_msg(w, msg) < 0) {
        *err = errno == EMSGSIZE
                   ? ut_xasprintf("ctx.%s: the request is larger than %zu MiB", fn, PR_MAX_FRAME >> 20)
                   : ut_xstrdup("the supervisor is gone");
        return -1;
    }
    for (;;) {
        json_t *reply = NULL;
        char rerr[256];
        int rc = pr_recv_blocking(w->fd, &w->rd, &reply, rerr, sizeof rerr);
        if (rc <= 0) {
            w->broken = 1;
            *err = ut_xasprintf("lost the supervisor while waiting for ctx.%s%s%s", fn,
                                rc < 0 ? ": " : "", rc < 0 ? rerr : "");
            return -1;
        }
        const char *t = pr_str(reply, "t");
        long long rid = pr_int(reply, "id", -1);
        if (!t || strcmp(t, "reply") != 0 || rid > id) {
            fprintf(stderr, "irp worker: expected the reply to call %lld, got %s\n", id,
                    t ? t : "a message without \"t\"");
            json_decref(reply);
            w->broken = 1;
            *err = ut_xstrdup("protocol error: the supervisor sent something other than a reply");
            return -1;
        }
        if (rid < id) { /* a stale reply to an abandoned call: skip it */
            json_decref(reply);
            continue;
        }
        int ok = pr_bool(reply, "ok", 0);
        if (ok) {
            json_t *v = json_object_get(reply, "value");
            *value = v ? json_incref(v) : json_object();
        } else {
            const char *e = pr_str(reply, "error");
            *err = ut_xstrdup(e ? e : "the supervisor reported a failure without a message");
        }
        json_decref(reply);
        return ok ? 0 : -1;
    }
}

/* ---------------------------------------------------------------- load */

static void drop_playbook(wk_state *w)
{
    sb_free(w->sb);
    w->sb = NULL;
    json_decref(w->outline);
    w->outline = NULL;
    json_object_clear(w->states);
    free(w->run_id);
    w->run_id = NULL;
}

/* Globals of a fresh state: ctx's print and the DSL. [-0, +0, m] */
static int open_runtime(lua_State *L)
{
    cx_open(L);
    pb_dsl_open(L);
    return 0;
}

static void reply_invalid(wk_state *w, const char *file, const char *msg)
{
    json_t *errs = json_array();
    json_array_append_new(errs, json_pack("{s:o,s:i,s:o}", "file", lj_string(file, strlen(file)),
                                          "line", 0, "msg", lj_string(msg, strlen(msg))));
    send_msg(w, json_pack("{s:s,s:o}", "t", "invalid", "errors", errs));
}

/* Tells the supervisor which file's top-level code runs now: it restarts
 * its hard deadline for the file and names it if the worker must be killed. */
static void on_file(void *ud, const char *path, const char *kind)
{
    send_msg(ud, json_pack("{s:s,s:o,s:s}", "t", "loading", "file", lj_string(path, strlen(path)),
                           "kind", kind));
}

static void handle_load(wk_state *w, const json_t *msg)
{
    drop_playbook(w);
    const char *file = pr_str(msg, "file");
    if (!file) {
        reply_error(w, "load: the message has no \"file\"");
        return;
    }
    long long memory = pr_int(msg, "memory", 0);
    cap_address_space(memory);
    const char *why = NULL;
    w->sb = sb_new(memory > 0 ? (size_t)memory : 0, &why);
    if (!w->sb) {
        reply_invalid(w, file, why);
        return;
    }
    lua_State *L = w->sb->L;
    lua_pushcfunction(L, open_runtime);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        lua_pop(L, 1);
        drop_playbook(w);
        reply_invalid(w, file, "cannot set up the Lua sandbox (memory limit too small?)");
        return;
    }
    const char *run_id = pr_str(msg, "run_id");
    w->run_id = run_id ? ut_xstrdup(run_id) : NULL;
    w->drill = pr_bool(msg, "drill", 0);
    dp_enable(w->drill && pr_bool(msg, "probe", 0));
    pb_request req = {
        .file = file,
        .vars = json_object_get(msg, "vars"),
        .attach = json_object_get(msg, "attach"),
        .plugins = json_object_get(msg, "plugins"),
        .check = pr_bool(msg, "check", 0),
        .timeout_ms = pr_int(msg, "timeout_ms", PB_LOAD_TIMEOUT_MS),
        .on_file = on_file,
        .on_file_ud = w,
    };
    if (!json_is_object(req.vars))
        req.vars = NULL;
    if (!json_is_array(req.attach))
        req.attach = NULL;
    json_t *outline = NULL, *errors = NULL;
    if (pb_load(w->sb, &req, &outline, &errors) == 0) {
        w->outline = outline;
        send_msg(w, json_pack("{s:s,s:O}", "t", "loaded", "outline", outline));
    } else {
        drop_playbook(w);
        send_msg(w, json_pack("{s:s,s:o}", "t", "invalid", "errors", errors));
    }
    if (w->sb)
        lua_gc(w->sb->L, LUA_GCCOLLECT);
}

/* ------------------------------------------------------- restore/record */

static void set_state(wk_state *w, const char *id, const char *status, json_t *result)
{
    json_object_set_new(w->states, id,
                        json_pack("{s:s,s:O}", "status", status ? status : "unknown", "result",
                                  result ? result : json_null()));
}

static void handle_restore(wk_state *w, const json_t *msg)
{
    json_t *steps = json_object_get(msg, "steps");
    const char *id;
    json_t *st;
    json_object_foreach(steps, id, st) {
        set_state(w, id, pr_str(st, "status"), json_object_get(st, "result"));
    }
    reply_ok(w);
}

static void handle_record(wk_state *w, const json_t *msg)
{
    const char *id = pr_str(msg, "step");
    if (!id) {
        reply_error(w, "record: the message has no \"step\"");
        return;
    }
    set_state(w, id, pr_str(msg, "status"), json_object_get(msg, "result"));
    reply_ok(w);
}

/* ------------------------------------------------------- prepare / run */

static json_t *find_step(wk_state *w, const char *id)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(w->outline, "steps"), i, s) {
        if (strcmp(pr_str(s, "id"), id) == 0)
            return s;
    }
    return NULL;
}

static void fill_env(wk_state *w, cx_env *env, const char *step, long long attempt, int calls)
{
    memset(env, 0, sizeof *env);
    env->host = &w->host;
    env->vars = json_object_get(w->outline, "vars");
    env->states = w->states;
    env->run_id = w->run_id;
    env->drill = w->drill;
    env->step = step;
    env->attempt = attempt;
    env->calls_allowed = calls;
}

static void handle_prepare(wk_state *w, const json_t *msg)
{
    json_decref(dp_take()); /* notes belong to the step they are sent with */
    const char *id = pr_str(msg, "step");
    json_t *step = id ? find_step(w, id) : NULL;
    if (!step) {
        reply_error(w, "prepare: no step \"%s\" in the loaded playbook", id ? id : "(none)");
        return;
    }
    lua_State *L = w->sb->L;
    int top = lua_gettop(L);
    int skip = 0;
    const char *reason = "";
    pb_push_step_fn(L, id, "when");
    if (lua_type(L, -1) == LUA_TBOOLEAN) {
        if (!lua_toboolean(L, -1)) {
            skip = 1;
            reason = "its condition is when = false";
        }
    } else if (lua_type(L, -1) == LUA_TFUNCTION) {
        cx_env env;
        fill_env(w, &env, id, 0, 0);
        if (cx_new(L, &env) != LUA_OK) {
            lua_settop(L, top);
            reply_error(w, "step \"%s\": cannot create its ctx (memory limit reached?)", id);
            return;
        }
        int ctx = lua_gettop(L);
        lua_pushvalue(L, ctx - 1);
        lua_pushvalue(L, ctx);
        char limit[32], tmsg[160];
        sb_format_ms(WHEN_TIMEOUT_MS, limit, sizeof limit);
        snprintf(tmsg, sizeof tmsg, "the when condition of step \"%.64s\" ran longer than %s", id, limit);
        sb_deadline_arm(w->sb, WHEN_TIMEOUT_MS, tmsg, 1);
        sb_failure f;
        int kind = sb_pcall(w->sb, 1, 1, &f);
        sb_deadline_disarm(w->sb);
        cx_close(L, ctx);
        if (kind != SB_OK) {
            lua_settop(L, top);
            reply_error(w, "the when condition of step \"%s\" failed: %s", id, f.msg);
            sb_failure_free(&f);
            return;
        }
        if (!lua_toboolean(L, -1)) {
            skip = 1;
            reason = "its when condition returned false";
        }
    }
    lua_settop(L, top);
    json_t *vars = json_object_get(w->outline, "vars");
    char *title = pb_render(pr_str(step, "title"), vars, w->states);
    const char *manual = pr_str(step, "manual");
    char *rmanual = manual ? pb_render(manual, vars, w->states) : NULL;
    send_msg(w, json_pack("{s:s,s:b,s:s,s:s,s:o}", "t", "prepared", "skip", skip, "reason", reason,
                          "title", title, "manual", rmanual ? json_string(rmanual) : json_null()));
    free(title);
    free(rmanual);
}

static void reply_done_failure(wk_state *w, const char *kind, const char *error,
                               const char *traceback)
{
    send_msg(w, json_pack("{s:s,s:b,s:s,s:o,s:o}", "t", "done", "ok", 0, "kind", kind, "error",
                          lj_string(error, strlen(error)), "traceback",
                          traceback ? lj_string(traceback, strlen(traceback)) : json_null()));
}

static void handle_run(wk_state *w, const json_t *msg)
{
    json_decref(dp_take()); /* notes belong to the step they are sent with */
    const char *id = pr_str(msg, "step");
    json_t *step = id ? find_step(w, id) : NULL;
    if (!step) {
        reply_error(w, "run: no step \"%s\" in the loaded playbook", id ? id : "(none)");
        return;
    }
    lua_State *L = w->sb->L;
    int top = lua_gettop(L);
    pb_push_step_fn(L, id, "run");
    if (lua_type(L, -1) != LUA_TFUNCTION) {
        lua_settop(L, top);
        reply_error(w, "run: step \"%s\" is a manual step, it has no run function", id);
        return;
    }
    cx_env env;
    fill_env(w, &env, id, pr_int(msg, "attempt", 1), 1);
    if (cx_new(L, &env) != LUA_OK) {
        lua_settop(L, top);
        reply_done_failure(w, "memory", "cannot create the step's ctx: memory limit reached", NULL);
        return;
    }
    int ctx = lua_gettop(L);
    lua_pushvalue(L, ctx - 1);
    lua_pushvalue(L, ctx);
    long long timeout = pr_int(msg, "timeout_ms", 0);
    /* A drill's deadline is sped up; the message names the playbook's timeout. */
    long long shown = pr_int(msg, "shown_timeout_ms", timeout);
    char limit[32], tmsg[160];
    sb_format_ms(shown, limit, sizeof limit);
    snprintf(tmsg, sizeof tmsg, "step timed out after %s", limit);
    sb_deadline_arm(w->sb, timeout, tmsg, 0);
    sb_failure f;
    int kind = sb_pcall(w->sb, 1, 1, &f);
    sb_deadline_disarm(w->sb);
    cx_close(L, ctx);
    if (kind == SB_OK) {
        char *err = NULL;
        json_t *result = lj_from_lua(L, -1, "result", LJ_RESULT, LJ_MAX_BYTES, &err);
        if (result)
            send_msg(w, json_pack("{s:s,s:b,s:o}", "t", "done", "ok", 1, "result", result));
        else
            reply_done_failure(w, "result", err, NULL);
        free(err);
    } else {
        static const char *const kinds[] = {"ok", "error", "fail", "timeout", "memory"};
        reply_done_failure(w, kinds[kind], f.msg, f.traceback);
        sb_failure_free(&f);
    }
    lua_settop(L, top);
}

/* ----------------------------------------------------------------- loop */

static void handle(wk_state *w, const json_t *msg)
{
    const char *t = pr_str(msg, "t");
    if (!t) {
        reply_error(w, "the message has no \"t\" field");
        return;
    }
    if (strcmp(t, "load") == 0) {
        handle_load(w, msg);
        return;
    }
    int known = strcmp(t, "restore") == 0 || strcmp(t, "record") == 0 ||
                strcmp(t, "prepare") == 0 || strcmp(t, "run") == 0;
    if (!known) {
        reply_error(w, "unknown request \"%.64s\"", t);
        return;
    }
    if (!w->sb || !w->outline) {
        reply_error(w, "%s: no playbook is loaded", t);
        return;
    }
    if (strcmp(t, "restore") == 0)
        handle_restore(w, msg);
    else if (strcmp(t, "record") == 0)
        handle_record(w, msg);
    else if (strcmp(t, "prepare") == 0)
        handle_prepare(w, msg);
    else
        handle_run(w, msg);
}

/* A second line behind the counting allocator (which only sees Lua's own
 * allocations): the whole worker's address space is capped at the Lua cap
 * plus room for the C libraries. Not under AddressSanitizer, which reserves
 * terabytes of address space for its shadow memory. */
static void cap_address_space(long long lua_bytes)
{
#if defined(__SANITIZE_ADDRESS__)
    (void)lua_bytes;
#else
    if (lua_bytes <= 0)
        lua_bytes = (long long)256 << 20;
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) < 0)
        return;
    rlim_t want = (rlim_t)lua_bytes + ((rlim_t)1 << 30);
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > want) {
        rl.rlim_cur = want; /* soft limit only: a later, larger --memory still fits under the hard one */
        setrlimit(RLIMIT_AS, &rl);
    }
#endif
}

int wk_main(void)
{
    signal(SIGPIPE, SIG_IGN);
    wk_state w;
    memset(&w, 0, sizeof w);
    w.fd = IRP_WORKER_FD;
    w.states = json_object();
    w.host.call = wk_call;
    w.host.ud = &w;
    pr_reader_init(&w.rd);
    int status = 0;
    while (!w.broken) {
        json_t *msg = NULL;
        char err[256];
        int rc = pr_recv_blocking(w.fd, &w.rd, &msg, err, sizeof err);
        if (rc == 0)
            break;
        if (rc < 0) {
            if (strncmp(err, "bad message", 11) == 0) {
                reply_error(&w, "%s", err);
                continue;
            }
            fprintf(stderr, "irp worker: %s\n", err);
            status = IRP_EXIT_SOFTWARE;
            break;
        }
        handle(&w, msg);
        json_decref(msg);
    }
    drop_playbook(&w);
    json_decref(w.states);
    pr_reader_free(&w.rd);
    return status;
}
