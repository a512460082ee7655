/*
 * cli_outbox.c — `irp outbox [list|flush]` and `irp notify test NAME`,
 * with their help texts. list reads the outbox (no configuration, no
 * network); flush sends everything now through the configured notifiers
 * and exits 0 when the outbox is empty, 69 when something remains;
 * notify test sends a test message through one notifier and says what
 * happened (69 when it was not delivered). Delivery events of a run's
 * notifications are appended to that run's journal when no runner holds
 * it (a late delivery belongs in the record of the incident).
 * Depends on: notify.h (and its service internals), outbox.h, journal.h,
 * state.h, term.h, util.h.
 */
#include "cli.h"
#include "journal.h"
#include "notify.h"
#include "notify_service.h"
#include "outbox.h"
#include "state.h"
#include "term.h"
#include "util.h"

#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FLUSH_WAIT_MS 60000
#define TEST_WAIT_MS 30000

static const char outbox_help[] =
    "usage: irp outbox [list|flush] [--state-dir DIR] [--config FILE] [--wait DURATION] [--json]\n"
    "\n"
    "Every notification is written to <state-dir>/outbox/ before it is sent and\n"
    "removed once it is delivered or given up. What a run could not deliver\n"
    "stays there and is sent by the next run, or now by `irp outbox flush`.\n"
    "\n"
    "  list     (the default) one line per waiting notification: id, notifier,\n"
    "           run, attempts so far, next attempt, last error\n"
    "  flush    send everything now through the configured notifiers, retrying\n"
    "           with backoff for up to --wait (default 60s); exit 0 when the\n"
    "           outbox is empty, 69 when something remains\n"
    "\n"
    "  --state-dir DIR    default $IRP_STATE_DIR, else ./.irp\n"
    "  --config FILE      notifiers; default $IRP_CONFIG, else ./irp.conf.lua\n"
    "  --wait DURATION    flush: how long to keep trying (\"30s\", \"5m\")\n"
    "  --json             list: a JSON array instead of a table\n"
    "\n"
    "Deliveries and failures of a run's notifications are added to that run's\n"
    "journal (notify.sent / notify.failed) unless a runner holds it.\n";

static const char notify_help[] =
    "usage: irp notify test NAME [--state-dir DIR] [--config FILE] [--wait DURATION]\n"
    "                            [--text TEXT] [--count N]\n"
    "\n"
    "Sends a test notification through the configured notifier NAME and prints\n"
    "what happened: the HTTP status, or why it failed (retries with backoff for\n"
    "up to --wait, default 30s). Exit 0 when it was delivered, 69 when not; an\n"
    "undelivered test stays in the outbox like any notification. A PagerDuty or\n"
    "Opsgenie test triggers an alert and resolves it right away.\n"
    "\n"
    "  --state-dir DIR    default $IRP_STATE_DIR, else ./.irp (holds the outbox)\n"
    "  --config FILE      default $IRP_CONFIG, else ./irp.conf.lua, else the\n"
    "                     embedded stdout notifier\n"
    "  --wait DURATION    how long to keep trying (\"10s\", \"2m\")\n"
    "  --text TEXT        the message (default: a line naming you and this host)\n"
    "  --count N          send N test messages (load-testing a channel)\n";

/* ------------------------------------------------------------- options */

typedef struct {
    const char *command;
    const char *state_dir;
    const char *config;
    long wait_ms;
    int json;
    long count;
    const char *text;
    const char *positional[4];
    int npositional;
} opts;

__attribute__((format(printf, 2, 3))) static int usage(const char *command, const char *fmt, ...)
{
    fprintf(stderr, "irp %s: ", command);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(irp %s --help shows how to use it)\n", command);
    return IRP_EXIT_USAGE;
}

static int is_opt(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return !strncmp(arg, name, n) && (arg[n] == '\0' || arg[n] == '=');
}

static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    return *i + 1 < argc ? argv[++*i] : NULL;
}

