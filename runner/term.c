/*
 * term.c — the operator's terminal: styled lines and prompts. Prompts read
 * stdin through a uv_poll watcher (terminal, pipe) so escalation timers and
 * child processes carry on while a person thinks; a regular file or
 * /dev/null on stdin is read directly (it never blocks).
 * See include/term.h.
 */
#include "term.h"
#include "secrets.h"
#include "util.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int use_color;
static int drill_mode;
static int quiet;
static ut_buf pending;      /* bytes read from stdin not yet consumed */
static size_t partial_len;  /* bytes of pending's last, unfinished line */
static int dropping;        /* the unfinished line is over TM_LINE_MAX: dropping until '\n' */
static uint64_t lines_in, lines_out; /* lines finished in pending / taken from it */
/* The lines in pending that were cut: their number and full length. */
static struct cut_line {
    uint64_t line;
    size_t full_len;
} *cuts;
static size_t ncuts;
static size_t last_cut;     /* full length of the line returned last, when cut */
static int stdin_eof;
static uv_poll_t stdin_poll;
static int poll_init;
static int poll_failed;
/* The prompt now waiting on the operator's line (redacted), or NULL. A line
 * printed while it waits (an escalation, an inject, a warning) would land
 * after the prompt's text and leave the operator without a prompt: emit()
 * moves it to a line of its own, and the prompt is printed again below the
 * burst of lines before irp waits for input again. */
static char *open_prompt;
static int prompt_displaced; /* lines were printed below it: print it again */

void tm_init(int drill)
{
    drill_mode = drill;
    const char *no_color = getenv("NO_COLOR");
    const char *term = getenv("TERM");
    use_color = isatty(1) && !(no_color && *no_color) && !(term && strcmp(term, "dumb") == 0);
    setvbuf(stdout, NULL, _IOLBF, 0);
}

void tm_quiet(int on)
{
    quiet = on;
}

int tm_color(void)
{
    return use_color;
}

int tm_interactive(void)
{
    return isatty(0);
}

static const char *style_code(tm_style s)
{
    switch (s) {
    case TM_BOLD: return "\033[1m";
    case TM_DIM: return "\033[2m";
    case TM_RED: return "\033[1;31m";
    case TM_GREEN: return "\033[32m";
    case TM_YELLOW: return "\033[1;33m";
    case TM_BLUE: return "\033[34m";
    case TM_MAGENTA: return "\033[1;35m";
    case TM_CYAN: return "\033[36m";
    default: return "";
    }
}

static void print_prompt(const char *safe)
{
    if (use_color)
        printf("%s\033[1;36m%s\033[0m ", drill_mode ? "\033[1;35m[DRILL]\033[0m " : "", safe);
    else
        printf("%s%s ", drill_mode ? "[DRILL] " : "", safe);
    fflush(stdout);
}

static void emit_line(FILE *f, tm_style style, const char *text);

static void emit(FILE *f, tm_style style, const char *text)
{
    if (quiet && f == stdout)
        return;
    if (!open_prompt) {
        emit_line(f, style, text);
        return;
    }
    /* On a terminal, clear the prompt's line and write over it; elsewhere
     * (a transcript) end the prompt's line first. */
    if (!prompt_displaced)
        fputs(use_color ? "\r\033[K" : "\n", stdout);
    fflush(stdout);
    emit_line(f, style, text);
    fflush(f);
    prompt_displaced = 1;
}

static void restore_prompt(void)
{
    if (prompt_displaced) {
        prompt_displaced = 0;
        print_prompt(open_prompt);
    }
}

static void emit_line(FILE *f, tm_style style, const char *text)
{
    size_t n;
    char *redacted = sec_redact(text, strlen(text), &n);
    /* The text carries what hosts and playbooks said: show their control
     * characters, emit only irp's own codes (tm_block has split it into
     * lines; a newline in a tm_line is kept). */
    char *safe = ut_term_safe(redacted, n, 1);
    free(redacted);
    const char *mark = drill_mode ? "[DRILL] " : "";
    if (use_color && f == stdout) {
        if (drill_mode)
            fprintf(f, "\033[1;35m[DRILL]\033[0m ");
        if (style != TM_PLAIN)
            fprintf(f, "%s%s\033[0m\n", style_code(style), safe);
        else
            fprintf(f, "%s\n", safe);
    } else {
        fprintf(f, "%s%s\n", f == stdout ? mark : "", safe);
    }
    free(safe);
}

void tm_line(tm_style style, const char *fmt, ...)
{
    ut_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    ut_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    emit(stdout, style, b.data ? b.data : "");
    ut_buf_free(&b);
}

void tm_block(int indent, tm_style style, const char *text)
{
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        ut_buf b = {0};
        ut_buf_printf(&b, "%*s", indent, "");
        ut_buf_append(&b, p, n);
        emit(stdout, style, b.data);
        ut_buf_free(&b);
        p += n;
        if (*p == '\n')
            p++;
    }
}

void tm_error(const char *fmt, ...)
{
    ut_buf b = {0};
    ut_buf_puts(&b, "irp: ");
    va_list ap;
    va_start(ap, fmt);
    ut_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    fflush(stdout);
    emit(stderr, TM_PLAIN, b.data);
    ut_buf_free(&b);
}

void tm_warn(const char *fmt, ...)
{
    ut_buf b = {0};
    ut_buf_puts(&b, "irp: warning: ");
    va_list ap;
    va_start(ap, fmt);
    ut_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    fflush(stdout);
    emit(stderr, TM_PLAIN, b.data);
    ut_buf_free(&b);
}

/* Appends what was read to pending, keeping at most TM_LINE_MAX bytes of
 * each line: the rest is counted, not kept. */
