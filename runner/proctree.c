/*
 * proctree.c — the descendants of a process from /proc/PID/stat (parent pid,
 * start time). Used by exec.c to stop everything a timed-out command
 * started, also what left its process group. See include/proctree.h.
 */
#include "proctree.h"

#include <ctype.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    pid_t pid, ppid;
    unsigned long long start;
} entry;

/* Parent pid and start time of pid; -1 when it is gone or unreadable. */
static int read_stat(pid_t pid, pid_t *ppid, unsigned long long *start)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "pid (comm) state ppid ...": comm may hold spaces and parentheses. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p++;
    int field = 2; /* the field p is at the end of */
    char state;
    int parent;
    if (sscanf(p, " %c %d", &state, &parent) != 2)
        return -1;
    *ppid = (pid_t)parent;
    while (*p && field < 22) {
        if (*p == ' ')
            field++;
        p++;
    }
    /* p is now at the start of field 22 */
    if (sscanf(p, "%llu", start) != 1)
        return -1;
    return 0;
}

static int listed(const pt_proc *list, int n, pid_t pid)
{
    for (int i = 0; i < n; i++)
        if (list[i].pid == pid)
            return 1;
    return 0;
}

int pt_add_descendants(pid_t root, pt_proc **list, int *n)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    entry *all = NULL;
    size_t count = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        entry e;
        e.pid = (pid_t)atoi(de->d_name);
        if (read_stat(e.pid, &e.ppid, &e.start) < 0)
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 256;
            entry *grown = realloc(all, cap * sizeof *all);
            if (!grown)
                break;
            all = grown;
        }
        all[count++] = e;
    }
    closedir(d);
    /* Breadth first from root: parents[] holds the pids found so far. */
    pid_t *parents = malloc((count + 1) * sizeof *parents);
    int added = 0;
    if (parents) {
        size_t np = 0, next = 0;
        parents[np++] = root;
        while (next < np) {
            pid_t parent = parents[next++];
            for (size_t i = 0; i < count; i++) {
                if (all[i].ppid != parent || all[i].pid == root || np > count)
                    continue;
                parents[np++] = all[i].pid;
                if (listed(*list, *n, all[i].pid))
                    continue;
                pt_proc *grown = realloc(*list, (size_t)(*n + 1) * sizeof **list);
                if (!grown)
                    continue;
                *list = grown;
                (*list)[*n].pid = all[i].pid;
                (*list)[*n].start = all[i].start;
                (*n)++;
                added++;
            }
        }
    }
    free(parents);
    free(all);
    return added;
}

void pt_signal(const pt_proc *p, int sig)
{
    pid_t ppid;
    unsigned long long start;
    if (p->pid > 1 && read_stat(p->pid, &ppid, &start) == 0 && start == p->start)
        kill(p->pid, sig);
}
