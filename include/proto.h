/*
 * proto.h — the wire protocol between the supervisor (parent) and the worker
 * (child that owns the Lua state). Depends on: jansson.
 *
 * Transport: a socketpair; the worker's end is its fd 3 (IRP_WORKER_FD). Each
 * message is one JSON object serialised compactly on one line, ended by '\n'
 * (jansson escapes newlines inside strings). A frame larger than
 * PR_MAX_FRAME is a protocol error: the supervisor kills the worker.
 * All strings are valid UTF-8; binary data is sanitised (U+FFFD) before
 * it is put on the wire.
 *
 * The conversation is strictly request/response, driven by the supervisor:
 * the worker only speaks when it has a request to answer, or to make a
 * "call" (a side effect) while it runs a step; the supervisor answers every
 * call with exactly one "reply". Field "t" names the message type. While it
 * loads, the worker also says which file's top-level code runs next (no
 * reply): {"t":"loading","file":PATH,"kind":"playbook"|"attach file"}.
 *
 * Supervisor -> worker                    Worker -> supervisor
 * ---------------------------------------------------------------------------
 * {"t":"load","file":PATH,                {"t":"loaded","outline":OUTLINE}
 *  "vars":{K:V strings},                  {"t":"invalid","errors":[
 *  "attach":[PATH...],"plugins":[DIR...],     {"file":F,"line":N,"msg":M}...]}
 *  "drill":bool,"check":bool,
 *  "memory":BYTES,"timeout_ms":N}         ("check":true: missing required
 *                                          inputs are not errors; each
 *                                          file's top-level code has
 *                                          timeout_ms, announced by a
 *                                          "loading" message)
 *
 * {"t":"restore","steps":{ID:             {"t":"ok"}
 *   {"status":S,"result":JSON}}}           (steps already finished; used
 *                                          after a worker restart or resume)
 *
 * {"t":"prepare","step":ID}               {"t":"prepared","skip":bool,
 *                                           "reason":TEXT,"title":TEXT,
 *                                           "manual":TEXT|null}
 *                                         or {"t":"error","error":TEXT}
 *   (evaluates `when` and renders {{templates}} in title and manual text)
 *
 * {"t":"run","step":ID,"attempt":N,       zero or more calls, then
 *  "timeout_ms":N}                        {"t":"done","ok":true,"result":JSON}
 *                                         {"t":"done","ok":false,"kind":K,
 *                                          "error":TEXT,"traceback":TEXT}
 *   K = "error" (Lua error), "fail" (ctx.fail), "timeout" (soft deadline),
 *       "memory" (memory cap), "result" (result cannot be recorded)
 *
 * {"t":"record","step":ID,"status":S,     {"t":"ok"}
 *  "result":JSON|null}
 *   (the supervisor's verdict on a step, so ctx.steps[id] is right in Lua;
 *    S = succeeded | failed | skipped)
 *
 * While running a step, the worker may send:
 * {"t":"call","id":N,"fn":FN,"args":{...}}
 * and waits for
 * {"t":"reply","id":N,"ok":true,"value":JSON}
 * {"t":"reply","id":N,"ok":false,"error":TEXT}
 * FN and args:
 *   "exec"     {"argv":[ARG...],"stdin":TEXT|null,"timeout_ms":N|null,
 *               "env":{K:V}|null,"cwd":TEXT|null,"shell":bool}
 *              ARG is a string or {"secret":NAME}
 *              -> {"code":N,"signal":N|null,"stdout":TEXT,"stderr":TEXT,
 *                  "stdout_truncated":bool,"stderr_truncated":bool,
 *                  "timed_out":bool,"duration_ms":N,"simulated":bool}
 *   "sleep"    {"ms":N}                         -> {}
 *   "log"      {"msg":TEXT,"fields":JSON|null,"truncated":bool} -> {}
 *   "notify"   {"target":TEXT,"msg":TEXT,"fields":JSON|null} -> {}
 *   "escalate" {"reason":TEXT}                  -> {"tier":N}
 *   "ask"      {"question":TEXT,"choices":[TEXT...]} -> {"answer":TEXT}
 *   "confirm"  {"question":TEXT}                -> {"answer":bool}
 *   "http"     {"method":M,"url":URL|{"secret":N},"headers":{K:V|{"secret":N}},
 *               "body":TEXT|null,"timeout_ms":N|null}
 *              -> {"status":N,"headers":{K:V},"body":TEXT,"simulated":bool}
 *   "artifact" {"name":TEXT,"data":TEXT}        -> {"sha256":HEX,"path":TEXT}
 * A secret's value never crosses this pipe: the worker only ever holds the
 * name; the supervisor substitutes the value when it performs the effect.
 *
 * OUTLINE (everything the supervisor needs to drive the run without Lua):
 * {"id":S,"title":S,"version":S,"severity":S,"file":PATH,"line":N,
 *  "description":S|null,"phases":[S...],
 *  "inputs":{NAME:{"required":bool,"doc":S|null,"default":S|null}},
 *  "vars":{NAME:S},                        (after defaults were applied)
 *  "objectives":{NAME:MS},                 (e.g. "contain_within": 1800000)
 *  "escalation":[{"tier":N,"after_ms":N,"notify":[S...]}],
 *  "steps":[{"id":S,"phase":S|null,"title":S,"doc":S|null,
 *            "kind":"run"|"manual","manual":S|null,"approval":S|null,
 *            "has_when":bool,"timeout_ms":N|null,"retries":N,"backoff_ms":N,
 *            "on_failure":"abort"|"continue"|"escalate"|STEP_ID,
 *            "idempotent":bool,"has_rollback":bool,"notify":JSON|null,
 *            "drill":JSON|null,"file":PATH,"line":N,"source":S}]}
 *   ("source": "playbook", or the attach file a step came from)
 */
#ifndef IRP_PROTO_H
#define IRP_PROTO_H

#include <jansson.h>
#include <stddef.h>

#define IRP_WORKER_FD 3
#define PR_MAX_FRAME ((size_t)64 << 20)

/* Serialises msg and writes it with a trailing newline, blocking until done
 * (retries EINTR). Returns 0, or -1 with errno (EPIPE when the peer died,
 * EMSGSIZE when the frame would exceed PR_MAX_FRAME). Does not steal msg. */
int pr_send(int fd, const json_t *msg);

/* Incremental reader: feed bytes as they arrive, take whole messages out. */
typedef struct {
    char *buf;
    size_t len, cap;
    size_t scanned;   /* bytes already searched for '\n' */
} pr_reader;

void pr_reader_init(pr_reader *r);
void pr_reader_free(pr_reader *r);
/* Appends bytes. Returns 0, or -1 when the pending frame exceeds PR_MAX_FRAME. */
int pr_reader_feed(pr_reader *r, const char *data, size_t n);
/* Takes the next whole message: 1 and *out (a new reference to a JSON
 * object), 0 when no whole line is buffered, -1 on a line that is not a JSON
 * object (err receives the reason). */
int pr_reader_next(pr_reader *r, json_t **out, char *err, size_t err_size);

/* Blocking receive for the worker: reads fd until one message is whole.
 * Returns 1 with *out, 0 on EOF, -1 on error (err says why). */
int pr_recv_blocking(int fd, pr_reader *r, json_t **out, char *err, size_t err_size);

/* Convenience accessors that tolerate missing keys. */
const char *pr_str(const json_t *obj, const char *key);      /* NULL if absent/not a string */
long long pr_int(const json_t *obj, const char *key, long long fallback);
int pr_bool(const json_t *obj, const char *key, int fallback);

#endif
