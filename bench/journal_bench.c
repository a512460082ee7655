/*
 * journal_bench.c — issue 3's journal benchmark, the library half: appends
 * per second through jr_append (no sync: one fdatasync at the end) and
 * through jr_append_sync (an fdatasync after every record, as a step
 * boundary does), then the time to read back (jr_read) and verify
 * (jr_verify_file) and to reopen for appending (jr_open_append, the walk a
 * resume does) a journal of that many events. bench/journal.sh builds it
 * against runner/journal.c, runner/journal_verify.c and runner/util.c.
 *
 * Usage: journal_bench DIR [N_NOSYNC] [N_SYNC]   (defaults 10000 and 1000)
 * DIR must exist; the runs are made in DIR/nosync and DIR/sync.
 * Depends on: journal.h, util.h, jansson, OpenSSL libcrypto.
 */
#include "journal.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A record about the size of a real step.exec or step.log. */
static json_t *sample_data(long i)
{
    return json_pack("{s:s, s:i, s:i, s:b, s:s, s:s}", "command", "sh -c echo step >> /var/tmp/effects s042 1",
                     "code", 0, "duration_ms", (int)(i % 97), "timed_out", 0, "stdout",
                     "isolation job 42 queued", "stderr", "");
}

/* Creates DIR/name with a journal of n events (run.started included),
 * syncing after each when sync is set. Returns the elapsed seconds of the
 * appends, or -1. */
static double fill(const char *dir, const char *name, long n, int sync)
{
    char *run_dir = ut_xasprintf("%s/%s", dir, name);
    if (mkdir(run_dir, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "journal_bench: mkdir %s: %s\n", run_dir, strerror(errno));
        free(run_dir);
        return -1;
    }
    char err[512];
    double t0 = now_s();
    jr_journal *j = jr_create(run_dir, "bench", "live", json_pack("{s:s}", "playbook", "bench"), err, sizeof err);
    if (!j) {
        fprintf(stderr, "journal_bench: %s\n", err);
        free(run_dir);
        return -1;
    }
    static const char *const types[] = {"step.started", "step.exec", "step.log", "step.succeeded"};
    for (long i = 1; i < n; i++) {
        char step[32];
        snprintf(step, sizeof step, "s%04ld", i / 4);
        long long seq = sync ? jr_append_sync(j, types[i % 4], step, "bench", sample_data(i))
                             : jr_append(j, types[i % 4], step, "bench", sample_data(i));
        if (seq < 0) {
            fprintf(stderr, "journal_bench: append %ld: %s\n", i, jr_error(j) ? jr_error(j) : strerror(errno));
            jr_close(j);
            free(run_dir);
            return -1;
        }
    }
    if (jr_close(j) < 0) {
        fprintf(stderr, "journal_bench: close: %s\n", strerror(errno));
        free(run_dir);
        return -1;
    }
    double t = now_s() - t0;
    free(run_dir);
    return t;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: journal_bench DIR [N_NOSYNC] [N_SYNC]\n");
        return 64;
    }
    const char *dir = argv[1];
    long n_nosync = argc > 2 ? atol(argv[2]) : 10000;
    long n_sync = argc > 3 ? atol(argv[3]) : 1000;
    if (n_nosync < 2 || n_sync < 2) {
        fprintf(stderr, "journal_bench: counts must be at least 2\n");
        return 64;
    }

    double t = fill(dir, "nosync", n_nosync, 0);
    if (t < 0)
        return 1;
    printf("journal: %ld appends without fdatasync (one sync at close): %.3f s, %.0f appends/s\n", n_nosync, t,
           (double)n_nosync / t);
    t = fill(dir, "sync", n_sync, 1);
    if (t < 0)
        return 1;
    printf("journal: %ld appends each followed by fdatasync:          %.3f s, %.0f appends/s\n", n_sync, t,
           (double)n_sync / t);

    char *path = ut_xasprintf("%s/nosync/journal.jsonl", dir);
    struct stat st;
    stat(path, &st);
    char err[512];
    double t0 = now_s();
    json_t *records = jr_read(path, NULL, err, sizeof err);
    double t_read = now_s() - t0;
    if (!records) {
        fprintf(stderr, "journal_bench: %s\n", err);
        free(path);
        return 1;
    }
    size_t count = json_array_size(records);
    json_decref(records);
    jr_verify_result res;
    t0 = now_s();
    int rc = jr_verify_file(path, &res);
    double t_verify = now_s() - t0;
    if (rc < 0 || !res.intact) {
        fprintf(stderr, "journal_bench: verify: %s\n", res.what);
        free(path);
        return 1;
    }
    char *run_dir = ut_xasprintf("%s/nosync", dir);
    t0 = now_s();
    jr_journal *j = jr_open_append(run_dir, err, sizeof err);
    double t_open = now_s() - t0;
    if (!j) {
        fprintf(stderr, "journal_bench: %s\n", err);
        free(run_dir);
        free(path);
        return 1;
    }
    jr_close(j);
    printf("journal: a %zu-event journal (%.1f MiB): jr_read %.1f ms, jr_verify_file %.1f ms, "
           "jr_open_append %.1f ms\n",
           count, (double)st.st_size / (1 << 20), t_read * 1e3, t_verify * 1e3, t_open * 1e3);
    free(run_dir);
    free(path);
    return 0;
}
