/*
 * outbox.h — the on-disk outbox of notifications: <state_dir>/outbox/<id>.json,
 * one JSON document per notification, each written atomically (temporary
 * file, fsync, rename, fsync of the directory) so that a crash leaves
 * either the old or the new version, never half of one. Several irp
 * processes may share an outbox: an entry is claimed with flock on the
 * entry file itself before it is sent, so one message is never sent twice
 * at once. A replacement is locked before it is renamed into place, so the
 * lock passes from version to version; a claimer re-checks after locking
 * that the path still names the file it locked.
 * Entry ids are "msg_<13-digit epoch ms>_<12 hex>": they sort by age and
 * serve as the Standard Webhooks webhook-id (stable across retries).
 * Depends on: jansson, util.h.
 */
#ifndef IRP_OUTBOX_H
#define IRP_OUTBOX_H

#include <jansson.h>
#include <stddef.h>

typedef struct ob_outbox ob_outbox;

/* A held entry: fd carries the flock (-1 when nothing is held). */
typedef struct ob_lock {
    int fd;
} ob_lock;

#define OB_LOCK_NONE {-1}

/* Creates <state_dir>/outbox (mode 0700) if needed and opens it; removes
 * temporary files left by processes that died. NULL with err. */
ob_outbox *ob_open(const char *state_dir, char *err, size_t err_size);
void ob_close(ob_outbox *o);
const char *ob_path(const ob_outbox *o);

/* A new entry id (malloc'd). */
char *ob_new_id(void);
/* 1 when id has the shape of an entry id (safe as a file name). */
int ob_valid_id(const char *id);

/* Writes a new entry atomically and durably. When claim is not NULL the
 * entry stays locked by the caller. 0, or -1 with err. */
int ob_create(ob_outbox *o, const char *id, json_t *entry, ob_lock *claim, char *err, size_t err_size);

/* Claims entry id: 1 claimed (*entry is its content, a new reference),
 * 0 not available (*gone = 1 when it no longer exists, 0 when another
 * process holds it), -1 when it exists but cannot be read (err). */
int ob_claim(ob_outbox *o, const char *id, ob_lock *claim, json_t **entry, int *gone, char *err, size_t err_size);
/* Replaces a claimed entry atomically; the claim moves to the new version. */
int ob_update(ob_outbox *o, const char *id, ob_lock *claim, json_t *entry, char *err, size_t err_size);
/* Removes a claimed entry (delivered or given up) durably and releases it. */
int ob_remove(ob_outbox *o, const char *id, ob_lock *claim, char *err, size_t err_size);
/* Lets go of a claim without changing the entry. */
void ob_release(ob_lock *claim);

/* The ids on disk, oldest first. ob_free_ids frees the list. */
char **ob_list(ob_outbox *o, size_t *count);
void ob_free_ids(char **ids, size_t count);
/* Reads an entry without claiming it (for listing). NULL with err. */
json_t *ob_read(ob_outbox *o, const char *id, char *err, size_t err_size);

/* Small side files kept with the outbox (e.g. "incidents/<run>.json"):
 * atomic replace, read (NULL when absent, *missing = 1), delete. */
int ob_put(ob_outbox *o, const char *subdir, const char *name, json_t *doc, char *err, size_t err_size);
json_t *ob_get(ob_outbox *o, const char *subdir, const char *name, int *missing, char *err, size_t err_size);
int ob_delete(ob_outbox *o, const char *subdir, const char *name);

#endif