/* Returns -1 when parsed, else the exit code to return (0 after --help). */
static int parse(int argc, char **argv, opts *o, const char *help, int test_options)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cli_is_help(a)) {
            fputs(help, stdout);
            return 0;
        } else if (is_opt(a, "--state-dir")) {
            if (!(o->state_dir = opt_value(argc, argv, &i, "--state-dir")))
                return usage(o->command, "--state-dir needs a directory");
        } else if (is_opt(a, "--config")) {
            o->config = opt_value(argc, argv, &i, "--config");
            if (!o->config || access(o->config, R_OK) < 0)
                return usage(o->command, "--config: cannot read '%s'", o->config ? o->config : "");
        } else if (is_opt(a, "--wait")) {
            v = opt_value(argc, argv, &i, "--wait");
            int64_t ms;
            if (!v || ut_parse_duration(v, &ms) < 0 || ms > 7 * 24 * 3600 * 1000LL)
                return usage(o->command, "--wait '%s' must be a duration such as 30s or 5m", v ? v : "");
            o->wait_ms = (long)ms;
        } else if (!test_options && !strcmp(a, "--json")) {
            o->json = 1;
        } else if (test_options && is_opt(a, "--count")) {
            v = opt_value(argc, argv, &i, "--count");
            char *end = NULL;
            o->count = v ? strtol(v, &end, 10) : 0;
            if (!v || *end || o->count < 1 || o->count > 100000)
                return usage(o->command, "--count '%s' must be a number from 1 to 100000", v ? v : "");
        } else if (test_options && is_opt(a, "--text")) {
            if (!(o->text = opt_value(argc, argv, &i, "--text")))
                return usage(o->command, "--text needs the message");
        } else if (a[0] == '-' && a[1]) {
            return usage(o->command, "unknown option '%s'", a);
        } else if (o->npositional < 4) {
            o->positional[o->npositional++] = a;
        } else {
            return usage(o->command, "too many arguments ('%s')", a);
        }
    }
    return -1;
}

static const char *operator_name(void)
{
    const char *n = getenv("IRP_OPERATOR");
    if (n && *n)
        return n;
    struct passwd *pw = getpwuid(getuid());
    if (pw && pw->pw_name)
        return pw->pw_name;
    n = getenv("USER");
    return n && *n ? n : "operator";
}

/* ------------------------------------------------------ event reporting */

typedef struct run_record {
    char *run;
    jr_journal *jr;
    int lock_fd;
    struct run_record *next;
} run_record;

typedef struct {
    const char *state_dir;
    run_record *runs;
    int journal; /* append events to run journals */
    size_t sent, failed_final, kept;
} reporter;

/* The journal of run, opened for appending when the run exists and no
 * runner holds it; NULL otherwise (the event is then only printed). */
static jr_journal *run_journal(reporter *r, const char *run)
{
    for (run_record *x = r->runs; x; x = x->next)
        if (!strcmp(x->run, run))
            return x->jr;
    run_record *x = ut_xcalloc(1, sizeof *x);
    x->run = ut_xstrdup(run);
    x->lock_fd = -1;
    x->next = r->runs;
    r->runs = x;
    if (!st_valid_run_id(run))
        return NULL;
    char *dir = st_run_dir(r->state_dir, run), *path = ut_xasprintf("%s/journal.jsonl", dir);
    struct stat st;
    if (stat(path, &st) == 0) {
        char err[512];
        long holder = 0;
        x->lock_fd = jr_lock_run(dir, &holder, err, sizeof err);
        if (x->lock_fd >= 0) {
            x->jr = jr_open_append(dir, err, sizeof err);
            if (!x->jr)
                tm_warn("run %s: cannot add delivery records to its journal: %s", run, err);
        }
    }
    free(dir);
    free(path);
    return x->jr;
}

static void close_journals(reporter *r)
{
    while (r->runs) {
        run_record *x = r->runs;
        r->runs = x->next;
        if (x->jr && jr_close(x->jr) < 0)
            tm_warn("run %s: the journal could not be synced", x->run);
        if (x->lock_fd >= 0)
            close(x->lock_fd);
        free(x->run);
        free(x);
    }
}

static const char *dstr(const json_t *d, const char *k)
{
    const char *s = json_string_value(json_object_get(d, k));
    return s ? s : "";
}

