/*
 * journal_walk.h — internals shared by the two halves of the journal
 * (runner/journal.c writes, runner/journal_verify.c reads and checks): the
 * streaming line reader, the record walk that both `irp verify` and resume
 * use, and the SHA-256 of a line. Not an API for other parts: use journal.h.
 * Depends on: journal.h, jansson, OpenSSL libcrypto.
 */
#ifndef IRP_JOURNAL_WALK_H
#define IRP_JOURNAL_WALK_H

#include "journal.h"

#include <stddef.h>
#include <sys/types.h>

/* Longest record line (without its '\n'): the same bound as a protocol
 * frame, so anything the worker can send fits in one record. jr_append
 * refuses longer lines and the reader reports them as damage. */
#define JR_MAX_LINE ((size_t)64 << 20)

/* Lower-case hex SHA-256 plus NUL. */
#define JR_HASH_HEX 65

/* Hex SHA-256 of n bytes into out. Returns 0, or -1 when OpenSSL failed
 * (out is then ""). */
int jr_sha256_hex(const void *data, size_t n, char out[JR_HASH_HEX]);

/* Reads a file one line at a time with pread, holding at most one line plus
 * one read chunk in memory, so huge journals stream. */
typedef struct {
    int fd;
    off_t off;              /* file offset of the next read */
    char *buf;
    size_t start, len, cap; /* unconsumed bytes: buf[start, start + len) */
    size_t scanned;         /* of those, how many are known to hold no '\n' */
    int eof;
    int too_long;           /* the failure was a line over JR_MAX_LINE */
    int err;                /* errno of a failed read */
    long long line_no;      /* 1-based number of the line last returned */
    off_t line_off;         /* file offset where that line starts */
    off_t next_off;         /* file offset just past it ('\n' included) */
} jr_lines;

void jr_lines_init(jr_lines *lr, int fd);
void jr_lines_free(jr_lines *lr);
/* 1: *line and *len hold the next line without its '\n', *has_nl says
 * whether it had one (only the last line of a file can lack it); the
 * pointer is valid until the next call. 0: end of file. -1: a read failed
 * (lr->err) or a line exceeds JR_MAX_LINE (lr->too_long, lr->line_no). */
int jr_lines_next(jr_lines *lr, const char **line, size_t *len, int *has_nl);
/* 1 when more bytes follow the line last returned, 0 at end of file, -1 on
 * a read error. May move the buffer: the last line's pointer is stale. */
int jr_lines_more(jr_lines *lr);

/* The result of walking a journal from its first line to its end or to its
 * first problem, whichever comes first. */
typedef struct {
    jr_verify_result res;   /* intact / records / bad_seq / bad_line / what */
    int torn;               /* the one problem is a torn last line */
    off_t good_end;         /* offset just past the last record that passed */
    off_t torn_bytes;       /* size of the torn tail ('\n' included, if any) */
    long long last_seq;     /* seq of the last record that passed (0: none) */
    char last_hash[JR_HASH_HEX]; /* SHA-256 of that record's line */
    char *run, *mode;       /* from line 1 (malloc'd; NULL before it) */
} jr_walk;

/* Walks fd (read with pread from offset 0; the file offset is untouched).
 * name is used in messages. Returns 0 when the file was read (look at
 * w->res.intact and w->torn), -1 on a read error (w->res.what says why).
 * Free with jr_walk_free either way. */
int jr_walk_fd(int fd, const char *name, jr_walk *w);
void jr_walk_free(jr_walk *w);

#endif
