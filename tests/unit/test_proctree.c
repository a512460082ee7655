/*
 * test_proctree.c — unit tests for proctree.c: the descendants of a process
 * (children and grandchildren, none twice, not the root itself), and
 * pt_signal refusing a process whose start time no longer matches (a reused
 * pid). Uses real child processes of the test binary.
 * Depends on: cmocka, proctree.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proctree.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int has(const pt_proc *list, int n, pid_t pid)
{
    for (int i = 0; i < n; i++)
        if (list[i].pid == pid)
            return 1;
    return 0;
}

/* A child that starts a grandchild, reports its pid on fd, and waits. */
static pid_t start_family(pid_t *grandchild)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(fds[0]);
        pid_t g = fork();
        if (g == 0) {
            pause();
            _exit(0);
        }
        if (write(fds[1], &g, sizeof g) != (ssize_t)sizeof g)
            _exit(1);
        pause();
        _exit(0);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], grandchild, sizeof *grandchild), (ssize_t)sizeof *grandchild);
    close(fds[0]);
    return child;
}

static void test_children_and_grandchildren(void **state)
{
    (void)state;
    pid_t grandchild;
    pid_t child = start_family(&grandchild);
    pt_proc *list = NULL;
    int n = 0;
    assert_true(pt_add_descendants(getpid(), &list, &n) >= 2);
    assert_true(has(list, n, child));
    assert_true(has(list, n, grandchild));
    assert_false(has(list, n, getpid()));
    /* A second pass adds nothing already listed. */
    assert_int_equal(pt_add_descendants(getpid(), &list, &n), 0);
    /* The grandchild is found from the child too. */
    pt_proc *sub = NULL;
    int m = 0;
    assert_int_equal(pt_add_descendants(child, &sub, &m), 1);
    assert_int_equal(sub[0].pid, grandchild);
    free(sub);
    for (int i = 0; i < n; i++)
        if (list[i].pid == grandchild)
            pt_signal(&list[i], SIGKILL);
    for (int i = 0; i < n; i++)
        if (list[i].pid == child)
            pt_signal(&list[i], SIGKILL);
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFSIGNALED(status));
    free(list);
}

static void test_signal_checks_start_time(void **state)
{
    (void)state;
    pid_t grandchild;
    pid_t child = start_family(&grandchild);
    pt_proc *list = NULL;
    int n = 0;
    pt_add_descendants(child, &list, &n);
    assert_int_equal(n, 1);
    pt_proc stale = list[0];
    stale.start += 1; /* "the same pid, but another process" */
    pt_signal(&stale, SIGKILL);
    usleep(100 * 1000);
    assert_int_equal(kill(grandchild, 0), 0); /* still alive */
    pt_signal(&list[0], SIGKILL);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    free(list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_children_and_grandchildren),
        cmocka_unit_test(test_signal_checks_start_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