static void on_event(void *ctx, const char *type, const char *run_id, const char *step, json_t *data)
{
    reporter *r = ctx;
    int attempt = (int)json_integer_value(json_object_get(data, "attempt"));
    if (!strcmp(type, "notify.sent")) {
        r->sent++;
        json_int_t status = json_integer_value(json_object_get(data, "status"));
        char what[64] = "written";
        if (status)
            snprintf(what, sizeof what, "HTTP %lld", (long long)status);
        printf("sent     %-20s %s  %s in %lld ms (attempt %d)\n", dstr(data, "target"), dstr(data, "id"), what,
               (long long)json_integer_value(json_object_get(data, "ms")), attempt);
    } else if (!strcmp(type, "notify.failed")) {
        int retry = json_is_true(json_object_get(data, "retry"));
        int kept = json_is_true(json_object_get(data, "kept"));
        if (!retry && kept)
            r->kept++;
        else if (!retry)
            r->failed_final++;
        fprintf(stderr, "%s %-20s %s  attempt %d: %s%s%s\n", retry ? "retry   " : kept ? "not sent" : "FAILED  ",
                dstr(data, "target"), dstr(data, "id"), attempt, dstr(data, "reason"),
                retry ? "; next attempt " : kept ? "; left in the outbox" : "; given up",
                retry ? dstr(data, "next_attempt") : "");
    } else if (!strcmp(type, "notify.queued")) {
        printf("queued   %-20s %s\n", dstr(data, "target"), dstr(data, "id"));
    }
    fflush(stdout);
    if (r->journal && run_id && strcmp(type, "notify.queued") != 0) {
        jr_journal *jr = run_journal(r, run_id);
        if (jr) {
            json_object_set_new(data, "via", json_string("irp outbox flush"));
            if (jr_append_sync(jr, type, step, operator_name(), json_incref(data)) < 0)
                tm_warn("run %s: cannot append to its journal: %s", run_id, jr_error(jr) ? jr_error(jr) : "?");
        }
    }
    json_decref(data);
}

/* ------------------------------------------------------------- outbox */

static char *format_next(json_int_t ms)
{
    if (ms <= 0)
        return ut_xstrdup("now");
    int64_t now = ut_now_ms();
    if (ms <= now)
        return ut_xstrdup("now");
    char d[32];
    ut_format_duration(ms - now, d, sizeof d);
    return ut_xasprintf("in %s", d);
}

static int outbox_list(const opts *o, const char *state_dir)
{
    char *dir = ut_xasprintf("%s/outbox", state_dir);
    int exists = access(dir, F_OK) == 0;
    if (!exists) {
        if (o->json)
            printf("[]\n");
        else
            printf("the outbox is empty (%s does not exist)\n", dir);
        free(dir);
        return 0;
    }
    char err[512];
    ob_outbox *ob = ob_open(state_dir, err, sizeof err);
    if (!ob) {
        tm_error("%s", err);
        free(dir);
        return IRP_EXIT_IOERR;
    }
    size_t n = 0;
    char **ids = ob_list(ob, &n);
    json_t *all = json_array();
    if (!o->json && n)
        printf("%-31s %-16s %-32s %8s  %-10s %s\n", "ID", "NOTIFIER", "RUN", "ATTEMPTS", "NEXT", "LAST ERROR");
    for (size_t i = 0; i < n; i++) {
        json_t *doc = ob_read(ob, ids[i], err, sizeof err);
        if (!doc) {
            if (!o->json)
                printf("%-36s (unreadable: %s)\n", ids[i], err);
            continue; /* sent and removed while we looked, or damaged */
        }
        const char *target = dstr(doc, "target"), *run = dstr(doc, "run"), *last = dstr(doc, "last_error");
        json_int_t attempts = json_integer_value(json_object_get(doc, "attempts"));
        json_int_t next = json_integer_value(json_object_get(doc, "next_attempt_ms"));
        if (o->json) {
            char when[40];
            ut_rfc3339_ms(next, when, sizeof when);
            json_array_append_new(all, json_pack("{s:s, s:s, s:s, s:O, s:I, s:s, s:O, s:O}", "id", ids[i], "target",
                                                 target, "run", run, "kind", json_object_get(doc, "kind"), "attempts",
                                                 attempts, "next_attempt", when, "last_error",
                                                 json_object_get(doc, "last_error"), "created",
                                                 json_object_get(doc, "created")));
        } else {
            char *when = format_next(next);
            printf("%-31s %-16s %-32s %8lld  %-10s %s\n", ids[i], target, *run ? run : "-", (long long)attempts, when,
                   *last ? last : "-");
            free(when);
        }
        json_decref(doc);
    }
    if (o->json) {
        char *text = json_dumps(all, JSON_INDENT(2));
        printf("%s\n", text ? text : "[]");
        free(text);
    } else if (!n) {
        printf("the outbox is empty (%s)\n", dir);
    } else {
        printf("%zu notification%s waiting; `irp outbox flush` sends them now\n", n, n == 1 ? "" : "s");
    }
    json_decref(all);
    ob_free_ids(ids, n);
    ob_close(ob);
    free(dir);
    return 0;
}

