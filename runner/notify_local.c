/*
 * notify_local.c — the notifiers that need no network: stdout prints one
 * line for the operator ("  >> notify NAME [DRILL]: text", through the
 * terminal layer, so it is redacted and drill-marked like every line), and
 * file appends one JSON line per notification to a file and syncs it (for
 * a log shipper, or a test).
 * Depends on: jansson, term.h, util.h.
 */
#include "notify_internal.h"
#include "term.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void nt_local_stdout(const char *name, const json_t *msg)
{
    const char *text = json_string_value(json_object_get(msg, "text"));
    int drill = json_is_true(json_object_get(msg, "drill"));
    static const char mark[] = "[DRILL] ";
    while (text && !strncmp(text, mark, sizeof mark - 1))
        text += sizeof mark - 1; /* the line says DRILL once, after the name */
    tm_line(TM_CYAN, "  >> notify %s%s: %s", name, drill ? " [DRILL]" : "", text ? text : "");
}

int nt_local_file(const char *path, const json_t *entry, char *err, size_t err_size)
{
    const json_t *msg = json_object_get(entry, "message");
    json_t *line = json_pack("{s:O?, s:O?, s:O?, s:O?}", "id", json_object_get(entry, "id"), "target",
                             json_object_get(entry, "target"), "created", json_object_get(entry, "created"),
                             "action", json_object_get(entry, "action"));
    if (json_is_object(msg))
        json_object_update(line, (json_t *)msg);
    /* Whoever tails the file reads the text: a drill's says so, once. */
    const char *t = json_string_value(json_object_get(line, "text"));
    if (t && json_is_true(json_object_get(line, "drill")) && strncmp(t, "[DRILL] ", 8) != 0) {
        char *marked = ut_xasprintf("[DRILL] %s", t);
        json_object_set_new(line, "text", json_string(marked));
        free(marked);
    }
    char *text = json_dumps(line, JSON_COMPACT);
    json_decref(line);
    if (!text) {
        snprintf(err, err_size, "cannot encode the notification");
        return -1;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, err_size, "cannot open %s: %s", path, strerror(errno));
        free(text);
        return -1;
    }
    /* One write per line: appends from several processes do not interleave. */
    size_t len = strlen(text);
    char *withnl = ut_xasprintf("%s\n", text);
    free(text);
    int rc = ut_write_all(fd, withnl, len + 1);
    free(withnl);
    if (rc < 0 || fdatasync(fd) < 0) {
        snprintf(err, err_size, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (close(fd) < 0) {
        snprintf(err, err_size, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
