/*
 * test_term.c — the operator's terminal (term.c): tm_prompt reading answers
 * from a pipe on fd 0 while a libuv loop runs (one line per call, trimming,
 * end of input, the stop flag), redaction of known secrets in everything
 * printed, the DRILL mark, and colour only on a terminal (NO_COLOR and
 * TERM=dumb honoured; a pseudo-terminal stands in for one).
 * Depends on: cmocka, libuv, term.h, secrets.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "secrets.h"
#include "term.h"
#include "util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- fd juggling ---- */

static int saved_in = -1, saved_out = -1;

/* Puts the read end of a new pipe on fd 0; returns the write end. */
static int stdin_pipe(void)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    if (saved_in < 0)
        saved_in = dup(0);
    assert_true(dup2(p[0], 0) == 0);
    close(p[0]);
    return p[1];
}

static void restore_stdin(void)
{
    if (saved_in >= 0) {
        dup2(saved_in, 0);
        close(saved_in);
        saved_in = -1;
    }
}

/* Sends stdout to fd `to` until end_capture. */
static void capture_to(int to)
{
    fflush(stdout);
    saved_out = dup(1);
    assert_true(saved_out >= 0);
    assert_true(dup2(to, 1) == 1);
}

static void end_capture(void)
{
    fflush(stdout);
    dup2(saved_out, 1);
    close(saved_out);
    saved_out = -1;
}

/* Everything readable from fd now (non-blocking), NUL-terminated, malloc'd. */
static char *drain(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    ut_buf b = {0};
    char chunk[4096];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0)
        ut_buf_append(&b, chunk, (size_t)n);
    fcntl(fd, F_SETFL, fl);
    return b.data ? b.data : ut_xstrdup("");
}

/* Runs fn with stdout going into a pipe; returns what it printed. */
static char *printed_by(void (*fn)(void))
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    capture_to(p[1]);
    fn();
    end_capture();
    close(p[1]);
    char *out = drain(p[0]);
    close(p[0]);
    return out;
}