static size_t outbox_count(const char *state_dir)
{
    char err[512];
    ob_outbox *ob = ob_open(state_dir, err, sizeof err);
    if (!ob)
        return (size_t)-1;
    size_t n = 0;
    char **ids = ob_list(ob, &n);
    ob_free_ids(ids, n);
    ob_close(ob);
    return n;
}

/* Ctrl-C (or SIGTERM) ends the wait; nothing is lost: the outbox keeps
 * what was not delivered. */
typedef struct {
    uv_signal_t sigint, sigterm;
    nt_service *s;
    int signo;
} stopper;

static void on_signal(uv_signal_t *h, int signo)
{
    stopper *st = h->data;
    st->signo = signo;
    nt_interrupt(st->s);
}

static void stopper_start(stopper *st, uv_loop_t *loop, nt_service *s)
{
    st->s = s;
    st->signo = 0;
    uv_signal_init(loop, &st->sigint);
    uv_signal_init(loop, &st->sigterm);
    st->sigint.data = st->sigterm.data = st;
    uv_signal_start(&st->sigint, on_signal, SIGINT);
    uv_signal_start(&st->sigterm, on_signal, SIGTERM);
    uv_unref((uv_handle_t *)&st->sigint);
    uv_unref((uv_handle_t *)&st->sigterm);
}

/* The exit code for an interrupted wait, after saying so; 0 if none. */
static int stopper_end(stopper *st, const char *state_dir)
{
    uv_close((uv_handle_t *)&st->sigint, NULL);
    uv_close((uv_handle_t *)&st->sigterm, NULL);
    if (!st->signo)
        return 0;
    fprintf(stderr, "irp: interrupted; what was not delivered stays in %s/outbox (irp outbox flush)\n", state_dir);
    return st->signo == SIGINT ? IRP_EXIT_SIGINT : IRP_EXIT_TEMPFAIL;
}

/* Opens the service on a private loop; the caller closes both. */
static nt_service *open_service(uv_loop_t *loop, const opts *o, const char *state_dir, int load_existing,
                                reporter *rep, int *code)
{
    char err[1024];
    uv_loop_init(loop);
    nt_service *s = nt_open_ex(loop, o->config, state_dir, 1, load_existing, on_event, rep, code, err, sizeof err);
    if (!s) {
        tm_error("%s", err);
        uv_loop_close(loop);
    }
    return s;
}

static void close_service(uv_loop_t *loop, nt_service *s)
{
    nt_close(s);
    uv_run(loop, UV_RUN_DEFAULT); /* lets the closed handles finish closing */
    uv_loop_close(loop);
}

static int outbox_flush(const opts *o, const char *state_dir)
{
    reporter rep = {state_dir, NULL, 1, 0, 0, 0};
    uv_loop_t loop;
    int code = 0;
    nt_service *s = open_service(&loop, o, state_dir, 1, &rep, &code);
    if (!s)
        return code;
    stopper st;
    stopper_start(&st, &loop, s);
    nt_flush(s, o->wait_ms > 0 ? o->wait_ms : FLUSH_WAIT_MS);
    size_t unsendable = nt_unsendable(s);
    int stopped = stopper_end(&st, state_dir);
    close_service(&loop, s);
    close_journals(&rep);
    size_t left = outbox_count(state_dir);
    printf("outbox: %zu delivered, %zu failed for good, %zu remain", rep.sent, rep.failed_final,
           left == (size_t)-1 ? 0 : left);
    if (unsendable)
        printf(" (%zu cannot be sent with this configuration: notifier not configured, or a secret not set)",
               unsendable);
    printf("\n");
    if (stopped)
        return stopped;
    return left == 0 ? 0 : IRP_EXIT_UNAVAILABLE;
}

