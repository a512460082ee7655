/*
 * outbox.c — the on-disk outbox (see include/outbox.h): atomic, durable
 * entry files, claimed with flock so processes sharing a state directory
 * never send one message twice at the same time.
 * Depends on: jansson, state.h (mkdir -p), util.h.
 */
#include "outbox.h"
#include "state.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define OB_ENTRY_MAX ((size_t)4 << 20)
#define OB_TMP_MARK ".tmp."

struct ob_outbox {
    char *path;
    int dirfd;
};

static unsigned tmp_counter;

static int fail(char *err, size_t err_size, const char *what, const char *name)
{
    snprintf(err, err_size, "outbox: %s %s: %s", what, name, strerror(errno));
    return -1;
}

/* Files named <id>.json.tmp.<pid>.<n> whose writer is gone are half-written
 * leftovers of a crash; the entry they were replacing is still intact. */
static void remove_stale_tmp(int dirfd)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *mark = strstr(e->d_name, OB_TMP_MARK);
        if (!mark)
            continue;
        long pid = strtol(mark + strlen(OB_TMP_MARK), NULL, 10);
        if (pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH)
            unlinkat(dirfd, e->d_name, 0);
    }
    closedir(d);
}

ob_outbox *ob_open(const char *state_dir, char *err, size_t err_size)
{
    char *path = ut_xasprintf("%s/outbox", state_dir);
    if (st_mkdirs(path) < 0) {
        snprintf(err, err_size, "cannot create the outbox %s: %s", path, strerror(errno));
        free(path);
        return NULL;
    }
    int dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        snprintf(err, err_size, "cannot open the outbox %s: %s", path, strerror(errno));
        free(path);
        return NULL;
    }
    ob_outbox *o = ut_xcalloc(1, sizeof *o);
    o->path = path;
    o->dirfd = dirfd;
    remove_stale_tmp(dirfd);
    return o;
}

void ob_close(ob_outbox *o)
{
    if (!o)
        return;
    close(o->dirfd);
    free(o->path);
    free(o);
}

const char *ob_path(const ob_outbox *o)
{
    return o->path;
}

char *ob_new_id(void)
{
    unsigned char rnd[6] = {0};
    if (ut_random_bytes(rnd, sizeof rnd) < 0) {
        /* no CSPRNG: the id must still be unique, not unpredictable */
        unsigned v = (unsigned)getpid() ^ (unsigned)ut_mono_ms() ^ (++tmp_counter << 20);
        memcpy(rnd, &v, sizeof v);
    }
    char hex[13];
    ut_hex(rnd, sizeof rnd, hex);
    /* Strictly increasing within a process, so ids sort in queue order. */
    static int64_t last_ms;
    int64_t ms = ut_now_ms();
    if (ms <= last_ms)
        ms = last_ms + 1;
    last_ms = ms;
    return ut_xasprintf("msg_%013lld_%s", (long long)ms, hex);
}

int ob_valid_id(const char *id)
{
    if (!id || strncmp(id, "msg_", 4) != 0)
        return 0;
    size_t n = strlen(id);
    if (n < 6 || n > 64)
        return 0;
    for (size_t i = 4; i < n; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Writes doc into a new locked temporary file in dirfd, synced, then
 * renames it to name and syncs the directory. Returns the locked fd, or
 * -1 with err. */
static int write_atomic(int dirfd, const char *name, json_t *doc, char *err, size_t err_size)
{
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s" OB_TMP_MARK "%ld.%u", name, (long)getpid(), ++tmp_counter);
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(err, err_size, "cannot create", tmp);
    /* Locked before anyone can see it under its real name: the lock passes
     * to the new version without a gap. */
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        fail(err, err_size, "cannot lock", tmp);
        goto bad;
    }
    char *text = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!text) {
        snprintf(err, err_size, "outbox: cannot encode %s", name);
        goto bad;
    }
    size_t len = strlen(text);
    
    int rc = ut_write_all(fd, text, len);
    if (rc == 0)
        rc = ut_write_all(fd, "\n", 1);
    free(text);
    if (rc < 0) {
        fail(err, err_size, "cannot write", tmp);
        goto bad;
    }
    if (fsync(fd) < 0) {
        fail(err, err_size, "cannot sync", tmp);
        goto bad;
    }
    if (renameat(dirfd, tmp, dirfd, name) < 0) {
        fail(err, err_size, "cannot rename into place", name);
        goto bad;
    }
    if (fsync(dirfd) < 0) {
        fail(err, err_size, "cannot sync the directory of", name);
        close(fd);
        return -1; /* the entry is in place; only its durability is unknown */
    }
    return fd;
bad:
    close(fd);
    unlinkat(dirfd, tmp, 0);
    return -1;
}

int ob_create(ob_outbox *o, const char *id, json_t *entry, ob_lock *claim, char *err, size_t err_size)
{
    char name[96];
    snprintf(name, sizeof name, "%s.json", id);
    int fd = write_atomic(o->dirfd, name, entry, err, err_size);
    if (fd < 0)
        return -1;
    if (claim)
        claim->fd = fd;
    else
        close(fd);
    return 0;
}

static json_t *read_fd(int fd, const char *name, char *err, size_t err_size)
{
    ut_buf b = {0};
    char chunk[8192];
    for (;;) {
        ssize_t n = pread(fd, chunk, sizeof chunk, (off_t)b.len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fail(err, err_size, "cannot read", name);
            ut_buf_free(&b);
            return NULL;
        }
        if (n == 0)
            break;
        ut_buf_append(&b, chunk, (size_t)n);
        if (b.len > OB_ENTRY_MAX) {
            snprintf(err, err_size, "outbox: %s is larger than 4 MiB", name);
            ut_buf_free(&b);
            return NULL;
        }
    }
    json_error_t je;
    json_t *doc = b.data ? json_loadb(b.data, b.len, 0, &je) : NULL;
    ut_buf_free(&b);
    if (!doc || !json_is_object(doc)) {
        snprintf(err, err_size, "outbox: %s is not a JSON object%s%s", name, doc ? "" : ": ", doc ? "" : je.text);
        json_decref(doc);
        return NULL;
    }
    return doc;
}