static void close_loop(uv_loop_t *loop)
{
    tm_shutdown();
    uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* ---- prompts ---- */

static int prompt_out_fd = -1;

static int prompt(uv_loop_t *loop, char **line, volatile int *stop)
{
    /* The prompt and the echoed answer go to stdout: keep them out of the
     * test report. */
    capture_to(prompt_out_fd);
    int rc = tm_prompt(loop, "answer >", line, stop);
    end_capture();
    return rc;
}

static void test_prompt_lines(void **state)
{
    int devnull = open("/dev/null", O_WRONLY);
    prompt_out_fd = devnull;
    unsetenv("NO_COLOR");
    tm_init(0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    int w = stdin_pipe();
    const char text[] = "done  \r\n  failed: it broke \t\r\nskip\n\n";
    assert_int_equal(write(w, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    char *line = NULL;
    assert_int_equal(prompt(&loop, &line, NULL), 0);
    assert_string_equal(line, "done");
    free(line);
    assert_int_equal(prompt(&loop, &line, NULL), 0);
    assert_string_equal(line, "failed: it broke");
    free(line);
    assert_int_equal(prompt(&loop, &line, NULL), 0);
    assert_string_equal(line, "skip");
    free(line);
    assert_int_equal(prompt(&loop, &line, NULL), 0);
    assert_string_equal(line, "");
    free(line);
    /* A line written in two pieces comes back whole. */
    assert_int_equal(write(w, "app", 3), 3);
    assert_int_equal(write(w, "rove\n", 5), 5);
    assert_int_equal(prompt(&loop, &line, NULL), 0);
    assert_string_equal(line, "approve");
    free(line);
    close(w);
    close_loop(&loop);
    restore_stdin();
    close(devnull);
}

static volatile int timer_stop;

static void set_stop(uv_timer_t *t)
{
    timer_stop = 1;
}

static void test_prompt_stop(void **state)
{
    int devnull = open("/dev/null", O_WRONLY);
    prompt_out_fd = devnull;
    tm_init(0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    int w = stdin_pipe();
    char *line = (char *)1;
    /* Already set: returns at once. */
    volatile int stop = 1;
    assert_int_equal(prompt(&loop, &line, &stop), -2);
    assert_null(line);
    /* Set by a timer while the prompt waits: the loop keeps running. */
    timer_stop = 0;
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, set_stop, 50, 0);
    assert_int_equal(prompt(&loop, &line, &timer_stop), -2);
    assert_null(line);
    uv_close((uv_handle_t *)&t, NULL);
    /* An answer already buffered is still returned after a stop. */
    assert_int_equal(write(w, "later\n", 6), 6);
    stop = 0;
    assert_int_equal(prompt(&loop, &line, &stop), 0);
    assert_string_equal(line, "later");
    free(line);
    close(w);
    close_loop(&loop);
    restore_stdin();
    close(devnull);
}

/* Kept last among the prompt tests: end of input is remembered for the
 * rest of the process. */
static void test_prompt_eof(void **state)
{
    int devnull = open("/dev/null", O_WRONLY);
    prompt_out_fd = devnull;
    tm_init(0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    int w = stdin_pipe();
    /* The last line without a newline still counts. */
    assert_int_equal(write(w, "one\nlast  ", 10), 10);
    close(w);
    char *line = NULL;
    assert_int_equal(prompt(&loop, &line, NULL), 0);
    assert_string_equal(line, "one");
    free(line);
    assert_int_equal(prompt(&loop, &line, NULL), 0);
    assert_string_equal(line, "last");
    free(line);
    line = (char *)1;
    assert_int_equal(prompt(&loop, &line, NULL), -1);
    assert_null(line);
    assert_int_equal(prompt(&loop, &line, NULL), -1);
    close_loop(&loop);
    restore_stdin();
    close(devnull);
}

/* ---- output ---- */

#define SECRET_VALUE "hunter2-Zq9-s3cr3t"

static void print_secret_lines(void)
{
    char err[200];
    const char *v = sec_get("IRP_TEST_TERM_SECRET", err, sizeof err);
    tm_line(TM_PLAIN, "token=%s end", v ? v : "MISSING");
    tm_line(TM_RED, "again %s", SECRET_VALUE);
    tm_block(4, TM_DIM, "first\nkey " SECRET_VALUE "\nthird");
}

static void test_line_redacts(void **state)
{
    setenv("IRP_TEST_TERM_SECRET", SECRET_VALUE, 1);
    setenv("NO_COLOR", "1", 1);
    tm_init(0);
    char *out = printed_by(print_secret_lines);
    assert_null(strstr(out, SECRET_VALUE));
    assert_null(strstr(out, "hunter2"));
    assert_non_null(strstr(out, "token=[secret IRP_TEST_TERM_SECRET] end\n"));
    assert_non_null(strstr(out, "again [secret IRP_TEST_TERM_SECRET]\n"));
    assert_non_null(strstr(out, "    first\n    key [secret IRP_TEST_TERM_SECRET]\n    third\n"));
    assert_null(strchr(out, '\033'));
    free(out);
    sec_clear();
    unsetenv("IRP_TEST_TERM_SECRET");
}

static void test_error_redacts(void **state)
{
    setenv("IRP_TEST_TERM_SECRET", SECRET_VALUE, 1);
    char err[200];
    assert_non_null(sec_get("IRP_TEST_TERM_SECRET", err, sizeof err));
    int p[2];
    assert_int_equal(pipe(p), 0);
    int saved = dup(2);
    dup2(p[1], 2);
    tm_error("cannot reach %s", SECRET_VALUE);
    tm_warn("w %s", SECRET_VALUE);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(p[1]);
    char *out = drain(p[0]);
    close(p[0]);
    assert_string_equal(out, "irp: cannot reach [secret IRP_TEST_TERM_SECRET]\n"
                             "irp: warning: w [secret IRP_TEST_TERM_SECRET]\n");
    free(out);
    sec_clear();
    unsetenv("IRP_TEST_TERM_SECRET");
}

static void print_styled(void)
{
    tm_line(TM_RED, "red %d", 1);
    tm_line(TM_PLAIN, "plain");
}

static void test_no_escape_on_pipe(void **state)
{
    /* Even without NO_COLOR, a pipe gets no escape sequences. */
    unsetenv("NO_COLOR");
    setenv("TERM", "xterm-256color", 1);
    int p[2];
    assert_int_equal(pipe(p), 0);
    capture_to(p[1]);
    tm_init(1);
    int color = tm_color();
    tm_line(TM_RED, "red %d", 1);
    tm_line(TM_PLAIN, "plain");
    end_capture();
    close(p[1]);
    char *out = drain(p[0]);
    close(p[0]);
    assert_int_equal(color, 0);
    assert_null(strchr(out, '\033'));
    assert_string_equal(out, "[DRILL] red 1\n[DRILL] plain\n");
    free(out);
    tm_init(0);
}

/* Opens a pseudo-terminal; returns the master, *slave the other end. */
static int open_pty(int *slave)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0)
        return -1;
    *slave = open(ptsname(m), O_RDWR | O_NOCTTY);
    return *slave < 0 ? -1 : m;
}

static void test_color_on_terminal(void **state)
{
    int slave;
    int m = open_pty(&slave);
    if (m < 0) {
        skip();
        return;
    }
    unsetenv("NO_COLOR");
    setenv("TERM", "xterm-256color", 1);
    capture_to(slave);
    tm_init(0);
    int color_tty = tm_color();
    print_styled();
    setenv("NO_COLOR", "1", 1);
    tm_init(0);
    int color_no_color = tm_color();
    tm_line(TM_RED, "nocolor");
    setenv("NO_COLOR", "", 1); /* empty means not set (no-color.org) */
    tm_init(0);
    int color_empty = tm_color();
    unsetenv("NO_COLOR");
    setenv("TERM", "dumb", 1);
    tm_init(0);
    int color_dumb = tm_color();
    tm_line(TM_RED, "dumb");
    end_capture();
    unsetenv("TERM");
    tm_init(0);
    char *out = drain(m);
    close(slave);
    close(m);
    assert_int_equal(color_tty, 1);
    assert_int_equal(color_no_color, 0);
    assert_int_equal(color_empty, 1);
    assert_int_equal(color_dumb, 0);
    /* The pty turns \n into \r\n. */
    assert_non_null(strstr(out, "\033[1;31mred 1\033[0m"));
    char *nc = strstr(out, "nocolor");
    assert_non_null(nc);
    assert_true(nc > out && nc[-1] == '\n'); /* no escape before it */
    char *d = strstr(out, "dumb");
    assert_non_null(d);
    assert_true(d[-1] == '\n');
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prompt_lines),
        cmocka_unit_test(test_prompt_stop),
        cmocka_unit_test(test_prompt_eof),
        cmocka_unit_test(test_line_redacts),
        cmocka_unit_test(test_error_redacts),
        cmocka_unit_test(test_no_escape_on_pipe),
        cmocka_unit_test(test_color_on_terminal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
