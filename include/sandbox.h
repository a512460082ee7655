/*
 * sandbox.h — the worker's Lua state: a memory-capped allocator, the
 * allow-listed global environment, the soft deadline (a real-time timer whose
 * signal arms a hook) and the one protected-call helper every call into
 * playbook code goes through. Prefix sb_.
 * Depends on: Lua 5.4, util.h.
 *
 * One sb_state per playbook load. The deadline machinery is process-global
 * (one timer, one signal handler): only one sb_state runs code at a time.
 */
#ifndef IRP_SANDBOX_H
#define IRP_SANDBOX_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#define SB_DEFAULT_MEMORY ((size_t)256 << 20)
#define SB_MSG_MAX ((size_t)8 << 10) /* bound on error and traceback text */

typedef struct sb_state {
    lua_State *L;
    size_t used;     /* bytes currently allocated by Lua */
    size_t limit;    /* cap; an allocation beyond it fails */
    size_t peak;
    int mem_hit;     /* set when the cap refused an allocation */
} sb_state;

/* Creates a state capped at limit bytes (0 = SB_DEFAULT_MEMORY) whose
 * globals table is the sandbox environment (allow-list of DESIGN.md).
 * Returns NULL when even that fails; *err (static text) says why. */
sb_state *sb_new(size_t limit, const char **err);
void sb_free(sb_state *s);

/* Kinds of failure of a protected call. */
enum { SB_OK = 0, SB_ERROR, SB_FAIL, SB_TIMEOUT, SB_MEMORY };

typedef struct {
    int kind;          /* SB_* */
    char *msg;         /* malloc'd, valid UTF-8, at most SB_MSG_MAX bytes */
    char *traceback;   /* malloc'd or NULL */
    char *file;        /* where the error was raised (full chunk path) or NULL */
    int line;          /* 0 when unknown */
} sb_failure;

void sb_failure_free(sb_failure *f);

/* Calls the function below nargs arguments with a traceback message handler.
 * [-(nargs+1), +nresults on success | +0 on failure, -]
 * Returns SB_OK, or a kind with *f filled (caller frees with
 * sb_failure_free). Never raises: memory errors become SB_MEMORY, an
 * expired deadline SB_TIMEOUT; an error object recognised by
 * sb_set_fail_check's callback SB_FAIL. */
int sb_pcall(sb_state *s, int nargs, int nresults, sb_failure *f);

/* Lets the ctx module mark its ctx.fail error objects: cb returns a malloc'd
 * reason when the value at idx is such an object, else NULL (no raising). */
typedef char *(*sb_fail_check_fn)(lua_State *L, int idx);
void sb_set_fail_check(sb_fail_check_fn cb);

/* Arms the soft deadline: after ms milliseconds every Lua instruction of the
 * running thread raises msg (a copy is kept). where != 0 prefixes the
 * position "file:line: " of the code that was running. ms <= 0 disarms. */
void sb_deadline_arm(sb_state *s, int64_t ms, const char *msg, int where);
/* Stops the timer, clears the flag and the main thread's hook. */
void sb_deadline_disarm(sb_state *s);
/* Arms the deadline of a file's top-level code at load (where = 1), whose
 * message names the kind of file: "the playbook's top-level code ran longer
 * than 5s". whose must be a static string ("playbook", "attach file"). */
void sb_deadline_arm_top_level(sb_state *s, int64_t ms, const char *whose);
/* While such a deadline is armed, names another kind of file in its message
 * (require does so while a plugin's chunk runs) and returns the previous
 * kind to restore afterwards; returns NULL and changes nothing otherwise. */
const char *sb_deadline_top_level(const char *whose);
/* Milliseconds left before the deadline, or -1 when none is armed. */
int64_t sb_deadline_left(void);
/* Stops the clock while a person answers (ctx.ask/confirm): returns the
 * milliseconds that were left (-1 when no deadline runs); pass them to
 * sb_deadline_resume afterwards. */
int64_t sb_deadline_pause(void);
void sb_deadline_resume(int64_t left_ms);
/* 1 once the armed deadline has passed. */
int sb_deadline_expired(void);

/* "2s", "200ms", "1.5s", "2m", "1h05m": short human durations. */
void sb_format_ms(int64_t ms, char *out, size_t out_size);

/* Copies len bytes of s into a malloc'd NUL-terminated string of at most max
 * bytes of valid UTF-8 (cut on a character boundary, invalid bytes become
 * U+FFFD); *truncated (may be NULL) is set when it was cut. */
char *sb_bounded_text(const char *s, size_t len, size_t max, int *truncated);

/* Converts the value at idx to text like tostring() but protected:
 * non-string error objects become "(error object is a T value)", a throwing
 * __tostring "(error object is a T value; its __tostring failed: ...)".
 * Returns a malloc'd bounded string. [-0, +0, -] */
char *sb_error_text(sb_state *s, int idx);

/* ---- plugins: the sandboxed `require` (sandbox_require.c) ---- */

/* Installs the global require(name): a name of [a-z0-9_.-] (dots separate
 * directories; no "..", no leading or trailing dot, at most 64 bytes) is
 * looked up as DIR/a/b.lua then DIR/a/b/init.lua in dirs (NULL-terminated,
 * may be NULL), then, when defaults != 0, in $IRP_PLUGIN_PATH
 * (colon-separated) and in plugins/ beside the executable and beside its
 * directory. "json" is built in (luajson.h). A plugin is Lua text, run
 * once per state with (name, path) as arguments and the sandbox globals as
 * its _ENV; its value (true when it returns nothing) is cached. Errors
 * carry the file:line of the plugin, or of the caller for a bad name or a
 * missing plugin. Returns 0, or -1 when memory ran out. */
int sb_require_open(sb_state *s, const char *const *dirs, int defaults);
/* 1 when name is a valid plugin name (see above). */
int sb_require_valid_name(const char *name);
/* 1 when source (a chunk name, "@path") is a loaded plugin. [-0, +0, -] */
int sb_is_plugin_source(lua_State *L, const char *source);
/* Fills out with up to max paths of the plugins loaded so far (strings
 * owned by the state); returns how many. [-0, +0, -] */
size_t sb_plugin_files(lua_State *L, const char **out, size_t max);

#endif