int ob_claim(ob_outbox *o, const char *id, ob_lock *claim, json_t **entry, int *gone, char *err, size_t err_size)
{
    char name[96];
    snprintf(name, sizeof name, "%s.json", id);
    *gone = 0;
    *entry = NULL;
    claim->fd = -1;
    /* A holder replacing the entry between our open and our lock leaves us
     * holding an unlinked version: look again (a few times at most). */
    for (int tries = 0; tries < 4; tries++) {
        int fd = openat(o->dirfd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT) {
                *gone = 1;
                return 0;
            }
            return fail(err, err_size, "cannot open", name);
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            int busy = errno == EWOULDBLOCK;
            close(fd);
            if (busy)
                return 0;
            return fail(err, err_size, "cannot lock", name);
        }
        struct stat held, now;
        if (fstat(fd, &held) < 0) {
            close(fd);
            return fail(err, err_size, "cannot stat", name);
        }
        if (fstatat(o->dirfd, name, &now, 0) < 0) {
            close(fd);
            if (errno == ENOENT) {
                *gone = 1;
                return 0;
            }
            return fail(err, err_size, "cannot stat", name);
        }
        if (held.st_ino != now.st_ino || held.st_dev != now.st_dev) {
            close(fd);
            continue;
        }
        json_t *doc = read_fd(fd, name, err, err_size);
        if (!doc) {
            close(fd);
            return -1;
        }
        claim->fd = fd;
        *entry = doc;
        return 1;
    }
    return 0; /* replaced under us again and again: someone else is busy with it */
}

int ob_update(ob_outbox *o, const char *id, ob_lock *claim, json_t *entry, char *err, size_t err_size)
{
    char name[96];
    snprintf(name, sizeof name, "%s.json", id);
    int fd = write_atomic(o->dirfd, name, entry, err, err_size);
    if (fd < 0)
        return -1;
    if (claim->fd >= 0)
        close(claim->fd);
    claim->fd = fd;
    return 0;
}

int ob_remove(ob_outbox *o, const char *id, ob_lock *claim, char *err, size_t err_size)
{
    char name[96];
    snprintf(name, sizeof name, "%s.json", id);
    int rc = 0;
    if (unlinkat(o->dirfd, name, 0) < 0 && errno != ENOENT)
        rc = fail(err, err_size, "cannot remove", name);
    else if (fsync(o->dirfd) < 0)
        rc = fail(err, err_size, "cannot sync the directory after removing", name);
    ob_release(claim);
    return rc;
}

void ob_release(ob_lock *claim)
{
    if (claim && claim->fd >= 0) {
        close(claim->fd);
        claim->fd = -1;
    }
}

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **ob_list(ob_outbox *o, size_t *count)
{
    *count = 0;
    int fd = dup(o->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    rewinddir(d);
    char **ids = NULL;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n <= 5 || strcmp(e->d_name + n - 5, ".json") != 0)
            continue;
        char *id = strndup(e->d_name, n - 5);
        if (!id || !ob_valid_id(id)) {
            free(id);
            continue;
        }
        if (*count == cap) {
            cap = cap ? cap * 2 : 32;
            ids = ut_xrealloc(ids, cap * sizeof *ids);
        }
        ids[(*count)++] = id;
    }
    closedir(d);
    if (*count > 1)
        qsort(ids, *count, sizeof *ids, cmp_ids);
    return ids;
}

void ob_free_ids(char **ids, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(ids[i]);
    free(ids);
}

json_t *ob_read(ob_outbox *o, const char *id, char *err, size_t err_size)
{
    char name[96];
    snprintf(name, sizeof name, "%s.json", id);
    int fd = openat(o->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail(err, err_size, "cannot open", name);
        return NULL;
    }
    json_t *doc = read_fd(fd, name, err, err_size);
    close(fd);
    return doc;
}

static int open_subdir(ob_outbox *o, const char *subdir, char *err, size_t err_size)
{
    if (mkdirat(o->dirfd, subdir, 0700) < 0 && errno != EEXIST)
        return fail(err, err_size, "cannot create", subdir);
    int fd = openat(o->dirfd, subdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, err_size, "cannot open", subdir);
    return fd;
}

int ob_put(ob_outbox *o, const char *subdir, const char *name, json_t *doc, char *err, size_t err_size)
{
    int dfd = open_subdir(o, subdir, err, err_size);
    if (dfd < 0)
        return -1;
    int fd = write_atomic(dfd, name, doc, err, err_size);
    close(dfd);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

json_t *ob_get(ob_outbox *o, const char *subdir, const char *name, int *missing, char *err, size_t err_size)
{
    *missing = 0;
    char *rel = ut_xasprintf("%s/%s", subdir, name);
    int fd = openat(o->dirfd, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            *missing = 1;
        else
            fail(err, err_size, "cannot open", rel);
        free(rel);
        return NULL;
    }
    json_t *doc = read_fd(fd, rel, err, err_size);
    close(fd);
    free(rel);
    return doc;
}

int ob_delete(ob_outbox *o, const char *subdir, const char *name)
{
    char *rel = ut_xasprintf("%s/%s", subdir, name);
    int rc = unlinkat(o->dirfd, rel, 0);
    free(rel);
    return rc < 0 && errno != ENOENT ? -1 : 0;
}