static void absorb(const char *p, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t seg = nl ? (size_t)(nl - p) : n; /* of the unfinished line */
        size_t room = TM_LINE_MAX - partial_len;
        size_t keep = seg < room ? seg : room;
        ut_buf_append(&pending, p, keep);
        partial_len += keep;
        if (seg > keep) {
            if (!dropping) {
                cuts = ut_xrealloc(cuts, (ncuts + 1) * sizeof *cuts);
                cuts[ncuts].line = lines_in;
                cuts[ncuts].full_len = partial_len;
                ncuts++;
                dropping = 1;
            }
            cuts[ncuts - 1].full_len += seg - keep;
        }
        if (!nl)
            return;
        ut_buf_append(&pending, "\n", 1);
        partial_len = 0;
        dropping = 0;
        lines_in++;
        p += seg + 1;
        n -= seg + 1;
    }
}

/* n without a trailing incomplete UTF-8 sequence of s[0..n). */
static size_t utf8_boundary(const char *s, size_t n)
{
    size_t i = n, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0)
        return n;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 1;
    return back + 1 < want ? i - 1 : n;
}

/* Takes one whole line out of `pending`, if there is one. */
static char *take_line(int at_eof)
{
    char *nl = pending.len ? memchr(pending.data, '\n', pending.len) : NULL;
    size_t n;
    if (nl)
        n = (size_t)(nl - pending.data);
    else if (at_eof && pending.len)
        n = pending.len;
    else
        return NULL;
    last_cut = 0;
    if (ncuts && cuts[0].line == lines_out) {
        last_cut = cuts[0].full_len;
        memmove(cuts, cuts + 1, (ncuts - 1) * sizeof *cuts);
        ncuts--;
    }
    lines_out++;
    size_t start = 0, end = last_cut ? utf8_boundary(pending.data, n) : n;
    while (start < end && (pending.data[start] == ' ' || pending.data[start] == '\t'))
        start++;
    while (end > start && (pending.data[end - 1] == ' ' || pending.data[end - 1] == '\t' ||
                           pending.data[end - 1] == '\r'))
        end--;
    char *line = ut_xmalloc(end - start + 1);
    memcpy(line, pending.data + start, end - start);
    line[end - start] = '\0';
    size_t consumed = nl ? n + 1 : n;
    memmove(pending.data, pending.data + consumed, pending.len - consumed);
    pending.len -= consumed;
    if (!nl) { /* the unfinished last line, at the end of input */
        partial_len = 0;
        dropping = 0;
        lines_in = lines_out;
    }
    pending.data[pending.len] = '\0';
    return line;
}

static void read_some(void)
{
    char chunk[4096];
    ssize_t got = read(0, chunk, sizeof chunk);
    if (got > 0)
        absorb(chunk, (size_t)got);
    else if (got == 0 || (errno != EINTR && errno != EAGAIN))
        stdin_eof = 1;
}

static void on_stdin(uv_poll_t *h, int status, int events)
{
    (void)h;
    (void)events;
    if (status < 0) {
        stdin_eof = 1;
        return;
    }
    read_some();
}

static int wait_for_line(uv_loop_t *loop, char **line, volatile int *stop);

int tm_prompt(uv_loop_t *loop, const char *prompt, char **line, volatile int *stop)
{
    *line = NULL;
    size_t n;
    char *redacted = sec_redact(prompt, strlen(prompt), &n);
    char *safe = ut_term_safe(redacted, n, 0); /* one line, re-printed as is */
    free(redacted);
    print_prompt(safe);
    open_prompt = safe;
    int rc = wait_for_line(loop, line, stop);
    open_prompt = NULL;
    prompt_displaced = 0;
    free(safe);
    return rc;
}

/* The body of tm_prompt: the prompt is on screen; wait for a whole line. */
static int wait_for_line(uv_loop_t *loop, char **line, volatile int *stop)
{
    struct stat st;
    int direct = fstat(0, &st) == 0 && (S_ISREG(st.st_mode) || S_ISCHR(st.st_mode)) && !isatty(0);
    for (;;) {
        char *got = take_line(stdin_eof);
        if (got) {
            restore_prompt();
            if (!isatty(0)) { /* echo scripted answers so the transcript reads right */
                char *shown = ut_term_safe(got, strlen(got), 0);
                printf("%s\n", shown);
                free(shown);
            }
            if (last_cut)
                tm_line(TM_YELLOW,
                        "      that line was %zu bytes long: only its first %zu bytes are kept (an answer "
                        "or a note is at most %d KiB)",
                        last_cut, strlen(got), TM_LINE_MAX / 1024);
            *line = got;
            return 0;
        }
        if (stdin_eof) {
            printf("\n");
            return -1;
        }
        if (stop && *stop) {
            printf("\n");
            return -2;
        }
        if (direct || poll_failed) {
            read_some();
            continue;
        }
        if (!poll_init) {
            if (uv_poll_init(loop, &stdin_poll, 0) < 0) {
                poll_failed = 1;
                continue;
            }
            poll_init = 1;
        }
        uv_poll_start(&stdin_poll, UV_READABLE, on_stdin);
        restore_prompt();
        uv_run(loop, UV_RUN_ONCE);
        uv_poll_stop(&stdin_poll);
    }
}

size_t tm_last_cut(void)
{
    return last_cut;
}

void tm_shutdown(void)
{
    if (poll_init) {
        uv_close((uv_handle_t *)&stdin_poll, NULL);
        poll_init = 0;
    }
    ut_buf_free(&pending);
    free(cuts);
    cuts = NULL;
    ncuts = 0;
    partial_len = 0;
    dropping = 0;
}
