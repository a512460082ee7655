/*
 * state.c — the state directory and run ids. See include/state.h.
 */
#include "state.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

const char *st_state_dir(const char *option)
{
    if (option && *option)
        return option;
    const char *env = getenv("IRP_STATE_DIR");
    if (env && *env)
        return env;
    return "./.irp";
}

int st_mkdirs(const char *path)
{
    if (!path || !*path) {
        errno = ENOENT;
        return -1;
    }
    char *copy = ut_xstrdup(path);
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0700) < 0 && errno != EEXIST) {
            int saved = errno;
            free(copy);
            errno = saved;
            return -1;
        }
        *p = '/';
    }
    int rc = mkdir(copy, 0700);
    int saved = errno;
    free(copy);
    if (rc < 0 && saved != EEXIST) {
        errno = saved;
        return -1;
    }
    struct stat st;
    if (rc < 0 && (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))) {
        errno = ENOTDIR; /* something that is not a directory is in the way */
        return -1;
    }
    return 0;
}

char *st_new_run_id(void)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    unsigned char rnd[2] = {0, 0};
    (void)ut_random_bytes(rnd, sizeof rnd);
    char hex[5];
    ut_hex(rnd, 2, hex);
    return ut_xasprintf("%04d%02d%02d-%02d%02d%02d-%s", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                        tm.tm_hour, tm.tm_min, tm.tm_sec, hex);
}

int st_valid_run_id(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 64 || id[0] == '.' || id[0] == '-') /* '-x' would read as an option */
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

char *st_run_dir(const char *state_dir, const char *run_id)
{
    return ut_xasprintf("%s/runs/%s", state_dir, run_id);
}
