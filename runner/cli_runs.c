/*
 * cli_runs.c — `irp status [RUN_ID]` (where each run stands) and
 * `irp log RUN_ID [--follow] [--json]` (a run's timeline, for people or raw).
 * Both only read: the journal and the run's lock, never taking it.
 */
#include "cli.h"
#include "journal.h"
#include "proto.h"
#include "state.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

long cli_lock_holder(const char *run_dir)
{
    char *path = ut_xasprintf("%s/lock", run_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return 0;
    long pid = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
        char buf[32] = "";
        ssize_t n = read(fd, buf, sizeof buf - 1);
        pid = n > 0 ? strtol(buf, NULL, 10) : -1;
    }
    close(fd); /* also drops a shared lock we may have got */
    return pid;
}

/* s (or dflt when s is NULL) made safe for the terminal, one line
 * (ut_term_safe): journal fields hold what hosts and playbooks said. Valid
 * until eight later calls, enough for one printf's arguments. */
static const char *tsafe(const char *s, const char *dflt)
{
    static char *ring[8];
    static unsigned next;
    if (!s)
        s = dflt;
    if (!s)
        return NULL;
    free(ring[next]);
    ring[next] = ut_term_safe(s, strlen(s), 0);
    const char *r = ring[next];
    next = (next + 1) % 8;
    return r;
}

static const char *data_str(json_t *rec, const char *key)
{
    return pr_str(json_object_get(rec, "data"), key);
}

/* One word for where a run stands. */
static const char *run_state(json_t *records, long holder)
{
    json_t *last = jr_last_run_record(records);
    const char *t = pr_str(last, "type");
    if (holder)
        return "running";
    if (t && !strcmp(t, "run.finished"))
        return data_str(last, "status") ? data_str(last, "status") : "finished";
    if (t && !strcmp(t, "run.interrupted"))
        return "interrupted";
    return "stopped"; /* crashed or killed: resumable */
}

/* 1 when the journal fails verification for more than a torn last line
 * (which resume sets aside): its what goes into what. */
static int journal_damaged(const char *path, size_t records, size_t torn, char *what, size_t what_size)
{
    jr_verify_result vr;
    if (jr_verify_file(path, &vr) < 0 || vr.intact)
        return 0; /* unreadable is reported by the caller's read */
    if (torn && vr.bad_line == (long long)records + 1)
        return 0;
    snprintf(what, what_size, "%s", vr.what);
    return 1;
}