int cli_outbox(int argc, char **argv)
{
    opts o;
    memset(&o, 0, sizeof o);
    o.command = "outbox";
    int rc = parse(argc, argv, &o, outbox_help, 0);
    if (rc >= 0)
        return rc;
    const char *sub = o.npositional ? o.positional[0] : "list";
    if (o.npositional > 1)
        return usage("outbox", "one subcommand at a time (got '%s' too)", o.positional[1]);
    tm_init(0);
    const char *state_dir = st_state_dir(o.state_dir);
    if (!strcmp(sub, "list"))
        return outbox_list(&o, state_dir);
    if (!strcmp(sub, "flush"))
        return outbox_flush(&o, state_dir);
    static const char *const subs[] = {"list", "flush", NULL};
    const char *hint = ut_closest(sub, subs, 2);
    return usage("outbox", "unknown subcommand '%s'%s%s%s", sub, hint ? " (did you mean '" : "", hint ? hint : "",
                 hint ? "'?)" : "");
}

/* ------------------------------------------------------------- notify */

int cli_notify(int argc, char **argv)
{
    opts o;
    memset(&o, 0, sizeof o);
    o.command = "notify";
    o.count = 1;
    int rc = parse(argc, argv, &o, notify_help, 1);
    if (rc >= 0)
        return rc;
    if (o.npositional == 0 || strcmp(o.positional[0], "test") != 0)
        return usage("notify", "the command is: irp notify test NAME");
    if (o.npositional != 2)
        return usage("notify", "which notifier? e.g. irp notify test slack-ir");
    const char *name = o.positional[1];
    tm_init(0);
    const char *state_dir = st_state_dir(o.state_dir);
    reporter rep = {state_dir, NULL, 0, 0, 0, 0};
    uv_loop_t loop;
    int code = 0;
    char err[1024];
    /* Only the test's own messages, not what other runs left in the
     * outbox (flush is for that). */
    nt_service *s = open_service(&loop, &o, state_dir, 0, &rep, &code);
    if (!s)
        return code;
    if (!nt_known(s, name)) {
        const char *hint = cf_suggest(s->cfg, name);
        fprintf(stderr, "irp notify: no notifier named '%s' in %s%s%s%s\n", name,
                s->cfg->path ? s->cfg->path : "the configuration", hint ? " (did you mean '" : "", hint ? hint : "",
                hint ? "'?)" : "");
        close_service(&loop, s);
        return IRP_EXIT_USAGE;
    }
    char host[256] = "this host";
    if (gethostname(host, sizeof host - 1) == 0)
        host[sizeof host - 1] = '\0';
    char *run = st_new_run_id(), *run_id = ut_xasprintf("notify-test-%s", run);
    char *text = o.text ? ut_xstrdup(o.text)
                        : ut_xasprintf("Test notification from irp: sent by %s on %s with `irp notify test %s`",
                                       operator_name(), host, name);
    nt_message m;
    memset(&m, 0, sizeof m);
    m.target = name;
    m.event = "test";
    m.text = text;
    m.run_id = run_id;
    m.playbook = "irp-notify-test";
    m.title = "irp notify test";
    m.severity = "info";
    m.status = "test";
    m.operator_name = operator_name();
    int failed = 0;
    for (long i = 0; i < o.count && !failed; i++)
        if (nt_submit(s, &m, err, sizeof err) < 0) {
            tm_error("cannot queue the test notification: %s", err);
            failed = 1;
        }
    stopper st;
    stopper_start(&st, &loop, s);
    size_t left = failed ? nt_pending(s) : nt_drain(s, o.wait_ms > 0 ? o.wait_ms : TEST_WAIT_MS);
    size_t kept = nt_unsendable(s);
    int stopped = stopper_end(&st, state_dir);
    close_service(&loop, s);
    free(run);
    free(run_id);
    free(text);
    if (failed)
        return IRP_EXIT_IOERR;
    if (stopped)
        return stopped;
    if (left || kept || rep.failed_final) {
        fprintf(stderr, "irp notify: the test was not delivered%s\n",
                left || kept ? "; what is left stays in the outbox (irp outbox list)" : "");
        return IRP_EXIT_UNAVAILABLE;
    }
    printf("delivered through '%s'\n", name);
    return 0;
}
