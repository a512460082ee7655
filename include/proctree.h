/*
 * proctree.h — the descendants of a process, read from /proc, so that a
 * command's timeout also reaches what it started in a session of its own
 * (setsid, a daemon still attached to its parent), which a signal to the
 * command's process group misses. A process is named by its pid and its start
 * time, so a pid reused later is never signalled.
 * Depends on: libc (Linux /proc).
 */
#ifndef IRP_PROCTREE_H
#define IRP_PROCTREE_H

#include <sys/types.h>

typedef struct pt_proc {
    pid_t pid;
    unsigned long long start; /* field 22 of /proc/PID/stat, clock ticks after boot */
} pt_proc;

/* Adds the descendants of root (children, grandchildren ...) that list does
 * not hold yet to *list (grown with realloc, *n entries). Returns how many
 * were added; 0 when /proc cannot be read. */
int pt_add_descendants(pid_t root, pt_proc **list, int *n);
/* Sends sig to p if it is still the process it was (same start time). */
void pt_signal(const pt_proc *p, int sig);

#endif
