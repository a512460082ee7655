/*
 * term.h — what the operator sees and types: one line per event, colour only
 * on a terminal (NO_COLOR and TERM=dumb honoured), a DRILL mark on every
 * line of a drill, and line prompts read from stdin while the event loop
 * keeps running (timers and escalation do not wait for the operator).
 * Everything printed passes through secret redaction first.
 * Depends on: libuv, secrets.h.
 */
#ifndef IRP_TERM_H
#define IRP_TERM_H

#include <stdarg.h>
#include <uv.h>

typedef enum { TM_PLAIN, TM_BOLD, TM_DIM, TM_RED, TM_GREEN, TM_YELLOW, TM_BLUE, TM_MAGENTA, TM_CYAN } tm_style;

void tm_init(int drill);
/* Quiet: nothing goes to stdout (irp check --drill's probe); errors still do to stderr. */
void tm_quiet(int on);
int tm_color(void);
/* Prints one line to stdout: prefix (styled), then the formatted text. */
void tm_line(tm_style style, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints text indented by `indent` spaces, wrapping nothing, one line per
 * line of text. */
void tm_block(int indent, tm_style style, const char *text);
/* Error to stderr: "irp: message". */
void tm_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tm_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The longest line a prompt keeps (an answer, a note): the rest of a longer
 * line is read and dropped, so stdin never makes irp hold more. */
#define TM_LINE_MAX 4096

/* Shows prompt and waits for one line on stdin while running the loop.
 * Returns 0 with *line (malloc'd, without the newline, trimmed), -1 at end
 * of input, -2 when *stop became non-zero. A line longer than TM_LINE_MAX
 * is cut (never inside a UTF-8 character) and the operator is told. */
int tm_prompt(uv_loop_t *loop, const char *prompt, char **line, volatile int *stop);
/* The length in bytes of the line tm_prompt returned last when it was cut,
 * else 0. */
size_t tm_last_cut(void);
/* 1 when stdin is a terminal. */
int tm_interactive(void);
/* Releases the stdin watcher (before the loop is closed). */
void tm_shutdown(void);

#endif