static int status_one(const char *state_dir, const char *id)
{
    char *run_dir = st_run_dir(state_dir, id);
    char *path = ut_xasprintf("%s/journal.jsonl", run_dir);
    char err[512];
    size_t torn = 0;
    json_t *records = jr_read(path, &torn, err, sizeof err);
    if (!records) {
        fprintf(stderr, "irp status: %s\n", tsafe(err, NULL));
        free(run_dir);
        free(path);
        return IRP_EXIT_DATAERR;
    }
    long holder = cli_lock_holder(run_dir);
    json_t *first = json_array_get(records, 0);
    json_t *pb = json_object_get(json_object_get(first, "data"), "playbook");
    printf("run %s (%s): %s", id, tsafe(pr_str(first, "mode"), "?"), tsafe(run_state(records, holder), NULL));
    if (holder > 0)
        printf(" (pid %ld)", holder);
    printf("\nplaybook %s (%s), started %s by %s\n", tsafe(pr_str(pb, "title"), "?"), tsafe(pr_str(pb, "file"), "?"),
           tsafe(pr_str(first, "ts"), "?"), tsafe(data_str(first, "operator"), "?"));
    char damage[256];
    int damaged = journal_damaged(path, json_array_size(records), torn, damage, sizeof damage);
    if (damaged)
        printf("the journal is BROKEN: %s\n  what follows is unverified; it cannot be resumed (irp verify %s)\n",
               tsafe(damage, NULL), id);
    else if (torn)
        printf("the journal ends with a torn record (%zu bytes); it is set aside when the run resumes\n", torn);
    /* The last word on each step, in the order steps first appeared. */
    json_t *order = json_array(), *last = json_object();
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec)
    {
        const char *step = pr_str(rec, "step");
        const char *t = pr_str(rec, "type");
        if (!step || !t || strncmp(t, "step.", 5) != 0 || !strcmp(t, "step.log") || !strcmp(t, "step.exec") ||
            !strcmp(t, "step.http"))
            continue;
        if (!json_object_get(last, step))
            json_array_append_new(order, json_string(step));
        json_object_set(last, step, rec);
    }
    json_array_foreach(order, i, rec)
    {
        const char *step = json_string_value(rec);
        json_t *r = json_object_get(last, step);
        const char *t = pr_str(r, "type") + 5;
        printf("  %-10s %-24s %s\n", !strcmp(t, "started") ? "IN FLIGHT" : tsafe(t, NULL), tsafe(step, NULL),
               tsafe(data_str(r, "reason"), ""));
    }
    json_t *tail = json_array_get(records, json_array_size(records) - 1);
    printf("last record: #%lld %s at %s\n", pr_int(tail, "seq", 0), tsafe(pr_str(tail, "type"), "?"),
           tsafe(pr_str(tail, "ts"), "?"));
    const char *st = run_state(records, holder);
    if (!damaged && (!strcmp(st, "interrupted") || !strcmp(st, "stopped")))
        printf("continue it with: irp resume %s\n", id);
    json_decref(order);
    json_decref(last);
    json_decref(records);
    free(run_dir);
    free(path);
    return damaged ? IRP_EXIT_DATAERR : 0; /* a broken record is bad input, as for irp verify */
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int status_all(const char *state_dir)
{
    char *runs = ut_xasprintf("%s/runs", state_dir);
    DIR *d = opendir(runs);
    if (!d) {
        printf("no runs in %s\n", state_dir);
        free(runs);
        return 0;
    }
    char **ids = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && st_valid_run_id(e->d_name)) {
            ids = ut_xrealloc(ids, (n + 1) * sizeof *ids);
            ids[n++] = ut_xstrdup(e->d_name);
        }
    closedir(d);
    qsort(ids, n, sizeof *ids, by_name);
    printf("%-28s %-6s %-12s %-24s %s\n", "RUN", "MODE", "STATE", "STARTED", "PLAYBOOK");
    for (size_t i = 0; i < n; i++) {
        char *run_dir = ut_xasprintf("%s/%s", runs, ids[i]);
        char *path = ut_xasprintf("%s/journal.jsonl", run_dir);
        char err[256];
        size_t torn = 0;
        json_t *records = jr_read(path, &torn, err, sizeof err);
        if (records && json_array_size(records)) {
            json_t *first = json_array_get(records, 0);
            json_t *pb = json_object_get(json_object_get(first, "data"), "playbook");
            char damage[256];
            int damaged = journal_damaged(path, json_array_size(records), torn, damage, sizeof damage);
            printf("%-28s %-6s %-12s %-24s %s%s\n", ids[i], tsafe(pr_str(first, "mode"), "?"),
                   damaged ? "BROKEN" : tsafe(run_state(records, cli_lock_holder(run_dir)), NULL),
                   tsafe(pr_str(first, "ts"), "?"), tsafe(pr_str(pb, "id"), "?"),
                   damaged ? "  (irp verify: the journal fails verification)" : "");
        } else {
            printf("%-28s %-6s %-12s %s\n", ids[i], "?", "unreadable", records ? "empty journal (nothing ran)" : tsafe(err, NULL));
        }
        json_decref(records);
        free(run_dir);
        free(path);
        free(ids[i]);
    }
    free(ids);
    free(runs);
    return 0;
}

int cli_status(int argc, char **argv)
{
    const char *id = NULL, *state_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            cli_help("status");
            return 0;
        }
        if (!strncmp(argv[i], "--state-dir", 11))
            state_dir = argv[i][11] == '=' ? argv[i] + 12 : (i + 1 < argc ? argv[++i] : NULL);
        else if (argv[i][0] == '-' || id) {
            fprintf(stderr, "irp status: unexpected '%s' (irp status --help)\n", argv[i]);
            return IRP_EXIT_USAGE;
        } else
            id = argv[i];
    }
    if (id && !st_valid_run_id(id)) {
        fprintf(stderr, "irp status: '%s' is not a run id\n", id);
        return IRP_EXIT_USAGE;
    }
    return id ? status_one(st_state_dir(state_dir), id) : status_all(st_state_dir(state_dir));
}

