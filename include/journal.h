/*
 * journal.h — the run's record: an append-only JSON-lines file, one event a
 * line, each line chained to the previous one by SHA-256, made durable with
 * fdatasync before any side effect that follows it. Also: reading a journal
 * back, verifying its chain, and the one-runner-per-run lock.
 * Depends on: jansson, OpenSSL libcrypto (SHA-256).
 *
 * Line format (keys in this order, compact JSON, '\n' terminated):
 * {"v":1,"seq":N,"ts":"RFC 3339 UTC ms","run":ID,"mode":"live|drill",
 *  "type":T,"step":ID|null,"actor":A|null,"data":{...},"prev":HEX}
 * seq starts at 1. "prev" is the lower-case hex SHA-256 of the previous
 * line's bytes (without its newline); the first line's "prev" is the run's
 * nonce: 64 hex chars recorded as data.nonce of that first record
 * (run.started), which jr_create puts there itself.
 */
#ifndef IRP_JOURNAL_H
#define IRP_JOURNAL_H

#include <jansson.h>
#include <stddef.h>

typedef struct jr_journal jr_journal;

/* Creates <run_dir>/journal.jsonl (must not exist; mode 0600) and appends
 * the run.started record with `data` (stolen; data.nonce is added). The
 * record is synced before returning. NULL on failure, err says why. */
jr_journal *jr_create(const char *run_dir, const char *run_id, const char *mode, json_t *data,
                      char *err, size_t err_size);

/* Opens an existing journal to append more records (resume). A torn last
 * line (no trailing newline, or not valid JSON while every earlier line is)
 * is moved to <run_dir>/journal.torn.<seq> and a journal.torn record
 * {"bytes":N,"saved_as":NAME} is appended (and one for any side file an
 * earlier open saved but stopped before recording). Damage before the tail is not a
 * tear: the open fails with err naming the first bad record.
 * On failure errno is EBADMSG when the journal's content is the problem
 * (damage, nothing whole), else the I/O error (setting a tear aside failed). */
jr_journal *jr_open_append(const char *run_dir, char *err, size_t err_size);

/* Appends one record. step and actor may be NULL; data is stolen (NULL
 * means {}). Returns the new seq, or -1 when the write failed: the journal
 * is then "failed" and every later append or sync fails too (a partial
 * write is never followed by more records). */
long long jr_append(jr_journal *j, const char *type, const char *step, const char *actor,
                    json_t *data);

/* Makes every appended record durable (fdatasync) if any is not yet; cheap
 * when nothing is pending. Call before any side effect leaves the process
 * and before the run ends. Returns 0, or -1 (fatal for the run: never retry
 * a failed fsync on the same descriptor). */
int jr_sync(jr_journal *j);

/* Appends then syncs. */
long long jr_append_sync(jr_journal *j, const char *type, const char *step, const char *actor,
                         json_t *data);

/* Why the journal failed ("write journal.jsonl: No space left on device"),
 * or NULL while it is healthy. */
const char *jr_error(const jr_journal *j);
const char *jr_run_id(const jr_journal *j);
const char *jr_mode(const jr_journal *j);
long long jr_last_seq(const jr_journal *j);
/* Syncs what is pending and closes. Returns 0 or -1 as jr_sync. */
int jr_close(jr_journal *j);

/* Reads every whole record of a journal file into a new JSON array, in
 * order (a torn tail is ignored and counted in *torn_bytes, may be NULL).
 * Does not verify the chain. NULL on error with err. */
json_t *jr_read(const char *path, size_t *torn_bytes, char *err, size_t err_size);
/* As jr_read, but for a journal that may be damaged (`irp report` renders
 * what can be read of a tampered journal): a line before the last that is
 * not a JSON object is skipped and counted in *unreadable instead of
 * failing the read. Does not verify the chain either. NULL only when the
 * file cannot be opened or read, with err. */
json_t *jr_read_salvage(const char *path, long long *unreadable, size_t *torn_bytes, char *err, size_t err_size);
/* The last run.* record of records (run.started, run.resumed, run.finished,
 * run.interrupted), borrowed; NULL when there is none. Where a run stands
 * is said by it, not by the last record: a drill.scorecard and the
 * deliveries of the final notifications follow run.finished. */
json_t *jr_last_run_record(json_t *records);

typedef struct {
    int intact;            /* 1 when every check passed */
    long long records;     /* whole records read */
    long long bad_seq;     /* seq of the first bad record (-1 if unknown) */
    long long bad_line;    /* 1-based line number of the first bad record */
    char what[256];        /* "chain broken: prev does not match line 4", ... */
    long long head_seq;    /* seq of the last whole record that verified */
    char head[65];         /* its SHA-256 (hex): the anchor to copy elsewhere */
} jr_verify_result;

/* Walks the file: each line valid JSON with the fields above, seq 1,2,3...
 * without gaps or repeats, prev chained, first prev = run.started nonce,
 * one run id and mode throughout, timestamps never going backwards by more
 * than clock skew allows is NOT checked (clocks step). A torn tail is
 * reported as torn (intact = 0). Returns 0 when the file could be read
 * (look at res->intact), -1 when it could not be opened (res->what). */
int jr_verify_file(const char *path, jr_verify_result *res);

/* The one-runner-per-run lock: flock(LOCK_EX|LOCK_NB) on <run_dir>/lock,
 * holder pid written into it. Returns the lock fd (keep it open for the
 * run's life; it dies with the process), or -1 with *holder_pid set to the
 * pid holding it (0 if unknown) and err filled. */
int jr_lock_run(const char *run_dir, long *holder_pid, char *err, size_t err_size);

#endif