/* One record as a line for people. */
static void print_record(json_t *rec)
{
    const char *ts = pr_str(rec, "ts");
    const char *type = pr_str(rec, "type");
    const char *step = pr_str(rec, "step");
    json_t *data = json_object_get(rec, "data");
    const char *detail = NULL;
    static const char *const keys[] = {"reason", "msg", "note", "command", "message", "answer", "decision",
                                       "status", "role", NULL};
    for (int k = 0; keys[k] && !detail; k++)
        detail = pr_str(data, keys[k]);
    char extra[64] = "";
    if (type && !strcmp(type, "escalation.triggered"))
        snprintf(extra, sizeof extra, "tier %lld ", pr_int(data, "tier", 0));
    else if (type && !strcmp(type, "step.started"))
        snprintf(extra, sizeof extra, "attempt %lld ", pr_int(data, "attempt", 1));
    printf("%s  %5lld  %-22s %-18s %s%.*s\n", tsafe(ts && strlen(ts) > 11 ? ts + 11 : NULL, "?"),
           pr_int(rec, "seq", 0), tsafe(type, "?"), tsafe(step, ""), extra, 200, tsafe(detail, ""));
}

int cli_log(int argc, char **argv)
{
    const char *id = NULL, *state_dir = NULL;
    int follow = 0, as_json = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            cli_help("log");
            return 0;
        }
        if (!strcmp(argv[i], "--follow") || !strcmp(argv[i], "-f"))
            follow = 1;
        else if (!strcmp(argv[i], "--json"))
            as_json = 1;
        else if (!strncmp(argv[i], "--state-dir", 11))
            state_dir = argv[i][11] == '=' ? argv[i] + 12 : (i + 1 < argc ? argv[++i] : NULL);
        else if (argv[i][0] == '-' || id) {
            fprintf(stderr, "irp log: unexpected '%s' (irp log --help)\n", argv[i]);
            return IRP_EXIT_USAGE;
        } else
            id = argv[i];
    }
    if (!id || !st_valid_run_id(id)) {
        fprintf(stderr, "irp log: which run? (irp status lists them)\n");
        return IRP_EXIT_USAGE;
    }
    char *run_dir = st_run_dir(st_state_dir(state_dir), id);
    char *path = ut_xasprintf("%s/journal.jsonl", run_dir);
    size_t shown = 0;
    int rc = 0;
    int ended = 0; /* the run's last record was seen, in this poll or an earlier one */
    int unheld = 0; /* polls in a row that found the run neither ended nor held by an irp */
    for (int poll = 0;; poll++) {
        char err[512];
        size_t torn = 0;
        json_t *records = jr_read(path, &torn, err, sizeof err);
        if (!records) {
            fprintf(stderr, "irp log: %s\n", tsafe(err, NULL));
            rc = IRP_EXIT_DATAERR;
            break;
        }
        char damage[256];
        if (poll == 0 && journal_damaged(path, json_array_size(records), torn, damage, sizeof damage))
            fprintf(stderr, "irp log: WARNING: the journal fails verification (%s): what it shows is "
                    "unverified (irp verify %s)\n", tsafe(damage, NULL), id);
        for (size_t i = shown; i < json_array_size(records); i++) {
            json_t *rec = json_array_get(records, i);
            if (as_json) {
                char *line = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
                printf("%s\n", line ? line : "{}");
                free(line);
            } else {
                print_record(rec);
            }
            const char *t = pr_str(rec, "type");
            ended = t && (!strcmp(t, "run.finished") || !strcmp(t, "run.interrupted"));
        }
        shown = json_array_size(records);
        json_decref(records);
        fflush(stdout);
        if (!follow)
            break;
        long holder = cli_lock_holder(run_dir);
        if (!holder && ended)
            break;
        /* Not ended and no irp holds it: it stopped (killed, crashed) and
         * nothing more will come until a resume; two polls in a row, so a
         * run in the middle of taking its lock is not mistaken for it. */
        unheld = holder ? 0 : unheld + 1;
        if (unheld >= 2) {
            fprintf(stderr, "irp log: run %s stopped without ending (no irp is running it): irp resume %s "
                    "continues it\n", id, id);
            break;
        }
        usleep(200 * 1000);
    }
    free(run_dir);
    free(path);
    return rc;
}
